//! Copy monitors (`NAME/r`, `/t`, `/rt`, and `/z` emulated as `/rt`; netmap_monitor.c,
//! NETMAP-ABI.md §10.5).
//!
//! A monitor is a port of its own with one endpoint: one TX ring whose txsync does
//! nothing (monitors cannot inject packets) and `max(parent TX rings, parent RX rings)`
//! RX rings. Monitor RX ring `i` receives copies of the frames seen on parent ring `i`
//! of the watched directions and rings (the monitor's ring selection interpreted
//! against the parent):
//!
//! * TX frames when the parent txsyncs: the slots `[old hwcur, new hwcur)` the port
//!   consumed, flagged [`NS_TXMON`];
//! * RX frames when the parent rxsyncs: the slots `[old hwtail, new hwtail)` that became
//!   visible to the parent's client.
//!
//! The control plane (which sees every sync) calls [`MonitorPort::feed`] after the
//! parent's sync. Frames are copied whole: an NS_MOREFRAG chain lands in consecutive
//! monitor slots (NS_MOREFRAG on all but the last), or not at all when the monitor ring
//! lacks room for all of it (counted in `drops`). A chain cut by the end of a sync is
//! staged in the monitor until a later sync of the same parent ring completes it, so
//! TX and RX frames sharing a monitor ring never interleave fragment by fragment.
//! Lengths above the buffer size are truncated (as the kernel does); a fragment naming
//! a buffer outside the pool makes its frame a drop.
//!
//! Differences from the kernel:
//!
//! * all ports share the daemon's one allocator, so the monitor's rings and buffers come
//!   from it (mem_id 1) rather than from a private allocator;
//! * the zero-copy monitor (`/z`, NR_ZCOPY_MON), which in the kernel sits in the
//!   parent's buffer flow (swapping buffers, so a frame reaches the monitor only after
//!   the parent's consumer released it and the parent's client must wait for the
//!   monitor), is a copy monitor of both directions here: the parent's data path is
//!   never slowed or blocked by a monitor, and frames are seen at the same points as
//!   with `/rt`;
//! * host rings are not monitored (the monitor has none).

use crate::adapter::{view, Adapter, Endpoint, KeepSet, PortCounts, PortKind, Wake};
use crate::kring::Dir;
use crate::ringmem::RingView;
use crate::vale::{BufGeom, MAX_FRAGS};
use crate::NetifError;
use netmap_abi::{NS_MOREFRAG, NS_TXMON};
use netmap_pool::{MemAllocator, SharedMem};
use std::ops::Range;

/// Most slots a monitor ring may have (NM_MONITOR_MAXSLOTS).
pub const MAX_MONITOR_SLOTS: u32 = 4096;

/// Counters of one monitor (for `netmapd status` and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonitorStats {
    /// Frames copied into the monitor, by the direction they were seen in.
    pub tx_frames: u64,
    pub rx_frames: u64,
    pub bytes: u64,
    /// Frames lost: monitor ring full, a bad source or destination buffer, or a chain
    /// longer than [`MAX_FRAGS`].
    pub drops: u64,
}

/// An unfinished NS_MOREFRAG chain of one parent ring, waiting for its end.
#[derive(Debug, Default)]
struct Staged {
    frags: Vec<Vec<u8>>,
    /// The chain is already lost (bad buffer, too long): drop it when it ends.
    doomed: bool,
}

/// One fragment to copy: from the region or from a staged copy.
#[derive(Clone, Copy)]
enum Part<'a> {
    Mem { off: usize, len: usize },
    Bytes(&'a [u8]),
}

impl Part<'_> {
    fn len(&self) -> usize {
        match self {
            Part::Mem { len, .. } => *len,
            Part::Bytes(b) => b.len(),
        }
    }
}

/// A copy monitor (see the module doc).
#[derive(Debug)]
pub struct MonitorPort {
    eps: [Endpoint; 1],
    /// Parent rings watched, per direction (`[tx, rx]`; empty when the direction is
    /// not monitored).
    watch: [Range<usize>; 2],
    /// Per RX ring: the next slot to fill; published as hwtail by rxsync.
    fill: Vec<u32>,
    /// Per direction and parent ring: a chain cut by the end of a sync.
    staged: [Vec<Staged>; 2],
    geom: Option<BufGeom>,
    stats: MonitorStats,
}

fn dir_index(d: Dir) -> usize {
    match d {
        Dir::Tx => 0,
        Dir::Rx => 1,
    }
}

/// netmap's `nm_bound_var(v, dflt, 1, MAX_MONITOR_SLOTS)`, also capped by what a ring
/// object holds.
fn bound_slots(v: u32, dflt: u32, max_slots: u32) -> u32 {
    let hi = MAX_MONITOR_SLOTS.min(max_slots).max(1);
    let dflt = dflt.clamp(1, hi);
    if v < 1 {
        dflt
    } else {
        v.min(hi)
    }
}

