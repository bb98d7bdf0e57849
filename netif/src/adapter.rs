//! The one trait every port kind implements (netmap's `struct netmap_adapter`
//! callbacks: `nm_krings_create`, `nm_krings_delete`, `nm_txsync`, `nm_rxsync`).
//!
//! An adapter may expose several *endpoints*: a pipe pair is one adapter whose two
//! ends share rings and buffers; a null port has one endpoint. A descriptor binds to
//! one endpoint. Everything runs under the control plane's lock, so adapters are plain
//! data with `&mut self` methods.

use crate::kring::{Dir, Kring};
use crate::ringmem::RingView;
use crate::NetifError;
use netmap_pool::{MemAllocator, SharedMem};

/// What kind of port an adapter implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortKind {
    Pipe,
    Null,
    /// A host interface reached through AF_PACKET.
    Nic,
    /// A port of a VALE software switch (one adapter per switch, one endpoint per port).
    Vale,
    /// A copy monitor of another port (`NAME/r`, `/t`, `/rt`, `/z`).
    Monitor,
}

/// Ring and slot counts of an endpoint as REGISTER and PORT_INFO_GET report them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortCounts {
    pub tx_rings: u32,
    pub rx_rings: u32,
    pub tx_slots: u32,
    pub rx_slots: u32,
    pub host_tx_rings: u32,
    pub host_rx_rings: u32,
}

/// One side of an adapter that descriptors can bind to.
#[derive(Debug)]
pub struct Endpoint {
    /// Kernel name (e.g. `pp{0`), also written into `netmap_if.ni_name`.
    pub name: String,
    pub counts: PortCounts,
    pub tx: Vec<Kring>,
    pub rx: Vec<Kring>,
    /// Descriptors registered on this endpoint.
    pub users: u32,
}

impl Endpoint {
    pub fn new(name: String, counts: PortCounts) -> Self {
        let tx = (0..counts.tx_rings)
            .map(|i| Kring::new(Dir::Tx, i, counts.tx_slots))
            .collect();
        let rx = (0..counts.rx_rings)
            .map(|i| Kring::new(Dir::Rx, i, counts.rx_slots))
            .collect();
        Self {
            name,
            counts,
            tx,
            rx,
            users: 0,
        }
    }

    pub fn krings(&self, d: Dir) -> &[Kring] {
        match d {
            Dir::Tx => &self.tx,
            Dir::Rx => &self.rx,
        }
    }

    pub fn krings_mut(&mut self, d: Dir) -> &mut [Kring] {
        match d {
            Dir::Tx => &mut self.tx,
            Dir::Rx => &mut self.rx,
        }
    }

    /// Gives every ring of the endpoint a ring object and fresh buffers, written as
    /// netmap presents a new ring (TX: head 0, tail N-1; RX: empty), RX rings first as
    /// the kernel allocates them. All or nothing: on error nothing stays taken.
    pub fn create_rings(
        &mut self,
        alloc: &mut MemAllocator,
        mem: SharedMem,
    ) -> Result<(), NetifError> {
        let pool_offset = alloc.buf_pool.offset();
        let buf_size = alloc.buf_size();
        let mut taken = Taken::new(alloc);
        let mut placed = Vec::new();
        for d in [Dir::Rx, Dir::Tx] {
            for (i, k) in self.krings(d).iter().enumerate() {
                let off = taken.ring()?;
                let bufs = taken.bufs(k.num_slots as usize, mem)?;
                let tail = match d {
                    Dir::Tx => k.num_slots.saturating_sub(1),
                    Dir::Rx => 0,
                };
                RingView::new(mem, off, k.num_slots).init(
                    pool_offset,
                    buf_size,
                    k.id as u16,
                    d.ring_dir(),
                    0,
                    tail,
                    &bufs,
                )?;
                placed.push((d, i, off));
            }
        }
        taken.commit();
        for (d, i, off) in placed {
            let k = &mut self.krings_mut(d)[i];
            k.reset_indices();
            k.ring_off = Some(off);
        }
        Ok(())
    }

    /// Returns the buffer of every slot (except those in `keep`, see [`buf_free_checked`])
    /// and every ring object to the pool, and resets the krings to a fresh state.
    pub fn delete_rings(&mut self, alloc: &mut MemAllocator, mem: SharedMem, keep: &KeepSet) {
        for d in Dir::BOTH {
            for k in self.krings_mut(d) {
                if let Ok(v) = view(mem, k) {
                    for s in 0..k.num_slots {
                        match v.slot_buf_idx(s) {
                            Ok(idx) => buf_free_checked(alloc, keep, idx),
                            Err(e) => tracing::error!(%e, "reading a slot at teardown"),
                        }
                    }
                }
                ring_free(alloc, k);
                k.reset_indices();
            }
        }
    }

