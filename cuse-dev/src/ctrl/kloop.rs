//! CSB mode and the sync loop (NETMAP-ABI.md §5.5): NETMAP_REQ_OPT_CSB at REGISTER,
//! CSB_ENABLE, SYNC_KLOOP_START and SYNC_KLOOP_STOP.
//!
//! In CSB mode the application no longer syncs its rings with ioctls. It publishes
//! each ring's head/cur in an application-to-kernel array (`csb_atok`) in its own
//! memory and reads hwcur/hwtail from a kernel-to-application array (`csb_ktoa`);
//! a sync loop started with SYNC_KLOOP_START, which the application runs in a thread
//! of its own, keeps the two in step until SYNC_KLOOP_STOP.
//!
//! The kernel runs that loop in the ioctl's own thread; so does netmapd, in the
//! front end's worker that carries the request (the request stays unanswered, as the
//! ioctl stays blocked). Both arrays live in the caller's memory, so every pass reads
//! and writes them through the request's [`UserMemory`] (`process_vm_readv/writev`
//! on the caller under FUSE). A pass copies each atok head/cur into the shared
//! ring, runs the ordinary sync of that ring, and writes the kring's hwcur/hwtail
//! to ktoa; between passes the loop sleeps `sleep_us` (at least [`MIN_SLEEP`]) or
//! until STOP. Application kicks (the ioeventfds of SYNC_KLOOP_EVENTFDS) are not
//! needed by a polling loop: ktoa's `kern_need_kick` stays 0 while it runs, and the
//! ioeventfds are not waited on. The irqfds are signalled, as in
//! the kernel, when a ring gained TX space or RX packets and the application asked
//! for interrupts (`appl_need_kick`).

use super::nmreq::{ReqOption, Request};
use super::register::einval;
use super::{Binding, ControlPlane, Errno, FdId, State, UserMemory};
use netmap_abi as abi;
use netmap_abi::{NmCsbAtok, NmCsbKtoa, NmreqOptEventfd};
use netmap_netif::Dir;
use std::time::{Duration, Instant};
use zerocopy::{FromBytes, IntoBytes};

/// Alignment the kernel demands of both CSB arrays (one entry, a cache line).
const CSB_ALIGN: u64 = std::mem::size_of::<NmCsbAtok>() as u64;
/// Longest `sleep_us` SYNC_KLOOP_START accepts.
const MAX_SLEEP_US: u32 = 1_000_000;
/// Shortest pause between passes: a loop asked not to sleep still leaves the CPU
/// to others (the kernel's loop calls `cond_resched` instead).
const MIN_SLEEP: Duration = Duration::from_micros(20);
/// How often the loop checks that its caller has not been killed (a killed thread
/// waits for the ioctl's reply before it can die).
const CALLER_CHECK: Duration = Duration::from_millis(100);

/// The two CSB arrays of a descriptor in CSB mode (addresses in the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Csb {
    pub atok: u64,
    pub ktoa: u64,
}

/// Per-descriptor sync-loop state.
#[derive(Debug, Default)]
pub(crate) struct KloopState {
    pub running: bool,
    /// Set by STOP; a START finding it set clears it and returns at once (§5.5).
    pub stop: bool,
}

/// The bound rings in CSB order: TX first, then RX.
fn csb_rings(b: &Binding) -> Vec<(Dir, usize)> {
    b.tx.clone()
        .map(|i| (Dir::Tx, i))
        .chain(b.rx.clone().map(|i| (Dir::Rx, i)))
        .collect()
}

/// hwcur/hwtail of every CSB ring.
fn kernel_pointers(st: &State, b: &Binding) -> Result<Vec<(u32, u32)>, Errno> {
    let slot = st.adapters.get(&b.adapter).ok_or(Errno(libc::ENXIO))?;
    let e = &slot.ad.endpoints()[b.ep];
    Ok(csb_rings(b)
        .into_iter()
        .map(|(d, i)| {
            let k = &e.krings(d)[i];
            (k.hwcur, k.hwtail)
        })
        .collect())
}

/// Validates a CSB option for binding `b` and initialises both arrays (netmap.c
/// `netmap_csb_validate`). `Ok(None)`: the descriptor binds no ring, nothing enabled.
pub(crate) fn csb_setup(
    st: &State,
    b: &Binding,
    o: &mut ReqOption,
    um: &dyn UserMemory,
) -> Result<Option<Csb>, Errno> {
    let res = csb_setup_inner(st, b, o, um);
    o.hdr.nro_status = match &res {
        Ok(_) => 0,
        Err(e) => e.0 as u32,
    };
    res
}

