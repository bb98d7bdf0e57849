//! The generic sync path shared by NIOCTXSYNC, NIOCRXSYNC and poll (netmap.c
//! `netmap_ioctl` / `netmap_poll`): read the client's head/cur once, validate them
//! against the trusted kring state, run the port's sync, publish the new tail.

use crate::adapter::{view, Adapter, Wake};
use crate::kring::{Dir, Kring};
use crate::kstate::{holder_gone, KState, BUSY_DAEMON, BUSY_STALE};
use crate::NetifError;
use netmap_pool::{OutOfBounds, SharedMem};

/// What happened to one ring during a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingSync {
    /// The client broke the protocol (ring re-initialised) or the port sync failed:
    /// poll reports POLLERR, the ioctls still return 0.
    pub error: bool,
    /// `cur != tail` after the sync: the ring has something for the client
    /// (RX: packets beyond cur; TX: free slots at or after cur).
    pub ready: bool,
    /// Packets were pending in a TX ring (`head != hwcur`) before the sync.
    pub pending: bool,
    pub wake: Wake,
}

/// Buffer pool facts the re-init needs.
#[derive(Debug, Clone, Copy)]
pub struct BufLimits {
    pub total: u32,
    pub size: u32,
}

pub(crate) fn now() -> (i64, i64) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, i64::from(d.subsec_micros()))
}

/// Holds a ring's busy flag (netmap's `nm_kr_tryget`/`nm_kr_put`) for a sync the
/// daemon runs on shared ring state, and stores the state back when dropped.
struct SharedSync<'a> {
    ks: KState<'a>,
}

/// Rounds of `try_get` (with a yield between) before the holder is looked at.
const BUSY_TRIES: u32 = 200;

impl<'a> SharedSync<'a> {
    /// Takes the flag and loads the shared indices into `k` (kept only if they are
    /// all in range: a block a client broke is overwritten with the daemon's copy).
    /// `None` if a live client holds the flag (the sync is skipped, as netmap skips a
    /// busy ring); a holder that died is cleared.
    fn begin(ks: KState<'a>, k: &mut Kring) -> Result<Option<Self>, NetifError> {
        Self::begin_after(ks, k, BUSY_TRIES)
    }

    /// As [`SharedSync::begin`], looking at the holder after `patience` tries: the
    /// port worker gives up at once (1) on an AF_XDP queue a client reads itself,
    /// which it only looks at now and then; yielding there only burnt the worker's
    /// CPU (a `bench/nic.sh` run: 23 ns per frame) while the client held the flag.
    fn begin_after(
        ks: KState<'a>,
        k: &mut Kring,
        patience: u32,
    ) -> Result<Option<Self>, NetifError> {
        let mut tries = 0;
        while !ks.try_get(BUSY_DAEMON)? {
            // The daemon's syncs run one at a time (under its state lock), so its own
            // mark found here was written by a client: not a holder.
            if ks.holder()? == BUSY_DAEMON {
                tracing::debug!(ring = k.id, dir = ?k.dir, "forged daemon busy mark cleared");
                ks.break_holder(BUSY_DAEMON)?;
                continue;
            }
            tries += 1;
            if tries < patience {
                std::thread::yield_now();
                continue;
            }
            let h = ks.holder()?;
            if holder_gone(h) {
                tracing::info!(tid = h, ring = k.id, dir = ?k.dir, "ring busy flag held by a thread that is gone: cleared");
                ks.break_holder(h)?;
                tries = 0;
                continue;
            }
            let now = std::time::Instant::now();
            match k.busy_seen {
                Some((seen, since)) if seen == h && now.duration_since(since) > BUSY_STALE => {
                    tracing::info!(holder = h, ring = k.id, dir = ?k.dir, "ring busy flag held too long: cleared");
                    ks.break_holder(h)?;
                    k.busy_seen = None;
                    tries = 0;
                    continue;
                }
                Some((seen, _)) if seen == h => {}
                _ => k.busy_seen = Some((h, now)),
            }
            tracing::debug!(tid = h, ring = k.id, dir = ?k.dir, "ring busy: sync skipped");
            return Ok(None);
        }
        k.busy_seen = None;
        if !ks.load_checked(k)? {
            tracing::debug!(ring = k.id, dir = ?k.dir, "shared ring state out of range: the daemon's copy wins");
        }
        Ok(Some(Self { ks }))
    }

    fn end(self, k: &Kring) {
        if let Err(e) = self.ks.store(k) {
            tracing::warn!(%e, "storing a ring's shared state");
        }
        if let Err(e) = self.ks.put(BUSY_DAEMON) {
            tracing::warn!(%e, "releasing a ring's busy flag");
        }
    }
}

/// A sync the daemon skipped because a client was syncing the same ring.
fn busy() -> RingSync {
    RingSync {
        error: false,
        ready: false,
        pending: false,
        wake: Wake::none(),
    }
}

