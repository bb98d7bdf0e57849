//! Copy monitor tests: a pipe pair is the monitored parent; the test plays the clients
//! of both pipe ends and of the monitor through [`RingView`], and feeds the monitor the
//! way the control plane does (kring indices before and after each parent sync).

use super::*;
use crate::pipe::{PipePair, MASTER, SLAVE};
use crate::sync::{rxsync_ring, txsync_ring};

crate::testenv::test_env!();

impl Env {
    fn new() -> Self {
        Env(crate::testenv::TestEnv::new(2, 64, 16, 300))
    }
    fn create(&mut self, ad: &mut dyn Adapter) {
        let mem = self.0.region.shmem();
        ad.krings_create(0, &mut self.0.alloc, mem)
            .expect("krings_create");
        for e in ad.endpoints_mut() {
            e.users += 1;
        }
    }
    fn delete(&mut self, ad: &mut dyn Adapter) {
        let mem = self.0.region.shmem();
        let keep = KeepSet::new(self.0.alloc.buf_pool.objtotal());
        ad.krings_delete(&mut self.0.alloc, mem, &keep);
    }
}

/// A 1×1 pipe with `slots` slots, rings created.
fn pipe(env: &mut Env, slots: u32) -> PipePair {
    let req = PortCounts {
        tx_rings: 1,
        rx_rings: 1,
        tx_slots: slots,
        rx_slots: slots,
        ..Default::default()
    };
    let mut p = PipePair::new("p", "1", req, slots, 64);
    env.create(&mut p);
    p
}

fn monitor(env: &mut Env, parent: &PortCounts, rx_slots: u32, tx: bool, rx: bool) -> MonitorPort {
    let r = |on: bool| if on { 0..1 } else { 0..0 };
    let mut m = MonitorPort::new("p{1/rt#0".into(), parent, 0, rx_slots, 64, r(tx), r(rx));
    env.create(&mut m);
    m
}

/// Client side of the writer: puts frames (lists of fragments) at head of TX ring 0 of
/// endpoint `ep`, runs txsync and feeds the monitor with `[old hwcur, new hwcur)`.
fn send(
    env: &Env,
    p: &mut PipePair,
    ep: usize,
    frames: &[Vec<&[u8]>],
    last_unterminated: bool,
    m: &mut MonitorPort,
) -> bool {
    let mem = env.mem();
    let k = &p.endpoints()[ep].tx[0];
    let tv = view(mem, k).unwrap();
    let n = k.num_slots;
    let old = k.hwcur;
    let mut h = tv.head().unwrap();
    for (fi, f) in frames.iter().enumerate() {
        for (j, frag) in f.iter().enumerate() {
            let s = tv.slot(h).unwrap();
            mem.write_bytes(env.buf_off(s.buf_idx), frag).unwrap();
            tv.set_slot_buf_len(h, s.buf_idx, frag.len() as u16)
                .unwrap();
            let last = j + 1 == f.len() && !(last_unterminated && fi + 1 == frames.len());
            tv.set_slot_flags(h, if last { 0 } else { NS_MOREFRAG })
                .unwrap();
            h = (h + 1) % n;
        }
    }
    tv.set_head(h).unwrap();
    tv.set_cur(h).unwrap();
    let r = txsync_ring(p, ep, 0, mem, env.lim()).expect("txsync");
    assert!(!r.error);
    let new = p.endpoints()[ep].tx[0].hwcur;
    m.feed(Dir::Tx, 0, &tv, n, old, new, mem).expect("feed")
}

/// Client side of a reader: rxsync RX ring 0 of `ep` (feeding the monitor with the
/// slots that became visible), take everything, release.
fn recv(
    env: &Env,
    ad: &mut dyn Adapter,
    ep: usize,
    m: Option<&mut MonitorPort>,
) -> Vec<(Vec<u8>, u16)> {
    let mem = env.mem();
    let old = ad.endpoints()[ep].rx[0].hwtail;
    let r = rxsync_ring(ad, ep, 0, mem, env.lim()).expect("rxsync");
    assert!(!r.error);
    let k = &ad.endpoints()[ep].rx[0];
    let rv = view(mem, k).unwrap();
    let n = k.num_slots;
    if let Some(m) = m {
        m.feed(Dir::Rx, 0, &rv, n, old, k.hwtail, mem)
            .expect("feed");
    }
    let (mut h, t) = (rv.head().unwrap(), rv.tail().unwrap());
    let mut out = Vec::new();
    while h != t {
        let s = rv.slot(h).unwrap();
        let mut b = vec![0; s.len as usize];
        mem.read_bytes(env.buf_off(s.buf_idx), &mut b).unwrap();
        out.push((b, s.flags));
        h = (h + 1) % n;
    }
    rv.set_head(h).unwrap();
    rv.set_cur(h).unwrap();
    rxsync_ring(ad, ep, 0, mem, env.lim()).expect("rxsync release");
    out
}

