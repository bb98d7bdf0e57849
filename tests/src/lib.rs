//! End-to-end tests of netmapd: a small netmap *client* library that behaves like an
//! unmodified netmap application (raw open/ioctl/mmap/poll on /dev/netmap, no
//! libnetmap), the `nm-client` binary built on it, and helpers for the integration
//! tests that run `nm-client` under `netmapd exec`.
//!
//! The client side is deliberately independent of the daemon's crates (only the ABI
//! definitions are shared) so that a daemon bug cannot be masked by a matching bug in
//! shared code.

pub mod bench;
pub mod cases;
pub mod frame;
pub mod harness;
pub mod kloop;
pub mod latency;
pub mod monitor;
pub mod nic;
pub mod payload;
pub mod port;
pub mod stream;
pub mod sys;
pub mod valectl;

pub use port::{Port, Ring};
pub use sys::{errno_of, Errno};
