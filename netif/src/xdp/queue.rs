//! One queue of an interface as a netmap ring pair: an AF_XDP socket whose UMEM is the
//! netmap buffer pool.
//!
//! **RX by buffer exchange.** The kernel owns a set of pool buffers (given through the
//! fill ring) and writes each received frame into one of them. rxsync takes the RX
//! descriptors and, for each, puts the filled buffer into the free slot at `hwtail`
//! (NS_BUF_CHANGED) and hands the buffer that slot held to the fill ring. No byte is
//! copied by us; the set of buffers the kernel owns keeps its size.
//!
//! Frames land at a buffer's first byte, as netmap programs expect, because the UMEM
//! uses unaligned chunks: the fill address of buffer `i` is `i * size - 256`, and the
//! kernel writes the frame after its 256-byte headroom. The headroom is the previous
//! buffer's tail: nothing writes there (no XDP program of ours touches it, copy mode
//! copies the frame only). Buffers 0 and 1 are reserved, so no address is negative.
//!
//! **TX in place.** txsync turns each new slot into a TX descriptor of the slot's own
//! buffer; the kernel reads the frame from there (zero-copy drivers by DMA, copy mode
//! into a socket buffer). `hwtail` moves over a slot only when its completion comes
//! back, so the client never rewrites a buffer the kernel is still sending.
//!
//! Which buffers the kernel holds is tracked in a bitmap over the pool: a buffer goes
//! to the fill ring only if the kernel does not hold it already (a client that
//! swapped the same buffer into two slots cannot make the kernel write it twice), an
//! RX descriptor is accepted only for a buffer the kernel held, and on close every
//! buffer still marked returns to the pool.
#![allow(unsafe_code)]

use super::held::{bitmap_bytes, Held, SharedMap};
use super::libxdp::{
    Api, Desc, Socket, SocketConfig, Umem, UmemConfig, XskRing, XDP_COPY, XDP_PACKET_HEADROOM,
    XDP_UMEM_UNALIGNED_CHUNK_FLAG, XDP_USE_NEED_WAKEUP, XDP_ZEROCOPY,
};
use crate::af_packet::socket::{kick, setsockopt};
use crate::af_packet::{Stats, TX_MARK};
use crate::kring::Kring;
use crate::kstate::ReaderHandle;
use crate::ringmem::RingView;
use crate::vale::BufGeom;
use crate::NetifError;
use netmap_abi::{NS_BUF_CHANGED, NS_MOREFRAG};
use netmap_pool::SharedMem;
use std::collections::VecDeque;
use std::io;

/// What the caller asks of the socket's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Zero-copy if the driver can, else copy.
    Auto,
    Copy,
}

/// One queue's socket and UMEM, and the state of its two rings.
#[derive(Debug)]
pub struct Queue {
    // Dropped in this order: the socket before the UMEM it uses.
    sock: Box<Socket>,
    umem: Box<Umem>,
    pub zerocopy: bool,
    geom: BufGeom,
    /// The buffers the kernel holds ([`super::held`]), in a memfd a client reading
    /// the rings itself shares.
    held: SharedMap,
    /// Buffers of ours waiting for room in the fill ring: the kernel publishes its
    /// fill consumer index lazily, and reuses buffers it dropped a frame into without
    /// taking new ones, so a batch of released slots may briefly find less room there
    /// than it brings buffers.
    spare: Vec<u32>,
    /// Slots past `hwtail` handed to the kernel, oldest first: true for a frame whose
    /// completion is awaited, false for a slot completed at once (a packet refused).
    tx_inflight: VecDeque<bool>,
    /// How many of those await a completion.
    tx_awaiting: u32,
    /// Largest frame the interface takes (MTU + Ethernet header + one VLAN tag).
    max_frame: u32,
    /// log2 of the buffer size, if a power of two.
    shift: Option<u32>,
}

/// The fill address that makes the kernel write a frame at buffer `idx`'s first byte.
#[inline]
pub(crate) fn fill_addr(geom: &BufGeom, idx: u32) -> u64 {
    u64::from(idx) * u64::from(geom.size) - XDP_PACKET_HEADROOM
}

