//! Forwarding inside the sender's txsync (netmap_vale.c `nm_bdg_preflush` /
//! `nm_bdg_flush`, NETMAP-ABI.md §10.2): the one implementation, run by the daemon for
//! programs it serves through FUSE/CUSE and by preloaded clients in their own process.
//!
//! The sender's `[hwcur, head)` is cut into packets (NS_MOREFRAG chains). A packet is
//! dropped whole (counted in the sender's TX drops) when one of its slots names a
//! buffer outside the pool or a length beyond the buffer, uses NS_INDIRECT (user
//! addresses cannot be reached from another process), spans more than [`MAX_FRAGS`]
//! slots, is an unterminated trailing chain (§8.6), is shorter than the virtio-net
//! header plus 14 bytes, or is unicast back to its sender. Otherwise the learning
//! bridge ([`Bdg`]) picks the destinations and each fragment is copied into one slot
//! of the destination's RX ring (same fragment layout; flags = fragment count << 8,
//! NS_MOREFRAG on non-last).
//!
//! As in the kernel, packets are handled in batches: the whole batch is looked up
//! first, then each destination ring is locked once (its fill lock, in the ring's state
//! block) and gets all of its packets. The fill index (the ring's `link`) moves only
//! under that lock; the ring's reader never takes it: it reads the index (acquire)
//! and publishes its release by moving `hwcur` (release), which is all a sender needs
//! to compute the room. In the daemon, a destination without room for a packet hands
//! it to `Ports::hold` (its bounded backlog; beyond that the packet is dropped and
//! counted in the destination's RX drops). A client has nowhere to keep a packet: it
//! checks the room for a whole batch first and leaves a batch that does not fit, and
//! the rest of its ring, to the daemon (`Forwarded::deferred`), unless the daemon's
//! backlog for that ring is full, in which case it delivers what fits and drops the
//! rest as the daemon would. All forwarded TX slots are free again afterwards:
//! `hwcur = head` (or where a client stopped), `hwtail = hwcur - 1`.
//!
//! A fill lock whose holder died (no `/proc` entry), is stopped, or has held it for
//! longer than any batch takes while not running, is broken by the next sender: one
//! port's client can delay another's forwarding by at most [`LOCK_CAP`], never block it.

use super::bdg::{Bdg, PortEntry};
use super::switch::{is_group, Mac};
use super::{BufGeom, MAX_FRAGS, MAX_VALE_SLOTS};
use crate::adapter::Wake;
use crate::kring::{in_window, Dir, Kring};
use crate::kstate::{
    holder_gone, publish, KState, BUSY_DAEMON, BUSY_STALE, MAGIC, QUEUED, QUEUED_FULL,
};
use crate::ringmem::RingView;
use crate::NetifError;
use netmap_abi::{
    NetmapRing, NetmapSlot, NS_BUF_CHANGED, NS_INDIRECT, NS_MOREFRAG, NS_PORT_MASK, NS_PORT_SHIFT,
};
use netmap_pool::SharedMem;
use std::time::{Duration, Instant};

/// One validated source fragment: region offset of its data and its length.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frag {
    pub off: usize,
    pub len: u16,
}

/// Length of an Ethernet header.
const ETH_HLEN: usize = 14;
/// Packets looked up before delivery starts (netmap's NM_BDG_BATCH).
const PKT_BATCH: usize = 512;
/// Destination of a packet for every port but the sender.
const FLOOD: u16 = u16::MAX;
/// Longest a live, running fill-lock holder is waited for.
pub const LOCK_CAP: Duration = Duration::from_secs(1);

/// Where the destinations are and what a full destination ring does: the daemon's
/// own (trusted) port list, or the switch block as a client sees it.
pub(crate) trait Ports {
    /// Port slots to look at when flooding.
    fn slots(&self) -> usize;
    /// Whether port `p` has rings (can receive).
    fn active(&self, p: usize) -> bool;
    /// RX ring count of port `p` (0 if it has none).
    fn rx_rings(&self, p: usize) -> usize;
    /// Region offset and slot count of RX ring `r` of port `p`, checked.
    fn rx_ring(&self, p: usize, r: usize) -> Option<(usize, u32)>;
    /// Packets for `(p, r)` wait in a queue outside the ring: newer ones must queue
    /// behind them.
    fn queued(&self, _p: usize, _r: usize) -> bool {
        false
    }
    /// A packet found `(p, r)` full: keep it (true) or drop it (false).
    fn hold(
        &mut self,
        _p: usize,
        _r: usize,
        _mem: SharedMem,
        _frags: &[Frag],
        _bytes: u64,
    ) -> Result<bool, NetifError> {
        Ok(false)
    }
}

