//! The hostile frames that only a real interface carries (see
//! [`tap_network`](super::tap_network)), beside [`hostile_frames`](super::hostile_frames)'
//! kinds: a flood of TCP connection requests from forged sources, IPv4 fragments, and ARP
//! packets that lie about who holds the guest's address and the gateway's. QEMU's
//! user-mode network would act on these itself, so they could not share its hub.
//!
//! Offsets follow RFC 826 (ARP), RFC 791 (IPv4 fragments) and RFC 9293 (TCP). Every frame
//! is the same on every run.

use exo_abi::wire::{
    ETHERNET_HEADER, ETHERTYPE_ARP, IP_TCP as PROTOCOL_TCP, IP_UDP as PROTOCOL_UDP, IPV4_HEADER,
    TCP_HEADER, internet_checksum,
};

use super::hostile_frames::{
    Datagram, Fate, GATEWAY_IP, GUEST_IP, HostileFrame, Ipv4Packet, Segment, TCP_SYN, Transport,
};
use crate::qemu::GUEST_MAC;

/// Connection requests in the flood.
pub const SYN_FLOOD: usize = 10_000;
/// The flood's forged sources: RFC 2544's benchmarking block 198.18.0.0/15, off the guest's
/// subnet. The guest answers them through its gateway, the tap, where Linux drops the
/// answers (not addressed to it, and it forwards nothing): as with a real flood, no
/// handshake ever completes and no reset ever comes back.
const FORGED_NETWORK: [u8; 2] = [198, 18];
/// The liar's MAC address in the ARP packets: locally administered, unicast.
pub const ATTACKER_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x66];
const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// ARP (RFC 826): Ethernet hardware, IPv4 protocol addresses, the two operations.
const ARP_HARDWARE_ETHERNET: u16 = 1;
const ARP_PROTOCOL_IPV4: u16 = 0x0800;
const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;
/// An ARP packet for Ethernet and IPv4: 8 bytes of header, two MAC and two IPv4 addresses.
const ARP_PACKET: usize = 28;

/// IPv4's "more fragments" flag, in the word that also holds the offset (RFC 791).
const MORE_FRAGMENTS: u16 = 0x2000;
/// Fragment offsets count units of 8 bytes.
const FRAGMENT_UNIT: usize = 8;
/// Where a TCP segment's second fragment starts: past its header, on an 8-byte boundary.
const TCP_TAIL_START: usize = 32;

/// `count` TCP connection requests (`SYN`, nothing else) to the guest's `port`, each from a
/// different forged address and port, with right checksums: to the guest, each looks like a
/// new client.
pub fn syn_flood(port: u16, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|index| {
            let host = index as u32;
            let source = [
                FORGED_NETWORK[0],
                FORGED_NETWORK[1] | (host >> 16 & 1) as u8,
                (host >> 8) as u8,
                host as u8,
            ];
            let source_port = 1024 + (index % 60_000) as u16;
            let sequence = (host).wrapping_mul(0x9e37_79b9);
            let mut packet = Segment::new(source_port, port, sequence, TCP_SYN, &[]).packet();
            forge_source(&mut packet, source);
            packet.frame()
        })
        .collect()
}

/// Rewrites the packet's source address, with the IPv4 header checksum and the TCP or UDP
/// checksum (whose pseudo-header holds the source) to match.
fn forge_source(packet: &mut Ipv4Packet, source: [u8; 4]) {
    packet.set_and_checksum(|header| header[12..16].copy_from_slice(&source));
    let (header, transport) = packet.bytes.split_at_mut(IPV4_HEADER);
    let checksum_at = match header[9] {
        PROTOCOL_TCP => 16,
        PROTOCOL_UDP => 6,
        other => panic!("forging the source of protocol {other}, neither TCP nor UDP"),
    };
    transport[checksum_at..checksum_at + 2].fill(0);
    let mut pseudo = [0; 12];
    pseudo[0..8].copy_from_slice(&header[12..20]);
    pseudo[9] = header[9];
    pseudo[10..12].copy_from_slice(&(transport.len() as u16).to_be_bytes());
    let checksum = internet_checksum(&[&pseudo, transport]);
    transport[checksum_at..checksum_at + 2].copy_from_slice(&checksum.to_be_bytes());
}

