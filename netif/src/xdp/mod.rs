//! Host interfaces reached through AF_XDP (`netmap:eth0` with `--nic-backend xdp`,
//! or `auto` where it works): netmap's native-adapter semantics without a netmap
//! driver.
//!
//! One port has one endpoint named after the interface, laid out as the AF_PACKET
//! port's (hardware rings `0..T`/`0..R`, one host ring each way after them), but:
//!
//! * **hardware ring i is queue i** of the interface: one AF_XDP socket per queue
//!   ([`queue::Queue`]), bound to it, so ONE_NIC ring i sees exactly what the NIC
//!   steers to queue i. Ring counts are the queue counts (fewer if asked).
//! * **the UMEM is the netmap buffer pool**: RX frames arrive in pool buffers and are
//!   exchanged into the slots, TX frames leave from the slots' own buffers; no copy
//!   by the daemon (zero-copy drivers do no copy at all; copy-mode drivers copy once
//!   in the kernel, as AF_PACKET does).
//! * **frames are taken from the stack**: libxdp's program redirects every frame of a
//!   bound queue to its socket, so while the port is registered the host stack does
//!   not see what the NIC receives, as with a NIC in netmap mode; closing the port
//!   deletes the sockets and the program, and the stack receives again.
//! * **host RX ring**: frames the host stack transmits through the interface, taken
//!   as the AF_PACKET port takes them (a packet socket on outgoing frames); the stack
//!   still transmits them too, since nothing in Linux lets a program take them away.
//! * **host TX ring**: frames written there are completed and dropped, counted in
//!   `host_tx_drops`: Linux offers no general way to put a frame into the stack's
//!   receive path of an interface from user space (a tap would be another interface).
//!
//! Errors (link down, interface deleted) are reported as the AF_PACKET port reports
//! them; `krings_delete` returns every buffer, the kernel's included.

pub mod client;
pub mod held;
pub mod libxdp;
pub mod queue;

use crate::adapter::{view, Adapter, Endpoint, KeepSet, PortKind, Taken, Wake};
use crate::af_packet::link::{sys_err, Link};
use crate::af_packet::rx::HostRx;
use crate::af_packet::socket::getsockopt;
use crate::af_packet::{ifinfo, nic_endpoint, IfInfo, NicConfig, NicCounters, Stats, TX_MARK};
use crate::kring::{Dir, Kring};
use crate::kstate::KState;
use crate::rx_client::ClientReaders;
use crate::vale::BufGeom;
use crate::NetifError;
use libxdp::SOL_XDP;
use netmap_pool::{MemAllocator, SharedMem};
use queue::{Mode, Queue};
use std::os::fd::AsRawFd;

/// Everything that exists while the rings do.
#[derive(Debug)]
struct Rings {
    queues: Vec<Queue>,
    host_rx: HostRx,
    geom: BufGeom,
}

/// A host interface as a netmap port over AF_XDP.
#[derive(Debug)]
pub struct XdpPort {
    eps: [Endpoint; 1],
    info: IfInfo,
    mode: Mode,
    rings: Option<Rings>,
    stats: Stats,
    /// Kernel drop counts of sockets already closed.
    closed_drops: u64,
    link: Link,
    /// The RX rings clients read themselves ([`crate::rx_client`]).
    readers: ClientReaders,
}

/// `struct xdp_statistics` (linux/if_xdp.h), the counters we read.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct XdpStatistics {
    rx_dropped: u64,
    rx_invalid_descs: u64,
    tx_invalid_descs: u64,
    rx_ring_full: u64,
    rx_fill_ring_empty_descs: u64,
    tx_ring_empty_descs: u64,
}

const XDP_STATISTICS: libc::c_int = 7;

/// Frames the kernel dropped on a socket's way in (ring full, no fill buffer, ...).
fn kernel_drops(fd: libc::c_int) -> u64 {
    getsockopt::<XdpStatistics>(fd, SOL_XDP, XDP_STATISTICS)
        .map_or(0, |s| s.rx_dropped + s.rx_ring_full)
}

