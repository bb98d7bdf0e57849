//! The traffic loops behind `nm-client pipe-tx`, `pipe-rx` and `pipe-kill-victim`,
//! written the way pkt-gen drives a port (NETMAP-ABI.md §12): poll, fill or drain
//! `[head, tail)`, then `head = cur = new position`.

use std::io::Write;
use std::time::{Duration, Instant};

use netmap_abi::NR_REG_ALL_NIC;

use crate::payload::{self, is_ours, Payload, MAX_LEN};
use crate::port::{Port, Ring};
use crate::sys::poll_mask_name;

/// How long the sender tolerates a full ring without any slot coming back.
const TX_STALL: Duration = Duration::from_secs(10);
/// How long the sender waits at the end for the reader to release every slot.
const TX_DRAIN: Duration = Duration::from_secs(30);
/// Receiver poll timeout: no packet within this time is a failure.
pub const RX_POLL_TIMEOUT_MS: i32 = 5000;

/// Result of a streaming run.
pub struct Stats {
    pub packets: u64,
    pub elapsed: Duration,
    /// Frames skipped by the receiver because they were not ours (`--ignore-foreign`).
    pub foreign: u64,
    /// Sequence numbers that never arrived (lossy receive only).
    pub lost: u64,
}

impl Stats {
    pub fn mpps(&self) -> f64 {
        self.packets as f64 / self.elapsed.as_secs_f64().max(1e-9) / 1e6
    }
}

/// Registers one pipe end with the defaults (ALL_NIC, 1 ring, parent's slots).
pub fn open_end(name: &str) -> Result<Port, String> {
    Port::register(name, NR_REG_ALL_NIC, 0, 0, 0, 0, 0, 0, 0)
        .map_err(|e| format!("REGISTER {name:?}: {e}"))
}

fn ring_state(r: &Ring<'_>) -> String {
    let (h, c, t) = r.indices();
    format!("head={h} cur={c} tail={t} num_slots={}", r.num_slots())
}

/// Writes packet `seq` into slot `i`.
fn fill_slot(ring: &Ring<'_>, i: u32, seq: u64, payload: &Payload) {
    let idx = ring.slot_buf_idx(i);
    let (hdr, body) = payload.parts(seq);
    ring.write_buf(idx, 0, &hdr);
    ring.write_buf(idx, hdr.len(), body);
    ring.set_slot_len(i, (hdr.len() + body.len()) as u16);
    // No NS_MOREFRAG (whole packets) and no NS_BUF_CHANGED (buffers never swapped).
    ring.set_slot_flags(i, 0);
}

/// Sends packets `0..count` on TX ring 0 of `port`, then waits until the peer has
/// released every slot (`next(tail) == head`, pkt-gen's end condition).
pub fn send(port: &Port, count: u64, burst: u32, payload: &Payload) -> Result<Stats, String> {
    send_paced(port, count, burst, payload, None)
}

/// How a sender is paced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pacing {
    /// As fast as the ring allows.
    None,
    /// Packet `seq` goes out at `start + seq / pps`: a smooth stream.
    Smooth(u64),
    /// pkt-gen's `-R pps`: a whole burst every `burst / pps` seconds, sent at once, so
    /// the receiver sees line-rate bursts with gaps between them.
    Bursts(u64),
}

/// Release schedule of a paced sender: packet `seq` may go out at `start + seq / rate`.
struct Pacer {
    start: Instant,
    rate: u64,
    /// pkt-gen's bursts: a burst is due when its first packet is.
    bursts: bool,
}

impl Pacer {
    /// How many of the packets from `seq` on are due now (at most `want`); sleeps until
    /// packet `seq` is due if none is. Sleeping (not spinning) leaves the CPU to the
    /// daemon and the receiver, which matters on small machines.
    fn due(&self, seq: u64, want: u64) -> u64 {
        loop {
            let t = self.start.elapsed();
            let allowed = (t.as_nanos() * self.rate as u128 / 1_000_000_000) as u64 + 1;
            if allowed > seq {
                return if self.bursts {
                    want
                } else {
                    (allowed - seq).min(want)
                };
            }
            let at = Duration::from_nanos((seq as u128 * 1_000_000_000 / self.rate as u128) as u64);
            let left = at.saturating_sub(t);
            if self.bursts {
                // pkt-gen's wait: 1 ms naps while more than 1 ms remains, then spin.
                if std::env::var_os("NM_PACE_SLEEP").is_some() {
                    std::thread::sleep(left);
                    continue;
                }
                if left > Duration::from_millis(1) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                continue;
            }
            std::thread::sleep(left.max(Duration::from_micros(20)));
        }
    }
}