    /// Region offsets of the endpoint's rings that exist, TX then RX.
    pub fn ring_offs(&self) -> impl Iterator<Item = usize> + '_ {
        self.tx
            .iter()
            .chain(self.rx.iter())
            .filter_map(|k| k.ring_off)
    }

    /// True when every ring of the endpoint is materialised in the region.
    pub fn has_rings(&self) -> bool {
        self.tx
            .iter()
            .chain(self.rx.iter())
            .all(|k| k.ring_off.is_some())
    }
}

/// Which pollers a sync made progress for: `(endpoint, direction)` pairs whose
/// waiters must be woken (pipe: the reader after a complete packet, the writer after
/// released slots; VALE: the RX side of every port a packet was delivered to).
///
/// A fixed bitmask (one bit per endpoint and direction) so it stays `Copy` and needs no
/// allocation on the data path; endpoints at or above [`Wake::MAX_EP`] are ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wake {
    bits: [u64; Wake::WORDS],
}

impl Wake {
    const WORDS: usize = 8;
    /// Endpoints a `Wake` can name (VALE switches have at most 254 ports).
    pub const MAX_EP: usize = Self::WORDS * 64 / 2;

    pub fn none() -> Self {
        Self::default()
    }
    pub fn one(ep: usize, d: Dir) -> Self {
        Self::none().with(ep, d)
    }
    /// Adds `(ep, d)`; builder form.
    pub fn with(mut self, ep: usize, d: Dir) -> Self {
        self.add(ep, d);
        self
    }
    /// Adds `(ep, d)`.
    pub fn add(&mut self, ep: usize, d: Dir) {
        if ep >= Self::MAX_EP {
            tracing::debug!(ep, "wake: endpoint index beyond the mask");
            return;
        }
        let bit = ep * 2 + usize::from(d == Dir::Rx);
        self.bits[bit / 64] |= 1 << (bit % 64);
    }
    /// Adds everything in `other`.
    pub fn merge(&mut self, other: Wake) {
        for (a, b) in self.bits.iter_mut().zip(other.bits) {
            *a |= b;
        }
    }
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&w| w == 0)
    }
    pub fn contains(&self, ep: usize, d: Dir) -> bool {
        let bit = ep * 2 + usize::from(d == Dir::Rx);
        ep < Self::MAX_EP && self.bits[bit / 64] & (1 << (bit % 64)) != 0
    }
    /// The pairs, by ascending endpoint, TX before RX.
    pub fn iter(&self) -> impl Iterator<Item = (usize, Dir)> + '_ {
        self.bits.iter().enumerate().flat_map(|(w, &word)| {
            (0..64)
                .filter(move |b| word & (1u64 << b) != 0)
                .map(move |b| {
                    let bit = w * 64 + b;
                    (bit / 2, if bit % 2 == 0 { Dir::Tx } else { Dir::Rx })
                })
        })
    }
}

/// The port-kind interface. `txsync`/`rxsync` run after the generic prologue has
/// validated the client's `head` (passed in) and before the generic finalize.
pub trait Adapter: Send {
    fn kind(&self) -> PortKind;
    fn endpoints(&self) -> &[Endpoint];
    fn endpoints_mut(&mut self) -> &mut [Endpoint];
    /// Materialises the rings endpoint `ep` needs (and any it shares them with).
    /// On error nothing stays allocated.
    fn krings_create(
        &mut self,
        ep: usize,
        alloc: &mut MemAllocator,
        mem: SharedMem,
    ) -> Result<(), NetifError>;
    /// Returns every ring object and buffer to the pool; called once no endpoint has users.
    /// Buffers in `keep` are referenced elsewhere (another port's slots, an extra-buffer
    /// list) and must not be freed even if this port's slots name them.
    fn krings_delete(&mut self, alloc: &mut MemAllocator, mem: SharedMem, keep: &KeepSet);
    fn txsync(
        &mut self,
        ep: usize,
        ring: usize,
        head: u32,
        mem: SharedMem,
    ) -> Result<Wake, NetifError>;
    fn rxsync(
        &mut self,
        ep: usize,
        ring: usize,
        head: u32,
        mem: SharedMem,
    ) -> Result<Wake, NetifError>;

