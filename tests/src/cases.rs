//! Error and protocol cases of NETMAP-ABI.md, each a function that talks to
//! /dev/netmap and returns `Err(explanation)` unless the daemon answered exactly as
//! the reference kernel does (errno, written-back fields, ring state).
//!
//! Run one with `nm-client errno NAME`; `nm-client errno --list` prints [`CASES`].
//! Every case uses its own port names so cases stay independent even if several ran
//! against one daemon.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use netmap_abi::*;
use zerocopy::{FromBytes, IntoBytes};

use crate::port::{legacy_ioctl, register_fd, Port, Ring};
use crate::sys::{self, outcome, poll_mask_name, Errno};

/// `nr_memsize` of the global allocator with netmap's default sizes (§7.2).
pub const DEFAULT_MEMSIZE: u64 = 343_019_520;
/// Default pipe geometry (§10.4 with the daemon's parent defaults).
pub const PIPE_SLOTS: u32 = 1024;
/// Buffers in the default global allocator.
pub const BUF_TOTAL: u32 = 163_840;

/// One runnable case.
pub struct Case {
    pub name: &'static str,
    /// Spec section and expectation, printed by `--list`.
    pub what: &'static str,
    pub run: fn() -> Result<(), String>,
}

type R = Result<(), String>;

macro_rules! ensure {
    ($c:expr, $($arg:tt)+) => {
        if !$c {
            return Err(format!($($arg)+));
        }
    };
}

macro_rules! ensure_eq {
    ($got:expr, $want:expr, $what:expr) => {{
        let (g, w) = ($got, $want);
        if g != w {
            return Err(format!("{}: expected {:?}, got {:?}", $what, w, g));
        }
    }};
}

fn want_errno(what: &str, got: Result<(), Errno>, want: i32) -> R {
    match got {
        Err(Errno(e)) if e == want => Ok(()),
        other => Err(format!(
            "{what}: expected {}, got {}",
            Errno(want),
            outcome(other)
        )),
    }
}

fn want_ok(what: &str, got: Result<(), Errno>) -> R {
    got.map_err(|e| format!("{what}: expected success, got {e}"))
}

fn open() -> Result<OwnedFd, String> {
    sys::open_netmap().map_err(|e| e.to_string())
}

fn hdr(reqtype: u16, name: &str) -> NmreqHeader {
    let mut h = NmreqHeader {
        nr_reqtype: reqtype,
        ..NmreqHeader::default()
    };
    set_cname(&mut h.nr_name, name);
    h
}

fn reg(mode: u32) -> NmreqRegister {
    NmreqRegister {
        nr_mode: mode,
        ..NmreqRegister::default()
    }
}

/// NIOCCTRL with a typed body and no options.
fn ctrl_body<T: IntoBytes + FromBytes>(
    fd: RawFd,
    reqtype: u16,
    name: &str,
    body: &mut T,
) -> Result<(), Errno> {
    assert!(std::mem::size_of::<T>() >= req_body_size(reqtype));
    let mut h = hdr(reqtype, name);
    h.nr_body = body as *mut T as u64;
    // SAFETY: the body is a live, exclusively borrowed object at least as large as the
    // body of `reqtype` and valid for any bytes the daemon writes (FromBytes).
    unsafe { sys::nioctrl(fd, &mut h) }
}

/// REGISTER on a fresh fd; the fd is returned so that the registration stays alive.
fn register_new(name: &str, mut r: NmreqRegister) -> Result<(OwnedFd, NmreqRegister), String> {
    let fd = open()?;
    want_ok(
        &format!("REGISTER {name:?}"),
        register_fd(fd.as_raw_fd(), name, &mut r),
    )?;
    Ok((fd, r))
}

fn register_errno(name: &str, mut r: NmreqRegister, want: i32) -> R {
    let fd = open()?;
    want_errno(
        &format!(
            "REGISTER {name:?} mode {} ringid {} flags {:#x}",
            r.nr_mode, r.nr_ringid, r.nr_flags
        ),
        register_fd(fd.as_raw_fd(), name, &mut r),
        want,
    )
}

fn port(name: &str, r: NmreqRegister) -> Result<Port, String> {
    Port::register_req(name, r).map_err(|e| format!("REGISTER+mmap {name:?}: {e}"))
}

fn pipe_end(name: &str) -> Result<Port, String> {
    port(name, reg(NR_REG_ALL_NIC))
}

/// REGISTER `name` with an option chain starting at `opts`.
///
/// # Safety
/// `opts` must be 0 or the address of an option chain satisfying [`sys::ioctl_raw`].
unsafe fn register_opts(
    fd: RawFd,
    name: &str,
    body: &mut NmreqRegister,
    opts: u64,
) -> Result<(), Errno> {
    let mut h = hdr(NETMAP_REQ_REGISTER, name);
    h.nr_body = body as *mut NmreqRegister as u64;
    h.nr_options = opts;
    // SAFETY: body is live and exclusively borrowed; the chain is the caller's duty.
    unsafe { sys::nioctrl(fd, &mut h) }
}

fn ring_str(r: &Ring<'_>) -> String {
    let (h, c, t) = r.indices();
    format!("head={h} cur={c} tail={t}")
}

/// Puts `n` 60-byte packets at `[head, head+n)` and advances head and cur.
fn queue_tx(r: &Ring<'_>, n: u32) {
    let mut h = r.head();
    for _ in 0..n {
        r.write_buf(r.slot_buf_idx(h), 0, &[0xab; 60]);
        r.set_slot_len(h, 60);
        r.set_slot_flags(h, 0);
        h = r.next(h);
    }
    r.advance(h);
}

// ---------------------------------------------------------------- §5 generic rules

fn version_check(v: u16) -> R {
    let fd = open()?;
    let mut body = reg(NR_REG_ALL_NIC);
    body.nr_tx_slots = 0x5a5a;
    let orig = body;
    let mut h = hdr(NETMAP_REQ_REGISTER, "ver{1");
    h.nr_version = v;
    h.nr_body = &mut body as *mut NmreqRegister as u64;
    // SAFETY: nr_body points to a live NmreqRegister; no options.
    let r = unsafe { sys::nioctrl(fd.as_raw_fd(), &mut h) };
    want_errno(
        &format!("NIOCCTRL REGISTER nr_version {v}"),
        r,
        libc::EINVAL,
    )?;
    ensure_eq!(
        body,
        orig,
        "body after version rejection (must be untouched)"
    );
    Ok(())
}

fn version_13() -> R {
    version_check(13)
}

fn version_16() -> R {
    version_check(16)
}

