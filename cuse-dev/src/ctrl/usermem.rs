//! Access to the calling process's memory.
//!
//! NIOCCTRL is a pointer-chasing ioctl: the 88-byte header names a body and an option
//! chain elsewhere in the caller's address space. The FUSE transport only moves the
//! header, so the FUSE front end reads and writes the rest with
//! `process_vm_readv/writev` on the request's pid; tests use an in-process fake.

use super::Errno;

/// The caller's address space, as seen by the control plane. Every method fails with
/// EFAULT for addresses the caller cannot access, never crashes the daemon.
pub trait UserMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno>;
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), Errno>;
    /// The calling thread, when this memory is a live process (the sync loop uses it
    /// to take the caller's eventfds and to notice the caller being killed).
    fn pid(&self) -> Option<u32> {
        None
    }
}

/// A process (or thread) identified by pid, accessed with `process_vm_readv/writev`.
pub struct ProcessMemory {
    pid: libc::pid_t,
}

impl ProcessMemory {
    pub fn new(pid: u32) -> Self {
        Self {
            pid: pid as libc::pid_t,
        }
    }
}

impl UserMemory for ProcessMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        crate::ctrl::sys::vm_read(self.pid, addr, buf)
    }
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        crate::ctrl::sys::vm_write(self.pid, addr, data)
    }
    fn pid(&self) -> Option<u32> {
        Some(self.pid as u32)
    }
}

/// No caller memory at all: every access faults. Used where a request cannot carry
/// pointers (legacy ioctls).
pub struct NoMemory;

impl UserMemory for NoMemory {
    fn read(&self, _addr: u64, _buf: &mut [u8]) -> Result<(), Errno> {
        Err(Errno(libc::EFAULT))
    }
    fn write(&self, _addr: u64, _data: &[u8]) -> Result<(), Errno> {
        Err(Errno(libc::EFAULT))
    }
}
