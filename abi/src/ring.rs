//! Objects that live in the shared region: `netmap_slot`, `netmap_ring`, `netmap_if`.
//!
//! The daemon never makes Rust references into the region (clients write it at any
//! time); these types exist to give field offsets (`offset_of!`) and sizes to the
//! volatile accessor, and to let tests build the same bytes a client would.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `struct netmap_slot`: one descriptor of a ring.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NetmapSlot {
    pub buf_idx: u32,
    pub len: u16,
    pub flags: u16,
    pub ptr: u64,
}
crate::assert_layout!(NetmapSlot, size = 16, buf_idx @ 0, len @ 4, flags @ 6, ptr @ 8);

/// `struct timeval` as embedded in the ring (x86_64).
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Timeval {
    pub tv_sec: i64,
    pub tv_usec: i64,
}

/// `struct netmap_ring` (fixed part, 256 bytes, C alignment 128); slots follow at +256.
#[repr(C, align(128))]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NetmapRing {
    pub buf_ofs: i64,
    pub num_slots: u32,
    pub nr_buf_size: u32,
    pub ringid: u16,
    /// 1 for TX, 0 for RX ([`crate::NR_TX`]/[`crate::NR_RX`]).
    pub dir: u16,
    pub head: u32,
    pub cur: u32,
    pub tail: u32,
    pub flags: u32,
    pub _pad0: u32,
    pub ts: Timeval,
    pub offset_mask: u64,
    pub buf_align: u64,
    pub _pad1: [u8; 56],
    /// Opaque user scratch space (`lb` keeps state here): never touched by the daemon.
    pub sem: [u8; 128],
}
crate::assert_layout!(NetmapRing, size = 256,
    buf_ofs @ 0, num_slots @ 8, nr_buf_size @ 12, ringid @ 16, dir @ 18, head @ 20,
    cur @ 24, tail @ 28, flags @ 32, ts @ 40, offset_mask @ 56, buf_align @ 64, sem @ 128);
const _: () = assert!(core::mem::align_of::<NetmapRing>() == 128);

/// Byte offset of slot `i` from the start of its ring.
pub const fn ring_slot_offset(i: u32) -> usize {
    core::mem::size_of::<NetmapRing>() + i as usize * core::mem::size_of::<NetmapSlot>()
}

/// `struct netmap_if` (fixed part, 56 bytes); `ring_ofs[]` (i64 each) follows at +56.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NetmapIf {
    pub ni_name: [u8; 16],
    pub ni_version: u32,
    pub ni_flags: u32,
    pub ni_tx_rings: u32,
    pub ni_rx_rings: u32,
    pub ni_bufs_head: u32,
    pub ni_host_tx_rings: u32,
    pub ni_host_rx_rings: u32,
    pub ni_spare1: [u32; 3],
}
crate::assert_layout!(NetmapIf, size = 56,
    ni_name @ 0, ni_version @ 16, ni_flags @ 20, ni_tx_rings @ 24, ni_rx_rings @ 28,
    ni_bufs_head @ 32, ni_host_tx_rings @ 36, ni_host_rx_rings @ 40, ni_spare1 @ 44);

/// Byte offset of `ring_ofs[k]` from the start of the netmap_if.
pub const fn if_ring_ofs_offset(k: usize) -> usize {
    core::mem::size_of::<NetmapIf>() + k * 8
}
