//! Memory management for netmapd: the shared region that clients `mmap()` through
//! `/dev/netmap`, and the object pools (netmap_if, netmap_ring, packet buffers) carved
//! out of it.
//!
//! The layout mirrors netmap's kernel allocator (`netmap_mem2.c`) exactly, because
//! clients compute addresses from offsets the daemon reports (`nr_offset`, `ring_ofs`,
//! `buf_ofs`, `nr_memsize`); any deviation in pool geometry would be visible to them.
//!
//! Unsafe code is confined to [`region`] (mmap/mount plumbing) and [`shmem`] (the single
//! accessor for client-shared memory); everything else is safe Rust.
#![deny(unsafe_code)]

pub mod allocator;
pub mod objpool;
#[allow(unsafe_code)]
pub mod region;
#[allow(unsafe_code)]
pub mod shmem;

pub use allocator::{MemAllocator, PoolConfig, PoolCounts, PoolsInfo};
pub use objpool::ObjPool;
pub use region::{Backing, Region, RegionError};
pub use shmem::{OutOfBounds, SharedMem};

/// Page size assumed by the netmap ABI for cluster and region rounding. Fixed (not
/// queried from the host) because clients see the resulting layout and it must match
/// the kernel's defaults documented in the ABI.
pub const PAGE_SIZE: usize = 4096;

/// Errors from pool configuration and object allocation.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// No free object left in the pool.
    #[error("pool {pool} exhausted")]
    Exhausted { pool: &'static str },
    /// The index is not below the pool's object total.
    #[error("index {idx} out of range in pool {pool}")]
    BadIndex { pool: &'static str, idx: u32 },
    /// The index belongs to the reserved low range (e.g. buffers 0 and 1).
    #[error("index {idx} is reserved in pool {pool}")]
    Reserved { pool: &'static str, idx: u32 },
    /// The index is not currently allocated.
    #[error("double free of index {idx} in pool {pool}")]
    DoubleFree { pool: &'static str, idx: u32 },
    /// Sizes or counts are zero or overflow.
    #[error("invalid pool configuration: {0}")]
    Config(&'static str),
}
