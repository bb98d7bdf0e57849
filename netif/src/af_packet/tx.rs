//! Transmit side: hardware TX rings backed by a TPACKET_V2 PACKET_MMAP TX ring.
//!
//! Each packet (one slot, or several chained with NS_MOREFRAG) is copied into the next
//! TX frame, which is marked TP_STATUS_SEND_REQUEST. The `sendto(NULL, 0)` that makes
//! the kernel send every requested frame is not made by txsync itself: the ring's
//! kicker thread makes it, so the kernel's transmission of one batch (sendto does the
//! driver's work in the calling thread) overlaps the client filling, and txsync
//! copying, the next one. After each kick, and whenever frames the kernel still held
//! after it complete later (a NIC's TX completions, softirq work deferred to
//! ksoftirqd; the kicker then checks with a backoff from `MIN_WAIT` to
//! `MAX_WAIT`), the kicker signals an eventfd, the port's TX event descriptor, so
//! TX pollers wake and reclaim. The socket itself is not an event descriptor: it
//! would wake the control plane for every transmitted frame. A kick that fails for
//! good (link down, interface gone) is recorded and reported by the next txsync, which
//! then repeats the kick itself to see whether the condition persists.
//!
//! The kernel puts a frame back to TP_STATUS_AVAILABLE when the driver is done with
//! it; only then does `hwtail` move over the packet's slots. A FIFO maps in-flight
//! packets to their frame and to the netmap index just past their last slot.

use super::socket::{EventFd, MmapRing, PacketSocket, TpacketReq, TPACKET_V2};
use super::{BufGeom, Stats};
use crate::kring::Kring;
use crate::ringmem::RingView;
use crate::NetifError;
use netmap_abi::{NS_BUF_CHANGED, NS_MOREFRAG};
use netmap_pool::SharedMem;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Offset of the frame data in a TPACKET_V2 TX frame (TPACKET2_HDRLEN - sizeof(sockaddr_ll)).
pub const DATA_OFF: usize = 32;
const H2_STATUS: usize = 0;
const H2_LEN: usize = 4;
/// Ethernet header plus one VLAN tag: what the kernel allows beyond the MTU.
const L2_OVERHEAD: u32 = 14 + 4;
/// Smallest per-frame payload (a full netmap buffer).
const MIN_PAYLOAD: u32 = 2048;
/// Upper bound on the kernel memory of one TX ring.
const MAX_RING_BYTES: u32 = 16 << 20;
const MIN_BLOCK: u32 = 128 * 1024;
const PAGE: u32 = 4096;
/// Most `sendto` calls of one kick that hit a transient error (each must make progress).
const MAX_KICK_TRIES: u32 = 16;
/// The kicker drains its eventfd after this many signals (keeps the counter small).
const DRAIN_EVERY: u32 = 1024;
/// First and longest pause of the kicker while it waits for in-flight frames.
const MIN_WAIT: Duration = Duration::from_micros(20);
const MAX_WAIT: Duration = Duration::from_millis(1);

/// Geometry of a TX frame ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxGeom {
    pub frame_size: u32,
    pub block_size: u32,
    pub frames_per_block: u32,
    pub block_nr: u32,
    /// Most bytes one frame carries: what the kernel accepts for this MTU.
    pub capacity: u32,
}

impl TxGeom {
    /// About `want` frames big enough for the MTU, within [`MAX_RING_BYTES`].
    pub fn new(mtu: u32, want: u32) -> Self {
        let payload = mtu.saturating_add(L2_OVERHEAD).max(MIN_PAYLOAD);
        let frame_size = (DATA_OFF as u32 + payload).next_multiple_of(16);
        let block_size = MIN_BLOCK.max(frame_size.next_multiple_of(PAGE));
        let frames_per_block = block_size / frame_size;
        let want = want.min(MAX_RING_BYTES / frame_size).max(2);
        let block_nr = want.div_ceil(frames_per_block);
        Self {
            frame_size,
            block_size,
            frames_per_block,
            block_nr,
            capacity: mtu.saturating_add(L2_OVERHEAD),
        }
    }

