//! Typed views of one `netmap_ring` inside the shared region.
//!
//! All accesses go through [`SharedMem`], so a ring offset that a client corrupted can
//! at worst produce an error, never a read or write outside the region. `head`, `cur`
//! and `tail` use atomic accesses with acquire/release ordering: they are the
//! hand-over points between client and daemon, and the slots they publish must be
//! visible before the index is.

use core::mem::{offset_of, size_of};
use netmap_abi::{ring_slot_offset, NetmapRing, NetmapSlot};
use netmap_pool::{OutOfBounds, SharedMem};

/// One ring in the region: base offset plus the slot count the daemon trusts
/// (never the `num_slots` field, which the client can overwrite).
#[derive(Clone, Copy)]
pub struct RingView<'a> {
    mem: SharedMem<'a>,
    off: usize,
    num_slots: u32,
}

const HEAD: usize = offset_of!(NetmapRing, head);
const CUR: usize = offset_of!(NetmapRing, cur);
const TAIL: usize = offset_of!(NetmapRing, tail);

impl<'a> RingView<'a> {
    pub fn new(mem: SharedMem<'a>, off: usize, num_slots: u32) -> Self {
        Self {
            mem,
            off,
            num_slots,
        }
    }

    pub fn offset(&self) -> usize {
        self.off
    }

    #[inline]
    pub fn head(&self) -> Result<u32, OutOfBounds> {
        self.mem.load_u32_acquire(self.off + HEAD)
    }
    #[inline]
    pub fn cur(&self) -> Result<u32, OutOfBounds> {
        self.mem.load_u32_acquire(self.off + CUR)
    }
    #[inline]
    pub fn tail(&self) -> Result<u32, OutOfBounds> {
        self.mem.load_u32_acquire(self.off + TAIL)
    }
    #[inline]
    pub fn set_head(&self, v: u32) -> Result<(), OutOfBounds> {
        self.mem.store_u32_release(self.off + HEAD, v)
    }
    #[inline]
    pub fn set_cur(&self, v: u32) -> Result<(), OutOfBounds> {
        self.mem.store_u32_release(self.off + CUR, v)
    }
    #[inline]
    pub fn set_tail(&self, v: u32) -> Result<(), OutOfBounds> {
        self.mem.store_u32_release(self.off + TAIL, v)
    }

    /// Region offset of slot `k`; `k` must be below the trusted slot count.
    #[inline]
    fn slot_off(&self, k: u32) -> Result<usize, OutOfBounds> {
        if k >= self.num_slots {
            return Err(OutOfBounds {
                offset: self.off.saturating_add(ring_slot_offset(k)),
                len: size_of::<NetmapSlot>(),
                size: self.mem.len(),
            });
        }
        Ok(self.off + ring_slot_offset(k))
    }

    pub fn slot(&self, k: u32) -> Result<NetmapSlot, OutOfBounds> {
        let o = self.slot_off(k)?;
        Ok(NetmapSlot {
            buf_idx: self.mem.read_u32(o)?,
            len: self.mem.read_u16(o + 4)?,
            flags: self.mem.read_u16(o + 6)?,
            ptr: self.mem.read_u64(o + 8)?,
        })
    }

    pub fn set_slot(&self, k: u32, s: &NetmapSlot) -> Result<(), OutOfBounds> {
        let o = self.slot_off(k)?;
        self.mem.write_u32(o, s.buf_idx)?;
        self.mem.write_u16(o + 4, s.len)?;
        self.mem.write_u16(o + 6, s.flags)?;
        self.mem.write_u64(o + 8, s.ptr)
    }

    /// Copies the slots `k .. k + out.len()` (no wrap: the caller splits at the end of
    /// the ring) out in one volatile copy.
    pub fn read_slots(&self, k: u32, out: &mut [NetmapSlot]) -> Result<(), OutOfBounds> {
        if out.is_empty() {
            return Ok(());
        }
        let last = k as usize + out.len() - 1;
        let o = self.slot_off(k)?;
        self.slot_off(u32::try_from(last).unwrap_or(u32::MAX))?;
        self.mem
            .read_bytes(o, zerocopy::IntoBytes::as_mut_bytes(out))
    }

    /// Writes `src` to the slots `k .. k + src.len()` (no wrap) in one volatile copy.
    pub fn write_slots(&self, k: u32, src: &[NetmapSlot]) -> Result<(), OutOfBounds> {
        if src.is_empty() {
            return Ok(());
        }
        let last = k as usize + src.len() - 1;
        let o = self.slot_off(k)?;
        self.slot_off(u32::try_from(last).unwrap_or(u32::MAX))?;
        self.mem.write_bytes(o, zerocopy::IntoBytes::as_bytes(src))
    }

    #[inline]
    pub fn slot_buf_idx(&self, k: u32) -> Result<u32, OutOfBounds> {
        self.mem.read_u32(self.slot_off(k)?)
    }

    #[inline]
    pub fn slot_flags(&self, k: u32) -> Result<u16, OutOfBounds> {
        self.mem.read_u16(self.slot_off(k)? + 6)
    }

