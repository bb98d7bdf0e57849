//! Monitor ports in the control plane (NETMAP-ABI.md §10.5): REGISTER of `NAME` with
//! NR_MONITOR_RX / NR_MONITOR_TX / NR_ZCOPY_MON creates a new
//! [`MonitorPort`] watching the already registered
//! port `NAME`, and every sync of a watched ring (all of them go through
//! `poll::sync_one`) copies the frames it moved into the monitors.
//!
//! `/z` (NR_ZCOPY_MON) is served by a copy monitor of both directions: in the kernel a
//! zero-copy monitor swaps buffers with the parent's rings and sits in their data path
//! (frames reach it only once the parent's consumer released them, and the parent waits
//! for the monitor); here the parent's data path never depends on a monitor, frames are
//! seen as with `/rt`, and the monitor uses the daemon's single allocator (as copy
//! monitors do here). As in the kernel, the REGISTER reply's `nr_flags` gets
//! MONITOR_TX|MONITOR_RX OR-ed in.
//!
//! Monitors watch `(parent adapter, endpoint)` pairs. The watch ends when the parent
//! endpoint loses its last user or the parent adapter goes away; the monitor stays
//! registered and simply sees nothing more (as in the kernel, where the parent's
//! unregistration stops its monitors).

use super::register::{einval, interp_ringid, lookup};
use super::{Errno, PollWaker, PortKey, State};
use netmap_abi as abi;
use netmap_abi::NmreqRegister;
use netmap_netif::af_packet::{interface_exists, NicConfig};
use netmap_netif::monitor::MonitorPort;
use netmap_netif::pipe::parse_pipe_name;
use netmap_netif::{Adapter, Dir, Wake};
use netmap_pool::SharedMem;
use std::collections::HashMap;
use std::ops::Range;

/// The register flags that ask for a monitor.
pub(crate) const MONITOR_FLAGS: u64 = abi::NR_MONITOR_TX | abi::NR_MONITOR_RX | abi::NR_ZCOPY_MON;

/// Which monitors watch which port.
#[derive(Default)]
pub(crate) struct Monitors {
    /// `(parent adapter, endpoint)` → monitor adapters watching it.
    by_parent: HashMap<(u64, usize), Vec<u64>>,
    /// Per parent endpoint: number of the next monitor (the kernel's `monitor_id`,
    /// shown in the monitor's name).
    seq: HashMap<(u64, usize), u64>,
}

impl Monitors {
    /// Whether some monitor watches endpoint `ep` of adapter `aid` (the data-path test).
    pub fn watched(&self, aid: u64, ep: usize) -> bool {
        !self.by_parent.is_empty() && self.by_parent.contains_key(&(aid, ep))
    }

    /// Endpoint `ep` of `aid` lost its last user: its monitors see nothing more.
    pub fn parent_released(&mut self, aid: u64, ep: usize) {
        if self.by_parent.remove(&(aid, ep)).is_some() {
            tracing::debug!(aid, ep, "monitored port closed: its monitors stop");
        }
        self.seq.remove(&(aid, ep));
    }

    /// Adapter `id` is gone: forget it as a parent and as a monitor.
    pub fn adapter_gone(&mut self, id: u64) {
        self.by_parent.retain(|&(a, _), v| {
            v.retain(|&m| m != id);
            a != id && !v.is_empty()
        });
        self.seq.retain(|&(a, _), _| a != id);
    }
}

/// Restricts a ring range to the hardware rings (host rings are not monitored).
fn hw_only(r: Range<usize>, n: u32) -> Range<usize> {
    let n = n as usize;
    r.start.min(n)..r.end.min(n)
}

