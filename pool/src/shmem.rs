//! The single accessor for memory shared with clients.
//!
//! Clients are untrusted processes that map the same region and write to it at any time,
//! so the daemon must never form `&T`/`&[u8]` into it (the compiler would be entitled to
//! assume the bytes do not change underneath). Modelled on rust-vmm's `VolatileSlice`:
//! every access is bounds-checked with overflow-safe arithmetic and performed with
//! volatile (or atomic, for ring indices) operations on raw pointers.

use std::fmt;
use std::marker::PhantomData;
use std::mem::size_of;
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};

/// An access fell (partly) outside the shared region, or an atomic access was misaligned.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[error("shared memory access out of bounds: offset {offset} len {len} (region {size})")]
pub struct OutOfBounds {
    pub offset: usize,
    pub len: usize,
    pub size: usize,
}

/// A bounds-checked window onto client-shared memory. Cheap to copy; borrows the backing
/// mapping (e.g. a [`crate::Region`]) for `'a` so it cannot outlive it.
#[derive(Clone, Copy)]
pub struct SharedMem<'a> {
    ptr: *mut u8,
    len: usize,
    _marker: PhantomData<&'a ()>,
}

// SAFETY: SharedMem only hands out copies of the bytes (never references), all accesses
// are volatile/atomic and the memory is already shared with other processes, so using it
// from several threads adds no hazard beyond those the accessors are built for.
unsafe impl Send for SharedMem<'_> {}
// SAFETY: see the Send impl; `&SharedMem` exposes nothing more than `SharedMem`.
unsafe impl Sync for SharedMem<'_> {}

impl fmt::Debug for SharedMem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMem")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .finish()
    }
}

/// Bulk copies move this many bytes per volatile access when alignment allows.
const WORD: usize = size_of::<u64>();

/// Volatile copy from shared memory into private memory.
///
/// # Safety
/// `src` must be valid for reads of `dst.len()` bytes.
unsafe fn vcopy_from(src: *const u8, dst: &mut [u8]) {
    let mut i = 0;
    let n = dst.len();
    while i < n {
        let p = src.wrapping_add(i);
        if (p as usize) % WORD == 0 && n - i >= WORD {
            // SAFETY: p..p+8 is within the caller-guaranteed range and p is 8-aligned.
            let w = unsafe { ptr::read_volatile(p.cast::<u64>()) };
            dst[i..i + WORD].copy_from_slice(&w.to_ne_bytes());
            i += WORD;
        } else {
            // SAFETY: p is within the caller-guaranteed range.
            dst[i] = unsafe { ptr::read_volatile(p) };
            i += 1;
        }
    }
}

/// Volatile copy from private memory into shared memory.
///
/// # Safety
/// `dst` must be valid for writes of `src.len()` bytes.
unsafe fn vcopy_to(dst: *mut u8, src: &[u8]) {
    let mut i = 0;
    let n = src.len();
    while i < n {
        let p = dst.wrapping_add(i);
        if (p as usize) % WORD == 0 && n - i >= WORD {
            let mut b = [0u8; WORD];
            b.copy_from_slice(&src[i..i + WORD]);
            // SAFETY: p..p+8 is within the caller-guaranteed range and p is 8-aligned.
            unsafe { ptr::write_volatile(p.cast::<u64>(), u64::from_ne_bytes(b)) };
            i += WORD;
        } else {
            // SAFETY: p is within the caller-guaranteed range.
            unsafe { ptr::write_volatile(p, src[i]) };
            i += 1;
        }
    }
}

