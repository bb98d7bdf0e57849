//! What a NIC port knows of its interface's health, and how system-call failures
//! become the errors its syncs report: shared by the AF_PACKET and AF_XDP backends.
//!
//! Link down: errors (ENETDOWN) from every sync until the link is up again. Interface
//! deleted: ENXIO from every sync, for good (fast, without a system call).

use super::ifinfo;
use crate::NetifError;
use std::io;
use std::time::{Duration, Instant};

/// Maps a failed system call to the port's error: a vanished device is `NoPort`.
pub(crate) fn sys_err(op: &'static str) -> impl Fn(io::Error) -> NetifError {
    move |e| match e.raw_os_error() {
        Some(libc::ENODEV | libc::ENXIO) => NetifError::NoPort(format!("{op}: {e}")),
        _ => NetifError::Io { op, source: e },
    }
}

/// The interface's state as the port's syncs last found it.
#[derive(Debug, Default)]
pub(crate) struct Link {
    /// The interface disappeared while the rings existed.
    pub gone: bool,
    /// The interface was down at the last check.
    pub down: bool,
    /// When an `always` check last looked at the interface (see [`LOOK_EVERY`]).
    looked: Option<Instant>,
}

/// How often an idle AF_XDP ring looks at its interface while it is up. A look costs
/// two throwaway sockets and their ioctls (about a tenth of the port worker's time
/// while frames stream in with pauses between them, `bench/nic.sh`'s profile); a link
/// that goes down or away is still reported within this long.
const LOOK_EVERY: Duration = Duration::from_millis(5);

impl Link {
    pub fn gone_err(ifname: &str) -> NetifError {
        NetifError::NoPort(format!("interface {ifname} was deleted"))
    }

    /// Turns a sync failure into the port's state: a vanished interface makes every
    /// later sync fail fast with NoPort.
    pub fn classify(&mut self, ifname: &str, ifindex: u32, e: NetifError) -> NetifError {
        let errno = match &e {
            NetifError::Io { source, .. } => source.raw_os_error(),
            NetifError::NoPort(_) => Some(libc::ENXIO),
            _ => None,
        };
        if matches!(errno, Some(libc::ENXIO | libc::ENODEV | libc::ENETDOWN))
            && ifinfo::ifindex(ifname) != Some(ifindex)
        {
            self.gone = true;
            return Self::gone_err(ifname);
        }
        if errno == Some(libc::ENETDOWN) {
            // Keep reporting it from idle RX syncs until the link is up again.
            self.down = true;
        }
        e
    }

    /// After an idle RX sync: is the link down or the interface gone? The socket's
    /// pending error (`sock_err`) says when to look; `always` looks every time (an
    /// AF_XDP socket gets no error when its interface goes away).
    pub fn check(
        &mut self,
        ifname: &str,
        ifindex: u32,
        sock_err: io::Result<i32>,
        always: bool,
    ) -> Result<(), NetifError> {
        let err = sock_err.map_err(sys_err("SO_ERROR"))?;
        if err == 0 && !self.down {
            if !always {
                return Ok(());
            }
            let now = Instant::now();
            if self
                .looked
                .is_some_and(|t| now.duration_since(t) < LOOK_EVERY)
            {
                return Ok(());
            }
            self.looked = Some(now);
        }
        match ifinfo::is_up(ifname, ifindex) {
            None => {
                self.gone = true;
                Err(Self::gone_err(ifname))
            }
            Some(false) => {
                self.down = true;
                Err(NetifError::Io {
                    op: "link down",
                    source: io::Error::from_raw_os_error(libc::ENETDOWN),
                })
            }
            Some(true) => {
                self.down = false;
                Ok(())
            }
        }
    }
}
