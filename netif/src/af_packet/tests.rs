//! Tests of the AF_PACKET port.
//!
//! The pure helpers (TPACKET_V3 block walking, buffer geometry) run anywhere. The
//! data-path tests need a veth pair; each re-runs itself (the test binary, filtered to
//! that one test) under `unshare --net --mount` so the pair lives in a private network
//! namespace with its own sysfs and nothing touches the host's interfaces. They need
//! root and fail loudly without it.

use super::rx::{self, BlockCursor, Frame};
use super::socket::PacketSocket;
use super::*;
use crate::ringmem::RingView;
use crate::sync::{rxsync_ring, txsync_ring};
use netmap_abi::NS_MOREFRAG;
use netmap_pool::Region;
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------
// Pure helpers

fn small_region(len: usize) -> Region {
    Region::create(len, false).expect("memfd region")
}

/// Writes a TPACKET_V3 block with the given frames the way the kernel lays it out.
fn synth_block(m: &SharedMem, block: usize, frames: &[&[u8]], status: u32) -> Vec<usize> {
    let mut off = 64; // first frame after the block descriptor (+ alignment)
    let mut starts = Vec::new();
    m.write_u32(block + 12, frames.len() as u32).unwrap();
    m.write_u32(block + 16, off as u32).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let mac = 82usize; // TPACKET_ALIGN(68 + 16) - 14, as the kernel does
        let next = if i + 1 == frames.len() {
            0
        } else {
            (mac + f.len()).next_multiple_of(16)
        };
        let h = block + off;
        m.write_u32(h, next as u32).unwrap();
        m.write_u32(h + 12, f.len() as u32).unwrap();
        m.write_u32(h + 16, f.len() as u32 + 4).unwrap();
        m.write_u16(h + 24, mac as u16).unwrap();
        m.write_bytes(h + mac, f).unwrap();
        starts.push(h + mac);
        off += next;
    }
    m.write_u32(block + 20, off as u32).unwrap();
    m.store_u32_release(block + 8, status).unwrap();
    starts
}

#[test]
fn block_walk() {
    let r = small_region(64 * 1024);
    let m = r.shmem();
    let bs = 16 * 1024;
    let frames: [&[u8]; 3] = [&[1; 60], &[2; 1514], &[3; 9]];
    // Block 1 still belongs to the kernel.
    synth_block(&m, bs, &frames, libc::TP_STATUS_KERNEL);
    assert_eq!(rx::open_block(&m, bs, bs).unwrap(), None);
    let starts = synth_block(
        &m,
        0,
        &frames,
        libc::TP_STATUS_USER | libc::TP_STATUS_BLK_TMO,
    );
    let mut c = rx::open_block(&m, 0, bs).unwrap().expect("user block");
    assert_eq!(
        c,
        BlockCursor {
            block: 0,
            pkt: 64,
            left: 3
        }
    );
    for (i, f) in frames.iter().enumerate() {
        let (fr, next) = rx::peek_frame(&m, &c, bs).unwrap().expect("frame");
        assert_eq!(
            fr,
            Frame {
                data: starts[i],
                snaplen: f.len() as u32,
                len: f.len() as u32 + 4
            }
        );
        let mut got = vec![0; f.len()];
        m.read_bytes(fr.data, &mut got).unwrap();
        assert_eq!(&got[..], *f);
        // Peeking does not consume.
        assert_eq!(rx::peek_frame(&m, &c, bs).unwrap().unwrap().0, fr);
        rx::advance(&mut c, next);
    }
    assert_eq!(rx::peek_frame(&m, &c, bs).unwrap(), None);
    rx::release_block(&m, 0).unwrap();
    assert_eq!(m.read_u32(8).unwrap(), libc::TP_STATUS_KERNEL);
    assert_eq!(rx::open_block(&m, 0, bs).unwrap(), None);

    // Corrupt headers are reported, never followed outside the block.
    synth_block(&m, 0, &frames, libc::TP_STATUS_USER);
    m.write_u16(64 + 24, 0xfff0).unwrap(); // mac offset past the block
    let c = rx::open_block(&m, 0, bs).unwrap().unwrap();
    assert!(rx::peek_frame(&m, &c, bs).is_err());
    m.write_u32(16, bs as u32).unwrap(); // first frame past the block
    assert!(rx::open_block(&m, 0, bs).is_err());
    let c = BlockCursor {
        block: 0,
        pkt: bs - 8,
        left: 1,
    };
    assert!(rx::peek_frame(&m, &c, bs).is_err());
}

#[test]
fn buffer_geometry() {
    let g = BufGeom {
        pool_offset: 4096,
        size: 2048,
        total: 10,
    };
    assert_eq!(g.offset(0), None);
    assert_eq!(g.offset(1), None);
    assert_eq!(g.offset(2), Some(4096 + 4096));
    assert_eq!(g.offset(9), Some(4096 + 9 * 2048));
    assert_eq!(g.offset(10), None);
    assert_eq!(g.offset(u32::MAX), None);
}

#[test]
fn host_filter_shape() {
    let f = rx::host_filter(7);
    // Two accept/drop returns, jumps land inside the program.
    assert_eq!(f[4].code, 0x06);
    assert_eq!(
        f[5],
        socket::SockFilter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0
        }
    );
    assert_eq!(1 + 1 + usize::from(f[1].jf), 5);
    assert_eq!(3 + 1 + usize::from(f[3].jt), 5);
    assert_eq!(f[3].k, 7);
}

#[test]
fn missing_interface() {
    assert!(!interface_exists("nmtest-none0"));
    assert!(!interface_exists("bad/name"));
    assert!(interface_exists("lo"));
    let e = AfPacketPort::open("nmtest-none0", &NicConfig::default(), 2288).unwrap_err();
    assert_eq!(e.errno(), libc::ENXIO);
}