    /// Descriptors whose readiness means progress for the pollers of `(endpoint, dir)`.
    /// The control plane watches them (edge-triggered epoll) and wakes those pollers;
    /// only ports fed by the kernel (NICs) have any. Valid while the rings exist.
    fn event_fds(&self) -> Vec<(std::os::fd::RawFd, usize, Dir)> {
        Vec::new()
    }

    /// Endpoint `ep` lost its last user while the adapter lives on (ports that come and
    /// go inside one adapter, such as the ports of a VALE switch): free what only that
    /// endpoint used. Pipes and single-endpoint ports keep everything until
    /// `krings_delete`.
    fn endpoint_released(
        &mut self,
        _ep: usize,
        _alloc: &mut MemAllocator,
        _mem: SharedMem,
        _keep: &KeepSet,
    ) {
    }

    /// The VALE switch behind this adapter, for the requests that manage its ports.
    fn as_vale(&self) -> Option<&crate::vale::ValeSwitch> {
        None
    }
    fn as_vale_mut(&mut self) -> Option<&mut crate::vale::ValeSwitch> {
        None
    }

    /// Whether the rings' sync state lives in their shared state blocks
    /// ([`crate::kstate`]) because clients may run the sync themselves (pipes): the
    /// generic sync path then takes the ring's busy flag and loads the state before
    /// the sync, and stores it after.
    fn shared_kstate(&self) -> bool {
        false
    }

    /// The copy monitor behind this adapter, for the control plane to feed it.
    fn as_monitor_mut(&mut self) -> Option<&mut crate::monitor::MonitorPort> {
        None
    }

    /// Per-port counters for `netmapd status` (packets, bytes, drops, errors).
    fn stats(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// The counters of endpoint `ep` alone, where the adapter keeps them per endpoint
    /// (a VALE switch: one port's drops must not be shown on its neighbours' lines);
    /// by default the adapter's own.
    fn endpoint_stats(&self, _ep: usize, _mem: SharedMem) -> Vec<(&'static str, u64)> {
        self.stats()
    }

    /// Calls `f` with every buffer the port owns outside its rings' slots (AF_XDP:
    /// those lent to the kernel to receive into, and spares). Another port's teardown
    /// must not free them even if a client copied their indices into its slots.
    fn owned_buffers(&self, _f: &mut dyn FnMut(u32)) {}

    /// Frames handed to the kernel for transmission whose completion has not come back
    /// (AF_XDP: the kernel may stop taking frames at its socket-buffer limit and take
    /// the rest only when asked again after completions). A port's worker keeps
    /// passing over such a port at short intervals instead of waiting for an event.
    fn tx_pending(&self) -> bool {
        false
    }

    /// [`Adapter::event_fds`] changed since the last call (an AF_XDP queue is now
    /// read by a client itself, whose socket the daemon must no longer watch, or
    /// is read by the daemon again): the caller re-reads them.
    fn take_events_changed(&mut self) -> bool {
        false
    }

    fn in_use(&self) -> bool {
        self.endpoints().iter().any(|e| e.users > 0)
    }
}

/// Ring objects and buffers taken so far by a multi-step creation; given back on
/// drop unless [`Taken::commit`] is called. This is the cleanup the seed allocator's
/// `netmap_if_new` left as "XXX missing".
pub struct Taken<'a> {
    pub alloc: &'a mut MemAllocator,
    rings: Vec<u32>,
    bufs: Vec<u32>,
}

impl<'a> Taken<'a> {
    pub fn new(alloc: &'a mut MemAllocator) -> Self {
        Self {
            alloc,
            rings: Vec::new(),
            bufs: Vec::new(),
        }
    }

    /// Takes a ring object; returns its region offset.
    pub fn ring(&mut self) -> Result<usize, NetifError> {
        let idx = self.alloc.ring_pool.alloc()?;
        self.rings.push(idx);
        self.alloc
            .ring_pool
            .obj_offset(idx)
            .ok_or_else(|| NetifError::Inval(format!("ring object {idx} has no offset")))
    }

    /// Takes `n` buffers (all or none), their pages made present in `mem` (see
    /// [`SharedMem::populate`]): a ring's buffers are written from its first frame on,
    /// and a fault per page there would land in a client's data path.
    pub fn bufs(&mut self, n: usize, mem: SharedMem) -> Result<Vec<u32>, NetifError> {
        let v = self.alloc.buf_pool.alloc_many(n)?;
        self.bufs.extend_from_slice(&v);
        populate_bufs(mem, self.alloc.buf_pool.offset(), self.alloc.buf_size(), &v);
        Ok(v)
    }