/// Runs `f` (a whole ring sync) bracketed by [`SharedSync`] when the adapter keeps
/// its ring state in shared memory.
fn bracketed(
    ad: &mut dyn Adapter,
    ep: usize,
    d: Dir,
    i: usize,
    mem: SharedMem,
    f: impl FnOnce(&mut dyn Adapter) -> Result<RingSync, NetifError>,
) -> Result<RingSync, NetifError> {
    if !ad.shared_kstate() {
        return f(ad);
    }
    let k = &mut ad.endpoints_mut()[ep].krings_mut(d)[i];
    let ks = KState::new(mem, view(mem, k)?.offset());
    let Some(g) = SharedSync::begin(ks, k)? else {
        return Ok(busy());
    };
    let r = f(ad);
    g.end(&ad.endpoints()[ep].krings(d)[i]);
    r
}

/// One TX ring: prologue, txsync, finalize. An invalid head/cur re-initialises the ring
/// and skips the sync.
pub fn txsync_ring(
    ad: &mut dyn Adapter,
    ep: usize,
    i: usize,
    mem: SharedMem,
    lim: BufLimits,
) -> Result<RingSync, NetifError> {
    bracketed(ad, ep, Dir::Tx, i, mem, |ad| {
        txsync_inner(ad, ep, i, mem, lim)
    })
}

fn txsync_inner(
    ad: &mut dyn Adapter,
    ep: usize,
    i: usize,
    mem: SharedMem,
    lim: BufLimits,
) -> Result<RingSync, NetifError> {
    let k = &mut ad.endpoints_mut()[ep].tx[i];
    let rv = view(mem, k)?;
    let (head, cur) = (rv.head()?, rv.cur()?);
    let pending = head != k.hwcur;
    if !k.txsync_prologue(&rv, head, cur)? {
        tracing::debug!(
            ep,
            ring = i,
            head,
            cur,
            rhead = k.rhead,
            rtail = k.rtail,
            "txsync: bad head/cur"
        );
        k.reinit(&rv, lim.total, lim.size)?;
        return Ok(RingSync {
            error: true,
            ready: false,
            pending,
            wake: Wake::none(),
        });
    }
    let res = ad.txsync(ep, i, head, mem);
    let k = &mut ad.endpoints_mut()[ep].tx[i];
    match res {
        Ok(wake) => {
            k.finalize(&rv)?;
            Ok(RingSync {
                error: false,
                ready: cur != k.rtail,
                pending,
                wake,
            })
        }
        Err(e) => {
            tracing::warn!(ep, ring = i, %e, "txsync failed");
            Ok(RingSync {
                error: true,
                ready: false,
                pending,
                wake: Wake::none(),
            })
        }
    }
}

/// One RX ring: prologue (a failure re-initialises and carries on), rxsync, finalize,
/// timestamp.
pub fn rxsync_ring(
    ad: &mut dyn Adapter,
    ep: usize,
    i: usize,
    mem: SharedMem,
    lim: BufLimits,
) -> Result<RingSync, NetifError> {
    bracketed(ad, ep, Dir::Rx, i, mem, |ad| {
        rxsync_inner(ad, ep, i, mem, lim, RxStep::Sync).map(|(r, _)| r)
    })
}

/// A kernel-path poll of a NIC hardware RX ring that the port's worker fills (its
/// state block's kind is KIND_NIC): hands the slots back up to the client's head and
/// reports what the ring holds, without taking frames from the kernel itself. Returns
/// the sync and whether the worker must be woken (it had found the ring full and waits
/// for this release).
///
/// Why: a poll that took the kernel's frames itself answered at once with whatever
/// had come since the program's previous poll, a handful of frames at a veth's rate,
/// so a program served through FUSE made a round trip per five frames (369,238 daemon
/// syncs for 2 M frames on a veth, 1.84 µs of CPU per frame, 2026-12-04). The worker
/// moderates as a NIC does (a pass per pause while a stream comes in, see
/// `nic::rx_pause`) and wakes such pollers when its pass moves frames, so they get a
/// pause's worth at a time. This is what a preloaded client that does not read the
/// queue itself does in its own process (`inproc.rs`). NIOCRXSYNC still takes frames
/// at once (`rxsync_ring`): a program asking for a sync gets what is there.
pub fn nic_rx_release(
    ad: &mut dyn Adapter,
    ep: usize,
    i: usize,
    mem: SharedMem,
    lim: BufLimits,
) -> Result<(RingSync, bool), NetifError> {
    let mut bell = false;
    let r = bracketed(ad, ep, Dir::Rx, i, mem, |ad| {
        let (r, b) = rxsync_inner(ad, ep, i, mem, lim, RxStep::Release)?;
        bell = b;
        Ok(r)
    })?;
    Ok((r, bell))
}

/// Hands `[hwcur, head)` of a NIC RX ring back to the port's worker, which fills the
/// ring (its fills are in `hwtail`). Says whether the worker must be woken: it found
/// the ring full and waits for this release. A kernel-path poll and a preloaded
/// client that does not read the queue itself (`inproc.rs`) both release this way.
pub(crate) fn release_to_worker(
    k: &mut Kring,
    ks: &KState,
    head: u32,
) -> Result<bool, OutOfBounds> {
    let released = head != k.hwcur;
    k.hwcur = head;
    Ok(released && ks.take_stalled()?)
}

