//! VALE software switches (netmap_vale.c / netmap_bdg.c; NETMAP-ABI.md §10.2, §10.3).
//!
//! One [`ValeSwitch`] adapter per switch (`valeX`); each port (`valeX:Y`) is one
//! [`Endpoint`] of it, so the sender's txsync can reach every destination's RX rings.
//! Endpoints live in a vector indexed by the port slot (at most [`MAX_PORT_SLOTS`]); a
//! free slot is an endpoint with an empty name and no rings, reused by the next port.
//!
//! Forwarding happens inside the sender's txsync ([`forward`]): every packet is copied
//! into the destination's own RX buffers, never swapped. The RX side only releases
//! slots and publishes what senders filled (the fill index, the per-RX-ring "filled up
//! to" index in the ring's state block). The learning table and the port list live in
//! the switch block ([`bdg`]) in the shared region, so a preloaded sender forwards in
//! its own process exactly as the daemon does for everyone else.
//!
//! Virtio-net header lengths (PORT_HDR_SET) are stored per port and skipped when the
//! learning bridge reads the Ethernet header; frames are copied unchanged between ports
//! whose header lengths differ (the kernel's header conversion/segmentation is not
//! emulated).

mod backlog;
pub mod bdg;
pub mod forward;
mod persistent;
pub mod switch;
#[cfg(test)]
mod tests;

pub use switch::parse_vale_name;

use crate::adapter::{view, Adapter, Endpoint, KeepSet, PortCounts, PortKind, Wake};
use crate::kring::Dir;
use crate::kstate::{KState, BUSY_DAEMON, KIND_VALE};
use crate::NetifError;
use bdg::Bdg;
use forward::{Frag, Ports};
use netmap_pool::{MemAllocator, PoolError, SharedMem};

/// Port slots of a switch (netmap's NM_BDG_MAXPORTS).
pub const MAX_PORT_SLOTS: usize = 254;
/// A new port is refused once this many slots are in use (the kernel keeps two in
/// reserve for NIC + host attachments).
pub const MAX_PORTS_IN_USE: usize = MAX_PORT_SLOTS - 2;
/// Ring count limit per direction (NM_BDG_MAXRINGS).
pub const MAX_VALE_RINGS: u32 = 16;
/// Slot count limit (NM_BDG_MAXSLOTS) and default (NM_BRIDGE_RINGSIZE).
pub const MAX_VALE_SLOTS: u32 = 4096;
pub const DEFAULT_VALE_SLOTS: u32 = 1024;
/// Most slots one packet may span (NM_MULTISEG); longer chains are dropped.
pub const MAX_FRAGS: usize = 64;
/// Virtio-net header lengths PORT_HDR_SET accepts.
pub const HDR_LENS: [u32; 3] = [0, 10, 12];

/// Buffer pool geometry captured at krings_create (syncs get no allocator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufGeom {
    pub pool_offset: usize,
    pub size: u32,
    pub total: u32,
}

impl BufGeom {
    pub fn of(alloc: &MemAllocator) -> Self {
        Self {
            pool_offset: alloc.buf_pool.offset(),
            size: alloc.buf_size(),
            total: alloc.buf_pool.objtotal(),
        }
    }
    /// Region offset of buffer `idx`, `None` unless `2 <= idx < total`.
    #[inline]
    pub fn offset(&self, idx: u32) -> Option<usize> {
        (2..self.total)
            .contains(&idx)
            .then(|| self.pool_offset + idx as usize * self.size as usize)
    }
}

