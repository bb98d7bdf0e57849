//! Transport-independent tests of the control plane: a fake caller address space
//! ([`FakeMem`]), NIOCCTRL request builders, a fake client that plays the application's
//! side of the rings through the shared region, and a counting [`PollWaker`].

use super::fake_mem::FakeMem;
use super::poll::{POLLERR, POLLIN, POLLOUT};
use super::*;
use core::mem::{offset_of, size_of};
use netmap_abi::{NetmapIf, NetmapRing, NetmapSlot, NmreqHeader, NmreqOption, NmreqRegister};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use zerocopy::{FromBytes, IntoBytes};

const EINVAL: Errno = Errno(libc::EINVAL);
const EFAULT: Errno = Errno(libc::EFAULT);
const EBUSY: Errno = Errno(libc::EBUSY);
const EMSGSIZE: Errno = Errno(libc::EMSGSIZE);
const EOPNOTSUPP: Errno = Errno(libc::EOPNOTSUPP);
const ENXIO: Errno = Errno(libc::ENXIO);

/// Slots per ring of every port the tests create.
const SLOTS: u32 = 8;
/// Status the tests put into option headers, to see whether the daemon wrote them.
const UNTOUCHED: u32 = 0xdead;

// ---------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------

fn small_config() -> CtrlConfig {
    CtrlConfig {
        pools: PoolConfig {
            if_size: 1024,
            if_num: 16,
            ring_size: 36864,
            ring_num: 32,
            buf_size: 2048,
            buf_num: 8192,
        },
        prefer_huge: false,
        ..CtrlConfig::default()
    }
}

fn new_cp() -> ControlPlane {
    ControlPlane::new(&small_config()).expect("control plane with a small pool")
}

/// Counts wake-ups.
struct CountWaker(Arc<AtomicUsize>);

impl PollWaker for CountWaker {
    fn wake(self: Box<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn waker() -> (Arc<AtomicUsize>, Box<dyn PollWaker>) {
    let c = Arc::new(AtomicUsize::new(0));
    (c.clone(), Box::new(CountWaker(c)))
}

fn header(reqtype: u16, name: &str, body: u64, options: u64) -> NmreqHeader {
    let mut h = NmreqHeader {
        nr_reqtype: reqtype,
        nr_body: body,
        nr_options: options,
        ..Default::default()
    };
    netmap_abi::set_cname(&mut h.nr_name, name);
    h
}

fn ctrl(cp: &ControlPlane, fd: FdId, h: &NmreqHeader, um: &FakeMem) -> Result<Vec<u8>, Errno> {
    let out = cp.ioctl(fd, netmap_abi::NIOCCTRL, h.as_bytes(), um)?;
    assert_eq!(out.len(), netmap_abi::NMREQ_HEADER_SIZE);
    Ok(out)
}

fn reg_req(mode: u32, flags: u64, extra: u32) -> NmreqRegister {
    NmreqRegister {
        nr_tx_slots: SLOTS,
        nr_rx_slots: SLOTS,
        nr_tx_rings: 1,
        nr_rx_rings: 1,
        nr_mode: mode,
        nr_flags: flags,
        nr_extra_bufs: extra,
        ..Default::default()
    }
}

fn pipe_req(flags: u64, extra: u32) -> NmreqRegister {
    reg_req(netmap_abi::NR_REG_ALL_NIC, flags, extra)
}

fn null_req(extra: u32) -> NmreqRegister {
    NmreqRegister {
        nr_mem_id: 1,
        ..reg_req(netmap_abi::NR_REG_NULL, 0, extra)
    }
}

/// REGISTER with an option chain; returns the body as written back.
fn register_opts(
    cp: &ControlPlane,
    um: &FakeMem,
    fd: FdId,
    name: &str,
    reg: &NmreqRegister,
    opts: u64,
) -> Result<NmreqRegister, Errno> {
    let body = um.put(reg.as_bytes());
    let h = header(netmap_abi::NETMAP_REQ_REGISTER, name, body, opts);
    let res = ctrl(cp, fd, &h, um);
    let back: NmreqRegister = um.get(body);
    if res.is_err() {
        assert_eq!(&back, reg, "body must not be written back on failure");
    }
    res.map(|_| back)
}

fn register(
    cp: &ControlPlane,
    um: &FakeMem,
    fd: FdId,
    name: &str,
    reg: &NmreqRegister,
) -> Result<NmreqRegister, Errno> {
    register_opts(cp, um, fd, name, reg, 0)
}

/// Opens and registers a new descriptor, panicking on failure.
fn open_reg(
    cp: &ControlPlane,
    um: &FakeMem,
    name: &str,
    reg: &NmreqRegister,
) -> (FdId, NmreqRegister) {
    let fd = cp.open();
    let r = register(cp, um, fd, name, reg).unwrap_or_else(|e| panic!("REGISTER {name}: {e}"));
    (fd, r)
}

/// Places a chain of options with the given types (each 24 bytes, status preset to
/// [`UNTOUCHED`]) and returns their addresses; the first one heads the chain.
fn option_chain(um: &FakeMem, types: &[u32]) -> Vec<u64> {
    let addrs: Vec<u64> = types
        .iter()
        .map(|_| um.alloc(netmap_abi::NMREQ_OPTION_SIZE))
        .collect();
    for (i, (&a, &t)) in addrs.iter().zip(types).enumerate() {
        let o = NmreqOption {
            nro_next: addrs.get(i + 1).copied().unwrap_or(0),
            nro_reqtype: t,
            nro_status: UNTOUCHED,
            nro_size: netmap_abi::NMREQ_OPTION_SIZE as u64,
        };
        um.set(a, &o);
    }
    addrs
}

fn sync(cp: &ControlPlane, fd: FdId, cmd: u32) {
    assert_eq!(cp.ioctl(fd, cmd, &[], &NoMemory), Ok(Vec::new()));
}

fn txsync(cp: &ControlPlane, fd: FdId) {
    sync(cp, fd, netmap_abi::NIOCTXSYNC);
}

fn rxsync(cp: &ControlPlane, fd: FdId) {
    sync(cp, fd, netmap_abi::NIOCRXSYNC);
}

/// The application's view of one registration, through the shared region.
struct Client<'a> {
    mem: SharedMem<'a>,
    nifp: usize,
}

/// One ring as the application sees it.
#[derive(Clone, Copy)]
struct Ring<'a> {
    mem: SharedMem<'a>,
    off: usize,
}

impl<'a> Client<'a> {
    fn new(cp: &'a ControlPlane, reg: &NmreqRegister) -> Self {
        Self {
            mem: cp.mem(),
            nifp: reg.nr_offset as usize,
        }
    }

    fn nifp(&self) -> NetmapIf {
        let mut b = [0u8; size_of::<NetmapIf>()];
        self.mem.read_bytes(self.nifp, &mut b).unwrap();
        NetmapIf::read_from_bytes(&b).unwrap()
    }

    fn ring_ofs(&self, k: usize) -> i64 {
        self.mem
            .read_i64(self.nifp + netmap_abi::if_ring_ofs_offset(k))
            .unwrap()
    }

    fn ring_at(&self, k: usize) -> Ring<'a> {
        let ofs = self.ring_ofs(k);
        assert_ne!(ofs, 0, "ring_ofs[{k}] is 0 (ring not bound)");
        Ring {
            mem: self.mem,
            off: (self.nifp as i64 + ofs) as usize,
        }
    }

    fn tx(&self, i: usize) -> Ring<'a> {
        self.ring_at(i)
    }

    fn rx(&self, i: usize) -> Ring<'a> {
        let n = self.nifp();
        self.ring_at(i + n.ni_tx_rings as usize + n.ni_host_tx_rings as usize)
    }

    fn bufs_head(&self) -> u32 {
        self.mem
            .read_u32(self.nifp + offset_of!(NetmapIf, ni_bufs_head))
            .unwrap()
    }

    fn set_bufs_head(&self, v: u32) {
        self.mem
            .write_u32(self.nifp + offset_of!(NetmapIf, ni_bufs_head), v)
            .unwrap();
    }
}

