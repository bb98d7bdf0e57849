//! A NIC RX queue read by the client process itself: no daemon thread between the
//! kernel and the program.
//!
//! Why: with the port worker in between, each batch of frames costs a worker wake-up
//! and a pass on top of the client's own (`bench/nic.sh` measured the worker as the
//! whole difference to netsniff-ng's CPU per frame). A preloaded client that may take
//! the daemon's descriptors (`pidfd_getfd`, i.e. one that could ptrace the daemon
//! anyway) takes the queue's socket and reads its rings in its own sync, sleeping on
//! the socket itself. Two sources: an AF_XDP socket ([`crate::xdp::client`]: the
//! exchange of buffers) and an AF_PACKET socket's TPACKET_V3 ring
//! ([`crate::af_packet::client`]: the daemon's copy, run by the client).
//!
//! Who reads is the RX ring's state-block word `reader` (a process id, 0 for the
//! daemon), changed only under the ring's busy flag by whoever syncs: a client claims
//! it at each sync (from whoever read before: the busy flag serialises readers, and
//! all their state is shared) and gives it back when its registration goes; the daemon
//! takes it back when that process is gone ([`ClientReaders::reads`]).
#![allow(unsafe_code)]

use crate::af_packet::client::TpacketSource;
use crate::af_packet::Stats;
use crate::kring::Kring;
use crate::kstate::{KState, ReaderHandle, ReaderSocket, KIND_NIC};
use crate::nic::RxRate;
use crate::pidfd;
use crate::ringmem::RingView;
use crate::vale::BufGeom;
use crate::xdp::client::XskSource;
use crate::NetifError;
use netmap_pool::SharedMem;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest RX pause of a client reading a queue itself; the pause aims at a full
/// netmap ring (the time the stream's rate, [`RxRate`], takes to bring a ring's worth
/// of frames; less where the kernel could not hold it: [`pause_target`]). Longer than
/// the port worker's ([`crate::nic::RX_PAUSE_MAX`], half a ring): here the kernel's
/// ring (AF_XDP: as large as the buffers lent to the kernel, 8192 with the default
/// pool, 16 ms at 0.5 Mpps; AF_PACKET: 16 MiB of blocks) holds what arrives beyond, so
/// overshooting loses nothing (the program's next sync takes the rest without
/// sleeping), and each pause is the client's one wake-up per batch — the cost that
/// decides its CPU per frame against netsniff-ng's (`bench/nic.sh`). A stream's
/// frames wait at most this long. Measured on a veth at 0.55–0.63 Mpps (2 M
/// frames a run, three runs each, alternating, 2026-12-04): with each batch's own rate
/// and three quarters of a ring, 1.6–1.9 wake-ups per 1000 frames and 51–58 ns of CPU
/// per frame (AF_XDP and AF_PACKET alike); with the stream's rate, 1.2 and 37–52 ns;
/// aiming at a full ring, 0.94–0.95 and 39–43 ns.
const CLIENT_RX_PAUSE_MAX: Duration = Duration::from_millis(2);

/// What an RX pause waits for: a full netmap ring of `slots` slots, as long as the
/// kernel can hold a third more than that meanwhile (`kernel_room` frames; `None`:
/// far more). The rate moves between two pauses, and beyond its room the kernel
/// drops: an AF_XDP queue lent few buffers (a small pool) waits for three quarters of
/// what it was lent, as every client did before pauses aimed at a full ring.
fn pause_target(slots: u32, kernel_room: Option<u32>) -> u32 {
    let full = slots.saturating_sub(1);
    kernel_room.map_or(full, |k| full.min(k / 4 * 3)).max(1)
}

/// Where the frames come from.
#[derive(Debug)]
enum Source {
    Xsk(XskSource),
    Tpacket(TpacketSource),
}

