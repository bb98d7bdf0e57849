//! Host interfaces reached through AF_PACKET (`netmap:eth0`, NETMAP-ABI.md §10.1): the
//! daemon's counterpart of netmap's generic adapter (`netmap_generic.c`).
//!
//! One port has one endpoint named after the interface, with
//!
//! * hardware TX rings `0..T` and RX rings `0..R` (T/R = the device's queue counts
//!   unless configured), and
//! * one host TX ring at index `T` and one host RX ring at index `R`: the endpoint's
//!   `tx`/`rx` vectors hold `T + 1` / `R + 1` krings while `counts.tx_rings/rx_rings`
//!   say `T`/`R` and `host_tx_rings = host_rx_rings = 1`.
//!
//! Data paths (sockets exist between `krings_create` and `krings_delete`):
//!
//! * **hardware RX ring i** — [`rx::HwRx`]: an AF_PACKET socket with a TPACKET_V3 ring,
//!   bound to the interface with PACKET_IGNORE_OUTGOING; with `R > 1` all of them form
//!   one PACKET_FANOUT group (QM if the device has several RX queues, else HASH).
//!   rxsync copies retired blocks' frames into netmap buffers.
//! * **hardware TX ring i** — [`tx::HwTx`]: a socket with a TPACKET_V2 TX ring and
//!   PACKET_QDISC_BYPASS; txsync copies packets into frames and asks the ring's
//!   kicker thread for the `sendto` that transmits them (so transmission overlaps the
//!   next batch); the kicker signals an eventfd after each kick and on later
//!   completions.
//! * **host RX ring (index R)** — [`rx::HostRx`]: a socket whose BPF filter passes
//!   only frames the host stack sends through the interface (PACKET_OUTGOING, and not
//!   carrying [`TX_MARK`], the SO_MARK of this port's own TX sockets).
//! * **host TX ring (index T)** — [`tx::host_txsync`]: completed at once and dropped;
//!   AF_PACKET cannot inject into the host stack (see there why not transmit instead).
//!
//! The host stack stays attached: AF_PACKET taps the interface, it does not take it
//! over. Readiness comes from the RX sockets and the TX kickers' eventfds
//! ([`Adapter::event_fds`]), which the control
//! plane watches and turns into wake-ups; the syncs themselves never block.
//!
//! Link down or interface deleted: the failing system call (or, for an idle RX ring,
//! the socket error the kernel posts) makes the sync return an error — POLLERR for the
//! client — and `krings_delete` still returns every ring and buffer to the pool.

pub mod client;
pub mod ifinfo;
pub(crate) mod link;
pub mod rx;
pub(crate) mod socket;
#[cfg(test)]
mod tests;
pub mod tx;

use crate::adapter::{view, Adapter, Endpoint, KeepSet, PortCounts, PortKind, Wake};
use crate::kring::{Dir, Kring};
use crate::kstate::{KState, ReaderHandle, ReaderSocket};
use crate::rx_client::ClientReaders;
use crate::NetifError;
pub use ifinfo::IfInfo;
use link::{sys_err, Link};
use netmap_pool::{MemAllocator, SharedMem};
use rx::{HostRx, HwRx};
use socket::PacketSocket;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use tx::HwTx;

/// Slots per ring when the request says 0 (the generic adapter's default).
pub const DEFAULT_SLOTS: u32 = 1024;
/// Most hardware rings per direction.
pub const MAX_RINGS: u32 = 64;
/// SO_MARK of the port's TX sockets ("nmap"), so the host RX ring can tell the
/// client's transmissions from the host stack's.
pub const TX_MARK: u32 = 0x6e6d_6170;

/// Port configuration from the REGISTER request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NicConfig {
    /// Slots per ring; 0 = [`DEFAULT_SLOTS`].
    pub slots: u32,
    /// Hardware TX rings; 0 = the device's TX queue count.
    pub tx_rings: u32,
    /// Hardware RX rings; 0 = the device's RX queue count.
    pub rx_rings: u32,
    /// Host TX rings; 0 = 1. Only the first one has a meaning (see the module doc):
    /// netmap lets an application ask for more on an idle NIC, so the extra ones exist
    /// and behave like the first (frames written there are dropped).
    pub host_tx_rings: u32,
    /// Host RX rings; 0 = 1. Frames the stack sends arrive in the first; the others
    /// exist but never receive (AF_PACKET gives one outgoing stream).
    pub host_rx_rings: u32,
    /// The backend [`crate::nic::NicPort`] opens (AF_PACKET ports ignore it).
    pub backend: crate::nic::Backend,
}

