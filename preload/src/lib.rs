//! `libnetmapd_preload.so`: netmap's data path in the client's own process.
//!
//! Loaded with `LD_PRELOAD` (`netmapd exec` does it by default), it answers
//! NIOCTXSYNC, NIOCRXSYNC and `poll`/`ppoll` for descriptors of `/dev/netmap` bound to
//! pipe, null, VALE or NIC hardware rings by running the sync itself
//! ([`netmap_netif::inproc`], the same code the daemon runs) on the ring state the
//! daemon keeps in shared memory. No system call is made when a ring is ready; when
//! nothing is, the caller sleeps on a futex in the ring's state block, which the
//! peer's sync wakes (in whichever process it runs) — or, for a NIC RX ring this
//! process reads itself ([`netmap_netif::rx_client`]: AF_XDP or AF_PACKET), on the queue's socket.
//! Everything else — control requests, other port kinds, mixed poll sets, `epoll`,
//! programs without the library — takes the kernel path through the daemon, on the
//! same shared state, so preloaded and plain programs share a pipe. Under the CUSE
//! front end it also maps the published region file where a program maps the device
//! (a CUSE device has no mmap).
//!
//! Shape (as OpenOnload, libvma and VPP's LDP): the real functions resolved once with
//! `dlsym(RTLD_NEXT)`, one fd-indexed table of registrations (an array of atomic
//! pointers: "not ours" costs one load), a fast path per call, libc for the rest.
//! `ioctl` is declared with its one pointer argument: on the Linux ABIs this library
//! builds for, a variadic caller passes it in the same register.
#![allow(unsafe_code)]

mod rootless;

use std::cell::Cell;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libc::{c_int, c_ulong, c_void, nfds_t, off_t, pollfd, sigset_t, size_t, timespec};
use netmap_abi as abi;
use netmap_netif::inproc::{InprocRing, Outcome};
use netmap_netif::kstate::{KState, KIND_NIC};
use netmap_netif::rx_client::RxClient;
use netmap_netif::vale::BufGeom;
use netmap_netif::Dir;
use netmap_pool::SharedMem;

type IoctlFn = unsafe extern "C" fn(c_int, c_ulong, ...) -> c_int;
type MmapFn = unsafe extern "C" fn(*mut c_void, size_t, c_int, c_int, c_int, off_t) -> *mut c_void;
type MunmapFn = unsafe extern "C" fn(*mut c_void, size_t) -> c_int;
type PollFn = unsafe extern "C" fn(*mut pollfd, nfds_t, c_int) -> c_int;
type PpollFn = unsafe extern "C" fn(*mut pollfd, nfds_t, *const timespec, *const sigset_t) -> c_int;
type CloseFn = unsafe extern "C" fn(c_int) -> c_int;

/// libc's functions, found behind this library.
pub(crate) struct Real {
    pub ioctl: IoctlFn,
    pub mmap: MmapFn,
    pub mmap64: MmapFn,
    pub munmap: MunmapFn,
    pub poll: PollFn,
    pub ppoll: PpollFn,
    pub close: CloseFn,
}

pub(crate) fn real() -> &'static Real {
    static R: OnceLock<Real> = OnceLock::new();
    R.get_or_init(|| {
        let sym = |name: &std::ffi::CStr| -> *mut c_void {
            // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name only looks the
            // symbol up.
            let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
            if p.is_null() {
                eprintln!("netmapd preload: {name:?} not found behind the library");
                // SAFETY: nothing can run without the real function.
                unsafe { libc::abort() };
            }
            p
        };
        // SAFETY: each symbol is libc's function of that name, whose C prototype is
        // the function pointer type it is converted to.
        unsafe {
            Real {
                ioctl: std::mem::transmute::<*mut c_void, IoctlFn>(sym(c"ioctl")),
                mmap: std::mem::transmute::<*mut c_void, MmapFn>(sym(c"mmap")),
                mmap64: std::mem::transmute::<*mut c_void, MmapFn>(sym(c"mmap64")),
                munmap: std::mem::transmute::<*mut c_void, MunmapFn>(sym(c"munmap")),
                poll: std::mem::transmute::<*mut c_void, PollFn>(sym(c"poll")),
                ppoll: std::mem::transmute::<*mut c_void, PpollFn>(sym(c"ppoll")),
                close: std::mem::transmute::<*mut c_void, CloseFn>(sym(c"close")),
            }
        }
    })
}

/// libc's function `name` behind this library, resolved once per call site.
macro_rules! next_fn {
    ($name:literal, $ty:ty) => {{
        static F: OnceLock<usize> = OnceLock::new();
        let p = *F.get_or_init(|| {
            // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name only looks it up.
            let p = unsafe { libc::dlsym(libc::RTLD_NEXT, concat!($name, "\0").as_ptr().cast()) };
            if p.is_null() {
                eprintln!("netmapd preload: {} not found behind the library", $name);
                // SAFETY: nothing can run without the real function.
                unsafe { libc::abort() };
            }
            p as usize
        });
        // SAFETY: the address is libc's function of that name, of this prototype.
        unsafe { std::mem::transmute::<usize, $ty>(p) }
    }};
}

/// Sets the calling thread's errno.
pub(crate) fn set_errno(e: c_int) {
    // SAFETY: errno is this thread's.
    unsafe { *libc::__errno_location() = e };
}

/// Whether in-process syncs are switched off (`NETMAPD_PRELOAD_SYNC=0`): the library
/// then only passes calls through.
fn disabled() -> bool {
    static D: OnceLock<bool> = OnceLock::new();
    *D.get_or_init(|| std::env::var("NETMAPD_PRELOAD_SYNC").is_ok_and(|v| v == "0"))
}

/// A registration seen on a descriptor (from the REGISTER reply).
pub(crate) struct Reg {
    nr_offset: usize,
    mode: u32,
    ringid: u16,
    flags: u64,
    /// Worked out at the first use after the region is mapped; `None` inside: not
    /// a registration this library syncs (kernel path).
    rings: OnceLock<Option<Rings>>,
}

pub(crate) struct Rings {
    tx: Vec<InprocRing>,
    rx: Vec<InprocRing>,
    /// Per RX ring: this process's hold on its NIC queue (AF_XDP or AF_PACKET), if it reads it itself.
    xsk: Vec<ReaderSlot>,
    no_tx_poll: bool,
    geom: BufGeom,
}

pub(crate) const MAX_FD: usize = 4096;
static REGS: [AtomicPtr<Reg>; MAX_FD] = [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_FD];
/// The program's mapping of the region (every netmapd port shares one region).
static REGION: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static REGION_LEN: AtomicUsize = AtomicUsize::new(0);

fn slot(fd: c_int) -> Option<&'static AtomicPtr<Reg>> {
    REGS.get(usize::try_from(fd).ok()?)
}

pub(crate) fn reg(fd: c_int) -> Option<&'static Reg> {
    let p = slot(fd)?.load(Ordering::Acquire);
    // SAFETY: table entries are leaked Boxes, never freed (a closed descriptor's entry
    // is unlinked and leaked), so a non-null pointer stays valid.
    (!p.is_null()).then(|| unsafe { &*p })
}

pub(crate) fn set_reg(fd: c_int, r: Option<Reg>) {
    if let Some(s) = slot(fd) {
        let p = r.map_or(std::ptr::null_mut(), |r| Box::into_raw(Box::new(r)));
        s.store(p, Ordering::Release);
    }
}

