//! The three netmap pools (netmap_if, netmap_ring, buffers) laid out back to back in one
//! region, as in the kernel's `netmap_mem2.c`. Clients derive every address from offsets
//! in this layout, so it is computed exactly like the kernel does (ABI §7.1/§7.2).

use crate::objpool::ObjPool;
use crate::{PoolError, PAGE_SIZE};

/// Size of `struct netmap_ring` before its slot array; the ring object must hold the
/// header plus the slots.
const RING_HEADER_SIZE: u32 = 256;
/// Size of `struct netmap_slot`.
const SLOT_SIZE: u32 = 16;
/// Buffers 0 and 1 are reserved by the ABI (0 is the "null" buffer index).
const BUF_RESERVED: u32 = 2;

/// Requested pool sizes (before rounding), the equivalent of netmap's sysctls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    pub if_size: u32,
    pub if_num: u32,
    pub ring_size: u32,
    pub ring_num: u32,
    pub buf_size: u32,
    pub buf_num: u32,
}

impl Default for PoolConfig {
    /// netmap's default sysctl values, which give the 343 019 520-byte region clients expect.
    fn default() -> Self {
        Self {
            if_size: 1024,
            if_num: 100,
            ring_size: 9 * PAGE_SIZE as u32,
            ring_num: 200,
            buf_size: 2048,
            buf_num: 163_840,
        }
    }
}

/// Contents of `NETMAP_REQ_POOLS_INFO_GET` (`struct nmreq_pools_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolsInfo {
    pub memsize: u64,
    pub mem_id: u16,
    pub if_pool_offset: u64,
    pub if_pool_objtotal: u32,
    pub if_pool_objsize: u32,
    pub ring_pool_offset: u64,
    pub ring_pool_objtotal: u32,
    pub ring_pool_objsize: u32,
    pub buf_pool_offset: u64,
    pub buf_pool_objtotal: u32,
    pub buf_pool_objsize: u32,
}

/// Free/total object counts of the three pools (for diagnostics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolCounts {
    pub if_free: u32,
    pub ring_free: u32,
    pub buf_free: u32,
    pub if_total: u32,
    pub ring_total: u32,
    pub buf_total: u32,
}

/// One netmap allocator (one `nr_mem_id`): three pools in one region.
///
/// The pools are public so callers can allocate from them directly; the layout fields are
/// private because they are fixed at construction.
#[derive(Debug)]
pub struct MemAllocator {
    pub if_pool: ObjPool,
    pub ring_pool: ObjPool,
    pub buf_pool: ObjPool,
    mem_id: u16,
    memsize: usize,
}

impl MemAllocator {
    /// Lays out the three pools: if pool at offset 0, ring pool right after it, buffer pool
    /// after that; the region size is the total rounded up to a page.
    pub fn new(mem_id: u16, cfg: &PoolConfig) -> Result<Self, PoolError> {
        if cfg.ring_size < RING_HEADER_SIZE + SLOT_SIZE {
            return Err(PoolError::Config(
                "ring size too small for a ring with one slot",
            ));
        }
        let if_pool = ObjPool::new("if", cfg.if_size, cfg.if_num, 0, 0)?;
        let ring_pool = ObjPool::new("ring", cfg.ring_size, cfg.ring_num, 0, if_pool.memtotal())?;
        let buf_off = ring_pool
            .offset()
            .checked_add(ring_pool.memtotal())
            .ok_or(PoolError::Config("region size overflows"))?;
        let buf_pool = ObjPool::new("buf", cfg.buf_size, cfg.buf_num, BUF_RESERVED, buf_off)?;
        let end = buf_pool
            .offset()
            .checked_add(buf_pool.memtotal())
            .ok_or(PoolError::Config("region size overflows"))?;
        let memsize = end
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or(PoolError::Config("region size overflows"))?;
        tracing::info!(mem_id, memsize, "netmap allocator laid out");
        Ok(Self {
            if_pool,
            ring_pool,
            buf_pool,
            mem_id,
            memsize,
        })
    }

    /// The allocator id reported to clients as `nr_mem_id`.
    pub fn mem_id(&self) -> u16 {
        self.mem_id
    }

    /// Total region size (`nr_memsize`).
    pub fn memsize(&self) -> usize {
        self.memsize
    }

    /// Layout as reported by `NETMAP_REQ_POOLS_INFO_GET`.
    pub fn pools_info(&self) -> PoolsInfo {
        PoolsInfo {
            memsize: self.memsize as u64,
            mem_id: self.mem_id,
            if_pool_offset: self.if_pool.offset() as u64,
            if_pool_objtotal: self.if_pool.objtotal(),
            if_pool_objsize: self.if_pool.objsize(),
            ring_pool_offset: self.ring_pool.offset() as u64,
            ring_pool_objtotal: self.ring_pool.objtotal(),
            ring_pool_objsize: self.ring_pool.objsize(),
            buf_pool_offset: self.buf_pool.offset() as u64,
            buf_pool_objtotal: self.buf_pool.objtotal(),
            buf_pool_objsize: self.buf_pool.objsize(),
        }
    }

