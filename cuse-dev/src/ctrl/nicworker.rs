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
use netmap_netif::nic::{rx_pause, RX_BATCH_MIN};
use netmap_netif::sync::worker_sync;
use netmap_netif::Dir;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Longest sleep without a doorbell (a safety net: every event rings it).
const IDLE: Duration = Duration::from_millis(20);

/// Passes that find nothing which the worker still makes on its RX pause, before it
/// goes back to waiting for the port's events. Frames keep coming with gaps: AF_PACKET
/// hands them over in capture blocks the kernel retires every millisecond, so a pass
/// between two retirements finds nothing although the stream goes on; going back to
/// the events there cost a relay wake-up and a worker wake-up per block (the relay
/// thread was 36 ns per frame of the AF_PACKET receive cost, `bench/nic.sh`). Two
/// more passes cover a block's period; when the stream has really stopped they cost
/// two wake-ups, once.
const QUIET_PASSES: u32 = 2;

/// How often the worker looks at an AF_XDP queue a client reads itself (is the
/// client still there, is the link up).
/// Each look costs a few system calls (the process's pidfd, the socket's error, the
/// interface now and then) and, when nothing else wakes the worker, a wake-up: at
/// the 20 ms idle period they cost 13 ns per frame a client received at 0.45 Mpps
/// (`perf`, this VM). Looked at every 100 ms, and the worker sleeping that long
/// while only such queues need it, a dead reader's ring or a link that went down is
/// noticed within 100 ms.
const CLIENT_LOOK: Duration = Duration::from_millis(100);

/// Pause while transmissions await their completion and nothing was received (the
/// kernel may want to be asked again once they come back).
const TX_PAUSE: Duration = Duration::from_micros(200);

/// Why the worker waits before its next pass.
enum Pause {
    /// Frames were received: gather more for this long, unless the doorbell rings.
    Rx(Duration),
    /// Transmissions await completion: look again after [`TX_PAUSE`].
    Tx,
}

/// The worker of one NIC adapter. Dropping it stops the thread within [`IDLE`]
/// (it also stops by itself when the adapter goes away).
pub(crate) struct NicWorker {
    /// Shared with the thread.
    flags: Arc<Flags>,
    /// Region offset of the port's doorbell word.
    pub doorbell: usize,
    /// Region offset of the port's TX ring 0 (whose state block holds the doorbell).
    pub ring0: usize,
}

impl Drop for NicWorker {
    fn drop(&mut self) {
        self.flags.stop.store(true, Ordering::Release);
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
        let flags = Arc::new(Flags::default());
        let f2 = flags.clone();
        std::thread::Builder::new()
            .name(format!("nic-{name}"))
            .spawn(move || run(cp, aid, doorbell, &f2))?;
        Ok(Self {
            flags,
            doorbell,
            ring0,
        })
    }

    /// A ring sync failed: the port stays on the kernel path.
    pub fn failed(&self) -> bool {
        self.flags.failed.load(Ordering::Acquire)
    }

    /// Frames are streaming in and the worker passes after RX pauses: a kernel-path
    /// poll then leaves the frames to its next pass (`sync::nic_rx_release`). Outside a
    /// stream (a frame now and then: a request/response exchange) a poll takes them
    /// itself, as the worker would only add a wake-up to their way.
    pub fn streaming(&self) -> bool {
        self.flags.streaming.load(Ordering::Acquire)
    }
}

/// What the worker thread shares with its [`NicWorker`] (see its accessors).
#[derive(Default)]
struct Flags {
    stop: AtomicBool,
    failed: AtomicBool,
    streaming: AtomicBool,
}

fn run(weak: Weak<ControlPlane>, aid: u64, doorbell: usize, flags: &Flags) {
    run_passes(&weak, aid, doorbell, flags);
    flags.streaming.store(false, Ordering::Release);
    if let Some(cp) = weak.upgrade() {
        cp.nic_bells.lock().remove(&aid);
        // The relay handles the port's events from now on.
        cp.lock().set_events_watched(&cp.events, aid, true);
    }
}

