//! VALE switch tests: the test acts as the clients of several ports through
//! [`RingView`], running the generic sync path like the control plane does.

use super::*;
use crate::adapter::view;
use crate::kring::Dir;
use crate::ringmem::RingView;
use crate::sync::{rxsync_ring, txsync_ring};
use crate::vale::BufGeom;
use netmap_abi::{NS_BUF_CHANGED, NS_INDIRECT, NS_MOREFRAG};

crate::testenv::test_env!();

impl Env {
    fn new() -> Self {
        Env(crate::testenv::TestEnv::with_ring_size(2, 36864, 32, 600))
    }
    /// Creates (or finds) port `name` with `rings` rings of `slots` slots and registers
    /// one user on it.
    fn open(&mut self, sw: &mut ValeSwitch, name: &str, rings: u32, slots: u32) -> usize {
        let req = PortCounts {
            tx_rings: rings,
            rx_rings: rings,
            tx_slots: slots,
            rx_slots: slots,
            ..Default::default()
        };
        let ep = sw
            .port(name, req, self.0.alloc.max_slots_per_ring(), true)
            .expect("port");
        let mem = self.0.region.shmem();
        sw.krings_create(ep, &mut self.0.alloc, mem)
            .expect("krings_create");
        sw.endpoints_mut()[ep].users += 1;
        ep
    }
    /// The last user of `ep` closes (what the control plane does).
    fn close(&mut self, sw: &mut ValeSwitch, ep: usize) {
        sw.endpoints_mut()[ep].users -= 1;
        let mem = self.0.region.shmem();
        let keep = KeepSet::new(self.0.alloc.buf_pool.objtotal());
        if sw.in_use() {
            sw.endpoint_released(ep, &mut self.0.alloc, mem, &keep);
        } else {
            sw.krings_delete(&mut self.0.alloc, mem, &keep);
        }
    }
    fn ring(&self, sw: &ValeSwitch, ep: usize, d: Dir, i: usize) -> RingView<'_> {
        view(self.mem(), &sw.endpoints()[ep].krings(d)[i]).expect("view")
    }

    /// Client side: puts `frames` (each a list of fragments) into TX ring `i` of `ep`
    /// at head, advances head/cur and runs txsync.
    fn send_frags(
        &self,
        sw: &mut ValeSwitch,
        ep: usize,
        i: usize,
        frames: &[Vec<Vec<u8>>],
    ) -> crate::sync::RingSync {
        let mem = self.mem();
        let tv = self.ring(sw, ep, Dir::Tx, i);
        let n = sw.endpoints()[ep].tx[i].num_slots;
        let mut h = tv.head().unwrap();
        for f in frames {
            for (j, frag) in f.iter().enumerate() {
                let s = tv.slot(h).unwrap();
                mem.write_bytes(self.buf_off(s.buf_idx), frag).unwrap();
                tv.set_slot_buf_len(h, s.buf_idx, frag.len() as u16)
                    .unwrap();
                let more = if j + 1 < f.len() { NS_MOREFRAG } else { 0 };
                tv.set_slot_flags(h, more).unwrap();
                h = (h + 1) % n;
            }
        }
        tv.set_head(h).unwrap();
        tv.set_cur(h).unwrap();
        txsync_ring(sw, ep, i, mem, self.lim()).expect("txsync")
    }
    /// A preloaded client's send: the frames go into TX ring 0 of `ep` and the client
    /// syncs in its own process (`InprocRing`, as the preload library does).
    fn send_inproc(
        &self,
        sw: &ValeSwitch,
        ep: usize,
        frames: &[Vec<u8>],
    ) -> crate::inproc::Outcome {
        let mem = self.mem();
        let tv = self.ring(sw, ep, Dir::Tx, 0);
        let n = sw.endpoints()[ep].tx[0].num_slots;
        let mut h = tv.head().unwrap();
        for f in frames {
            let s = tv.slot(h).unwrap();
            mem.write_bytes(self.buf_off(s.buf_idx), f).unwrap();
            tv.set_slot_buf_len(h, s.buf_idx, f.len() as u16).unwrap();
            tv.set_slot_flags(h, 0).unwrap();
            h = (h + 1) % n;
        }
        tv.set_head(h).unwrap();
        tv.set_cur(h).unwrap();
        let off = sw.endpoints()[ep].tx[0].ring_off.unwrap();
        let r = crate::inproc::InprocRing::probe(mem, off, Dir::Tx, 0).expect("a VALE ring");
        r.sync(mem, 4242, BufGeom::of(&self.0.alloc))
            .expect("in-process txsync")
    }
    fn send(&self, sw: &mut ValeSwitch, ep: usize, frames: &[Vec<u8>]) -> Wake {
        let f: Vec<Vec<Vec<u8>>> = frames.iter().map(|f| vec![f.clone()]).collect();
        let r = self.send_frags(sw, ep, 0, &f);
        assert!(!r.error);
        r.wake
    }

    /// Client side: rxsync ring `i` of `ep`, take every slot (payload, flags), release.
    fn recv_slots(&self, sw: &mut ValeSwitch, ep: usize, i: usize) -> Vec<(Vec<u8>, u16)> {
        let mem = self.mem();
        let r = rxsync_ring(sw, ep, i, mem, self.lim()).expect("rxsync");
        assert!(!r.error);
        let rv = self.ring(sw, ep, Dir::Rx, i);
        let n = sw.endpoints()[ep].rx[i].num_slots;
        let (mut h, t) = (rv.head().unwrap(), rv.tail().unwrap());
        let mut out = Vec::new();
        while h != t {
            let s = rv.slot(h).unwrap();
            let mut b = vec![0; s.len as usize];
            mem.read_bytes(self.buf_off(s.buf_idx), &mut b).unwrap();
            out.push((b, s.flags));
            h = (h + 1) % n;
        }
        rv.set_head(h).unwrap();
        rv.set_cur(h).unwrap();
        rxsync_ring(sw, ep, i, mem, self.lim()).expect("rxsync release");
        out
    }
    /// Single-slot packets received on ring `i`.
    fn recv_on(&self, sw: &mut ValeSwitch, ep: usize, i: usize) -> Vec<Vec<u8>> {
        self.recv_slots(sw, ep, i)
            .into_iter()
            .map(|(b, f)| {
                assert_eq!(f, 1 << 8, "one-slot packet flags");
                b
            })
            .collect()
    }
    fn recv(&self, sw: &mut ValeSwitch, ep: usize) -> Vec<Vec<u8>> {
        self.recv_on(sw, ep, 0)
    }
}