/// Traffic counters of a port (cumulative over its lifetime).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NicCounters {
    /// Frames delivered into hardware RX rings.
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Frames lost on receive: dropped by the kernel because the TPACKET ring was full
    /// (PACKET_STATISTICS) or too large for the netmap ring.
    pub rx_drops: u64,
    /// Frames handed to the kernel for transmission.
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Packets not sent as written: invalid buffer index, unterminated fragment chain,
    /// truncated to the interface's limit, rejected by the kernel, or written into the
    /// host TX ring.
    pub tx_errors: u64,
    /// Frames delivered into the host RX ring.
    pub host_rx_packets: u64,
    /// Host-stack frames lost (too large, or dropped by the kernel).
    pub host_rx_drops: u64,
    /// Packets written into the host TX ring (always dropped, also in `tx_errors`).
    pub host_tx_drops: u64,
}

impl NicCounters {
    /// The counters as `netmapd status` shows them, both backends alike.
    pub fn keyed(&self) -> Vec<(&'static str, u64)> {
        let c = self;
        vec![
            ("rx_packets", c.rx_packets),
            ("rx_bytes", c.rx_bytes),
            ("rx_drops", c.rx_drops),
            ("tx_packets", c.tx_packets),
            ("tx_bytes", c.tx_bytes),
            ("tx_errors", c.tx_errors),
            ("host_rx_packets", c.host_rx_packets),
            ("host_rx_drops", c.host_rx_drops),
            ("host_tx_drops", c.host_tx_drops),
        ]
    }
}

/// The counters the syncs update.
pub(crate) type Stats = NicCounters;

/// Geometry of the buffer pool, captured at `krings_create` (syncs get no allocator):
/// the same type VALE and the in-process syncs use.
pub use crate::vale::BufGeom;

/// Everything that exists while the rings do.
#[derive(Debug)]
struct Rings {
    hw_rx: Vec<HwRx>,
    hw_tx: Vec<HwTx>,
    host_rx: HostRx,
    geom: BufGeom,
    scratch: Vec<u8>,
}

/// A host interface as a netmap port.
#[derive(Debug)]
pub struct AfPacketPort {
    eps: [Endpoint; 1],
    info: IfInfo,
    rings: Option<Rings>,
    stats: Stats,
    /// Kernel RX drops read from PACKET_STATISTICS (reading resets the kernel's count,
    /// and `counters` takes `&self`).
    kernel_drops: AtomicU64,
    host_kernel_drops: AtomicU64,
    link: Link,
    /// The hardware RX rings clients read themselves ([`crate::rx_client`]).
    readers: ClientReaders,
}

/// True if `ifname` exists in the daemon's network namespace.
pub fn interface_exists(ifname: &str) -> bool {
    ifinfo::ifindex(ifname).is_some()
}

/// The one endpoint of a NIC port (either backend): `tx_rings`/`rx_rings` hardware
/// rings of the configured slots, then the host rings asked for, after them in each
/// direction (NETMAP-ABI.md §10.1).
pub(crate) fn nic_endpoint(
    ifname: &str,
    cfg: &NicConfig,
    tx_rings: u32,
    rx_rings: u32,
    max_slots: u32,
) -> Result<Endpoint, NetifError> {
    if max_slots < 2 {
        return Err(NetifError::Inval(format!(
            "ring objects hold only {max_slots} slots"
        )));
    }
    let slots = if cfg.slots == 0 {
        DEFAULT_SLOTS
    } else {
        cfg.slots
    }
    .clamp(2, max_slots);
    let counts = PortCounts {
        tx_rings,
        rx_rings,
        tx_slots: slots,
        rx_slots: slots,
        host_tx_rings: cfg.host_tx_rings.clamp(1, MAX_RINGS),
        host_rx_rings: cfg.host_rx_rings.clamp(1, MAX_RINGS),
    };
    let mut ep = Endpoint::new(ifname.to_owned(), counts);
    for j in 0..counts.host_tx_rings {
        ep.tx.push(Kring::new(Dir::Tx, counts.tx_rings + j, slots));
    }
    for j in 0..counts.host_rx_rings {
        ep.rx.push(Kring::new(Dir::Rx, counts.rx_rings + j, slots));
    }
    Ok(ep)
}

