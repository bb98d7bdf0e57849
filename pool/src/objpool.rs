//! One pool of equally sized objects packed into page-multiple clusters.
//!
//! Geometry follows netmap's `netmap_mem2.c`: the object size is rounded to 64 bytes (cache
//! line) and a cluster is the smallest multiple of the object size that is also a multiple
//! of [`PAGE_SIZE`], so objects never straddle a cluster boundary and clusters tile the
//! region without padding. Since a cluster is an exact multiple of the object size, object
//! `i` simply lives at `offset + i * objsize`.
//!
//! Free-object tracking uses a hierarchical bitmap (a bit set means "free"; every upper
//! level has one bit per lower-level word, set when that word still has a free bit). This
//! gives the kernel's observable policy — *the lowest free index is handed out first*
//! (ABI §7.1: the first netmap_if is at offset 0, the first buffer is 2) — in
//! O(log64 n) time, which is at most 3 word lookups for the default 163840 buffers.

use std::fmt;

use crate::{PoolError, PAGE_SIZE};

/// Objects are rounded to this many bytes so every object starts on a cache line.
const OBJ_ALIGN: u64 = 64;

/// Greatest common divisor, used to compute the cluster size as lcm(objsize, PAGE_SIZE).
fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// A pool of equal-sized objects inside the shared region. It only does bookkeeping
/// (indices and offsets); the memory itself is accessed through [`crate::SharedMem`].
pub struct ObjPool {
    name: &'static str,
    objsize: u32,
    objtotal: u32,
    reserved: u32,
    clustsize: usize,
    clustentries: u32,
    numclusters: u32,
    memtotal: usize,
    offset: usize,
    free: u32,
    /// `levels[0]` has one bit per object (1 = free); `levels[k + 1]` has one bit per word
    /// of `levels[k]` (1 = that word is non-zero). The last level is a single word.
    levels: Vec<Vec<u64>>,
}

impl fmt::Debug for ObjPool {
    // Hand-written so that logging a pool does not dump thousands of bitmap words.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjPool")
            .field("name", &self.name)
            .field("objsize", &self.objsize)
            .field("objtotal", &self.objtotal)
            .field("reserved", &self.reserved)
            .field("clustsize", &self.clustsize)
            .field("clustentries", &self.clustentries)
            .field("numclusters", &self.numclusters)
            .field("memtotal", &self.memtotal)
            .field("offset", &self.offset)
            .field("free", &self.free)
            .finish()
    }
}

