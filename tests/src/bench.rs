//! Benchmarks behind `nm-client bench-rtt` and `nm-client bench-pipe` (run by
//! `bench/run.sh`). They print figures; they assert nothing about speed.
//!
//! * `bench-rtt`: mean round trip of `ioctl(fd, NIOCTXSYNC, 0)` on a registered pipe
//!   end with nothing pending, against two baselines measured in the same process:
//!   a bare FUSE ioctl the daemon answers at once (an unknown netmap-style command on
//!   an unregistered /dev/netmap fd → EOPNOTSUPP) and the same command on /dev/null
//!   (→ ENOTTY without leaving the kernel).
//! * `bench-pipe`: a sender and a receiver *process* on the two ends of a pipe, with
//!   lean loops in the style of pkt-gen (fill up to `burst` slots per poll(POLLOUT),
//!   drain everything per poll(POLLIN)); the receiver's packet rate is the figure.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use netmap_abi::NR_REG_ALL_NIC;

use crate::port::{Port, Ring};
use crate::sys::{self, poll_mask_name, Errno};

/// `_IO('i', 200)`: a netmap-style command the daemon does not know (EOPNOTSUPP after
/// a full FUSE round trip) and /dev/null rejects in the kernel (ENOTTY).
pub const UNKNOWN_IOCTL: u32 = 0x0000_69c8;

/// Measurement rounds per kind; the kinds are interleaved round by round so that a
/// slow drift of the machine affects all of them alike.
const ROUNDS: u64 = 10;

/// Mean costs (µs) measured by [`rtt`].
pub struct RttFigures {
    pub iters: u64,
    pub txsync_us: f64,
    pub bare_fuse_us: f64,
    pub devnull_us: f64,
}

impl RttFigures {
    /// One `key=value` line for scripts.
    pub fn line(&self) -> String {
        format!(
            "bench-rtt iters={} txsync_us={:.3} bare_fuse_us={:.3} devnull_us={:.4} \
             ratio_fuse={:.3} ratio_devnull={:.1}",
            self.iters,
            self.txsync_us,
            self.bare_fuse_us,
            self.devnull_us,
            self.txsync_us / self.bare_fuse_us,
            self.txsync_us / self.devnull_us
        )
    }
}

