//! Thin wrappers over the raw syscalls a netmap application issues on `/dev/netmap`.
//!
//! Everything goes through `libc` exactly as a C program would (open, ioctl, mmap,
//! poll), so the daemon sees the same requests as from an unmodified netmap binary.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use netmap_abi::{NmreqHeader, NIOCCTRL, NIOCRXSYNC, NIOCTXSYNC};

/// Path the daemon serves (inside the `netmapd exec` mount namespace).
pub const DEV_PATH: &std::ffi::CStr = c"/dev/netmap";

/// A raw errno value returned by a failed syscall.
///
/// Kept as the bare number (not `io::Error`) because the error-case tests compare the
/// exact value against NETMAP-ABI.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// The errno of the last failed libc call of this thread.
    pub fn last() -> Self {
        Errno(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", errno_name(self.0), self.0)
    }
}

impl From<Errno> for io::Error {
    fn from(e: Errno) -> Self {
        io::Error::from_raw_os_error(e.0)
    }
}

/// The raw errno carried by an `io::Error` (-1 if it has none), for callers of the
/// `io::Result` APIs (e.g. [`crate::Port::register`]) that need to compare errnos.
pub fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

/// Symbolic name of the errnos netmap uses (NETMAP-ABI.md header), for messages.
pub fn errno_name(e: i32) -> &'static str {
    match e {
        0 => "success",
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::ENOSYS => "ENOSYS",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        _ => "E?",
    }
}

/// Renders an ioctl outcome as "success" or "EINVAL (22)".
pub fn outcome(r: Result<(), Errno>) -> String {
    match r {
        Ok(()) => "success".to_string(),
        Err(e) => e.to_string(),
    }
}

/// `open("/dev/netmap", O_RDWR)`, like `nmport_open` and `nm_open`.
pub fn open_netmap() -> io::Result<OwnedFd> {
    // SAFETY: DEV_PATH is a valid NUL-terminated string; open touches no other memory.
    let fd = unsafe { libc::open(DEV_PATH.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("open /dev/netmap: {e}")));
    }
    // SAFETY: fd was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `ioctl(fd, cmd, arg)` returning the raw errno on failure.
