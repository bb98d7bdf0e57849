//! A registered netmap port seen from the application side: fd + mapping + rings,
//! with the index arithmetic of `netmap_user.h`.

use std::io;
use std::mem::offset_of;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

use netmap_abi::{
    if_ring_ofs_offset, ring_slot_offset, set_cname, NetmapIf, NetmapRing, NetmapSlot, Nmreq,
    NmreqHeader, NmreqRegister, NETMAP_REQ_REGISTER, NIOCGINFO, NIOCREGIF,
};

use crate::sys::{self, Errno, Mapping};

/// Issues a REGISTER on `fd` with `reg` as body and no options; `reg` is updated with
/// the reply.
pub fn register_fd(fd: RawFd, name: &str, reg: &mut NmreqRegister) -> Result<(), Errno> {
    let mut hdr = NmreqHeader {
        nr_reqtype: NETMAP_REQ_REGISTER,
        nr_body: reg as *mut NmreqRegister as u64,
        ..NmreqHeader::default()
    };
    set_cname(&mut hdr.nr_name, name);
    // SAFETY: nr_body points to a live, exclusively borrowed NmreqRegister of exactly the
    // size REGISTER uses; there are no options.
    unsafe { sys::nioctrl(fd, &mut hdr) }
}

/// Issues a legacy NIOCREGIF (or NIOCGINFO when `info`) with `req`, updated in place.
pub fn legacy_ioctl(fd: RawFd, req: &mut Nmreq, info: bool) -> Result<(), Errno> {
    let cmd = if info { NIOCGINFO } else { NIOCREGIF };
    // SAFETY: req is a live 60-byte struct nmreq, the size encoded in the command;
    // legacy requests carry no further pointers.
    unsafe { sys::ioctl_raw(fd, cmd, (req as *mut Nmreq).cast()) }.map(|_| ())
}

/// A registered and mapped netmap file descriptor.
pub struct Port {
    // Field order matters: the mapping is dropped (munmap) before the fd is closed,
    // the order a C application uses.
    map: Mapping,
    fd: OwnedFd,
    reg: NmreqRegister,
}

impl Port {
    /// Opens /dev/netmap, REGISTERs `name` (a raw kernel name such as "pp{0") and maps
    /// the region, exactly like `nmport_open` minus the name parser.
    #[allow(clippy::too_many_arguments)]
    pub fn register(
        name: &str,
        mode: u32,
        ringid: u16,
        flags: u64,
        extra_bufs: u32,
        tx_rings: u16,
        rx_rings: u16,
        tx_slots: u32,
        rx_slots: u32,
    ) -> io::Result<Port> {
        let reg = NmreqRegister {
            nr_mode: mode,
            nr_ringid: ringid,
            nr_flags: flags,
            nr_extra_bufs: extra_bufs,
            nr_tx_rings: tx_rings,
            nr_rx_rings: rx_rings,
            nr_tx_slots: tx_slots,
            nr_rx_slots: rx_slots,
            ..NmreqRegister::default()
        };
        Self::register_req(name, reg)
    }

    /// Like [`Port::register`] with a complete request body (mem_id, host rings…).
    pub fn register_req(name: &str, mut reg: NmreqRegister) -> io::Result<Port> {
        let fd = sys::open_netmap()?;
        // Plain io::Error::from keeps the raw errno for sys::errno_of().
        register_fd(fd.as_raw_fd(), name, &mut reg).map_err(io::Error::from)?;
        Self::map_registered(fd, reg)
    }

    /// Legacy path (`nm_open`): NIOCREGIF with `req`, then mmap. Returns the port and
    /// the reply as the kernel wrote it back.
    pub fn register_legacy(mut req: Nmreq) -> io::Result<(Port, Nmreq)> {
        let fd = sys::open_netmap()?;
        legacy_ioctl(fd.as_raw_fd(), &mut req, false)?;
        let reg = NmreqRegister {
            nr_offset: req.nr_offset as u64,
            nr_memsize: req.nr_memsize as u64,
            nr_tx_slots: req.nr_tx_slots,
            nr_rx_slots: req.nr_rx_slots,
            nr_tx_rings: req.nr_tx_rings,
            nr_rx_rings: req.nr_rx_rings,
            nr_mem_id: req.nr_arg2,
            nr_extra_bufs: req.nr_arg3,
            ..NmreqRegister::default()
        };
        Ok((Self::map_registered(fd, reg)?, req))
    }

