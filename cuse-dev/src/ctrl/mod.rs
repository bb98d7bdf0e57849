//! The netmap control plane, independent of the transport.
//!
//! One [`ControlPlane`] owns the shared region, the allocator (netmap's global
//! allocator, mem_id 1) and every port. A front end calls [`ControlPlane::open`] for
//! each open of `/dev/netmap`, [`ControlPlane::ioctl`] and [`ControlPlane::poll`] for
//! requests on it and [`ControlPlane::release`] on its last close.
//!
//! Locking: one mutex around `State`. Every request holds it for a bounded amount of
//! work (no request ever waits for another), and poll notifications are fired after it
//! is released.

mod info;
mod kloop;
mod legacy;
mod monitor;
mod nicworker;
mod nmreq;
mod poll;
mod register;
pub mod status;
pub(crate) mod sys;
mod usermem;
mod vale;

pub use nmreq::{nmreq_user_regions, UserRegion};
pub use usermem::{NoMemory, ProcessMemory, UserMemory};

use netmap_abi as abi;
use netmap_netif::{Adapter, Dir, KeepSet, Wake};
use netmap_pool::{Backing, MemAllocator, PoolConfig, Region, SharedMem};
use parking_lot::{Mutex, MutexGuard};
use std::collections::HashMap;
use std::ops::Range;

/// An errno value returned to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", std::io::Error::from_raw_os_error(self.0))
    }
}

impl From<netmap_netif::NetifError> for Errno {
    fn from(e: netmap_netif::NetifError) -> Self {
        Errno(e.errno())
    }
}

impl From<netmap_pool::OutOfBounds> for Errno {
    fn from(_: netmap_pool::OutOfBounds) -> Self {
        Errno(libc::EFAULT)
    }
}

/// Errors building a control plane.
#[derive(Debug, thiserror::Error)]
pub enum CtrlError {
    #[error("pool configuration: {0}")]
    Pool(#[from] netmap_pool::PoolError),
    #[error("shared region: {0}")]
    Region(#[from] netmap_pool::RegionError),
}

/// A one-shot wake-up of a poller that found its descriptor not ready.
pub trait PollWaker: Send {
    fn wake(self: Box<Self>);
}

/// Identifies one open of `/dev/netmap` (a FUSE file handle).
pub type FdId = u64;

/// What a registered descriptor is bound to.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub adapter: u64,
    pub ep: usize,
    pub tx: Range<usize>,
    pub rx: Range<usize>,
    pub flags: u64,
    pub nifp_off: usize,
    pub exclusive: bool,
    /// CSB mode (§5.5): rings are synced by a sync loop, not by ioctls or poll.
    pub csb: Option<kloop::Csb>,
}

impl Binding {
    pub fn rings(&self, d: Dir) -> Range<usize> {
        match d {
            Dir::Tx => self.tx.clone(),
            Dir::Rx => self.rx.clone(),
        }
    }
}

#[derive(Default)]
pub(crate) struct FdState {
    pub binding: Option<Binding>,
    pub waker: Option<Box<dyn PollWaker>>,
    pub kloop: kloop::KloopState,
}

pub(crate) struct AdapterSlot {
    pub ad: Box<dyn Adapter>,
    /// Descriptors of the port registered with the event loop.
    pub watched: Vec<std::os::fd::RawFd>,
    /// The `watched` descriptors are out of the epoll set while the port's worker
    /// polls the rings itself (see [`State::set_events_watched`]).
    pub events_paused: bool,
    /// Registry key so the port can be found by name again.
    pub key: PortKey,
    /// Descriptors bound to this adapter (for wake-ups).
    pub fds: Vec<FdId>,
    /// The data-path thread of a NIC port (clients sync its rings in process).
    pub nic_worker: Option<nicworker::NicWorker>,
}

/// How a port is found by name (ports without a key, e.g. null ports, are reachable
/// only through their descriptor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PortKey {
    None,
    /// `(parent, id)` of a pipe pair.
    Pipe(String, String),
    /// A host interface.
    Nic(String),
    /// A VALE switch.
    Vale(String),
}

