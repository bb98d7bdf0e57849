//! `nm-stress`: a misbehaving netmap client for the fault-isolation tests
//! (`tests/tests/faults.rs`).
//!
//! ```text
//! nm-stress scribble --port NAME [--secs 10] [--seed N] [--extra 64] [--pause-us 500] [--hit-others] [--min-syncs N]
//! nm-stress lock-fill --port valeX:Y
//! ```
//!
//! `lock-fill` registers VALE port Y and takes the fill lock of RX ring 0 of every
//! other port of the switch, as a sender in the middle of a delivery does, then prints
//! `lock-fill: locked N` and waits to be killed: a client that dies holding
//! destination locks, on purpose rather than by chance. It finds the rings the way a
//! preloaded sender does, through its own TX ring's state block and the switch block
//! (layouts in netif/src/kstate.rs and netif/src/vale/bdg.rs).
//!
//! `scribble` registers both ends of pipe NAME (the first with `--extra` extra
//! buffers), then for `--secs` seconds writes random and hostile values over **its
//! own** rings (head/cur/tail, slot buf_idx/len/flags, the read-only ring header
//! fields) and **its own** netmap_if (ni_bufs_head, ring counts, ring_ofs), plus the
//! link words of its own extra buffers, issuing NIOCTXSYNC/NIOCRXSYNC/poll in
//! between. Buffer indices it writes include indices found in *other* clients' rings
//! (every ring in the shared region is readable), so a daemon that trusted slot
//! contents would hand another client's buffer around or free it. It never writes
//! other clients' rings, netmap_ifs or buffers. Sync errors are expected and only
//! counted. It prints `scribble start: …` once registered and a `scribble done: …`
//! summary at the end; exit status 0 means it ran to the end.

use std::collections::BTreeMap;
use std::io::Write;
use std::mem::offset_of;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use netmap_abi::{
    if_ring_ofs_offset, ring_slot_offset, NetmapIf, NetmapRing, NetmapSlot, NR_REG_ALL_NIC,
    NS_BUF_CHANGED, NS_MOREFRAG,
};
use netmapd_tests::port::{Port, Ring};
use netmapd_tests::stream::peer_name;
use netmapd_tests::sys::{errno_name, poll_mask_name, Mapping};

const USAGE: &str = "usage:
  nm-stress scribble --port NAME [--secs 10] [--seed N] [--extra 64] [--pause-us 500] [--hit-others]
  nm-stress lock-fill --port valeX:Y";

/// xorshift64*: deterministic for a given seed, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A ring of another client, found by scanning the region (read only).
struct Foreign {
    off: usize,
    num_slots: u32,
}

