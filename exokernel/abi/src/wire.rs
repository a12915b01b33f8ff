//! Ethernet, IPv4 and their transport headers as bytes on the wire: the
//! numbers everything that builds or reads a frame needs — the kernel's
//! demultiplexer, the test programs' frame toolkit, the host's hostile
//! traffic — in one place, with the one internet checksum.

/// An Ethernet header: destination, source, EtherType.
pub const ETHERNET_HEADER: usize = 14;
/// EtherTypes (IEEE 802 numbers).
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// IPv4 protocol numbers (IANA).
pub const IP_ICMP: u8 = 1;
pub const IP_TCP: u8 = 6;
pub const IP_UDP: u8 = 17;
/// An IPv4 header without options.
pub const IPV4_HEADER: usize = 20;
/// A UDP header.
pub const UDP_HEADER: usize = 8;
/// A TCP header without options.
pub const TCP_HEADER: usize = 20;

/// The internet checksum (RFC 1071) of the concatenation of `parts`: the
/// ones' complement of the ones' complement sum of its 16-bit big-endian
/// words, an odd last byte padded with zero.
pub fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    let mut odd: Option<u8> = None;
    for &byte in parts.iter().flat_map(|part| part.iter()) {
        match odd.take() {
            Some(high) => sum += u64::from(u16::from_be_bytes([high, byte])),
            None => odd = Some(byte),
        }
    }
    if let Some(high) = odd {
        sum += u64::from(high) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_1071_example() {
        // RFC 1071, section 3: the sum of these words is 0xddf2.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&[&bytes]), !0xddf2);
    }

    #[test]
    fn parts_are_summed_as_one_run_of_bytes() {
        let whole = [1, 2, 3, 4, 5, 6, 7];
        let expected = internet_checksum(&[&whole]);
        assert_eq!(internet_checksum(&[&whole[..3], &whole[3..]]), expected);
        assert_eq!(
            internet_checksum(&[&whole[..1], &[], &whole[1..]]),
            expected
        );
    }

    #[test]
    fn a_header_with_its_checksum_sums_to_zero() {
        let mut header = [
            0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, IP_UDP, 0, 0, 10, 0, 2, 15, 10, 0, 2, 2,
        ];
        let checksum = internet_checksum(&[&header]);
        header[10..12].copy_from_slice(&checksum.to_be_bytes());
        assert_eq!(internet_checksum(&[&header]), 0);
    }
}
