//! Fuzz harnesses for the netmap control plane, shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/*.rs`) and the corpus replay test (`tests/tests/fuzz_smoke.rs`).
//!
//! Every harness takes the raw fuzz input, never panics on its own account, and panics
//! (i.e. reports a crash) only when the daemon panics or an invariant is broken:
//!
//! * [`nmreq_ctrl`]: one NIOCCTRL / NIOCREGIF / NIOCGINFO request built from the input;
//!   after releasing the descriptors the pool counts equal those before the input.
//! * [`options_chain`]: a REGISTER / info request whose option chain is built
//!   structurally from the input (loops, self references, huge sizes, faulting links);
//!   same invariant.
//! * [`ring_sync`]: a registered pipe pair driven by a sequence of client actions on
//!   the shared rings (through a real `MAP_SHARED` mapping of the region) and sync /
//!   poll calls; pool counts never exceed the initial free counts, netmap_if and ring
//!   objects always come back.
//! * [`kring_window`]: `netmap_netif::kring::window_ok` against two reference models.

pub mod seeds;

pub use cuse_dev::ctrl::Errno;

use cuse_dev::ctrl::{ControlPlane, CtrlConfig, FdId, UserMemory};
use netmap_abi as abi;
use netmap_abi::{NetmapIf, NetmapRing, NmreqHeader, NmreqOption, NmreqRegister};
use netmap_pool::{PoolConfig, PoolCounts, SharedMem};
use std::cell::RefCell;
use std::mem::{offset_of, size_of};
use std::sync::OnceLock;
use zerocopy::{FromBytes, IntoBytes};

/// Where the caller memory of a fuzz input starts in the fake address space.
pub const BASE: u64 = 0x10000;

const EFAULT: Errno = Errno(libc::EFAULT);

/// The small pool every harness uses.
pub fn small_config() -> CtrlConfig {
    CtrlConfig {
        pools: PoolConfig {
            if_size: 1024,
            if_num: 8,
            ring_size: 36864,
            ring_num: 16,
            buf_size: 2048,
            buf_num: 4096,
        },
        prefer_huge: false,
        // A sync loop runs until SYNC_KLOOP_STOP from another thread, which a
        // single-threaded harness never sends: no loop may start.
        max_kloops: 0,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------
// Fake caller address space
// ---------------------------------------------------------------------------------

/// The caller's address space: `[BASE, BASE + len)` holds a copy of (part of) the fuzz
/// input, every other address faults.
pub struct FakeMem {
    bytes: RefCell<Vec<u8>>,
}

impl FakeMem {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self {
            bytes: RefCell::new(bytes),
        }
    }

    fn range(&self, addr: u64, len: usize) -> Result<std::ops::Range<usize>, Errno> {
        let start = addr.checked_sub(BASE).ok_or(EFAULT)?;
        let start = usize::try_from(start).map_err(|_| EFAULT)?;
        let end = start.checked_add(len).ok_or(EFAULT)?;
        if end > self.bytes.borrow().len() {
            return Err(EFAULT);
        }
        Ok(start..end)
    }

    pub fn get<T: FromBytes>(&self, addr: u64) -> Option<T> {
        let r = self.range(addr, size_of::<T>()).ok()?;
        T::read_from_bytes(&self.bytes.borrow()[r]).ok()
    }
}

impl UserMemory for FakeMem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        if buf.is_empty() {
            return Ok(());
        }
        let r = self.range(addr, buf.len())?;
        buf.copy_from_slice(&self.bytes.borrow()[r]);
        Ok(())
    }
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        if data.is_empty() {
            return Ok(());
        }
        let r = self.range(addr, data.len())?;
        self.bytes.borrow_mut()[r].copy_from_slice(data);
        Ok(())
    }
}

/// Reads `N` bytes from the front of `data`, zero-padded when it runs out.
fn take<const N: usize>(data: &mut &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = N.min(data.len());
    out[..n].copy_from_slice(&data[..n]);
    *data = &data[n..];
    out
}