impl AfPacketPort {
    /// Looks up the interface (NetifError::NoPort if it does not exist), reads its
    /// facts and prepares the endpoint. No sockets yet.
    pub fn open(ifname: &str, cfg: &NicConfig, max_slots: u32) -> Result<Self, NetifError> {
        let info = ifinfo::read(ifname)
            .ok_or_else(|| NetifError::NoPort(format!("no interface {ifname:?}")))?;
        let rings = |req: u32, queues: u32| if req == 0 { queues } else { req }.clamp(1, MAX_RINGS);
        let ep = nic_endpoint(
            ifname,
            cfg,
            rings(cfg.tx_rings, info.tx_queues),
            rings(cfg.rx_rings, info.rx_queues),
            max_slots,
        )?;
        let counts = ep.counts;
        tracing::info!(
            ifname,
            ifindex = info.ifindex,
            ?counts,
            "af_packet port opened"
        );
        Ok(Self {
            eps: [ep],
            info,
            rings: None,
            stats: Stats::default(),
            kernel_drops: AtomicU64::new(0),
            host_kernel_drops: AtomicU64::new(0),
            link: Link::default(),
            readers: ClientReaders::default(),
        })
    }

    pub fn ifname(&self) -> &str {
        &self.eps[0].name
    }

    /// The interface facts read at open (MTU and index refreshed at `krings_create`).
    pub fn info(&self) -> &IfInfo {
        &self.info
    }

    /// Current MTU (the last known one if the interface cannot be queried).
    pub fn mtu(&self) -> u32 {
        ifinfo::mtu(self.ifname(), self.info.ifindex).unwrap_or(self.info.mtu)
    }

    /// Index of the host TX ring in the endpoint's `tx` vector (= hardware TX rings).
    pub fn host_tx_ring(&self) -> usize {
        self.eps[0].counts.tx_rings as usize
    }

    /// Index of the host RX ring in the endpoint's `rx` vector (= hardware RX rings).
    pub fn host_rx_ring(&self) -> usize {
        self.eps[0].counts.rx_rings as usize
    }

    pub fn counters(&self) -> NicCounters {
        if let Some(r) = &self.rings {
            self.harvest_kernel_drops(r);
        }
        let mut c = self.stats;
        c.rx_drops += self.kernel_drops.load(Ordering::Relaxed);
        c.host_rx_drops += self.host_kernel_drops.load(Ordering::Relaxed);
        c
    }

    fn harvest_kernel_drops(&self, r: &Rings) {
        for s in r.hw_rx.iter().map(|h| &h.sock) {
            if let Ok((_, d)) = s.take_stats() {
                self.kernel_drops.fetch_add(u64::from(d), Ordering::Relaxed);
            }
        }
        if let Ok((_, d)) = r.host_rx.sock.take_stats() {
            self.host_kernel_drops
                .fetch_add(u64::from(d), Ordering::Relaxed);
        }
    }

    /// Creates every socket of the port. Dropping the result closes them.
    fn open_sockets(&self, info: &IfInfo, geom: BufGeom) -> Result<Rings, NetifError> {
        let c = self.eps[0].counts;
        let mut hw_rx = Vec::with_capacity(c.rx_rings as usize);
        for _ in 0..c.rx_rings {
            hw_rx.push(HwRx::open(info.ifindex).map_err(sys_err("rx socket"))?);
        }
        if hw_rx.len() > 1 {
            join_fanout(&hw_rx, info)?;
        }
        let mut hw_tx = Vec::with_capacity(c.tx_rings as usize);
        for _ in 0..c.tx_rings {
            hw_tx.push(
                HwTx::open(info.ifindex, info.mtu, c.tx_slots, TX_MARK)
                    .map_err(sys_err("tx socket"))?,
            );
        }
        let host_rx = HostRx::open(info.ifindex, TX_MARK).map_err(sys_err("host rx socket"))?;
        Ok(Rings {
            hw_rx,
            hw_tx,
            host_rx,
            geom,
            scratch: vec![0; geom.size as usize],
        })
    }

    fn classify(&mut self, e: NetifError) -> NetifError {
        let (name, index) = (&self.eps[0].name, self.info.ifindex);
        self.link.classify(name, index, e)
    }

