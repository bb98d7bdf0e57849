//! The switch block: the part of a VALE switch that senders need to forward in their
//! own process (netmap's `struct nm_bridge`: its learning table and port list), kept in
//! the shared region.
//!
//! In the kernel a VALE sender forwards inside its own txsync: it looks the
//! destination up in the bridge's table and copies into the destination's RX ring
//! under that ring's lock. A preloaded netmapd client does the same, so the table and
//! where each port's RX rings are must be readable in its process: the daemon puts
//! them in one ring-pool object per switch (allocated with the switch's first rings,
//! freed with its last), whose offset every VALE ring's state block names
//! ([`crate::kstate`], `peer`).
//!
//! Every client can write this block, so it is never trusted for the daemon's own
//! safety: the daemon's forwarding takes port slots from the table only after checking
//! them against its own port list, and uses its own ring offsets; a client's
//! forwarding validates every ring it reaches (state block magic and kind, slot count,
//! bounds) before writing. A scribbled block can misdirect or lose packets of that
//! switch, as a client scribbling rings can; it cannot make anyone write outside the
//! region.
//!
//! Layout (offsets from the block start):
//!
//! | off | field |
//! |---|---|
//! | 0 | magic ([`BDG_MAGIC`]) |
//! | 4 | port slots in use up to (the highest slot + 1) |
//! | 64 | learning table: [`LEARN_ENTRIES`] × u64 (`mac` in bits 0..48, `port + 1` in 48..64; 0 = empty) |
//! | 8256 | ports: [`MAX_PORT_SLOTS`] × [`PORT_BYTES`] |
//!
//! A port entry: `flags` (u32, [`PORT_ACTIVE`]: it has rings), the virtio-net header
//! length (u32), the RX ring count (u32), a pad word, then the region offsets of its RX
//! rings (16 × u32; the ring pool lies in the first 4 GiB of any region netmapd builds).
//!
//! Like the kernel's `netmap_bdg_learning`, the table has no ageing: a MAC that shows
//! up on another port overwrites its entry (last writer wins), and so does a colliding
//! MAC. Lookups compare the whole address, so a collision can only make a destination
//! unknown (flooded), never misdeliver.

use super::switch::{is_group, Mac};
use super::{MAX_PORT_SLOTS, MAX_VALE_RINGS};
use netmap_pool::{OutOfBounds, SharedMem};

/// Entries in the learning table (netmap's NM_BDG_HASH).
pub const LEARN_ENTRIES: usize = 1024;
/// "NMBG" + layout version 1.
pub const BDG_MAGIC: u32 = 0x4e4d_4701;
/// Bytes of one port entry.
pub const PORT_BYTES: usize = 16 + 4 * MAX_VALE_RINGS as usize;
/// The port has rings: senders may deliver to it.
pub const PORT_ACTIVE: u32 = 1;

const O_MAGIC: usize = 0;
const O_NPORTS: usize = 4;
const O_LEARN: usize = 64;
const O_PORTS: usize = O_LEARN + 8 * LEARN_ENTRIES;
/// Size of the block.
pub const BDG_BYTES: usize = O_PORTS + MAX_PORT_SLOTS * PORT_BYTES;

/// A port as a client's forwarding sees it (unvalidated: check each ring).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortEntry {
    pub hdr_len: u32,
    pub rx_rings: u32,
    pub rx: [u32; MAX_VALE_RINGS as usize],
}

/// The switch block at region offset `base`.
#[derive(Clone, Copy)]
pub struct Bdg<'a> {
    mem: SharedMem<'a>,
    base: usize,
}

/// FNV-1a of the six bytes, folded to the table size.
fn bucket(mac: &Mac) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for &b in mac {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    ((h ^ (h >> 16)) as usize) % LEARN_ENTRIES
}

fn mac_bits(mac: &Mac) -> u64 {
    mac.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b))
}

impl<'a> Bdg<'a> {
    pub fn new(mem: SharedMem<'a>, base: usize) -> Self {
        Self { mem, base }
    }