/// Per-port counters. The forwarding counts in the rings' state blocks (it may run in
/// a client); these add what the daemon alone sees (its backlog) and what rings that
/// were freed had counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets the port sent that were well formed (forwarded or not).
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Packets the port sent that were discarded before lookup (bad buffer index or
    /// length, NS_INDIRECT, unterminated or over-long fragment chain, frame shorter
    /// than 14 bytes) or addressed to the sender itself.
    pub tx_drops: u64,
    /// Packets delivered to this port.
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Packets for this port discarded because its RX ring was full (or a slot of it
    /// held an invalid buffer index).
    pub rx_drops: u64,
    /// Fill locks of this port's RX rings broken because their holder died, was
    /// stopped, or held on for too long.
    pub fill_locks_broken: u64,
}

/// Switch-side state of one port slot (parallel to the endpoint vector).
#[derive(Debug, Clone, Default)]
struct PortState {
    in_use: bool,
    /// Persistent ports (VALE_NEWIF + attach) keep their slot when the last user goes.
    persistent: bool,
    /// Port part of the name (after ':').
    port: String,
    hdr_len: u32,
    /// Per RX ring: packets that found the ring full, moved in by the next rxsync.
    backlog: Vec<backlog::Backlog>,
    stats: PortStats,
}

/// A VALE switch: one adapter, one endpoint per port.
#[derive(Debug)]
pub struct ValeSwitch {
    name: String,
    eps: Vec<Endpoint>,
    ports: Vec<PortState>,
    /// Region offset of the switch block (a ring object), while any port has rings.
    bdg: Option<usize>,
    geom: Option<BufGeom>,
}

fn free_endpoint() -> Endpoint {
    Endpoint::new(String::new(), PortCounts::default())
}

fn no_port(what: &str) -> NetifError {
    NetifError::NoPort(what.to_string())
}

impl ValeSwitch {
    /// A switch with no ports; `name` is the part before ':' (e.g. `vale0`).
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            eps: Vec::new(),
            ports: Vec::new(),
            bdg: None,
            geom: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Ports currently occupying a slot.
    pub fn ports_in_use(&self) -> usize {
        self.ports.iter().filter(|p| p.in_use).count()
    }

    /// The endpoint (= port slot) of port `port` (the text after ':').
    pub fn find_port(&self, port: &str) -> Option<usize> {
        self.ports.iter().position(|p| p.in_use && p.port == port)
    }

    /// Finds port `port`, creating an ephemeral one when absent and `create` is set.
    ///
    /// Counts come from the request (NETMAP-ABI.md §10.2): 0 rings → 1, at most 16;
    /// 0 slots → 1024, at most 4096 and `max_slots` (what a ring object holds); never
    /// host rings. The counts of an existing port are not changed. Absent and not
    /// `create` → `NoPort` (ENXIO); 252 ports in use → `NoMem` (ENOMEM).
    pub fn port(
        &mut self,
        port: &str,
        req: PortCounts,
        max_slots: u32,
        create: bool,
    ) -> Result<usize, NetifError> {
        if let Some(ep) = self.find_port(port) {
            return Ok(ep);
        }
        if !create {
            return Err(no_port(&format!("{}:{port}", self.name)));
        }
        if port.is_empty() || port.len() > switch::MAX_NAME_PART {
            return Err(NetifError::Inval(format!("bad VALE port name {port:?}")));
        }
        if self.ports_in_use() >= MAX_PORTS_IN_USE {
            return Err(NetifError::NoMem(PoolError::Exhausted {
                pool: "vale ports",
            }));
        }
        let slot = match self.ports.iter().position(|p| !p.in_use) {
            Some(s) => s,
            None => {
                // Cannot exceed MAX_PORT_SLOTS: fewer than MAX_PORTS_IN_USE are in use.
                self.eps.push(free_endpoint());
                self.ports.push(PortState::default());
                self.ports.len() - 1
            }
        };
        let rings = |r: u32| if r == 0 { 1 } else { r.min(MAX_VALE_RINGS) };
        let slots = |s: u32| {
            let s = if s == 0 { DEFAULT_VALE_SLOTS } else { s };
            s.min(MAX_VALE_SLOTS).min(max_slots).max(1)
        };
        let counts = PortCounts {
            tx_rings: rings(req.tx_rings),
            rx_rings: rings(req.rx_rings),
            tx_slots: slots(req.tx_slots),
            rx_slots: slots(req.rx_slots),
            host_tx_rings: 0,
            host_rx_rings: 0,
        };
        self.eps[slot] = Endpoint::new(format!("{}:{port}", self.name), counts);
        self.ports[slot] = PortState {
            in_use: true,
            persistent: false,
            port: port.to_string(),
            hdr_len: 0,
            backlog: vec![backlog::Backlog::default(); counts.rx_rings as usize],
            stats: PortStats::default(),
        };
        tracing::debug!(switch = %self.name, port, slot, ?counts, "VALE port created");
        Ok(slot)
    }

    /// Occupied slots and their full names (`valeX:port`, what VALE_LIST writes into
    /// `hdr.nr_name`), by ascending slot.
    pub fn list(&self) -> Vec<(u32, String)> {
        self.ports
            .iter()
            .enumerate()
            .filter(|(_, p)| p.in_use)
            .map(|(i, _)| (i as u32, self.eps[i].name.clone()))
            .collect()
    }

    /// PORT_HDR_SET: 0, 10 or 12, else `Inval`; an unknown port → `NoPort`.
    pub fn set_hdr_len(&mut self, ep: usize, len: u32, mem: SharedMem) -> Result<(), NetifError> {
        if !HDR_LENS.contains(&len) {
            return Err(NetifError::Inval(format!(
                "virtio-net header length {len} (0, 10 or 12)"
            )));
        }
        let p = self
            .ports
            .get_mut(ep)
            .filter(|p| p.in_use)
            .ok_or_else(|| no_port("VALE port slot"))?;
        p.hdr_len = len;
        self.publish_port(ep, mem);
        Ok(())
    }

    /// PORT_HDR_GET (0 for an unknown slot).
    pub fn hdr_len(&self, ep: usize) -> u32 {
        self.ports
            .get(ep)
            .filter(|p| p.in_use)
            .map_or(0, |p| p.hdr_len)
    }

    /// Marks a port persistent (its slot survives the last close) or ephemeral.
    pub fn set_persistent(&mut self, ep: usize, persistent: bool) -> Result<(), NetifError> {
        let p = self
            .ports
            .get_mut(ep)
            .filter(|p| p.in_use)
            .ok_or_else(|| no_port("VALE port slot"))?;
        p.persistent = persistent;
        Ok(())
    }

    /// Frees the slot of a port that has no users and no rings (e.g. created by
    /// [`ValeSwitch::port`] for a REGISTER that then failed, or a detached persistent
    /// port). `Busy` while it has users or rings, or while it is persistent (clear
    /// that first with [`ValeSwitch::set_persistent`]).
    pub fn remove_port(&mut self, ep: usize) -> Result<(), NetifError> {
        let e = self
            .eps
            .get(ep)
            .filter(|_| self.ports[ep].in_use)
            .ok_or_else(|| no_port("VALE port slot"))?;
        let has_mem = e.tx.iter().chain(e.rx.iter()).any(|k| k.ring_off.is_some());
        if self.ports[ep].persistent {
            return Err(NetifError::Busy(format!(
                "VALE port {} is persistent",
                e.name
            )));
        }
        if e.users > 0 || has_mem {
            return Err(NetifError::Busy(format!("VALE port {} in use", e.name)));
        }
        self.free_slot(ep);
        Ok(())
    }

    /// Counters of one port (zero for a free slot): the daemon's own plus what its
    /// rings' state blocks counted.
    pub fn port_stats(&self, ep: usize, mem: SharedMem) -> PortStats {
        let mut s = self.ports.get(ep).map(|p| p.stats).unwrap_or_default();
        if let Some(e) = self.eps.get(ep) {
            add_ring_counts(&mut s, e, mem);
        }
        s
    }

    /// The port `mac` was last learned on (for diagnostics and tests).
    pub fn lookup(&self, mem: SharedMem, mac: &switch::Mac) -> Option<u16> {
        let b = Bdg::new(mem, self.bdg?);
        b.lookup(mac).ok().flatten()
    }

    /// Region offset of the switch block, while the switch has rings.
    pub fn block(&self) -> Option<usize> {
        self.bdg
    }

    fn free_slot(&mut self, ep: usize) {
        tracing::debug!(switch = %self.name, port = %self.ports[ep].port, slot = ep, "VALE port freed");
        self.eps[ep] = free_endpoint();
        self.ports[ep] = PortState::default();
    }

    /// Writes port `ep`'s entry of the switch block: its RX rings and header length
    /// when it has rings, inactive otherwise.
    fn publish_port(&self, ep: usize, mem: SharedMem) {
        let Some(b) = self.bdg.map(|o| Bdg::new(mem, o)) else {
            return;
        };
        let e = &self.eps[ep];
        let rx: Option<Vec<usize>> = (self.ports[ep].in_use && !e.rx.is_empty() && e.has_rings())
            .then(|| e.rx.iter().filter_map(|k| k.ring_off).collect());
        match b.set_port(ep, self.ports[ep].hdr_len, rx.as_deref()) {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(switch = %self.name, port = ep, "VALE port's rings lie beyond 4 GiB: not reachable by senders in clients")
            }
            Err(e) => tracing::error!(%e, "writing a VALE switch block"),
        }
        let top = (0..self.eps.len())
            .rev()
            .find(|&i| self.ports[i].in_use && self.eps[i].ring_offs().next().is_some())
            .map_or(0, |i| i + 1);
        if let Err(e) = b.set_nports(top) {
            tracing::error!(%e, "writing a VALE switch block");
        }
    }

    /// Gives back the rings and buffers of endpoint `ep` (its counters are kept, its
    /// learned addresses forgotten), and the switch block after the last rings.
    fn free_rings(&mut self, ep: usize, alloc: &mut MemAllocator, mem: SharedMem, keep: &KeepSet) {
        let Some(e) = self.eps.get_mut(ep) else {
            return;
        };
        if e.ring_offs().next().is_none() {
            return;
        }
        if let Some(p) = self.ports.get_mut(ep) {
            add_ring_counts(&mut p.stats, e, mem);
            let dropped: usize = p.backlog.iter_mut().map(backlog::Backlog::clear).sum();
            p.stats.rx_drops += dropped as u64;
        }
        // Senders in clients may be writing into these RX rings: wait for each one's
        // fill lock (a dead or stuck holder is broken), then clear the state block,
        // which releases the lock and makes every later sender leave the ring alone,
        // before the buffers go back to the pool.
        for k in &e.rx {
            if let Some(off) = k.ring_off {
                if let Err(err) = forward::lock_fill(&KState::new(mem, off), BUSY_DAEMON) {
                    tracing::error!(%err, "taking a VALE ring's fill lock");
                }
            }
        }
        for off in e.ring_offs() {
            if let Err(err) = KState::new(mem, off).clear() {
                tracing::error!(%err, "clearing a VALE ring's state block");
            }
        }
        e.delete_rings(alloc, mem, keep);
        if let Some(o) = self.bdg {
            let b = Bdg::new(mem, o);
            if let Err(err) = b.forget_port(ep as u16) {
                tracing::error!(%err, "clearing a VALE switch block");
            }
        }
        self.publish_port(ep, mem);
        if !self.eps.iter().any(|e| e.ring_offs().next().is_some()) {
            self.free_block(alloc, mem);
        }
    }

    fn free_block(&mut self, alloc: &mut MemAllocator, mem: SharedMem) {
        let Some(off) = self.bdg.take() else {
            return;
        };
        if let Err(e) = Bdg::new(mem, off).clear() {
            tracing::error!(%e, "clearing a VALE switch block");
        }
        match alloc.ring_pool.obj_index(off) {
            Some(idx) => {
                if let Err(e) = alloc.ring_pool.free(idx) {
                    tracing::error!(%e, "freeing a VALE switch block");
                }
            }
            None => tracing::error!(off, "VALE switch block is not a ring object"),
        }
    }

    /// Allocates and initialises the switch block (one ring object).
    fn alloc_block(&mut self, alloc: &mut MemAllocator, mem: SharedMem) -> Result<(), NetifError> {
        if self.bdg.is_some() {
            return Ok(());
        }
        if (alloc.ring_pool.objsize() as usize) < bdg::BDG_BYTES {
            tracing::error!(
                switch = %self.name,
                need = bdg::BDG_BYTES,
                have = alloc.ring_pool.objsize(),
                "VALE needs ring objects of at least this many bytes (--ring-size)"
            );
            return Err(NetifError::NoMem(PoolError::Exhausted {
                pool: "ring (too small for a VALE switch block)",
            }));
        }
        let idx = alloc.ring_pool.alloc()?;
        let Some(off) = alloc.ring_pool.obj_offset(idx) else {
            let _ = alloc.ring_pool.free(idx);
            return Err(NetifError::Inval(format!(
                "ring object {idx} has no offset"
            )));
        };
        if let Err(e) = Bdg::new(mem, off).init() {
            let _ = alloc.ring_pool.free(idx);
            return Err(e.into());
        }
        self.bdg = Some(off);
        Ok(())
    }
}

