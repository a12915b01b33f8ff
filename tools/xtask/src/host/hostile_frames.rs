//! Hostile Ethernet frames for the guest's card: truncated and self-contradicting headers,
//! wrong checksums, random bytes, and well-formed TCP resets nobody asked for — the same
//! frames on every run (a fixed seed).
//!
//! Each frame says where it should end: dropped by the kernel's demultiplexer (it cannot
//! name an owner), refused by the stack of the server owning the port it names (it names
//! one, but is malformed), or harmless to a well-behaved stack (a valid reset for no
//! connection). Offsets follow RFC 894, RFC 791, RFC 768 and RFC 9293.
//!
//! The frames travel on a hub that QEMU's user-mode network is also on, and that network
//! reads every frame too (see [`FrameInjection`](crate::qemu::FrameInjection)). So every
//! frame here is one it drops: no ARP (it would learn a wrong address from it), nothing
//! IPv6, and no IPv4 packet it would act on — each has a wrong checksum, a header it
//! refuses, or the reset flag, which it drops when there is no connection.

use exo_abi::net::MAX_FRAME;
use exo_abi::wire::{
    ETHERNET_HEADER, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, IP_TCP as PROTOCOL_TCP,
    IP_UDP as PROTOCOL_UDP, IPV4_HEADER, TCP_HEADER, UDP_HEADER, internet_checksum,
};

use crate::host::pseudo_random::PseudoRandom;
use crate::qemu::GUEST_MAC;

/// The guest's address.
pub(super) const GUEST_IP: [u8; 4] = [10, 0, 2, 15];
/// QEMU's user-mode gateway: the frames claim to come from it, as the host's traffic does.
pub(super) const GATEWAY_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
pub(super) const GATEWAY_IP: [u8; 4] = [10, 0, 2, 2];

/// Lengths of frames larger than the largest the guest's rings carry (`MAX_FRAME`): the
/// card drops them or the kernel does.
const OVERSIZED_FRAMES: [usize; 4] = [MAX_FRAME + 1, 1600, 4000, 9000];

const TCP_FIN: u8 = 0x01;
pub(super) const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;

/// Source ports of the frames sent to a server's port: below 1024, so never the port of a
/// connection the host opened through port forwarding (those come from the host's
/// ephemeral range), and a valid reset cannot hit one.
const HOSTILE_SOURCE_PORTS: std::ops::Range<usize> = 1..1024;

/// Where a hostile frame should end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// The kernel cannot name an owner: too short, or a header that contradicts itself.
    DroppedByKernel,
    /// It names a UDP port, but the stack owning it must refuse it as malformed.
    MalformedForUdp,
    /// Likewise for a TCP port.
    MalformedForTcp,
    /// Well-formed; a stack must not let it change anything (a reset for no connection).
    Harmless,
}

/// One frame and what it is.
#[derive(Clone, Debug)]
pub struct HostileFrame {
    /// A few words naming the kind of frame, for messages.
    pub kind: &'static str,
    pub fate: Fate,
    pub bytes: Vec<u8>,
}