/// Creates a monitor of the port `name` names (REGISTER with monitor flags). The
/// parent is looked up without creating anything and must have users (else EINVAL;
/// a host interface name that does not exist stays ENXIO, as in the kernel). The
/// monitor's ring selection (`nr_mode`, `nr_ringid`, *_RINGS_ONLY) picks the parent
/// rings to watch. Returns `(monitor adapter, 0, true)`.
pub(crate) fn lookup_monitor(
    st: &mut State,
    nic: &NicConfig,
    name: &str,
    reg: &NmreqRegister,
) -> Result<(u64, usize, bool), Errno> {
    let preq = NmreqRegister {
        nr_flags: reg.nr_flags & !MONITOR_FLAGS,
        ..*reg
    };
    let (paid, pep) = match lookup(st, nic, name, &preq, false) {
        Ok((a, e, _)) => (a, e),
        Err(Errno(libc::ENXIO | libc::ENODEV))
            if parse_pipe_name(name).is_some()
                || name.starts_with("val")
                || interface_exists(name) =>
        {
            return Err(einval("monitor of a port that is not registered"));
        }
        Err(e) => return Err(e),
    };
    let slot = st.adapters.get(&paid).ok_or(Errno(libc::ENXIO))?;
    let Some(pe) = slot.ad.endpoints().get(pep) else {
        return Err(Errno(libc::ENXIO));
    };
    if pe.users == 0 {
        return Err(einval("monitor of a port that is not registered"));
    }
    let counts = pe.counts;
    let both_only = reg.nr_flags & (abi::NR_TX_RINGS_ONLY | abi::NR_RX_RINGS_ONLY)
        == (abi::NR_TX_RINGS_ONLY | abi::NR_RX_RINGS_ONLY);
    let (tx, rx) = if both_only {
        (0..0, 0..0)
    } else {
        interp_ringid(reg.nr_mode, reg.nr_ringid, reg.nr_flags, &counts)?
    };
    let zcopy = reg.nr_flags & abi::NR_ZCOPY_MON != 0;
    let want_tx = zcopy || reg.nr_flags & abi::NR_MONITOR_TX != 0;
    let want_rx = zcopy || reg.nr_flags & abi::NR_MONITOR_RX != 0;
    let watch_tx = if want_tx {
        hw_only(tx, counts.tx_rings)
    } else {
        0..0
    };
    let watch_rx = if want_rx {
        hw_only(rx, counts.rx_rings)
    } else {
        0..0
    };
    let seq = st.monitors.seq.entry((paid, pep)).or_insert(0);
    let label = format!(
        "{}/{}{}{}#{}",
        pe.name,
        if zcopy { "z" } else { "" },
        if want_rx { "r" } else { "" },
        if want_tx { "t" } else { "" },
        *seq
    );
    *seq += 1;
    let m = MonitorPort::new(
        label,
        &counts,
        reg.nr_tx_slots,
        reg.nr_rx_slots,
        st.alloc.max_slots_per_ring(),
        watch_tx,
        watch_rx,
    );
    let mid = st.add_adapter(Box::new(m), PortKey::None);
    st.monitors
        .by_parent
        .entry((paid, pep))
        .or_default()
        .push(mid);
    tracing::debug!(
        name,
        parent = paid,
        ep = pep,
        monitor = mid,
        "monitor created"
    );
    Ok((mid, 0, true))
}

/// The kring index whose movement a sync of `(ep, d, i)` reveals frames by: TX hwcur
/// (slots consumed), RX hwtail (slots made visible).
pub(crate) fn mark(ad: &dyn Adapter, ep: usize, d: Dir, i: usize) -> Option<u32> {
    let k = ad.endpoints().get(ep)?.krings(d).get(i)?;
    Some(match d {
        Dir::Tx => k.hwcur,
        Dir::Rx => k.hwtail,
    })
}

/// After a sync of ring `(aid, ep, d, i)` that started at `old` (see [`mark`]): copies
/// the frames it moved into every monitor watching that ring and collects the wakers of
/// the monitors that received something.
#[allow(clippy::too_many_arguments)]
pub(crate) fn feed(
    st: &mut State,
    aid: u64,
    ep: usize,
    d: Dir,
    i: usize,
    old: u32,
    mem: SharedMem,
    wakers: &mut Vec<Box<dyn PollWaker>>,
) {
    let Some(mons) = st.monitors.by_parent.get(&(aid, ep)) else {
        return;
    };
    let Some(k) = st
        .adapters
        .get(&aid)
        .and_then(|s| s.ad.endpoints().get(ep))
        .and_then(|e| e.krings(d).get(i))
    else {
        return;
    };
    let new = match d {
        Dir::Tx => k.hwcur,
        Dir::Rx => k.hwtail,
    };
    if new == old {
        return;
    }
    let Ok(src) = netmap_netif::adapter::view(mem, k) else {
        return;
    };
    let n = k.num_slots;
    let mons = mons.clone();
    for mid in mons {
        let Some(m) = st
            .adapters
            .get_mut(&mid)
            .and_then(|s| s.ad.as_monitor_mut())
        else {
            continue;
        };
        match m.feed(d, i, &src, n, old, new, mem) {
            Ok(true) => st.collect_wakers(mid, Wake::one(0, Dir::Rx), wakers),
            Ok(false) => {}
            Err(e) => tracing::debug!(monitor = mid, %e, "monitor copy failed"),
        }
    }
}
