//! The compute cost of the AF_PACKET receive copy (`af_packet::rx::fill_blocks`), with
//! no kernel, socket or sleep: a synthetic TPACKET_V3 ring laid out as the kernel lays
//! it out (60-byte frames, 144 bytes apart, every block handed over) is copied into a
//! 1024-slot netmap ring over and over, the ring released after each pass as a reader
//! releases everything it got. Prints nanoseconds per frame.
//!
//! Why: on a veth the receiving program's time per frame mixes the copy, the walk of
//! lines another CPU wrote, and the sleep/wake path, and varies by a third from run to
//! run; this isolates the part the code controls, so that a change to the copy can be
//! judged in seconds, not in `bench/nic.sh` rounds.
//!
//! Usage: `tpacket_walk [frames]` (default 20 M).
use netmap_netif::af_packet::rx::{self, BLOCK_NR, BLOCK_SIZE, RING_BYTES};
use netmap_netif::af_packet::{BufGeom, NicCounters};
use netmap_netif::kring::{Dir, Kring};
use netmap_netif::kstate::KState;
use netmap_netif::ringmem::RingView;
use netmap_pool::{Region, SharedMem};

const SLOTS: u32 = 1024;
const FRAME: usize = 60;
/// Where the kernel puts the MAC header of a frame (TPACKET_ALIGN(68 + 16) - 14).
const MAC: usize = 82;

/// Lays out block `b` full of frames; returns how many.
fn synth_block(t: &SharedMem, b: usize) -> u32 {
    let base = b * BLOCK_SIZE as usize;
    let step = (MAC + FRAME).next_multiple_of(16);
    let first = 48;
    let n = ((BLOCK_SIZE as usize - first) / step) as u32;
    for i in 0..n as usize {
        let h = base + first + i * step;
        let next = if i + 1 == n as usize { 0 } else { step };
        t.write_u32(h, next as u32).unwrap();
        t.write_u32(h + 12, FRAME as u32).unwrap();
        t.write_u32(h + 16, FRAME as u32).unwrap();
        t.write_u16(h + 24, MAC as u16).unwrap();
        t.write_bytes(h + MAC, &[i as u8; FRAME]).unwrap();
    }
    t.write_u32(base + 12, n).unwrap();
    t.write_u32(base + 16, first as u32).unwrap();
    t.write_u32(base + 20, (first + n as usize * step) as u32)
        .unwrap();
    n
}

fn main() {
    let want: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("frames"))
        .unwrap_or(20_000_000);
    let tp = Region::create(RING_BYTES, false).expect("ring region");
    let t = tp.shmem();
    let per_block = (0..BLOCK_NR as usize)
        .map(|b| synth_block(&t, b))
        .sum::<u32>()
        / BLOCK_NR;
    let geom = BufGeom {
        pool_offset: 1 << 20,
        size: 2048,
        total: 2 + SLOTS,
    };
    let nm = Region::create((1 << 20) + (2 + SLOTS as usize) * 2048, false).expect("region");
    let m = nm.shmem();
    // The ring's slots at offset 4096 (the state block before them).
    let rv = RingView::new(m, 4096, SLOTS);
    for s in 0..SLOTS {
        rv.set_slot_buf_len(s, 2 + s, 0).unwrap();
    }
    let ks = KState::new(m, 4096);
    let mut k = Kring::new(Dir::Rx, 0, SLOTS);
    let mut scratch = vec![0u8; 2048];
    let mut st = NicCounters::default();
    let status = |b: u32| b as usize * BLOCK_SIZE as usize + 8;
    // Thread CPU time, not wall time: on a VM the host's steal would count.
    let cpu = || {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid clock id and a valid out pointer.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64
    };
    // Five measurements of want/5 frames each: their median and minimum.
    let mut per = Vec::new();
    for _ in 0..5 {
        let start = st.rx_packets;
        let t0 = cpu();
        while st.rx_packets - start < want / 5 {
            // A kernel that refills at once: every block given back is handed over again.
            for b in 0..BLOCK_NR {
                if t.load_u32_acquire(status(b)).unwrap() & libc::TP_STATUS_USER == 0 {
                    t.store_u32_release(status(b), libc::TP_STATUS_USER)
                        .unwrap();
                }
            }
            rx::fill_blocks(t, &ks, &mut k, &rv, m, &geom, &mut scratch, &mut st).unwrap();
            // The reader releases everything it got.
            k.hwcur = k.hwtail;
        }
        per.push((cpu() - t0) / (st.rx_packets - start) as f64);
    }
    per.sort_by(f64::total_cmp);
    println!(
        "tpacket-walk frames={} ({} a block) ns_per_frame median={:.1} min={:.1}",
        st.rx_packets, per_block, per[2], per[0]
    );
}