fn reserved_nonzero() -> R {
    let fd = open()?;
    let mut body = reg(NR_REG_ALL_NIC);
    let mut h = hdr(NETMAP_REQ_REGISTER, "rsv{1");
    h.nr_reserved = 1;
    h.nr_body = &mut body as *mut NmreqRegister as u64;
    // SAFETY: nr_body points to a live NmreqRegister; no options.
    let r = unsafe { sys::nioctrl(fd.as_raw_fd(), &mut h) };
    want_errno("REGISTER with nr_reserved = 1", r, libc::EINVAL)
}

fn register_null_body() -> R {
    let fd = open()?;
    let mut h = hdr(NETMAP_REQ_REGISTER, "nb{1");
    // SAFETY: no body, no options: nothing for the daemon to follow.
    let r = unsafe { sys::nioctrl(fd.as_raw_fd(), &mut h) };
    want_errno("REGISTER with nr_body = 0", r, libc::EINVAL)
}

fn body_on_no_body_type() -> R {
    let fd = open()?;
    let mut dummy = [0u64; 8];
    let mut h = hdr(NETMAP_REQ_VALE_DELIF, "per0");
    h.nr_body = dummy.as_mut_ptr() as u64;
    // SAFETY: nr_body points to 64 live bytes nobody else uses; VALE_DELIF has no body.
    let r = unsafe { sys::nioctrl(fd.as_raw_fd(), &mut h) };
    want_errno("VALE_DELIF with a body", r, libc::EINVAL)
}

fn unknown_reqtype() -> R {
    let fd = open()?;
    let mut h = hdr(99, "x");
    // SAFETY: no body, no options.
    let r = unsafe { sys::nioctrl(fd.as_raw_fd(), &mut h) };
    want_errno("reqtype 99 with nr_body = 0", r, libc::EINVAL)
}

fn bad_body_pointer() -> R {
    let fd = open()?;
    let mut h = hdr(NETMAP_REQ_REGISTER, "bb{1");
    h.nr_body = 0x10;
    // SAFETY: 0x10 is never mapped (below mmap_min_addr): the access must fault.
    let r = unsafe { sys::nioctrl(fd.as_raw_fd(), &mut h) };
    want_errno("REGISTER with nr_body = 0x10", r, libc::EFAULT)
}

fn unsupported_option() -> R {
    let fd = open()?;
    let mut body = reg(NR_REG_ALL_NIC);
    let mut opt = NmreqOption {
        nro_next: 0,
        nro_reqtype: 1234,
        nro_status: 0,
        nro_size: NMREQ_OPTION_SIZE as u64,
    };
    let p = &mut opt as *mut NmreqOption as u64;
    // SAFETY: the chain is one live option that nobody else accesses during the call.
    let r = unsafe { register_opts(fd.as_raw_fd(), "uo{1", &mut body, p) };
    want_errno("REGISTER with option type 1234", r, libc::EOPNOTSUPP)?;
    ensure_eq!(
        opt.nro_status,
        libc::EOPNOTSUPP as u32,
        "nro_status of the unknown option"
    );
    ensure_eq!(opt.nro_next, 0, "nro_next of the unknown option");
    // The failed REGISTER must have been undone: the fd can register again.
    let mut body = reg(NR_REG_ALL_NIC);
    want_ok(
        "REGISTER on the same fd after the EOPNOTSUPP failure",
        register_fd(fd.as_raw_fd(), "uo{1", &mut body),
    )
}

fn infinite_options() -> R {
    let fd = open()?;
    let mut body = reg(NR_REG_ALL_NIC);
    let mut opt = NmreqOption {
        nro_reqtype: 1234,
        nro_size: NMREQ_OPTION_SIZE as u64,
        ..NmreqOption::default()
    };
    let p = &mut opt as *mut NmreqOption as u64;
    opt.nro_next = p;
    // The daemon reads the link through `p`; make the store visibly used.
    std::hint::black_box(&mut opt);
    // SAFETY: the chain is one live option linked to itself.
    let r = unsafe { register_opts(fd.as_raw_fd(), "io{1", &mut body, p) };
    want_errno(
        "REGISTER with a self-linked unknown option",
        r,
        libc::EMSGSIZE,
    )
}

fn infinite_options_offsets() -> R {
    let fd = open()?;
    let mut body = reg(NR_REG_ALL_NIC);
    let mut opt = NmreqOptOffsets {
        nro_opt: NmreqOption {
            nro_reqtype: NETMAP_REQ_OPT_OFFSETS,
            nro_size: std::mem::size_of::<NmreqOptOffsets>() as u64,
            ..NmreqOption::default()
        },
        ..NmreqOptOffsets::default()
    };
    let p = &mut opt as *mut NmreqOptOffsets as u64;
    opt.nro_opt.nro_next = p;
    // SAFETY: one live 56-byte OFFSETS option linked to itself.
    let r = unsafe { register_opts(fd.as_raw_fd(), "io2{1", &mut body, p) };
    want_errno(
        "REGISTER with a self-linked OFFSETS option",
        r,
        libc::EINVAL,
    )?;
    ensure_eq!(
        opt.nro_opt.nro_status,
        libc::EINVAL as u32,
        "nro_status of the duplicated option"
    );
    Ok(())
}

fn option_reqtype_zero() -> R {
    let fd = open()?;
    let mut body = reg(NR_REG_ALL_NIC);
    let mut opt = NmreqOption {
        nro_reqtype: 0,
        nro_status: 0x77,
        nro_size: NMREQ_OPTION_SIZE as u64,
        ..NmreqOption::default()
    };
    let p = &mut opt as *mut NmreqOption as u64;
    // SAFETY: one live option.
    let r = unsafe { register_opts(fd.as_raw_fd(), "oz{1", &mut body, p) };
    want_errno("REGISTER with an option of type 0", r, libc::EINVAL)?;
    ensure_eq!(
        opt.nro_status,
        libc::EINVAL as u32,
        "nro_status of the type-0 option"
    );
    Ok(())
}

