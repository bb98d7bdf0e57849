//! Receive side: hardware RX rings fed by TPACKET_V3 block rings, the host RX ring fed
//! by a socket that sees only the frames the host stack transmits, and the one routine
//! that writes a frame into netmap slots (`[hwtail, hwcur - 1)`, never the slot just
//! before hwcur).
//!
//! A TPACKET_V3 ring is a sequence of blocks the kernel fills with variable-length
//! frames and hands over whole (`block_status & TP_STATUS_USER`), either full or after
//! the retire timeout. The port consumes blocks in ring order, keeps a cursor inside a
//! block it could only partly copy (netmap ring full), and gives a block back
//! (`TP_STATUS_KERNEL`) once every frame in it was copied or dropped.

use super::socket::{MmapRing, PacketSocket, SockFilter, TpacketReq3, ETH_P_ALL, TPACKET_V3};
use super::{BufGeom, Stats};
use crate::kring::Kring;
use crate::kstate::{KState, TpacketPos};
use crate::ringmem::RingView;
use crate::NetifError;
use netmap_abi::NS_MOREFRAG;
use netmap_pool::SharedMem;
use std::io;

/// Size of one TPACKET_V3 block. A block is handed over (and pollers woken) when full
/// or after [`RETIRE_TOV_MS`]: 128 KiB (about 1000 minimum-size frames) halves the
/// wake-ups of 64 KiB blocks at full rate, which the sender's CPU pays for on a veth
/// (measured with bench/nic.sh: RX vs netsniff-ng 0.93–0.99× with 64 KiB, 1.02–1.05×).
pub const BLOCK_SIZE: u32 = 128 * 1024;
/// Blocks per RX ring (16 MiB of kernel memory per hardware RX ring: tens of
/// milliseconds of line rate, so a daemon briefly starved of CPU does not drop).
pub const BLOCK_NR: u32 = 128;
/// Nominal V3 frame size (only used for the kernel's frame accounting).
pub const FRAME_SIZE: u32 = 2048;
/// A partly filled block is handed over after this many milliseconds: the smallest the
/// kernel takes, and the RX latency floor of a NIC port. TPACKET_V2 has no such floor
/// (each frame is handed over at once) but wakes the reader for every frame, work the
/// sender's CPU pays on a veth: a V2 reader waiting in epoll brought the sender from
/// 0.64 to 0.36 Mpps (measured 2026-11-25). Longer timeouts with larger blocks buy a
/// few percent of rate (512 KiB / 4 ms: +2 %) for 4x the latency.
pub const RETIRE_TOV_MS: u32 = 1;
/// Cache lines of the block prefetched ahead of the frame being copied.
const PREFETCH_LINES: usize = 8;
/// Largest frame the host RX socket accepts (GSO frames of the host stack included).
pub const HOST_FRAME_MAX: usize = 256 * 1024;

// struct tpacket_block_desc: version u32, offset_to_priv u32, then tpacket_hdr_v1.
const BD_STATUS: usize = 8;
const BD_NUM_PKTS: usize = 12;
const BD_FIRST_PKT: usize = 16;
const BD_BLK_LEN: usize = 20;
/// `seq_num` of the block's header: the kernel numbers the blocks it fills.
const BD_SEQ: usize = 24;
/// Size of `struct tpacket_block_desc` (the first frame cannot start before it).
pub const BD_SIZE: usize = 48;
// struct tpacket3_hdr.
const H3_NEXT: usize = 0;
const H3_SNAPLEN: usize = 12;
const H3_LEN: usize = 16;
const H3_MAC: usize = 24;
/// Size of `struct tpacket3_hdr`.
pub const H3_SIZE: usize = 48;

/// One frame inside a retired block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Offset of the first byte (the MAC header) in the ring mapping.
    pub data: usize,
    /// Bytes present in the ring.
    pub snaplen: u32,
    /// Bytes on the wire.
    pub len: u32,
}