pub(crate) fn region() -> Option<SharedMem<'static>> {
    let p = REGION.load(Ordering::Acquire);
    if p.is_null() {
        return None;
    }
    // SAFETY: REGION is the program's live shared mapping of the region, of
    // REGION_LEN bytes; munmap of it clears REGION first. Accesses through SharedMem
    // are bounds-checked and volatile, as other processes write the same memory.
    Some(unsafe { SharedMem::from_raw(p, REGION_LEN.load(Ordering::Acquire)) })
}

thread_local!(static TID: Cell<u32> = const { Cell::new(0) });

/// In a child after fork the forking thread's cached tid is its parent's: forget it.
extern "C" fn forget_tid() {
    TID.with(|t| t.set(0));
}

fn tid() -> u32 {
    static ATFORK: std::sync::Once = std::sync::Once::new();
    ATFORK.call_once(|| {
        // SAFETY: registers a child handler that only resets a thread-local integer.
        unsafe { libc::pthread_atfork(None, None, Some(forget_tid)) };
    });
    TID.with(|t| {
        if t.get() == 0 {
            // SAFETY: gettid has no arguments and cannot fail.
            t.set(unsafe { libc::syscall(libc::SYS_gettid) } as u32);
        }
        t.get()
    })
}

impl Reg {
    pub(crate) fn rings(&self) -> Option<&Rings> {
        if let Some(r) = self.rings.get() {
            return r.as_ref();
        }
        let mem = region()?;
        self.rings.get_or_init(|| self.find_rings(mem)).as_ref()
    }

    fn find_rings(&self, mem: SharedMem) -> Option<Rings> {
        use core::mem::offset_of;
        let nifp = self.nr_offset;
        let rd = |o: usize| mem.read_u32(nifp + o).ok();
        let ntx = rd(offset_of!(abi::NetmapIf, ni_tx_rings))? as usize;
        let nrx = rd(offset_of!(abi::NetmapIf, ni_rx_rings))? as usize;
        let nhtx = rd(offset_of!(abi::NetmapIf, ni_host_tx_rings))? as usize;
        let (tx, rx) = match self.mode {
            abi::NR_REG_ALL_NIC | abi::NR_REG_NULL => (0..ntx, 0..nrx),
            abi::NR_REG_ONE_NIC => {
                let i = usize::from(self.ringid & abi::NETMAP_RING_MASK);
                (i..(i + 1).min(ntx), i..(i + 1).min(nrx))
            }
            _ => return None,
        };
        let tx = if self.flags & abi::NR_RX_RINGS_ONLY != 0 {
            0..0
        } else {
            tx
        };
        let rx = if self.flags & abi::NR_TX_RINGS_ONLY != 0 {
            0..0
        } else {
            rx
        };
        let ring_at = |k: usize| -> Option<usize> {
            let rel = mem.read_i64(nifp + abi::if_ring_ofs_offset(k)).ok()?;
            usize::try_from(nifp as i64 + rel).ok()
        };
        let mut out = Rings {
            tx: Vec::new(),
            rx: Vec::new(),
            xsk: Vec::new(),
            no_tx_poll: self.flags & abi::NR_NO_TX_POLL != 0,
            geom: BufGeom {
                pool_offset: 0,
                size: 0,
                total: 0,
            },
        };
        for i in tx {
            out.tx
                .push(InprocRing::probe(mem, ring_at(i)?, Dir::Tx, i as u32)?);
        }
        for i in rx {
            out.rx.push(InprocRing::probe(
                mem,
                ring_at(ntx + nhtx + i)?,
                Dir::Rx,
                i as u32,
            )?);
        }
        out.xsk = out.rx.iter().map(|_| ReaderSlot::default()).collect();
        let first = out.tx.first().or(out.rx.first())?.off;
        let buf_ofs = mem
            .read_i64(first + offset_of!(abi::NetmapRing, buf_ofs))
            .ok()?;
        let buf_size = mem
            .read_u32(first + offset_of!(abi::NetmapRing, nr_buf_size))
            .ok()?;
        let pool = usize::try_from(first as i64 + buf_ofs).ok()?;
        if buf_size == 0 || pool >= mem.len() {
            return None;
        }
        out.geom = BufGeom {
            pool_offset: pool,
            size: buf_size,
            total: u32::try_from((mem.len() - pool) / buf_size as usize).unwrap_or(u32::MAX),
        };
        Some(out)
    }
}

/// An RX ring's hold on its NIC queue ([`RxClient`]: AF_XDP or AF_PACKET): tried
/// once, at the ring's first sync.
#[derive(Default)]
pub(crate) struct ReaderSlot {
    tried: std::sync::atomic::AtomicBool,
    cur: std::sync::Mutex<Option<std::sync::Arc<RxClient>>>,
}

/// Whether NIC RX rings may be read from their socket (AF_XDP or AF_PACKET) in
/// process (`NETMAPD_XSK=0` leaves them to the daemon's port worker).
fn readers_enabled() -> bool {
    static E: OnceLock<bool> = OnceLock::new();
    *E.get_or_init(|| !std::env::var("NETMAPD_XSK").is_ok_and(|v| v == "0"))
}

/// This process's hold on the queue of NIC RX ring `r`, taken at the first call (if
/// the daemon published one and lets us take its descriptors).
fn queue_reader(rings: &Rings, r: &InprocRing, mem: SharedMem) -> Option<std::sync::Arc<RxClient>> {
    if r.kind != KIND_NIC || r.dir != Dir::Rx || !readers_enabled() {
        return None;
    }
    let pos = rings.rx.iter().position(|x| x.off == r.off)?;
    let slot = rings.xsk.get(pos)?;
    if !slot.tried.swap(true, Ordering::AcqRel) {
        if let Ok(Some(h)) = KState::new(mem, r.off).reader_handle() {
            match RxClient::attach(h, rings.geom, r.num_slots) {
                Ok(x) => {
                    if let Ok(mut c) = slot.cur.lock() {
                        *c = Some(std::sync::Arc::new(x));
                    }
                }
                Err(e) => {
                    if std::env::var_os("NETMAPD_DEBUG").is_some() {
                        eprintln!(
                            "netmapd preload: NIC queue of ring {} left to the daemon: {e}",
                            r.id
                        );
                    }
                }
            }
        }
    }
    slot.cur.lock().ok()?.clone()
}

/// Gives every NIC queue this registration reads back to the daemon (its last
/// descriptor is being closed), and rings the port worker so it reads them at once.
fn release_readers(rings: &Rings) {
    let Some(mem) = region() else { return };
    for (r, slot) in rings.rx.iter().zip(&rings.xsk) {
        let taken = slot.cur.lock().ok().and_then(|mut c| c.take());
        if let Some(x) = taken {
            let ks = KState::new(mem, r.off);
            x.release(&ks);
            let _ = netmap_netif::kstate::Doorbell::new(mem, r.peer_off).ring();
        }
    }
}