struct Scribbler<'a> {
    ports: [&'a Port; 2],
    /// TX and RX ring of each port, captured before any scribbling (the header
    /// fields they cache are among the things scribbled later).
    rings: Vec<(usize, Ring<'a>)>,
    own_ring_offs: Vec<usize>,
    /// Extra buffers as handed out at REGISTER (ours, so their contents are ours).
    own_extra: Vec<u32>,
    buf_base: usize,
    buf_size: usize,
    buf_total: u32,
    foreign: Vec<Foreign>,
    rng: Rng,
    foreign_used: u64,
    writes: u64,
    syncs: u64,
    sync_ok: u64,
    errors: BTreeMap<&'static str, u64>,
    poll_masks: BTreeMap<String, u64>,
    /// Also scribble the shared sync state (`netmap_ring.sem`) of other clients' rings.
    hit_others: bool,
}

impl<'a> Scribbler<'a> {
    fn new(ports: [&'a Port; 2], seed: u64) -> Result<Self, String> {
        let mut rings = Vec::new();
        for (p, port) in ports.iter().enumerate() {
            for r in [port.tx_ring(0), port.rx_ring(0)].into_iter().flatten() {
                rings.push((p, r));
            }
        }
        let first = &rings.first().ok_or("no ring bound")?.1;
        let (buf_base, buf_size) = (first.buf_base(), first.nr_buf_size() as usize);
        let map_len = ports[0].mapping().len();
        if buf_size == 0 || buf_base >= map_len {
            return Err(format!(
                "odd geometry: buf_base {buf_base} buf_size {buf_size}"
            ));
        }
        let buf_total = ((map_len - buf_base) / buf_size) as u32;
        let own_ring_offs = rings.iter().map(|(_, r)| r.offset()).collect();
        let mut own_extra = Vec::new();
        for port in ports {
            own_extra.extend(port.extra_buf_list(100_000)?);
        }
        let mut s = Scribbler {
            ports,
            rings,
            own_ring_offs,
            own_extra,
            buf_base,
            buf_size,
            buf_total,
            foreign: Vec::new(),
            rng: Rng(seed | 1),
            foreign_used: 0,
            writes: 0,
            syncs: 0,
            sync_ok: 0,
            errors: BTreeMap::new(),
            poll_masks: BTreeMap::new(),
            hit_others: false,
        };
        s.scan_foreign();
        Ok(s)
    }

    fn map(&self) -> &'a Mapping {
        self.ports[0].mapping()
    }

    /// Finds every ring of the region other than ours: a ring object satisfies
    /// `ring + buf_ofs == buffer 0` with our buffer size (rings live before the buffer
    /// pool). Read only.
    fn scan_foreign(&mut self) {
        let map = self.ports[0].mapping();
        let mut found = Vec::new();
        let mut off = 0usize;
        while off + std::mem::size_of::<NetmapRing>() <= self.buf_base {
            let buf_ofs = map.read_i64(off + offset_of!(NetmapRing, buf_ofs));
            let num_slots = map.read_u32(off + offset_of!(NetmapRing, num_slots));
            let bsz = map.read_u32(off + offset_of!(NetmapRing, nr_buf_size)) as usize;
            if bsz == self.buf_size
                && (1..=65_536).contains(&num_slots)
                && off as i64 + buf_ofs == self.buf_base as i64
                && off + ring_slot_offset(num_slots) <= self.buf_base
                && !self.own_ring_offs.contains(&off)
            {
                found.push(Foreign { off, num_slots });
            }
            off += 64;
        }
        self.foreign = found;
    }

    /// A buffer index currently in a slot of another client's ring, if any looks valid.
    fn foreign_idx(&mut self) -> Option<u32> {
        for _ in 0..8 {
            if self.foreign.is_empty() {
                return None;
            }
            let f = &self.foreign[self.rng.below(self.foreign.len() as u64) as usize];
            let k = self.rng.below(f.num_slots as u64) as u32;
            let idx = self
                .map()
                .read_u32(f.off + ring_slot_offset(k) + offset_of!(NetmapSlot, buf_idx));
            if (2..self.buf_total).contains(&idx) {
                self.foreign_used += 1;
                return Some(idx);
            }
        }
        None
    }

    /// A hostile ring index for a ring of `n` slots.
    fn ring_value(&mut self, n: u32) -> u32 {
        match self.rng.below(10) {
            0 => n,
            1 => n.wrapping_add(1),
            2 => u32::MAX,
            3 => 0x8000_0000,
            4 => self.rng.u32(),
            5 => n.wrapping_sub(1),
            _ => self.rng.below(n as u64) as u32,
        }
    }

    /// A hostile buffer index: mostly other clients' buffers, else edge values.
    fn buf_value(&mut self) -> u32 {
        if self.rng.chance(50) {
            if let Some(i) = self.foreign_idx() {
                return i;
            }
        }
        let t = self.buf_total;
        match self.rng.below(9) {
            0 => 0,
            1 => 1,
            2 => t - 1,
            3 => t,
            4 => u32::MAX,
            5 => self.rng.u32(),
            6 if !self.own_extra.is_empty() => {
                self.own_extra[self.rng.below(self.own_extra.len() as u64) as usize]
            }
            _ => 2 + self.rng.below((t - 2) as u64) as u32,
        }
    }

    fn pick_ring(&mut self) -> usize {
        self.rng.below(self.rings.len() as u64) as usize
    }

    /// One random word into the shared sync state block (`netmap_ring.sem`: indices,
    /// links, busy flag, futex word, waiter flags) of one of our rings or, with
    /// `hit_others`, of another client's ring.
    fn scribble_kstate(&mut self) {
        let off = if self.hit_others && !self.foreign.is_empty() && self.rng.chance(70) {
            self.foreign[self.rng.below(self.foreign.len() as u64) as usize].off
        } else {
            let ri = self.pick_ring();
            self.rings[ri].1.offset()
        };
        let word = self.rng.below(32) as usize;
        let v = match self.rng.below(4) {
            0 => 0,
            1 => u32::MAX,
            2 => self.rng.below(4096) as u32,
            _ => self.rng.u32(),
        };
        self.ports[0]
            .mapping()
            .write_u32(off + offset_of!(NetmapRing, sem) + 4 * word, v);
    }

    /// One random write to our own rings / netmap_if / extra buffers.
    fn scribble_once(&mut self) {
        self.writes += 1;
        if self.rng.chance(15) {
            self.scribble_kstate();
            return;
        }
        let ri = self.pick_ring();
        let n = self.rings[ri].1.num_slots();
        match self.rng.below(100) {
            0..=9 => {
                let v = self.ring_value(n);
                self.rings[ri].1.set_head(v);
            }
            10..=17 => {
                let v = self.ring_value(n);
                self.rings[ri].1.set_cur(v);
            }
            18..=25 => {
                let v = self.ring_value(n);
                self.rings[ri].1.set_tail(v);
            }
            26..=31 => {
                let (h, c, t) = (self.ring_value(n), self.ring_value(n), self.ring_value(n));
                let r = &self.rings[ri].1;
                r.set_head(h);
                r.set_cur(c);
                r.set_tail(t);
            }
            32..=49 => {
                let k = self.rng.below(n as u64) as u32;
                let v = self.buf_value();
                let r = &self.rings[ri].1;
                r.set_slot_buf_idx(k, v);
                if self.rng.chance(50) {
                    r.set_slot_flags(k, r.slot_flags(k) | NS_BUF_CHANGED);
                }
            }
            50..=61 => {
                // Plausible-looking: fill [head, tail) (capped) with other clients'
                // buffer indices marked NS_BUF_CHANGED and hand them over.
                let count = 1 + self.rng.below(256) as u32;
                let r_head = self.rings[ri].1.head() % n;
                let mut k = r_head;
                for _ in 0..count {
                    let v = self.foreign_idx().unwrap_or_else(|| self.buf_value());
                    let len = if self.rng.chance(80) {
                        60
                    } else {
                        self.rng.u32() as u16
                    };
                    let r = &self.rings[ri].1;
                    r.set_slot_buf_idx(k, v);
                    r.set_slot_len(k, len);
                    r.set_slot_flags(k, NS_BUF_CHANGED);
                    k = r.next(k);
                }
                self.rings[ri].1.advance(k);
            }
            62..=67 => {
                let k = self.rng.below(n as u64) as u32;
                let v = match self.rng.below(4) {
                    0 => 0,
                    1 => u16::MAX,
                    2 => (self.buf_size + 1) as u16,
                    _ => self.rng.u32() as u16,
                };
                self.rings[ri].1.set_slot_len(k, v);
            }
            68..=73 => {
                let k = self.rng.below(n as u64) as u32;
                let v = match self.rng.below(3) {
                    0 => NS_MOREFRAG,
                    1 => NS_MOREFRAG | NS_BUF_CHANGED,
                    _ => self.rng.u32() as u16,
                };
                self.rings[ri].1.set_slot_flags(k, v);
            }
            74..=81 => {
                let v = self.buf_value();
                let p = self.rng.below(2) as usize;
                self.ports[p].set_ni_bufs_head(v);
            }
            82..=87 => {
                // Link word of one of our own extra buffers.
                if !self.own_extra.is_empty() {
                    let e = self.own_extra[self.rng.below(self.own_extra.len() as u64) as usize];
                    let v = self.buf_value();
                    let off = self.buf_base + e as usize * self.buf_size;
                    self.map().write_u32(off, v);
                }
            }
            88..=93 => {
                // Ring header fields a client must treat as read only.
                let r_off = self.rings[ri].1.offset();
                let v = self.rng.u32();
                let map = self.map();
                match self.rng.below(6) {
                    0 => map.write_u32(r_off + offset_of!(NetmapRing, num_slots), v),
                    1 => map.write_u32(r_off + offset_of!(NetmapRing, nr_buf_size), v),
                    2 => map.write_u64(
                        r_off + offset_of!(NetmapRing, buf_ofs),
                        (v as u64) << (v % 32),
                    ),
                    3 => map.write_u16(r_off + offset_of!(NetmapRing, ringid), v as u16),
                    4 => map.write_u16(r_off + offset_of!(NetmapRing, dir), v as u16),
                    _ => map.write_u32(r_off + offset_of!(NetmapRing, flags), v),
                }
            }
            _ => {
                // Our netmap_if's read-only fields.
                let p = self.rng.below(2) as usize;
                let nifp = self.ports[p].reg().nr_offset as usize;
                let v = self.rng.u32();
                let map = self.map();
                match self.rng.below(4) {
                    0 => map.write_u32(nifp + offset_of!(NetmapIf, ni_tx_rings), v),
                    1 => map.write_u32(nifp + offset_of!(NetmapIf, ni_rx_rings), v),
                    2 => map.write_u64(nifp + if_ring_ofs_offset(0), v as u64),
                    _ => map.write_u64(nifp + if_ring_ofs_offset(1), (v as i32) as u64),
                }
            }
        }
    }

    fn sync_once(&mut self) {
        self.syncs += 1;
        let port = self.ports[self.rng.below(2) as usize];
        let r = match self.rng.below(3) {
            0 => port.txsync(),
            1 => port.rxsync(),
            _ => {
                let ev = match self.rng.below(3) {
                    0 => libc::POLLIN,
                    1 => libc::POLLOUT,
                    _ => libc::POLLIN | libc::POLLOUT,
                };
                match port.poll(ev, 0) {
                    Ok(m) => {
                        *self.poll_masks.entry(poll_mask_name(m)).or_default() += 1;
                        Ok(())
                    }
                    Err(e) => Err(netmapd_tests::Errno(e.raw_os_error().unwrap_or(-1))),
                }
            }
        };
        match r {
            Ok(()) => self.sync_ok += 1,
            Err(e) => *self.errors.entry(errno_name(e.0)).or_default() += 1,
        }
    }
}

struct Opts {
    port: Option<String>,
    secs: u64,
    seed: Option<u64>,
    extra: u32,
    pause_us: u64,
    hit_others: bool,
    /// Keep going past `secs` until this many syncs were made (at most 4 × `secs`):
    /// on a loaded machine a fixed time may hold too few iterations to mean anything.
    min_syncs: u64,
}

fn parse_opts(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        port: None,
        secs: 10,
        seed: None,
        extra: 64,
        pause_us: 500,
        hit_others: false,
        min_syncs: 0,
    };
    let mut it = args.iter();
    while let Some(k) = it.next() {
        if k == "--hit-others" {
            o.hit_others = true;
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("{k} {v}: {e}"));
        match k.as_str() {
            "--port" => o.port = Some(v.clone()),
            "--secs" => o.secs = num(v)?,
            "--seed" => o.seed = Some(num(v)?),
            "--extra" => o.extra = num(v)?.min(u32::MAX as u64) as u32,
            "--pause-us" => o.pause_us = num(v)?,
            "--min-syncs" => o.min_syncs = num(v)?,
            _ => return Err(format!("unknown option {k}")),
        }
    }
    Ok(o)
}

