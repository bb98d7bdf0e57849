//! NIC-port scenarios (host interfaces opened by the daemon through AF_PACKET):
//! the REGISTER / PORT_INFO_GET / NIOCREGIF field checks of ctrl-api-test
//! (NETMAP-ABI.md §13 cases 1–5 and 38–43), the ring layout of a multi-queue
//! interface, a multi-flow sender on a plain AF_PACKET socket (so the kernel's flow
//! hash spreads frames over the TX queues of a veth, hence over the peer's RX queues)
//! and a receiver that counts frames per RX ring.
//!
//! Run a case with `nm-client nic CASE --if IFNAME`; `nm-client nic --list`.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use netmap_abi::*;

use crate::port::{legacy_ioctl, register_fd, Port};
use crate::sys::{self, Errno};

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

/// One NIC case: runs against the interface named on the command line.
pub struct NicCase {
    pub name: &'static str,
    pub what: &'static str,
    pub run: fn(&str) -> R,
}

pub const NIC_CASES: &[NicCase] = &[
    NicCase {
        name: "port_info_get",
        what: "ctrl-api-test 1: PORT_INFO_GET; memsize, slots, rings non-zero",
        run: port_info_get,
    },
    NicCase {
        name: "register_nic_sw",
        what: "ctrl-api-test 2: REGISTER NIC_SW; outputs non-zero, inputs unchanged, host rings",
        run: register_nic_sw,
    },
    NicCase {
        name: "register_all_nic",
        what: "ctrl-api-test 3: REGISTER ALL_NIC",
        run: register_all_nic,
    },
    NicCase {
        name: "register_sw",
        what: "ctrl-api-test 4: REGISTER SW (host rings only)",
        run: register_sw,
    },
    NicCase {
        name: "register_one_nic",
        what: "ctrl-api-test 5: REGISTER ONE_NIC ring 0",
        run: register_one_nic,
    },
    NicCase {
        name: "legacy_regif_default",
        what: "ctrl-api-test 38: NIOCREGIF v14, nr_flags 0, ringid 0",
        run: legacy_regif_default,
    },
    NicCase {
        name: "legacy_regif_all_nic",
        what: "ctrl-api-test 39: NIOCREGIF ALL_NIC v14",
        run: legacy_regif_all_nic,
    },
    NicCase {
        name: "legacy_regif_12",
        what: "ctrl-api-test 40: NIOCREGIF ALL_NIC v15",
        run: legacy_regif_12,
    },
    NicCase {
        name: "legacy_regif_sw",
        what: "ctrl-api-test 41: NIOCREGIF SW",
        run: legacy_regif_sw,
    },
    NicCase {
        name: "legacy_regif_future",
        what: "ctrl-api-test 42: NIOCREGIF NIC_SW v16 accepted",
        run: legacy_regif_future,
    },
    NicCase {
        name: "legacy_regif_extra_bufs",
        what: "ctrl-api-test 43: NIOCREGIF ALL_NIC, 20 extra buffers echoed in nr_arg3",
        run: legacy_regif_extra_bufs,
    },
    NicCase {
        name: "multiqueue_layout",
        what: "4-queue interface: ALL_NIC binds 4+4 hw rings (4+1 / 4+1 ring_ofs), ONE_NIC 2 only ring 2",
        run: multiqueue_layout,
    },
];

pub fn find(name: &str) -> Option<&'static NicCase> {
    NIC_CASES.iter().find(|c| c.name == name)
}

fn open() -> Result<OwnedFd, String> {
    sys::open_netmap().map_err(|e| e.to_string())
}

fn reg(mode: u32, ringid: u16) -> NmreqRegister {
    NmreqRegister {
        nr_mode: mode,
        nr_ringid: ringid,
        ..NmreqRegister::default()
    }
}

fn port_info(fd: RawFd, name: &str, pi: &mut NmreqPortInfoGet) -> Result<(), Errno> {
    let mut h = NmreqHeader {
        nr_reqtype: NETMAP_REQ_PORT_INFO_GET,
        nr_body: pi as *mut NmreqPortInfoGet as u64,
        ..NmreqHeader::default()
    };
    set_cname(&mut h.nr_name, name);
    // SAFETY: nr_body points to a live, exclusively borrowed PORT_INFO_GET body of the
    // size the request uses; no options.
    unsafe { sys::nioctrl(fd, &mut h) }
}