/// One sync at a time (the ring's busy flag; the mutex only makes that explicit to
/// the compiler).
#[derive(Debug)]
struct State {
    src: Source,
    /// The rate frames come in (every sync that took some).
    rate: RxRate,
    /// The pause the next wait takes before sleeping on the socket.
    pause: Option<Duration>,
    /// Frames are streaming in (see [`RxClient::take_pause`]).
    streaming: bool,
    /// The pause the stream's rate calls for.
    pause_len: Duration,
}

/// A client's hold on one NIC RX queue (see the module doc).
#[derive(Debug)]
pub struct RxClient {
    st: Mutex<State>,
    fd: RawFd,
    /// The frames an RX pause waits for.
    target: u32,
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

impl RxClient {
    /// Takes the daemon's socket (and what else `h` names) and maps its rings. `geom`
    /// is the buffer pool, `slots` the netmap ring's size.
    pub fn attach(h: ReaderHandle, geom: BufGeom, slots: u32) -> io::Result<Self> {
        let src = match h.socket {
            ReaderSocket::Xsk { .. } => Source::Xsk(XskSource::attach(h, geom)?),
            ReaderSocket::Tpacket => Source::Tpacket(TpacketSource::attach(h, geom)?),
        };
        let fd = match &src {
            Source::Xsk(x) => x.fd(),
            Source::Tpacket(t) => t.fd(),
        };
        let target = pause_target(
            slots,
            match &src {
                Source::Xsk(x) => Some(x.kernel_room(slots)),
                // 16 MiB of blocks: thousands of frames more than any netmap ring.
                Source::Tpacket(_) => None,
            },
        );
        Ok(Self {
            st: Mutex::new(State {
                src,
                rate: RxRate::default(),
                pause: None,
                streaming: false,
                pause_len: crate::nic::RX_PAUSE_MIN,
            }),
            fd,
            target,
        })
    }