fn mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, n]
}
const BCAST: [u8; 6] = [0xff; 6];

fn frame(dst: [u8; 6], src: [u8; 6], tag: u8, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(
        &etherparse::Ethernet2Header {
            source: src,
            destination: dst,
            ether_type: etherparse::EtherType(0x0800),
        }
        .to_bytes(),
    );
    while f.len() < len {
        f.push(tag.wrapping_add(f.len() as u8));
    }
    f
}

#[test]
fn port_defaults_and_limits() {
    let mut sw = ValeSwitch::new("vale0");
    assert_eq!(sw.name(), "vale0");
    assert_eq!(sw.kind(), PortKind::Vale);
    let a = sw.port("a", PortCounts::default(), 2288, true).unwrap();
    let c = sw.endpoints()[a].counts;
    assert_eq!(
        (c.tx_rings, c.rx_rings, c.tx_slots, c.rx_slots),
        (1, 1, 1024, 1024)
    );
    assert_eq!((c.host_tx_rings, c.host_rx_rings), (0, 0));
    assert_eq!(sw.endpoints()[a].name, "vale0:a");
    let req = PortCounts {
        tx_rings: 40,
        rx_rings: 3,
        tx_slots: 10_000,
        rx_slots: 3000,
        host_tx_rings: 1,
        host_rx_rings: 1,
    };
    let b = sw.port("b", req, 2288, true).unwrap();
    let c = sw.endpoints()[b].counts;
    assert_eq!(
        (c.tx_rings, c.rx_rings, c.tx_slots, c.rx_slots),
        (16, 3, 2288, 2288)
    );
    assert_eq!((c.host_tx_rings, c.host_rx_rings), (0, 0));
    let c = sw.port("c", req, 8192, true).unwrap();
    assert_eq!(sw.endpoints()[c].counts.tx_slots, 4096);
    assert_eq!(sw.endpoints()[c].counts.rx_slots, 3000);
    // Existing port: found, counts unchanged.
    assert_eq!(sw.port("a", req, 2288, true).unwrap(), a);
    assert_eq!(sw.endpoints()[a].counts.tx_rings, 1);
    assert_eq!(sw.find_port("b"), Some(b));
    assert_eq!(sw.find_port("zz"), None);
    assert_eq!(
        sw.port("zz", req, 2288, false).unwrap_err().errno(),
        libc::ENXIO
    );
    assert_eq!(
        sw.list(),
        vec![
            (0, "vale0:a".to_string()),
            (1, "vale0:b".to_string()),
            (2, "vale0:c".to_string())
        ]
    );
    // Header lengths.
    assert_eq!(sw.hdr_len(a), 0);
    for l in [10, 12, 0] {
        sw.set_hdr_len(a, l, SharedMem::empty()).unwrap();
        assert_eq!(sw.hdr_len(a), l);
    }
    assert_eq!(
        sw.set_hdr_len(a, 14, SharedMem::empty())
            .unwrap_err()
            .errno(),
        libc::EINVAL
    );
    assert_eq!(
        sw.set_hdr_len(200, 10, SharedMem::empty())
            .unwrap_err()
            .errno(),
        libc::ENXIO
    );
    // A port that never got rings nor users can be removed.
    sw.remove_port(c).unwrap();
    assert_eq!(sw.find_port("c"), None);
}