/// Position inside a block handed to user space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockCursor {
    /// Offset of the block in the ring mapping.
    pub block: usize,
    /// Offset of the next frame header, relative to the block.
    pub pkt: usize,
    /// Frames not yet consumed.
    pub left: u32,
}

/// Opens the block at `block` if the kernel has handed it over.
pub fn open_block(
    mem: &SharedMem,
    block: usize,
    block_size: usize,
) -> Result<Option<BlockCursor>, NetifError> {
    let status = mem.load_u32_acquire(block + BD_STATUS)?;
    if status & libc::TP_STATUS_USER == 0 {
        return Ok(None);
    }
    let left = mem.read_u32(block + BD_NUM_PKTS)?;
    let pkt = mem.read_u32(block + BD_FIRST_PKT)? as usize;
    let blk_len = mem.read_u32(block + BD_BLK_LEN)? as usize;
    if left > 0 && (pkt < BD_SIZE || pkt >= block_size || blk_len > block_size) {
        return Err(NetifError::Inval(format!(
            "TPACKET_V3 block at {block}: first frame at {pkt}, length {blk_len}"
        )));
    }
    Ok(Some(BlockCursor { block, pkt, left }))
}

/// The frame at the cursor, `None` once the block is exhausted. An error means the
/// kernel's header points outside the block: the rest of the block is unusable.
#[inline]
pub fn peek_frame(
    mem: &SharedMem,
    c: &BlockCursor,
    block_size: usize,
) -> Result<Option<(Frame, u32)>, NetifError> {
    if c.left == 0 {
        return Ok(None);
    }
    let bad = |what: &str| {
        NetifError::Inval(format!("TPACKET_V3 frame at {}+{}: {what}", c.block, c.pkt))
    };
    if c.pkt.checked_add(H3_SIZE).is_none_or(|e| e > block_size) {
        return Err(bad("header past the block"));
    }
    let h = c.block + c.pkt;
    let next = mem.read_u32(h + H3_NEXT)?;
    let snaplen = mem.read_u32(h + H3_SNAPLEN)?;
    let len = mem.read_u32(h + H3_LEN)?;
    let mac = usize::from(mem.read_u16(h + H3_MAC)?);
    if c.pkt + mac + snaplen as usize > block_size || mac < H3_SIZE {
        return Err(bad("data past the block"));
    }
    if c.left > 1 && (next as usize) < H3_SIZE {
        return Err(bad("bad next offset"));
    }
    Ok(Some((
        Frame {
            data: h + mac,
            snaplen,
            len,
        },
        next,
    )))
}

/// Steps past the frame `peek_frame` returned.
#[inline]
pub fn advance(c: &mut BlockCursor, next: u32) {
    c.left -= 1;
    c.pkt = c.pkt.saturating_add(next as usize);
}

/// Gives a block back to the kernel.
pub fn release_block(mem: &SharedMem, block: usize) -> Result<(), NetifError> {
    Ok(mem.store_u32_release(block + BD_STATUS, libc::TP_STATUS_KERNEL)?)
}

/// Where the bytes of a frame come from.
#[derive(Clone, Copy)]
pub enum Src<'a> {
    /// A packet ring shared with the kernel, at an offset.
    Ring(SharedMem<'a>, usize),
    /// Private memory.
    Bytes(&'a [u8]),
}

/// Outcome of [`place_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// Copied; hwtail advanced over its slots.
    Done,
    /// Not enough free slots now; try again after the client releases some.
    NoRoom,
    /// Needs more slots than the ring can ever offer; the caller drops it.
    TooBig,
    /// A slot held an invalid buffer index: it was handed to the client empty and the
    /// frame must be placed again.
    Skipped,
}