    #[inline]
    pub fn set_slot_flags(&self, k: u32, f: u16) -> Result<(), OutOfBounds> {
        self.mem.write_u16(self.slot_off(k)? + 6, f)
    }

    /// Writes a slot's `len` and `flags` in one access (the buffer index stays).
    #[inline]
    pub fn set_slot_len_flags(&self, k: u32, len: u16, flags: u16) -> Result<(), OutOfBounds> {
        let (l, f) = (len.to_ne_bytes(), flags.to_ne_bytes());
        let v = u32::from_ne_bytes([l[0], l[1], f[0], f[1]]);
        self.mem.write_u32(self.slot_off(k)? + 4, v)
    }

    /// Writes a slot's buffer index, `len` and `flags` in one 8-byte access (the
    /// receive paths that exchange buffers write the three for every frame).
    #[inline]
    pub fn set_slot_buf_len_flags(
        &self,
        k: u32,
        buf_idx: u32,
        len: u16,
        flags: u16,
    ) -> Result<(), OutOfBounds> {
        let (b, l, f) = (
            buf_idx.to_ne_bytes(),
            len.to_ne_bytes(),
            flags.to_ne_bytes(),
        );
        let v = u64::from_ne_bytes([b[0], b[1], b[2], b[3], l[0], l[1], f[0], f[1]]);
        self.mem.write_u64(self.slot_off(k)?, v)
    }

    pub fn set_slot_buf_len(&self, k: u32, buf_idx: u32, len: u16) -> Result<(), OutOfBounds> {
        let o = self.slot_off(k)?;
        self.mem.write_u32(o, buf_idx)?;
        self.mem.write_u16(o + 4, len)
    }

    /// Stores the time of the last rxsync in `ring->ts`.
    pub fn set_timestamp(&self, sec: i64, usec: i64) -> Result<(), OutOfBounds> {
        let o = self.off + offset_of!(NetmapRing, ts);
        self.mem.write_i64(o, sec)?;
        self.mem.write_i64(o + 8, usec)
    }

    /// Writes a fresh ring: constant header fields, indices, and one slot per buffer
    /// with `len` = buffer size (what the kernel presents on a new ring). The whole
    /// fixed part, `sem` included, is zeroed first: a recycled ring object must not
    /// leak the previous user's bytes.
    #[allow(clippy::too_many_arguments)]
    pub fn init(
        &self,
        buf_pool_offset: usize,
        buf_size: u32,
        ringid: u16,
        dir: u16,
        head: u32,
        tail: u32,
        bufs: &[u32],
    ) -> Result<(), OutOfBounds> {
        let m = &self.mem;
        let o = self.off;
        m.fill(o, size_of::<NetmapRing>(), 0)?;
        let buf_ofs = buf_pool_offset as i64 - o as i64;
        m.write_i64(o + offset_of!(NetmapRing, buf_ofs), buf_ofs)?;
        m.write_u32(o + offset_of!(NetmapRing, num_slots), self.num_slots)?;
        m.write_u32(o + offset_of!(NetmapRing, nr_buf_size), buf_size)?;
        m.write_u16(o + offset_of!(NetmapRing, ringid), ringid)?;
        m.write_u16(o + offset_of!(NetmapRing, dir), dir)?;
        for k in 0..self.num_slots {
            let idx = bufs.get(k as usize).copied().unwrap_or(0);
            let len = if idx == 0 { 0 } else { buf_size as u16 };
            self.set_slot(
                k,
                &NetmapSlot {
                    buf_idx: idx,
                    len,
                    flags: 0,
                    ptr: 0,
                },
            )?;
        }
        self.set_head(head)?;
        self.set_cur(head)?;
        self.set_tail(tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one 8-byte store of buffer index, length and flags reads back as the three
    /// fields netmap programs see (ABI order: buf_idx u32, len u16, flags u16), and
    /// leaves the slot's `ptr` and its neighbours alone.
    #[test]
    fn slot_buf_len_flags_in_one_store() {
        let env = crate::testenv::TestEnv::new(2, 8, 2, 8);
        let slots = 4u32;
        // A view over a buffer of the test region (room for a 4-slot ring).
        let rv = RingView::new(env.mem(), env.buf_off(2), slots);
        for k in 0..slots {
            rv.set_slot(
                k,
                &NetmapSlot {
                    buf_idx: 100 + k,
                    len: 60,
                    flags: 0,
                    ptr: 0xdead_beef,
                },
            )
            .expect("slot");
        }
        rv.set_slot_buf_len_flags(2, 0x0102_0304, 1514, 0x8001)
            .expect("store");
        let s = rv.slot(2).expect("slot 2");
        assert_eq!(
            (s.buf_idx, s.len, s.flags, s.ptr),
            (0x0102_0304, 1514, 0x8001, 0xdead_beef)
        );
        for k in [1, 3] {
            let s = rv.slot(k).expect("neighbour");
            assert_eq!((s.buf_idx, s.len, s.flags), (100 + k, 60, 0), "slot {k}");
        }
        assert!(
            rv.set_slot_buf_len_flags(slots, 5, 60, 0).is_err(),
            "past the ring"
        );
    }
}