// ---------------------------------------------------------------------------------
// Network-namespace harness

const IN_NETNS: &str = "NETMAPD_AF_PACKET_NETNS";

/// Runs `body` inside a private network + mount namespace (a child process running
/// only the test `name`); in the child, runs it directly.
fn in_netns(name: &str, body: fn()) {
    if std::env::var_os(IN_NETNS).is_some() {
        body();
        return;
    }
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX);
    assert_eq!(
        uid, 0,
        "the af_packet veth tests need root (unshare of a network namespace, veth, AF_PACKET); \
         run them as root — they are never skipped"
    );
    let path = module_path!().split_once("::").map_or("", |(_, p)| p);
    let test = format!("{path}::{name}");
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new("unshare")
        .args([
            "--net",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
        ])
        .arg("mount -t sysfs sysfs /sys && exec \"$0\" \"$@\"")
        .arg(exe)
        .args([test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(IN_NETNS, "1")
        .output()
        .expect("running unshare(1)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(
        out.status.success(),
        "{test} failed in its network namespace: {}",
        out.status
    );
    assert!(
        stdout.contains("1 passed"),
        "{test} did not run in the namespace:\n{stdout}"
    );
}

fn sh(cmd: &str) {
    let st = Command::new("sh").args(["-c", cmd]).status().expect("sh");
    assert!(st.success(), "`{cmd}` failed: {st}");
}

/// Creates va <-> vb, both up; no IPv6 chatter on them.
fn veth(mtu: Option<u32>) {
    for p in ["all", "default"] {
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{p}/disable_ipv6"), "1");
    }
    sh("ip link add va type veth peer name vb");
    if let Some(m) = mtu {
        sh(&format!("ip link set va mtu {m} && ip link set vb mtu {m}"));
    }
    sh("ip link set va up && ip link set vb up");
}

crate::testenv::test_env!();

impl Env {
    fn new() -> Self {
        Env(crate::testenv::TestEnv::new(1, 1024, 16, 12_000))
    }
    fn create(&mut self, p: &mut AfPacketPort) {
        let mem = self.0.region.shmem();
        p.krings_create(0, &mut self.0.alloc, mem)
            .expect("krings_create");
    }
    fn delete(&mut self, p: &mut AfPacketPort) {
        let mem = self.0.region.shmem();
        p.krings_delete(&mut self.0.alloc, mem, &crate::KeepSet::default());
    }
}

fn ring<'e>(env: &'e Env, p: &AfPacketPort, d: Dir, i: usize) -> RingView<'e> {
    let k = &p.endpoints()[0].krings(d)[i];
    RingView::new(env.mem(), k.ring_off.expect("ring exists"), k.num_slots)
}

/// Test frame: broadcast, EtherType 0x88b5, a 4-byte sequence number, then a pattern.
fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = etherparse::Ethernet2Header {
        source: [0x02, 0, 0, 0, 0, 1],
        destination: [0xff; 6],
        ether_type: etherparse::EtherType(0x88b5),
    }
    .to_bytes()
    .to_vec();
    f.extend_from_slice(&seq.to_be_bytes());
    let mut x = seq.wrapping_mul(2_654_435_761);
    while f.len() < len {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        f.push((x >> 16) as u8);
    }
    f.truncate(len);
    f
}

fn is_test_frame(f: &[u8]) -> Option<u32> {
    let h = etherparse::Ethernet2HeaderSlice::from_slice(f).ok()?;
    (f.len() >= 18 && h.ether_type() == etherparse::EtherType(0x88b5))
        .then(|| u32::from_be_bytes([f[14], f[15], f[16], f[17]]))
}

/// Client side: writes `f` at the TX ring's head (split into buffer-sized fragments
/// chained with NS_MOREFRAG) and advances head/cur. False if the ring lacks room.
fn put_tx(env: &Env, rv: &RingView, n: u32, f: &[u8]) -> bool {
    let bsz = env.alloc.buf_size() as usize;
    let head = rv.head().unwrap();
    let tail = rv.tail().unwrap();
    let space = ((tail + n - head) % n) as usize;
    let chunks: Vec<&[u8]> = f.chunks(bsz).collect();
    if chunks.len() > space {
        return false;
    }
    let mut s = head;
    for (j, c) in chunks.iter().enumerate() {
        let idx = rv.slot_buf_idx(s).unwrap();
        env.mem()
            .write_bytes(env.alloc.buf_offset(idx).unwrap(), c)
            .unwrap();
        rv.set_slot_buf_len(s, idx, c.len() as u16).unwrap();
        let more = if j + 1 < chunks.len() { NS_MOREFRAG } else { 0 };
        rv.set_slot_flags(s, more).unwrap();
        s = (s + 1) % n;
    }
    rv.set_head(s).unwrap();
    rv.set_cur(s).unwrap();
    true
}

/// A received packet: its bytes and the (len, flags) of each slot.
struct Pkt {
    data: Vec<u8>,
    slots: Vec<(u16, u16)>,
}