fn scribble(o: &Opts) -> Result<(), String> {
    let name = o.port.clone().ok_or("missing --port")?;
    let peer = peer_name(&name)?;
    let seed = o.seed.unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        t ^ (u64::from(std::process::id()) << 32)
    });
    let a = Port::register(&name, NR_REG_ALL_NIC, 0, 0, o.extra, 0, 0, 0, 0)
        .map_err(|e| format!("REGISTER {name:?}: {e}"))?;
    let b = Port::register(&peer, NR_REG_ALL_NIC, 0, 0, o.extra / 4, 0, 0, 0, 0)
        .map_err(|e| format!("REGISTER {peer:?}: {e}"))?;
    let mut s = Scribbler::new([&a, &b], seed)?;
    s.hit_others = o.hit_others;
    println!(
        "scribble start: port={name} peer={peer} seed={seed} own_rings={} own_extra_bufs={} \
         foreign_rings={} buf_total={}",
        s.rings.len(),
        s.own_extra.len(),
        s.foreign.len(),
        s.buf_total
    );
    std::io::stdout().flush().ok();
    let start = Instant::now();
    let mut last_scan = Instant::now();
    let mut iterations = 0u64;
    let (secs, cap) = (Duration::from_secs(o.secs), Duration::from_secs(4 * o.secs));
    while start.elapsed() < secs || (s.syncs < o.min_syncs && start.elapsed() < cap) {
        iterations += 1;
        for _ in 0..1 + s.rng.below(4) {
            s.scribble_once();
        }
        s.sync_once();
        if last_scan.elapsed() > Duration::from_secs(1) {
            s.scan_foreign();
            last_scan = Instant::now();
        }
        if o.pause_us > 0 {
            std::thread::sleep(Duration::from_micros(o.pause_us));
        }
    }
    let errors: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    let polls: Vec<String> = s
        .poll_masks
        .iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect();
    println!(
        "scribble done: seed={seed} iterations={iterations} writes={} syncs={} sync_ok={} \
         foreign_idx_used={} foreign_rings={} errors=[{}] poll=[{}]",
        s.writes,
        s.syncs,
        s.sync_ok,
        s.foreign_used,
        s.foreign.len(),
        errors.join(","),
        polls.join(",")
    );
    Ok(())
}