fn run_passes(weak: &Weak<ControlPlane>, aid: u64, doorbell: usize, flags: &Flags) {
    let (stop, failed) = (&flags.stop, &flags.failed);
    let mut pass_began = Instant::now();
    // The last RX pause, while frames are coming, and how many passes since found none.
    let mut last_rx: Option<Duration> = None;
    let mut quiet = 0u32;
    // Per RX ring, when the worker last looked at a queue a client reads itself.
    let mut looked: Vec<Instant> = Vec::new();
    while !stop.load(Ordering::Acquire) {
        let began = Instant::now();
        let since = began.duration_since(pass_began);
        pass_began = began;
        let Some(cp) = weak.upgrade() else { break };
        let mem = cp.mem();
        let bell = Doorbell::new(mem, doorbell);
        let Ok(seen) = bell.value() else { break };
        let mut wakers = Vec::new();
        // This pass found AF_XDP queues that clients read themselves.
        let client_reads;
        // `pause`: frames were received, or transmissions await completion (the
        // kernel may want to be asked again once they come back): pass again after a
        // pause rather than waiting for an event.
        let (moved, pause) = {
            let mut st = cp.lock();
            let Some(slot) = st.adapters.get_mut(&aid) else {
                break;
            };
            let ad = slot.ad.as_mut();
            let counts = ad.endpoints()[0].counts;
            looked.resize(
                counts.rx_rings as usize,
                began.checked_sub(CLIENT_LOOK).unwrap_or(began),
            );
            let mut moved = false;
            let mut reads_now = false;
            let mut rx_frames = 0u64;
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
                    // An AF_XDP queue a client reads itself: the sync only looks
                    // whether that client is still there and the link up, which
                    // every CLIENT_LOOK is enough for.
                    if d == Dir::Rx && ks.reader().is_ok_and(|o| o != 0) {
                        reads_now = true;
                        let due = looked
                            .get(i)
                            .is_none_or(|t| began.duration_since(*t) >= CLIENT_LOOK);
                        if !due {
                            continue;
                        }
                        if let Some(t) = looked.get_mut(i) {
                            *t = began;
                        }
                    }
                    match worker_sync(ad, 0, d, i, mem) {
                        Ok(Some(n)) if n > 0 => {
                            moved = true;
                            if d == Dir::Rx {
                                rx_frames += u64::from(n);
                            }
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
            let rx_moved = rx_frames > 0;
            // Moderation: a stream's batch, or a stream going on (the last pass paused).
            let stream = rx_frames >= RX_BATCH_MIN || (rx_moved && last_rx.is_some());
            // A pass that found nothing in the middle of a stream: keep pausing for a
            // few passes rather than going back to the events (see QUIET_PASSES).
            let lull = !rx_moved && error.is_none() && quiet < QUIET_PASSES;
            let lull = lull.then_some(last_rx).flatten();
            client_reads = reads_now;
            let tx_pending = ad.tx_pending();
            let events_changed = ad.take_events_changed();
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
            if events_changed {
                st.rewatch_events(&cp.events, aid);
            }
            if stream || lull.is_some() {
                // Passing again after a pause: events would only wake the relay.
                st.set_events_watched(&cp.events, aid, false);
            } else if !moved && !stalled {
                // Going to sleep on the doorbell: the port's events must wake us. (A
                // full RX ring's reader rings the doorbell when it releases slots;
                // watching a socket whose frames cannot move yet would only spin.)
                st.set_events_watched(&cp.events, aid, true);
            }
            // Set under the state lock, which a kernel-path poll holds while it looks.
            flags
                .streaming
                .store(stream || lull.is_some(), Ordering::Release);
            let pause = if stream {
                let p = rx_pause(rx_frames, since, counts.rx_slots);
                (last_rx, quiet) = (Some(p), 0);
                Some(Pause::Rx(p))
            } else if let Some(p) = lull {
                quiet += 1;
                Some(Pause::Rx(p))
            } else {
                last_rx = None;
                tx_pending.then_some(Pause::Tx)
            };
            (moved, pause)
        };
        fire(wakers);
        if failed.load(Ordering::Acquire) {
            break;
        }
        // A doorbell rung since the pass began (a client's frames to send, a full RX
        // ring released) ends an RX pause or the idle wait at once.
        let wait = match pause {
            Some(Pause::Tx) => {
                std::thread::sleep(TX_PAUSE);
                continue;
            }
            Some(Pause::Rx(p)) => p,
            None if !moved && client_reads => CLIENT_LOOK,
            None if !moved => IDLE,
            None => continue,
        };
        if bell.wait(seen, wait).is_err() {
            break;
        }
    }
}