#[test]
fn port_limit_and_slot_reuse() {
    let mut sw = ValeSwitch::new("vale1");
    for i in 0..MAX_PORTS_IN_USE {
        assert_eq!(
            sw.port(&format!("p{i}"), PortCounts::default(), 2288, true)
                .unwrap(),
            i
        );
    }
    let e = sw
        .port("one-more", PortCounts::default(), 2288, true)
        .unwrap_err();
    assert_eq!(e.errno(), libc::ENOMEM);
    assert_eq!(sw.ports_in_use(), 252);
    // Freeing a slot lets a new port reuse it.
    sw.remove_port(17).unwrap();
    assert_eq!(sw.list().len(), 251);
    assert!(!sw.list().iter().any(|(s, _)| *s == 17));
    assert_eq!(sw.endpoints()[17].name, "");
    assert_eq!(
        sw.port("new", PortCounts::default(), 2288, true).unwrap(),
        17
    );
    assert_eq!(sw.endpoints()[17].name, "vale1:new");
    assert!(sw.endpoints().len() <= MAX_PORT_SLOTS);
}

#[test]
fn learning_flooding_and_unicast() {
    let mut env = Env::new();
    let mut sw = ValeSwitch::new("vale0");
    let a = env.open(&mut sw, "a", 1, 16);
    let b = env.open(&mut sw, "b", 1, 16);
    let c = env.open(&mut sw, "c", 1, 16);

    // A → broadcast reaches B and C, not A.
    let f1 = frame(BCAST, mac(1), 0x10, 60);
    let w = env.send(&mut sw, a, std::slice::from_ref(&f1));
    assert!(w.contains(b, Dir::Rx) && w.contains(c, Dir::Rx));
    assert!(!w.contains(a, Dir::Rx));
    assert_eq!(env.recv(&mut sw, b), vec![f1.clone()]);
    assert_eq!(env.recv(&mut sw, c), vec![f1.clone()]);
    assert!(env.recv(&mut sw, a).is_empty());
    assert_eq!(sw.lookup(env.mem(), &mac(1)), Some(a as u16));

    // B → A (A is known): only A gets it; B is learned.
    let f2 = frame(mac(1), mac(2), 0x20, 100);
    let w = env.send(&mut sw, b, std::slice::from_ref(&f2));
    assert_eq!(w.iter().collect::<Vec<_>>(), vec![(a, Dir::Rx)]);
    assert_eq!(env.recv(&mut sw, a), vec![f2]);
    assert!(env.recv(&mut sw, c).is_empty());

    // A → B unicast: only B.
    let f3 = frame(mac(2), mac(1), 0x30, 1514);
    let w = env.send(&mut sw, a, std::slice::from_ref(&f3));
    assert_eq!(w.iter().collect::<Vec<_>>(), vec![(b, Dir::Rx)]);
    assert_eq!(env.recv(&mut sw, b), vec![f3]);
    assert!(env.recv(&mut sw, c).is_empty());
    assert!(env.recv(&mut sw, a).is_empty());

    // Unknown unicast floods to every other port.
    let f4 = frame(mac(9), mac(1), 0x40, 64);
    env.send(&mut sw, a, std::slice::from_ref(&f4));
    assert_eq!(env.recv(&mut sw, b), vec![f4.clone()]);
    assert_eq!(env.recv(&mut sw, c), vec![f4]);

    // A frame to a MAC learned on the sender itself is dropped, never looped back.
    let f5 = frame(mac(1), mac(3), 0x50, 64);
    let w = env.send(&mut sw, a, &[f5]);
    assert!(w.is_empty());
    for p in [a, b, c] {
        assert!(env.recv(&mut sw, p).is_empty());
    }
    assert_eq!(sw.port_stats(a, env.mem()).tx_drops, 1);

    // Short frames are dropped.
    env.send(&mut sw, a, &[vec![0xff; 13]]);
    assert!(env.recv(&mut sw, b).is_empty());
    assert_eq!(sw.port_stats(a, env.mem()).tx_drops, 2);

    // All TX slots are free after every sync.
    let k = &sw.endpoints()[a].tx[0];
    assert_eq!(k.hwtail, k.prev(k.hwcur));
    assert_eq!(
        env.ring(&sw, a, Dir::Tx, 0).tail().unwrap(),
        k.prev(k.hwcur)
    );

    let sa = sw.port_stats(a, env.mem());
    assert_eq!((sa.tx_packets, sa.tx_bytes), (3, 60 + 1514 + 64));
    assert_eq!((sa.rx_packets, sa.rx_bytes), (1, 100));
    let sb = sw.port_stats(b, env.mem());
    assert_eq!((sb.rx_packets, sb.rx_bytes), (3, 60 + 1514 + 64));
}