/// Most VALE switches at once (netmap's NM_BRIDGES).
pub(crate) const MAX_SWITCHES: usize = 8;

pub(crate) struct State {
    pub alloc: MemAllocator,
    pub adapters: HashMap<u64, AdapterSlot>,
    /// parent name → (pipe id → adapter id)
    pub pipes: HashMap<String, HashMap<String, u64>>,
    /// interface name → adapter id
    pub nics: HashMap<String, u64>,
    /// VALE switches by slot (netmap's bridge index, reported by VALE_LIST).
    pub switches: [Option<(String, u64)>; MAX_SWITCHES],
    pub fds: HashMap<FdId, FdState>,
    /// Persistent VALE ports and NICs attached to switches.
    pub vale: vale::ValeState,
    /// Which monitor ports watch which port.
    pub monitors: monitor::Monitors,
    next_fd: FdId,
    next_adapter: u64,
}

impl State {
    pub fn add_adapter(&mut self, ad: Box<dyn Adapter>, key: PortKey) -> u64 {
        self.next_adapter += 1;
        let id = self.next_adapter;
        match &key {
            PortKey::Pipe(p, i) => {
                self.pipes
                    .entry(p.clone())
                    .or_default()
                    .insert(i.clone(), id);
            }
            PortKey::Nic(n) => {
                self.nics.insert(n.clone(), id);
            }
            PortKey::Vale(n) => {
                if let Some(slot) = self.switches.iter_mut().find(|s| s.is_none()) {
                    *slot = Some((n.clone(), id));
                }
            }
            PortKey::None => {}
        }
        self.adapters.insert(
            id,
            AdapterSlot {
                ad,
                watched: Vec::new(),
                events_paused: false,
                key,
                fds: Vec::new(),
                nic_worker: None,
            },
        );
        id
    }

    /// Destroys an adapter nobody uses any more, returning its memory to the pool.
    pub fn drop_adapter_if_unused(&mut self, id: u64, mem: SharedMem) {
        let unused = self.adapters.get(&id).is_some_and(|s| !s.ad.in_use());
        if !unused {
            return;
        }
        let keep = self.keep_set(mem, Some(id));
        self.monitors.adapter_gone(id);
        if let Some(mut slot) = self.adapters.remove(&id) {
            // Closing a port's sockets (krings_delete) also removes them from epoll.
            slot.watched.clear();
            if let Some(w) = slot.nic_worker.take() {
                // Wake it now rather than after its idle timeout, before its
                // doorbell's ring object goes back to the pool.
                let _ = netmap_netif::kstate::Doorbell::new(mem, w.doorbell).ring();
            }
            slot.ad.krings_delete(&mut self.alloc, mem, &keep);
            match slot.key {
                PortKey::Pipe(p, i) => {
                    if let Some(m) = self.pipes.get_mut(&p) {
                        m.remove(&i);
                        if m.is_empty() {
                            self.pipes.remove(&p);
                        }
                    }
                }
                PortKey::Nic(n) => {
                    self.nics.remove(&n);
                }
                PortKey::Vale(_) => {
                    for s in &mut self.switches {
                        if s.as_ref().is_some_and(|(_, a)| *a == id) {
                            *s = None;
                        }
                    }
                }
                PortKey::None => {}
            }
        }
    }

    /// Forgets a port created only to answer a request (or by a REGISTER that failed):
    /// a VALE port nobody uses leaves its switch, and an unused adapter goes away.
    pub fn forget_unused_port(&mut self, id: u64, ep: usize, mem: SharedMem) {
        if let Some(slot) = self.adapters.get_mut(&id) {
            let idle = slot.ad.endpoints().get(ep).is_some_and(|e| e.users == 0);
            if let (true, Some(sw)) = (idle, slot.ad.as_vale_mut()) {
                if let Err(e) = sw.remove_port(ep) {
                    tracing::debug!(%e, ep, "VALE port kept");
                }
            }
        }
        self.drop_adapter_if_unused(id, mem);
    }

