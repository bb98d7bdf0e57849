//! A fake caller address space for the control-plane and CUSE retry tests: one flat
//! mapping at [`FakeMem::BASE`], everything else faults, as a caller's bad pointers do.

use super::{Errno, UserMemory};
use parking_lot::Mutex;
use std::mem::size_of;
use zerocopy::{FromBytes, IntoBytes};

const EFAULT: Errno = Errno(libc::EFAULT);

/// A fake caller address space: one flat mapping `[BASE, BASE + len)`, everything else
/// faults. Objects are placed with a bump allocator (8-byte aligned). Shareable between
/// threads, as a caller's memory is (the sync loop reads it while the test writes).
pub(crate) struct FakeMem {
    bytes: Mutex<Vec<u8>>,
    next: Mutex<u64>,
}

impl FakeMem {
    pub const BASE: u64 = 0x10000;
    pub const LEN: usize = 1 << 20;

    pub fn new() -> Self {
        Self {
            bytes: Mutex::new(vec![0; Self::LEN]),
            next: Mutex::new(Self::BASE),
        }
    }

    /// The first address past the mapping (faults).
    pub fn end() -> u64 {
        Self::BASE + Self::LEN as u64
    }

    pub fn range(addr: u64, len: usize) -> Result<std::ops::Range<usize>, Errno> {
        let start = addr.checked_sub(Self::BASE).ok_or(EFAULT)? as usize;
        let end = start.checked_add(len).ok_or(EFAULT)?;
        if end > Self::LEN {
            return Err(EFAULT);
        }
        Ok(start..end)
    }

    /// `len` bytes at a fresh address aligned to `align` (a power of two).
    pub fn alloc_aligned(&self, len: usize, align: u64) -> u64 {
        let a = self.alloc(len + align as usize);
        (a + align - 1) & !(align - 1)
    }

    pub fn alloc(&self, len: usize) -> u64 {
        let mut n = self.next.lock();
        let a = *n;
        *n = (a + len as u64 + 7) & !7;
        assert!(*n <= Self::end(), "fake address space exhausted");
        a
    }

    /// Places `data` at a fresh address.
    pub fn put(&self, data: &[u8]) -> u64 {
        let a = self.alloc(data.len());
        self.write(a, data).expect("in range");
        a
    }

    pub fn get<T: FromBytes>(&self, addr: u64) -> T {
        let mut b = vec![0u8; size_of::<T>()];
        self.read(addr, &mut b).expect("in range");
        T::read_from_bytes(&b).expect("size matches")
    }

    /// A copy of the whole mapping, to compare two address spaces byte for byte.
    pub fn snapshot(&self) -> Vec<u8> {
        self.bytes.lock().clone()
    }

    pub fn set<T: IntoBytes + zerocopy::Immutable>(&self, addr: u64, v: &T) {
        self.write(addr, v.as_bytes()).expect("in range");
    }
}

impl UserMemory for FakeMem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        if buf.is_empty() {
            return Ok(());
        }
        let r = Self::range(addr, buf.len())?;
        buf.copy_from_slice(&self.bytes.lock()[r]);
        Ok(())
    }
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        if data.is_empty() {
            return Ok(());
        }
        let r = Self::range(addr, data.len())?;
        self.bytes.lock()[r].copy_from_slice(data);
        Ok(())
    }
    /// The test process itself: the sync loop takes eventfds from it.
    fn pid(&self) -> Option<u32> {
        Some(std::process::id())
    }
}