impl XdpPort {
    /// Looks up the interface and libxdp; no socket yet. `copy_only` refuses
    /// zero-copy even where the driver offers it.
    pub fn open(
        ifname: &str,
        cfg: &NicConfig,
        max_slots: u32,
        copy_only: bool,
    ) -> Result<Self, NetifError> {
        let info = ifinfo::read(ifname)
            .ok_or_else(|| NetifError::NoPort(format!("no interface {ifname:?}")))?;
        libxdp::api().map_err(|e| {
            NetifError::NotSupported(format!("libxdp ({}) cannot be loaded: {e}", libxdp::LIBXDP))
        })?;
        let queues = info.rx_queues.min(info.tx_queues).max(1);
        let rings = |req: u32| if req == 0 { queues } else { req }.clamp(1, queues);
        let ep = nic_endpoint(
            ifname,
            cfg,
            rings(cfg.tx_rings),
            rings(cfg.rx_rings),
            max_slots,
        )?;
        let counts = ep.counts;
        tracing::info!(ifname, ifindex = info.ifindex, ?counts, "xdp port opened");
        Ok(Self {
            eps: [ep],
            info,
            mode: if copy_only { Mode::Copy } else { Mode::Auto },
            rings: None,
            stats: Stats::default(),
            closed_drops: 0,
            link: Link::default(),
            readers: ClientReaders::default(),
        })
    }

    pub fn ifname(&self) -> &str {
        &self.eps[0].name
    }

    fn host_tx_ring(&self) -> usize {
        self.eps[0].counts.tx_rings as usize
    }

    fn host_rx_ring(&self) -> usize {
        self.eps[0].counts.rx_rings as usize
    }

    /// True once the sockets exist and every one runs zero-copy.
    pub fn zerocopy(&self) -> bool {
        self.rings
            .as_ref()
            .is_some_and(|r| !r.queues.is_empty() && r.queues.iter().all(|q| q.zerocopy))
    }

    pub fn counters(&self) -> NicCounters {
        let mut c = self.stats;
        c.rx_drops += self.closed_drops;
        if let Some(r) = &self.rings {
            c.rx_drops += r.queues.iter().map(|q| kernel_drops(q.fd())).sum::<u64>();
        }
        c
    }

    /// Creates the sockets (one per queue) and stocks their fill rings with `stock`
    /// buffers each. On error everything made so far is undone by the caller dropping
    /// the queues and freeing `held` buffers.
    fn open_queues(
        &self,
        info: &IfInfo,
        mem: SharedMem,
        geom: BufGeom,
        taken: &mut Taken,
    ) -> Result<Vec<Queue>, NetifError> {
        let api = libxdp::api().map_err(NetifError::NotSupported)?;
        let c = self.eps[0].counts;
        let max_frame = info.mtu + 14 + 4;
        // Buffers each RX queue lends the kernel: a sixteenth of the pool shared by the
        // queues, at least a ring's worth, at most 8192 (80 ms at 100 kpps beyond what
        // the netmap ring holds; the kernel drops, and counts, what finds none).
        let stock = (geom.total / 16 / c.rx_rings.max(1)).clamp(c.rx_slots, 8192);
        let mut queues: Vec<Queue> = Vec::new();
        for q in 0..c.rx_rings.max(c.tx_rings) {
            let rx = if q < c.rx_rings { c.rx_slots } else { 0 };
            let tx = if q < c.tx_rings { c.tx_slots } else { 0 };
            let queue = Queue::open(
                api,
                self.ifname(),
                q,
                mem,
                geom,
                rx,
                tx,
                stock,
                max_frame,
                self.mode,
            )
            .map_err(|e| {
                let why = match e.raw_os_error() {
                    Some(libc::EBUSY | libc::EEXIST) => {
                        "another program holds the interface's XDP hook or this queue"
                    }
                    Some(libc::EOPNOTSUPP) => "the driver has no XDP support",
                    Some(libc::EPERM) => "not permitted (needs CAP_NET_ADMIN and CAP_BPF)",
                    _ => "AF_XDP socket creation failed",
                };
                tracing::warn!(ifname = self.ifname(), queue = q, %e, why, "xdp");
                sys_err("AF_XDP socket")(e)
            })?;
            queues.push(queue);
            if rx > 0 {
                let bufs = taken.bufs(stock as usize, mem)?;
                queues
                    .last_mut()
                    .ok_or_else(|| NetifError::Inval("no queue".into()))?
                    .stock_fill(&bufs)?;
            }
        }
        Ok(queues)
    }

