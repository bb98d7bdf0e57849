//! A host interface as a netmap port, through AF_XDP or AF_PACKET
//! (`--nic-backend auto|xdp|packet`).
//!
//! `auto` prefers AF_XDP ([`crate::xdp`]: frames taken from the stack, queue i = ring
//! i, no copy by the daemon) and falls back to AF_PACKET ([`crate::af_packet`]) when
//! libxdp cannot be loaded or the sockets cannot be made (no AF_XDP in the kernel,
//! another XDP program on the interface, ...), saying which and why in the log. The
//! fallback happens when the rings are first created, where the sockets are made; the
//! AF_PACKET port then gets the ring counts the XDP one announced.

use crate::adapter::{Adapter, Endpoint, KeepSet, PortKind, Wake};
use crate::af_packet::{AfPacketPort, NicConfig};
use crate::xdp::XdpPort;
use crate::{Dir, NetifError};
use netmap_pool::{MemAllocator, SharedMem};
use std::time::{Duration, Instant};

/// RX moderation: after a pass that received frames, the worker lets more accumulate
/// before the next pass, as a NIC moderates its RX interrupts (the port's event
/// descriptors are out of the epoll set meanwhile: see `State::set_events_watched`),
/// and the client's futex wake-up follows the pass, so each pause costs two thread
/// wake-ups (about 10 µs each on these VMs) shared by the frames it gathered.
///
/// An AF_XDP socket signals every batch the kernel delivers, a handful of frames at a
/// time on a veth: passing at each signal cost this thread about 800 ns per received
/// frame (`bench/nic.sh`, 2 M frames at ~0.55 Mpps); a fixed 50 µs pause 320 ns, 200
/// µs 181–264 ns and the client 58–78; 1 ms about 48 and 20 (the thread's cost then
/// mostly its per-frame work). The pause is therefore as long as the ring can absorb:
/// the time the measured rate takes to fill half the smallest RX ring, between
/// [`RX_PAUSE_MIN`] and [`RX_PAUSE_MAX`] — long at the rates a veth or a slow sender
/// reaches, short at line rate, where passes bring full batches anyway. The wait is on
/// the doorbell, so a reader releasing a full ring, or a client with frames to send,
/// ends it at once. A frame arriving on an idle port wakes the worker at once (no
/// pause), and so does every frame of a trickle: only a pass that brought at least
/// [`RX_BATCH_MIN`] frames pauses, so a request/response exchange (a frame or two per
/// pass) keeps the event-driven latency, and moderation adds latency, at most
/// [`RX_PAUSE_MAX`], only while frames stream in.
pub const RX_PAUSE_MIN: Duration = Duration::from_micros(50);
pub const RX_PAUSE_MAX: Duration = Duration::from_millis(1);

/// Frames a pass must bring to start RX moderation: at the worker's event-driven
/// wake-up latency (20–50 µs here) this is a stream of a few hundred kpps or more,
/// where wake-ups per batch are what costs (see [`RX_PAUSE_MIN`]).
pub const RX_BATCH_MIN: u64 = 8;

/// The port worker's RX pause after a pass that brought `frames` frames `since` the
/// previous pass began, for rings of `ring_slots` slots: the time that rate takes to
/// fill half a ring. The worker keeps each pass's own rate (a client reading a queue
/// itself uses [`RxRate`]): its passes come after its pauses, events or doorbell,
/// never as a program's own next sync, and the stream's rate measured the same way over
/// them gave no gain there (unpreloaded receiver on a veth, 2026-12-04).
pub fn rx_pause(frames: u64, since: Duration, ring_slots: u32) -> Duration {
    if frames == 0 {
        return RX_PAUSE_MIN;
    }
    let target = f64::from(ring_slots.max(2) / 2);
    bounded_pause(since.as_secs_f64() * target / frames as f64, RX_PAUSE_MAX)
}