/// Copies one frame of `len` bytes into the slots at hwtail, splitting it over several
/// slots (NS_MOREFRAG on all but the last) when it exceeds a buffer. Never writes the
/// slot before hwcur, never a buffer outside the pool.
///
/// The common case (a frame that fits one buffer, a valid buffer in the slot) is
/// inlined into the caller's loop; everything else goes to `place_frame_slow`. The
/// copy loop runs once per received frame: calls, spills and the propagation of each
/// accessor's result had cost as much as the memory traffic (`examples/tpacket_walk`).
#[inline]
pub fn place_frame(
    k: &mut Kring,
    rv: &RingView,
    mem: SharedMem,
    geom: &BufGeom,
    src: Src,
    len: usize,
    scratch: &mut [u8],
) -> Result<Placed, NetifError> {
    let free = k.rx_room() as usize;
    if len <= geom.size as usize && free > 0 {
        // The common case: one slot, one read of its buffer index, one copy.
        let s = k.hwtail;
        let idx = rv.slot_buf_idx(s)?;
        if let Some(dst) = geom.offset(idx) {
            match src {
                Src::Ring(m, off) => m.copy_to(off, &mem, dst, len)?,
                Src::Bytes(b) => mem.write_bytes(dst, &b[..len])?,
            }
            rv.set_slot_len_flags(s, len as u16, 0)?;
            k.hwtail = k.next(s);
            // The next slot's buffer, written by the next frame: fetched while this
            // one's caller reads the next header (a netmap ring's buffers are far
            // more than the cache holds).
            if free > 1 {
                if let Some(d) = rv.slot_buf_idx(k.hwtail).ok().and_then(|i| geom.offset(i)) {
                    mem.prefetch(d);
                }
            }
            return Ok(Placed::Done);
        }
    }
    place_frame_slow(k, rv, mem, geom, src, len, scratch, free)
}

/// [`place_frame`] for a frame of several buffers, a full ring, or a slot with an
/// invalid buffer index.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn place_frame_slow(
    k: &mut Kring,
    rv: &RingView,
    mem: SharedMem,
    geom: &BufGeom,
    src: Src,
    len: usize,
    scratch: &mut [u8],
    free: usize,
) -> Result<Placed, NetifError> {
    let n = k.num_slots;
    let bsz = geom.size as usize;
    let need = len.div_ceil(bsz).max(1);
    if need > n.saturating_sub(1) as usize {
        return Ok(Placed::TooBig);
    }
    if need > free {
        return Ok(Placed::NoRoom);
    }
    // Check every buffer first, so a frame is either copied whole or not at all.
    let mut s = k.hwtail;
    for _ in 0..need {
        let idx = rv.slot_buf_idx(s)?;
        if geom.offset(idx).is_none() {
            // Hand over [hwtail, s] as empty slots: the client gets its bad slot back.
            let mut t = k.hwtail;
            loop {
                let i = rv.slot_buf_idx(t)?;
                rv.set_slot_buf_len(t, i, 0)?;
                rv.set_slot_flags(t, 0)?;
                if t == s {
                    break;
                }
                t = k.next(t);
            }
            tracing::debug!(
                slot = s,
                idx,
                "rx: invalid buffer index in a free slot, skipped"
            );
            k.hwtail = k.next(s);
            return Ok(Placed::Skipped);
        }
        s = k.next(s);
    }
    let mut done = 0;
    let mut s = k.hwtail;
    for j in 0..need {
        let idx = rv.slot_buf_idx(s)?;
        let dst = geom
            .offset(idx)
            .ok_or_else(|| NetifError::Inval(format!("buffer {idx} changed under us")))?;
        let chunk = (len - done).min(bsz);
        match src {
            Src::Ring(m, off) => {
                let tmp = &mut scratch[..chunk];
                m.read_bytes(off + done, tmp)?;
                mem.write_bytes(dst, tmp)?;
            }
            Src::Bytes(b) => mem.write_bytes(dst, &b[done..done + chunk])?,
        }
        rv.set_slot_buf_len(s, idx, chunk as u16)?;
        rv.set_slot_flags(s, if j + 1 < need { NS_MOREFRAG } else { 0 })?;
        done += chunk;
        s = k.next(s);
    }
    k.hwtail = s;
    Ok(Placed::Done)
}