    /// Maps `reg.nr_memsize` bytes of an fd registered with reply `reg`.
    pub fn map_registered(fd: OwnedFd, reg: NmreqRegister) -> io::Result<Port> {
        let len = usize::try_from(reg.nr_memsize).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidData, "nr_memsize does not fit usize")
        })?;
        if len == 0 || reg.nr_offset >= reg.nr_memsize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "REGISTER reply: nr_offset {} / nr_memsize {} unusable",
                    reg.nr_offset, reg.nr_memsize
                ),
            ));
        }
        let map = Mapping::map(&fd, len)?;
        Ok(Port { map, fd, reg })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The REGISTER reply body.
    pub fn reg(&self) -> &NmreqRegister {
        &self.reg
    }

    pub fn mapping(&self) -> &Mapping {
        &self.map
    }

    fn nifp(&self) -> usize {
        self.reg.nr_offset as usize
    }

    fn if_u32(&self, off: usize) -> u32 {
        self.map.read_u32(self.nifp() + off)
    }

    pub fn ni_name(&self) -> String {
        let mut b = [0u8; 16];
        self.map
            .read_bytes(self.nifp() + offset_of!(NetmapIf, ni_name), &mut b);
        netmap_abi::cname(&b)
    }
    pub fn ni_flags(&self) -> u32 {
        self.if_u32(offset_of!(NetmapIf, ni_flags))
    }
    pub fn ni_tx_rings(&self) -> u32 {
        self.if_u32(offset_of!(NetmapIf, ni_tx_rings))
    }
    pub fn ni_rx_rings(&self) -> u32 {
        self.if_u32(offset_of!(NetmapIf, ni_rx_rings))
    }
    pub fn ni_host_tx_rings(&self) -> u32 {
        self.if_u32(offset_of!(NetmapIf, ni_host_tx_rings))
    }
    pub fn ni_host_rx_rings(&self) -> u32 {
        self.if_u32(offset_of!(NetmapIf, ni_host_rx_rings))
    }
    pub fn ni_bufs_head(&self) -> u32 {
        self.if_u32(offset_of!(NetmapIf, ni_bufs_head))
    }
    pub fn set_ni_bufs_head(&self, v: u32) {
        self.map
            .write_u32(self.nifp() + offset_of!(NetmapIf, ni_bufs_head), v)
    }

    /// `ring_ofs[k]`, relative to the netmap_if (0 = ring not bound to this fd).
    pub fn ring_ofs(&self, k: usize) -> i64 {
        self.map.read_i64(self.nifp() + if_ring_ofs_offset(k))
    }

    /// Number of ring_ofs entries: (T + HT) + (R + HR).
    pub fn ring_ofs_count(&self) -> usize {
        (self.ni_tx_rings()
            + self.ni_host_tx_rings()
            + self.ni_rx_rings()
            + self.ni_host_rx_rings()) as usize
    }

    fn ring_at(&self, k: usize) -> Option<Ring<'_>> {
        let ofs = self.ring_ofs(k);
        if ofs == 0 {
            return None;
        }
        let off = self.nifp() as i64 + ofs;
        assert!(
            off > 0 && (off as usize) < self.map.len(),
            "ring_ofs[{k}] = {ofs} points outside the region"
        );
        Some(Ring::new(&self.map, off as usize))
    }

    /// TX ring `i` (`NETMAP_TXRING`): `nifp + ring_ofs[i]`; `None` if not bound.
    pub fn tx_ring(&self, i: usize) -> Option<Ring<'_>> {
        self.ring_at(i)
    }

    /// RX ring `i` (`NETMAP_RXRING`): `nifp + ring_ofs[i + ni_tx_rings + ni_host_tx_rings]`.
    pub fn rx_ring(&self, i: usize) -> Option<Ring<'_>> {
        self.ring_at(i + (self.ni_tx_rings() + self.ni_host_tx_rings()) as usize)
    }

    pub fn txsync(&self) -> Result<(), Errno> {
        sys::txsync(self.fd())
    }
    pub fn rxsync(&self) -> Result<(), Errno> {
        sys::rxsync(self.fd())
    }
    pub fn poll(&self, events: i16, timeout_ms: i32) -> io::Result<i16> {
        sys::poll_fd(self.fd(), events, timeout_ms)
    }

    /// Region offset of buffer 0, taken from the first bound ring (every ring of a
    /// region has `ring + buf_ofs` = buffer 0).
    pub fn buf_pool_offset(&self) -> Option<usize> {
        (0..self.ring_ofs_count())
            .find_map(|k| self.ring_at(k))
            .map(|r| r.buf_base())
    }

    /// Follows the extra-buffer list from `ni_bufs_head` (first u32 of each buffer is
    /// the next index, 0 ends it). Stops after `limit` entries to survive a loop.
    pub fn extra_buf_list(&self, limit: usize) -> Result<Vec<u32>, String> {
        let mut out = Vec::new();
        let mut idx = self.ni_bufs_head();
        if idx == 0 {
            return Ok(out);
        }
        let base = self
            .buf_pool_offset()
            .ok_or("no bound ring to locate the buffer pool")?;
        let bsz = self
            .tx_ring(0)
            .or_else(|| self.rx_ring(0))
            .map(|r| r.nr_buf_size() as usize)
            .ok_or("no ring 0 to learn the buffer size")?;
        while idx != 0 {
            if out.len() >= limit {
                return Err(format!("extra buffer list longer than {limit} (loop?)"));
            }
            out.push(idx);
            let off = base + idx as usize * bsz;
            if off + 4 > self.map.len() {
                return Err(format!("extra buffer index {idx} outside the region"));
            }
            idx = self.map.read_u32(off);
        }
        Ok(out)
    }
}

