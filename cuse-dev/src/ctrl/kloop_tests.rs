//! Control-plane tests of CSB mode and the sync loop (kloop.rs): the CSB option at
//! REGISTER and CSB_ENABLE, SYNC_KLOOP_START/STOP and their errors, and a loop that
//! moves packets both ways over a pipe and signals an irqfd.

use super::*;
use netmap_abi::{
    NmCsbAtok, NmCsbKtoa, NmreqOptCsb, NmreqOptEventfd, NmreqOptSyncKloopMode, NmreqSyncKloopStart,
    NMREQ_OPTION_SIZE,
};
use std::time::{Duration, Instant};

/// Size (and alignment) of one CSB entry.
const ENTRY: u64 = size_of::<NmCsbAtok>() as u64;

/// Two CSB arrays for `n` rings (64-byte aligned) and a CSB option naming them.
struct CsbArrays {
    atok: u64,
    ktoa: u64,
    opt: u64,
}

fn csb_arrays(um: &FakeMem, n: usize) -> CsbArrays {
    let atok = um.alloc_aligned(n * ENTRY as usize, ENTRY);
    let ktoa = um.alloc_aligned(n * ENTRY as usize, ENTRY);
    let opt = csb_option(um, atok, ktoa);
    CsbArrays { atok, ktoa, opt }
}

/// A lone option of `reqtype`, `size` bytes in all (body zeroed), status untouched.
fn option(um: &FakeMem, reqtype: u32, size: u64) -> u64 {
    let opt = um.alloc(size as usize);
    um.set(
        opt,
        &NmreqOption {
            nro_next: 0,
            nro_reqtype: reqtype,
            nro_status: UNTOUCHED,
            nro_size: size,
        },
    );
    opt
}

fn csb_option(um: &FakeMem, atok: u64, ktoa: u64) -> u64 {
    let size = size_of::<NmreqOptCsb>() as u64;
    let opt = option(um, netmap_abi::NETMAP_REQ_OPT_CSB, size);
    let mut o: NmreqOptCsb = um.get(opt);
    o.csb_atok = atok;
    o.csb_ktoa = ktoa;
    um.set(opt, &o);
    opt
}

fn opt_status(um: &FakeMem, opt: u64) -> u32 {
    um.get::<NmreqOption>(opt).nro_status
}

/// Entry `j` of the application-to-kernel array at `base`.
fn atok(um: &FakeMem, base: u64, j: u64) -> NmCsbAtok {
    um.get(base + j * ENTRY)
}

/// Entry `j` of the kernel-to-application array at `base`.
fn ktoa(um: &FakeMem, base: u64, j: u64) -> NmCsbKtoa {
    um.get(base + j * ENTRY)
}

fn kloop_start(
    cp: &ControlPlane,
    um: &FakeMem,
    fd: FdId,
    sleep_us: u32,
    opts: u64,
) -> Result<Vec<u8>, Errno> {
    let body = um.put(
        NmreqSyncKloopStart {
            sleep_us,
            ..Default::default()
        }
        .as_bytes(),
    );
    let h = header(netmap_abi::NETMAP_REQ_SYNC_KLOOP_START, "", body, opts);
    ctrl(cp, fd, &h, um)
}

fn kloop_stop(cp: &ControlPlane, um: &FakeMem, fd: FdId) -> Result<Vec<u8>, Errno> {
    ctrl(
        cp,
        fd,
        &header(netmap_abi::NETMAP_REQ_SYNC_KLOOP_STOP, "", 0, 0),
        um,
    )
}

/// Stops the loop on `fd` when dropped, so that a failing assertion ends the loop
/// thread instead of leaving the test's thread scope waiting for it forever.
struct StopOnDrop<'a>(&'a ControlPlane, &'a FakeMem, FdId);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = kloop_stop(self.0, self.1, self.2);
    }
}

/// Starts a loop on `fd` in a thread of `s` and waits until it runs; the guard stops
/// it should the test fail first.
fn spawn_loop<'s, 'e: 's>(
    s: &'s std::thread::Scope<'s, 'e>,
    cp: &'e ControlPlane,
    um: &'e FakeMem,
    fd: FdId,
    sleep_us: u32,
    opts: u64,
) -> (
    std::thread::ScopedJoinHandle<'s, Result<(), Errno>>,
    StopOnDrop<'e>,
) {
    let h = s.spawn(move || kloop_start(cp, um, fd, sleep_us, opts).map(|_| ()));
    let guard = StopOnDrop(cp, um, fd);
    wait_for("the loop to run", || {
        cp.lock().fds.get(&fd).is_some_and(|f| f.kloop.running)
    });
    (h, guard)
}