/// A hardware RX ring: one AF_PACKET socket with a TPACKET_V3 ring. Where its reader
/// is in the ring ([`TpacketPos`]) lives in the RX ring's state block, since a client
/// may read the ring itself ([`super::client`]) and the daemon after it.
#[derive(Debug)]
pub struct HwRx {
    // Declared before the socket: unmapped before the socket closes.
    map: MmapRing,
    pub sock: PacketSocket,
}

// The reader's position packs a frame offset and a count of a block
// ([`TpacketPos`]): a block must fit.
const _: () = assert!(
    BLOCK_SIZE as usize <= TpacketPos::MAX_PKT as usize + 1
        && BLOCK_SIZE as usize / H3_SIZE <= TpacketPos::MAX_LEFT as usize
);

/// The length of an RX ring's mapping.
pub const RING_BYTES: usize = BLOCK_SIZE as usize * BLOCK_NR as usize;

impl HwRx {
    /// Creates the socket and its ring and binds it to the interface (reception
    /// starts here). Frames leaving the interface are ignored.
    pub fn open(ifindex: u32) -> io::Result<Self> {
        let sock = PacketSocket::new(0)?;
        sock.set_version(TPACKET_V3)?;
        sock.set_rx_ring_v3(&TpacketReq3 {
            block_size: BLOCK_SIZE,
            block_nr: BLOCK_NR,
            frame_size: FRAME_SIZE,
            frame_nr: BLOCK_SIZE / FRAME_SIZE * BLOCK_NR,
            retire_blk_tov: RETIRE_TOV_MS,
            sizeof_priv: 0,
            feature_req_word: 0,
        })?;
        let map = sock.mmap(RING_BYTES)?;
        sock.set_ignore_outgoing()?;
        sock.bind(ifindex, ETH_P_ALL)?;
        Ok(Self { map, sock })
    }

    /// Moves retired frames into the netmap ring. Returns true if anything was
    /// delivered or dropped, false if the kernel had nothing for us.
    pub fn fill(
        &mut self,
        k: &mut Kring,
        rv: &RingView,
        mem: SharedMem,
        geom: &BufGeom,
        scratch: &mut [u8],
        st: &mut Stats,
    ) -> Result<bool, NetifError> {
        let ks = KState::new(mem, rv.offset());
        fill_blocks(self.map.mem(), &ks, k, rv, mem, geom, scratch, st)
    }
}

/// Moves the frames of the TPACKET_V3 ring mapped at `ring` into netmap ring `k`,
/// from the position stored in its state block `ks` (stored back after). Returns true
/// if anything was delivered or dropped. Shared by the daemon and a client reading the
/// ring itself; nothing read from shared memory is trusted: the position is bounded by
/// the ring, and every header by its block.
#[allow(clippy::too_many_arguments)]
pub fn fill_blocks(
    ring: SharedMem,
    ks: &KState,
    k: &mut Kring,
    rv: &RingView,
    mem: SharedMem,
    geom: &BufGeom,
    scratch: &mut [u8],
    st: &mut Stats,
) -> Result<bool, NetifError> {
    let bs = BLOCK_SIZE as usize;
    let p = ks.tpacket_pos()?;
    let mut block = p.block % BLOCK_NR;
    let mut cursor = p.open.map(|(pkt, left)| BlockCursor {
        block: block as usize * bs,
        pkt: pkt as usize,
        left,
    });
    if cursor.is_none() {
        release_orphan(ring, block)?;
    }
    let r = fill_from(
        ring,
        ks,
        &mut block,
        &mut cursor,
        k,
        rv,
        mem,
        geom,
        scratch,
        st,
    );
    ks.set_tpacket_pos(TpacketPos {
        block,
        open: cursor.map(|c| (c.pkt as u32, c.left)),
    })?;
    r
}