/// Syncs one ring, waiting out a short busy spell (the daemon or another thread
/// syncing it), clearing the flag of a holder that died, and breaking one held for
/// longer than any sync takes ([`netmap_netif::kstate::BUSY_STALE`]: a stopped thread
/// or a value some client wrote).
fn sync_ring(r: &InprocRing, mem: SharedMem, rings: &Rings) -> Result<Outcome, ()> {
    let mut first: Option<(u32, Instant)> = None;
    // 100 yields, then naps: 30 ms in all, past BUSY_STALE.
    let xsk = queue_reader(rings, r, mem);
    for i in 0..250u32 {
        let o = r
            .sync_with(mem, tid(), rings.geom, xsk.as_deref())
            .map_err(|_| ())?;
        if !o.busy {
            return Ok(o);
        }
        if i >= 20 && i % 20 == 0 {
            let ks = KState::new(mem, r.off);
            let h = ks.holder().map_err(|_| ())?;
            let gone = netmap_netif::kstate::holder_gone(h);
            let stale = match first {
                Some((seen, since)) if seen == h => {
                    since.elapsed() > netmap_netif::kstate::BUSY_STALE
                }
                _ => {
                    first = Some((h, Instant::now()));
                    false
                }
            };
            if gone || stale {
                let _ = ks.break_holder(h);
            }
        }
        if i < 100 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    Ok(Outcome {
        busy: true,
        ..Outcome::default()
    })
}

fn kick(fd: c_int) {
    if rootless::is_ours(fd) {
        // SAFETY: NIOC_NMD_KICK takes no argument.
        unsafe { rootless::ioctl(fd, abi::NIOC_NMD_KICK, std::ptr::null_mut()) };
        return;
    }
    // SAFETY: NIOC_NMD_KICK takes no argument.
    unsafe { (real().ioctl)(fd, abi::NIOC_NMD_KICK as c_ulong, 0usize) };
}

/// NIOCTXSYNC / NIOCRXSYNC in process; `None` = take the kernel path.
fn sync_ioctl(fd: c_int, d: Dir) -> Option<c_int> {
    if disabled() {
        return None;
    }
    let reg = reg(fd)?;
    let rings = reg.rings()?;
    let mem = region()?;
    let mut need_kick = false;
    let list = if d == Dir::Tx { &rings.tx } else { &rings.rx };
    for r in list {
        let o = sync_ring(r, mem, rings).ok()?;
        if o.fallback || o.deferred {
            if need_kick {
                kick(fd);
            }
            return None;
        }
        need_kick |= o.kick;
    }
    if need_kick {
        kick(fd);
    }
    Some(0)
}

/// Reads the REGISTER reply of a successful NIOCCTRL.
///
/// # Safety
/// `arg` is the caller's NIOCCTRL argument, which the kernel just accepted.
unsafe fn capture_ctrl(fd: c_int, arg: *mut c_void) {
    if arg.is_null() {
        return;
    }
    // SAFETY: arg points to the caller's nmreq_header (the ioctl succeeded on it).
    let hdr = unsafe { std::ptr::read_unaligned(arg.cast::<abi::NmreqHeader>()) };
    if matches!(
        hdr.nr_reqtype,
        abi::NETMAP_REQ_CSB_ENABLE | abi::NETMAP_REQ_SYNC_KLOOP_START
    ) {
        // CSB mode: syncs belong to the sync loop and get EBUSY from the daemon.
        set_reg(fd, None);
        return;
    }
    if hdr.nr_reqtype != abi::NETMAP_REQ_REGISTER || hdr.nr_body == 0 {
        return;
    }
    // A CSB option puts the descriptor in CSB mode from the start: kernel path.
    let mut opt = hdr.nr_options;
    for _ in 0..64 {
        if opt == 0 {
            break;
        }
        // SAFETY: the daemon just walked this chain in the caller's memory without a
        // fault (the request succeeded); each option starts with nro_next (u64) and
        // nro_reqtype (u32).
        let (next, ty) = unsafe {
            let p = opt as usize as *const u8;
            (
                std::ptr::read_unaligned(p.cast::<u64>()),
                std::ptr::read_unaligned(p.add(8).cast::<u32>()),
            )
        };
        if ty == abi::NETMAP_REQ_OPT_CSB {
            set_reg(fd, None);
            return;
        }
        opt = next;
    }
    // SAFETY: nr_body points to the caller's nmreq_register, which the daemon just
    // filled in (the ioctl succeeded).
    let b = unsafe { std::ptr::read_unaligned(hdr.nr_body as usize as *const abi::NmreqRegister) };
    set_reg(
        fd,
        Some(Reg {
            nr_offset: b.nr_offset as usize,
            mode: b.nr_mode,
            ringid: b.nr_ringid,
            flags: b.nr_flags,
            rings: OnceLock::new(),
        }),
    );
}

/// Reads the reply of a successful legacy NIOCREGIF.
///
/// # Safety
/// `arg` is the caller's NIOCREGIF argument, which the kernel just accepted.
unsafe fn capture_legacy(fd: c_int, arg: *mut c_void) {
    if arg.is_null() {
        return;
    }
    // SAFETY: arg points to the caller's 60-byte struct nmreq.
    let r = unsafe { std::ptr::read_unaligned(arg.cast::<abi::Nmreq>()) };
    let mut mode = r.nr_flags & abi::NR_REG_MASK;
    if mode == 0 {
        mode = if r.nr_ringid & abi::NETMAP_HW_RING != 0 {
            abi::NR_REG_ONE_NIC
        } else if r.nr_ringid & abi::NETMAP_SW_RING != 0 {
            0 // host rings: kernel path
        } else {
            abi::NR_REG_ALL_NIC
        };
    }
    let mut flags = u64::from(r.nr_flags & !abi::NR_REG_MASK);
    if r.nr_ringid & abi::NETMAP_NO_TX_POLL != 0 {
        flags |= abi::NR_NO_TX_POLL;
    }
    set_reg(
        fd,
        Some(Reg {
            nr_offset: r.nr_offset as usize,
            mode,
            ringid: r.nr_ringid,
            flags,
            rings: OnceLock::new(),
        }),
    );
}

/// # Safety
/// As libc's `ioctl`.
#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, req: c_ulong, arg: *mut c_void) -> c_int {
    let cmd = req as u32;
    let d = match cmd {
        abi::NIOCTXSYNC => Some(Dir::Tx),
        abi::NIOCRXSYNC => Some(Dir::Rx),
        _ => None,
    };
    if let Some(rc) = d.and_then(|d| sync_ioctl(fd, d)) {
        return rc;
    }
    // netmap's ioctl type ('i'): to the daemon when the descriptor is a connection.
    let netmap_type = (cmd >> 8) & 0xff == u32::from(b'i');
    let rc = if netmap_type && (rootless::is_ours(fd) || (reg(fd).is_none() && rootless::adopt(fd)))
    {
        // SAFETY: the caller's argument (read and written through process_vm_*v).
        unsafe { rootless::ioctl(fd, cmd, arg) }
    } else {
        // SAFETY: the caller's arguments, passed on unchanged.
        unsafe { (real().ioctl)(fd, req, arg) }
    };
    if rc == 0 {
        match cmd {
            // SAFETY: the request was just accepted on this argument.
            abi::NIOCCTRL => unsafe { capture_ctrl(fd, arg) },
            // SAFETY: as above.
            abi::NIOCREGIF => unsafe { capture_legacy(fd, arg) },
            _ => {}
        }
    }
    rc
}