    fn classify(&mut self, e: NetifError) -> NetifError {
        let (name, index) = (&self.eps[0].name, self.info.ifindex);
        self.link.classify(name, index, e)
    }

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
        let k = eps[0]
            .krings_mut(d)
            .get_mut(ring)
            .ok_or_else(|| NetifError::Inval(format!("no {d:?} ring {ring}")))?;
        Ok((rings, k, stats))
    }

    /// An idle ring's look at the link: an AF_XDP socket gets no error when its
    /// interface goes away, so the interface is looked at too. The socket's pending
    /// error is asked for (a system call) only here, not once per pass of a busy port.
    fn look_at_link(&mut self, fd: std::os::fd::RawFd) -> Result<Wake, NetifError> {
        let err = getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR);
        let (name, index) = (&self.eps[0].name, self.info.ifindex);
        self.link
            .check(name, index, err, true)
            .map(|()| Wake::none())
    }

    /// Whether a live client reads RX queue `ring` itself (see
    /// [`ClientReaders::reads`]). Called under the ring's busy flag.
    fn client_reads(
        &mut self,
        ring: usize,
        mem: SharedMem,
        rv: &crate::ringmem::RingView,
    ) -> Result<bool, NetifError> {
        let ks = KState::new(mem, rv.offset());
        self.readers.reads(ring, &ks, mem, &mut self.stats)
    }

    /// Closes the sockets and returns the buffers the kernel held.
    fn close_queues(&mut self, alloc: &mut MemAllocator, keep: &KeepSet) {
        if let Some(r) = self.rings.take() {
            self.closed_drops += r.queues.iter().map(|q| kernel_drops(q.fd())).sum::<u64>();
            let mut held = Vec::new();
            let mut maps = Vec::new();
            for q in r.queues {
                let (map, spare) = q.close();
                held.extend(spare);
                maps.push(map);
            }
            // A client that took a queue's socket to read it itself (see [`client`])
            // may still hold its duplicate, which then outlives ours: the socket left
            // the XDP program's map with ours, but a frame being delivered on another
            // CPU may still land in a fill buffer. One RCU grace period
            // (MEMBARRIER_CMD_GLOBAL waits for one, a few milliseconds) covers every
            // delivery begun before; the held maps are read after it. Whether a
            // client took the socket is not known here (it may have come and gone
            // between two looks), so every close waits.
            crate::rx_client::grace_period();
            for m in &maps {
                if let Ok(h) = held::Held::over(m, r.geom.total) {
                    held.extend(h.drain());
                }
            }
            drop(maps);
            for b in held {
                crate::adapter::buf_free_checked(alloc, keep, b);
            }
        }
    }
}

impl Adapter for XdpPort {
    fn kind(&self) -> PortKind {
        PortKind::Nic
    }

    fn endpoints(&self) -> &[Endpoint] {
        &self.eps
    }

    fn endpoints_mut(&mut self) -> &mut [Endpoint] {
        &mut self.eps
    }

