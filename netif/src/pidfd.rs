//! Another process through a pidfd: a duplicate of one of its descriptors
//! (`pidfd_getfd`, which the kernel allows only to a process that may ptrace it),
//! or a descriptor that becomes readable when it exits. Used by the control plane
//! (a client's irqfd for the kernel-loop mode) and by a client reading a NIC queue
//! itself (the daemon's AF_XDP or AF_PACKET socket, see [`crate::rx_client`]).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A pidfd of process `pid`.
pub fn open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// A duplicate of descriptor `fd` of process `pid`.
pub fn take_fd(pid: u32, fd: RawFd) -> io::Result<OwnedFd> {
    let pidfd = open(pid)?;
    // SAFETY: pidfd_getfd takes a pidfd, a descriptor number in that process, flags.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}