/// What an RX sync does between its prologue and its epilogue.
#[derive(Debug, Clone, Copy)]
enum RxStep {
    /// The adapter's rxsync: hands slots back and takes what the port has.
    Sync,
    /// Only hands slots back to the NIC worker that fills the ring
    /// ([`nic_rx_release`]).
    Release,
}

/// An RX sync under the busy flag: prologue (a bad head/cur re-initialises the ring
/// and the sync goes on), `step`, finalize, timestamp. Also says whether the NIC
/// worker must be woken (only a [`RxStep::Release`] can say so).
fn rxsync_inner(
    ad: &mut dyn Adapter,
    ep: usize,
    i: usize,
    mem: SharedMem,
    lim: BufLimits,
    step: RxStep,
) -> Result<(RingSync, bool), NetifError> {
    let k = &mut ad.endpoints_mut()[ep].rx[i];
    let rv = view(mem, k)?;
    let (mut head, mut cur) = (rv.head()?, rv.cur()?);
    let mut error = false;
    if !k.rxsync_prologue(&rv, head, cur)? {
        tracing::debug!(
            ep,
            ring = i,
            head,
            cur,
            hwcur = k.hwcur,
            hwtail = k.hwtail,
            ?step,
            "rxsync: bad head/cur"
        );
        k.reinit(&rv, lim.total, lim.size)?;
        head = k.rhead;
        cur = k.rcur;
        error = true;
    }
    let mut bell = false;
    let wake = match step {
        RxStep::Sync => {
            let res = ad.rxsync(ep, i, head, mem);
            let k = &mut ad.endpoints_mut()[ep].rx[i];
            match res {
                Ok(w) => {
                    k.finalize(&rv)?;
                    w
                }
                Err(e) => {
                    tracing::warn!(ep, ring = i, %e, "rxsync failed");
                    error = true;
                    Wake::none()
                }
            }
        }
        RxStep::Release => {
            bell = release_to_worker(k, &KState::new(mem, rv.offset()), head)?;
            k.finalize(&rv)?;
            Wake::none()
        }
    };
    let (s, us) = now();
    rv.set_timestamp(s, us)?;
    let k = &ad.endpoints()[ep].rx[i];
    Ok((
        RingSync {
            error,
            ready: cur != k.rtail,
            pending: false,
            wake,
        },
        bell,
    ))
}

/// A sync the daemon's worker thread runs on its own initiative for a ring whose client
/// syncs in its own process (NIC hardware rings, `kstate::KIND_NIC`): TX transmits
/// `[hwcur, rhead)` — the head the client's last sync validated, never the ring's live
/// head/cur, which the client may be writing at this moment — and takes completions;
/// RX takes the client's last release (`hwcur`, already in the shared state) and fills
/// from `hwtail` what arrived. The ring's `tail` is the client's next sync's business.
/// `Ok(None)`: the ring was busy (the client is syncing it; its doorbell follows).
/// `Ok(Some(moved))`: how many slots `hwtail` moved over (the client has something new
/// when not 0: frames received, or slots completed). An RX ring left full is marked
/// stalled (its reader rings the doorbell when it releases).
pub fn worker_sync(
    ad: &mut dyn Adapter,
    ep: usize,
    d: Dir,
    i: usize,
    mem: SharedMem,
) -> Result<Option<u32>, NetifError> {
    let k = &mut ad.endpoints_mut()[ep].krings_mut(d)[i];
    let ks = KState::new(mem, view(mem, k)?.offset());
    let patience = if d == Dir::Rx && ks.reader()? != 0 {
        1
    } else {
        BUSY_TRIES
    };
    let Some(g) = SharedSync::begin_after(ks, k, patience)? else {
        return Ok(None);
    };
    let (head, before) = match d {
        Dir::Tx => (k.rhead, k.hwtail),
        Dir::Rx => (k.hwcur, k.hwtail),
    };
    let r = match d {
        Dir::Tx => ad.txsync(ep, i, head, mem),
        Dir::Rx => ad.rxsync(ep, i, head, mem),
    };
    let k = &ad.endpoints()[ep].krings(d)[i];
    let moved = k.hwtail.wrapping_add(k.num_slots).wrapping_sub(before) % k.num_slots.max(1);
    if d == Dir::Rx && k.next(k.hwtail) == k.hwcur {
        ks.set_stalled(true)?;
    }
    g.end(k);
    r.map(|_| Some(moved))
}

/// Runs the sync of direction `d` on ring `i`.
pub fn sync_ring(
    ad: &mut dyn Adapter,
    ep: usize,
    d: Dir,
    i: usize,
    mem: SharedMem,
    lim: BufLimits,
) -> Result<RingSync, NetifError> {
    match d {
        Dir::Tx => txsync_ring(ad, ep, i, mem, lim),
        Dir::Rx => rxsync_ring(ad, ep, i, mem, lim),
    }
}