/// Waits up to 5 s for `cond`.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A pipe master registered exclusively in CSB mode.
fn csb_master(cp: &ControlPlane, um: &FakeMem, name: &str) -> (FdId, NmreqRegister, CsbArrays) {
    let fd = cp.open();
    let csb = csb_arrays(um, 2);
    let r = register_opts(
        cp,
        um,
        fd,
        name,
        &pipe_req(netmap_abi::NR_EXCLUSIVE, 0),
        csb.opt,
    )
    .unwrap_or_else(|e| panic!("CSB REGISTER {name}: {e}"));
    (fd, r, csb)
}

#[test]
fn csb_register_initialises_the_arrays_and_takes_the_rings_from_syncs() {
    let cp = new_cp();
    let um = FakeMem::new();
    let (fd, _, csb) = csb_master(&cp, &um, "c{1");
    assert_eq!(opt_status(&um, csb.opt), 0);
    // TX entry first (hwtail = slots - 1), then RX (hwtail = 0).
    for (j, hwtail) in [(0, SLOTS - 1), (1, 0)] {
        let (a, k) = (atok(&um, csb.atok, j), ktoa(&um, csb.ktoa, j));
        assert_eq!(a.head, 0, "atok head");
        assert_eq!(a.cur, 0, "atok cur");
        assert_eq!(a.appl_need_kick, 1, "appl_need_kick");
        assert_eq!(a.sync_flags, 1, "sync_flags");
        assert_eq!(k.hwcur, 0, "ktoa hwcur");
        assert_eq!(k.hwtail, hwtail, "ktoa hwtail");
        assert_eq!(k.kern_need_kick, 1, "kern_need_kick");
    }
    assert_eq!(
        cp.ioctl(fd, netmap_abi::NIOCTXSYNC, &[], &NoMemory),
        Err(EBUSY)
    );
    assert_eq!(
        cp.ioctl(fd, netmap_abi::NIOCRXSYNC, &[], &NoMemory),
        Err(EBUSY)
    );
    assert_eq!(cp.poll(fd, POLLIN | POLLOUT, None), POLLERR);
}

#[test]
fn csb_option_refusals_undo_the_registration() {
    let cp = new_cp();
    let um = FakeMem::new();
    let before = cp.pool_counts();
    let ok = csb_arrays(&um, 2);
    let cases = [
        (
            "not exclusive",
            0,
            csb_option(&um, ok.atok, ok.ktoa),
            EINVAL,
        ),
        (
            "misaligned atok",
            netmap_abi::NR_EXCLUSIVE,
            csb_option(&um, ok.atok + 8, ok.ktoa),
            EINVAL,
        ),
        (
            "misaligned ktoa",
            netmap_abi::NR_EXCLUSIVE,
            csb_option(&um, ok.atok, ok.ktoa + 32),
            EINVAL,
        ),
        (
            "atok unmapped",
            netmap_abi::NR_EXCLUSIVE,
            csb_option(&um, FakeMem::end(), ok.ktoa),
            EFAULT,
        ),
        (
            "ktoa unmapped",
            netmap_abi::NR_EXCLUSIVE,
            csb_option(&um, ok.atok, 0x800),
            EFAULT,
        ),
    ];
    for (what, flags, opt, errno) in cases {
        let fd = cp.open();
        let r = register_opts(&cp, &um, fd, "r{1", &pipe_req(flags, 0), opt);
        assert_eq!(r.map(|_| ()), Err(errno), "{what}");
        assert_eq!(
            opt_status(&um, opt),
            errno.0 as u32,
            "{what}: option status"
        );
        assert_unregistered(&cp, fd);
        cp.release(fd);
    }
    assert_eq!(
        cp.pool_counts(),
        before,
        "a refused CSB registration leaks nothing"
    );
    // Bound to no ring: accepted, nothing enabled (ordinary syncs still work).
    let fd = cp.open();
    let opt = csb_option(&um, ok.atok + 8, 0x800);
    let flags = netmap_abi::NR_TX_RINGS_ONLY | netmap_abi::NR_RX_RINGS_ONLY;
    register_opts(&cp, &um, fd, "r{2", &pipe_req(flags, 0), opt).expect("no-ring CSB");
    assert_eq!(opt_status(&um, opt), 0);
    txsync(&cp, fd);
}