impl Ring<'_> {
    fn u32_field(&self, off: usize) -> u32 {
        self.mem.read_u32(self.off + off).unwrap()
    }
    fn set_u32_field(&self, off: usize, v: u32) {
        self.mem.write_u32(self.off + off, v).unwrap();
    }
    fn head(&self) -> u32 {
        self.u32_field(offset_of!(NetmapRing, head))
    }
    fn cur(&self) -> u32 {
        self.u32_field(offset_of!(NetmapRing, cur))
    }
    fn tail(&self) -> u32 {
        self.u32_field(offset_of!(NetmapRing, tail))
    }
    fn num_slots(&self) -> u32 {
        self.u32_field(offset_of!(NetmapRing, num_slots))
    }
    fn buf_size(&self) -> usize {
        self.u32_field(offset_of!(NetmapRing, nr_buf_size)) as usize
    }
    fn dir(&self) -> u16 {
        self.mem
            .read_u16(self.off + offset_of!(NetmapRing, dir))
            .unwrap()
    }
    fn set_head_cur(&self, head: u32, cur: u32) {
        self.set_u32_field(offset_of!(NetmapRing, head), head);
        self.set_u32_field(offset_of!(NetmapRing, cur), cur);
    }
    fn advance(&self, to: u32) {
        self.set_head_cur(to, to);
    }
    fn slot(&self, k: u32) -> NetmapSlot {
        let mut b = [0u8; size_of::<NetmapSlot>()];
        self.mem
            .read_bytes(self.off + netmap_abi::ring_slot_offset(k), &mut b)
            .unwrap();
        NetmapSlot::read_from_bytes(&b).unwrap()
    }
    fn set_slot(&self, k: u32, s: &NetmapSlot) {
        self.mem
            .write_bytes(self.off + netmap_abi::ring_slot_offset(k), s.as_bytes())
            .unwrap();
    }
    /// Region offset of buffer `idx` (`ring + buf_ofs + idx * buf_size`).
    fn buf_off(&self, idx: u32) -> usize {
        let buf_ofs = self
            .mem
            .read_i64(self.off + offset_of!(NetmapRing, buf_ofs))
            .unwrap();
        (self.off as i64 + buf_ofs) as usize + idx as usize * self.buf_size()
    }
    fn write_buf(&self, idx: u32, data: &[u8]) {
        self.mem.write_bytes(self.buf_off(idx), data).unwrap();
    }
    fn read_buf(&self, idx: u32, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.mem.read_bytes(self.buf_off(idx), &mut v).unwrap();
        v
    }
    /// Fills the slots from head with `pkts` (payload, flags) and advances head/cur
    /// past them. Returns the buffer index used for each.
    fn fill(&self, pkts: &[(&[u8], u16)]) -> Vec<u32> {
        let n = self.num_slots();
        let mut k = self.head();
        let mut used = Vec::new();
        for (data, flags) in pkts {
            let mut s = self.slot(k);
            self.write_buf(s.buf_idx, data);
            s.len = data.len() as u16;
            s.flags = *flags;
            self.set_slot(k, &s);
            used.push(s.buf_idx);
            k = (k + 1) % n;
        }
        self.advance(k);
        used
    }
}

fn payload(i: usize) -> Vec<u8> {
    format!("packet number {i} through the pipe").into_bytes()
}

/// An open and registered pipe pair with its two clients.
fn pipe_pair<'a>(
    cp: &'a ControlPlane,
    um: &FakeMem,
    base: &str,
    mflags: u64,
) -> (FdId, Client<'a>, FdId, Client<'a>) {
    let (m, mr) = open_reg(cp, um, &format!("{base}{{1"), &pipe_req(mflags, 0));
    let (s, sr) = open_reg(cp, um, &format!("{base}}}1"), &pipe_req(0, 0));
    (m, Client::new(cp, &mr), s, Client::new(cp, &sr))
}

fn assert_unregistered(cp: &ControlPlane, fd: FdId) {
    assert_eq!(
        cp.ioctl(fd, netmap_abi::NIOCTXSYNC, &[], &NoMemory),
        Err(ENXIO)
    );
    assert_eq!(cp.poll(fd, POLLIN, None), POLLERR);
}

// ---------------------------------------------------------------------------------
// NIOCCTRL header and option chain rules (§5)
// ---------------------------------------------------------------------------------

#[test]
fn unknown_option_fails_register_with_eopnotsupp_and_fd_stays_free() {
    let cp = new_cp();
    let um = FakeMem::new();
    let before = cp.pool_counts();
    let fd = cp.open();
    let opts = option_chain(&um, &[1234, 4321]);
    let r = register_opts(&cp, &um, fd, "opt{1", &pipe_req(0, 10), opts[0]);
    assert_eq!(r, Err(EOPNOTSUPP));
    for (i, &a) in opts.iter().enumerate() {
        let o: NmreqOption = um.get(a);
        assert_eq!(o.nro_status, libc::EOPNOTSUPP as u32, "option {i}");
        assert_eq!(
            o.nro_next,
            opts.get(i + 1).copied().unwrap_or(0),
            "nro_next restored"
        );
        assert_eq!(o.nro_size, netmap_abi::NMREQ_OPTION_SIZE as u64);
    }
    assert_unregistered(&cp, fd);
    assert_eq!(
        cp.pool_counts(),
        before,
        "failed REGISTER released everything"
    );
    assert!(cp.status().contains("ports=0\n"), "{}", cp.status());
    // The descriptor is still usable.
    let r = register(&cp, &um, fd, "opt{1", &pipe_req(0, 0)).expect("retry without options");
    assert_eq!(r.nr_tx_slots, SLOTS);
    cp.release(fd);
    assert_eq!(cp.pool_counts(), before);
}

#[test]
fn self_linked_unknown_option_is_emsgsize_without_write_back() {
    let cp = new_cp();
    let um = FakeMem::new();
    let fd = cp.open();
    let a = option_chain(&um, &[1234])[0];
    let mut o: NmreqOption = um.get(a);
    o.nro_next = a;
    um.set(a, &o);
    assert_eq!(
        register_opts(&cp, &um, fd, "loop{1", &pipe_req(0, 0), a),
        Err(EMSGSIZE)
    );
    let back: NmreqOption = um.get(a);
    assert_eq!(back, o, "no header written back");
    assert_eq!(back.nro_status, UNTOUCHED);
    assert_unregistered(&cp, fd);
}

#[test]
fn self_linked_offsets_option_is_einval() {
    let cp = new_cp();
    let um = FakeMem::new();
    let fd = cp.open();
    let a = um.alloc(size_of::<netmap_abi::NmreqOptOffsets>());
    let o = netmap_abi::NmreqOptOffsets {
        nro_opt: NmreqOption {
            nro_next: a,
            nro_reqtype: netmap_abi::NETMAP_REQ_OPT_OFFSETS,
            nro_status: UNTOUCHED,
            nro_size: size_of::<netmap_abi::NmreqOptOffsets>() as u64,
        },
        ..Default::default()
    };
    um.set(a, &o);
    assert_eq!(
        register_opts(&cp, &um, fd, "loop{1", &pipe_req(0, 0), a),
        Err(EINVAL)
    );
    let back: NmreqOption = um.get(a);
    assert_eq!(back.nro_status, libc::EINVAL as u32);
    assert_eq!(back.nro_next, a);
    assert_unregistered(&cp, fd);
}

#[test]
fn reqtype_zero_is_einval() {
    let cp = new_cp();
    let um = FakeMem::new();
    let fd = cp.open();
    // Request type 0: no body, options still copied in, then EINVAL.
    let opts = option_chain(&um, &[1234]);
    assert_eq!(ctrl(&cp, fd, &header(0, "", 0, opts[0]), &um), Err(EINVAL));
    let o: NmreqOption = um.get(opts[0]);
    assert_eq!(
        o.nro_status,
        libc::EOPNOTSUPP as u32,
        "copied in, not consumed"
    );
    // Option type 0: that option gets EINVAL, the request EINVAL.
    let opts = option_chain(&um, &[1234, 0]);
    assert_eq!(
        register_opts(&cp, &um, fd, "z{1", &pipe_req(0, 0), opts[0]),
        Err(EINVAL)
    );
    let o0: NmreqOption = um.get(opts[0]);
    let o1: NmreqOption = um.get(opts[1]);
    assert_eq!(o0.nro_status, 0);
    assert_eq!(o1.nro_status, libc::EINVAL as u32);
    assert_unregistered(&cp, fd);
}

#[test]
fn eventfds_after_99_unknown_options_overflows_staging() {
    let cp = new_cp();
    let um = FakeMem::new();
    let fd = cp.open();
    let mut types = vec![6u32; 99];
    types.push(netmap_abi::NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS);
    let opts = option_chain(&um, &types);
    let last = *opts.last().unwrap();
    // Make room for the 1000-byte option and set its size.
    let ev = um.alloc(1000);
    let mut o: NmreqOption = um.get(last);
    o.nro_size = 1000;
    um.set(ev, &o);
    let mut prev: NmreqOption = um.get(opts[98]);
    prev.nro_next = ev;
    um.set(opts[98], &prev);
    assert_eq!(
        register_opts(&cp, &um, fd, "ev{1", &pipe_req(0, 0), opts[0]),
        Err(EMSGSIZE)
    );
    // Not the "header does not fit" case: every header is written back with status 0.
    for &a in opts[..99].iter().chain([ev].iter()) {
        let back: NmreqOption = um.get(a);
        assert_eq!(back.nro_status, 0, "option at {a:#x}");
    }
    assert_unregistered(&cp, fd);
}

#[test]
fn staging_buffer_holds_exactly_127_unknown_options_with_a_register_body() {
    let cp = new_cp();
    let um = FakeMem::new();
    let before = cp.pool_counts();
    let fd = cp.open();
    let opts = option_chain(&um, &[1234; 127]);
    assert_eq!(
        register_opts(&cp, &um, fd, "many{1", &pipe_req(0, 0), opts[0]),
        Err(EOPNOTSUPP)
    );
    for &a in &opts {
        let o: NmreqOption = um.get(a);
        assert_eq!(o.nro_status, libc::EOPNOTSUPP as u32);
    }
    assert_eq!(cp.pool_counts(), before);

    let opts = option_chain(&um, &[1234; 128]);
    assert_eq!(
        register_opts(&cp, &um, fd, "many{1", &pipe_req(0, 0), opts[0]),
        Err(EMSGSIZE)
    );
    for &a in &opts {
        let o: NmreqOption = um.get(a);
        assert_eq!(o.nro_status, UNTOUCHED, "no header written back");
    }
    assert_eq!(cp.pool_counts(), before);
    assert_unregistered(&cp, fd);
}

