//! The CUSE front end: `/dev/netmap` as a real character device registered through
//! `/dev/cuse`, for kernels without FUSE passthrough (Linux < 6.9, or passthrough
//! refused). It drives the same [`ControlPlane`] as the FUSE front end.
//!
//! * open → a new control-plane descriptor (its id is the CUSE file handle);
//! * ioctl → *unrestricted* CUSE ioctls: the request body and the whole option chain
//!   of NIOCCTRL are fetched and stored through FUSE_IOCTL_RETRY rounds planned by
//!   [`retry`] (no `process_vm_*`, except for chains too scattered for one retry);
//!   legacy NIOCREGIF/NIOCGINFO fetch their 60 bytes the same way; the sync ioctls
//!   carry nothing; unknown commands get EOPNOTSUPP;
//! * poll → answered at once; when not ready, the kernel's poll handle stays with the
//!   descriptor and a peer's progress notifies it;
//! * release → the descriptor's registration is undone.
//!
//! CUSE has **no mmap**: clients get ENODEV from `mmap(fd)`. The daemon therefore
//! creates the region as a file with a known path
//! ([`ControlPlane::new_published`]) and programs run with the LD_PRELOAD shim
//! (`shim/libnetmap-shim.so`), whose `mmap` maps that file when the fd is the netmap
//! device.
//!
//! The CUSE protocol is spoken by libfuse3 (`cuse_lowlevel_new` + a
//! `fuse_session_loop_mt` over an fd of `/dev/cuse` we open ourselves), declared by
//! hand in [`ffi`]; `build.rs` links it through pkg-config and checks the few struct
//! offsets we use against the installed headers.

mod ffi;
pub mod retry;

use crate::ctrl::{ControlPlane, PollWaker, ProcessMemory};
use std::fs::OpenOptions;
use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use ffi::PollHandle;

/// Path of the CUSE control device.
pub const CUSE_DEV: &str = "/dev/cuse";

/// Errors starting the CUSE front end.
#[derive(Debug, thiserror::Error)]
pub enum CuseError {
    #[error("{CUSE_DEV} is not available ({0}); the kernel needs the cuse module (modprobe cuse)")]
    NoCuse(io::Error),
    #[error("a CUSE device named {0:?} already exists (another netmapd?)")]
    Exists(String),
    #[error("starting the CUSE session: {0}")]
    Session(io::Error),
    #[error("the kernel did not register the CUSE device {0:?} (no answer to CUSE_INIT)")]
    NotRegistered(String),
}

/// How the device is registered.
#[derive(Debug, Clone)]
pub struct CuseOptions {
    /// Device name (`DEVNAME=`): the node appears as `/dev/<name>` on devtmpfs.
    pub devname: String,
    /// libfuse worker threads.
    pub threads: usize,
}

/// Opens `/dev/cuse`, loading the module with `modprobe cuse` if it is missing.
pub fn open_cuse() -> Result<OwnedFd, CuseError> {
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(CUSE_DEV)
            .map(OwnedFd::from)
    };
    match open() {
        Ok(fd) => Ok(fd),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENODEV)) => {
            tracing::info!("{CUSE_DEV}: {e}; trying modprobe cuse");
            match std::process::Command::new("modprobe").arg("cuse").status() {
                Ok(s) if s.success() => {}
                Ok(s) => tracing::info!("modprobe cuse: {s}"),
                Err(me) => tracing::info!("modprobe: {me}"),
            }
            // udev/devtmpfs may take a moment to create the node.
            for _ in 0..20 {
                if let Ok(fd) = open() {
                    return Ok(fd);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            open().map_err(CuseError::NoCuse)
        }
        Err(e) => Err(CuseError::NoCuse(e)),
    }
}

/// The sysfs directory of a CUSE device.
pub fn sysfs_dir(devname: &str) -> PathBuf {
    PathBuf::from("/sys/class/cuse").join(devname)
}

/// `(major, minor)` of a registered CUSE device.
pub fn device_number(devname: &str) -> io::Result<(u32, u32)> {
    let s = std::fs::read_to_string(sysfs_dir(devname).join("dev"))?;
    let (a, b) = s
        .trim()
        .split_once(':')
        .ok_or_else(|| io::Error::other(format!("bad dev file {s:?}")))?;
    let p = |x: &str| {
        x.parse::<u32>()
            .map_err(|_| io::Error::other(format!("bad dev file {s:?}")))
    };
    Ok((p(a)?, p(b)?))
}

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
        if let Some(tx) = self
            .init_tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
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
