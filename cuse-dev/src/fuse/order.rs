//! Close before the next control request, as with a kernel device.
//!
//! A kernel device's release runs before the last `close()` returns, so a program that
//! closes both ends of a pipe and registers the pipe again gets a fresh pair. FUSE
//! sends RELEASE in the background instead: `close()` returns once the request is
//! queued. The kernel queues it ahead of anything the program sends next and the
//! worker threads take requests in queue order, but a worker that has just read a
//! RELEASE can be preempted before it handles it while another worker handles the
//! program's next REGISTER, which then still finds the old pipe (seen in CI on a loaded
//! machine, and at will with both CPUs busy: conformance `destroyed_when_both_closed`).
//!
//! [`Order::barrier`] closes that window for control requests (REGISTER, PORT_INFO,
//! ...; never for the syncs): it waits until every other worker is either blocked in
//! its `read` of the FUSE device (it holds no request) or inside a handler other than
//! release. A worker in neither state has read a request it has not handled yet, or is
//! releasing; either may be a release queued before the caller's request. Requests
//! read after the caller's were queued after it and do not matter.
//!
//! Workers say which handler they are in through [`Order::enter`]; whether a worker is
//! blocked in `read` comes from `/proc/self/task/TID/syscall`.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a worker is doing, as far as ordering goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Handling {
    /// Not in one of our handlers: reading, about to handle a request, or replying.
    Nothing = 0,
    /// In a handler that cannot be a pending close.
    Other = 1,
    /// Releasing a descriptor.
    Release = 2,
}

/// The worker threads' states, and the barrier that reads them.
#[derive(Default)]
pub struct Order {
    states: Mutex<HashMap<i32, Arc<AtomicU8>>>,
    /// Logged once: the barrier cannot tell an idle worker (no `syscall` file).
    blind_logged: std::sync::atomic::AtomicBool,
}

/// Restores the worker's state to [`Handling::Nothing`] when the handler returns.
pub struct Entered(Arc<AtomicU8>);

impl Drop for Entered {
    fn drop(&mut self) {
        self.0.store(Handling::Nothing as u8, Ordering::Release);
    }
}

/// How long a barrier waits for one worker before it gives up (with a warning): a
/// worker stuck that long outside a handler is not a close racing this request.
const PATIENCE: Duration = Duration::from_secs(2);

/// The calling thread's id, read once per thread from `/proc/thread-self` (this crate
/// has no unsafe code, and gettid is only reachable through libc's).
fn gettid() -> i32 {
    thread_local! {
        static TID: i32 = std::fs::read_link("/proc/thread-self")
            .ok()
            .and_then(|p| p.file_name()?.to_str()?.parse().ok())
            .unwrap_or(0);
    }
    TID.with(|t| *t)
}

impl Order {
    /// Marks the calling worker as inside a handler of the given kind until the guard
    /// is dropped.
    pub fn enter(&self, what: Handling) -> Entered {
        let tid = gettid();
        let state = Arc::clone(self.states.lock().entry(tid).or_default());
        state.store(what as u8, Ordering::Release);
        Entered(state)
    }

    fn state(&self, tid: i32) -> Handling {
        match self
            .states
            .lock()
            .get(&tid)
            .map(|s| s.load(Ordering::Acquire))
        {
            Some(1) => Handling::Other,
            Some(2) => Handling::Release,
            _ => Handling::Nothing,
        }
    }

    /// Waits until no close queued before the caller's request is still unhandled (see
    /// the module documentation).
    pub fn barrier(&self) {
        let me = gettid();
        for tid in worker_tids() {
            if tid == me {
                continue;
            }
            let start = Instant::now();
            loop {
                let settled = match self.state(tid) {
                    Handling::Other => true,
                    Handling::Release => false,
                    Handling::Nothing => match blocked_in_read(tid) {
                        Some(b) => b,
                        None => {
                            if !self.blind_logged.swap(true, Ordering::Relaxed) {
                                tracing::warn!(
                                    tid,
                                    "cannot read /proc/self/task/TID/syscall: a close racing \
                                     the next REGISTER may go unnoticed"
                                );
                            }
                            true
                        }
                    },
                };
                if settled {
                    break;
                }
                if start.elapsed() > PATIENCE {
                    tracing::warn!(tid, "FUSE worker busy outside a handler for 2 s; going on");
                    break;
                }
                std::thread::sleep(Duration::from_micros(20));
            }
        }
    }
}

