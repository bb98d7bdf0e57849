//! The rootless front end: no kernel device at all. The preload library turns a
//! program's `open("/dev/netmap")` into a connection to this Unix socket, and its
//! ioctls, polls and mmaps into requests on it (protocol: [`netmap_abi::sock`]).
//!
//! * a connection → a new control-plane descriptor, released when the connection
//!   ends (the last copy of the program's descriptor closed, or the program died);
//! * ioctl → the control plane, over the program's memory as marshalled by the library
//!   (`marshal::Marshalled`);
//! * poll → answered at once; a not-ready answer with `arm` leaves a waker that writes a
//!   token on the connection, which is what the program's `poll`/`epoll` sleeps on;
//! * mmap → the region's memfd, passed with `SCM_RIGHTS`.
//!
//! One thread per connection: requests of one descriptor are handled in order, as the
//! kernel serialises a device file's ioctls per caller anyway, and a slow request of one
//! program never holds up another's.
#![allow(unsafe_code)]

mod marshal;

use crate::ctrl::{ControlPlane, FdId, PollWaker};
use marshal::Marshalled;
use netmap_abi::sock as proto;
use nix::sys::socket::{
    accept4, bind, getsockopt, listen, recvmsg, sendmsg, shutdown, socket, sockopt, AddressFamily,
    Backlog, ControlMessage, ControlMessageOwned, MsgFlags, Shutdown, SockFlag, SockType, UnixAddr,
};
use parking_lot::Mutex;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