/// IPv4 fragments of UDP datagrams and TCP segments for the guest's `port`, in `rounds`
/// rounds (each with its own identification). exo's stacks do not reassemble: a first
/// fragment names a port, so the kernel hands it to that port's stack, which must refuse
/// it; a later one names none, so the kernel drops it. Among them: a whole datagram
/// wrongly marked "more fragments", and RFC 1858's tiny and overlapping fragments.
pub fn fragments(port: u16, rounds: u16) -> Vec<HostileFrame> {
    let mut frames = Vec::new();
    for round in 0..rounds {
        let payload: Vec<u8> = (0..64).map(|byte| byte as u8 ^ round as u8).collect();
        let datagram = Datagram::new(1000 + round, port, &payload).packet();
        let segment =
            Segment::new(1000 + round, port, u32::from(round), TCP_SYN, &payload).packet();
        let udp = &datagram.bytes[IPV4_HEADER..];
        let tcp = &segment.bytes[IPV4_HEADER..];
        let id = 0x4000 + round;
        let mut add = |kind, fate, bytes| frames.push(HostileFrame { kind, fate, bytes });
        add(
            "the first IPv4 fragment of a UDP datagram",
            Fate::MalformedForUdp,
            fragment(PROTOCOL_UDP, id, udp, 0, 32, true),
        );
        add(
            "a middle IPv4 fragment of a UDP datagram",
            Fate::DroppedByKernel,
            fragment(PROTOCOL_UDP, id, udp, 16, 48, true),
        );
        add(
            "the last IPv4 fragment of a UDP datagram",
            Fate::DroppedByKernel,
            fragment(PROTOCOL_UDP, id, udp, 32, udp.len(), false),
        );
        add(
            "a whole UDP datagram marked as a first fragment",
            Fate::MalformedForUdp,
            fragment(PROTOCOL_UDP, id + 0x1000, udp, 0, udp.len(), true),
        );
        add(
            "the first IPv4 fragment of a TCP segment",
            Fate::MalformedForTcp,
            fragment(PROTOCOL_TCP, id, tcp, 0, TCP_TAIL_START, true),
        );
        add(
            "the last IPv4 fragment of a TCP segment",
            Fate::DroppedByKernel,
            fragment(PROTOCOL_TCP, id, tcp, TCP_TAIL_START, tcp.len(), false),
        );
        // RFC 1858's two attacks on filters: a first fragment too short to hold the TCP
        // header (its flags come later), and a later one that overlaps the header.
        add(
            "a first fragment too short for a TCP header",
            Fate::DroppedByKernel,
            fragment(PROTOCOL_TCP, id + 0x2000, tcp, 0, FRAGMENT_UNIT, true),
        );
        add(
            "a fragment overlapping a TCP header",
            Fate::DroppedByKernel,
            fragment(PROTOCOL_TCP, id, tcp, FRAGMENT_UNIT, TCP_HEADER + 8, false),
        );
    }
    frames
}

/// The bytes `start..end` of `transport` (a UDP datagram or TCP segment, whole) as one IPv4
/// fragment of packet `id` (RFC 791: the offset in 8-byte units in the low 13 bits of
/// bytes 6 and 7, "more fragments" above it); `start` is a multiple of 8.
fn fragment(
    protocol: u8,
    id: u16,
    transport: &[u8],
    start: usize,
    end: usize,
    more: bool,
) -> Vec<u8> {
    assert_eq!(
        start % FRAGMENT_UNIT,
        0,
        "fragment offsets count 8-byte units"
    );
    let mut packet = Ipv4Packet::new(protocol, &transport[start..end]);
    let flags_and_offset = (start / FRAGMENT_UNIT) as u16 | if more { MORE_FRAGMENTS } else { 0 };
    packet.set_and_checksum(|header| {
        header[4..6].copy_from_slice(&id.to_be_bytes());
        header[6..8].copy_from_slice(&flags_and_offset.to_be_bytes());
    });
    packet.frame()
}

