//! Running the daemon: control plane, front end (FUSE mount over the device path, or a
//! CUSE character device with its region published for the preload library), status socket,
//! and a clean shutdown that leaves nothing behind.
//!
//! Front-end choice (`--frontend auto`): FUSE passthrough if the kernel is at least 6.9
//! and accepts INIT with FUSE_PASSTHROUGH (a refused INIT is detected and the dead
//! mount removed), else CUSE (`/dev/cuse`, after `modprobe cuse` if needed), else an
//! error naming both missing pieces.

use crate::status::StatusServer;
use crate::{DaemonOpts, Frontend};
use cuse_dev::ctrl::{ControlPlane, CtrlConfig, CtrlError};
use cuse_dev::cuse::{self, CuseDevice, CuseError, CuseOptions};
use cuse_dev::fuse::{mount, DeviceAttr, NetmapFs};
use cuse_dev::sock::SockFrontend;
use netmap_pool::PoolConfig;
use std::fs::OpenOptions;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Ctrl(#[from] CtrlError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Cuse(#[from] CuseError),
    #[error("{0}")]
    Sock(#[from] cuse_dev::sock::SockError),
    #[error("FUSE passthrough unavailable: {0}")]
    NoPassthrough(String),
    #[error(
        "no usable front end: FUSE passthrough unavailable ({fuse}); CUSE unavailable ({cuse})"
    )]
    NoFrontend { fuse: String, cuse: String },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
    let what = what.into();
    move |source| DaemonError::Io { what, source }
}

/// Resolves a group name or number.
fn resolve_group(g: &str) -> Result<u32, DaemonError> {
    if let Ok(n) = g.parse() {
        return Ok(n);
    }
    let groups = std::fs::read_to_string("/etc/group").map_err(io("reading /etc/group"))?;
    groups
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some(g))
                .then(|| f.nth(1)?.parse().ok())
                .flatten()
        })
        .ok_or_else(|| DaemonError::Config(format!("unknown group {g:?}")))
}

/// A running daemon.
pub struct Daemon {
    path: PathBuf,
    created_file: bool,
    session: Option<fuser::BackgroundSession>,
    cuse: Option<CuseDevice>,
    /// A device node we created ourselves (CUSE outside devtmpfs).
    created_node: bool,
    /// The published region file (CUSE).
    region_path: Option<PathBuf>,
    status: Option<StatusServer>,
    /// The control plane, once the front end is up (for [`Daemon::drain`]).
    cp: Option<Arc<ControlPlane>>,
    /// The preload front end's socket.
    sock: Option<SockFrontend>,
}

fn ctrl_config(opts: &DaemonOpts) -> CtrlConfig {
    CtrlConfig {
        pools: PoolConfig {
            if_size: opts.if_size,
            if_num: opts.if_num,
            ring_size: opts.ring_size,
            ring_num: opts.ring_num,
            buf_size: opts.buf_size,
            buf_num: opts.buf_num,
        },
        prefer_huge: !opts.no_huge,
        nic_slots: opts.nic_slots,
        nic_rings: opts.nic_rings,
        nic_backend: opts.nic_backend,
        max_kloops: opts.threads.saturating_sub(1),
    }
}

