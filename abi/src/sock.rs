//! The rootless front end's wire protocol: what the preload library and the daemon say
//! to each other over a Unix `SOCK_SEQPACKET` socket when there is no kernel device.
//!
//! A program's `open("/dev/netmap")` becomes a connection to the daemon's socket
//! ([`SOCKET_ENV`]); that connection *is* the netmap descriptor (the daemon releases the
//! registration when the last copy of it is closed, as the kernel does at the last
//! close of a device file). Every request is one datagram on it, carrying in
//! `SCM_RIGHTS` one end of a fresh socket pair on which the one reply comes back: so
//! two threads, or a parent and a child after `fork`, can share the descriptor without
//! reading each other's replies. The daemon writes nothing else on the connection but
//! one-byte wake-up tokens ([`WAKE_TOKEN`]): the connection is readable when a poll
//! armed on it may have become ready, which is what `poll`, `select` and `epoll` wait on.
//!
//! Request datagram: [`SockReq`], `arg_len` bytes of ioctl argument, then `nseg`
//! segments, each a [`SockSeg`] followed by `len` bytes padded to 8. Reply datagram:
//! [`SockReply`], `arg_len` bytes, then `nseg` segments (the caller memory the request
//! wrote, to be copied back), and for [`OP_MAP`] the region's memfd in `SCM_RIGHTS`.
//!
//! Segments are how NIOCCTRL's pointers travel: the library copies the header's body and
//! option chain out of the program's memory (the addresses are the program's), the
//! daemon serves its reads from them and returns what it wrote. Nothing in a request is
//! trusted: lengths are checked against the datagram, addresses are only keys.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Environment variable naming the daemon's socket path for the preload library.
pub const SOCKET_ENV: &str = "NETMAPD_SOCKET";
/// Largest datagram either side sends or accepts.
pub const MSG_MAX: usize = 64 * 1024;
/// Largest number of segments in one request.
pub const SEG_MAX: u32 = 128;
/// The byte the daemon writes on a connection to wake its pollers.
pub const WAKE_TOKEN: u8 = 0x57;

/// An ioctl: `cmd` and its argument; the reply carries the argument to copy back.
pub const OP_IOCTL: u32 = 1;
/// A poll for `events`; with `arm` set, a not-ready answer leaves a waiter that writes
/// a [`WAKE_TOKEN`] on the connection when the descriptor may have become ready.
pub const OP_POLL: u32 = 2;
/// The region: its memfd in `SCM_RIGHTS`, its length in `revents`/`arg` (u64 LE).
pub const OP_MAP: u32 = 3;
/// Asks whether the peer is a netmapd connection (a descriptor inherited across
/// `exec`, or a `dup` the library did not see): answered with errno 0.
pub const OP_HELLO: u32 = 4;

#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SockReq {
    pub op: u32,
    pub cmd: u32,
    pub events: u32,
    pub arm: u32,
    pub arg_len: u32,
    pub nseg: u32,
}
crate::assert_layout!(SockReq, size = 24, op @ 0, cmd @ 4, events @ 8, arm @ 12, arg_len @ 16, nseg @ 20);

#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SockReply {
    /// 0 or the errno the ioctl fails with.
    pub errno: u32,
    pub revents: u32,
    pub arg_len: u32,
    pub nseg: u32,
}
crate::assert_layout!(SockReply, size = 16, errno @ 0, revents @ 4, arg_len @ 8, nseg @ 12);

#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SockSeg {
    /// The program's address of the bytes.
    pub addr: u64,
    pub len: u32,
    pub _pad: u32,
}
crate::assert_layout!(SockSeg, size = 16, addr @ 0, len @ 8);

/// One segment: an address in the program and the bytes there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub addr: u64,
    pub bytes: Vec<u8>,
}

/// Why a datagram could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

fn pad8(n: usize) -> usize {
    (n + 7) & !7
}

/// Appends `arg` and the segments after a header already in `out`.
pub fn encode_tail(out: &mut Vec<u8>, arg: &[u8], segs: &[Segment]) {
    out.extend_from_slice(arg);
    out.resize(pad8(out.len()), 0);
    for s in segs {
        let h = SockSeg {
            addr: s.addr,
            len: s.bytes.len() as u32,
            _pad: 0,
        };
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&s.bytes);
        out.resize(pad8(out.len()), 0);
    }
}

