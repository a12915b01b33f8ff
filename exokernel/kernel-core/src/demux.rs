//! Packet demultiplexing and source checks: which binding owns a received
//! frame, and whether a binding may send a frame.
//!
//! Filters are declarative ([`Filter`]: ARP, ICMP, or a UDP or TCP port, on
//! one IPv4 address), so matching is a parse of fixed header fields and one
//! ordered-map lookup: its cost grows with the logarithm of the number of
//! filters, not linearly, and no code an environment wrote runs here.
//!
//! Offsets are from RFC 894 (Ethernet), RFC 826 (ARP), RFC 791 (IPv4),
//! RFC 792 (ICMP), RFC 768 (UDP) and RFC 9293 (TCP).

use alloc::collections::BTreeMap;

use exo_abi::Error;
use exo_abi::net::{Filter, LIMITED_BROADCAST, MAX_FRAME, MIN_FRAME, Protocol};
use exo_abi::wire::{
    ETHERNET_HEADER, ETHERTYPE_ARP, ETHERTYPE_IPV4, IP_ICMP, IP_TCP, IP_UDP, TCP_HEADER, UDP_HEADER,
};

use crate::btree::GiveBackWhenEmpty;

/// A MAC address.
pub type Mac = [u8; 6];
/// An IPv4 address, most significant byte first (`exo_abi::net::ipv4`).
pub type Ipv4 = u32;

pub const BROADCAST: Mac = [0xff; 6];

const ARP_LENGTH: usize = 28;
const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
/// Type, code, checksum, identifier, sequence number.
const ICMP_ECHO_HEADER: usize = 8;

/// A filter on one address: what a binding owns, and a table key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FilterKey {
    pub address: Ipv4,
    pub filter: Filter,
}

/// Why a received frame has no owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmatched {
    /// Too short, or a header that contradicts itself.
    Malformed,
    /// Addressed to another MAC.
    OtherHost,
    /// Neither IPv4 nor ARP, or an IP protocol filters cannot name.
    Unsupported,
    /// A non-first IP fragment: it carries no ports.
    Fragment,
}

/// Where a received frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// To the binding that owns this filter's packets, if any
    /// ([`FilterTable::owner`]).
    Filter(FilterKey),
    /// An ARP reply for `address` from `host`: to the bindings with a
    /// filter on the address that asked about the host (each library OS
    /// keeps its own neighbour cache).
    ArpReply { address: Ipv4, host: Ipv4 },
    /// To nobody.
    Unmatched(Unmatched),
}

/// What a binding must own to send a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This filter (ICMP, UDP or TCP from its address and port).
    Filter(FilterKey),
    /// Some filter on this address (ARP from it).
    Address(Ipv4),
}

/// Why a frame may not be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a well-formed frame of a kind the kernel sends: a length out of
    /// range, a truncated or inconsistent header, an outgoing fragment.
    Malformed,
    /// A source MAC other than the NIC's, or a protocol no filter can own.
    Spoofed,
}

fn be16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// An ARP packet for IPv4 over Ethernet: (operation, sender MAC, sender address, target address).
fn arp(payload: &[u8]) -> Option<(u16, &[u8], Ipv4, Ipv4)> {
    if payload.len() < ARP_LENGTH
        || be16(payload, 0) != 1
        || be16(payload, 2) != ETHERTYPE_IPV4
        || payload[4] != 6
        || payload[5] != 4
    {
        return None;
    }
    Some((
        be16(payload, 6),
        &payload[8..14],
        be32(payload, 14),
        be32(payload, 24),
    ))
}

/// The fields of an IPv4 packet a filter looks at.
struct Ipv4Packet<'a> {
    source: Ipv4,
    destination: Ipv4,
    protocol: u8,
    first_fragment: bool,
    /// The transport header and data, as far as the total length says.
    payload: &'a [u8],
}

fn ipv4_packet(packet: &[u8]) -> Option<Ipv4Packet<'_>> {
    if packet.len() < 20 || packet[0] >> 4 != 4 {
        return None;
    }
    let header = usize::from(packet[0] & 0xf) * 4;
    let total = usize::from(be16(packet, 2));
    if header < 20 || total < header || total > packet.len() {
        return None;
    }
    Some(Ipv4Packet {
        source: be32(packet, 12),
        destination: be32(packet, 16),
        protocol: packet[9],
        first_fragment: be16(packet, 6) & 0x1fff == 0,
        payload: &packet[header..total],
    })
}