#[test]
fn kloop_start_and_stop_rules() {
    let cp = new_cp();
    let um = FakeMem::new();
    let fd = cp.open();
    assert_eq!(
        kloop_start(&cp, &um, fd, 100, 0),
        Err(ENXIO),
        "unregistered"
    );
    assert_eq!(kloop_stop(&cp, &um, fd), Err(ENXIO), "unregistered");
    register(&cp, &um, fd, "s{1", &pipe_req(netmap_abi::NR_EXCLUSIVE, 0)).expect("register");
    assert_eq!(kloop_start(&cp, &um, fd, 100, 0), Err(EINVAL), "no CSB");
    let (fd, _, _) = csb_master(&cp, &um, "s{2");
    assert_eq!(
        kloop_start(&cp, &um, fd, 1_000_001, 0),
        Err(EINVAL),
        "sleep above 1 s"
    );
    // Bad MODE bits.
    let size = size_of::<NmreqOptSyncKloopMode>() as u64;
    let mode = option(&um, netmap_abi::NETMAP_REQ_OPT_SYNC_KLOOP_MODE, size);
    let mut m: NmreqOptSyncKloopMode = um.get(mode);
    m.mode = 4;
    um.set(mode, &m);
    assert_eq!(
        kloop_start(&cp, &um, fd, 100, mode),
        Err(EINVAL),
        "mode bits"
    );
    assert_eq!(opt_status(&um, mode), libc::EINVAL as u32);
    // EVENTFDS sized for three rings on a descriptor with two.
    let efd = option(
        &um,
        netmap_abi::NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS,
        24 + 3 * 8,
    );
    assert_eq!(
        kloop_start(&cp, &um, fd, 100, efd),
        Err(EINVAL),
        "eventfds size"
    );
    assert_eq!(opt_status(&um, efd), libc::EINVAL as u32);
    // A STOP with no loop running: the next START returns at once (§5.5).
    assert_eq!(kloop_stop(&cp, &um, fd).map(|_| ()), Ok(()));
    assert_eq!(kloop_start(&cp, &um, fd, 100, 0).map(|_| ()), Ok(()));
    // Two loops on one descriptor: the second is EBUSY; STOP ends the first.
    std::thread::scope(|s| {
        let (first, _stop) = spawn_loop(s, &cp, &um, fd, 100, 0);
        assert_eq!(kloop_start(&cp, &um, fd, 100, 0), Err(EBUSY));
        let opt = csb_option(&um, 0, 0);
        let h = header(netmap_abi::NETMAP_REQ_CSB_ENABLE, "", 0, opt);
        assert_eq!(
            ctrl(&cp, fd, &h, &um),
            Err(EBUSY),
            "CSB_ENABLE while looping"
        );
        assert_eq!(kloop_stop(&cp, &um, fd).map(|_| ()), Ok(()));
        assert_eq!(first.join().expect("loop thread"), Ok(()));
    });
    assert!(cp.lock().fds.get(&fd).is_some_and(|f| !f.kloop.running));
}

#[test]
fn csb_enable_after_register() {
    let cp = new_cp();
    let um = FakeMem::new();
    let fd = cp.open();
    let opt = csb_option(&um, 0, 0);
    let h = header(netmap_abi::NETMAP_REQ_CSB_ENABLE, "", 0, opt);
    assert_eq!(
        ctrl(&cp, fd, &h, &um).map(|_| ()),
        Ok(()),
        "unregistered: no-op"
    );
    assert_eq!(opt_status(&um, opt), 0);
    let h = header(netmap_abi::NETMAP_REQ_CSB_ENABLE, "", 0, 0);
    assert_eq!(ctrl(&cp, fd, &h, &um), Err(EINVAL), "no CSB option");
    register(&cp, &um, fd, "e{1", &pipe_req(netmap_abi::NR_EXCLUSIVE, 0)).expect("register");
    txsync(&cp, fd);
    let csb = csb_arrays(&um, 2);
    let h = header(netmap_abi::NETMAP_REQ_CSB_ENABLE, "", 0, csb.opt);
    assert_eq!(ctrl(&cp, fd, &h, &um).map(|_| ()), Ok(()));
    assert_eq!(opt_status(&um, csb.opt), 0);
    assert_eq!(ktoa(&um, csb.ktoa, 0).hwtail, SLOTS - 1);
    assert_eq!(
        cp.ioctl(fd, netmap_abi::NIOCTXSYNC, &[], &NoMemory),
        Err(EBUSY)
    );
}

