//! The stack's front door: every received frame is checked here once,
//! before smoltcp sees it, and what is refused is counted by reason.
//!
//! The kernel's filter already matched the frame's addresses and port, but
//! it reads only the header fields it needs: a frame may still be truncated,
//! carry a wrong checksum, or hold a header that contradicts itself. Such a
//! frame hurts nobody (smoltcp would drop it too), but a stack that drops
//! silently cannot show an attack, so the checks live here, with counts, and
//! smoltcp is told not to repeat the checksum work
//! ([`receive_checksums`]).
//!
//! The door also reports TCP connection requests (`SYN` without `ACK`), so
//! that a listener can have a socket ready for each (`stack.rs`).

use smoltcp::phy::{Checksum, ChecksumCapabilities};
use smoltcp::wire::{
    ArpPacket, EthernetFrame, EthernetProtocol, Icmpv4Packet, IpProtocol, Ipv4Packet, TcpPacket,
    UdpPacket,
};

use crate::checksum;

/// Why a frame was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than a header it claims to carry.
    Truncated,
    /// An IPv4, ICMP, UDP or TCP checksum that does not add up.
    BadChecksum,
    /// A header field that cannot be right: an IP version other than 4, a
    /// header length below the minimum, a length beyond the frame, an
    /// unsupported EtherType or protocol.
    BadHeader,
}

/// What the door learnt of a frame it let in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Admitted {
    /// The destination port of a TCP connection request (`SYN`, no `ACK`).
    pub connection_request: Option<u16>,
}

/// The checksums smoltcp still does itself: it computes every checksum it
/// sends and verifies none, because [`check`] has verified them already.
pub fn receive_checksums() -> ChecksumCapabilities {
    let mut checksums = ChecksumCapabilities::default();
    checksums.ipv4 = Checksum::Tx;
    checksums.udp = Checksum::Tx;
    checksums.tcp = Checksum::Tx;
    checksums.icmpv4 = Checksum::Tx;
    checksums
}

/// Checks `frame` (an Ethernet frame as the NIC delivered it).
pub fn check(frame: &[u8]) -> Result<Admitted, Malformed> {
    let ethernet = EthernetFrame::new_checked(frame).map_err(|_| Malformed::Truncated)?;
    match ethernet.ethertype() {
        EthernetProtocol::Arp => {
            ArpPacket::new_checked(ethernet.payload()).map_err(|_| Malformed::Truncated)?;
            Ok(Admitted::default())
        }
        EthernetProtocol::Ipv4 => check_ipv4(ethernet.payload()),
        _ => Err(Malformed::BadHeader),
    }
}