    /// What a sync of ring `ring` of direction `d` works on: the sockets, the kring and
    /// the counters. Fails fast once the interface is gone.
    fn sync_parts(
        &mut self,
        d: Dir,
        ring: usize,
    ) -> Result<(&mut Rings, &mut Kring, &mut Stats), NetifError> {
        if self.link.gone {
            return Err(Link::gone_err(self.ifname()));
        }
        let Self {
            eps, rings, stats, ..
        } = self;
        let rings = rings
            .as_mut()
            .ok_or_else(|| NetifError::Inval("port has no rings".into()))?;
        let k = eps[0].krings_mut(d).get_mut(ring).ok_or_else(|| {
            let name = match d {
                Dir::Tx => "TX",
                Dir::Rx => "RX",
            };
            NetifError::Inval(format!("no {name} ring {ring}"))
        })?;
        Ok((rings, k, stats))
    }
}

/// Puts every hardware RX socket into one fanout group: QM (by RX queue) when the
/// device has several queues, else HASH; outgoing frames ignored (the group's hook,
/// not the sockets', decides that). The kernel picks a unique group id.
fn join_fanout(hw_rx: &[HwRx], info: &IfInfo) -> Result<(), NetifError> {
    let mode = if info.rx_queues > 1 {
        libc::PACKET_FANOUT_QM
    } else {
        libc::PACKET_FANOUT_HASH
    } | libc::PACKET_FANOUT_FLAG_IGNORE_OUTGOING;
    let mode = mode as u16;
    let first = &hw_rx[0].sock;
    first
        .join_fanout(0, mode | libc::PACKET_FANOUT_FLAG_UNIQUEID as u16)
        .map_err(sys_err("PACKET_FANOUT"))?;
    let id = first.fanout_id().map_err(sys_err("PACKET_FANOUT id"))?;
    for h in &hw_rx[1..] {
        h.sock
            .join_fanout(id, mode)
            .map_err(sys_err("PACKET_FANOUT join"))?;
    }
    Ok(())
}

impl Adapter for AfPacketPort {
    fn kind(&self) -> PortKind {
        PortKind::Nic
    }

    fn endpoints(&self) -> &[Endpoint] {
        &self.eps
    }

    fn endpoints_mut(&mut self) -> &mut [Endpoint] {
        &mut self.eps
    }

    /// Opens the sockets, then takes one ring object and `num_slots` fresh buffers per
    /// ring (RX rings first, host rings last in each direction). All or nothing.
    fn krings_create(
        &mut self,
        _ep: usize,
        alloc: &mut MemAllocator,
        mem: SharedMem,
    ) -> Result<(), NetifError> {
        if self.rings.is_some() && self.eps[0].has_rings() {
            return Ok(());
        }
        let info = ifinfo::read(self.ifname())
            .ok_or_else(|| NetifError::NoPort(format!("no interface {}", self.ifname())))?;
        let geom = BufGeom::of(alloc);
        let rings = self.open_sockets(&info, geom)?;
        self.eps[0].create_rings(alloc, mem)?;
        // Shared state for every ring; clients sync the hardware rings in process once
        // the control plane runs the port's worker thread (it switches their kind to
        // KIND_NIC then). Every ring names TX ring 0's doorbell.
        let e = &self.eps[0];
        let bell = e.tx[0]
            .ring_off
            .map_or(0, |o| KState::new(mem, o).doorbell_offset());
        for k in e.tx.iter().chain(e.rx.iter()) {
            if let Some(off) = k.ring_off {
                KState::new(mem, off).init(0, k, 0, bell)?;
            }
        }
        // A client allowed to take our descriptors may read the hardware RX rings
        // itself (see [`client`]).
        let pid = std::process::id();
        for (k, h) in e.rx.iter().zip(&rings.hw_rx) {
            if let Some(off) = k.ring_off {
                KState::new(mem, off).set_reader(Some(ReaderHandle {
                    pid,
                    sock_fd: h.sock.as_raw_fd(),
                    socket: ReaderSocket::Tpacket,
                }))?;
            }
        }
        self.readers.reset(rings.hw_rx.len());
        self.info = info;
        self.rings = Some(rings);
        self.link = Link::default();
        Ok(())
    }

    /// Closes the sockets (frames still queued in the kernel are abandoned) and frees
    /// every buffer found in a slot and every ring object.
    fn krings_delete(&mut self, alloc: &mut MemAllocator, mem: SharedMem, keep: &KeepSet) {
        self.readers.fold_all(&self.eps[0].rx, mem, &mut self.stats);
        if let Some(r) = self.rings.take() {
            self.harvest_kernel_drops(&r);
            drop(r);
        }
        for off in self.eps[0].ring_offs() {
            if let Err(e) = KState::new(mem, off).clear() {
                tracing::error!(%e, "clearing a NIC ring's state block");
            }
        }
        self.eps[0].delete_rings(alloc, mem, keep);
    }