/// Client side: takes every packet in `[head, tail)` and releases the slots.
fn take_rx(env: &Env, rv: &RingView, n: u32) -> Vec<Pkt> {
    let mut out = Vec::new();
    let mut cur = Pkt {
        data: Vec::new(),
        slots: Vec::new(),
    };
    let mut s = rv.head().unwrap();
    let tail = rv.tail().unwrap();
    while s != tail {
        let sl = rv.slot(s).unwrap();
        let mut b = vec![0; usize::from(sl.len)];
        env.mem()
            .read_bytes(env.alloc.buf_offset(sl.buf_idx).unwrap(), &mut b)
            .unwrap();
        cur.data.extend_from_slice(&b);
        cur.slots.push((sl.len, sl.flags));
        if sl.flags & NS_MOREFRAG == 0 {
            out.push(std::mem::replace(
                &mut cur,
                Pkt {
                    data: Vec::new(),
                    slots: Vec::new(),
                },
            ));
        }
        s = (s + 1) % n;
    }
    assert!(cur.slots.is_empty(), "a packet was split across the tail");
    rv.set_head(tail).unwrap();
    rv.set_cur(tail).unwrap();
    out
}

fn txsync(env: &Env, p: &mut AfPacketPort, i: usize) -> crate::sync::RingSync {
    txsync_ring(p, 0, i, env.mem(), env.lim()).expect("txsync_ring")
}

/// Syncs TX ring `i` until a sync reports an error (true) or 5 s passed: the kick
/// runs in the ring's kicker thread, so its failure shows in a later txsync.
fn txsync_fails(env: &Env, p: &mut AfPacketPort, i: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if txsync(env, p, i).error {
            return true;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    false
}

fn rxsync(env: &Env, p: &mut AfPacketPort, i: usize) -> crate::sync::RingSync {
    rxsync_ring(p, 0, i, env.mem(), env.lim()).expect("rxsync_ring")
}

/// Syncs RX ring `i` until `want` test frames were collected (other frames are
/// ignored) or 5 s passed.
fn recv_test_frames(env: &Env, p: &mut AfPacketPort, i: usize, want: usize) -> Vec<Pkt> {
    recv_within(env, p, i, want, Duration::from_secs(5))
}

/// Test frames arriving on RX ring `i` within 100 ms (for "nothing arrives" checks;
/// the TPACKET block retire timeout is 1 ms).
fn recv_none(env: &Env, p: &mut AfPacketPort, i: usize) -> Vec<Pkt> {
    recv_within(env, p, i, 1, Duration::from_millis(100))
}

fn recv_within(env: &Env, p: &mut AfPacketPort, i: usize, want: usize, wait: Duration) -> Vec<Pkt> {
    let n = p.endpoints()[0].rx[i].num_slots;
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < deadline {
        let r = rxsync(env, p, i);
        assert!(!r.error, "rxsync reported an error");
        let rv = ring(env, p, Dir::Rx, i);
        let new = take_rx(env, &rv, n);
        if new.is_empty() {
            std::thread::sleep(Duration::from_micros(200));
        }
        got.extend(new.into_iter().filter(|k| is_test_frame(&k.data).is_some()));
    }
    got
}

/// Fills TX ring `i` with `frames` (syncing whenever the ring is full) and syncs.
fn send_frames(env: &Env, p: &mut AfPacketPort, i: usize, frames: &[Vec<u8>]) {
    let n = p.endpoints()[0].tx[i].num_slots;
    let deadline = Instant::now() + Duration::from_secs(5);
    for f in frames {
        loop {
            let rv = ring(env, p, Dir::Tx, i);
            if put_tx(env, &rv, n, f) {
                break;
            }
            assert!(!txsync(env, p, i).error, "txsync reported an error");
            assert!(Instant::now() < deadline, "TX ring never drained");
        }
    }
    assert!(!txsync(env, p, i).error, "txsync reported an error");
}

// ---------------------------------------------------------------------------------
// Data-path tests (each in its own network namespace)

#[test]
fn veth_traffic() {
    in_netns("veth_traffic", || {
        veth(None);
        let mut env = Env::new();
        let initial = env.counts();
        let cfg = NicConfig::default();
        let mut va =
            AfPacketPort::open("va", &cfg, env.alloc.max_slots_per_ring()).expect("open va");
        let mut vb =
            AfPacketPort::open("vb", &cfg, env.alloc.max_slots_per_ring()).expect("open vb");
        assert_eq!(va.kind(), PortKind::Nic);
        assert_eq!(va.ifname(), "va");
        assert_eq!(va.mtu(), 1500);
        assert_eq!(
            va.info().rx_queues,
            1,
            "veth has one queue (read from sysfs)"
        );
        let ep = &va.endpoints()[0];
        assert_eq!(
            ep.counts,
            PortCounts {
                tx_rings: 1,
                rx_rings: 1,
                tx_slots: 1024,
                rx_slots: 1024,
                host_tx_rings: 1,
                host_rx_rings: 1
            }
        );
        assert_eq!((ep.tx.len(), ep.rx.len()), (2, 2));
        assert_eq!((va.host_tx_ring(), va.host_rx_ring()), (1, 1));
        assert_eq!((ep.tx[1].id, ep.rx[1].id), (1, 1));
        assert!(va.event_fds().is_empty(), "no sockets before krings_create");

        env.create(&mut va);
        env.create(&mut vb);
        assert!(va.endpoints()[0].has_rings());
        let fds = va.event_fds();
        assert_eq!(fds.iter().filter(|f| f.2 == Dir::Rx).count(), 2);
        // The TX kicker's eventfd (the TX socket itself is not watched).
        assert_eq!(fds.iter().filter(|f| f.2 == Dir::Tx).count(), 1);
        // Every ring took a ring object and 1024 buffers.
        let c = env.counts();
        assert_eq!(initial.ring_free - c.ring_free, 8);
        assert_eq!(initial.buf_free - c.buf_free, 8 * 1024);

        // 10 000 frames va -> vb, paced to what vb's rings hold.
        let total = 10_000u32;
        let mut seq = 0;
        let mut bytes = 0u64;
        while seq < total {
            let batch: Vec<Vec<u8>> = (seq..(seq + 200).min(total))
                .map(|s| frame(s, 60 + (s as usize * 37) % 1455))
                .collect();
            bytes += batch.iter().map(|f| f.len() as u64).sum::<u64>();
            let t0 = Instant::now();
            send_frames(&env, &mut va, 0, &batch);
            let t1 = Instant::now();
            let got = recv_test_frames(&env, &mut vb, 0, batch.len());
            if seq < 1000 {
                eprintln!("TIMING send {:?} recv {:?}", t1 - t0, t1.elapsed());
            }
            assert_eq!(got.len(), batch.len(), "frames lost after seq {seq}");
            for (g, want) in got.iter().zip(&batch) {
                assert_eq!(
                    g.data,
                    *want,
                    "frame {} corrupted",
                    is_test_frame(want).unwrap()
                );
                assert_eq!(g.slots, vec![(want.len() as u16, 0)]);
            }
            seq += batch.len() as u32;
        }
        // Completions let hwtail catch up: everything sent, ring free again.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            txsync(&env, &mut va, 0);
            let k = &va.endpoints()[0].tx[0];
            if k.hwtail == k.prev(k.hwcur) {
                break;
            }
            assert!(Instant::now() < deadline, "TX completions never arrived");
            std::thread::sleep(Duration::from_millis(1));
        }
        let ca = va.counters();
        let cb = vb.counters();
        assert_eq!(
            (ca.tx_packets, ca.tx_bytes, ca.tx_errors),
            (u64::from(total), bytes, 0)
        );
        assert!(cb.rx_packets >= u64::from(total));
        assert_eq!(cb.rx_drops, 0);

        // The host RX ring shows what the host sends through va, never va's own TX.
        let host = va.host_rx_ring();
        let mine = recv_none(&env, &mut va, host);
        assert!(
            mine.is_empty(),
            "the port's own transmissions reached its host RX ring"
        );
        let raw = PacketSocket::new(0).unwrap();
        raw.bind(va.info().ifindex, 0).unwrap();
        let hf = frame(0xabcd, 3000 - 14);
        assert_eq!(raw.send(&hf[..1400]).unwrap(), 1400);
        let got = recv_test_frames(&env, &mut va, host, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, hf[..1400]);
        // The host frame also went out on the wire.
        let got = recv_test_frames(&env, &mut vb, 0, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, hf[..1400]);
        // Nothing from the host reached va's hardware RX ring.
        assert!(recv_none(&env, &mut va, 0).is_empty());
        assert_eq!(va.counters().host_rx_packets, 1);

        // Host TX ring: completed at once, dropped, counted.
        let htx = va.host_tx_ring();
        let rv = ring(&env, &va, Dir::Tx, htx);
        assert!(put_tx(&env, &rv, 1024, &frame(7, 100)));
        assert!(!txsync(&env, &mut va, htx).error);
        let k = &va.endpoints()[0].tx[htx];
        assert_eq!((k.hwcur, k.hwtail), (1, 0));
        assert_eq!(rv.tail().unwrap(), 0);
        assert_eq!(va.counters().host_tx_drops, 1);
        assert!(recv_none(&env, &mut vb, 0).is_empty());

        env.delete(&mut va);
        env.delete(&mut vb);
        assert_eq!(env.counts(), initial, "krings_delete returned everything");
        assert!(va.event_fds().is_empty());
        // Re-creation works after a delete.
        env.create(&mut va);
        send_frames(&env, &mut va, 0, &[frame(1, 64)]);
        env.delete(&mut va);
        assert_eq!(env.counts(), initial);
    });
}