fn options_overflow_eventfds() -> R {
    let fd = open()?;
    let mut body = reg(NR_REG_ALL_NIC);
    // 99 unknown options (type 6) followed by an EVENTFDS option of nro_size 1000,
    // whose 976-byte body no longer fits the 4208-byte staging buffer (ctrl-api-test #22).
    let mut opts = vec![
        NmreqOption {
            nro_reqtype: NETMAP_REQ_OPT_MAX,
            nro_size: NMREQ_OPTION_SIZE as u64,
            ..NmreqOption::default()
        };
        99
    ];
    let mut evfds = vec![0u64; 1000 / 8];
    let ev = NmreqOption {
        nro_next: 0,
        nro_reqtype: NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS,
        nro_status: 0,
        nro_size: 1000,
    };
    evfds[..3].copy_from_slice(
        <[u64; 3]>::read_from_bytes(ev.as_bytes())
            .unwrap()
            .as_slice(),
    );
    let ev_ptr = evfds.as_mut_ptr() as u64;
    let first = opts.as_ptr() as u64;
    let sz = NMREQ_OPTION_SIZE as u64;
    for (i, o) in opts.iter_mut().enumerate() {
        o.nro_next = if i + 1 < 99 {
            first + (i as u64 + 1) * sz
        } else {
            ev_ptr
        };
    }
    // Taken after the loop so that this pointer is the last borrow of the vector.
    let base = opts.as_mut_ptr();
    // SAFETY: a chain of 99 live options ending in a live 1000-byte option buffer; both
    // vectors outlive the call and are not accessed during it.
    let r = unsafe { register_opts(fd.as_raw_fd(), "ov{1", &mut body, base as u64) };
    want_errno(
        "REGISTER with 99 unknown options + EVENTFDS(nro_size 1000)",
        r,
        libc::EMSGSIZE,
    )
}

fn bad_option_pointer() -> R {
    let fd = open()?;
    let mut body = reg(NR_REG_ALL_NIC);
    // SAFETY: 0x10 is never mapped: the daemon's read must fault.
    let r = unsafe { register_opts(fd.as_raw_fd(), "bo{1", &mut body, 0x10) };
    want_errno("REGISTER with nr_options = 0x10", r, libc::EFAULT)
}

// ---------------------------------------------------------------- §5.1 REGISTER

fn register_twice() -> R {
    let fd = open()?;
    let mut body = reg(NR_REG_ALL_NIC);
    want_ok(
        "first REGISTER",
        register_fd(fd.as_raw_fd(), "rt{1", &mut body),
    )?;
    let mut body = reg(NR_REG_ALL_NIC);
    want_errno(
        "second REGISTER on the same fd",
        register_fd(fd.as_raw_fd(), "rt}1", &mut body),
        libc::EBUSY,
    )
}

fn mode_default() -> R {
    register_errno("md{1", reg(NR_REG_DEFAULT), libc::EINVAL)
}

fn mode_pipe_master() -> R {
    register_errno("mpm", reg(NR_REG_PIPE_MASTER), libc::EINVAL)
}

fn mode_pipe_slave() -> R {
    register_errno("mps", reg(NR_REG_PIPE_SLAVE), libc::EINVAL)
}

fn mode_99() -> R {
    register_errno("m99{1", reg(99), libc::EINVAL)
}

fn pipe_nic_sw() -> R {
    register_errno("pns{1", reg(NR_REG_NIC_SW), libc::EINVAL)?;
    // ctrl-api-test #14: the same pipe with ALL_NIC works.
    register_new("pns{1", reg(NR_REG_ALL_NIC)).map(|_| ())
}

fn pipe_empty_id() -> R {
    register_errno("x{", reg(NR_REG_ALL_NIC), libc::EINVAL)
}

fn one_nic_out_of_range() -> R {
    let mut r = reg(NR_REG_ONE_NIC);
    r.nr_ringid = 5;
    register_errno("onr{1", r, libc::EINVAL)?;
    r.nr_ringid = 0;
    register_new("onr{1", r).map(|_| ())
}

fn exclusive_after_shared() -> R {
    let _first = register_new("exs{1", reg(NR_REG_ALL_NIC))?;
    let mut r = reg(NR_REG_ALL_NIC);
    r.nr_flags = NR_EXCLUSIVE;
    register_errno("exs{1", r, libc::EBUSY)
}

fn shared_after_exclusive() -> R {
    let mut r = reg(NR_REG_ALL_NIC);
    r.nr_flags = NR_EXCLUSIVE;
    let _first = register_new("sxe{1", r)?;
    register_errno("sxe{1", reg(NR_REG_ALL_NIC), libc::EBUSY)?;
    // The other end has its own rings: not affected by the exclusive master.
    register_new("sxe}1", reg(NR_REG_ALL_NIC)).map(|_| ())
}

fn null_mem_id_0() -> R {
    let mut r = reg(NR_REG_NULL);
    r.nr_tx_rings = 1;
    r.nr_rx_rings = 1;
    register_errno("nul0", r, libc::EINVAL)
}

fn null_unknown_mem_id() -> R {
    let mut r = reg(NR_REG_NULL);
    r.nr_mem_id = 7;
    r.nr_tx_rings = 1;
    r.nr_rx_rings = 1;
    register_errno("nul7", r, libc::EINVAL)
}

fn unknown_interface() -> R {
    register_errno("nosuchif0", reg(NR_REG_ALL_NIC), libc::ENXIO)
}

// ---------------------------------------------------------------- §5.2 / §5.3 info

fn pools_info_empty_name() -> R {
    let fd = open()?;
    let mut pi = NmreqPoolsInfo::default();
    want_errno(
        "POOLS_INFO_GET with an empty name",
        ctrl_body(fd.as_raw_fd(), NETMAP_REQ_POOLS_INFO_GET, "", &mut pi),
        libc::ENXIO,
    )
}

fn port_info_empty_name() -> R {
    let fd = open()?;
    let mut pi = NmreqPortInfoGet {
        nr_tx_slots: 777,
        nr_rx_slots: 778,
        nr_tx_rings: 77,
        nr_rx_rings: 78,
        ..NmreqPortInfoGet::default()
    };
    want_ok(
        "PORT_INFO_GET with an empty name",
        ctrl_body(fd.as_raw_fd(), NETMAP_REQ_PORT_INFO_GET, "", &mut pi),
    )?;
    ensure_eq!(pi.nr_memsize, DEFAULT_MEMSIZE, "nr_memsize");
    ensure_eq!(pi.nr_mem_id, 1, "nr_mem_id");
    ensure_eq!(
        (
            pi.nr_tx_slots,
            pi.nr_rx_slots,
            pi.nr_tx_rings,
            pi.nr_rx_rings
        ),
        (777, 778, 77, 78),
        "other body fields (must come back as sent)"
    );
    Ok(())
}

fn port_info_unknown_mem_id() -> R {
    let fd = open()?;
    let mut pi = NmreqPortInfoGet {
        nr_mem_id: 7,
        ..NmreqPortInfoGet::default()
    };
    want_errno(
        "PORT_INFO_GET empty name, nr_mem_id 7",
        ctrl_body(fd.as_raw_fd(), NETMAP_REQ_PORT_INFO_GET, "", &mut pi),
        libc::EINVAL,
    )
}