fn one(frames: &[&'static [u8]]) -> Vec<Vec<&'static [u8]>> {
    frames.iter().map(|f| vec![*f]).collect()
}

#[test]
fn counts_follow_the_parent() {
    let parent = PortCounts {
        tx_rings: 3,
        rx_rings: 2,
        tx_slots: 512,
        rx_slots: 256,
        ..Default::default()
    };
    let m = MonitorPort::new("x/r#0".into(), &parent, 0, 0, 2288, 0..0, 0..2);
    let c = m.endpoints()[0].counts;
    assert_eq!(m.kind(), PortKind::Monitor);
    assert_eq!((c.tx_rings, c.rx_rings), (1, 3));
    assert_eq!((c.tx_slots, c.rx_slots), (512, 256));
    assert_eq!((c.host_tx_rings, c.host_rx_rings), (0, 0));
    let m = MonitorPort::new("x/r#1".into(), &parent, 10, 9000, 2288, 0..0, 0..2);
    let c = m.endpoints()[0].counts;
    assert_eq!((c.tx_slots, c.rx_slots), (10, 2288), "requested, capped");
    assert!(m.watches(Dir::Rx, 1));
    assert!(!m.watches(Dir::Rx, 2));
    assert!(!m.watches(Dir::Tx, 0));
}

#[test]
fn tx_copies_carry_txmon_and_rx_copies_do_not() {
    let mut env = Env::new();
    let before = env.counts();
    let mut p = pipe(&mut env, 16);
    let pc = p.endpoints()[MASTER].counts;
    let mut m = monitor(&mut env, &pc, 0, true, true);
    let mut sm = monitor(&mut env, &pc, 0, false, true);

    assert!(send(
        &env,
        &mut p,
        MASTER,
        &one(&[b"one", b"two!"]),
        false,
        &mut m
    ));
    let got = recv(&env, &mut m, 0, None);
    assert_eq!(
        got,
        vec![(b"one".to_vec(), NS_TXMON), (b"two!".to_vec(), NS_TXMON)]
    );
    // The slave reads them: an RX copy for the monitor of the slave.
    let got = recv(&env, &mut p, SLAVE, Some(&mut sm));
    assert_eq!(got.len(), 2);
    let seen = recv(&env, &mut sm, 0, None);
    assert_eq!(seen, vec![(b"one".to_vec(), 0), (b"two!".to_vec(), 0)]);
    assert_eq!(sm.monitor_stats().rx_frames, 2);
    assert_eq!(m.monitor_stats().tx_frames, 2);
    // A TX-only monitor ignores RX.
    let mut tx_only = MonitorPort::new("t".into(), &pc, 0, 0, 64, 0..1, 0..0);
    env.create(&mut tx_only);
    let rv = view(env.mem(), &p.endpoints()[SLAVE].rx[0]).unwrap();
    assert!(!tx_only.feed(Dir::Rx, 0, &rv, 16, 0, 2, env.mem()).unwrap());
    assert!(recv(&env, &mut tx_only, 0, None).is_empty());

    for ad in [&mut tx_only as &mut dyn Adapter, &mut m, &mut sm, &mut p] {
        env.delete(ad);
    }
    assert_eq!(env.counts(), before);
}

#[test]
fn fragment_chains_are_copied_whole_even_across_syncs() {
    let mut env = Env::new();
    let mut p = pipe(&mut env, 16);
    let pc = p.endpoints()[MASTER].counts;
    let mut m = monitor(&mut env, &pc, 0, true, false);
    // A 2-fragment frame, then the first 2 fragments of a 3-fragment one.
    let frames = vec![vec![&b"a1"[..], b"a2"], vec![&b"b1"[..], b"b2"]];
    assert!(send(&env, &mut p, MASTER, &frames, true, &mut m));
    let got = recv(&env, &mut m, 0, None);
    assert_eq!(
        got,
        vec![
            (b"a1".to_vec(), NS_TXMON | NS_MOREFRAG),
            (b"a2".to_vec(), NS_TXMON)
        ]
    );
    // The end of the chain arrives with the next sync.
    assert!(send(&env, &mut p, MASTER, &one(&[b"b3"]), false, &mut m));
    let got = recv(&env, &mut m, 0, None);
    assert_eq!(
        got,
        vec![
            (b"b1".to_vec(), NS_TXMON | NS_MOREFRAG),
            (b"b2".to_vec(), NS_TXMON | NS_MOREFRAG),
            (b"b3".to_vec(), NS_TXMON)
        ]
    );
    assert_eq!(m.monitor_stats().drops, 0);
    env.delete(&mut m);
    env.delete(&mut p);
}

#[test]
fn a_full_monitor_ring_drops_and_counts() {
    let mut env = Env::new();
    let before = env.counts();
    let mut p = pipe(&mut env, 16);
    let pc = p.endpoints()[MASTER].counts;
    // 4 slots: room for 3.
    let mut m = monitor(&mut env, &pc, 4, true, false);
    assert_eq!(m.endpoints()[0].rx[0].num_slots, 4);
    send(
        &env,
        &mut p,
        MASTER,
        &one(&[b"1", b"2", b"3", b"4", b"5"]),
        false,
        &mut m,
    );
    assert_eq!(m.monitor_stats().drops, 2);
    // A 2-slot frame with 1 free slot (after releasing 1): dropped whole.
    let got = recv(&env, &mut m, 0, None);
    assert_eq!(got.len(), 3);
    // The monitor's client released everything: room for 3 again; send 2+2 fragments.
    let frames = vec![vec![&b"x1"[..], b"x2"], vec![&b"y1"[..], b"y2"]];
    send(&env, &mut p, MASTER, &frames, false, &mut m);
    assert_eq!(m.monitor_stats().drops, 3);
    let got = recv(&env, &mut m, 0, None);
    assert_eq!(
        got,
        vec![
            (b"x1".to_vec(), NS_TXMON | NS_MOREFRAG),
            (b"x2".to_vec(), NS_TXMON)
        ]
    );
    // The parent never noticed: the slave got everything.
    assert_eq!(recv(&env, &mut p, SLAVE, None).len(), 9);
    env.delete(&mut m);
    env.delete(&mut p);
    assert_eq!(env.counts(), before);
}

#[test]
fn bad_buffers_and_bad_ranges_never_panic() {
    let mut env = Env::new();
    let mut p = pipe(&mut env, 8);
    let pc = p.endpoints()[MASTER].counts;
    let mut m = monitor(&mut env, &pc, 0, true, true);
    let mem = env.mem();
    let tv = view(mem, &p.endpoints()[MASTER].tx[0]).unwrap();
    // A source slot naming buffer 0 or one beyond the pool: the frame is a drop.
    tv.set_slot_buf_len(0, 0, 10).unwrap();
    tv.set_slot_buf_len(1, 999_999, 10).unwrap();
    assert!(!m.feed(Dir::Tx, 0, &tv, 8, 0, 2, mem).unwrap());
    assert_eq!(m.monitor_stats().drops, 2);
    // Ranges outside the ring, unwatched rings: ignored.
    assert!(!m.feed(Dir::Tx, 0, &tv, 8, 9, 2, mem).unwrap());
    assert!(!m.feed(Dir::Tx, 0, &tv, 8, 0, 8, mem).unwrap());
    assert!(!m.feed(Dir::Tx, 5, &tv, 8, 0, 2, mem).unwrap());
    // The monitor's client scribbles a bad buffer into its RX ring: a drop, no panic.
    let mv = view(mem, &m.endpoints()[0].rx[0]).unwrap();
    mv.set_slot_buf_len(0, 1, 0).unwrap();
    tv.set_slot_buf_len(2, tv.slot_buf_idx(3).unwrap(), 4)
        .unwrap();
    tv.set_slot_flags(2, 0).unwrap();
    assert!(!m.feed(Dir::Tx, 0, &tv, 8, 2, 3, mem).unwrap());
    assert_eq!(m.monitor_stats().drops, 3);
    // A monitor whose rings are gone ignores everything.
    env.delete(&mut m);
    let mem = env.mem();
    let tv = view(mem, &p.endpoints()[MASTER].tx[0]).unwrap();
    assert!(!m.feed(Dir::Tx, 0, &tv, 8, 2, 3, mem).unwrap());
    env.delete(&mut p);
}