/// The CUSE front end's mmap: a CUSE character device cannot be mapped (ENODEV), so
/// the daemon publishes the region as a file (`--region-path`, default
/// `/dev/shm/netmapd-region`) and a mapping of the netmap device maps that file
/// instead. The device is recognised by its device number (`st_rdev` equal to that of
/// `NETMAPD_DEVICE`, default `/dev/netmap`); the region file is `NETMAPD_REGION`. A
/// FUSE `/dev/netmap` is a regular file whose mmap works as it is: left alone.
/// Returns the region file's descriptor to map instead, if any.
fn cuse_region_fd(fd: c_int, flags: c_int, prot: c_int) -> Option<c_int> {
    if flags & libc::MAP_ANONYMOUS != 0 || fd < 0 {
        return None;
    }
    let env = |k: &str, d: &str| {
        std::ffi::CString::new(
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| d.into()),
        )
        .ok()
    };
    let dev = env("NETMAPD_DEVICE", "/dev/netmap")?;
    // SAFETY: zeroed stat structs are valid out-parameters; fstat/stat write them.
    let (mut f, mut d): (libc::stat, libc::stat) =
        unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    // SAFETY: as above; dev is NUL-terminated.
    if unsafe { libc::fstat(fd, &mut f) } != 0 || unsafe { libc::stat(dev.as_ptr(), &mut d) } != 0 {
        return None;
    }
    let chr = |m: libc::mode_t| m & libc::S_IFMT == libc::S_IFCHR;
    if !chr(f.st_mode) || !chr(d.st_mode) || f.st_rdev != d.st_rdev {
        return None;
    }
    let region = env("NETMAPD_REGION", "/dev/shm/netmapd-region")?;
    let mode = if prot & libc::PROT_WRITE != 0 {
        libc::O_RDWR
    } else {
        libc::O_RDONLY
    };
    // SAFETY: region is NUL-terminated.
    let rfd = unsafe { libc::open(region.as_ptr(), mode | libc::O_CLOEXEC) };
    (rfd >= 0).then_some(rfd)
}

/// mmap (or mmap64) of a netmap descriptor: the CUSE region file instead of the device
/// when needed, and the mapping noted for the in-process syncs.
///
/// # Safety
/// As libc's `mmap`.
unsafe fn map(
    real_map: MmapFn,
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    if flags & libc::MAP_ANONYMOUS == 0 && fd >= 0 && rootless::socket_path().is_some() {
        let ours = rootless::is_ours(fd)
            || (reg(fd).is_none() && {
                // A socket cannot be mapped; only then is it worth asking whether it is
                // an adopted connection (no system call for ordinary files).
                // SAFETY: a zeroed stat is a valid out-parameter.
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                // SAFETY: as above.
                (unsafe { libc::fstat(fd, &mut st) } == 0)
                    && st.st_mode & libc::S_IFMT == libc::S_IFSOCK
                    && rootless::adopt(fd)
            });
        if ours {
            let Some(rfd) = rootless::region_fd(fd) else {
                set_errno(libc::ENXIO);
                return libc::MAP_FAILED;
            };
            // SAFETY: the caller's arguments with the region's memfd for the connection.
            let p = unsafe { real_map(addr, len, prot, flags, rfd, off) };
            note_mapping(p, len, flags, fd, off);
            return p;
        }
    }
    let p = match cuse_region_fd(fd, flags, prot) {
        Some(rfd) => {
            // SAFETY: the caller's arguments with the region file in place of the
            // device (same offsets: the file is the region).
            let p = unsafe { real_map(addr, len, prot, flags, rfd, off) };
            let e = std::io::Error::last_os_error();
            // SAFETY: rfd was opened above; the mapping keeps the file.
            unsafe { (real().close)(rfd) };
            if let Some(code) = e.raw_os_error() {
                // Restores errno for the caller after close.
                set_errno(code);
            }
            p
        }
        // SAFETY: the caller's arguments, passed on unchanged.
        None => unsafe { real_map(addr, len, prot, flags, fd, off) },
    };
    note_mapping(p, len, flags, fd, off);
    p
}

fn note_mapping(p: *mut c_void, len: size_t, flags: c_int, fd: c_int, off: off_t) {
    if p != libc::MAP_FAILED && off == 0 && flags & libc::MAP_SHARED != 0 && reg(fd).is_some() {
        REGION_LEN.store(len, Ordering::Release);
        REGION.store(p.cast(), Ordering::Release);
    }
}

/// # Safety
/// As libc's `mmap`.
#[no_mangle]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    // SAFETY: the caller's arguments (see map).
    unsafe { map(real().mmap, addr, len, prot, flags, fd, off) }
}

/// # Safety
/// As libc's `mmap64`.
#[no_mangle]
pub unsafe extern "C" fn mmap64(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    // SAFETY: the caller's arguments (see map).
    unsafe { map(real().mmap64, addr, len, prot, flags, fd, off) }
}

/// # Safety
/// As libc's `munmap`.
#[no_mangle]
pub unsafe extern "C" fn munmap(addr: *mut c_void, len: size_t) -> c_int {
    let r = REGION.load(Ordering::Acquire);
    if !r.is_null() && addr.cast::<u8>() == r {
        REGION.store(std::ptr::null_mut(), Ordering::Release);
    }
    // SAFETY: the caller's arguments, passed on unchanged.
    unsafe { (real().munmap)(addr, len) }
}

/// # Safety
/// As libc's `close`.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if rootless::is_region_fd(fd) {
        // The region's memfd is the library's, not the program's (a closefrom()-style
        // sweep): keep it, as the kernel keeps a device's memory.
        return 0;
    }
    forget(fd);
    // SAFETY: the caller's argument, passed on unchanged.
    unsafe { (real().close)(fd) }
}

const POLL_RX: i16 = libc::POLLIN | libc::POLLRDNORM;
const POLL_TX: i16 = libc::POLLOUT | libc::POLLWRNORM;

/// netmap_poll for one in-process descriptor: TX rings synced (for POLLOUT, or to
/// flush unless NO_TX_POLL), RX rings synced for POLLIN; the ready events.
pub(crate) fn check(fd: c_int, rings: &Rings, events: i16, mem: SharedMem) -> Option<i16> {
    let (want_tx, want_rx) = (events & POLL_TX, events & POLL_RX);
    let mut rev = 0;
    let mut need_kick = false;
    if want_tx != 0 || !rings.no_tx_poll {
        for r in &rings.tx {
            match sync_ring(r, mem, rings) {
                Ok(o) if o.fallback || o.deferred => {
                    if need_kick || o.kick {
                        kick(fd);
                    }
                    return None;
                }
                Ok(o) => {
                    need_kick |= o.kick;
                    if o.error {
                        rev |= libc::POLLERR;
                    } else if o.ready {
                        rev |= want_tx;
                    }
                }
                Err(()) => rev |= libc::POLLERR,
            }
        }
    }
    if want_rx != 0 {
        for r in &rings.rx {
            match sync_ring(r, mem, rings) {
                Ok(o) if o.fallback => return None,
                Ok(o) => {
                    need_kick |= o.kick;
                    if o.error {
                        rev |= libc::POLLERR;
                    }
                    if o.ready {
                        rev |= want_rx;
                    }
                }
                Err(()) => rev |= libc::POLLERR,
            }
        }
    }
    if need_kick {
        kick(fd);
    }
    Some(rev)
}

/// The ring a sleeper of this descriptor waits on: the first RX ring for POLLIN, else
/// the first TX ring for POLLOUT.
fn wait_ring(rings: &Rings, events: i16) -> Option<InprocRing> {
    if events & POLL_RX != 0 {
        rings.rx.first().copied()
    } else if events & POLL_TX != 0 {
        rings.tx.first().copied()
    } else {
        None
    }
}

