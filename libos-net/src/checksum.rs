//! The Internet checksum (RFC 1071) that the front door verifies on every
//! TCP and UDP segment, eight bytes at a time.
//!
//! smoltcp sums two bytes at a time, which is what a small processor
//! wants; under QEMU's emulator every instruction costs the same whatever
//! its width, and the front door's check was a third of the work a bulk
//! TCP receiver did per frame. Summing 64-bit words with an end-around
//! carry reads the same bytes with a quarter of the additions. The result
//! does not depend on byte order: the one's-complement sum of
//! little-endian words is the big-endian sum with its two bytes swapped
//! (RFC 1071, section 2(B)), so the sum is taken in native order and
//! swapped once at the end.

use core::net::Ipv4Addr;

/// The one's-complement sum of `bytes` read as big-endian 16-bit words
/// (an odd last byte padded with a zero), not complemented: RFC 1071's sum.
pub fn sum(bytes: &[u8]) -> u16 {
    let mut total = Sum::default();
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        // Four words a round: fewer loop tests, the same additions.
        for word in block.chunks_exact(8) {
            total.add(word);
        }
    }
    let mut words = blocks.remainder().chunks_exact(8);
    for word in &mut words {
        total.add(word);
    }
    let mut last = [0u8; 8];
    let tail = words.remainder();
    last[..tail.len()].copy_from_slice(tail);
    total.add(&last);
    u16::from_be(total.fold())
}

/// Whether a TCP or UDP `segment` (header and payload) from `source` to
/// `destination` carries a checksum that adds up, its IPv4 pseudo-header
/// (RFC 793, RFC 768) included: the sum of both is all ones.
pub fn segment_valid(
    source: Ipv4Addr,
    destination: Ipv4Addr,
    protocol: u8,
    segment: &[u8],
) -> bool {
    let Ok(length) = u16::try_from(segment.len()) else {
        return false;
    };
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&source.octets());
    pseudo[4..8].copy_from_slice(&destination.octets());
    pseudo[9] = protocol;
    pseudo[10..12].copy_from_slice(&length.to_be_bytes());
    add(sum(&pseudo), sum(segment)) == 0xffff
}

/// Two 16-bit one's-complement sums added.
fn add(a: u16, b: u16) -> u16 {
    let (total, carry) = a.overflowing_add(b);
    total + u16::from(carry)
}

/// A running one's-complement sum of native-order 64-bit words.
#[derive(Default)]
struct Sum(u64);

impl Sum {
    /// Adds eight bytes, the carry out of the top wrapped round to the bottom.
    fn add(&mut self, word: &[u8]) {
        let word = u64::from_ne_bytes(word.try_into().expect("eight bytes"));
        let (total, carry) = self.0.overflowing_add(word);
        self.0 = total + u64::from(carry);
    }

    /// Folded to 16 bits, still in native order.
    fn fold(self) -> u16 {
        let mut total = (self.0 >> 32) + (self.0 & 0xffff_ffff);
        total = (total >> 32) + (total & 0xffff_ffff);
        let mut total = (total >> 16) + (total & 0xffff);
        total = (total >> 16) + (total & 0xffff);
        total = (total >> 16) + (total & 0xffff);
        total as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 as written: big-endian 16-bit words into a wide sum, folded.
    fn reference(bytes: &[u8]) -> u16 {
        let mut total: u64 = 0;
        for pair in bytes.chunks(2) {
            let high = u64::from(pair[0]) << 8;
            let low = pair.get(1).copied().map_or(0, u64::from);
            total += high | low;
        }
        while total > 0xffff {
            total = (total >> 16) + (total & 0xffff);
        }
        total as u16
    }

    /// A reproducible run of bytes (xorshift), so failures can be replayed.
    fn bytes(seed: u64, length: usize) -> Vec<u8> {
        let mut state = seed | 1;
        (0..length)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[test]
    fn matches_rfc_1071_at_every_length_and_offset() {
        let data = bytes(1071, 1600);
        for start in 0..9 {
            for length in 0..=1514 {
                let slice = &data[start..start + length];
                assert_eq!(
                    sum(slice),
                    reference(slice),
                    "start {start}, length {length}"
                );
            }
        }
    }

    #[test]
    fn carries_wrap_round() {
        // All ones: every addition carries.
        let ones = [0xffu8; 1500];
        assert_eq!(sum(&ones), reference(&ones));
        assert_eq!(sum(&ones), 0xffff);
        assert_eq!(sum(&[]), 0);
        assert_eq!(sum(&[0x12]), 0x1200);
    }

    #[test]
    fn rfc_1071_example() {
        // RFC 1071, 3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        assert_eq!(
            sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    #[test]
    fn segments_agree_with_smoltcp() {
        use smoltcp::phy::ChecksumCapabilities;
        use smoltcp::wire::{IpAddress, TcpPacket, TcpRepr, TcpSeqNumber};
        let (source, destination) = (Ipv4Addr::new(10, 0, 2, 2), Ipv4Addr::new(10, 0, 2, 15));
        for length in [0, 1, 7, 8, 9, 31, 32, 33, 536, 1459, 1460] {
            let payload = bytes(length as u64, length);
            let repr = TcpRepr {
                src_port: 40000,
                dst_port: 9,
                control: smoltcp::wire::TcpControl::None,
                seq_number: TcpSeqNumber(7),
                ack_number: Some(TcpSeqNumber(9)),
                window_len: 1000,
                window_scale: None,
                max_seg_size: None,
                sack_permitted: false,
                sack_ranges: [None; 3],
                timestamp: None,
                payload: &payload,
            };
            let mut segment = vec![0u8; repr.buffer_len()];
            let mut packet = TcpPacket::new_unchecked(&mut segment);
            repr.emit(
                &mut packet,
                &IpAddress::Ipv4(source),
                &IpAddress::Ipv4(destination),
                &ChecksumCapabilities::default(),
            );
            assert!(
                segment_valid(source, destination, 6, &segment),
                "length {length}"
            );
            // Any flipped bit is caught, and so are the wrong addresses or protocol.
            for bit in [0, 100, 8 * segment.len() - 1] {
                let mut broken = segment.clone();
                broken[bit / 8] ^= 1 << (bit % 8);
                assert!(!segment_valid(source, destination, 6, &broken));
            }
            assert!(!segment_valid(
                destination,
                Ipv4Addr::new(10, 0, 2, 3),
                6,
                &segment
            ));
            assert!(!segment_valid(source, destination, 17, &segment));
        }
    }
}
