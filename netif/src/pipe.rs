//! netmap pipes: `NAME{ID` (master) and `NAME}ID` (slave), zero-copy by exchanging
//! slot descriptors (NETMAP-ABI.md §10.4).
//!
//! Master TX ring i is connected to slave RX ring i and slave TX ring i to master RX
//! ring i. Each connected pair shares one set of N buffers: slot k of the writer's TX
//! ring and slot k of the reader's RX ring are the same descriptor at different times.
//! The writer's txsync copies `[hwcur, head)` into the reader's ring and publishes only
//! up to the end of the last complete packet; the reader's rxsync copies released
//! slots back and publishes them to the writer as free. Neither side ever moves data.

use crate::adapter::{
    buf_free_checked, ring_free, view, Adapter, Endpoint, KeepSet, PortCounts, PortKind, Taken,
    Wake,
};
use crate::kring::{Dir, Kring};
use crate::kstate::{KState, KIND_PIPE};
use crate::ringmem::RingView;
use crate::NetifError;
use netmap_abi::{NetmapSlot, NS_BUF_CHANGED, NS_MOREFRAG};
use netmap_pool::{MemAllocator, SharedMem};

/// Most pairs one parent may have (netmap's NM_MAXPIPES).
pub const MAX_PIPES_PER_PARENT: usize = 64;
/// Ring count limit per direction.
pub const MAX_PIPE_RINGS: u32 = 256;
/// Slot count limit.
pub const MAX_PIPE_SLOTS: u32 = 4096;
pub const MASTER: usize = 0;
pub const SLAVE: usize = 1;

/// A pipe pair: one adapter, two endpoints.
#[derive(Debug)]
pub struct PipePair {
    eps: [Endpoint; 2],
}

/// Splits a kernel name at the pipe bracket: `Some((parent, is_master, id))`.
/// The last `{` marks a master; without one, the last `}` marks a slave.
pub fn parse_pipe_name(name: &str) -> Option<Result<(&str, bool, &str), NetifError>> {
    let (pos, master) = match name.rfind('{') {
        Some(p) => (p, true),
        None => (name.rfind('}')?, false),
    };
    let parent = &name[..pos];
    let id = &name[pos + 1..];
    if parent.is_empty() || id.is_empty() {
        return Some(Err(NetifError::Inval(format!(
            "pipe name {name:?} needs a parent and an id"
        ))));
    }
    Some(Ok((parent, master, id)))
}

impl PipePair {
    /// Creates a pair from the counts of a REGISTER request, always read as the
    /// master's (the slave gets them swapped). Zero rings → 1; zero slots → the
    /// parent's; both clamped to the pipe limits and to what a ring object can hold.
    pub fn new(base: &str, id: &str, req: PortCounts, parent_slots: u32, max_slots: u32) -> Self {
        let rings = |r: u32| r.clamp(1, MAX_PIPE_RINGS);
        let slots = |s: u32| {
            let s = if s == 0 { parent_slots } else { s };
            s.clamp(2, MAX_PIPE_SLOTS.min(max_slots))
        };
        let m = PortCounts {
            tx_rings: rings(req.tx_rings),
            rx_rings: rings(req.rx_rings),
            tx_slots: slots(req.tx_slots),
            rx_slots: slots(req.rx_slots),
            host_tx_rings: 0,
            host_rx_rings: 0,
        };
        let s = PortCounts {
            tx_rings: m.rx_rings,
            rx_rings: m.tx_rings,
            tx_slots: m.rx_slots,
            rx_slots: m.tx_slots,
            ..m
        };
        Self {
            eps: [
                Endpoint::new(format!("{base}{{{id}"), m),
                Endpoint::new(format!("{base}}}{id}"), s),
            ],
        }
    }