/// The hostile frames for a guest with a UDP and a TCP server on `port`, in a fixed
/// pseudo-random order (the kinds mixed).
pub fn hostile_frames(port: u16) -> Vec<HostileFrame> {
    let mut random = PseudoRandom::new(0x0068_6f73_7469_6c65);
    let mut frames = Vec::new();
    let mut add = |kind, fate, bytes| frames.push(HostileFrame { kind, fate, bytes });
    for round in 0..20 {
        let length = random.below(1..200);
        let payload = random.bytes(length);
        let source = random.below(HOSTILE_SOURCE_PORTS) as u16;
        let datagram = || Datagram::new(source, port, &payload);

        // Refused by the servers' stacks.
        add(
            "UDP with a wrong checksum",
            Fate::MalformedForUdp,
            datagram().checksum_off_by(1 + round).frame(),
        );
        add(
            "UDP with a wrong IPv4 header checksum",
            Fate::MalformedForUdp,
            datagram().frame_with(|ip| ip.header_checksum_off_by(1 + round)),
        );
        add(
            "UDP whose length runs past the packet",
            Fate::MalformedForUdp,
            datagram()
                .length((payload.len() + UDP_HEADER + 1 + round as usize) as u16)
                .frame(),
        );
        let segment = || Segment::new(source, port, random_word(round), TCP_SYN, &payload[..0]);
        add(
            "TCP SYN with a wrong checksum",
            Fate::MalformedForTcp,
            segment().checksum_off_by(1 + round).frame(),
        );
        add(
            "TCP SYN with a wrong IPv4 header checksum",
            Fate::MalformedForTcp,
            segment().frame_with(|ip| ip.header_checksum_off_by(1 + round)),
        );
        if round < 10 {
            add(
                "UDP with a length shorter than its header",
                Fate::MalformedForUdp,
                datagram().length(round as u16 % UDP_HEADER as u16).frame(),
            );
            add(
                "TCP with a data offset shorter than its header",
                Fate::MalformedForTcp,
                segment().data_offset_words(round as u8 % 5).frame(),
            );
            // 15 words is 60 bytes: more than a bare header and a short payload.
            add(
                "TCP with a data offset past the segment",
                Fate::MalformedForTcp,
                Segment::new(
                    source,
                    port,
                    random_word(round),
                    TCP_ACK,
                    &payload[..8.min(payload.len())],
                )
                .data_offset_words(15)
                .frame(),
            );
        }

        // Well-formed resets: for no connection of the server's, and to ports nobody has.
        let flags = [
            TCP_RST,
            TCP_RST | TCP_ACK,
            TCP_RST | TCP_SYN,
            TCP_RST | TCP_SYN | TCP_FIN,
        ];
        let sequence = random.next_u64() as u32;
        add(
            "TCP reset for no connection",
            Fate::Harmless,
            Segment::new(source, port, sequence, flags[round as usize % 4], &[]).frame(),
        );
        let other_port = random.below(1024..65536) as u16;
        add(
            "TCP reset to a port nobody has",
            Fate::Harmless,
            Segment::new(source, other_port, sequence, TCP_RST | TCP_PSH, &payload).frame(),
        );

        // Dropped by the kernel.
        add(
            "an Ethernet header cut short",
            Fate::DroppedByKernel,
            // Never empty: QEMU's socket backend reads an empty datagram as the end.
            ethernet_header(ETHERTYPE_IPV4)[..1 + round as usize % (ETHERNET_HEADER - 1)].to_vec(),
        );
        let whole = datagram().frame();
        add(
            "an IPv4 header cut short",
            Fate::DroppedByKernel,
            whole[..ETHERNET_HEADER + round as usize % IPV4_HEADER].to_vec(),
        );
        add(
            "a UDP header cut short",
            Fate::DroppedByKernel,
            datagram().frame_with(|ip| ip.cut_payload(round as usize % UDP_HEADER)),
        );
        add(
            "a TCP header cut short",
            Fate::DroppedByKernel,
            segment().frame_with(|ip| ip.cut_payload(round as usize % TCP_HEADER)),
        );
        add(
            "IPv4 with a header length below 5 words",
            Fate::DroppedByKernel,
            datagram().frame_with(|ip| ip.header_words(round as u8 % 5)),
        );
        add(
            "IPv4 whose total length runs past the frame",
            Fate::DroppedByKernel,
            datagram().frame_with(|ip| ip.total_length_over_by(1 + round as u16 * 37)),
        );
        add(
            "IPv4 whose total length is shorter than its header",
            Fate::DroppedByKernel,
            datagram().frame_with(|ip| ip.total_length(round as u16 % IPV4_HEADER as u16)),
        );
        add(
            "an IP version other than 4",
            Fate::DroppedByKernel,
            datagram().frame_with(|ip| ip.version([0, 5, 6, 15][round as usize % 4])),
        );
        add(
            "random bytes as IPv4",
            Fate::DroppedByKernel,
            random_ipv4(&mut random),
        );
        for _ in 0..5 {
            add(
                "random bytes",
                Fate::DroppedByKernel,
                random_frame(&mut random),
            );
        }
    }
    for length in OVERSIZED_FRAMES {
        let mut frame = random_frame(&mut random);
        frame.resize(length, 0xa5);
        add(
            "a frame longer than Ethernet allows",
            Fate::DroppedByKernel,
            frame,
        );
    }
    // Mixed, so the stacks and the kernel see the kinds interleaved.
    for index in (1..frames.len()).rev() {
        frames.swap(index, random.below(0..index + 1));
    }
    frames
}

