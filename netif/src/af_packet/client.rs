//! An AF_PACKET hardware RX ring read by the client process itself (one of the
//! sources of [`crate::rx_client::RxClient`]): the client takes the daemon's socket,
//! maps its TPACKET_V3 ring and runs the daemon's own copy ([`super::rx::fill_blocks`])
//! in its sync, from the position both keep in the RX ring's state block.
//!
//! Why the copy moves: with the port worker in between, frames cost a worker wake-up
//! and pass on top of the client's (`bench/nic.sh`: AF_PACKET receiver CPU 1.9–2.1×
//! netsniff-ng's per frame, the worker the difference). A client killed mid-copy
//! loses at most the frames of its batch (copied, their blocks given back, `hwtail`
//! not yet published): no buffer changes hands, so nothing leaks.

use super::rx::{fill_blocks, RING_BYTES};
use super::socket::{getsockopt, MmapRing, PacketSocket, TPACKET_V3};
use super::Stats;
use crate::kring::Kring;
use crate::kstate::{KState, ReaderHandle};
use crate::ringmem::RingView;
use crate::vale::BufGeom;
use crate::NetifError;
use netmap_pool::SharedMem;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// A client's mapping of one AF_PACKET socket's RX ring.
#[derive(Debug)]
pub struct TpacketSource {
    // Declared before the socket: unmapped before the socket closes.
    map: MmapRing,
    sock: PacketSocket,
    geom: BufGeom,
    /// Bounce buffer for a frame spread over several slots.
    scratch: Vec<u8>,
}

impl TpacketSource {
    /// Takes the daemon's socket (`h`) and maps its RX ring: the kernel refuses a
    /// mapping of any other size than the ring's, so a daemon with another geometry
    /// cannot be misread.
    pub fn attach(h: ReaderHandle, geom: BufGeom) -> io::Result<Self> {
        let sock = crate::rx_client::take_socket(h.pid, h.sock_fd, libc::AF_PACKET)?;
        let v: libc::c_int = getsockopt(sock.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_VERSION)?;
        if v != TPACKET_V3 {
            return Err(io::Error::from_raw_os_error(libc::EPROTO));
        }
        let sock = PacketSocket::from_fd(sock);
        let map = sock.mmap(RING_BYTES)?;
        Ok(Self {
            map,
            sock,
            geom,
            scratch: vec![0; geom.size as usize],
        })
    }

    /// The socket, to sleep on (POLLIN: a block was handed over).
    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Copies what the kernel handed over into ring `k` (state loaded and validated
    /// by the caller, which holds the busy flag and has claimed the ring), counting
    /// into `st`.
    pub fn read(
        &mut self,
        k: &mut Kring,
        rv: &RingView,
        ks: &KState,
        mem: SharedMem,
        st: &mut Stats,
    ) -> Result<(), NetifError> {
        fill_blocks(
            self.map.mem(),
            ks,
            k,
            rv,
            mem,
            &self.geom,
            &mut self.scratch,
            st,
        )?;
        Ok(())
    }
}
