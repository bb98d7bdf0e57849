//! VALE software switches (netmap_vale.c / netmap_bdg.c; NETMAP-ABI.md §10.2, §10.3).
//!
//! One [`ValeSwitch`] adapter per switch (`valeX`); each port (`valeX:Y`) is one
//! [`Endpoint`] of it, so the sender's txsync can reach every destination's RX rings.
//! Endpoints live in a vector indexed by the port slot (at most [`MAX_PORT_SLOTS`]); a
//! free slot is an endpoint with an empty name and no rings, reused by the next port.
//!
//! Forwarding happens inside the sender's txsync ([`forward`]): every packet is copied
//! into the destination's own RX buffers, never swapped. The RX side only releases
//! slots and publishes what senders filled (`fill`, the per-RX-ring "filled up to"
//! index, like the pipes' `Link`).
//!
//! Virtio-net header lengths (PORT_HDR_SET) are stored per port and skipped when the
//! learning bridge reads the Ethernet header; frames are copied unchanged between ports
//! whose header lengths differ (the kernel's header conversion/segmentation is not
//! emulated).

mod backlog;
mod forward;
mod persistent;
pub mod switch;
#[cfg(test)]
mod tests;

pub use switch::{parse_vale_name, LearnTable};

use crate::adapter::{Adapter, Endpoint, KeepSet, PortCounts, PortKind, Wake};
use crate::NetifError;
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
    fn of(alloc: &MemAllocator) -> Self {
        Self {
            pool_offset: alloc.buf_pool.offset(),
            size: alloc.buf_size(),
            total: alloc.buf_pool.objtotal(),
        }
    }
    /// Region offset of buffer `idx`, `None` unless `2 <= idx < total`.
    pub fn offset(&self, idx: u32) -> Option<usize> {
        (2..self.total)
            .contains(&idx)
            .then(|| self.pool_offset + idx as usize * self.size as usize)
    }
}

/// Per-port counters.
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
    /// Per RX ring: the next slot senders fill; published as hwtail by rxsync.
    fill: Vec<u32>,
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
    table: LearnTable,
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
            table: LearnTable::new(),
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
            fill: vec![0; counts.rx_rings as usize],
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
    pub fn set_hdr_len(&mut self, ep: usize, len: u32) -> Result<(), NetifError> {
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

    /// Counters of one port (zero for a free slot).
    pub fn port_stats(&self, ep: usize) -> PortStats {
        self.ports.get(ep).map(|p| p.stats).unwrap_or_default()
    }

    /// The learning table (for diagnostics and tests).
    pub fn table(&self) -> &LearnTable {
        &self.table
    }

    fn free_slot(&mut self, ep: usize) {
        tracing::debug!(switch = %self.name, port = %self.ports[ep].port, slot = ep, "VALE port freed");
        self.eps[ep] = free_endpoint();
        self.ports[ep] = PortState::default();
        self.table.forget_port(ep as u16);
    }

    /// Gives back the rings and buffers of endpoint `ep`.
    fn free_rings(&mut self, ep: usize, alloc: &mut MemAllocator, mem: SharedMem, keep: &KeepSet) {
        let Some(e) = self.eps.get_mut(ep) else {
            return;
        };
        e.delete_rings(alloc, mem, keep);
        if let Some(p) = self.ports.get_mut(ep) {
            p.fill.iter_mut().for_each(|f| *f = 0);
            let dropped: usize = p.backlog.iter_mut().map(backlog::Backlog::clear).sum();
            p.stats.rx_drops += dropped as u64;
        }
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
        self.eps[ep].create_rings(alloc, mem)?;
        self.ports[ep].fill.iter_mut().for_each(|f| *f = 0);
        self.ports[ep].backlog.iter_mut().for_each(|b| {
            b.clear();
        });
        self.geom = Some(geom);
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
        forward::txsync(self, ep, ring, head, mem, geom)
    }

    /// Releases `[hwcur, head)` and publishes what senders have filled.
    fn rxsync(
        &mut self,
        ep: usize,
        ring: usize,
        head: u32,
        mem: SharedMem,
    ) -> Result<Wake, NetifError> {
        if self.ports.get(ep).and_then(|p| p.fill.get(ring)).is_none() {
            return Err(no_port("VALE RX ring"));
        }
        self.eps[ep].rx[ring].hwcur = head;
        if let Some(geom) = self.geom {
            forward::drain_backlog(self, ep, ring, mem, &geom)?;
        }
        let fill = self.ports[ep].fill[ring];
        self.eps[ep].rx[ring].hwtail = fill;
        Ok(Wake::none())
    }

    /// A switch with a persistent port lives on without users.
    fn in_use(&self) -> bool {
        self.eps.iter().any(|e| e.users > 0) || self.has_persistent()
    }

    /// The switch's port count, then this port's own counters.
    fn endpoint_stats(&self, ep: usize) -> Vec<(&'static str, u64)> {
        let s = self.port_stats(ep);
        vec![
            ("ports", self.ports_in_use() as u64),
            ("tx_packets", s.tx_packets),
            ("tx_bytes", s.tx_bytes),
            ("tx_drops", s.tx_drops),
            ("rx_packets", s.rx_packets),
            ("rx_bytes", s.rx_bytes),
            ("rx_drops", s.rx_drops),
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

    /// Totals over all ports ([`ValeSwitch::port_stats`] has them per port).
    fn stats(&self) -> Vec<(&'static str, u64)> {
        let mut t = PortStats::default();
        for p in self.ports.iter().filter(|p| p.in_use) {
            let s = p.stats;
            t.tx_packets += s.tx_packets;
            t.tx_bytes += s.tx_bytes;
            t.tx_drops += s.tx_drops;
            t.rx_packets += s.rx_packets;
            t.rx_bytes += s.rx_bytes;
            t.rx_drops += s.rx_drops;
        }
        vec![
            ("ports", self.ports_in_use() as u64),
            ("tx_packets", t.tx_packets),
            ("tx_bytes", t.tx_bytes),
            ("tx_drops", t.tx_drops),
            ("rx_packets", t.rx_packets),
            ("rx_bytes", t.rx_bytes),
            ("rx_drops", t.rx_drops),
        ]
    }
}
