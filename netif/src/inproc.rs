//! A ring's sync run by a preloaded client in its own process (no daemon round trip):
//! the same steps as the daemon's generic path ([`crate::sync`]) — busy flag, shared
//! state load, head/cur validation ([`Kring::txsync_prologue`] /
//! [`Kring::rxsync_prologue`], re-initialisation on a broken ring), the port's core
//! ([`crate::pipe::tx_core`] / [`crate::pipe::rx_core`] for pipes, VALE forwarding
//! [`crate::vale::forward`] / its `rx_core`), finalize — on the ring's state block
//! ([`crate::kstate`]). The daemon runs the very same functions for programs it serves
//! through FUSE/CUSE, on the same state, so both kinds of program share a port.

use crate::kring::{Dir, Kring};
use crate::kstate::{Doorbell, KState, KIND_NIC, KIND_NULL, KIND_PIPE, KIND_VALE, MAGIC};
use crate::pipe::{rx_core, tx_core, MAX_PIPE_SLOTS};
use crate::ringmem::RingView;
use crate::rx_client::RxClient;
use crate::vale::bdg::Bdg;
use crate::vale::forward::{self, BlockPorts, Sender};
use crate::vale::{BufGeom, MAX_PORT_SLOTS};
use crate::NetifError;
use netmap_abi::NetmapRing;
use netmap_pool::SharedMem;

/// A ring the client may sync itself, found by [`InprocRing::probe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InprocRing {
    pub off: usize,
    pub dir: Dir,
    pub id: u32,
    pub num_slots: u32,
    /// A pipe ring's peer; a VALE ring's switch block.
    pub peer_off: usize,
    /// [`KIND_PIPE`], [`KIND_NULL`] or [`KIND_VALE`].
    pub kind: u32,
}

/// What one in-process sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// `cur != tail` afterwards (RX: packets to read; TX: free slots).
    pub ready: bool,
    /// The client broke the ring; it was re-initialised (poll reports POLLERR).
    pub error: bool,
    /// A kernel-path poller waits on the peer: the daemon must be kicked.
    pub kick: bool,
    /// Another thread (or the daemon) was syncing this ring: nothing was done.
    pub busy: bool,
    /// The daemon has switched client-side syncs of this ring off (a monitor watches
    /// it): nothing was done, use the kernel path.
    pub fallback: bool,
    /// A VALE sender forwarded part of its ring (maybe nothing) and leaves the rest to
    /// the daemon: use the kernel path now (see `vale::forward::Forwarded::deferred`).
    pub deferred: bool,
    /// A NIC ring gave its port's worker thread work: the caller rings this doorbell
    /// (region offset) — after the busy flag is released, so the worker can take it.
    pub doorbell: Option<usize>,
}

impl InprocRing {
    /// The ring at region offset `off` if its state block says the daemon lets clients
    /// sync it (a pipe, null or VALE ring) and its peer (or switch block) lies inside
    /// the region.
    pub fn probe(mem: SharedMem, off: usize, dir: Dir, id: u32) -> Option<Self> {
        let ks = KState::new(mem, off);
        let kind = ks.kind().ok()?;
        if ks.magic().ok()? != MAGIC || ![KIND_PIPE, KIND_NULL, KIND_VALE, KIND_NIC].contains(&kind)
        {
            return None;
        }
        let num_slots = mem
            .read_u32(off + core::mem::offset_of!(NetmapRing, num_slots))
            .ok()?;
        // A null ring has no peer: it stands in as its own (never used).
        let peer_off = match kind {
            KIND_PIPE | KIND_VALE | KIND_NIC => usize::try_from(ks.peer().ok()?).ok()?,
            _ => off,
        };
        let ring_bytes = netmap_abi::ring_slot_offset(num_slots);
        let fits = |o: usize| o.checked_add(ring_bytes).is_some_and(|e| e <= mem.len());
        let peer_ok = match kind {
            KIND_VALE => {
                peer_off
                    .checked_add(crate::vale::bdg::BDG_BYTES)
                    .is_some_and(|e| e <= mem.len())
                    && Bdg::new(mem, peer_off).valid()
            }
            // The doorbell and the sleeping word after it.
            KIND_NIC => {
                peer_off % 4 == 0 && peer_off.checked_add(8).is_some_and(|e| e <= mem.len())
            }
            _ => fits(peer_off),
        };
        if !(1..=MAX_PIPE_SLOTS).contains(&num_slots) || !fits(off) || !peer_ok {
            return None;
        }
        Some(Self {
            off,
            dir,
            id,
            num_slots,
            peer_off,
            kind,
        })
    }