/// A number that differs from round to round, for fields whose value does not matter.
fn random_word(round: u32) -> u32 {
    round.wrapping_mul(0x9e37_79b9)
}

/// An Ethernet header from the gateway to the guest.
pub(super) fn ethernet_header(ethertype: u16) -> Vec<u8> {
    let mut header = Vec::with_capacity(MAX_FRAME);
    header.extend_from_slice(&GUEST_MAC);
    header.extend_from_slice(&GATEWAY_MAC);
    header.extend_from_slice(&ethertype.to_be_bytes());
    header
}

/// Random bytes after an Ethernet header to the guest of a type nobody reads (not IPv4,
/// ARP or IPv6).
fn random_frame(random: &mut PseudoRandom) -> Vec<u8> {
    let ethertype = loop {
        let candidate = random.next_u64() as u16;
        if ![ETHERTYPE_IPV4, ETHERTYPE_ARP, ETHERTYPE_IPV6].contains(&candidate) {
            break candidate;
        }
    };
    let mut frame = ethernet_header(ethertype);
    let length = random.below(1..MAX_FRAME - ETHERNET_HEADER);
    frame.extend(random.bytes(length));
    frame
}

/// Random bytes as an IPv4 packet whose header checksum is wrong, so no stack acts on it
/// whatever the bytes say.
fn random_ipv4(random: &mut PseudoRandom) -> Vec<u8> {
    let length = random.below(IPV4_HEADER..MAX_FRAME - ETHERNET_HEADER);
    let mut packet = random.bytes(length);
    packet[0] = 0x45;
    packet[10..12].fill(0);
    let checksum = internet_checksum(&[&packet[..IPV4_HEADER]]) ^ 0x0101;
    packet[10..12].copy_from_slice(&checksum.to_be_bytes());
    let mut frame = ethernet_header(ETHERTYPE_IPV4);
    frame.extend(packet);
    frame
}

/// The pseudo-header a UDP or TCP checksum covers (RFC 768, RFC 9293 section 3.1).
pub(super) fn pseudo_header(protocol: u8, length: usize) -> [u8; 12] {
    let mut header = [0; 12];
    header[0..4].copy_from_slice(&GATEWAY_IP);
    header[4..8].copy_from_slice(&GUEST_IP);
    header[9] = protocol;
    header[10..12].copy_from_slice(&(length as u16).to_be_bytes());
    header
}

/// An IPv4 packet from the gateway to the guest, built right, then spoiled on request.
pub(super) struct Ipv4Packet {
    pub(super) bytes: Vec<u8>,
}

impl Ipv4Packet {
    pub(super) fn new(protocol: u8, payload: &[u8]) -> Self {
        let mut bytes = vec![0; IPV4_HEADER];
        bytes[0] = 0x45;
        bytes[2..4].copy_from_slice(&((IPV4_HEADER + payload.len()) as u16).to_be_bytes());
        bytes[8] = 64;
        bytes[9] = protocol;
        bytes[12..16].copy_from_slice(&GATEWAY_IP);
        bytes[16..20].copy_from_slice(&GUEST_IP);
        let checksum = internet_checksum(&[&bytes]);
        bytes[10..12].copy_from_slice(&checksum.to_be_bytes());
        bytes.extend_from_slice(payload);
        Ipv4Packet { bytes }
    }

