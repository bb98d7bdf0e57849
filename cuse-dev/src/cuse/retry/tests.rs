//! The retry planner against a simulated kernel (gather the in-regions, call again,
//! scatter the reply) and a fake caller address space, compared byte for byte and
//! errno for errno with the FUSE front end's path (restricted ioctl + direct access
//! to the caller's memory).

use super::*;
use crate::ctrl::CtrlConfig;
use netmap_abi::{Nmreq, NmreqHeader, NmreqOptOffsets, NmreqOption, NmreqRegister};
use netmap_pool::PoolConfig;
use zerocopy::IntoBytes;

use crate::ctrl::fake_mem::FakeMem as Client;

const BASE: u64 = Client::BASE;
const LEN: usize = Client::LEN;
const UNTOUCHED: u32 = 0xdead;
const OPT: usize = abi::NMREQ_OPTION_SIZE;

fn new_cp() -> ControlPlane {
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
    ControlPlane::new(&cfg).expect("control plane")
}

/// How one ioctl ended: errno (0 for success) and the number of daemon rounds.
#[derive(Debug)]
struct Outcome {
    errno: i32,
    rounds: usize,
}

/// The kernel's side of an unrestricted CUSE ioctl (fs/fuse/ioctl.c).
fn cuse_ioctl(cp: &ControlPlane, fd: FdId, cmd: u32, arg: u64, c: &Client) -> Outcome {
    let mut in_buf = Vec::new();
    let mut out: Vec<Span> = Vec::new();
    for rounds in 1..2000 {
        let out_size: usize = out.iter().map(|s| s.len).sum();
        match step(cp, fd, cmd, arg, &in_buf, out_size, c) {
            Step::Retry(spans) => {
                assert!(2 * spans.len() <= 256, "too many iovecs: {}", spans.len());
                let total: usize = spans.iter().map(|s| s.len).sum();
                assert!(total <= 32 * 4096, "retry too large: {total}");
                in_buf.clear();
                for s in &spans {
                    let mut b = vec![0u8; s.len];
                    if c.read(s.addr, &mut b).is_err() {
                        return Outcome {
                            errno: libc::EFAULT,
                            rounds,
                        };
                    }
                    in_buf.extend_from_slice(&b);
                }
                out = spans;
            }
            Step::Reply { result, data } => {
                assert!(data.len() <= out_size, "reply larger than the out-regions");
                let mut rest = &data[..];
                for s in &out {
                    let n = s.len.min(rest.len());
                    if c.write(s.addr, &rest[..n]).is_err() {
                        return Outcome {
                            errno: libc::EFAULT,
                            rounds,
                        };
                    }
                    rest = &rest[n..];
                }
                return Outcome {
                    errno: -result,
                    rounds,
                };
            }
            Step::Error(e) => return Outcome { errno: e, rounds },
        }
    }
    panic!("the retry loop does not terminate");
}

/// The FUSE front end's path: restricted ioctl (the size in `cmd` copied in and, on
/// success, out) and direct access to the caller's memory.
fn fuse_ioctl(cp: &ControlPlane, fd: FdId, cmd: u32, arg: u64, c: &Client) -> i32 {
    let size = ((cmd >> 16) & 0x3fff) as usize;
    let mut a = vec![0u8; size];
    if c.read(arg, &mut a).is_err() {
        return libc::EFAULT;
    }
    match cp.ioctl(fd, cmd, &a, c) {
        Ok(mut out) => {
            out.resize(size, 0);
            match c.write(arg, &out) {
                Ok(()) => 0,
                Err(e) => e.0,
            }
        }
        Err(e) => e.0,
    }
}