fn take_u8(d: &mut &[u8]) -> u8 {
    take::<1>(d)[0]
}
fn take_u16(d: &mut &[u8]) -> u16 {
    u16::from_le_bytes(take(d))
}
fn take_u32(d: &mut &[u8]) -> u32 {
    u32::from_le_bytes(take(d))
}
fn take_u64(d: &mut &[u8]) -> u64 {
    u64::from_le_bytes(take(d))
}

/// REGISTER of `name` on `fd` with a well-formed header and body.
pub fn register(
    cp: &ControlPlane,
    fd: FdId,
    name: &str,
    reg: &NmreqRegister,
) -> Result<NmreqRegister, Errno> {
    let mem = FakeMem::new(reg.as_bytes().to_vec());
    let mut hdr = NmreqHeader {
        nr_reqtype: abi::NETMAP_REQ_REGISTER,
        nr_body: BASE,
        ..Default::default()
    };
    abi::set_cname(&mut hdr.nr_name, name);
    cp.ioctl(fd, abi::NIOCCTRL, hdr.as_bytes(), &mem)?;
    Ok(mem.get(BASE).expect("body still mapped"))
}

fn sync_and_poll(cp: &ControlPlane, fd: FdId) {
    let none = cuse_dev::ctrl::NoMemory;
    let _ = cp.ioctl(fd, abi::NIOCTXSYNC, &[], &none);
    let _ = cp.ioctl(fd, abi::NIOCRXSYNC, &[], &none);
    let _ = cp.poll(fd, (libc::POLLIN | libc::POLLOUT) as u32, None);
}

// ---------------------------------------------------------------------------------
// nmreq_ctrl / options_chain
// ---------------------------------------------------------------------------------

/// The control plane of the request harnesses, created once per process (region
/// creation is expensive). Their invariant keeps it at its initial occupancy. Locked,
/// because the replay test runs harnesses on several threads and the invariant compares
/// counts before and after one input.
fn ctrl_cp() -> parking_lot::MutexGuard<'static, ControlPlane> {
    static CP: OnceLock<parking_lot::Mutex<ControlPlane>> = OnceLock::new();
    CP.get_or_init(|| {
        parking_lot::Mutex::new(ControlPlane::new(&small_config()).expect("control plane"))
    })
    .lock()
}

/// Runs `cmd` with `arg` on one (or two) fresh descriptors, releases them and checks
/// that the pools are back where they were.
fn run_request(cp: &ControlPlane, sel: u8, arg: &[u8], mem: &FakeMem) -> Result<(), Errno> {
    let before = cp.pool_counts();
    let cmd = match sel & 3 {
        0 | 1 => abi::NIOCCTRL,
        2 => abi::NIOCREGIF,
        _ => abi::NIOCGINFO,
    };
    let arg = if cmd == abi::NIOCCTRL {
        arg
    } else {
        &arg[..abi::NMREQ_SIZE]
    };
    let fd = cp.open();
    let r = cp.ioctl(fd, cmd, arg, mem);
    if let Ok(out) = &r {
        let want = if cmd == abi::NIOCCTRL {
            abi::NMREQ_HEADER_SIZE
        } else {
            abi::NMREQ_SIZE
        };
        assert_eq!(out.len(), want, "reply of the wrong size");
    }
    if sel & 4 != 0 {
        // The same request again on the same descriptor (e.g. REGISTER twice).
        let _ = cp.ioctl(fd, cmd, arg, mem);
    }
    let fd2 = (sel & 8 != 0).then(|| {
        // ... and on a second descriptor, sharing the port.
        let fd2 = cp.open();
        let _ = cp.ioctl(fd2, cmd, arg, mem);
        fd2
    });
    if sel & 16 != 0 {
        sync_and_poll(cp, fd);
        if let Some(f) = fd2 {
            sync_and_poll(cp, f);
        }
    }
    if sel & 32 != 0 {
        if let Some(f) = fd2 {
            cp.release(f);
        }
        cp.release(fd);
    } else {
        cp.release(fd);
        if let Some(f) = fd2 {
            cp.release(f);
        }
    }
    let after = cp.pool_counts();
    assert_eq!(
        before, after,
        "pool counts changed across a request (leak or double free); result {r:?}"
    );
    r.map(|_| ())
}