/// `(major, minor)` of the running kernel.
fn kernel_version() -> Option<(u32, u32)> {
    let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut it = r.trim().split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

pub fn start(opts: &DaemonOpts) -> Result<Daemon, DaemonError> {
    let gid = resolve_group(&opts.group)?;
    let mut d = Daemon {
        path: opts.path.clone(),
        created_file: false,
        session: None,
        cuse: None,
        created_node: false,
        region_path: None,
        status: None,
        cp: None,
        sock: None,
    };
    let cp = match opts.frontend {
        Frontend::Preload => {
            let cp = start_preload(&mut d, opts)?;
            return finish(d, opts, cp, gid, "preload");
        }
        Frontend::Fuse => start_fuse(&mut d, opts, gid)?,
        Frontend::Cuse => start_cuse(&mut d, opts, gid)?,
        Frontend::Auto => {
            let fuse_err = match kernel_version() {
                Some(v) if v < (6, 9) => format!("kernel {}.{} < 6.9", v.0, v.1),
                _ => match start_fuse(&mut d, opts, gid) {
                    Ok(cp) => return finish(d, opts, cp, gid, "fuse"),
                    Err(e) => {
                        d.shutdown();
                        e.to_string()
                    }
                },
            };
            tracing::info!("FUSE passthrough unavailable ({fuse_err}); trying CUSE");
            match start_cuse(&mut d, opts, gid) {
                Ok(cp) => cp,
                Err(e) => {
                    d.shutdown();
                    return Err(DaemonError::NoFrontend {
                        fuse: fuse_err,
                        cuse: e.to_string(),
                    });
                }
            }
        }
    };
    let which = if d.cuse.is_some() { "cuse" } else { "fuse" };
    finish(d, opts, cp, gid, which)
}

fn finish(
    mut d: Daemon,
    opts: &DaemonOpts,
    cp: Arc<ControlPlane>,
    gid: u32,
    frontend: &str,
) -> Result<Daemon, DaemonError> {
    cp.start_event_thread()
        .map_err(io("starting the port event thread"))?;
    d.status = Some(
        StatusServer::start(&opts.status_socket(), cp.clone())
            .map_err(io("starting the status socket"))?,
    );
    d.cp = Some(cp);
    if let Some(sock) = &d.sock {
        tracing::info!(
            frontend,
            socket = %sock.path().display(),
            "serving; run programs with NETMAPD_SOCKET={} LD_PRELOAD=$(netmapd preload-path)",
            sock.path().display()
        );
        return Ok(d);
    }
    match &d.region_path {
        Some(r) => tracing::info!(
            frontend,
            path = %d.path.display(),
            region = %r.display(),
            mode = format_args!("{:o}", opts.mode),
            gid,
            threads = opts.threads,
            "serving; run programs with LD_PRELOAD=$(netmapd preload-path) (CUSE has no mmap)"
        ),
        None => tracing::info!(
            frontend,
            path = %d.path.display(),
            mode = format_args!("{:o}", opts.mode),
            gid,
            threads = opts.threads,
            "serving"
        ),
    }
    Ok(d)
}

/// Where the preload front end listens: `--socket`, else `$NETMAPD_SOCKET`, else
/// `$XDG_RUNTIME_DIR/netmapd.sock`, else `/tmp/netmapd-UID.sock`.
pub fn socket_path(opts: &DaemonOpts) -> PathBuf {
    if let Some(p) = &opts.socket {
        return p.clone();
    }
    if let Some(p) = std::env::var_os(netmap_abi::sock::SOCKET_ENV).filter(|p| !p.is_empty()) {
        return p.into();
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        return PathBuf::from(d).join("netmapd.sock");
    }
    let uid = euid();
    std::env::temp_dir().join(format!("netmapd-{uid}.sock"))
}

#[allow(unsafe_code)]
pub fn euid() -> u32 {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

/// The preload front end: a memfd region (no mount) and the socket.
fn start_preload(d: &mut Daemon, opts: &DaemonOpts) -> Result<Arc<ControlPlane>, DaemonError> {
    let mut cfg = ctrl_config(opts);
    // A huge-page tmpfs needs a mount; a memfd needs nothing.
    cfg.prefer_huge = false;
    let cp = Arc::new(ControlPlane::new(&cfg)?);
    d.sock = Some(SockFrontend::start(cp.clone(), &socket_path(opts))?);
    Ok(cp)
}

/// The error for a live netmap device at the path (kernel module or another netmapd).
fn live_device(path: &std::path::Path) -> DaemonError {
    DaemonError::Config(format!(
        "{} is a character device: the netmap kernel module or another netmapd seems to be serving it",
        path.display()
    ))
}

fn start_fuse(
    d: &mut Daemon,
    opts: &DaemonOpts,
    gid: u32,
) -> Result<Arc<ControlPlane>, DaemonError> {
    let path = opts.path.clone();
    mount::clean_stale(&path)
        .map_err(io(format!("removing stale mounts at {}", path.display())))?;
    let cp = Arc::new(ControlPlane::new(&ctrl_config(opts))?);
    d.created_file = match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_file() => false,
        Ok(m) if m.file_type().is_char_device() => return Err(live_device(&path)),
        Ok(_) => {
            return Err(DaemonError::Config(format!(
                "{} exists and is not a regular file",
                path.display()
            )))
        }
        Err(_) => {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(u32::from(opts.mode))
                .open(&path)
                .map_err(io(format!("creating {}", path.display())))?;
            true
        }
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let fs = NetmapFs::new(
        cp.clone(),
        DeviceAttr {
            mode: opts.mode,
            uid: 0,
            gid,
        },
    )
    .with_init_report(tx);
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName("netmapd".into()),
        fuser::MountOption::Subtype("netmapd".into()),
        fuser::MountOption::DefaultPermissions,
    ];
    config.acl = fuser::SessionACL::All;
    config.n_threads = Some(opts.threads.max(1));
    config.clone_fd = opts.threads > 1;
    let session = fuser::Session::new(fs, &path, &config)
        .map_err(io(format!("mounting FUSE at {}", path.display())))?;
    d.session = Some(session.spawn().map_err(io("starting FUSE workers"))?);
    match rx.recv_timeout(std::time::Duration::from_secs(5)) {
        Ok(true) => Ok(cp),
        Ok(false) => Err(DaemonError::NoPassthrough(
            "the kernel refused FUSE_PASSTHROUGH at INIT".into(),
        )),
        Err(_) => Err(DaemonError::NoPassthrough("no FUSE INIT within 5 s".into())),
    }
}

fn start_cuse(
    d: &mut Daemon,
    opts: &DaemonOpts,
    gid: u32,
) -> Result<Arc<ControlPlane>, DaemonError> {
    let path = opts.path.clone();
    let devname = match &opts.cuse_name {
        Some(n) => n.clone(),
        None => path
            .strip_prefix("/dev")
            .ok()
            .and_then(|p| p.to_str())
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                DaemonError::Config(format!(
                    "{} is not under /dev: give the CUSE device a name with --cuse-name",
                    path.display()
                ))
            })?,
    };
    if cuse::sysfs_dir(&devname).exists() {
        return Err(CuseError::Exists(devname).into());
    }
    match std::fs::symlink_metadata(&path) {
        Err(_) => {}
        Ok(m) if m.file_type().is_char_device() => {
            if std::path::Path::new("/sys/class/misc")
                .join(&devname)
                .exists()
            {
                return Err(live_device(&path));
            }
            // A node left by a netmapd that was killed (its CUSE device is gone).
            tracing::warn!(path = %path.display(), "removing a stale device node");
            std::fs::remove_file(&path).map_err(io(format!("removing {}", path.display())))?;
        }
        Ok(_) => {
            return Err(DaemonError::Config(format!(
                "{} exists and is not a character device (a FUSE netmapd?)",
                path.display()
            )))
        }
    }
    let cuse_fd = cuse::open_cuse()?;
    let region = opts.region_path.clone();
    if std::fs::symlink_metadata(&region).is_ok() {
        // No live device of this name exists (checked above): the region of a netmapd
        // that was killed.
        tracing::warn!(path = %region.display(), "removing a stale published region");
        std::fs::remove_file(&region).map_err(io(format!("removing {}", region.display())))?;
    }
    let cp = Arc::new(ControlPlane::new_published(
        &ctrl_config(opts),
        &region,
        u32::from(opts.mode),
    )?);
    d.region_path = Some(region.clone());
    chown(&region, gid)?;
    let dev = cuse::start(
        cp.clone(),
        cuse_fd,
        &CuseOptions {
            devname: devname.clone(),
            threads: opts.threads.max(1),
        },
    )?;
    let rdev = libc::makedev(dev.dev.0, dev.dev.1);
    d.cuse = Some(dev);
    // devtmpfs creates /dev/<devname> shortly after registration; elsewhere (a private
    // /dev, or --path naming another place) we make the node ourselves.
    let mut present = false;
    for _ in 0..50 {
        if let Ok(m) = std::fs::metadata(&path) {
            use std::os::unix::fs::MetadataExt;
            if m.file_type().is_char_device() && m.rdev() == rdev {
                present = true;
                break;
            }
        }
        if cuse_node_expected(&path, &devname) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        } else {
            break;
        }
    }
    if !present {
        mknod(&path, u32::from(opts.mode), rdev)?;
        d.created_node = true;
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(u32::from(opts.mode)))
        .map_err(io(format!("chmod {}", path.display())))?;
    chown(&path, gid)?;
    Ok(cp)
}