/// Whether an ioctl goes through [`Order::barrier`]: control requests do; the data
/// path never waits — the syncs, and the kick a preloaded client sends when it finds
/// its peer polling through the kernel (a VALE sender can send one per batch it
/// forwards; behind the barrier's `/proc` reads and sleeps they had brought 2-port
/// VALE from 13–16 to 3–8 Mpps, `bench/run.sh`, 2026-12-04).
pub fn waits_for_closes(cmd: u32) -> bool {
    !matches!(
        cmd,
        netmap_abi::NIOCTXSYNC | netmap_abi::NIOCRXSYNC | netmap_abi::NIOC_NMD_KICK
    )
}

/// The tids of this process's FUSE workers (fuser names them `fuser-N`; its
/// `fuser-bg` thread only waits for them).
fn worker_tids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|tid| {
            std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
                .map(|c| {
                    c.trim_end()
                        .strip_prefix("fuser-")
                        .is_some_and(|n| n.parse::<u32>().is_ok())
                })
                .unwrap_or(false)
        })
        .collect()
}

/// Whether the thread is blocked in `read` (the only call a fuser worker blocks in
/// while it holds no request); `None` if the kernel does not say.
fn blocked_in_read(tid: i32) -> Option<bool> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    // "running", "-1 sp pc" (in user space) or "NR arg0 ... sp pc" (in a call).
    Some(s.split_whitespace().next()?.parse::<i64>() == Ok(libc::SYS_read))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn a_thread_blocked_in_read_is_seen_as_such() {
        let (mut r, mut w) = std::io::pipe().expect("pipe");
        let tid = Arc::new(std::sync::atomic::AtomicI32::new(0));
        let t2 = Arc::clone(&tid);
        let h = std::thread::spawn(move || {
            t2.store(gettid(), Ordering::Release);
            let mut b = [0u8; 1];
            std::io::Read::read(&mut r, &mut b).expect("read");
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = false;
        while Instant::now() < deadline {
            let t = tid.load(Ordering::Acquire);
            if t != 0 && blocked_in_read(t) == Some(true) {
                seen = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(seen, "a thread blocked in read(2) was never reported so");
        std::io::Write::write_all(&mut w, b"x").expect("write");
        h.join().expect("join");
        // A thread running in user space is not.
        let stop = Arc::new(AtomicBool::new(false));
        let tid = Arc::new(std::sync::atomic::AtomicI32::new(0));
        let (s2, t3) = (Arc::clone(&stop), Arc::clone(&tid));
        let h = std::thread::spawn(move || {
            t3.store(gettid(), Ordering::Release);
            while !s2.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
        });
        while tid.load(Ordering::Acquire) == 0 {
            std::thread::yield_now();
        }
        let t = tid.load(Ordering::Acquire);
        let reports: Vec<_> = (0..20).map(|_| blocked_in_read(t)).collect();
        stop.store(true, Ordering::Release);
        h.join().expect("join");
        assert!(
            reports.iter().all(|r| *r == Some(false)),
            "a spinning thread reported as blocked in read: {reports:?}"
        );
    }

    #[test]
    fn only_control_requests_wait_for_closes() {
        for cmd in [
            netmap_abi::NIOCREGIF,
            netmap_abi::NIOCCTRL,
            netmap_abi::NIOCGINFO,
            netmap_abi::NIOCCONFIG,
        ] {
            assert!(waits_for_closes(cmd), "{cmd:#x}");
        }
        for cmd in [
            netmap_abi::NIOCTXSYNC,
            netmap_abi::NIOCRXSYNC,
            netmap_abi::NIOC_NMD_KICK,
        ] {
            assert!(!waits_for_closes(cmd), "{cmd:#x}");
        }
    }

    #[test]
    fn barrier_waits_for_a_release_in_progress() {
        let order = Arc::new(Order::default());
        let done = Arc::new(AtomicBool::new(false));
        let (o2, d2) = (Arc::clone(&order), Arc::clone(&done));
        let (tx, rx) = std::sync::mpsc::channel();
        let h = std::thread::Builder::new()
            .name("fuser-9".into())
            .spawn(move || {
                let g = o2.enter(Handling::Release);
                tx.send(()).expect("send");
                std::thread::sleep(Duration::from_millis(200));
                d2.store(true, Ordering::Release);
                drop(g);
                let _g = o2.enter(Handling::Other);
                std::thread::sleep(Duration::from_millis(300));
            })
            .expect("spawn");
        rx.recv().expect("recv");
        order.barrier();
        assert!(
            done.load(Ordering::Acquire),
            "the barrier returned while a worker was still releasing"
        );
        h.join().expect("join");
    }
}