// ------------------------------------------------------------ §13 cases 1–5

fn port_info_get(ifname: &str) -> R {
    let fd = open()?;
    let mut pi = NmreqPortInfoGet::default();
    port_info(fd.as_raw_fd(), ifname, &mut pi)
        .map_err(|e| format!("PORT_INFO_GET {ifname:?}: {e}"))?;
    ensure!(
        pi.nr_memsize != 0
            && pi.nr_tx_slots != 0
            && pi.nr_rx_slots != 0
            && pi.nr_tx_rings != 0
            && pi.nr_rx_rings != 0,
        "PORT_INFO_GET {ifname:?}: zero field in memsize={} slots={}/{} rings={}/{}",
        pi.nr_memsize,
        pi.nr_tx_slots,
        pi.nr_rx_slots,
        pi.nr_tx_rings,
        pi.nr_rx_rings
    );
    ensure!(pi.nr_mem_id != 0, "PORT_INFO_GET: nr_mem_id 0");
    Ok(())
}

/// REGISTER `ifname` with `req` (counts 0 = defaults) and checks the reply the way
/// ctrl-api-test's `port_register` does: every count passed as 0 comes back non-zero,
/// mem_id non-zero, extra_bufs echoed, mode/ringid/flags untouched; with `host` the
/// host ring counts must be non-zero. Then checks which rings the netmap_if binds.
fn register_check(ifname: &str, req: NmreqRegister, host: bool) -> Result<Port, String> {
    let fd = open()?;
    let mut r = req;
    let what = format!(
        "REGISTER {ifname:?} mode {} ringid {}",
        req.nr_mode, req.nr_ringid
    );
    register_fd(fd.as_raw_fd(), ifname, &mut r).map_err(|e| format!("{what}: {e}"))?;
    ensure!(
        r.nr_memsize != 0
            && r.nr_tx_slots != 0
            && r.nr_rx_slots != 0
            && r.nr_tx_rings != 0
            && r.nr_rx_rings != 0
            && r.nr_mem_id != 0,
        "{what}: zero output: memsize={} slots={}/{} rings={}/{} mem_id={}",
        r.nr_memsize,
        r.nr_tx_slots,
        r.nr_rx_slots,
        r.nr_tx_rings,
        r.nr_rx_rings,
        r.nr_mem_id
    );
    ensure_eq!(
        (r.nr_mode, r.nr_ringid, r.nr_flags),
        (req.nr_mode, req.nr_ringid, req.nr_flags),
        format!("{what}: mode/ringid/flags (must be unchanged)")
    );
    ensure_eq!(
        r.nr_extra_bufs,
        req.nr_extra_bufs,
        format!("{what}: nr_extra_bufs")
    );
    if host {
        ensure!(
            r.nr_host_tx_rings != 0 && r.nr_host_rx_rings != 0,
            "{what}: host rings {}/{} (expected non-zero)",
            r.nr_host_tx_rings,
            r.nr_host_rx_rings
        );
    }
    ensure!(
        r.nr_offset < r.nr_memsize,
        "{what}: nr_offset {} beyond memsize",
        r.nr_offset
    );
    Port::map_registered(fd, r).map_err(|e| format!("{what}: mmap: {e}"))
}

/// ring_ofs of `p` as (hw tx, host tx, hw rx, host rx) "bound" flags.
#[allow(clippy::type_complexity)]
fn bound(p: &Port) -> (Vec<bool>, Vec<bool>, Vec<bool>, Vec<bool>) {
    let (t, ht, r, hr) = (
        p.ni_tx_rings() as usize,
        p.ni_host_tx_rings() as usize,
        p.ni_rx_rings() as usize,
        p.ni_host_rx_rings() as usize,
    );
    let b = |k: usize| p.ring_ofs(k) != 0;
    (
        (0..t).map(b).collect(),
        (t..t + ht).map(b).collect(),
        (t + ht..t + ht + r).map(b).collect(),
        (t + ht + r..t + ht + r + hr).map(b).collect(),
    )
}