/// A client that keeps the TX ring full gets its slots back in completion reports of
/// at least half the TX frame ring, or all at once when nothing is left in flight;
/// every frame is transmitted and every slot comes back.
#[test]
fn veth_tx_completion_reports() {
    in_netns("veth_tx_completion_reports", || {
        veth(None);
        let mut env = Env::new();
        let cfg = NicConfig::default();
        let mut va =
            AfPacketPort::open("va", &cfg, env.alloc.max_slots_per_ring()).expect("open va");
        env.create(&mut va);
        let n = va.endpoints()[0].tx[0].num_slots;
        let report = super::tx::TxGeom::new(va.mtu(), n).report_every();
        assert!(report > 1 && report < n, "report every {report} of {n}");
        let total = 50_000u32;
        let (mut sent, mut reports, mut small) = (0u32, 0u32, 0u32);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let rv = ring(&env, &va, Dir::Tx, 0);
            // Slots handed over by earlier syncs and not yet back (the TX frame ring
            // is larger than the netmap ring, so a sync takes every queued slot).
            let before = rv.tail().unwrap();
            let in_flight = (rv.head().unwrap() + n - before - 1) % n;
            while sent < total && put_tx(&env, &rv, n, &frame(sent, 60)) {
                sent += 1;
            }
            assert!(!txsync(&env, &mut va, 0).error, "txsync reported an error");
            let rv = ring(&env, &va, Dir::Tx, 0);
            let (tail, head) = (rv.tail().unwrap(), rv.head().unwrap());
            let freed = (tail + n - before) % n;
            if freed > 0 {
                reports += 1;
                assert!(
                    freed >= report || freed == in_flight,
                    "a report of {freed} slots (less than {report}) with {} of {in_flight} \
                     still in flight",
                    in_flight - freed
                );
                if freed < report {
                    small += 1;
                }
            }
            if sent == total && (tail + 1) % n == head {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "TX ring never drained ({sent} queued)"
            );
            std::thread::sleep(Duration::from_micros(100));
        }
        let c = va.counters();
        assert_eq!((c.tx_packets, c.tx_errors), (u64::from(total), 0));
        println!("{reports} completion reports for {total} frames, {small} of them final drains");
        env.delete(&mut va);
    });
}