    /// Creates the rings, one socket per queue (attaching libxdp's program), stocks
    /// each fill ring with as many fresh buffers as the RX ring has slots, and the
    /// host RX socket. All or nothing.
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
        let host_rx = HostRx::open(info.ifindex, TX_MARK).map_err(sys_err("host rx socket"))?;
        let mut taken = Taken::new(alloc);
        // On error, dropping `taken` returns the stock; the queues made so far close
        // (the kernel forgets its fill rings with them).
        let queues = self.open_queues(&info, mem, geom, &mut taken)?;
        taken.commit();
        let rings = Rings {
            queues,
            host_rx,
            geom,
        };
        self.rings = Some(rings);
        if let Err(e) = self.eps[0].create_rings(alloc, mem) {
            self.close_queues(alloc, &KeepSet::default());
            return Err(e);
        }
        let e = &self.eps[0];
        let bell = e.tx[0]
            .ring_off
            .map_or(0, |o| KState::new(mem, o).doorbell_offset());
        for k in e.tx.iter().chain(e.rx.iter()) {
            if let Some(off) = k.ring_off {
                KState::new(mem, off).init(0, k, 0, bell)?;
            }
        }
        // A client allowed to take our descriptors may read the RX queues itself.
        let nrx = e.counts.rx_rings as usize;
        if let Some(r) = &self.rings {
            for (k, q) in e.rx.iter().take(nrx).zip(&r.queues) {
                if let Some(off) = k.ring_off {
                    KState::new(mem, off).set_reader(q.handle())?;
                }
            }
        }
        self.readers.reset(nrx);
        let zc = self.zerocopy();
        tracing::info!(
            ifname = self.ifname(),
            queues = self.rings.as_ref().map_or(0, |r| r.queues.len()),
            zerocopy = zc,
            "xdp sockets bound: the interface's frames now go to netmap rings"
        );
        self.info = info;
        self.link = Link::default();
        Ok(())
    }

    fn krings_delete(&mut self, alloc: &mut MemAllocator, mem: SharedMem, keep: &KeepSet) {
        self.readers.fold_all(&self.eps[0].rx, mem, &mut self.stats);
        self.close_queues(alloc, keep);
        for off in self.eps[0].ring_offs() {
            if let Err(e) = KState::new(mem, off).clear() {
                tracing::error!(%e, "clearing a NIC ring's state block");
            }
        }
        self.eps[0].delete_rings(alloc, mem, keep);
    }

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
            crate::af_packet::tx::host_txsync(k, &rv, head, stats)
        } else {
            rings.queues[ring].txsync(k, &rv, head, stats)
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
        if ring > host {
            return Ok(Wake::none());
        }
        let geom = rings.geom;
        if ring < host && self.client_reads(ring, mem, &rv)? {
            // The client moves the frames; the daemon still watches the link.
            let fd = self
                .rings
                .as_ref()
                .and_then(|r| r.queues.get(ring))
                .map(Queue::fd);
            return fd.map_or(Ok(Wake::none()), |fd| self.look_at_link(fd));
        }
        let (rings, k, stats) = self.sync_parts(Dir::Rx, ring)?;
        let (res, fd) = if ring == host {
            let h = &mut rings.host_rx;
            (h.fill(k, &rv, mem, &geom, stats), h.sock.as_raw_fd())
        } else {
            let q = &mut rings.queues[ring];
            (q.rxsync(k, &rv, stats), q.fd())
        };
        match res {
            Ok(true) => Ok(Wake::none()),
            Ok(false) => self.look_at_link(fd),
            Err(e) => Err(self.classify(e)),
        }
    }

    fn take_events_changed(&mut self) -> bool {
        std::mem::take(&mut self.readers.events_changed)
    }

    fn tx_pending(&self) -> bool {
        self.rings
            .as_ref()
            .is_some_and(|r| r.queues.iter().any(|q| q.tx_pending()))
    }

    fn stats(&self) -> Vec<(&'static str, u64)> {
        self.stats_at(None)
    }

    /// With the frames in-client readers counted since the daemon last looked.
    fn endpoint_stats(&self, _ep: usize, mem: SharedMem) -> Vec<(&'static str, u64)> {
        self.stats_at(Some(mem))
    }

    fn owned_buffers(&self, f: &mut dyn FnMut(u32)) {
        if let Some(r) = &self.rings {
            r.queues.iter().for_each(|q| q.for_each_owned(f));
        }
    }

    /// The sockets wake RX pollers (frames received) and TX pollers (the kernel's
    /// write-space wake-up after completions); the host RX socket wakes RX pollers.
    fn event_fds(&self) -> Vec<(std::os::fd::RawFd, usize, Dir)> {
        let Some(r) = &self.rings else {
            return Vec::new();
        };
        // A queue a client reads itself wakes that client, not us.
        r.queues
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.readers.reading(*i))
            .map(|(_, q)| (q.fd(), 0, Dir::Rx))
            .chain([(r.host_rx.sock.as_raw_fd(), 0, Dir::Rx)])
            .collect()
    }
}

impl XdpPort {
    fn stats_at(&self, mem: Option<SharedMem>) -> Vec<(&'static str, u64)> {
        let mut c = self.counters();
        let in_client = match mem {
            Some(mem) => self.readers.add_pending(&self.eps[0].rx, mem, &mut c),
            None => self.readers.in_client,
        };
        let mut v = c.keyed();
        v.extend([
            ("xdp", 1),
            ("xdp_zerocopy", u64::from(self.zerocopy())),
            ("rx_in_client", in_client),
        ]);
        v
    }
}