    fn header_checksum_off_by(&mut self, amount: u32) {
        let checksum = u16::from_be_bytes([self.bytes[10], self.bytes[11]]);
        let wrong = checksum.wrapping_add(amount as u16).max(1);
        self.bytes[10..12].copy_from_slice(&wrong.to_be_bytes());
    }

    /// Sets a header field and the checksum to match, so only the field is wrong.
    pub(super) fn set_and_checksum(&mut self, set: impl FnOnce(&mut [u8])) {
        set(&mut self.bytes[..IPV4_HEADER]);
        self.bytes[10..12].fill(0);
        let checksum = internet_checksum(&[&self.bytes[..IPV4_HEADER]]);
        self.bytes[10..12].copy_from_slice(&checksum.to_be_bytes());
    }

    fn header_words(&mut self, words: u8) {
        self.set_and_checksum(|header| header[0] = 0x40 | words);
    }

    fn version(&mut self, version: u8) {
        self.set_and_checksum(|header| header[0] = version << 4 | 5);
    }

    fn total_length(&mut self, length: u16) {
        self.set_and_checksum(|header| header[2..4].copy_from_slice(&length.to_be_bytes()));
    }

    fn total_length_over_by(&mut self, amount: u16) {
        let length = self.bytes.len() as u16 + amount;
        self.total_length(length);
    }

    /// Keeps only the first `length` bytes of the payload, the total length saying so.
    fn cut_payload(&mut self, length: usize) {
        self.bytes.truncate(IPV4_HEADER + length);
        self.total_length((IPV4_HEADER + length) as u16);
    }

    pub(super) fn frame(self) -> Vec<u8> {
        let mut frame = ethernet_header(ETHERTYPE_IPV4);
        frame.extend(self.bytes);
        frame
    }
}

/// A UDP datagram or TCP segment, carried in an IPv4 packet and an Ethernet frame.
pub(super) trait Transport: Sized {
    /// The IPv4 packet carrying it, built right.
    fn packet(self) -> Ipv4Packet;

    fn frame(self) -> Vec<u8> {
        self.packet().frame()
    }

    /// Its frame, with the IPv4 packet spoiled by `spoil`.
    fn frame_with(self, spoil: impl FnOnce(&mut Ipv4Packet)) -> Vec<u8> {
        let mut packet = self.packet();
        spoil(&mut packet);
        packet.frame()
    }
}

/// A UDP datagram to the guest, built right, then spoiled on request.
pub(super) struct Datagram {
    header: [u8; UDP_HEADER],
    payload: Vec<u8>,
}

impl Datagram {
    pub(super) fn new(source: u16, destination: u16, payload: &[u8]) -> Self {
        let mut header = [0; UDP_HEADER];
        header[0..2].copy_from_slice(&source.to_be_bytes());
        header[2..4].copy_from_slice(&destination.to_be_bytes());
        let datagram = Datagram {
            header,
            payload: payload.to_vec(),
        };
        datagram.length((UDP_HEADER + payload.len()) as u16)
    }

    /// Sets the length field, with the checksum to match.
    fn length(mut self, length: u16) -> Self {
        self.header[4..6].copy_from_slice(&length.to_be_bytes());
        self.header[6..8].fill(0);
        let pseudo = pseudo_header(PROTOCOL_UDP, usize::from(length));
        let checksum = match internet_checksum(&[&pseudo, &self.header, &self.payload]) {
            // Zero says "no checksum"; its one's complement twin stands in (RFC 768).
            0 => 0xffff,
            checksum => checksum,
        };
        self.header[6..8].copy_from_slice(&checksum.to_be_bytes());
        self
    }

