//! `netmapd status`: a Unix socket on which the daemon writes its status lines.

use cuse_dev::ctrl::ControlPlane;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub const SOCKET_ENV: &str = "NETMAPD_STATUS_SOCKET";

pub fn default_socket() -> PathBuf {
    std::env::var_os(SOCKET_ENV).map_or_else(|| PathBuf::from("/run/netmapd.sock"), PathBuf::from)
}

pub struct StatusServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StatusServer {
    pub fn start(path: &Path, cp: Arc<ControlPlane>) -> std::io::Result<Self> {
        // A socket file left by a killed daemon would make bind fail.
        if UnixStream::connect(path).is_err() {
            let _ = std::fs::remove_file(path);
        }
        let l = UnixListener::bind(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::Builder::new()
            .name("status".into())
            .spawn(move || {
                for c in l.incoming() {
                    if st.load(Ordering::Acquire) {
                        break;
                    }
                    if let Ok(mut c) = c {
                        let _ = c.write_all(cp.status().as_bytes());
                    }
                }
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept loop so it sees the flag.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The client side: prints what the daemon reports.
pub fn print(path: &Path) -> ExitCode {
    let mut s = String::new();
    match UnixStream::connect(path).and_then(|mut c| c.read_to_string(&mut s)) {
        Ok(_) => {
            print!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "netmapd status: cannot reach the daemon at {}: {e}",
                path.display()
            );
            ExitCode::FAILURE
        }
    }
}