/// `nm-stress lock-fill` (see the crate doc).
fn lock_fill(o: &Opts) -> Result<(), String> {
    // Offsets inside netmap_ring.sem (kstate.rs) and in the switch block (bdg.rs).
    const PEER: usize = 32;
    const LINK: usize = 28;
    const FLOCK: usize = 72;
    const NPORTS: usize = 4;
    const PORTS: usize = 64 + 8 * 1024;
    const PORT_BYTES: usize = 80;
    let name = o.port.clone().ok_or("missing --port")?;
    let p = Port::register(&name, NR_REG_ALL_NIC, 0, 0, 0, 0, 0, 0, 0)
        .map_err(|e| format!("REGISTER {name:?}: {e}"))?;
    let m = p.mapping();
    let sem = offset_of!(NetmapRing, sem);
    let tx = p.tx_ring(0).ok_or("no TX ring")?.offset();
    let block = usize::try_from(m.read_u64(tx + sem + PEER)).map_err(|e| e.to_string())?;
    let me = m.read_u32(tx + sem + LINK) as usize;
    if block == 0 || block >= m.len() {
        return Err(format!(
            "{name}: no switch block in its state (not preloadable VALE?)"
        ));
    }
    // SAFETY: gettid has no arguments and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
    let mut locked = 0;
    for port in 0..(m.read_u32(block + NPORTS) as usize).min(254) {
        let e = block + PORTS + port * PORT_BYTES;
        if port == me || m.read_u32(e) & 1 == 0 {
            continue;
        }
        let rx0 = m.read_u32(e + 16) as usize;
        let w = m.atomic_u32(rx0 + sem + FLOCK);
        if w.compare_exchange(
            0,
            tid,
            std::sync::atomic::Ordering::AcqRel,
            std::sync::atomic::Ordering::Acquire,
        )
        .is_ok()
        {
            locked += 1;
        }
    }
    println!("lock-fill: locked {locked}");
    std::io::stdout().flush().ok();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("scribble") => parse_opts(&args[1..]).and_then(|o| scribble(&o)),
        Some("lock-fill") => parse_opts(&args[1..]).and_then(|o| lock_fill(&o)),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown or missing subcommand\n{USAGE}")),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nm-stress: {e}");
            ExitCode::FAILURE
        }
    }
}
