//! Deterministic packet contents for the streaming tests.
//!
//! Packet `seq` starts with a fixed 14-byte Ethernet header ([`SRC`] to [`DST`]: locally
//! administered unicast MACs and the IEEE local-experimental EtherType 0x88b5, so a
//! real wire or veth carries it as an ordinary frame that no protocol handler picks
//! up), then `seq` as a little-endian u64 in bytes 14..22, then a slice of a fixed
//! pseudo-random pattern starting at `seq % 251`. Its length is either fixed or
//! derived from `seq`, so the receiver can detect loss, reordering, truncation and
//! corruption without any side channel. The header doubles as the marker that tells
//! our frames from foreign ones ([`is_ours`]) on a NIC where the kernel may inject
//! other traffic.

/// Smallest packet (an Ethernet frame without FCS).
pub const MIN_LEN: usize = 60;
/// Largest packet: one default netmap buffer.
pub const MAX_LEN: usize = 2048;
/// Destination and source of every generated frame (EtherType
/// [`crate::frame::ETHERTYPE_EXPERIMENTAL`]). The header is also the "ours" marker.
pub const DST: crate::frame::Mac = [0x02, 0x6e, 0x6d, 0x64, 0x00, 0x02];
pub const SRC: crate::frame::Mac = [0x02, 0x6e, 0x6d, 0x64, 0x00, 0x01];
const HDR_BYTES: usize = 14;

/// The Ethernet header of every generated frame.
pub fn eth_hdr() -> [u8; HDR_BYTES] {
    crate::frame::eth_header(DST, SRC, crate::frame::ETHERTYPE_EXPERIMENTAL)
}
const SEQ_BYTES: usize = 8;
/// Bytes before the pattern: Ethernet header + sequence number.
const PREFIX: usize = HDR_BYTES + SEQ_BYTES;
const PATTERN_SHIFT: u64 = 251;

/// Generator/checker shared by `pipe-tx` and `pipe-rx` (both must use the same
/// parameters).
pub struct Payload {
    pattern: Vec<u8>,
    fixed_len: Option<usize>,
    max_len: usize,
    /// [`eth_hdr`], built once.
    hdr: [u8; HDR_BYTES],
}

impl Payload {
    /// `fixed_len` = every packet that long; otherwise lengths vary in
    /// `[MIN_LEN, max_len]`.
    pub fn new(fixed_len: Option<usize>, max_len: usize) -> Result<Payload, String> {
        Self::for_stream(fixed_len, max_len, 0)
    }

    /// Like [`Payload::new`] with a pattern specific to `stream` (stream 0 is the
    /// pattern of [`Payload::new`]): concurrent streams with distinct ids carry
    /// different bodies, so a packet delivered to the wrong stream fails the check
    /// even when its sequence number happens to match.
    pub fn for_stream(
        fixed_len: Option<usize>,
        max_len: usize,
        stream: u32,
    ) -> Result<Payload, String> {
        let check = |l: usize, what: &str| {
            if (MIN_LEN..=MAX_LEN).contains(&l) {
                Ok(())
            } else {
                Err(format!("{what} {l} not in [{MIN_LEN}, {MAX_LEN}]"))
            }
        };
        if let Some(l) = fixed_len {
            check(l, "--len")?;
        }
        check(max_len, "--max-len")?;
        let n = MAX_LEN + PATTERN_SHIFT as usize;
        // xorshift needs a non-zero state (0 is its fixed point).
        let mut x: u32 = 0x1234_5678 ^ stream.wrapping_mul(0x9e37_79b9);
        if x == 0 {
            x = 0x1234_5678;
        }
        let pattern = (0..n)
            .map(|_| {
                // xorshift32: cheap, deterministic, no repeating short period.
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 11) as u8
            })
            .collect();
        Ok(Payload {
            pattern,
            fixed_len,
            max_len,
            hdr: eth_hdr(),
        })
    }

    /// Length of packet `seq`.
    pub fn len_of(&self, seq: u64) -> usize {
        match self.fixed_len {
            Some(l) => l,
            None => {
                let h = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 33;
                MIN_LEN + (h % (self.max_len - MIN_LEN + 1) as u64) as usize
            }
        }
    }

    /// Bytes after the sequence number of a packet of length `len`.
    fn body(&self, seq: u64, len: usize) -> &[u8] {
        let start = (seq % PATTERN_SHIFT) as usize;
        &self.pattern[start..start + len - PREFIX]
    }

    /// Header (Ethernet header + sequence number) and body of packet `seq` (written as
    /// two copies into the buffer).
    pub fn parts(&self, seq: u64) -> ([u8; PREFIX], &[u8]) {
        let mut h = [0u8; PREFIX];
        h[..HDR_BYTES].copy_from_slice(&self.hdr);
        h[HDR_BYTES..].copy_from_slice(&seq.to_le_bytes());
        (h, self.body(seq, self.len_of(seq)))
    }

    /// Checks a received packet against packet `seq`; the error says what differs.
    pub fn check(&self, seq: u64, data: &[u8]) -> Result<(), String> {
        let want_len = self.len_of(seq);
        if !is_ours(data) {
            return Err(format!(
                "packet #{seq}: not one of ours (len {}, first bytes {:02x?}); \
                 use --ignore-foreign on a NIC where the kernel may inject frames",
                data.len(),
                &data[..data.len().min(HDR_BYTES)]
            ));
        }
        if data.len() >= PREFIX {
            let got_seq = u64::from_le_bytes(data[HDR_BYTES..PREFIX].try_into().unwrap());
            if got_seq != seq {
                return Err(format!(
                    "packet #{seq}: carries sequence number {got_seq} (loss or reordering), len {}",
                    data.len()
                ));
            }
        }
        if data.len() != want_len {
            return Err(format!(
                "packet #{seq}: length {} expected {want_len}",
                data.len()
            ));
        }
        let want = self.body(seq, want_len);
        if data[PREFIX..] != *want {
            let pos = data[PREFIX..]
                .iter()
                .zip(want)
                .position(|(a, b)| a != b)
                .unwrap_or(0)
                + PREFIX;
            return Err(format!(
                "packet #{seq}: payload corrupted at byte {pos}: got 0x{:02x} expected 0x{:02x}",
                data[pos],
                want[pos - PREFIX]
            ));
        }
        Ok(())
    }
}

