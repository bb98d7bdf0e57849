//! NIOCTXSYNC / NIOCRXSYNC (NETMAP-ABI.md §6) and poll (§9).

use super::{Binding, ControlPlane, Errno, FdId, PollWaker, State};
use netmap_netif::kstate::{KState, KIND_NIC};
use netmap_netif::sync::{nic_rx_release, sync_ring, RingSync};
use netmap_netif::Dir;
use netmap_pool::SharedMem;

pub const POLLIN: u32 = libc::POLLIN as u32;
pub const POLLOUT: u32 = libc::POLLOUT as u32;
pub const POLLERR: u32 = libc::POLLERR as u32;
pub const POLLRDNORM: u32 = libc::POLLRDNORM as u32;
pub const POLLWRNORM: u32 = libc::POLLWRNORM as u32;

/// A ring sync that could not run (the port failed): poll reports POLLERR.
fn failed() -> RingSync {
    RingSync {
        error: true,
        ready: false,
        pending: false,
        wake: Default::default(),
    }
}

/// Syncs ring `i` of direction `d` of a binding, collecting wake-ups for peers.
pub(crate) fn sync_one(
    st: &mut State,
    b: &Binding,
    d: Dir,
    i: usize,
    mem: SharedMem,
    wakers: &mut Vec<Box<dyn PollWaker>>,
) -> Option<RingSync> {
    let lim = st.buf_limits();
    let watched = st.monitors.watched(b.adapter, b.ep);
    let slot = st.adapters.get_mut(&b.adapter)?;
    let mark = watched
        .then(|| super::monitor::mark(slot.ad.as_ref(), b.ep, d, i))
        .flatten();
    let r = match sync_ring(slot.ad.as_mut(), b.ep, d, i, mem, lim) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(dir = ?d, ring = i, %e, "sync failed");
            return Some(failed());
        }
    };
    if let Some(old) = mark {
        super::monitor::feed(st, b.adapter, b.ep, d, i, old, mem, wakers);
    }
    st.collect_wakers(b.adapter, r.wake, wakers);
    Some(r)
}

/// RX ring `i` of a binding is a NIC hardware ring that its port's worker fills
/// (state-block kind KIND_NIC) while frames stream in: the worker's ring 0 and
/// doorbell, to wake it after a release. A poll then only hands slots back (see
/// `nic_rx_release`); outside a stream it takes the frames itself, as before.
fn filled_by_worker(st: &State, b: &Binding, i: usize, mem: SharedMem) -> Option<(usize, usize)> {
    let slot = st.adapters.get(&b.adapter)?;
    let w = slot.nic_worker.as_ref().filter(|w| w.streaming())?;
    let off = slot.ad.endpoints().get(b.ep)?.rx.get(i)?.ring_off?;
    KState::new(mem, off)
        .kind()
        .is_ok_and(|k| k == KIND_NIC)
        .then_some((w.ring0, w.doorbell))
}

/// Releases NIC RX ring `i` of a binding without taking frames (see
/// `nic_rx_release`); says also whether the port's worker waits for that release.
fn release_one(st: &mut State, b: &Binding, i: usize, mem: SharedMem) -> Option<(RingSync, bool)> {
    let lim = st.buf_limits();
    let slot = st.adapters.get_mut(&b.adapter)?;
    match nic_rx_release(slot.ad.as_mut(), b.ep, i, mem, lim) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(ring = i, %e, "NIC rx release failed");
            Some((failed(), false))
        }
    }
}

/// Whether TX ring `i` holds packets the daemon has not consumed (`head != hwcur`).
fn tx_pending(st: &State, b: &Binding, i: usize, mem: SharedMem) -> bool {
    let Some(slot) = st.adapters.get(&b.adapter) else {
        return false;
    };
    let k = &slot.ad.endpoints()[b.ep].tx[i];
    let Ok(v) = netmap_netif::adapter::view(mem, k) else {
        return false;
    };
    // Clients may have synced the ring since the daemon did: its state block has
    // the current hwcur.
    let hwcur = if slot.ad.shared_kstate() {
        KState::new(mem, v.offset())
            .hw()
            .map_or(k.hwcur, |(c, _)| c)
    } else {
        k.hwcur
    };
    v.head().is_ok_and(|h| h != hwcur)
}

/// The state blocks of the rings `b` binds in direction `d`, when the adapter keeps
/// its ring state in shared memory (pipes); empty otherwise.
fn shared_states<'a>(st: &State, b: &Binding, d: Dir, mem: SharedMem<'a>) -> Vec<KState<'a>> {
    let Some(slot) = st.adapters.get(&b.adapter) else {
        return Vec::new();
    };
    if !slot.ad.shared_kstate() {
        return Vec::new();
    }
    let krings = slot.ad.endpoints()[b.ep].krings(d);
    b.rings(d)
        .filter_map(|i| krings.get(i)?.ring_off)
        .map(|off| KState::new(mem, off))
        .collect()
}

/// Clears the kernel-waiter flag on every ring of every endpoint of the adapter (a
/// kick wakes them all, so all their flags go).
fn clear_kernel_waiters(st: &State, adapter: u64, mem: SharedMem) {
    let Some(slot) = st.adapters.get(&adapter) else {
        return;
    };
    for off in slot.ad.endpoints().iter().flat_map(|e| e.ring_offs()) {
        if let Err(e) = KState::new(mem, off).set_kernel_waiter(false) {
            tracing::debug!(%e, "clearing a kernel-waiter flag");
        }
    }
}

