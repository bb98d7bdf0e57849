//! An AF_XDP queue's RX side read by the client process itself: no daemon thread
//! between the kernel and the program.
//!
//! Why: with the port worker in between, each batch of frames costs a worker
//! wake-up and pass on top of the client's own (`bench/nic.sh` measured the worker
//! as the whole difference to netsniff-ng's CPU per frame). A preloaded client that
//! may take the daemon's descriptors (`pidfd_getfd`, i.e. one that could ptrace the
//! daemon anyway) maps the queue's RX and fill rings and the held-buffer map
//! ([`super::held`]) and runs the daemon's own exchange ([`super::queue::Exchange`])
//! in its sync, sleeping on the socket itself.
//!
//! Who reads the rings is the RX ring's state-block word `xsk_owner` (a process id,
//! 0 for the daemon), changed only under the ring's busy flag by whoever syncs: a
//! client claims it at each sync (from whoever read before: the busy flag serialises
//! readers, and all their state is shared) and gives it back when its registration goes;
//! the daemon takes it back when that process is gone ([`owner_alive`]). Whoever
//! reads next reloads the ring indices from the shared ones. Buffers stay accounted
//! whoever reads: the held map is in shared memory and the exchange changes it in an
//! order a death cannot break; at close the daemon returns what it marks.
#![allow(unsafe_code)]

use super::held::{Held, SharedMap};
use super::libxdp::{
    MmapOffsets, RingOffset, XskRing, SOL_XDP, XDP_MMAP_OFFSETS, XDP_PGOFF_RX_RING,
    XDP_UMEM_PGOFF_FILL_RING,
};
use super::queue::{Exchange, Exchanged};
use crate::af_packet::socket::getsockopt;
use crate::kring::Kring;
use crate::kstate::{KState, XskHandle};
use crate::pidfd;
use crate::ringmem::RingView;
use crate::vale::BufGeom;
use crate::NetifError;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const AF_XDP: libc::c_int = 44;

/// A mapping of one of the socket's rings, unmapped on drop.
struct RingMap {
    ptr: *mut u8,
    len: usize,
}

impl RingMap {
    fn new(
        fd: RawFd,
        off: &RingOffset,
        entries: u32,
        entry_bytes: u64,
        pgoff: i64,
    ) -> io::Result<Self> {
        let len = usize::try_from(off.desc + u64::from(entries) * entry_bytes)
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: a fresh shared mapping of the socket's ring at its documented page
        // offset; the kernel checks the length against the ring's size.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { ptr: p.cast(), len })
    }
}

impl Drop for RingMap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// The two rings, used by one sync at a time (the ring's busy flag; the mutex only
/// makes that explicit to the compiler).
struct Rings {
    rx: XskRing,
    fill: XskRing,
    /// The last sync that brought a stream's batch.
    last: Option<Instant>,
    /// The pause the next wait takes before sleeping on the socket.
    pause: Option<Duration>,
    /// Frames are streaming in (see [`XskClient::take_pause`]).
    streaming: bool,
    /// The pause the stream's rate calls for.
    pause_len: Duration,
}

/// The longest RX pause of a client reading a queue itself, and what it waits for:
/// three quarters of its netmap ring. Longer than the port worker's
/// ([`crate::nic::RX_PAUSE_MAX`], half a ring): here the kernel's RX ring (as large
/// as the buffers lent to the kernel, 8192 with the default pool: 16 ms at 0.5 Mpps)
/// holds what arrives beyond, so overshooting loses nothing, and each pause is the
/// client's one wake-up per batch — the cost that decides its CPU per frame against
/// netsniff-ng's (`bench/nic.sh`). A stream's frames wait at most this long.
/// Measured (2 M frames at ~0.45 Mpps, `perf stat` on the receiver, three runs
/// each, alternating): half a ring and 1 ms, 165–190 ms of CPU and 5,400–5,800
/// context switches; three quarters and 2 ms, 125–138 ms and 3,600–4,100.
const CLIENT_RX_PAUSE_MAX: Duration = Duration::from_millis(2);