#[test]
fn bad_option_pointers_are_efault() {
    let cp = new_cp();
    let um = FakeMem::new();
    let fd = cp.open();
    for bad in [8u64, FakeMem::end(), FakeMem::end() - 8, u64::MAX - 4] {
        assert_eq!(
            register_opts(&cp, &um, fd, "f{1", &pipe_req(0, 0), bad),
            Err(EFAULT),
            "{bad:#x}"
        );
    }
    // Second option unmapped: the first header comes back with status 0.
    let opts = option_chain(&um, &[1234]);
    let mut o: NmreqOption = um.get(opts[0]);
    o.nro_next = FakeMem::end() + 0x1000;
    um.set(opts[0], &o);
    assert_eq!(
        register_opts(&cp, &um, fd, "f{1", &pipe_req(0, 0), opts[0]),
        Err(EFAULT)
    );
    let back: NmreqOption = um.get(opts[0]);
    assert_eq!(back.nro_status, 0);
    assert_eq!(back.nro_next, FakeMem::end() + 0x1000);
    // Known option whose body runs off the mapping.
    let a = FakeMem::end() - netmap_abi::NMREQ_OPTION_SIZE as u64;
    um.set(
        a,
        &NmreqOption {
            nro_next: 0,
            nro_reqtype: netmap_abi::NETMAP_REQ_OPT_OFFSETS,
            nro_status: UNTOUCHED,
            nro_size: 56,
        },
    );
    assert_eq!(
        register_opts(&cp, &um, fd, "f{1", &pipe_req(0, 0), a),
        Err(EFAULT)
    );
    let back: NmreqOption = um.get(a);
    assert_eq!(back.nro_status, 0);
    assert_unregistered(&cp, fd);
    assert!(cp.status().contains("ports=0\n"));
}

#[test]
fn bad_body_pointer_is_efault() {
    let cp = new_cp();
    let um = FakeMem::new();
    let fd = cp.open();
    for bad in [0x1000u64, FakeMem::end(), FakeMem::end() - 8] {
        let h = header(netmap_abi::NETMAP_REQ_REGISTER, "b{1", bad, 0);
        assert_eq!(ctrl(&cp, fd, &h, &um), Err(EFAULT), "{bad:#x}");
    }
    // Body required but absent, body given for a body-less request.
    let h = header(netmap_abi::NETMAP_REQ_REGISTER, "b{1", 0, 0);
    assert_eq!(ctrl(&cp, fd, &h, &um), Err(EINVAL));
    let body = um.put(&[0u8; 64]);
    let h = header(netmap_abi::NETMAP_REQ_CSB_ENABLE, "b{1", body, 0);
    assert_eq!(ctrl(&cp, fd, &h, &um), Err(EINVAL));
    assert_unregistered(&cp, fd);
}

#[test]
fn version_and_reserved_checks() {
    let cp = new_cp();
    let um = FakeMem::new();
    let fd = cp.open();
    let body = um.put(pipe_req(0, 0).as_bytes());
    for v in [0u16, 13, 16, 0xffff] {
        let mut h = header(netmap_abi::NETMAP_REQ_REGISTER, "v{1", body, 0);
        h.nr_version = v;
        assert_eq!(ctrl(&cp, fd, &h, &um), Err(EINVAL), "version {v}");
    }
    let mut h = header(netmap_abi::NETMAP_REQ_REGISTER, "v{1", body, 0);
    h.nr_reserved = 1;
    assert_eq!(ctrl(&cp, fd, &h, &um), Err(EINVAL));
    // Wrong header size.
    assert_eq!(
        cp.ioctl(fd, netmap_abi::NIOCCTRL, &[0u8; 87], &um),
        Err(EINVAL)
    );
    assert_unregistered(&cp, fd);
    // Version 15 is accepted.
    let mut h = header(netmap_abi::NETMAP_REQ_REGISTER, "v{1", body, 0);
    h.nr_version = 15;
    ctrl(&cp, fd, &h, &um).expect("version 15");
    cp.release(fd);
}

// ---------------------------------------------------------------------------------
// Registration, extra buffers and accounting (§5.1, §7.3, §7.4, §10.4, §10.6)
// ---------------------------------------------------------------------------------

/// Walks an extra-buffer list through the first word of each buffer.
fn walk_extra(ring: Ring, head: u32, max: usize) -> Vec<u32> {
    let mut v = Vec::new();
    let mut idx = head;
    while idx != 0 {
        assert!(v.len() < max, "list longer than {max}");
        v.push(idx);
        idx = ring.mem.read_u32(ring.buf_off(idx)).unwrap();
    }
    v
}

#[test]
fn register_reply_and_region_contents_of_a_pipe() {
    let cp = new_cp();
    let um = FakeMem::new();
    let (m, mc, s, sc) = pipe_pair(&cp, &um, "rr", 0);
    let mn = mc.nifp();
    assert_eq!(netmap_abi::cname(&mn.ni_name), "rr{1");
    assert_eq!(netmap_abi::cname(&sc.nifp().ni_name), "rr}1");
    assert_eq!(
        (
            mn.ni_tx_rings,
            mn.ni_rx_rings,
            mn.ni_host_tx_rings,
            mn.ni_host_rx_rings
        ),
        (1, 1, 1, 1)
    );
    assert_ne!(mc.nifp, sc.nifp, "one netmap_if per registration");
    // ring_ofs: TX, host TX placeholder, RX, host RX placeholder.
    assert_ne!(mc.ring_ofs(0), 0);
    assert_eq!(mc.ring_ofs(1), 0);
    assert_ne!(mc.ring_ofs(2), 0);
    assert_eq!(mc.ring_ofs(3), 0);
    let (t, r) = (mc.tx(0), mc.rx(0));
    assert_eq!(
        (t.head(), t.cur(), t.tail(), t.num_slots(), t.dir()),
        (0, 0, SLOTS - 1, SLOTS, 1)
    );
    assert_eq!(
        (r.head(), r.cur(), r.tail(), r.num_slots(), r.dir()),
        (0, 0, 0, SLOTS, 0)
    );
    assert_eq!(t.buf_size(), 2048);
    // Master TX slot k and slave RX slot k start with the same buffer.
    let sr = sc.rx(0);
    for k in 0..SLOTS {
        assert_eq!(t.slot(k).buf_idx, sr.slot(k).buf_idx);
        assert_eq!(t.slot(k).len, 2048);
        assert!(t.slot(k).buf_idx >= 2);
    }
    cp.release(m);
    cp.release(s);
}

#[test]
fn extra_buffers_list_is_linked_through_first_words() {
    let cp = new_cp();
    let um = FakeMem::new();
    let before = cp.pool_counts();
    let (fd, reg) = open_reg(&cp, &um, "nx", &null_req(20));
    assert_eq!(reg.nr_extra_bufs, 20);
    assert_eq!(reg.nr_mem_id, 1);
    assert_eq!(
        (
            reg.nr_tx_rings,
            reg.nr_rx_rings,
            reg.nr_tx_slots,
            reg.nr_rx_slots
        ),
        (1, 1, SLOTS, SLOTS)
    );
    assert_eq!(reg.nr_mode, netmap_abi::NR_REG_NULL, "nr_mode not modified");
    let c = Client::new(&cp, &reg);
    assert_eq!(c.nifp().ni_bufs_head, c.bufs_head());
    let ring = c.tx(0);
    let list = walk_extra(ring, c.bufs_head(), 20);
    assert_eq!(list.len(), 20);
    let distinct: HashSet<u32> = list.iter().copied().collect();
    assert_eq!(distinct.len(), 20);
    let ring_bufs: HashSet<u32> = (0..SLOTS)
        .flat_map(|k| [c.tx(0).slot(k).buf_idx, c.rx(0).slot(k).buf_idx])
        .collect();
    for &b in &list {
        assert!(b >= 2 && b < before.buf_total, "index {b}");
        assert!(!ring_bufs.contains(&b), "extra buffer {b} also in a ring");
    }
    let after_reg = cp.pool_counts();
    assert_eq!(after_reg.buf_free, before.buf_free - 20 - 2 * SLOTS);
    assert_eq!(after_reg.if_free, before.if_free - 1);
    assert_eq!(after_reg.ring_free, before.ring_free - 2);
    cp.release(fd);
    assert_eq!(cp.pool_counts(), before);
    // No extra buffers requested: empty list.
    let (fd, reg) = open_reg(&cp, &um, "nx", &null_req(0));
    assert_eq!(reg.nr_extra_bufs, 0);
    assert_eq!(Client::new(&cp, &reg).bufs_head(), 0);
    cp.release(fd);
    assert_eq!(cp.pool_counts(), before);
}