macro_rules! rw_int {
    ($read:ident, $write:ident, $t:ty) => {
        #[doc = concat!("Volatile read of a native-endian `", stringify!($t), "` at `off` (any alignment).")]
        #[inline]
        pub fn $read(&self, off: usize) -> Result<$t, OutOfBounds> {
            const N: usize = size_of::<$t>();
            let p = self.check(off, N)?;
            if p.cast::<$t>().is_aligned() {
                // SAFETY: check() proved p..p+N lies in the mapping; p is aligned for $t.
                Ok(unsafe { ptr::read_volatile(p.cast::<$t>()) })
            } else {
                let mut b = [0u8; N];
                // SAFETY: check() proved p..p+N lies in the mapping.
                unsafe { vcopy_from(p, &mut b) };
                Ok(<$t>::from_ne_bytes(b))
            }
        }

        #[doc = concat!("Volatile write of a native-endian `", stringify!($t), "` at `off` (any alignment).")]
        #[inline]
        pub fn $write(&self, off: usize, v: $t) -> Result<(), OutOfBounds> {
            const N: usize = size_of::<$t>();
            let p = self.check(off, N)?;
            if p.cast::<$t>().is_aligned() {
                // SAFETY: check() proved p..p+N lies in the mapping; p is aligned for $t.
                unsafe { ptr::write_volatile(p.cast::<$t>(), v) };
            } else {
                // SAFETY: check() proved p..p+N lies in the mapping.
                unsafe { vcopy_to(p, &v.to_ne_bytes()) };
            }
            Ok(())
        }
    };
}

// The small accessors are `#[inline]`: the workspace builds without LTO, so calls from
// other crates (netif's sync loops, the preload library) were real calls, bounds
// check and all, each showing in a profile of the in-client AF_XDP receive as a
// function of its own (about 10 % of the receiver's time together).
impl<'a> SharedMem<'a> {
    /// Wraps a raw mapping.
    ///
    /// # Safety
    /// `ptr` must be valid for reads and writes of `len` bytes for the whole lifetime `'a`
    /// (the bytes may be modified concurrently by other processes; that is expected).
    #[inline]
    pub unsafe fn from_raw(ptr: *mut u8, len: usize) -> Self {
        Self {
            ptr,
            len,
            _marker: PhantomData,
        }
    }