    /// A wrong checksum, never zero (which would mean none).
    fn checksum_off_by(mut self, amount: u32) -> Self {
        let checksum = u16::from_be_bytes([self.header[6], self.header[7]]);
        let mut wrong = checksum.wrapping_add(amount as u16);
        if wrong == 0 || wrong == 0xffff {
            wrong = checksum ^ 0x00ff;
        }
        self.header[6..8].copy_from_slice(&wrong.to_be_bytes());
        self
    }
}

impl Transport for Datagram {
    fn packet(self) -> Ipv4Packet {
        let mut transport = self.header.to_vec();
        transport.extend(self.payload);
        Ipv4Packet::new(PROTOCOL_UDP, &transport)
    }
}

/// A TCP segment to the guest, built right, then spoiled on request.
pub(super) struct Segment {
    header: [u8; TCP_HEADER],
    payload: Vec<u8>,
}

impl Segment {
    pub(super) fn new(
        source: u16,
        destination: u16,
        sequence: u32,
        flags: u8,
        payload: &[u8],
    ) -> Self {
        let mut header = [0; TCP_HEADER];
        header[0..2].copy_from_slice(&source.to_be_bytes());
        header[2..4].copy_from_slice(&destination.to_be_bytes());
        header[4..8].copy_from_slice(&sequence.to_be_bytes());
        header[12] = 5 << 4;
        header[13] = flags;
        header[14..16].copy_from_slice(&8192u16.to_be_bytes());
        let mut segment = Segment {
            header,
            payload: payload.to_vec(),
        };
        segment.checksum();
        segment
    }

    fn checksum(&mut self) {
        self.header[16..18].fill(0);
        let pseudo = pseudo_header(PROTOCOL_TCP, TCP_HEADER + self.payload.len());
        let checksum = internet_checksum(&[&pseudo, &self.header, &self.payload]);
        self.header[16..18].copy_from_slice(&checksum.to_be_bytes());
    }

    /// Sets the data offset, with the checksum to match.
    fn data_offset_words(mut self, words: u8) -> Self {
        self.header[12] = words << 4;
        self.checksum();
        self
    }

    fn checksum_off_by(mut self, amount: u32) -> Self {
        let checksum = u16::from_be_bytes([self.header[16], self.header[17]]);
        let wrong = checksum.wrapping_add(amount as u16);
        self.header[16..18].copy_from_slice(&wrong.to_be_bytes());
        self
    }
}