    pub fn frame_nr(&self) -> u32 {
        self.frames_per_block * self.block_nr
    }

    /// Offset of frame `i` in the mapping (frames never straddle blocks).
    pub fn frame_off(&self, i: u32) -> usize {
        (i / self.frames_per_block) as usize * self.block_size as usize
            + (i % self.frames_per_block) as usize * self.frame_size as usize
    }
}

/// A packet handed to the kernel (or dropped) but not yet reported complete.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    /// TX frame, `None` for a packet that was dropped without a frame.
    frame: Option<u32>,
    /// Netmap index just past the packet's last slot.
    end: u32,
}

/// The packet starting at `start`: `(end, complete)` where `end` is the index past its
/// last slot seen before `head`, `complete` false if it still lacks its last fragment.
pub fn packet_extent(
    k: &Kring,
    rv: &RingView,
    start: u32,
    head: u32,
) -> Result<(u32, bool), NetifError> {
    let mut s = start;
    loop {
        let f = rv.slot_flags(s)?;
        s = k.next(s);
        if f & NS_MOREFRAG == 0 {
            return Ok((s, true));
        }
        if s == head {
            return Ok((s, false));
        }
    }
}

/// True for `sendto` errors after which the frames simply stay requested.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAGAIN | libc::ENOBUFS | libc::EINTR)
    )
}

/// What a TX ring shares with its kicker thread.
#[derive(Debug)]
struct TxShared {
    sock: PacketSocket,
    map: MmapRing,
    geom: TxGeom,
    /// Signalled after every kick and on later completions: wakes TX pollers (the
    /// port's TX event descriptor).
    done: EventFd,
    /// A kick was asked for since the kicker last took the request.
    pending: AtomicBool,
    stop: AtomicBool,
    /// errno of a kick that failed for good, 0 if none since txsync last looked.
    error: AtomicI32,
}

impl TxShared {
    /// Frames whose status has any of the bits of `mask`.
    fn count(&self, mask: u32) -> u32 {
        let ring = self.map.mem();
        (0..self.geom.frame_nr())
            .filter(|&i| {
                ring.load_u32_acquire(self.geom.frame_off(i) + H2_STATUS)
                    .is_ok_and(|s| s & mask != 0)
            })
            .count() as u32
    }

    /// Frames still waiting for a `sendto`.
    fn requested(&self) -> u32 {
        self.count(libc::TP_STATUS_SEND_REQUEST)
    }

    /// Frames the kernel has not finished with.
    fn busy(&self) -> u32 {
        self.count(libc::TP_STATUS_SEND_REQUEST | libc::TP_STATUS_SENDING)
    }

    fn signal_done(&self, signals: &mut u32) {
        *signals += 1;
        if *signals == DRAIN_EVERY {
            *signals = 0;
            if let Err(e) = self.done.drain() {
                tracing::warn!(%e, "tx kicker: eventfd read");
            }
        }
        if let Err(e) = self.done.signal() {
            tracing::warn!(%e, "tx kicker: eventfd write");
        }
    }

    /// One kick: `sendto` until it succeeds, fails for good (recorded in `error`), or
    /// a transient failure leaves requested frames without progress since the last try
    /// (the next txsync asks again; the `done` signal makes pollers call it).
    fn kick(&self) {
        let mut left = u32::MAX;
        for _ in 0..MAX_KICK_TRIES {
            match self.sock.kick() {
                Ok(()) => return,
                Err(e) if transient(&e) => {
                    let n = self.requested();
                    tracing::trace!(%e, n, "tx kick deferred");
                    if n == 0 || n >= left {
                        return;
                    }
                    left = n;
                }
                Err(e) => {
                    tracing::debug!(%e, "tx kick failed");
                    self.error
                        .store(e.raw_os_error().unwrap_or(libc::EIO), Ordering::Release);
                    return;
                }
            }
        }
    }
}

