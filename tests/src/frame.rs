//! Ethernet, IPv4 and UDP headers of the frames the test clients and benchmarks send,
//! built and parsed with `etherparse` rather than with hand-written offsets.
//!
//! Why etherparse over pnet's packet builders: it is a small pure-Rust crate whose
//! `PacketBuilder` writes a whole Ethernet/IPv4/UDP frame with lengths and checksums
//! filled in and whose header slices parse without copying, where pnet brings its
//! datalink layer, macros and a libpcap-style API the tests never use (both are
//! maintained; the smaller one that does the job reads better here).
//!
//! Payload checks (sequence numbers, patterns) stay in [`crate::payload`]: what this
//! module owns is the header bytes in front of them.

use etherparse::{EtherType, Ethernet2Header, Ethernet2HeaderSlice, PacketBuilder};

/// An Ethernet address.
pub type Mac = [u8; 6];

/// The broadcast address.
pub const BROADCAST: Mac = [0xff; 6];

/// IEEE 802 local experimental EtherType 1: frames no protocol handler of the kernel
/// picks up.
pub const ETHERTYPE_EXPERIMENTAL: u16 = 0x88b5;

/// The 14-byte Ethernet header `dst ← src` with EtherType `ethertype`.
pub fn eth_header(dst: Mac, src: Mac, ethertype: u16) -> [u8; Ethernet2Header::LEN] {
    Ethernet2Header {
        source: src,
        destination: dst,
        ether_type: EtherType(ethertype),
    }
    .to_bytes()
}

/// `(destination, source, ethertype)` of a frame, `None` if it is shorter than an
/// Ethernet header.
pub fn parse_eth(frame: &[u8]) -> Option<(Mac, Mac, u16)> {
    let h = Ethernet2HeaderSlice::from_slice(frame).ok()?;
    Some((h.destination(), h.source(), h.ether_type().0))
}

/// An Ethernet/IPv4/UDP frame carrying `payload`, with the IPv4 header checksum and
/// the UDP length and checksum computed.
#[allow(clippy::too_many_arguments)]
pub fn udp_frame(
    dst: Mac,
    src: Mac,
    src_ip: [u8; 4],
    dst_ip: [u8; 4],
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src, dst)
        .ipv4(src_ip, dst_ip, 64)
        .udp(sport, dport);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    // Writing into a Vec cannot fail; a payload too long for UDP is a test bug.
    b.write(&mut out, payload)
        .expect("an Ethernet/IPv4/UDP frame of this payload");
    out
}

/// The UDP payload of an Ethernet/IPv4/UDP frame, `None` for any other frame.
pub fn udp_payload(frame: &[u8]) -> Option<&[u8]> {
    let p = etherparse::SlicedPacket::from_ethernet(frame).ok()?;
    match p.transport? {
        etherparse::TransportSlice::Udp(u) => Some(u.payload()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let h = eth_header(BROADCAST, [2, 0, 0, 0, 0, 1], ETHERTYPE_EXPERIMENTAL);
        assert_eq!(&h[..6], &[0xff; 6]);
        assert_eq!(&h[12..], &[0x88, 0xb5]);
        assert_eq!(
            parse_eth(&h),
            Some((BROADCAST, [2, 0, 0, 0, 0, 1], ETHERTYPE_EXPERIMENTAL))
        );
        assert_eq!(parse_eth(&h[..13]), None);
        let f = udp_frame(
            [2; 6],
            [4; 6],
            [10, 1, 0, 1],
            [10, 2, 0, 2],
            1024,
            2000,
            &[7; 22],
        );
        assert_eq!(f.len(), 14 + 20 + 8 + 22);
        let p = etherparse::SlicedPacket::from_ethernet(&f).expect("parses");
        match p.net {
            Some(etherparse::NetSlice::Ipv4(ip)) => {
                assert_eq!(ip.header().source(), [10, 1, 0, 1]);
                assert_eq!(
                    ip.header().to_header().calc_header_checksum(),
                    ip.header().header_checksum()
                );
            }
            other => panic!("not IPv4: {other:?}"),
        }
        assert_eq!(udp_payload(&f), Some(&[7u8; 22][..]));
        assert_eq!(udp_payload(&h), None);
    }
}