/// ARP packets from [`ATTACKER_MAC`] claiming the guest's own address and the gateway's,
/// as replies and as gratuitous announcements, broadcast and to the guest; and ARP cut
/// short. A stack may note a lie about an address that is not its business, but none may
/// stop the guest answering its clients.
pub fn arp_spoofs() -> Vec<HostileFrame> {
    let harmless = |kind, bytes| HostileFrame {
        kind,
        fate: Fate::Harmless,
        bytes,
    };
    let mut frames = vec![
        harmless(
            "an ARP reply claiming the guest's address, broadcast",
            arp(
                BROADCAST_MAC,
                ARP_REPLY,
                GUEST_IP,
                BROADCAST_MAC,
                GATEWAY_IP,
            ),
        ),
        harmless(
            "an ARP reply claiming the guest's address, to the guest",
            arp(GUEST_MAC, ARP_REPLY, GUEST_IP, GUEST_MAC, GUEST_IP),
        ),
        harmless(
            "a gratuitous ARP claiming the guest's address",
            arp(BROADCAST_MAC, ARP_REQUEST, GUEST_IP, [0; 6], GUEST_IP),
        ),
        harmless(
            "a gratuitous ARP claiming the gateway's address",
            arp(BROADCAST_MAC, ARP_REQUEST, GATEWAY_IP, [0; 6], GATEWAY_IP),
        ),
        harmless(
            "a gratuitous ARP reply claiming the gateway's address",
            arp(
                BROADCAST_MAC,
                ARP_REPLY,
                GATEWAY_IP,
                BROADCAST_MAC,
                GATEWAY_IP,
            ),
        ),
    ];
    let whole = arp(BROADCAST_MAC, ARP_REQUEST, GUEST_IP, [0; 6], GUEST_IP);
    for length in [ETHERNET_HEADER + 4, ETHERNET_HEADER + ARP_PACKET - 1] {
        frames.push(HostileFrame {
            kind: "an ARP packet cut short",
            fate: Fate::DroppedByKernel,
            bytes: whole[..length].to_vec(),
        });
    }
    frames
}

/// An ARP packet (RFC 826) from [`ATTACKER_MAC`] saying that `sender_ip` is at that MAC,
/// to `destination` on Ethernet.
fn arp(
    destination: [u8; 6],
    operation: u16,
    sender_ip: [u8; 4],
    target_mac: [u8; 6],
    target_ip: [u8; 4],
) -> Vec<u8> {
    let mut frame = Vec::with_capacity(ETHERNET_HEADER + ARP_PACKET);
    frame.extend_from_slice(&destination);
    frame.extend_from_slice(&ATTACKER_MAC);
    frame.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    frame.extend_from_slice(&ARP_HARDWARE_ETHERNET.to_be_bytes());
    frame.extend_from_slice(&ARP_PROTOCOL_IPV4.to_be_bytes());
    frame.extend_from_slice(&[6, 4]);
    frame.extend_from_slice(&operation.to_be_bytes());
    frame.extend_from_slice(&ATTACKER_MAC);
    frame.extend_from_slice(&sender_ip);
    frame.extend_from_slice(&target_mac);
    frame.extend_from_slice(&target_ip);
    frame
}

#[cfg(test)]
mod tests {
    use exo_abi::wire::UDP_HEADER;

    use super::*;

    fn be16(bytes: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([bytes[at], bytes[at + 1]])
    }

    /// Whether the transport checksum of `packet` (an IPv4 packet) holds for the
    /// addresses in its own header.
    fn transport_checksum_holds(packet: &[u8]) -> bool {
        let transport = &packet[IPV4_HEADER..];
        let mut pseudo = [0; 12];
        pseudo[0..8].copy_from_slice(&packet[12..20]);
        pseudo[9] = packet[9];
        pseudo[10..12].copy_from_slice(&(transport.len() as u16).to_be_bytes());
        internet_checksum(&[&pseudo, transport]) == 0
    }

    #[test]
    fn the_flood_is_well_formed_syns_from_distinct_forged_sources() {
        let flood = syn_flood(7, SYN_FLOOD);
        assert_eq!(flood.len(), SYN_FLOOD);
        let mut sources = std::collections::BTreeSet::new();
        for frame in &flood {
            assert_eq!(&frame[..6], &GUEST_MAC);
            let packet = &frame[ETHERNET_HEADER..];
            assert_eq!(packet.len(), IPV4_HEADER + TCP_HEADER);
            assert_eq!(internet_checksum(&[&packet[..IPV4_HEADER]]), 0);
            assert!(transport_checksum_holds(packet));
            assert_eq!(packet[12], FORGED_NETWORK[0]);
            assert_eq!(packet[13] & 0xfe, FORGED_NETWORK[1], "within 198.18.0.0/15");
            assert_eq!(&packet[16..20], &GUEST_IP);
            let tcp = &packet[IPV4_HEADER..];
            assert_eq!(be16(tcp, 2), 7, "destination port");
            assert_eq!(tcp[13], TCP_SYN, "SYN and no other flag");
            assert_eq!(tcp[12] >> 4, 5, "a bare 20-byte header");
            sources.insert((packet[12..16].to_vec(), be16(tcp, 0)));
        }
        assert_eq!(
            sources.len(),
            SYN_FLOOD,
            "each request looks like a new client"
        );
    }

