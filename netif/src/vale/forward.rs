//! Forwarding inside the sender's txsync (netmap_vale.c `nm_bdg_preflush` /
//! `nm_bdg_flush`, NETMAP-ABI.md §10.2).
//!
//! The sender's `[hwcur, head)` is cut into packets (NS_MOREFRAG chains). A packet is
//! dropped whole (counted in the sender's `tx_drops`) when one of its slots names a
//! buffer outside the pool or a length beyond the buffer, uses NS_INDIRECT (user
//! addresses cannot be reached from the daemon), spans more than [`MAX_FRAGS`] slots,
//! is an unterminated trailing chain (§8.6), is shorter than the virtio-net header plus
//! 14 bytes, or is unicast back to its sender. Otherwise the learning bridge picks the
//! destinations and each fragment is copied into one slot of the destination's RX ring
//! (same fragment layout; flags = fragment count << 8, NS_MOREFRAG on non-last). A
//! destination without room for the whole packet queues it in its bounded backlog
//! (see `backlog.rs` for why the kernel needs none) and drops it (its `rx_drops`) only
//! when that is full too. All TX slots are free again afterwards: `hwcur = head`,
//! `hwtail = head - 1`.

use super::backlog::Held;
use super::switch::{is_group, Mac};
use super::{BufGeom, ValeSwitch, MAX_FRAGS};
use crate::adapter::{view, Wake};
use crate::kring::Dir;
use crate::ringmem::RingView;
use crate::NetifError;
use netmap_abi::{NS_BUF_CHANGED, NS_INDIRECT, NS_MOREFRAG, NS_PORT_MASK, NS_PORT_SHIFT};
use netmap_pool::SharedMem;

/// One validated source fragment: region offset of its data and its length.
#[derive(Debug, Clone, Copy)]
struct Frag {
    off: usize,
    len: u16,
}

/// Length of an Ethernet header.
const ETH_HLEN: usize = 14;