fn all(v: &[bool]) -> bool {
    !v.is_empty() && v.iter().all(|&x| x)
}
fn none(v: &[bool]) -> bool {
    v.iter().all(|&x| !x)
}

fn register_nic_sw(ifname: &str) -> R {
    let p = register_check(ifname, reg(NR_REG_NIC_SW, 0), true)?;
    let (t, ht, r, hr) = bound(&p);
    ensure!(
        all(&t) && all(&ht) && all(&r) && all(&hr),
        "NIC_SW must bind every hw and host ring: tx {t:?} host tx {ht:?} rx {r:?} host rx {hr:?}"
    );
    Ok(())
}

fn register_all_nic(ifname: &str) -> R {
    let p = register_check(ifname, reg(NR_REG_ALL_NIC, 0), false)?;
    let (t, ht, r, hr) = bound(&p);
    ensure!(
        all(&t) && none(&ht) && all(&r) && none(&hr),
        "ALL_NIC must bind the hw rings only: tx {t:?} host tx {ht:?} rx {r:?} host rx {hr:?}"
    );
    Ok(())
}

fn register_sw(ifname: &str) -> R {
    let p = register_check(ifname, reg(NR_REG_SW, 0), true)?;
    let (t, ht, r, hr) = bound(&p);
    ensure!(
        none(&t) && all(&ht) && none(&r) && all(&hr),
        "SW must bind the host rings only: tx {t:?} host tx {ht:?} rx {r:?} host rx {hr:?}"
    );
    Ok(())
}

fn register_one_nic(ifname: &str) -> R {
    let p = register_check(ifname, reg(NR_REG_ONE_NIC, 0), false)?;
    let (t, ht, r, hr) = bound(&p);
    ensure!(
        t.first() == Some(&true)
            && none(&t[1..])
            && none(&ht)
            && r.first() == Some(&true)
            && none(&r[1..])
            && none(&hr),
        "ONE_NIC 0 must bind hw ring pair 0 only: tx {t:?} host tx {ht:?} rx {r:?} host rx {hr:?}"
    );
    Ok(())
}

// ------------------------------------------------------------ §13 cases 38–43

fn legacy_req(ifname: &str, version: u32, flags: u32, extra: u32) -> Nmreq {
    let mut r = Nmreq {
        nr_version: version,
        nr_flags: flags,
        nr_arg3: extra,
        ..Nmreq::default()
    };
    set_cname(&mut r.nr_name, ifname);
    r
}

/// NIOCREGIF and the legacy checks of §13: slots/rings and nr_arg2 written back
/// non-zero, nr_arg3 equal to the request, nr_ringid/nr_flags/nr_version untouched.
fn legacy_check(req: Nmreq) -> Result<(Port, Nmreq), String> {
    let what = format!(
        "NIOCREGIF v{} nr_flags {:#x} ringid {} extra {}",
        req.nr_version, req.nr_flags, req.nr_ringid, req.nr_arg3
    );
    let fd = open()?;
    let mut r = req;
    legacy_ioctl(fd.as_raw_fd(), &mut r, false).map_err(|e| format!("{what}: {e}"))?;
    ensure!(
        r.nr_tx_slots != 0
            && r.nr_rx_slots != 0
            && r.nr_tx_rings != 0
            && r.nr_rx_rings != 0
            && r.nr_arg2 != 0
            && r.nr_memsize != 0,
        "{what}: zero output: slots={}/{} rings={}/{} nr_arg2={} memsize={}",
        r.nr_tx_slots,
        r.nr_rx_slots,
        r.nr_tx_rings,
        r.nr_rx_rings,
        r.nr_arg2,
        r.nr_memsize
    );
    ensure_eq!(r.nr_arg3, req.nr_arg3, format!("{what}: nr_arg3"));
    ensure_eq!(
        (r.nr_version, r.nr_ringid, r.nr_flags),
        (req.nr_version, req.nr_ringid, req.nr_flags),
        format!("{what}: version/ringid/flags (must be untouched)")
    );
    drop(fd);
    // Same request again through the mapping helper, to check the region is usable.
    let (p, r2) =
        Port::register_legacy(req).map_err(|e| format!("{what} (second fd, mmap): {e}"))?;
    Ok((p, r2))
}