/// The buffer of a received frame's address, if it is one's first byte. In unaligned
/// mode the kernel gives the chunk's address in the low 48 bits and the frame's offset
/// in it above them. `shift` is log2 of the buffer size when it is a power of two (it
/// always is with netmap's defaults): a shift instead of a 64-bit division per frame,
/// which a profile of the receive path showed as its costliest instruction.
#[inline]
pub(crate) fn rx_buf(geom: &BufGeom, shift: Option<u32>, addr: u64) -> Option<u32> {
    const SHIFT: u32 = 48;
    let addr = (addr & ((1 << SHIFT) - 1)) + (addr >> SHIFT);
    let sz = u64::from(geom.size);
    let idx = match shift {
        Some(s) => (addr & (sz - 1) == 0).then_some(addr >> s),
        None => addr.is_multiple_of(sz).then(|| addr / sz),
    };
    idx.and_then(|i| u32::try_from(i).ok())
        .filter(|&i| (2..geom.total).contains(&i))
}

/// How long a socket creation keeps retrying a busy queue.
const BUSY_PATIENCE: std::time::Duration = std::time::Duration::from_millis(500);

/// [`Socket::create`], retried while the queue is busy for a moment: the kernel lets
/// go of a closed socket's queue in deferred work, so a port closed and registered
/// again at once (ctrl-api-test does) finds the queue taken for a few milliseconds.
/// A queue another program holds stays busy and fails after [`BUSY_PATIENCE`].
fn create(
    api: &Api,
    ifname: &str,
    queue: u32,
    umem: &mut Umem,
    cfg: &SocketConfig,
) -> io::Result<Box<Socket>> {
    let start = std::time::Instant::now();
    loop {
        match Socket::create(api, ifname, queue, umem, cfg) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < BUSY_PATIENCE => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            r => return r,
        }
    }
}

