//! The kernel-side state of one ring, and the validation that keeps it trusted.
//!
//! The client owns `head`/`cur` and may write anything there at any moment. As in
//! netmap's kring, the daemon keeps its own copies (`rhead`, `rcur`, `rtail`) of what it
//! last accepted, reads the client's values once per sync, and either accepts them
//! (they lie in the window the protocol allows) or re-initialises the ring.

use crate::ringmem::RingView;
use netmap_pool::OutOfBounds;

/// Direction of a ring. The numeric values are what `netmap_ring.dir` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    Tx,
    Rx,
}

impl Dir {
    pub fn ring_dir(self) -> u16 {
        match self {
            Dir::Tx => netmap_abi::NR_TX,
            Dir::Rx => netmap_abi::NR_RX,
        }
    }
    pub const BOTH: [Dir; 2] = [Dir::Tx, Dir::Rx];
}

/// Trusted per-ring state (netmap's `struct netmap_kring`, minus what we don't need).
#[derive(Debug, Clone)]
pub struct Kring {
    pub dir: Dir,
    pub id: u32,
    pub num_slots: u32,
    /// Region offset of the `netmap_ring` once the ring exists.
    pub ring_off: Option<usize>,
    pub hwcur: u32,
    pub hwtail: u32,
    pub rhead: u32,
    pub rcur: u32,
    pub rtail: u32,
    /// Descriptors bound to this ring.
    pub users: u32,
    /// Bound by a descriptor registered with NR_EXCLUSIVE.
    pub exclusive: bool,
    /// The busy-flag holder the daemon last found on this ring's shared state, and
    /// since when: a holder seen for longer than any sync takes is broken.
    pub busy_seen: Option<(u32, std::time::Instant)>,
}

impl Kring {
    pub fn new(dir: Dir, id: u32, num_slots: u32) -> Self {
        let mut k = Self {
            dir,
            id,
            num_slots,
            ring_off: None,
            hwcur: 0,
            hwtail: 0,
            rhead: 0,
            rcur: 0,
            rtail: 0,
            users: 0,
            exclusive: false,
            busy_seen: None,
        };
        k.reset_indices();
        k
    }

    /// Fresh-ring indices: TX owns every slot but one, RX owns none.
    pub fn reset_indices(&mut self) {
        self.hwcur = 0;
        self.hwtail = match self.dir {
            Dir::Tx => self.num_slots.saturating_sub(1),
            Dir::Rx => 0,
        };
        self.rhead = 0;
        self.rcur = 0;
        self.rtail = self.hwtail;
    }

    /// `(i + 1) mod N`.
    #[inline]
    pub fn next(&self, i: u32) -> u32 {
        if i + 1 >= self.num_slots {
            0
        } else {
            i + 1
        }
    }

    /// `(i - 1) mod N`.
    #[inline]
    pub fn prev(&self, i: u32) -> u32 {
        if i == 0 {
            self.num_slots.saturating_sub(1)
        } else {
            i - 1
        }
    }

    /// Slots a receive path may fill: `[hwtail, hwcur - 1)` (the slot before hwcur
    /// stays empty). Without `%`: a division cost more than the rest of placing a
    /// small frame (`perf annotate`, 2026-12-04), and this runs once per sync.
    #[inline]
    pub fn rx_room(&self) -> u32 {
        let stop = self.prev(self.hwcur);
        if stop >= self.hwtail {
            stop - self.hwtail
        } else {
            stop + self.num_slots - self.hwtail
        }
    }

    /// Validates the client's head/cur for a TX sync (netmap `nm_txsync_prologue`):
    /// head in `[rhead, rtail]`, cur in `[head, rtail]`, circularly. On success the
    /// trusted copies are updated and a tail the client overwrote is restored.
    pub fn txsync_prologue(
        &mut self,
        ring: &RingView,
        head: u32,
        cur: u32,
    ) -> Result<bool, OutOfBounds> {
        if !window_ok(self.num_slots, self.rhead, self.rtail, head, cur) {
            return Ok(false);
        }
        if ring.tail()? != self.rtail {
            ring.set_tail(self.rtail)?;
        }
        self.rhead = head;
        self.rcur = cur;
        Ok(true)
    }