/// A pause of `secs` seconds, kept between [`RX_PAUSE_MIN`] and `max`.
fn bounded_pause(secs: f64, max: Duration) -> Duration {
    Duration::from_secs_f64(secs.clamp(RX_PAUSE_MIN.as_secs_f64(), max.as_secs_f64()))
}

/// A stream's receive rate over the last few milliseconds, for RX moderation.
///
/// Why not each batch's own rate (its frames over the time since the previous batch,
/// as the pause was first computed): a reader's syncs do not bring a stream in equal parts.
/// A client syncs again as soon as its program has handled a batch, and finds the
/// dozen frames that came meanwhile (at 0.55 Mpps, 14 frames in 13 µs); a sync after
/// a full ring finds the rest at once; an AF_PACKET sync sees whole TPACKET blocks,
/// about a millisecond of frames each. Each of those small or lumpy batches set the
/// client's next pause from a rate that was not the stream's: on a veth at 0.55 Mpps,
/// every other pause of an AF_XDP reader was 0.7 ms instead of 1.4 ms, and an
/// AF_PACKET reader's fell to 50 µs after each full ring (2026-12-04, a debug print of
/// each batch). Frames counted over two windows of [`RxRate::WINDOW`] (the previous
/// one and the current one) give the stream's rate whatever the batches: each frame is
/// counted once, at the sync that took it, and the time is that between two syncs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RxRate {
    /// Start of the previous window and the frames taken in it.
    prev: Option<(Instant, u64)>,
    /// Start of the current window and the frames taken since.
    cur: Option<(Instant, u64)>,
    /// The latest sync that took frames.
    last: Option<Instant>,
}

impl RxRate {
    /// How long a window lasts: two or three of a stream's pauses.
    pub const WINDOW: Duration = Duration::from_millis(4);
    /// A stream that brought nothing for this long has ended: the next one starts
    /// its count afresh (an idle spell would otherwise read as a slow rate).
    pub const IDLE: Duration = Duration::from_millis(20);

    /// Counts the `frames` a sync at `now` took. The first sync of a stream only
    /// starts the count: its frames came over a time nobody measured.
    pub fn add(&mut self, frames: u64, now: Instant) {
        if frames == 0 {
            return;
        }
        let idle = self
            .last
            .is_none_or(|l| now.saturating_duration_since(l) >= Self::IDLE);
        self.last = Some(now);
        match &mut self.cur {
            Some((start, n)) if !idle => {
                *n += frames;
                if now.saturating_duration_since(*start) >= Self::WINDOW {
                    self.prev = self.cur;
                    self.cur = Some((now, 0));
                }
            }
            _ => {
                self.prev = None;
                self.cur = Some((now, 0));
            }
        }
    }

    /// Frames per second from the start of the previous window (or of the current
    /// one) to the latest sync; `None` before a stream's second sync.
    pub fn per_sec(&self) -> Option<f64> {
        let (start, n) = match (self.prev, self.cur) {
            (Some((s, a)), Some((_, b))) => (s, a + b),
            (None, Some(c)) => c,
            _ => return None,
        };
        let secs = self.last?.saturating_duration_since(start).as_secs_f64();
        (secs > 0.0 && n > 0).then(|| n as f64 / secs)
    }

    /// The time this rate takes to bring `target` frames, between [`RX_PAUSE_MIN`]
    /// and `max` (the shortest while the rate is unknown).
    pub fn pause_to(&self, target: u32, max: Duration) -> Duration {
        match self.per_sec() {
            Some(r) => bounded_pause(f64::from(target.max(1)) / r, max),
            None => RX_PAUSE_MIN,
        }
    }
}

/// Which kernel interface NIC ports use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// AF_XDP where it works, else AF_PACKET.
    #[default]
    Auto,
    /// AF_XDP or an error.
    Xdp,
    /// AF_XDP in copy mode only (zero-copy refused), or an error.
    XdpCopy,
    /// AF_PACKET only.
    Packet,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "xdp" => Ok(Self::Xdp),
            "xdp-copy" => Ok(Self::XdpCopy),
            "packet" | "af_packet" => Ok(Self::Packet),
            _ => Err(format!("{s:?}: expected auto, xdp, xdp-copy or packet")),
        }
    }
}

