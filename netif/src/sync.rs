//! The generic sync path shared by NIOCTXSYNC, NIOCRXSYNC and poll (netmap.c
//! `netmap_ioctl` / `netmap_poll`): read the client's head/cur once, validate them
//! against the trusted kring state, run the port's sync, publish the new tail.

use crate::adapter::{view, Adapter, Wake};
use crate::kring::Dir;
use crate::NetifError;
use netmap_pool::SharedMem;

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

fn now() -> (i64, i64) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, i64::from(d.subsec_micros()))
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
            "rxsync: bad head/cur"
        );
        k.reinit(&rv, lim.total, lim.size)?;
        head = k.rhead;
        cur = k.rcur;
        error = true;
    }
    let res = ad.rxsync(ep, i, head, mem);
    let k = &mut ad.endpoints_mut()[ep].rx[i];
    let wake = match res {
        Ok(w) => {
            k.finalize(&rv)?;
            w
        }
        Err(e) => {
            tracing::warn!(ep, ring = i, %e, "rxsync failed");
            error = true;
            Wake::none()
        }
    };
    let (s, us) = now();
    rv.set_timestamp(s, us)?;
    Ok(RingSync {
        error,
        ready: cur != k.rtail,
        pending: false,
        wake,
    })
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