/// How long a poller spins on its ring before sleeping: `NETMAPD_SPIN_US` (default
/// 50 µs), and none when the process may run on one CPU only (spinning would then
/// only delay the peer it waits for).
fn spin_budget() -> Duration {
    static S: OnceLock<Duration> = OnceLock::new();
    *S.get_or_init(|| {
        // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity writes at
        // most size_of::<cpu_set_t>() bytes into it.
        let cpus = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
                libc::CPU_COUNT(&set)
            } else {
                1
            }
        };
        if cpus < 2 {
            return Duration::ZERO;
        }
        let us = std::env::var("NETMAPD_SPIN_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50u64);
        Duration::from_micros(us)
    })
}

thread_local! {
    /// Spins in a row that ended without the ring moving, and waits left to skip
    /// spinning: spinning pays only while the peer answers within the budget.
    static SPIN_MISSES: Cell<u32> = const { Cell::new(0) };
    static SPIN_SKIP: Cell<u32> = const { Cell::new(0) };
}

/// Whether this wait should spin first. After 4 spins in a row that found nothing
/// (the peer is slow, or the CPUs are oversubscribed and spinning only takes them
/// from others), the next 64 waits go straight to sleep, then spinning is tried again.
fn spin_pays() -> bool {
    SPIN_SKIP.with(|s| {
        if s.get() > 0 {
            s.set(s.get() - 1);
            false
        } else {
            true
        }
    })
}

fn spin_result(moved: bool) {
    SPIN_MISSES.with(|m| {
        if moved {
            m.set(0);
        } else {
            m.set(m.get() + 1);
            if m.get() >= 4 {
                m.set(0);
                SPIN_SKIP.with(|s| s.set(64));
            }
        }
    });
}

enum Poll {
    /// Not ours: the kernel path for the whole call.
    Kernel,
    Done(c_int),
}