/// Gives back the block before `block` if a reader that finished it died before
/// giving it back: the position moves past a block before the block is released (see
/// `fill_from`), so that block is still the reader's (`TP_STATUS_USER`). Left alone,
/// the kernel, coming round to it, would wait for it (dropping every frame) while the
/// reader waits for the block after. A block behind the position is the reader's only
/// then, or when the kernel has filled the whole ring since (every block handed over,
/// the one before the position the newest): the kernel numbers the blocks it hands
/// over (`seq_num`), and an orphan is older than the block at the position, or that
/// block is not handed over at all (the kernel fills blocks in ring order).
fn release_orphan(ring: SharedMem, block: u32) -> Result<(), NetifError> {
    let bs = BLOCK_SIZE as usize;
    let status = |b: u32| ring.load_u32_acquire(b as usize * bs + BD_STATUS);
    let seq = |b: u32| ring.read_u64(b as usize * bs + BD_SEQ);
    let prev = (block + BLOCK_NR - 1) % BLOCK_NR;
    if status(prev)? & libc::TP_STATUS_USER == 0 {
        return Ok(());
    }
    if status(block)? & libc::TP_STATUS_USER != 0 && seq(prev)? > seq(block)? {
        return Ok(());
    }
    tracing::info!(
        block = prev,
        "rx: a block read to its end was never given back (its reader died): given back now"
    );
    release_block(&ring, prev as usize * bs)
}

#[allow(clippy::too_many_arguments)]
fn fill_from(
    ring: SharedMem,
    ks: &KState,
    block: &mut u32,
    cursor: &mut Option<BlockCursor>,
    k: &mut Kring,
    rv: &RingView,
    mem: SharedMem,
    geom: &BufGeom,
    scratch: &mut [u8],
    st: &mut Stats,
) -> Result<bool, NetifError> {
    let bs = BLOCK_SIZE as usize;
    // Gives the current block back and moves to the next one.
    // Moves past the current block, then gives it back to the kernel. In this order a
    // reader dying in between leaves a block given up but not back (recovered by the
    // next reader: `release_orphan`); in the other, a position behind a block the
    // kernel already has, which nothing can tell from a block not yet filled.
    let finish = |block: &mut u32, cursor: &mut Option<BlockCursor>| -> Result<(), NetifError> {
        let done = *block;
        *block = (done + 1) % BLOCK_NR;
        *cursor = None;
        ks.set_tpacket_pos(TpacketPos {
            block: *block,
            open: None,
        })?;
        release_block(&ring, done as usize * bs)?;
        Ok(())
    };
    let mut progress = false;
    loop {
        let mut c = match *cursor {
            Some(c) => c,
            None => match open_block(&ring, *block as usize * bs, bs) {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(%e, "rx: dropping a malformed block");
                    finish(block, cursor)?;
                    st.rx_drops += 1;
                    continue;
                }
            },
        };
        progress = true;
        copy_run(ring, &mut c, k, rv, mem, geom, st)?;
        if c.left == 0 {
            finish(block, cursor)?;
            continue;
        }
        // What the run stopped at: a full netmap ring, a frame of several buffers, a
        // slot with an invalid buffer, or a malformed header, each handled below.
        let (f, next) = match peek_frame(&ring, &c, bs) {
            Ok(Some(x)) => x,
            Ok(None) => {
                finish(block, cursor)?;
                continue;
            }
            Err(e) => {
                tracing::error!(%e, "rx: abandoning the rest of a block");
                st.rx_drops += u64::from(c.left);
                finish(block, cursor)?;
                continue;
            }
        };
        let len = f.snaplen as usize;
        if c.left > 1 {
            // The lines ahead in the block (the next frames' headers and data,
            // written by the kernel on another CPU) are fetched while this frame
            // is copied. Small frames take about two lines each: fetching the two
            // at the far end of the window each time keeps the window full (a
            // line fetched again costs as much as a new one to ask for).
            let h = c.block + c.pkt + next as usize;
            ring.prefetch(h + 64 * (PREFETCH_LINES - 2));
            ring.prefetch(h + 64 * (PREFETCH_LINES - 1));
        }
        match place_frame(k, rv, mem, geom, Src::Ring(ring, f.data), len, scratch)? {
            Placed::Done => {
                st.rx_packets += 1;
                st.rx_bytes += len as u64;
            }
            Placed::TooBig => st.rx_drops += 1,
            Placed::Skipped => {
                *cursor = Some(c);
                continue;
            }
            Placed::NoRoom => {
                *cursor = Some(c);
                break;
            }
        }
        advance(&mut c, next);
        *cursor = Some(c);
    }
    Ok(progress)
}