    pub fn offset(&self) -> usize {
        self.base
    }

    /// Writes an empty block: no ports, nothing learned.
    pub fn init(&self) -> Result<(), OutOfBounds> {
        self.mem.fill(self.base, BDG_BYTES, 0)?;
        self.mem.store_u32_release(self.base + O_MAGIC, BDG_MAGIC)
    }

    /// Clears the block (it goes back to the ring pool).
    pub fn clear(&self) -> Result<(), OutOfBounds> {
        self.mem.store_u32_release(self.base + O_MAGIC, 0)?;
        self.mem.fill(self.base, BDG_BYTES, 0)
    }

    /// Whether the block looks like one (a client checks before using it).
    pub fn valid(&self) -> bool {
        self.mem
            .load_u32_acquire(self.base + O_MAGIC)
            .is_ok_and(|m| m == BDG_MAGIC)
    }

    /// Port slots to scan when flooding (at most [`MAX_PORT_SLOTS`]).
    pub fn nports(&self) -> usize {
        self.mem
            .load_u32_acquire(self.base + O_NPORTS)
            .map_or(0, |n| (n as usize).min(MAX_PORT_SLOTS))
    }
    pub fn set_nports(&self, n: usize) -> Result<(), OutOfBounds> {
        self.mem
            .store_u32_release(self.base + O_NPORTS, n.min(MAX_PORT_SLOTS) as u32)
    }

    fn entry(&self, mac: &Mac) -> usize {
        self.base + O_LEARN + 8 * bucket(mac)
    }

    /// Records that `mac` was seen on `port`. Group addresses are never learned; an
    /// entry that already says so is not rewritten (senders on several CPUs would
    /// otherwise bounce its cache line on every packet).
    pub fn learn(&self, mac: &Mac, port: u16) -> Result<(), OutOfBounds> {
        if is_group(mac) {
            return Ok(());
        }
        let v = mac_bits(mac) | ((u64::from(port) + 1) << 48);
        let at = self.entry(mac);
        if self.mem.read_u64(at)? != v {
            self.mem.write_u64(at, v)?;
        }
        Ok(())
    }

    /// The port `mac` was last seen on.
    pub fn lookup(&self, mac: &Mac) -> Result<Option<u16>, OutOfBounds> {
        let v = self.mem.read_u64(self.entry(mac))?;
        let port = (v >> 48) as u16;
        Ok((port != 0 && v & 0xffff_ffff_ffff == mac_bits(mac)).then(|| port - 1))
    }

    /// Forgets every address learned on `port` (the port went away; its slot may be
    /// reused by an unrelated port).
    pub fn forget_port(&self, port: u16) -> Result<(), OutOfBounds> {
        for i in 0..LEARN_ENTRIES {
            let at = self.base + O_LEARN + 8 * i;
            let v = self.mem.read_u64(at)?;
            if v != 0 && (v >> 48) as u16 == port.wrapping_add(1) {
                self.mem.write_u64(at, 0)?;
            }
        }
        Ok(())
    }

    /// Number of occupied learning entries.
    pub fn learned(&self) -> Result<usize, OutOfBounds> {
        let mut n = 0;
        for i in 0..LEARN_ENTRIES {
            n += usize::from(self.mem.read_u64(self.base + O_LEARN + 8 * i)? != 0);
        }
        Ok(n)
    }

    fn port_at(&self, p: usize) -> Option<usize> {
        (p < MAX_PORT_SLOTS).then(|| self.base + O_PORTS + p * PORT_BYTES)
    }