    /// One sync of this ring, as thread `owner` (its tid, for the busy flag and the
    /// VALE fill locks). `geom` is the buffer pool: what a re-initialisation keeps and
    /// where VALE forwarding finds buffers.
    pub fn sync(&self, mem: SharedMem, owner: u32, geom: BufGeom) -> Result<Outcome, NetifError> {
        self.sync_with(mem, owner, geom, None)
    }

    /// As [`InprocRing::sync`]; a NIC RX ring with `xsk` (this process's hold on the
    /// ring's queue) is read from the socket directly while this process reads it
    /// (see [`crate::rx_client`]).
    pub fn sync_with(
        &self,
        mem: SharedMem,
        owner: u32,
        geom: BufGeom,
        xsk: Option<&RxClient>,
    ) -> Result<Outcome, NetifError> {
        let ks = KState::new(mem, self.off);
        if !ks.try_get(owner)? {
            return Ok(Outcome {
                busy: true,
                ..Outcome::default()
            });
        }
        if ks.kind()? != self.kind {
            // The daemon's path from now on: it reads the socket again too.
            if let Some(x) = xsk {
                x.release(&ks);
            }
            ks.put(owner)?;
            return Ok(Outcome {
                fallback: true,
                ..Outcome::default()
            });
        }
        let r = self.sync_locked(mem, &ks, owner, geom, xsk);
        ks.put(owner)?;
        if let Ok(Outcome {
            doorbell: Some(d), ..
        }) = r
        {
            Doorbell::new(mem, d).ring()?;
        }
        r
    }

    fn sync_locked(
        &self,
        mem: SharedMem,
        ks: &KState,
        owner: u32,
        geom: BufGeom,
        xsk: Option<&RxClient>,
    ) -> Result<Outcome, NetifError> {
        let (buf_total, buf_size) = (geom.total, geom.size);
        let n = self.num_slots;
        let mut k = Kring::new(self.dir, self.id, n);
        if !ks.load_checked(&mut k)? {
            return Err(NetifError::Inval("shared ring state out of range".into()));
        }
        k.ring_off = Some(self.off);
        let rv = RingView::new(mem, self.off, n);
        let pv = RingView::new(mem, self.peer_off, n);
        let pks = KState::new(mem, self.peer_off);
        let (mut head, mut cur) = (rv.head()?, rv.cur()?);
        let mut out = Outcome::default();
        let kick = match self.dir {
            Dir::Tx => {
                if !k.txsync_prologue(&rv, head, cur)? {
                    k.reinit(&rv, buf_total, buf_size)?;
                    ks.store(&k)?;
                    out.error = true;
                    return Ok(out);
                }
                match self.kind {
                    KIND_NULL => None, // netmap_null: nothing is ever completed
                    // The worker transmits `[hwcur, rhead)` (stored below) and
                    // moves hwtail over what the kernel completed.
                    KIND_NIC => {
                        if head != k.hwcur {
                            out.doorbell = Some(self.peer_off);
                        }
                        None
                    }
                    KIND_VALE => {
                        let (kick, deferred) =
                            self.vale_tx(mem, &mut k, &rv, ks, head, owner, geom)?;
                        out.deferred = deferred;
                        Some(kick)
                    }
                    _ => tx_core(&mut k, &rv, &pv, ks, &pks, head)?,
                }
            }
            Dir::Rx => {
                if !k.rxsync_prologue(&rv, head, cur)? {
                    k.reinit(&rv, buf_total, buf_size)?;
                    (head, cur) = (k.rhead, k.rcur);
                    out.error = true;
                }
                match self.kind {
                    KIND_NULL => None, // nothing is ever received
                    // Releases `[hwcur, head)`; the worker's fills are in hwtail. A
                    // worker that found the ring full waits for this release.
                    KIND_NIC => {
                        match xsk.filter(|x| x.claim(ks)) {
                            // This process reads the socket: the exchange is ours.
                            Some(x) => {
                                k.hwcur = head;
                                x.rxsync(&mut k, &rv, ks, mem)?;
                            }
                            None => {
                                if crate::sync::release_to_worker(&mut k, ks, head)? {
                                    out.doorbell = Some(self.peer_off);
                                }
                            }
                        }
                        None
                    }
                    // Packets the daemon queued for this ring: it moves them in when
                    // kicked.
                    KIND_VALE => Some(forward::rx_core(&mut k, ks, head)?),
                    _ => rx_core(&mut k, &rv, &pv, ks, &pks, head)?,
                }
            }
        };
        k.finalize(&rv)?;
        if self.dir == Dir::Rx {
            let (s, us) = crate::sync::now();
            rv.set_timestamp(s, us)?;
        }
        ks.store(&k)?;
        out.ready = cur != k.rtail;
        out.kick = kick == Some(true);
        Ok(out)
    }

