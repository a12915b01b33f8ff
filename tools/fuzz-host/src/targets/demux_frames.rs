//! The demultiplexer (`exokernel/kernel-core/src/demux.rs`) on frames built field by field
//! rather than from raw bytes: the `demux` target's random bytes rarely get past the
//! Ethernet and IPv4 headers, so this one writes headers that are almost right — any
//! header length, options, total length, fragment fields, protocol and transport header
//! cut anywhere, a VLAN tag, padding after the packet, and a frame cut short or grown past
//! the largest Ethernet frame — and checks what each must mean:
//!
//! - a frame under a VLAN tag is nobody's and may not be sent;
//! - an IPv4 packet longer than its frame, shorter than its header, with a header shorter
//!   than 20 bytes or a UDP or TCP header cut short is `Malformed`;
//! - a fragment after the first is nobody's; no fragment may be sent;
//! - a well-formed UDP or TCP packet goes to the filter for its destination address and
//!   port, wherever its options end; an ICMP echo reply to the one for its identifier;
//! - padding after the packet never changes where a frame goes;
//! - what a binding may send from is what it receives for: a frame the source check
//!   admits under a filter, turned round (addresses, ports and MACs swapped), is
//!   delivered to that same filter;
//! - the source check refuses any frame longer than `MAX_FRAME` or from another MAC.

use arbitrary::{Arbitrary, Unstructured};
use exo_abi::net::{Filter, LIMITED_BROADCAST, MAX_FRAME};
use exo_abi::wire::{ETHERTYPE_ARP, ETHERTYPE_IPV4, IP_ICMP, IP_TCP, IP_UDP};
use exo_kernel_core::demux::{self, Claim, Destination, FilterKey, Mac, Refusal, Unmatched};

use super::Target;

pub const TARGET: Target = Target {
    name: "demux_frames",
    checks: "frames built with any header lengths, options, fragments, tags, padding and cuts go where the RFCs say, and are sent only as received",
    check,
};

const OURS: Mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
const PEER: Mac = [0x52, 0x55, 10, 0, 2, 2];
const ETHERTYPE_VLAN: u16 = 0x8100;

#[derive(Arbitrary, Debug)]
enum Protocol {
    Udp,
    Tcp,
    Icmp,
    Other(u8),
}

#[derive(Arbitrary, Debug)]
struct Packet {
    /// The header length in words (the IHL field, four bits).
    ihl: u8,
    /// How far the total length field lies from the true length (header, transport
    /// header and data).
    total_error: i8,
    /// A fragment offset (in 8-byte units; most packets have none).
    offset: Option<u16>,
    /// The more-fragments flag.
    more_fragments: bool,
    protocol: Protocol,
    source: u32,
    destination: u32,
    source_port: u16,
    destination_port: u16,
    /// For ICMP: the type (0 is an echo reply).
    icmp_type: u8,
    /// How many bytes of the transport header are written (0..=20).
    transport_bytes: u8,
    data: Vec<u8>,
    /// Option bytes, as many as the header length leaves room for.
    options: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// The source MAC is the card's (the frame is one an environment sends).
    from_us: bool,
    /// A VLAN tag before the ethertype.
    vlan: Option<u16>,
    /// An ARP packet instead of IPv4.
    arp: Option<(u16, u32, u32)>,
    packet: Packet,
    /// Bytes after the packet (Ethernet pads short frames).
    padding: Vec<u8>,
    /// The frame is cut to this length.
    cut: Option<u16>,
    /// Or grown by eight times this many zero bytes, past `MAX_FRAME` perhaps.
    grow: Option<u8>,
}

/// Where the IP header starts in a frame with `vlan`.
fn ip_start(vlan: bool) -> usize {
    if vlan { 18 } else { 14 }
}