/// A client's hold on one AF_XDP queue (see the module doc).
pub struct XskClient {
    // Dropped first: the rings' pointers lead into the maps.
    rings: Mutex<Rings>,
    _rx_map: RingMap,
    _fill_map: RingMap,
    held: SharedMap,
    sock: OwnedFd,
    geom: BufGeom,
    shift: Option<u32>,
    slots: u32,
}

// SAFETY: the raw pointers (ring maps) lead into mappings this value owns; the rings
// are reached only under the mutex.
unsafe impl Send for XskClient {}
// SAFETY: as Send.
unsafe impl Sync for XskClient {}

impl std::fmt::Debug for XskClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskClient")
            .field("sock", &self.sock.as_raw_fd())
            .finish()
    }
}

/// This process's id, cached (getpid is a system call each time: glibc keeps no
/// copy), and forgotten in a child after fork.
fn my_pid() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static PID: AtomicU32 = AtomicU32::new(0);
    static ATFORK: std::sync::Once = std::sync::Once::new();
    extern "C" fn forget() {
        PID.store(0, Ordering::Relaxed);
    }
    ATFORK.call_once(|| {
        // SAFETY: registers a child handler that only resets an atomic integer.
        unsafe { libc::pthread_atfork(None, None, Some(forget)) };
    });
    match PID.load(Ordering::Relaxed) {
        0 => {
            let p = std::process::id();
            PID.store(p, Ordering::Relaxed);
            p
        }
        p => p,
    }
}

/// A process the daemon watches: the one reading a queue itself. Its pidfd becomes
/// readable when it exits (a zombie counts as gone: its descriptors are closed), so
/// a look costs one `poll`, not a `/proc` read.
#[derive(Debug)]
pub struct Watched {
    pub pid: u32,
    pidfd: Option<OwnedFd>,
}

impl Watched {
    pub fn new(pid: u32) -> Self {
        Self {
            pid,
            pidfd: pidfd::open(pid).ok(),
        }
    }

    /// Whether the process still runs.
    pub fn alive(&self) -> bool {
        let Some(fd) = &self.pidfd else {
            return false;
        };
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no wait.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        n == 0
    }
}

impl XskClient {
    /// Takes the daemon's socket and held map (`h`), and maps the RX and fill rings.
    /// `geom` is the buffer pool, `slots` the netmap ring's size.
    pub fn attach(h: XskHandle, geom: BufGeom, slots: u32) -> io::Result<Self> {
        let sock = pidfd::take_fd(h.pid, h.sock_fd)?;
        let fd = sock.as_raw_fd();
        // The descriptor numbers come from shared memory: make sure this is a socket
        // of the kind we expect before mapping anything of it.
        let domain: libc::c_int = getsockopt(fd, libc::SOL_SOCKET, libc::SO_DOMAIN)?;
        if domain != AF_XDP {
            return Err(io::Error::from_raw_os_error(libc::ENOTSOCK));
        }
        let held = SharedMap::open(pidfd::take_fd(h.pid, h.held_fd)?)?;
        let off: MmapOffsets = getsockopt(fd, SOL_XDP, XDP_MMAP_OFFSETS)?;
        let rx_map = RingMap::new(fd, &off.rx, h.rx_size, 16, XDP_PGOFF_RX_RING)?;
        let fill_map = RingMap::new(fd, &off.fill, h.fill_size, 8, XDP_UMEM_PGOFF_FILL_RING)?;
        // SAFETY: both maps hold their ring's entries past `desc` (made so above) and
        // live as long as the rings (fields dropped after `rings`).
        let (rx, fill) = unsafe {
            (
                XskRing::over(rx_map.ptr, &off.rx, h.rx_size, false),
                XskRing::over(fill_map.ptr, &off.fill, h.fill_size, true),
            )
        };
        let total = geom.total.min((held.mem().len() * 8) as u32);
        Ok(Self {
            rings: Mutex::new(Rings {
                rx,
                fill,
                last: None,
                pause: None,
                streaming: false,
                pause_len: crate::nic::RX_PAUSE_MIN,
            }),
            _rx_map: rx_map,
            _fill_map: fill_map,
            held,
            sock,
            geom: BufGeom { total, ..geom },
            shift: geom
                .size
                .is_power_of_two()
                .then(|| geom.size.trailing_zeros()),
            slots,
        })
    }