fn legacy_regif_default(ifname: &str) -> R {
    legacy_check(legacy_req(ifname, 14, 0, 0)).map(drop)
}

fn legacy_regif_all_nic(ifname: &str) -> R {
    legacy_check(legacy_req(ifname, 14, NR_REG_ALL_NIC, 0)).map(drop)
}

fn legacy_regif_12(ifname: &str) -> R {
    legacy_check(legacy_req(ifname, 15, NR_REG_ALL_NIC, 0)).map(drop)
}

fn legacy_regif_sw(ifname: &str) -> R {
    let (p, _) = legacy_check(legacy_req(ifname, 14, NR_REG_SW, 0))?;
    let (t, ht, r, hr) = bound(&p);
    ensure!(
        none(&t) && all(&ht) && none(&r) && all(&hr),
        "legacy SW must bind the host rings only: tx {t:?} host tx {ht:?} rx {r:?} host rx {hr:?}"
    );
    Ok(())
}

fn legacy_regif_future(ifname: &str) -> R {
    let (p, _) = legacy_check(legacy_req(ifname, 16, NR_REG_NIC_SW, 0))?;
    let (t, ht, r, hr) = bound(&p);
    ensure!(
        all(&t) && all(&ht) && all(&r) && all(&hr),
        "legacy NIC_SW must bind every ring: tx {t:?} host tx {ht:?} rx {r:?} host rx {hr:?}"
    );
    Ok(())
}

fn legacy_regif_extra_bufs(ifname: &str) -> R {
    let (p, r) = legacy_check(legacy_req(ifname, 14, NR_REG_ALL_NIC, 20))?;
    ensure_eq!(r.nr_arg3, 20, "nr_arg3 (extra buffers)");
    let list = p.extra_buf_list(10_000)?;
    ensure_eq!(list.len(), 20, "length of the ni_bufs_head list");
    Ok(())
}

// ------------------------------------------------------------ multi-queue layout

fn multiqueue_layout(ifname: &str) -> R {
    let fd = open()?;
    let mut pi = NmreqPortInfoGet::default();
    port_info(fd.as_raw_fd(), ifname, &mut pi)
        .map_err(|e| format!("PORT_INFO_GET {ifname:?}: {e}"))?;
    ensure_eq!(
        (pi.nr_tx_rings, pi.nr_rx_rings),
        (4, 4),
        "PORT_INFO_GET tx/rx rings of a 4-queue interface"
    );
    let p = register_check(ifname, reg(NR_REG_ALL_NIC, 0), false)?;
    ensure_eq!(
        (p.reg().nr_tx_rings, p.reg().nr_rx_rings),
        (4, 4),
        "REGISTER ALL_NIC tx/rx rings"
    );
    ensure_eq!(
        (
            p.ni_tx_rings(),
            p.ni_host_tx_rings(),
            p.ni_rx_rings(),
            p.ni_host_rx_rings()
        ),
        (4, 1, 4, 1),
        "netmap_if ni_tx_rings/ni_host_tx_rings/ni_rx_rings/ni_host_rx_rings"
    );
    ensure_eq!(p.ring_ofs_count(), 10, "ring_ofs entries (4+1 + 4+1)");
    let (t, ht, r, hr) = bound(&p);
    ensure!(
        all(&t) && none(&ht) && all(&r) && none(&hr),
        "ALL_NIC: tx {t:?} host tx {ht:?} rx {r:?} host rx {hr:?}"
    );
    for i in 0..4 {
        let tr = p.tx_ring(i).ok_or("tx ring missing")?;
        let rr = p.rx_ring(i).ok_or("rx ring missing")?;
        ensure_eq!(
            (tr.ringid(), rr.ringid()),
            (i as u16, i as u16),
            format!("ringid fields of ring pair {i}")
        );
        ensure_eq!(
            (tr.dir(), rr.dir()),
            (NR_TX, NR_RX),
            format!("dir fields of ring pair {i}")
        );
    }
    let one = register_check(ifname, reg(NR_REG_ONE_NIC, 2), false)?;
    let (t, ht, r, hr) = bound(&one);
    let only2 = |v: &[bool]| v.len() == 4 && v.iter().enumerate().all(|(i, &b)| b == (i == 2));
    ensure!(
        only2(&t) && none(&ht) && only2(&r) && none(&hr),
        "ONE_NIC 2 must bind ring pair 2 only: tx {t:?} host tx {ht:?} rx {r:?} host rx {hr:?}"
    );
    ensure_eq!(
        one.tx_ring(2).map(|r| r.ringid()),
        Some(2),
        "ringid of ONE_NIC's TX ring"
    );
    Ok(())
}