    /// A VALE sender's txsync: forwards `[hwcur, head)` through the switch block.
    /// Returns whether the daemon must be kicked, and whether the rest of the ring
    /// (from the new `hwcur`) is left to the daemon's txsync.
    #[allow(clippy::too_many_arguments)]
    fn vale_tx(
        &self,
        mem: SharedMem,
        k: &mut Kring,
        rv: &RingView,
        ks: &KState,
        head: u32,
        owner: u32,
        geom: BufGeom,
    ) -> Result<(bool, bool), NetifError> {
        let bdg = Bdg::new(mem, self.peer_off);
        let me = ks.link()? as usize;
        if me >= MAX_PORT_SLOTS {
            return Err(NetifError::Inval(format!(
                "VALE port slot {me} out of range"
            )));
        }
        let hdr_len = bdg.port(me)?.map_or(0, |e| e.hdr_len as usize);
        if !crate::vale::HDR_LENS.contains(&(hdr_len as u32)) {
            return Err(NetifError::Inval(format!("VALE header length {hdr_len}")));
        }
        let sender = Sender {
            mem,
            geom,
            bdg,
            me,
            hdr_len,
            owner,
            defer_when_full: true,
        };
        let mut ports = BlockPorts::new(mem, bdg);
        let f = forward::forward(&sender, k, rv, ks, head, &mut ports)?;
        Ok((f.kick, f.deferred))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::{Adapter, PortCounts};
    use crate::pipe::{PipePair, MASTER, SLAVE};
    use crate::sync::{rxsync_ring, txsync_ring};

    crate::testenv::test_env!();

    /// A client syncing the master's TX ring in process and the daemon syncing the
    /// slave's RX ring through the adapter move packets through one pipe, and back:
    /// the two paths share the state.
    #[test]
    fn in_process_and_daemon_syncs_interoperate() {
        let mut env = Env(crate::testenv::TestEnv::new(2, 64, 8, 200));
        let mut p = PipePair::new("x", "1", PortCounts::default(), 16, 64);
        {
            let crate::testenv::TestEnv { region, alloc } = &mut env.0;
            p.krings_create(MASTER, alloc, region.shmem())
                .expect("krings");
        }
        let mem = env.mem();
        let t = &p.endpoints()[MASTER].tx[0];
        let toff = t.ring_off.expect("tx ring");
        let roff = p.endpoints()[SLAVE].rx[0].ring_off.expect("rx ring");
        let tx = InprocRing::probe(mem, toff, Dir::Tx, 0).expect("a pipe ring");
        assert_eq!((tx.num_slots, tx.peer_off, tx.kind), (16, roff, KIND_PIPE));
        let lim = env.lim();
        let geom = BufGeom::of(&env.0.alloc);
        let tv = RingView::new(mem, toff, 16);
        let rv = RingView::new(mem, roff, 16);
        for round in 0..5u32 {
            // Client: 10 packets, synced in process.
            let h = tv.head().unwrap();
            for j in 0..10 {
                let s = (h + j) % 16;
                let idx = tv.slot_buf_idx(s).unwrap();
                tv.set_slot_buf_len(s, idx, 60 + round as u16).unwrap();
            }
            let nh = (h + 10) % 16;
            tv.set_head(nh).unwrap();
            tv.set_cur(nh).unwrap();
            let o = tx.sync(mem, 7, geom).unwrap();
            assert!(!o.error && !o.busy && !o.kick);
            // Daemon: the reader's rxsync sees them.
            let r = rxsync_ring(&mut p, SLAVE, 0, mem, lim).unwrap();
            assert!(r.ready && !r.error);
            let (rh, rt) = (rv.head().unwrap(), rv.tail().unwrap());
            assert_eq!((rt + 16 - rh) % 16, 10, "round {round}");
            assert_eq!(rv.slot(rh).unwrap().len, 60 + round as u16);
            rv.set_head(rt).unwrap();
            rv.set_cur(rt).unwrap();
            rxsync_ring(&mut p, SLAVE, 0, mem, lim).unwrap();
            // Client again: the released slots are free.
            let o = tx.sync(mem, 7, geom).unwrap();
            assert!(o.ready);
            assert_eq!(tv.tail().unwrap(), (nh + 15) % 16, "every slot free again");
        }
        // The daemon's own txsync on the same ring continues from the shared state.
        let r = txsync_ring(&mut p, MASTER, 0, mem, lim).unwrap();
        assert!(r.ready && !r.error);
        // A busy ring is skipped by the client, and by the daemon after its tries.
        let ks = KState::new(mem, toff);
        assert!(ks.try_get(std::process::id()).unwrap());
        assert!(tx.sync(mem, 7, geom).unwrap().busy);
        ks.put(std::process::id()).unwrap();
        // A scribbled state block: the client refuses it, the daemon overwrites it.
        mem.write_u32(toff + 128 + 8, 9999).unwrap();
        assert!(tx.sync(mem, 7, geom).is_err());
        assert!(!txsync_ring(&mut p, MASTER, 0, mem, lim).unwrap().error);
        assert!(tx.sync(mem, 7, geom).is_ok(), "repaired by the daemon");
    }

    /// A null port's rings sync in process as in the daemon: head/cur validated,
    /// nothing completed, nothing received; a bad head re-initialises the ring.
    #[test]
    fn null_port_rings() {
        use crate::null::NullPort;
        let mut env = Env(crate::testenv::TestEnv::new(2, 64, 8, 200));
        let counts = PortCounts {
            tx_rings: 1,
            rx_rings: 1,
            tx_slots: 8,
            rx_slots: 8,
            ..Default::default()
        };
        let mut p = NullPort::new("n", counts);
        {
            let crate::testenv::TestEnv { region, alloc } = &mut env.0;
            p.krings_create(0, alloc, region.shmem()).expect("krings");
        }
        let mem = env.mem();
        let lim = env.lim();
        let geom = BufGeom::of(&env.0.alloc);
        let toff = p.endpoints()[0].tx[0].ring_off.expect("tx ring");
        let tx = InprocRing::probe(mem, toff, Dir::Tx, 0).expect("a null ring");
        assert_eq!(tx.kind, crate::kstate::KIND_NULL);
        let tv = RingView::new(mem, toff, 8);
        tv.set_head(3).unwrap();
        tv.set_cur(3).unwrap();
        let o = tx.sync(mem, 7, geom).unwrap();
        assert!(!o.error && o.ready && !o.kick);
        assert_eq!(tv.tail().unwrap(), 7, "nothing completed");
        // The daemon's sync agrees with the state the client left.
        let r = txsync_ring(&mut p, 0, 0, mem, lim).unwrap();
        assert!(!r.error);
        tv.set_head(2).unwrap(); // backwards: broken
        let o = tx.sync(mem, 7, geom).unwrap();
        assert!(o.error);
        assert_eq!(
            tv.head().unwrap(),
            0,
            "re-initialised to hwcur (nothing consumed)"
        );
    }
}