impl Transport for Segment {
    fn packet(self) -> Ipv4Packet {
        let mut transport = self.header.to_vec();
        transport.extend(self.payload);
        Ipv4Packet::new(PROTOCOL_TCP, &transport)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_follows_rfc_1071() {
        // RFC 1071's example: the sum of these words is 0xddf2, so the checksum 0x220d.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&[&bytes]), 0x220d);
        assert_eq!(internet_checksum(&[&bytes[..4], &bytes[4..]]), 0x220d);
        // An odd last byte counts as the high half of a word.
        assert_eq!(internet_checksum(&[&[0x01]]), !0x0100);
    }

    /// Whether the IPv4 header of `frame` and the UDP or TCP checksum are right.
    fn checksums_hold(frame: &[u8]) -> (bool, bool) {
        let packet = &frame[ETHERNET_HEADER..];
        let header = usize::from(packet[0] & 0xf) * 4;
        let ip_holds = internet_checksum(&[&packet[..header]]) == 0;
        let transport = &packet[header..];
        let pseudo = pseudo_header(packet[9], transport.len());
        (ip_holds, internet_checksum(&[&pseudo, transport]) == 0)
    }

    #[test]
    fn well_formed_packets_check_and_spoiled_ones_do_not() {
        let datagram = Datagram::new(1000, 7, b"echo me").frame();
        assert_eq!(
            datagram.len(),
            ETHERNET_HEADER + IPV4_HEADER + UDP_HEADER + 7
        );
        assert_eq!(&datagram[..6], &GUEST_MAC);
        assert_eq!(checksums_hold(&datagram), (true, true));
        let wrong = Datagram::new(1000, 7, b"echo me")
            .checksum_off_by(1)
            .frame();
        assert_eq!(checksums_hold(&wrong), (true, false));
        let reset = Segment::new(1000, 7, 1, TCP_RST, b"").frame();
        assert_eq!(checksums_hold(&reset), (true, true));
        let bad_header =
            Segment::new(1000, 7, 1, TCP_SYN, b"").frame_with(|ip| ip.header_checksum_off_by(3));
        assert_eq!(checksums_hold(&bad_header), (false, true));
        let short = Segment::new(1000, 7, 1, TCP_ACK, b"")
            .data_offset_words(2)
            .frame();
        assert_eq!(
            checksums_hold(&short),
            (true, true),
            "only the offset is wrong"
        );
    }

    #[test]
    fn there_are_hundreds_of_every_fate_and_the_same_each_time() {
        let frames = hostile_frames(7);
        assert!(frames.len() >= 400, "{}", frames.len());
        let count = |fate| frames.iter().filter(|frame| frame.fate == fate).count();
        assert_eq!(count(Fate::MalformedForUdp), 70);
        assert_eq!(count(Fate::MalformedForTcp), 60);
        assert_eq!(count(Fate::Harmless), 40);
        assert!(count(Fate::DroppedByKernel) >= 200);
        let again = hostile_frames(7);
        assert!(frames.iter().zip(&again).all(|(a, b)| a.bytes == b.bytes));
        for frame in &frames {
            let oversized = OVERSIZED_FRAMES.contains(&frame.bytes.len());
            assert!(!frame.bytes.is_empty() && (frame.bytes.len() <= MAX_FRAME || oversized));
        }
    }

    #[test]
    fn the_user_network_on_the_hub_would_act_on_none_of_them() {
        for frame in hostile_frames(7) {
            let bytes = &frame.bytes;
            if bytes.len() < ETHERNET_HEADER {
                continue;
            }
            let ethertype = u16::from_be_bytes([bytes[12], bytes[13]]);
            assert!(
                ethertype != ETHERTYPE_ARP && ethertype != ETHERTYPE_IPV6,
                "{}",
                frame.kind
            );
            if ethertype != ETHERTYPE_IPV4 || bytes.len() < ETHERNET_HEADER + IPV4_HEADER {
                continue;
            }
            let packet = &bytes[ETHERNET_HEADER..];
            let header = usize::from(packet[0] & 0xf) * 4;
            let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
            if packet[0] >> 4 != 4 || header < IPV4_HEADER || total != packet.len() {
                continue; // refused at the IP layer
            }
            let (ip_holds, transport_holds) = checksums_hold(bytes);
            let transport = &packet[header..];
            let tcp = packet[9] == PROTOCOL_TCP && transport.len() >= TCP_HEADER;
            let reset = tcp && transport[13] & TCP_RST != 0;
            let tcp_header = usize::from(transport.get(12).copied().unwrap_or(0) >> 4) * 4;
            let refused_tcp_header = tcp && !(TCP_HEADER..=transport.len()).contains(&tcp_header);
            assert!(
                !ip_holds || !transport_holds || reset || refused_tcp_header,
                "{}",
                frame.kind
            );
        }
    }

    #[test]
    fn frames_for_a_servers_port_come_from_privileged_ports() {
        for frame in hostile_frames(7) {
            if frame.fate == Fate::DroppedByKernel {
                continue;
            }
            let transport = &frame.bytes[ETHERNET_HEADER + IPV4_HEADER..];
            let source = u16::from_be_bytes([transport[0], transport[1]]);
            assert!(
                HOSTILE_SOURCE_PORTS.contains(&usize::from(source)),
                "{}",
                frame.kind
            );
        }
    }
}