// ------------------------------------------------------------ multi-flow traffic

/// Marker at the start of the UDP payload of [`flow_frame`] frames.
pub const FLOW_MAGIC: [u8; 8] = *b"NMDFLOW!";
const FLOW_LEN: usize = 64;

/// A 64-byte Ethernet/IPv4/UDP frame of flow `seq % flows`: source/destination
/// addresses and ports vary with the flow so the kernel's flow hash spreads them;
/// the UDP payload carries [`FLOW_MAGIC`] and `seq`.
pub fn flow_frame(seq: u64, flows: u32) -> [u8; FLOW_LEN] {
    let f = (seq % flows.max(1) as u64) as u32;
    let mut payload = [0u8; FLOW_LEN - 14 - 20 - 8];
    payload[..8].copy_from_slice(&FLOW_MAGIC);
    payload[8..16].copy_from_slice(&seq.to_le_bytes());
    let frame = crate::frame::udp_frame(
        crate::payload::DST,
        crate::payload::SRC,
        [10, 1, (f >> 8) as u8, f as u8],
        [10, 2, (f >> 4) as u8, (f * 7) as u8],
        (1024 + (f * 13) % 50_000) as u16,
        (2000 + f % 1000) as u16,
        &payload,
    );
    let mut p = [0u8; FLOW_LEN];
    p.copy_from_slice(&frame);
    p
}

fn is_flow_frame(d: &[u8]) -> bool {
    crate::frame::udp_payload(d).is_some_and(|p| p.len() >= 16 && p[..8] == FLOW_MAGIC)
}

