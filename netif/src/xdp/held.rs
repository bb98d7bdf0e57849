//! Which pool buffers an AF_XDP queue owns besides its slots: one bit per buffer,
//! set while the buffer is the kernel's (in the fill ring, being written, or in the
//! RX ring not yet taken).
//!
//! The bitmap lives in a memfd of its own rather than in the daemon's heap because
//! the reader of a queue may be a client process ([`super::client`]): whoever reads
//! the RX ring keeps the bitmap, and at close the daemon returns every marked buffer
//! to the pool whoever marked it, so a client killed at any point leaves nothing the
//! daemon cannot find. A client reaches the memfd only with `pidfd_getfd` on the
//! daemon, i.e. only if it may ptrace the daemon; nothing a client can write here
//! is more than it could do to the daemon directly. Even so the daemon reads it
//! through [`SharedMem`] and frees only what the pool's checks accept (range,
//! reserved, double free, still referenced by another port).
//!
//! One writer at a time: whoever reads the queue (the daemon or one client, see
//! [`super::client`]) changes bits, under the RX ring's busy flag, so a bit changes
//! with a plain load and store of its 32-bit word (an atomic read-modify-write per
//! frame cost the receive path two locked instructions per frame for nothing).
#![allow(unsafe_code)]

use crate::NetifError;
use netmap_pool::SharedMem;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A shared read-write mapping of a whole file (the daemon's memfd, or the client's
/// copy of its descriptor), unmapped on drop.
#[derive(Debug)]
pub struct SharedMap {
    fd: OwnedFd,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain shared memory, only ever accessed through SharedMem's
// volatile/atomic accessors; the pointer stays valid until drop.
unsafe impl Send for SharedMap {}
// SAFETY: as Send; &SharedMap hands out only SharedMem views.
unsafe impl Sync for SharedMap {}

impl SharedMap {
    /// A new memfd of `len` bytes (zeroed), mapped.
    pub fn create(name: &std::ffi::CStr, len: usize) -> io::Result<Self> {
        // SAFETY: memfd_create with a NUL-terminated name and plain flags.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by memfd_create and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: ftruncate on our own memfd.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Self::map(fd, len)
    }

    /// Maps the whole regular file `fd` (taken over).
    pub fn open(fd: OwnedFd) -> io::Result<Self> {
        // SAFETY: fstat fills the zeroed struct it is given; fd is ours and valid.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let len = usize::try_from(st.st_size).unwrap_or(0);
        Self::map(fd, len)
    }

    fn map(fd: OwnedFd, len: usize) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: a fresh shared mapping of a regular file of at least `len` bytes;
        // the kernel picks the address.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            fd,
            ptr: p.cast(),
            len,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn mem(&self) -> SharedMem<'_> {
        // SAFETY: ptr..ptr+len is our live mapping (unmapped only on drop, which the
        // borrow outlives not); other processes may write it, which SharedMem's
        // volatile accesses allow for.
        unsafe { SharedMem::from_raw(self.ptr, self.len) }
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Bytes of a bitmap over `total` buffers (whole 32-bit words).
pub fn bitmap_bytes(total: u32) -> usize {
    (total as usize).div_ceil(32) * 4
}

/// The held bitmap over `total` buffers, in `mem`.
#[derive(Clone, Copy)]
pub struct Held<'a> {
    mem: SharedMem<'a>,
    total: u32,
}

impl<'a> Held<'a> {
    /// `None` if `mem` is too small for `total` bits.
    pub fn new(mem: SharedMem<'a>, total: u32) -> Option<Self> {
        (mem.len() >= bitmap_bytes(total)).then_some(Self { mem, total })
    }

    /// The bitmap over `total` buffers in `map`.
    pub fn over(map: &'a SharedMap, total: u32) -> Result<Self, NetifError> {
        Self::new(map.mem(), total).ok_or_else(|| NetifError::Inval("held map too small".into()))
    }

    #[inline]
    fn word(idx: u32) -> (usize, u32) {
        ((idx / 32) as usize * 4, 1 << (idx % 32))
    }

    /// Marks `idx`; false if it was marked already or is out of range.
    #[inline]
    pub fn take(&self, idx: u32) -> bool {
        if idx >= self.total {
            return false;
        }
        let (o, b) = Self::word(idx);
        match self.mem.read_u32(o) {
            Ok(w) if w & b == 0 => self.mem.write_u32(o, w | b).is_ok(),
            _ => false,
        }
    }

    /// Unmarks `idx`; false if it was not marked.
    #[inline]
    pub fn give(&self, idx: u32) -> bool {
        if idx >= self.total {
            return false;
        }
        let (o, b) = Self::word(idx);
        match self.mem.read_u32(o) {
            Ok(w) if w & b != 0 => self.mem.write_u32(o, w & !b).is_ok(),
            _ => false,
        }
    }

    #[inline]
    pub fn contains(&self, idx: u32) -> bool {
        if idx >= self.total {
            return false;
        }
        let (o, b) = Self::word(idx);
        self.mem.read_u32(o).is_ok_and(|w| w & b != 0)
    }

    /// Calls `f` with every marked index.
    pub fn for_each(&self, f: &mut dyn FnMut(u32)) {
        for w in 0..self.total.div_ceil(32) {
            let Ok(mut v) = self.mem.load_u32_acquire(w as usize * 4) else {
                return;
            };
            while v != 0 {
                let i = w * 32 + v.trailing_zeros();
                if i < self.total {
                    f(i);
                }
                v &= v - 1;
            }
        }
    }

    /// How many are marked.
    pub fn count(&self) -> u32 {
        let mut n = 0;
        self.for_each(&mut |_| n += 1);
        n
    }

    /// Every marked index, unmarking them.
    pub fn drain(&self) -> Vec<u32> {
        let mut out = Vec::new();
        self.for_each(&mut |i| out.push(i));
        let _ = self.mem.fill(0, bitmap_bytes(self.total), 0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_unmarks_and_drains_through_a_shared_file() {
        let m = SharedMap::create(c"held-test", bitmap_bytes(100)).expect("memfd");
        let h = Held::new(m.mem(), 100).expect("big enough");
        assert!(h.take(5) && h.take(64) && h.take(99));
        assert!(!h.take(5), "marked twice");
        assert!(!h.take(100), "out of range");
        assert!(h.contains(64) && !h.contains(63));
        assert_eq!(h.count(), 3);
        // A second mapping of the same file (as a client's) sees and changes the same bits.
        // SAFETY: dup of our own valid descriptor.
        let dup = unsafe { OwnedFd::from_raw_fd(libc::dup(m.fd())) };
        let m2 = SharedMap::open(dup).expect("map again");
        let h2 = Held::new(m2.mem(), 100).expect("big enough");
        assert!(h2.give(64) && !h2.give(64));
        assert!(!h.contains(64));
        assert_eq!(h.drain(), vec![5, 99]);
        assert_eq!(h2.count(), 0);
        assert!(
            Held::new(m.mem(), 1000).is_none(),
            "map too small for 1000 bits"
        );
    }
}
