//! The syscall layer of the AF_PACKET port: packet sockets, their socket options, the
//! PACKET_MMAP rings they share with the kernel, and the interface ioctls.
//!
//! This is the only module of the port with `unsafe` code. Everything it hands out is
//! safe to use: sockets are [`OwnedFd`]s, and a mapped ring is only reachable through
//! [`netmap_pool::SharedMem`], the same bounds-checked volatile accessor used for the
//! client region (the kernel writes ring memory concurrently, just as clients write the
//! netmap region).
#![allow(unsafe_code)]

use netmap_pool::SharedMem;
use std::ffi::CString;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `ETH_P_ALL`: every protocol.
pub const ETH_P_ALL: u16 = 0x0003;
/// `TPACKET_V2` (enum tpacket_versions).
pub const TPACKET_V2: libc::c_int = 1;
/// `TPACKET_V3`.
pub const TPACKET_V3: libc::c_int = 2;

/// `struct tpacket_req` (TPACKET_V1/V2 rings).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct TpacketReq {
    pub block_size: u32,
    pub block_nr: u32,
    pub frame_size: u32,
    pub frame_nr: u32,
}

/// `struct tpacket_req3` (TPACKET_V3 rings).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct TpacketReq3 {
    pub block_size: u32,
    pub block_nr: u32,
    pub frame_size: u32,
    pub frame_nr: u32,
    pub retire_blk_tov: u32,
    pub sizeof_priv: u32,
    pub feature_req_word: u32,
}