impl ObjPool {
    /// Creates a pool of at least `objtotal` objects of at least `objsize` bytes starting at
    /// region offset `offset`.
    ///
    /// `objsize` is rounded up to a multiple of 64 and `objtotal` up to a whole number of
    /// clusters (as the kernel does, so the reported `objtotal` matches). The lowest
    /// `reserved` indices are never handed out (netmap reserves buffers 0 and 1).
    pub fn new(
        name: &'static str,
        objsize: u32,
        objtotal: u32,
        reserved: u32,
        offset: usize,
    ) -> Result<Self, PoolError> {
        if objsize == 0 {
            return Err(PoolError::Config("object size is zero"));
        }
        if objtotal == 0 {
            return Err(PoolError::Config("object count is zero"));
        }
        let size = u64::from(objsize)
            .div_ceil(OBJ_ALIGN)
            .checked_mul(OBJ_ALIGN)
            .ok_or(PoolError::Config("object size overflows"))?;
        let objsize_r =
            u32::try_from(size).map_err(|_| PoolError::Config("object size overflows"))?;
        let page = PAGE_SIZE as u64;
        let clustentries64 = page / gcd(size, page);
        let clustsize64 = size
            .checked_mul(clustentries64)
            .ok_or(PoolError::Config("cluster size overflows"))?;
        let clustentries = u32::try_from(clustentries64)
            .map_err(|_| PoolError::Config("cluster entries overflow"))?;
        let numclusters = objtotal.div_ceil(clustentries);
        let total = u64::from(numclusters)
            .checked_mul(clustentries64)
            .ok_or(PoolError::Config("object count overflows"))?;
        let objtotal_r =
            u32::try_from(total).map_err(|_| PoolError::Config("object count overflows"))?;
        let memtotal64 = u64::from(numclusters)
            .checked_mul(clustsize64)
            .ok_or(PoolError::Config("pool size overflows"))?;
        let memtotal =
            usize::try_from(memtotal64).map_err(|_| PoolError::Config("pool size overflows"))?;
        let clustsize = usize::try_from(clustsize64)
            .map_err(|_| PoolError::Config("cluster size overflows"))?;
        offset
            .checked_add(memtotal)
            .ok_or(PoolError::Config("pool end overflows"))?;
        if reserved >= objtotal_r {
            return Err(PoolError::Config("all objects would be reserved"));
        }

        let levels = Self::build_levels(objtotal_r, reserved);
        tracing::debug!(
            pool = name,
            objsize = objsize_r,
            objtotal = objtotal_r,
            clustsize,
            clustentries,
            numclusters,
            memtotal,
            offset,
            "object pool created"
        );
        Ok(Self {
            name,
            objsize: objsize_r,
            objtotal: objtotal_r,
            reserved,
            clustsize,
            clustentries,
            numclusters,
            memtotal,
            offset,
            free: objtotal_r - reserved,
            levels,
        })
    }

    /// Builds the bitmap hierarchy with every non-reserved index marked free.
    fn build_levels(objtotal: u32, reserved: u32) -> Vec<Vec<u64>> {
        let n = objtotal as usize;
        let mut leaf = vec![0u64; n.div_ceil(64)];
        for i in reserved as usize..n {
            leaf[i / 64] |= 1 << (i % 64);
        }
        let mut levels = vec![leaf];
        while levels.last().map_or(0, Vec::len) > 1 {
            let below = &levels[levels.len() - 1];
            let mut up = vec![0u64; below.len().div_ceil(64)];
            for (w, word) in below.iter().enumerate() {
                if *word != 0 {
                    up[w / 64] |= 1 << (w % 64);
                }
            }
            levels.push(up);
        }
        levels
    }