/// poll() over a set holding in-process descriptors. Ready ones answer at once; when
/// none is, and the set holds only in-process descriptors with one ring to wait on,
/// the caller sleeps on that ring's futex; any other set sleeps in the kernel.
fn poll_inproc(set: &mut [pollfd], deadline: Option<Instant>, may_sleep_here: bool) -> Poll {
    if disabled() {
        return Poll::Kernel;
    }
    let Some(mem) = region() else {
        return Poll::Kernel;
    };
    let ours: Vec<Option<&Rings>> = set.iter().map(|p| reg(p.fd).and_then(Reg::rings)).collect();
    if ours.iter().all(Option::is_none) {
        return Poll::Kernel;
    }
    let only_ours = ours.iter().all(Option::is_some);
    let mut waits: Vec<(InprocRing, &Rings)> = Vec::new();
    if only_ours {
        for (p, r) in set.iter().zip(&ours) {
            if let Some(r) = r {
                if let Some(w) = wait_ring(r, p.events) {
                    waits.push((w, r));
                }
            }
        }
    }
    loop {
        let mut n = 0;
        for (p, r) in set.iter_mut().zip(&ours) {
            p.revents = match r {
                Some(r) => match check(p.fd, r, p.events, mem) {
                    Some(rev) => rev,
                    None => return Poll::Kernel,
                },
                None => 0,
            };
            n += i32::from(p.revents != 0);
        }
        if !only_ours {
            if n > 0 {
                // The others too, without sleeping, so the answer is complete.
                let mut rest: Vec<pollfd> = set
                    .iter()
                    .zip(&ours)
                    .filter(|(_, r)| r.is_none())
                    .map(|(p, _)| *p)
                    .collect();
                // SAFETY: rest is a valid array of rest.len() pollfds.
                let k = unsafe { (real().poll)(rest.as_mut_ptr(), rest.len() as nfds_t, 0) };
                if k > 0 {
                    let mut it = rest.iter();
                    for (p, r) in set.iter_mut().zip(&ours) {
                        if r.is_none() {
                            if let Some(q) = it.next() {
                                p.revents = q.revents;
                                n += i32::from(q.revents != 0);
                            }
                        }
                    }
                }
                return Poll::Done(n);
            }
            return Poll::Kernel;
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if n > 0 || left == Some(Duration::ZERO) || waits.is_empty() || !may_sleep_here {
            return Poll::Done(n);
        }
        // NIC RX rings this process reads from their sockets (AF_XDP, AF_PACKET): nobody bumps
        // their futex words; it sleeps on the sockets.
        let xs: Vec<std::sync::Arc<RxClient>> = waits
            .iter()
            .filter_map(|(w, r)| {
                queue_reader(r, w, mem).filter(|x| x.reads(&KState::new(mem, w.off)))
            })
            .collect();
        let limit = |d: Duration| left.map_or(d, |l| l.min(d));
        if !xs.is_empty() && xs.len() == waits.len() {
            // RX moderation (as the port worker's): after a stream's batch, let the
            // ring fill before looking again.
            if let Some(p) = xs.iter().filter_map(|x| x.take_pause()).max() {
                std::thread::sleep(limit(p));
                continue;
            }
            let mut pfds: Vec<pollfd> = xs
                .iter()
                .map(|x| pollfd {
                    fd: x.fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            // Slices: a link going down or the daemon taking the ring back is
            // published on the futex, which this sleep does not watch.
            let ms = limit(Duration::from_millis(20)).as_millis() as c_int;
            // SAFETY: pfds is a valid array of pfds.len() pollfds.
            unsafe { (real().poll)(pfds.as_mut_ptr(), pfds.len() as nfds_t, ms) };
            // A socket with an error pending (an AF_PACKET one whose link went down)
            // polls ready at once until the daemon, which watches the link, takes
            // the error (within its 100 ms look): sleep the slice meanwhile instead
            // of spinning.
            if pfds
                .iter()
                .any(|p| p.revents & (libc::POLLERR | libc::POLLHUP) != 0)
            {
                std::thread::sleep(Duration::from_millis(ms.max(0) as u64));
            }
            continue;
        }
        // Several rings (or rings read from sockets among them): wake up now and then
        // to look at the others.
        let slice = if waits.len() > 1 || !xs.is_empty() {
            Some(Duration::from_millis(1))
        } else {
            None
        };
        let timeout = match (left, slice) {
            (Some(l), Some(s)) => Some(l.min(s)),
            (l, s) => l.or(s),
        };
        let ks = KState::new(mem, waits[0].0.off);
        // Spin a little first: on these VMs a futex wake-up across CPUs costs tens of
        // microseconds, longer than a peer usually takes to answer.
        let spin = if spin_pays() {
            spin_budget()
        } else {
            Duration::ZERO
        };
        if !spin.is_zero() {
            let s0 = ks.seq().unwrap_or(0);
            let t0 = Instant::now();
            let mut moved = false;
            let budget = spin.min(left.unwrap_or(spin));
            'spin: while t0.elapsed() < budget {
                // The clock is read once per 64 looks: the word is the cheap part.
                for _ in 0..64 {
                    if ks.seq().unwrap_or(s0) != s0 {
                        moved = true;
                        break 'spin;
                    }
                    std::hint::spin_loop();
                }
            }
            spin_result(moved);
            if moved || waits.len() > 1 {
                continue;
            }
        }
        if ks.futex_enter().is_err() {
            return Poll::Done(n);
        }
        let seen = ks.seq().unwrap_or(0);
        // Re-check after announcing: progress made before the announcement is seen
        // here, progress after it wakes the futex.
        let mut again = 0;
        for (p, r) in set.iter_mut().zip(&ours) {
            if let Some(r) = r {
                p.revents = check(p.fd, r, p.events, mem).unwrap_or(0);
                again += i32::from(p.revents != 0);
            }
        }
        if again == 0 {
            let _ = ks.futex_wait(seen, timeout);
        }
        let _ = ks.futex_leave();
        if again > 0 {
            return Poll::Done(again);
        }
    }
}

/// A poll set holding connections of the preload front end: the futex path when every
/// entry is a connection whose rings this library syncs, else [`rootless::poll_set`].
/// `None` when the set holds no connection.
///
/// # Safety
/// `sigmask` is null or a valid signal set.
unsafe fn poll_rootless(
    set: &mut [pollfd],
    deadline: Option<Instant>,
    sigmask: *const sigset_t,
) -> Option<c_int> {
    if rootless::socket_path().is_none() || !set.iter().any(|p| rootless::is_ours(p.fd)) {
        return None;
    }
    let all_inproc = set
        .iter()
        .all(|p| rootless::is_ours(p.fd) && reg(p.fd).and_then(Reg::rings).is_some());
    if all_inproc {
        if let Poll::Done(n) = poll_inproc(set, deadline, sigmask.is_null()) {
            if n > 0 || sigmask.is_null() {
                return Some(n);
            }
        }
    }
    // SAFETY: sigmask per this function's contract.
    Some(unsafe { rootless::poll_set(set, deadline, sigmask) })
}

/// # Safety
/// As libc's `poll`.
#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut pollfd, nfds: nfds_t, timeout: c_int) -> c_int {
    if !fds.is_null() && nfds > 0 && nfds < 1 << 16 {
        // SAFETY: the caller passes nfds valid pollfds.
        let set = unsafe { std::slice::from_raw_parts_mut(fds, nfds as usize) };
        let deadline = ms_deadline(timeout);
        // SAFETY: no signal mask.
        if let Some(n) = unsafe { poll_rootless(set, deadline, std::ptr::null()) } {
            return n;
        }
        if let Poll::Done(n) = poll_inproc(set, deadline, true) {
            return n;
        }
    }
    // SAFETY: the caller's arguments, passed on unchanged.
    unsafe { (real().poll)(fds, nfds, timeout) }
}

/// # Safety
/// As libc's `ppoll`.
#[no_mangle]
pub unsafe extern "C" fn ppoll(
    fds: *mut pollfd,
    nfds: nfds_t,
    tmo: *const timespec,
    sigmask: *const sigset_t,
) -> c_int {
    if !fds.is_null() && nfds > 0 && nfds < 1 << 16 {
        // SAFETY: the caller passes nfds valid pollfds and a null or valid timespec.
        let (set, t) = unsafe {
            (
                std::slice::from_raw_parts_mut(fds, nfds as usize),
                tmo.as_ref(),
            )
        };
        let deadline = t.map(timespec_deadline);
        // SAFETY: the caller's signal mask, null or valid.
        if let Some(n) = unsafe { poll_rootless(set, deadline, sigmask) } {
            return n;
        }
        // With a signal mask the sleep must be the kernel's (atomic mask change).
        if let Poll::Done(n) = poll_inproc(set, deadline, sigmask.is_null()) {
            if n > 0 || sigmask.is_null() {
                return n;
            }
        }
    }
    // SAFETY: the caller's arguments, passed on unchanged.
    unsafe { (real().ppoll)(fds, nfds, tmo, sigmask) }
}

type SelectFn = unsafe extern "C" fn(
    c_int,
    *mut libc::fd_set,
    *mut libc::fd_set,
    *mut libc::fd_set,
    *mut libc::timeval,
) -> c_int;
type PselectFn = unsafe extern "C" fn(
    c_int,
    *mut libc::fd_set,
    *mut libc::fd_set,
    *mut libc::fd_set,
    *const timespec,
    *const sigset_t,
) -> c_int;

/// When a wait of `ms` milliseconds (negative: no limit), starting now, ends.
fn ms_deadline(ms: c_int) -> Option<Instant> {
    (ms >= 0).then(|| Instant::now() + Duration::from_millis(ms as u64))
}

/// When a wait with timeout `t`, starting now, ends.
fn timespec_deadline(t: &timespec) -> Instant {
    Instant::now()
        + Duration::new(
            t.tv_sec.max(0) as u64,
            t.tv_nsec.clamp(0, 999_999_999) as u32,
        )
}

/// select()/pselect() over sets holding in-process descriptors, through
/// [`poll_inproc`]: `None` = the kernel path for the whole call, with the sets left
/// untouched; they are rewritten only for a `Some` answer. The flag of the answer says
/// it is final: the sets held connections of the preload front end, which the kernel
/// cannot wait on as netmap descriptors.
///
/// # Safety
/// The sets are null or valid fd_sets covering `nfds` descriptors.
unsafe fn select_inproc(
    nfds: c_int,
    rd: *mut libc::fd_set,
    wr: *mut libc::fd_set,
    ex: *mut libc::fd_set,
    deadline: Option<Instant>,
    sigmask: *const sigset_t,
) -> Option<(c_int, bool)> {
    let may_sleep_here = sigmask.is_null();
    if !(1..=libc::FD_SETSIZE as c_int).contains(&nfds) {
        return None;
    }
    // SAFETY: each set is null or a valid fd_set (the caller's contract).
    let isset =
        |set: *mut libc::fd_set, fd: c_int| !set.is_null() && unsafe { libc::FD_ISSET(fd, set) };
    let mut pfds = Vec::new();
    for fd in 0..nfds {
        let mut ev = 0;
        if isset(rd, fd) {
            ev |= libc::POLLIN;
        }
        if isset(wr, fd) {
            ev |= libc::POLLOUT;
        }
        if isset(ex, fd) {
            ev |= libc::POLLPRI;
        }
        if ev != 0 {
            pfds.push(pollfd {
                fd,
                events: ev,
                revents: 0,
            });
        }
    }
    // SAFETY: sigmask per the caller's contract.
    let whole = match unsafe { poll_rootless(&mut pfds, deadline, sigmask) } {
        Some(k) if k < 0 => return Some((k, true)),
        Some(_) => true,
        None => {
            if !pfds
                .iter()
                .any(|p| reg(p.fd).and_then(Reg::rings).is_some())
            {
                return None;
            }
            let Poll::Done(_) = poll_inproc(&mut pfds, deadline, may_sleep_here) else {
                return None;
            };
            false
        }
    };
    let mut n = 0;
    for set in [rd, wr, ex] {
        if !set.is_null() {
            // SAFETY: a valid fd_set (the caller's contract).
            unsafe { libc::FD_ZERO(set) };
        }
    }
    for p in &pfds {
        let r = p.revents;
        let mut mark = |set: *mut libc::fd_set, on: bool| {
            if on && !set.is_null() {
                // SAFETY: a valid fd_set and an fd below nfds <= FD_SETSIZE.
                unsafe { libc::FD_SET(p.fd, set) };
                n += 1;
            }
        };
        mark(
            rd,
            p.events & libc::POLLIN != 0 && r & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0,
        );
        mark(
            wr,
            p.events & libc::POLLOUT != 0 && r & (libc::POLLOUT | libc::POLLERR) != 0,
        );
        mark(ex, p.events & libc::POLLPRI != 0 && r & libc::POLLPRI != 0);
    }
    Some((n, whole))
}

/// # Safety
/// As libc's `select`.
#[no_mangle]
pub unsafe extern "C" fn select(
    nfds: c_int,
    rd: *mut libc::fd_set,
    wr: *mut libc::fd_set,
    ex: *mut libc::fd_set,
    tmo: *mut libc::timeval,
) -> c_int {
    // SAFETY: the caller's timeout is null or valid.
    let deadline = unsafe { tmo.as_ref() }.map(|t| {
        Instant::now()
            + Duration::new(
                t.tv_sec.max(0) as u64,
                (t.tv_usec.clamp(0, 999_999) * 1000) as u32,
            )
    });
    // select_inproc leaves the sets alone when it answers None, so the kernel path
    // below gets them as the caller passed them.
    // SAFETY: the caller's sets, valid for nfds descriptors.
    if let Some((n, _)) = unsafe { select_inproc(nfds, rd, wr, ex, deadline, std::ptr::null()) } {
        return n;
    }
    let real = next_fn!("select", SelectFn);
    // SAFETY: the caller's arguments, passed on unchanged.
    unsafe { real(nfds, rd, wr, ex, tmo) }
}

/// # Safety
/// As libc's `pselect`.
#[no_mangle]
pub unsafe extern "C" fn pselect(
    nfds: c_int,
    rd: *mut libc::fd_set,
    wr: *mut libc::fd_set,
    ex: *mut libc::fd_set,
    tmo: *const timespec,
    sigmask: *const sigset_t,
) -> c_int {
    // SAFETY: the caller's timeout is null or valid.
    let deadline = unsafe { tmo.as_ref() }.map(timespec_deadline);
    // Copies: a Some(0) answer below has cleared the sets, and the kernel path then
    // needs them as they were.
    // SAFETY: the caller's sets are null or valid.
    let saved: [Option<libc::fd_set>; 3] = unsafe {
        [
            rd.as_ref().copied(),
            wr.as_ref().copied(),
            ex.as_ref().copied(),
        ]
    };
    // With a signal mask the sleep must be the kernel's (atomic mask change), unless the
    // answer is final (connections of the preload front end).
    // SAFETY: the caller's sets, valid for nfds descriptors.
    if let Some((n, whole)) = unsafe { select_inproc(nfds, rd, wr, ex, deadline, sigmask) } {
        if n > 0 || sigmask.is_null() || whole {
            return n;
        }
    }
    for (set, s) in [rd, wr, ex].into_iter().zip(saved) {
        if let (false, Some(s)) = (set.is_null(), s) {
            // SAFETY: set is the caller's valid fd_set.
            unsafe { *set = s };
        }
    }
    let real = next_fn!("pselect", PselectFn);
    // SAFETY: the caller's arguments, passed on unchanged.
    unsafe { real(nfds, rd, wr, ex, tmo, sigmask) }
}

// ---------------------------------------------------------------------------------
// The preload front end's extra entry points: opening the device, epoll, dup.
// ---------------------------------------------------------------------------------

type OpenFn = unsafe extern "C" fn(*const libc::c_char, c_int, libc::c_uint) -> c_int;
type OpenatFn = unsafe extern "C" fn(c_int, *const libc::c_char, c_int, libc::c_uint) -> c_int;
type Open2Fn = unsafe extern "C" fn(*const libc::c_char, c_int) -> c_int;
type Openat2Fn = unsafe extern "C" fn(c_int, *const libc::c_char, c_int) -> c_int;

/// `open` and its relatives (`openat`, the 64-bit and fortify variants): the device
/// under the preload front end, else libc's function `$lit` with the same arguments.
/// `$dirfd`, `$path` and `$flags` name what `rootless::names_device` and
/// `rootless::open_device` need among the parameters.
macro_rules! open_variant {
    ($name:ident, $lit:literal, $ty:ty, $dirfd:expr, $path:ident, $flags:ident,
     ($($p:ident: $t:ty),*)) => {
        /// # Safety
        /// As libc's function of this name.
        #[no_mangle]
        pub unsafe extern "C" fn $name($($p: $t),*) -> c_int {
            if rootless::names_device($dirfd, $path) {
                return rootless::open_device($flags);
            }
            let f = next_fn!($lit, $ty);
            // SAFETY: the caller's arguments, passed on unchanged.
            unsafe { f($($p),*) }
        }
    };
}
open_variant!(open, "open", OpenFn, libc::AT_FDCWD, path, flags,
    (path: *const libc::c_char, flags: c_int, mode: libc::c_uint));
open_variant!(open64, "open64", OpenFn, libc::AT_FDCWD, path, flags,
    (path: *const libc::c_char, flags: c_int, mode: libc::c_uint));
open_variant!(openat, "openat", OpenatFn, dirfd, path, flags,
    (dirfd: c_int, path: *const libc::c_char, flags: c_int, mode: libc::c_uint));
open_variant!(openat64, "openat64", OpenatFn, dirfd, path, flags,
    (dirfd: c_int, path: *const libc::c_char, flags: c_int, mode: libc::c_uint));
open_variant!(__open_2, "__open_2", Open2Fn, libc::AT_FDCWD, path, flags,
    (path: *const libc::c_char, flags: c_int));
open_variant!(__open64_2, "__open64_2", Open2Fn, libc::AT_FDCWD, path, flags,
    (path: *const libc::c_char, flags: c_int));
open_variant!(__openat_2, "__openat_2", Openat2Fn, dirfd, path, flags,
    (dirfd: c_int, path: *const libc::c_char, flags: c_int));
open_variant!(__openat64_2, "__openat64_2", Openat2Fn, dirfd, path, flags,
    (dirfd: c_int, path: *const libc::c_char, flags: c_int));

type EpollCtlFn = unsafe extern "C" fn(c_int, c_int, c_int, *mut libc::epoll_event) -> c_int;
type EpollWaitFn = unsafe extern "C" fn(c_int, *mut libc::epoll_event, c_int, c_int) -> c_int;
type EpollPwaitFn =
    unsafe extern "C" fn(c_int, *mut libc::epoll_event, c_int, c_int, *const sigset_t) -> c_int;

/// # Safety
/// As libc's `epoll_ctl`.
#[no_mangle]
pub unsafe extern "C" fn epoll_ctl(
    epfd: c_int,
    op: c_int,
    fd: c_int,
    ev: *mut libc::epoll_event,
) -> c_int {
    let real = next_fn!("epoll_ctl", EpollCtlFn);
    if rootless::is_ours(fd) {
        // SAFETY: the caller's arguments.
        return unsafe { rootless::epoll_ctl(real, epfd, op, fd, ev) };
    }
    // SAFETY: the caller's arguments, passed on unchanged.
    unsafe { real(epfd, op, fd, ev) }
}

/// # Safety
/// As libc's `epoll_wait`.
#[no_mangle]
pub unsafe extern "C" fn epoll_wait(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    let real = next_fn!("epoll_wait", EpollWaitFn);
    // SAFETY: the caller's arguments; the closure passes a valid array of its length.
    let r = unsafe {
        rootless::epoll_wait(
            &|e, m, t| real(epfd, e, m, t),
            epfd,
            events,
            max,
            ms_deadline(timeout),
        )
    };
    if let Some(n) = r {
        return n;
    }
    // SAFETY: the caller's arguments, passed on unchanged.
    unsafe { real(epfd, events, max, timeout) }
}

/// # Safety
/// As libc's `epoll_pwait`.
#[no_mangle]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
    sigmask: *const sigset_t,
) -> c_int {
    let real = next_fn!("epoll_pwait", EpollPwaitFn);
    // SAFETY: the caller's arguments; the closure passes a valid array of its length.
    let r = unsafe {
        rootless::epoll_wait(
            &|e, m, t| real(epfd, e, m, t, sigmask),
            epfd,
            events,
            max,
            ms_deadline(timeout),
        )
    };
    if let Some(n) = r {
        return n;
    }
    // SAFETY: the caller's arguments, passed on unchanged.
    unsafe { real(epfd, events, max, timeout, sigmask) }
}