    fn create_all(&mut self, alloc: &mut MemAllocator, mem: SharedMem) -> Result<(), NetifError> {
        let buf_pool_offset = alloc.buf_pool.offset();
        let buf_size = alloc.buf_size();
        let mut taken = Taken::new(alloc);
        let mut placed: Vec<(usize, Dir, usize, usize)> = Vec::new();
        for w in [MASTER, SLAVE] {
            let r = 1 - w;
            for i in 0..self.eps[w].tx.len() {
                let n = self.eps[w].tx[i].num_slots;
                let tx_off = taken.ring()?;
                let rx_off = taken.ring()?;
                let bufs = taken.bufs(n as usize, mem)?;
                let t = &self.eps[w].tx[i];
                crate::RingView::new(mem, tx_off, n).init(
                    buf_pool_offset,
                    buf_size,
                    t.id as u16,
                    Dir::Tx.ring_dir(),
                    0,
                    n - 1,
                    &bufs,
                )?;
                crate::RingView::new(mem, rx_off, n).init(
                    buf_pool_offset,
                    buf_size,
                    i as u16,
                    Dir::Rx.ring_dir(),
                    0,
                    0,
                    &bufs,
                )?;
                placed.push((w, Dir::Tx, i, tx_off));
                placed.push((r, Dir::Rx, i, rx_off));
            }
        }
        taken.commit();
        for &(e, d, i, off) in &placed {
            let k = &mut self.eps[e].krings_mut(d)[i];
            k.reset_indices();
            k.ring_off = Some(off);
        }
        // The link of a connected pair lives in both rings' state blocks: the TX ring
        // holds what its writer may fill, the RX ring what its reader may read.
        for w in [MASTER, SLAVE] {
            let r = 1 - w;
            for i in 0..self.eps[w].tx.len() {
                let (t, rk) = (&self.eps[w].tx[i], &self.eps[r].rx[i]);
                let (Some(toff), Some(roff)) = (t.ring_off, rk.ring_off) else {
                    continue;
                };
                KState::new(mem, toff).init(KIND_PIPE, t, t.num_slots - 1, roff)?;
                KState::new(mem, roff).init(KIND_PIPE, rk, 0, toff)?;
            }
        }
        Ok(())
    }
}

/// Slots moved per bulk copy in [`tx_core`] / [`rx_core`].
const BATCH: usize = 32;

/// The circular range `[from, to)` of an `n`-slot ring as at most two linear
/// `(start, len)` pieces. `from`/`to` are below `n` (validated by the prologue).
fn spans(from: u32, to: u32, n: u32) -> impl Iterator<Item = (u32, u32)> {
    let (a, b) = if from <= to {
        ((from, to - from), (0, 0))
    } else {
        ((from, n - from), (0, to))
    };
    [a, b].into_iter().filter(|&(_, l)| l > 0)
}

/// The txsync of a pipe's writer ring `t` (view `tv`, state `tks`) into the reader's
/// ring `rv` (state `rks`): copies the slot descriptors `[hwcur, head)` to the same
/// indices of the reader's ring and publishes to the reader up to the end of the last
/// complete packet. The one implementation, run by the daemon and by preloaded
/// clients. Returns `None` if the reader got nothing new, else whether a kernel-path
/// poller waits for it (see [`crate::kstate::publish`]).
pub fn tx_core(
    t: &mut Kring,
    tv: &RingView,
    rv: &RingView,
    tks: &KState,
    rks: &KState,
    head: u32,
) -> Result<Option<bool>, NetifError> {
    let to_writer = tks.link()?;
    if to_writer >= t.num_slots {
        return Err(NetifError::Inval(format!(
            "pipe link {to_writer} out of range"
        )));
    }
    t.hwtail = to_writer;
    let mut complete = None;
    let (mut slots, mut bytes) = (0u64, 0u64);
    let mut buf = [NetmapSlot::default(); BATCH];
    for (start, n) in spans(t.hwcur, head, t.num_slots) {
        let mut done = 0;
        while done < n {
            let chunk = (n - done).min(BATCH as u32);
            let at = start + done;
            let b = &mut buf[..chunk as usize];
            tv.read_slots(at, b)?;
            rv.write_slots(at, b)?;
            for (j, s) in b.iter().enumerate() {
                let k = at + j as u32;
                slots += 1;
                bytes += u64::from(s.len);
                if s.flags & NS_BUF_CHANGED != 0 {
                    tv.set_slot_flags(k, s.flags & !NS_BUF_CHANGED)?;
                }
                if s.flags & NS_MOREFRAG == 0 {
                    complete = Some(t.next(k));
                }
            }
            done += chunk;
        }
    }
    t.hwcur = head;
    if slots > 0 {
        tks.count_sent(slots, bytes)?;
    }
    match complete {
        Some(end) => {
            rks.set_link(end)?;
            Ok(Some(crate::kstate::publish(rks)?))
        }
        None => Ok(None),
    }
}