/// The sequence number a frame of ours carries, if it is long enough.
pub fn seq_of(data: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(
        data.get(HDR_BYTES..PREFIX)?.try_into().ok()?,
    ))
}

/// Whether `data` is a frame generated by [`Payload`] (carries its Ethernet header).
pub fn is_ours(data: &[u8]) -> bool {
    data.len() >= PREFIX
        && crate::frame::parse_eth(data) == Some((DST, SRC, crate::frame::ETHERTYPE_EXPERIMENTAL))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_detection() {
        let p = Payload::new(None, MAX_LEN).unwrap();
        let mut lens = std::collections::BTreeSet::new();
        for seq in 0..10_000u64 {
            let (h, b) = p.parts(seq);
            let pkt: Vec<u8> = h.iter().chain(b).copied().collect();
            assert!((MIN_LEN..=MAX_LEN).contains(&pkt.len()));
            lens.insert(pkt.len());
            p.check(seq, &pkt).unwrap();
            assert!(p.check(seq + 1, &pkt).is_err(), "seq mismatch not detected");
            let mut bad = pkt.clone();
            *bad.last_mut().unwrap() ^= 1;
            assert!(p.check(seq, &bad).is_err(), "corruption not detected");
            assert!(p.check(seq, &pkt[..pkt.len() - 1]).is_err());
        }
        assert!(lens.len() > 1000, "lengths should vary: {}", lens.len());
        let f = Payload::new(Some(60), MAX_LEN).unwrap();
        assert!((0..100).all(|s| f.len_of(s) == 60));
        assert!(Payload::new(Some(59), MAX_LEN).is_err());
        let (h, b) = f.parts(7);
        let pkt: Vec<u8> = h.iter().chain(b).copied().collect();
        assert!(is_ours(&pkt));
        let mut arp = pkt.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!is_ours(&arp));
        assert!(f.check(7, &arp).is_err(), "foreign frame not rejected");
    }

    #[test]
    fn streams_differ() {
        let a = Payload::for_stream(None, MAX_LEN, 1).unwrap();
        let b = Payload::for_stream(None, MAX_LEN, 2).unwrap();
        let z = Payload::for_stream(None, MAX_LEN, 0).unwrap();
        let n = Payload::new(None, MAX_LEN).unwrap();
        for seq in 0..1000u64 {
            let (h, body) = a.parts(seq);
            let pkt: Vec<u8> = h.iter().chain(body).copied().collect();
            a.check(seq, &pkt).unwrap();
            assert!(b.check(seq, &pkt).is_err(), "cross-stream packet accepted");
            assert_eq!(z.parts(seq).1, n.parts(seq).1);
        }
    }
}
