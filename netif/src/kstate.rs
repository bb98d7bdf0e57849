//! Kring state in shared memory: what a sync needs, kept where both the daemon and a
//! preloaded client (which runs the sync in its own process) can reach it.
//!
//! It lives in the 128 bytes of `netmap_ring.sem`, which the ABI reserves for the
//! kernel and no netmap program touches. Every client can write it, as it can write
//! every ring and buffer of the global allocator, so nothing read from here is
//! trusted for the daemon's own safety: indices are checked against the daemon's slot
//! count before use (a bad one re-initialises the ring, §8.4), buffer indices are
//! validated where they are used, and all accesses go through [`SharedMem`].
//!
//! Layout (offsets inside `sem`):
//!
//! | off | field | written by |
//! |---|---|---|
//! | 0 | magic ([`MAGIC`]) | daemon, when the ring is created |
//! | 4 | kind ([`KIND_PIPE`], [`KIND_NULL`], or 0: sync in the daemon only) | daemon |
//! | 8..28 | hwcur, hwtail, rhead, rcur, rtail | whoever syncs this ring |
//! | 28 | link: TX ring = last slot the writer may fill (`to_writer`); RX ring = end of the complete packets handed over (`to_reader`) | the peer's sync |
//! | 32 | peer ring offset (u64) | daemon |
//! | 40 | busy: 0, or the tid of the syncing thread ([`BUSY_DAEMON`] for the daemon) | syncer |
//! | 44 | seq: bumped after each publish into this ring (futex word) | the peer's sync |
//! | 48 | futex sleepers on `seq` (a count) | sleepers in clients |
//! | 52 | a kernel-path poller waits (FUSE/CUSE poll; 0 or 1) | daemon |
//! | 56 | slots, 64 bytes handed to the peer (u64 each); VALE: packets and bytes sent (TX ring) or delivered into it (RX ring) | this ring's txsync; VALE RX: senders, under the fill lock |
//! | 72 | VALE RX ring: fill lock, 0 or the tid of the sender writing into the ring ([`BUSY_DAEMON`] for the daemon) | senders |
//! | 76 | VALE RX ring: the daemon holds packets for it in its backlog ([`QUEUED`]), and that backlog is full ([`QUEUED_FULL`]), or neither (0) | daemon |
//! | 80 | VALE: packets dropped (TX ring: malformed or sent back to the sender; RX ring: no room) (u64) | as 56 |
//! | 88 | VALE RX ring: fill locks broken (holder dead, stopped, or stuck) | senders |
//! | 92 | NIC: TX ring 0 of the port: the doorbell of the port's worker thread (futex word, bumped by whoever gives it work) | clients, daemon |
//! | 96 | NIC: TX ring 0: the worker sleeps on the doorbell (0 or 1) | daemon |
//! | 100 | NIC RX ring: the worker left the ring full (frames may wait in the kernel): the reader rings the doorbell after its release | daemon, reader |
//! | 104 | NIC RX ring: the daemon's pid, for `pidfd_getfd` ([`ReaderHandle`]; 0: no in-client receive) | daemon |
//! | 108 | NIC RX ring: the daemon's descriptor of the queue's socket (AF_XDP or AF_PACKET) | daemon |
//! | 112 | AF_XDP RX ring: the daemon's descriptor of the queue's held-buffer map ([`crate::xdp::held`]); AF_PACKET RX ring: the TPACKET_V3 block to read next | daemon; AF_PACKET: whoever reads |
//! | 116 | AF_XDP RX ring: log2 of the socket's RX ring size (bits 0..8) and fill ring size (8..16); AF_PACKET RX ring: the cursor in that block ([`TpacketPos`]) | daemon; AF_PACKET: whoever reads |
//! | 120 | NIC RX ring: the process that reads the socket's rings itself (0: the daemon does) | that process; the daemon when it is gone |
//! | 124 | NIC RX ring: the socket's kind ([`READER_XSK`], [`READER_TPACKET`]) | daemon |
//!
//! A NIC RX ring's 56 and 64 count the frames and bytes a client received itself, and
//! 80 the frames it dropped (too large for the ring, or in a malformed block).
//!
//! A NIC ring's `peer` is the region offset of its port's doorbell word.
//!
//! A VALE ring's `link` is, on a TX ring, the sender's port slot in its switch and, on
//! an RX ring, the fill index (the next slot senders write; what the reader's rxsync
//! publishes as `hwtail`); `peer` is the offset of the switch block ([`crate::vale::bdg`]).