/// The rxsync of a pipe's reader ring `rk`: takes what the writer handed over, and
/// copies the released slots `[hwcur, head)` back to the writer's ring, publishing
/// them to the writer as free. Returns as [`tx_core`], for the writer.
pub fn rx_core(
    rk: &mut Kring,
    rv: &RingView,
    tv: &RingView,
    rks: &KState,
    tks: &KState,
    head: u32,
) -> Result<Option<bool>, NetifError> {
    let to_reader = rks.link()?;
    if to_reader >= rk.num_slots {
        return Err(NetifError::Inval(format!(
            "pipe link {to_reader} out of range"
        )));
    }
    rk.hwtail = to_reader;
    if rk.hwcur == head {
        return Ok(None);
    }
    let mut buf = [NetmapSlot::default(); BATCH];
    for (start, n) in spans(rk.hwcur, head, rk.num_slots) {
        let mut done = 0;
        while done < n {
            let chunk = (n - done).min(BATCH as u32);
            let at = start + done;
            let b = &mut buf[..chunk as usize];
            rv.read_slots(at, b)?;
            tv.write_slots(at, b)?;
            for (j, s) in b.iter().enumerate() {
                if s.flags & NS_BUF_CHANGED != 0 {
                    rv.set_slot_flags(at + j as u32, s.flags & !NS_BUF_CHANGED)?;
                }
            }
            done += chunk;
        }
    }
    rk.hwcur = head;
    tks.set_link(rk.prev(head))?;
    Ok(Some(crate::kstate::publish(tks)?))
}

/// `x` in the circular half-open interval `[a, b)`.
fn in_half_open(a: u32, b: u32, x: u32) -> bool {
    if a <= b {
        a <= x && x < b
    } else {
        x >= a || x < b
    }
}

impl Adapter for PipePair {
    fn kind(&self) -> PortKind {
        PortKind::Pipe
    }

    /// Slots (one per packet unless NS_MOREFRAG) and bytes each end's TX rings handed
    /// over, as counted in the rings' shared state by whoever ran the sync (the daemon
    /// or a preloaded client): what an end received is what its peer sent. Statistics
    /// only, like every number a client can write.
    fn endpoint_stats(&self, ep: usize, mem: SharedMem) -> Vec<(&'static str, u64)> {
        let sent = |e: &Endpoint| {
            e.tx.iter()
                .filter_map(|k| k.ring_off)
                .fold((0u64, 0u64), |(n, b), off| {
                    let (sn, sb) = KState::new(mem, off).sent().unwrap_or((0, 0));
                    (n.wrapping_add(sn), b.wrapping_add(sb))
                })
        };
        let Some(me) = self.eps.get(ep) else {
            return Vec::new();
        };
        let (tp, tb) = sent(me);
        let (rp, rb) = self.eps.get(ep ^ 1).map_or((0, 0), sent);
        vec![
            ("tx_packets", tp),
            ("tx_bytes", tb),
            ("rx_packets", rp),
            ("rx_bytes", rb),
        ]
    }

    fn endpoints(&self) -> &[Endpoint] {
        &self.eps
    }

    fn endpoints_mut(&mut self) -> &mut [Endpoint] {
        &mut self.eps
    }

    /// Registering either end materialises the rings of both (`netmap_pipe_reg_both`).
    fn krings_create(
        &mut self,
        _ep: usize,
        alloc: &mut MemAllocator,
        mem: SharedMem,
    ) -> Result<(), NetifError> {
        if self.eps.iter().all(Endpoint::has_rings) {
            return Ok(());
        }
        self.create_all(alloc, mem)
    }