/// Copies the block's frames from the cursor on into the netmap ring at hwtail, as long
/// as each fits one buffer, the slot's buffer is valid and a slot is free: what every
/// frame of a stream of ordinary frames takes. Stops, leaving the cursor at the frame,
/// at anything else (a malformed header included), for the general path to handle.
/// One loop with everything in registers: through `peek_frame` and `place_frame` per
/// frame, calls, spills and a match on each result cost as much as the memory
/// traffic (`examples/tpacket_walk`, 2026-12-04).
#[inline(always)]
fn copy_run(
    ring: SharedMem,
    c: &mut BlockCursor,
    k: &mut Kring,
    rv: &RingView,
    mem: SharedMem,
    geom: &BufGeom,
    st: &mut Stats,
) -> Result<(), NetifError> {
    let bs = BLOCK_SIZE as usize;
    let bsz = geom.size as usize;
    let mut free = k.rx_room();
    let mut tail = k.hwtail;
    let (mut packets, mut bytes) = (0u64, 0u64);
    let r = (|| -> Result<(), NetifError> {
        while c.left > 0 && free > 0 {
            // The checks of `peek_frame`, written out: calling it here (inlined)
            // cost 18 % more per frame (`tpacket_walk`, 21.5 vs 18.0 ns, 2026-12-04).
            // A frame failing one is left to it.
            if c.pkt > bs - H3_SIZE {
                break;
            }
            let h = c.block + c.pkt;
            let next = ring.read_u32(h + H3_NEXT)? as usize;
            let len = ring.read_u32(h + H3_SNAPLEN)? as usize;
            let mac = usize::from(ring.read_u16(h + H3_MAC)?);
            if mac < H3_SIZE || c.pkt + mac + len > bs || len > bsz {
                break;
            }
            if c.left > 1 {
                if next < H3_SIZE {
                    break;
                }
                // The lines ahead in the block (the next frames, written by the
                // kernel on another CPU) fetched while this one is copied: small
                // frames take about two lines each, so fetching the two at the far
                // end of the window each time keeps it full.
                ring.prefetch(h + next + 64 * (PREFETCH_LINES - 2));
                ring.prefetch(h + next + 64 * (PREFETCH_LINES - 1));
            }
            let Some(dst) = geom.offset(rv.slot_buf_idx(tail)?) else {
                break;
            };
            // Whole words, as netmap's own copy does (64-byte chunks): the bytes past
            // the frame come from its block and land in its buffer, past `len`,
            // where nothing reads them; a byte-wise tail was a tenth of the loop.
            let words = (len + 7) & !7;
            let clen = if words <= bsz && c.pkt + mac + words <= bs {
                words
            } else {
                len
            };
            ring.copy_to(h + mac, &mem, dst, clen)?;
            rv.set_slot_len_flags(tail, len as u16, 0)?;
            tail = k.next(tail);
            free -= 1;
            packets += 1;
            bytes += len as u64;
            c.left -= 1;
            c.pkt = c.pkt.saturating_add(next);
            // The next slot's buffer, written by the next frame (a netmap ring's
            // buffers are far more than the cache holds).
            if free > 0 {
                if let Some(d) = geom.offset(rv.slot_buf_idx(tail)?) {
                    mem.prefetch(d);
                }
            }
        }
        Ok(())
    })();
    k.hwtail = tail;
    st.rx_packets += packets;
    st.rx_bytes += bytes;
    r
}