use crate::kring::Kring;
use netmap_abi::NetmapRing;
use netmap_pool::{OutOfBounds, SharedMem};

/// "NMKS" + layout version 1.
pub const MAGIC: u32 = 0x4e4d_4b01;
/// A pipe ring: its sync may run in the client.
pub const KIND_PIPE: u32 = 1;
/// A null port's ring (syncs only validate and publish): may run in the client.
pub const KIND_NULL: u32 = 2;
/// A VALE port's ring: senders forward in their own process (see [`crate::vale::bdg`]).
pub const KIND_VALE: u32 = 3;
/// A NIC's hardware ring: the client's sync publishes its head or release and rings
/// the port worker's doorbell; the daemon's worker moves frames (see
/// [`crate::af_packet`]).
pub const KIND_NIC: u32 = 4;

/// The kind a ring of a port of kind `k` has in its state block when clients may
/// sync it (0: the daemon's syncs only).
pub fn kind_of(k: crate::PortKind) -> u32 {
    match k {
        crate::PortKind::Pipe => KIND_PIPE,
        crate::PortKind::Null => KIND_NULL,
        crate::PortKind::Vale => KIND_VALE,
        crate::PortKind::Nic => KIND_NIC,
        _ => 0,
    }
}
/// Busy-flag owner value of the daemon's own syncs.
pub const BUSY_DAEMON: u32 = u32::MAX;
/// A sync holds a ring's busy flag for microseconds; a holder still there after this
/// long is a thread that died or stopped, or a value a client wrote: it is broken.
pub const BUSY_STALE: std::time::Duration = std::time::Duration::from_millis(20);

const SEM: usize = core::mem::offset_of!(NetmapRing, sem);
const O_MAGIC: usize = 0;
const O_KIND: usize = 4;
const O_HWCUR: usize = 8;
const O_HWTAIL: usize = 12;
const O_RHEAD: usize = 16;
const O_RCUR: usize = 20;
const O_RTAIL: usize = 24;
const O_LINK: usize = 28;
const O_PEER: usize = 32;
const O_BUSY: usize = 40;
const O_SEQ: usize = 44;
const O_WAITERS: usize = 48;
const O_KWAIT: usize = 52;
const O_SENT_SLOTS: usize = 56;
const O_SENT_BYTES: usize = 64;
const O_FLOCK: usize = 72;
const O_QUEUED: usize = 76;
const O_DROPS: usize = 80;
const O_BROKEN: usize = 88;
const O_DOORBELL: usize = 92;
const O_DOOR_SLEEP: usize = 96;
const O_STALL: usize = 100;
const O_XSK_PID: usize = 104;
const O_XSK_FD: usize = 108;
const O_XSK_HELD: usize = 112;
const O_XSK_SIZES: usize = 116;
const O_XSK_OWNER: usize = 120;
const O_READER_KIND: usize = 124;
const O_TP_BLOCK: usize = 112;
const O_TP_CURSOR: usize = 116;

/// The socket of a [`ReaderHandle`] is an AF_XDP one (RX and fill rings, held map).
pub const READER_XSK: u32 = 0;
/// The socket of a [`ReaderHandle`] is an AF_PACKET one with a TPACKET_V3 RX ring.
pub const READER_TPACKET: u32 = 1;

/// What a process able to take the daemon's descriptors (`pidfd_getfd`: it may ptrace
/// the daemon) needs to read a NIC queue's rings itself: an AF_XDP socket's RX and
/// fill rings, or an AF_PACKET socket's TPACKET_V3 ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderHandle {
    pub pid: u32,
    pub sock_fd: i32,
    pub socket: ReaderSocket,
}