    /// The socket, to sleep on (POLLIN: frames in its ring).
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Makes this process the ring's reader (whoever read it before). Called under
    /// the ring's busy flag, which serialises every reader: the rings' indices and
    /// positions are all in shared memory, so readers may follow one another.
    /// Two processes syncing one ring is a program bug in netmap too, but a common
    /// pattern must keep working: a child after fork (it inherits the mappings and
    /// the socket) receiving while its parent, which synced first, lives on idle —
    /// refusing it there would leave the ring to nobody. The daemon watches whoever
    /// claimed last.
    pub fn claim(&self, ks: &KState) -> bool {
        let me = my_pid();
        match ks.reader() {
            Ok(o) if o == me => true,
            Ok(o) => ks.swap_reader(o, me).unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Whether this process reads the ring now.
    pub fn reads(&self, ks: &KState) -> bool {
        ks.reader().is_ok_and(|o| o == my_pid())
    }

    /// Gives the ring back to the daemon (the registration goes away), if this
    /// process reads it. The caller then rings the port's doorbell so the daemon
    /// reads again at once.
    pub fn release(&self, ks: &KState) {
        let me = my_pid();
        let _ = ks.swap_reader(me, 0);
    }

    /// Reads the queue into ring `k` as the daemon's rxsync does (state loaded and
    /// validated by the caller, which holds the busy flag and has claimed the ring).
    /// Counts what it received (and dropped) in the ring's state block. Returns the
    /// frames received.
    pub fn rxsync(
        &self,
        k: &mut Kring,
        rv: &RingView,
        ks: &KState,
        mem: SharedMem,
    ) -> Result<u32, NetifError> {
        let mut g = self
            .st
            .lock()
            .map_err(|_| NetifError::Inval("in-client reader poisoned".into()))?;
        let r = &mut *g;
        let (frames, bytes, drops) = match &mut r.src {
            Source::Xsk(x) => {
                let out = x.read(k, rv)?;
                (out.frames, out.bytes, 0)
            }
            Source::Tpacket(t) => {
                let mut st = Stats::default();
                t.read(k, rv, ks, mem, &mut st)?;
                (st.rx_packets as u32, st.rx_bytes, st.rx_drops)
            }
        };
        if drops > 0 {
            ks.count_drops(drops)?;
        }
        if frames == 0 {
            return Ok(0);
        }
        ks.count_sent(u64::from(frames), bytes)?;
        // Every batch counts towards the stream's rate, which sets the pause (see
        // `RxRate`); only a batch of a stream's size starts or continues one: a few
        // frames now and then are answered at once.
        r.rate.add(u64::from(frames), Instant::now());
        if u64::from(frames) >= crate::nic::RX_BATCH_MIN {
            r.pause_len = r.rate.pause_to(self.target, CLIENT_RX_PAUSE_MAX);
            r.streaming = true;
        }
        if r.streaming {
            r.pause = Some(r.pause_len);
        }
        Ok(frames)
    }

    /// RX moderation, as the daemon's worker does it: after a sync that brought a
    /// stream's frames, the next wait first lets the ring fill for a while (once; a
    /// wait that then finds nothing ends the stream and sleeps on the socket).
    pub fn take_pause(&self) -> Option<Duration> {
        let mut r = self.st.lock().ok()?;
        let p = r.pause.take();
        if p.is_none() {
            r.streaming = false;
        }
        p
    }
}

/// Takes the daemon's descriptor `fd` and checks it is a socket of `domain` (the
/// numbers come from shared memory).
pub(crate) fn take_socket(pid: u32, fd: i32, domain: libc::c_int) -> io::Result<OwnedFd> {
    let sock = pidfd::take_fd(pid, fd)?;
    let d: libc::c_int =
        crate::af_packet::socket::getsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_DOMAIN)?;
    if d != domain {
        return Err(io::Error::from_raw_os_error(libc::ENOTSOCK));
    }
    Ok(sock)
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

/// Waits for an RCU grace period (`membarrier(MEMBARRIER_CMD_GLOBAL)`): every frame
/// delivery the kernel had begun into a socket is over when it returns.
pub fn grace_period() {
    // SAFETY: membarrier with a command and no flags touches no memory of ours.
    unsafe { libc::syscall(libc::SYS_membarrier, 1, 0, 0) };
}

/// Frames, bytes and drops a client reading a ring counted.
pub type Counted = (u64, u64, u64);

/// The daemon's side: which of a port's RX rings clients read themselves, and what
/// they counted there (folded into the port's counters).
#[derive(Debug, Default)]
pub struct ClientReaders {
    /// Per RX ring, the frames, bytes and drops its reader had counted when last
    /// looked at: what is beyond goes into the port's counters.
    counted: Vec<Counted>,
    /// Frames clients read from the sockets themselves (also in the port's counters).
    pub in_client: u64,
    /// Per RX ring, the process that reads it itself, watched.
    seen: Vec<Option<Watched>>,
    /// Per RX ring, whether a client read it at the last look.
    reading: Vec<bool>,
    /// The event descriptors changed (a queue is now read by a client, or no more).
    pub events_changed: bool,
}

impl ClientReaders {
    /// Fresh state for `nrx` RX rings (their state blocks were just initialised).
    pub fn reset(&mut self, nrx: usize) {
        self.counted = vec![(0, 0, 0); nrx];
        self.seen = (0..nrx).map(|_| None).collect();
        self.reading = vec![false; nrx];
        self.events_changed = false;
    }

    /// Whether a client read ring `i` at the last look (its socket wakes that client,
    /// not the daemon).
    pub fn reading(&self, i: usize) -> bool {
        self.reading.get(i).copied().unwrap_or(false)
    }

    /// What a client reading ring `i` (state block at `off`) counted since the daemon
    /// last folded it in: `(frames, bytes, drops)` beyond, and the ring's totals.
    pub fn counts(
        &self,
        i: usize,
        off: Option<usize>,
        mem: SharedMem,
    ) -> Option<(Counted, Counted)> {
        let seen = self.counted.get(i)?;
        let ks = KState::new(mem, off?);
        let (n, b) = ks.sent().ok()?;
        let d = ks.drops().ok()?;
        Some((
            (
                n.wrapping_sub(seen.0),
                b.wrapping_sub(seen.1),
                d.wrapping_sub(seen.2),
            ),
            (n, b, d),
        ))
    }

    /// Adds what a client reading ring `i` counted since the last look to `stats`.
    pub fn fold(&mut self, i: usize, off: Option<usize>, mem: SharedMem, stats: &mut Stats) {
        if let Some(((n, b, d), now)) = self.counts(i, off, mem) {
            stats.rx_packets += n;
            stats.rx_bytes += b;
            stats.rx_drops += d;
            self.in_client += n;
            self.counted[i] = now;
        }
    }

    /// Adds what clients reading the RX rings `rx` counted since the last look to
    /// `stats` (rings without a reader add nothing).
    pub fn fold_all(&mut self, rx: &[Kring], mem: SharedMem, stats: &mut Stats) {
        for (i, k) in rx.iter().enumerate() {
            self.fold(i, k.ring_off, mem, stats);
        }
    }

    /// What clients reading the RX rings `rx` counted since the last look, added to
    /// `c` (a copy of the port's counters, for a status report); returns the frames
    /// read in clients in all, folded or not.
    pub fn add_pending(&self, rx: &[Kring], mem: SharedMem, c: &mut Stats) -> u64 {
        let mut in_client = self.in_client;
        for (i, k) in rx.iter().enumerate() {
            if let Some(((n, b, d), _)) = self.counts(i, k.ring_off, mem) {
                c.rx_packets += n;
                c.rx_bytes += b;
                c.rx_drops += d;
                in_client += n;
            }
        }
        in_client
    }

    /// Whether a live client reads RX ring `ring` (state block `ks`) itself; if the
    /// one that did is gone, or the ring is no longer synced in clients, the daemon
    /// reads it again from the shared positions. Called under the ring's busy flag.
    pub fn reads(
        &mut self,
        ring: usize,
        ks: &KState,
        mem: SharedMem,
        stats: &mut Stats,
    ) -> Result<bool, NetifError> {
        let owner = ks.reader()?;
        self.fold(ring, Some(ks.ring_offset()), mem, stats);
        let mut reads = owner != 0;
        if reads && ks.kind()? != KIND_NIC {
            // The ring is on the daemon's path (a monitor watches it, or a sync
            // failed): a client checks the kind under the busy flag, which we hold,
            // before it reads the socket, so it reads no more.
            ks.swap_reader(owner, 0)?;
            reads = false;
        }
        if reads {
            let alive = match self.seen.get_mut(ring) {
                Some(Some(w)) if w.pid == owner => w.alive(),
                Some(s) => {
                    let w = Watched::new(owner);
                    let alive = w.alive();
                    *s = Some(w);
                    alive
                }
                None => false,
            };
            if !alive {
                tracing::info!(
                    pid = owner,
                    ring,
                    "the process reading a NIC queue itself is gone: the daemon reads it again"
                );
                ks.swap_reader(owner, 0)?;
                reads = false;
            }
        }
        let Some(r) = self.reading.get_mut(ring) else {
            return Ok(false);
        };
        if reads != *r {
            tracing::debug!(ring, owner, reads, "NIC queue reader changed");
            self.events_changed = true;
        }
        *r = reads;
        Ok(reads)
    }
}

#[cfg(test)]
mod tests {
    use super::pause_target;

    /// A full ring where the kernel can hold a third more (the default pool lends an
    /// AF_XDP queue 8192 buffers; AF_PACKET's blocks hold far more), three quarters of
    /// what a small pool lent otherwise, never 0.
    #[test]
    fn pause_waits_for_what_the_kernel_can_hold() {
        assert_eq!(pause_target(1024, None), 1023);
        assert_eq!(pause_target(1024, Some(4096)), 1023);
        assert_eq!(pause_target(1024, Some(1364)), 1023);
        assert_eq!(pause_target(1024, Some(1024)), 768);
        assert_eq!(pause_target(1024, Some(1200)), 900);
        assert_eq!(pause_target(0, None), 1);
        assert_eq!(pause_target(1, Some(1)), 1);
    }
}