#[test]
fn veth_jumbo_and_bad_slots() {
    in_netns("veth_jumbo_and_bad_slots", || {
        veth(Some(9000));
        let mut env = Env::new();
        let initial = env.counts();
        let cfg = NicConfig {
            slots: 256,
            ..Default::default()
        };
        let max = env.alloc.max_slots_per_ring();
        let mut va = AfPacketPort::open("va", &cfg, max).expect("open va");
        let mut vb = AfPacketPort::open("vb", &cfg, max).expect("open vb");
        assert_eq!(va.mtu(), 9000);
        assert_eq!(va.endpoints()[0].counts.tx_slots, 256);
        env.create(&mut va);
        env.create(&mut vb);

        // 4000 bytes: two slots each way, NS_MOREFRAG on the first.
        let f = frame(1, 4000);
        send_frames(&env, &mut va, 0, std::slice::from_ref(&f));
        let got = recv_test_frames(&env, &mut vb, 0, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, f);
        assert_eq!(got[0].slots, vec![(2048, NS_MOREFRAG), (1952, 0)]);
        // A full 9000-byte-MTU frame: five slots.
        let f = frame(2, 9014);
        send_frames(&env, &mut va, 0, std::slice::from_ref(&f));
        let got = recv_test_frames(&env, &mut vb, 0, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, f);
        assert_eq!(got[0].slots.len(), 5);
        assert_eq!(va.counters().tx_errors, 0);
        // An untagged frame 4 bytes beyond MTU + Ethernet header: only a VLAN tag may
        // use those bytes, so it goes out cut to 9014 bytes and counts as an error.
        let f = frame(100, 9018);
        send_frames(&env, &mut va, 0, std::slice::from_ref(&f));
        let got = recv_test_frames(&env, &mut vb, 0, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, f[..9014]);
        assert_eq!(va.counters().tx_errors, 1);

        // TX slot with an invalid buffer index: dropped, counted, slot completed.
        let rv = ring(&env, &va, Dir::Tx, 0);
        let h = rv.head().unwrap();
        let good = rv.slot_buf_idx(h).unwrap();
        assert!(put_tx(&env, &rv, 256, &frame(3, 100)));
        rv.set_slot_buf_len(h, 999_999, 100).unwrap();
        assert!(put_tx(&env, &rv, 256, &frame(4, 100)));
        assert!(!txsync(&env, &mut va, 0).error);
        rv.set_slot_buf_len(h, good, 0).unwrap();
        let got = recv_test_frames(&env, &mut vb, 0, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(is_test_frame(&got[0].data), Some(4));
        assert_eq!(va.counters().tx_errors, 2);

        // RX slot with an invalid buffer index: handed back empty, frame goes to the next.
        let rx = ring(&env, &vb, Dir::Rx, 0);
        let t = vb.endpoints()[0].rx[0].hwtail;
        let good = rx.slot_buf_idx(t).unwrap();
        rx.set_slot_buf_len(t, 1, 0).unwrap();
        send_frames(&env, &mut va, 0, &[frame(5, 300)]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while vb.endpoints()[0].rx[0].hwtail == t || vb.endpoints()[0].rx[0].hwtail == t + 1 {
            assert!(!rxsync(&env, &mut vb, 0).error);
            assert!(Instant::now() < deadline, "frame never arrived");
            std::thread::sleep(Duration::from_micros(200));
        }
        let s0 = rx.slot(t).unwrap();
        assert_eq!((s0.buf_idx, s0.len, s0.flags), (1, 0, 0));
        let s1 = rx.slot(t + 1).unwrap();
        let mut b = vec![0; usize::from(s1.len)];
        env.mem()
            .read_bytes(env.alloc.buf_offset(s1.buf_idx).unwrap(), &mut b)
            .unwrap();
        assert_eq!(b, frame(5, 300));
        rx.set_slot_buf_len(t, good, 0).unwrap();
        take_rx(&env, &rx, 256);
        assert!(!rxsync(&env, &mut vb, 0).error);

        env.delete(&mut va);
        env.delete(&mut vb);
        assert_eq!(env.counts(), initial);
    });
}

#[test]
fn veth_link_down_and_delete() {
    in_netns("veth_link_down_and_delete", || {
        veth(None);
        let mut env = Env::new();
        let initial = env.counts();
        let cfg = NicConfig {
            slots: 64,
            tx_rings: 2,
            rx_rings: 2,
            ..Default::default()
        };
        let max = env.alloc.max_slots_per_ring();
        let mut va = AfPacketPort::open("va", &cfg, max).expect("open va");
        let mut vb = AfPacketPort::open("vb", &cfg, max).expect("open vb");
        assert_eq!((va.host_tx_ring(), va.host_rx_ring()), (2, 2));
        env.create(&mut va);
        env.create(&mut vb);
        assert_eq!(va.event_fds().len(), 5);

        // Two RX rings in one fanout group: every frame arrives exactly once.
        let frames: Vec<Vec<u8>> = (0..40).map(|s| frame(s, 200)).collect();
        send_frames(&env, &mut va, 0, &frames[..20]);
        send_frames(&env, &mut va, 1, &frames[20..]);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        while seen.len() < 40 && Instant::now() < deadline {
            for i in 0..2 {
                assert!(!rxsync(&env, &mut vb, i).error);
                let rv = ring(&env, &vb, Dir::Rx, i);
                seen.extend(
                    take_rx(&env, &rv, 64)
                        .iter()
                        .filter_map(|p| is_test_frame(&p.data)),
                );
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..40).collect::<Vec<_>>());
        // The fanout group ignores outgoing frames: va's RX rings saw none of its own.
        for i in 0..2 {
            assert!(!rxsync(&env, &mut va, i).error);
            let rv = ring(&env, &va, Dir::Rx, i);
            let own = take_rx(&env, &rv, 64);
            assert!(
                own.iter().all(|p| is_test_frame(&p.data).is_none()),
                "own TX on RX ring {i}"
            );
        }

        // Link down: syncs fail (POLLERR), no panic; back up: they work again.
        sh("ip link set va down");
        let rv = ring(&env, &va, Dir::Tx, 0);
        assert!(put_tx(&env, &rv, 64, &frame(100, 100)));
        assert!(txsync_fails(&env, &mut va, 0), "txsync on a down link");
        assert!(rxsync(&env, &mut va, 0).error, "rxsync on a down link");
        assert!(rxsync(&env, &mut va, 0).error, "still down");
        sh("ip link set va up");
        assert!(!rxsync(&env, &mut va, 0).error, "link is up again");
        assert!(
            !txsync(&env, &mut va, 0).error,
            "queued frame sent after link up"
        );

        // Interface deleted (the whole veth pair goes).
        sh("ip link del va");
        let rv = ring(&env, &va, Dir::Tx, 0);
        assert!(put_tx(&env, &rv, 64, &frame(101, 100)));
        assert!(txsync_fails(&env, &mut va, 0), "txsync after delete");
        assert!(
            txsync(&env, &mut va, 1).error,
            "every ring fails once the interface is gone"
        );
        assert!(rxsync(&env, &mut va, 0).error, "rxsync after delete");
        // The peer went with it: frames still queued are delivered, then errors.
        for i in 0..3 {
            let mut failed = false;
            for _ in 0..10 {
                if rxsync(&env, &mut vb, i).error {
                    failed = true;
                    break;
                }
                let rv = ring(&env, &vb, Dir::Rx, i);
                take_rx(&env, &rv, 64);
            }
            assert!(
                failed,
                "vb RX ring {i} never reported the deleted interface"
            );
        }
        let e = va.txsync(0, 0, 0, env.mem()).unwrap_err();
        assert_eq!(e.errno(), libc::ENXIO);
        let _ = va.counters();

        env.delete(&mut va);
        env.delete(&mut vb);
        assert_eq!(
            env.counts(),
            initial,
            "krings_delete frees everything after the interface died"
        );
        assert!(!interface_exists("va"));
        let mut e2 = Env::new();
        let mem = e2.0.region.shmem();
        assert_eq!(
            va.krings_create(0, &mut e2.0.alloc, mem)
                .unwrap_err()
                .errno(),
            libc::ENXIO
        );
        assert_eq!(e2.counts(), Env::new().counts());
    });
}

// ---------------------------------------------------------------------------------
// The reader's position in the state block (a client and the daemon take turns)

#[test]
fn tpacket_pos_round_trip() {
    let r = small_region(4096);
    let m = r.shmem();
    let ks = KState::new(m, 0);
    for p in [
        crate::kstate::TpacketPos::default(),
        crate::kstate::TpacketPos {
            block: 127,
            open: Some((131_064, 2_730)),
        },
        crate::kstate::TpacketPos {
            block: 3,
            open: Some((64, 0)),
        },
    ] {
        ks.set_tpacket_pos(p).unwrap();
        assert_eq!(ks.tpacket_pos().unwrap(), p);
    }
}

/// A netmap RX ring of `n` slots at offset 0 of `m` (buffers 2.. from 64 KiB, 2 KiB
/// each) and its kring, hwcur = hwtail = 0.
fn test_rx_ring(m: SharedMem, n: u32) -> (Kring, BufGeom) {
    let geom = BufGeom {
        pool_offset: 64 * 1024,
        size: 2048,
        total: 2 + n,
    };
    let rv = RingView::new(m, 0, n);
    for s in 0..n {
        rv.set_slot_buf_len(s, 2 + s, 0).unwrap();
    }
    (Kring::new(Dir::Rx, 0, n), geom)
}

/// A reader stopped mid-block by a full netmap ring leaves its position in the state
/// block; the next reader (another process: nothing but the state block is shared)
/// goes on from the next frame, and gives the block back when it is done.
#[test]
fn tpacket_reader_resumes_from_the_state_block() {
    let tp = small_region(rx::RING_BYTES);
    let t = tp.shmem();
    let nm = small_region(1 << 20);
    let m = nm.shmem();
    let (mut k, geom) = test_rx_ring(m, 8);
    let rv = RingView::new(m, 0, 8);
    let ks = KState::new(m, 0);
    let frames: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 60]).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    synth_block(&t, 0, &refs, libc::TP_STATUS_USER);
    let mut scratch = vec![0; 2048];
    let mut st = Stats::default();
    // Room for 7 (the slot before hwcur stays empty).
    assert!(rx::fill_blocks(t, &ks, &mut k, &rv, m, &geom, &mut scratch, &mut st).unwrap());
    assert_eq!((k.hwtail, st.rx_packets), (7, 7));
    let p = ks.tpacket_pos().unwrap();
    assert_eq!((p.block, p.open.map(|o| o.1)), (0, Some(3)));
    assert_ne!(
        t.read_u32(8).unwrap() & libc::TP_STATUS_USER,
        0,
        "block kept"
    );
    // The program releases all 7; a new reader starts from a fresh kring.
    let mut k2 = Kring::new(Dir::Rx, 0, 8);
    (k2.hwcur, k2.hwtail) = (7, 7);
    let mut st2 = Stats::default();
    assert!(rx::fill_blocks(t, &ks, &mut k2, &rv, m, &geom, &mut scratch, &mut st2).unwrap());
    assert_eq!((k2.hwtail, st2.rx_packets), (2, 3));
    for (slot, want) in [(7u32, 7u8), (0, 8), (1, 9)] {
        let idx = rv.slot_buf_idx(slot).unwrap();
        let mut got = [0u8; 60];
        m.read_bytes(geom.offset(idx).unwrap(), &mut got).unwrap();
        assert_eq!(got, [want; 60], "slot {slot}");
    }
    assert_eq!(
        t.read_u32(8).unwrap(),
        libc::TP_STATUS_KERNEL,
        "block given back"
    );
    assert_eq!(
        ks.tpacket_pos().unwrap(),
        crate::kstate::TpacketPos {
            block: 1,
            open: None
        }
    );
}