impl ValeSwitch {
    /// Part of the rxsync of port `ep`, RX ring `ring`, after the release (`hwcur`
    /// set): moves queued packets into the ring while they fit (oldest first), under
    /// the ring's fill lock, and says in the ring's state block whether any are left.
    fn drain_backlog(
        &mut self,
        ep: usize,
        ring: usize,
        mem: SharedMem,
        geom: &BufGeom,
    ) -> Result<(), NetifError> {
        let Some(rk) = self.eps.get(ep).and_then(|e| e.rx.get(ring)) else {
            return Ok(());
        };
        let port = &mut self.ports[ep];
        let Some(bl) = port.backlog.get_mut(ring) else {
            return Ok(());
        };
        if bl.is_empty() {
            return Ok(());
        }
        let stats = &mut port.stats;
        let rv = view(mem, rk)?;
        let ks = KState::new(mem, rv.offset());
        let (n, hwcur) = (rk.num_slots, rk.hwcur);
        forward::lock_fill(&ks, BUSY_DAEMON)?;
        let res = (|| -> Result<u64, NetifError> {
            let mut fill = ks.link()?;
            if fill >= n {
                return Ok(0);
            }
            let mut placed = 0;
            while let Some(h) = bl.front() {
                if forward::free_slots(hwcur, fill, n) < h.lens.len() as u64 {
                    break;
                }
                let mut at = [0usize; MAX_FRAGS];
                let mut pos = 0;
                for (i, &l) in h.lens.iter().enumerate() {
                    at[i] = pos;
                    pos += usize::from(l);
                }
                let done = forward::put_packet(&rv, fill, n, geom, &h.lens, |i, dst| {
                    let len = usize::from(h.lens[i]);
                    mem.write_bytes(dst, &h.data[at[i]..at[i] + len])
                        .map_err(NetifError::from)
                })?;
                match done {
                    Some(next) => {
                        fill = next;
                        placed += 1;
                    }
                    None => {
                        stats.rx_drops += 1;
                        stats.rx_packets = stats.rx_packets.saturating_sub(1);
                    }
                }
                if let Some(h) = bl.pop() {
                    bl.recycle(h.data);
                }
            }
            ks.set_link(fill)?;
            Ok(placed)
        })();
        ks.set_queued(if bl.is_empty() {
            0
        } else {
            crate::kstate::QUEUED
        })?;
        ks.put_flock(BUSY_DAEMON)?;
        if res? > 0 {
            // A reader in a client may sleep on this ring after kicking us.
            crate::kstate::publish(&ks)?;
        }
        Ok(())
    }
}

