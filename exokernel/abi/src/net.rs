//! The network interface: addresses, packet filters and the shared rings.
//!
//! The kernel owns the NIC and decides only who owns which packets
//! (`docs/05-network.md`):
//!
//! - The first environment receives the **NIC** capability. With it,
//!   `NetClaim` claims an IPv4 address: an **address** capability, which
//!   no other claim can take while it lives. It can be derived and granted.
//! - `NetBind` turns a run of frames the environment owns into a
//!   **binding**: a receive ring and a transmit ring in those frames, laid
//!   out as below, and the counters of both.
//! - `NetFilter` attaches a [`Filter`] on an address to a binding: frames
//!   that match it are copied into the binding's receive ring. Filters
//!   never overlap; each is a capability, derived from the address's.
//! - A frame a binding sends must come from what its filters own: the NIC's
//!   MAC, one of its addresses, and for UDP and TCP one of its ports (for
//!   an ICMP echo request, its identifier).
//! - A host without an address yet (a DHCP client, RFC 2131) claims the
//!   [`LIMITED_BROADCAST`] address and a UDP port on it: it then receives
//!   datagrams broadcast to that port and may send from 0.0.0.0 with it.
//!
//! # The ring memory
//!
//! A run of `2^order` frames (order [`MIN_RING_ORDER`]..=[`MAX_RING_ORDER`])
//! holds two rings of `E = 2^(order - 1)` entries ([`ring_entries`]):
//!
//! ```text
//! page 0             control: indices, flags, counters, descriptors (offsets below)
//! page 1 ..          receive slots 0..E, SLOT_SIZE bytes each
//! then               transmit slots 0..E
//! the rest           unused by the kernel
//! ```
//!
//! Indices run freely (they wrap at 2^32); entry `i` is slot `i mod E`. A
//! ring holds `producer - consumer` entries. Each side writes only its own
//! index and reads the other's once, and the kernel checks what it reads
//! ([`Ring`]): an index that makes no sense hurts only its ring.

use crate::Error;

/// The longest Ethernet frame a ring slot carries: 1500 bytes of payload
/// and the 14-byte header (no frame check sequence, no VLAN tag).
pub const MAX_FRAME: usize = 1514;
/// The shortest: an Ethernet header.
pub const MIN_FRAME: usize = 14;
/// Bytes per ring slot: two slots share a page.
pub const SLOT_SIZE: u64 = 2048;

/// The smallest run of frames `NetBind` takes (two entries per ring).
pub const MIN_RING_ORDER: u32 = 2;
/// The largest (128 entries per ring).
pub const MAX_RING_ORDER: u32 = 8;

/// Entries in each ring of a binding built on `2^order` frames.
pub const fn ring_entries(order: u32) -> u32 {
    1 << (order - 1)
}

/// Byte offsets in the control page. Each index sits in its own 64-byte
/// cache line, so the two sides never write the same line.
pub mod control {
    /// Receive: entries the kernel has produced (kernel writes).
    pub const RX_PRODUCER: u64 = 0;
    /// Receive: entries the environment has consumed (environment writes).
    pub const RX_CONSUMER: u64 = 64;
    /// Transmit: entries the environment has produced (environment writes).
    pub const TX_PRODUCER: u64 = 128;
    /// Transmit: entries the kernel has consumed (kernel writes).
    pub const TX_CONSUMER: u64 = 192;
    /// Transmit flags ([`TxFlags`](super::TxFlags); kernel writes).
    pub const TX_FLAGS: u64 = 256;
    /// The binding's counters ([`Counters`](super::Counters); kernel writes).
    pub const COUNTERS: u64 = 512;
    /// Receive descriptors: one `u32` frame length per entry (kernel writes).
    pub const RX_DESCRIPTORS: u64 = 1024;
    /// Transmit descriptors: one `u32` frame length per entry (environment writes).
    pub const TX_DESCRIPTORS: u64 = 2048;
}