fn port_info_pipe() -> R {
    let fd = open()?;
    let mut pi = NmreqPortInfoGet::default();
    want_ok(
        "PORT_INFO_GET \"pq}1\"",
        ctrl_body(fd.as_raw_fd(), NETMAP_REQ_PORT_INFO_GET, "pq}1", &mut pi),
    )?;
    ensure_eq!(
        (
            pi.nr_tx_rings,
            pi.nr_rx_rings,
            pi.nr_tx_slots,
            pi.nr_rx_slots
        ),
        (1, 1, PIPE_SLOTS, PIPE_SLOTS),
        "rings/slots"
    );
    ensure_eq!(
        (pi.nr_memsize, pi.nr_mem_id),
        (DEFAULT_MEMSIZE, 1),
        "memsize/mem_id"
    );
    Ok(())
}

fn pools_info_pipe() -> R {
    let fd = open()?;
    let mut pi = NmreqPoolsInfo::default();
    want_ok(
        "POOLS_INFO_GET \"pi{1\"",
        ctrl_body(fd.as_raw_fd(), NETMAP_REQ_POOLS_INFO_GET, "pi{1", &mut pi),
    )?;
    ensure_eq!(
        (pi.nr_memsize, pi.nr_mem_id),
        (DEFAULT_MEMSIZE, 1),
        "memsize/mem_id"
    );
    ensure_eq!(
        (
            pi.nr_if_pool_offset,
            pi.nr_if_pool_objtotal,
            pi.nr_if_pool_objsize
        ),
        (0, 100, 1024),
        "if pool"
    );
    ensure_eq!(
        (
            pi.nr_ring_pool_offset,
            pi.nr_ring_pool_objtotal,
            pi.nr_ring_pool_objsize
        ),
        (102_400, 200, 36_864),
        "ring pool"
    );
    ensure_eq!(
        (
            pi.nr_buf_pool_offset,
            pi.nr_buf_pool_objtotal,
            pi.nr_buf_pool_objsize
        ),
        (7_475_200, BUF_TOTAL, 2048),
        "buf pool"
    );
    Ok(())
}

// ---------------------------------------------------------------- §5.6 legacy

fn legacy_req(name: &str, version: u32, flags: u32) -> Nmreq {
    let mut r = Nmreq {
        nr_version: version,
        nr_flags: flags,
        ..Nmreq::default()
    };
    set_cname(&mut r.nr_name, name);
    r
}

fn legacy_version_13() -> R {
    let fd = open()?;
    let mut r = legacy_req("lv{1", 13, NR_REG_ALL_NIC);
    want_errno(
        "NIOCREGIF nr_version 13",
        legacy_ioctl(fd.as_raw_fd(), &mut r, false),
        libc::EINVAL,
    )
}

fn legacy_version_16() -> R {
    let req = legacy_req("lp{1", 16, NR_REG_ALL_NIC);
    let (p, r) = Port::register_legacy(req).map_err(|e| format!("NIOCREGIF v16 \"lp{{1\": {e}"))?;
    ensure_eq!(
        (r.nr_tx_rings, r.nr_rx_rings),
        (1, 1),
        "nr_tx_rings/nr_rx_rings"
    );
    ensure_eq!(
        (r.nr_tx_slots, r.nr_rx_slots),
        (PIPE_SLOTS, PIPE_SLOTS),
        "slots"
    );
    ensure_eq!(r.nr_arg2, 1, "nr_arg2 (mem_id)");
    ensure_eq!(r.nr_memsize as u64, DEFAULT_MEMSIZE, "nr_memsize");
    ensure_eq!(
        (r.nr_version, r.nr_ringid, r.nr_flags),
        (16, 0, NR_REG_ALL_NIC),
        "version/ringid/flags (untouched)"
    );
    ensure_eq!(p.ni_name(), "lp{1", "ni_name");
    ensure!(
        p.tx_ring(0).is_some() && p.rx_ring(0).is_some(),
        "rings not bound"
    );
    Ok(())
}

fn legacy_extra_bufs() -> R {
    let mut req = legacy_req("lx{1", 14, NR_REG_ALL_NIC);
    req.nr_arg3 = 20;
    let (p, r) =
        Port::register_legacy(req).map_err(|e| format!("NIOCREGIF \"lx{{1\" 20 extra: {e}"))?;
    ensure_eq!(r.nr_arg3, 20, "nr_arg3 (extra buffers)");
    let list = p.extra_buf_list(10_000)?;
    ensure_eq!(list.len(), 20, "length of the ni_bufs_head list");
    Ok(())
}

fn legacy_pipe_master_mode() -> R {
    let mut req = legacy_req("lm", 14, NR_REG_PIPE_MASTER);
    req.nr_ringid = 3;
    let (p, _) =
        Port::register_legacy(req).map_err(|e| format!("NIOCREGIF \"lm\" PIPE_MASTER 3: {e}"))?;
    ensure_eq!(p.ni_name(), "lm{3", "ni_name of the translated pipe");
    // The slave end of that pipe is reachable by its new-API name.
    let s = pipe_end("lm}3")?;
    ensure_eq!(s.reg().nr_mem_id, p.reg().nr_mem_id, "mem_id of the peer");
    Ok(())
}

fn legacy_ginfo() -> R {
    let fd = open()?;
    let mut r = legacy_req("lg{1", 14, 0);
    want_ok(
        "NIOCGINFO \"lg{1\"",
        legacy_ioctl(fd.as_raw_fd(), &mut r, true),
    )?;
    ensure_eq!((r.nr_tx_rings, r.nr_rx_rings), (1, 1), "rings");
    ensure_eq!(
        (r.nr_tx_slots, r.nr_rx_slots),
        (PIPE_SLOTS, PIPE_SLOTS),
        "slots"
    );
    ensure_eq!(r.nr_arg2, 1, "nr_arg2 (mem_id)");
    ensure_eq!(r.nr_memsize as u64, DEFAULT_MEMSIZE, "nr_memsize");
    Ok(())
}

// ---------------------------------------------------------------- §6 and §2 misc ioctls

fn txsync_unregistered() -> R {
    let fd = open()?;
    want_errno(
        "NIOCTXSYNC on an unregistered fd",
        sys::txsync(fd.as_raw_fd()),
        libc::ENXIO,
    )
}

fn rxsync_unregistered() -> R {
    let fd = open()?;
    want_errno(
        "NIOCRXSYNC on an unregistered fd",
        sys::rxsync(fd.as_raw_fd()),
        libc::ENXIO,
    )
}