/// Reads `arg_len` bytes and `nseg` segments from `rest` (the datagram past its
/// header), checking every length against what arrived.
pub fn decode_tail(
    rest: &[u8],
    arg_len: u32,
    nseg: u32,
) -> Result<(Vec<u8>, Vec<Segment>), Malformed> {
    if nseg > SEG_MAX {
        return Err(Malformed);
    }
    let al = arg_len as usize;
    let arg = rest.get(..al).ok_or(Malformed)?.to_vec();
    let mut at = pad8(al);
    let mut segs = Vec::with_capacity(nseg as usize);
    for _ in 0..nseg {
        let h = rest
            .get(at..at + core::mem::size_of::<SockSeg>())
            .and_then(|b| SockSeg::read_from_bytes(b).ok())
            .ok_or(Malformed)?;
        at += core::mem::size_of::<SockSeg>();
        let len = h.len as usize;
        let bytes = rest
            .get(at..at.checked_add(len).ok_or(Malformed)?)
            .ok_or(Malformed)?;
        segs.push(Segment {
            addr: h.addr,
            bytes: bytes.to_vec(),
        });
        at = pad8(at + len);
    }
    Ok((arg, segs))
}

/// A whole request datagram.
pub fn encode_req(req: &SockReq, arg: &[u8], segs: &[Segment]) -> Vec<u8> {
    let mut h = *req;
    h.arg_len = arg.len() as u32;
    h.nseg = segs.len() as u32;
    let mut out = h.as_bytes().to_vec();
    encode_tail(&mut out, arg, segs);
    out
}

/// A whole reply datagram.
pub fn encode_reply(rep: &SockReply, arg: &[u8], segs: &[Segment]) -> Vec<u8> {
    let mut h = *rep;
    h.arg_len = arg.len() as u32;
    h.nseg = segs.len() as u32;
    let mut out = h.as_bytes().to_vec();
    encode_tail(&mut out, arg, segs);
    out
}

pub fn decode_req(msg: &[u8]) -> Result<(SockReq, Vec<u8>, Vec<Segment>), Malformed> {
    let (h, rest) = SockReq::read_from_prefix(msg).map_err(|_| Malformed)?;
    let (arg, segs) = decode_tail(rest, h.arg_len, h.nseg)?;
    Ok((h, arg, segs))
}

pub fn decode_reply(msg: &[u8]) -> Result<(SockReply, Vec<u8>, Vec<Segment>), Malformed> {
    let (h, rest) = SockReply::read_from_prefix(msg).map_err(|_| Malformed)?;
    let (arg, segs) = decode_tail(rest, h.arg_len, h.nseg)?;
    Ok((h, arg, segs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip() {
        let segs = vec![
            Segment {
                addr: 0x1000,
                bytes: vec![1, 2, 3],
            },
            Segment {
                addr: 0x2000,
                bytes: vec![9; 40],
            },
        ];
        let req = SockReq {
            op: OP_IOCTL,
            cmd: 7,
            ..Default::default()
        };
        let m = encode_req(&req, &[5; 13], &segs);
        let (h, arg, s) = decode_req(&m).unwrap();
        assert_eq!((h.op, h.cmd, h.arg_len, h.nseg), (OP_IOCTL, 7, 13, 2));
        assert_eq!(arg, vec![5; 13]);
        assert_eq!(s, segs);
    }

    #[test]
    fn truncated_and_lying_lengths_are_refused() {
        let segs = vec![Segment {
            addr: 1,
            bytes: vec![0; 100],
        }];
        let m = encode_req(&SockReq::default(), &[1; 8], &segs);
        for cut in 0..m.len() - 1 {
            // A cut inside the padding of the last segment still holds every byte.
            if cut >= m.len() - 4 {
                continue;
            }
            assert!(decode_req(&m[..cut]).is_err(), "cut at {cut}");
        }
        let mut lie = m.clone();
        lie[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_req(&lie).is_err());
        let mut many = m;
        many[20..24].copy_from_slice(&(SEG_MAX + 1).to_le_bytes());
        assert!(decode_req(&many).is_err());
    }
}