/// Byte offset, from the start of the run, of receive slot `slot`.
pub const fn rx_slot_offset(slot: u32) -> u64 {
    crate::layout::PAGE_SIZE + slot as u64 * SLOT_SIZE
}

/// Byte offset, from the start of the run, of transmit slot `slot` in a
/// ring of `entries`.
pub const fn tx_slot_offset(entries: u32, slot: u32) -> u64 {
    crate::layout::PAGE_SIZE + (entries as u64 + slot as u64) * SLOT_SIZE
}

bitflags::bitflags! {
    /// Flags the kernel sets in the transmit ring.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct TxFlags: u32 {
        /// The kernel is not polling this ring: after producing, the
        /// environment must `NetKick` (or send nothing until a later kick).
        /// While it is clear, the kernel drains the ring on its own, at
        /// interrupts, timer ticks and entries from the environment, and
        /// producing needs no system call (AF_XDP's need-wakeup).
        const NEED_WAKEUP = 1 << 0;
    }
}

/// A ring of `entries` (a power of two) with free-running indices: the
/// arithmetic both sides use, and the checks the kernel makes on the index
/// it reads from the other side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ring {
    entries: u32,
}

impl Ring {
    /// A ring of `entries`, which must be a power of two.
    pub const fn new(entries: u32) -> Option<Self> {
        if entries.is_power_of_two() {
            Some(Self { entries })
        } else {
            None
        }
    }

    pub const fn entries(self) -> u32 {
        self.entries
    }

    /// The slot entry `index` lives in.
    pub const fn slot(self, index: u32) -> u32 {
        index & (self.entries - 1)
    }

    /// Entries between `consumer` and `producer`; `None` if the pair is
    /// impossible (more than the ring holds), which means one side wrote
    /// nonsense.
    pub const fn filled(self, producer: u32, consumer: u32) -> Option<u32> {
        let filled = producer.wrapping_sub(consumer);
        if filled <= self.entries {
            Some(filled)
        } else {
            None
        }
    }

    /// Entries the producer may still add; `None` as for [`Self::filled`].
    pub const fn free(self, producer: u32, consumer: u32) -> Option<u32> {
        match self.filled(producer, consumer) {
            Some(filled) => Some(self.entries - filled),
            None => None,
        }
    }
}

/// What a filter matches, on one address.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// ARP requests asking for the address (replies go to every binding
    /// with a filter on it: see `docs/05-network.md`).
    Arp = 1,
    /// ICMP to the address: with port 0, all of it that no echo filter
    /// takes; with a port, the echo replies carrying that echo identifier
    /// (and the right to send echo requests with it).
    Icmp = 2,
    /// UDP to the address and a destination port.
    Udp = 3,
    /// TCP to the address and a destination port.
    Tcp = 4,
}

/// A packet filter: declarative, checked at bind time, matched by table
/// lookup. ARP filters have port 0; an ICMP filter's port is 0 or an echo
/// identifier ([`Filter::icmp_echo`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Filter {
    pub protocol: Protocol,
    pub port: u16,
}

impl Filter {
    pub const fn arp() -> Self {
        Self {
            protocol: Protocol::Arp,
            port: 0,
        }
    }

    pub const fn icmp() -> Self {
        Self {
            protocol: Protocol::Icmp,
            port: 0,
        }
    }

    /// Echo replies with `identifier` (RFC 792), for a program that pings
    /// beside the one answering pings; identifier 0 is [`Filter::icmp`].
    pub const fn icmp_echo(identifier: u16) -> Self {
        Self {
            protocol: Protocol::Icmp,
            port: identifier,
        }
    }

    pub const fn udp(port: u16) -> Self {
        Self {
            protocol: Protocol::Udp,
            port,
        }
    }

    pub const fn tcp(port: u16) -> Self {
        Self {
            protocol: Protocol::Tcp,
            port,
        }
    }

    /// One register: the protocol in bits 16–23, the port in 0–15.
    pub const fn pack(self) -> u64 {
        (self.protocol as u64) << 16 | self.port as u64
    }