#[test]
fn ring_selection() {
    let mut env = Env::new();
    let mut sw = ValeSwitch::new("vale0");
    let a = env.open(&mut sw, "a", 3, 8);
    let b = env.open(&mut sw, "b", 2, 8);
    // Teach the switch where B is.
    env.send(&mut sw, b, &[frame(BCAST, mac(2), 0, 60)]);
    assert_eq!(env.recv(&mut sw, a).len(), 1);
    // Unicast from A's TX ring 2 lands on B's RX ring 2 % 2 = 0; from ring 1 on ring 1.
    let f = frame(mac(2), mac(1), 1, 60);
    let r = env.send_frags(&mut sw, a, 2, &[vec![f.clone()]]);
    assert!(r.wake.contains(b, Dir::Rx));
    assert_eq!(env.recv_on(&mut sw, b, 0), vec![f.clone()]);
    let g = frame(mac(2), mac(1), 2, 61);
    env.send_frags(&mut sw, a, 1, &[vec![g.clone()]]);
    assert!(env.recv_on(&mut sw, b, 0).is_empty());
    assert_eq!(env.recv_on(&mut sw, b, 1), vec![g]);
    // Broadcasts from any TX ring go to RX ring 0.
    let h = frame(BCAST, mac(1), 3, 62);
    env.send_frags(&mut sw, a, 1, &[vec![h.clone()]]);
    assert!(env.recv_on(&mut sw, b, 1).is_empty());
    assert_eq!(env.recv_on(&mut sw, b, 0), vec![h]);
}

#[test]
fn fragments() {
    let mut env = Env::new();
    let mut sw = ValeSwitch::new("vale0");
    let a = env.open(&mut sw, "a", 1, 16);
    let b = env.open(&mut sw, "b", 1, 16);
    let f0 = frame(BCAST, mac(1), 7, 100);
    let frags = vec![f0.clone(), vec![0xaa; 2048], vec![0xbb; 5]];
    let r = env.send_frags(&mut sw, a, 0, std::slice::from_ref(&frags));
    assert!(!r.error);
    let got = env.recv_slots(&mut sw, b, 0);
    let more = 3 << 8 | NS_MOREFRAG;
    assert_eq!(
        got,
        vec![
            (frags[0].clone(), more),
            (frags[1].clone(), more),
            (frags[2].clone(), 3 << 8)
        ]
    );
    assert_eq!(sw.port_stats(b, env.mem()).rx_bytes, 100 + 2048 + 5);

    // An unterminated trailing chain is dropped; the complete packet before it passes.
    let single = frame(BCAST, mac(1), 8, 60);
    let before = sw.port_stats(a, env.mem()).tx_drops;
    let tv = env.ring(&sw, a, Dir::Tx, 0);
    let n = sw.endpoints()[a].tx[0].num_slots;
    let h = tv.head().unwrap();
    let s = tv.slot(h).unwrap();
    env.mem()
        .write_bytes(env.buf_off(s.buf_idx), &single)
        .unwrap();
    tv.set_slot_buf_len(h, s.buf_idx, 60).unwrap();
    tv.set_slot_flags(h, 0).unwrap();
    let h1 = (h + 1) % n;
    let s = tv.slot(h1).unwrap();
    env.mem()
        .write_bytes(env.buf_off(s.buf_idx), &single)
        .unwrap();
    tv.set_slot_buf_len(h1, s.buf_idx, 60).unwrap();
    tv.set_slot_flags(h1, NS_MOREFRAG).unwrap();
    let h2 = (h1 + 1) % n;
    tv.set_head(h2).unwrap();
    tv.set_cur(h2).unwrap();
    let r = txsync_ring(&mut sw, a, 0, env.mem(), env.lim()).unwrap();
    assert!(!r.error);
    assert_eq!(env.recv(&mut sw, b), vec![single]);
    assert_eq!(sw.port_stats(a, env.mem()).tx_drops, before + 1);
    let k = &sw.endpoints()[a].tx[0];
    assert_eq!((k.hwcur, k.hwtail), (h2, k.prev(h2)));
}