///
/// # Safety
/// `arg`, and every pointer reachable from it that the command follows (NIOCCTRL's
/// `nr_body` and option chain), must either be valid for reads and writes of the sizes
/// the ABI defines, or point to unmapped memory (then the call fails with EFAULT).
/// Memory the daemon may write must not be aliased by live Rust references.
pub unsafe fn ioctl_raw(fd: RawFd, cmd: u32, arg: *mut libc::c_void) -> Result<i32, Errno> {
    // SAFETY: forwarded to the caller's contract above.
    let r = unsafe { libc::ioctl(fd, cmd as _, arg) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

/// `ioctl(fd, NIOCCTRL, hdr)`.
///
/// # Safety
/// `hdr.nr_body` and `hdr.nr_options` (and the chain behind it) must satisfy the
/// contract of [`ioctl_raw`].
pub unsafe fn nioctrl(fd: RawFd, hdr: &mut NmreqHeader) -> Result<(), Errno> {
    // SAFETY: hdr is a valid 88-byte header; the pointers inside are the caller's duty.
    unsafe { ioctl_raw(fd, NIOCCTRL, (hdr as *mut NmreqHeader).cast()) }.map(|_| ())
}

/// `ioctl(fd, NIOCTXSYNC, NULL)`.
pub fn txsync(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: the sync ioctls take no argument; NULL is what netmap apps pass.
    unsafe { ioctl_raw(fd, NIOCTXSYNC, std::ptr::null_mut()) }.map(|_| ())
}

/// `ioctl(fd, NIOCRXSYNC, NULL)`.
pub fn rxsync(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: the sync ioctls take no argument; NULL is what netmap apps pass.
    unsafe { ioctl_raw(fd, NIOCRXSYNC, std::ptr::null_mut()) }.map(|_| ())
}

/// `poll()` on one fd: `Ok(revents)` (0 on timeout). EINTR is retried.
pub fn poll_fd(fd: RawFd, events: i16, timeout_ms: i32) -> io::Result<i16> {
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: pfd is a valid, exclusively borrowed pollfd array of length 1.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(if r == 0 { 0 } else { pfd.revents });
    }
}

/// Human-readable poll mask ("POLLIN|POLLERR").
pub fn poll_mask_name(m: i16) -> String {
    let names = [
        (libc::POLLIN, "POLLIN"),
        (libc::POLLOUT, "POLLOUT"),
        (libc::POLLERR, "POLLERR"),
        (libc::POLLHUP, "POLLHUP"),
        (libc::POLLNVAL, "POLLNVAL"),
        (libc::POLLRDNORM, "POLLRDNORM"),
        (libc::POLLWRNORM, "POLLWRNORM"),
    ];
    let v: Vec<&str> = names
        .iter()
        .filter(|(b, _)| m & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if v.is_empty() {
        format!("0x{m:x}")
    } else {
        v.join("|")
    }
}

/// A `MAP_SHARED` mapping of the netmap region (memmap2's `MmapRaw`); unmapped on drop.
///
/// All access goes through raw pointers (volatile or atomic): the daemon and the peer
/// process write this memory concurrently, so no Rust reference to it is ever formed
/// except `&AtomicU32` for the ring indices.
pub struct Mapping {
    /// Owns the mapping (unmapped when dropped); `ptr` is its address.
    _map: memmap2::MmapRaw,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: `ptr` is the MmapRaw's own address (kept beside it for speed); the mapping is
// plain shared memory that other processes write anyway, and this crate only touches
// it through bounds-checked volatile or atomic accesses.
unsafe impl Send for Mapping {}
// SAFETY: see the Send impl: no method hands out non-atomic references into the region.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)`, as libnetmap does.
    pub fn map(fd: &OwnedFd, len: usize) -> io::Result<Mapping> {
        let map = memmap2::MmapOptions::new()
            .len(len)
            .map_raw(fd.as_raw_fd())
            .map_err(|e| io::Error::new(e.kind(), format!("mmap {len} bytes: {e}")))?;
        Ok(Mapping {
            ptr: map.as_mut_ptr(),
            len,
            _map: map,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Base address (for diagnostics and pointer arithmetic checks).
    pub fn base(&self) -> *mut u8 {
        self.ptr
    }

    /// Pointer to `[off, off+size)`, panicking if that leaves the mapping: a bad
    /// offset from the daemon must fail the test, not crash with SIGSEGV/SIGBUS.
    pub fn at(&self, off: usize, size: usize) -> *mut u8 {
        assert!(
            off.checked_add(size).is_some_and(|end| end <= self.len),
            "access [{off}, +{size}) outside the {}-byte netmap mapping",
            self.len
        );
        // SAFETY: off + size <= len, so the result stays inside the mapping.
        unsafe { self.ptr.add(off) }
    }

    pub fn read_u16(&self, off: usize) -> u16 {
        // SAFETY: `at` checked bounds; the region is always mapped and readable; volatile
        // because other processes write it.
        unsafe { self.at(off, 2).cast::<u16>().read_volatile() }
    }
    pub fn read_u32(&self, off: usize) -> u32 {
        // SAFETY: as in read_u16.
        unsafe { self.at(off, 4).cast::<u32>().read_volatile() }
    }
    pub fn read_u64(&self, off: usize) -> u64 {
        // SAFETY: as in read_u16.
        unsafe { self.at(off, 8).cast::<u64>().read_volatile() }
    }
    pub fn read_i64(&self, off: usize) -> i64 {
        self.read_u64(off) as i64
    }
    pub fn write_u16(&self, off: usize, v: u16) {
        // SAFETY: `at` checked bounds; the mapping is PROT_WRITE and shared memory,
        // writing it cannot break any Rust invariant.
        unsafe { self.at(off, 2).cast::<u16>().write_volatile(v) }
    }
    pub fn write_u32(&self, off: usize, v: u32) {
        // SAFETY: as in write_u16.
        unsafe { self.at(off, 4).cast::<u32>().write_volatile(v) }
    }
    pub fn write_u64(&self, off: usize, v: u64) {
        // SAFETY: as in write_u16.
        unsafe { self.at(off, 8).cast::<u64>().write_volatile(v) }
    }

    /// The u32 at `off` as an atomic (ring head/cur/tail: the netmap_user.h barriers).
    pub fn atomic_u32(&self, off: usize) -> &std::sync::atomic::AtomicU32 {
        let p = self.at(off, 4);
        assert!(p as usize & 3 == 0, "misaligned ring index at offset {off}");
        // SAFETY: in bounds, 4-byte aligned, and the mapping outlives the borrow of
        // self; AtomicU32 has the layout of u32 and tolerates concurrent writers.
        unsafe { &*p.cast::<std::sync::atomic::AtomicU32>() }
    }

    /// Copies `data` into the region at `off` (like memcpy into a netmap buffer).
    pub fn write_bytes(&self, off: usize, data: &[u8]) {
        let p = self.at(off, data.len());
        // SAFETY: destination is in bounds of the writable mapping and cannot overlap
        // `data` (a Rust-owned slice outside the mapping, or a copy of it).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) }
    }

    /// Copies `out.len()` bytes from the region at `off` into `out`.
    pub fn read_bytes(&self, off: usize, out: &mut [u8]) {
        let p = self.at(off, out.len());
        // SAFETY: source in bounds of the readable mapping; `out` is a distinct Rust
        // buffer, so the ranges do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(p, out.as_mut_ptr(), out.len()) }
    }
}
