//! netmap port kinds behind one adapter trait, and the kernel-side ring state.
//!
//! This is the daemon's equivalent of netmap's `netmap_kern.h` plus one file per port
//! kind (`netmap_pipe.c`, `netmap_null.c`):
//!
//! * [`kring`] — the trusted per-ring state (`hwcur`, `hwtail`, `rhead`, `rcur`,
//!   `rtail`) and the head/cur validation that protects it from the client;
//! * [`ringmem`] — typed, bounds-checked views of a `netmap_ring` in the shared region;
//! * [`adapter`] — the [`Adapter`] trait (krings create/delete, txsync, rxsync);
//! * [`sync`] — the generic sync path: prologue → port sync → finalize, used by the
//!   sync ioctls and by poll;
//! * [`pipe`] and [`null`] — the port kinds that need no NIC;
//! * [`monitor`] — copy monitors of other ports (`NAME/r`, `/t`, `/rt`, `/z`);
//! * [`af_packet`] — host interfaces (`netmap:eth0`) through AF_PACKET sockets;
//! * [`xdp`] — host interfaces through AF_XDP sockets, the buffer pool as UMEM;
//! * [`nic`] — either of the two, chosen by `--nic-backend`;
//! * [`pidfd`] — another process's descriptors, and its exit, through a pidfd;
//! * [`vale`] — VALE software switches (`valeX:Y`), one adapter per switch.
//!
//! Nothing here knows about file descriptors or transports: the control plane in
//! `cuse-dev` decides which rings a descriptor binds and calls into this crate.
#![deny(unsafe_code)]

pub mod adapter;
pub mod af_packet;
pub mod error;
pub mod inproc;
pub mod kring;
pub mod kstate;
pub mod monitor;
pub mod nic;
pub mod null;
pub mod pidfd;
pub mod pipe;
pub mod ringmem;
pub mod rx_client;
pub mod sync;
pub mod vale;
pub mod xdp;

#[cfg(test)]
mod testenv;

pub use adapter::{Adapter, Endpoint, KeepSet, PortCounts, PortKind, Wake};
pub use error::NetifError;
pub use kring::{Dir, Kring};
pub use ringmem::RingView;
pub use vale::{parse_vale_name, ValeSwitch};