/// The kind of a [`ReaderHandle`]'s socket, with what only that kind needs (stored as
/// [`READER_XSK`] or [`READER_TPACKET`] at offset 124).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderSocket {
    /// AF_XDP: the held-buffer map and the sizes of the RX and fill rings.
    Xsk {
        held_fd: i32,
        rx_size: u32,
        fill_size: u32,
    },
    /// AF_PACKET with a TPACKET_V3 RX ring (its size is fixed: the mapping checks it).
    Tpacket,
}

/// Where the reader of an AF_PACKET RX ring is in the socket's TPACKET_V3 ring: the
/// block to read next and, if that block is open (partly copied: the netmap ring was
/// full), the offset of its next frame and how many frames are left. Whoever reads
/// (daemon or client, under the busy flag) loads it first and stores it after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TpacketPos {
    pub block: u32,
    /// `(offset of the next frame in the block, frames left)` of an open block.
    pub open: Option<(u32, u32)>,
}

impl TpacketPos {
    /// Largest frame offset and count the packed word holds (a block of up to 256 KiB,
    /// frames of at least 32 bytes).
    pub const MAX_PKT: u32 = (1 << 18) - 1;
    pub const MAX_LEFT: u32 = (1 << 13) - 1;
}

/// A VALE RX ring has packets waiting in the daemon's backlog: senders in clients
/// leave theirs to the daemon too, so that they stay in order.
pub const QUEUED: u32 = 1;
/// ... and that backlog is full (the daemon drops): senders in clients deliver what
/// fits themselves and drop the rest, as the daemon does.
pub const QUEUED_FULL: u32 = 2;

/// The state block of the ring at region offset `ring`.
#[derive(Clone, Copy)]
pub struct KState<'a> {
    mem: SharedMem<'a>,
    base: usize,
}

impl<'a> KState<'a> {
    pub fn new(mem: SharedMem<'a>, ring_off: usize) -> Self {
        Self {
            mem,
            base: ring_off + SEM,
        }
    }

    /// Region offset of the ring this block belongs to.
    pub fn ring_offset(&self) -> usize {
        self.base - SEM
    }

    fn at(&self, o: usize) -> usize {
        self.base + o
    }

    /// Region offset of the `seq` word (the futex address, relative to the region).
    pub fn seq_offset(&self) -> usize {
        self.at(O_SEQ)
    }

    /// Writes a fresh block: indices from `k`, the link, the peer, no holder.
    pub fn init(
        &self,
        kind: u32,
        k: &Kring,
        link: u32,
        peer_off: usize,
    ) -> Result<(), OutOfBounds> {
        self.mem.fill(self.base, 128, 0)?;
        self.mem.write_u32(self.at(O_KIND), kind)?;
        self.store(k)?;
        self.mem.store_u32_release(self.at(O_LINK), link)?;
        self.mem.write_u64(self.at(O_PEER), peer_off as u64)?;
        self.mem.store_u32_release(self.at(O_MAGIC), MAGIC)
    }

    /// Clears the block (the ring goes away, or is no longer synced in clients).
    pub fn clear(&self) -> Result<(), OutOfBounds> {
        self.mem.store_u32_release(self.at(O_MAGIC), 0)?;
        self.mem.fill(self.base, 128, 0)
    }

    /// Switches client-side syncs of this ring on (`KIND_PIPE`) or off (0: e.g. a
    /// monitor watches the port, and only the daemon's syncs feed it).
    pub fn set_kind(&self, kind: u32) -> Result<(), OutOfBounds> {
        self.mem.store_u32_release(self.at(O_KIND), kind)
    }

    pub fn magic(&self) -> Result<u32, OutOfBounds> {
        self.mem.load_u32_acquire(self.at(O_MAGIC))
    }
    pub fn kind(&self) -> Result<u32, OutOfBounds> {
        self.mem.load_u32_acquire(self.at(O_KIND))
    }
    pub fn peer(&self) -> Result<u64, OutOfBounds> {
        self.mem.read_u64(self.at(O_PEER))
    }