    /// Validates head/cur for an RX sync (netmap `nm_rxsync_prologue`): head in
    /// `[hwcur, hwtail]`, cur in `[head, hwtail]`.
    pub fn rxsync_prologue(
        &mut self,
        ring: &RingView,
        head: u32,
        cur: u32,
    ) -> Result<bool, OutOfBounds> {
        if !window_ok(self.num_slots, self.hwcur, self.hwtail, head, cur) {
            return Ok(false);
        }
        if ring.tail()? != self.rtail {
            ring.set_tail(self.rtail)?;
        }
        self.rhead = head;
        self.rcur = cur;
        Ok(true)
    }

    /// Publishes the new tail after a successful port sync (netmap `nm_sync_finalize`).
    pub fn finalize(&mut self, ring: &RingView) -> Result<(), OutOfBounds> {
        self.rtail = self.hwtail;
        ring.set_tail(self.rtail)
    }

    /// Ring re-initialisation after the client broke the protocol.
    ///
    /// Slots whose buffer index is outside `[2, buf_total)` are cleared and lengths
    /// above the buffer size zeroed, as the kernel does. Unlike the kernel, which keeps
    /// merely-inconsistent indices, the daemon always resets head/cur/tail to its own
    /// state: accepting a bogus head would let a later sync walk slots the client does
    /// not own (NETMAP-ABI.md §8.4 calls this an emulator choice).
    pub fn reinit(
        &mut self,
        ring: &RingView,
        buf_total: u32,
        buf_size: u32,
    ) -> Result<(), OutOfBounds> {
        for k in 0..self.num_slots {
            let s = ring.slot(k)?;
            if s.buf_idx < 2 || s.buf_idx >= buf_total {
                ring.set_slot_buf_len(k, 0, 0)?;
            } else if u32::from(s.len) > buf_size {
                ring.set_slot_buf_len(k, s.buf_idx, 0)?;
            }
        }
        self.rhead = self.hwcur;
        self.rcur = self.hwcur;
        self.rtail = self.hwtail;
        ring.set_head(self.hwcur)?;
        ring.set_cur(self.hwcur)?;
        ring.set_tail(self.hwtail)?;
        tracing::debug!(dir = ?self.dir, ring = self.id, hwcur = self.hwcur, hwtail = self.hwtail, "ring re-initialised");
        Ok(())
    }
}

/// `x` in the circular interval `[a, b]` of a ring with `n` slots.
pub fn in_window(a: u32, b: u32, x: u32) -> bool {
    if a <= b {
        a <= x && x <= b
    } else {
        x >= a || x <= b
    }
}

/// head in `[a, b]` and cur in `[head, b]`, all below `n`.
pub fn window_ok(n: u32, a: u32, b: u32, head: u32, cur: u32) -> bool {
    head < n && cur < n && in_window(a, b, head) && in_window(head, b, cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_rules() {
        // Linear window [0, 7] of an 8-slot ring.
        assert!(window_ok(8, 0, 7, 0, 0));
        assert!(window_ok(8, 0, 7, 3, 7));
        assert!(!window_ok(8, 0, 7, 3, 2), "cur behind head");
        assert!(!window_ok(8, 0, 7, 8, 8), "head beyond the ring");
        // Wrapped window [6, 2].
        assert!(window_ok(8, 6, 2, 7, 1));
        assert!(window_ok(8, 6, 2, 1, 2));
        assert!(!window_ok(8, 6, 2, 4, 4), "head outside the wrapped window");
        assert!(
            !window_ok(8, 6, 2, 1, 7),
            "cur wraps past the end of the window"
        );
    }

    /// `rx_room` is `(hwcur - 1 - hwtail) mod N` for every position pair.
    #[test]
    fn rx_room_is_the_modular_gap() {
        let mut k = Kring::new(Dir::Rx, 0, 8);
        for hwcur in 0..8 {
            for hwtail in 0..8 {
                (k.hwcur, k.hwtail) = (hwcur, hwtail);
                assert_eq!(
                    k.rx_room(),
                    (hwcur + 16 - 1 - hwtail) % 8,
                    "{hwcur} {hwtail}"
                );
            }
        }
    }

    #[test]
    fn fresh_indices() {
        let tx = Kring::new(Dir::Tx, 0, 1024);
        assert_eq!(
            (tx.hwcur, tx.hwtail, tx.rhead, tx.rtail),
            (0, 1023, 0, 1023)
        );
        let rx = Kring::new(Dir::Rx, 0, 1024);
        assert_eq!((rx.hwcur, rx.hwtail, rx.rtail), (0, 0, 0));
        assert_eq!(tx.next(1023), 0);
        assert_eq!(tx.prev(0), 1023);
    }
}
