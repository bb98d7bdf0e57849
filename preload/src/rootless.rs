//! The rootless front end, client side: with `NETMAPD_SOCKET` set, `/dev/netmap` is not
//! a kernel device but the daemon's Unix socket, and this library plays the kernel's
//! part of the device file.
//!
//! * `open` (and `open64`, `openat`, their fortify variants, a symlink to the device)
//!   returns a `SOCK_SEQPACKET` connection to the daemon: that descriptor is the netmap
//!   descriptor (its last close releases the registration, as with a device);
//! * ioctls of netmap's type go to the daemon as requests, NIOCCTRL's body and option
//!   chain marshalled here ([`marshal_ctrl`]) and what the daemon wrote copied back;
//!   program memory is read and written with `process_vm_readv/writev` on this very
//!   process, so a bad pointer gives EFAULT as with the kernel, not a crash;
//! * `mmap` maps the region's memfd, which the daemon passes once per process;
//! * `poll`/`select` with such descriptors answer from the rings or from the daemon and
//!   sleep on the connection, which the daemon makes readable with a token when a
//!   descriptor may have become ready; `epoll` sets are rewritten the same way
//!   ([`epoll_wait`](super::epoll_wait));
//! * `dup`s share the table entry; after `fork` the child shares the connection, as it
//!   shares a device descriptor; after `exec` an inherited descriptor is recognised by
//!   its peer address and adopted at its first netmap ioctl or mmap.
//!
//! Replies travel on a socket pair made per request (one end passed with SCM_RIGHTS),
//! so threads and forked processes sharing a descriptor never read each other's.

use std::ffi::{CStr, CString};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::sync::OnceLock;

use libc::{c_int, c_void, pollfd};
use netmap_abi as abi;
use netmap_abi::sock::{self as proto, Segment, SockReq};
use nix::sys::socket::{
    connect, getpeername, recvmsg, sendmsg, socket, socketpair, AddressFamily, ControlMessage,
    ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr,
};
use std::os::unix::ffi::OsStrExt;

use super::{set_errno, MAX_FD};

/// The daemon's socket, when this process runs under the preload front end.
pub(crate) fn socket_path() -> Option<&'static CStr> {
    static P: OnceLock<Option<CString>> = OnceLock::new();
    P.get_or_init(|| {
        std::env::var_os(proto::SOCKET_ENV)
            .filter(|v| !v.is_empty())
            .and_then(|v| CString::new(std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str())).ok())
    })
    .as_deref()
}

fn device_path() -> &'static [u8] {
    static P: OnceLock<Vec<u8>> = OnceLock::new();
    P.get_or_init(|| {
        std::env::var("NETMAPD_DEVICE")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "/dev/netmap".into())
            .into_bytes()
    })
}

/// Descriptors that are connections to the daemon (1), by number.
static OURS: [AtomicU8; MAX_FD] = [const { AtomicU8::new(0) }; MAX_FD];

pub(crate) fn is_ours(fd: c_int) -> bool {
    usize::try_from(fd)
        .ok()
        .and_then(|i| OURS.get(i))
        .is_some_and(|o| o.load(Ordering::Acquire) == 1)
}

pub(crate) fn set_ours(fd: c_int, on: bool) {
    if let Some(o) = usize::try_from(fd).ok().and_then(|i| OURS.get(i)) {
        o.store(u8::from(on), Ordering::Release);
    }
}