    /// The socket, to sleep on (POLLIN: frames in the RX ring).
    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Makes this process the ring's reader (whoever read it before). Called under
    /// the ring's busy flag, which serialises every reader: the rings' indices and
    /// the held map are all in shared memory, so readers may follow one another.
    /// Two processes syncing one ring is a program bug in netmap too, but a common
    /// pattern must keep working: a child after fork (it inherits the mappings and
    /// the socket) receiving while its parent, which synced first, lives on idle —
    /// refusing it there would leave the ring to nobody. The daemon watches whoever
    /// claimed last.
    pub fn claim(&self, ks: &KState) -> bool {
        let me = my_pid();
        match ks.xsk_owner() {
            Ok(o) if o == me => true,
            Ok(o) => ks.swap_xsk_owner(o, me).unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Whether this process reads the ring now.
    pub fn reads(&self, ks: &KState) -> bool {
        ks.xsk_owner().is_ok_and(|o| o == my_pid())
    }

    /// Gives the ring back to the daemon (the registration goes away), if this
    /// process reads it. The caller then rings the port's doorbell so the daemon
    /// reads again at once.
    pub fn release(&self, ks: &KState) {
        let me = my_pid();
        let _ = ks.swap_xsk_owner(me, 0);
    }

    /// The exchange, as the daemon's rxsync does it, on ring `k` (state loaded and
    /// validated by the caller, which holds the busy flag and has claimed the ring).
    /// Counts what it received in the ring's state block.
    pub fn rxsync(
        &self,
        k: &mut Kring,
        rv: &RingView,
        ks: &KState,
    ) -> Result<Exchanged, NetifError> {
        let held = Held::over(&self.held, self.geom.total)?;
        let x = Exchange {
            geom: self.geom,
            shift: self.shift,
            held,
        };
        let mut g = self
            .rings
            .lock()
            .map_err(|_| NetifError::Inval("xsk rings poisoned".into()))?;
        let r = &mut *g;
        // The daemon (or another holder) may have used the rings since: start from
        // the shared indices.
        r.rx.resync(false);
        r.fill.resync(true);
        let out = x.run(&mut r.rx, &mut r.fill, k, rv, None)?;
        if out.frames + out.bad == 0 {
            return Ok(out);
        }
        if r.fill.needs_wakeup() {
            // SAFETY: recvfrom with no buffer on the socket only wakes the driver.
            unsafe {
                libc::recvfrom(
                    self.fd(),
                    std::ptr::null_mut(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
        }
        ks.count_sent(u64::from(out.frames), out.bytes)?;
        if u64::from(out.frames) >= crate::nic::RX_BATCH_MIN {
            // A stream's batch: the rate since the previous batch sets the pause. A
            // few frames that came while the program handled a batch do not: over
            // microseconds, arrivals in bursts would make the rate look ten times
            // what it is (pauses of a tenth of a millisecond, `strace`: 275 frames
            // per sleep at 0.45 Mpps instead of 900).
            let now = Instant::now();
            if let Some(prev) = r.last {
                r.pause_len = crate::nic::rx_pause_to(
                    u64::from(out.frames),
                    now.duration_since(prev),
                    self.slots / 4 * 3,
                    CLIENT_RX_PAUSE_MAX,
                );
            }
            r.last = Some(now);
            r.streaming = true;
        }
        if r.streaming && out.frames > 0 {
            r.pause = Some(r.pause_len);
        }
        Ok(out)
    }

    /// RX moderation, as the daemon's worker does it: after a sync that brought a
    /// stream's frames, the next wait first lets the ring fill for a while (once; a
    /// wait that then finds nothing ends the stream and sleeps on the socket).
    pub fn take_pause(&self) -> Option<Duration> {
        let mut r = self.rings.lock().ok()?;
        let p = r.pause.take();
        if p.is_none() {
            r.streaming = false;
        }
        p
    }
}

/// Waits for an RCU grace period (`membarrier(MEMBARRIER_CMD_GLOBAL)`): every frame
/// delivery the kernel had begun into a socket is over when it returns.
pub fn grace_period() {
    // SAFETY: membarrier with a command and no flags touches no memory of ours.
    unsafe { libc::syscall(libc::SYS_membarrier, 1, 0, 0) };
}