/// The frame `input` describes, without cut, growth or padding; and the IP total length
/// it declares (IPv4 only).
fn build(input: &Input) -> (Vec<u8>, usize) {
    let (destination, source) = if input.from_us {
        (PEER, OURS)
    } else {
        (OURS, PEER)
    };
    let mut frame = Vec::new();
    frame.extend_from_slice(&destination);
    frame.extend_from_slice(&source);
    if let Some(tag) = input.vlan {
        frame.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        frame.extend_from_slice(&tag.to_be_bytes());
    }
    if let Some((operation, sender, target)) = input.arp {
        frame.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        frame.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
        frame.extend_from_slice(&operation.to_be_bytes());
        frame.extend_from_slice(&source);
        frame.extend_from_slice(&sender.to_be_bytes());
        frame.extend_from_slice(&[0; 6]);
        frame.extend_from_slice(&target.to_be_bytes());
        return (frame, 0);
    }
    frame.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let packet = &input.packet;
    let ihl = packet.ihl & 0xf;
    let header = usize::from(ihl) * 4;
    let protocol = match packet.protocol {
        Protocol::Udp => IP_UDP,
        Protocol::Tcp => IP_TCP,
        Protocol::Icmp => IP_ICMP,
        Protocol::Other(number) => number,
    };
    let mut transport = [0u8; 20];
    if let Protocol::Icmp = packet.protocol {
        transport[0] = packet.icmp_type;
        transport[4..6].copy_from_slice(&packet.source_port.to_be_bytes());
    } else {
        transport[0..2].copy_from_slice(&packet.source_port.to_be_bytes());
        transport[2..4].copy_from_slice(&packet.destination_port.to_be_bytes());
    }
    let transport = &transport[..usize::from(packet.transport_bytes).min(20)];
    // The header is at least the fixed 20 bytes in the frame, whatever the IHL says.
    let written_header = header.max(20);
    let true_total = written_header + transport.len() + packet.data.len();
    let total = true_total.saturating_add_signed(isize::from(packet.total_error)) & 0xffff;
    let start = frame.len();
    frame.push(0x40 | ihl);
    frame.push(0);
    frame.extend_from_slice(&(total as u16).to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    let fragment = packet.offset.unwrap_or(0) & 0x1fff | u16::from(packet.more_fragments) << 13;
    frame.extend_from_slice(&fragment.to_be_bytes());
    frame.extend_from_slice(&[64, protocol, 0, 0]);
    frame.extend_from_slice(&packet.source.to_be_bytes());
    frame.extend_from_slice(&packet.destination.to_be_bytes());
    let options = written_header - 20;
    for index in 0..options {
        frame.push(packet.options.get(index).copied().unwrap_or(1));
    }
    debug_assert_eq!(frame.len() - start, written_header);
    frame.extend_from_slice(transport);
    frame.extend_from_slice(&packet.data);
    (frame, total)
}

/// The filter a well-formed, unfragmented packet names on the way in: its destination
/// address and port, or for an echo reply its identifier.
fn expected_key(packet: &Packet) -> Option<FilterKey> {
    let filter = match packet.protocol {
        Protocol::Udp if packet.transport_bytes >= 8 => Filter::udp(packet.destination_port),
        Protocol::Tcp if packet.transport_bytes >= 20 => Filter::tcp(packet.destination_port),
        Protocol::Icmp if packet.icmp_type == 0 && packet.transport_bytes >= 8 => {
            Filter::icmp_echo(packet.source_port)
        }
        Protocol::Icmp if packet.icmp_type != 0 || packet.transport_bytes == 0 => Filter::icmp(),
        _ => return None,
    };
    let port_zero =
        matches!(packet.protocol, Protocol::Udp | Protocol::Tcp) && packet.destination_port == 0;
    (!port_zero).then_some(FilterKey {
        address: packet.destination,
        filter,
    })
}

fn check(bytes: &[u8]) {
    let Ok(input) = Input::arbitrary(&mut Unstructured::new(bytes)) else {
        return;
    };
    let (mut frame, total) = build(&input);
    let packet_end = ip_start(input.vlan.is_some()) + total;
    frame.extend_from_slice(&input.padding);
    frame.resize(frame.len() + 8 * usize::from(input.grow.unwrap_or(0)), 0);
    if let Some(cut) = input.cut {
        frame.truncate(usize::from(cut));
    }
    let destination = demux::classify(&frame, OURS);
    let claim = demux::claim(&frame, OURS);
    let delivered = matches!(
        destination,
        Destination::Filter(_) | Destination::ArpReply { .. }
    );

    if frame.len() > MAX_FRAME || frame.len() < 14 {
        assert_eq!(
            claim,
            Err(Refusal::Malformed),
            "a frame of {} bytes",
            frame.len()
        );
    } else if !input.from_us {
        assert_eq!(claim, Err(Refusal::Spoofed), "a frame from another MAC");
    }
    if frame.len() < 14 {
        assert_eq!(destination, Destination::Unmatched(Unmatched::Malformed));
        return;
    }
    if input.vlan.is_some() {
        assert!(
            !delivered,
            "a VLAN-tagged frame was delivered: {destination:?}"
        );
        assert!(claim.is_err(), "a VLAN-tagged frame may be sent: {claim:?}");
        return;
    }
    if input.from_us {
        assert_eq!(
            destination,
            Destination::Unmatched(Unmatched::OtherHost),
            "a frame to another MAC"
        );
    }
    if input.arp.is_some() {
        return;
    }
    let packet = &input.packet;
    let header = usize::from(packet.ihl & 0xf) * 4;
    let well_formed = header >= 20 && total >= header && frame.len() >= packet_end;
    let offset = packet.offset.unwrap_or(0) & 0x1fff;
    let more_fragments = packet.more_fragments;
    if !input.from_us {
        if !well_formed {
            assert_eq!(
                destination,
                Destination::Unmatched(Unmatched::Malformed),
                "header {header} bytes, total {total}, frame {} bytes",
                frame.len()
            );
        } else if offset != 0 {
            assert_eq!(destination, Destination::Unmatched(Unmatched::Fragment));
        } else if total == header + usize::from(packet.transport_bytes.min(20)) + packet.data.len()
            && (packet.transport_bytes >= 20 || packet.data.is_empty())
        {
            // The packet is exactly as written, and its transport header is the one built
            // (no data fills in a header cut short).
            let expected = expected_key(packet).map(Destination::Filter);
            if let Some(expected) = expected {
                assert_eq!(
                    destination, expected,
                    "where a packet goes, whatever its options"
                );
            } else if matches!(
                packet.protocol,
                Protocol::Udp | Protocol::Tcp | Protocol::Icmp
            ) {
                assert_eq!(destination, Destination::Unmatched(Unmatched::Malformed));
            }
        }
        // Padding after the packet changes nothing.
        if delivered {
            let mut padded = frame.clone();
            padded.extend_from_slice(&[0xa5; 64]);
            assert_eq!(
                demux::classify(&padded, OURS),
                destination,
                "padding moved a frame"
            );
        }
        return;
    }
    if offset != 0 || more_fragments {
        assert!(claim.is_err(), "a fragment may be sent: {claim:?}");
    }
    // What a binding may send from is what it receives for.
    if let Ok(Claim::Filter(key)) = claim
        && key.address != LIMITED_BROADCAST
        && key.filter.port != 0
        && matches!(packet.protocol, Protocol::Udp | Protocol::Tcp)
    {
        let mut turned = frame.clone();
        turned[0..6].copy_from_slice(&OURS);
        turned[6..12].copy_from_slice(&PEER);
        let ip = 14;
        let (source, destination) = (ip + 12, ip + 16);
        for index in 0..4 {
            turned.swap(source + index, destination + index);
        }
        let transport = ip + header;
        turned.swap(transport, transport + 2);
        turned.swap(transport + 1, transport + 3);
        assert_eq!(
            demux::classify(&turned, OURS),
            Destination::Filter(key),
            "a frame sent under a filter, turned round, goes elsewhere"
        );
    }
}