/// A new descriptor `new` for the same open file as `old`: the same table entries.
fn dup_entries(old: c_int, new: c_int) {
    if new < 0 || new == old {
        return;
    }
    if let (Some(s), Some(d)) = (slot(old), slot(new)) {
        d.store(s.load(Ordering::Acquire), Ordering::Release);
    }
    rootless::set_ours(new, rootless::is_ours(old));
}

type DupFn = unsafe extern "C" fn(c_int) -> c_int;
type Dup2Fn = unsafe extern "C" fn(c_int, c_int) -> c_int;
type Dup3Fn = unsafe extern "C" fn(c_int, c_int, c_int) -> c_int;
type FcntlFn = unsafe extern "C" fn(c_int, c_int, libc::c_long) -> c_int;

/// # Safety
/// As libc's `dup`.
#[no_mangle]
pub unsafe extern "C" fn dup(old: c_int) -> c_int {
    let f = next_fn!("dup", DupFn);
    // SAFETY: the caller's argument.
    let r = unsafe { f(old) };
    dup_entries(old, r);
    r
}

/// # Safety
/// As libc's `dup2`.
#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if old != new {
        forget(new);
    }
    let f = next_fn!("dup2", Dup2Fn);
    // SAFETY: the caller's arguments.
    let r = unsafe { f(old, new) };
    dup_entries(old, r);
    r
}