/// The running socket front end.
pub struct SockFrontend {
    path: PathBuf,
    listener: Arc<OwnedFd>,
    conns: Conns,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

/// One client connection (one descriptor).
struct Conn {
    sock: OwnedFd,
    /// Set once the descriptor's registration has been released.
    released: std::sync::atomic::AtomicBool,
}

type Conns = Arc<Mutex<Vec<Weak<Conn>>>>;

/// Lets the release of every connection its program has already closed finish before
/// a control request goes ahead. A program's `close()` returns once the daemon's end
/// reads EOF, but the connection's thread may not have run yet; the kernel, by
/// contrast, has released the device before close returns, and programs rely on it (a
/// pipe closed on both ends is gone for the next REGISTER).
fn settle_closes(conns: &Conns, me: &Conn) {
    let others: Vec<Arc<Conn>> = conns.lock().iter().filter_map(Weak::upgrade).collect();
    for c in others {
        if std::ptr::eq(Arc::as_ptr(&c), me)
            || c.released.load(std::sync::atomic::Ordering::Acquire)
        {
            continue;
        }
        let mut p = libc::pollfd {
            fd: c.sock.as_raw_fd(),
            events: libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no wait.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        if n != 1 || p.revents & (libc::POLLRDHUP | libc::POLLHUP) == 0 {
            continue;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while !c.released.load(std::sync::atomic::Ordering::Acquire) {
            if std::time::Instant::now() > deadline {
                tracing::debug!("a closed connection's release is slow; going ahead");
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct SockError {
    what: String,
    #[source]
    source: std::io::Error,
}

fn err(what: impl Into<String>) -> impl FnOnce(nix::Error) -> SockError {
    let what = what.into();
    move |e| SockError {
        what,
        source: std::io::Error::from_raw_os_error(e as i32),
    }
}

/// Wakes a poller by writing a token on its connection. A full socket buffer already
/// holds tokens: losing this one loses nothing.
struct SockWaker(Arc<Conn>);

impl PollWaker for SockWaker {
    fn wake(self: Box<Self>) {
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        if let Err(e) = nix::sys::socket::send(self.0.sock.as_raw_fd(), &[proto::WAKE_TOKEN], flags)
        {
            if e != nix::Error::EAGAIN {
                tracing::debug!(%e, "wake-up token not delivered");
            }
        }
    }
}

impl SockFrontend {
    /// Listens on `path` (a stale socket there is replaced; mode 0600: only the user the
    /// daemon runs as, who is the one running the programs).
    pub fn start(cp: Arc<ControlPlane>, path: &Path) -> Result<Self, SockError> {
        if std::fs::symlink_metadata(path).is_ok() {
            std::fs::remove_file(path).map_err(|source| SockError {
                what: format!("removing stale {}", path.display()),
                source,
            })?;
        }
        let l = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(err("socket(AF_UNIX, SOCK_SEQPACKET)"))?;
        let addr = UnixAddr::new(path).map_err(err(format!("socket path {}", path.display())))?;
        bind(l.as_raw_fd(), &addr).map_err(err(format!("bind {}", path.display())))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
            |source| SockError {
                what: format!("chmod {}", path.display()),
                source,
            },
        )?;
        listen(&l, Backlog::new(512).unwrap_or(Backlog::MAXCONN)).map_err(err("listen"))?;
        let listener = Arc::new(l);
        let conns: Conns = Arc::default();
        let (l2, c2) = (listener.clone(), conns.clone());
        let acceptor = std::thread::Builder::new()
            .name("sock-accept".into())
            .spawn(move || accept_loop(cp, l2, c2))
            .map_err(|source| SockError {
                what: "starting the accept thread".into(),
                source,
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            listener,
            conns,
            acceptor: Some(acceptor),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting, ends every connection (their registrations are released) and
    /// removes the socket file.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = shutdown(self.listener.as_raw_fd(), Shutdown::Both);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        for c in self.conns.lock().drain(..) {
            if let Some(c) = c.upgrade() {
                let _ = shutdown(c.sock.as_raw_fd(), Shutdown::Both);
            }
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for SockFrontend {
    fn drop(&mut self) {
        if self.acceptor.is_some() {
            self.shutdown();
        }
    }
}

fn accept_loop(cp: Arc<ControlPlane>, l: Arc<OwnedFd>, conns: Conns) {
    loop {
        let raw = match accept4(l.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
            Ok(fd) => fd,
            Err(nix::Error::EINTR | nix::Error::ECONNABORTED) => continue,
            Err(nix::Error::EMFILE | nix::Error::ENFILE | nix::Error::ENOMEM) => {
                tracing::warn!("out of descriptors accepting a netmap client; retrying");
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
            Err(e) => {
                tracing::debug!(%e, "accept loop ends");
                return;
            }
        };
        let conn = Arc::new(Conn {
            // SAFETY: accept4 just returned this descriptor; nothing else owns it.
            sock: unsafe { OwnedFd::from_raw_fd(raw) },
            released: false.into(),
        });
        {
            let mut c = conns.lock();
            c.retain(|w| w.strong_count() > 0);
            c.push(Arc::downgrade(&conn));
        }
        let (cp2, conns2) = (cp.clone(), conns.clone());
        if let Err(e) = std::thread::Builder::new()
            .name("sock-conn".into())
            .spawn(move || serve(cp2, conn, conns2))
        {
            tracing::error!(%e, "cannot start a thread for a netmap client; refusing it");
        }
    }
}

/// One connection: one descriptor, its requests in order, released at the end.
fn serve(cp: Arc<ControlPlane>, conn: Arc<Conn>, conns: Conns) {
    let fd = cp.open();
    tracing::debug!(fd, "rootless open");
    let mut buf = vec![0u8; proto::MSG_MAX];
    loop {
        let mut cmsg = nix::cmsg_space!([RawFd; 4]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let (n, truncated, fds) = match recvmsg::<()>(
            conn.sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => {
                let mut fds = Vec::new();
                if let Ok(cm) = m.cmsgs() {
                    for c in cm {
                        if let ControlMessageOwned::ScmRights(v) = c {
                            // SAFETY: descriptors received with SCM_RIGHTS are new in
                            // this process and owned by nobody else.
                            fds.extend(v.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
                        }
                    }
                }
                let trunc = m
                    .flags
                    .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC);
                (m.bytes, trunc, fds)
            }
            Err(nix::Error::EINTR) => continue,
            Err(e) => {
                tracing::debug!(fd, %e, "client connection failed");
                break;
            }
        };
        if n == 0 && fds.is_empty() {
            break;
        }
        let mut fds = fds.into_iter();
        let Some(reply) = fds.next() else {
            tracing::warn!(fd, "request without a reply socket; ignored");
            continue;
        };
        if truncated {
            tracing::warn!(fd, "oversized request; refused");
            send_reply(&reply, libc::E2BIG as u32, 0, &[], &[], None);
            continue;
        }
        handle(&cp, fd, &conn, &conns, &buf[..n], reply);
    }
    tracing::debug!(fd, "rootless close");
    {
        let _closing = cp.closing();
        cp.release(fd);
    }
    conn.released
        .store(true, std::sync::atomic::Ordering::Release);
}

/// The pid of the process that made the reply socket (its creator, i.e. the caller).
fn caller_pid(reply: &OwnedFd) -> Option<u32> {
    getsockopt(reply, sockopt::PeerCredentials)
        .ok()
        .and_then(|c| u32::try_from(c.pid()).ok())
        .filter(|&p| p != 0)
}

/// Whether a NIOCCTRL header asks to start a sync loop, which runs inside the request
/// until stopped (by a later request on the same descriptor).
fn starts_kloop(cmd: u32, arg: &[u8]) -> bool {
    use zerocopy::FromBytes;
    cmd == netmap_abi::NIOCCTRL
        && netmap_abi::NmreqHeader::read_from_bytes(arg)
            .is_ok_and(|h| h.nr_reqtype == netmap_abi::NETMAP_REQ_SYNC_KLOOP_START)
}

fn handle(
    cp: &Arc<ControlPlane>,
    fd: FdId,
    conn: &Arc<Conn>,
    conns: &Conns,
    msg: &[u8],
    reply: OwnedFd,
) {
    let Ok((req, arg, segs)) = proto::decode_req(msg) else {
        tracing::warn!(fd, len = msg.len(), "malformed request; refused");
        send_reply(&reply, libc::EINVAL as u32, 0, &[], &[], None);
        return;
    };
    match req.op {
        proto::OP_IOCTL => {
            let expected = netmap_abi::ioc_size(req.cmd);
            if arg.len() != expected {
                tracing::warn!(
                    fd,
                    cmd = format_args!("{:#x}", req.cmd),
                    len = arg.len(),
                    expected,
                    "ioctl argument of the wrong size; refused"
                );
                send_reply(&reply, libc::EINVAL as u32, 0, &[], &[], None);
                return;
            }
            if req.cmd != netmap_abi::NIOCTXSYNC && req.cmd != netmap_abi::NIOCRXSYNC {
                settle_closes(conns, conn);
            }
            // Only NIOCCTRL reads the caller's memory, and only it may need the caller
            // itself (the CSB arrays): syncs skip the getsockopt.
            let pid = (req.cmd == netmap_abi::NIOCCTRL)
                .then(|| caller_pid(&reply))
                .flatten();
            let kloop = starts_kloop(req.cmd, &arg);
            let cp = cp.clone();
            let run = move || {
                let um = Marshalled::new(segs, pid);
                let res = cp.ioctl(fd, req.cmd, &arg, &um);
                let written = um.written();
                match res {
                    Ok(mut out) => {
                        out.resize(arg.len(), 0);
                        send_reply(&reply, 0, 0, &out, &written, None);
                    }
                    Err(e) => send_reply(&reply, e.0 as u32, 0, &[], &written, None),
                }
            };
            if kloop {
                // The loop holds its request until stopped; the stop comes on this
                // same connection, so the loop gets a thread of its own.
                if let Err(e) = std::thread::Builder::new()
                    .name("sock-kloop".into())
                    .spawn(run)
                {
                    tracing::error!(fd, %e, "cannot start a thread for a sync loop");
                }
            } else {
                run();
            }
        }
        proto::OP_POLL => {
            let waker: Option<Box<dyn PollWaker>> = if req.arm != 0 {
                Some(Box::new(SockWaker(conn.clone())))
            } else {
                None
            };
            let revents = cp.poll(fd, req.events, waker);
            send_reply(&reply, 0, revents, &[], &[], None);
        }
        proto::OP_MAP => {
            let len = (cp.region_len() as u64).to_le_bytes();
            send_reply(&reply, 0, 0, &len, &[], Some(cp.region_file().as_raw_fd()));
        }
        proto::OP_HELLO => send_reply(&reply, 0, 0, &[], &[], None),
        op => {
            tracing::warn!(fd, op, "unknown request; refused");
            send_reply(&reply, libc::EINVAL as u32, 0, &[], &[], None);
        }
    }
}

fn send_reply(
    reply: &OwnedFd,
    errno: u32,
    revents: u32,
    arg: &[u8],
    segs: &[proto::Segment],
    pass: Option<RawFd>,
) {
    let msg = proto::encode_reply(
        &proto::SockReply {
            errno,
            revents,
            ..Default::default()
        },
        arg,
        segs,
    );
    let fds;
    let cmsgs: &[ControlMessage] = match pass {
        Some(f) => {
            fds = [f];
            &[ControlMessage::ScmRights(&fds)]
        }
        None => &[],
    };
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
    if let Err(e) = sendmsg::<()>(reply.as_raw_fd(), &[IoSlice::new(&msg)], cmsgs, flags, None) {
        // The caller died or gave a socket it does not read: its problem only.
        tracing::debug!(%e, "reply not delivered");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctrl::CtrlConfig;
    use netmap_pool::PoolConfig;
    use nix::sys::socket::{connect, socketpair};
    use zerocopy::IntoBytes;

    fn start() -> (SockFrontend, PathBuf, Arc<ControlPlane>) {
        let cfg = CtrlConfig {
            pools: PoolConfig {
                if_size: 1024,
                if_num: 16,
                ring_size: 36864,
                ring_num: 32,
                buf_size: 2048,
                buf_num: 4096,
            },
            prefer_huge: false,
            ..CtrlConfig::default()
        };
        let cp = Arc::new(ControlPlane::new(&cfg).expect("control plane"));
        let dir = std::env::temp_dir().join(format!(
            "netmapd-sock-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("s");
        let fe = SockFrontend::start(cp.clone(), &path).expect("front end");
        (fe, dir, cp)
    }

    fn client(path: &Path) -> OwnedFd {
        let s = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .expect("socket");
        connect(s.as_raw_fd(), &UnixAddr::new(path).expect("addr")).expect("connect");
        s
    }

    /// Sends `msg` with a fresh reply socket and returns the reply datagram, if any
    /// comes within a second.
    fn ask(conn: &OwnedFd, msg: &[u8]) -> Option<(Vec<u8>, Option<OwnedFd>)> {
        let (mine, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair");
        let pass = [theirs.as_raw_fd()];
        sendmsg::<()>(
            conn.as_raw_fd(),
            &[IoSlice::new(msg)],
            &[ControlMessage::ScmRights(&pass)],
            MsgFlags::empty(),
            None,
        )
        .expect("sendmsg");
        drop(theirs);
        let mut p = libc::pollfd {
            fd: mine.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, 1000) } != 1 {
            return None;
        }
        let mut buf = vec![0u8; proto::MSG_MAX];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let m = recvmsg::<()>(
            mine.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .ok()?;
        let mut fd = None;
        for c in m.cmsgs().ok()? {
            if let ControlMessageOwned::ScmRights(v) = c {
                // SAFETY: received descriptors are new and unowned.
                fd = v.first().map(|&f| unsafe { OwnedFd::from_raw_fd(f) });
            }
        }
        let n = m.bytes;
        Some((buf[..n].to_vec(), fd))
    }

    fn errno_of(reply: &[u8]) -> u32 {
        proto::decode_reply(reply)
            .expect("well-formed reply")
            .0
            .errno
    }

    #[test]
    fn hostile_requests_get_errors_and_the_daemon_keeps_serving() {
        let (fe, dir, cp) = start();
        let c = client(&fe.path);
        // No reply socket: ignored (nothing to answer on), the connection stays.
        nix::sys::socket::send(c.as_raw_fd(), b"garbage", MsgFlags::empty()).expect("send");
        // Garbage with a reply socket: EINVAL.
        let (r, _) = ask(&c, b"xx").expect("a reply");
        assert_eq!(errno_of(&r), libc::EINVAL as u32);
        // A header whose lengths lie.
        let mut lie = proto::SockReq {
            op: proto::OP_IOCTL,
            cmd: netmap_abi::NIOCCTRL,
            ..Default::default()
        }
        .as_bytes()
        .to_vec();
        lie[16..20].copy_from_slice(&1_000_000u32.to_le_bytes());
        let (r, _) = ask(&c, &lie).expect("a reply");
        assert_eq!(errno_of(&r), libc::EINVAL as u32);
        // An ioctl argument of the wrong size.
        let m = proto::encode_req(
            &proto::SockReq {
                op: proto::OP_IOCTL,
                cmd: netmap_abi::NIOCCTRL,
                ..Default::default()
            },
            &[0; 10],
            &[],
        );
        assert_eq!(
            errno_of(&ask(&c, &m).expect("a reply").0),
            libc::EINVAL as u32
        );
        // An unknown operation.
        let m = proto::encode_req(
            &proto::SockReq {
                op: 99,
                ..Default::default()
            },
            &[],
            &[],
        );
        assert_eq!(
            errno_of(&ask(&c, &m).expect("a reply").0),
            libc::EINVAL as u32
        );
        // A REGISTER whose body is nowhere (no segment; the caller's address is not
        // mapped): EFAULT, as the kernel's copy_from_user.
        let mut hdr = netmap_abi::NmreqHeader {
            nr_version: netmap_abi::NETMAP_API as u16,
            nr_reqtype: netmap_abi::NETMAP_REQ_REGISTER,
            nr_body: 0x10,
            ..Default::default()
        };
        netmap_abi::set_cname(&mut hdr.nr_name, "sk{0");
        let m = proto::encode_req(
            &proto::SockReq {
                op: proto::OP_IOCTL,
                cmd: netmap_abi::NIOCCTRL,
                ..Default::default()
            },
            hdr.as_bytes(),
            &[],
        );
        assert_eq!(
            errno_of(&ask(&c, &m).expect("a reply").0),
            libc::EFAULT as u32
        );
        // A well-formed REGISTER through a segment: the reply carries the body back.
        let body = netmap_abi::NmreqRegister {
            nr_mode: netmap_abi::NR_REG_ALL_NIC,
            ..Default::default()
        };
        let seg = proto::Segment {
            addr: 0x10,
            bytes: body.as_bytes().to_vec(),
        };
        let m = proto::encode_req(
            &proto::SockReq {
                op: proto::OP_IOCTL,
                cmd: netmap_abi::NIOCCTRL,
                ..Default::default()
            },
            hdr.as_bytes(),
            &[seg],
        );
        let (r, _) = ask(&c, &m).expect("a reply");
        let (h, _, segs) = proto::decode_reply(&r).expect("reply");
        assert_eq!(h.errno, 0, "REGISTER through a segment");
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].addr, 0x10);
        use zerocopy::FromBytes;
        let out = netmap_abi::NmreqRegister::read_from_bytes(&segs[0].bytes).expect("body");
        assert!(out.nr_memsize > 0 && out.nr_tx_rings == 1);
        // The region comes as a descriptor of the right size, sealed.
        let m = proto::encode_req(
            &proto::SockReq {
                op: proto::OP_MAP,
                ..Default::default()
            },
            &[],
            &[],
        );
        let (r, fd) = ask(&c, &m).expect("a reply");
        let (_, arg, _) = proto::decode_reply(&r).expect("reply");
        let len = u64::from_le_bytes(arg[..8].try_into().expect("8 bytes"));
        assert_eq!(len, cp.region_len() as u64);
        let f = std::fs::File::from(fd.expect("a memfd"));
        assert_eq!(f.metadata().expect("meta").len(), len);
        assert!(f.set_len(4096).is_err(), "a client shrank the region");
        // Closing the connection releases the registration.
        drop(c);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while !cp.quiescent() {
            assert!(std::time::Instant::now() < deadline, "not released");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        fe.stop();
        let _ = std::fs::remove_dir_all(dir);
    }
}