fn open_path(path: &std::ffi::CStr) -> Result<OwnedFd, String> {
    // SAFETY: path is a valid NUL-terminated string; open touches no other memory.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(format!(
            "open {path:?}: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: fd was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `ioctl(fd, cmd, 0)` for commands without an argument.
fn ioctl_noarg(fd: RawFd, cmd: u32) -> Result<(), Errno> {
    // SAFETY: `cmd` encodes no argument size (IOC_NONE), so nothing is read or written
    // through the NULL argument.
    unsafe { sys::ioctl_raw(fd, cmd, std::ptr::null_mut()) }.map(|_| ())
}

/// One kind of ioctl to time, with the outcome every call must have.
struct Probe {
    what: &'static str,
    fd: RawFd,
    cmd: u32,
    want: Result<(), Errno>,
    total: Duration,
}

impl Probe {
    fn run(&mut self, n: u64) -> Result<(), String> {
        let start = Instant::now();
        for i in 0..n {
            let r = ioctl_noarg(self.fd, self.cmd);
            if r != self.want {
                return Err(format!(
                    "{}: call #{i} gave {} instead of {}",
                    self.what,
                    sys::outcome(r),
                    sys::outcome(self.want)
                ));
            }
        }
        self.total += start.elapsed();
        Ok(())
    }

    fn mean_us(&self, n: u64) -> f64 {
        self.total.as_secs_f64() * 1e6 / n as f64
    }
}

/// Times `iters` calls of each kind (after a warm-up) on pipe end `port`.
pub fn rtt(port: &str, iters: u64) -> Result<RttFigures, String> {
    let iters = iters.max(ROUNDS);
    let per_round = iters / ROUNDS;
    let n = per_round * ROUNDS;
    let reg = Port::register(port, NR_REG_ALL_NIC, 0, 0, 0, 0, 0, 0, 0)
        .map_err(|e| format!("REGISTER {port:?}: {e}"))?;
    let bare = sys::open_netmap().map_err(|e| e.to_string())?;
    let null = open_path(c"/dev/null")?;
    let mut probes = [
        Probe {
            what: "NIOCTXSYNC on a registered pipe end",
            fd: reg.fd(),
            cmd: netmap_abi::NIOCTXSYNC,
            want: Ok(()),
            total: Duration::ZERO,
        },
        Probe {
            what: "unknown ioctl on an unregistered /dev/netmap fd",
            fd: bare.as_raw_fd(),
            cmd: UNKNOWN_IOCTL,
            want: Err(Errno(libc::EOPNOTSUPP)),
            total: Duration::ZERO,
        },
        Probe {
            what: "unknown ioctl on /dev/null",
            fd: null.as_raw_fd(),
            cmd: UNKNOWN_IOCTL,
            want: Err(Errno(libc::ENOTTY)),
            total: Duration::ZERO,
        },
    ];
    let warmup = (per_round / 10).clamp(100, 10_000);
    for p in &mut probes {
        p.run(warmup)?;
        p.total = Duration::ZERO;
    }
    for _ in 0..ROUNDS {
        for p in &mut probes {
            p.run(per_round)?;
        }
    }
    Ok(RttFigures {
        iters: n,
        txsync_us: probes[0].mean_us(n),
        bare_fuse_us: probes[1].mean_us(n),
        devnull_us: probes[2].mean_us(n),
    })
}

/// Result of one side of a pipe run.
pub struct PipeStats {
    pub packets: u64,
    pub elapsed: Duration,
    pub polls: u64,
    /// Sequence numbers that never arrived (lossy receive only).
    pub lost: u64,
}

impl PipeStats {
    pub fn mpps(&self) -> f64 {
        self.packets as f64 / self.elapsed.as_secs_f64().max(1e-9) / 1e6
    }
}

fn ring_state(r: &Ring<'_>) -> String {
    let (h, c, t) = r.indices();
    format!("head={h} cur={c} tail={t} num_slots={}", r.num_slots())
}

/// Packet template: a broadcast Ethernet header, IPv4 ethertype, zero padding; bytes
/// 14..22 carry the sequence number.
fn template(len: usize) -> Vec<u8> {
    let mut t = vec![0u8; len];
    let h = crate::frame::eth_header(crate::frame::BROADCAST, [0x02, 0, 0, 0, 0, 1], 0x0800);
    t[..h.len()].copy_from_slice(&h);
    t
}

const SEQ_AT: usize = 14;

/// Sends `count` packets of `len` bytes on TX ring 0, at most `burst` per poll, then
/// waits until the receiver has released every slot.
pub fn send(port: &Port, count: u64, burst: u32, len: usize) -> Result<PipeStats, String> {
    let ring = port.tx_ring(0).ok_or("TX ring 0 not bound")?;
    let mut pkt = template(len);
    let start = Instant::now();
    let mut last_progress = Instant::now();
    let (mut seq, mut polls) = (0u64, 0u64);
    while seq < count {
        let rev = port
            .poll(libc::POLLOUT, 1000)
            .map_err(|e| format!("poll(POLLOUT): {e}"))?;
        polls += 1;
        if rev & libc::POLLERR != 0 {
            return Err(format!(
                "poll(POLLOUT) returned {} after {seq} packets ({})",
                poll_mask_name(rev),
                ring_state(&ring)
            ));
        }
        let space = ring.space();
        if space == 0 {
            if last_progress.elapsed() > Duration::from_secs(10) {
                return Err(format!(
                    "no TX slot freed for 10 s after {seq} packets ({})",
                    ring_state(&ring)
                ));
            }
            continue;
        }
        let n = (space.min(burst) as u64).min(count - seq);
        let mut head = ring.head();
        for _ in 0..n {
            pkt[SEQ_AT..SEQ_AT + 8].copy_from_slice(&seq.to_le_bytes());
            ring.write_buf(ring.slot_buf_idx(head), 0, &pkt);
            ring.set_slot_len(head, len as u16);
            ring.set_slot_flags(head, 0);
            head = ring.next(head);
            seq += 1;
        }
        ring.advance(head);
        last_progress = Instant::now();
    }
    let elapsed = start.elapsed();
    let drain = Instant::now();
    while ring.next(ring.tail()) != ring.head() {
        port.txsync().map_err(|e| format!("NIOCTXSYNC: {e}"))?;
        if drain.elapsed() > Duration::from_secs(30) {
            return Err(format!(
                "receiver did not release all TX slots within 30 s ({})",
                ring_state(&ring)
            ));
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    Ok(PipeStats {
        packets: count,
        elapsed,
        polls,
        lost: 0,
    })
}

/// Receives `count` packets on RX ring 0, consuming everything available per poll
/// and checking only the sequence number and length of each packet. The clock starts
/// when the first poll returns. With `lossy` (a switch between sender and receiver),
/// sequence gaps are counted as lost instead of failing, and the receive ends at the
/// last sequence number or after a second without traffic.
pub fn receive(port: &Port, count: u64, len: usize, lossy: bool) -> Result<PipeStats, String> {
    let ring = port.rx_ring(0).ok_or("RX ring 0 not bound")?;
    let mut hdr = [0u8; SEQ_AT + 8];
    let (mut got, mut polls) = (0u64, 0u64);
    let (mut next_seq, mut lost) = (0u64, 0u64);
    let mut start: Option<Instant> = None;
    let mut last = Instant::now();
    while next_seq < count {
        let rev = port
            .poll(
                libc::POLLIN,
                if lossy && start.is_some() { 1000 } else { 5000 },
            )
            .map_err(|e| format!("poll(POLLIN): {e}"))?;
        polls += 1;
        if lossy && rev == 0 && start.is_some() {
            lost += count - next_seq;
            break;
        }
        if rev == 0 || rev & libc::POLLERR != 0 {
            return Err(format!(
                "poll(POLLIN) returned {} after {got} of {count} packets ({})",
                if rev == 0 {
                    "nothing in 5 s".to_string()
                } else {
                    poll_mask_name(rev)
                },
                ring_state(&ring)
            ));
        }
        start.get_or_insert_with(Instant::now);
        let tail = ring.tail();
        let mut head = ring.head();
        while head != tail {
            let l = ring.slot_len(head) as usize;
            if l != len {
                return Err(format!("packet #{got}: length {l}, expected {len}"));
            }
            ring.read_buf(ring.slot_buf_idx(head), &mut hdr);
            let s = u64::from_le_bytes(hdr[SEQ_AT..].try_into().expect("8 bytes"));
            if s != next_seq && !(lossy && s > next_seq && s < count) {
                return Err(format!("packet #{got}: carries sequence number {s}"));
            }
            lost += s - next_seq;
            next_seq = s + 1;
            got += 1;
            head = ring.next(head);
        }
        // Once per batch: a clock read per packet cost the receiver more than the
        // whole in-process sync (a quarter of its CPU in a 10 Mpps VALE profile).
        last = Instant::now();
        ring.advance(head);
    }
    let elapsed = start.map(|s| last.duration_since(s)).unwrap_or_default();
    // Hand the last batch back so the sender's drain loop completes.
    port.rxsync()
        .map_err(|e| format!("final NIOCRXSYNC: {e}"))?;
    Ok(PipeStats {
        packets: got,
        elapsed,
        polls,
        lost,
    })
}