    /// NIC ring state lives in the rings' state blocks: the port's worker thread and
    /// clients syncing in process share it (see `kstate::KIND_NIC`).
    fn shared_kstate(&self) -> bool {
        true
    }

    fn txsync(
        &mut self,
        _ep: usize,
        ring: usize,
        head: u32,
        mem: SharedMem,
    ) -> Result<Wake, NetifError> {
        let host = self.host_tx_ring();
        let (rings, k, stats) = self.sync_parts(Dir::Tx, ring)?;
        let rv = view(mem, k)?;
        let res = if ring >= host {
            tx::host_txsync(k, &rv, head, stats)
        } else {
            rings.hw_tx[ring].txsync(k, &rv, mem, head, &rings.geom, stats)
        };
        match res {
            Ok(()) => Ok(Wake::none()),
            Err(e) => Err(self.classify(e)),
        }
    }

    fn rxsync(
        &mut self,
        _ep: usize,
        ring: usize,
        head: u32,
        mem: SharedMem,
    ) -> Result<Wake, NetifError> {
        let host = self.host_rx_ring();
        let (rings, k, _) = self.sync_parts(Dir::Rx, ring)?;
        k.hwcur = head;
        let rv = view(mem, k)?;
        let geom = rings.geom;
        if ring > host {
            // An extra host RX ring: it only takes back released slots.
            return Ok(Wake::none());
        }
        if ring < host {
            let ks = KState::new(mem, rv.offset());
            if self.readers.reads(ring, &ks, mem, &mut self.stats)? {
                // The client copies the frames; the daemon still watches the link.
                let err = self
                    .rings
                    .as_ref()
                    .map_or(Ok(0), |r| r.hw_rx[ring].sock.take_error());
                let (name, index) = (&self.eps[0].name, self.info.ifindex);
                return self
                    .link
                    .check(name, index, err, false)
                    .map(|()| Wake::none());
            }
        }
        let (rings, k, stats) = self.sync_parts(Dir::Rx, ring)?;
        let (res, sock) = if ring == host {
            let h = &mut rings.host_rx;
            (h.fill(k, &rv, mem, &geom, stats), &h.sock)
        } else {
            let h = &mut rings.hw_rx[ring];
            (
                h.fill(k, &rv, mem, &geom, &mut rings.scratch, stats),
                &h.sock,
            )
        };
        let sock_err = match res {
            Ok(true) => return Ok(Wake::none()),
            Ok(false) => sock.take_error(),
            Err(e) => return Err(self.classify(e)),
        };
        let (name, index) = (&self.eps[0].name, self.info.ifindex);
        self.link
            .check(name, index, sock_err, false)
            .map(|()| Wake::none())
    }

    fn stats(&self) -> Vec<(&'static str, u64)> {
        self.stats_at(None)
    }

    /// With the frames in-client readers counted since the daemon last looked.
    fn endpoint_stats(&self, _ep: usize, mem: SharedMem) -> Vec<(&'static str, u64)> {
        self.stats_at(Some(mem))
    }

    fn take_events_changed(&mut self) -> bool {
        std::mem::take(&mut self.readers.events_changed)
    }

    /// RX sockets (hardware and host) wake RX pollers, except those a client reads
    /// itself (they wake that client); the TX kickers' eventfds (signalled when a
    /// completion report is due) wake TX pollers. The TX sockets are not watched:
    /// they would wake the control plane for every frame.
    fn event_fds(&self) -> Vec<(std::os::fd::RawFd, usize, Dir)> {
        let Some(r) = &self.rings else {
            return Vec::new();
        };
        let rx = r
            .hw_rx
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.readers.reading(*i))
            .map(|(_, h)| &h.sock)
            .chain([&r.host_rx.sock]);
        let tx = r.hw_tx.iter().map(|h| (h.done_fd(), 0, Dir::Tx));
        rx.map(|s: &PacketSocket| (s.as_raw_fd(), 0, Dir::Rx))
            .chain(tx)
            .collect()
    }
}

impl AfPacketPort {
    fn stats_at(&self, mem: Option<SharedMem>) -> Vec<(&'static str, u64)> {
        let mut c = self.counters();
        let in_client = match mem {
            Some(mem) => self.readers.add_pending(&self.eps[0].rx, mem, &mut c),
            None => self.readers.in_client,
        };
        let mut v = c.keyed();
        v.push(("rx_in_client", in_client));
        v
    }
}