#[derive(Debug)]
enum Inner {
    Xdp(XdpPort),
    Packet(AfPacketPort),
}

/// A NIC port of either backend.
#[derive(Debug)]
pub struct NicPort {
    inner: Inner,
    backend: Backend,
    max_slots: u32,
}

macro_rules! both {
    ($self:expr, $p:ident => $e:expr) => {
        match $self {
            Inner::Xdp($p) => $e,
            Inner::Packet($p) => $e,
        }
    };
}

impl NicPort {
    /// Opens `ifname` with the chosen backend (no sockets yet).
    pub fn open(
        ifname: &str,
        cfg: &NicConfig,
        max_slots: u32,
        backend: Backend,
    ) -> Result<Self, NetifError> {
        let inner = match backend {
            Backend::Packet => Inner::Packet(AfPacketPort::open(ifname, cfg, max_slots)?),
            Backend::Xdp | Backend::XdpCopy => Inner::Xdp(XdpPort::open(
                ifname,
                cfg,
                max_slots,
                backend == Backend::XdpCopy,
            )?),
            Backend::Auto => match XdpPort::open(ifname, cfg, max_slots, false) {
                Ok(p) => Inner::Xdp(p),
                Err(e @ NetifError::NoPort(_)) => return Err(e),
                Err(e) => {
                    tracing::info!(ifname, %e, "using AF_PACKET: AF_XDP is not available");
                    Inner::Packet(AfPacketPort::open(ifname, cfg, max_slots)?)
                }
            },
        };
        Ok(Self {
            inner,
            backend,
            max_slots,
        })
    }

    /// "xdp" or "packet": the backend in use now.
    pub fn backend_name(&self) -> &'static str {
        match self.inner {
            Inner::Xdp(_) => "xdp",
            Inner::Packet(_) => "packet",
        }
    }

    /// Replaces an XDP port whose sockets could not be made by an AF_PACKET port with
    /// the same ring counts.
    fn fall_back(&mut self, why: &NetifError) -> Result<(), NetifError> {
        let c = self.inner_endpoint().counts;
        let name = self.inner_endpoint().name.clone();
        tracing::warn!(
            ifname = %name,
            %why,
            "AF_XDP sockets cannot be made: using AF_PACKET (frames stay visible to the stack)"
        );
        let cfg = NicConfig {
            slots: c.tx_slots,
            tx_rings: c.tx_rings,
            rx_rings: c.rx_rings,
            host_tx_rings: c.host_tx_rings,
            host_rx_rings: c.host_rx_rings,
            backend: Backend::Packet,
        };
        self.inner = Inner::Packet(AfPacketPort::open(&name, &cfg, self.max_slots)?);
        Ok(())
    }

    fn inner_endpoint(&self) -> &Endpoint {
        &both!(&self.inner, p => p.endpoints())[0]
    }
}

impl Adapter for NicPort {
    fn kind(&self) -> PortKind {
        PortKind::Nic
    }

    fn endpoints(&self) -> &[Endpoint] {
        both!(&self.inner, p => p.endpoints())
    }

    fn endpoints_mut(&mut self) -> &mut [Endpoint] {
        both!(&mut self.inner, p => p.endpoints_mut())
    }

    fn krings_create(
        &mut self,
        ep: usize,
        alloc: &mut MemAllocator,
        mem: SharedMem,
    ) -> Result<(), NetifError> {
        let res = both!(&mut self.inner, p => p.krings_create(ep, alloc, mem));
        match res {
            Err(e)
                if self.backend == Backend::Auto
                    && matches!(self.inner, Inner::Xdp(_))
                    && !matches!(e, NetifError::NoPort(_) | NetifError::NoMem(_)) =>
            {
                self.fall_back(&e)?;
                both!(&mut self.inner, p => p.krings_create(ep, alloc, mem))
            }
            r => r,
        }
    }

