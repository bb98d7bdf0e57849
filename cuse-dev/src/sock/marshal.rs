//! The caller's memory as the preload library marshalled it: NIOCCTRL's body and
//! option chain arrive as segments (address in the program, bytes), reads are served
//! from them and writes land in them, to be sent back and copied into the program by
//! the library.

use crate::ctrl::{Errno, ProcessMemory, UserMemory};
use netmap_abi::sock::Segment;
use parking_lot::Mutex;

/// Segments of a program's memory, plus the program itself for what cannot be
/// marshalled in advance.
pub(crate) struct Marshalled {
    segs: Mutex<Vec<(Segment, bool)>>,
    /// The requesting process (from the reply socket's peer credentials), reached with
    /// `process_vm_readv` only outside the segments: the CSB arrays, whose size depends
    /// on the registration and which the sync loop keeps reading while it runs, as the
    /// kernel does. `None` when the daemon could not learn it.
    live: Option<ProcessMemory>,
}

impl Marshalled {
    pub fn new(segs: Vec<Segment>, pid: Option<u32>) -> Self {
        Self {
            segs: Mutex::new(segs.into_iter().map(|s| (s, false)).collect()),
            live: pid.map(ProcessMemory::new),
        }
    }

    /// The segments the request wrote into.
    pub fn written(self) -> Vec<Segment> {
        self.segs
            .into_inner()
            .into_iter()
            .filter_map(|(s, w)| w.then_some(s))
            .collect()
    }

    /// The range of segment `i` covering `[addr, addr+len)`, if one does.
    fn find(segs: &[(Segment, bool)], addr: u64, len: usize) -> Option<(usize, usize)> {
        let end = addr.checked_add(len as u64)?;
        segs.iter().enumerate().find_map(|(i, (s, _))| {
            let s_end = s.addr.checked_add(s.bytes.len() as u64)?;
            (addr >= s.addr && end <= s_end).then(|| (i, (addr - s.addr) as usize))
        })
    }
}

impl UserMemory for Marshalled {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let segs = self.segs.lock();
        if let Some((i, at)) = Self::find(&segs, addr, buf.len()) {
            buf.copy_from_slice(&segs[i].0.bytes[at..at + buf.len()]);
            return Ok(());
        }
        drop(segs);
        match &self.live {
            Some(p) => p.read(addr, buf),
            None => Err(Errno(libc::EFAULT)),
        }
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        let mut segs = self.segs.lock();
        if let Some((i, at)) = Self::find(&segs, addr, data.len()) {
            segs[i].0.bytes[at..at + data.len()].copy_from_slice(data);
            segs[i].1 = true;
            return Ok(());
        }
        drop(segs);
        match &self.live {
            Some(p) => p.write(addr, data),
            None => Err(Errno(libc::EFAULT)),
        }
    }

    fn pid(&self) -> Option<u32> {
        self.live.as_ref().and_then(UserMemory::pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_stay_inside_segments() {
        let m = Marshalled::new(
            vec![
                Segment {
                    addr: 100,
                    bytes: vec![1, 2, 3, 4],
                },
                Segment {
                    addr: 200,
                    bytes: vec![0; 8],
                },
            ],
            None,
        );
        let mut b = [0u8; 2];
        m.read(101, &mut b).unwrap();
        assert_eq!(b, [2, 3]);
        assert_eq!(m.read(103, &mut b), Err(Errno(libc::EFAULT)));
        assert_eq!(m.read(u64::MAX, &mut b), Err(Errno(libc::EFAULT)));
        m.write(204, &[7, 7, 7, 7]).unwrap();
        assert_eq!(m.write(205, &[7; 4]), Err(Errno(libc::EFAULT)));
        let w = m.written();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].addr, 200);
        assert_eq!(w[0].bytes, vec![0, 0, 0, 0, 7, 7, 7, 7]);
    }
}