/// The sender's side of one forwarding call.
pub(crate) struct Sender<'a> {
    pub mem: SharedMem<'a>,
    pub geom: BufGeom,
    pub bdg: Bdg<'a>,
    /// The sender's port slot and virtio-net header length.
    pub me: usize,
    pub hdr_len: usize,
    /// Fill-lock owner: the thread id, or [`BUSY_DAEMON`].
    pub owner: u32,
    /// A client's forwarding: a batch that would find a destination ring without room
    /// for it, or one whose packets the daemon queues, is left to the daemon (see
    /// [`Forwarded::deferred`]).
    pub defer_when_full: bool,
}

/// What a forwarding call did for others.
#[derive(Debug, Default)]
pub(crate) struct Forwarded {
    /// Ports whose RX rings got packets (for the daemon's kernel-path pollers).
    pub wake: Wake,
    /// A kernel-path poller waits on a ring that got packets: a client must kick the
    /// daemon.
    pub kick: bool,
    /// Forwarding stopped at `hwcur` (before `head`): a destination ring has no room
    /// for the next batch, or the daemon holds packets queued for it. The client hands
    /// the rest to the daemon's txsync (the kernel path), whose bounded backlog keeps
    /// them until the reader makes room, in order; later batches follow them there
    /// until the backlog is empty. A client has nowhere to keep a packet for later:
    /// without this, a reader whose CPU wakes late (milliseconds on these VMs) loses
    /// every burst beyond one ring.
    pub deferred: bool,
}

/// A batch the client leaves to the daemon.
struct Defer;

/// A packet of the batch: its fragments in the batch's list, its destination.
#[derive(Debug, Clone, Copy)]
struct Pkt {
    frag0: u32,
    nfrags: u16,
    dst: u16,
    bytes: u32,
}