    /// The adapter id of VALE switch `name`.
    pub fn switch_id(&self, name: &str) -> Option<u64> {
        self.switches
            .iter()
            .flatten()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
    }

    /// Every buffer index currently referenced by a live port's slots (except those of
    /// `skip`) or by a registered descriptor's extra-buffer list: what a teardown must
    /// not free, whatever the dying port's slots say.
    pub fn keep_set(&self, mem: SharedMem, skip: Option<u64>) -> KeepSet {
        self.keep_set_except(mem, skip, None)
    }

    /// As [`State::keep_set`], skipping only endpoint `skip_ep` of adapter `skip` when
    /// `skip_ep` is given.
    pub fn keep_set_except(
        &self,
        mem: SharedMem,
        skip: Option<u64>,
        skip_ep: Option<usize>,
    ) -> KeepSet {
        let total = self.alloc.buf_pool.objtotal();
        let mut keep = KeepSet::new(total);
        for (id, slot) in &self.adapters {
            if Some(*id) == skip && skip_ep.is_none() {
                continue;
            }
            for (e, ep) in slot.ad.endpoints().iter().enumerate() {
                if Some(*id) == skip && Some(e) == skip_ep {
                    continue;
                }
                for d in Dir::BOTH {
                    for k in ep.krings(d) {
                        let Ok(v) = netmap_netif::adapter::view(mem, k) else {
                            continue;
                        };
                        for s in 0..k.num_slots {
                            if let Ok(i) = v.slot_buf_idx(s) {
                                if (2..total).contains(&i) {
                                    keep.insert(i);
                                }
                            }
                        }
                    }
                }
            }
            if Some(*id) != skip {
                slot.ad.owned_buffers(&mut |i| {
                    keep.insert(i);
                });
            }
        }
        let head_off = core::mem::offset_of!(abi::NetmapIf, ni_bufs_head);
        for f in self.fds.values() {
            let Some(b) = &f.binding else { continue };
            let mut idx = mem.read_u32(b.nifp_off + head_off).unwrap_or(0);
            // Each step marks a new index, so the walk ends even on a looping list.
            while (2..total).contains(&idx) && keep.insert(idx) {
                let Some(o) = self.alloc.buf_offset(idx) else {
                    break;
                };
                idx = mem.read_u32(o).unwrap_or(0);
            }
        }
        keep
    }

    /// Starts watching the event descriptors of a port whose rings now exist.
    pub fn watch_events(&mut self, epoll: &sys::Epoll, id: u64) {
        let Some(slot) = self.adapters.get_mut(&id) else {
            return;
        };
        if !slot.watched.is_empty() {
            return;
        }
        for (fd, _ep, _dir) in slot.ad.event_fds() {
            match epoll.add(fd, id) {
                Ok(()) => slot.watched.push(fd),
                Err(e) => {
                    tracing::warn!(%e, fd, "cannot watch a port descriptor: its pollers wake only on timeouts")
                }
            }
        }
    }

    /// Re-reads the port's event descriptors after they changed
    /// ([`netmap_netif::adapter::Adapter::take_events_changed`]), watching the new set
    /// unless the port's worker has them paused.
    pub(crate) fn rewatch_events(&mut self, epoll: &sys::Epoll, id: u64) {
        let Some(slot) = self.adapters.get_mut(&id) else {
            return;
        };
        let fds: Vec<std::os::fd::RawFd> = slot
            .ad
            .event_fds()
            .into_iter()
            .map(|(fd, _, _)| fd)
            .collect();
        if !slot.events_paused {
            for &fd in slot.watched.iter().filter(|fd| !fds.contains(fd)) {
                if let Err(e) = epoll.remove(fd) {
                    tracing::debug!(%e, fd, "unwatching a port descriptor");
                }
            }
            for &fd in fds.iter().filter(|fd| !slot.watched.contains(fd)) {
                if let Err(e) = epoll.add(fd, id) {
                    tracing::debug!(%e, fd, "watching a port descriptor");
                }
            }
        }
        slot.watched = fds;
    }