#[test]
fn bad_slots_are_dropped() {
    let mut env = Env::new();
    let mut sw = ValeSwitch::new("vale0");
    let a = env.open(&mut sw, "a", 1, 16);
    let b = env.open(&mut sw, "b", 1, 16);
    let f = frame(BCAST, mac(1), 1, 60);
    let tv = env.ring(&sw, a, Dir::Tx, 0);
    let total = env.alloc.buf_pool.objtotal();
    // Slot 0: buffer index beyond the pool; 1: reserved buffer 1; 2: length beyond the
    // buffer; 3: NS_INDIRECT; 4: a good one with NS_BUF_CHANGED.
    let good = tv.slot(4).unwrap().buf_idx;
    env.mem().write_bytes(env.buf_off(good), &f).unwrap();
    tv.set_slot_buf_len(0, total + 5, 60).unwrap();
    tv.set_slot_buf_len(1, 1, 60).unwrap();
    tv.set_slot_buf_len(2, good, 2049).unwrap();
    tv.set_slot_buf_len(3, good, 60).unwrap();
    tv.set_slot_flags(3, NS_INDIRECT).unwrap();
    tv.set_slot_buf_len(4, good, 60).unwrap();
    tv.set_slot_flags(4, NS_BUF_CHANGED).unwrap();
    tv.set_head(5).unwrap();
    tv.set_cur(5).unwrap();
    let r = txsync_ring(&mut sw, a, 0, env.mem(), env.lim()).unwrap();
    assert!(!r.error);
    assert_eq!(env.recv(&mut sw, b), vec![f]);
    assert_eq!(sw.port_stats(a, env.mem()).tx_drops, 4);
    assert_eq!(sw.port_stats(a, env.mem()).tx_packets, 1);
    assert_eq!(tv.slot_flags(4).unwrap() & NS_BUF_CHANGED, 0);

    // A receiver that scribbled an invalid index into a slot the switch owns loses
    // the packet instead of having memory outside the pool written.
    let rv = env.ring(&sw, b, Dir::Rx, 0);
    let hwtail = sw.endpoints()[b].rx[0].hwtail;
    let orig = rv.slot(hwtail).unwrap();
    rv.set_slot_buf_len(hwtail, total + 100, 0).unwrap();
    env.send(&mut sw, a, &[frame(BCAST, mac(1), 2, 60)]);
    assert_eq!(sw.port_stats(b, env.mem()).rx_drops, 1);
    rv.set_slot(hwtail, &orig).unwrap();
    let g = frame(BCAST, mac(1), 3, 60);
    env.send(&mut sw, a, std::slice::from_ref(&g));
    assert_eq!(env.recv(&mut sw, b), vec![g]);
}

fn queued(sw: &ValeSwitch, ep: usize) -> u64 {
    sw.endpoint_stats(ep, SharedMem::empty())
        .iter()
        .find(|(k, _)| *k == "rx_queued")
        .map_or(u64::MAX, |(_, v)| *v)
}

/// A destination whose ring is full gets the packet in its backlog (as many slots as
/// the ring), moved into the ring, in order, by its next rxsyncs; beyond that packets
/// are dropped and counted. The sender never blocks.
#[test]
fn full_destination_queues_then_drops_and_counts() {
    let mut env = Env::new();
    let mut sw = ValeSwitch::new("vale0");
    let a = env.open(&mut sw, "a", 1, 16);
    let b = env.open(&mut sw, "b", 1, 8);
    // B never reads: its 8-slot RX ring holds 7 packets, the backlog 4 × 8 more.
    for round in 0..9u8 {
        let frames: Vec<Vec<u8>> = (0..5u8)
            .map(|i| frame(BCAST, mac(1), round * 10 + i, 60))
            .collect();
        let r = env.send_frags(
            &mut sw,
            a,
            0,
            &frames.iter().map(|f| vec![f.clone()]).collect::<Vec<_>>(),
        );
        assert!(!r.error);
        let k = &sw.endpoints()[a].tx[0];
        assert_eq!(k.hwtail, k.prev(k.hwcur), "the sender never waits");
    }
    let st = sw.port_stats(b, env.mem());
    assert_eq!((st.rx_packets, st.rx_drops), (39, 6));
    assert_eq!(queued(&sw, b), 32);
    assert_eq!(sw.port_stats(a, env.mem()).tx_packets, 45);
    // Everything accepted arrives, in the order sent: the first 39 packets.
    let mut got = Vec::new();
    loop {
        let g = env.recv(&mut sw, b);
        if g.is_empty() {
            break;
        }
        got.extend(g);
    }
    let want: Vec<Vec<u8>> = (0..39u8)
        .map(|i| frame(BCAST, mac(1), (i / 5) * 10 + i % 5, 60))
        .collect();
    assert_eq!(got, want);
    assert_eq!(queued(&sw, b), 0);
    // A 3-fragment packet needs 3 slots, in the ring or in the backlog: after 7
    // packets in the ring and 30 single-slot ones queued, 2 slots are left.
    let singles: Vec<Vec<u8>> = (0..37u8)
        .map(|i| frame(BCAST, mac(1), 100 + i, 60))
        .collect();
    for chunk in singles.chunks(5) {
        env.send(&mut sw, a, chunk);
    }
    let frags = vec![frame(BCAST, mac(1), 50, 60), vec![1; 10], vec![2; 10]];
    env.send_frags(&mut sw, a, 0, std::slice::from_ref(&frags));
    let st = sw.port_stats(b, env.mem());
    assert_eq!(
        (st.rx_packets, st.rx_drops),
        (39 + 37, 7),
        "no room for 3 slots"
    );
    let mut got = Vec::new();
    while got.len() < singles.len() {
        let g = env.recv(&mut sw, b);
        assert!(!g.is_empty(), "queued packets come");
        got.extend(g);
    }
    assert_eq!(got, singles);
    env.send_frags(&mut sw, a, 0, std::slice::from_ref(&frags));
    let got = env.recv_slots(&mut sw, b, 0);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].0, frags[0]);
    assert_eq!(got[2], (vec![2; 10], 3 << 8));
    assert_eq!(queued(&sw, b), 0);
}