/// # Safety
/// As libc's `dup3`.
#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if old != new {
        forget(new);
    }
    let f = next_fn!("dup3", Dup3Fn);
    // SAFETY: the caller's arguments.
    let r = unsafe { f(old, new, flags) };
    dup_entries(old, r);
    r
}

/// Forgets the table entries of a descriptor about to be closed or replaced: its
/// registration, and under the preload front end its connection mark and its epoll
/// entries (as a watched connection, or as an epoll set).
fn forget(fd: c_int) {
    if let Some(s) = slot(fd) {
        // The entry is leaked, not freed: another thread may still be reading it.
        let p = s.swap(std::ptr::null_mut(), Ordering::AcqRel);
        // The registration's last descriptor: its NIC queues go back to the daemon.
        if !p.is_null() && !REGS.iter().any(|e| e.load(Ordering::Acquire) == p) {
            // SAFETY: table entries are leaked Boxes, never freed (see `reg`).
            let r = unsafe { &*p };
            if let Some(Some(rings)) = r.rings.get() {
                release_readers(rings);
            }
        }
    }
    if rootless::socket_path().is_some() {
        rootless::set_ours(fd, false);
        rootless::epoll_forget(fd);
    }
}

macro_rules! fcntl_variant {
    ($name:ident, $lit:literal) => {
        /// # Safety
        /// As libc's function of this name.
        #[no_mangle]
        pub unsafe extern "C" fn $name(fd: c_int, cmd: c_int, arg: libc::c_long) -> c_int {
            let f = next_fn!($lit, FcntlFn);
            // SAFETY: the caller's arguments.
            let r = unsafe { f(fd, cmd, arg) };
            if cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC {
                dup_entries(fd, r);
            }
            r
        }
    };
}
fcntl_variant!(fcntl, "fcntl");
fcntl_variant!(fcntl64, "fcntl64");

type EpollPwait2Fn = unsafe extern "C" fn(
    c_int,
    *mut libc::epoll_event,
    c_int,
    *const timespec,
    *const sigset_t,
) -> c_int;

/// # Safety
/// As libc's `epoll_pwait2`.
#[no_mangle]
pub unsafe extern "C" fn epoll_pwait2(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    tmo: *const timespec,
    sigmask: *const sigset_t,
) -> c_int {
    let real = next_fn!("epoll_pwait2", EpollPwait2Fn);
    // SAFETY: the caller's timeout, null or valid.
    let deadline = unsafe { tmo.as_ref() }.map(timespec_deadline);
    let wait = |e: *mut libc::epoll_event, m: c_int, t: c_int| {
        let ts = timespec {
            tv_sec: libc::time_t::from(t.max(0) / 1000),
            tv_nsec: libc::c_long::from(t.max(0) % 1000) * 1_000_000,
        };
        let tp = if t < 0 {
            std::ptr::null()
        } else {
            &ts as *const timespec
        };
        // SAFETY: the caller's set and mask; e/m a valid array of the given length.
        unsafe { real(epfd, e, m, tp, sigmask) }
    };
    // SAFETY: the caller's arguments; the closure passes a valid array of its length.
    if let Some(n) = unsafe { rootless::epoll_wait(&wait, epfd, events, max, deadline) } {
        return n;
    }
    // SAFETY: the caller's arguments, passed on unchanged.
    unsafe { real(epfd, events, max, tmo, sigmask) }
}

type PollChkFn = unsafe extern "C" fn(*mut pollfd, nfds_t, c_int, size_t) -> c_int;
type PpollChkFn =
    unsafe extern "C" fn(*mut pollfd, nfds_t, *const timespec, *const sigset_t, size_t) -> c_int;

/// glibc's `_FORTIFY_SOURCE` poll: the buffer check is libc's (it aborts on overflow),
/// the rest is [`poll`].
///
/// # Safety
/// As glibc's `__poll_chk`.
#[no_mangle]
pub unsafe extern "C" fn __poll_chk(
    fds: *mut pollfd,
    nfds: nfds_t,
    timeout: c_int,
    fdslen: size_t,
) -> c_int {
    if (fdslen / std::mem::size_of::<pollfd>()) < nfds as usize {
        let real = next_fn!("__poll_chk", PollChkFn);
        // SAFETY: the caller's arguments: libc reports the overflow.
        return unsafe { real(fds, nfds, timeout, fdslen) };
    }
    // SAFETY: the caller's arguments, checked above.
    unsafe { poll(fds, nfds, timeout) }
}

/// glibc's `_FORTIFY_SOURCE` ppoll, as [`__poll_chk`].
///
/// # Safety
/// As glibc's `__ppoll_chk`.
#[no_mangle]
pub unsafe extern "C" fn __ppoll_chk(
    fds: *mut pollfd,
    nfds: nfds_t,
    tmo: *const timespec,
    sigmask: *const sigset_t,
    fdslen: size_t,
) -> c_int {
    if (fdslen / std::mem::size_of::<pollfd>()) < nfds as usize {
        let real = next_fn!("__ppoll_chk", PpollChkFn);
        // SAFETY: the caller's arguments: libc reports the overflow.
        return unsafe { real(fds, nfds, tmo, sigmask, fdslen) };
    }
    // SAFETY: the caller's arguments, checked above.
    unsafe { ppoll(fds, nfds, tmo, sigmask) }
}
