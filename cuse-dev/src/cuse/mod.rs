//! The CUSE front end: `/dev/netmap` as a real character device registered through
//! `/dev/cuse`, for kernels without FUSE passthrough (Linux < 6.9, or passthrough
//! refused). It drives the same [`ControlPlane`](crate::ctrl::ControlPlane) as the FUSE front end.
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
//! ([`ControlPlane::new_published`](crate::ctrl::ControlPlane::new_published)) and programs run with the preload library
//! (`libnetmapd_preload.so`, crate `preload/`), whose `mmap` maps that file when the fd is the netmap
//! device.
//!
//! The CUSE protocol is spoken by libfuse3 (`cuse_lowlevel_new` + a
//! `fuse_session_loop_mt` over an fd of `/dev/cuse` we open ourselves), declared by
//! hand in `ffi` and loaded at run time (`libfuse3.so.3`); a test checks the few struct
//! offsets we use against the installed headers.

mod ffi;
mod session;
pub use session::{start, CuseDevice};
pub mod retry;

use std::fs::OpenOptions;
use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

pub use ffi::{PollHandle, LIBFUSE3};

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
    /// libfuse3 (loaded at run time) is missing or incomplete.
    #[error("the CUSE front end needs {lib} ({0}): install it with `apt-get install -y libfuse3-3`", lib = ffi::LIBFUSE3)]
    NoLibrary(String),
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