/// The kicker thread: kicks whenever asked, then signals `done`; while frames stay
/// in flight after a kick, checks on them with a backoff and signals `done` whenever
/// some completed.
fn kicker(sh: Arc<TxShared>) {
    let mut signals = 0u32;
    // (frames in flight, next pause) while waiting for completions.
    let mut waiting: Option<(u32, Duration)> = None;
    while !sh.stop.load(Ordering::Acquire) {
        if sh.pending.swap(false, Ordering::AcqRel) {
            sh.kick();
            sh.signal_done(&mut signals);
            let busy = sh.busy();
            waiting = (busy > 0).then_some((busy, MIN_WAIT));
            continue;
        }
        let Some((before, pause)) = waiting else {
            std::thread::park();
            continue;
        };
        std::thread::park_timeout(pause);
        if sh.pending.load(Ordering::Acquire) {
            continue;
        }
        let busy = sh.busy();
        if busy < before {
            sh.signal_done(&mut signals);
            waiting = (busy > 0).then_some((busy, MIN_WAIT));
        } else {
            waiting = Some((busy, (pause * 2).min(MAX_WAIT)));
        }
    }
}

/// One hardware TX ring.
#[derive(Debug)]
pub struct HwTx {
    shared: Arc<TxShared>,
    /// The kicker thread, joined on drop (before the ring is unmapped).
    kicker: Option<JoinHandle<()>>,
    geom: TxGeom,
    /// Next frame to fill.
    next: u32,
    /// Frames in use, in ring order.
    frames_used: u32,
    inflight: VecDeque<InFlight>,
}

impl HwTx {
    /// Creates the socket (protocol 0: it never receives) with its TX ring, bound to
    /// the interface. `mark` tags its frames so the host RX ring can ignore them.
    pub fn open(ifindex: u32, mtu: u32, slots: u32, mark: u32) -> io::Result<Self> {
        let geom = TxGeom::new(mtu, slots.min(1024));
        let sock = PacketSocket::new(0)?;
        sock.set_version(TPACKET_V2)?;
        sock.set_qdisc_bypass()?;
        sock.set_loss()?;
        if let Err(e) = sock.set_mark(mark) {
            tracing::warn!(%e, "SO_MARK refused: the host RX ring will also show this port's own transmissions");
        }
        sock.set_tx_ring(&TpacketReq {
            block_size: geom.block_size,
            block_nr: geom.block_nr,
            frame_size: geom.frame_size,
            frame_nr: geom.frame_nr(),
        })?;
        let map = sock.mmap(geom.block_size as usize * geom.block_nr as usize)?;
        sock.bind(ifindex, 0)?;
        let shared = Arc::new(TxShared {
            sock,
            map,
            geom,
            done: EventFd::new()?,
            pending: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            error: AtomicI32::new(0),
        });
        let sh = shared.clone();
        let kicker = std::thread::Builder::new()
            .name(format!("nm-txkick-{ifindex}"))
            .stack_size(64 << 10)
            .spawn(move || kicker(sh))?;
        Ok(Self {
            shared,
            kicker: Some(kicker),
            geom,
            next: 0,
            frames_used: 0,
            inflight: VecDeque::new(),
        })
    }

    pub fn geom(&self) -> TxGeom {
        self.geom
    }

    /// The eventfd the kicker signals after each kick.
    pub fn done_fd(&self) -> RawFd {
        self.shared.done.as_raw_fd()
    }

    /// Asks the kicker for a kick (cheap when it is already busy or asked).
    fn request_kick(&self) {
        if !self.shared.pending.swap(true, Ordering::AcqRel) {
            if let Some(k) = &self.kicker {
                k.thread().unpark();
            }
        }
    }

    /// Reports a kick that failed for good since the last txsync, unless a kick made
    /// now succeeds (the condition went away) or fails only transiently.
    fn check_kick_error(&self) -> Result<(), NetifError> {
        let errno = self.shared.error.swap(0, Ordering::AcqRel);
        if errno == 0 {
            return Ok(());
        }
        match self.shared.sock.kick() {
            Ok(()) => Ok(()),
            Err(e) if transient(&e) => {
                tracing::trace!(%e, "tx kick deferred");
                Ok(())
            }
            Err(e) => Err(NetifError::Io {
                op: "tx sendto",
                source: e,
            }),
        }
    }

