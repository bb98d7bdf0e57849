//! The control plane's only system calls: cross-process memory access, and taking
//! a descriptor from another process (the sync loop's eventfds).
#![allow(unsafe_code)]

use super::Errno;

fn check(len: usize, done: isize) -> Result<(), Errno> {
    if done < 0 {
        let e = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EFAULT);
        // ESRCH/EPERM mean the caller vanished or cannot be reached: to the caller
        // (if any) this is a bad address.
        return Err(Errno(if e == libc::ENOMEM {
            libc::ENOMEM
        } else {
            libc::EFAULT
        }));
    }
    if done as usize != len {
        return Err(Errno(libc::EFAULT));
    }
    Ok(())
}

/// Reads `buf.len()` bytes at `addr` in process `pid`; a partial read is EFAULT.
pub fn vm_read(pid: libc::pid_t, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
    if buf.is_empty() {
        return Ok(());
    }
    if addr == 0 {
        return Err(Errno(libc::EFAULT));
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes `buf`, which we own mutably for the duration of the
    // call; `remote` is only interpreted by the kernel in the other process's address
    // space, which validates it (bad addresses give EFAULT, not UB here).
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    check(buf.len(), n)
}

/// Writes `data` at `addr` in process `pid`; a partial write is EFAULT.
pub fn vm_write(pid: libc::pid_t, addr: u64, data: &[u8]) -> Result<(), Errno> {
    if data.is_empty() {
        return Ok(());
    }
    if addr == 0 {
        return Err(Errno(libc::EFAULT));
    }
    let local = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: `local` describes `data`, which the kernel only reads; `remote` is
    // validated by the kernel against the target's address space.
    let n = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
    check(data.len(), n)
}

/// An epoll instance watching the descriptors of kernel-fed ports (edge-triggered).
pub struct Epoll {
    fd: std::os::fd::OwnedFd,
}

impl Epoll {
    pub fn new() -> std::io::Result<Self> {
        use std::os::fd::FromRawFd;
        // SAFETY: epoll_create1 takes no pointers.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by epoll_create1 and is owned by nobody else.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd })
    }

    fn ctl(&self, op: i32, fd: std::os::fd::RawFd, events: u32, token: u64) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call; the kernel
        // validates `fd`.
        let r = unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev) };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Watches `fd` for input and output readiness, edge-triggered, reporting `token`.
    pub fn add(&self, fd: std::os::fd::RawFd, token: u64) -> std::io::Result<()> {
        let ev = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLERR | libc::EPOLLET) as u32;
        self.ctl(libc::EPOLL_CTL_ADD, fd, ev, token)
    }

    /// Stops watching `fd`.
    pub fn remove(&self, fd: std::os::fd::RawFd) -> std::io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits up to `timeout_ms` and returns the tokens of the ready descriptors.
    pub fn wait(&self, out: &mut Vec<u64>, timeout_ms: i32) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 64];
        // SAFETY: `evs` is a writable array of 64 epoll_event entries.
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                evs.as_mut_ptr(),
                evs.len() as i32,
                timeout_ms,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                return Ok(());
            }
            return Err(e);
        }
        out.clear();
        out.extend(evs[..n as usize].iter().map(|e| e.u64));
        Ok(())
    }
}

/// A duplicate of descriptor `fd` of process `pid` (pidfd_open + pidfd_getfd). Any
/// failure (no such process or descriptor, no permission) is EBADF to the caller.
pub fn take_fd(pid: u32, fd: std::os::fd::RawFd) -> Result<std::os::fd::OwnedFd, Errno> {
    netmap_netif::pidfd::take_fd(pid, fd).map_err(|_| Errno(libc::EBADF))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_round_trip_and_faults() {
        let pid = std::process::id() as libc::pid_t;
        let src = [1u8, 2, 3, 4];
        let mut dst = [0u8; 4];
        vm_read(pid, src.as_ptr() as u64, &mut dst).expect("read own memory");
        assert_eq!(dst, src);
        let mut target = [0u8; 4];
        vm_write(pid, target.as_mut_ptr() as u64, &[9, 8, 7, 6]).expect("write own memory");
        assert_eq!(std::hint::black_box(target), [9, 8, 7, 6]);
        assert_eq!(vm_read(pid, 0x10, &mut dst), Err(Errno(libc::EFAULT)));
        assert_eq!(vm_read(pid, 0, &mut dst), Err(Errno(libc::EFAULT)));
    }
}