fn check_ipv4(bytes: &[u8]) -> Result<Admitted, Malformed> {
    // `new_checked` refuses a buffer shorter than the header or than the
    // total length, and a header length below 20 or above the total length.
    let ip = Ipv4Packet::new_checked(bytes).map_err(|_| {
        if bytes.len() < 20 {
            Malformed::Truncated
        } else {
            Malformed::BadHeader
        }
    })?;
    if ip.version() != 4 {
        return Err(Malformed::BadHeader);
    }
    if !ip.verify_checksum() {
        return Err(Malformed::BadChecksum);
    }
    if ip.more_frags() || ip.frag_offset() != 0 {
        // exo's stacks do not reassemble; a fragment is refused, and counted.
        return Err(Malformed::BadHeader);
    }
    let (source, destination) = (ip.src_addr(), ip.dst_addr());
    let payload = ip.payload();
    let protocol = ip.next_header();
    let segment_valid = || checksum::segment_valid(source, destination, protocol.into(), payload);
    match protocol {
        IpProtocol::Tcp => {
            let tcp = TcpPacket::new_checked(payload).map_err(|_| Malformed::Truncated)?;
            if !segment_valid() {
                return Err(Malformed::BadChecksum);
            }
            let request = tcp.syn() && !tcp.ack();
            Ok(Admitted {
                connection_request: request.then(|| tcp.dst_port()),
            })
        }
        IpProtocol::Udp => {
            let udp = UdpPacket::new_checked(payload).map_err(|_| Malformed::Truncated)?;
            // A zero checksum means "none" in IPv4 (RFC 768).
            if udp.checksum() != 0 && !segment_valid() {
                return Err(Malformed::BadChecksum);
            }
            Ok(Admitted::default())
        }
        IpProtocol::Icmp => {
            let icmp = Icmpv4Packet::new_checked(payload).map_err(|_| Malformed::Truncated)?;
            if !icmp.verify_checksum() {
                return Err(Malformed::BadChecksum);
            }
            Ok(Admitted::default())
        }
        _ => Err(Malformed::BadHeader),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{
        EthernetAddress, EthernetRepr, Ipv4Address, Ipv4Repr, TcpControl, TcpRepr, TcpSeqNumber,
        UdpRepr,
    };

    const SOURCE: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
    const DESTINATION: Ipv4Address = Ipv4Address::new(10, 0, 2, 15);

    fn frame(protocol: IpProtocol, payload_length: usize, fill: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let mut bytes = vec![0u8; 14 + 20 + payload_length];
        let mut ethernet = EthernetFrame::new_unchecked(&mut bytes[..]);
        EthernetRepr {
            src_addr: EthernetAddress([0x52, 0x55, 10, 0, 2, 2]),
            dst_addr: EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
            ethertype: EthernetProtocol::Ipv4,
        }
        .emit(&mut ethernet);
        let mut ip = Ipv4Packet::new_unchecked(ethernet.payload_mut());
        Ipv4Repr {
            src_addr: SOURCE,
            dst_addr: DESTINATION,
            next_header: protocol,
            payload_len: payload_length,
            hop_limit: 64,
        }
        .emit(&mut ip, &ChecksumCapabilities::default());
        fill(ip.payload_mut());
        bytes
    }

    fn udp(payload: &[u8]) -> Vec<u8> {
        frame(IpProtocol::Udp, 8 + payload.len(), |bytes| {
            let repr = UdpRepr {
                src_port: 40000,
                dst_port: 7,
            };
            let mut packet = UdpPacket::new_unchecked(bytes);
            repr.emit(
                &mut packet,
                &SOURCE.into(),
                &DESTINATION.into(),
                payload.len(),
                |out| out.copy_from_slice(payload),
                &ChecksumCapabilities::default(),
            );
        })
    }

    fn tcp(control: TcpControl, ack: bool) -> Vec<u8> {
        let repr = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            control,
            seq_number: TcpSeqNumber(1),
            ack_number: ack.then_some(TcpSeqNumber(2)),
            window_len: 1000,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: b"",
        };
        frame(IpProtocol::Tcp, repr.header_len(), |bytes| {
            repr.emit(
                &mut TcpPacket::new_unchecked(bytes),
                &SOURCE.into(),
                &DESTINATION.into(),
                &ChecksumCapabilities::default(),
            );
        })
    }

    #[test]
    fn well_formed_frames_are_admitted() {
        assert_eq!(check(&udp(b"hello")), Ok(Admitted::default()));
        assert_eq!(
            check(&tcp(TcpControl::Syn, false)),
            Ok(Admitted {
                connection_request: Some(80)
            })
        );
        // A SYN-ACK answers a request; it is not one.
        assert_eq!(check(&tcp(TcpControl::Syn, true)), Ok(Admitted::default()));
        assert_eq!(check(&tcp(TcpControl::None, true)), Ok(Admitted::default()));
    }

    #[test]
    fn every_truncation_is_refused() {
        let whole = udp(b"hello");
        for length in 0..whole.len() {
            assert!(check(&whole[..length]).is_err(), "{length} bytes admitted");
        }
        let syn = tcp(TcpControl::Syn, false);
        for length in 0..syn.len() {
            assert!(check(&syn[..length]).is_err(), "{length} bytes admitted");
        }
        assert_eq!(check(&whole[..10]), Err(Malformed::Truncated));
    }

    #[test]
    fn a_flipped_bit_anywhere_past_the_ethernet_header_is_refused() {
        let whole = udp(b"some payload");
        for byte in 14..whole.len() {
            for bit in 0..8 {
                let mut bad = whole.clone();
                bad[byte] ^= 1 << bit;
                // The TTL and the UDP checksum field itself are covered by
                // the IP and UDP checksums; every bit counts.
                assert!(check(&bad).is_err(), "byte {byte} bit {bit} admitted");
            }
        }
    }

    #[test]
    fn bad_checksums_and_headers_are_told_apart() {
        let mut bad_ip = udp(b"x");
        bad_ip[14 + 10] ^= 0xff;
        assert_eq!(check(&bad_ip), Err(Malformed::BadChecksum));
        let mut bad_udp = udp(b"x");
        let at = bad_udp.len() - 1;
        bad_udp[at] ^= 0xff;
        assert_eq!(check(&bad_udp), Err(Malformed::BadChecksum));
        let mut bad_length = udp(b"x");
        bad_length[14 + 3] = 0xff; // total length past the frame
        assert_eq!(check(&bad_length), Err(Malformed::BadHeader));
        let mut ipv6 = udp(b"x");
        ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(check(&ipv6), Err(Malformed::BadHeader));
    }

    #[test]
    fn random_bytes_never_panic_and_are_almost_never_admitted() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut admitted = 0;
        for round in 0..20_000 {
            let length = round % 200;
            let bytes: Vec<u8> = (0..length)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            admitted += usize::from(check(&bytes).is_ok());
        }
        assert!(admitted < 20, "{admitted} random frames admitted");
    }
}
