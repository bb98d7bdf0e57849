//! Null ports (NR_REG_NULL, netmap_null.c): rings and buffers with exactly the
//! requested counts and syncs that do nothing, so a TX ring accepts N-1 slots and never
//! completes them, and an RX ring never receives (NETMAP-ABI.md §10.6).

use crate::adapter::{Adapter, Endpoint, KeepSet, PortCounts, PortKind, Wake};
use crate::kstate::{KState, KIND_NULL};
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
        self.eps[0].create_rings(alloc, mem)?;
        let e = &self.eps[0];
        for k in e.tx.iter().chain(e.rx.iter()) {
            if let Some(off) = k.ring_off {
                KState::new(mem, off).init(KIND_NULL, k, 0, 0)?;
            }
        }
        Ok(())
    }

    fn krings_delete(&mut self, alloc: &mut MemAllocator, mem: SharedMem, keep: &KeepSet) {
        for off in self.eps[0].ring_offs() {
            if let Err(e) = KState::new(mem, off).clear() {
                tracing::error!(%e, "clearing a null ring's state block");
            }
        }
        self.eps[0].delete_rings(alloc, mem, keep);
    }

    /// Null ring state lives in the rings' state blocks: clients sync them too.
    fn shared_kstate(&self) -> bool {
        true
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