/// [`send`] with optional pacing: with `rate = Some(pps)` packet `seq` is not queued
/// before `seq / pps` seconds after the start, and each burst holds only the packets
/// due so far (so the receiver sees a smooth stream, not line-rate bursts of `burst`).
pub fn send_paced(
    port: &Port,
    count: u64,
    burst: u32,
    payload: &Payload,
    rate: Option<u64>,
) -> Result<Stats, String> {
    let pacing = rate.filter(|&r| r > 0).map_or(Pacing::None, Pacing::Smooth);
    send_until(port, count, None, burst, payload, pacing)
}

/// [`send_paced`] that also stops queueing new packets once `duration` (if any) has
/// passed since the start; then, as always, waits until the peer has released every
/// slot. `Stats::packets` is the number actually sent (packets `0..packets`).
pub fn send_until(
    port: &Port,
    count: u64,
    duration: Option<Duration>,
    burst: u32,
    payload: &Payload,
    pacing: Pacing,
) -> Result<Stats, String> {
    let ring = port.tx_ring(0).ok_or("TX ring 0 not bound")?;
    let start = Instant::now();
    let pacer = match pacing {
        Pacing::Smooth(rate) if rate > 0 => Some(Pacer {
            start,
            rate,
            bursts: false,
        }),
        Pacing::Bursts(rate) if rate > 0 => Some(Pacer {
            start,
            rate,
            bursts: true,
        }),
        _ => None,
    };
    let mut last_progress = Instant::now();
    let mut seq = 0u64;
    while seq < count {
        if duration.is_some_and(|d| start.elapsed() >= d) {
            break;
        }
        if let Some(p) = &pacer {
            // Waits for the next due packet before polling, so poll() only flushes.
            p.due(seq, 1);
        }
        let rev = port
            .poll(libc::POLLOUT, 1000)
            .map_err(|e| format!("poll(POLLOUT): {e}"))?;
        if rev & libc::POLLERR != 0 {
            return Err(format!(
                "poll(POLLOUT) returned {} after {seq} packets ({})",
                poll_mask_name(rev),
                ring_state(&ring)
            ));
        }
        let space = ring.space();
        if space == 0 {
            if last_progress.elapsed() > TX_STALL {
                return Err(format!(
                    "no TX slot freed for {TX_STALL:?} after {seq} packets ({}, poll gave {})",
                    ring_state(&ring),
                    poll_mask_name(rev)
                ));
            }
            continue;
        }
        let mut n = (space.min(burst) as u64).min(count - seq);
        if let Some(p) = &pacer {
            n = p.due(seq, n);
        }
        let n = n as u32;
        let mut head = ring.head();
        for _ in 0..n {
            fill_slot(&ring, head, seq, payload);
            head = ring.next(head);
            seq += 1;
        }
        ring.advance(head);
        last_progress = Instant::now();
    }
    let drain_start = Instant::now();
    while ring.next(ring.tail()) != ring.head() {
        port.txsync().map_err(|e| format!("NIOCTXSYNC: {e}"))?;
        if drain_start.elapsed() > TX_DRAIN {
            return Err(format!(
                "peer did not release all TX slots within {TX_DRAIN:?} ({})",
                ring_state(&ring)
            ));
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    Ok(Stats {
        packets: seq,
        elapsed: start.elapsed(),
        foreign: 0,
        lost: 0,
    })
}

/// Receives exactly `count` packets on RX ring 0 of `port`, checking each against
/// `payload` (no loss, no reordering, no corruption), then releases them.
pub fn receive(port: &Port, count: u64, payload: &Payload) -> Result<Stats, String> {
    receive_filtered(port, count, payload, false)
}

/// [`receive`]; with `ignore_foreign` frames that do not carry our marker
/// ([`crate::payload::is_ours`]) are skipped and counted instead of failing the run
/// (a kernel may put its own frames on a NIC).
pub fn receive_filtered(
    port: &Port,
    count: u64,
    payload: &Payload,
    ignore_foreign: bool,
) -> Result<Stats, String> {
    let ring = port.rx_ring(0).ok_or("RX ring 0 not bound")?;
    let mut buf = vec![0u8; MAX_LEN];
    let mut got = 0u64;
    let mut foreign = 0u64;
    let mut start = None;
    while got < count {
        let rev = port
            .poll(libc::POLLIN, RX_POLL_TIMEOUT_MS)
            .map_err(|e| format!("poll(POLLIN): {e}"))?;
        if rev == 0 {
            return Err(format!(
                "poll(POLLIN) timed out after {RX_POLL_TIMEOUT_MS} ms having received {got} of {count} packets ({})",
                ring_state(&ring)
            ));
        }
        if rev & libc::POLLERR != 0 {
            return Err(format!(
                "poll(POLLIN) returned {} after {got} packets ({})",
                poll_mask_name(rev),
                ring_state(&ring)
            ));
        }
        start.get_or_insert_with(Instant::now);
        let tail = ring.tail();
        let mut head = ring.head();
        if tail >= ring.num_slots() {
            return Err(format!("RX tail out of range ({})", ring_state(&ring)));
        }
        while head != tail {
            if ignore_foreign {
                let len = (ring.slot_len(head) as usize).min(buf.len());
                ring.read_buf(ring.slot_buf_idx(head), &mut buf[..len]);
                if !is_ours(&buf[..len]) {
                    foreign += 1;
                    head = ring.next(head);
                    continue;
                }
            }
            if got == count {
                return Err(format!(
                    "more than {count} packets delivered ({})",
                    ring_state(&ring)
                ));
            }
            let len = ring.slot_len(head) as usize;
            let flags = ring.slot_flags(head);
            if len > buf.len() {
                return Err(format!("packet #{got}: slot {head} len {len} > {MAX_LEN}"));
            }
            if flags & netmap_abi::NS_MOREFRAG != 0 {
                return Err(format!("packet #{got}: unexpected NS_MOREFRAG"));
            }
            ring.read_buf(ring.slot_buf_idx(head), &mut buf[..len]);
            payload.check(got, &buf[..len])?;
            got += 1;
            head = ring.next(head);
        }
        ring.advance(head);
    }
    // Hand the last batch back so the sender's final NIOCTXSYNC loop can complete.
    port.rxsync()
        .map_err(|e| format!("final NIOCRXSYNC: {e}"))?;
    Ok(Stats {
        packets: got,
        elapsed: start.map(|s| s.elapsed()).unwrap_or_default(),
        foreign,
        lost: 0,
    })
}

/// Receives and checks packets `0, 1, …` on RX ring 0 of `port` until no new packet
/// has arrived for `idle` after at least one did (the end of a [`send_until`] stream
/// whose length the receiver does not know), then releases them. Fails if nothing
/// arrives within `first_wait`, or on any loss, reordering or corruption.
pub fn receive_until_idle(
    port: &Port,
    payload: &Payload,
    idle: Duration,
    first_wait: Duration,
) -> Result<Stats, String> {
    let ring = port.rx_ring(0).ok_or("RX ring 0 not bound")?;
    let mut buf = vec![0u8; MAX_LEN];
    let mut got = 0u64;
    let waited = Instant::now();
    let mut first = None::<Instant>;
    let mut last = Instant::now();
    loop {
        let budget = if first.is_some() {
            idle.saturating_sub(last.elapsed())
        } else {
            first_wait.saturating_sub(waited.elapsed())
        };
        if budget.is_zero() {
            if first.is_some() {
                break;
            }
            return Err(format!(
                "no packet within {first_wait:?} ({})",
                ring_state(&ring)
            ));
        }
        let ms = budget.as_millis().clamp(1, i32::MAX as u128) as i32;
        let rev = port
            .poll(libc::POLLIN, ms)
            .map_err(|e| format!("poll(POLLIN): {e}"))?;
        if rev & libc::POLLERR != 0 {
            return Err(format!(
                "poll(POLLIN) returned {} after {got} packets ({})",
                poll_mask_name(rev),
                ring_state(&ring)
            ));
        }
        if rev == 0 {
            continue;
        }
        let tail = ring.tail();
        let mut head = ring.head();
        if tail >= ring.num_slots() {
            return Err(format!("RX tail out of range ({})", ring_state(&ring)));
        }
        let before = got;
        while head != tail {
            let len = ring.slot_len(head) as usize;
            let flags = ring.slot_flags(head);
            if len > buf.len() {
                return Err(format!("packet #{got}: slot {head} len {len} > {MAX_LEN}"));
            }
            if flags & netmap_abi::NS_MOREFRAG != 0 {
                return Err(format!("packet #{got}: unexpected NS_MOREFRAG"));
            }
            ring.read_buf(ring.slot_buf_idx(head), &mut buf[..len]);
            payload.check(got, &buf[..len])?;
            got += 1;
            head = ring.next(head);
        }
        ring.advance(head);
        if got > before {
            last = Instant::now();
            first.get_or_insert(last);
        }
    }
    port.rxsync()
        .map_err(|e| format!("final NIOCRXSYNC: {e}"))?;
    Ok(Stats {
        packets: got,
        elapsed: first.map(|f| last.duration_since(f)).unwrap_or_default(),
        foreign: 0,
        lost: 0,
    })
}

/// The other end of a pipe: "x{1" <-> "x}1" (the last bracket decides).
pub fn peer_name(name: &str) -> Result<String, String> {
    let pos = name
        .rfind(['{', '}'])
        .ok_or_else(|| format!("{name:?} is not a pipe name"))?;
    let mut s = name.to_string();
    let peer = if &name[pos..pos + 1] == "{" { "}" } else { "{" };
    s.replace_range(pos..pos + 1, peer);
    Ok(s)
}

/// Registers both ends of pipe `name` (the first with 64 extra buffers), moves 1000
/// packets through, prints "victim ready" and sleeps forever, holding rings, buffers
/// and netmap_ifs until it is SIGKILLed.
pub fn victim(name: &str) -> Result<(), String> {
    let tx = Port::register(name, NR_REG_ALL_NIC, 0, 0, 64, 0, 0, 0, 0)
        .map_err(|e| format!("REGISTER {name:?}: {e}"))?;
    let peer = peer_name(name)?;
    let rx = open_end(&peer)?;
    let payload = Payload::new(None, MAX_LEN)?;
    let count = 1000;
    let sender = std::thread::scope(|s| {
        let h = s.spawn(|| send(&tx, count, 64, &payload));
        let r = receive(&rx, count, &payload);
        (h.join().expect("sender thread panicked"), r)
    });
    sender.0?;
    sender.1?;
    println!(
        "victim ready: {name} ({} extra bufs) and {peer} registered",
        tx.reg().nr_extra_bufs
    );
    std::io::stdout().flush().ok();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Receives packets `0..count` on RX ring 0 of `port` where the path may drop (a NIC,
/// a switch): every packet that arrives must be intact and in order, gaps are counted
/// in `Stats::lost`. Ends when packet `count - 1` arrived, or `idle` after the last
/// packet (the missing tail is lost too); fails if nothing arrives within
/// `first_wait`. Frames that are not ours are skipped and counted when
/// `ignore_foreign`.
pub fn receive_lossy(
    port: &Port,
    count: u64,
    payload: &Payload,
    ignore_foreign: bool,
    idle: Duration,
    first_wait: Duration,
) -> Result<Stats, String> {
    let ring = port.rx_ring(0).ok_or("RX ring 0 not bound")?;
    let mut buf = vec![0u8; MAX_LEN];
    let (mut next, mut got, mut lost, mut foreign) = (0u64, 0u64, 0u64, 0u64);
    let waited = Instant::now();
    let mut first = None::<Instant>;
    let mut last = Instant::now();
    while next < count {
        let budget = match first {
            Some(_) => idle.saturating_sub(last.elapsed()),
            None => first_wait.saturating_sub(waited.elapsed()),
        };
        if budget.is_zero() {
            if first.is_none() {
                return Err(format!(
                    "no packet within {first_wait:?} ({})",
                    ring_state(&ring)
                ));
            }
            lost += count - next;
            break;
        }
        let ms = budget.as_millis().clamp(1, i32::MAX as u128) as i32;
        let rev = port
            .poll(libc::POLLIN, ms)
            .map_err(|e| format!("poll(POLLIN): {e}"))?;
        if rev & libc::POLLERR != 0 {
            return Err(format!(
                "poll(POLLIN) returned {} after {got} packets ({})",
                poll_mask_name(rev),
                ring_state(&ring)
            ));
        }
        let tail = ring.tail();
        let mut head = ring.head();
        if tail >= ring.num_slots() {
            return Err(format!("RX tail out of range ({})", ring_state(&ring)));
        }
        while head != tail {
            let len = (ring.slot_len(head) as usize).min(buf.len());
            ring.read_buf(ring.slot_buf_idx(head), &mut buf[..len]);
            head = ring.next(head);
            if !is_ours(&buf[..len]) {
                if ignore_foreign {
                    foreign += 1;
                    continue;
                }
                return Err(format!("packet #{got}: not one of ours (len {len})"));
            }
            let seq = payload::seq_of(&buf[..len]).ok_or("short frame")?;
            if seq < next || seq >= count {
                return Err(format!(
                    "packet #{got}: sequence number {seq} after {} (reordered, duplicated or unknown)",
                    next.wrapping_sub(1)
                ));
            }
            payload.check(seq, &buf[..len])?;
            lost += seq - next;
            next = seq + 1;
            got += 1;
            last = Instant::now();
            first.get_or_insert(last);
        }
        ring.advance(head);
    }
    port.rxsync()
        .map_err(|e| format!("final NIOCRXSYNC: {e}"))?;
    Ok(Stats {
        packets: got,
        elapsed: first.map(|f| last.duration_since(f)).unwrap_or_default(),
        foreign,
        lost,
    })
}