    /// Takes the port's event descriptors out of the epoll set (`on` false) or puts
    /// them back (`on` true). A port's worker takes them out while it passes over the
    /// rings at short intervals anyway: each event the kernel signals (an AF_XDP socket
    /// signals every batch it delivers) would otherwise wake the relay thread, and on
    /// a VM that wake-up, paid by whoever delivered the frames (the sender's CPU on a
    /// veth), cost more than the rest of the receive path (`perf` on the sender: 17 %
    /// of its time in the socket's wake-up). Put back, a descriptor that is ready
    /// reports at once, so nothing that came meanwhile is missed.
    pub(crate) fn set_events_watched(&mut self, epoll: &sys::Epoll, id: u64, on: bool) {
        let Some(slot) = self.adapters.get_mut(&id) else {
            return;
        };
        if slot.events_paused != on {
            return;
        }
        for &fd in &slot.watched {
            let r = if on {
                epoll.add(fd, id)
            } else {
                epoll.remove(fd)
            };
            if let Err(e) = r {
                tracing::debug!(%e, fd, on, "changing a port descriptor's watch");
            }
        }
        slot.events_paused = !on;
    }

    /// Takes the stored wakers of every descriptor bound to `adapter`.
    pub fn collect_all_wakers(&mut self, adapter: u64, out: &mut Vec<Box<dyn PollWaker>>) {
        let Some(slot) = self.adapters.get(&adapter) else {
            return;
        };
        for fd in &slot.fds {
            if let Some(w) = self.fds.get_mut(fd).and_then(|f| f.waker.take()) {
                out.push(w);
            }
        }
    }

    /// Takes the stored wakers of every descriptor bound to `(adapter, ep)`.
    /// Lets clients sync a pipe's rings themselves except on endpoints a monitor
    /// watches (only the daemon's syncs feed monitors). Called after every register
    /// and release, which is when monitors come and go.
    pub(crate) fn refresh_inproc(&self, mem: SharedMem) {
        use netmap_netif::kstate::{kind_of, KState, MAGIC};
        for (&aid, slot) in &self.adapters {
            if !slot.ad.shared_kstate() {
                continue;
            }
            let mut own = kind_of(slot.ad.kind());
            let nic = slot.ad.kind() == netmap_netif::PortKind::Nic;
            if nic {
                // Clients sync a NIC's rings in process only while its worker runs,
                // and not while it is attached to a switch (whose forwarding thread
                // owns its rings).
                let attached = slot
                    .ad
                    .endpoints()
                    .first()
                    .is_some_and(|e| self.vale.nics.contains_key(&e.name));
                let live = slot.nic_worker.as_ref().is_some_and(|w| !w.failed());
                if attached || !live {
                    own = 0;
                }
            }
            // A switch with an attached NIC forwards through the daemon's forwarding
            // thread, which the in-client path does not wake: its ports stay on the
            // daemon path.
            let nic_switch = slot
                .ad
                .as_vale()
                .is_some_and(|v| self.vale.nics.values().any(|n| n.switch == v.name()));
            for (i, e) in slot.ad.endpoints().iter().enumerate() {
                let kind = if nic_switch || self.monitors.watched(aid, i) {
                    0
                } else {
                    own
                };
                // A NIC's host rings always take the daemon's path.
                let hw = |d: Dir| {
                    let n = if !nic {
                        usize::MAX
                    } else if d == Dir::Tx {
                        e.counts.tx_rings as usize
                    } else {
                        e.counts.rx_rings as usize
                    };
                    e.krings(d).iter().take(n).filter_map(|k| k.ring_off)
                };
                for off in hw(Dir::Tx).chain(hw(Dir::Rx)) {
                    let ks = KState::new(mem, off);
                    if ks.magic().is_ok_and(|m| m == MAGIC) && ks.kind().is_ok_and(|k| k != kind) {
                        if let Err(e) = ks.set_kind(kind) {
                            tracing::debug!(%e, "switching a ring's client-side syncs");
                        }
                        // A client sleeping on this ring in its own process must
                        // notice: it wakes, syncs, and finds the other path.
                        if let Err(e) = netmap_netif::kstate::publish(&ks) {
                            tracing::debug!(%e, "waking a ring's sleepers");
                        }
                    }
                }
            }
        }
    }