    /// Publishes port `p`: its header length and RX rings (`None`: not deliverable).
    /// False if an offset does not fit the block's 32-bit fields.
    pub fn set_port(
        &self,
        p: usize,
        hdr_len: u32,
        rx: Option<&[usize]>,
    ) -> Result<bool, OutOfBounds> {
        let Some(at) = self.port_at(p) else {
            return Ok(false);
        };
        self.mem.store_u32_release(at, 0)?;
        let Some(rx) = rx else {
            return Ok(true);
        };
        let mut offs = [0u32; MAX_VALE_RINGS as usize];
        for (o, &r) in offs.iter_mut().zip(rx) {
            match u32::try_from(r) {
                Ok(v) => *o = v,
                Err(_) => return Ok(false),
            }
        }
        self.mem.write_u32(at + 4, hdr_len)?;
        self.mem
            .write_u32(at + 8, rx.len().min(MAX_VALE_RINGS as usize) as u32)?;
        for (i, o) in offs.iter().enumerate() {
            self.mem.write_u32(at + 16 + 4 * i, *o)?;
        }
        self.mem.store_u32_release(at, PORT_ACTIVE)?;
        Ok(true)
    }

    /// Port `p` if it is active.
    pub fn port(&self, p: usize) -> Result<Option<PortEntry>, OutOfBounds> {
        let Some(at) = self.port_at(p) else {
            return Ok(None);
        };
        if self.mem.load_u32_acquire(at)? & PORT_ACTIVE == 0 {
            return Ok(None);
        }
        let mut e = PortEntry {
            hdr_len: self.mem.read_u32(at + 4)?,
            rx_rings: self.mem.read_u32(at + 8)?.min(MAX_VALE_RINGS),
            ..PortEntry::default()
        };
        for (i, o) in e.rx.iter_mut().enumerate() {
            *o = self.mem.read_u32(at + 16 + 4 * i)?;
        }
        Ok(Some(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_block<R>(f: impl FnOnce(Bdg<'_>) -> R) -> R {
        let env = crate::testenv::TestEnv::new(2, 64, 4, 16);
        let b = Bdg::new(env.mem(), 0);
        b.init().expect("init");
        f(b)
    }

    #[test]
    fn learning() {
        with_block(|t| {
            let a = [0, 1, 2, 3, 4, 5];
            let b = [0, 1, 2, 3, 4, 6];
            assert_eq!(t.lookup(&a).unwrap(), None);
            t.learn(&a, 3).unwrap();
            t.learn(&b, 4).unwrap();
            assert_eq!(
                (t.lookup(&a).unwrap(), t.lookup(&b).unwrap()),
                (Some(3), Some(4))
            );
            t.learn(&a, 7).unwrap();
            assert_eq!(t.lookup(&a).unwrap(), Some(7), "last writer wins");
            t.learn(&[0xff; 6], 1).unwrap();
            t.learn(&[0x01, 0, 0x5e, 0, 0, 1], 1).unwrap();
            assert_eq!(t.learned().unwrap(), 2, "group addresses are not learned");
            t.forget_port(7).unwrap();
            assert_eq!(
                (t.lookup(&a).unwrap(), t.lookup(&b).unwrap()),
                (None, Some(4))
            );
            t.learn(&a, 0).unwrap();
            assert_eq!(t.lookup(&a).unwrap(), Some(0), "slot 0 is a port too");
            for i in 0..5000u32 {
                let m = [0, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8, 0x42];
                t.learn(&m, (i % 250) as u16).unwrap();
            }
            assert!(t.learned().unwrap() <= LEARN_ENTRIES);
        });
    }

    #[test]
    fn ports() {
        with_block(|t| {
            assert_eq!(t.port(3).unwrap(), None);
            assert!(t.set_port(3, 10, Some(&[4096, 8192])).unwrap());
            let e = t.port(3).unwrap().expect("active");
            assert_eq!(
                (e.hdr_len, e.rx_rings, e.rx[0], e.rx[1]),
                (10, 2, 4096, 8192)
            );
            assert!(
                !t.set_port(4, 0, Some(&[1 << 40])).unwrap(),
                "offset too big"
            );
            assert_eq!(t.port(4).unwrap(), None);
            assert!(t.set_port(3, 0, None).unwrap());
            assert_eq!(t.port(3).unwrap(), None);
            assert_eq!(t.port(MAX_PORT_SLOTS).unwrap(), None);
            const { assert!(BDG_BYTES <= 36864, "fits a default ring object") };
        });
    }
}