    /// Free and total object counts of every pool.
    pub fn counts(&self) -> PoolCounts {
        PoolCounts {
            if_free: self.if_pool.free_count(),
            ring_free: self.ring_pool.free_count(),
            buf_free: self.buf_pool.free_count(),
            if_total: self.if_pool.objtotal(),
            ring_total: self.ring_pool.objtotal(),
            buf_total: self.buf_pool.objtotal(),
        }
    }

    /// Buffer size (`nr_buf_size`), after rounding.
    pub fn buf_size(&self) -> u32 {
        self.buf_pool.objsize()
    }

    /// Region offset of buffer `idx`; `None` if out of range. This is the emulator's
    /// equivalent of the kernel "lut".
    pub fn buf_offset(&self, idx: u32) -> Option<usize> {
        self.buf_pool.obj_offset(idx)
    }

    /// Largest slot count a ring object can hold: (ring objsize − ring header) / slot size.
    pub fn max_slots_per_ring(&self) -> u32 {
        self.ring_pool.objsize().saturating_sub(RING_HEADER_SIZE) / SLOT_SIZE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_layout_matches_kernel() {
        let a = MemAllocator::new(1, &PoolConfig::default()).expect("allocator");
        let p = &a.if_pool;
        assert_eq!(
            (
                p.offset(),
                p.objsize(),
                p.objtotal(),
                p.clustsize(),
                p.memtotal()
            ),
            (0, 1024, 100, 4096, 102_400)
        );
        assert_eq!(p.clustentries(), 4);
        let p = &a.ring_pool;
        assert_eq!(
            (
                p.offset(),
                p.objsize(),
                p.objtotal(),
                p.clustsize(),
                p.memtotal()
            ),
            (102_400, 36_864, 200, 36_864, 7_372_800)
        );
        assert_eq!(p.clustentries(), 1);
        let p = &a.buf_pool;
        assert_eq!(
            (
                p.offset(),
                p.objsize(),
                p.objtotal(),
                p.clustsize(),
                p.memtotal()
            ),
            (7_475_200, 2048, 163_840, 4096, 335_544_320)
        );
        assert_eq!(p.clustentries(), 2);
        assert_eq!(a.memsize(), 343_019_520);
        assert_eq!(a.mem_id(), 1);

        let info = a.pools_info();
        assert_eq!(info.memsize, 343_019_520);
        assert_eq!(info.buf_pool_offset, 7_475_200);
        assert_eq!(info.ring_pool_objsize, 36_864);

        let c = a.counts();
        assert_eq!((c.if_free, c.ring_free, c.buf_free), (100, 200, 163_838));
        assert_eq!((c.if_total, c.ring_total, c.buf_total), (100, 200, 163_840));
        assert_eq!(a.buf_size(), 2048);
        assert_eq!(a.buf_offset(0), Some(7_475_200));
        assert_eq!(a.buf_offset(2), Some(7_475_200 + 4096));
        assert_eq!(a.buf_offset(163_840), None);
        assert_eq!(a.max_slots_per_ring(), (36_864 - 256) / 16);
    }

    #[test]
    fn first_objects() {
        let mut a = MemAllocator::new(1, &PoolConfig::default()).expect("allocator");
        assert_eq!(a.if_pool.alloc(), Ok(0));
        assert_eq!(a.if_pool.obj_offset(0), Some(0));
        assert_eq!(a.if_pool.alloc(), Ok(1));
        assert_eq!(a.if_pool.obj_offset(1), Some(1024));
        assert_eq!(a.buf_pool.alloc(), Ok(2));
        assert_eq!(
            a.buf_pool.free(0),
            Err(PoolError::Reserved {
                pool: "buf",
                idx: 0
            })
        );
    }

    #[test]
    fn bad_configs() {
        let cfg = PoolConfig {
            ring_size: 100,
            ..PoolConfig::default()
        };
        assert!(matches!(
            MemAllocator::new(1, &cfg),
            Err(PoolError::Config(_))
        ));
        let cfg = PoolConfig {
            buf_num: 1,
            ..PoolConfig::default()
        };
        // 1 buffer rounds up to one cluster of 2: both reserved.
        assert!(matches!(
            MemAllocator::new(1, &cfg),
            Err(PoolError::Config(_))
        ));
    }
}
