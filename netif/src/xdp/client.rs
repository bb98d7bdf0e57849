//! An AF_XDP queue's RX side read by the client process itself (one of the
//! sources of [`crate::rx_client::RxClient`]): the client maps the queue's RX and
//! fill rings and the held-buffer map ([`super::held`]) and runs the daemon's own
//! exchange (`queue::Exchange`) in its sync.
//!
//! Buffers stay accounted whoever reads: the held map is in shared memory and the
//! exchange changes it in an order a death cannot break; at close the daemon returns
//! what it marks. Whoever reads next reloads the ring indices from the shared ones.
#![allow(unsafe_code)]

use super::held::{Held, SharedMap};
use super::libxdp::{
    MmapOffsets, RingOffset, XskRing, SOL_XDP, XDP_MMAP_OFFSETS, XDP_PGOFF_RX_RING,
    XDP_UMEM_PGOFF_FILL_RING,
};
use super::queue::{Exchange, Exchanged};
use crate::af_packet::socket::getsockopt;
use crate::kring::Kring;
use crate::kstate::{ReaderHandle, ReaderSocket};
use crate::pidfd;
use crate::ringmem::RingView;
use crate::vale::BufGeom;
use crate::NetifError;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

const AF_XDP: libc::c_int = 44;

/// A mapping of one of the socket's rings, unmapped on drop.
struct RingMap {
    ptr: *mut u8,
    len: usize,
}

impl RingMap {
    fn new(
        fd: RawFd,
        off: &RingOffset,
        entries: u32,
        entry_bytes: u64,
        pgoff: i64,
    ) -> io::Result<Self> {
        let len = usize::try_from(off.desc + u64::from(entries) * entry_bytes)
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: a fresh shared mapping of the socket's ring at its documented page
        // offset; the kernel checks the length against the ring's size.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { ptr: p.cast(), len })
    }
}

impl Drop for RingMap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// The two rings and what the exchange needs, used by one sync at a time (the ring's
/// busy flag; [`crate::rx_client::RxClient`] keeps this behind a mutex).
pub struct XskSource {
    // Dropped first: the rings' pointers lead into the maps.
    rx: XskRing,
    fill: XskRing,
    _rx_map: RingMap,
    _fill_map: RingMap,
    held: SharedMap,
    sock: OwnedFd,
    geom: BufGeom,
    shift: Option<u32>,
}

// SAFETY: the raw pointers (ring maps) lead into mappings this value owns; it is
// reached by one thread at a time (under a mutex).
unsafe impl Send for XskSource {}

impl std::fmt::Debug for XskSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskSource")
            .field("sock", &self.sock.as_raw_fd())
            .finish()
    }
}

impl XskSource {
    /// Takes the daemon's socket and held map (`h`), and maps the RX and fill rings.
    /// `geom` is the buffer pool.
    pub fn attach(h: ReaderHandle, geom: BufGeom) -> io::Result<Self> {
        let ReaderSocket::Xsk {
            held_fd,
            rx_size,
            fill_size,
        } = h.socket
        else {
            return Err(io::Error::from_raw_os_error(libc::EPROTOTYPE));
        };
        let sock = crate::rx_client::take_socket(h.pid, h.sock_fd, AF_XDP)?;
        let fd = sock.as_raw_fd();
        let held = SharedMap::open(pidfd::take_fd(h.pid, held_fd)?)?;
        let off: MmapOffsets = getsockopt(fd, SOL_XDP, XDP_MMAP_OFFSETS)?;
        let rx_map = RingMap::new(fd, &off.rx, rx_size, 16, XDP_PGOFF_RX_RING)?;
        let fill_map = RingMap::new(fd, &off.fill, fill_size, 8, XDP_UMEM_PGOFF_FILL_RING)?;
        // SAFETY: both maps hold their ring's entries past `desc` (made so above) and
        // live as long as the rings (fields dropped after `rx` and `fill`).
        let (rx, fill) = unsafe {
            (
                XskRing::over(rx_map.ptr, &off.rx, rx_size, false),
                XskRing::over(fill_map.ptr, &off.fill, fill_size, true),
            )
        };
        let total = geom.total.min((held.mem().len() * 8) as u32);
        Ok(Self {
            rx,
            fill,
            _rx_map: rx_map,
            _fill_map: fill_map,
            held,
            sock,
            geom: BufGeom { total, ..geom },
            shift: geom
                .size
                .is_power_of_two()
                .then(|| geom.size.trailing_zeros()),
        })
    }

    /// The socket, to sleep on (POLLIN: frames in the RX ring).
    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// How many frames the kernel can surely take for this queue between two syncs
    /// of a netmap ring of `slots` slots: the buffers the daemon lent it (its stock),
    /// which are at least the ring's slots and more than half the RX ring (sized to
    /// the next power of two of the stock: `xdp::queue`).
    pub fn kernel_room(&self, slots: u32) -> u32 {
        (self.rx.size() / 2).max(slots)
    }

    /// The exchange, as the daemon's rxsync does it, on ring `k` (state loaded and
    /// validated by the caller, which holds the busy flag and has claimed the ring).
    pub fn read(&mut self, k: &mut Kring, rv: &RingView) -> Result<Exchanged, NetifError> {
        let held = Held::over(&self.held, self.geom.total)?;
        let x = Exchange {
            geom: self.geom,
            shift: self.shift,
            held,
        };
        // The daemon (or another holder) may have used the rings since: start from
        // the shared indices.
        self.rx.resync(false);
        self.fill.resync(true);
        let out = x.run(&mut self.rx, &mut self.fill, k, rv, None)?;
        if out.frames + out.bad > 0 && self.fill.needs_wakeup() {
            // SAFETY: recvfrom with no buffer on the socket only wakes the driver.
            unsafe {
                libc::recvfrom(
                    self.fd(),
                    std::ptr::null_mut(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
        }
        Ok(out)
    }
}