    /// The buffer pool's facts a ring re-initialisation checks slots against.
    pub(crate) fn buf_limits(&self) -> netmap_netif::sync::BufLimits {
        netmap_netif::sync::BufLimits {
            total: self.alloc.buf_pool.objtotal(),
            size: self.alloc.buf_size(),
        }
    }

    pub fn collect_wakers(&mut self, adapter: u64, wake: Wake, out: &mut Vec<Box<dyn PollWaker>>) {
        for (ep, _dir) in wake.iter() {
            let Some(slot) = self.adapters.get(&adapter) else {
                continue;
            };
            for fd in &slot.fds {
                if let Some(f) = self.fds.get_mut(fd) {
                    if f.binding.as_ref().is_some_and(|b| b.ep == ep) {
                        if let Some(w) = f.waker.take() {
                            out.push(w);
                        }
                    }
                }
            }
        }
    }
}

/// Start-up parameters of the control plane.
#[derive(Debug, Clone, Copy)]
pub struct CtrlConfig {
    pub pools: PoolConfig,
    /// Back the region with a tmpfs mounted `huge=always` when possible.
    pub prefer_huge: bool,
    /// Slots per ring of NIC ports (0: netmap's generic default, 1024).
    pub nic_slots: u32,
    /// Hardware ring pairs of NIC ports (0: one per interface queue).
    pub nic_rings: u32,
    /// Which kernel interface NIC ports use (AF_XDP, AF_PACKET, or the first that works).
    pub nic_backend: netmap_netif::nic::Backend,
    /// Most sync loops running at once. Each holds the front-end worker that carries
    /// its SYNC_KLOOP_START, so the daemon allows one fewer than it has workers:
    /// one worker must stay free to answer everything else, SYNC_KLOOP_STOP included.
    pub max_kloops: usize,
}

impl Default for CtrlConfig {
    fn default() -> Self {
        Self {
            pools: PoolConfig::default(),
            prefer_huge: true,
            nic_slots: 0,
            nic_rings: 0,
            nic_backend: netmap_netif::nic::Backend::Auto,
            max_kloops: 1,
        }
    }
}

/// The netmap control plane (see the module doc).
pub struct ControlPlane {
    cfg: CtrlConfig,
    region: Region,
    /// Readiness of kernel-fed ports' descriptors (see [`ControlPlane::start_event_thread`]).
    events: sys::Epoll,
    state: Mutex<State>,
    /// The `Arc` this control plane lives in, once known (see
    /// [`ControlPlane::enable_workers`]): threads of NICs attached to VALE switches use it.
    me: std::sync::OnceLock<std::sync::Weak<ControlPlane>>,
    /// Closes a front end is still handling, reply included (see [`ControlPlane::closing`]).
    closing: std::sync::atomic::AtomicUsize,
    /// Signalled when a sync loop should stop or has stopped (with `state`).
    kloop_cv: parking_lot::Condvar,
    /// NIC ports with a worker thread: adapter id → (TX ring 0's offset, doorbell
    /// offset). Read by the port-events thread without the state lock: an AF_XDP socket
    /// signals every batch the kernel delivers, and the relay took the state lock for
    /// each while the worker held it to move frames (a perf profile showed the relay
    /// yielding to that lock). Entries go when the worker ends; a stale one only rings
    /// a doorbell nobody waits on.
    pub(crate) nic_bells: parking_lot::Mutex<std::collections::HashMap<u64, (usize, usize)>>,
    /// The daemon is stopping: sync loops end (see [`ControlPlane::stop_loops`]).
    stopping: std::sync::atomic::AtomicBool,
    /// Sync ioctls and polls the daemon served (`netmapd status`: `daemon_syncs`),
    /// which shows how much of a data path ran in the clients instead.
    pub(crate) daemon_syncs: std::sync::atomic::AtomicU64,
}