/// Input: `sel` (1 byte) | `nmreq_header` (88 bytes; the legacy ioctls use its first
/// 60 bytes as `struct nmreq`) | caller memory mapped at [`BASE`].
///
/// `sel & 3`: 0/1 NIOCCTRL, 2 NIOCREGIF, 3 NIOCGINFO; bit 2 repeats the request on the
/// same descriptor, bit 3 on a second one, bit 4 syncs and polls afterwards, bit 5
/// changes the release order.
pub fn nmreq_ctrl(data: &[u8]) {
    let _ = nmreq_ctrl_result(data);
}

/// [`nmreq_ctrl`], returning the result of the first request (for seed checks).
pub fn nmreq_ctrl_result(data: &[u8]) -> Result<(), Errno> {
    let mut d = data;
    let sel = take_u8(&mut d);
    let hdr: [u8; abi::NMREQ_HEADER_SIZE] = take(&mut d);
    let mem = FakeMem::new(d.to_vec());
    run_request(&ctrl_cp(), sel, &hdr, &mem)
}

/// Size of the caller memory of an [`options_chain`] input.
const CHAIN_MEM: usize = 64 * 1024;

/// Input: `sel` | `reqtype` | `name` | then options, each
/// `link` (1) | `reqtype` (1, or 4 more bytes if 0xff) | `size` (1, see [`chain_size`])
/// | body length (1) | body bytes. Options are laid out one after the other in the
/// caller memory, 8-byte aligned; `link` picks `nro_next`: the following option, the
/// end of the chain, itself, an earlier option, a faulting or partly mapped address, a
/// misaligned pointer into the previous option, or a raw value.
pub fn options_chain(data: &[u8]) {
    let mut d = data;
    let sel = take_u8(&mut d) & !3; // always NIOCCTRL
    let rt = take_u8(&mut d);
    let (reqtype, name) = match rt % 6 {
        0 => (abi::NETMAP_REQ_REGISTER, "c{0"),
        1 => (abi::NETMAP_REQ_REGISTER, "c}0"),
        2 => (abi::NETMAP_REQ_PORT_INFO_GET, "c{0"),
        3 => (abi::NETMAP_REQ_POOLS_INFO_GET, ""),
        4 => (abi::NETMAP_REQ_CSB_ENABLE, "c{0"),
        _ => (u16::from(rt >> 3), "c{1"),
    };
    let mut bytes = vec![0u8; CHAIN_MEM];
    let bsz = abi::req_body_size(reqtype);
    // The body first.
    if reqtype == abi::NETMAP_REQ_REGISTER {
        let reg = NmreqRegister {
            nr_tx_slots: 8,
            nr_rx_slots: 8,
            nr_tx_rings: 1,
            nr_rx_rings: 1,
            nr_mode: abi::NR_REG_ALL_NIC,
            nr_extra_bufs: u32::from(rt >> 4),
            ..Default::default()
        };
        bytes[..56].copy_from_slice(reg.as_bytes());
    }
    let mut at = (bsz + 7) & !7;
    let mut addrs: Vec<u64> = Vec::new();
    let mut links: Vec<(usize, u8, u64)> = Vec::new();
    while !d.is_empty() && at + abi::NMREQ_OPTION_SIZE < CHAIN_MEM {
        let link = take_u8(&mut d);
        let t = match take_u8(&mut d) {
            0xff => take_u32(&mut d),
            t => u32::from(t % 8),
        };
        let size = chain_size(t, take_u8(&mut d), &mut d);
        let blen = usize::from(take_u8(&mut d)) * 4;
        let body: Vec<u8> = d[..blen.min(d.len())].to_vec();
        d = &d[body.len()..];
        let raw = if link % 8 == 7 { take_u64(&mut d) } else { 0 };
        let opt = NmreqOption {
            nro_next: 0,
            nro_reqtype: t,
            nro_status: 0xdead,
            nro_size: size,
        };
        let end = (at + abi::NMREQ_OPTION_SIZE + body.len()).min(CHAIN_MEM);
        bytes[at..at + abi::NMREQ_OPTION_SIZE].copy_from_slice(opt.as_bytes());
        let bstart = at + abi::NMREQ_OPTION_SIZE;
        bytes[bstart..end].copy_from_slice(&body[..end - bstart]);
        addrs.push(BASE + at as u64);
        links.push((at, link, raw));
        at = (end + 7) & !7;
    }
    let n = addrs.len();
    for (i, &(off, link, raw)) in links.iter().enumerate() {
        let next = match link % 8 {
            0 | 1 => addrs.get(i + 1).copied().unwrap_or(0),
            2 => 0,
            3 => addrs[i],
            4 => addrs[usize::from(link >> 3) % n],
            5 => BASE + CHAIN_MEM as u64 - u64::from(link >> 3), // partly mapped
            6 => addrs[i] + 1 + u64::from(link >> 3) % 23,       // misaligned, overlapping
            _ => raw,
        };
        bytes[off..off + 8].copy_from_slice(&next.to_le_bytes());
    }
    let mut hdr = NmreqHeader {
        nr_reqtype: reqtype,
        nr_body: if bsz > 0 { BASE } else { 0 },
        nr_options: addrs.first().copied().unwrap_or(0),
        ..Default::default()
    };
    abi::set_cname(&mut hdr.nr_name, name);
    let mem = FakeMem::new(bytes);
    let _ = run_request(&ctrl_cp(), sel, hdr.as_bytes(), &mem);
}