    /// Moves hwtail over every packet the kernel has finished with.
    pub fn reclaim(&mut self, k: &mut Kring, st: &mut Stats) -> Result<(), NetifError> {
        let ring = self.shared.map.mem();
        while let Some(p) = self.inflight.front().copied() {
            if let Some(f) = p.frame {
                let off = self.geom.frame_off(f);
                let status = ring.load_u32_acquire(off + H2_STATUS)?;
                if status & (libc::TP_STATUS_SEND_REQUEST | libc::TP_STATUS_SENDING) != 0 {
                    break;
                }
                if status & libc::TP_STATUS_WRONG_FORMAT != 0 {
                    st.tx_errors += 1;
                    ring.store_u32_release(off + H2_STATUS, libc::TP_STATUS_AVAILABLE)?;
                }
                self.frames_used -= 1;
            }
            self.inflight.pop_front();
            k.hwtail = k.prev(p.end);
        }
        Ok(())
    }

    /// True if the oldest frame still waits for a `sendto` (the kick has not run yet,
    /// or an earlier one failed).
    fn request_pending(&self) -> Result<bool, NetifError> {
        let Some(f) = self.inflight.iter().find_map(|p| p.frame) else {
            return Ok(false);
        };
        let s = self
            .shared
            .map
            .mem()
            .load_u32_acquire(self.geom.frame_off(f) + H2_STATUS)?;
        Ok(s & libc::TP_STATUS_SEND_REQUEST != 0)
    }

    /// Reports a failed earlier kick, queues the packets of `[hwcur, head)` that fit
    /// into free TX frames, asks the kicker to kick the kernel, and reclaims what
    /// completed. `hwcur` advances only over slots actually queued (or dropped).
    pub fn txsync(
        &mut self,
        k: &mut Kring,
        rv: &RingView,
        mem: SharedMem,
        head: u32,
        geom: &BufGeom,
        st: &mut Stats,
    ) -> Result<(), NetifError> {
        self.reclaim(k, st)?;
        self.check_kick_error()?;
        let ring = self.shared.map.mem();
        let n = k.num_slots;
        let mut queued = false;
        let mut cur = k.hwcur;
        while cur != head {
            let (end, complete) = packet_extent(k, rv, cur, head)?;
            if !complete && (head + n - cur) % n < n - 1 {
                // The client may still add the missing fragments.
                break;
            }
            if self.frames_used == self.geom.frame_nr() {
                break;
            }
            let foff = self.geom.frame_off(self.next);
            if ring.load_u32_acquire(foff + H2_STATUS)? != libc::TP_STATUS_AVAILABLE {
                break;
            }
            let (total, ok, truncated) =
                self.copy_packet(k, rv, mem, cur, end, foff + DATA_OFF, geom)?;
            if truncated && ok && complete {
                st.tx_errors += 1;
            }
            if !ok || !complete {
                st.tx_errors += 1;
                self.inflight.push_back(InFlight { frame: None, end });
            } else {
                ring.write_u32(foff + H2_LEN, total)?;
                ring.store_u32_release(foff + H2_STATUS, libc::TP_STATUS_SEND_REQUEST)?;
                self.inflight.push_back(InFlight {
                    frame: Some(self.next),
                    end,
                });
                self.next = (self.next + 1) % self.geom.frame_nr();
                self.frames_used += 1;
                queued = true;
                st.tx_packets += 1;
                st.tx_bytes += u64::from(total);
            }
            cur = end;
        }
        k.hwcur = cur;
        if queued || self.request_pending()? {
            self.request_kick();
        }
        self.reclaim(k, st)
    }