    /// The inverse of [`pack`](Self::pack); `InvalidArgument` for an unknown
    /// protocol, stray bits, a port on ARP, or port 0 on UDP or TCP.
    pub fn unpack(packed: u64) -> Result<Self, Error> {
        let protocol = match packed >> 16 {
            1 => Protocol::Arp,
            2 => Protocol::Icmp,
            3 => Protocol::Udp,
            4 => Protocol::Tcp,
            _ => return Err(Error::InvalidArgument),
        };
        let port = packed as u16;
        let valid = match protocol {
            Protocol::Arp => port == 0,
            Protocol::Icmp => true,
            Protocol::Udp | Protocol::Tcp => port != 0,
        };
        if !valid {
            return Err(Error::InvalidArgument);
        }
        Ok(Self { protocol, port })
    }
}

/// A binding's counters, kept by the kernel and copied into its control
/// page at [`control::COUNTERS`] whenever one changes. The copy is the
/// environment's to read; writing it changes nothing but the copy.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames delivered into the receive ring, and their bytes.
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Frames sent, from the ring or by `NetSend`, and their bytes.
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Frames for this binding that were dropped: its receive ring was full,
    /// or its consumer index made no sense.
    pub rx_drops: u64,
    /// Transmit entries refused as malformed: a length out of range, a
    /// producer index that made no sense, a frame no filter could own.
    pub tx_errors: u64,
    /// Frames refused because their source (MAC, address, protocol or port)
    /// is not this binding's.
    pub spoofs: u64,
    /// `NetKick` calls.
    pub kicks: u64,
    /// System calls naming this binding (kicks, sends and receives).
    pub syscalls: u64,
}

impl Counters {
    /// How many there are (`u64` each).
    pub const COUNT: usize = 9;

    /// In field order: the control page's layout.
    pub const fn to_array(&self) -> [u64; Self::COUNT] {
        [
            self.rx_packets,
            self.rx_bytes,
            self.tx_packets,
            self.tx_bytes,
            self.rx_drops,
            self.tx_errors,
            self.spoofs,
            self.kicks,
            self.syscalls,
        ]
    }

    /// The inverse of [`to_array`](Self::to_array).
    pub const fn from_array(values: [u64; Self::COUNT]) -> Self {
        let [
            rx_packets,
            rx_bytes,
            tx_packets,
            tx_bytes,
            rx_drops,
            tx_errors,
            spoofs,
            kicks,
            syscalls,
        ] = values;
        Self {
            rx_packets,
            rx_bytes,
            tx_packets,
            tx_bytes,
            rx_drops,
            tx_errors,
            spoofs,
            kicks,
            syscalls,
        }
    }
}

const _: () = assert!(size_of::<Counters>() == Counters::COUNT * 8);
const _: () = assert!(control::COUNTERS + size_of::<Counters>() as u64 <= control::RX_DESCRIPTORS);
const _: () = assert!(
    control::RX_DESCRIPTORS + 4 * ring_entries(MAX_RING_ORDER) as u64 <= control::TX_DESCRIPTORS
);
const _: () = assert!(control::TX_DESCRIPTORS + 4 * ring_entries(MAX_RING_ORDER) as u64 <= 4096);
const _: () = assert!(
    tx_slot_offset(ring_entries(MIN_RING_ORDER), ring_entries(MIN_RING_ORDER))
        <= crate::layout::PAGE_SIZE << MIN_RING_ORDER
);
const _: () = assert!(MAX_FRAME as u64 <= SLOT_SIZE);

/// 255.255.255.255: `NetClaim` gives it like any address, and it takes
/// only UDP filters (see the module documentation).
pub const LIMITED_BROADCAST: u32 = ipv4(255, 255, 255, 255);

/// An IPv4 address in one register: `a.b.c.d` is `a << 24 | b << 16 | c << 8 | d`.
pub const fn ipv4(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

/// A MAC address in one register (`CapabilityIdentify` of the NIC): the
/// six bytes in the low 48 bits, first byte most significant.
pub const fn mac_from_u64(value: u64) -> [u8; 6] {
    let bytes = value.to_be_bytes();
    [bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]]
}