impl MonitorPort {
    /// A monitor of a parent endpoint with counts `parent`.
    ///
    /// `name` is the kernel name (`PARENT/[z][r][t]#N`, what `ni_name` shows);
    /// `req_tx_slots`/`req_rx_slots` are the request's (0: the parent's); `watch_tx` /
    /// `watch_rx` the parent rings to copy from, per direction (empty: not monitored).
    pub fn new(
        name: String,
        parent: &PortCounts,
        req_tx_slots: u32,
        req_rx_slots: u32,
        max_slots: u32,
        watch_tx: Range<usize>,
        watch_rx: Range<usize>,
    ) -> Self {
        let rx_rings = parent.tx_rings.max(parent.rx_rings).max(1);
        let counts = PortCounts {
            tx_rings: 1,
            rx_rings,
            tx_slots: bound_slots(req_tx_slots, parent.tx_slots, max_slots),
            rx_slots: bound_slots(req_rx_slots, parent.rx_slots, max_slots),
            host_tx_rings: 0,
            host_rx_rings: 0,
        };
        let staged = || (0..rx_rings).map(|_| Staged::default()).collect();
        Self {
            eps: [Endpoint::new(name, counts)],
            watch: [watch_tx, watch_rx],
            fill: vec![0; rx_rings as usize],
            staged: [staged(), staged()],
            geom: None,
            stats: MonitorStats::default(),
        }
    }

    /// Whether frames of parent ring `ring` in direction `d` are copied here.
    pub fn watches(&self, d: Dir, ring: usize) -> bool {
        self.watch[dir_index(d)].contains(&ring)
    }

    pub fn monitor_stats(&self) -> MonitorStats {
        self.stats
    }

    /// Copies the frames of parent ring `ring` (direction `d`, ring view `src` with
    /// `src_slots` slots) found in `[from, to)` into monitor RX ring `ring`. Returns
    /// whether a frame was delivered (the monitor's pollers should be woken).
    ///
    /// Does nothing when the ring is not watched or the monitor has no rings yet.
    /// Only a region access outside the region is an error; everything a client can
    /// break (buffer indices, lengths) is a counted drop.
    #[allow(clippy::too_many_arguments)]
    pub fn feed(
        &mut self,
        d: Dir,
        ring: usize,
        src: &RingView,
        src_slots: u32,
        from: u32,
        to: u32,
        mem: SharedMem,
    ) -> Result<bool, NetifError> {
        let Some(geom) = self.geom else {
            return Ok(false);
        };
        if !self.watches(d, ring)
            || ring >= self.fill.len()
            || src_slots == 0
            || from >= src_slots
            || to >= src_slots
        {
            return Ok(false);
        }
        let di = dir_index(d);
        let mut staged = std::mem::take(&mut self.staged[di][ring]);
        let mut delivered = false;
        let mut parts: Vec<(usize, usize)> = Vec::new();
        let mut k = from;
        let res = (|| -> Result<(), NetifError> {
            while k != to {
                // Cut the next chain (or the rest of the range).
                parts.clear();
                let mut bad = staged.doomed;
                let mut complete = false;
                while k != to {
                    let s = src.slot(k)?;
                    k = if k + 1 >= src_slots { 0 } else { k + 1 };
                    match geom.offset(s.buf_idx) {
                        Some(off) => {
                            let len = usize::from(s.len).min(geom.size as usize);
                            parts.push((off, len));
                        }
                        None => bad = true,
                    }
                    if staged.frags.len() + parts.len() > MAX_FRAGS {
                        bad = true;
                    }
                    if s.flags & NS_MOREFRAG == 0 {
                        complete = true;
                        break;
                    }
                }
                if !complete {
                    // The chain continues in a later sync: keep a copy of what is here.
                    staged.doomed = bad;
                    if !bad {
                        for &(off, len) in &parts {
                            let mut v = vec![0u8; len];
                            mem.read_bytes(off, &mut v)?;
                            staged.frags.push(v);
                        }
                    }
                    break;
                }
                if bad {
                    self.stats.drops += 1;
                } else {
                    let all: Vec<Part> = staged
                        .frags
                        .iter()
                        .map(|b| Part::Bytes(b))
                        .chain(parts.iter().map(|&(off, len)| Part::Mem { off, len }))
                        .collect();
                    delivered |= self.deliver(ring, &all, d, mem, &geom)?;
                }
                staged.frags.clear();
                staged.doomed = false;
            }
            Ok(())
        })();
        self.staged[di][ring] = staged;
        res.map(|()| delivered)
    }