/// Adds the counters kept in `e`'s rings' state blocks to `s`.
fn add_ring_counts(s: &mut PortStats, e: &Endpoint, mem: SharedMem) {
    for (d, k) in
        e.tx.iter()
            .map(|k| (Dir::Tx, k))
            .chain(e.rx.iter().map(|k| (Dir::Rx, k)))
    {
        let Some(off) = k.ring_off else { continue };
        let ks = KState::new(mem, off);
        let ((p, b), dr) = (
            ks.sent().unwrap_or_default(),
            ks.drops().unwrap_or_default(),
        );
        match d {
            Dir::Tx => {
                s.tx_packets += p;
                s.tx_bytes += b;
                s.tx_drops += dr;
            }
            Dir::Rx => {
                s.rx_packets += p;
                s.rx_bytes += b;
                s.rx_drops += dr;
                s.fill_locks_broken += u64::from(ks.broken().unwrap_or_default());
            }
        }
    }
}

/// The daemon's view of the destinations: its own port list and ring offsets (never
/// the block's), and its backlog for full rings.
struct DaemonPorts<'a> {
    eps: &'a [Endpoint],
    ports: &'a mut [PortState],
}

impl Ports for DaemonPorts<'_> {
    fn slots(&self) -> usize {
        self.eps.len()
    }
    fn active(&self, p: usize) -> bool {
        self.ports.get(p).is_some_and(|s| s.in_use)
            && self.eps[p].rx.first().is_some_and(|k| k.ring_off.is_some())
    }
    fn rx_rings(&self, p: usize) -> usize {
        if self.active(p) {
            self.eps[p].rx.len()
        } else {
            0
        }
    }
    fn rx_ring(&self, p: usize, r: usize) -> Option<(usize, u32)> {
        if !self.ports.get(p)?.in_use {
            return None;
        }
        let k = self.eps.get(p)?.rx.get(r)?;
        Some((k.ring_off?, k.num_slots))
    }
    fn queued(&self, p: usize, r: usize) -> bool {
        self.ports
            .get(p)
            .and_then(|s| s.backlog.get(r))
            .is_some_and(|b| !b.is_empty())
    }
    /// Queues the packet in the port's [`backlog::Backlog`] if it has room.
    fn hold(
        &mut self,
        p: usize,
        r: usize,
        mem: SharedMem,
        frags: &[Frag],
        bytes: u64,
    ) -> Result<bool, NetifError> {
        let n = self.rx_ring(p, r).map_or(0, |(_, n)| n);
        let port = &mut self.ports[p];
        let Some(bl) = port.backlog.get_mut(r) else {
            return Ok(false);
        };
        if !bl.has_room(frags.len(), bytes as usize, n) {
            return Ok(false);
        }
        let mut data = bl.buffer();
        data.resize(bytes as usize, 0);
        let mut at = 0;
        for f in frags {
            let len = usize::from(f.len);
            mem.read_bytes(f.off, &mut data[at..at + len])?;
            at += len;
        }
        bl.push(backlog::Held {
            data,
            lens: frags.iter().map(|f| f.len).collect(),
        });
        port.stats.rx_packets += 1;
        port.stats.rx_bytes += bytes;
        Ok(true)
    }
}