    /// A window of zero bytes: every access fails its bounds check. For code paths that
    /// need a `SharedMem` but provably touch no memory (tearing down a port that never
    /// had rings).
    pub fn empty() -> SharedMem<'static> {
        SharedMem {
            ptr: std::ptr::NonNull::<u8>::dangling().as_ptr(),
            len: 0,
            _marker: PhantomData,
        }
    }

    /// Size of the window in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the window is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Raw base pointer (for handing to syscalls such as `read`/`write` on a tap fd).
    #[inline]
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// A narrower window `[off, off + len)`, so e.g. one buffer can be passed around with
    /// its own bounds.
    pub fn subslice(&self, off: usize, len: usize) -> Result<SharedMem<'a>, OutOfBounds> {
        let ptr = self.check(off, len)?;
        Ok(Self {
            ptr,
            len,
            _marker: PhantomData,
        })
    }

    /// Bounds check with overflow-safe arithmetic; returns the pointer to `off`.
    #[inline]
    fn check(&self, off: usize, len: usize) -> Result<*mut u8, OutOfBounds> {
        match off.checked_add(len) {
            Some(end) if end <= self.len => Ok(self.ptr.wrapping_add(off)),
            _ => Err(OutOfBounds {
                offset: off,
                len,
                size: self.len,
            }),
        }
    }

    /// Bounds and 4-byte alignment check for atomic u32 accesses; misalignment is reported
    /// as [`OutOfBounds`] because atomics cannot be split.
    #[inline]
    fn check_atomic_u32(&self, off: usize) -> Result<*mut u32, OutOfBounds> {
        let p = self.check(off, 4)?;
        if (p as usize) % 4 != 0 {
            return Err(OutOfBounds {
                offset: off,
                len: 4,
                size: self.len,
            });
        }
        Ok(p.cast())
    }

    rw_int!(read_u8, write_u8, u8);
    rw_int!(read_u16, write_u16, u16);
    rw_int!(read_u32, write_u32, u32);
    rw_int!(read_u64, write_u64, u64);
    rw_int!(read_i64, write_i64, i64);

    /// Atomic load with Acquire ordering, for ring indices (head/cur/tail) published by the
    /// client: data written before the client's store becomes visible after this load.
    #[inline]
    pub fn load_u32_acquire(&self, off: usize) -> Result<u32, OutOfBounds> {
        let p = self.check_atomic_u32(off)?;
        // SAFETY: p is in bounds, 4-aligned and valid for 'a; all our accesses to ring
        // index words are atomic, and foreign processes cannot create Rust references.
        let a = unsafe { AtomicU32::from_ptr(p) };
        Ok(a.load(Ordering::Acquire))
    }

    /// Atomic store with Release ordering, for ring indices the daemon publishes (tail/
    /// head after a sync): buffer/slot writes before it are visible to the client first.
    #[inline]
    pub fn store_u32_release(&self, off: usize, v: u32) -> Result<(), OutOfBounds> {
        let p = self.check_atomic_u32(off)?;
        // SAFETY: as in load_u32_acquire.
        let a = unsafe { AtomicU32::from_ptr(p) };
        a.store(v, Ordering::Release);
        Ok(())
    }

    /// Atomic compare-and-exchange (AcqRel on success, Acquire on failure), for lock
    /// words shared with clients (a ring's busy flag): `Ok(Ok(old))` if the word held
    /// `current` and now holds `new`, `Ok(Err(seen))` otherwise.
    #[inline]
    pub fn cas_u32(
        &self,
        off: usize,
        current: u32,
        new: u32,
    ) -> Result<Result<u32, u32>, OutOfBounds> {
        let p = self.check_atomic_u32(off)?;
        // SAFETY: as in load_u32_acquire.
        let a = unsafe { AtomicU32::from_ptr(p) };
        Ok(a.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire))
    }

    /// Atomic fetch-add (SeqCst: it is the "publish" half of the wake-up handshake,
    /// ordered against the later load of the waiter flag), returning the old value.
    #[inline]
    pub fn fetch_add_u32(&self, off: usize, v: u32) -> Result<u32, OutOfBounds> {
        let p = self.check_atomic_u32(off)?;
        // SAFETY: as in load_u32_acquire.
        let a = unsafe { AtomicU32::from_ptr(p) };
        Ok(a.fetch_add(v, Ordering::SeqCst))
    }

    /// Atomic fetch-or (SeqCst), returning the old value: sets waiter flags.
    #[inline]
    pub fn fetch_or_u32(&self, off: usize, v: u32) -> Result<u32, OutOfBounds> {
        let p = self.check_atomic_u32(off)?;
        // SAFETY: as in load_u32_acquire.
        let a = unsafe { AtomicU32::from_ptr(p) };
        Ok(a.fetch_or(v, Ordering::SeqCst))
    }

    /// Atomic fetch-and (SeqCst), returning the old value: clears waiter flags.
    #[inline]
    pub fn fetch_and_u32(&self, off: usize, v: u32) -> Result<u32, OutOfBounds> {
        let p = self.check_atomic_u32(off)?;
        // SAFETY: as in load_u32_acquire.
        let a = unsafe { AtomicU32::from_ptr(p) };
        Ok(a.fetch_and(v, Ordering::SeqCst))
    }

    /// Atomic load (SeqCst): the "check the waiter flag" half of the wake-up handshake.
    #[inline]
    pub fn load_u32_seqcst(&self, off: usize) -> Result<u32, OutOfBounds> {
        let p = self.check_atomic_u32(off)?;
        // SAFETY: as in load_u32_acquire.
        let a = unsafe { AtomicU32::from_ptr(p) };
        Ok(a.load(Ordering::SeqCst))
    }

    /// FUTEX_WAKE on the shared word at `off` (every process mapping the same file
    /// page shares the futex): wakes up to `n` waiters; returns how many woke.
    pub fn futex_wake(&self, off: usize, n: u32) -> Result<i64, OutOfBounds> {
        let p = self.check_atomic_u32(off)?;
        // SAFETY: p is an in-bounds, aligned word of the mapping; FUTEX_WAKE only uses
        // its address as a key and touches no memory.
        let r = unsafe { libc::syscall(libc::SYS_futex, p, libc::FUTEX_WAKE, n as i32, 0, 0, 0) };
        Ok(r)
    }

    /// FUTEX_WAIT on the shared word at `off` while it holds `expected`, for at most
    /// `timeout` (None: no limit). Returns at once if the word differs; spurious
    /// returns are possible, so callers re-check what they wait for.
    pub fn futex_wait(
        &self,
        off: usize,
        expected: u32,
        timeout: Option<std::time::Duration>,
    ) -> Result<(), OutOfBounds> {
        let p = self.check_atomic_u32(off)?;
        let ts = timeout.map(|d| libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        let tsp = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: p is an in-bounds, aligned word of the mapping, which the kernel reads
        // atomically; tsp is null or points to a live timespec.
        unsafe { libc::syscall(libc::SYS_futex, p, libc::FUTEX_WAIT, expected, tsp, 0, 0) };
        Ok(())
    }

    /// Copies `dst.len()` bytes starting at `off` out of shared memory.
    pub fn read_bytes(&self, off: usize, dst: &mut [u8]) -> Result<(), OutOfBounds> {
        let p = self.check(off, dst.len())?;
        // SAFETY: check() proved p..p+dst.len() lies in the mapping.
        unsafe { vcopy_from(p, dst) };
        Ok(())
    }

    /// Copies `src` into shared memory at `off`.
    pub fn write_bytes(&self, off: usize, src: &[u8]) -> Result<(), OutOfBounds> {
        let p = self.check(off, src.len())?;
        // SAFETY: check() proved p..p+src.len() lies in the mapping.
        unsafe { vcopy_to(p, src) };
        Ok(())
    }

    /// Sets `len` bytes at `off` to `byte`.
    pub fn fill(&self, off: usize, len: usize, byte: u8) -> Result<(), OutOfBounds> {
        self.check(off, len)?;
        let chunk = [byte; 256];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(chunk.len());
            self.write_bytes(off + done, &chunk[..n])?;
            done += n;
        }
        Ok(())
    }

    /// Makes the pages under `[off, off + len)` present (allocated and mapped) without
    /// changing a byte: `MADV_POPULATE_WRITE`, rounded out to whole pages and clipped
    /// to the window. The region's file is filled lazily; a page first written in the
    /// data path costs the writer a fault and the zeroing of the page (a receiving
    /// client spent 15 ms of its first batch that way, `perf`, 2026-12-04), where the
    /// kernel module's memory is all allocated when the allocator is set up. Errors
    /// (a kernel before 5.14, no memory) leave the pages to be faulted in later.
    pub fn populate(&self, off: usize, len: usize) -> std::io::Result<()> {
        const PAGE: usize = 4096;
        let end = off.saturating_add(len).min(self.len);
        if off >= end {
            return Ok(());
        }
        let base = self.ptr as usize;
        let start = (base + off) & !(PAGE - 1);
        let stop = (base + end).next_multiple_of(PAGE);
        // SAFETY: madvise only inspects the address range (its pages lie in this
        // mapping, rounded out to the pages that hold the window's bytes, which the
        // mapping covers whole); MADV_POPULATE_WRITE faults pages in as a write would,
        // without writing, so no byte anyone reads changes.
        let r = unsafe {
            libc::madvise(
                start as *mut libc::c_void,
                stop - start,
                libc::MADV_POPULATE_WRITE,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Hints the CPU to fetch the cache line at `off` (ignored outside the window and
    /// on other architectures). A prefetch never faults and reads nothing visible.
    #[inline]
    pub fn prefetch(&self, off: usize) {
        if off >= self.len {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: off < len: the address lies in the mapping; a prefetch does not
        // access memory architecturally.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                self.ptr.wrapping_add(off).cast::<i8>(),
            );
        }
    }

    /// Copies `len` bytes at `src` of this window to `dst_off` of another window (a
    /// kernel packet ring to the region, or back) in 8-byte steps at any alignment,
    /// with no bounce buffer and no per-byte alignment test (a volatile `[u8; 8]` is
    /// still lowered to byte accesses: there is no wider volatile access at an unknown
    /// alignment).
    #[inline(always)]
    pub fn copy_to(
        &self,
        src: usize,
        dst: &SharedMem<'_>,
        dst_off: usize,
        len: usize,
    ) -> Result<(), OutOfBounds> {
        let ps = self.check(src, len)?;
        let pd = dst.check(dst_off, len)?;
        if self.copy_to_shifted(src, ps, pd, len) {
            return Ok(());
        }
        let words = len / WORD;
        for i in 0..words {
            // SAFETY: check() proved both ranges lie in their mappings and i * 8 + 8
            // <= len; [u8; 8] has alignment 1, so any address is aligned for it.
            unsafe {
                let w = ptr::read_volatile(ps.add(i * WORD).cast::<[u8; WORD]>());
                ptr::write_volatile(pd.add(i * WORD).cast::<[u8; WORD]>(), w);
            }
        }
        for i in words * WORD..len {
            // SAFETY: i < len: inside both checked ranges.
            unsafe { ptr::write_volatile(pd.add(i), ptr::read_volatile(ps.add(i))) };
        }
        Ok(())
    }

    /// [`Self::copy_to`]'s fast case: a source off a word boundary (AF_PACKET's frames
    /// sit 2 bytes past one, behind their 14-byte Ethernet header's alignment pad)
    /// into a word-aligned destination (a netmap buffer). The source is read as the
    /// aligned words that cover it and each destination word put together from two of
    /// them, so every access is an aligned 8-byte volatile one instead of eight byte
    /// accesses (the copy was a quarter of the AF_PACKET receive cost). The covering
    /// words may reach up to 7 bytes before and after the range: done only when they
    /// lie inside the window too. False when the case does not apply (nothing done).
    #[inline(always)]
    fn copy_to_shifted(&self, src: usize, ps: *mut u8, pd: *mut u8, len: usize) -> bool {
        let mis = src % WORD;
        if !cfg!(target_endian = "little")
            || mis == 0
            || len < WORD
            || (ps as usize) % WORD != mis
            || (pd as usize) % WORD != 0
        {
            return false;
        }
        let span = (mis + len).div_ceil(WORD) * WORD;
        let Ok(pa) = self.check(src - mis, span) else {
            return false;
        };
        let sh = (mis * 8) as u32;
        let full = len / WORD;
        // SAFETY: check() proved [pa, pa + span) lies in this window; pa is word-aligned
        // (ps - mis, with ps % WORD == mis), and the words read are 0..=full, with
        // (full + 1) * WORD <= span because mis >= 1. pd..pd + len was checked by the
        // caller and is word-aligned; words 0..full end at full * WORD <= len.
        unsafe {
            let mut prev = ptr::read_volatile(pa.cast::<u64>());
            for i in 0..full {
                let next = ptr::read_volatile(pa.add((i + 1) * WORD).cast::<u64>());
                ptr::write_volatile(
                    pd.add(i * WORD).cast::<u64>(),
                    (prev >> sh) | (next << (64 - sh)),
                );
                prev = next;
            }
            for i in full * WORD..len {
                ptr::write_volatile(pd.add(i), ptr::read_volatile(ps.add(i)));
            }
        }
        true
    }

    /// memmove inside the window (both ranges checked); used to copy packet payloads
    /// between buffers. Goes through a small bounce buffer so every shared access stays
    /// volatile; chunks are processed in the direction that keeps overlapping copies
    /// correct.
    pub fn copy_within(&self, src: usize, dst: usize, len: usize) -> Result<(), OutOfBounds> {
        let ps = self.check(src, len)?;
        let pd = self.check(dst, len)?;
        if len == 0 || src == dst {
            return Ok(());
        }
        if src.abs_diff(dst) >= len && (ps as usize | pd as usize) % WORD == 0 {
            // Disjoint and word-aligned (packet buffers always are): word by word,
            // without the bounce buffer.
            let words = len / WORD;
            for i in 0..words {
                // SAFETY: check() proved both ranges lie in the mapping; i * WORD + 8
                // <= len and both starts are 8-aligned.
                unsafe {
                    let w = ptr::read_volatile(ps.add(i * WORD).cast::<u64>());
                    ptr::write_volatile(pd.add(i * WORD).cast::<u64>(), w);
                }
            }
            for i in words * WORD..len {
                // SAFETY: i < len: inside both checked ranges.
                unsafe { ptr::write_volatile(pd.add(i), ptr::read_volatile(ps.add(i))) };
            }
            return Ok(());
        }
        let mut buf = [0u8; 512];
        if dst < src {
            let mut done = 0;
            while done < len {
                let n = (len - done).min(buf.len());
                self.read_bytes(src + done, &mut buf[..n])?;
                self.write_bytes(dst + done, &buf[..n])?;
                done += n;
            }
        } else {
            let mut left = len;
            while left > 0 {
                let n = left.min(buf.len());
                left -= n;
                self.read_bytes(src + left, &mut buf[..n])?;
                self.write_bytes(dst + left, &buf[..n])?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_mem<R>(len: usize, f: impl FnOnce(SharedMem<'_>) -> R) -> R {
        let mut backing = vec![0u64; len.div_ceil(8)];
        // SAFETY: backing is valid for len bytes and outlives the closure call.
        let m = unsafe { SharedMem::from_raw(backing.as_mut_ptr().cast(), len) };
        f(m)
    }

    /// copy_to and copy_within at every alignment and length: the same bytes arrive,
    /// nothing around them changes, and ranges outside the window are refused.
    #[test]
    fn copies_at_any_alignment() {
        with_mem(256, |a| {
            with_mem(256, |b| {
                let pattern: Vec<u8> = (0..100u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
                a.write_bytes(0, &pattern).expect("w");
                for so in 0..9 {
                    for doff in 0..9 {
                        for len in [0, 1, 7, 8, 9, 60, 64, 90] {
                            b.fill(0, 256, 0xee).expect("fill");
                            a.copy_to(so, &b, 100 + doff, len).expect("copy_to");
                            let mut got = vec![0u8; 256];
                            b.read_bytes(0, &mut got).expect("r");
                            assert_eq!(&got[100 + doff..100 + doff + len], &pattern[so..so + len]);
                            assert!(got[..100 + doff].iter().all(|&x| x == 0xee));
                            assert!(got[100 + doff + len..].iter().all(|&x| x == 0xee));
                        }
                    }
                }
                assert!(a.copy_to(250, &b, 0, 10).is_err());
                // A misaligned source whose covering words would pass the window's end
                // (a window of 250 bytes): the byte path, same result.
                let short = SharedMem { len: 250, ..a };
                for (so, len) in [(235, 15), (241, 9), (233, 17), (242, 8)] {
                    b.fill(0, 256, 0xee).expect("fill");
                    short.copy_to(so, &b, 8, len).expect("copy_to at the end");
                    let mut got = vec![0u8; len];
                    b.read_bytes(8, &mut got).expect("r");
                    let mut want = vec![0u8; len];
                    a.read_bytes(so, &mut want).expect("r");
                    assert_eq!(got, want, "{so}+{len}");
                }
                assert!(a.copy_to(0, &b, 250, 10).is_err());
                // copy_within's word path (aligned, disjoint) and its bounce path.
                b.fill(0, 256, 0).expect("fill");
                b.write_bytes(0, &pattern[..64]).expect("w");
                b.copy_within(0, 128, 61).expect("aligned");
                b.copy_within(0, 201, 50).expect("unaligned");
                let mut got = vec![0u8; 256];
                b.read_bytes(0, &mut got).expect("r");
                assert_eq!(&got[128..189], &pattern[..61]);
                assert_eq!(got[189], 0);
                assert_eq!(&got[201..251], &pattern[..50]);
            })
        });
    }

    #[test]
    fn ints_aligned_and_unaligned() {
        with_mem(64, |m| {
            for off in 0..8 {
                m.write_u64(off, 0x0102_0304_0506_0708).expect("w");
                assert_eq!(m.read_u64(off), Ok(0x0102_0304_0506_0708));
                m.write_u32(off + 16, 0xdead_beef).expect("w");
                assert_eq!(m.read_u32(off + 16), Ok(0xdead_beef));
                m.write_u16(off + 24, 0xabcd).expect("w");
                assert_eq!(m.read_u16(off + 24), Ok(0xabcd));
                m.write_i64(off + 32, -5).expect("w");
                assert_eq!(m.read_i64(off + 32), Ok(-5));
                m.write_u8(off + 48, 7).expect("w");
                assert_eq!(m.read_u8(off + 48), Ok(7));
            }
            m.store_u32_release(8, 42).expect("store");
            assert_eq!(m.load_u32_acquire(8), Ok(42));
            assert!(m.load_u32_acquire(9).is_err());
            assert!(m.store_u32_release(62, 1).is_err());
        });
    }

    #[test]
    fn bounds() {
        with_mem(64, |m| {
            assert!(m.read_u64(56).is_ok());
            assert_eq!(
                m.read_u64(57),
                Err(OutOfBounds {
                    offset: 57,
                    len: 8,
                    size: 64
                })
            );
            assert!(m.read_u8(64).is_err());
            for off in [usize::MAX, usize::MAX - 1, usize::MAX - 7] {
                assert!(m.read_u64(off).is_err());
                assert!(m.write_u64(off, 0).is_err());
                assert!(m.read_u8(off).is_err());
                assert!(m.load_u32_acquire(off & !3).is_err());
                assert!(m.write_bytes(off, &[1, 2]).is_err());
                assert!(m.fill(off, 2, 0).is_err());
                assert!(m.copy_within(0, off, 2).is_err());
                assert!(m.copy_within(off, 0, 2).is_err());
            }
            assert!(m.fill(0, usize::MAX, 0).is_err());
            assert!(m.subslice(60, 8).is_err());
            let mut big = [0u8; 65];
            assert!(m.read_bytes(0, &mut big).is_err());
            assert!(m.read_bytes(64, &mut []).is_ok());
        });
    }

    #[test]
    fn bytes_fill_copy() {
        with_mem(4096, |m| {
            let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
            m.write_bytes(3, &data).expect("w");
            let mut back = vec![0u8; 1000];
            m.read_bytes(3, &mut back).expect("r");
            assert_eq!(back, data);

            // Overlapping forward and backward moves behave like memmove.
            let mut model = vec![0u8; 4096];
            m.read_bytes(0, &mut model).expect("r");
            m.copy_within(3, 700, 1000).expect("copy");
            model.copy_within(3..1003, 700);
            m.copy_within(700, 5, 1000).expect("copy");
            model.copy_within(700..1700, 5);
            let mut got = vec![0u8; 4096];
            m.read_bytes(0, &mut got).expect("r");
            assert_eq!(got, model);

            m.fill(10, 600, 0xee).expect("fill");
            m.read_bytes(0, &mut got).expect("r");
            assert!(got[10..610].iter().all(|&b| b == 0xee));
            assert_eq!(got[610], model[610]);

            let sub = m.subslice(100, 16).expect("sub");
            sub.write_u32(0, 0x11223344).expect("w");
            assert_eq!(m.read_u32(100), Ok(0x11223344));
            assert!(sub.read_u8(16).is_err());
        });
    }
}