    /// Copies the shared indices into `k` (the caller validates them).
    pub fn load(&self, k: &mut Kring) -> Result<(), OutOfBounds> {
        k.hwcur = self.mem.load_u32_acquire(self.at(O_HWCUR))?;
        k.hwtail = self.mem.load_u32_acquire(self.at(O_HWTAIL))?;
        k.rhead = self.mem.load_u32_acquire(self.at(O_RHEAD))?;
        k.rcur = self.mem.load_u32_acquire(self.at(O_RCUR))?;
        k.rtail = self.mem.load_u32_acquire(self.at(O_RTAIL))?;
        Ok(())
    }

    /// Loads the shared indices into `k` only if all five lie below its slot count;
    /// false (and `k` unchanged) when a client left something out of range.
    pub fn load_checked(&self, k: &mut Kring) -> Result<bool, OutOfBounds> {
        let mut c = k.clone();
        self.load(&mut c)?;
        let n = k.num_slots;
        if [c.hwcur, c.hwtail, c.rhead, c.rcur, c.rtail]
            .iter()
            .any(|&x| x >= n)
        {
            return Ok(false);
        }
        (k.hwcur, k.hwtail, k.rhead, k.rcur, k.rtail) =
            (c.hwcur, c.hwtail, c.rhead, c.rcur, c.rtail);
        Ok(true)
    }

    /// Publishes `k`'s indices.
    pub fn store(&self, k: &Kring) -> Result<(), OutOfBounds> {
        self.mem.store_u32_release(self.at(O_HWCUR), k.hwcur)?;
        self.mem.store_u32_release(self.at(O_HWTAIL), k.hwtail)?;
        self.mem.store_u32_release(self.at(O_RHEAD), k.rhead)?;
        self.mem.store_u32_release(self.at(O_RCUR), k.rcur)?;
        self.mem.store_u32_release(self.at(O_RTAIL), k.rtail)
    }

    /// `(hwcur, hwtail)` as last published.
    pub fn hw(&self) -> Result<(u32, u32), OutOfBounds> {
        Ok((
            self.mem.load_u32_acquire(self.at(O_HWCUR))?,
            self.mem.load_u32_acquire(self.at(O_HWTAIL))?,
        ))
    }

    pub fn link(&self) -> Result<u32, OutOfBounds> {
        self.mem.load_u32_acquire(self.at(O_LINK))
    }
    pub fn set_link(&self, v: u32) -> Result<(), OutOfBounds> {
        self.mem.store_u32_release(self.at(O_LINK), v)
    }

    /// Takes the busy flag (netmap's `nm_kr_tryget`) for `owner`; false if held.
    pub fn try_get(&self, owner: u32) -> Result<bool, OutOfBounds> {
        Ok(self.mem.cas_u32(self.at(O_BUSY), 0, owner)?.is_ok())
    }
    /// Releases the busy flag if `owner` holds it.
    pub fn put(&self, owner: u32) -> Result<(), OutOfBounds> {
        let _ = self.mem.cas_u32(self.at(O_BUSY), owner, 0)?;
        Ok(())
    }
    /// The current holder (0: free).
    pub fn holder(&self) -> Result<u32, OutOfBounds> {
        self.mem.load_u32_acquire(self.at(O_BUSY))
    }
    /// Clears the flag if `dead` still holds it (its process is gone).
    pub fn break_holder(&self, dead: u32) -> Result<bool, OutOfBounds> {
        Ok(self.mem.cas_u32(self.at(O_BUSY), dead, 0)?.is_ok())
    }

    pub fn seq(&self) -> Result<u32, OutOfBounds> {
        self.mem.load_u32_seqcst(self.at(O_SEQ))
    }

    /// A futex sleeper arrives (before it re-checks the ring: see [`publish`]).
    pub fn futex_enter(&self) -> Result<(), OutOfBounds> {
        self.mem.fetch_add_u32(self.at(O_WAITERS), 1).map(|_| ())
    }
    /// A futex sleeper leaves.
    pub fn futex_leave(&self) -> Result<(), OutOfBounds> {
        self.mem
            .fetch_add_u32(self.at(O_WAITERS), u32::MAX)
            .map(|_| ())
    }
    /// Sleeps while `seq` still holds `seen` (at most `timeout`).
    pub fn futex_wait(
        &self,
        seen: u32,
        timeout: Option<std::time::Duration>,
    ) -> Result<(), OutOfBounds> {
        self.mem.futex_wait(self.at(O_SEQ), seen, timeout)
    }