impl Adapter for ValeSwitch {
    fn as_vale(&self) -> Option<&ValeSwitch> {
        Some(self)
    }
    fn as_vale_mut(&mut self) -> Option<&mut ValeSwitch> {
        Some(self)
    }

    fn kind(&self) -> PortKind {
        PortKind::Vale
    }

    fn endpoints(&self) -> &[Endpoint] {
        &self.eps
    }

    fn endpoints_mut(&mut self) -> &mut [Endpoint] {
        &mut self.eps
    }

    /// Materialises the rings of port `ep` only: every TX and RX ring with its own
    /// buffers (TX head 0 / tail N-1, RX empty).
    fn krings_create(
        &mut self,
        ep: usize,
        alloc: &mut MemAllocator,
        mem: SharedMem,
    ) -> Result<(), NetifError> {
        if !self.ports.get(ep).is_some_and(|p| p.in_use) {
            return Err(no_port("VALE port slot"));
        }
        if self.eps[ep].has_rings() {
            return Ok(());
        }
        let geom = BufGeom::of(alloc);
        let fresh_block = self.bdg.is_none();
        self.alloc_block(alloc, mem)?;
        if let Err(e) = self.eps[ep].create_rings(alloc, mem) {
            if fresh_block {
                self.free_block(alloc, mem);
            }
            return Err(e);
        }
        let bdg = self.bdg.unwrap_or(0);
        let e = &self.eps[ep];
        for k in &e.tx {
            if let Some(off) = k.ring_off {
                KState::new(mem, off).init(KIND_VALE, k, ep as u32, bdg)?;
            }
        }
        for k in &e.rx {
            if let Some(off) = k.ring_off {
                KState::new(mem, off).init(KIND_VALE, k, 0, bdg)?;
            }
        }
        self.ports[ep].backlog.iter_mut().for_each(|b| {
            b.clear();
        });
        self.geom = Some(geom);
        self.publish_port(ep, mem);
        Ok(())
    }

