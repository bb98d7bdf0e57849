//! The data-path thread of a NIC port whose clients sync in their own process.
//!
//! A NIC ring's frames go through AF_PACKET sockets the daemon owns, so a preloaded
//! client cannot move them itself as it does for pipes and VALE. What it can avoid is
//! the round trip: its txsync publishes the new head in the ring's state block and
//! rings this thread's doorbell (a futex word in the region; no system call while the
//! thread is running), and its rxsync takes what this thread has published and hands
//! slots back the same way. The thread runs the very syncs the daemon runs for
//! programs it serves through FUSE/CUSE ([`netmap_netif::sync::worker_sync`] on the
//! shared state), so both kinds of program use the same port at once.
//!
//! It sleeps on the doorbell, which is rung by clients (new frames to send, or slots
//! released into an RX ring it had to leave full) and by the port-events thread when
//! the port's sockets are ready (frames received, transmissions completed). Each pass
//! syncs every hardware ring whose kind is KIND_NIC, publishes the rings whose `hwtail`
//! moved (futex sleepers in clients; kernel-path pollers through their wakers), and
//! passes again until nothing moves.
//!
//! A ring sync that fails (link down, interface deleted) switches the port's rings
//! back to the kernel path: clients' next syncs then reach the daemon, which reports
//! the error exactly as it does for programs that never ran in process.

use super::{fire, ControlPlane};
use netmap_netif::kstate::{publish, Doorbell, KState, KIND_NIC};
use netmap_netif::sync::worker_sync;
use netmap_netif::Dir;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Longest sleep without a doorbell (a safety net: every event rings it).
const IDLE: Duration = Duration::from_millis(20);

/// After a pass that received frames, how long the worker lets more accumulate before
/// the next pass, as a NIC moderates its RX interrupts (the port's event descriptors
/// are out of the epoll set meanwhile: see `State::set_events_watched`). An AF_XDP
/// socket signals every batch the kernel delivers, a handful of frames at a time on a
/// veth: passing at each signal cost this thread about 800 ns per received frame
/// (`bench/nic.sh`, 2 M frames); with a pause of 50 µs, 320 ns and the client 113;
/// with 200 µs, 181 and 58 (AF_PACKET: 165 and 18). While frames keep coming the
/// worker passes about once per pause, which the rings absorb many times over (1024
/// slots and an 8192-frame socket ring against about 100 frames per pause at 0.5
/// Mpps); a frame arriving on an idle port wakes the worker at once. AF_PACKET's
/// capture blocks batch by themselves (1 ms) and see no difference.
const RX_PAUSE: Duration = Duration::from_micros(200);

/// The worker of one NIC adapter. Dropping it stops the thread within [`IDLE`]
/// (it also stops by itself when the adapter goes away).
pub(crate) struct NicWorker {
    stop: Arc<AtomicBool>,
    /// Region offset of the port's doorbell word.
    pub doorbell: usize,
    /// Region offset of the port's TX ring 0 (whose state block holds the doorbell).
    pub ring0: usize,
    /// A ring sync failed: the port stays on the kernel path.
    pub failed: Arc<AtomicBool>,
}

impl Drop for NicWorker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

impl NicWorker {
    pub fn spawn(
        cp: Weak<ControlPlane>,
        aid: u64,
        ring0: usize,
        doorbell: usize,
        name: &str,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(AtomicBool::new(false));
        let (s2, f2) = (stop.clone(), failed.clone());
        std::thread::Builder::new()
            .name(format!("nic-{name}"))
            .spawn(move || run(cp, aid, doorbell, &s2, &f2))?;
        Ok(Self {
            stop,
            doorbell,
            ring0,
            failed,
        })
    }
}

fn run(
    weak: Weak<ControlPlane>,
    aid: u64,
    doorbell: usize,
    stop: &AtomicBool,
    failed: &AtomicBool,
) {
    run_passes(&weak, aid, doorbell, stop, failed);
    if let Some(cp) = weak.upgrade() {
        cp.nic_bells.lock().remove(&aid);
        // The relay handles the port's events from now on.
        cp.lock().set_events_watched(&cp.events, aid, true);
    }
}

fn run_passes(
    weak: &Weak<ControlPlane>,
    aid: u64,
    doorbell: usize,
    stop: &AtomicBool,
    failed: &AtomicBool,
) {
    while !stop.load(Ordering::Acquire) {
        let Some(cp) = weak.upgrade() else { break };
        let mem = cp.mem();
        let bell = Doorbell::new(mem, doorbell);
        let Ok(seen) = bell.value() else { break };
        let mut wakers = Vec::new();
        // `poll_soon`: frames were received, or transmissions await completion (the
        // kernel may want to be asked again once they come back): pass again after a
        // pause rather than waiting for an event.
        let (moved, poll_soon) = {
            let mut st = cp.lock();
            let Some(slot) = st.adapters.get_mut(&aid) else {
                break;
            };
            let ad = slot.ad.as_mut();
            let counts = ad.endpoints()[0].counts;
            let mut moved = false;
            let mut rx_moved = false;
            let mut stalled = false;
            let mut error = None;
            for (d, n) in [(Dir::Tx, counts.tx_rings), (Dir::Rx, counts.rx_rings)] {
                for i in 0..n as usize {
                    let Some(off) = ad.endpoints()[0].krings(d).get(i).and_then(|k| k.ring_off)
                    else {
                        continue;
                    };
                    let ks = KState::new(mem, off);
                    if !ks.kind().is_ok_and(|k| k == KIND_NIC) {
                        continue;
                    }
                    match worker_sync(ad, 0, d, i, mem) {
                        Ok(Some(true)) => {
                            moved = true;
                            rx_moved |= d == Dir::Rx;
                            if let Err(e) = publish(&ks) {
                                tracing::debug!(%e, "publishing a NIC ring");
                            }
                        }
                        Ok(_) => {}
                        Err(e) => error = Some(e),
                    }
                    if d == Dir::Rx {
                        let k = &ad.endpoints()[0].krings(d)[i];
                        stalled |= k.next(k.hwtail) == k.hwcur;
                    }
                }
            }
            let tx_pending = ad.tx_pending();
            if let Some(e) = error {
                tracing::info!(port = %ad.endpoints()[0].name, %e, "NIC ring sync failed: the port's clients use the daemon's path from now on");
                failed.store(true, Ordering::Release);
                for off in ad.endpoints()[0].ring_offs() {
                    let ks = KState::new(mem, off);
                    let _ = ks.set_kind(0);
                    // Sleepers wake, sync, find the kernel path, and get the error there.
                    let _ = publish(&ks);
                }
                moved = true;
            }
            if moved {
                st.collect_all_wakers(aid, &mut wakers);
            }
            if rx_moved {
                // Passing again after a pause: events would only wake the relay.
                st.set_events_watched(&cp.events, aid, false);
            } else if !moved && !stalled {
                // Going to sleep on the doorbell: the port's events must wake us. (A
                // full RX ring's reader rings the doorbell when it releases slots;
                // watching a socket whose frames cannot move yet would only spin.)
                st.set_events_watched(&cp.events, aid, true);
            }
            (moved, rx_moved || tx_pending)
        };
        fire(wakers);
        if failed.load(Ordering::Acquire) {
            break;
        }
        if poll_soon {
            std::thread::sleep(RX_PAUSE);
        } else if !moved && bell.wait(seen, IDLE).is_err() {
            break;
        }
    }
}