/// One ring in the mapping. Index fields use atomics (acquire for `tail` written by
/// the daemon, release for `head`/`cur` so buffer contents are visible first), slot
/// fields volatile accesses.
pub struct Ring<'a> {
    map: &'a Mapping,
    off: usize,
    num_slots: u32,
    buf_size: u32,
    buf_base: usize,
}

impl<'a> Ring<'a> {
    fn new(map: &'a Mapping, off: usize) -> Ring<'a> {
        let num_slots = map.read_u32(off + offset_of!(NetmapRing, num_slots));
        let buf_size = map.read_u32(off + offset_of!(NetmapRing, nr_buf_size));
        let buf_ofs = map.read_i64(off + offset_of!(NetmapRing, buf_ofs));
        // Validate once so that every later slot access is in bounds.
        let _ = map.at(off, ring_slot_offset(num_slots));
        let base = off as i64 + buf_ofs;
        assert!(
            base >= 0 && (base as usize) <= map.len(),
            "ring at {off}: buf_ofs {buf_ofs} points outside the region"
        );
        Ring {
            map,
            off,
            num_slots,
            buf_size,
            buf_base: base as usize,
        }
    }

    /// Region offset of this ring (diagnostics).
    pub fn offset(&self) -> usize {
        self.off
    }
    /// Region offset of buffer 0.
    pub fn buf_base(&self) -> usize {
        self.buf_base
    }
    pub fn num_slots(&self) -> u32 {
        self.num_slots
    }
    pub fn nr_buf_size(&self) -> u32 {
        self.buf_size
    }
    pub fn buf_ofs(&self) -> i64 {
        self.map
            .read_i64(self.off + offset_of!(NetmapRing, buf_ofs))
    }
    pub fn ringid(&self) -> u16 {
        self.map.read_u16(self.off + offset_of!(NetmapRing, ringid))
    }
    pub fn dir(&self) -> u16 {
        self.map.read_u16(self.off + offset_of!(NetmapRing, dir))
    }
    pub fn flags(&self) -> u32 {
        self.map.read_u32(self.off + offset_of!(NetmapRing, flags))
    }
    pub fn offset_mask(&self) -> u64 {
        self.map
            .read_u64(self.off + offset_of!(NetmapRing, offset_mask))
    }

    fn idx(&self, field: usize) -> &AtomicU32 {
        self.map.atomic_u32(self.off + field)
    }
    pub fn head(&self) -> u32 {
        self.idx(offset_of!(NetmapRing, head))
            .load(Ordering::Acquire)
    }
    pub fn cur(&self) -> u32 {
        self.idx(offset_of!(NetmapRing, cur))
            .load(Ordering::Acquire)
    }
    pub fn tail(&self) -> u32 {
        self.idx(offset_of!(NetmapRing, tail))
            .load(Ordering::Acquire)
    }
    pub fn set_head(&self, v: u32) {
        self.idx(offset_of!(NetmapRing, head))
            .store(v, Ordering::Release)
    }
    pub fn set_cur(&self, v: u32) {
        self.idx(offset_of!(NetmapRing, cur))
            .store(v, Ordering::Release)
    }
    /// Only for tests that corrupt the ring on purpose; apps never write tail.
    pub fn set_tail(&self, v: u32) {
        self.idx(offset_of!(NetmapRing, tail))
            .store(v, Ordering::Release)
    }
    /// `head = cur = v`, the usual way to hand slots back.
    pub fn advance(&self, v: u32) {
        self.set_head(v);
        self.set_cur(v);
    }
    /// (head, cur, tail) snapshot.
    pub fn indices(&self) -> (u32, u32, u32) {
        (self.head(), self.cur(), self.tail())
    }

    /// `nm_ring_next`.
    pub fn next(&self, i: u32) -> u32 {
        if i + 1 == self.num_slots {
            0
        } else {
            i + 1
        }
    }
    /// `nm_ring_space`: (tail - head) mod N.
    pub fn space(&self) -> u32 {
        let (h, t) = (self.head(), self.tail());
        if t >= h {
            t - h
        } else {
            t + self.num_slots - h
        }
    }

    fn slot_off(&self, i: u32) -> usize {
        assert!(
            i < self.num_slots,
            "slot {i} >= num_slots {}",
            self.num_slots
        );
        self.off + ring_slot_offset(i)
    }
    pub fn slot_buf_idx(&self, i: u32) -> u32 {
        self.map
            .read_u32(self.slot_off(i) + offset_of!(NetmapSlot, buf_idx))
    }
    pub fn set_slot_buf_idx(&self, i: u32, v: u32) {
        self.map
            .write_u32(self.slot_off(i) + offset_of!(NetmapSlot, buf_idx), v)
    }
    pub fn slot_len(&self, i: u32) -> u16 {
        self.map
            .read_u16(self.slot_off(i) + offset_of!(NetmapSlot, len))
    }
    pub fn set_slot_len(&self, i: u32, v: u16) {
        self.map
            .write_u16(self.slot_off(i) + offset_of!(NetmapSlot, len), v)
    }
    pub fn slot_flags(&self, i: u32) -> u16 {
        self.map
            .read_u16(self.slot_off(i) + offset_of!(NetmapSlot, flags))
    }
    pub fn set_slot_flags(&self, i: u32, v: u16) {
        self.map
            .write_u16(self.slot_off(i) + offset_of!(NetmapSlot, flags), v)
    }
    pub fn slot_ptr(&self, i: u32) -> u64 {
        self.map
            .read_u64(self.slot_off(i) + offset_of!(NetmapSlot, ptr))
    }

    /// Region offset of buffer `idx` (`NETMAP_BUF`), bounds-checked for `len` bytes.
    pub fn buf_offset(&self, idx: u32, len: usize) -> usize {
        let off = self.buf_base + idx as usize * self.buf_size as usize;
        let _ = self.map.at(off, len);
        off
    }
    /// Copies `data` into buffer `idx` at byte `at`.
    pub fn write_buf(&self, idx: u32, at: usize, data: &[u8]) {
        let off = self.buf_offset(idx, at + data.len());
        self.map.write_bytes(off + at, data);
    }
    /// Copies the first `out.len()` bytes of buffer `idx` into `out`.
    pub fn read_buf(&self, idx: u32, out: &mut [u8]) {
        let off = self.buf_offset(idx, out.len());
        self.map.read_bytes(off, out);
    }
}
