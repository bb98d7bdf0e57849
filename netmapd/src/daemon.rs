//! Running the daemon: control plane, FUSE mount over the device path, status socket,
//! and a clean shutdown that leaves nothing behind.

use crate::status::StatusServer;
use crate::DaemonOpts;
use cuse_dev::ctrl::{ControlPlane, CtrlConfig, CtrlError};
use cuse_dev::fuse::{mount, DeviceAttr, NetmapFs};
use netmap_pool::PoolConfig;
use std::fs::OpenOptions;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
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
    status: Option<StatusServer>,
}

pub fn start(opts: &DaemonOpts) -> Result<Daemon, DaemonError> {
    let gid = resolve_group(&opts.group)?;
    let cfg = CtrlConfig {
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
    };
    let path = opts.path.clone();
    mount::clean_stale(&path)
        .map_err(io(format!("removing stale mounts at {}", path.display())))?;
    let cp = Arc::new(ControlPlane::new(&cfg)?);
    cp.start_event_thread()
        .map_err(io("starting the port event thread"))?;

    let created_file = match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_file() => false,
        Ok(m) if m.file_type().is_char_device() => {
            return Err(DaemonError::Config(format!(
                "{} is a character device: the netmap kernel module seems to be loaded",
                path.display()
            )))
        }
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
    let mut d = Daemon {
        path: path.clone(),
        created_file,
        session: None,
        status: None,
    };
    let fs = NetmapFs::new(
        cp.clone(),
        DeviceAttr {
            mode: opts.mode,
            uid: 0,
            gid,
        },
    );
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
    d.status = Some(
        StatusServer::start(&opts.status_socket(), cp).map_err(io("starting the status socket"))?,
    );
    tracing::info!(path = %path.display(), mode = format_args!("{:o}", opts.mode), gid, threads = opts.threads, "serving");
    Ok(d)
}

impl Daemon {
    /// Unmounts, stops the workers and removes what start-up created.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.session.is_none() && self.status.is_none() && !self.created_file {
            return;
        }
        if let Some(s) = self.status.take() {
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
    let sig = crate::exec::wait_signal(&set);
    tracing::info!(sig, "signal received, shutting down");
    d.stop();
    Ok(())
}