/// A position some client scribbled (block past the ring, frame past the block) costs
/// the frames it claims are left, never a read outside the ring.
#[test]
fn tpacket_reader_survives_a_garbage_position() {
    let tp = small_region(rx::RING_BYTES);
    let t = tp.shmem();
    let nm = small_region(1 << 20);
    let m = nm.shmem();
    let (mut k, geom) = test_rx_ring(m, 8);
    let rv = RingView::new(m, 0, 8);
    let ks = KState::new(m, 0);
    ks.set_tpacket_pos(crate::kstate::TpacketPos {
        block: 1000,
        open: Some((131_000, 5)),
    })
    .unwrap();
    let mut scratch = vec![0; 2048];
    let mut st = Stats::default();
    assert!(rx::fill_blocks(t, &ks, &mut k, &rv, m, &geom, &mut scratch, &mut st).unwrap());
    assert_eq!((st.rx_packets, st.rx_drops), (0, 5));
    let next = (1000 % rx::BLOCK_NR) + 1;
    assert_eq!(
        ks.tpacket_pos().unwrap(),
        crate::kstate::TpacketPos {
            block: next,
            open: None
        }
    );
}

/// A reader that died after moving its position past a block but before giving the
/// block back: the next reader gives it back (or the kernel, waiting for it, would
/// drop every frame while the reader waits for the next block) and goes on.
#[test]
fn tpacket_reader_gives_back_an_orphaned_block() {
    let tp = small_region(rx::RING_BYTES);
    let t = tp.shmem();
    let nm = small_region(1 << 20);
    let m = nm.shmem();
    let (mut k, geom) = test_rx_ring(m, 8);
    let rv = RingView::new(m, 0, 8);
    let ks = KState::new(m, 0);
    let bs = rx::BLOCK_SIZE as usize;
    let old: [&[u8]; 2] = [&[1; 60], &[2; 60]];
    synth_block(&t, 0, &old, libc::TP_STATUS_USER);
    ks.set_tpacket_pos(crate::kstate::TpacketPos {
        block: 1,
        open: None,
    })
    .unwrap();
    let mut scratch = vec![0; 2048];
    let mut st = Stats::default();
    assert!(!rx::fill_blocks(t, &ks, &mut k, &rv, m, &geom, &mut scratch, &mut st).unwrap());
    assert_eq!(
        t.read_u32(8).unwrap(),
        libc::TP_STATUS_KERNEL,
        "orphan given back"
    );
    assert_eq!(st.rx_packets, 0, "its frames were delivered before");
    // The kernel hands block 1 over: it is read.
    let new: [&[u8]; 1] = [&[3; 60]];
    synth_block(&t, bs, &new, libc::TP_STATUS_USER);
    assert!(rx::fill_blocks(t, &ks, &mut k, &rv, m, &geom, &mut scratch, &mut st).unwrap());
    assert_eq!((st.rx_packets, k.hwtail), (1, 1));
    assert_eq!(ks.tpacket_pos().unwrap().block, 2);
}