    /// The daemon holds a kernel-path poller's waker for this ring (set before its
    /// readiness check, cleared when it fires the wakers).
    pub fn set_kernel_waiter(&self, on: bool) -> Result<(), OutOfBounds> {
        self.mem
            .store_u32_release(self.at(O_KWAIT), u32::from(on))?;
        // The store must be ordered before the readiness check that follows it.
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Adds to the handed-over counters (statistics only; racy adds are fine).
    pub fn count_sent(&self, slots: u64, bytes: u64) -> Result<(), OutOfBounds> {
        let s = self.mem.read_u64(self.at(O_SENT_SLOTS))?;
        let b = self.mem.read_u64(self.at(O_SENT_BYTES))?;
        self.mem
            .write_u64(self.at(O_SENT_SLOTS), s.wrapping_add(slots))?;
        self.mem
            .write_u64(self.at(O_SENT_BYTES), b.wrapping_add(bytes))
    }
    /// Adds to the drop counter (VALE; statistics only).
    pub fn count_drops(&self, n: u64) -> Result<(), OutOfBounds> {
        if n == 0 {
            return Ok(());
        }
        let d = self.mem.read_u64(self.at(O_DROPS))?;
        self.mem.write_u64(self.at(O_DROPS), d.wrapping_add(n))
    }
    pub fn drops(&self) -> Result<u64, OutOfBounds> {
        self.mem.read_u64(self.at(O_DROPS))
    }

    /// Takes a VALE RX ring's fill lock for `owner`; false if held. Senders hold it
    /// while they write slots from the fill index on and move the index; the reader's
    /// rxsync never takes it (it only reads the index and moves `hwcur`).
    pub fn try_flock(&self, owner: u32) -> Result<bool, OutOfBounds> {
        Ok(self.mem.cas_u32(self.at(O_FLOCK), 0, owner)?.is_ok())
    }
    /// Releases the fill lock if `owner` still holds it; false if someone broke it
    /// meanwhile (this holder was taken for dead or stuck).
    pub fn put_flock(&self, owner: u32) -> Result<bool, OutOfBounds> {
        Ok(self.mem.cas_u32(self.at(O_FLOCK), owner, 0)?.is_ok())
    }
    pub fn flock_holder(&self) -> Result<u32, OutOfBounds> {
        self.mem.load_u32_acquire(self.at(O_FLOCK))
    }
    /// Clears the fill lock if `h` still holds it.
    pub fn break_flock(&self, h: u32) -> Result<bool, OutOfBounds> {
        Ok(self.mem.cas_u32(self.at(O_FLOCK), h, 0)?.is_ok())
    }

    /// Whether the daemon holds queued packets for this VALE RX ring (0, [`QUEUED`],
    /// [`QUEUED_FULL`]): a reader syncing in its own process kicks the daemon to move
    /// them in.
    pub fn set_queued(&self, v: u32) -> Result<(), OutOfBounds> {
        self.mem.store_u32_release(self.at(O_QUEUED), v)
    }
    pub fn queued(&self) -> Result<u32, OutOfBounds> {
        self.mem.load_u32_acquire(self.at(O_QUEUED))
    }

    /// Counts a broken fill lock.
    pub fn count_broken(&self) -> Result<(), OutOfBounds> {
        self.mem.fetch_add_u32(self.at(O_BROKEN), 1).map(|_| ())
    }
    pub fn broken(&self) -> Result<u32, OutOfBounds> {
        self.mem.load_u32_acquire(self.at(O_BROKEN))
    }

    /// Region offset of this block's doorbell word (the port's, in TX ring 0).
    pub fn doorbell_offset(&self) -> usize {
        self.at(O_DOORBELL)
    }

    /// A NIC RX ring the worker left full: see the layout.
    pub fn set_stalled(&self, on: bool) -> Result<(), OutOfBounds> {
        self.mem.store_u32_release(self.at(O_STALL), u32::from(on))
    }
    /// Takes the stalled mark (true if it was set).
    pub fn take_stalled(&self) -> Result<bool, OutOfBounds> {
        if self.mem.load_u32_acquire(self.at(O_STALL))? == 0 {
            return Ok(false);
        }
        Ok(self.mem.cas_u32(self.at(O_STALL), 1, 0)?.is_ok())
    }

    /// Publishes (or, with `None`, withdraws) the AF_XDP handle of this RX ring.
    pub fn set_reader(&self, h: Option<ReaderHandle>) -> Result<(), OutOfBounds> {
        let Some(h) = h else {
            return self.mem.store_u32_release(self.at(O_XSK_PID), 0);
        };
        let log = |n: u32| n.trailing_zeros() & 0xff;
        self.mem.write_u32(self.at(O_XSK_FD), h.sock_fd as u32)?;
        match h.socket {
            ReaderSocket::Xsk {
                held_fd,
                rx_size,
                fill_size,
            } => {
                self.mem.write_u32(self.at(O_READER_KIND), READER_XSK)?;
                self.mem.write_u32(self.at(O_XSK_HELD), held_fd as u32)?;
                self.mem
                    .write_u32(self.at(O_XSK_SIZES), log(rx_size) | (log(fill_size) << 8))?;
            }
            ReaderSocket::Tpacket => {
                self.mem.write_u32(self.at(O_READER_KIND), READER_TPACKET)?;
                self.set_tpacket_pos(TpacketPos::default())?;
            }
        }
        self.mem.store_u32_release(self.at(O_XSK_PID), h.pid)
    }

    /// The AF_PACKET reader's position (see [`TpacketPos`]); unchecked: the caller
    /// bounds it by its own ring before use.
    pub fn tpacket_pos(&self) -> Result<TpacketPos, OutOfBounds> {
        let block = self.mem.read_u32(self.at(O_TP_BLOCK))?;
        let w = self.mem.read_u32(self.at(O_TP_CURSOR))?;
        let open =
            (w >> 31 == 1).then_some((w & TpacketPos::MAX_PKT, (w >> 18) & TpacketPos::MAX_LEFT));
        Ok(TpacketPos { block, open })
    }

    /// Stores the AF_PACKET reader's position (values beyond the packed fields'
    /// range are clamped: a block that large does not exist).
    pub fn set_tpacket_pos(&self, p: TpacketPos) -> Result<(), OutOfBounds> {
        let w = p.open.map_or(0, |(pkt, left)| {
            1 << 31 | pkt.min(TpacketPos::MAX_PKT) | left.min(TpacketPos::MAX_LEFT) << 18
        });
        self.mem.write_u32(self.at(O_TP_BLOCK), p.block)?;
        self.mem.write_u32(self.at(O_TP_CURSOR), w)
    }

    /// The reader handle, if the daemon published one (AF_XDP ring sizes at most 2^20
    /// entries; an unknown kind is none).
    pub fn reader_handle(&self) -> Result<Option<ReaderHandle>, OutOfBounds> {
        let pid = self.mem.load_u32_acquire(self.at(O_XSK_PID))?;
        if pid == 0 {
            return Ok(None);
        }
        let sock_fd = self.mem.read_u32(self.at(O_XSK_FD))? as i32;
        let kind = self.mem.read_u32(self.at(O_READER_KIND))?;
        if kind == READER_TPACKET {
            return Ok(Some(ReaderHandle {
                pid,
                sock_fd,
                socket: ReaderSocket::Tpacket,
            }));
        }
        if kind != READER_XSK {
            return Ok(None);
        }
        let sizes = self.mem.read_u32(self.at(O_XSK_SIZES))?;
        let (rx, fill) = (sizes & 0xff, (sizes >> 8) & 0xff);
        if rx > 20 || fill > 20 {
            return Ok(None);
        }
        Ok(Some(ReaderHandle {
            pid,
            sock_fd,
            socket: ReaderSocket::Xsk {
                held_fd: self.mem.read_u32(self.at(O_XSK_HELD))? as i32,
                rx_size: 1 << rx,
                fill_size: 1 << fill,
            },
        }))
    }

    /// The process reading this AF_XDP ring itself (0: the daemon reads it).
    pub fn reader(&self) -> Result<u32, OutOfBounds> {
        self.mem.load_u32_acquire(self.at(O_XSK_OWNER))
    }
    /// Moves the ring's reading from `from` to `to` (process ids, 0 the daemon);
    /// false if someone else holds it.
    pub fn swap_reader(&self, from: u32, to: u32) -> Result<bool, OutOfBounds> {
        Ok(self.mem.cas_u32(self.at(O_XSK_OWNER), from, to)?.is_ok())
    }

    pub fn sent(&self) -> Result<(u64, u64), OutOfBounds> {
        Ok((
            self.mem.read_u64(self.at(O_SENT_SLOTS))?,
            self.mem.read_u64(self.at(O_SENT_BYTES))?,
        ))
    }
}

/// The doorbell of a NIC port's worker thread: a futex word (region offset `off`) and,
/// after it, the worker's "sleeping" word.
#[derive(Clone, Copy)]
pub struct Doorbell<'a> {
    mem: SharedMem<'a>,
    off: usize,
}