/// A receiver that has consumed its packets (moved `head`) but whose rxsync has not
/// reached the daemon yet does not lose the next ones: a forward that finds the ring
/// full takes the release from `head`. A `head` outside `[hwcur, hwtail]` is ignored
/// (the packet is dropped as before) and the receiver's next sync re-initialises.
#[test]
fn full_destination_takes_a_release_not_yet_synced() {
    let mut env = Env::new();
    let mut sw = ValeSwitch::new("vale0");
    let a = env.open(&mut sw, "a", 1, 16);
    let b = env.open(&mut sw, "b", 1, 8);
    let burst = |env: &Env, sw: &mut ValeSwitch, tag: u8, n: u8| {
        let frames: Vec<Vec<u8>> = (0..n).map(|i| frame(BCAST, mac(1), tag + i, 60)).collect();
        env.send(sw, a, &frames);
    };
    // 7 packets fill B's 8-slot ring; B's rxsync publishes them (tail = 7).
    burst(&env, &mut sw, 0, 7);
    let r = rxsync_ring(&mut sw, b, 0, env.mem(), env.lim()).expect("rxsync");
    assert!(r.ready);
    let rv = env.ring(&sw, b, Dir::Rx, 0);
    assert_eq!(rv.tail().unwrap(), 7);
    // B consumes 5 of them but does not sync.
    rv.set_head(5).unwrap();
    rv.set_cur(5).unwrap();
    burst(&env, &mut sw, 20, 5);
    let st = sw.port_stats(b, env.mem());
    assert_eq!(
        (st.rx_packets, st.rx_drops),
        (12, 0),
        "5 slots were given back"
    );
    assert_eq!(
        sw.endpoints()[b].rx[0].hwcur,
        0,
        "the sender does not move B's hwcur: B's sync does"
    );
    // B's own sync agrees: it sees the 2 old and the 5 new packets.
    let got = env.recv(&mut sw, b);
    assert_eq!(got.len(), 7);
    assert_eq!(got[0], frame(BCAST, mac(1), 5, 60));
    assert_eq!(got[6], frame(BCAST, mac(1), 24, 60));

    // Ring full again (7 unsynced packets), then a head beyond what B was shown.
    burst(&env, &mut sw, 40, 7);
    rxsync_ring(&mut sw, b, 0, env.mem(), env.lim()).expect("rxsync");
    let k = sw.endpoints()[b].rx[0].clone();
    let bogus = (k.hwtail + 1) % k.num_slots;
    let rv = env.ring(&sw, b, Dir::Rx, 0);
    rv.set_head(bogus).unwrap();
    burst(&env, &mut sw, 60, 1);
    assert_eq!(queued(&sw, b), 1, "a bogus head releases nothing");
    assert_eq!(sw.endpoints()[b].rx[0].hwcur, k.hwcur);
    rv.set_head(8).unwrap();
    burst(&env, &mut sw, 61, 1);
    assert_eq!(queued(&sw, b), 2, "a head beyond the ring releases nothing");
    assert_eq!(sw.port_stats(b, env.mem()).rx_drops, 0);
    let r = rxsync_ring(&mut sw, b, 0, env.mem(), env.lim()).expect("rxsync");
    assert!(
        r.error,
        "the broken ring is re-initialised by the real sync"
    );
}