    /// Frees exactly one buffer per slot of each connected pair: the reader's copy for
    /// slots handed over but not yet released (`[reader hwcur, writer hwcur)`), the
    /// writer's copy for the rest. Whichever side owns a slot may have swapped a new
    /// buffer in; the other side's copy is then stale and must not be freed.
    fn krings_delete(&mut self, alloc: &mut MemAllocator, mem: SharedMem, keep: &KeepSet) {
        for w in [MASTER, SLAVE] {
            let r = 1 - w;
            for i in 0..self.eps[w].tx.len() {
                let (t, rk) = (&self.eps[w].tx[i], &self.eps[r].rx[i]);
                if let (Ok(tv), Ok(rv)) = (view(mem, t), view(mem, rk)) {
                    // A client may have synced last: its indices are in the state
                    // blocks. Used only if in range (frees are validated anyway).
                    let (tks, rks) = (KState::new(mem, tv.offset()), KState::new(mem, rv.offset()));
                    let shared = |ks: &KState, own: &Kring| {
                        let mut c = own.clone();
                        match ks.load(&mut c) {
                            Ok(()) if c.hwcur < own.num_slots => c.hwcur,
                            _ => own.hwcur,
                        }
                    };
                    let (t_hwcur, r_hwcur) = (shared(&tks, t), shared(&rks, rk));
                    for k in 0..t.num_slots {
                        let from = if in_half_open(r_hwcur, t_hwcur, k) {
                            &rv
                        } else {
                            &tv
                        };
                        match from.slot_buf_idx(k) {
                            Ok(idx) => buf_free_checked(alloc, keep, idx),
                            Err(e) => tracing::error!(%e, "reading a pipe slot at teardown"),
                        }
                    }
                    for ks in [tks, rks] {
                        if let Err(e) = ks.clear() {
                            tracing::error!(%e, "clearing a pipe ring's state block");
                        }
                    }
                }
                ring_free(alloc, &mut self.eps[w].tx[i]);
                ring_free(alloc, &mut self.eps[r].rx[i]);
            }
        }
    }

    /// Pipe ring state lives in the rings' state blocks ([`KState`]).
    fn shared_kstate(&self) -> bool {
        true
    }

    fn txsync(
        &mut self,
        ep: usize,
        ring: usize,
        head: u32,
        mem: SharedMem,
    ) -> Result<Wake, NetifError> {
        let peer = 1 - ep;
        let [a, b] = &mut self.eps;
        let (w, r) = if ep == MASTER { (a, b) } else { (b, a) };
        let t = &mut w.tx[ring];
        let rk = &r.rx[ring];
        let (tv, rv) = (view(mem, t)?, view(mem, rk)?);
        let (tks, rks) = (KState::new(mem, tv.offset()), KState::new(mem, rv.offset()));
        Ok(if tx_core(t, &tv, &rv, &tks, &rks, head)?.is_some() {
            Wake::one(peer, Dir::Rx)
        } else {
            Wake::none()
        })
    }

    fn rxsync(
        &mut self,
        ep: usize,
        ring: usize,
        head: u32,
        mem: SharedMem,
    ) -> Result<Wake, NetifError> {
        let writer = 1 - ep;
        let [a, b] = &mut self.eps;
        let (r, w) = if ep == MASTER { (a, b) } else { (b, a) };
        let rk = &mut r.rx[ring];
        let t = &w.tx[ring];
        let (rv, tv) = (view(mem, rk)?, view(mem, t)?);
        let (rks, tks) = (KState::new(mem, rv.offset()), KState::new(mem, tv.offset()));
        Ok(if rx_core(rk, &rv, &tv, &rks, &tks, head)?.is_some() {
            Wake::one(writer, Dir::Tx)
        } else {
            Wake::none()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let p = |n| parse_pipe_name(n).map(|r| r.map_err(|e| e.errno()));
        assert_eq!(p("pp{0"), Some(Ok(("pp", true, "0"))));
        assert_eq!(p("pp}0"), Some(Ok(("pp", false, "0"))));
        assert_eq!(p("a}b{c"), Some(Ok(("a}b", true, "c"))));
        assert_eq!(p("x{"), Some(Err(libc::EINVAL)));
        assert_eq!(p("{x"), Some(Err(libc::EINVAL)));
        assert_eq!(p("eth0"), None);
    }

    #[test]
    fn counts_are_the_masters_and_swapped_for_the_slave() {
        let req = PortCounts {
            tx_rings: 2,
            rx_rings: 1,
            tx_slots: 0,
            rx_slots: 100,
            ..Default::default()
        };
        let p = PipePair::new("x", "1", req, 1024, 2288);
        let m = p.eps[MASTER].counts;
        let s = p.eps[SLAVE].counts;
        assert_eq!(
            (m.tx_rings, m.rx_rings, m.tx_slots, m.rx_slots),
            (2, 1, 1024, 100)
        );
        assert_eq!(
            (s.tx_rings, s.rx_rings, s.tx_slots, s.rx_slots),
            (1, 2, 100, 1024)
        );
        assert_eq!(p.eps[MASTER].name, "x{1");
        assert_eq!(p.eps[SLAVE].name, "x}1");
    }
}
