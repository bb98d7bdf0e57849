//! The pool and region every port-layer test builds: a small allocator over a memfd
//! region, plus the accessors the tests use to play the client's side.

use crate::sync::BufLimits;
use netmap_pool::{MemAllocator, PoolConfig, PoolCounts, Region, SharedMem};

pub(crate) struct TestEnv {
    pub region: Region,
    pub alloc: MemAllocator,
}

impl TestEnv {
    /// An allocator `mem_id` with 4 netmap_ifs, `ring_num` ring objects holding up to
    /// `max_slots` slots each, and `buf_num` 2048-byte buffers.
    pub fn new(mem_id: u16, max_slots: u32, ring_num: u32, buf_num: u32) -> Self {
        Self::with_ring_size(mem_id, 256 + 16 * max_slots, ring_num, buf_num)
    }

    /// As [`TestEnv::new`] with ring objects of `ring_size` bytes.
    pub fn with_ring_size(mem_id: u16, ring_size: u32, ring_num: u32, buf_num: u32) -> Self {
        let cfg = PoolConfig {
            if_size: 1024,
            if_num: 4,
            ring_size,
            ring_num,
            buf_size: 2048,
            buf_num,
        };
        let alloc = MemAllocator::new(mem_id, &cfg).expect("allocator");
        let region = Region::create(alloc.memsize(), false).expect("region");
        Self { region, alloc }
    }

    pub fn mem(&self) -> SharedMem<'_> {
        self.region.shmem()
    }

    pub fn lim(&self) -> BufLimits {
        BufLimits {
            total: self.alloc.buf_pool.objtotal(),
            size: self.alloc.buf_size(),
        }
    }

    pub fn counts(&self) -> PoolCounts {
        self.alloc.counts()
    }

    pub fn buf_off(&self, idx: u32) -> usize {
        self.alloc.buf_offset(idx).expect("buffer offset")
    }
}

/// Declares a test module's `Env`: a [`TestEnv`] (reached through `Deref`) with the
/// module's own helpers in its own `impl Env`.
macro_rules! test_env {
    () => {
        struct Env(crate::testenv::TestEnv);

        impl std::ops::Deref for Env {
            type Target = crate::testenv::TestEnv;
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl std::ops::DerefMut for Env {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.0
            }
        }
    };
}
pub(crate) use test_env;