#[test]
fn asking_for_more_extra_buffers_than_exist_returns_what_was_got() {
    let cp = new_cp();
    let um = FakeMem::new();
    let before = cp.pool_counts();
    let (fd, reg) = open_reg(&cp, &um, "greedy", &null_req(1_000_000));
    let expect = before.buf_free - 2 * SLOTS;
    assert_eq!(reg.nr_extra_bufs, expect);
    assert_eq!(cp.pool_counts().buf_free, 0);
    let c = Client::new(&cp, &reg);
    assert_eq!(
        walk_extra(c.tx(0), c.bufs_head(), expect as usize + 1).len(),
        expect as usize
    );
    // The pool is dry: another port cannot get rings.
    let fd2 = cp.open();
    assert_eq!(
        register(&cp, &um, fd2, "dry{1", &pipe_req(0, 0)),
        Err(Errno(libc::ENOMEM))
    );
    cp.release(fd2);
    cp.release(fd);
    assert_eq!(cp.pool_counts(), before);
}

fn pipe_accounting(close_master_first: bool) {
    let cp = new_cp();
    let um = FakeMem::new();
    let before = cp.pool_counts();
    let (m, mr) = open_reg(&cp, &um, "acct{7", &pipe_req(0, 20));
    assert_eq!(mr.nr_extra_bufs, 20);
    let after_master = cp.pool_counts();
    // Both ends' rings: 2 connected pairs of SLOTS buffers, 4 ring objects.
    assert_eq!(after_master.buf_free, before.buf_free - 2 * SLOTS - 20);
    assert_eq!(after_master.ring_free, before.ring_free - 4);
    let (s, sr) = open_reg(&cp, &um, "acct}7", &pipe_req(0, 20));
    assert_eq!(sr.nr_extra_bufs, 20);
    let mut lists: HashSet<u32> = HashSet::new();
    for (r, c) in [(&mr, Client::new(&cp, &mr)), (&sr, Client::new(&cp, &sr))] {
        let l = walk_extra(c.tx(0), c.bufs_head(), 20);
        assert_eq!(l.len(), r.nr_extra_bufs as usize);
        lists.extend(l);
    }
    assert_eq!(lists.len(), 40, "the two lists are disjoint");
    assert_eq!(cp.pool_counts().buf_free, after_master.buf_free - 20);
    let (first, second) = if close_master_first { (m, s) } else { (s, m) };
    cp.release(first);
    let mid = cp.pool_counts();
    assert_eq!(
        mid.buf_free, after_master.buf_free,
        "one end's extra buffers returned, rings kept"
    );
    assert_eq!(mid.ring_free, after_master.ring_free);
    assert_eq!(mid.if_free, before.if_free - 1);
    cp.release(second);
    assert_eq!(cp.pool_counts(), before);
    assert!(cp.status().contains("ports=0\n"));
}

#[test]
fn pipe_accounting_master_closed_first() {
    pipe_accounting(true);
}

#[test]
fn pipe_accounting_slave_closed_first() {
    pipe_accounting(false);
}

#[test]
fn pipe_end_reopened_after_close_finds_ring_state() {
    let cp = new_cp();
    let um = FakeMem::new();
    let before = cp.pool_counts();
    let (m, mc, s, _sc) = pipe_pair(&cp, &um, "ro", 0);
    mc.tx(0).fill(&[(&payload(0), 0), (&payload(1), 0)]);
    txsync(&cp, m);
    cp.release(s);
    let (s2, sr) = open_reg(&cp, &um, "ro}1", &pipe_req(0, 0));
    let sc = Client::new(&cp, &sr);
    rxsync(&cp, s2);
    assert_eq!(sc.rx(0).tail(), 2);
    assert_eq!(
        sc.rx(0)
            .read_buf(sc.rx(0).slot(1).buf_idx, payload(1).len()),
        payload(1)
    );
    cp.release(m);
    cp.release(s2);
    assert_eq!(cp.pool_counts(), before);
}

#[test]
fn null_port_accounting_and_sync() {
    let cp = new_cp();
    let um = FakeMem::new();
    let before = cp.pool_counts();
    let (a, ar) = open_reg(&cp, &um, "n0", &null_req(20));
    let (b, br) = open_reg(&cp, &um, "n0", &null_req(5));
    assert_ne!(ar.nr_offset, br.nr_offset);
    let c = Client::new(&cp, &ar);
    let t = c.tx(0);
    t.fill(&[(&payload(0), 0)]);
    txsync(&cp, a);
    assert_eq!(t.tail(), SLOTS - 1, "null TX never completes");
    rxsync(&cp, a);
    assert_eq!(c.rx(0).tail(), 0);
    assert_eq!(cp.poll(a, POLLIN, None), 0);
    cp.release(a);
    cp.release(b);
    assert_eq!(cp.pool_counts(), before);
    // Zero rings and slots are allowed.
    let (z, zr) = open_reg(
        &cp,
        &um,
        "zero",
        &NmreqRegister {
            nr_tx_rings: 0,
            nr_rx_rings: 0,
            nr_tx_slots: 0,
            nr_rx_slots: 0,
            ..null_req(3)
        },
    );
    assert_eq!(
        (zr.nr_tx_rings, zr.nr_rx_rings, zr.nr_extra_bufs),
        (0, 0, 3)
    );
    cp.release(z);
    assert_eq!(cp.pool_counts(), before);
}

#[test]
fn failing_register_leaves_counts_unchanged() {
    let cp = new_cp();
    let um = FakeMem::new();
    let before = cp.pool_counts();

    // EINVAL: modes.
    let fd = cp.open();
    for mode in [
        0,
        netmap_abi::NR_REG_SW,
        netmap_abi::NR_REG_NIC_SW,
        netmap_abi::NR_REG_PIPE_MASTER,
        netmap_abi::NR_REG_PIPE_SLAVE,
        99,
    ] {
        assert_eq!(
            register(&cp, &um, fd, "m{1", &reg_req(mode, 0, 10)),
            Err(EINVAL),
            "mode {mode}"
        );
        assert_eq!(cp.pool_counts(), before, "mode {mode}");
    }
    // EINVAL: null port without mem_id, unknown mem_id.
    let r = NmreqRegister {
        nr_mem_id: 0,
        ..null_req(10)
    };
    assert_eq!(register(&cp, &um, fd, "n", &r), Err(EINVAL));
    let r = NmreqRegister {
        nr_mem_id: 7,
        ..null_req(10)
    };
    assert_eq!(register(&cp, &um, fd, "n", &r), Err(EINVAL));
    // Bad pipe names, unknown interface.
    assert_eq!(register(&cp, &um, fd, "{1", &pipe_req(0, 0)), Err(EINVAL));
    assert_eq!(register(&cp, &um, fd, "x{", &pipe_req(0, 0)), Err(EINVAL));
    assert_eq!(
        register(&cp, &um, fd, "nosuchif0", &pipe_req(0, 0)),
        Err(ENXIO)
    );
    assert_eq!(cp.pool_counts(), before);
    assert!(cp.status().contains("ports=0\n"), "{}", cp.status());

    // EOPNOTSUPP: unknown option on a new pipe (rings created, then torn down).
    let opts = option_chain(&um, &[77]);
    assert_eq!(
        register_opts(&cp, &um, fd, "m{1", &pipe_req(0, 10), opts[0]),
        Err(EOPNOTSUPP)
    );
    assert_eq!(cp.pool_counts(), before);
    // ... and on a null port.
    assert_eq!(
        register_opts(&cp, &um, fd, "n", &null_req(10), opts[0]),
        Err(EOPNOTSUPP)
    );
    assert_eq!(cp.pool_counts(), before);
    assert_unregistered(&cp, fd);

    // EBUSY: exclusive conflicts, against an existing pair.
    let (m, _) = open_reg(&cp, &um, "ex{1", &pipe_req(netmap_abi::NR_EXCLUSIVE, 4));
    let with_excl = cp.pool_counts();
    assert_eq!(register(&cp, &um, fd, "ex{1", &pipe_req(0, 10)), Err(EBUSY));
    assert_eq!(
        register(
            &cp,
            &um,
            fd,
            "ex{1",
            &pipe_req(netmap_abi::NR_EXCLUSIVE, 10)
        ),
        Err(EBUSY)
    );
    assert_eq!(cp.pool_counts(), with_excl);
    // Unknown option on the other end of the live pair: the pair survives.
    assert_eq!(
        register_opts(&cp, &um, fd, "ex}1", &pipe_req(0, 10), opts[0]),
        Err(EOPNOTSUPP)
    );
    assert_eq!(cp.pool_counts(), with_excl);
    // A registered descriptor cannot register again.
    assert_eq!(
        register(&cp, &um, m, "other{1", &pipe_req(0, 10)),
        Err(EBUSY)
    );
    assert_eq!(cp.pool_counts(), with_excl);
    // Exclusive request when the ring already has a user.
    let (s, _) = open_reg(&cp, &um, "ex}1", &pipe_req(0, 0));
    let with_both = cp.pool_counts();
    assert_eq!(
        register(
            &cp,
            &um,
            fd,
            "ex}1",
            &pipe_req(netmap_abi::NR_EXCLUSIVE, 10)
        ),
        Err(EBUSY)
    );
    assert_eq!(cp.pool_counts(), with_both);
    // Releasing the exclusive owner frees the rings for others.
    cp.release(m);
    register(&cp, &um, fd, "ex{1", &pipe_req(0, 0)).expect("exclusive owner gone");
    cp.release(fd);
    cp.release(s);
    assert_eq!(cp.pool_counts(), before);
}