fn unknown_ioctl() -> R {
    let fd = open()?;
    let cmd = ioc(3, b'i', 200, NMREQ_SIZE);
    debug_assert_eq!(cmd, 0xc03c_69c8);
    let mut arg = [0u8; NMREQ_SIZE];
    // SAFETY: arg is 60 live bytes, the size encoded in the command.
    let r = unsafe { sys::ioctl_raw(fd.as_raw_fd(), cmd, arg.as_mut_ptr().cast()) }.map(|_| ());
    want_errno("ioctl 0xc03c69c8", r, libc::EOPNOTSUPP)
}

fn nioconfig() -> R {
    let fd = open()?;
    let mut ifr = NmIfreq {
        nifr_name: [0; 16],
        data: [0; 256],
    };
    set_cname(&mut ifr.nifr_name, "vale0");
    // SAFETY: ifr is a live 272-byte nm_ifreq, the size encoded in NIOCCONFIG.
    let r = unsafe {
        sys::ioctl_raw(
            fd.as_raw_fd(),
            NIOCCONFIG,
            (&mut ifr as *mut NmIfreq).cast(),
        )
    }
    .map(|_| ());
    want_errno("NIOCCONFIG \"vale0\"", r, libc::EINVAL)
}

fn poll_unregistered() -> R {
    let fd = open()?;
    let rev = sys::poll_fd(fd.as_raw_fd(), libc::POLLIN | libc::POLLOUT, 1000)
        .map_err(|e| e.to_string())?;
    ensure!(
        rev & libc::POLLERR != 0,
        "poll on an unregistered fd: expected POLLERR, got {}",
        poll_mask_name(rev)
    );
    Ok(())
}

// ---------------------------------------------------------------- §8 ring protocol

/// Master end alone, `n` packets queued and synced (nobody reads them).
fn tx_with_queued(name: &str, n: u32) -> Result<Port, String> {
    let p = pipe_end(name)?;
    {
        let r = p.tx_ring(0).ok_or("TX ring 0 not bound")?;
        queue_tx(&r, n);
        want_ok("NIOCTXSYNC after queueing", p.txsync())?;
        let ns = r.num_slots();
        ensure_eq!(
            r.indices(),
            (n % ns, n % ns, ns - 1),
            "TX ring after queueing (reader closed)"
        );
    }
    Ok(p)
}

fn tx_head_beyond_tail_sync() -> R {
    let p = tx_with_queued("tbs{1", PIPE_SLOTS - 1)?;
    let r = p.tx_ring(0).unwrap();
    let n = r.num_slots();
    // Ring full: head == tail == N-1. head = 0 is one past tail.
    r.advance(0);
    want_ok(
        "NIOCTXSYNC with head beyond tail (re-init is not an error)",
        p.txsync(),
    )?;
    let got = r.indices();
    // Reference kernel keeps in-range but inconsistent indices (§8.4); resetting to
    // hwcur/hwtail is an allowed emulator choice.
    ensure!(
        got == (0, 0, n - 1) || got == (n - 1, n - 1, n - 1),
        "TX ring after re-init: expected head=cur=0 (kept) or head=cur={} (reset), tail={}; got {}",
        n - 1,
        n - 1,
        ring_str(&r)
    );
    Ok(())
}

fn tx_head_beyond_tail_poll() -> R {
    let p = tx_with_queued("tbp{1", PIPE_SLOTS - 1)?;
    let r = p.tx_ring(0).unwrap();
    r.advance(0);
    let rev = p.poll(libc::POLLOUT, 0).map_err(|e| e.to_string())?;
    ensure!(
        rev & libc::POLLERR != 0,
        "poll(POLLOUT) with head beyond tail: expected POLLERR, got {} ({})",
        poll_mask_name(rev),
        ring_str(&r)
    );
    let (h, c, t) = r.indices();
    let n = r.num_slots();
    ensure!(
        h < n && c < n && t < n,
        "indices out of range after re-init: {}",
        ring_str(&r)
    );
    Ok(())
}

fn tx_head_out_of_range_sync() -> R {
    let p = tx_with_queued("tos{1", 10)?;
    let r = p.tx_ring(0).unwrap();
    let n = r.num_slots();
    r.advance(n + 5);
    want_ok(
        "NIOCTXSYNC with head = N+5 (re-init is not an error)",
        p.txsync(),
    )?;
    ensure_eq!(
        r.indices(),
        (10, 10, n - 1),
        "TX ring after re-init (head=cur=hwcur, tail=hwtail)"
    );
    // The ring keeps working afterwards.
    queue_tx(&r, 1);
    want_ok("NIOCTXSYNC after re-init", p.txsync())?;
    ensure_eq!(
        r.indices(),
        (11, 11, n - 1),
        "TX ring after one more packet"
    );
    Ok(())
}

fn tx_head_out_of_range_poll() -> R {
    let p = tx_with_queued("top{1", 10)?;
    let r = p.tx_ring(0).unwrap();
    let n = r.num_slots();
    r.advance(n + 5);
    let rev = p.poll(libc::POLLOUT, 0).map_err(|e| e.to_string())?;
    ensure!(
        rev & libc::POLLERR != 0,
        "poll(POLLOUT) with head = N+5: expected POLLERR, got {}",
        poll_mask_name(rev)
    );
    ensure_eq!(
        r.indices(),
        (10, 10, n - 1),
        "TX ring after re-init (head=cur=hwcur, tail=hwtail)"
    );
    Ok(())
}

/// Pipe with 10 packets received (but not released) on the slave's RX ring.
fn rx_with_pending(base: &str) -> Result<(Port, Port), String> {
    let m = pipe_end(&format!("{base}{{1"))?;
    let s = pipe_end(&format!("{base}}}1"))?;
    queue_tx(&m.tx_ring(0).ok_or("master TX ring 0 not bound")?, 10);
    want_ok("master NIOCTXSYNC", m.txsync())?;
    want_ok("slave NIOCRXSYNC", s.rxsync())?;
    let r = s.rx_ring(0).ok_or("slave RX ring 0 not bound")?;
    ensure_eq!(
        r.indices(),
        (0, 0, 10),
        "slave RX ring after receiving 10 packets"
    );
    Ok((m, s))
}

fn rx_head_beyond_tail_poll() -> R {
    let (_m, s) = rx_with_pending("rbp")?;
    let r = s.rx_ring(0).unwrap();
    r.advance(20);
    let rev = s.poll(libc::POLLIN, 0).map_err(|e| e.to_string())?;
    ensure!(
        rev & libc::POLLERR != 0,
        "poll(POLLIN) with RX head beyond tail: expected POLLERR, got {} ({})",
        poll_mask_name(rev),
        ring_str(&r)
    );
    Ok(())
}