/// Reads bytes `[skip, skip + out.len())` of the packet made of `frags`; false if the
/// packet is shorter.
fn read_prefix(
    mem: SharedMem,
    frags: &[Frag],
    skip: usize,
    out: &mut [u8],
) -> Result<bool, NetifError> {
    let (want_lo, want_hi) = (skip, skip + out.len());
    let mut pos = 0usize;
    for f in frags {
        let (lo, hi) = (pos, pos + usize::from(f.len));
        let (a, b) = (lo.max(want_lo), hi.min(want_hi));
        if a < b {
            mem.read_bytes(f.off + (a - lo), &mut out[a - want_lo..b - want_lo])?;
        }
        pos = hi;
        if pos >= want_hi {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Cuts the next packet starting at `*k` (not `head`) out of the TX ring, appending
/// its fragments to `frags` and clearing NS_BUF_CHANGED on the consumed slots. Returns
/// whether it is forwardable. `*k` ends past the packet (at most at `head`).
fn next_packet(
    tv: &mut SlotCursor,
    num_slots: u32,
    k: &mut u32,
    head: u32,
    geom: &BufGeom,
    frags: &mut Vec<Frag>,
) -> Result<bool, NetifError> {
    let mut ok = true;
    let mut n = 0;
    loop {
        let s = tv.get(*k, head)?;
        if s.flags & NS_BUF_CHANGED != 0 {
            tv.tv.set_slot_flags(*k, s.flags & !NS_BUF_CHANGED)?;
        }
        *k = if *k + 1 >= num_slots { 0 } else { *k + 1 };
        match geom.offset(s.buf_idx) {
            _ if s.flags & NS_INDIRECT != 0 => ok = false,
            Some(off) if u32::from(s.len) <= geom.size && n < MAX_FRAGS => {
                frags.push(Frag { off, len: s.len });
                n += 1;
            }
            _ => ok = false,
        }
        if s.flags & NS_MOREFRAG == 0 {
            return Ok(ok);
        }
        if *k == head {
            // Unterminated chain: truncated (§8.6).
            return Ok(false);
        }
    }
}

/// A TX ring's slots read [`SLOT_CHUNK`] at a time (one volatile copy each), up to
/// `head` or the ring's end.
struct SlotCursor<'r, 'a> {
    tv: &'r RingView<'a>,
    n: u32,
    buf: [NetmapSlot; SLOT_CHUNK],
    base: u32,
    len: u32,
}

impl<'r, 'a> SlotCursor<'r, 'a> {
    fn new(tv: &'r RingView<'a>, n: u32) -> Self {
        Self {
            tv,
            n,
            buf: [NetmapSlot::default(); SLOT_CHUNK],
            base: 0,
            len: 0,
        }
    }

    fn get(&mut self, k: u32, head: u32) -> Result<NetmapSlot, NetifError> {
        if k < self.base || k >= self.base + self.len {
            let to_end = self.n - k.min(self.n - 1);
            let to_head = if head > k { head - k } else { to_end };
            let cnt = to_end.min(to_head).clamp(1, SLOT_CHUNK as u32);
            self.tv.read_slots(k, &mut self.buf[..cnt as usize])?;
            (self.base, self.len) = (k, cnt);
        }
        Ok(self.buf[(k - self.base) as usize])
    }
}

/// Free slots of an RX ring filled up to `fill` and released up to `limit`:
/// `[fill, limit - 1)`, circularly.
pub(crate) fn free_slots(limit: u32, fill: u32, n: u32) -> u64 {
    (u64::from(limit) + u64::from(n) - 1 - u64::from(fill)) % u64::from(n)
}

/// Writes one packet of `lens.len()` fragments into the RX slots from `fill` on (the
/// caller checked the room); `copy(i, dst)` copies fragment `i` to region offset
/// `dst`. Every destination buffer is validated first: `None` (nothing written) if a
/// slot holds an invalid one. Returns the slot after the packet.
pub(crate) fn put_packet(
    rv: &RingView,
    fill: u32,
    n: u32,
    geom: &BufGeom,
    lens: &[u16],
    mut copy: impl FnMut(usize, usize) -> Result<(), NetifError>,
) -> Result<Option<u32>, NetifError> {
    let next = |j: u32| if j + 1 >= n { 0 } else { j + 1 };
    let count = ((lens.len() as u32) << NS_PORT_SHIFT) as u16 & NS_PORT_MASK;
    let mut j = fill;
    for _ in lens {
        if geom.offset(rv.slot_buf_idx(j)?).is_none() {
            tracing::debug!(slot = j, "VALE RX slot with a bad buffer");
            return Ok(None);
        }
        j = next(j);
    }
    let mut j = fill;
    for (i, &len) in lens.iter().enumerate() {
        let idx = rv.slot_buf_idx(j)?;
        let dst = geom.offset(idx).ok_or_else(|| {
            NetifError::Inval(format!("VALE RX buffer {idx} changed during a sync"))
        })?;
        copy(i, dst)?;
        rv.set_slot_buf_len(j, idx, len)?;
        let more = if i + 1 < lens.len() { NS_MOREFRAG } else { 0 };
        rv.set_slot_flags(j, count | more)?;
        j = next(j);
    }
    Ok(Some(j))
}

/// Whether thread `tid` is running or runnable (`R` in `/proc/<tid>/stat`): a lock
/// holder in that state is still working; one that sleeps or is stopped is not
/// (a batch never sleeps while it holds the lock).
fn running(tid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{tid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('R'))
    })
}

/// Takes the fill lock of the RX ring whose state is `ks`, breaking it if its holder
/// is gone, stopped or sleeping after [`BUSY_STALE`], or still there after
/// [`LOCK_CAP`]; a value that claims to be the caller is a leftover and broken at once.
pub(crate) fn lock_fill(ks: &KState, owner: u32) -> Result<(), NetifError> {
    let mut tries: u32 = 0;
    let mut seen: Option<(u32, Instant)> = None;
    loop {
        if ks.try_flock(owner)? {
            return Ok(());
        }
        tries += 1;
        if tries.is_multiple_of(64) {
            let h = ks.flock_holder()?;
            // The daemon forwards one sync at a time, and a thread never nests: the
            // caller's own mark is not a live holder.
            if h == owner || (owner == BUSY_DAEMON && h == BUSY_DAEMON) {
                ks.break_flock(h)?;
                continue;
            }
            let now = Instant::now();
            let broken = holder_gone(h)
                || match seen {
                    Some((s, since)) if s == h => {
                        let held = now.duration_since(since);
                        held > LOCK_CAP || (held > BUSY_STALE && !running(h))
                    }
                    _ => {
                        seen = Some((h, now));
                        false
                    }
                };
            if broken {
                tracing::debug!(holder = h, "VALE fill lock broken");
                if ks.break_flock(h)? {
                    ks.count_broken()?;
                }
                seen = None;
                continue;
            }
        }
        if tries < 256 {
            std::hint::spin_loop();
        } else if tries < 2048 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// Forwards `[t.hwcur, head)` of the sender's TX ring `t` (view `tv`, state `tks`).
pub(crate) fn forward(
    s: &Sender,
    t: &mut Kring,
    tv: &RingView,
    tks: &KState,
    head: u32,
    ports: &mut dyn Ports,
) -> Result<Forwarded, NetifError> {
    let mut out = Forwarded::default();
    let n = t.num_slots;
    let mut k = t.hwcur;
    let pending = (head + n - k) % n;
    let mut frags: Vec<Frag> = Vec::with_capacity((pending as usize).min(PKT_BATCH));
    let mut pkts: Vec<Pkt> = Vec::with_capacity((pending as usize).min(PKT_BATCH));
    let (mut sent, mut bytes_sent, mut dropped) = (0u64, 0u64, 0u64);
    let mut cursor = SlotCursor::new(tv, n);
    let mut last_src: Option<Mac> = None;
    let mut last_dst: Option<(Mac, Option<u16>)> = None;
    while k != head {
        pkts.clear();
        frags.clear();
        let batch_start = k;
        let (mut b_sent, mut b_bytes, mut b_dropped) = (0u64, 0u64, 0u64);
        while k != head && pkts.len() < PKT_BATCH {
            let first = frags.len();
            let ok = next_packet(&mut cursor, n, &mut k, head, &s.geom, &mut frags)?;
            let mut eth = [0u8; ETH_HLEN];
            if !ok || !read_prefix(s.mem, &frags[first..], s.hdr_len, &mut eth)? {
                frags.truncate(first);
                b_dropped += 1;
                continue;
            }
            let bytes: u64 = frags[first..].iter().map(|f| u64::from(f.len)).sum();
            let mut dst: Mac = [0; 6];
            let mut src: Mac = [0; 6];
            dst.copy_from_slice(&eth[..6]);
            src.copy_from_slice(&eth[6..12]);
            // Runs of packets between the same two hosts are the common case: the
            // table is read once per run (learning first, as the kernel does, so a
            // packet to its own source is still seen as one).
            if last_src != Some(src) {
                s.bdg.learn(&src, s.me as u16)?;
                last_src = Some(src);
                last_dst = None;
            }
            let target = match last_dst {
                Some((m, t)) if m == dst => t,
                _ => {
                    let t = if is_group(&dst) {
                        None
                    } else {
                        s.bdg.lookup(&dst)?
                    };
                    last_dst = Some((dst, t));
                    t
                }
            };
            if target == Some(s.me as u16) {
                frags.truncate(first);
                b_dropped += 1;
                continue;
            }
            b_sent += 1;
            b_bytes += bytes;
            pkts.push(Pkt {
                frag0: first as u32,
                nfrags: (frags.len() - first) as u16,
                dst: target.unwrap_or(FLOOD),
                bytes: bytes as u32,
            });
        }
        if deliver_batch(s, t.id as usize, &pkts, &frags, ports, &mut out)?.is_err() {
            k = batch_start;
            out.deferred = true;
            break;
        }
        (sent, bytes_sent, dropped) = (sent + b_sent, bytes_sent + b_bytes, dropped + b_dropped);
    }
    tks.count_sent(sent, bytes_sent)?;
    tks.count_drops(dropped)?;
    t.hwcur = k;
    t.hwtail = t.prev(k);
    Ok(out)
}

/// Whether every destination ring of the batch has room for all of its packets and
/// no queued packets ahead of them (read without the fill locks: a sender racing in
/// between only turns some of them into drops, as a full ring would).
fn batch_fits(
    s: &Sender,
    ring: usize,
    pkts: &[Pkt],
    ports: &dyn Ports,
) -> Result<bool, NetifError> {
    let mut need: Vec<((usize, usize), u64)> = Vec::new();
    let mut add = |t: (usize, usize), n: u64| match need.iter_mut().find(|(k, _)| *k == t) {
        Some((_, v)) => *v += n,
        None => need.push((t, n)),
    };
    let mut flood = 0u64;
    for p in pkts {
        let n = u64::from(p.nfrags);
        if p.dst == FLOOD {
            flood += n;
        } else {
            let d = usize::from(p.dst);
            let nr = ports.rx_rings(d);
            if nr > 0 {
                add((d, ring % nr), n);
            }
        }
    }
    if flood > 0 {
        for d in 0..ports.slots() {
            if d != s.me && ports.active(d) {
                add((d, 0), flood);
            }
        }
    }
    for ((d, r), n) in need {
        let Some((off, slots)) = ports.rx_ring(d, r) else {
            continue;
        };
        let ks = KState::new(s.mem, off);
        match ks.queued()? {
            0 => {}
            QUEUED_FULL => continue, // the daemon drops too: no point handing it over
            _ => return Ok(false),
        }
        let rv = RingView::new(s.mem, off, slots);
        let Some((fill, limit)) = room(&ks, &rv, slots)? else {
            continue; // a broken ring: its packets are dropped and counted
        };
        if free_slots(limit, fill, slots) < n {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The fill index of an RX ring and how far senders may fill (`free_slots(limit,
/// fill, n)` slots), or `None` when its state block is out of range (a client broke
/// it: nothing is delivered there).
///
/// Slots the reader already handed back by moving `head` are free too: its next rxsync
/// would take them (VALE's rxsync is `hwcur = head`), and waiting for it is what made a
/// daemon-path receiver lose packets (see backlog.rs). `head` is untrusted: used only
/// inside `[hwcur, hwtail]`.
fn room(ks: &KState, rv: &RingView, n: u32) -> Result<Option<(u32, u32)>, NetifError> {
    let (hwcur, hwtail) = ks.hw()?;
    let fill = ks.link()?;
    if fill >= n || hwcur >= n {
        return Ok(None);
    }
    let head = rv.head()?;
    let limit = if head < n && in_window(hwcur, hwtail, head) {
        head
    } else {
        hwcur
    };
    Ok(Some((fill, limit)))
}

/// Delivers a looked-up batch: each destination ring once, its packets in order.
/// Unicast goes to RX ring `sender ring % rings`; unknown unicast, multicast and
/// broadcast to RX ring 0 of every other active port. `Err(Defer)`: nothing was
/// delivered, the batch is the daemon's ([`Sender::defer_when_full`]).
fn deliver_batch(
    s: &Sender,
    ring: usize,
    pkts: &[Pkt],
    frags: &[Frag],
    ports: &mut dyn Ports,
    out: &mut Forwarded,
) -> Result<Result<(), Defer>, NetifError> {
    if s.defer_when_full && !batch_fits(s, ring, pkts, ports)? {
        return Ok(Err(Defer));
    }
    let mut unicast: Vec<u16> = Vec::new();
    let mut flood = false;
    for p in pkts {
        if p.dst == FLOOD {
            flood = true;
        } else if !unicast.contains(&p.dst) {
            unicast.push(p.dst);
        }
    }
    for &d in &unicast {
        let nr = ports.rx_rings(usize::from(d));
        if nr == 0 {
            continue;
        }
        deliver_to(s, usize::from(d), ring % nr, pkts, frags, ports, out, |p| {
            p.dst == d
        })?;
    }
    if flood {
        for d in 0..ports.slots() {
            if d != s.me && ports.active(d) {
                deliver_to(s, d, 0, pkts, frags, ports, out, |p| p.dst == FLOOD)?;
            }
        }
    }
    Ok(Ok(()))
}

/// Copies the packets of the batch that `pick` selects into RX ring `r` of port `d`,
/// under the ring's fill lock, then publishes the ring once.
#[allow(clippy::too_many_arguments)]
fn deliver_to(
    s: &Sender,
    d: usize,
    r: usize,
    pkts: &[Pkt],
    frags: &[Frag],
    ports: &mut dyn Ports,
    out: &mut Forwarded,
    pick: impl Fn(&Pkt) -> bool,
) -> Result<(), NetifError> {
    let Some((off, n)) = ports.rx_ring(d, r) else {
        return Ok(());
    };
    let ks = KState::new(s.mem, off);
    let rv = RingView::new(s.mem, off, n);
    lock_fill(&ks, s.owner)?;
    // The port may have gone between the look-up and the lock: the daemon takes the
    // fill lock of a ring it frees, then clears its state block (which also releases
    // the lock). A ring found cleared is not written.
    if ks.magic()? != MAGIC || ks.peer()? != s.bdg.offset() as u64 {
        ks.put_flock(s.owner)?;
        return Ok(());
    }
    let res = fill_ring(s, d, r, &ks, &rv, n, pkts, frags, ports, &pick);
    if !ks.put_flock(s.owner)? {
        tracing::debug!(port = d, ring = r, "VALE fill lock was broken while held");
    }
    let (placed, held, _refused) = res?;
    if placed > 0 {
        out.kick |= publish(&ks)?;
    }
    if placed + held > 0 {
        out.wake.add(d, Dir::Rx);
    }
    Ok(())
}

/// The part of [`deliver_to`] under the lock: returns packets placed, held, and
/// refused by [`Ports::hold`].
#[allow(clippy::too_many_arguments)]
fn fill_ring(
    s: &Sender,
    d: usize,
    r: usize,
    ks: &KState,
    rv: &RingView,
    n: u32,
    pkts: &[Pkt],
    frags: &[Frag],
    ports: &mut dyn Ports,
    pick: &dyn Fn(&Pkt) -> bool,
) -> Result<(u64, u64, u64), NetifError> {
    let Some((mut fill, limit)) = room(ks, rv, n)? else {
        tracing::debug!(
            port = d,
            ring = r,
            "VALE RX ring state out of range: nothing delivered"
        );
        ks.count_drops(pkts.iter().filter(|p| pick(p)).count() as u64)?;
        return Ok((0, 0, 0));
    };
    // Packets the daemon holds for this ring are older than any a client brings now:
    // while there are some, a client delivers nothing here (its batch was deferred
    // to the daemon, or, with the backlog full, it drops as the daemon does), so that
    // nothing overtakes them. The flag is read and written under the fill lock.
    if s.defer_when_full && ks.queued()? != 0 {
        ks.count_drops(pkts.iter().filter(|p| pick(p)).count() as u64)?;
        return Ok((0, 0, 0));
    }
    let mut queue = ports.queued(d, r);
    let (mut placed, mut held, mut dropped, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    let mut refused = 0u64;
    let mut lens = [0u16; MAX_FRAGS];
    let picked: Vec<&Pkt> = pkts.iter().filter(|p| pick(p)).collect();
    let mut i = 0;
    while i < picked.len() {
        let p = picked[i];
        let fr = &frags[p.frag0 as usize..p.frag0 as usize + usize::from(p.nfrags)];
        let free = free_slots(limit, fill, n);
        if !queue && p.nfrags == 1 && free > 0 {
            // A run of one-slot packets: the destination slots are read and written
            // back in bulk, 32 at a time.
            let run = picked[i..]
                .iter()
                .take_while(|q| q.nfrags == 1)
                .count()
                .min(free as usize)
                .min((n - fill) as usize)
                .min(SLOT_CHUNK);
            let (done, b) = put_run(s, rv, fill, &picked[i..i + run], frags)?;
            fill = if fill + done as u32 >= n {
                0
            } else {
                fill + done as u32
            };
            placed += done as u64;
            bytes += b;
            i += done;
            if done < run {
                // A destination slot with a bad buffer: that packet is lost.
                tracing::debug!(slot = fill, "VALE RX slot with a bad buffer");
                dropped += 1;
                i += 1;
            }
            continue;
        }
        i += 1;
        if !queue && free >= fr.len() as u64 {
            for (l, f) in lens.iter_mut().zip(fr) {
                *l = f.len;
            }
            let done = put_packet(rv, fill, n, &s.geom, &lens[..fr.len()], |i, dst| {
                s.mem
                    .copy_within(fr[i].off, dst, usize::from(fr[i].len))
                    .map_err(NetifError::from)
            })?;
            match done {
                Some(next) => {
                    fill = next;
                    placed += 1;
                    bytes += u64::from(p.bytes);
                }
                None => dropped += 1,
            }
        } else if ports.hold(d, r, s.mem, fr, u64::from(p.bytes))? {
            queue = true;
            held += 1;
        } else {
            dropped += 1;
            refused += 1;
        }
    }
    if placed > 0 {
        ks.set_link(fill)?;
    }
    // The daemon says, still under the lock, that packets now wait in its backlog
    // (and whether it is full): a client's next delivery checks this first.
    if !s.defer_when_full {
        if refused > 0 {
            ks.set_queued(QUEUED_FULL)?;
        } else if held > 0 {
            ks.set_queued(QUEUED)?;
        }
    }
    ks.count_sent(placed, bytes)?;
    ks.count_drops(dropped)?;
    Ok((placed, held, refused))
}

/// Slots read or written per bulk copy.
const SLOT_CHUNK: usize = 32;

/// Copies a run of one-slot packets into the destination slots from `fill` on (room
/// and ring end checked by the caller; at most [`SLOT_CHUNK`]). Stops before a slot
/// whose buffer is invalid. Returns the packets placed and their bytes.
fn put_run(
    s: &Sender,
    rv: &RingView,
    fill: u32,
    run: &[&Pkt],
    frags: &[Frag],
) -> Result<(usize, u64), NetifError> {
    let mut slots = [NetmapSlot::default(); SLOT_CHUNK];
    let slots = &mut slots[..run.len()];
    rv.read_slots(fill, slots)?;
    let one = ((1u32 << NS_PORT_SHIFT) as u16) & NS_PORT_MASK;
    let (mut done, mut bytes) = (0, 0u64);
    for (slot, p) in slots.iter_mut().zip(run) {
        let Some(dst) = s.geom.offset(slot.buf_idx) else {
            break;
        };
        let f = frags[p.frag0 as usize];
        s.mem.copy_within(f.off, dst, usize::from(f.len))?;
        slot.len = f.len;
        slot.flags = one;
        done += 1;
        bytes += u64::from(f.len);
    }
    rv.write_slots(fill, &slots[..done])?;
    Ok((done, bytes))
}

/// The reader's rxsync of a VALE RX ring (in the daemon or in the client): releases
/// `[hwcur, head)` and publishes what senders filled. Returns whether the daemon holds
/// queued packets for the ring.
pub fn rx_core(k: &mut Kring, ks: &KState, head: u32) -> Result<bool, NetifError> {
    k.hwcur = head;
    let fill = ks.link()?;
    if fill < k.num_slots {
        k.hwtail = fill;
    }
    Ok(ks.queued()? != 0)
}

/// The switch as a client sees it: the block's port list, every ring checked before
/// it is written (state block of a VALE ring of this very switch, slot count in
/// range, inside the region).
///
/// Entries are read once per forwarding call and kept (a port that goes away
/// meanwhile is caught by the ring checks: its state block is cleared first).
pub(crate) struct BlockPorts<'a> {
    mem: SharedMem<'a>,
    bdg: Bdg<'a>,
    nports: usize,
    cache: std::cell::RefCell<Vec<Option<Option<PortEntry>>>>,
}

impl<'a> BlockPorts<'a> {
    pub fn new(mem: SharedMem<'a>, bdg: Bdg<'a>) -> Self {
        let nports = bdg.nports();
        Self {
            mem,
            bdg,
            nports,
            cache: std::cell::RefCell::new(vec![None; nports]),
        }
    }

    fn entry(&self, p: usize) -> Option<PortEntry> {
        let mut c = self.cache.borrow_mut();
        let slot = c.get_mut(p)?;
        *slot.get_or_insert_with(|| self.bdg.port(p).ok().flatten())
    }
}

impl Ports for BlockPorts<'_> {
    fn slots(&self) -> usize {
        self.nports
    }
    fn active(&self, p: usize) -> bool {
        self.entry(p).is_some()
    }
    fn rx_rings(&self, p: usize) -> usize {
        self.entry(p).map_or(0, |e| e.rx_rings as usize)
    }
    fn rx_ring(&self, p: usize, r: usize) -> Option<(usize, u32)> {
        let e = self.entry(p)?;
        if r >= e.rx_rings as usize {
            return None;
        }
        let off = *e.rx.get(r)? as usize;
        check_ring(self.mem, off, self.bdg.offset())
    }
}

/// `(off, num_slots)` if `off` holds a VALE ring of the switch whose block is at
/// `bdg` (kind may be 0: a monitored port still receives).
pub(crate) fn check_ring(mem: SharedMem, off: usize, bdg: usize) -> Option<(usize, u32)> {
    let ks = KState::new(mem, off);
    if ks.magic().ok()? != MAGIC || ks.peer().ok()? != bdg as u64 {
        return None;
    }
    let n = mem
        .read_u32(off + core::mem::offset_of!(NetmapRing, num_slots))
        .ok()?;
    let end = off.checked_add(netmap_abi::ring_slot_offset(n))?;
    ((1..=MAX_VALE_SLOTS).contains(&n) && end <= mem.len()).then_some((off, n))
}