impl Queue {
    /// Creates the socket for queue `queue` with `rx_slots`/`tx_slots` descriptors
    /// (0: no ring that way), its UMEM being the whole buffer pool at `mem`. The RX
    /// and fill rings have room for `stock` buffers (at least `rx_slots`): what the
    /// kernel can receive while the netmap ring is full.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        api: &Api,
        ifname: &str,
        queue: u32,
        mem: SharedMem,
        geom: BufGeom,
        rx_slots: u32,
        tx_slots: u32,
        stock: u32,
        max_frame: u32,
        mode: Mode,
    ) -> io::Result<Self> {
        let len = u64::from(geom.total) * u64::from(geom.size);
        if !geom.pool_offset.is_multiple_of(4096)
            || geom.pool_offset as u64 + len > mem.len() as u64
            || geom.size < 2048
        {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let pow2 = |n: u32| n.max(64).next_power_of_two();
        let ucfg = UmemConfig {
            // Twice the stock: the kernel publishes its consumer index only when its
            // cached batch runs out, so entries it took may still count as unread;
            // those are at most a stock's worth, and with this size a reader that
            // hands one buffer back per frame received always finds room (a client
            // reading the rings itself keeps no spare list).
            fill_size: pow2(2 * rx_slots.max(stock)),
            comp_size: pow2(tx_slots),
            frame_size: geom.size,
            frame_headroom: 0,
            flags: XDP_UMEM_UNALIGNED_CHUNK_FLAG,
            ..Default::default()
        };
        // SAFETY: the pool lies inside the daemon's mapping of the region (checked
        // above), which lives as long as the control plane and so longer than any port;
        // the kernel writes only into buffers we put in the fill ring.
        let mut umem =
            unsafe { Umem::create(api, mem.as_ptr().add(geom.pool_offset), len, &ucfg) }?;
        let mut scfg = SocketConfig {
            rx_size: if rx_slots > 0 {
                pow2(rx_slots.max(stock))
            } else {
                0
            },
            tx_size: if tx_slots > 0 { pow2(tx_slots) } else { 0 },
            libxdp_flags: 0,
            xdp_flags: 0,
            bind_flags: XDP_ZEROCOPY | XDP_USE_NEED_WAKEUP,
            ..Default::default()
        };
        let mut zerocopy = true;
        let sock = match mode {
            Mode::Auto => match create(api, ifname, queue, &mut umem, &scfg) {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(ifname, queue, %e, "no zero-copy; trying copy mode");
                    zerocopy = false;
                    scfg.bind_flags = XDP_COPY | XDP_USE_NEED_WAKEUP;
                    create(api, ifname, queue, &mut umem, &scfg)?
                }
            },
            Mode::Copy => {
                zerocopy = false;
                scfg.bind_flags = XDP_COPY | XDP_USE_NEED_WAKEUP;
                create(api, ifname, queue, &mut umem, &scfg)?
            }
        };
        // Marked as the AF_PACKET port's TX sockets are, so that the host RX ring's
        // filter leaves our own transmissions out.
        if let Err(e) = setsockopt(sock.fd(), libc::SOL_SOCKET, libc::SO_MARK, &TX_MARK) {
            tracing::debug!(ifname, queue, %e, "SO_MARK on an XSK");
        }
        let held = SharedMap::create(c"netmapd-xsk-held", bitmap_bytes(geom.total))?;
        Ok(Self {
            sock,
            umem,
            zerocopy,
            geom,
            held,
            spare: Vec::new(),
            tx_inflight: VecDeque::new(),
            tx_awaiting: 0,
            max_frame,
            shift: geom
                .size
                .is_power_of_two()
                .then(|| geom.size.trailing_zeros()),
        })
    }

    pub fn fd(&self) -> libc::c_int {
        self.sock.fd()
    }

    /// What a client needs to read this queue's RX and fill rings itself (it must be
    /// allowed to take the two descriptors from this process).
    pub fn handle(&self) -> Option<ReaderHandle> {
        (self.sock.rx.size() > 0).then(|| ReaderHandle {
            pid: std::process::id(),
            sock_fd: self.sock.fd(),
            socket: crate::kstate::ReaderSocket::Xsk {
                held_fd: self.held.fd(),
                rx_size: self.sock.rx.size(),
                fill_size: self.umem.fill.size(),
            },
        })
    }

    /// Gives the kernel fresh buffers to receive into (at `krings_create`).
    pub fn stock_fill(&mut self, bufs: &[u32]) -> Result<(), NetifError> {
        let want = bufs.len() as u32;
        if self.umem.fill.free(want) < want {
            return Err(NetifError::Inval("fill ring smaller than its stock".into()));
        }
        let mut n = 0;
        let held = Held::over(&self.held, self.geom.total)?;
        for &b in bufs {
            if held.take(b) {
                self.umem.fill.put_addr(n, fill_addr(&self.geom, b));
                n += 1;
            }
        }
        self.umem.fill.submit(n);
        self.wake_fill();
        Ok(())
    }

    /// Closes the socket and the UMEM; returns the held map (what the kernel held:
    /// read it once the kernel is surely done writing) and the spare buffers.
    pub fn close(self) -> (SharedMap, Vec<u32>) {
        let Self {
            sock,
            umem,
            held,
            spare,
            ..
        } = self;
        drop(sock);
        drop(umem);
        (held, spare)
    }

    /// Calls `f` with every buffer the queue owns besides its slots'.
    pub fn for_each_owned(&self, f: &mut dyn FnMut(u32)) {
        // The map was made for geom.total bits, so this always succeeds.
        if let Ok(h) = Held::over(&self.held, self.geom.total) {
            h.for_each(f);
        }
        self.spare.iter().for_each(|&b| f(b));
    }

    /// Zero-copy drivers with need_wakeup want a call before they look at new fill
    /// entries.
    fn wake_fill(&self) {
        if self.zerocopy && self.umem.fill.needs_wakeup() {
            // SAFETY: recvfrom with no buffer on the socket's fd only wakes the driver.
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
    }

    /// Moves received frames into the free slots from `hwtail` on, each slot's old
    /// buffer going to the fill ring. True if anything was received.
    pub fn rxsync(
        &mut self,
        k: &mut Kring,
        rv: &RingView,
        st: &mut Stats,
    ) -> Result<bool, NetifError> {
        // A client may have read the rings since our last sync, even one that came
        // and went between two looks of ours: always start from the shared indices
        // (two loads), never from our cached ones.
        self.sock.rx.resync(false);
        self.umem.fill.resync(true);
        self.refill();
        let held = Held::over(&self.held, self.geom.total)?;
        let x = Exchange {
            geom: self.geom,
            shift: self.shift,
            held,
        };
        let r = x.run(
            &mut self.sock.rx,
            &mut self.umem.fill,
            k,
            rv,
            Some(&mut self.spare),
        )?;
        st.rx_packets += u64::from(r.frames);
        st.rx_bytes += r.bytes;
        st.rx_drops += u64::from(r.bad);
        if r.frames + r.bad > 0 {
            self.wake_fill();
        }
        Ok(r.frames + r.bad > 0)
    }

    /// Moves spare buffers into the fill ring, as many as it has room for.
    fn refill(&mut self) {
        if self.spare.is_empty() {
            return;
        }
        let room = self.umem.fill.free(self.spare.len() as u32);
        let n = room.min(self.spare.len() as u32);
        let mut put = 0;
        let held = Held::over(&self.held, self.geom.total).ok();
        for b in self.spare.drain(..n as usize) {
            if held.is_some_and(|h| h.take(b)) {
                self.umem.fill.put_addr(put, fill_addr(&self.geom, b));
                put += 1;
            }
        }
        self.umem.fill.submit(put);
    }

    /// Takes completions and moves `hwtail` over the slots they complete.
    pub fn reclaim(&mut self, k: &mut Kring) {
        let done = self.umem.comp.ready(u32::MAX);
        self.umem.comp.release(done);
        let mut left = done;
        while let Some(&awaits) = self.tx_inflight.front() {
            if awaits {
                if left == 0 {
                    break;
                }
                left -= 1;
                self.tx_awaiting -= 1;
            }
            self.tx_inflight.pop_front();
            k.hwtail = k.next(k.hwtail);
        }
        if left > 0 {
            tracing::error!(left, "xdp tx: more completions than frames sent");
        }
    }

    /// Frames awaiting their completion.
    pub fn tx_pending(&self) -> bool {
        self.tx_awaiting > 0
    }

    /// Hands the slots from `hwcur` to `head` to the kernel and kicks it.
    pub fn txsync(
        &mut self,
        k: &mut Kring,
        rv: &RingView,
        head: u32,
        st: &mut Stats,
    ) -> Result<(), NetifError> {
        self.reclaim(k);
        let n = k.num_slots;
        let mut cur = k.hwcur;
        let want = (head + n - cur) % n;
        let room = self.sock.tx.free(want);
        let mut queued = 0;
        while cur != head {
            // A packet is one slot: the socket is not bound for multi-buffer frames,
            // so chains (NS_MOREFRAG) are refused whole.
            let mut end = cur;
            let mut frags = 0;
            let complete = loop {
                let f = rv.slot_flags(end)?;
                end = k.next(end);
                frags += 1;
                if f & NS_MOREFRAG == 0 {
                    break true;
                }
                if end == head {
                    break false;
                }
            };
            if !complete && (head + n - cur) % n < n - 1 {
                // An unterminated chain the client may still complete.
                break;
            }
            let ok = complete && frags == 1;
            let slot = rv.slot(cur)?;
            let len = u32::from(slot.len);
            let valid = ok
                && self.geom.offset(slot.buf_idx).is_some()
                && (14..=self.max_frame.min(self.geom.size)).contains(&len);
            if valid {
                if queued == room {
                    break;
                }
                let addr = u64::from(slot.buf_idx) * u64::from(self.geom.size);
                self.sock.tx.put_desc(queued, Desc { addr, len });
                queued += 1;
                self.tx_inflight.push_back(true);
                self.tx_awaiting += 1;
                st.tx_packets += 1;
                st.tx_bytes += u64::from(len);
                if slot.flags & NS_BUF_CHANGED != 0 {
                    rv.set_slot_flags(cur, slot.flags & !NS_BUF_CHANGED)?;
                }
                cur = end;
            } else {
                st.tx_errors += 1;
                while cur != end {
                    self.tx_inflight.push_back(false);
                    cur = k.next(cur);
                }
            }
        }
        self.sock.tx.submit(queued);
        k.hwcur = cur;
        if queued > 0 || self.tx_pending() {
            self.kick()?;
        }
        self.reclaim(k);
        Ok(())
    }

    /// Asks the kernel to transmit what the TX ring holds. Zero-copy drivers want a
    /// call only when they set need_wakeup; copy mode sends in the call itself, at
    /// most 32 frames per call (the kernel's TX budget, then EAGAIN), so the call is
    /// repeated until the ring is drained or the kernel stops taking frames (its
    /// socket-buffer limit: the completions that free room wake the port again).
    fn kick(&self) -> Result<(), NetifError> {
        const MAX_CALLS: u32 = 256;
        for _ in 0..MAX_CALLS {
            if !self.sock.tx.needs_wakeup() {
                return Ok(());
            }
            let before = self.sock.tx.unconsumed();
            if before == 0 {
                return Ok(());
            }
            if let Err(e) = kick(self.fd()) {
                match e.raw_os_error() {
                    Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::EINTR) => {
                        if self.sock.tx.unconsumed() >= before {
                            return Ok(());
                        }
                    }
                    _ => {
                        return Err(NetifError::Io {
                            op: "xdp tx kick",
                            source: e,
                        })
                    }
                }
            }
        }
        Ok(())
    }
}