/// Which way a packet goes, which says what names its filter.
#[derive(Clone, Copy)]
enum Direction {
    /// Named by the destination port, or the identifier of an echo reply.
    Received,
    /// Named by the source port, or the identifier of an echo request.
    Sent,
}

/// The filter an IPv4 packet to or from `address` falls under.
fn ip_filter(packet: &Ipv4Packet<'_>, address: Ipv4, direction: Direction) -> Option<FilterKey> {
    let (port_at, echo) = match direction {
        Direction::Received => (2, ICMP_ECHO_REPLY),
        Direction::Sent => (0, ICMP_ECHO_REQUEST),
    };
    let payload = packet.payload;
    let port = |minimum: usize| (payload.len() >= minimum).then(|| be16(payload, port_at));
    let filter = match packet.protocol {
        IP_ICMP if payload.first() == Some(&echo) => {
            Filter::icmp_echo(be16(payload.get(..ICMP_ECHO_HEADER)?, 4))
        }
        IP_ICMP => Filter::icmp(),
        IP_UDP => Filter::udp(port(UDP_HEADER)?),
        IP_TCP => Filter::tcp(port(TCP_HEADER)?),
        _ => return None,
    };
    // Port 0 is no port: no filter can hold it.
    if matches!(filter.protocol, Protocol::Udp | Protocol::Tcp) && filter.port == 0 {
        return None;
    }
    Some(FilterKey { address, filter })
}

/// Whether `address` may be claimed: one host's own (not 0.0.0.0,
/// multicast 224/4 or loopback 127/8), or the limited broadcast address.
pub fn claimable(address: Ipv4) -> bool {
    let first = address >> 24;
    address == LIMITED_BROADCAST || (address != 0 && first != 127 && !(224..=239).contains(&first))
}

/// Whether `filter` makes sense on `address`: the limited broadcast address
/// carries only UDP (what a host without an address, a DHCP client, needs).
pub fn fits(address: Ipv4, filter: Filter) -> bool {
    address != LIMITED_BROADCAST || filter.protocol == Protocol::Udp
}

/// Where a frame received by the NIC with address `mac` goes.
pub fn classify(frame: &[u8], mac: Mac) -> Destination {
    use Destination::Unmatched as Drop;
    if frame.len() < ETHERNET_HEADER {
        return Drop(Unmatched::Malformed);
    }
    if frame[0..6] != mac && frame[0..6] != BROADCAST {
        return Drop(Unmatched::OtherHost);
    }
    let payload = &frame[ETHERNET_HEADER..];
    match be16(frame, 12) {
        ETHERTYPE_ARP => match arp(payload) {
            Some((ARP_REQUEST, _, _, target)) => Destination::Filter(FilterKey {
                address: target,
                filter: Filter::arp(),
            }),
            Some((ARP_REPLY, _, sender, target)) => Destination::ArpReply {
                address: target,
                host: sender,
            },
            _ => Drop(Unmatched::Malformed),
        },
        ETHERTYPE_IPV4 => {
            let Some(packet) = ipv4_packet(payload) else {
                return Drop(Unmatched::Malformed);
            };
            if !packet.first_fragment {
                return Drop(Unmatched::Fragment);
            }
            match packet.protocol {
                IP_ICMP | IP_UDP | IP_TCP => {
                    match ip_filter(&packet, packet.destination, Direction::Received) {
                        Some(key) => Destination::Filter(key),
                        None => Drop(Unmatched::Malformed),
                    }
                }
                _ => Drop(Unmatched::Unsupported),
            }
        }
        _ => Drop(Unmatched::Unsupported),
    }
}

/// The address an ARP request in `frame` asks from and the host it asks
/// about: its reply will be for that address, from that host
/// (`Destination::ArpReply`). `None` for any other frame, and for a request
/// not sent to the broadcast address: one sent to a station that is not
/// the host asked gets no reply, and would hold a place among the askers
/// that only others' replies could clear (500 such, asked from one address,
/// would make an honest asker wait for 63 of its own replies).
pub fn arp_request_from(frame: &[u8]) -> Option<(Ipv4, Ipv4)> {
    if frame.len() < ETHERNET_HEADER || be16(frame, 12) != ETHERTYPE_ARP || frame[0..6] != BROADCAST
    {
        return None;
    }
    match arp(&frame[ETHERNET_HEADER..]) {
        Some((ARP_REQUEST, _, sender, target)) => Some((sender, target)),
        _ => None,
    }
}