    /// Writes one frame into RX ring `ring` if it has room for all of it.
    fn deliver(
        &mut self,
        ring: usize,
        parts: &[Part],
        d: Dir,
        mem: SharedMem,
        geom: &BufGeom,
    ) -> Result<bool, NetifError> {
        let rk = &self.eps[0].rx[ring];
        if rk.ring_off.is_none() || parts.is_empty() {
            return Ok(false);
        }
        let rv = view(mem, rk)?;
        let n = rk.num_slots;
        let fill = self.fill[ring];
        // Free slots: [fill, hwcur - 1), circularly.
        let free = (u64::from(rk.hwcur) + u64::from(n) - 1 - u64::from(fill)) % u64::from(n);
        if free < parts.len() as u64 {
            self.stats.drops += 1;
            return Ok(false);
        }
        let next = |j: u32| if j + 1 >= n { 0 } else { j + 1 };
        // Validate every destination buffer (the monitor's client may have scribbled).
        let mut dst = Vec::with_capacity(parts.len());
        let mut j = fill;
        for _ in parts {
            let idx = rv.slot_buf_idx(j)?;
            match geom.offset(idx) {
                Some(off) => dst.push((j, idx, off)),
                None => {
                    tracing::debug!(ring, slot = j, idx, "monitor RX slot with a bad buffer");
                    self.stats.drops += 1;
                    return Ok(false);
                }
            }
            j = next(j);
        }
        let txmon = if d == Dir::Tx { NS_TXMON } else { 0 };
        let mut bytes = 0u64;
        for (i, (p, &(slot, idx, off))) in parts.iter().zip(&dst).enumerate() {
            match *p {
                Part::Mem { off: s, len } => mem.copy_within(s, off, len)?,
                Part::Bytes(b) => mem.write_bytes(off, b)?,
            }
            let len = p.len() as u16;
            bytes += u64::from(len);
            rv.set_slot_buf_len(slot, idx, len)?;
            let more = if i + 1 < parts.len() { NS_MOREFRAG } else { 0 };
            rv.set_slot_flags(slot, txmon | more)?;
        }
        self.fill[ring] = j;
        match d {
            Dir::Tx => self.stats.tx_frames += 1,
            Dir::Rx => self.stats.rx_frames += 1,
        }
        self.stats.bytes += bytes;
        Ok(true)
    }
}

impl Adapter for MonitorPort {
    fn kind(&self) -> PortKind {
        PortKind::Monitor
    }
    fn endpoints(&self) -> &[Endpoint] {
        &self.eps
    }
    fn endpoints_mut(&mut self) -> &mut [Endpoint] {
        &mut self.eps
    }
    fn as_monitor_mut(&mut self) -> Option<&mut MonitorPort> {
        Some(self)
    }

    /// The TX ring (full of buffers, never completing) and the RX rings (empty).
    fn krings_create(
        &mut self,
        _ep: usize,
        alloc: &mut MemAllocator,
        mem: SharedMem,
    ) -> Result<(), NetifError> {
        if self.eps[0].has_rings() {
            return Ok(());
        }
        let geom = BufGeom {
            pool_offset: alloc.buf_pool.offset(),
            size: alloc.buf_size(),
            total: alloc.buf_pool.objtotal(),
        };
        self.eps[0].create_rings(alloc, mem)?;
        self.fill.iter_mut().for_each(|f| *f = 0);
        for s in self.staged.iter_mut().flatten() {
            *s = Staged::default();
        }
        self.geom = Some(geom);
        Ok(())
    }

    fn krings_delete(&mut self, alloc: &mut MemAllocator, mem: SharedMem, keep: &KeepSet) {
        self.eps[0].delete_rings(alloc, mem, keep);
        self.geom = None;
    }

    /// Monitors cannot inject packets: nothing is consumed, the ring never completes.
    fn txsync(
        &mut self,
        _ep: usize,
        _ring: usize,
        _head: u32,
        _mem: SharedMem,
    ) -> Result<Wake, NetifError> {
        Ok(Wake::none())
    }

    /// Releases `[hwcur, head)` and publishes the copies made so far.
    fn rxsync(
        &mut self,
        _ep: usize,
        ring: usize,
        head: u32,
        _mem: SharedMem,
    ) -> Result<Wake, NetifError> {
        let fill = *self
            .fill
            .get(ring)
            .ok_or_else(|| NetifError::Inval(format!("monitor RX ring {ring}")))?;
        let k = &mut self.eps[0].rx[ring];
        k.hwcur = head;
        k.hwtail = fill;
        Ok(Wake::none())
    }

    fn stats(&self) -> Vec<(&'static str, u64)> {
        let s = self.stats;
        vec![
            ("tx_frames", s.tx_frames),
            ("rx_frames", s.rx_frames),
            ("bytes", s.bytes),
            ("drops", s.drops),
        ]
    }
}

#[cfg(test)]
mod tests;