    /// Pool name, used in errors and logs.
    pub fn name(&self) -> &'static str {
        self.name
    }
    /// Object size after rounding to 64 bytes.
    pub fn objsize(&self) -> u32 {
        self.objsize
    }
    /// Number of objects after rounding to whole clusters, including reserved ones.
    pub fn objtotal(&self) -> u32 {
        self.objtotal
    }
    /// Number of low indices that are never handed out.
    pub fn reserved(&self) -> u32 {
        self.reserved
    }
    /// Cluster size in bytes (a multiple of both the object size and [`PAGE_SIZE`]).
    pub fn clustsize(&self) -> usize {
        self.clustsize
    }
    /// Objects per cluster.
    pub fn clustentries(&self) -> u32 {
        self.clustentries
    }
    /// Number of clusters in the pool.
    pub fn numclusters(&self) -> u32 {
        self.numclusters
    }
    /// Bytes occupied by the pool in the region (`numclusters * clustsize`).
    pub fn memtotal(&self) -> usize {
        self.memtotal
    }
    /// Region offset of the first object.
    pub fn offset(&self) -> usize {
        self.offset
    }
    /// Number of objects that can still be allocated (reserved ones never count).
    pub fn free_count(&self) -> u32 {
        self.free
    }
    /// Number of objects currently handed out.
    pub fn in_use(&self) -> u32 {
        self.objtotal - self.reserved - self.free
    }

    /// Allocates the lowest free index.
    pub fn alloc(&mut self) -> Result<u32, PoolError> {
        let top = self.levels.len() - 1;
        if self.levels[top][0] == 0 {
            return Err(PoolError::Exhausted { pool: self.name });
        }
        // Descend from the top: each set bit points at a lower word with a free bit.
        let mut idx = 0usize;
        for level in self.levels.iter().rev() {
            let word = level[idx];
            debug_assert!(word != 0, "bitmap summary inconsistent");
            idx = idx * 64 + word.trailing_zeros() as usize;
        }
        // Clear the leaf bit and propagate emptiness upwards.
        let mut pos = idx;
        for level in self.levels.iter_mut() {
            let word = &mut level[pos / 64];
            *word &= !(1u64 << (pos % 64));
            if *word != 0 {
                break;
            }
            pos /= 64;
        }
        self.free -= 1;
        // idx < objtotal which is a u32, so this cannot truncate.
        let idx = idx as u32;
        tracing::trace!(pool = self.name, idx, "object allocated");
        Ok(idx)
    }

    /// Allocates `n` objects, all or nothing: on `Exhausted` nothing has been taken, so
    /// callers never have to roll back a partially built ring.
    pub fn alloc_many(&mut self, n: usize) -> Result<Vec<u32>, PoolError> {
        if n > self.free as usize {
            return Err(PoolError::Exhausted { pool: self.name });
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.alloc()?);
        }
        Ok(out)
    }

    /// Returns `idx` to the pool. Indices come from untrusted clients (e.g. buffer indices
    /// in slots or extra-buffer lists), so every misuse is reported instead of corrupting
    /// the bitmap.
    pub fn free(&mut self, idx: u32) -> Result<(), PoolError> {
        if idx >= self.objtotal {
            return Err(PoolError::BadIndex {
                pool: self.name,
                idx,
            });
        }
        if idx < self.reserved {
            return Err(PoolError::Reserved {
                pool: self.name,
                idx,
            });
        }
        if !self.is_allocated(idx) {
            return Err(PoolError::DoubleFree {
                pool: self.name,
                idx,
            });
        }
        let mut pos = idx as usize;
        for level in self.levels.iter_mut() {
            let word = &mut level[pos / 64];
            let was_empty = *word == 0;
            *word |= 1u64 << (pos % 64);
            if !was_empty {
                break;
            }
            pos /= 64;
        }
        self.free += 1;
        tracing::trace!(pool = self.name, idx, "object freed");
        Ok(())
    }

    /// True if `idx` is a non-reserved, in-range index that is currently handed out.
    pub fn is_allocated(&self, idx: u32) -> bool {
        if idx >= self.objtotal || idx < self.reserved {
            return false;
        }
        let i = idx as usize;
        self.levels[0][i / 64] & (1u64 << (i % 64)) == 0
    }

    /// Region offset of object `idx`, or `None` if `idx >= objtotal`.
    pub fn obj_offset(&self, idx: u32) -> Option<usize> {
        if idx >= self.objtotal {
            return None;
        }
        // Cannot overflow: offset + memtotal was checked in `new` and this is below it.
        Some(self.offset + idx as usize * self.objsize as usize)
    }

    /// Index of the object starting exactly at `region_offset`, or `None` if that offset is
    /// outside the pool or not an object start.
    pub fn obj_index(&self, region_offset: usize) -> Option<u32> {
        let rel = region_offset.checked_sub(self.offset)?;
        if rel >= self.memtotal || rel % self.objsize as usize != 0 {
            return None;
        }
        u32::try_from(rel / self.objsize as usize).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn geometry_rounding() {
        let p = ObjPool::new("t", 100, 5, 0, 0).expect("pool");
        assert_eq!(p.objsize(), 128);
        assert_eq!(p.clustsize(), 4096);
        assert_eq!(p.clustentries(), 32);
        assert_eq!(p.objtotal(), 32);
        assert_eq!(p.memtotal(), 4096);

        // 36928 = 64 * 577: cluster is lcm = 4096 * 577, 64 objects.
        let p = ObjPool::new("t", 36865, 1, 0, 0).expect("pool");
        assert_eq!(p.objsize(), 36928);
        assert_eq!(p.clustentries(), 64);
        assert_eq!(p.clustsize(), 36928 * 64);
        assert_eq!(p.clustsize() % PAGE_SIZE, 0);
    }

    #[test]
    fn config_errors() {
        assert!(matches!(
            ObjPool::new("t", 0, 1, 0, 0),
            Err(PoolError::Config(_))
        ));
        assert!(matches!(
            ObjPool::new("t", 64, 0, 0, 0),
            Err(PoolError::Config(_))
        ));
        assert!(matches!(
            ObjPool::new("t", u32::MAX, 1, 0, 0),
            Err(PoolError::Config(_))
        ));
        assert!(matches!(
            ObjPool::new("t", 64, u32::MAX, 0, 0),
            Err(PoolError::Config(_))
        ));
        assert!(matches!(
            ObjPool::new("t", 64, 64, 64, 0),
            Err(PoolError::Config(_))
        ));
        assert!(matches!(
            ObjPool::new("t", 64, 64, 0, usize::MAX - 10),
            Err(PoolError::Config(_))
        ));
    }

    #[test]
    fn reserved_never_returned_and_lowest_first() {
        let mut p = ObjPool::new("buf", 2048, 10, 2, 0).expect("pool");
        assert_eq!(p.objtotal(), 10);
        assert_eq!(p.free_count(), 8);
        let all = p.alloc_many(8).expect("alloc");
        assert_eq!(all, (2..10).collect::<Vec<_>>());
        assert_eq!(p.alloc(), Err(PoolError::Exhausted { pool: "buf" }));
        p.free(5).expect("free");
        p.free(3).expect("free");
        assert_eq!(p.alloc(), Ok(3));
        assert_eq!(p.alloc(), Ok(5));
        assert!(!p.is_allocated(0));
        assert!(!p.is_allocated(1));
    }

    #[test]
    fn free_errors() {
        let mut p = ObjPool::new("buf", 2048, 10, 2, 0).expect("pool");
        assert_eq!(
            p.free(10),
            Err(PoolError::BadIndex {
                pool: "buf",
                idx: 10
            })
        );
        assert_eq!(
            p.free(u32::MAX),
            Err(PoolError::BadIndex {
                pool: "buf",
                idx: u32::MAX
            })
        );
        assert_eq!(
            p.free(0),
            Err(PoolError::Reserved {
                pool: "buf",
                idx: 0
            })
        );
        assert_eq!(
            p.free(1),
            Err(PoolError::Reserved {
                pool: "buf",
                idx: 1
            })
        );
        assert_eq!(
            p.free(4),
            Err(PoolError::DoubleFree {
                pool: "buf",
                idx: 4
            })
        );
        let i = p.alloc().expect("alloc");
        p.free(i).expect("free");
        assert_eq!(
            p.free(i),
            Err(PoolError::DoubleFree {
                pool: "buf",
                idx: i
            })
        );
        assert_eq!(p.free_count(), 8);
    }

    #[test]
    fn alloc_many_rollback() {
        let mut p = ObjPool::new("ring", 4096, 8, 0, 0).expect("pool");
        let held = p.alloc_many(3).expect("alloc");
        assert_eq!(held, vec![0, 1, 2]);
        assert_eq!(p.alloc_many(6), Err(PoolError::Exhausted { pool: "ring" }));
        assert_eq!(p.free_count(), 5);
        assert_eq!(p.in_use(), 3);
        assert_eq!(p.alloc_many(5).map(|v| v.len()), Ok(5));
        assert_eq!(p.alloc_many(0), Ok(vec![]));
    }

    #[test]
    fn big_pool_multi_level_bitmap() {
        let mut p = ObjPool::new("buf", 2048, 163_840, 2, 0).expect("pool");
        assert_eq!(p.levels.len(), 3);
        let n = p.free_count() as usize;
        let v = p.alloc_many(n).expect("all");
        assert_eq!(v.first(), Some(&2));
        assert_eq!(v.last(), Some(&163_839));
        assert!(p.alloc().is_err());
        p.free(100_000).expect("free");
        p.free(70_000).expect("free");
        assert_eq!(p.alloc(), Ok(70_000));
        assert_eq!(p.alloc(), Ok(100_000));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Alloc,
        AllocMany(usize),
        Free(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::Alloc),
            1 => (0usize..20).prop_map(Op::AllocMany),
            3 => (0u32..300).prop_map(Op::Free),
        ]
    }

    proptest! {
        #[test]
        fn random_ops_keep_invariants(
            objsize in 1u32..5000,
            objtotal in 1u32..200,
            reserved in 0u32..3,
            offset_pages in 0usize..4,
            ops in proptest::collection::vec(op(), 0..200),
        ) {
            let offset = offset_pages * PAGE_SIZE;
            let mut p = match ObjPool::new("p", objsize, objtotal, reserved, offset) {
                Ok(p) => p,
                Err(PoolError::Config(_)) => return Ok(()),
                Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
            };
            prop_assert!(p.objtotal() >= objtotal);
            prop_assert_eq!(p.objtotal() % p.clustentries(), 0);
            prop_assert_eq!(p.clustsize() % PAGE_SIZE, 0);
            prop_assert_eq!(p.clustsize() % p.objsize() as usize, 0);
            let mut held = std::collections::BTreeSet::new();
            for op in ops {
                match op {
                    Op::Alloc => match p.alloc() {
                        Ok(i) => {
                            prop_assert!(i >= reserved && i < p.objtotal());
                            prop_assert!(held.insert(i), "index {} handed out twice", i);
                        }
                        Err(e) => {
                            prop_assert_eq!(e, PoolError::Exhausted { pool: "p" });
                            prop_assert_eq!(p.free_count(), 0);
                        }
                    },
                    Op::AllocMany(n) => {
                        let before = p.free_count();
                        match p.alloc_many(n) {
                            Ok(v) => {
                                prop_assert_eq!(v.len(), n);
                                for i in v {
                                    prop_assert!(held.insert(i), "index {} handed out twice", i);
                                }
                            }
                            Err(_) => {
                                prop_assert!((before as usize) < n);
                                prop_assert_eq!(p.free_count(), before);
                            }
                        }
                    }
                    Op::Free(i) => {
                        let r = p.free(i);
                        if held.remove(&i) {
                            prop_assert_eq!(r, Ok(()));
                        } else {
                            prop_assert!(r.is_err());
                        }
                    }
                }
                prop_assert_eq!(p.free_count() + p.in_use(), p.objtotal() - reserved);
                prop_assert_eq!(p.in_use() as usize, held.len());
            }
            for i in 0..p.objtotal() {
                prop_assert_eq!(p.is_allocated(i), held.contains(&i));
            }
            let mut prev_end = p.offset();
            for i in 0..p.objtotal() {
                let off = p.obj_offset(i).ok_or_else(|| TestCaseError::fail("no offset"))?;
                prop_assert!(off >= p.offset());
                prop_assert!(off + p.objsize() as usize <= p.offset() + p.memtotal());
                prop_assert!(off >= prev_end, "objects overlap");
                prev_end = off + p.objsize() as usize;
                prop_assert_eq!(p.obj_index(off), Some(i));
                if p.objsize() > 1 {
                    prop_assert_eq!(p.obj_index(off + 1), None);
                }
            }
            prop_assert_eq!(p.obj_offset(p.objtotal()), None);
            prop_assert_eq!(p.obj_index(p.offset() + p.memtotal()), None);
            if p.offset() > 0 {
                prop_assert_eq!(p.obj_index(p.offset() - 1), None);
            }
        }
    }
}