/// Lexically normalises an absolute path (`.`, `..`, repeated slashes).
fn normalize(p: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in p.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = Vec::with_capacity(p.len());
    for c in parts {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// Whether `path` (relative to `dirfd`) names the netmap device, directly or through
/// symbolic links. Costs one `readlink` for a path that is not the device.
pub(crate) fn names_device(dirfd: c_int, path: *const libc::c_char) -> bool {
    if path.is_null() || socket_path().is_none() {
        return false;
    }
    // SAFETY: the caller's path argument, NUL-terminated (open's contract).
    let p = unsafe { CStr::from_ptr(path) }.to_bytes();
    let dev = device_path();
    if p == dev {
        return true;
    }
    let mut cur = if p.first() == Some(&b'/') {
        p.to_vec()
    } else {
        let base = if dirfd == libc::AT_FDCWD {
            std::env::current_dir().ok()
        } else {
            std::fs::read_link(format!("/proc/self/fd/{dirfd}")).ok()
        };
        let Some(base) = base else { return false };
        let mut b = std::os::unix::ffi::OsStrExt::as_bytes(base.as_os_str()).to_vec();
        b.push(b'/');
        b.extend_from_slice(p);
        b
    };
    for _ in 0..16 {
        cur = normalize(&cur);
        if cur == dev {
            return true;
        }
        let os = std::ffi::OsStr::new(std::str::from_utf8(&cur).unwrap_or(""));
        let Ok(t) = std::fs::read_link(os) else {
            return false;
        };
        let t = std::os::unix::ffi::OsStrExt::as_bytes(t.as_os_str()).to_vec();
        cur = if t.first() == Some(&b'/') {
            t
        } else {
            let cut = cur.iter().rposition(|&b| b == b'/').unwrap_or(0);
            let mut b = cur[..=cut].to_vec();
            b.extend_from_slice(&t);
            b
        };
    }
    false
}

/// `open` of the device: a connection to the daemon, or -1 with errno.
pub(crate) fn open_device(flags: c_int) -> c_int {
    let Some(path) = socket_path() else {
        set_errno(libc::ENOENT);
        return -1;
    };
    let cloexec = if flags & libc::O_CLOEXEC != 0 {
        SockFlag::SOCK_CLOEXEC
    } else {
        SockFlag::empty()
    };
    let sock = match socket(AddressFamily::Unix, SockType::SeqPacket, cloexec, None)
        .and_then(|s| Ok((UnixAddr::new(path)?, s)))
    {
        Ok((addr, s)) => match connect(s.as_raw_fd(), &addr) {
            Ok(()) => s,
            Err(e) => {
                eprintln!(
                    "netmapd preload: cannot reach the daemon at {}: {e}",
                    path.to_string_lossy()
                );
                // As opening /dev/netmap without the module: no such device.
                set_errno(libc::ENXIO);
                return -1;
            }
        },
        Err(e) => {
            set_errno(e as c_int);
            return -1;
        }
    };
    let fd = sock.into_raw_fd();
    set_ours(fd, true);
    super::set_reg(fd, None);
    fd
}

/// Whether `fd` is a connection to our daemon that this process did not open itself
/// (inherited across exec, or received): if so it is adopted.
pub(crate) fn adopt(fd: c_int) -> bool {
    let Some(path) = socket_path() else {
        return false;
    };
    if fd < 0 || is_ours(fd) {
        return is_ours(fd);
    }
    let ours = getpeername::<UnixAddr>(fd).is_ok_and(|peer| {
        peer.path()
            .is_some_and(|p| p.as_os_str().as_bytes() == path.to_bytes())
    });
    if !ours {
        return false;
    }
    let ok = request(
        fd,
        &SockReq {
            op: proto::OP_HELLO,
            ..Default::default()
        },
        &[],
        &[],
    )
    .is_ok_and(|r| r.errno == 0);
    if ok {
        set_ours(fd, true);
    }
    ok
}

/// A reply: header fields, argument bytes, segments written, a passed descriptor.
pub(crate) struct Reply {
    pub errno: c_int,
    pub revents: u32,
    pub arg: Vec<u8>,
    pub segs: Vec<Segment>,
    pub fd: Option<OwnedFd>,
}

/// One request on the connection `fd`; `Err(errno)` when the daemon cannot be reached.
pub(crate) fn request(
    fd: c_int,
    req: &SockReq,
    arg: &[u8],
    segs: &[Segment],
) -> Result<Reply, c_int> {
    let msg = proto::encode_req(req, arg, segs);
    if msg.len() > proto::MSG_MAX {
        return Err(libc::E2BIG);
    }
    let (mine, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| e as c_int)?;
    let pass = [theirs.as_raw_fd()];
    let cm = [ControlMessage::ScmRights(&pass)];
    loop {
        match sendmsg::<()>(fd, &[IoSlice::new(&msg)], &cm, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => break,
            Err(nix::Error::EINTR) => continue,
            Err(e) => {
                return Err(match e {
                    nix::Error::EPIPE | nix::Error::ECONNRESET | nix::Error::ENOTCONN => {
                        libc::ENXIO
                    }
                    e => e as c_int,
                })
            }
        }
    }
    // Only the daemon holds the other end now: its death ends the wait below.
    drop(theirs);
    let mut buf = vec![0u8; proto::MSG_MAX];
    loop {
        let mut cmsg = nix::cmsg_space!([RawFd; 2]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(
            mine.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => {
                let mut passed = None;
                if let Ok(cms) = m.cmsgs() {
                    for c in cms {
                        if let ControlMessageOwned::ScmRights(v) = c {
                            for f in v {
                                // SAFETY: received with SCM_RIGHTS: new and unowned.
                                let f = unsafe { OwnedFd::from_raw_fd(f) };
                                if passed.is_none() {
                                    passed = Some(f);
                                }
                            }
                        }
                    }
                }
                let n = m.bytes;
                if n == 0 {
                    return Err(libc::ENXIO);
                }
                let (h, arg, segs) = proto::decode_reply(&buf[..n]).map_err(|_| libc::EIO)?;
                return Ok(Reply {
                    errno: h.errno as c_int,
                    revents: h.revents,
                    arg,
                    segs,
                    fd: passed,
                });
            }
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e as c_int),
        }
    }
}

/// Reads `len` bytes of this process's memory at `addr`, or `None` where a read would
/// fault (as the kernel's copy_from_user returns EFAULT).
pub(crate) fn peek(addr: u64, len: usize) -> Option<Vec<u8>> {
    let mut v = vec![0u8; len];
    if len == 0 {
        return Some(v);
    }
    let local = libc::iovec {
        iov_base: v.as_mut_ptr().cast(),
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut c_void,
        iov_len: len,
    };
    // SAFETY: local is our buffer of len bytes; the kernel checks the remote range.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    (n == len as isize).then_some(v)
}

/// Writes `data` at `addr` in this process; false where a write would fault.
pub(crate) fn poke(addr: u64, data: &[u8]) -> bool {
    if data.is_empty() {
        return true;
    }
    let local = libc::iovec {
        iov_base: data.as_ptr() as *mut c_void,
        iov_len: data.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut c_void,
        iov_len: data.len(),
    };
    // SAFETY: local is our buffer; the kernel checks the remote range.
    let n = unsafe { libc::process_vm_writev(libc::getpid(), &local, 1, &remote, 1, 0) };
    n == data.len() as isize
}

/// NIOCCTRL's pointed-to memory, as the daemon's copy-in will read it: the body, then
/// each option's header and known body. Stops at a pointer that faults (the daemon then
/// fails with EFAULT there) or one already taken (a loop, which the daemon bounds).
fn marshal_ctrl(hdr: &[u8]) -> Vec<Segment> {
    use zerocopy::FromBytes;
    let Ok(h) = abi::NmreqHeader::read_from_bytes(hdr) else {
        return Vec::new();
    };
    let mut segs = Vec::new();
    let bsz = abi::req_body_size(h.nr_reqtype);
    if bsz > 0 && h.nr_body != 0 {
        if let Some(b) = peek(h.nr_body, bsz) {
            segs.push(Segment {
                addr: h.nr_body,
                bytes: b,
            });
        }
    }
    let mut p = h.nr_options;
    while p != 0 && segs.len() < proto::SEG_MAX as usize {
        if segs.iter().any(|s| s.addr == p) {
            break;
        }
        let Some(raw) = peek(p, abi::NMREQ_OPTION_SIZE) else {
            break;
        };
        let Ok(o) = abi::NmreqOption::read_from_bytes(&raw) else {
            break;
        };
        let body = abi::opt_body_size(o.nro_reqtype, o.nro_size)
            .unwrap_or(0)
            .min(abi::NETMAP_REQ_MAXSIZE as u64) as usize;
        let bytes = peek(p, abi::NMREQ_OPTION_SIZE + body).unwrap_or(raw);
        segs.push(Segment { addr: p, bytes });
        p = o.nro_next;
    }
    segs
}

/// A netmap ioctl on a connection: the daemon answers; returns the ioctl's result
/// (0 or -1 with errno).
///
/// # Safety
/// `arg` is the caller's ioctl argument.
pub(crate) unsafe fn ioctl(fd: c_int, cmd: u32, arg: *mut c_void) -> c_int {
    let size = abi::ioc_size(cmd);
    let argb = if size == 0 {
        Vec::new()
    } else {
        match peek(arg as usize as u64, size) {
            Some(b) => b,
            None => {
                set_errno(libc::EFAULT);
                return -1;
            }
        }
    };
    let segs = if cmd == abi::NIOCCTRL {
        marshal_ctrl(&argb)
    } else {
        Vec::new()
    };
    let req = SockReq {
        op: proto::OP_IOCTL,
        cmd,
        ..Default::default()
    };
    let rep = match request(fd, &req, &argb, &segs) {
        Ok(r) => r,
        Err(e) => {
            set_errno(e);
            return -1;
        }
    };
    // Only where the request's own segments were: the daemon is trusted no more than
    // needed.
    for s in &rep.segs {
        if segs
            .iter()
            .any(|m| m.addr == s.addr && m.bytes.len() == s.bytes.len())
        {
            poke(s.addr, &s.bytes);
        }
    }
    if rep.errno != 0 {
        set_errno(rep.errno);
        return -1;
    }
    if size > 0 && rep.arg.len() == size && !poke(arg as usize as u64, &rep.arg) {
        set_errno(libc::EFAULT);
        return -1;
    }
    0
}

/// The daemon's poll of a connection: ready events, and with `arm` a token on the
/// connection later if none is ready now. A dead daemon reads as an error.
pub(crate) fn daemon_poll(fd: c_int, events: i16, arm: bool) -> i16 {
    let req = SockReq {
        op: proto::OP_POLL,
        events: events as u16 as u32,
        arm: u32::from(arm),
        ..Default::default()
    };
    match request(fd, &req, &[], &[]) {
        Ok(r) => r.revents as i16,
        Err(_) => libc::POLLERR | libc::POLLHUP,
    }
}

/// Reads every wake-up token waiting on a connection.
pub(crate) fn drain(fd: c_int) {
    let mut b = [0u8; 64];
    loop {
        // SAFETY: b is a valid buffer of its length.
        let n = unsafe { libc::recv(fd, b.as_mut_ptr().cast(), b.len(), libc::MSG_DONTWAIT) };
        if n <= 0 {
            return;
        }
    }
}

/// The region's memfd, asked of the daemon once per process (children after fork
/// inherit it).
static REGION_FD: AtomicI32 = AtomicI32::new(-1);

pub(crate) fn region_fd(fd: c_int) -> Option<c_int> {
    let f = REGION_FD.load(Ordering::Acquire);
    if f >= 0 {
        return Some(f);
    }
    let rep = request(
        fd,
        &SockReq {
            op: proto::OP_MAP,
            ..Default::default()
        },
        &[],
        &[],
    )
    .ok()?;
    let mfd = rep.fd?;
    let raw = mfd.as_raw_fd();
    match REGION_FD.compare_exchange(-1, raw, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            std::mem::forget(mfd);
            Some(raw)
        }
        Err(other) => Some(other),
    }
}

/// Whether `fd` is the region's memfd (which a program must not close under us: it
/// never sees it, but a closefrom()-style sweep might).
pub(crate) fn is_region_fd(fd: c_int) -> bool {
    fd >= 0 && REGION_FD.load(Ordering::Acquire) == fd
}

/// `poll` over a set holding connections, none of them answerable in process: each
/// connection's readiness from the daemon, the sleep on the connections (for tokens)
/// and on the other descriptors, in the kernel.
///
/// # Safety
/// `sigmask` is null or a valid signal set.
pub(crate) unsafe fn poll_set(
    set: &mut [pollfd],
    deadline: Option<std::time::Instant>,
    sigmask: *const libc::sigset_t,
) -> c_int {
    let ours: Vec<bool> = set.iter().map(|p| is_ours(p.fd)).collect();
    let mut arm = true;
    loop {
        let mut n = 0;
        for (p, &o) in set.iter_mut().zip(&ours) {
            p.revents = 0;
            if o {
                drain(p.fd);
                p.revents = ready_events(p.fd, p.events, arm);
                n += c_int::from(p.revents != 0);
            }
        }
        let mut kset: Vec<pollfd> = set
            .iter()
            .zip(&ours)
            .map(|(p, &o)| pollfd {
                fd: p.fd,
                events: if o { libc::POLLIN } else { p.events },
                revents: 0,
            })
            .collect();
        let (tmo, zero);
        let tp = if n > 0 || !arm {
            zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            &zero as *const libc::timespec
        } else if let Some(d) = deadline {
            let left = d.saturating_duration_since(std::time::Instant::now());
            tmo = libc::timespec {
                tv_sec: left.as_secs() as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            };
            &tmo as *const libc::timespec
        } else {
            std::ptr::null()
        };
        // SAFETY: kset is a valid array; tp null or valid; sigmask per the contract.
        let k = unsafe {
            (super::real().ppoll)(kset.as_mut_ptr(), kset.len() as libc::nfds_t, tp, sigmask)
        };
        if k < 0 {
            return k;
        }
        let mut others = 0;
        for ((p, q), &o) in set.iter_mut().zip(&kset).zip(&ours) {
            if !o {
                p.revents = q.revents;
                others += c_int::from(q.revents != 0);
            }
        }
        if n > 0 || others > 0 || !arm {
            if n == 0 && others > 0 {
                // Woken by another descriptor: ours as they are now, without arming.
                for (p, &o) in set.iter_mut().zip(&ours) {
                    if o {
                        p.revents = ready_events(p.fd, p.events, false);
                        n += c_int::from(p.revents != 0);
                    }
                }
            }
            return n + others;
        }
        if k == 0 {
            // Timed out.
            return 0;
        }
        // A token: look again (and arm again if still nothing).
        arm = deadline.is_none_or(|d| std::time::Instant::now() < d);
    }
}

/// One connection's ready events for `events`: the in-process check when its rings
/// allow, else the daemon's.
pub(crate) fn ready_events(fd: c_int, events: i16, arm: bool) -> i16 {
    if let (Some(rings), Some(mem)) = (super::reg(fd).and_then(super::Reg::rings), super::region())
    {
        if let Some(r) = super::check(fd, rings, events, mem) {
            if r != 0 || !arm {
                return r;
            }
        }
    }
    let r = daemon_poll(fd, events, arm);
    r & (events | libc::POLLERR | libc::POLLHUP | libc::POLLNVAL)
}

/// A connection in an epoll set: what the program asked for and the data it gave.
#[derive(Clone, Copy)]
struct EpollEntry {
    epfd: c_int,
    fd: c_int,
    events: u32,
    data: u64,
}

/// Connections in epoll sets. Few and rarely changed: a mutex is enough (parking_lot:
/// no poisoning to handle in a library running inside someone else's program).
static EPOLL: parking_lot::Mutex<Vec<EpollEntry>> = parking_lot::Mutex::new(Vec::new());

/// `epoll_ctl` on a connection: the kernel watches the connection for tokens
/// (EPOLLIN, with the program's data and its EPOLLET/EPOLLONESHOT), and the entry
/// remembers which events the program wants; `epoll_wait` answers them.
///
/// # Safety
/// `ev` is null or a valid epoll_event.
pub(crate) unsafe fn epoll_ctl(
    real: unsafe extern "C" fn(c_int, c_int, c_int, *mut libc::epoll_event) -> c_int,
    epfd: c_int,
    op: c_int,
    fd: c_int,
    ev: *mut libc::epoll_event,
) -> c_int {
    // SAFETY: the caller's event, null or valid.
    let user = unsafe { ev.as_ref() }.copied();
    let mut kev = user.map(|e| libc::epoll_event {
        events: libc::EPOLLIN as u32
            | (e.events & (libc::EPOLLET | libc::EPOLLONESHOT | libc::EPOLLWAKEUP) as u32),
        u64: e.u64,
    });
    let kp = kev
        .as_mut()
        .map_or(std::ptr::null_mut(), |e| e as *mut libc::epoll_event);
    // SAFETY: epfd/fd are the caller's; kp null or a valid event.
    let r = unsafe { real(epfd, op, fd, kp) };
    if r != 0 {
        return r;
    }
    let mut t = EPOLL.lock();
    t.retain(|e| !(e.epfd == epfd && e.fd == fd));
    if op != libc::EPOLL_CTL_DEL {
        if let Some(u) = user {
            t.push(EpollEntry {
                epfd,
                fd,
                events: u.events,
                data: u.u64,
            });
        }
    }
    0
}

/// Forgets a closed descriptor (as a connection, or as an epoll set).
pub(crate) fn epoll_forget(fd: c_int) {
    let mut t = EPOLL.lock();
    if !t.is_empty() {
        t.retain(|e| e.epfd != fd && e.fd != fd);
    }
}

fn epoll_entries(epfd: c_int) -> Vec<EpollEntry> {
    let t = EPOLL.lock();
    if t.is_empty() {
        return Vec::new();
    }
    t.iter().filter(|e| e.epfd == epfd).copied().collect()
}

/// Which of a connection's wanted epoll events are ready.
fn epoll_ready(e: &EpollEntry, arm: bool) -> u32 {
    let want = (e.events
        & (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDNORM | libc::EPOLLWRNORM) as u32)
        as i16;
    drain(e.fd);
    let r = ready_events(e.fd, want, arm) as u16 as u32;
    r & (e.events | (libc::EPOLLERR | libc::EPOLLHUP) as u32)
}

/// `epoll_wait`/`epoll_pwait`/`epoll_pwait2` on a set holding connections, until
/// `deadline` (`None`: no limit): ready connections are
/// answered from the daemon (or the rings) with the program's events and data; the
/// kernel's events for connections are tokens, which only make us look again.
/// `None`: no connection in this set, the caller takes the plain path.
///
/// # Safety
/// `events` holds `max` entries; `sigmask` is null or valid.
pub(crate) unsafe fn epoll_wait(
    real: &dyn Fn(*mut libc::epoll_event, c_int, c_int) -> c_int,
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    deadline: Option<std::time::Instant>,
) -> Option<c_int> {
    let mine = epoll_entries(epfd);
    if mine.is_empty() || max <= 0 || events.is_null() {
        return None;
    }
    // SAFETY: the caller's array of max events.
    let out = unsafe { std::slice::from_raw_parts_mut(events, max as usize) };
    let is_token = |ev: &libc::epoll_event| mine.iter().any(|e| e.data == ev.u64);
    let mut arm = true;
    loop {
        let mut n = 0usize;
        for e in &mine {
            if n == out.len() {
                break;
            }
            let r = epoll_ready(e, arm);
            if r != 0 {
                out[n] = libc::epoll_event {
                    events: r,
                    u64: e.data,
                };
                n += 1;
            }
        }
        let tmo = if n > 0 || !arm {
            0
        } else {
            match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    left.as_millis().min(i32::MAX as u128) as c_int
                        + c_int::from(left.subsec_nanos() % 1_000_000 != 0)
                }
            }
        };
        let mut tmp = vec![libc::epoll_event { events: 0, u64: 0 }; out.len() - n];
        let k = if tmp.is_empty() {
            0
        } else {
            real(tmp.as_mut_ptr(), tmp.len() as c_int, tmo)
        };
        if k < 0 {
            return Some(if n > 0 { n as c_int } else { k });
        }
        for ev in tmp.iter().take(k as usize) {
            if !is_token(ev) {
                out[n] = *ev;
                n += 1;
            }
        }
        if n > 0 || !arm {
            return Some(n as c_int);
        }
        if k == 0 {
            return Some(0);
        }
        arm = deadline.is_none_or(|d| std::time::Instant::now() < d);
    }
}
