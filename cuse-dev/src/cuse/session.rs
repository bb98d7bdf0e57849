//! The CUSE session (needs libfuse3): registration, and CUSE requests as
//! control-plane calls.

use super::{device_number, ffi, retry, sysfs_dir, CuseError, CuseOptions};
use crate::ctrl::{ControlPlane, PollWaker, ProcessMemory};
use ffi::PollHandle;
use parking_lot::Mutex;
use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// A registered device. Dropping it does not unregister the device: that happens when
/// the process exits (and closes `/dev/cuse`); [`CuseDevice::stop`] stops serving.
pub struct CuseDevice {
    session: ffi::Session,
    pub devname: String,
    pub dev: (u32, u32),
}

impl CuseDevice {
    pub fn stop(&self) {
        self.session.exit();
    }
}

/// Registers the netmap character device and serves it (at most once per process).
pub fn start(
    cp: Arc<ControlPlane>,
    cuse: OwnedFd,
    opts: &CuseOptions,
) -> Result<CuseDevice, CuseError> {
    ffi::load_libfuse3().map_err(CuseError::NoLibrary)?;
    if sysfs_dir(&opts.devname).exists() {
        return Err(CuseError::Exists(opts.devname.clone()));
    }
    let (tx, rx) = mpsc::channel();
    let h = Arc::new(NetmapCuse {
        cp,
        init_tx: Mutex::new(Some(tx)),
    });
    let session =
        ffi::Session::start(h, cuse, &opts.devname, opts.threads).map_err(CuseError::Session)?;
    let not_registered = || CuseError::NotRegistered(opts.devname.clone());
    rx.recv_timeout(Duration::from_secs(5))
        .map_err(|_| not_registered())?;
    // init_done runs after the reply was written, whether or not the kernel accepted it.
    let mut dev = None;
    for _ in 0..50 {
        if let Ok(d) = device_number(&opts.devname) {
            dev = Some(d);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let dev = dev.ok_or_else(not_registered)?;
    tracing::info!(
        devname = %opts.devname,
        major = dev.0,
        minor = dev.1,
        "CUSE device registered"
    );
    Ok(CuseDevice {
        session,
        devname: opts.devname.clone(),
        dev,
    })
}

/// The policy: CUSE requests as control-plane calls.
struct NetmapCuse {
    cp: Arc<ControlPlane>,
    init_tx: Mutex<Option<mpsc::Sender<()>>>,
}

struct CuseWaker(PollHandle);

impl PollWaker for CuseWaker {
    fn wake(self: Box<Self>) {
        self.0.notify();
    }
}

impl ffi::Handler for NetmapCuse {
    fn init_done(&self) {
        if let Some(tx) = self.init_tx.lock().take() {
            let _ = tx.send(());
        }
    }

    fn open(&self) -> u64 {
        let fd = self.cp.open();
        tracing::debug!(fd, "open (CUSE)");
        fd
    }

    fn release(&self, fh: u64) {
        tracing::debug!(fd = fh, "release (CUSE)");
        let _closing = self.cp.closing();
        self.cp.release(fh);
    }

    fn ioctl(
        &self,
        pid: u32,
        fh: u64,
        cmd: u32,
        arg: u64,
        in_buf: &[u8],
        out_size: usize,
    ) -> retry::Step {
        let caller = ProcessMemory::new(pid);
        retry::step(self.cp.as_ref(), fh, cmd, arg, in_buf, out_size, &caller)
    }

    fn poll(&self, fh: u64, events: u32, ph: Option<PollHandle>) -> u32 {
        let waker = ph.map(|p| Box::new(CuseWaker(p)) as Box<dyn PollWaker>);
        self.cp.poll(fh, events, waker)
    }
}
