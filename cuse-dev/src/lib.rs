//! `/dev/netmap` front ends and the netmap control plane they share.
//!
//! * [`ctrl`] — the control plane: NIOCCTRL, the legacy ioctls, sync ioctls and poll,
//!   implemented against a [`ctrl::UserMemory`] (the caller's address space) and a
//!   [`ctrl::PollWaker`]. It knows nothing about FUSE, so tests drive it directly.
//! * [`cuse`] — the CUSE front end: a real character device (libfuse3 CUSE API) with
//!   unrestricted ioctls fetched through FUSE_IOCTL_RETRY; no mmap (see the preload library).
//! * [`fuse`] — the FUSE front end: one regular file opened with FOPEN_PASSTHROUGH onto
//!   the region's backing file (so `mmap` maps the shared region directly), bind-mounted
//!   over `/dev/netmap`; ioctl and poll requests are turned into control-plane calls.
//!
//! # Roadmap of the data path
//!
//! `ioctl(fd, NIOCTXSYNC)` in a client → kernel FUSE → `fuse::NetmapFs::ioctl` (a fuser
//! worker thread) → [`ctrl::ControlPlane::ioctl`] → takes the control-plane lock →
//! for each TX ring bound to the descriptor, `netmap_netif::sync::txsync_ring`: read
//! head/cur once from the shared ring, validate against the kring's trusted copies,
//! run the port's `txsync` (pipe: copy slot descriptors to the peer RX ring), publish
//! the new tail → lock released → poll notifications fired for the peers that made
//! progress. NIOCRXSYNC is the same with `rxsync_ring`. `poll()` runs both passes under
//! the same lock and, when nothing is ready, stores the FUSE poll handle in the
//! descriptor so that a peer's later sync can wake it.
#![deny(unsafe_code)]

pub mod ctrl;
pub mod cuse;
pub mod fuse;
pub mod sock;