/// `struct sock_filter` (one classic BPF instruction).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Interface index of `name` in the caller's network namespace (`if_nametoindex`).
pub fn if_nametoindex(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: c is a valid NUL-terminated string that outlives the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (idx != 0).then_some(idx)
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `setsockopt` of a plain value on any socket (AF_XDP sockets use it too).
pub(crate) fn setsockopt<T>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    val: &T,
) -> io::Result<()> {
    // SAFETY: val points to a live, initialised T of the length passed; the kernel
    // only reads it, and validates `fd`.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// `getsockopt` of a plain value (integers, structures of integers) on any socket.
pub(crate) fn getsockopt<T: Copy + Default>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<T> {
    let mut v = T::default();
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: v is a writable T of `len` bytes; the kernel writes at most len bytes
    // and any bit pattern is valid for the plain integer types the callers use.
    cvt(unsafe { libc::getsockopt(fd, level, name, (&mut v as *mut T).cast(), &mut len) })?;
    Ok(v)
}

/// `sendto(fd, NULL, 0, MSG_DONTWAIT)`: asks the kernel to transmit what the socket's
/// TX ring holds (a PACKET_MMAP or an AF_XDP ring).
pub(crate) fn kick(fd: RawFd) -> io::Result<()> {
    // SAFETY: a NULL buffer of length 0 and no address are valid for sendto on a
    // socket with a TX ring (the ring supplies the data); the kernel validates `fd`.
    cvt(unsafe {
        libc::sendto(
            fd,
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        ) as libc::c_int
    })
    .map(drop)
}

/// An AF_PACKET socket of type SOCK_RAW (non-blocking, close-on-exec).
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl PacketSocket {
    /// `socket(AF_PACKET, SOCK_RAW, htons(protocol))`. Protocol 0 receives nothing
    /// until a bind names a protocol: the way to set up a ring before traffic flows.
    pub fn new(protocol: u16) -> io::Result<Self> {
        // SAFETY: plain syscall with constant arguments.
        let fd = cvt(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::c_int::from(protocol.to_be()),
            )
        })?;
        // SAFETY: fd was just returned by socket() and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd })
    }

    /// A socket taken from elsewhere (the daemon's, through `pidfd_getfd`); the
    /// caller checked it is an AF_PACKET one.
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self { fd }
    }

    fn setsockopt<T>(&self, level: libc::c_int, name: libc::c_int, val: &T) -> io::Result<()> {
        setsockopt(self.fd.as_raw_fd(), level, name, val)
    }

    fn set_int(&self, name: libc::c_int, v: libc::c_int) -> io::Result<()> {
        self.setsockopt(libc::SOL_PACKET, name, &v)
    }

    /// PACKET_VERSION.
    pub fn set_version(&self, v: libc::c_int) -> io::Result<()> {
        self.set_int(libc::PACKET_VERSION, v)
    }

    /// PACKET_RX_RING with a TPACKET_V3 request.
    pub fn set_rx_ring_v3(&self, req: &TpacketReq3) -> io::Result<()> {
        self.setsockopt(libc::SOL_PACKET, libc::PACKET_RX_RING, req)
    }

    /// PACKET_TX_RING with a V1/V2 request.
    pub fn set_tx_ring(&self, req: &TpacketReq) -> io::Result<()> {
        self.setsockopt(libc::SOL_PACKET, libc::PACKET_TX_RING, req)
    }

    /// PACKET_IGNORE_OUTGOING=1: frames leaving the interface are not delivered here.
    pub fn set_ignore_outgoing(&self) -> io::Result<()> {
        self.set_int(libc::PACKET_IGNORE_OUTGOING, 1)
    }

    /// PACKET_QDISC_BYPASS=1: transmit straight to the driver queue.
    pub fn set_qdisc_bypass(&self) -> io::Result<()> {
        self.set_int(libc::PACKET_QDISC_BYPASS, 1)
    }

    /// PACKET_VNET_HDR=1: every frame starts with a `virtio_net_hdr`. Must precede the
    /// ring set-up.
    pub fn set_vnet_hdr(&self) -> io::Result<()> {
        self.set_int(libc::PACKET_VNET_HDR, 1)
    }

    /// PACKET_LOSS=1: a malformed TX frame is skipped instead of stopping the ring.
    pub fn set_loss(&self) -> io::Result<()> {
        self.set_int(libc::PACKET_LOSS, 1)
    }

    /// SO_MARK (needs CAP_NET_ADMIN).
    pub fn set_mark(&self, mark: u32) -> io::Result<()> {
        self.setsockopt(libc::SOL_SOCKET, libc::SO_MARK, &mark)
    }

    /// SO_ATTACH_FILTER with a classic BPF program.
    pub fn attach_filter(&self, prog: &[SockFilter]) -> io::Result<()> {
        #[repr(C)]
        struct SockFprog {
            len: u16,
            filter: *const SockFilter,
        }
        let p = SockFprog {
            len: u16::try_from(prog.len())
                .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?,
            filter: prog.as_ptr(),
        };
        // The kernel copies the instructions during the call; `prog` outlives it.
        self.setsockopt(libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &p)
    }

    /// Binds to one interface and protocol (starts reception when protocol != 0).
    pub fn bind(&self, ifindex: u32, protocol: u16) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sa: libc::sockaddr_ll = unsafe { zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_protocol = protocol.to_be();
        sa.sll_ifindex = ifindex as libc::c_int;
        // SAFETY: sa is a valid sockaddr_ll of the length passed.
        cvt(unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })
        .map(drop)
    }

    /// Joins fanout group `id` (`type_flags` = mode | flags, as PACKET_FANOUT takes it).
    pub fn join_fanout(&self, id: u16, type_flags: u16) -> io::Result<()> {
        let arg = u32::from(id) | (u32::from(type_flags) << 16);
        self.set_int(libc::PACKET_FANOUT, arg as libc::c_int)
    }

    /// Reads the fanout id this socket belongs to (PACKET_FANOUT getsockopt).
    pub fn fanout_id(&self) -> io::Result<u16> {
        let v: u32 = self.getsockopt(libc::SOL_PACKET, libc::PACKET_FANOUT)?;
        Ok((v & 0xffff) as u16)
    }

    fn getsockopt<T: Copy + Default>(
        &self,
        level: libc::c_int,
        name: libc::c_int,
    ) -> io::Result<T> {
        getsockopt(self.fd.as_raw_fd(), level, name)
    }

    /// PACKET_STATISTICS: `(packets, drops)` since the last call (reading resets them).
    pub fn take_stats(&self) -> io::Result<(u32, u32)> {
        // tpacket_stats_v3 for V3 sockets; older versions fill the first two words.
        let v: [u32; 3] = self.getsockopt(libc::SOL_PACKET, libc::PACKET_STATISTICS)?;
        Ok((v[0], v[1]))
    }

    /// SO_ERROR: the pending socket error (cleared by reading), 0 if none.
    pub fn take_error(&self) -> io::Result<i32> {
        self.getsockopt(libc::SOL_SOCKET, libc::SO_ERROR)
    }

    /// `sendto(fd, NULL, 0, MSG_DONTWAIT)`: asks the kernel to transmit every TX-ring
    /// frame marked TP_STATUS_SEND_REQUEST.
    pub fn kick(&self) -> io::Result<()> {
        kick(self.fd.as_raw_fd())
    }

    /// Sends one frame on the bound interface (no ring).
    pub fn send(&self, frame: &[u8]) -> io::Result<usize> {
        // SAFETY: frame is a readable slice of the length passed.
        let r = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r as usize)
        }
    }

    /// Receives one frame without blocking: `None` if nothing is queued, else
    /// `(frame length, packet type)`; a frame longer than `buf` is truncated to it and
    /// its full length returned.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<(usize, u8)>> {
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sa: libc::sockaddr_ll = unsafe { zeroed() };
        let mut salen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: buf is writable for buf.len() bytes, sa for salen bytes.
        let r = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                (&mut sa as *mut libc::sockaddr_ll).cast(),
                &mut salen,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(None),
                _ => Err(e),
            };
        }
        Ok(Some((r as usize, sa.sll_pkttype)))
    }

    /// Maps the socket's ring(s): `len` = the RX ring size, or the TX ring size, or
    /// their sum when both exist.
    pub fn mmap(&self, len: usize) -> io::Result<MmapRing> {
        // memmap2 makes the shared read-write mapping (the kernel validates len
        // against the ring size) and unmaps it on drop.
        let map = memmap2::MmapOptions::new()
            .len(len)
            .map_raw(self.fd.as_raw_fd())?;
        Ok(MmapRing { map })
    }
}