    /// Frees the rings and buffers of every port; ephemeral ports also lose their slot.
    fn krings_delete(&mut self, alloc: &mut MemAllocator, mem: SharedMem, keep: &KeepSet) {
        for ep in 0..self.eps.len() {
            self.free_rings(ep, alloc, mem, keep);
            if self.ports[ep].in_use && !self.ports[ep].persistent && self.eps[ep].users == 0 {
                self.free_slot(ep);
            }
        }
    }

    /// The last user of port `ep` went away: free its rings and buffers, and its slot
    /// unless the port is persistent.
    fn endpoint_released(
        &mut self,
        ep: usize,
        alloc: &mut MemAllocator,
        mem: SharedMem,
        keep: &KeepSet,
    ) {
        if !self.ports.get(ep).is_some_and(|p| p.in_use) {
            return;
        }
        self.free_rings(ep, alloc, mem, keep);
        if !self.ports[ep].persistent {
            self.free_slot(ep);
        }
    }

    fn txsync(
        &mut self,
        ep: usize,
        ring: usize,
        head: u32,
        mem: SharedMem,
    ) -> Result<Wake, NetifError> {
        let geom = self
            .geom
            .ok_or_else(|| NetifError::Inval("VALE switch has no rings".into()))?;
        let bdg = self
            .bdg
            .ok_or_else(|| NetifError::Inval("VALE switch has no block".into()))?;
        let mut t = self
            .eps
            .get(ep)
            .and_then(|e| e.tx.get(ring))
            .cloned()
            .ok_or_else(|| NetifError::NoPort(format!("VALE port {ep} TX ring {ring}")))?;
        let tv = view(mem, &t)?;
        let tks = KState::new(mem, tv.offset());
        let sender = forward::Sender {
            mem,
            geom,
            bdg: Bdg::new(mem, bdg),
            me: ep,
            hdr_len: self.ports[ep].hdr_len as usize,
            owner: BUSY_DAEMON,
            defer_when_full: false,
        };
        let mut ports = DaemonPorts {
            eps: &self.eps,
            ports: &mut self.ports,
        };
        let out = forward::forward(&sender, &mut t, &tv, &tks, head, &mut ports)?;
        let k = &mut self.eps[ep].tx[ring];
        (k.hwcur, k.hwtail) = (t.hwcur, t.hwtail);
        Ok(out.wake)
    }