/// The host RX ring's source: frames the host stack sends through the interface.
#[derive(Debug)]
pub struct HostRx {
    pub sock: PacketSocket,
    buf: Vec<u8>,
    /// Length of a frame received but not yet placed (the netmap ring was full).
    pending: Option<usize>,
    ifindex: u32,
    /// Bound to ETH_P_ALL yet. Until a descriptor syncs the host RX ring the socket is
    /// bound to protocol 0, which keeps it off the device's receive path: an armed tap
    /// costs every frame of the interface (in both directions) a filter run, paid by
    /// whoever sends or receives on it even when nobody reads the host ring.
    armed: bool,
}

/// Classic BPF: accept only PACKET_OUTGOING frames whose mark is not `mark` (the mark
/// of the port's own TX sockets, so the host ring never shows the client's own
/// transmissions).
pub fn host_filter(mark: u32) -> [SockFilter; 6] {
    const SKF_AD_OFF: u32 = 0xffff_f000;
    const SKF_AD_PKTTYPE: u32 = 4;
    const SKF_AD_MARK: u32 = 20;
    let f = |code, jt, jf, k| SockFilter { code, jt, jf, k };
    [
        f(0x30, 0, 0, SKF_AD_OFF + SKF_AD_PKTTYPE), // ldb [pkttype]
        f(0x15, 0, 3, u32::from(libc::PACKET_OUTGOING)), // jeq OUTGOING ? next : drop
        f(0x20, 0, 0, SKF_AD_OFF + SKF_AD_MARK),    // ld [mark]
        f(0x15, 1, 0, mark),                        // jeq mark ? drop : accept
        f(0x06, 0, 0, HOST_FRAME_MAX as u32),       // ret accept
        f(0x06, 0, 0, 0),                           // ret drop
    ]
}

impl HostRx {
    pub fn open(ifindex: u32, own_mark: u32) -> io::Result<Self> {
        let sock = PacketSocket::new(0)?;
        sock.attach_filter(&host_filter(own_mark))?;
        sock.bind(ifindex, 0)?;
        Ok(Self {
            sock,
            buf: vec![0; HOST_FRAME_MAX],
            pending: None,
            ifindex,
            armed: false,
        })
    }

    /// Starts tapping the interface's outgoing frames (first sync of the host RX ring).
    fn arm(&mut self) -> Result<(), NetifError> {
        if !self.armed {
            self.sock
                .bind(self.ifindex, ETH_P_ALL)
                .map_err(|source| NetifError::Io {
                    op: "host rx bind",
                    source,
                })?;
            self.armed = true;
        }
        Ok(())
    }

    /// Moves queued outgoing frames into the host RX ring; true if anything happened.
    pub fn fill(
        &mut self,
        k: &mut Kring,
        rv: &RingView,
        mem: SharedMem,
        geom: &BufGeom,
        st: &mut Stats,
    ) -> Result<bool, NetifError> {
        self.arm()?;
        let mut progress = false;
        loop {
            let len = match self.pending {
                Some(l) => l,
                None => match self.sock.recv(&mut self.buf) {
                    Ok(None) => break,
                    Ok(Some((len, ty))) => {
                        progress = true;
                        if ty != libc::PACKET_OUTGOING {
                            continue;
                        }
                        if len > self.buf.len() {
                            st.host_rx_drops += 1;
                            continue;
                        }
                        len
                    }
                    Err(e) => {
                        return Err(NetifError::Io {
                            op: "host rx recv",
                            source: e,
                        })
                    }
                },
            };
            match place_frame(k, rv, mem, geom, Src::Bytes(&self.buf[..len]), len, &mut [])? {
                Placed::Done => {
                    st.host_rx_packets += 1;
                    self.pending = None;
                }
                Placed::TooBig => {
                    st.host_rx_drops += 1;
                    self.pending = None;
                }
                Placed::Skipped => self.pending = Some(len),
                Placed::NoRoom => {
                    self.pending = Some(len);
                    break;
                }
            }
            progress = true;
        }
        Ok(progress)
    }
}