/// A PACKET_MMAP ring mapped into the daemon. Unmapped on drop.
#[derive(Debug)]
pub struct MmapRing {
    map: memmap2::MmapRaw,
}

impl MmapRing {
    /// Bounds-checked volatile access to the ring (the kernel writes it concurrently).
    pub fn mem(&self) -> SharedMem<'_> {
        // SAFETY: the MmapRaw is a live read-write mapping of len() bytes until it is
        // dropped, which cannot happen while the returned value borrows self.
        unsafe { SharedMem::from_raw(self.map.as_mut_ptr(), self.map.len()) }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
}

/// A non-blocking, close-on-exec eventfd used as a doorbell: each
/// [`EventFd::signal`] makes it readable (and wakes edge-triggered epoll watchers).
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl EventFd {
    /// `eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)`.
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall with constant arguments.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        // SAFETY: fd was just returned by eventfd() and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd })
    }

    /// Adds 1 to the counter (EAGAIN only if it is about to overflow).
    pub fn signal(&self) -> io::Result<()> {
        let v: u64 = 1;
        // SAFETY: v is a readable u64 of the 8 bytes passed, as eventfd requires.
        let r = unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                (&v as *const u64).cast(),
                size_of::<u64>(),
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Reads and resets the counter; 0 if it was already 0.
    pub fn drain(&self) -> io::Result<u64> {
        let mut v: u64 = 0;
        // SAFETY: v is a writable u64 of the 8 bytes passed, as eventfd requires.
        let r = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut v as *mut u64).cast(),
                size_of::<u64>(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(0),
                _ => Err(e),
            };
        }
        Ok(v)
    }
}

/// Runs one SIOCGIF* ioctl for `name` and returns the filled request.
fn ifreq_get(name: &str, req: libc::c_ulong) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { zeroed() };
    for (d, &s) in ifr.ifr_name.iter_mut().zip(bytes) {
        *d = s as libc::c_char;
    }
    // SAFETY: plain syscall with constant arguments.
    let fd = cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fd was just returned by socket() and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifr is a valid, NUL-terminated ifreq the kernel reads and fills.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), req as _, &mut ifr as *mut libc::ifreq) })?;
    Ok(ifr)
}

/// SIOCGIFMTU.
pub fn ioctl_mtu(name: &str) -> io::Result<u32> {
    let ifr = ifreq_get(name, libc::SIOCGIFMTU)?;
    // SAFETY: SIOCGIFMTU fills the ifru_mtu member of the union.
    Ok(unsafe { ifr.ifr_ifru.ifru_mtu } as u32)
}

/// SIOCGIFHWADDR (the first six bytes of the hardware address).
pub fn ioctl_hwaddr(name: &str) -> io::Result<[u8; 6]> {
    let ifr = ifreq_get(name, libc::SIOCGIFHWADDR)?;
    // SAFETY: SIOCGIFHWADDR fills the ifru_hwaddr member of the union.
    let sa = unsafe { ifr.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (d, &s) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *d = s as u8;
    }
    Ok(mac)
}

/// SIOCGIFFLAGS.
pub fn ioctl_flags(name: &str) -> io::Result<u32> {
    let ifr = ifreq_get(name, libc::SIOCGIFFLAGS)?;
    // SAFETY: SIOCGIFFLAGS fills the ifru_flags member of the union.
    Ok(u32::from(unsafe { ifr.ifr_ifru.ifru_flags } as u16))
}

/// `struct ethtool_channels` (linux/ethtool.h).
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

const ETHTOOL_GCHANNELS: u32 = 0x3c;
const SIOCETHTOOL: libc::c_ulong = 0x8946;

/// Queue counts `(rx, tx)` from ETHTOOL_GCHANNELS: what sysfs shows as `queues/rx-*`
/// and `queues/tx-*`, available even when /sys belongs to another network namespace.
/// Separate RX/TX channels plus combined ones each make a queue.
pub fn ethtool_queues(name: &str) -> io::Result<(u32, u32)> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..Default::default()
    };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { zeroed() };
    for (d, &s) in ifr.ifr_name.iter_mut().zip(bytes) {
        *d = s as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = (&mut ch as *mut EthtoolChannels).cast();
    // SAFETY: plain syscall with constant arguments.
    let fd = cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fd was just returned by socket() and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifr names the interface and points at `ch`, which outlives the call and
    // has the layout the kernel fills for ETHTOOL_GCHANNELS.
    cvt(unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            SIOCETHTOOL as _,
            &mut ifr as *mut libc::ifreq,
        )
    })?;
    Ok((
        ch.rx_count + ch.combined_count,
        ch.tx_count + ch.combined_count,
    ))
}