/// The inverse of [`mac_from_u64`].
pub const fn mac_to_u64(mac: [u8; 6]) -> u64 {
    u64::from_be_bytes([0, 0, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_slots_fit_the_run() {
        for order in MIN_RING_ORDER..=MAX_RING_ORDER {
            let entries = ring_entries(order);
            let end = tx_slot_offset(entries, entries);
            assert!(end <= 4096 << order, "order {order}: {end} bytes");
            assert_eq!(rx_slot_offset(entries), tx_slot_offset(entries, 0));
        }
        assert_eq!(ring_entries(MAX_RING_ORDER), 128);
    }

    #[test]
    fn ring_arithmetic_wraps() {
        let ring = Ring::new(8).unwrap();
        assert_eq!(ring.slot(9), 1);
        assert_eq!(ring.filled(5, 3), Some(2));
        assert_eq!(ring.free(5, 3), Some(6));
        assert_eq!(ring.filled(3, 3), Some(0));
        assert_eq!(ring.filled(11, 3), Some(8), "full");
        assert_eq!(ring.free(11, 3), Some(0));
        // Indices that wrapped past 2^32 still count right.
        assert_eq!(ring.filled(2, u32::MAX - 1), Some(4));
        assert_eq!(ring.slot(u32::MAX), 7);
        assert_eq!(ring.slot(u32::MAX.wrapping_add(1)), 0);
    }

    #[test]
    fn impossible_indices_are_caught() {
        let ring = Ring::new(8).unwrap();
        assert_eq!(ring.filled(12, 3), None, "more than the ring holds");
        assert_eq!(ring.filled(3, 4), None, "consumer ahead of producer");
        assert_eq!(ring.free(0, u32::MAX / 2), None);
        assert_eq!(Ring::new(6), None);
        assert_eq!(Ring::new(0), None);
        // Every pair either makes sense or is refused, never panics.
        for producer in [0, 1, 7, 8, 9, u32::MAX, u32::MAX - 8] {
            for consumer in [0, 1, 7, 8, 9, u32::MAX, u32::MAX - 8] {
                if let Some(filled) = ring.filled(producer, consumer) {
                    assert!(filled <= 8);
                    assert_eq!(consumer.wrapping_add(filled), producer);
                }
            }
        }
    }

    #[test]
    fn filters_pack_and_refuse_nonsense() {
        for filter in [
            Filter::arp(),
            Filter::icmp(),
            Filter::icmp_echo(0x1234),
            Filter::udp(7),
            Filter::tcp(65535),
        ] {
            assert_eq!(Filter::unpack(filter.pack()), Ok(filter));
        }
        assert_eq!(Filter::unpack(0), Err(Error::InvalidArgument));
        assert_eq!(Filter::unpack(5 << 16), Err(Error::InvalidArgument));
        assert_eq!(
            Filter::unpack(1 << 16 | 80),
            Err(Error::InvalidArgument),
            "ARP has no port"
        );
        assert_eq!(
            Filter::unpack(3 << 16),
            Err(Error::InvalidArgument),
            "UDP port 0"
        );
        assert_eq!(Filter::unpack(u64::MAX), Err(Error::InvalidArgument));
    }

    #[test]
    fn counters_round_trip_in_field_order() {
        let counters = Counters {
            rx_packets: 1,
            rx_bytes: 2,
            tx_packets: 3,
            tx_bytes: 4,
            rx_drops: 5,
            tx_errors: 6,
            spoofs: 7,
            kicks: 8,
            syscalls: 9,
        };
        assert_eq!(counters.to_array(), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(Counters::from_array(counters.to_array()), counters);
    }

    #[test]
    fn addresses_in_registers() {
        assert_eq!(ipv4(10, 0, 2, 15), 0x0a00_020f);
        let mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
        assert_eq!(mac_to_u64(mac), 0x5254_0012_3456);
        assert_eq!(mac_from_u64(mac_to_u64(mac)), mac);
    }
}