fn rx_head_out_of_range_sync() -> R {
    let (_m, s) = rx_with_pending("ros")?;
    let r = s.rx_ring(0).unwrap();
    let n = r.num_slots();
    r.advance(n + 3);
    want_ok(
        "NIOCRXSYNC with head = N+3 (re-init is not an error)",
        s.rxsync(),
    )?;
    ensure_eq!(
        r.indices(),
        (0, 0, 10),
        "RX ring after re-init (head=cur=hwcur, tail=hwtail)"
    );
    Ok(())
}

// ---------------------------------------------------------------- positive checks

fn check_fresh_pipe_rings(p: &Port, name: &str) -> R {
    ensure_eq!(p.ni_name(), name, "ni_name");
    ensure_eq!(
        p.ni_flags() & NI_PRIV_MEM,
        0,
        "NI_PRIV_MEM (global allocator)"
    );
    ensure_eq!(
        (p.ni_tx_rings(), p.ni_rx_rings()),
        (1, 1),
        "ni_tx_rings/ni_rx_rings"
    );
    ensure_eq!(
        (p.ni_host_tx_rings(), p.ni_host_rx_rings()),
        (1, 1),
        "ni_host_*_rings (placeholders)"
    );
    ensure_eq!(p.ni_bufs_head(), 0, "ni_bufs_head without extra buffers");
    ensure!(
        p.ring_ofs(0) != 0 && p.ring_ofs(2) != 0,
        "ring_ofs of the bound rings is 0: {:?}",
        (0..4).map(|k| p.ring_ofs(k)).collect::<Vec<_>>()
    );
    ensure_eq!(
        (p.ring_ofs(1), p.ring_ofs(3)),
        (0, 0),
        "ring_ofs of the host placeholders"
    );
    for (dir, r) in [
        (NR_TX, p.tx_ring(0).unwrap()),
        (NR_RX, p.rx_ring(0).unwrap()),
    ] {
        let n = r.num_slots();
        ensure_eq!(n, PIPE_SLOTS, "num_slots");
        ensure_eq!(r.nr_buf_size(), 2048, "nr_buf_size");
        ensure_eq!((r.dir(), r.ringid()), (dir, 0), "dir/ringid");
        ensure_eq!(
            (r.flags(), r.offset_mask()),
            (0, 0),
            "ring flags/offset_mask"
        );
        let want = if dir == NR_TX {
            (0, 0, n - 1)
        } else {
            (0, 0, 0)
        };
        ensure_eq!(
            r.indices(),
            want,
            format!(
                "indices of the new {} ring",
                if dir == NR_TX { "TX" } else { "RX" }
            )
        );
        let mut seen = std::collections::HashSet::new();
        for i in 0..n {
            let idx = r.slot_buf_idx(i);
            ensure!(
                (2..BUF_TOTAL).contains(&idx),
                "slot {i}: buf_idx {idx} outside [2, {BUF_TOTAL})"
            );
            ensure!(
                seen.insert(idx),
                "slot {i}: buf_idx {idx} used twice in one ring"
            );
            ensure_eq!(
                (r.slot_len(i), r.slot_flags(i)),
                (2048, 0),
                format!("slot {i} len/flags")
            );
            let _ = r.buf_offset(idx, 2048);
        }
    }
    Ok(())
}

fn register_pipe_defaults() -> R {
    let p = pipe_end("pd{1")?;
    let g = *p.reg();
    ensure_eq!(
        (g.nr_tx_rings, g.nr_rx_rings, g.nr_tx_slots, g.nr_rx_slots),
        (1, 1, PIPE_SLOTS, PIPE_SLOTS),
        "rings/slots"
    );
    ensure_eq!(
        (g.nr_host_tx_rings, g.nr_host_rx_rings),
        (0, 0),
        "host rings"
    );
    ensure_eq!(
        (g.nr_mem_id, g.nr_memsize),
        (1, DEFAULT_MEMSIZE),
        "mem_id/memsize"
    );
    ensure_eq!(
        (g.nr_mode, g.nr_ringid, g.nr_flags, g.nr_extra_bufs),
        (NR_REG_ALL_NIC, 0, 0, 0),
        "mode/ringid/flags/extra_bufs"
    );
    check_fresh_pipe_rings(&p, "pd{1")
}

fn two_fds_distinct_offsets() -> R {
    let a = pipe_end("do{1")?;
    let b = pipe_end("do{1")?;
    let s = pipe_end("do}1")?;
    let offs = [a.reg().nr_offset, b.reg().nr_offset, s.reg().nr_offset];
    ensure!(
        offs[0] != offs[1] && offs[0] != offs[2] && offs[1] != offs[2],
        "nr_offset not distinct: {offs:?}"
    );
    ensure_eq!(
        [a.reg().nr_mem_id, b.reg().nr_mem_id, s.reg().nr_mem_id],
        [1, 1, 1],
        "nr_mem_id"
    );
    // Both master fds share the same TX ring; the slave's RX ring starts with the
    // same buffers, slot for slot (§10.4).
    let (ta, tb, rs) = (
        a.tx_ring(0).unwrap(),
        b.tx_ring(0).unwrap(),
        s.rx_ring(0).unwrap(),
    );
    ensure_eq!(
        ta.offset(),
        tb.offset(),
        "TX ring offset seen by two master fds"
    );
    for k in 0..ta.num_slots() {
        ensure_eq!(
            rs.slot_buf_idx(k),
            ta.slot_buf_idx(k),
            format!("slave RX slot {k} buffer vs master TX slot {k}")
        );
    }
    Ok(())
}

fn shared_mapping() -> R {
    let m = pipe_end("sm{1")?;
    let s = pipe_end("sm}1")?;
    let tm = m.tx_ring(0).unwrap();
    let idx = tm.slot_buf_idx(0);
    let marker = *b"netmapd shared mapping marker\0";
    tm.write_buf(idx, 0, &marker);
    // Read the same buffer through the other fd's mapping (libnetmap reuses mappings).
    let rs = s.rx_ring(0).unwrap();
    let off = rs.buf_base() + idx as usize * 2048;
    let mut got = [0u8; 30];
    s.mapping().read_bytes(off, &mut got);
    ensure_eq!(
        got,
        marker,
        "buffer content seen through the second mapping"
    );
    let mut name = [0u8; 16];
    s.mapping()
        .read_bytes(m.reg().nr_offset as usize, &mut name);
    ensure_eq!(
        cname(&name),
        "sm{1",
        "master's netmap_if read through the slave's mapping"
    );
    Ok(())
}