/// What one exchange pass did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Exchanged {
    pub frames: u32,
    pub bytes: u64,
    /// Descriptors of buffers the kernel was not given (dropped).
    pub bad: u32,
}

/// The RX exchange itself, shared by the daemon ([`Queue::rxsync`]) and a client that
/// reads the rings itself ([`super::client`]): RX descriptors into the free slots from
/// `hwtail`, each slot's old buffer into the fill ring.
///
/// The held bitmap changes in an order that leaves no buffer unaccounted if the
/// process doing it dies at any point (a client killed mid-sync): the slot's old
/// buffer is marked before the slot is overwritten, and the received one unmarked
/// only after it is in the slot. A death in between leaves a buffer both marked and
/// in a slot (the pool's double-free check sorts that out at close) or marked and
/// nowhere (freed at close), never in neither.
pub(crate) struct Exchange<'a> {
    pub geom: BufGeom,
    pub shift: Option<u32>,
    pub held: Held<'a>,
}

impl Exchange<'_> {
    /// `spare`: where released buffers go when the fill ring has no room (the
    /// daemon's list); without one, only as many frames are taken as the fill ring
    /// has room for (the rest wait in the RX ring).
    pub fn run(
        &self,
        rx: &mut XskRing,
        fill: &mut XskRing,
        k: &mut Kring,
        rv: &RingView,
        mut spare: Option<&mut Vec<u32>>,
    ) -> Result<Exchanged, NetifError> {
        let room = k.rx_room();
        let mut got = rx.ready(room);
        let mut out = Exchanged::default();
        if got == 0 {
            return Ok(out);
        }
        // Old buffers go straight to the fill ring while it has room (one look at the
        // kernel's index for the batch); only the rest waits in `spare`. Spares come
        // first, so none waits behind newer buffers.
        let fill_room = match &spare {
            Some(sp) if !sp.is_empty() => 0,
            _ => fill.free(got).min(got),
        };
        if spare.is_none() {
            got = got.min(fill_room);
        }
        let mut put = 0;
        for i in 0..got {
            let d: Desc = rx.get_desc(i);
            let Some(idx) =
                rx_buf(&self.geom, self.shift, d.addr).filter(|&b| self.held.contains(b))
            else {
                // The kernel only returns what it was given: this is a reader that
                // died between placing the frame and releasing its descriptor (the
                // frame is in a slot already), or a broken held map.
                tracing::warn!(
                    addr = d.addr,
                    "xdp rx: descriptor for a buffer the kernel was not given: dropped"
                );
                out.bad += 1;
                continue;
            };
            let s = k.hwtail;
            let old = rv.slot_buf_idx(s)?;
            let in_pool = (2..self.geom.total).contains(&old) && old != idx;
            // Marked before the slot forgets it (see above).
            let refill = in_pool && self.held.take(old);
            let len = d.len.min(self.geom.size).min(u32::from(u16::MAX));
            rv.set_slot_buf_len_flags(s, idx, len as u16, NS_BUF_CHANGED)?;
            self.held.give(idx);
            k.hwtail = k.next(s);
            out.frames += 1;
            out.bytes += u64::from(len);
            if refill && put < fill_room {
                fill.put_addr(put, fill_addr(&self.geom, old));
                put += 1;
            } else if refill {
                match spare.as_deref_mut() {
                    // Spares are not marked: the fill ring's path marks them.
                    Some(sp) => {
                        self.held.give(old);
                        sp.push(old);
                    }
                    // Unreachable (got <= fill_room): stays marked, freed at close.
                    None => tracing::debug!(old, "xdp rx: no fill room for a buffer"),
                }
            } else {
                // Out of the pool, or a buffer the kernel holds already (a client put
                // it in two slots): the kernel's stock shrinks by one.
                tracing::debug!(old, "xdp rx: a released slot's buffer cannot be refilled");
            }
        }
        rx.release(got);
        fill.submit(put);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_put_frames_at_a_buffers_first_byte() {
        let g = BufGeom {
            pool_offset: 4096,
            size: 2048,
            total: 100,
        };
        assert_eq!(fill_addr(&g, 2) + XDP_PACKET_HEADROOM, 4096);
        assert_eq!(rx_buf(&g, None, 4096), Some(2));
        assert_eq!(
            rx_buf(&g, None, (256 << 48) | (4096 - 256)),
            Some(2),
            "offset above bit 48"
        );
        assert_eq!(rx_buf(&g, None, 4097), None, "not a buffer's start");
        assert_eq!(rx_buf(&g, None, 0), None, "reserved buffer 0");
        assert_eq!(rx_buf(&g, None, 100 * 2048), None, "past the pool");
        // The shift gives what the division gives, for every kind of address.
        for addr in [
            4096,
            (256 << 48) | (4096 - 256),
            4097,
            0,
            100 * 2048,
            99 * 2048,
            2047,
        ] {
            assert_eq!(
                rx_buf(&g, Some(11), addr),
                rx_buf(&g, None, addr),
                "{addr:#x}"
            );
        }
    }
}