/// `nro_size` of an option: the size its type expects, 0, a huge or a raw value.
fn chain_size(t: u32, sel: u8, d: &mut &[u8]) -> u64 {
    let expect = match t {
        abi::NETMAP_REQ_OPT_EXTMEM => 96,
        abi::NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS => 24 + 16,
        abi::NETMAP_REQ_OPT_CSB => 40,
        abi::NETMAP_REQ_OPT_SYNC_KLOOP_MODE => 32,
        abi::NETMAP_REQ_OPT_OFFSETS => 64,
        _ => 24,
    };
    match sel % 6 {
        0 | 1 => expect,
        2 => 0,
        3 => u64::MAX - u64::from(sel >> 3),
        4 => u64::from(sel) * 64,
        _ => take_u64(d),
    }
}

// ---------------------------------------------------------------------------------
// ring_sync
// ---------------------------------------------------------------------------------

/// A control plane with the region mapped as a client maps it.
struct RingFixture {
    cp: ControlPlane,
    /// The client's mapping of the region (memmap2 unmaps it on drop).
    map: memmap2::MmapRaw,
    initial: PoolCounts,
}

impl RingFixture {
    fn new() -> Self {
        use std::os::fd::AsRawFd;
        let cp = ControlPlane::new(&small_config()).expect("control plane");
        let map = memmap2::MmapOptions::new()
            .len(cp.region_len())
            .map_raw(cp.region_file().as_raw_fd())
            .expect("mmap of the region");
        let initial = cp.pool_counts();
        Self { cp, map, initial }
    }