    fn krings_delete(&mut self, alloc: &mut MemAllocator, mem: SharedMem, keep: &KeepSet) {
        both!(&mut self.inner, p => p.krings_delete(alloc, mem, keep))
    }

    fn txsync(
        &mut self,
        ep: usize,
        ring: usize,
        head: u32,
        mem: SharedMem,
    ) -> Result<Wake, NetifError> {
        both!(&mut self.inner, p => p.txsync(ep, ring, head, mem))
    }

    fn rxsync(
        &mut self,
        ep: usize,
        ring: usize,
        head: u32,
        mem: SharedMem,
    ) -> Result<Wake, NetifError> {
        both!(&mut self.inner, p => p.rxsync(ep, ring, head, mem))
    }

    fn event_fds(&self) -> Vec<(std::os::fd::RawFd, usize, Dir)> {
        both!(&self.inner, p => p.event_fds())
    }

    fn shared_kstate(&self) -> bool {
        true
    }

    fn tx_pending(&self) -> bool {
        both!(&self.inner, p => p.tx_pending())
    }

    fn owned_buffers(&self, f: &mut dyn FnMut(u32)) {
        both!(&self.inner, p => p.owned_buffers(f))
    }

    fn take_events_changed(&mut self) -> bool {
        both!(&mut self.inner, p => p.take_events_changed())
    }

    fn endpoint_stats(&self, ep: usize, mem: SharedMem) -> Vec<(&'static str, u64)> {
        match &self.inner {
            Inner::Xdp(p) => p.endpoint_stats(ep, mem),
            Inner::Packet(p) => packet_stats(p.endpoint_stats(ep, mem)),
        }
    }

    fn stats(&self) -> Vec<(&'static str, u64)> {
        match &self.inner {
            Inner::Xdp(p) => p.stats(),
            Inner::Packet(p) => packet_stats(p.stats()),
        }
    }
}