fn tx_rings_only() -> R {
    let mut r = reg(NR_REG_ALL_NIC);
    r.nr_flags = NR_TX_RINGS_ONLY;
    let p = port("tro{1", r)?;
    ensure!(p.tx_ring(0).is_some(), "TX ring 0 not bound");
    ensure_eq!(p.ring_ofs(2), 0, "ring_ofs of the unbound RX ring");
    want_ok("NIOCRXSYNC with no RX ring bound", p.rxsync())
}

fn rx_rings_only() -> R {
    let mut r = reg(NR_REG_ALL_NIC);
    r.nr_flags = NR_RX_RINGS_ONLY;
    let p = port("rro{1", r)?;
    ensure!(p.rx_ring(0).is_some(), "RX ring 0 not bound");
    ensure_eq!(p.ring_ofs(0), 0, "ring_ofs of the unbound TX ring");
    want_ok("NIOCTXSYNC with no TX ring bound", p.txsync())
}

fn extra_bufs() -> R {
    let mut r = reg(NR_REG_ALL_NIC);
    r.nr_extra_bufs = 20;
    let p = port("eb{1", r)?;
    ensure_eq!(p.reg().nr_extra_bufs, 20, "nr_extra_bufs");
    let list = p.extra_buf_list(10_000)?;
    ensure_eq!(list.len(), 20, "length of the ni_bufs_head list");
    let mut seen = std::collections::HashSet::new();
    let (t, x) = (p.tx_ring(0).unwrap(), p.rx_ring(0).unwrap());
    let in_rings: std::collections::HashSet<u32> = (0..t.num_slots())
        .map(|i| t.slot_buf_idx(i))
        .chain((0..x.num_slots()).map(|i| x.slot_buf_idx(i)))
        .collect();
    for &b in &list {
        ensure!(
            (2..BUF_TOTAL).contains(&b),
            "extra buffer {b} outside [2, {BUF_TOTAL})"
        );
        ensure!(seen.insert(b), "extra buffer {b} twice in the list");
        ensure!(
            !in_rings.contains(&b),
            "extra buffer {b} is also in a ring slot"
        );
    }
    Ok(())
}

fn null_reg(txr: u16, rxr: u16, txs: u32, rxs: u32) -> NmreqRegister {
    NmreqRegister {
        nr_mode: NR_REG_NULL,
        nr_mem_id: 1,
        nr_tx_rings: txr,
        nr_rx_rings: rxr,
        nr_tx_slots: txs,
        nr_rx_slots: rxs,
        ..NmreqRegister::default()
    }
}

fn null_port() -> R {
    let p = port("nullp", null_reg(10, 5, 256, 100))?;
    let g = *p.reg();
    ensure_eq!(
        (g.nr_tx_rings, g.nr_rx_rings, g.nr_tx_slots, g.nr_rx_slots),
        (10, 5, 256, 100),
        "counts (echoed)"
    );
    ensure_eq!(g.nr_mem_id, 1, "nr_mem_id");
    ensure_eq!(
        (p.ni_tx_rings(), p.ni_rx_rings()),
        (10, 5),
        "ni_tx_rings/ni_rx_rings"
    );
    for i in 0..10 {
        let r = p.tx_ring(i).ok_or(format!("TX ring {i} not bound"))?;
        ensure_eq!(
            (r.num_slots(), r.ringid(), r.dir()),
            (256, i as u16, NR_TX),
            format!("TX ring {i}")
        );
    }
    for i in 0..5 {
        let r = p.rx_ring(i).ok_or(format!("RX ring {i} not bound"))?;
        ensure_eq!(
            (r.num_slots(), r.ringid(), r.dir()),
            (100, i as u16, NR_RX),
            format!("RX ring {i}")
        );
    }
    Ok(())
}

fn null_port_all_zero() -> R {
    let (_fd, g) = register_new("nullz", null_reg(0, 0, 0, 0))?;
    ensure_eq!(
        (g.nr_tx_rings, g.nr_rx_rings, g.nr_tx_slots, g.nr_rx_slots),
        (0, 0, 0, 0),
        "counts (echoed)"
    );
    ensure_eq!(g.nr_mem_id, 1, "nr_mem_id");
    Ok(())
}

fn null_port_sync() -> R {
    let p = port("nulls", null_reg(1, 1, 64, 64))?;
    want_ok("NIOCTXSYNC on a null port", p.txsync())?;
    want_ok("NIOCRXSYNC on a null port", p.rxsync())?;
    let r = p.tx_ring(0).ok_or("TX ring 0 not bound")?;
    queue_tx(&r, 3);
    want_ok("NIOCTXSYNC with 3 packets", p.txsync())?;
    ensure_eq!(r.indices(), (3, 3, 63), "null TX ring (tail never moves)");
    Ok(())
}

fn pipe_transfer_basic() -> R {
    let m = pipe_end("ptb{1")?;
    let s = pipe_end("ptb}1")?;
    let (tx, rx) = (m.tx_ring(0).unwrap(), s.rx_ring(0).unwrap());
    let lens = [60u16, 1000, 2048];
    for (i, &l) in lens.iter().enumerate() {
        let data: Vec<u8> = (0..l).map(|b| (b as usize * 7 + i) as u8).collect();
        tx.write_buf(tx.slot_buf_idx(i as u32), 0, &data);
        tx.set_slot_len(i as u32, l);
        tx.set_slot_flags(i as u32, 0);
    }
    tx.advance(3);
    want_ok("master NIOCTXSYNC", m.txsync())?;
    ensure_eq!(
        tx.indices(),
        (3, 3, PIPE_SLOTS - 1),
        "master TX after sending 3 (nothing released yet)"
    );
    let rev = s.poll(libc::POLLIN, 2000).map_err(|e| e.to_string())?;
    ensure_eq!(rev, libc::POLLIN, "slave poll(POLLIN) revents");
    ensure_eq!(rx.indices(), (0, 0, 3), "slave RX after poll");
    for (i, &l) in lens.iter().enumerate() {
        ensure_eq!(rx.slot_len(i as u32), l, format!("RX slot {i} len"));
        let mut got = vec![0u8; l as usize];
        rx.read_buf(rx.slot_buf_idx(i as u32), &mut got);
        let want: Vec<u8> = (0..l).map(|b| (b as usize * 7 + i) as u8).collect();
        ensure!(got == want, "RX slot {i}: payload differs");
    }
    rx.advance(3);
    want_ok("slave NIOCRXSYNC (release)", s.rxsync())?;
    want_ok("master NIOCTXSYNC (reclaim)", m.txsync())?;
    ensure_eq!(
        tx.indices(),
        (3, 3, 2),
        "master TX after the reader released 3 (tail = head-1)"
    );
    let rev = m.poll(libc::POLLOUT, 0).map_err(|e| e.to_string())?;
    ensure_eq!(rev, libc::POLLOUT, "master poll(POLLOUT) revents");
    Ok(())
}

