//! `nm-client monitor-rx`: a monitor port client (`NAME/r`, `/t`, `/rt`, `/z`;
//! NETMAP-ABI.md §10.5) that checks every copied frame against the payload stream.

use std::io::Write;
use std::time::{Duration, Instant};

use netmap_abi::{
    NmreqRegister, NR_MONITOR_RX, NR_MONITOR_TX, NR_REG_ALL_NIC, NR_ZCOPY_MON, NS_MOREFRAG,
    NS_TXMON,
};

use crate::payload::{Payload, MAX_LEN};
use crate::port::Port;
use crate::sys::{errno_of, poll_mask_name};

/// How long REGISTER is retried while the monitored port is not registered yet
/// (EINVAL): the test starts the monitor and the parent concurrently.
const PARENT_WAIT: Duration = Duration::from_secs(20);
/// How long to wait for the first frame, and between frames afterwards.
const FIRST_WAIT: Duration = Duration::from_secs(30);
const NEXT_WAIT_MS: i32 = 5000;
/// Slots per monitor RX ring asked for.
const MON_SLOTS: u32 = 2048;

/// Register flags for the `/FLAGS` letters `r`, `t`, `z` (any combination).
pub fn flags_of(letters: &str) -> Result<u64, String> {
    let mut f = 0;
    for c in letters.chars() {
        f |= match c {
            'r' => NR_MONITOR_RX,
            't' => NR_MONITOR_TX,
            'z' => NR_ZCOPY_MON,
            _ => return Err(format!("monitor flag {c:?} (expected r, t, z)")),
        };
    }
    if f == 0 {
        return Err("no monitor flag".into());
    }
    Ok(f)
}

/// Registers a monitor of `name` with `letters`, prints "monitor-rx ready", then
/// receives until `count` frames arrived. Frames seen on the parent's TX rings must
/// carry NS_TXMON (and only those when the monitor watches one direction); each
/// direction must deliver packets `0, 1, …` of the payload stream in order and
/// intact. Returns the summary line.
pub fn monitor_rx(
    name: &str,
    letters: &str,
    count: u64,
    payload: &Payload,
) -> Result<String, String> {
    let flags = flags_of(letters)?;
    let req = NmreqRegister {
        nr_mode: NR_REG_ALL_NIC,
        nr_flags: flags,
        // Room for bursts while this process is not scheduled (the parent never waits
        // for a monitor: a full monitor ring drops).
        nr_rx_slots: MON_SLOTS,
        ..NmreqRegister::default()
    };
    let waited = Instant::now();
    let port = loop {
        match Port::register_req(name, req) {
            Ok(p) => break p,
            Err(e) if errno_of(&e) == libc::EINVAL && waited.elapsed() < PARENT_WAIT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("REGISTER {name:?} /{letters}: {e}")),
        }
    };
    let got_flags = port.reg().nr_flags;
    let want_flags = if flags & NR_ZCOPY_MON != 0 {
        flags | NR_MONITOR_TX | NR_MONITOR_RX
    } else {
        flags
    };
    if got_flags != want_flags {
        return Err(format!(
            "REGISTER reply nr_flags {got_flags:#x}, expected {want_flags:#x}"
        ));
    }
    let watch_tx = want_flags & NR_MONITOR_TX != 0;
    let watch_rx = want_flags & NR_MONITOR_RX != 0;
    let nrx = port.ni_rx_rings() as usize;
    println!(
        "monitor-rx ready: {name}/{letters} as {:?} with {nrx} RX rings",
        port.ni_name()
    );
    std::io::stdout().flush().ok();

    let mut buf = vec![0u8; MAX_LEN];
    // Next expected sequence number of the frames seen on TX and on RX.
    let mut next = [0u64; 2];
    let mut got = 0u64;
    let mut first = None::<Instant>;
    while got < count {
        let timeout = match first {
            Some(_) => NEXT_WAIT_MS,
            None => FIRST_WAIT.as_millis() as i32,
        };
        let rev = port
            .poll(libc::POLLIN, timeout)
            .map_err(|e| format!("poll(POLLIN): {e}"))?;
        if rev == 0 {
            return Err(format!(
                "poll(POLLIN) timed out having received {got} of {count} frames (tx {}, rx {})",
                next[0], next[1]
            ));
        }
        if rev & libc::POLLERR != 0 {
            return Err(format!("poll(POLLIN) returned {}", poll_mask_name(rev)));
        }
        first.get_or_insert_with(Instant::now);
        for i in 0..nrx {
            let Some(ring) = port.rx_ring(i) else {
                continue;
            };
            let tail = ring.tail();
            let mut head = ring.head();
            while head != tail {
                let len = ring.slot_len(head) as usize;
                let fl = ring.slot_flags(head);
                if len > buf.len() {
                    return Err(format!("frame #{got}: len {len} > {MAX_LEN}"));
                }
                if fl & NS_MOREFRAG != 0 {
                    return Err(format!("frame #{got}: unexpected NS_MOREFRAG"));
                }
                let on_tx = fl & NS_TXMON != 0;
                if (on_tx && !watch_tx) || (!on_tx && !watch_rx) {
                    return Err(format!(
                        "frame #{got}: flags {fl:#x} but the monitor watches {}",
                        if watch_tx { "TX only" } else { "RX only" }
                    ));
                }
                ring.read_buf(ring.slot_buf_idx(head), &mut buf[..len]);
                let d = usize::from(!on_tx);
                payload
                    .check(next[d], &buf[..len])
                    .map_err(|e| format!("{} copy: {e}", if on_tx { "TX" } else { "RX" }))?;
                next[d] += 1;
                got += 1;
                head = ring.next(head);
            }
            ring.advance(head);
        }
    }
    port.rxsync()
        .map_err(|e| format!("final NIOCRXSYNC: {e}"))?;
    let secs = first.map(|f| f.elapsed().as_secs_f64()).unwrap_or(0.0);
    Ok(format!(
        "monitor-rx {name}/{letters}: received {got} frames (tx {}, rx {}) in {secs:.3} s, all in order and intact",
        next[0], next[1]
    ))
}