impl<'a> Doorbell<'a> {
    pub fn new(mem: SharedMem<'a>, off: usize) -> Self {
        Self { mem, off }
    }

    /// Gives the worker work: bumps the word, and wakes the worker only if it sleeps
    /// (a running worker takes the work in its next pass: no system call).
    pub fn ring(&self) -> Result<(), OutOfBounds> {
        self.mem.fetch_add_u32(self.off, 1)?;
        if self
            .mem
            .load_u32_seqcst(self.off + (O_DOOR_SLEEP - O_DOORBELL))?
            != 0
        {
            self.mem.futex_wake(self.off, 1)?;
        }
        Ok(())
    }

    /// The worker's side: the current value, to wait on.
    pub fn value(&self) -> Result<u32, OutOfBounds> {
        self.mem.load_u32_seqcst(self.off)
    }

    /// The worker sleeps until the word moves from `seen` (or `timeout`): it says so
    /// first, then re-checks, so a ring between its last pass and the sleep is seen.
    pub fn wait(&self, seen: u32, timeout: std::time::Duration) -> Result<(), OutOfBounds> {
        self.mem
            .store_u32_release(self.off + (O_DOOR_SLEEP - O_DOORBELL), 1)?;
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        if self.mem.load_u32_seqcst(self.off)? == seen {
            self.mem.futex_wait(self.off, seen, Some(timeout))?;
        }
        self.mem
            .store_u32_release(self.off + (O_DOOR_SLEEP - O_DOORBELL), 0)
    }
}

/// Whether busy-flag holder `h` is a thread that no longer exists (no `/proc` entry;
/// 0 and the daemon's own mark never are): its flag can be cleared.
pub fn holder_gone(h: u32) -> bool {
    h != 0 && h != BUSY_DAEMON && !std::path::Path::new(&format!("/proc/{h}")).exists()
}

/// Publish half of the wake-up handshake, after the ring's new state is stored: bumps
/// `seq` of the ring whose reader/writer was given something, wakes futex sleepers,
/// and returns true if a kernel-path poller waits there (a sync running in a client
/// must then kick the daemon, which owns the FUSE/CUSE notification). Sleepers do the
/// mirror image: announce themselves, re-check the ring, then sleep; with SeqCst on
/// both sides one of the two always sees the other.
pub fn publish(ks: &KState) -> Result<bool, OutOfBounds> {
    ks.mem.fetch_add_u32(ks.at(O_SEQ), 1)?;
    if ks.mem.load_u32_seqcst(ks.at(O_WAITERS))? != 0 {
        ks.mem.futex_wake(ks.seq_offset(), i32::MAX as u32)?;
    }
    Ok(ks.mem.load_u32_seqcst(ks.at(O_KWAIT))? != 0)
}