/// An AF_PACKET port's counters with the keys an AF_XDP port adds, so that every NIC
/// port shows the same ones.
fn packet_stats(mut v: Vec<(&'static str, u64)>) -> Vec<(&'static str, u64)> {
    v.extend([("xdp", 0), ("xdp_zerocopy", 0)]);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worker's pause is the time the pass's rate takes to fill half a ring, kept
    /// between the two bounds: a veth's rate (0.5 Mpps) gets the longest, line rate the
    /// shortest, and a pass that brought nothing the shortest.
    #[test]
    fn rx_pause_fills_half_a_ring_within_its_bounds() {
        let ms = Duration::from_millis(1);
        // 512 frames in 1 ms into 1024-slot rings: half a ring per millisecond.
        assert_eq!(rx_pause(512, ms, 1024), ms);
        // 256 frames in 1 ms: half a ring takes 2 ms, more than the bound.
        assert_eq!(rx_pause(256, ms, 1024), RX_PAUSE_MAX);
        // 2048 frames in 1 ms: 250 µs.
        assert!(near(rx_pause(2048, ms, 1024), 250));
        // 14.88 Mpps (10 GbE line rate, 64-byte frames): the shortest pause.
        assert_eq!(rx_pause(14_880, ms, 1024), RX_PAUSE_MIN);
        assert_eq!(rx_pause(0, ms, 1024), RX_PAUSE_MIN);
        assert_eq!(rx_pause(10, Duration::ZERO, 1024), RX_PAUSE_MIN);
        // A ring of 0 or 1 slot is treated as 2: no division by zero, still bounded.
        assert!(rx_pause(1, ms, 0) >= RX_PAUSE_MIN);
    }

    fn near(d: Duration, want_us: u64) -> bool {
        let us = d.as_secs_f64() * 1e6;
        (us - want_us as f64).abs() <= want_us as f64 * 0.02
    }

    /// An AF_XDP reader on a veth at 0.55 Mpps: each pause brings a large batch and
    /// the program's next sync, 13 µs later, the dozen frames that came meanwhile. The
    /// rate is the stream's, not the small batch's (which alone would halve the pause).
    #[test]
    fn rx_rate_is_the_stream_rate_whatever_the_batches() {
        let t0 = Instant::now();
        let mut r = RxRate::default();
        assert_eq!(r.per_sec(), None);
        assert_eq!(r.pause_to(1023, Duration::from_millis(2)), RX_PAUSE_MIN);
        r.add(500, t0);
        // The first sync only starts the count.
        assert_eq!(r.per_sec(), None);
        let (mut t, mut us) = (t0, 0u64);
        for _ in 0..50 {
            // 1400 µs: 763 frames; then 13 µs: 14 more, which came in a burst (that
            // batch's own rate is 1.08 Mpps); 777 frames per 1413 µs.
            us += 1400;
            t = t0 + Duration::from_micros(us);
            r.add(763, t);
            us += 13;
            t = t0 + Duration::from_micros(us);
            r.add(14, t);
            let rate = r.per_sec().unwrap();
            assert!((rate - 550_000.0).abs() < 550_000.0 * 0.02, "{rate}");
        }
        // A full ring at that rate: 1.86 ms.
        assert!(near(r.pause_to(1023, Duration::from_millis(5)), 1860));
        // Bounded by the caller's maximum and by RX_PAUSE_MIN.
        assert_eq!(
            r.pause_to(1023, Duration::from_millis(1)),
            Duration::from_millis(1)
        );
        assert_eq!(r.pause_to(1, Duration::from_millis(2)), RX_PAUSE_MIN);
        // Syncs that took nothing change nothing.
        let before = r.per_sec();
        r.add(0, t + Duration::from_millis(3));
        assert_eq!(r.per_sec(), before);
    }

    /// An AF_PACKET reader sees whole TPACKET blocks (650 frames about every
    /// millisecond), and after a full ring the rest of a block at once, 20 µs later:
    /// still the stream's rate, not 650 frames per 20 µs.
    #[test]
    fn rx_rate_of_lumpy_batches() {
        let t0 = Instant::now();
        let mut r = RxRate::default();
        r.add(650, t0);
        let mut us = 0u64;
        for i in 0..40 {
            us += 1050;
            if i % 4 == 3 {
                // Two blocks at once, more than the ring: 1023 now, 277 just after.
                us += 1050;
                r.add(1023, t0 + Duration::from_micros(us));
                us += 20;
                r.add(277, t0 + Duration::from_micros(us));
            } else {
                r.add(650, t0 + Duration::from_micros(us));
            }
            if i >= 4 {
                let rate = r.per_sec().unwrap();
                // 650 frames per 1050 µs: 0.619 Mpps, within an eighth: the rest of a
                // ring taken just after a window began counts in it though it came
                // before (at most a ring over two windows).
                assert!((rate - 619_048.0).abs() < 619_048.0 / 8.0, "{i}: {rate}");
            }
        }
    }

    /// After a pause longer than `RxRate::IDLE` the next stream starts its own count:
    /// the idle time does not read as a slow rate (a long pause at a new stream's
    /// start would let a fast stream overrun the kernel's ring).
    #[test]
    fn rx_rate_starts_afresh_after_idle() {
        let t0 = Instant::now();
        let mut r = RxRate::default();
        r.add(100, t0);
        r.add(100, t0 + Duration::from_millis(1));
        assert!(r.per_sec().is_some());
        let t1 = t0 + Duration::from_millis(1) + RxRate::IDLE;
        r.add(5000, t1);
        assert_eq!(r.per_sec(), None);
        r.add(1000, t1 + Duration::from_micros(100));
        let rate = r.per_sec().unwrap();
        assert!((rate - 10_000_000.0).abs() < 1.0, "{rate}");
        assert_eq!(
            r.pause_to(1023, Duration::from_millis(2)),
            Duration::from_secs_f64(1023.0 / rate).max(RX_PAUSE_MIN)
        );
    }
}