/// Reads bytes `[skip, skip + out.len())` of the packet made of `frags`; false if the
/// packet is shorter.
fn read_prefix(
    mem: SharedMem,
    frags: &[Frag],
    skip: usize,
    out: &mut [u8],
) -> Result<bool, NetifError> {
    let (want_lo, want_hi) = (skip, skip + out.len());
    let mut pos = 0usize;
    for f in frags {
        let (lo, hi) = (pos, pos + usize::from(f.len));
        let (a, b) = (lo.max(want_lo), hi.min(want_hi));
        if a < b {
            mem.read_bytes(f.off + (a - lo), &mut out[a - want_lo..b - want_lo])?;
        }
        pos = hi;
        if pos >= want_hi {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Cuts the next packet starting at `*k` (not `head`) out of the TX ring, clearing
/// NS_BUF_CHANGED on the consumed slots. Returns whether it is forwardable; `frags`
/// holds its fragments then. `*k` ends past the packet (at most at `head`).
fn next_packet(
    tv: &RingView,
    num_slots: u32,
    k: &mut u32,
    head: u32,
    geom: &BufGeom,
    frags: &mut Vec<Frag>,
) -> Result<bool, NetifError> {
    frags.clear();
    let mut ok = true;
    loop {
        let s = tv.slot(*k)?;
        if s.flags & NS_BUF_CHANGED != 0 {
            tv.set_slot_flags(*k, s.flags & !NS_BUF_CHANGED)?;
        }
        *k = if *k + 1 >= num_slots { 0 } else { *k + 1 };
        match geom.offset(s.buf_idx) {
            _ if s.flags & NS_INDIRECT != 0 => ok = false,
            Some(off) if u32::from(s.len) <= geom.size && frags.len() < MAX_FRAGS => {
                frags.push(Frag { off, len: s.len })
            }
            _ => ok = false,
        }
        if s.flags & NS_MOREFRAG == 0 {
            return Ok(ok);
        }
        if *k == head {
            // Unterminated chain: truncated (§8.6).
            return Ok(false);
        }
    }
}

/// Takes the slots the consumer of a full RX ring has already handed back by moving
/// its `head`, without waiting for its next rxsync; returns the new `hwcur`.
///
/// Why: a VALE RX ring is refilled in the *sender's* sync, but its slots come back only
/// when the receiver's next sync reaches the daemon. Through FUSE that sync is a round
/// trip that queues behind the very forward that needs the room (one lock, two
/// vCPUs), so a sender that emits two bursts close together (pkt-gen catching up
/// after a late timer) found the ring full although the receiver had consumed the
/// first burst, and dropped. In the kernel the receiver's rxsync runs in its own
/// context and wins that race. The client releases slots by moving `head` (it must
/// not touch a slot outside `[head, tail)`), so taking the release now is what its
/// next rxsync would do (VALE's rxsync is just `hwcur = head`). `head` is untrusted:
/// it is read once and used only if it lies in `[hwcur, hwtail]`, the window
/// `rxsync_prologue` accepts; anything else waits for the real sync, which
/// re-initialises the ring.
fn early_release(k: &mut crate::kring::Kring, rv: &RingView) -> Result<Option<u32>, NetifError> {
    let head = rv.head()?;
    if head == k.hwcur || !crate::kring::in_window(k.hwcur, k.hwtail, head) || head >= k.num_slots {
        return Ok(None);
    }
    k.hwcur = head;
    Ok(Some(head))
}

/// Copies the packet into RX ring `r` of port `d`. Ports without rings are skipped
/// silently. A full ring (after taking the consumer's unsynced release) queues the
/// packet in the port's [`Backlog`] for its next rxsync, and so does any packet while
/// older ones wait there (order is kept); a full backlog, or an invalid buffer in the
/// slots to fill, is a drop.
#[allow(clippy::too_many_arguments)]
fn deliver(
    sw: &mut ValeSwitch,
    d: usize,
    r: usize,
    frags: &[Frag],
    bytes: u64,
    mem: SharedMem,
    geom: &BufGeom,
    wake: &mut Wake,
) -> Result<(), NetifError> {
    let Some(rk) = sw.eps.get(d).and_then(|e| e.rx.get(r)) else {
        return Ok(());
    };
    if rk.ring_off.is_none() {
        return Ok(());
    }
    let rv = view(mem, rk)?;
    let n = rk.num_slots;
    let queued = sw.ports[d].backlog.get(r).is_some_and(|b| !b.is_empty());
    if !queued {
        let fill = sw.ports[d].fill[r];
        let mut free = free_slots(rk.hwcur, fill, n);
        if free < frags.len() as u64 {
            if let Some(hwcur) = early_release(&mut sw.eps[d].rx[r], &rv)? {
                free = free_slots(hwcur, fill, n);
            }
        }
        if free >= frags.len() as u64 {
            let lens: Vec<u16> = frags.iter().map(|f| f.len).collect();
            let placed = put_packet(&rv, fill, n, geom, &lens, |i, dst| {
                mem.copy_within(frags[i].off, dst, usize::from(frags[i].len))
                    .map_err(NetifError::from)
            })?;
            let port = &mut sw.ports[d];
            match placed {
                Some(next) => {
                    port.fill[r] = next;
                    port.stats.rx_packets += 1;
                    port.stats.rx_bytes += bytes;
                    wake.add(d, Dir::Rx);
                }
                None => port.stats.rx_drops += 1,
            }
            return Ok(());
        }
    }
    let port = &mut sw.ports[d];
    let Some(bl) = port.backlog.get_mut(r) else {
        port.stats.rx_drops += 1;
        return Ok(());
    };
    if !bl.has_room(frags.len(), bytes as usize, n) {
        port.stats.rx_drops += 1;
        return Ok(());
    }
    let mut data = bl.buffer();
    data.resize(bytes as usize, 0);
    let mut at = 0;
    for f in frags {
        let len = usize::from(f.len);
        mem.read_bytes(f.off, &mut data[at..at + len])?;
        at += len;
    }
    bl.push(Held {
        data,
        lens: frags.iter().map(|f| f.len).collect(),
    });
    port.stats.rx_packets += 1;
    port.stats.rx_bytes += bytes;
    wake.add(d, Dir::Rx);
    Ok(())
}

/// Free slots of an RX ring filled up to `fill` and released up to `hwcur`:
/// `[fill, hwcur - 1)`, circularly.
fn free_slots(hwcur: u32, fill: u32, n: u32) -> u64 {
    (u64::from(hwcur) + u64::from(n) - 1 - u64::from(fill)) % u64::from(n)
}

/// Writes one packet of `lens.len()` fragments into the RX slots from `fill` on (the
/// caller checked the room); `copy(i, dst)` copies fragment `i` to region offset
/// `dst`. Every destination buffer is validated first: `None` (nothing written) if a
/// slot holds an invalid one. Returns the slot after the packet.
fn put_packet(
    rv: &RingView,
    fill: u32,
    n: u32,
    geom: &BufGeom,
    lens: &[u16],
    mut copy: impl FnMut(usize, usize) -> Result<(), NetifError>,
) -> Result<Option<u32>, NetifError> {
    let next = |j: u32| if j + 1 >= n { 0 } else { j + 1 };
    let mut j = fill;
    for _ in lens {
        if geom.offset(rv.slot_buf_idx(j)?).is_none() {
            tracing::debug!(slot = j, "VALE RX slot with a bad buffer");
            return Ok(None);
        }
        j = next(j);
    }
    let count = ((lens.len() as u32) << NS_PORT_SHIFT) as u16 & NS_PORT_MASK;
    let mut j = fill;
    for (i, &len) in lens.iter().enumerate() {
        let idx = rv.slot_buf_idx(j)?;
        let dst = geom.offset(idx).ok_or_else(|| {
            NetifError::Inval(format!("VALE RX buffer {idx} changed during a sync"))
        })?;
        copy(i, dst)?;
        rv.set_slot_buf_len(j, idx, len)?;
        let more = if i + 1 < lens.len() { NS_MOREFRAG } else { 0 };
        rv.set_slot_flags(j, count | more)?;
        j = next(j);
    }
    Ok(Some(j))
}

/// Part of the rxsync of port `ep`, RX ring `ring`, after the release: moves queued
/// packets into the ring while they fit (oldest first).
pub(super) fn drain_backlog(
    sw: &mut ValeSwitch,
    ep: usize,
    ring: usize,
    mem: SharedMem,
    geom: &BufGeom,
) -> Result<(), NetifError> {
    let Some(rk) = sw.eps.get(ep).and_then(|e| e.rx.get(ring)) else {
        return Ok(());
    };
    if rk.ring_off.is_none() {
        return Ok(());
    }
    let rv = view(mem, rk)?;
    let (n, hwcur) = (rk.num_slots, rk.hwcur);
    let port = &mut sw.ports[ep];
    let Some(bl) = port.backlog.get_mut(ring) else {
        return Ok(());
    };
    while let Some(h) = bl.front() {
        let fill = port.fill[ring];
        if free_slots(hwcur, fill, n) < h.lens.len() as u64 {
            break;
        }
        let mut at = vec![0usize; h.lens.len()];
        let mut pos = 0;
        for (i, &l) in h.lens.iter().enumerate() {
            at[i] = pos;
            pos += usize::from(l);
        }
        let placed = put_packet(&rv, fill, n, geom, &h.lens, |i, dst| {
            let len = usize::from(h.lens[i]);
            mem.write_bytes(dst, &h.data[at[i]..at[i] + len])
                .map_err(NetifError::from)
        })?;
        match placed {
            Some(next) => port.fill[ring] = next,
            None => {
                port.stats.rx_drops += 1;
                port.stats.rx_packets = port.stats.rx_packets.saturating_sub(1);
            }
        }
        if let Some(h) = bl.pop() {
            bl.recycle(h.data);
        }
    }
    Ok(())
}

/// The txsync of port `ep`, TX ring `ring`.
pub(super) fn txsync(
    sw: &mut ValeSwitch,
    ep: usize,
    ring: usize,
    head: u32,
    mem: SharedMem,
    geom: BufGeom,
) -> Result<Wake, NetifError> {
    let t = sw
        .eps
        .get(ep)
        .and_then(|e| e.tx.get(ring))
        .ok_or_else(|| NetifError::NoPort(format!("VALE port {ep} TX ring {ring}")))?;
    let tv = view(mem, t)?;
    let num_slots = t.num_slots;
    let mut k = t.hwcur;
    let hdr_len = sw.ports[ep].hdr_len as usize;
    let mut wake = Wake::none();
    let mut frags = Vec::with_capacity(4);
    while k != head {
        let ok = next_packet(&tv, num_slots, &mut k, head, &geom, &mut frags)?;
        let mut eth = [0u8; ETH_HLEN];
        if !ok || !read_prefix(mem, &frags, hdr_len, &mut eth)? {
            sw.ports[ep].stats.tx_drops += 1;
            continue;
        }
        let bytes: u64 = frags.iter().map(|f| u64::from(f.len)).sum();
        let mut dst: Mac = [0; 6];
        let mut src: Mac = [0; 6];
        dst.copy_from_slice(&eth[..6]);
        src.copy_from_slice(&eth[6..12]);
        sw.table.learn(&src, ep as u16);
        let target = if is_group(&dst) {
            None
        } else {
            sw.table.lookup(&dst).map(usize::from)
        };
        if target == Some(ep) {
            sw.ports[ep].stats.tx_drops += 1;
            continue;
        }
        let st = &mut sw.ports[ep].stats;
        st.tx_packets += 1;
        st.tx_bytes += bytes;
        match target {
            Some(d) => {
                let rings = sw.eps[d].rx.len().max(1);
                deliver(sw, d, ring % rings, &frags, bytes, mem, &geom, &mut wake)?;
            }
            None => {
                // Unknown unicast, multicast and broadcast: every other port, RX ring 0.
                for d in 0..sw.eps.len() {
                    if d != ep && sw.ports[d].in_use {
                        deliver(sw, d, 0, &frags, bytes, mem, &geom, &mut wake)?;
                    }
                }
            }
        }
    }
    let t = &mut sw.eps[ep].tx[ring];
    t.hwcur = head;
    t.hwtail = t.prev(head);
    Ok(wake)
}