fn csb_setup_inner(
    st: &State,
    b: &Binding,
    o: &ReqOption,
    um: &dyn UserMemory,
) -> Result<Option<Csb>, Errno> {
    let n = b.tx.len() + b.rx.len();
    if n == 0 {
        return Ok(None);
    }
    if !b.exclusive {
        return Err(einval("CSB mode needs NR_EXCLUSIVE"));
    }
    // The body of `struct nmreq_opt_csb`: csb_atok, csb_ktoa.
    let Ok(([atok, ktoa], _)) = <[u64; 2]>::read_from_prefix(&o.body) else {
        return Err(einval("short CSB option"));
    };
    if atok % CSB_ALIGN != 0 || ktoa % CSB_ALIGN != 0 {
        return Err(einval("CSB arrays not 64-byte aligned"));
    }
    let mut a = vec![NmCsbAtok::default(); n];
    um.read(atok, a.as_mut_bytes())?;
    let mut k = vec![NmCsbKtoa::default(); n];
    um.write(ktoa, k.as_bytes())?;
    for ((ae, ke), (hwcur, hwtail)) in a.iter_mut().zip(&mut k).zip(kernel_pointers(st, b)?) {
        ae.head = hwcur;
        ae.cur = hwcur;
        ae.appl_need_kick = 1;
        ae.sync_flags = 1;
        ke.hwcur = hwcur;
        ke.hwtail = hwtail;
        ke.kern_need_kick = 1;
    }
    um.write(atok, a.as_bytes())?;
    um.write(ktoa, k.as_bytes())?;
    Ok(Some(Csb { atok, ktoa }))
}

fn eventfd_signal(fd: &std::fs::File) {
    use std::io::Write;
    if let Err(e) = (&*fd).write_all(&1u64.to_ne_bytes()) {
        tracing::debug!(%e, "kloop: irqfd write");
    }
}