    /// Copies the slots `[start, end)` into the frame data at `dst` (offset in the TX
    /// ring mapping), clearing NS_BUF_CHANGED. Lengths are clamped to the buffer size
    /// and the total to the frame capacity. Returns `(bytes, all buffers valid,
    /// truncated)`.
    #[allow(clippy::too_many_arguments)]
    fn copy_packet(
        &self,
        k: &Kring,
        rv: &RingView,
        mem: SharedMem,
        start: u32,
        end: u32,
        dst: usize,
        geom: &BufGeom,
    ) -> Result<(u32, bool, bool), NetifError> {
        let ring = self.shared.map.mem();
        let cap = self.geom.capacity as usize;
        let mut total = 0usize;
        let mut ok = true;
        let mut truncated = false;
        // A small bounce buffer: zeroing it is paid per packet.
        let mut chunk = [0u8; 256];
        let mut s = start;
        while s != end {
            let slot = rv.slot(s)?;
            if slot.flags & NS_BUF_CHANGED != 0 {
                rv.set_slot_flags(s, slot.flags & !NS_BUF_CHANGED)?;
            }
            match geom.offset(slot.buf_idx) {
                None => ok = false,
                Some(src) if ok => {
                    let mut len = usize::from(slot.len).min(geom.size as usize);
                    if total + len > cap {
                        len = cap - total;
                        truncated = true;
                    }
                    let mut done = 0;
                    while done < len {
                        let c = (len - done).min(chunk.len());
                        mem.read_bytes(src + done, &mut chunk[..c])?;
                        ring.write_bytes(dst + total + done, &chunk[..c])?;
                        done += c;
                    }
                    total += len;
                }
                Some(_) => {}
            }
            s = k.next(s);
        }
        if truncated {
            tracing::debug!(
                cap,
                "tx: packet longer than the interface allows, truncated"
            );
        }
        Ok((total as u32, ok, truncated))
    }
}

impl Drop for HwTx {
    /// Stops and joins the kicker: no `sendto` runs once the ring may be unmapped.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(k) = self.kicker.take() {
            k.thread().unpark();
            if k.join().is_err() {
                tracing::error!("tx kicker thread panicked");
            }
        }
    }
}

/// The host TX ring. AF_PACKET cannot inject a frame into the host stack "as if
/// received from the wire", so its packets are completed at once and dropped (counted
/// in `tx_errors` and `host_tx_drops`). Transmitting them on the wire instead would be
/// worse: the stack already receives every wire frame itself (AF_PACKET only taps
/// it), so the classic `bridge netmap:eth0 netmap:eth0^` would echo wire traffic back
/// onto the wire.
pub fn host_txsync(
    k: &mut Kring,
    rv: &RingView,
    head: u32,
    st: &mut Stats,
) -> Result<(), NetifError> {
    let mut s = k.hwcur;
    while s != head {
        let f = rv.slot_flags(s)?;
        if f & NS_BUF_CHANGED != 0 {
            rv.set_slot_flags(s, f & !NS_BUF_CHANGED)?;
        }
        if f & NS_MOREFRAG == 0 {
            st.tx_errors += 1;
            st.host_tx_drops += 1;
        }
        s = k.next(s);
    }
    if k.hwcur != head {
        k.hwcur = head;
        k.hwtail = k.prev(head);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry() {
        let g = TxGeom::new(1500, 1024);
        assert_eq!(g.frame_size, 2080);
        assert_eq!(g.capacity, 1518);
        assert!(g.frame_nr() >= 1024);
        assert_eq!(g.block_size % 4096, 0);
        assert_eq!(g.frame_off(g.frames_per_block), g.block_size as usize);
        let g = TxGeom::new(9000, 1024);
        assert_eq!(g.capacity, 9018);
        assert!(g.frame_size as usize >= DATA_OFF + 9018);
        assert!(g.frame_nr() >= 1024);
        let g = TxGeom::new(65535, 1024);
        assert!(
            g.frame_size as u64 * u64::from(g.frame_nr())
                <= u64::from(MAX_RING_BYTES) + u64::from(g.block_size)
        );
        assert!(g.frame_nr() >= 2);
        // Frames never straddle a block.
        for g in [
            TxGeom::new(1500, 100),
            TxGeom::new(9000, 500),
            TxGeom::new(65535, 10),
        ] {
            for i in 0..g.frame_nr() {
                let o = g.frame_off(i);
                assert!(o % g.block_size as usize + g.frame_size as usize <= g.block_size as usize);
            }
        }
    }
}