    /// The client's view of the region through the project's bounds-checked volatile
    /// accessor (the daemon writes the same memory).
    fn mem(&self) -> SharedMem<'_> {
        // SAFETY: the MmapRaw is a live read-write mapping of len() bytes for as long
        // as self, which the returned value borrows.
        unsafe { SharedMem::from_raw(self.map.as_mut_ptr(), self.map.len()) }
    }

    fn read_u32(&self, off: usize) -> u32 {
        self.mem().read_u32(off).expect("read outside the region")
    }

    fn read_i64(&self, off: usize) -> i64 {
        self.mem().read_i64(off).expect("read outside the region")
    }

    fn write_u32(&self, off: usize, v: u32) {
        self.mem().write_u32(off, v).expect("write outside the region")
    }

    fn write_u16(&self, off: usize, v: u16) {
        self.mem().write_u16(off, v).expect("write outside the region")
    }

    /// Checks the "never more free than at the start" invariant.
    fn check_counts(&self, what: &str) {
        let c = self.cp.pool_counts();
        let i = self.initial;
        assert!(
            c.if_free <= i.if_free && c.ring_free <= i.ring_free && c.buf_free <= i.buf_free,
            "pool counts above their initial values ({what}): {c:?} > {i:?}"
        );
        assert_eq!(
            (c.if_total, c.ring_total, c.buf_total),
            (i.if_total, i.ring_total, i.buf_total)
        );
    }
}

/// One end of the pipe as its client sees it.
struct End {
    fd: FdId,
    /// Offsets of the netmap_if, TX ring 0 and RX ring 0 (computed at registration,
    /// before the client scribbles anything).
    nifp: usize,
    tx: usize,
    rx: usize,
    tx_slots: u32,
    rx_slots: u32,
    registered: bool,
}

const PIPE_NAMES: [&str; 2] = ["f{0", "f}0"];

fn open_end(fx: &RingFixture, which: usize, cfg: u8, fresh: bool) -> End {
    let cp = &fx.cp;
    let fd = cp.open();
    let slots = [8u32, 16, 3, 1024][usize::from(cfg & 3)];
    let reg = NmreqRegister {
        nr_tx_slots: slots,
        nr_rx_slots: slots,
        nr_tx_rings: 1,
        nr_rx_rings: 1,
        nr_mode: abi::NR_REG_ALL_NIC,
        nr_extra_bufs: u32::from((cfg >> 2) & 7),
        ..Default::default()
    };
    let mut e = End {
        fd,
        nifp: 0,
        tx: 0,
        rx: 0,
        tx_slots: 0,
        rx_slots: 0,
        registered: false,
    };
    let Ok(r) = register(cp, fd, PIPE_NAMES[which], &reg) else {
        return e;
    };
    let nifp = usize::try_from(r.nr_offset).expect("nr_offset");
    assert!(
        nifp + size_of::<NetmapIf>() <= fx.map.len(),
        "netmap_if outside the region"
    );
    let ntx = fx.read_u32(nifp + offset_of!(NetmapIf, ni_tx_rings)) as usize;
    let nhtx = fx.read_u32(nifp + offset_of!(NetmapIf, ni_host_tx_rings)) as usize;
    assert_eq!(ntx, usize::from(r.nr_tx_rings), "ni_tx_rings");
    let ring = |k: usize| {
        let ofs = fx.read_i64(nifp + abi::if_ring_ofs_offset(k));
        let off = usize::try_from(nifp as i64 + ofs).expect("ring offset");
        assert!(
            off + size_of::<NetmapRing>() <= fx.map.len(),
            "ring outside the region"
        );
        off
    };
    e.tx = ring(0);
    e.rx = ring(ntx + nhtx);
    e.nifp = nifp;
    e.tx_slots = r.nr_tx_slots;
    e.rx_slots = r.nr_rx_slots;
    if fresh {
        // Only on first registration: when an end is registered again (action 10) its
        // rings may survive (the peer keeps the pair), with whatever the client wrote
        // into their headers, as in the kernel.
        assert_eq!(
            fx.read_u32(e.tx + offset_of!(NetmapRing, num_slots)),
            e.tx_slots
        );
        assert_eq!(
            fx.read_u32(e.rx + offset_of!(NetmapRing, num_slots)),
            e.rx_slots
        );
    }
    e.registered = true;
    e
}

thread_local! {
    static RING_FX: RefCell<Option<RingFixture>> = const { RefCell::new(None) };
}