/// The process (thread group) of thread `tid`: pidfd_open wants a process.
fn tgid_of(tid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Whether thread `pid` has a fatal signal pending or is gone.
fn caller_dying(pid: u32) -> bool {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    s.lines()
        .filter(|l| l.starts_with("SigPnd:") || l.starts_with("ShdPnd:"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|h| u64::from_str_radix(h, 16).ok())
        .any(|m| m & (1 << (libc::SIGKILL - 1)) != 0)
}

impl ControlPlane {
    fn binding_of(&self, fd: FdId) -> Option<Binding> {
        self.lock().fds.get(&fd).and_then(|f| f.binding.clone())
    }

    /// CSB_ENABLE (§5.5): the CSB option is required; a descriptor bound to no ring
    /// (or not registered) succeeds without enabling anything.
    pub(crate) fn req_csb_enable(
        &self,
        fd: FdId,
        req: &mut Request,
        um: &dyn UserMemory,
    ) -> Result<(), Errno> {
        let mut st = self.lock();
        let Some(o) = req.option_mut(abi::NETMAP_REQ_OPT_CSB) else {
            return Err(einval("CSB_ENABLE without a CSB option"));
        };
        let Some(f) = st.fds.get(&fd) else {
            return Err(Errno(libc::EBADF));
        };
        let Some(b) = f.binding.clone() else {
            o.hdr.nro_status = 0;
            return Ok(());
        };
        if f.kloop.running {
            return Err(Errno(libc::EBUSY));
        }
        let csb = csb_setup(&st, &b, o, um)?;
        if let Some(bind) = st.fds.get_mut(&fd).and_then(|f| f.binding.as_mut()) {
            bind.csb = csb;
        }
        Ok(())
    }

    /// SYNC_KLOOP_STOP (§5.5): asks the loop to end and waits until it has.
    pub(crate) fn req_kloop_stop(&self, fd: FdId) -> Result<(), Errno> {
        let mut st = self.lock();
        match st.fds.get_mut(&fd) {
            Some(f) if f.binding.is_some() => f.kloop.stop = true,
            _ => return Err(Errno(libc::ENXIO)),
        }
        self.kloop_cv.notify_all();
        while st.fds.get(&fd).is_some_and(|f| f.kloop.running) {
            self.kloop_cv.wait(&mut st);
        }
        Ok(())
    }

    /// SYNC_KLOOP_START (§5.5): validates, then runs the loop in this thread until
    /// SYNC_KLOOP_STOP on the same descriptor, or until the caller dies.
    pub(crate) fn req_kloop_start(
        &self,
        fd: FdId,
        req: &mut Request,
        um: &dyn UserMemory,
    ) -> Result<(), Errno> {
        let sleep_us = u32::from_ne_bytes(
            req.body
                .get(0..4)
                .and_then(|b| b.try_into().ok())
                .ok_or(Errno(libc::EINVAL))?,
        );
        if sleep_us > MAX_SLEEP_US {
            return Err(einval("SYNC_KLOOP_START sleep_us above one second"));
        }
        let Some(b) = self.binding_of(fd) else {
            return Err(Errno(libc::ENXIO));
        };
        let Some(csb) = b.csb else {
            return Err(einval("SYNC_KLOOP_START without CSB mode"));
        };
        if self.lock().fds.get(&fd).is_some_and(|f| f.kloop.running) {
            return Err(Errno(libc::EBUSY));
        }
        let rings = csb_rings(&b);
        let mut direct = (false, false);
        if let Some(o) = req.option_mut(abi::NETMAP_REQ_OPT_SYNC_KLOOP_MODE) {
            let mode = u32::read_from_prefix(&o.body).map_or(0, |(m, _)| m);
            if mode & !(abi::NM_OPT_SYNC_KLOOP_DIRECT_TX | abi::NM_OPT_SYNC_KLOOP_DIRECT_RX) != 0 {
                o.hdr.nro_status = libc::EINVAL as u32;
                return Err(einval("unknown SYNC_KLOOP_MODE bits"));
            }
            direct = (
                mode & abi::NM_OPT_SYNC_KLOOP_DIRECT_TX != 0,
                mode & abi::NM_OPT_SYNC_KLOOP_DIRECT_RX != 0,
            );
            o.hdr.nro_status = 0;
        }
        // Per ring, the caller's irqfd (taken with pidfd_getfd), signalled by the loop.
        let mut irqfds: Vec<Option<std::fs::File>> = Vec::new();
        if let Some(o) = req.option_mut(abi::NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS) {
            let entry = std::mem::size_of::<NmreqOptEventfd>();
            let want = (abi::NMREQ_OPTION_SIZE + entry * rings.len()) as u64;
            let pairs = match <[NmreqOptEventfd]>::ref_from_bytes(&o.body) {
                Ok(p) if o.hdr.nro_size == want && p.len() == rings.len() => p.to_vec(),
                _ => {
                    o.hdr.nro_status = libc::EINVAL as u32;
                    return Err(einval("SYNC_KLOOP_EVENTFDS size does not match the rings"));
                }
            };
            for (&(d, _), e) in rings.iter().zip(&pairs) {
                let is_direct = match d {
                    Dir::Tx => direct.0,
                    Dir::Rx => direct.1,
                };
                if is_direct && e.ioeventfd < 0 {
                    o.hdr.nro_status = libc::EINVAL as u32;
                    return Err(einval("direct SYNC_KLOOP mode without an ioeventfd"));
                }
            }
            let pid = um.pid().ok_or_else(|| {
                tracing::info!(
                    "SYNC_KLOOP_EVENTFDS: the front end cannot reach the caller's descriptors"
                );
                Errno(libc::EOPNOTSUPP)
            })?;
            let proc_id = tgid_of(pid).unwrap_or(pid);
            for e in &pairs {
                let irq = if e.irqfd >= 0 {
                    match super::sys::take_fd(proc_id, e.irqfd) {
                        Ok(f) => Some(std::fs::File::from(f)),
                        Err(e) => {
                            o.hdr.nro_status = e.0 as u32;
                            return Err(e);
                        }
                    }
                } else {
                    None
                };
                irqfds.push(irq);
            }
            o.hdr.nro_status = 0;
        }
        {
            let mut st = self.lock();
            let Some((running, stop)) = st.fds.get(&fd).map(|f| (f.kloop.running, f.kloop.stop))
            else {
                return Err(Errno(libc::ENXIO));
            };
            if running {
                return Err(Errno(libc::EBUSY));
            }
            let loops = st.fds.values().filter(|f| f.kloop.running).count();
            if !stop && loops >= self.cfg.max_kloops {
                tracing::warn!(
                    loops,
                    "SYNC_KLOOP_START refused: every spare front-end worker already runs a \
                     sync loop (start netmapd with more --threads)"
                );
                return Err(Errno(libc::EBUSY));
            }
            let Some(f) = st.fds.get_mut(&fd) else {
                return Err(Errno(libc::ENXIO));
            };
            if stop {
                // A STOP came first: the loop ends before it starts (§5.5).
                f.kloop.stop = false;
                return Ok(());
            }
            f.kloop.running = true;
        }
        tracing::debug!(fd, sleep_us, rings = rings.len(), "sync kloop started");
        let res = self.kloop_run(fd, &b, csb, &rings, &irqfds, sleep_us, um);
        {
            let mut st = self.lock();
            if let Some(f) = st.fds.get_mut(&fd) {
                f.kloop = Default::default();
            }
        }
        self.kloop_cv.notify_all();
        tracing::debug!(fd, ok = res.is_ok(), "sync kloop ended");
        res
    }

    #[allow(clippy::too_many_arguments)]
    fn kloop_run(
        &self,
        fd: FdId,
        b: &Binding,
        csb: Csb,
        rings: &[(Dir, usize)],
        irqfds: &[Option<std::fs::File>],
        sleep_us: u32,
        um: &dyn UserMemory,
    ) -> Result<(), Errno> {
        let pause = Duration::from_micros(u64::from(sleep_us)).max(MIN_SLEEP);
        let n = rings.len();
        let mut atok = vec![NmCsbAtok::default(); n];
        let mut ktoa = vec![NmCsbKtoa::default(); n];
        let mut last_check = Instant::now();
        loop {
            if um.pid().is_some_and(|p| {
                last_check.elapsed() >= CALLER_CHECK && {
                    last_check = Instant::now();
                    caller_dying(p)
                }
            }) {
                tracing::info!(fd, "sync kloop: caller killed, loop ends");
                return Ok(());
            }
            if let Err(e) = um.read(csb.atok, atok.as_mut_bytes()) {
                tracing::info!(fd, errno = e.0, "sync kloop: CSB unreadable, loop ends");
                return Err(e);
            }
            let progress = self.kloop_pass(b, rings, &atok, &mut ktoa)?;
            if let Err(e) = um.write(csb.ktoa, ktoa.as_bytes()) {
                tracing::info!(fd, errno = e.0, "sync kloop: CSB unwritable, loop ends");
                return Err(e);
            }
            for (j, (moved, a)) in progress.iter().zip(&atok).enumerate() {
                if *moved && a.appl_need_kick != 0 {
                    if let Some(irq) = irqfds.get(j).and_then(Option::as_ref) {
                        eventfd_signal(irq);
                    }
                }
            }
            let ended = |st: &State| {
                self.stopping.load(std::sync::atomic::Ordering::Acquire)
                    || st.fds.get(&fd).is_none_or(|f| f.kloop.stop)
            };
            let mut st = self.lock();
            if ended(&st) {
                return Ok(());
            }
            self.kloop_cv.wait_for(&mut st, pause);
            if ended(&st) {
                return Ok(());
            }
        }
    }

    /// One pass over the rings: atok head/cur into the shared ring, the ring's sync,
    /// hwcur/hwtail into `ktoa`. Returns, per ring, whether hwtail moved (TX space
    /// or RX packets for the application).
    fn kloop_pass(
        &self,
        b: &Binding,
        rings: &[(Dir, usize)],
        atok: &[NmCsbAtok],
        ktoa: &mut [NmCsbKtoa],
    ) -> Result<Vec<bool>, Errno> {
        let mem = self.mem();
        let mut wakers = Vec::new();
        let mut moved = Vec::with_capacity(rings.len());
        {
            let mut st = self.lock();
            for ((&(d, i), a), ke) in rings.iter().zip(atok).zip(ktoa.iter_mut()) {
                let before = {
                    let slot = st.adapters.get(&b.adapter).ok_or(Errno(libc::ENXIO))?;
                    let k = &slot.ad.endpoints()[b.ep].krings(d)[i];
                    let rv = netmap_netif::adapter::view(mem, k).map_err(|_| Errno(libc::ENXIO))?;
                    rv.set_head(a.head)
                        .and_then(|()| rv.set_cur(a.cur))
                        .map_err(|_| Errno(libc::EFAULT))?;
                    k.hwtail
                };
                super::poll::sync_one(&mut st, b, d, i, mem, &mut wakers);
                let slot = st.adapters.get(&b.adapter).ok_or(Errno(libc::ENXIO))?;
                let k = &slot.ad.endpoints()[b.ep].krings(d)[i];
                ke.hwcur = k.hwcur;
                ke.hwtail = k.hwtail;
                // The loop polls: application kicks would only cost it syscalls.
                ke.kern_need_kick = 0;
                moved.push(k.hwtail != before);
            }
        }
        super::fire(wakers);
        Ok(moved)
    }
}
