//! The control plane's only system calls: cross-process memory access.
#![allow(unsafe_code)]

use super::Errno;

fn check(len: usize, done: isize) -> Result<(), Errno> {
    if done < 0 {
        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EFAULT);
        // ESRCH/EPERM mean the caller vanished or cannot be reached: to the caller
        // (if any) this is a bad address.
        return Err(Errno(if e == libc::ENOMEM { libc::ENOMEM } else { libc::EFAULT }));
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