/// The same orphan while the kernel has already handed the next block over (it is
/// older by the kernel's numbering): given back too; and a ring the kernel has filled
/// whole (the block before the position the newest) is left alone.
#[test]
fn tpacket_orphan_is_told_from_a_full_ring_by_seq_num() {
    let tp = small_region(rx::RING_BYTES);
    let t = tp.shmem();
    let nm = small_region(1 << 20);
    let m = nm.shmem();
    let (mut k, geom) = test_rx_ring(m, 8);
    let rv = RingView::new(m, 0, 8);
    let ks = KState::new(m, 0);
    let bs = rx::BLOCK_SIZE as usize;
    let one: [&[u8]; 1] = [&[7; 60]];
    let pos = crate::kstate::TpacketPos {
        block: 1,
        open: None,
    };
    let mut scratch = vec![0; 2048];
    // Orphan: block 0 (seq 10) behind the position, block 1 (seq 11) handed over.
    synth_block(&t, 0, &one, libc::TP_STATUS_USER);
    t.write_u64(24, 10).unwrap();
    synth_block(&t, bs, &one, libc::TP_STATUS_USER);
    t.write_u64(bs + 24, 11).unwrap();
    ks.set_tpacket_pos(pos).unwrap();
    let mut st = Stats::default();
    rx::fill_blocks(t, &ks, &mut k, &rv, m, &geom, &mut scratch, &mut st).unwrap();
    assert_eq!(
        t.read_u32(8).unwrap(),
        libc::TP_STATUS_KERNEL,
        "orphan given back"
    );
    assert_eq!(st.rx_packets, 1, "block 1 read");
    // Full ring: block 0 (seq 138) is newer than block 1 (seq 11): kept.
    let (mut k, _) = test_rx_ring(m, 8);
    synth_block(&t, 0, &one, libc::TP_STATUS_USER);
    t.write_u64(24, 138).unwrap();
    synth_block(&t, bs, &one, libc::TP_STATUS_USER);
    ks.set_tpacket_pos(pos).unwrap();
    let mut st = Stats::default();
    rx::fill_blocks(t, &ks, &mut k, &rv, m, &geom, &mut scratch, &mut st).unwrap();
    assert_eq!(
        t.read_u32(8).unwrap() & libc::TP_STATUS_USER,
        libc::TP_STATUS_USER,
        "the newest block kept"
    );
    assert_eq!(st.rx_packets, 1);
}

