//! Errors of the port layer, each mapped to the errno the kernel would return.

use netmap_pool::{OutOfBounds, PoolError};

#[derive(Debug, thiserror::Error)]
pub enum NetifError {
    #[error("out of memory: {0}")]
    NoMem(#[from] PoolError),
    #[error("shared memory access outside the region: {0}")]
    Region(#[from] OutOfBounds),
    #[error("invalid argument: {0}")]
    Inval(String),
    #[error("busy: {0}")]
    Busy(String),
    #[error("no such port: {0}")]
    NoPort(String),
    #[error("not supported: {0}")]
    NotSupported(String),
    /// A system call on behalf of the port failed (AF_PACKET sockets: link down →
    /// ENETDOWN, interface deleted → ENXIO/ENODEV).
    #[error("{op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl NetifError {
    /// The errno the reference kernel returns for this class of failure.
    pub fn errno(&self) -> i32 {
        match self {
            NetifError::NoMem(_) => libc::ENOMEM,
            NetifError::Region(_) => libc::EFAULT,
            NetifError::Inval(_) => libc::EINVAL,
            NetifError::Busy(_) => libc::EBUSY,
            NetifError::NoPort(_) => libc::ENXIO,
            NetifError::NotSupported(_) => libc::EOPNOTSUPP,
            NetifError::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
        }
    }
}