/// Input: `cfg` of each end (slots per ring, extra buffers) | actions, each an opcode
/// byte (`op & 1` is the end, `op >> 1` the action) and its operands:
///
/// * 0/1/2: write head/cur/tail of a ring (`dir` byte, u32 value);
/// * 3: write a slot (`dir`, u16 index mod slots, u32 buf_idx, u16 len, u16 flags);
/// * 4/5: NIOCTXSYNC/NIOCRXSYNC; 6: poll (`events` byte);
/// * 7: advance like a well-behaved client (`dir`, count): head = cur = head + count;
/// * 8: raw u32 into the ring header (`dir`, word index, value);
/// * 9: raw u32 into the netmap_if (word index, value);
/// * 10: release the end and register it again (`cfg`);
/// * 11: set a slot flag pattern on a run of slots (`dir`, first, count, flags).
pub fn ring_sync(data: &[u8]) {
    RING_FX.with(|cell| {
        let mut slot = cell.borrow_mut();
        // Client scribbles may legitimately lose buffers (whatever index is in a slot
        // is what gets freed); start afresh before the pool runs dry.
        let stale = slot
            .as_ref()
            .is_some_and(|fx| fx.cp.pool_counts().buf_free < fx.initial.buf_free / 2);
        if slot.is_none() || stale {
            *slot = None;
            *slot = Some(RingFixture::new());
        }
        ring_sync_on(slot.as_ref().expect("fixture"), data);
    });
}

fn ring_sync_on(fx: &RingFixture, data: &[u8]) {
    let cp = &fx.cp;
    let mut d = data;
    let cfg = take::<2>(&mut d);
    let mut ends = [open_end(fx, 0, cfg[0], true), open_end(fx, 1, cfg[1], true)];
    fx.check_counts("after registration");
    let none = cuse_dev::ctrl::NoMemory;
    let mut steps = 0;
    while !d.is_empty() && steps < 256 {
        steps += 1;
        let op = take_u8(&mut d);
        let e = usize::from(op & 1);
        let act = (op >> 1) % 12;
        let end = &ends[e];
        let ring_of = |dir: u8| {
            if dir & 1 == 0 {
                (end.tx, end.tx_slots)
            } else {
                (end.rx, end.rx_slots)
            }
        };
        match act {
            0..=2 => {
                let (r, _) = ring_of(take_u8(&mut d));
                let v = take_u32(&mut d);
                if end.registered {
                    let f = [
                        offset_of!(NetmapRing, head),
                        offset_of!(NetmapRing, cur),
                        offset_of!(NetmapRing, tail),
                    ][usize::from(act)];
                    fx.write_u32(r + f, v);
                }
            }
            3 => {
                let (r, n) = ring_of(take_u8(&mut d));
                let i = u32::from(take_u16(&mut d));
                let buf_idx = take_u32(&mut d);
                let len = take_u16(&mut d);
                let flags = take_u16(&mut d);
                if end.registered && n > 0 {
                    let s = r + abi::ring_slot_offset(i % n);
                    fx.write_u32(s, buf_idx);
                    fx.write_u16(s + 4, len);
                    fx.write_u16(s + 6, flags);
                }
            }
            4 => {
                let _ = cp.ioctl(end.fd, abi::NIOCTXSYNC, &[], &none);
            }
            5 => {
                let _ = cp.ioctl(end.fd, abi::NIOCRXSYNC, &[], &none);
            }
            6 => {
                let ev = take_u8(&mut d);
                let mut events = 0;
                if ev & 1 != 0 {
                    events |= libc::POLLIN as u32;
                }
                if ev & 2 != 0 {
                    events |= libc::POLLOUT as u32;
                }
                if ev & 4 != 0 {
                    events |= libc::POLLRDNORM as u32;
                }
                if ev & 8 != 0 {
                    events |= libc::POLLWRNORM as u32;
                }
                let _ = cp.poll(end.fd, events, None);
            }
            7 => {
                let (r, n) = ring_of(take_u8(&mut d));
                let k = u32::from(take_u8(&mut d));
                if end.registered && n > 0 {
                    let h = fx.read_u32(r + offset_of!(NetmapRing, head)) % n;
                    let nh = (h + k) % n;
                    fx.write_u32(r + offset_of!(NetmapRing, head), nh);
                    fx.write_u32(r + offset_of!(NetmapRing, cur), nh);
                }
            }
            8 => {
                let (r, _) = ring_of(take_u8(&mut d));
                let w = usize::from(take_u8(&mut d)) % (size_of::<NetmapRing>() / 4);
                let v = take_u32(&mut d);
                if end.registered {
                    fx.write_u32(r + 4 * w, v);
                }
            }
            9 => {
                let w = usize::from(take_u8(&mut d)) % 64;
                let v = take_u32(&mut d);
                if end.registered {
                    fx.write_u32(end.nifp + 4 * w, v);
                }
            }
            10 => {
                let c = take_u8(&mut d);
                cp.release(ends[e].fd);
                ends[e] = open_end(fx, e, c, false);
            }
            _ => {
                let (r, n) = ring_of(take_u8(&mut d));
                let first = u32::from(take_u8(&mut d));
                let count = u32::from(take_u8(&mut d));
                let flags = take_u16(&mut d);
                if end.registered && n > 0 {
                    for j in 0..count.min(n) {
                        let s = r + abi::ring_slot_offset((first + j) % n);
                        fx.write_u16(s + 6, flags);
                    }
                }
            }
        }
        fx.check_counts("after an action");
    }
    for e in &ends {
        cp.release(e.fd);
    }
    fx.check_counts("after release");
    let c = cp.pool_counts();
    assert_eq!(
        (c.if_free, c.ring_free),
        (fx.initial.if_free, fx.initial.ring_free),
        "netmap_if or ring objects not returned after releasing both ends"
    );
}

