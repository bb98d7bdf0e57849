//! Transmit side: hardware TX rings backed by a TPACKET_V2 PACKET_MMAP TX ring.
//!
//! V2 rather than V3 by measurement: the kernel sends both through the same
//! `tpacket_snd`, a V3 TX ring only takes fixed-size frames (`tp_next_offset` 0) and
//! so offers nothing here, and a sender that differed only in the header version moved
//! 0.79 Mpps with V2 against 0.76 with V3 (60-byte frames on a veth, mean of 5
//! interleaved runs of 2 M frames each, 2026-11-25).
//!
//! Each packet (one slot, or several chained with NS_MOREFRAG) is copied into the next
//! TX frame by txsync. The frame is handed to the kernel (marked
//! TP_STATUS_SEND_REQUEST) and the `sendto(NULL, 0)` that makes the kernel send it is
//! made not by txsync but by the ring's kicker thread, so the kernel's transmission of
//! one batch (sendto does the driver's work in the calling thread) overlaps the client
//! filling, and txsync copying, the next ones.
//!
//! The kicker marks at most a quarter of the ring per `sendto`. The kernel keeps
//! sending while it finds requested frames, so if txsync marked frames itself, a
//! client that keeps the ring full would keep one `sendto` running until the ring ran
//! dry, and TX pollers, woken only between kicks, would sleep through it: the kernel
//! would then idle while the client wakes up and refills.
//!
//! Completions are reported the way a NIC moderates its TX interrupts: `hwtail`
//! moves in steps of at least half the frame ring while more frames are in flight,
//! and over everything once the ring drains. Between kicks, and while frames stay
//! in flight after the last one (a NIC's TX completions, softirq work deferred to
//! ksoftirqd; the kicker then checks with a backoff from `MIN_WAIT` to `MAX_WAIT`),
//! the kicker signals an eventfd, the port's TX event descriptor, when such a report
//! is due, so TX pollers wake once per half ring, not once per handful of frames.
//! The socket itself is not an event descriptor: it would wake the control plane for
//! every transmitted frame. A kick that fails for good (link down, interface gone) is
//! recorded and reported by the next txsync, which then repeats the kick itself to
//! see whether the condition persists.
//!
//! Each frame carries a `virtio_net_hdr` (PACKET_VNET_HDR) whose `hdr_len` asks the
//! kernel to copy up to [`LINEAR_MAX`] bytes into the socket buffer itself. Without
//! it the kernel copies only the Ethernet header and attaches the rest of the frame
//! as page fragments of the ring, which costs a page reference per frame and, on a
//! veth or any path that must own its data, a page allocation and a copy
//! (`skb_copy_ubufs`) besides: for small frames the linear copy is the cheaper one.
//! Kernels without PACKET_VNET_HDR on TX rings get the plain layout.
//!
//! Frames are numbered by a sequence (frame = sequence mod ring size): txsync
//! publishes how many it has filled, the kicker how many it has marked. The kernel
//! puts a frame back to TP_STATUS_AVAILABLE when the driver is done with it; only a
//! marked frame seen available is complete, and only then does `hwtail` move over the
//! packet's slots. A FIFO maps in-flight packets to their frame sequence and to the
//! netmap index just past their last slot.

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
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Offset of the frame data in a TPACKET_V2 TX frame (TPACKET2_HDRLEN - sizeof(sockaddr_ll)).
pub const DATA_OFF: usize = 32;
const H2_STATUS: usize = 0;
const H2_LEN: usize = 4;
/// Size of `struct virtio_net_hdr` (no mergeable-buffers field).
const VNET_HDR_LEN: usize = 10;
/// Most bytes of a frame the kernel is asked to copy into the socket buffer; longer
/// frames keep their tail in ring pages, which a NIC sends from without a copy.
/// Small frames are where per-frame costs dominate (60-byte frames on a veth: 1.09
/// vs 0.80 Mpps); at 1500 bytes measured on a veth, a full copy and fragments come
/// out the same (0.60 Mpps both).
pub const LINEAR_MAX: u32 = 256;
const CACHE_LINE: usize = 64;
/// Ethernet header plus one VLAN tag: what the kernel allows beyond the MTU.
const L2_OVERHEAD: u32 = 14 + VLAN_TAG_LEN;
const VLAN_TAG_LEN: u32 = 4;
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
    /// About `want` frames big enough for the MTU, within `MAX_RING_BYTES` (16 MiB).
    pub fn new(mtu: u32, want: u32) -> Self {
        let payload = mtu.saturating_add(L2_OVERHEAD).max(MIN_PAYLOAD);
        // Cache-line multiples: a frame's status word and the start of its data (the
        // Ethernet header the kernel copies) then share one line.
        let frame_size =
            (DATA_OFF as u32 + VNET_HDR_LEN as u32 + payload).next_multiple_of(CACHE_LINE as u32);
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

    /// The smallest completion report while more frames are in flight: half the
    /// ring, so the other half stays queued while a woken poller refills.
    pub fn report_every(&self) -> u32 {
        (self.frame_nr() / 2).max(1)
    }

    /// Most frames handed to the kernel per `sendto`: the kicker checks completions
    /// (for reports) between kicks, so kicks are smaller than reports.
    pub fn kick_batch(&self) -> u32 {
        (self.frame_nr() / 4).max(1)
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
    /// Sequence number of its TX frame, `None` for a packet dropped without a frame.
    seq: Option<u64>,
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

/// Whether the Ethernet frame at `data` carries an 802.1Q or 802.1ad tag.
fn is_vlan_tagged(ring: &SharedMem, data: usize) -> Result<bool, NetifError> {
    let mut t = [0u8; 2];
    ring.read_bytes(data + 12, &mut t)?;
    Ok(matches!(u16::from_be_bytes(t), 0x8100 | 0x88a8))
}

/// The `virtio_net_hdr` of a frame of `len` bytes: no offloads; `hdr_len` is how much
/// the kernel copies into the socket buffer (at most the frame, [`LINEAR_MAX`]).
fn vnet_hdr(len: u32) -> [u8; VNET_HDR_LEN] {
    let mut h = [0u8; VNET_HDR_LEN];
    // flags, gso_type = 0; hdr_len in the host's byte order (legacy virtio on a
    // packet socket); gso_size, csum_start, csum_offset = 0.
    let hdr_len = len.min(LINEAR_MAX) as u16;
    h[2..4].copy_from_slice(&hdr_len.to_ne_bytes());
    h
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
    /// Frames start with a `virtio_net_hdr` (PACKET_VNET_HDR accepted).
    vnet: bool,
    /// Signalled when a completion report is due (see [`KickerState::report_due`]) and
    /// after a retried kick: wakes TX pollers (the port's TX event descriptor).
    done: EventFd,
    /// Frames txsync has filled (a sequence count; frame = sequence mod ring size).
    filled: AtomicU64,
    /// Frames the kicker has marked TP_STATUS_SEND_REQUEST (at most `filled`).
    marked: AtomicU64,
    /// Frames txsync has reclaimed after their completion (at most `marked`).
    reclaimed: AtomicU64,
    /// A kick was asked for since the kicker last took the request.
    pending: AtomicBool,
    stop: AtomicBool,
    /// errno of a kick that failed for good, 0 if none since txsync last looked.
    error: AtomicI32,
}

impl TxShared {
    fn seq_off(&self, seq: u64) -> usize {
        self.geom
            .frame_off((seq % u64::from(self.geom.frame_nr())) as u32)
    }

    /// Whether the kernel still holds frame `seq` (marked, not yet sent and freed).
    fn held(&self, seq: u64) -> bool {
        self.map
            .mem()
            .load_u32_acquire(self.seq_off(seq) + H2_STATUS)
            .is_ok_and(|s| s & (libc::TP_STATUS_SEND_REQUEST | libc::TP_STATUS_SENDING) != 0)
    }

    /// Frames still waiting for a `sendto` (a scan of the ring: error path only).
    fn requested(&self) -> u32 {
        let ring = self.map.mem();
        (0..self.geom.frame_nr())
            .filter(|&i| {
                ring.load_u32_acquire(self.geom.frame_off(i) + H2_STATUS)
                    .is_ok_and(|s| s & libc::TP_STATUS_SEND_REQUEST != 0)
            })
            .count() as u32
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

/// The kicker's own view of the ring: how far it has marked and seen completed.
struct KickerState {
    marked: u64,
    /// Every marked frame below this sequence has been seen completed.
    completed: u64,
    /// `completed` when `done` was last signalled.
    reported: u64,
    /// `TxShared::reclaimed` when `done` was last signalled (`u64::MAX`: never).
    reported_reclaimed: u64,
    /// Most frames marked per `sendto`.
    batch: u64,
    /// Completions per report while the ring is busy.
    report: u64,
    signals: u32,
}

impl KickerState {
    /// Advances `completed` over frames the kernel has finished with (in order: the
    /// kernel takes and, on one queue, completes them in ring order). Returns whether
    /// it moved.
    fn advance(&mut self, sh: &TxShared) -> bool {
        let before = self.completed;
        while self.completed < self.marked && !sh.held(self.completed) {
            self.completed += 1;
        }
        self.completed != before
    }

    /// A report is due when `report` completed frames wait for txsync to reclaim
    /// them (exactly what lets txsync report them, see [`HwTx::reclaim`]) and txsync
    /// has reclaimed since the last report (otherwise the poller that report woke
    /// has yet to look); and when the ring goes idle (everything filled has
    /// completed) with completions not yet reported. Each report wakes the control
    /// plane on another CPU, which costs the kicker's CPU, the one the kernel
    /// transmits on, several microseconds in a VM.
    fn report_due(&self, sh: &TxShared) -> bool {
        let reclaimed = sh.reclaimed.load(Ordering::Acquire);
        let unreclaimed = self.completed.saturating_sub(reclaimed);
        (unreclaimed >= self.report && reclaimed != self.reported_reclaimed)
            || (self.completed > self.reported
                && unreclaimed > 0
                && self.completed == self.marked
                && sh.filled.load(Ordering::Acquire) == self.marked)
    }

    fn report_if_due(&mut self, sh: &TxShared) {
        if self.report_due(sh) {
            self.reported = self.completed;
            self.reported_reclaimed = sh.reclaimed.load(Ordering::Acquire);
            sh.signal_done(&mut self.signals);
        }
    }

    /// Marks the next batch of filled frames, if any, and kicks. Returns false when
    /// there was nothing to mark.
    fn send_batch(&mut self, sh: &TxShared) -> bool {
        let filled = sh.filled.load(Ordering::Acquire);
        if filled <= self.marked {
            return false;
        }
        // Completed frames are found before they can be refilled and marked again.
        self.advance(sh);
        let end = self.marked + (filled - self.marked).min(self.batch);
        let ring = sh.map.mem();
        for seq in self.marked..end {
            if let Err(e) =
                ring.store_u32_release(sh.seq_off(seq) + H2_STATUS, libc::TP_STATUS_SEND_REQUEST)
            {
                // Cannot happen: the geometry keeps every frame inside the mapping.
                tracing::error!(%e, seq, "tx kicker: frame outside the ring");
                sh.error.store(libc::EIO, Ordering::Release);
            }
        }
        self.marked = end;
        sh.marked.store(end, Ordering::Release);
        sh.kick();
        true
    }
}

/// The kicker thread: marks and kicks batches of filled frames whenever asked; while
/// frames stay in flight after a kick, checks on them with a backoff. It signals
/// `done` when a completion report is due ([`KickerState::report_due`]).
fn kicker(sh: Arc<TxShared>) {
    let mut ks = KickerState {
        marked: 0,
        completed: 0,
        reported: 0,
        reported_reclaimed: u64::MAX,
        batch: u64::from(sh.geom.kick_batch()),
        report: u64::from(sh.geom.report_every()),
        signals: 0,
    };
    // Next pause while frames are in flight after the last kick.
    let mut waiting: Option<Duration> = None;
    while !sh.stop.load(Ordering::Acquire) {
        let asked = sh.pending.swap(false, Ordering::AcqRel);
        let sent = ks.send_batch(&sh);
        if !sent && asked {
            // Nothing new: a retry asked by txsync after a transient failure; its
            // poller is told how it went whatever completed.
            sh.kick();
            ks.advance(&sh);
            ks.reported = ks.completed;
            sh.signal_done(&mut ks.signals);
        }
        if sent || asked {
            if sent {
                ks.advance(&sh);
                ks.report_if_due(&sh);
            }
            waiting = (ks.completed < ks.marked).then_some(MIN_WAIT);
            // More filled frames may be waiting: loop without parking.
            if sh.filled.load(Ordering::Acquire) > ks.marked {
                sh.pending.store(true, Ordering::Release);
            }
            continue;
        }
        let Some(pause) = waiting else {
            std::thread::park();
            continue;
        };
        std::thread::park_timeout(pause);
        if sh.pending.load(Ordering::Acquire) {
            continue;
        }
        if ks.advance(&sh) {
            ks.report_if_due(&sh);
            waiting = (ks.completed < ks.marked).then_some(MIN_WAIT);
        } else {
            waiting = Some((pause * 2).min(MAX_WAIT));
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
    /// Sequence number of the next frame to fill (frame = sequence mod ring size).
    filled: u64,
    inflight: VecDeque<InFlight>,
}

impl HwTx {
    /// Creates the socket (protocol 0: it never receives) with its TX ring, bound to
    /// the interface. `mark` tags its frames so the host RX ring can ignore them.
    pub fn open(ifindex: u32, mtu: u32, slots: u32, mark: u32) -> io::Result<Self> {
        let geom = TxGeom::new(mtu, slots.min(1024));
        let sock = PacketSocket::new(0)?;
        sock.set_version(TPACKET_V2)?;
        let vnet = match sock.set_vnet_hdr() {
            Ok(()) => true,
            Err(e) => {
                tracing::info!(%e, "PACKET_VNET_HDR refused: small TX frames go out as page fragments");
                false
            }
        };
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
            vnet,
            done: EventFd::new()?,
            filled: AtomicU64::new(0),
            marked: AtomicU64::new(0),
            reclaimed: AtomicU64::new(0),
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
            filled: 0,
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

    /// Moves hwtail over the packets the kernel has finished with, in reports of at
    /// least [`TxGeom::report_every`] frames unless nothing else is in flight.
    ///
    /// This is a NIC's TX completion moderation (netmap's drivers ask for a completion
    /// report every half ring): a client that keeps the ring full then wakes and
    /// refills in large batches instead of once per handful of frames, each wake-up
    /// being a poll round trip through the device.
    pub fn reclaim(&mut self, k: &mut Kring, st: &mut Stats) -> Result<(), NetifError> {
        let ring = self.shared.map.mem();
        let marked = self.shared.marked.load(Ordering::Acquire);
        let mut done = 0usize;
        let mut frames = 0u32;
        for p in &self.inflight {
            if let Some(seq) = p.seq {
                if seq >= marked || self.shared.held(seq) {
                    break;
                }
                frames += 1;
            }
            done += 1;
        }
        if done < self.inflight.len() && frames < self.geom.report_every() {
            return Ok(());
        }
        let mut last = None;
        for p in self.inflight.drain(..done) {
            if let Some(seq) = p.seq {
                // No early return inside the drain: every drained packet is accounted.
                let off = self.shared.seq_off(seq) + H2_STATUS;
                if ring
                    .load_u32_acquire(off)
                    .is_ok_and(|s| s & libc::TP_STATUS_WRONG_FORMAT != 0)
                {
                    st.tx_errors += 1;
                    if let Err(e) = ring.store_u32_release(off, libc::TP_STATUS_AVAILABLE) {
                        tracing::error!(%e, seq, "tx: frame outside the ring");
                    }
                }
                last = Some(seq);
            }
            k.hwtail = k.prev(p.end);
        }
        if let Some(seq) = last {
            self.shared.reclaimed.store(seq + 1, Ordering::Release);
        }
        Ok(())
    }

    /// True if the oldest frame still waits for a `sendto` (not yet marked, the kick
    /// has not run yet, or an earlier one failed).
    fn request_pending(&self) -> Result<bool, NetifError> {
        let Some(seq) = self.inflight.iter().find_map(|p| p.seq) else {
            return Ok(false);
        };
        if seq >= self.shared.marked.load(Ordering::Acquire) {
            return Ok(true);
        }
        let s = self
            .shared
            .map
            .mem()
            .load_u32_acquire(self.shared.seq_off(seq) + H2_STATUS)?;
        Ok(s & libc::TP_STATUS_SEND_REQUEST != 0)
    }

    /// Reports a failed earlier kick, queues the packets of `[hwcur, head)` that fit
    /// into free TX frames, asks the kicker to hand them to the kernel, and reclaims what
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
            // Frames filled and not yet reclaimed (txsync is the only writer of both).
            let in_use = self.filled - self.shared.reclaimed.load(Ordering::Relaxed);
            if in_use == u64::from(self.geom.frame_nr()) {
                break;
            }
            let foff = self.shared.seq_off(self.filled);
            if ring.load_u32_acquire(foff + H2_STATUS)? != libc::TP_STATUS_AVAILABLE {
                break;
            }
            let hdr = if self.shared.vnet { VNET_HDR_LEN } else { 0 };
            let data = foff + DATA_OFF + hdr;
            let (mut total, ok, mut truncated) =
                self.copy_packet(k, rv, mem, cur, end, data, geom)?;
            // Only a VLAN-tagged frame may use the tag's 4 bytes beyond MTU + Ethernet
            // header (the kernel's own rule, which it skips for PACKET_VNET_HDR frames).
            let untagged_max = self.geom.capacity - VLAN_TAG_LEN;
            if total > untagged_max && !is_vlan_tagged(&ring, data)? {
                total = untagged_max;
                truncated = true;
            }
            if truncated && ok && complete {
                st.tx_errors += 1;
            }
            if !ok || !complete {
                st.tx_errors += 1;
                self.inflight.push_back(InFlight { seq: None, end });
            } else {
                // The kicker marks it TP_STATUS_SEND_REQUEST once `filled` covers it.
                if self.shared.vnet {
                    ring.write_bytes(foff + DATA_OFF, &vnet_hdr(total))?;
                }
                ring.write_u32(foff + H2_LEN, total + hdr as u32)?;
                self.inflight.push_back(InFlight {
                    seq: Some(self.filled),
                    end,
                });
                self.filled += 1;
                queued = true;
                st.tx_packets += 1;
                st.tx_bytes += u64::from(total);
            }
            cur = end;
        }
        k.hwcur = cur;
        if queued {
            self.shared.filled.store(self.filled, Ordering::Release);
        }
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
                    // Frame data sits 2 bytes past a word boundary: copy_to copies
                    // at any alignment, without a bounce buffer.
                    mem.copy_to(src, &ring, dst + total, len)?;
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
        assert_eq!(g.frame_size, 2112);
        assert_eq!(g.frame_size % 16, 0, "TPACKET_ALIGNMENT");
        assert_eq!(g.capacity, 1518);
        assert!(g.frame_nr() >= 1024);
        assert_eq!(g.block_size % 4096, 0);
        assert_eq!(g.frame_off(g.frames_per_block), g.block_size as usize);
        let g = TxGeom::new(9000, 1024);
        assert_eq!(g.capacity, 9018);
        assert!(g.frame_size as usize >= DATA_OFF + VNET_HDR_LEN + 9018);
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
