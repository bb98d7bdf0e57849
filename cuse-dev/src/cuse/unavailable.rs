//! Stand-in for the CUSE session in a build made without libfuse3 (its headers were
//! missing at compile time): the FUSE front end works, `--frontend cuse` says why not.

use super::{CuseError, CuseOptions};
use crate::ctrl::ControlPlane;
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// Never constructed in this build.
pub struct CuseDevice {
    pub devname: String,
    pub dev: (u32, u32),
}

impl CuseDevice {
    pub fn stop(&self) {}
}

pub fn start(
    _cp: Arc<ControlPlane>,
    _cuse: OwnedFd,
    _opts: &CuseOptions,
) -> Result<CuseDevice, CuseError> {
    Err(CuseError::NotBuilt)
}