#[test]
fn release_frees_rings_and_reuses_slots() {
    let mut env = Env::new();
    let base = env.counts();
    let mut sw = ValeSwitch::new("vale0");
    let a = env.open(&mut sw, "a", 2, 16);
    let after_a = env.counts();
    assert_eq!(
        base.ring_free - after_a.ring_free,
        4 + 1,
        "4 rings and the switch block"
    );
    assert_eq!(base.buf_free - after_a.buf_free, 4 * 16);
    let b = env.open(&mut sw, "b", 1, 8);
    let c = env.open(&mut sw, "c", 1, 8);
    // Traffic, so RX slots hold the buffers they were filled into.
    env.send(&mut sw, a, &[frame(BCAST, mac(1), 0, 60)]);
    env.send(&mut sw, b, &[frame(mac(1), mac(2), 0, 60)]);
    assert_eq!(sw.lookup(env.mem(), &mac(2)), Some(b as u16));

    // B goes away: its rings and buffers return, its slot and MACs are forgotten.
    let before = env.counts();
    env.close(&mut sw, b);
    let after = env.counts();
    assert_eq!(after.ring_free - before.ring_free, 2);
    assert_eq!(after.buf_free - before.buf_free, 16);
    assert_eq!(sw.find_port("b"), None);
    assert_eq!(sw.lookup(env.mem(), &mac(2)), None);
    assert_eq!(
        sw.list(),
        vec![(0, "vale0:a".to_string()), (2, "vale0:c".to_string())]
    );
    // A packet to the old B MAC now floods to C only.
    let f = frame(mac(2), mac(1), 1, 60);
    env.send(&mut sw, a, std::slice::from_ref(&f));
    let got = env.recv(&mut sw, c);
    assert_eq!(got.last(), Some(&f));

    // A new port takes the free slot, with fresh rings.
    let d = env.open(&mut sw, "d", 1, 8);
    assert_eq!(d, b);
    assert_eq!(sw.endpoints()[d].name, "vale0:d");
    assert_eq!(sw.port_stats(d, env.mem()), PortStats::default());
    env.send(&mut sw, a, &[frame(BCAST, mac(1), 2, 60)]);
    assert_eq!(env.recv(&mut sw, d).len(), 1);

    // Everything closes: the pools are back where they started.
    env.close(&mut sw, a);
    env.close(&mut sw, c);
    env.close(&mut sw, d);
    assert!(!sw.in_use());
    assert_eq!(env.counts(), base);
    assert!(sw.list().is_empty());
}

#[test]
fn persistent_port_keeps_its_slot() {
    let mut env = Env::new();
    let base = env.counts();
    let mut sw = ValeSwitch::new("vale2");
    let a = env.open(&mut sw, "a", 1, 8);
    let p = env.open(&mut sw, "p", 1, 8);
    sw.set_persistent(p, true).unwrap();
    env.close(&mut sw, p);
    assert_eq!(sw.find_port("p"), Some(p));
    assert!(!sw.endpoints()[p].has_rings());
    // Floods skip a port without rings.
    assert!(env
        .send(&mut sw, a, &[frame(BCAST, mac(1), 0, 60)])
        .is_empty());
    // Reopened: fresh rings.
    let p2 = env.open(&mut sw, "p", 1, 8);
    assert_eq!(p2, p);
    assert!(sw.endpoints()[p].has_rings());
    env.close(&mut sw, p);
    env.close(&mut sw, a);
    assert_eq!(env.counts(), base);
    assert!(
        sw.remove_port(p).is_err(),
        "persistent ports are not removed"
    );
    sw.set_persistent(p, false).unwrap();
    sw.remove_port(p).unwrap();
    assert!(sw.list().is_empty());
}

#[test]
fn standalone_persistent_port() {
    let sw = ValeSwitch::standalone("per0", PortCounts::default(), 4096).unwrap();
    assert_eq!(sw.endpoints()[0].name, "per0");
    assert_eq!(sw.endpoints()[0].counts.tx_slots, 1024);
    assert_eq!(sw.endpoints()[0].counts.rx_rings, 1);
    assert!(sw.is_persistent(0) && sw.in_use());
    assert!(ValeSwitch::standalone("0123456789abcdef", PortCounts::default(), 4096).is_err());
}