/// Held by a front end from the start of a close until its reply is sent.
#[derive(Debug)]
pub struct Closing<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Closing<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl ControlPlane {
    /// Marks a close in progress until the guard drops. A front end takes it before
    /// [`ControlPlane::release`] and drops it after replying (FUSE; the CUSE front
    /// end's reply follows right after release returns), so that a stopping
    /// daemon can wait for the teardown and its reply (closing packet sockets alone
    /// takes tens of milliseconds) instead of unmounting under them.
    pub fn closing(&self) -> Closing<'_> {
        self.closing
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Closing(&self.closing)
    }

    /// Ends every sync loop and keeps new ones from running: a loop holds a front-end
    /// worker inside its SYNC_KLOOP_START request, which a stopping daemon must get
    /// back before it can join its workers.
    pub fn stop_loops(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        let _st = self.lock();
        self.kloop_cv.notify_all();
    }

    /// No descriptor open and no close being handled.
    pub fn quiescent(&self) -> bool {
        self.closing.load(std::sync::atomic::Ordering::Acquire) == 0 && self.lock().fds.is_empty()
    }

    /// Lays out the global allocator and creates its region.
    pub fn new(cfg: &CtrlConfig) -> Result<Self, CtrlError> {
        let alloc = MemAllocator::new(1, &cfg.pools)?;
        let region = Region::create(alloc.memsize(), cfg.prefer_huge)?;
        Self::with_region(cfg, alloc, region)
    }

    /// Like [`ControlPlane::new`], but the region is a file created at `path` (mode
    /// `mode`) that other processes can open and map: the CUSE front end has no mmap,
    /// so the preload library maps this file instead of the device. The caller removes the
    /// file when it stops.
    pub fn new_published(
        cfg: &CtrlConfig,
        path: &std::path::Path,
        mode: u32,
    ) -> Result<Self, CtrlError> {
        let alloc = MemAllocator::new(1, &cfg.pools)?;
        let region = Region::create_at(alloc.memsize(), path, mode, cfg.prefer_huge)?;
        Self::with_region(cfg, alloc, region)
    }

    fn with_region(
        cfg: &CtrlConfig,
        alloc: MemAllocator,
        region: Region,
    ) -> Result<Self, CtrlError> {
        tracing::info!(
            memsize = alloc.memsize(),
            backing = ?region.backing(),
            if_objs = alloc.if_pool.objtotal(),
            ring_objs = alloc.ring_pool.objtotal(),
            bufs = alloc.buf_pool.objtotal(),
            "shared region ready"
        );
        Ok(Self {
            cfg: *cfg,
            region,
            events: sys::Epoll::new().map_err(netmap_pool::RegionError::from)?,
            me: std::sync::OnceLock::new(),
            closing: std::sync::atomic::AtomicUsize::new(0),
            kloop_cv: parking_lot::Condvar::new(),
            nic_bells: parking_lot::Mutex::new(std::collections::HashMap::new()),
            stopping: std::sync::atomic::AtomicBool::new(false),
            daemon_syncs: std::sync::atomic::AtomicU64::new(0),
            state: Mutex::new(State {
                alloc,
                adapters: HashMap::new(),
                pipes: HashMap::new(),
                nics: HashMap::new(),
                switches: Default::default(),
                fds: HashMap::new(),
                vale: vale::ValeState::default(),
                monitors: monitor::Monitors::default(),
                next_fd: 0,
                next_adapter: 0,
            }),
        })
    }

    /// The file every client maps (FUSE passthrough backing).
    pub fn region_file(&self) -> &std::fs::File {
        self.region.file()
    }

    pub fn region_len(&self) -> usize {
        self.region.len()
    }

    pub fn backing(&self) -> Backing {
        self.region.backing()
    }

    /// The control plane's state lock (parking_lot: no poisoning, so a panic while
    /// holding it leaves the state as it was and the next caller just takes it).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    pub(crate) fn mem(&self) -> SharedMem<'_> {
        self.region.shmem()
    }

    /// Rings the doorbell of a NIC port's worker if the port's rings are synced in
    /// process (ring 0's kind is KIND_NIC); says whether it did.
    fn ring_nic_worker(&self, ring0: usize, doorbell: usize) -> bool {
        use netmap_netif::kstate::{Doorbell, KState, KIND_NIC};
        if !KState::new(self.mem(), ring0)
            .kind()
            .is_ok_and(|k| k == KIND_NIC)
        {
            return false;
        }
        if let Err(e) = Doorbell::new(self.mem(), doorbell).ring() {
            tracing::debug!(%e, "ringing a NIC worker");
        }
        true
    }

    /// Starts the thread that turns readiness of kernel-fed ports (NIC sockets) into
    /// poll wake-ups. It ends when the control plane is dropped.
    pub fn start_event_thread(
        self: &std::sync::Arc<Self>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        self.enable_workers();
        let weak = std::sync::Arc::downgrade(self);
        std::thread::Builder::new()
            .name("port-events".into())
            .spawn(move || {
                let mut tokens = Vec::new();
                loop {
                    let Some(cp) = weak.upgrade() else { break };
                    if let Err(e) = cp.events.wait(&mut tokens, 200) {
                        tracing::error!(%e, "epoll_wait failed; port events stop");
                        break;
                    }
                    if tokens.is_empty() {
                        continue;
                    }
                    // NIC ports whose worker moves the frames (their rings in
                    // process): ring the doorbell, no lock; the worker wakes the
                    // daemon-path pollers itself when it moves frames. The others (a
                    // monitor watches it, a switch owns it, no worker) take the path
                    // below.
                    {
                        let bells = cp.nic_bells.lock();
                        tokens.retain(|t| {
                            !bells
                                .get(t)
                                .is_some_and(|&(ring0, bell)| cp.ring_nic_worker(ring0, bell))
                        });
                    }
                    if tokens.is_empty() {
                        continue;
                    }
                    let mut wakers = Vec::new();
                    {
                        let mut st = cp.lock();
                        for &t in &tokens {
                            st.collect_all_wakers(t, &mut wakers);
                            // A NIC port whose clients sync in process: its worker
                            // moves the frames (not while its rings are on the daemon's
                            // path: a monitor watches it, or a switch owns it).
                            if let Some(w) = st.adapters.get(&t).and_then(|s| s.nic_worker.as_ref())
                            {
                                cp.ring_nic_worker(w.ring0, w.doorbell);
                            }
                        }
                    }
                    fire(wakers);
                }
            })
    }

    /// Sizing of NIC ports created from now on.
    pub(crate) fn nic_config(&self) -> netmap_netif::af_packet::NicConfig {
        netmap_netif::af_packet::NicConfig {
            slots: self.cfg.nic_slots,
            tx_rings: self.cfg.nic_rings,
            rx_rings: self.cfg.nic_rings,
            host_tx_rings: 0,
            host_rx_rings: 0,
            backend: self.cfg.nic_backend,
        }
    }

    /// A new open of `/dev/netmap`.
    pub fn open(&self) -> FdId {
        let mut st = self.lock();
        st.next_fd += 1;
        let id = st.next_fd;
        st.fds.insert(id, FdState::default());
        id
    }

    /// The last close of a descriptor: unregisters it and returns its netmap_if, extra
    /// buffers and (if it was the last user) rings and buffers to the pool.
    pub fn release(&self, fd: FdId) {
        let mut wakers = Vec::new();
        {
            let mut st = self.lock();
            if let Some(f) = st.fds.remove(&fd) {
                if let Some(b) = f.binding {
                    register::unbind(&mut st, &b, fd, self.mem(), &mut wakers);
                    st.refresh_inproc(self.mem());
                }
            }
        }
        fire(wakers);
    }

    /// One ioctl. `arg` holds the bytes the transport copied in (the size encoded in
    /// `cmd`); on success the returned bytes are copied back to the caller.
    pub fn ioctl(
        &self,
        fd: FdId,
        cmd: u32,
        arg: &[u8],
        um: &dyn UserMemory,
    ) -> Result<Vec<u8>, Errno> {
        match cmd {
            abi::NIOCTXSYNC => self.sync_ioctl(fd, Dir::Tx).map(|()| Vec::new()),
            abi::NIOCRXSYNC => self.sync_ioctl(fd, Dir::Rx).map(|()| Vec::new()),
            abi::NIOCCTRL => self.nmreq_ctrl(fd, arg, um),
            abi::NIOC_NMD_KICK => self.kick(fd).map(|()| Vec::new()),
            abi::NIOCREGIF | abi::NIOCGINFO => self.legacy(fd, cmd, arg),
            abi::NIOCCONFIG => {
                tracing::debug!(fd, "NIOCCONFIG: no switch has a configuration hook");
                Err(Errno(libc::EINVAL))
            }
            _ => {
                tracing::debug!(fd, cmd = format_args!("{cmd:#x}"), "unknown ioctl");
                Err(Errno(libc::EOPNOTSUPP))
            }
        }
    }

    /// A snapshot for `netmapd status` (pools, descriptors, ports and their counters).
    pub fn status_report(&self) -> status::StatusReport {
        let st = self.lock();
        let c = st.alloc.counts();
        let use_of = |free: u32, total: u32| status::PoolUse {
            free: u64::from(free),
            total: u64::from(total),
        };
        let mut ports = Vec::new();
        for slot in st.adapters.values() {
            for (i, ep) in slot.ad.endpoints().iter().enumerate() {
                if ep.name.is_empty() {
                    continue;
                }
                ports.push(status::PortStatus {
                    name: ep.name.clone(),
                    kind: format!("{:?}", slot.ad.kind()),
                    users: ep.users,
                    tx_rings: ep.counts.tx_rings,
                    rx_rings: ep.counts.rx_rings,
                    tx_slots: ep.counts.tx_slots,
                    rx_slots: ep.counts.rx_slots,
                    counters: slot
                        .ad
                        .endpoint_stats(i, self.mem())
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                });
            }
        }
        ports.sort_by(|a, b| a.name.cmp(&b.name));
        status::StatusReport {
            backing: match self.region.backing() {
                Backing::HugeTmpfs => "huge-tmpfs",
                Backing::Memfd => "memfd",
                Backing::Published => "published-file",
            }
            .to_string(),
            memsize: st.alloc.memsize() as u64,
            clients: st.fds.len() as u64,
            registered: st.fds.values().filter(|f| f.binding.is_some()).count() as u64,
            csb: st
                .fds
                .values()
                .filter(|f| f.binding.as_ref().is_some_and(|b| b.csb.is_some()))
                .count() as u64,
            sync_loops: st.fds.values().filter(|f| f.kloop.running).count() as u64,
            daemon_syncs: self.daemon_syncs.load(std::sync::atomic::Ordering::Relaxed),
            pools: status::Pools {
                ifs: use_of(c.if_free, c.if_total),
                ring: use_of(c.ring_free, c.ring_total),
                buf: use_of(c.buf_free, c.buf_total),
            },
            adapters: st.adapters.len() as u64,
            ports,
        }
    }

    /// Pool occupancy and port facts, as `key=value` lines (`netmapd status --keys`).
    pub fn status(&self) -> String {
        self.status_report().to_keys()
    }

    /// Pool counters, for tests.
    pub fn pool_counts(&self) -> netmap_pool::PoolCounts {
        self.lock().alloc.counts()
    }
}

/// Wakes pollers; called with no lock held.
pub(crate) fn fire(wakers: Vec<Box<dyn PollWaker>>) {
    for w in wakers {
        w.wake();
    }
}

#[cfg(test)]
pub(crate) mod fake_mem;
#[cfg(test)]
mod tests;
