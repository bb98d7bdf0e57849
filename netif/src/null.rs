//! Null ports (NR_REG_NULL, netmap_null.c): rings and buffers with exactly the
//! requested counts and syncs that do nothing, so a TX ring accepts N-1 slots and never
//! completes them, and an RX ring never receives (NETMAP-ABI.md §10.6).

use crate::adapter::{
    buf_free_checked, ring_free, view, Adapter, Endpoint, KeepSet, PortCounts, PortKind, Taken,
    Wake,
};
use crate::kring::Dir;
use crate::NetifError;
use netmap_pool::{MemAllocator, SharedMem};

#[derive(Debug)]
pub struct NullPort {
    eps: [Endpoint; 1],
}

impl NullPort {
    pub fn new(name: &str, counts: PortCounts) -> Self {
        Self {
            eps: [Endpoint::new(format!("null:{name}"), counts)],
        }
    }
}

impl Adapter for NullPort {
    fn kind(&self) -> PortKind {
        PortKind::Null
    }
    fn endpoints(&self) -> &[Endpoint] {
        &self.eps
    }
    fn endpoints_mut(&mut self) -> &mut [Endpoint] {
        &mut self.eps
    }

    fn krings_create(
        &mut self,
        _ep: usize,
        alloc: &mut MemAllocator,
        mem: SharedMem,
    ) -> Result<(), NetifError> {
        if self.eps[0].has_rings() {
            return Ok(());
        }
        let buf_pool_offset = alloc.buf_pool.offset();
        let buf_size = alloc.buf_size();
        let mut taken = Taken::new(alloc);
        let mut placed = Vec::new();
        for d in Dir::BOTH {
            for k in self.eps[0].krings(d) {
                let off = taken.ring()?;
                let bufs = taken.bufs(k.num_slots as usize)?;
                let (head, tail) = match d {
                    Dir::Tx => (0, k.num_slots.saturating_sub(1)),
                    Dir::Rx => (0, 0),
                };
                crate::RingView::new(mem, off, k.num_slots).init(
                    buf_pool_offset,
                    buf_size,
                    k.id as u16,
                    d.ring_dir(),
                    head,
                    tail,
                    &bufs,
                )?;
                placed.push((d, k.id as usize, off));
            }
        }
        taken.commit();
        for (d, i, off) in placed {
            let k = &mut self.eps[0].krings_mut(d)[i];
            k.reset_indices();
            k.ring_off = Some(off);
        }
        Ok(())
    }

    fn krings_delete(&mut self, alloc: &mut MemAllocator, mem: SharedMem, keep: &KeepSet) {
        for d in Dir::BOTH {
            for k in self.eps[0].krings_mut(d) {
                if let Ok(v) = view(mem, k) {
                    for s in 0..k.num_slots {
                        if let Ok(idx) = v.slot_buf_idx(s) {
                            buf_free_checked(alloc, keep, idx);
                        }
                    }
                }
                ring_free(alloc, k);
            }
        }
    }

    fn txsync(
        &mut self,
        _ep: usize,
        _ring: usize,
        _head: u32,
        _mem: SharedMem,
    ) -> Result<Wake, NetifError> {
        Ok(Wake::none())
    }

    fn rxsync(
        &mut self,
        _ep: usize,
        _ring: usize,
        _head: u32,
        _mem: SharedMem,
    ) -> Result<Wake, NetifError> {
        Ok(Wake::none())
    }
}