    /// Releases `[hwcur, head)`, moves queued packets in, and publishes what senders
    /// have filled.
    fn rxsync(
        &mut self,
        ep: usize,
        ring: usize,
        head: u32,
        mem: SharedMem,
    ) -> Result<Wake, NetifError> {
        let k = self
            .eps
            .get_mut(ep)
            .and_then(|e| e.rx.get_mut(ring))
            .ok_or_else(|| no_port("VALE RX ring"))?;
        let ks = KState::new(mem, view(mem, k)?.offset());
        k.hwcur = head;
        if let Some(geom) = self.geom {
            self.drain_backlog(ep, ring, mem, &geom)?;
        }
        let k = &mut self.eps[ep].rx[ring];
        forward::rx_core(k, &ks, head)?;
        Ok(Wake::none())
    }

    /// VALE ring state lives in the rings' state blocks: clients forward and receive
    /// in their own process.
    fn shared_kstate(&self) -> bool {
        true
    }

    /// A switch with a persistent port lives on without users.
    fn in_use(&self) -> bool {
        self.eps.iter().any(|e| e.users > 0) || self.has_persistent()
    }

    /// The switch's port count, then this port's own counters.
    fn endpoint_stats(&self, ep: usize, mem: SharedMem) -> Vec<(&'static str, u64)> {
        let s = self.port_stats(ep, mem);
        vec![
            ("ports", self.ports_in_use() as u64),
            ("tx_packets", s.tx_packets),
            ("tx_bytes", s.tx_bytes),
            ("tx_drops", s.tx_drops),
            ("rx_packets", s.rx_packets),
            ("rx_bytes", s.rx_bytes),
            ("rx_drops", s.rx_drops),
            ("fill_locks_broken", s.fill_locks_broken),
            (
                "rx_queued",
                self.ports
                    .get(ep)
                    .map_or(0, |p| p.backlog.iter().map(|b| b.len() as u64).sum()),
            ),
            (
                "rx_queued_max",
                self.ports.get(ep).map_or(0, |p| {
                    p.backlog
                        .iter()
                        .map(|b| b.high_water() as u64)
                        .max()
                        .unwrap_or(0)
                }),
            ),
        ]
    }
}