// ---------------------------------------------------------------------------------
// Ring protocol through the control plane (§6, §8, §9, §10.4)
// ---------------------------------------------------------------------------------

#[test]
fn pipe_carries_packets_and_returns_slots() {
    let cp = new_cp();
    let um = FakeMem::new();
    let (m, mc, s, sc) = pipe_pair(&cp, &um, "data", 0);
    let (t, r) = (mc.tx(0), sc.rx(0));
    let pkts: Vec<Vec<u8>> = (0..3).map(payload).collect();
    let bufs = t.fill(&pkts.iter().map(|p| (p.as_slice(), 0)).collect::<Vec<_>>());
    assert_eq!((t.head(), t.cur()), (3, 3));
    txsync(&cp, m);
    assert_eq!(t.tail(), SLOTS - 1, "nothing released yet");
    assert_eq!(r.tail(), 0, "reader sees nothing before its own rxsync");
    rxsync(&cp, s);
    assert_eq!((r.head(), r.cur(), r.tail()), (0, 0, 3));
    for (k, p) in pkts.iter().enumerate() {
        let sl = r.slot(k as u32);
        assert_eq!(sl.buf_idx, bufs[k], "same buffer, zero copy");
        assert_eq!(usize::from(sl.len), p.len());
        assert_eq!(&r.read_buf(sl.buf_idx, p.len()), p);
    }
    // Reader releases; writer's tail moves only on its next txsync.
    r.advance(3);
    rxsync(&cp, s);
    assert_eq!(t.tail(), SLOTS - 1);
    txsync(&cp, m);
    assert_eq!(t.tail(), 2, "writer owns [3, 2) now");
    // Wrap around: fill the whole free space (N-1 slots) and pass it.
    let more: Vec<Vec<u8>> = (3..3 + SLOTS as usize - 1).map(payload).collect();
    t.fill(&more.iter().map(|p| (p.as_slice(), 0)).collect::<Vec<_>>());
    assert_eq!(t.head(), 2);
    txsync(&cp, m);
    rxsync(&cp, s);
    assert_eq!(r.tail(), 2);
    let mut k = r.head();
    for p in &more {
        let sl = r.slot(k);
        assert_eq!(&r.read_buf(sl.buf_idx, p.len()), p);
        k = (k + 1) % SLOTS;
    }
    cp.release(m);
    cp.release(s);
}

#[test]
fn morefrag_batch_is_invisible_until_completed() {
    let cp = new_cp();
    let um = FakeMem::new();
    let (m, mc, s, sc) = pipe_pair(&cp, &um, "frag", 0);
    let (t, r) = (mc.tx(0), sc.rx(0));
    let (count, w) = waker();
    assert_eq!(cp.poll(s, POLLIN, Some(w)), 0);
    t.fill(&[
        (b"frag0", netmap_abi::NS_MOREFRAG),
        (b"frag1", netmap_abi::NS_MOREFRAG),
    ]);
    txsync(&cp, m);
    assert_eq!(
        count.load(Ordering::SeqCst),
        0,
        "incomplete packet wakes nobody"
    );
    rxsync(&cp, s);
    assert_eq!(r.tail(), 0, "fragments not visible");
    t.fill(&[(b"frag2", 0)]);
    txsync(&cp, m);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    rxsync(&cp, s);
    assert_eq!(r.tail(), 3);
    assert_eq!(
        r.slot(0).flags & netmap_abi::NS_MOREFRAG,
        netmap_abi::NS_MOREFRAG
    );
    assert_eq!(
        r.slot(1).flags & netmap_abi::NS_MOREFRAG,
        netmap_abi::NS_MOREFRAG
    );
    assert_eq!(r.slot(2).flags & netmap_abi::NS_MOREFRAG, 0);
    assert_eq!(r.read_buf(r.slot(2).buf_idx, 5), b"frag2");
    cp.release(m);
    cp.release(s);
}

#[test]
fn poll_waits_and_is_woken_by_the_peer() {
    let cp = new_cp();
    let um = FakeMem::new();
    let unreg = cp.open();
    assert_eq!(cp.poll(unreg, POLLIN | POLLOUT, None), POLLERR);
    assert_eq!(cp.poll(12345, POLLIN, None), POLLERR, "unknown descriptor");
    let (m, mc, s, sc) = pipe_pair(&cp, &um, "poll", 0);
    let (count, w) = waker();
    assert_eq!(cp.poll(s, POLLIN, Some(w)), 0);
    assert_eq!(count.load(Ordering::SeqCst), 0);
    // A TX ring with free slots is writable at once (no waker stored).
    assert_eq!(cp.poll(m, POLLOUT, None), POLLOUT);
    mc.tx(0).fill(&[(&payload(0), 0)]);
    txsync(&cp, m);
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "writer's txsync wakes the reader"
    );
    assert_eq!(cp.poll(s, POLLIN, None), POLLIN);
    assert_eq!(sc.rx(0).tail(), 1);
    // A second sync does not wake again (waker consumed).
    mc.tx(0).fill(&[(&payload(1), 0)]);
    txsync(&cp, m);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    // The writer, blocked on a full ring, is woken by the reader's release.
    let t = mc.tx(0);
    let n = (SLOTS - 1 - 2) as usize;
    let fill: Vec<Vec<u8>> = (0..n).map(payload).collect();
    t.fill(&fill.iter().map(|p| (p.as_slice(), 0)).collect::<Vec<_>>());
    assert_eq!(t.head(), t.tail());
    let (wcount, ww) = waker();
    assert_eq!(cp.poll(m, POLLOUT, Some(ww)), 0, "ring full");
    rxsync(&cp, s);
    let r = sc.rx(0);
    r.advance(r.tail());
    rxsync(&cp, s);
    assert_eq!(
        wcount.load(Ordering::SeqCst),
        1,
        "reader's release wakes the writer"
    );
    assert_eq!(cp.poll(m, POLLOUT, None), POLLOUT);
    // Closing an end wakes a waiting peer.
    let (ccount, cw) = waker();
    assert_eq!(cp.poll(s, POLLIN, Some(cw)), 0);
    cp.release(m);
    assert_eq!(ccount.load(Ordering::SeqCst), 1);
    cp.release(s);
    cp.release(unreg);
}

#[test]
fn tx_head_beyond_tail_resets_the_ring() {
    let cp = new_cp();
    let um = FakeMem::new();
    let (m, mc, s, sc) = pipe_pair(&cp, &um, "bad", 0);
    let t = mc.tx(0);
    t.fill(&[(&payload(0), 0), (&payload(1), 0), (&payload(2), 0)]);
    txsync(&cp, m);
    assert_eq!((t.head(), t.tail()), (3, SLOTS - 1));
    // head moved backwards, i.e. outside [rhead, rtail]: re-init, no sync, still Ok.
    t.set_head_cur(1, 1);
    txsync(&cp, m);
    assert_eq!((t.head(), t.cur(), t.tail()), (3, 3, SLOTS - 1));
    // head past the ring size.
    t.set_head_cur(SLOTS + 5, SLOTS + 5);
    txsync(&cp, m);
    assert_eq!((t.head(), t.cur(), t.tail()), (3, 3, SLOTS - 1));
    // cur beyond tail.
    t.set_head_cur(4, 2);
    txsync(&cp, m);
    assert_eq!((t.head(), t.cur(), t.tail()), (3, 3, SLOTS - 1));
    // The reader saw exactly the three good packets.
    rxsync(&cp, s);
    assert_eq!(sc.rx(0).tail(), 3);
    // poll: POLLERR for the broken ring; the retry pass on the re-initialised ring
    // then finds room, as netmap_poll's second TX pass does.
    t.set_head_cur(0, 0);
    assert_eq!(cp.poll(m, POLLOUT, None), POLLERR | POLLOUT);
    assert_eq!((t.head(), t.cur(), t.tail()), (3, 3, SLOTS - 1));
    // A tail the client scribbled over is restored by the next good sync.
    t.set_u32_field(offset_of!(NetmapRing, tail), 0);
    txsync(&cp, m);
    assert_eq!(t.tail(), SLOTS - 1);
    // RX: head beyond what the daemon handed over → re-init, POLLERR.
    let r = sc.rx(0);
    r.set_head_cur(6, 6);
    assert_eq!(cp.poll(s, POLLIN, None) & POLLERR, POLLERR);
    assert_eq!((r.head(), r.cur(), r.tail()), (0, 0, 3));
    cp.release(m);
    cp.release(s);
}

#[test]
fn no_tx_poll_flag_controls_flush_on_pollin() {
    let cp = new_cp();
    let um = FakeMem::new();
    // With NR_NO_TX_POLL, poll(POLLIN) leaves pending TX packets alone.
    let (m, mc, s, sc) = pipe_pair(&cp, &um, "ntp", netmap_abi::NR_NO_TX_POLL);
    mc.tx(0).fill(&[(&payload(0), 0)]);
    assert_eq!(cp.poll(m, POLLIN, None), 0);
    rxsync(&cp, s);
    assert_eq!(sc.rx(0).tail(), 0, "not flushed");
    // POLLOUT still syncs.
    assert_eq!(cp.poll(m, POLLOUT, None), POLLOUT);
    rxsync(&cp, s);
    assert_eq!(sc.rx(0).tail(), 1);
    cp.release(m);
    cp.release(s);
    // Without the flag poll(POLLIN) flushes.
    let (m, mc, s, sc) = pipe_pair(&cp, &um, "txp", 0);
    mc.tx(0).fill(&[(&payload(0), 0)]);
    let (count, w) = waker();
    assert_eq!(cp.poll(s, POLLIN, Some(w)), 0);
    assert_eq!(cp.poll(m, POLLIN, None), 0);
    assert_eq!(count.load(Ordering::SeqCst), 1, "flush woke the reader");
    rxsync(&cp, s);
    assert_eq!(sc.rx(0).tail(), 1, "flushed by poll(POLLIN)");
    cp.release(m);
    cp.release(s);
}