/// The loop carries packets both ways over a pipe whose master is in CSB mode, and
/// signals the RX ring's irqfd when packets arrive for an application that asked.
#[test]
#[allow(unsafe_code)]
fn kloop_moves_packets_both_ways_and_signals_the_irqfd() {
    let cp = new_cp();
    let um = FakeMem::new();
    let (m, mr, csb) = csb_master(&cp, &um, "k{1");
    let (s, sr) = open_reg(&cp, &um, "k}1", &pipe_req(0, 0));
    let (mc, sc) = (Client::new(&cp, &mr), Client::new(&cp, &sr));
    // Eventfds of "the caller" (this process): TX ring none, RX ring an irqfd.
    // SAFETY: eventfd(2) with valid flags; the result is checked and then owned.
    let irq = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK) };
    assert!(irq >= 0, "eventfd");
    // SAFETY: irq is a fresh descriptor owned by nothing else.
    let irq_owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(irq) };
    let efd = option(
        &um,
        netmap_abi::NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS,
        24 + 2 * 8,
    );
    let fds = [
        NmreqOptEventfd {
            ioeventfd: -1,
            irqfd: -1,
        },
        NmreqOptEventfd {
            ioeventfd: -1,
            irqfd: irq,
        },
    ];
    um.set(efd + NMREQ_OPTION_SIZE as u64, &fds);
    std::thread::scope(|scope| {
        let (lp, _stop) = spawn_loop(scope, &cp, &um, m, 50, efd);
        // TX: three packets in the master's ring, published through atok only.
        let tx = mc.tx(0);
        let pkts: Vec<Vec<u8>> = (0..3).map(payload).collect();
        for (k, p) in pkts.iter().enumerate() {
            let mut sl = tx.slot(k as u32);
            tx.write_buf(sl.buf_idx, p);
            sl.len = p.len() as u16;
            sl.flags = 0;
            tx.set_slot(k as u32, &sl);
        }
        let mut a = atok(&um, csb.atok, 0);
        (a.head, a.cur) = (3, 3);
        um.set(csb.atok, &a);
        wait_for("ktoa hwcur 3", || ktoa(&um, csb.ktoa, 0).hwcur == 3);
        assert_eq!(
            ktoa(&um, csb.ktoa, 0).kern_need_kick,
            0,
            "a polling loop wants no kicks"
        );
        rxsync(&cp, s);
        let rx = sc.rx(0);
        assert_eq!(rx.tail(), 3, "the peer received the three packets");
        for (k, p) in pkts.iter().enumerate() {
            let sl = rx.slot(k as u32);
            assert_eq!(rx.read_buf(sl.buf_idx, sl.len as usize), *p);
        }
        // RX: two packets from the peer show up in ktoa hwtail, with an irq.
        sc.tx(0)
            .fill(&[(b"pong one".as_slice(), 0), (b"pong two".as_slice(), 0)]);
        txsync(&cp, s);
        wait_for("ktoa RX hwtail 2", || ktoa(&um, csb.ktoa, 1).hwtail == 2);
        let mut v = [0u8; 8];
        wait_for("the irqfd", || {
            // SAFETY: reads 8 bytes into a local buffer from a descriptor we own.
            let n = unsafe {
                libc::read(
                    std::os::fd::AsRawFd::as_raw_fd(&irq_owned),
                    v.as_mut_ptr().cast(),
                    8,
                )
            };
            n == 8
        });
        assert!(u64::from_ne_bytes(v) >= 1);
        let rx = mc.rx(0);
        let sl = rx.slot(0);
        assert_eq!(rx.read_buf(sl.buf_idx, sl.len as usize), b"pong one");
        assert_eq!(kloop_stop(&cp, &um, m).map(|_| ()), Ok(()));
        assert_eq!(lp.join().expect("loop thread"), Ok(()));
    });
    // Option statuses are written back when the request ends, as the kernel does.
    assert_eq!(opt_status(&um, efd), 0);
}

/// A stopping daemon ends running loops (their requests hold front-end workers), and
/// a loop started afterwards ends after its first pass.
#[test]
fn stop_loops_ends_running_loops() {
    let cp = new_cp();
    let um = FakeMem::new();
    let (fd, _, _) = csb_master(&cp, &um, "t{1");
    std::thread::scope(|s| {
        let (lp, _stop) = spawn_loop(s, &cp, &um, fd, 1_000_000, 0);
        let t = Instant::now();
        cp.stop_loops();
        assert_eq!(lp.join().expect("loop thread"), Ok(()));
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "ended by the stop, not its 1 s sleep"
        );
    });
    let t = Instant::now();
    assert_eq!(kloop_start(&cp, &um, fd, 1_000_000, 0).map(|_| ()), Ok(()));
    assert!(t.elapsed() < Duration::from_millis(500));
}

/// Loops beyond `max_kloops` (one fewer than the front end's workers) are refused,
/// so that a worker always stays free, for SYNC_KLOOP_STOP among others.
#[test]
fn loops_are_limited_to_spare_workers() {
    let cp = new_cp();
    let um = FakeMem::new();
    assert_eq!(cp.cfg.max_kloops, 1);
    let (a, _, _) = csb_master(&cp, &um, "w{1");
    let (b, _, _) = csb_master(&cp, &um, "w{2");
    std::thread::scope(|s| {
        let (lp, _stop) = spawn_loop(s, &cp, &um, a, 100, 0);
        assert_eq!(kloop_start(&cp, &um, b, 100, 0), Err(EBUSY));
        assert_eq!(kloop_stop(&cp, &um, a).map(|_| ()), Ok(()));
        assert_eq!(lp.join().expect("loop thread"), Ok(()));
    });
}