// ---------------------------------------------------------------------------------
// kring_window
// ---------------------------------------------------------------------------------

/// `x` in the circular interval `[a, b]` of an `n`-slot ring, by walking it.
fn in_window_walk(n: u32, a: u32, b: u32, x: u32) -> bool {
    let mut i = a;
    loop {
        if i == x {
            return true;
        }
        if i == b {
            return false;
        }
        i = (i + 1) % n;
    }
}

/// The same by distances from `a`.
fn in_window_dist(n: u32, a: u32, b: u32, x: u32) -> bool {
    let n = u64::from(n);
    let dist = |y: u32| (u64::from(y) + n - u64::from(a)) % n;
    x < n as u32 && dist(x) <= dist(b)
}

/// Reference model of `window_ok` (`a`, `b` below `n`).
pub fn window_ok_model(n: u32, a: u32, b: u32, head: u32, cur: u32) -> bool {
    if head >= n || cur >= n {
        return false;
    }
    let walk = n <= 4096;
    let w = |a, b, x| {
        let d = in_window_dist(n, a, b, x);
        if walk {
            assert_eq!(d, in_window_walk(n, a, b, x), "the two models disagree");
        }
        d
    };
    w(a, b, head) && w(head, b, cur)
}

/// Input: five u32 `n, a, b, head, cur`; `n` is 0-extended to at least 1, `a` and `b`
/// are reduced modulo `n` (the kring's own indices are always in range); with the top
/// bit of the first byte clear, `n` is small and head/cur are near the ring.
pub fn kring_window(data: &[u8]) {
    let mut d = data;
    let sel = take_u8(&mut d);
    let mut n = take_u32(&mut d);
    let (mut a, mut b, mut head, mut cur) = (
        take_u32(&mut d),
        take_u32(&mut d),
        take_u32(&mut d),
        take_u32(&mut d),
    );
    if sel & 0x80 == 0 {
        n %= 64;
        head %= 2 * n.max(1) + 1;
        cur %= 2 * n.max(1) + 1;
    }
    n = n.max(1);
    a %= n;
    b %= n;
    let got = netmap_netif::kring::window_ok(n, a, b, head, cur);
    let want = window_ok_model(n, a, b, head, cur);
    assert_eq!(
        got, want,
        "window_ok(n={n}, a={a}, b={b}, head={head}, cur={cur})"
    );
}