    /// Keeps everything taken.
    pub fn commit(mut self) {
        self.rings.clear();
        self.bufs.clear();
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        for &r in &self.rings {
            if let Err(e) = self.alloc.ring_pool.free(r) {
                tracing::error!(%e, "rollback of a ring object failed");
            }
        }
        for &b in &self.bufs {
            if let Err(e) = self.alloc.buf_pool.free(b) {
                tracing::error!(%e, "rollback of a buffer failed");
            }
        }
    }
}

/// Makes the pages of the buffers `idx` present, one `madvise` per run of consecutive
/// indices (a fresh pool hands out long runs). Best effort: a failure is logged once
/// per call and the pages fault in when first written.
fn populate_bufs(mem: SharedMem, pool_offset: usize, buf_size: u32, idx: &[u32]) {
    let mut sorted = idx.to_vec();
    sorted.sort_unstable();
    let bsz = buf_size as usize;
    let mut i = 0;
    while i < sorted.len() {
        let first = sorted[i];
        let mut j = i + 1;
        while j < sorted.len() && sorted[j] == sorted[j - 1].wrapping_add(1) {
            j += 1;
        }
        let off = pool_offset + first as usize * bsz;
        if let Err(e) = mem.populate(off, (j - i) * bsz) {
            tracing::debug!(%e, "buffers not populated ahead (they fault in when written)");
            return;
        }
        i = j;
    }
}

/// Gives a ring object back to the pool and forgets it in the kring.
pub fn ring_free(alloc: &mut MemAllocator, k: &mut Kring) {
    if let Some(off) = k.ring_off.take() {
        match alloc.ring_pool.obj_index(off) {
            Some(idx) => {
                if let Err(e) = alloc.ring_pool.free(idx) {
                    tracing::error!(%e, "freeing ring object");
                }
            }
            None => tracing::error!(off, "ring offset is not a ring object"),
        }
    }
}

/// Buffer indices that must survive a teardown because something else still holds them.
///
/// All clients share one region and may move buffers between ports (zero-copy swaps),
/// or scribble another port's buffer index into their own slots. Freeing whatever index
/// a dying port's slots hold would then hand a buffer still in use elsewhere to the next
/// allocation, corrupting another client's data. The control plane collects every index
/// currently referenced by the other live ports before a teardown.
#[derive(Debug, Clone, Default)]
pub struct KeepSet {
    bits: Vec<u64>,
}

impl KeepSet {
    pub fn new(total: u32) -> Self {
        Self {
            bits: vec![0; (total as usize).div_ceil(64)],
        }
    }
    /// Marks `idx`; returns false if it was already marked (or out of range).
    pub fn insert(&mut self, idx: u32) -> bool {
        let (w, b) = (idx as usize / 64, idx % 64);
        match self.bits.get_mut(w) {
            Some(word) if *word & (1 << b) == 0 => {
                *word |= 1 << b;
                true
            }
            _ => false,
        }
    }
    pub fn contains(&self, idx: u32) -> bool {
        self.bits
            .get(idx as usize / 64)
            .is_some_and(|w| w & (1 << (idx % 64)) != 0)
    }
}

/// Frees the buffer a client left in a slot. Clients may have written anything there,
/// so the pool's checks (range, reserved, double free) decide, and an index still
/// referenced elsewhere (`keep`) is left alone; a refusal only means the client
/// scribbled or swapped, and is logged at debug level.
pub fn buf_free_checked(alloc: &mut MemAllocator, keep: &KeepSet, idx: u32) {
    if keep.contains(idx) {
        tracing::debug!(idx, "buffer still referenced by another port: not freed");
        return;
    }
    if let Err(e) = alloc.buf_pool.free(idx) {
        tracing::debug!(%e, "not freeing a buffer index left in a slot");
    }
}

/// Builds a view of an existing ring.
pub fn view<'a>(mem: SharedMem<'a>, k: &Kring) -> Result<RingView<'a>, NetifError> {
    let off = k
        .ring_off
        .ok_or_else(|| NetifError::Inval(format!("{:?} ring {} has no memory", k.dir, k.id)))?;
    Ok(RingView::new(mem, off, k.num_slots))
}