#[test]
fn sync_ioctls_on_unregistered_descriptor() {
    let cp = new_cp();
    let fd = cp.open();
    assert_eq!(
        cp.ioctl(fd, netmap_abi::NIOCTXSYNC, &[], &NoMemory),
        Err(ENXIO)
    );
    assert_eq!(
        cp.ioctl(fd, netmap_abi::NIOCRXSYNC, &[], &NoMemory),
        Err(ENXIO)
    );
    assert_eq!(cp.ioctl(fd, 0x1234, &[], &NoMemory), Err(EOPNOTSUPP));
    cp.release(fd);
    // Releasing twice / unknown ids is harmless.
    cp.release(fd);
    cp.release(999);
}

#[test]
fn garbage_from_the_client_never_panics_or_inflates_the_pool() {
    let cp = new_cp();
    let um = FakeMem::new();
    let before = cp.pool_counts();
    let check = |what: &str| {
        let c = cp.pool_counts();
        assert!(
            c.buf_free <= before.buf_free,
            "{what}: buf_free {} > {}",
            c.buf_free,
            before.buf_free
        );
        assert!(c.ring_free <= before.ring_free, "{what}");
        assert!(c.if_free <= before.if_free, "{what}");
    };
    let (m, mr) = open_reg(&cp, &um, "junk{1", &pipe_req(0, 6));
    let (s, sr) = open_reg(&cp, &um, "junk}1", &pipe_req(0, 6));
    let (mc, sc) = (Client::new(&cp, &mr), Client::new(&cp, &sr));
    let t = mc.tx(0);
    let dup = t.slot(4).buf_idx;
    let garbage = [0xffff_ffffu32, 1, 0, before.buf_total, dup];
    for (k, &idx) in garbage.iter().enumerate() {
        t.set_slot(
            k as u32,
            &NetmapSlot {
                buf_idx: idx,
                len: 0xffff,
                flags: !netmap_abi::NS_MOREFRAG,
                ptr: u64::MAX,
            },
        );
    }
    t.advance(garbage.len() as u32);
    txsync(&cp, m);
    assert_eq!(cp.poll(m, POLLIN | POLLOUT, None) & POLLERR, 0);
    rxsync(&cp, s);
    let r = sc.rx(0);
    assert_eq!(r.tail(), garbage.len() as u32);
    assert_eq!(
        r.slot(0).buf_idx,
        0xffff_ffff,
        "pipes pass descriptors as they are"
    );
    // The reader writes garbage of its own and releases everything.
    r.set_slot(
        1,
        &NetmapSlot {
            buf_idx: 0x7fff_0000,
            len: 9,
            flags: 0,
            ptr: 0,
        },
    );
    r.advance(r.tail());
    rxsync(&cp, s);
    txsync(&cp, m);
    // Garbage in the other direction too, plus a scribbled ring header.
    let st = sc.tx(0);
    st.set_slot(
        0,
        &NetmapSlot {
            buf_idx: u32::MAX - 1,
            len: 1,
            flags: 0,
            ptr: 0,
        },
    );
    st.advance(1);
    txsync(&cp, s);
    mc.tx(0)
        .set_u32_field(offset_of!(NetmapRing, num_slots), u32::MAX);
    mc.tx(0)
        .set_u32_field(offset_of!(NetmapRing, tail), u32::MAX);
    txsync(&cp, m);
    rxsync(&cp, m);
    cp.poll(m, POLLIN | POLLOUT, None);
    check("after syncs");
    // Broken extra-buffer lists: a self loop on one end, an out-of-range head on the
    // other.
    let h = mc.bufs_head();
    t.mem.write_u32(t.buf_off(h), h).unwrap();
    sc.set_bufs_head(0xffff_fff0);
    cp.release(m);
    check("master closed");
    cp.release(s);
    check("both closed");
    assert!(cp.status().contains("ports=0\n"));
    // Still serving.
    let (m, mc, s, sc) = pipe_pair(&cp, &um, "after", 0);
    mc.tx(0).fill(&[(&payload(0), 0)]);
    txsync(&cp, m);
    rxsync(&cp, s);
    assert_eq!(sc.rx(0).tail(), 1);
    cp.release(m);
    cp.release(s);
    check("second pair closed");
}

#[test]
fn extra_buffer_list_pointing_into_rings_frees_nothing_twice() {
    let cp = new_cp();
    let um = FakeMem::new();
    let before = cp.pool_counts();
    let (fd, reg) = open_reg(&cp, &um, "swap", &null_req(2));
    let c = Client::new(&cp, &reg);
    let t = c.tx(0);
    // Legitimate zero-copy swap: extra buffer into slot 0, slot 0's buffer into the
    // list head. Every buffer is still owned exactly once.
    let head = c.bufs_head();
    let next = t.mem.read_u32(t.buf_off(head)).unwrap();
    let mut s0 = t.slot(0);
    let old = s0.buf_idx;
    s0.buf_idx = head;
    s0.flags = netmap_abi::NS_BUF_CHANGED;
    t.set_slot(0, &s0);
    t.mem.write_u32(t.buf_off(old), next).unwrap();
    c.set_bufs_head(old);
    cp.release(fd);
    assert_eq!(cp.pool_counts(), before);
    // Client links a ring buffer into the list without giving it up: the pool never
    // goes above its initial free count.
    let (fd, reg) = open_reg(&cp, &um, "dup", &null_req(2));
    let c = Client::new(&cp, &reg);
    let t = c.tx(0);
    let ring_buf = t.slot(3).buf_idx;
    let last = walk_extra(t, c.bufs_head(), 2)[1];
    t.mem.write_u32(t.buf_off(last), ring_buf).unwrap();
    cp.release(fd);
    let after = cp.pool_counts();
    assert!(after.buf_free <= before.buf_free);
    assert_eq!(after.buf_free, before.buf_free, "nothing lost either");
}

fn offsets_option(um: &FakeMem, bits: u32, max: u64, initial: u64) -> u64 {
    let o = netmap_abi::NmreqOptOffsets {
        nro_opt: NmreqOption {
            nro_next: 0,
            nro_reqtype: netmap_abi::NETMAP_REQ_OPT_OFFSETS,
            nro_status: UNTOUCHED,
            nro_size: size_of::<netmap_abi::NmreqOptOffsets>() as u64,
        },
        nro_max_offset: max,
        nro_initial_offset: initial,
        nro_offset_bits: bits,
        ..Default::default()
    };
    um.put(o.as_bytes())
}

#[test]
fn offsets_option_on_a_pipe() {
    let cp = new_cp();
    let um = FakeMem::new();
    let before = cp.pool_counts();
    let fd = cp.open();
    let a = offsets_option(&um, 0, 64, 16);
    let reg = register_opts(&cp, &um, fd, "off{1", &pipe_req(0, 0), a).expect("OFFSETS accepted");
    let back: netmap_abi::NmreqOptOffsets = um.get(a);
    assert_eq!(back.nro_opt.nro_status, 0);
    assert_eq!(back.nro_max_offset, 64);
    let c = Client::new(&cp, &reg);
    let t = c.tx(0);
    assert_eq!(
        t.mem
            .read_u64(t.off + offset_of!(NetmapRing, offset_mask))
            .unwrap(),
        u64::MAX
    );
    assert!((0..SLOTS).all(|k| t.slot(k).ptr == 16));
    cp.release(fd);
    assert_eq!(cp.pool_counts(), before);
    let fd = cp.open();
    // Invalid: more than 64 bits, max above the buffer size, initial above max.
    for (bits, max, initial) in [(65, 0, 0), (0, 4096, 0), (4, 16, 0), (0, 64, 65)] {
        let a = offsets_option(&um, bits, max, initial);
        assert_eq!(
            register_opts(&cp, &um, fd, "off{1", &pipe_req(0, 3), a),
            Err(EINVAL),
            "{bits} {max} {initial}"
        );
        let back: NmreqOption = um.get(a);
        assert_eq!(back.nro_status, libc::EINVAL as u32);
        assert_eq!(cp.pool_counts(), before);
        assert_unregistered(&cp, fd);
    }
    cp.release(fd);
}

