//! The learning table of a VALE switch and the port-name syntax (NETMAP-ABI.md §10.2).
//!
//! Like the kernel's `netmap_bdg_learning`, the table is a fixed array of 1024 entries
//! indexed by a hash of the MAC address, with no ageing: a MAC that shows up on another
//! port overwrites its entry (last writer wins), and so does a colliding MAC. Lookups
//! compare the whole address, so a collision can only make a destination unknown
//! (flooded), never misdeliver.

/// Entries in the learning table (netmap's NM_BDG_HASH).
pub const LEARN_ENTRIES: usize = 1024;
/// Longest switch part (before ':') and port part (after ':'), in bytes.
pub const MAX_NAME_PART: usize = 15;

/// An Ethernet address.
pub type Mac = [u8; 6];

/// True for group (multicast/broadcast) addresses.
pub fn is_group(mac: &Mac) -> bool {
    mac[0] & 1 != 0
}

/// MAC address → port slot.
#[derive(Debug, Clone)]
pub struct LearnTable {
    entries: Vec<Option<(Mac, u16)>>,
}

impl Default for LearnTable {
    fn default() -> Self {
        Self::new()
    }
}

impl LearnTable {
    pub fn new() -> Self {
        Self {
            entries: vec![None; LEARN_ENTRIES],
        }
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

    /// Records that `mac` was seen on `port`. Group addresses are never learned.
    pub fn learn(&mut self, mac: &Mac, port: u16) {
        if is_group(mac) {
            return;
        }
        self.entries[Self::bucket(mac)] = Some((*mac, port));
    }

    /// The port `mac` was last seen on.
    pub fn lookup(&self, mac: &Mac) -> Option<u16> {
        match self.entries[Self::bucket(mac)] {
            Some((m, p)) if m == *mac => Some(p),
            _ => None,
        }
    }

    /// Forgets every address learned on `port` (the port went away; its slot may be
    /// reused by an unrelated port).
    pub fn forget_port(&mut self, port: u16) {
        for e in &mut self.entries {
            if e.is_some_and(|(_, p)| p == port) {
                *e = None;
            }
        }
    }

    /// Number of occupied entries.
    pub fn len(&self) -> usize {
        self.entries.iter().flatten().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Splits `"valeX:Y"` into `("valeX", "Y")`.
///
/// `None` unless the name starts with `vale`, the switch part (up to the first ':',
/// which may be just `vale`) has at most 15 identifier characters `[A-Za-z0-9_]`, and
/// the port part is 1..=15 bytes (netmap_bdg.c `nm_bdg_name_validate`; the kernel does
/// not restrict the characters of the port part).
pub fn parse_vale_name(name: &str) -> Option<(&str, &str)> {
    if !name.starts_with("vale") {
        return None;
    }
    let colon = name.find(':')?;
    let (sw, port) = (&name[..colon], &name[colon + 1..]);
    let id_ok =
        sw.len() <= MAX_NAME_PART && sw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !id_ok || port.is_empty() || port.len() > MAX_NAME_PART {
        return None;
    }
    Some((sw, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse_vale_name("vale0:a"), Some(("vale0", "a")));
        assert_eq!(parse_vale_name("vale:p1"), Some(("vale", "p1")));
        assert_eq!(parse_vale_name("vale_x9:eth0"), Some(("vale_x9", "eth0")));
        assert_eq!(
            parse_vale_name("vale0123456789a:b"),
            Some(("vale0123456789a", "b"))
        );
        assert_eq!(parse_vale_name("vale0123456789ab:b"), None, "switch > 15");
        assert_eq!(
            parse_vale_name("vale0:123456789012345"),
            Some(("vale0", "123456789012345"))
        );
        assert_eq!(parse_vale_name("vale0:1234567890123456"), None, "port > 15");
        assert_eq!(parse_vale_name("vale0"), None);
        assert_eq!(parse_vale_name("vale0:"), None);
        assert_eq!(parse_vale_name("val0:a"), None);
        assert_eq!(parse_vale_name("netmap:eth0"), None);
        assert_eq!(parse_vale_name("vale-0:a"), None);
        assert_eq!(parse_vale_name("vale0:a:b"), Some(("vale0", "a:b")));
    }

    #[test]
    fn learning() {
        let mut t = LearnTable::new();
        let a = [0, 1, 2, 3, 4, 5];
        let b = [0, 1, 2, 3, 4, 6];
        assert_eq!(t.lookup(&a), None);
        t.learn(&a, 3);
        t.learn(&b, 4);
        assert_eq!((t.lookup(&a), t.lookup(&b)), (Some(3), Some(4)));
        t.learn(&a, 7);
        assert_eq!(t.lookup(&a), Some(7), "last writer wins");
        t.learn(&[0xff; 6], 1);
        t.learn(&[0x01, 0, 0x5e, 0, 0, 1], 1);
        assert_eq!(t.len(), 2, "group addresses are not learned");
        t.forget_port(7);
        assert_eq!((t.lookup(&a), t.lookup(&b)), (None, Some(4)));
        // The table never grows beyond its size.
        for i in 0..5000u32 {
            let m = [0, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8, 0x42];
            t.learn(&m, (i % 250) as u16);
        }
        assert!(t.len() <= LEARN_ENTRIES);
    }
}