/// Sends `count` [`flow_frame`]s over `flows` flows on `ifname` through a plain
/// AF_PACKET socket (no netmap, no qdisc bypass: the stack's queue selection hashes
/// each flow to a TX queue), paced at `rate` frames/s.
pub fn flows_tx(ifname: &str, count: u64, flows: u32, rate: u64) -> R {
    let cname = std::ffi::CString::new(ifname).map_err(|e| e.to_string())?;
    // SAFETY: cname is a valid NUL-terminated string.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    ensure!(ifindex != 0, "if_nametoindex({ifname}): {}", Errno::last());
    // SAFETY: plain socket(2) call; the result is checked.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
    ensure!(raw >= 0, "socket(AF_PACKET): {}", Errno::last());
    // SAFETY: raw is a fresh descriptor owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = ifindex as i32;
    sll.sll_halen = 6;
    let start = Instant::now();
    for seq in 0..count {
        if rate > 0 {
            let at = Duration::from_nanos((seq as u128 * 1_000_000_000 / rate as u128) as u64);
            let now = start.elapsed();
            if at > now {
                std::thread::sleep(at - now);
            }
        }
        let f = flow_frame(seq, flows);
        loop {
            // SAFETY: f and sll are live for the call; lengths match the buffers.
            let n = unsafe {
                libc::sendto(
                    sock.as_raw_fd(),
                    f.as_ptr().cast(),
                    f.len(),
                    0,
                    (&sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            if n == f.len() as isize {
                break;
            }
            let e = Errno::last();
            if e.0 == libc::ENOBUFS || e.0 == libc::EAGAIN {
                std::thread::sleep(Duration::from_micros(100));
                continue;
            }
            return Err(format!("sendto({ifname}) frame {seq}: {e}"));
        }
    }
    println!(
        "flows-tx {ifname}: sent {count} frames over {flows} flows in {:.3} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Registers `ifname` ALL_NIC, prints "mq-rx ready", then receives until `count`
/// [`flow_frame`]s have arrived (other frames are counted as foreign), waits 300 ms
/// more for duplicates, and prints the per-ring counts. Fails unless exactly `count`
/// arrived and, with `spread`, every hardware RX ring got some.
pub fn mq_rx(ifname: &str, count: u64, spread: bool) -> R {
    let p = Port::register(ifname, NR_REG_ALL_NIC, 0, 0, 0, 0, 0, 0, 0)
        .map_err(|e| format!("REGISTER {ifname:?}: {e}"))?;
    let nrx = p.ni_rx_rings() as usize;
    println!("mq-rx ready: {ifname} with {nrx} RX rings");
    std::io::stdout().flush().ok();
    let mut per = vec![0u64; nrx];
    let mut foreign = 0u64;
    let mut buf = [0u8; 2048];
    let mut drain = |per: &mut Vec<u64>, foreign: &mut u64| {
        for (i, c) in per.iter_mut().enumerate() {
            let Some(r) = p.rx_ring(i) else { continue };
            let (mut h, t) = (r.head(), r.tail());
            while h != t {
                let len = (r.slot_len(h) as usize).min(buf.len());
                r.read_buf(r.slot_buf_idx(h), &mut buf[..len]);
                if is_flow_frame(&buf[..len]) {
                    *c += 1;
                } else {
                    *foreign += 1;
                }
                h = r.next(h);
            }
            r.advance(h);
        }
    };
    while per.iter().sum::<u64>() < count {
        let rev = p
            .poll(libc::POLLIN, 5000)
            .map_err(|e| format!("poll: {e}"))?;
        ensure!(
            rev != 0,
            "poll(POLLIN) timed out with {} of {count} frames ({per:?})",
            per.iter().sum::<u64>()
        );
        ensure!(
            rev & libc::POLLERR == 0,
            "poll gave {}",
            sys::poll_mask_name(rev)
        );
        drain(&mut per, &mut foreign);
    }
    std::thread::sleep(Duration::from_millis(300));
    p.rxsync().map_err(|e| format!("NIOCRXSYNC: {e}"))?;
    drain(&mut per, &mut foreign);
    let total: u64 = per.iter().sum();
    let list: Vec<String> = per.iter().map(u64::to_string).collect();
    println!(
        "mq-rx {ifname}: ring_counts={} total={total} foreign={foreign}",
        list.join(",")
    );
    ensure_eq!(total, count, "frames received over all RX rings");
    if spread {
        ensure!(
            per.iter().all(|&c| c > 0),
            "some RX ring received nothing: {per:?}"
        );
    }
    Ok(())
}

/// Registers `name` with TX rings only (so it never touches the RX rings other
/// clients use), prints "holding" and sleeps until killed: keeps the port (and its
/// counters in `netmapd status`) alive across other clients' runs.
pub fn hold(name: &str) -> R {
    let _p = Port::register(name, NR_REG_ALL_NIC, 0, NR_TX_RINGS_ONLY, 0, 0, 0, 0, 0)
        .map_err(|e| format!("REGISTER {name:?} TX_RINGS_ONLY: {e}"))?;
    println!("holding {name}");
    std::io::stdout().flush().ok();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Benchmark receiver: registers `name` ALL_NIC, prints "rx-count ready", then counts
/// every frame on every hardware RX ring (no content check: the sender may be any
/// tool) until `count` arrived or nothing came for `idle_ms` after the first frame.
/// Prints `rx-count port=… frames=… secs=… mpps=…`, secs from first to last frame.
pub fn rx_count(name: &str, count: u64, idle_ms: u64) -> R {
    let p = Port::register(name, NR_REG_ALL_NIC, 0, 0, 0, 0, 0, 0, 0)
        .map_err(|e| format!("REGISTER {name:?}: {e}"))?;
    let nrx = p.ni_rx_rings() as usize;
    println!("rx-count ready: {name} with {nrx} RX rings");
    std::io::stdout().flush().ok();
    let mut frames = 0u64;
    let (mut first, mut last) = (None::<Instant>, Instant::now());
    let waited = Instant::now();
    while frames < count {
        let timeout = if first.is_some() {
            idle_ms as i32
        } else {
            1000
        };
        let rev = p
            .poll(libc::POLLIN, timeout)
            .map_err(|e| format!("poll: {e}"))?;
        ensure!(
            rev & libc::POLLERR == 0,
            "poll gave {}",
            sys::poll_mask_name(rev)
        );
        if rev == 0 {
            if first.is_some() {
                break;
            }
            ensure!(
                waited.elapsed() < Duration::from_secs(60),
                "no frame within 60 s"
            );
            continue;
        }
        let before = frames;
        for i in 0..nrx {
            let Some(r) = p.rx_ring(i) else { continue };
            let n = r.tail().wrapping_sub(r.head()).wrapping_add(r.num_slots()) % r.num_slots();
            frames += n as u64;
            r.advance(r.tail());
        }
        if frames > before {
            let now = Instant::now();
            first.get_or_insert(now);
            last = now;
        }
    }
    let secs = first
        .map(|f| last.duration_since(f).as_secs_f64())
        .unwrap_or(0.0);
    println!(
        "rx-count port={name} frames={frames} secs={secs:.6} mpps={:.4}",
        frames as f64 / secs.max(1e-9) / 1e6
    );
    Ok(())
}

/// `udp-send`: `count` datagrams of 32 bytes to `to` through the host stack (an
/// ordinary UDP socket), for tests of what the stack sees next to a netmap port.
pub fn udp_send(to: &str, count: u64) -> R {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("bind: {e}"))?;
    for i in 0..count {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&i.to_be_bytes());
        s.send_to(&b, to)
            .map_err(|e| format!("send_to {to}: {e}"))?;
        // Paced a little: the point is delivery, not rate.
        std::thread::sleep(Duration::from_micros(200));
    }
    println!("udp-send {to}: sent {count}");
    Ok(())
}

/// `udp-count`: datagrams received on `bind` by the host stack within `ms`
/// milliseconds of the first (or of the start, if none came).
pub fn udp_count(bind: &str, ms: u64) -> R {
    let s = std::net::UdpSocket::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
    println!("udp-count ready: {bind}");
    std::io::stdout().flush().ok();
    let end = Instant::now() + Duration::from_millis(ms);
    let mut n = 0u64;
    let mut b = [0u8; 2048];
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if left.is_zero() {
            break;
        }
        s.set_read_timeout(Some(left))
            .map_err(|e| format!("SO_RCVTIMEO: {e}"))?;
        match s.recv(&mut b) {
            Ok(_) => n += 1,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => return Err(format!("recv: {e}")),
        }
    }
    println!("udp-count {bind}: received {n}");
    Ok(())
}

/// `one-nic-rx`: registers `ifname` ONE_NIC ring `ring` alone and counts the frames of
/// that ring until `idle_ms` pass without one (after the first, or 30 s before it).
pub fn one_nic_rx(ifname: &str, ring: u16, idle_ms: u64) -> R {
    let p = Port::register(ifname, NR_REG_ONE_NIC, ring, 0, 0, 0, 0, 0, 0)
        .map_err(|e| format!("REGISTER {ifname:?} ONE_NIC {ring}: {e}"))?;
    let r = p.rx_ring(ring as usize).ok_or("RX ring not bound")?;
    println!("one-nic-rx ready: {ifname} ring {ring}");
    std::io::stdout().flush().ok();
    let mut frames = 0u64;
    loop {
        let timeout = if frames == 0 { 30_000 } else { idle_ms as i32 };
        let rev = p
            .poll(libc::POLLIN, timeout)
            .map_err(|e| format!("poll: {e}"))?;
        ensure!(
            rev & libc::POLLERR == 0,
            "poll gave {}",
            sys::poll_mask_name(rev)
        );
        if rev == 0 {
            break;
        }
        let (h, t) = (r.head(), r.tail());
        frames += u64::from((t + r.num_slots() - h) % r.num_slots());
        r.advance(t);
    }
    println!("one-nic-rx {ifname} ring={ring} frames={frames}");
    Ok(())
}
