//! What a receiver would cost if it ran the AF_XDP receive path itself, in its own
//! thread (the "client reads the AF_XDP rings" design the README's NIC figures discuss):
//! the daemon's own XDP port and rxsync (`netmap_netif::xdp`), driven by one thread
//! that sleeps on the socket when the ring is empty and, while a stream comes in
//! (8 frames or more per pass), passes every millisecond as the port worker's RX
//! moderation does. No daemon, no second thread, no futex wake-up.
//!
//! Usage (root, in a namespace with a veth pair vA/vB, IPv6 off as `bench/nic.sh` does):
//! `xsk_floor vB` prints "xsk-floor ready", then counts frames until 1.5 s pass without
//! one, and prints `xsk-floor frames=N secs=S`. `bench/nic.sh` runs it as one of its
//! receivers and prints its CPU time per frame beside netsniff-ng's.
use netmap_netif::adapter::Adapter;
use netmap_netif::af_packet::NicConfig;
use netmap_netif::xdp::XdpPort;
use netmap_pool::{MemAllocator, PoolConfig, Region};
use std::time::{Duration, Instant};

fn main() {
    let ifname = std::env::args().nth(1).expect("ifname");
    let idle_ms: u64 = 1500;
    let cfg = PoolConfig::default();
    let mut alloc = MemAllocator::new(1, &cfg).expect("alloc");
    let region = Region::create(alloc.memsize(), false).expect("region");
    let mem = region.shmem();
    let ncfg = NicConfig {
        slots: 1024,
        tx_rings: 1,
        rx_rings: 1,
        host_tx_rings: 1,
        host_rx_rings: 1,
        backend: netmap_netif::nic::Backend::Xdp,
    };
    let mut p = XdpPort::open(&ifname, &ncfg, 1024, false).expect("open");
    p.krings_create(0, &mut alloc, mem).expect("krings");
    let fd = p.event_fds()[0].0;
    println!("xsk-floor ready");
    let n = p.endpoints()[0].rx[0].num_slots;
    let mut head = 0u32;
    let mut frames = 0u64;
    let (mut first, mut last) = (None::<Instant>, Instant::now());
    let mut streaming = false;
    loop {
        if streaming {
            std::thread::sleep(Duration::from_millis(1));
        }
        p.rxsync(0, 0, head, mem).expect("rxsync");
        let tail = p.endpoints()[0].rx[0].hwtail;
        let got = (tail + n - head) % n;
        if got > 0 {
            frames += u64::from(got);
            head = tail;
            let now = Instant::now();
            first.get_or_insert(now);
            last = now;
            streaming = got >= 8;
            continue;
        }
        streaming = false;
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, idle_ms as i32) };
        if r == 0 && first.is_some() {
            break;
        }
    }
    let secs = first
        .map(|f| last.duration_since(f).as_secs_f64())
        .unwrap_or(0.0);
    println!("xsk-floor frames={frames} secs={secs:.3}");
}