    #[test]
    fn fragments_carry_rfc_791_offsets_and_put_the_datagram_back_together() {
        let frames = fragments(7, 3);
        assert_eq!(frames.len(), 3 * 8);
        let count = |fate| frames.iter().filter(|frame| frame.fate == fate).count();
        assert_eq!(count(Fate::MalformedForUdp), 6);
        assert_eq!(count(Fate::MalformedForTcp), 3);
        assert_eq!(count(Fate::DroppedByKernel), 15);
        let mut whole = vec![0; UDP_HEADER + 64];
        for frame in &frames[..3] {
            let packet = &frame.bytes[ETHERNET_HEADER..];
            assert_eq!(internet_checksum(&[&packet[..IPV4_HEADER]]), 0);
            assert_eq!(usize::from(be16(packet, 2)), packet.len(), "total length");
            assert_eq!(be16(packet, 4), 0x4000, "one identification for the three");
            let word = be16(packet, 6);
            let start = usize::from(word & 0x1fff) * 8;
            let data = &packet[IPV4_HEADER..];
            whole[start..start + data.len()].copy_from_slice(data);
            let last = start + data.len() == whole.len();
            assert_eq!(word & MORE_FRAGMENTS != 0, !last);
        }
        // Reassembled, the first, middle and last fragments are the datagram, checksum
        // and all (the first fragment alone carries the UDP header).
        let mut packet = frames[0].bytes[ETHERNET_HEADER..ETHERNET_HEADER + IPV4_HEADER].to_vec();
        packet.extend_from_slice(&whole);
        assert!(transport_checksum_holds(&packet));
        assert_eq!(be16(&whole, 2), 7);
        // The whole datagram marked as a first fragment: offset 0, "more" set.
        let marked = &frames[3].bytes[ETHERNET_HEADER..];
        assert_eq!(be16(marked, 6), MORE_FRAGMENTS);
        assert!(transport_checksum_holds(marked));
    }

    #[test]
    fn arp_packets_follow_rfc_826_and_come_from_the_attacker() {
        let frames = arp_spoofs();
        for frame in frames.iter().filter(|frame| frame.fate == Fate::Harmless) {
            let bytes = &frame.bytes;
            assert_eq!(bytes.len(), ETHERNET_HEADER + ARP_PACKET, "{}", frame.kind);
            assert_eq!(&bytes[6..12], &ATTACKER_MAC);
            assert_eq!(be16(bytes, 12), ETHERTYPE_ARP);
            let arp = &bytes[ETHERNET_HEADER..];
            assert_eq!(be16(arp, 0), 1, "hardware: Ethernet");
            assert_eq!(be16(arp, 2), 0x0800, "protocol: IPv4");
            assert_eq!((arp[4], arp[5]), (6, 4), "address lengths");
            assert!([ARP_REQUEST, ARP_REPLY].contains(&be16(arp, 6)));
            assert_eq!(&arp[8..14], &ATTACKER_MAC, "sender hardware address");
            let sender = &arp[14..18];
            assert!(sender == GUEST_IP || sender == GATEWAY_IP, "{}", frame.kind);
        }
        let gratuitous = &frames[3].bytes[ETHERNET_HEADER..];
        assert_eq!(&gratuitous[14..18], &GATEWAY_IP);
        assert_eq!(
            &gratuitous[24..28],
            &GATEWAY_IP,
            "sender and target are one address"
        );
        let short = frames
            .iter()
            .filter(|frame| frame.fate == Fate::DroppedByKernel);
        assert_eq!(short.map(|frame| frame.bytes.len()).max(), Some(41));
    }
}