/// What a binding must own to send `frame` from the NIC with address `mac`.
pub fn claim(frame: &[u8], mac: Mac) -> Result<Claim, Refusal> {
    if !(MIN_FRAME..=MAX_FRAME).contains(&frame.len()) {
        return Err(Refusal::Malformed);
    }
    if frame[6..12] != mac {
        return Err(Refusal::Spoofed);
    }
    let payload = &frame[ETHERNET_HEADER..];
    match be16(frame, 12) {
        ETHERTYPE_ARP => {
            let (_, sender_mac, sender, _) = arp(payload).ok_or(Refusal::Malformed)?;
            if sender_mac != mac {
                return Err(Refusal::Spoofed);
            }
            Ok(Claim::Address(sender))
        }
        ETHERTYPE_IPV4 => {
            let packet = ipv4_packet(payload).ok_or(Refusal::Malformed)?;
            if !packet.first_fragment || be16(payload, 6) & 0x2000 != 0 {
                return Err(Refusal::Malformed);
            }
            // A host without an address sends from 0.0.0.0 as the holder of
            // the port on the limited broadcast address (RFC 2131, 4.1).
            let source = match (packet.protocol, packet.source) {
                (IP_UDP, 0) => LIMITED_BROADCAST,
                (_, source) => source,
            };
            match packet.protocol {
                IP_ICMP | IP_UDP | IP_TCP => ip_filter(&packet, source, Direction::Sent)
                    .map(Claim::Filter)
                    .ok_or(Refusal::Malformed),
                _ => Err(Refusal::Spoofed),
            }
        }
        _ => Err(Refusal::Spoofed),
    }
}

/// Which binding holds each filter. `B` names a binding.
#[derive(Debug)]
pub struct FilterTable<B> {
    filters: BTreeMap<FilterKey, B>,
    /// For each address, the bindings with filters on it and how many each.
    by_address: BTreeMap<Ipv4, BTreeMap<B, u32>>,
}

impl<B: Copy + Ord> Default for FilterTable<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B: Copy + Ord> FilterTable<B> {
    pub const fn new() -> Self {
        Self {
            filters: BTreeMap::new(),
            by_address: BTreeMap::new(),
        }
    }

    /// Gives `key` to `binding`; `AddressInUse` if any binding holds it.
    pub fn insert(&mut self, key: FilterKey, binding: B) -> Result<(), Error> {
        if self.filters.contains_key(&key) {
            return Err(Error::AddressInUse);
        }
        self.filters.insert(key, binding);
        *self
            .by_address
            .entry(key.address)
            .or_default()
            .entry(binding)
            .or_default() += 1;
        Ok(())
    }

    /// Takes `key` away from `binding`; false if `binding` did not hold it.
    pub fn remove(&mut self, key: FilterKey, binding: B) -> bool {
        if self.filters.get(&key) != Some(&binding) {
            return false;
        }
        self.filters.remove(&key);
        let bindings = self
            .by_address
            .get_mut(&key.address)
            .expect("a held filter is counted on its address");
        let count = bindings.get_mut(&binding).expect("and for its binding");
        *count -= 1;
        if *count == 0 {
            bindings.remove(&binding);
            if bindings.is_empty() {
                self.by_address.remove(&key.address);
            }
        }
        self.filters.give_back_when_empty();
        self.by_address.give_back_when_empty();
        true
    }

    /// The binding holding `key`.
    pub fn lookup(&self, key: FilterKey) -> Option<B> {
        self.filters.get(&key).copied()
    }

    /// The binding that owns packets under `key`: its holder, or for an
    /// echo identifier nobody holds, the holder of the address's ICMP filter.
    pub fn owner(&self, key: FilterKey) -> Option<B> {
        self.lookup(key).or_else(|| match key.filter {
            Filter {
                protocol: Protocol::Icmp,
                port: 1..,
            } => self.lookup(FilterKey {
                address: key.address,
                filter: Filter::icmp(),
            }),
            _ => None,
        })
    }