/// Whether devtmpfs will create `path` for a CUSE device named `devname`.
fn cuse_node_expected(path: &std::path::Path, devname: &str) -> bool {
    path == std::path::Path::new("/dev").join(devname)
        && std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| {
            m.lines()
                .any(|l| l.split(' ').nth(4) == Some("/dev") && l.contains(" - devtmpfs "))
        })
}

#[allow(unsafe_code)]
fn mknod(path: &std::path::Path, mode: u32, rdev: libc::dev_t) -> Result<(), DaemonError> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| DaemonError::Config("path contains NUL".into()))?;
    // SAFETY: c is a valid NUL-terminated path for the duration of the call.
    let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | mode, rdev) };
    if r != 0 {
        return Err(DaemonError::Io {
            what: format!("mknod {}", path.display()),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

fn chown(path: &std::path::Path, gid: u32) -> Result<(), DaemonError> {
    std::os::unix::fs::chown(path, Some(0), Some(gid))
        .map_err(io(format!("chown {}", path.display())))
}

impl Daemon {
    /// Waits, at most `max`, until no descriptor is open and no close is being
    /// handled. The last close of a port tears it down (closing packet sockets takes
    /// tens of milliseconds); unmounting under it would fail its reply.
    pub fn drain(&self, max: std::time::Duration) {
        let Some(cp) = &self.cp else { return };
        let deadline = std::time::Instant::now() + max;
        while !cp.quiescent() {
            if std::time::Instant::now() >= deadline {
                tracing::info!("descriptors still open or closing; stopping anyway");
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Unmounts, stops the workers and removes what start-up created.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.session.is_none()
            && self.sock.is_none()
            && self.status.is_none()
            && !self.created_file
            && self.cuse.is_none()
            && self.region_path.is_none()
        {
            return;
        }
        if let Some(s) = self.status.take() {
            s.stop();
        }
        if let Some(cp) = &self.cp {
            cp.stop_loops();
        }
        if let Some(s) = self.sock.take() {
            s.stop();
        }
        if let Some(session) = self.session.take() {
            if let Err(e) = mount::detach(&self.path) {
                tracing::warn!(%e, "unmounting {}", self.path.display());
            }
            if let Err(e) = session.join() {
                tracing::debug!(%e, "FUSE session ended");
            }
        }
        if self.created_file {
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::warn!(%e, "removing {}", self.path.display());
            }
            self.created_file = false;
        }
        if let Some(c) = self.cuse.take() {
            // The device itself goes away when the process exits (closing /dev/cuse).
            c.stop();
            if self.created_node {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    tracing::warn!(%e, "removing {}", self.path.display());
                }
                self.created_node = false;
            }
        }
        if let Some(r) = self.region_path.take() {
            if let Err(e) = std::fs::remove_file(&r) {
                tracing::warn!(%e, "removing {}", r.display());
            }
        }
        tracing::info!("stopped");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs the daemon until SIGINT, SIGTERM or SIGHUP.
pub fn serve_until_signal(opts: &DaemonOpts) -> Result<(), DaemonError> {
    let set = crate::exec::block_signals();
    let d = start(opts)?;
    // Under systemd (Type=notify) the unit becomes active only now, once the device is
    // served; elsewhere NOTIFY_SOCKET is unset and this does nothing.
    let what = match &d.sock {
        Some(s) => format!("serving {} (preload front end)", s.path().display()),
        None => format!("serving {}", d.path.display()),
    };
    if let Err(e) = sd_notify::notify(
        false,
        &[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status(&what),
        ],
    ) {
        tracing::warn!(%e, "readiness not sent to the service manager");
    }
    let sig = crate::exec::wait_signal(&set);
    tracing::info!(sig, "signal received, shutting down");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    d.stop();
    Ok(())
}
