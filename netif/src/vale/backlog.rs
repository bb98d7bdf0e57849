//! Packets waiting for room in a VALE port's RX ring.
//!
//! Why this exists (the kernel has no such queue): in netmap.ko the receiver's rxsync
//! runs in the receiver's own context, so a receiver woken by a forward gives its
//! slots back within microseconds. Through netmapd that rxsync is a FUSE round trip
//! served by a daemon thread that competes for the same CPUs as the sender and the
//! receiver; on a 2-vCPU machine a sender catching up after a late timer (pkt-gen
//! sends its missed bursts back to back) can fill a 1024-slot ring twice before the
//! receiver's release reaches the daemon, and kernel-like forwarding then drops
//! packets the kernel would have delivered. So a packet that finds the destination
//! ring full is copied here instead of dropped, and the destination's next rxsync
//! moves it into the ring, in order, before anything newer. The queue is bounded
//! ([`RING_MULTIPLE`] times the ring's slots, and [`MAX_BYTES`]); beyond that packets
//! are dropped and counted as before, so a receiver that never reads costs a bounded
//! amount of memory and its senders never wait.
//!
//! Sizing, measured on the 2-vCPU VM (pkt-gen-style sender, 512-packet bursts at
//! 300 kpps into a 1024-slot ring, 2 M packets per run): without the queue 1–18
//! packets dropped per run; with one ring's worth most runs queued at most 1 packet
//! but 2 runs in 10 filled it (receiver held off for more than 7 ms: this VM's
//! wake-ups of an idle vCPU occasionally take milliseconds) and dropped 2 and 513.

use std::collections::VecDeque;

/// Most payload bytes one RX ring's backlog holds.
pub const MAX_BYTES: usize = 4 << 20;
/// Most slots one RX ring's backlog holds, in multiples of the ring's own slots
/// (4 × 1024 slots at 300 kpps: 13 ms of traffic).
pub const RING_MULTIPLE: usize = 4;

/// One queued packet: its fragments' bytes back to back, and their lengths.
#[derive(Debug, Clone)]
pub struct Held {
    pub data: Vec<u8>,
    pub lens: Vec<u16>,
}

/// The queue of one RX ring.
#[derive(Debug, Clone, Default)]
pub struct Backlog {
    q: VecDeque<Held>,
    /// Slots the queued packets need (one per fragment).
    slots: usize,
    bytes: usize,
    /// Most packets ever queued at once (for `netmapd status`).
    high: usize,
    /// Buffers of packets already moved out, reused by the next ones (a busy backlog
    /// then costs no allocation per packet).
    spare: Vec<Vec<u8>>,
}

/// Spare buffers kept per backlog.
const SPARES: usize = 256;

impl Backlog {
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// Packets queued.
    pub fn len(&self) -> usize {
        self.q.len()
    }

    /// Whether a packet of `slots` fragments and `bytes` bytes fits, given a ring of
    /// `ring_slots` slots.
    pub fn has_room(&self, slots: usize, bytes: usize, ring_slots: u32) -> bool {
        self.slots + slots <= RING_MULTIPLE * ring_slots as usize && self.bytes + bytes <= MAX_BYTES
    }

    /// An empty buffer for the next packet (a reused one when there is).
    pub fn buffer(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    /// Gives back the buffer of a packet moved out.
    pub fn recycle(&mut self, mut data: Vec<u8>) {
        if self.spare.len() < SPARES {
            data.clear();
            self.spare.push(data);
        }
    }

    /// Queues a packet (the caller checked [`Backlog::has_room`]).
    pub fn push(&mut self, held: Held) {
        self.slots += held.lens.len();
        self.bytes += held.data.len();
        self.q.push_back(held);
        self.high = self.high.max(self.q.len());
    }

    /// Most packets ever queued at once.
    pub fn high_water(&self) -> usize {
        self.high
    }

    pub fn front(&self) -> Option<&Held> {
        self.q.front()
    }

    pub fn pop(&mut self) -> Option<Held> {
        let h = self.q.pop_front()?;
        self.slots -= h.lens.len();
        self.bytes -= h.data.len();
        Some(h)
    }

    /// Empties the queue; returns how many packets were dropped.
    pub fn clear(&mut self) -> usize {
        let n = self.q.len();
        self.q.clear();
        (self.slots, self.bytes) = (0, 0);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_by_slots_and_bytes() {
        let mut b = Backlog::default();
        assert!(b.is_empty());
        let ring = 1; // a backlog of RING_MULTIPLE slots
        assert!(b.has_room(3, 100, ring));
        b.push(Held {
            data: vec![1; 100],
            lens: vec![50, 25, 25],
        });
        assert!(b.has_room(RING_MULTIPLE - 3, 10, ring));
        assert!(!b.has_room(RING_MULTIPLE - 2, 10, ring), "slot bound");
        assert!(!b.has_room(1, MAX_BYTES, 1024), "byte bound");
        b.push(Held {
            data: vec![2; 10],
            lens: vec![10],
        });
        assert_eq!(b.len(), 2);
        assert_eq!(b.high_water(), 2);
        assert_eq!(b.pop().map(|h| h.data[0]), Some(1), "first in, first out");
        assert!(b.has_room(3, 100, ring));
        assert_eq!(b.clear(), 1);
        assert!(b.is_empty() && b.has_room(RING_MULTIPLE, MAX_BYTES, ring));
    }
}
