//! Ping-pong latency, as `pkt-gen -f ping` / `-f pong` measure it (`nm-client
//! bench-latency`, printed by `bench/run.sh`).
//!
//! A *pong* process on one port returns every frame it receives, with the Ethernet
//! addresses swapped, as soon as it sees it (poll(POLLIN), copy into a TX slot,
//! NIOCTXSYNC). The *ping* side, in this process, sends one frame carrying a sequence
//! number (NIOCTXSYNC), then waits in poll(POLLIN) for that frame to come back; the
//! time between the two is one round trip. Only one frame is ever in flight, so the
//! figure is the wake-up chain end to end: sender sync, delivery, receiver wake-up,
//! receiver sync, and the same back. The median and the 99th percentile are reported,
//! after a warm-up; nothing is judged.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::port::{Port, Ring};
use crate::stream::open_end;

/// Round trips not counted (first-touch faults, learning on VALE).
const WARMUP: u64 = 200;
/// Where the sequence number sits in the frame (after the Ethernet header).
const SEQ_AT: usize = 14;
/// Frame length (the minimum Ethernet frame without FCS).
const LEN: usize = 60;
/// How long either side waits for a frame before calling the run failed.
const WAIT_MS: i32 = 5000;

/// Round-trip figures in microseconds.
pub struct LatencyFigures {
    pub iters: u64,
    pub median_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

impl LatencyFigures {
    /// One `key=value` line for scripts.
    pub fn line(&self, port: &str, peer: &str) -> String {
        format!(
            "bench-latency port={port} peer={peer} iters={} median_us={:.2} p99_us={:.2} max_us={:.1}",
            self.iters, self.median_us, self.p99_us, self.max_us
        )
    }
}

/// Writes a frame from `src` MAC to `dst` MAC carrying `seq` into the next TX slot of
/// `tx` and advances it (the caller syncs).
fn put(tx: &Ring<'_>, frame: &[u8]) -> Result<(), String> {
    if tx.space() == 0 {
        return Err("no free TX slot (one frame in flight at most)".into());
    }
    let h = tx.head();
    tx.write_buf(tx.slot_buf_idx(h), 0, frame);
    tx.set_slot_len(h, frame.len() as u16);
    tx.set_slot_flags(h, 0);
    tx.advance(tx.next(h));
    Ok(())
}

/// Waits for at least one received frame on `rx` (poll, which also syncs).
fn wait_rx(port: &Port, rx: &Ring<'_>, what: &str) -> Result<(), String> {
    while rx.head() == rx.tail() {
        let rev = port
            .poll(libc::POLLIN, WAIT_MS)
            .map_err(|e| format!("{what}: poll(POLLIN): {e}"))?;
        if rev == 0 {
            return Err(format!("{what}: nothing received for {WAIT_MS} ms"));
        }
        if rev & libc::POLLERR != 0 {
            return Err(format!("{what}: poll gave POLLERR"));
        }
    }
    Ok(())
}

/// The pong side: returns `count` frames, then exits. Prints "pong ready" once
/// registered so that the ping side starts only then.
pub fn pong(name: &str, count: u64) -> Result<(), String> {
    let port = open_end(name)?;
    let rx = port.rx_ring(0).ok_or("RX ring 0 not bound")?;
    let tx = port.tx_ring(0).ok_or("TX ring 0 not bound")?;
    println!("pong ready");
    std::io::Write::flush(&mut std::io::stdout()).ok();
    let mut frame = vec![0u8; crate::payload::MAX_LEN];
    let mut done = 0u64;
    while done < count {
        wait_rx(&port, &rx, "pong")?;
        let mut h = rx.head();
        while h != rx.tail() {
            let len = usize::from(rx.slot_len(h)).min(frame.len());
            rx.read_buf(rx.slot_buf_idx(h), &mut frame[..len]);
            let (dst, src) = frame.split_at_mut(6);
            dst.swap_with_slice(&mut src[..6]);
            put(&tx, &frame[..len])?;
            h = rx.next(h);
            done += 1;
        }
        rx.advance(h);
        port.txsync()
            .map_err(|e| format!("pong: NIOCTXSYNC: {e}"))?;
    }
    // The last reply must leave before the process (and its registration) goes.
    port.txsync()
        .map_err(|e| format!("pong: NIOCTXSYNC: {e}"))?;
    Ok(())
}

fn spawn_pong(peer: &str, count: u64) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut child = Command::new(exe)
        .args(["bench-pong", "--port", peer, "--count", &count.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn pong: {e}"))?;
    let out = child.stdout.take().ok_or("pong stdout")?;
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .map_err(|e| format!("reading pong: {e}"))?;
    if line.trim() != "pong ready" {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("pong did not start: {line:?}"));
    }
    Ok(child)
}

/// `q`-quantile (0..=1) of sorted `v`, nearest rank.
fn quantile(v: &[Duration], q: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

/// Runs `iters` round trips from `port` to a pong process on `peer`.
pub fn latency(port: &str, peer: &str, iters: u64) -> Result<LatencyFigures, String> {
    let total = iters + WARMUP;
    let mut child = spawn_pong(peer, total)?;
    let res = ping(port, total);
    let status = child.wait().map_err(|e| format!("wait pong: {e}"))?;
    let mut rtts = res?;
    if !status.success() {
        return Err(format!("pong failed: {status}"));
    }
    let mut rtts = rtts.split_off(WARMUP as usize);
    rtts.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    Ok(LatencyFigures {
        iters,
        median_us: us(quantile(&rtts, 0.5)),
        p99_us: us(quantile(&rtts, 0.99)),
        max_us: us(rtts.last().copied().unwrap_or_default()),
    })
}

fn ping(name: &str, total: u64) -> Result<Vec<Duration>, String> {
    let port = open_end(name)?;
    let rx = port.rx_ring(0).ok_or("RX ring 0 not bound")?;
    let tx = port.tx_ring(0).ok_or("TX ring 0 not bound")?;
    let mut frame = vec![0u8; LEN];
    let h = crate::frame::eth_header(
        crate::frame::BROADCAST,
        [0x02, 0, 0, 0, 0x70, 0x01],
        crate::frame::ETHERTYPE_EXPERIMENTAL,
    );
    frame[..h.len()].copy_from_slice(&h);
    let mut back = [0u8; SEQ_AT + 8];
    let mut rtts = Vec::with_capacity(total as usize);
    for seq in 0..total {
        frame[SEQ_AT..SEQ_AT + 8].copy_from_slice(&seq.to_le_bytes());
        let t0 = Instant::now();
        put(&tx, &frame)?;
        port.txsync()
            .map_err(|e| format!("ping: NIOCTXSYNC: {e}"))?;
        wait_rx(&port, &rx, "ping")?;
        let dt = t0.elapsed();
        let h = rx.head();
        rx.read_buf(rx.slot_buf_idx(h), &mut back);
        let got = u64::from_le_bytes(back[SEQ_AT..].try_into().map_err(|_| "seq")?);
        if got != seq || rx.next(h) != rx.tail() {
            return Err(format!(
                "ping: round trip {seq} brought back frame {got} ({} frames)",
                (rx.tail() + rx.num_slots() - h) % rx.num_slots()
            ));
        }
        rx.advance(rx.next(h));
        rtts.push(dt);
    }
    Ok(rtts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_micros(50));
        assert_eq!(quantile(&v, 0.99), Duration::from_micros(99));
        assert_eq!(quantile(&v[..1], 0.99), Duration::from_micros(1));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}