#[test]
fn failed_offsets_register_does_not_lose_a_peers_waker() {
    let cp = new_cp();
    let um = FakeMem::new();
    let (m, mc, s, _sc) = pipe_pair(&cp, &um, "lw", 0);
    let (count, w) = waker();
    assert_eq!(cp.poll(s, POLLIN, Some(w)), 0);
    // Another descriptor tries to open the master end with a bad OFFSETS option.
    let fd = cp.open();
    let a = offsets_option(&um, 65, 0, 0);
    assert_eq!(
        register_opts(&cp, &um, fd, "lw{1", &pipe_req(0, 0), a),
        Err(EINVAL)
    );
    // The slave must still be woken by the master's next packet (or already have
    // been woken spuriously); its waker must not have been dropped unfired.
    mc.tx(0).fill(&[(&payload(0), 0)]);
    txsync(&cp, m);
    assert!(count.load(Ordering::SeqCst) >= 1, "slave's waker was lost");
    cp.release(fd);
    cp.release(m);
    cp.release(s);
}

/// A client that writes another client's buffer index into its own slots (and into its
/// extra-buffer list) and then closes must not make the daemon free that buffer: the
/// other client keeps using it, and no later registration may be handed it.
#[test]
fn scribbled_foreign_buffer_index_is_not_freed_at_teardown() {
    let cp = new_cp();
    let um = FakeMem::new();
    let before = cp.pool_counts();
    // The victim: a live pipe pair whose TX slot 0 buffer holds data.
    let (vm, vmr) = open_reg(&cp, &um, "victim{1", &pipe_req(0, 0));
    let vc = Client::new(&cp, &vmr);
    let victim_buf = vc.tx(0).slot(0).buf_idx;
    vc.tx(0).write_buf(victim_buf, b"precious");
    // The scribbler: its own pipe, one extra buffer, and the victim's index in both a
    // TX slot and its extra-buffer list.
    let (sm, smr) = open_reg(&cp, &um, "scrib{1", &pipe_req(0, 1));
    let sc = Client::new(&cp, &smr);
    let mut s = sc.tx(0).slot(3);
    s.buf_idx = victim_buf;
    sc.tx(0).set_slot(3, &s);
    sc.set_bufs_head(victim_buf);
    cp.release(sm);
    assert!(
        cp.lock().alloc.buf_pool.is_allocated(victim_buf),
        "the victim's buffer was freed by the scribbler's teardown"
    );
    // The victim's buffer is still allocated and untouched.
    let (probe, _) = open_reg(&cp, &um, "probe{1", &pipe_req(0, 64));
    let pc = Client::new(&cp, &open_reg(&cp, &um, "probe2{1", &pipe_req(0, 0)).1);
    for k in 0..pc.tx(0).num_slots() {
        assert_ne!(
            pc.tx(0).slot(k).buf_idx,
            victim_buf,
            "victim's buffer was reallocated"
        );
    }
    assert_eq!(vc.tx(0).read_buf(victim_buf, 8), b"precious");
    cp.release(probe);
    cp.release(vm);
    // The scribbler lost its own slot-3 buffer and extra buffer (overwritten indices);
    // nothing was freed twice.
    let after = cp.pool_counts();
    assert!(after.buf_free <= before.buf_free);
}

// ---------------------------------------------------------------------------------
// Monitor ports (§10.5)
// ---------------------------------------------------------------------------------

const MON_TX: u64 = netmap_abi::NR_MONITOR_TX;
const MON_RX: u64 = netmap_abi::NR_MONITOR_RX;
const TXMON: u16 = netmap_abi::NS_TXMON;

/// Client side of an RX ring: rxsync, take every visible slot (payload, flags),
/// release them.
fn take_rx(cp: &ControlPlane, fd: FdId, r: Ring) -> Vec<(Vec<u8>, u16)> {
    rxsync(cp, fd);
    let n = r.num_slots();
    let (mut k, t) = (r.head(), r.tail());
    let mut out = Vec::new();
    while k != t {
        let s = r.slot(k);
        out.push((r.read_buf(s.buf_idx, s.len.into()), s.flags));
        k = (k + 1) % n;
    }
    r.advance(k);
    rxsync(cp, fd);
    out
}

fn send_pkts(cp: &ControlPlane, fd: FdId, t: Ring, pkts: &[Vec<u8>]) {
    t.fill(&pkts.iter().map(|p| (p.as_slice(), 0)).collect::<Vec<_>>());
    txsync(cp, fd);
}

fn flagged(pkts: &[Vec<u8>], flags: u16) -> Vec<(Vec<u8>, u16)> {
    pkts.iter().map(|p| (p.clone(), flags)).collect()
}

#[test]
fn tx_monitor_of_a_pipe_master_sees_exactly_what_it_sends() {
    let cp = new_cp();
    let um = FakeMem::new();
    let before = cp.pool_counts();
    let (m, mc, s, sc) = pipe_pair(&cp, &um, "m", 0);
    let (mon, mr) = open_reg(&cp, &um, "m{1", &pipe_req(MON_TX, 0));
    assert_eq!(mr.nr_flags, MON_TX, "flags echoed unchanged");
    assert_eq!((mr.nr_tx_rings, mr.nr_rx_rings), (1, 1));
    assert_eq!((mr.nr_tx_slots, mr.nr_rx_slots), (SLOTS, SLOTS));
    assert_eq!(mr.nr_mem_id, 1);
    let moc = Client::new(&cp, &mr);
    let name = moc.nifp().ni_name;
    let name = std::ffi::CStr::from_bytes_until_nul(&name).unwrap();
    assert_eq!(name.to_str().unwrap(), "m{1/t#0");
    let mrx = moc.rx(0);

    let pkts: Vec<Vec<u8>> = (0..3).map(payload).collect();
    send_pkts(&cp, m, mc.tx(0), &pkts);
    assert_eq!(take_rx(&cp, mon, mrx), flagged(&pkts, TXMON));
    assert_eq!(take_rx(&cp, s, sc.rx(0)), flagged(&pkts, 0));
    // What the master receives is not its TX: a /t monitor ignores it.
    send_pkts(&cp, s, sc.tx(0), &[b"from the slave".to_vec()]);
    assert_eq!(take_rx(&cp, m, mc.rx(0)).len(), 1);
    assert!(take_rx(&cp, mon, mrx).is_empty());
    // More than the ring holds over several rounds, with wrap-around.
    txsync(&cp, m);
    for round in 0..4 {
        let pkts: Vec<Vec<u8>> = (0..5).map(|i| payload(round * 10 + i)).collect();
        send_pkts(&cp, m, mc.tx(0), &pkts);
        assert_eq!(
            take_rx(&cp, mon, mrx),
            flagged(&pkts, TXMON),
            "round {round}"
        );
        assert_eq!(take_rx(&cp, s, sc.rx(0)).len(), 5);
        txsync(&cp, m);
    }
    assert!(cp.status().contains("kind=Monitor"), "{}", cp.status());
    for fd in [mon, m, s] {
        cp.release(fd);
    }
    assert_eq!(cp.pool_counts(), before);
    assert!(cp.status().contains("ports=0\n"), "{}", cp.status());
}

#[test]
fn rx_monitor_of_a_pipe_slave_sees_exactly_what_it_receives() {
    let cp = new_cp();
    let um = FakeMem::new();
    let before = cp.pool_counts();
    let (m, mc, s, sc) = pipe_pair(&cp, &um, "r", 0);
    let (mon, mr) = open_reg(&cp, &um, "r}1", &pipe_req(MON_RX, 0));
    let mrx = Client::new(&cp, &mr).rx(0);
    let pkts: Vec<Vec<u8>> = (0..4).map(payload).collect();
    send_pkts(&cp, m, mc.tx(0), &pkts);
    assert!(
        take_rx(&cp, mon, mrx).is_empty(),
        "nothing before the slave's rxsync"
    );
    assert_eq!(take_rx(&cp, s, sc.rx(0)), flagged(&pkts, 0));
    assert_eq!(take_rx(&cp, mon, mrx), flagged(&pkts, 0));
    // The slave's own TX is not RX.
    send_pkts(&cp, s, sc.tx(0), &[b"slave tx".to_vec()]);
    assert!(take_rx(&cp, mon, mrx).is_empty());
    // A waiting monitor poller is woken by the parent's rxsync.
    let (count, w) = waker();
    assert_eq!(cp.poll(mon, POLLIN, Some(w)), 0);
    send_pkts(&cp, m, mc.tx(0), &[payload(9)]);
    assert_eq!(
        count.load(Ordering::SeqCst),
        0,
        "not visible to the slave yet"
    );
    assert_eq!(cp.poll(s, POLLIN, None), POLLIN);
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "the slave's rxsync wakes it"
    );
    assert_eq!(cp.poll(mon, POLLIN, None), POLLIN);
    assert_eq!(take_rx(&cp, mon, mrx), flagged(&[payload(9)], 0));
    for fd in [m, s, mon] {
        cp.release(fd);
    }
    assert_eq!(cp.pool_counts(), before);
}