impl ControlPlane {
    /// NIOC_NMD_KICK: a client synced a pipe ring in its own process and saw a
    /// kernel-path poller waiting on the peer: wake every poller of the adapter (the
    /// pollers re-check, so a spare wake-up is harmless) and clear the flags, which
    /// pollers set again before they sleep.
    pub(crate) fn kick(&self, fd: FdId) -> Result<(), Errno> {
        let mem = self.mem();
        let mut wakers = Vec::new();
        {
            let mut st = self.lock();
            let Some(b) = st.fds.get(&fd).and_then(|f| f.binding.clone()) else {
                tracing::debug!(fd, "kick on an unregistered descriptor");
                return Err(Errno(libc::ENXIO));
            };
            let n = st
                .adapters
                .get(&b.adapter)
                .map_or(0, |s| s.ad.endpoints().len());
            let mut w = netmap_netif::Wake::none();
            for ep in 0..n {
                w.add(ep, Dir::Tx);
                w.add(ep, Dir::Rx);
            }
            // A VALE reader in a client saw packets the daemon queued for its ring
            // (its backlog): the daemon's rxsync moves them in.
            let vale = st
                .adapters
                .get(&b.adapter)
                .is_some_and(|s| s.ad.as_vale().is_some());
            if vale {
                for i in b.rings(Dir::Rx) {
                    sync_one(&mut st, &b, Dir::Rx, i, mem, &mut wakers);
                }
            }
            st.collect_wakers(b.adapter, w, &mut wakers);
            clear_kernel_waiters(&st, b.adapter, mem);
        }
        super::fire(wakers);
        Ok(())
    }

    pub(crate) fn sync_ioctl(&self, fd: FdId, d: Dir) -> Result<(), Errno> {
        self.daemon_syncs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mem = self.mem();
        let mut wakers = Vec::new();
        {
            let mut st = self.lock();
            let Some(b) = st.fds.get(&fd).and_then(|f| f.binding.clone()) else {
                tracing::debug!(fd, "sync on an unregistered descriptor");
                return Err(Errno(libc::ENXIO));
            };
            if b.csb.is_some() {
                tracing::debug!(fd, "sync ioctl on a descriptor in CSB mode");
                return Err(Errno(libc::EBUSY));
            }
            for i in b.rings(d) {
                sync_one(&mut st, &b, d, i, mem, &mut wakers);
            }
        }
        super::fire(wakers);
        Ok(())
    }

    /// Computes the ready mask for `events`, syncing rings as netmap_poll does. When
    /// nothing is ready and `waker` is given, it is kept until a peer makes progress.
    pub fn poll(&self, fd: FdId, events: u32, waker: Option<Box<dyn PollWaker>>) -> u32 {
        self.daemon_syncs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mem = self.mem();
        let mut wakers = Vec::new();
        // NIC workers waiting for slots this poll released: (ring 0, doorbell).
        let mut bells: Vec<(usize, usize)> = Vec::new();
        let revents = {
            let mut st = self.lock();
            let Some(b) = st.fds.get(&fd).and_then(|f| f.binding.clone()) else {
                return POLLERR;
            };
            if b.csb.is_some() {
                // CSB mode: the sync loop owns the rings (§5.5).
                return POLLERR;
            }
            let mut want_tx = events & (POLLOUT | POLLWRNORM);
            let want_rx = events & (POLLIN | POLLRDNORM);
            let mut revents = 0;
            // Rings a preloaded peer may advance without the daemon: announce this
            // poller before checking them (the peer checks the flag after publishing),
            // so that a peer's progress between the check and the sleep is not lost.
            let mut announced = Vec::new();
            if waker.is_some() {
                if want_tx != 0 {
                    announced.extend(shared_states(&st, &b, Dir::Tx, mem));
                }
                if want_rx != 0 {
                    announced.extend(shared_states(&st, &b, Dir::Rx, mem));
                }
                for ks in &announced {
                    if let Err(e) = ks.set_kernel_waiter(true) {
                        tracing::debug!(%e, "setting a kernel-waiter flag");
                    }
                }
            }
            if b.flags & netmap_abi::NR_NO_TX_POLL == 0 || want_tx != 0 {
                for _pass in 0..2 {
                    for i in b.tx.clone() {
                        if want_tx == 0 && !tx_pending(&st, &b, i, mem) {
                            continue;
                        }
                        let Some(r) = sync_one(&mut st, &b, Dir::Tx, i, mem, &mut wakers) else {
                            continue;
                        };
                        if r.error {
                            revents |= POLLERR;
                        } else if r.ready && want_tx != 0 {
                            revents |= want_tx;
                            want_tx = 0;
                        }
                    }
                    if want_tx == 0 {
                        break;
                    }
                }
            }
            if want_rx != 0 {
                for _pass in 0..2 {
                    for i in b.rx.clone() {
                        let r = match filled_by_worker(&st, &b, i, mem) {
                            Some(w) => release_one(&mut st, &b, i, mem).map(|(r, bell)| {
                                if bell && !bells.contains(&w) {
                                    bells.push(w);
                                }
                                r
                            }),
                            None => sync_one(&mut st, &b, Dir::Rx, i, mem, &mut wakers),
                        };
                        let Some(r) = r else {
                            continue;
                        };
                        if r.error {
                            revents |= POLLERR;
                        }
                        if r.ready {
                            revents |= want_rx;
                        }
                    }
                    if revents & want_rx != 0 {
                        break;
                    }
                }
            }
            if revents == 0 {
                if let (Some(w), Some(f)) = (waker, st.fds.get_mut(&fd)) {
                    f.waker = Some(w);
                }
            }
            revents
        };
        for (ring0, bell) in bells {
            self.ring_nic_worker(ring0, bell);
        }
        super::fire(wakers);
        revents
    }
}