/// The per-frame fast path (`copy_run`) hands what it cannot place to the general one
/// and the block still comes out whole and in order: a frame of two buffers, a slot
/// whose buffer index is invalid (handed over empty), frames of odd length (copied in
/// whole words: never past the word that holds their last byte).
#[test]
fn tpacket_fast_path_hands_odd_frames_on() {
    let tp = small_region(rx::RING_BYTES);
    let t = tp.shmem();
    let nm = small_region(1 << 20);
    let m = nm.shmem();
    let (mut k, geom) = test_rx_ring(m, 16);
    let rv = RingView::new(m, 0, 16);
    let ks = KState::new(m, 0);
    for s in 0..16 {
        let off = geom.offset(2 + s).unwrap();
        m.write_bytes(off, &[0xee; 2048]).unwrap();
    }
    rv.set_slot_buf_len(3, 0, 0).unwrap();
    let big: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let frames: [&[u8]; 5] = [&[1; 60], &[2; 61], &big, &[4; 60], &[5; 1]];
    synth_block(&t, 0, &frames, libc::TP_STATUS_USER);
    let mut scratch = vec![0; 2048];
    let mut st = Stats::default();
    assert!(rx::fill_blocks(t, &ks, &mut k, &rv, m, &geom, &mut scratch, &mut st).unwrap());
    assert_eq!((st.rx_packets, k.hwtail), (5, 8));
    let slot = |s: u32| {
        let sl = rv.slot(s).unwrap();
        let mut b = vec![0u8; 2048];
        if let Some(off) = geom.offset(sl.buf_idx) {
            m.read_bytes(off, &mut b).unwrap();
        }
        (sl, b)
    };
    let (s0, b0) = slot(0);
    assert_eq!((s0.len, s0.flags), (60, 0));
    assert_eq!(&b0[..60], &[1; 60]);
    assert_eq!(&b0[64..], &[0xee; 2048 - 64], "nothing past the last word");
    let (s1, b1) = slot(1);
    assert_eq!((s1.len, &b1[..61]), (61, &[2; 61][..]));
    assert_eq!(&b1[64..], &[0xee; 2048 - 64]);
    // Slots 2 and 3 (the invalid buffer) were handed over empty; the big frame in 4, 5.
    for s in [2, 3] {
        assert_eq!(slot(s).0.len, 0, "slot {s} empty");
    }
    let (s4, b4) = slot(4);
    assert_eq!((s4.len, s4.flags), (2048, NS_MOREFRAG));
    let (s5, b5) = slot(5);
    assert_eq!((s5.len, s5.flags), (952, 0));
    assert_eq!([&b4[..], &b5[..952]].concat(), big);
    assert_eq!((slot(6).0.len, &slot(6).1[..60]), (60, &[4; 60][..]));
    let (s7, b7) = slot(7);
    assert_eq!((s7.len, b7[0]), (1, 5));
    assert_eq!(&b7[8..], &[0xee; 2040]);
    assert_eq!(slot(8).0.len, 0, "nothing more");
    assert_eq!(
        t.read_u32(8).unwrap(),
        libc::TP_STATUS_KERNEL,
        "block given back"
    );
}

/// A reader handle survives the state block as published, either kind; a TPACKET one
/// starts its reader at block 0; a kind or ring sizes some client scribbled give no
/// handle at all (the preload library then leaves the ring to the daemon).
#[test]
fn reader_handles_round_trip_through_the_state_block() {
    use crate::kstate::{ReaderHandle, ReaderSocket, TpacketPos};
    let r = small_region(4096);
    let m = r.shmem();
    let ks = KState::new(m, 0);
    let xsk = ReaderHandle {
        pid: 4321,
        sock_fd: 17,
        socket: ReaderSocket::Xsk {
            held_fd: 18,
            rx_size: 2048,
            fill_size: 4096,
        },
    };
    ks.set_reader(Some(xsk)).unwrap();
    assert_eq!(ks.reader_handle().unwrap(), Some(xsk));
    ks.set_tpacket_pos(TpacketPos {
        block: 9,
        open: None,
    })
    .unwrap();
    let tp = ReaderHandle {
        pid: 4321,
        sock_fd: 21,
        socket: ReaderSocket::Tpacket,
    };
    ks.set_reader(Some(tp)).unwrap();
    assert_eq!(ks.reader_handle().unwrap(), Some(tp));
    assert_eq!(ks.tpacket_pos().unwrap(), TpacketPos::default());
    ks.set_reader(None).unwrap();
    assert_eq!(ks.reader_handle().unwrap(), None);
    // Garbage: an unknown kind, then AF_XDP ring sizes of 2^31 (offsets 124 and 116
    // of the state block, which starts `sem` bytes into the ring).
    let base = ks.ring_offset() + core::mem::offset_of!(netmap_abi::NetmapRing, sem);
    ks.set_reader(Some(xsk)).unwrap();
    m.write_u32(base + 124, 7).unwrap();
    assert_eq!(ks.reader_handle().unwrap(), None);
    m.write_u32(base + 124, crate::kstate::READER_XSK).unwrap();
    assert_eq!(ks.reader_handle().unwrap(), Some(xsk));
    m.write_u32(base + 116, 31 | (31 << 8)).unwrap();
    assert_eq!(ks.reader_handle().unwrap(), None);
}