#[test]
fn rt_and_z_monitors_see_both_directions() {
    let cp = new_cp();
    let um = FakeMem::new();
    let before = cp.pool_counts();
    let (m, mc, s, sc) = pipe_pair(&cp, &um, "b", 0);
    let (rt, rtr) = open_reg(&cp, &um, "b{1", &pipe_req(MON_TX | MON_RX, 0));
    let zreq = pipe_req(netmap_abi::NR_ZCOPY_MON, 0);
    let (z, zr) = open_reg(&cp, &um, "b{1", &zreq);
    assert_eq!(
        zr.nr_flags,
        netmap_abi::NR_ZCOPY_MON | MON_TX | MON_RX,
        "ZCOPY reports both directions"
    );
    let name = Client::new(&cp, &zr).nifp().ni_name;
    let name = std::ffi::CStr::from_bytes_until_nul(&name).unwrap();
    assert_eq!(name.to_str().unwrap(), "b{1/zrt#1");
    let (rtrx, zrx) = (Client::new(&cp, &rtr).rx(0), Client::new(&cp, &zr).rx(0));
    let out: Vec<Vec<u8>> = (0..2).map(payload).collect();
    send_pkts(&cp, m, mc.tx(0), &out);
    let back = vec![b"reply one".to_vec(), b"reply two, longer".to_vec()];
    send_pkts(&cp, s, sc.tx(0), &back);
    assert_eq!(take_rx(&cp, m, mc.rx(0)), flagged(&back, 0));
    let mut want = flagged(&out, TXMON);
    want.extend(flagged(&back, 0));
    assert_eq!(take_rx(&cp, rt, rtrx), want);
    assert_eq!(take_rx(&cp, z, zrx), want);
    // A chain of fragments arrives whole, with its NS_MOREFRAG marks.
    mc.tx(0)
        .fill(&[(b"f0", netmap_abi::NS_MOREFRAG), (b"f1", 0)]);
    txsync(&cp, m);
    assert_eq!(
        take_rx(&cp, rt, rtrx),
        vec![
            (b"f0".to_vec(), TXMON | netmap_abi::NS_MOREFRAG),
            (b"f1".to_vec(), TXMON)
        ]
    );
    for fd in [z, rt, m, s] {
        cp.release(fd);
    }
    assert_eq!(cp.pool_counts(), before);
}

#[test]
fn monitor_ring_selection_picks_the_parent_ring() {
    let cp = new_cp();
    let um = FakeMem::new();
    let two = NmreqRegister {
        nr_tx_rings: 2,
        nr_rx_rings: 2,
        ..pipe_req(0, 0)
    };
    let (m, mr) = open_reg(&cp, &um, "two{1", &two);
    let (s, _) = open_reg(&cp, &um, "two}1", &two);
    let mc = Client::new(&cp, &mr);
    let one = NmreqRegister {
        nr_mode: netmap_abi::NR_REG_ONE_NIC,
        nr_ringid: 1,
        ..pipe_req(MON_TX, 0)
    };
    let (mon, monr) = open_reg(&cp, &um, "two{1", &one);
    assert_eq!((monr.nr_tx_rings, monr.nr_rx_rings), (1, 2));
    let moc = Client::new(&cp, &monr);
    assert_eq!(moc.ring_ofs(2), 0, "monitor RX ring 0 not bound");
    // Ring 0 traffic is not watched; ring 1 lands in monitor RX ring 1.
    let (m0, _) = open_reg(
        &cp,
        &um,
        "two{1",
        &NmreqRegister {
            nr_mode: netmap_abi::NR_REG_ONE_NIC,
            nr_ringid: 0,
            ..pipe_req(0, 0)
        },
    );
    send_pkts(&cp, m0, mc.tx(0), &[payload(0)]);
    let (m1, _) = open_reg(
        &cp,
        &um,
        "two{1",
        &NmreqRegister {
            nr_mode: netmap_abi::NR_REG_ONE_NIC,
            nr_ringid: 1,
            ..pipe_req(0, 0)
        },
    );
    send_pkts(&cp, m1, mc.tx(1), &[payload(1)]);
    assert_eq!(take_rx(&cp, mon, moc.rx(1)), flagged(&[payload(1)], TXMON));
    for fd in [mon, m0, m1, m, s] {
        cp.release(fd);
    }
}

#[test]
fn monitor_of_an_unregistered_port_is_einval() {
    let cp = new_cp();
    let um = FakeMem::new();
    let before = cp.pool_counts();
    let fd = cp.open();
    // A malformed VALE name fails as in the kernel's parent lookup.
    assert_eq!(
        register(&cp, &um, fd, "vale0:", &pipe_req(MON_RX, 0)),
        Err(Errno(libc::ENOMEM))
    );
    for name in ["none{1", "none}1", "vale0:nobody", "x}"] {
        assert_eq!(
            register(&cp, &um, fd, name, &pipe_req(MON_RX, 0)),
            Err(EINVAL),
            "{name}"
        );
    }
    // One end of a pair open: the other end is not registered.
    let (m, _) = open_reg(&cp, &um, "half{1", &pipe_req(0, 0));
    assert_eq!(
        register(&cp, &um, fd, "half}1", &pipe_req(MON_TX, 0)),
        Err(EINVAL)
    );
    // A host interface that does not exist stays ENXIO.
    assert_eq!(
        register(&cp, &um, fd, "nosuchif0", &pipe_req(MON_TX, 0)),
        Err(ENXIO)
    );
    // A bad ring selection on the parent.
    let bad = NmreqRegister {
        nr_mode: netmap_abi::NR_REG_ONE_NIC,
        nr_ringid: 5,
        ..pipe_req(MON_TX, 0)
    };
    assert_eq!(register(&cp, &um, fd, "half{1", &bad), Err(EINVAL));
    assert_unregistered(&cp, fd);
    cp.release(m);
    // The failed attempts left nothing behind; the descriptor is still usable.
    assert_eq!(cp.pool_counts(), before);
    assert!(cp.status().contains("ports=0\n"), "{}", cp.status());
    cp.release(fd);
}

#[test]
fn closing_the_parent_under_an_open_monitor() {
    let cp = new_cp();
    let um = FakeMem::new();
    let before = cp.pool_counts();
    let (m, mc, s, _sc) = pipe_pair(&cp, &um, "gone", 0);
    let (mon, mr) = open_reg(&cp, &um, "gone{1", &pipe_req(MON_TX | MON_RX, 0));
    let mrx = Client::new(&cp, &mr).rx(0);
    send_pkts(&cp, m, mc.tx(0), &[payload(0), payload(1)]);
    let (count, w) = waker();
    assert_eq!(cp.poll(mon, POLLIN, Some(w)), POLLIN, "copies pending");
    drop(count);
    cp.release(m);
    cp.release(s);
    // The copies made before stay readable; nothing new ever arrives.
    assert_eq!(take_rx(&cp, mon, mrx).len(), 2);
    let (count, w) = waker();
    assert_eq!(cp.poll(mon, POLLIN, Some(w)), 0);
    // A new pair of the same name is not watched by the old monitor.
    let (m2, mc2, s2, _) = pipe_pair(&cp, &um, "gone", 0);
    send_pkts(&cp, m2, mc2.tx(0), &[payload(7)]);
    assert_eq!(count.load(Ordering::SeqCst), 0);
    assert!(take_rx(&cp, mon, mrx).is_empty());
    txsync(&cp, mon);
    cp.release(m2);
    cp.release(s2);
    // Monitor closed first, parent later: also clean.
    let (m3, mc3, s3, _) = pipe_pair(&cp, &um, "gone", 0);
    let (mon2, _) = open_reg(&cp, &um, "gone}1", &pipe_req(MON_RX, 0));
    cp.release(mon2);
    send_pkts(&cp, m3, mc3.tx(0), &[payload(8)]);
    cp.release(mon);
    cp.release(m3);
    cp.release(s3);
    assert_eq!(cp.pool_counts(), before);
    assert!(cp.status().contains("ports=0\n"), "{}", cp.status());
}

#[path = "vale_tests.rs"]
mod vale_tests;

#[path = "kloop_tests.rs"]
mod kloop_tests;

#[test]
fn monitors_of_vale_ports() {
    let cp = new_cp();
    let um = FakeMem::new();
    let before = cp.pool_counts();
    let (a, ar) = open_reg(&cp, &um, "vale9:a", &pipe_req(0, 0));
    let (b, br) = open_reg(&cp, &um, "vale9:b", &pipe_req(0, 0));
    let (ta, tar) = open_reg(&cp, &um, "vale9:a", &pipe_req(MON_TX, 0));
    let (rb, rbr) = open_reg(&cp, &um, "vale9:b", &pipe_req(MON_RX, 0));
    let (ac, bc) = (Client::new(&cp, &ar), Client::new(&cp, &br));
    let mut frame = etherparse::Ethernet2Header {
        source: [2, 0, 0, 0, 0, 1],
        destination: [0xff; 6],
        ether_type: etherparse::EtherType::IPV4,
    }
    .to_bytes()
    .to_vec();
    frame.extend_from_slice(b"broadcast payload");
    send_pkts(&cp, a, ac.tx(0), std::slice::from_ref(&frame));
    let tx_seen = take_rx(&cp, ta, Client::new(&cp, &tar).rx(0));
    assert_eq!(tx_seen, flagged(std::slice::from_ref(&frame), TXMON));
    let rbrx = Client::new(&cp, &rbr).rx(0);
    assert!(take_rx(&cp, rb, rbrx).is_empty(), "b has not rxsynced yet");
    assert_eq!(take_rx(&cp, b, bc.rx(0)).len(), 1);
    assert_eq!(take_rx(&cp, rb, rbrx), flagged(&[frame], 0));
    for fd in [a, ta, b, rb] {
        cp.release(fd);
    }
    assert_eq!(cp.pool_counts(), before);
    assert!(cp.status().contains("ports=0\n"), "{}", cp.status());
}