    /// Every binding with a filter on `address`, once each, in order.
    #[cfg(test)]
    fn bindings_on(&self, address: Ipv4) -> impl Iterator<Item = B> + '_ {
        self.by_address
            .get(&address)
            .into_iter()
            .flat_map(|bindings| bindings.keys().copied())
    }

    /// Whether `binding` may send a frame that needs `claim`.
    pub fn allows(&self, binding: B, claim: Claim) -> bool {
        match claim {
            Claim::Filter(key) => self.owner(key) == Some(binding),
            Claim::Address(address) => self
                .by_address
                .get(&address)
                .is_some_and(|bindings| bindings.contains_key(&binding)),
        }
    }

    /// How many filters are held.
    pub fn len(&self) -> usize {
        self.filters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    use super::*;
    use exo_abi::net::ipv4;

    const OURS: Mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    const GATEWAY: Mac = [0x52, 0x55, 10, 0, 2, 2];
    const GUEST: Ipv4 = ipv4(10, 0, 2, 15);
    const HOST: Ipv4 = ipv4(10, 0, 2, 2);

    fn ethernet(destination: Mac, source: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut frame = Vec::new();
        frame.extend_from_slice(&destination);
        frame.extend_from_slice(&source);
        frame.extend_from_slice(&ethertype.to_be_bytes());
        frame.extend_from_slice(payload);
        frame
    }

    fn arp_packet(operation: u16, sender_mac: Mac, sender: Ipv4, target: Ipv4) -> Vec<u8> {
        let mut packet = Vec::new();
        packet.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
        packet.extend_from_slice(&operation.to_be_bytes());
        packet.extend_from_slice(&sender_mac);
        packet.extend_from_slice(&sender.to_be_bytes());
        packet.extend_from_slice(&[0; 6]);
        packet.extend_from_slice(&target.to_be_bytes());
        packet
    }

    fn ip_packet(protocol: u8, source: Ipv4, destination: Ipv4, transport: &[u8]) -> Vec<u8> {
        let total = (20 + transport.len()) as u16;
        let mut packet = Vec::new();
        packet.extend_from_slice(&[0x45, 0]);
        packet.extend_from_slice(&total.to_be_bytes());
        packet.extend_from_slice(&[0, 0, 0x40, 0, 64, protocol, 0, 0]);
        packet.extend_from_slice(&source.to_be_bytes());
        packet.extend_from_slice(&destination.to_be_bytes());
        packet.extend_from_slice(transport);
        packet
    }

    fn ports(source: u16, destination: u16, length: usize) -> Vec<u8> {
        let mut header = Vec::new();
        header.extend_from_slice(&source.to_be_bytes());
        header.extend_from_slice(&destination.to_be_bytes());
        header.resize(length, 0);
        header
    }

    fn udp_in(port: u16) -> Vec<u8> {
        let ip = ip_packet(IP_UDP, HOST, GUEST, &ports(5555, port, 12));
        ethernet(OURS, GATEWAY, ETHERTYPE_IPV4, &ip)
    }

    fn udp_out(source_ip: Ipv4, port: u16) -> Vec<u8> {
        let ip = ip_packet(IP_UDP, source_ip, HOST, &ports(port, 5555, 12));
        ethernet(GATEWAY, OURS, ETHERTYPE_IPV4, &ip)
    }

    fn key(filter: Filter) -> FilterKey {
        FilterKey {
            address: GUEST,
            filter,
        }
    }

    #[test]
    fn only_a_broadcast_arp_request_is_an_ask() {
        let request = arp_packet(ARP_REQUEST, OURS, GUEST, HOST);
        let broadcast = ethernet(BROADCAST, OURS, ETHERTYPE_ARP, &request);
        assert_eq!(arp_request_from(&broadcast), Some((GUEST, HOST)));
        // To the host's own station, or to one that is not there: no ask.
        for station in [GATEWAY, [0x02, 0, 0, 0, 0, 1]] {
            let unicast = ethernet(station, OURS, ETHERTYPE_ARP, &request);
            assert_eq!(arp_request_from(&unicast), None);
        }
        let reply = ethernet(
            BROADCAST,
            OURS,
            ETHERTYPE_ARP,
            &arp_packet(ARP_REPLY, OURS, GUEST, HOST),
        );
        assert_eq!(arp_request_from(&reply), None);
    }

    #[test]
    fn received_frames_go_to_their_filter() {
        assert_eq!(
            classify(&udp_in(7), OURS),
            Destination::Filter(key(Filter::udp(7)))
        );
        let tcp = ip_packet(IP_TCP, HOST, GUEST, &ports(40000, 80, 20));
        assert_eq!(
            classify(&ethernet(OURS, GATEWAY, ETHERTYPE_IPV4, &tcp), OURS),
            Destination::Filter(key(Filter::tcp(80)))
        );
        let ping = ip_packet(IP_ICMP, HOST, GUEST, &[8, 0, 0, 0, 0, 1, 0, 1]);
        assert_eq!(
            classify(&ethernet(OURS, GATEWAY, ETHERTYPE_IPV4, &ping), OURS),
            Destination::Filter(key(Filter::icmp()))
        );
        let who_has = arp_packet(ARP_REQUEST, GATEWAY, HOST, GUEST);
        assert_eq!(
            classify(&ethernet(BROADCAST, GATEWAY, ETHERTYPE_ARP, &who_has), OURS),
            Destination::Filter(key(Filter::arp()))
        );
        let is_at = arp_packet(ARP_REPLY, GATEWAY, HOST, GUEST);
        assert_eq!(
            classify(&ethernet(OURS, GATEWAY, ETHERTYPE_ARP, &is_at), OURS),
            Destination::ArpReply {
                address: GUEST,
                host: HOST
            }
        );
    }

    #[test]
    fn frames_nobody_can_own_are_dropped() {
        use Destination::Unmatched as Drop;
        let mut other_host = udp_in(7);
        other_host[0] = 0x02;
        assert_eq!(classify(&other_host, OURS), Drop(Unmatched::OtherHost));
        assert_eq!(classify(&udp_in(7)[..13], OURS), Drop(Unmatched::Malformed));
        let ipv6 = ethernet(OURS, GATEWAY, 0x86dd, &[0; 40]);
        assert_eq!(classify(&ipv6, OURS), Drop(Unmatched::Unsupported));
        let mut fragment = udp_in(7);
        fragment[14 + 7] = 8; // fragment offset 8 × 8 bytes
        assert_eq!(classify(&fragment, OURS), Drop(Unmatched::Fragment));
        let gre = ip_packet(47, HOST, GUEST, &[0; 8]);
        assert_eq!(
            classify(&ethernet(OURS, GATEWAY, ETHERTYPE_IPV4, &gre), OURS),
            Drop(Unmatched::Unsupported)
        );
        // Headers that lie about their lengths.
        let mut long = udp_in(7);
        long[14 + 3] = 200; // total length past the frame
        assert_eq!(classify(&long, OURS), Drop(Unmatched::Malformed));
        let mut short_header = udp_in(7);
        short_header[14] = 0x44; // IHL 4 words
        assert_eq!(classify(&short_header, OURS), Drop(Unmatched::Malformed));
        let truncated_udp = ip_packet(IP_UDP, HOST, GUEST, &[0, 7, 0]);
        assert_eq!(
            classify(
                &ethernet(OURS, GATEWAY, ETHERTYPE_IPV4, &truncated_udp),
                OURS
            ),
            Drop(Unmatched::Malformed)
        );
        let port_zero = udp_in(0);
        assert_eq!(classify(&port_zero, OURS), Drop(Unmatched::Malformed));
        let short_arp = ethernet(BROADCAST, GATEWAY, ETHERTYPE_ARP, &[0, 1, 8, 0]);
        assert_eq!(classify(&short_arp, OURS), Drop(Unmatched::Malformed));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for length in 0..200 {
            let frame: Vec<u8> = (0..length)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let _ = classify(&frame, OURS);
            let _ = claim(&frame, OURS);
        }
    }

    #[test]
    fn sent_frames_name_what_they_need() {
        assert_eq!(
            claim(&udp_out(GUEST, 7), OURS),
            Ok(Claim::Filter(key(Filter::udp(7))))
        );
        let request = arp_packet(ARP_REQUEST, OURS, GUEST, HOST);
        assert_eq!(
            claim(&ethernet(BROADCAST, OURS, ETHERTYPE_ARP, &request), OURS),
            Ok(Claim::Address(GUEST))
        );
        // Another source MAC, in the Ethernet header or inside ARP.
        let mut forged = udp_out(GUEST, 7);
        forged[6..12].copy_from_slice(&GATEWAY);
        assert_eq!(claim(&forged, OURS), Err(Refusal::Spoofed));
        let lying = arp_packet(ARP_REPLY, GATEWAY, GUEST, HOST);
        assert_eq!(
            claim(&ethernet(BROADCAST, OURS, ETHERTYPE_ARP, &lying), OURS),
            Err(Refusal::Spoofed)
        );
        let ipv6 = ethernet(GATEWAY, OURS, 0x86dd, &[0; 40]);
        assert_eq!(claim(&ipv6, OURS), Err(Refusal::Spoofed));
        assert_eq!(claim(&[0; 13], OURS), Err(Refusal::Malformed));
        assert_eq!(claim(&[0; MAX_FRAME + 1], OURS), Err(Refusal::Malformed));
        let mut more_fragments = udp_out(GUEST, 7);
        more_fragments[14 + 6] = 0x20;
        assert_eq!(claim(&more_fragments, OURS), Err(Refusal::Malformed));
    }

    #[test]
    fn filters_never_overlap_and_sources_are_checked() {
        let mut table = FilterTable::new();
        table.insert(key(Filter::udp(7)), 1u32).unwrap();
        table.insert(key(Filter::arp()), 1).unwrap();
        table.insert(key(Filter::udp(8)), 2).unwrap();
        table.insert(key(Filter::tcp(7)), 2).unwrap();
        assert_eq!(
            table.insert(key(Filter::udp(7)), 2),
            Err(Error::AddressInUse),
            "the same port twice"
        );
        assert_eq!(
            table.insert(key(Filter::udp(7)), 1),
            Err(Error::AddressInUse)
        );
        assert_eq!(table.lookup(key(Filter::udp(7))), Some(1));
        assert_eq!(table.lookup(key(Filter::tcp(7))), Some(2));
        assert_eq!(table.lookup(key(Filter::icmp())), None);
        let on_guest: Vec<u32> = table.bindings_on(GUEST).collect();
        assert_eq!(on_guest, [1, 2]);
        assert_eq!(table.bindings_on(HOST).count(), 0);

        let port_7 = Claim::Filter(key(Filter::udp(7)));
        assert!(table.allows(1, port_7));
        assert!(!table.allows(2, port_7), "binding 2 does not hold port 7");
        assert!(table.allows(2, Claim::Address(GUEST)));
        assert!(!table.allows(3, Claim::Address(GUEST)));
        assert!(!table.allows(1, Claim::Address(HOST)));

        assert!(!table.remove(key(Filter::udp(7)), 2), "not binding 2's");
        assert!(table.remove(key(Filter::udp(7)), 1));
        assert!(table.remove(key(Filter::arp()), 1));
        assert_eq!(table.bindings_on(GUEST).collect::<Vec<_>>(), [2]);
        table.insert(key(Filter::udp(7)), 2).unwrap();
        assert_eq!(table.len(), 3);
        for filter in [Filter::udp(7), Filter::udp(8), Filter::tcp(7)] {
            assert!(table.remove(key(filter), 2));
        }
        assert!(table.is_empty());
        assert_eq!(table.bindings_on(GUEST).count(), 0);
    }

    fn icmp_echo(kind: u8, source: Ipv4, destination: Ipv4, identifier: u16) -> Vec<u8> {
        let mut echo = vec![kind, 0, 0, 0];
        echo.extend_from_slice(&identifier.to_be_bytes());
        echo.extend_from_slice(&[0, 1, b'x']);
        ip_packet(IP_ICMP, source, destination, &echo)
    }

    #[test]
    fn echo_replies_go_to_their_identifier_or_else_the_icmp_filter() {
        let reply = icmp_echo(ICMP_ECHO_REPLY, HOST, GUEST, 0x1234);
        let reply = ethernet(OURS, GATEWAY, ETHERTYPE_IPV4, &reply);
        let Destination::Filter(found) = classify(&reply, OURS) else {
            panic!("an echo reply has an owner");
        };
        assert_eq!(found, key(Filter::icmp_echo(0x1234)));
        let request = icmp_echo(ICMP_ECHO_REQUEST, HOST, GUEST, 0x1234);
        let request = ethernet(OURS, GATEWAY, ETHERTYPE_IPV4, &request);
        assert_eq!(
            classify(&request, OURS),
            Destination::Filter(key(Filter::icmp())),
            "requests are the answering stack's, whatever their identifier"
        );
        let mut cut = icmp_echo(ICMP_ECHO_REPLY, HOST, GUEST, 0x1234);
        cut.truncate(20 + 5);
        cut[3] = 25; // total length
        let cut = ethernet(OURS, GATEWAY, ETHERTYPE_IPV4, &cut);
        assert_eq!(
            classify(&cut, OURS),
            Destination::Unmatched(Unmatched::Malformed)
        );

        let mut table = FilterTable::new();
        assert_eq!(table.owner(found), None);
        table.insert(key(Filter::icmp()), 1u32).unwrap();
        assert_eq!(table.owner(found), Some(1), "nobody holds 0x1234");
        table.insert(found, 2).unwrap();
        assert_eq!(table.owner(found), Some(2));
        assert_eq!(table.owner(key(Filter::icmp_echo(7))), Some(1));
        assert_eq!(
            table.owner(key(Filter::udp(7))),
            None,
            "no fallback for ports"
        );

        // Sending an echo request needs its identifier, as the same rule says.
        let ping = icmp_echo(ICMP_ECHO_REQUEST, GUEST, HOST, 0x1234);
        let ping = ethernet(GATEWAY, OURS, ETHERTYPE_IPV4, &ping);
        let needs = claim(&ping, OURS).unwrap();
        assert_eq!(needs, Claim::Filter(key(Filter::icmp_echo(0x1234))));
        assert!(table.allows(2, needs));
        assert!(!table.allows(1, needs), "the identifier is binding 2's");
        let other = icmp_echo(ICMP_ECHO_REQUEST, GUEST, HOST, 9);
        let other = claim(&ethernet(GATEWAY, OURS, ETHERTYPE_IPV4, &other), OURS).unwrap();
        assert!(table.allows(1, other) && !table.allows(2, other));
        let answer = icmp_echo(ICMP_ECHO_REPLY, GUEST, HOST, 0x1234);
        let answer = claim(&ethernet(GATEWAY, OURS, ETHERTYPE_IPV4, &answer), OURS).unwrap();
        assert_eq!(answer, Claim::Filter(key(Filter::icmp())));
        assert!(table.allows(1, answer) && !table.allows(2, answer));
    }

    #[test]
    fn a_host_without_an_address_uses_the_broadcast_address() {
        let offer = ip_packet(IP_UDP, HOST, LIMITED_BROADCAST, &ports(67, 68, 12));
        let offer = ethernet(BROADCAST, GATEWAY, ETHERTYPE_IPV4, &offer);
        let port_68 = FilterKey {
            address: LIMITED_BROADCAST,
            filter: Filter::udp(68),
        };
        assert_eq!(classify(&offer, OURS), Destination::Filter(port_68));
        let discover = ip_packet(IP_UDP, 0, LIMITED_BROADCAST, &ports(68, 67, 12));
        let discover = ethernet(BROADCAST, OURS, ETHERTYPE_IPV4, &discover);
        assert_eq!(claim(&discover, OURS), Ok(Claim::Filter(port_68)));
        // Only UDP may leave from 0.0.0.0: anything else needs address 0,
        // which nobody can claim.
        let tcp = ip_packet(IP_TCP, 0, HOST, &ports(68, 67, 20));
        let tcp = claim(&ethernet(GATEWAY, OURS, ETHERTYPE_IPV4, &tcp), OURS);
        assert!(matches!(
            tcp,
            Ok(Claim::Filter(FilterKey { address: 0, .. }))
        ));

        assert!(claimable(GUEST) && claimable(LIMITED_BROADCAST));
        for address in [
            0,
            ipv4(127, 0, 0, 1),
            ipv4(224, 0, 0, 1),
            ipv4(239, 9, 9, 9),
        ] {
            assert!(!claimable(address), "{address:#x}");
        }
        assert!(fits(LIMITED_BROADCAST, Filter::udp(68)));
        for filter in [Filter::arp(), Filter::icmp(), Filter::tcp(68)] {
            assert!(!fits(LIMITED_BROADCAST, filter));
            assert!(fits(GUEST, filter));
        }
    }

    #[test]
    fn lookups_scale_with_many_filters() {
        // 60,000 filters: a lookup is a map search, not a scan.
        let mut table = FilterTable::new();
        for port in 1..=60_000u16 {
            table
                .insert(key(Filter::udp(port)), u32::from(port))
                .unwrap();
        }
        for port in [1, 30_000, 60_000] {
            let destination = classify(&udp_in(port), OURS);
            let Destination::Filter(found) = destination else {
                panic!("{destination:?}")
            };
            assert_eq!(table.lookup(found), Some(u32::from(port)));
        }
    }
}