macro_rules! cases {
    ($($name:ident : $what:literal),* $(,)?) => {
        /// Every case, in the order `--list` prints them.
        pub const CASES: &[Case] = &[$(Case { name: stringify!($name), what: $what, run: $name }),*];
    };
}

cases! {
    version_13: "§5 step 1: NIOCCTRL nr_version 13 -> EINVAL, body untouched",
    version_16: "§5 step 1: NIOCCTRL nr_version 16 -> EINVAL, body untouched",
    reserved_nonzero: "§5 step 2: nr_reserved != 0 -> EINVAL",
    register_null_body: "§5 step 3: REGISTER with nr_body 0 -> EINVAL",
    body_on_no_body_type: "§5 step 3: VALE_DELIF with a body -> EINVAL",
    unknown_reqtype: "§5 step 3: reqtype 99, nr_body 0 -> EINVAL",
    bad_body_pointer: "§5 step 4: nr_body 0x10 -> EFAULT",
    unsupported_option: "§5: option type 1234 -> EOPNOTSUPP, status EOPNOTSUPP, nro_next kept, registration undone",
    infinite_options: "§5 step 4: self-linked unknown option -> EMSGSIZE",
    infinite_options_offsets: "§5 step 4: self-linked OFFSETS option -> EINVAL, status EINVAL",
    option_reqtype_zero: "§5 step 4: option type 0 -> EINVAL, status EINVAL",
    options_overflow_eventfds: "§5 step 4: 99 type-6 options + EVENTFDS nro_size 1000 -> EMSGSIZE",
    bad_option_pointer: "§5 step 4: nr_options 0x10 -> EFAULT",
    register_twice: "§5.1: second REGISTER on one fd -> EBUSY",
    mode_default: "§4.3: nr_mode 0 -> EINVAL",
    mode_pipe_master: "§4.3: nr_mode 5 -> EINVAL",
    mode_pipe_slave: "§4.3: nr_mode 6 -> EINVAL",
    mode_99: "§4.3: nr_mode 99 -> EINVAL",
    pipe_nic_sw: "§10.4: pipe with NIC_SW -> EINVAL, ALL_NIC works",
    pipe_empty_id: "§10.4: pipe \"x{\" -> EINVAL",
    one_nic_out_of_range: "§4.3: ONE_NIC ringid 5 on a 1-ring pipe -> EINVAL, ringid 0 works",
    exclusive_after_shared: "§5.1: NR_EXCLUSIVE on rings already in use -> EBUSY",
    shared_after_exclusive: "§5.1: rings owned exclusively -> EBUSY; peer end unaffected",
    null_mem_id_0: "§10.6: null port with mem_id 0 -> EINVAL",
    null_unknown_mem_id: "§5.1: null port with mem_id 7 -> EINVAL",
    unknown_interface: "§5.1: REGISTER \"nosuchif0\" -> ENXIO",
    pools_info_empty_name: "§5.3: POOLS_INFO_GET \"\" -> ENXIO",
    port_info_empty_name: "§5.2: PORT_INFO_GET \"\" -> memsize 343019520, mem_id 1, rest untouched",
    port_info_unknown_mem_id: "§5.2: PORT_INFO_GET \"\" mem_id 7 -> EINVAL",
    port_info_pipe: "§5.2: PORT_INFO_GET on a pipe -> 1 ring, 1024 slots, mem_id 1",
    pools_info_pipe: "§5.3/§7.2: POOLS_INFO_GET on a pipe -> default pool geometry",
    legacy_version_13: "§5.6: NIOCREGIF nr_version 13 -> EINVAL",
    legacy_version_16: "§5.6: NIOCREGIF nr_version 16 accepted, reply fields",
    legacy_extra_bufs: "§5.6: NIOCREGIF nr_arg3 20 -> 20 extra buffers",
    legacy_pipe_master_mode: "§5.6: NIOCREGIF mode PIPE_MASTER ringid 3 -> port \"lm{3\"",
    legacy_ginfo: "§5.6: NIOCGINFO on a pipe -> rings/slots/mem_id",
    txsync_unregistered: "§6: NIOCTXSYNC unregistered -> ENXIO",
    rxsync_unregistered: "§6: NIOCRXSYNC unregistered -> ENXIO",
    unknown_ioctl: "§2: ioctl 0xc03c69c8 -> EOPNOTSUPP",
    nioconfig: "§5.6: NIOCCONFIG -> EINVAL",
    poll_unregistered: "§9: poll unregistered -> POLLERR",
    tx_head_beyond_tail_sync: "§8.3/8.4: TX head past tail, NIOCTXSYNC -> 0, indices valid",
    tx_head_beyond_tail_poll: "§8.3/9: TX head past tail, poll(POLLOUT) -> POLLERR",
    tx_head_out_of_range_sync: "§8.4: TX head >= N, NIOCTXSYNC -> 0, reset to hwcur/hwtail",
    tx_head_out_of_range_poll: "§8.4/9: TX head >= N, poll -> POLLERR, reset to hwcur/hwtail",
    rx_head_beyond_tail_poll: "§8.3/9: RX head past tail, poll(POLLIN) -> POLLERR",
    rx_head_out_of_range_sync: "§8.4: RX head >= N, NIOCRXSYNC -> 0, reset to hwcur/hwtail",
    register_pipe_defaults: "§5.1/§7.3: pipe REGISTER reply, netmap_if and fresh rings",
    two_fds_distinct_offsets: "§5.1/§10.4: distinct nr_offset per fd, shared rings, peer buffers",
    shared_mapping: "§7.5: two mappings show the same memory",
    tx_rings_only: "§3.3: NR_TX_RINGS_ONLY -> RX ring_ofs 0",
    rx_rings_only: "§3.3: NR_RX_RINGS_ONLY -> TX ring_ofs 0",
    extra_bufs: "§7.4: 20 extra buffers, list of distinct indices",
    null_port: "§10.6: null port 10/5 rings 256/100 slots echoed",
    null_port_all_zero: "§10.6: null port with all counts 0",
    null_port_sync: "§10.6: null port syncs return 0, TX tail fixed",
    pipe_transfer_basic: "§10.4: 3 packets master->slave, poll wakeups, tail = head-1 after release",
}

/// Looks a case up by name.
pub fn find(name: &str) -> Option<&'static Case> {
    CASES.iter().find(|c| c.name == name)
}