#[test]
fn virtio_header_is_skipped_by_learning() {
    let mut env = Env::new();
    let mut sw = ValeSwitch::new("vale0");
    let a = env.open(&mut sw, "a", 1, 8);
    let b = env.open(&mut sw, "b", 1, 8);
    let c = env.open(&mut sw, "c", 1, 8);
    sw.set_hdr_len(a, 12, env.mem()).unwrap();
    // B is learned, then A sends a unicast to B behind a 12-byte header.
    env.send(&mut sw, b, &[frame(BCAST, mac(2), 0, 60)]);
    env.recv(&mut sw, a);
    env.recv(&mut sw, c);
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&frame(mac(2), mac(1), 1, 60));
    let w = env.send(&mut sw, a, std::slice::from_ref(&f));
    assert_eq!(w.iter().collect::<Vec<_>>(), vec![(b, Dir::Rx)]);
    assert_eq!(env.recv(&mut sw, b), vec![f], "copied as is");
    assert_eq!(sw.lookup(env.mem(), &mac(1)), Some(a as u16));
    // Shorter than header + 14 bytes: dropped.
    env.send(&mut sw, a, &[vec![0; 25]]);
    assert_eq!(sw.port_stats(a, env.mem()).tx_drops, 1);
}

#[test]
fn wake_mask() {
    let mut w = Wake::none();
    assert!(w.is_empty());
    w.add(253, Dir::Rx);
    w.add(0, Dir::Tx);
    w.add(70, Dir::Rx);
    w.add(70, Dir::Rx);
    w.add(Wake::MAX_EP, Dir::Tx);
    assert_eq!(
        w.iter().collect::<Vec<_>>(),
        vec![(0, Dir::Tx), (70, Dir::Rx), (253, Dir::Rx)]
    );
    assert_eq!(Wake::one(1, Dir::Tx).with(0, Dir::Rx).iter().count(), 2);
    let mut m = Wake::one(5, Dir::Tx);
    m.merge(w);
    assert!(m.contains(5, Dir::Tx) && m.contains(253, Dir::Rx));
}

/// A sender syncing in its own process forwards through the switch block as the
/// daemon does: flooding, learning (shared with the daemon's forwarding), unicast,
/// payloads; drops on a full ring are counted; a port whose rings are freed is left
/// alone (its state block is cleared under its fill lock).
#[test]
fn forwarding_in_the_senders_process() {
    let mut env = Env::new();
    let mut sw = ValeSwitch::new("vale0");
    let a = env.open(&mut sw, "a", 1, 16);
    let b = env.open(&mut sw, "b", 1, 8);
    let c = env.open(&mut sw, "c", 1, 16);
    // Broadcast from the client: b and c.
    let f1 = frame(BCAST, mac(1), 0x10, 60);
    let o = env.send_inproc(&sw, a, std::slice::from_ref(&f1));
    assert!(o.ready && !o.error && !o.deferred && !o.busy);
    assert_eq!(env.recv(&mut sw, b), vec![f1.clone()]);
    assert_eq!(env.recv(&mut sw, c), vec![f1.clone()]);
    assert_eq!(
        sw.lookup(env.mem(), &mac(1)),
        Some(a as u16),
        "learned by the client"
    );
    // b answers through the daemon: learned there, used by the client.
    env.send(&mut sw, b, &[frame(mac(1), mac(2), 0x20, 70)]);
    assert_eq!(env.recv(&mut sw, a).len(), 1);
    let f3 = frame(mac(2), mac(1), 0x30, 80);
    env.send_inproc(&sw, a, std::slice::from_ref(&f3));
    assert_eq!(env.recv(&mut sw, b), vec![f3]);
    assert!(
        env.recv(&mut sw, c).is_empty(),
        "unicast to a learned port only"
    );
    let st = sw.port_stats(a, env.mem());
    assert_eq!((st.tx_packets, st.tx_drops), (2, 0));
    // b's 8-slot ring holds 7: a client batch of 9 for b does not fit, and is left to
    // the daemon (whose backlog keeps it, in order).
    let burst: Vec<Vec<u8>> = (0..9u8).map(|i| frame(mac(2), mac(1), i, 60)).collect();
    let o = env.send_inproc(&sw, a, &burst);
    assert!(o.deferred, "a batch that does not fit goes to the daemon");
    let r = txsync_ring(&mut sw, a, 0, env.mem(), env.lim()).expect("daemon txsync");
    assert!(!r.error);
    let mut got = env.recv(&mut sw, b);
    got.extend(env.recv(&mut sw, b));
    assert_eq!(got, burst, "all 9, in order");
    // c goes away: a client's flood now reaches b only, and nothing is written into
    // c's former rings.
    env.close(&mut sw, c);
    let f4 = frame(BCAST, mac(1), 0x40, 60);
    env.send_inproc(&sw, a, std::slice::from_ref(&f4));
    assert_eq!(env.recv(&mut sw, b), vec![f4]);
}