/// Builds the same request in two fresh worlds, runs it through both paths and checks
/// they agree on the errno and (if `same_memory`) on every byte of the caller's memory.
fn compare(build: impl Fn(&Client) -> (u32, u64), same_memory: bool) -> (i32, Outcome) {
    let (cp_f, cp_c) = (new_cp(), new_cp());
    let (fd_f, fd_c) = (cp_f.open(), cp_c.open());
    let (mf, mc) = (Client::new(), Client::new());
    let (cmd, arg) = build(&mf);
    assert_eq!(build(&mc), (cmd, arg));
    let ef = fuse_ioctl(&cp_f, fd_f, cmd, arg, &mf);
    let oc = cuse_ioctl(&cp_c, fd_c, cmd, arg, &mc);
    assert_eq!(ef, oc.errno, "errno differs between FUSE and CUSE");
    if same_memory {
        assert!(
            mf.snapshot() == mc.snapshot(),
            "caller memory differs between FUSE and CUSE"
        );
    }
    assert_eq!(cp_f.pool_counts(), cp_c.pool_counts());
    (ef, oc)
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

fn null_reg() -> NmreqRegister {
    NmreqRegister {
        nr_mem_id: 1,
        nr_tx_slots: 8,
        nr_rx_slots: 8,
        nr_tx_rings: 1,
        nr_rx_rings: 1,
        nr_mode: abi::NR_REG_NULL,
        ..Default::default()
    }
}

/// A REGISTER of a null port with the given chain head.
fn register(c: &Client, opts: u64) -> (u32, u64) {
    let body = c.put(null_reg().as_bytes());
    let h = header(abi::NETMAP_REQ_REGISTER, "null0", body, opts);
    (abi::NIOCCTRL, c.put(h.as_bytes()))
}

fn option(next: u64, t: u32) -> NmreqOption {
    NmreqOption {
        nro_next: next,
        nro_reqtype: t,
        nro_status: UNTOUCHED,
        nro_size: OPT as u64,
    }
}

/// `n` unknown options; `gap` bytes between neighbours (0: one contiguous array).
fn unknown_chain(c: &Client, n: usize, gap: usize) -> u64 {
    let addrs: Vec<u64> = (0..n).map(|_| c.alloc(OPT + gap)).collect();
    for (i, &a) in addrs.iter().enumerate() {
        let next = addrs.get(i + 1).copied().unwrap_or(0);
        c.write(a, option(next, 100 + i as u32).as_bytes())
            .expect("mapped");
    }
    addrs.first().copied().unwrap_or(0)
}

#[test]
fn register_without_options_matches_fuse() {
    let (e, o) = compare(|c| register(c, 0), true);
    assert_eq!(e, 0);
    // Round 1: header; round 2: body (adjacent to nothing); round 3: execute.
    assert_eq!(o.rounds, 3);
}

#[test]
fn unknown_options_come_back_eopnotsupp() {
    let (e, _) = compare(|c| register(c, unknown_chain(c, 3, 40)), true);
    assert_eq!(e, libc::EOPNOTSUPP);
}

#[test]
fn contiguous_option_array_is_one_region() {
    // Body, then header, then 100 options in one array: few rounds, few iovecs.
    let (e, o) = compare(|c| register(c, unknown_chain(c, 100, 0)), true);
    assert_eq!(e, libc::EOPNOTSUPP);
    assert!(o.rounds <= 104, "rounds: {}", o.rounds);
}

#[test]
fn staging_limit_127_and_128_options() {
    let (e, _) = compare(|c| register(c, unknown_chain(c, 127, 0)), true);
    assert_eq!(e, libc::EOPNOTSUPP);
    let (e, _) = compare(|c| register(c, unknown_chain(c, 128, 0)), true);
    assert_eq!(e, libc::EMSGSIZE);
}

#[test]
fn scattered_chain_beyond_one_retry_falls_back_to_direct_access() {
    // 127 options each in its own region: more than MAX_SPANS iovecs.
    let (e, _) = compare(|c| register(c, unknown_chain(c, 127, 8)), true);
    assert_eq!(e, libc::EOPNOTSUPP);
    let (e, _) = compare(|c| register(c, unknown_chain(c, 128, 8)), true);
    assert_eq!(e, libc::EMSGSIZE);
}

#[test]
fn self_linked_unknown_option_terminates_with_emsgsize() {
    let (e, o) = compare(
        |c| {
            let a = c.alloc(OPT);
            c.write(a, option(a, 1000).as_bytes()).expect("mapped");
            register(c, a)
        },
        true,
    );
    assert_eq!(e, libc::EMSGSIZE);
    assert!(o.rounds <= 5, "a loop must not cost a round per lap");
}

#[test]
fn self_linked_known_option_is_einval_with_statuses() {
    let (e, _) = compare(
        |c| {
            let a = c.alloc(std::mem::size_of::<NmreqOptOffsets>());
            let o = NmreqOptOffsets {
                nro_opt: NmreqOption {
                    nro_size: std::mem::size_of::<NmreqOptOffsets>() as u64,
                    ..option(a, abi::NETMAP_REQ_OPT_OFFSETS)
                },
                nro_max_offset: 0,
                nro_initial_offset: 0,
                nro_offset_bits: 0,
                nro_tx_align: 0,
                nro_min_gap: 0,
            };
            c.write(a, o.as_bytes()).expect("mapped");
            register(c, a)
        },
        true,
    );
    assert_eq!(e, libc::EINVAL);
}

#[test]
fn reqtype_zero_option_is_einval() {
    let (e, _) = compare(|c| register(c, c.put(option(0, 0).as_bytes())), true);
    assert_eq!(e, libc::EINVAL);
}

#[test]
fn bad_pointers_are_efault() {
    let unmapped = BASE + LEN as u64 + 4096;
    // Body.
    let (e, _) = compare(
        |c| {
            let h = header(abi::NETMAP_REQ_REGISTER, "null0", unmapped, 0);
            (abi::NIOCCTRL, c.put(h.as_bytes()))
        },
        true,
    );
    assert_eq!(e, libc::EFAULT);
    // First option.
    let (e, _) = compare(|c| register(c, unmapped), true);
    assert_eq!(e, libc::EFAULT);
    // Third option: the FUSE path writes the first two headers back with status 0,
    // the kernel fails the retried CUSE ioctl first; only the errno is compared.
    let (e, _) = compare(
        |c| {
            let second = c.put(option(unmapped, 101).as_bytes());
            register(c, c.put(option(second, 100).as_bytes()))
        },
        false,
    );
    assert_eq!(e, libc::EFAULT);
    // Option straddling the end of the mapping, and the header itself.
    let (e, _) = compare(|c| register(c, BASE + LEN as u64 - 8), true);
    assert_eq!(e, libc::EFAULT);
    let (e, _) = compare(|_| (abi::NIOCCTRL, unmapped), true);
    assert_eq!(e, libc::EFAULT);
}

#[test]
fn header_checks_need_no_more_than_the_header() {
    let (e, o) = compare(
        |c| {
            let h = NmreqHeader {
                nr_version: 3,
                ..header(abi::NETMAP_REQ_REGISTER, "null0", 0x1234, 0)
            };
            (abi::NIOCCTRL, c.put(h.as_bytes()))
        },
        true,
    );
    assert_eq!(e, libc::EINVAL);
    assert_eq!(o.rounds, 2);
}

#[test]
fn port_info_and_pools_info() {
    for t in [
        abi::NETMAP_REQ_PORT_INFO_GET,
        abi::NETMAP_REQ_POOLS_INFO_GET,
    ] {
        compare(
            |c| {
                let body = c.put(&vec![0u8; abi::req_body_size(t)]);
                (abi::NIOCCTRL, c.put(header(t, "null0", body, 0).as_bytes()))
            },
            true,
        );
    }
}

#[test]
fn body_adjacent_to_header_shares_its_region() {
    let (e, o) = compare(
        |c| {
            let h = c.alloc(abi::NMREQ_HEADER_SIZE);
            let body = c.put(null_reg().as_bytes());
            assert_eq!(body, h + abi::NMREQ_HEADER_SIZE as u64);
            c.write(
                h,
                header(abi::NETMAP_REQ_REGISTER, "null0", body, 0).as_bytes(),
            )
            .expect("mapped");
            (abi::NIOCCTRL, h)
        },
        true,
    );
    assert_eq!(e, 0);
    assert_eq!(o.rounds, 3);
}

#[test]
fn legacy_sync_unknown_and_null_argument() {
    let legacy = |cmd: u32| {
        move |c: &Client| {
            let mut r = Nmreq {
                nr_version: abi::NETMAP_API,
                ..Default::default()
            };
            netmap_abi::set_cname(&mut r.nr_name, "nosuchif0");
            (cmd, c.put(r.as_bytes()))
        }
    };
    compare(legacy(abi::NIOCGINFO), true);
    compare(legacy(abi::NIOCREGIF), true);
    let (e, o) = compare(|_| (abi::NIOCTXSYNC, 0), true);
    assert_eq!(o.rounds, 1);
    let _ = e;
    let (e, _) = compare(|_| (0xc0106999, BASE), true);
    assert_eq!(e, libc::EOPNOTSUPP);
    // NULL argument: netmap answers EINVAL (the FUSE path never sees it: the kernel
    // faults first), so only the CUSE side is checked.
    let cp = new_cp();
    let fd = cp.open();
    let c = Client::new();
    assert_eq!(
        cuse_ioctl(&cp, fd, abi::NIOCCTRL, 0, &c).errno,
        libc::EINVAL
    );
    assert_eq!(
        cuse_ioctl(&cp, fd, abi::NIOCREGIF, 0, &c).errno,
        libc::EINVAL
    );
}

#[test]
fn request_changed_between_rounds_is_asked_again() {
    let cp = new_cp();
    let fd = cp.open();
    let c = Client::new();
    let (_, arg) = register(&c, 0);
    // Round 2 supplies a header whose body differs from what round 1's plan saw:
    // extra bytes beyond what the plan reads must not be taken as the body.
    let mut in_buf = vec![0u8; abi::NMREQ_HEADER_SIZE + 16];
    c.read(arg, &mut in_buf[..abi::NMREQ_HEADER_SIZE])
        .expect("mapped");
    match step(&cp, fd, abi::NIOCCTRL, arg, &in_buf, in_buf.len(), &c) {
        Step::Retry(spans) => assert_eq!(spans.len(), 2),
        s => panic!("expected a retry, got {s:?}"),
    }
}
