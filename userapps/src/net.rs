//! Just enough of Ethernet, ARP, IPv4 and UDP for the NIC tests: a binding
//! set up on rings in the program's own frames, an ARP responder, and UDP
//! frames built and taken apart by hand. (The real stack is `libos-net`.)
#![allow(unsafe_code)] // binding frames the kernel will write into

use exo_abi::mapping::MapFlags;
use exo_abi::net::{self, MAX_FRAME};
use exo_abi::user::{self, rings::Rings};
use exo_abi::wire::{ETHERTYPE_ARP, ETHERTYPE_IPV4, IP_UDP, internet_checksum};
use exo_abi::{Error, Handle, Rights};

use crate::layout::is_managed;

/// QEMU user networking: the guest's address and the gateway's (the host).
pub const GUEST: u32 = net::ipv4(10, 0, 2, 15);
pub const GATEWAY: u32 = net::ipv4(10, 0, 2, 2);
/// The MAC QEMU's user networking (slirp) answers with for its own addresses.
pub const GATEWAY_MAC: [u8; 6] = [0x52, 0x55, 10, 0, 2, 2];
/// The run of frames each test binding uses: 16 frames, 8 entries a ring.
pub const RING_ORDER: u32 = 4;

/// A binding on rings in frames this environment allocated and mapped.
#[derive(Debug)]
pub struct Binding {
    pub handle: Handle,
    pub rings: Rings,
}

impl Binding {
    /// Allocates a run of `2^RING_ORDER` frames, binds it, and maps it
    /// writable at `base` in the managed window, signalling `notification`
    /// when frames arrive.
    pub fn new(base: u64, notification: Option<Handle>) -> Result<Self, Error> {
        Self::with(RING_ORDER, Rights::FRAME, base, notification)
    }

    /// As [`new`](Self::new), with a run of `2^order` frames bound through a
    /// capability with only `rights` (to see bad binds refused).
    pub fn with(
        order: u32,
        rights: Rights,
        base: u64,
        notification: Option<Handle>,
    ) -> Result<Self, Error> {
        assert!(is_managed(base), "rings live in the managed window");
        let (frames, _) = user::frame_allocate(order)?;
        let bound = user::capability_derive(frames, rights)?;
        // SAFETY: the frames were just allocated and are mapped nowhere yet; below they
        // are mapped only at `base`, where no Rust object lives.
        let (handle, entries) = unsafe { user::net_bind(bound, notification) }?;
        user::map(frames, Handle::SELF_ENVIRONMENT, base, MapFlags::WRITE)?;
        Ok(Self {
            handle,
            rings: Rings::new(base, entries)?,
        })
    }

    /// A binding that will never carry a frame: its rings in a fresh run of
    /// `2^order` frames mapped nowhere, bound through the run's own
    /// capability (two capabilities in all), with no filter. For showing that
    /// idle bindings cost the busy ones nothing.
    pub fn idle(order: u32) -> Result<Handle, Error> {
        let (frames, _) = user::frame_allocate(order)?;
        // SAFETY: the frames were just allocated and are mapped nowhere: the
        // kernel's writes into them touch no memory of this program's.
        let (handle, _) = unsafe { user::net_bind(frames, None) }?;
        Ok(handle)
    }

    /// As [`idle`](Self::idle), and the run's capability with it, to give the
    /// frames back: (frames, binding). Dropping the frames removes the binding.
    pub fn idle_run(order: u32) -> Result<(Handle, Handle), Error> {
        let (frames, _) = user::frame_allocate(order)?;
        // SAFETY: as in `idle`: mapped nowhere.
        let (handle, _) = unsafe { user::net_bind(frames, None) }?;
        Ok((frames, handle))
    }

    /// As [`idle_run`](Self::idle_run), but bound through a copy of the run's
    /// capability with only `rights`: (frames, binding).
    pub fn idle_run_through(order: u32, rights: Rights) -> Result<(Handle, Handle), Error> {
        let (frames, _) = user::frame_allocate(order)?;
        let copy = user::capability_derive(frames, rights)?;
        // SAFETY: as in `idle`: mapped nowhere.
        let (handle, _) = unsafe { user::net_bind(copy, None) }?;
        Ok((frames, handle))
    }

    /// Waits until the kernel has taken everything queued on the transmit
    /// ring (removing a binding discards what it still holds).
    pub fn flush(&mut self) -> Result<(), Error> {
        while self.rings.tx_free() < self.rings.entries() {
            user::net_kick(self.handle)?;
            user::yield_now();
        }
        Ok(())
    }

    /// Queues `frame` on the transmit ring, kicking the kernel if it asks.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), Error> {
        let kick = self
            .rings
            .transmit(frame.len(), |slot| slot.copy_from_slice(frame))?;
        if kick {
            user::net_kick(self.handle)?;
        }
        Ok(())
    }
}

/// A run of frames mapped writable at one address and bound any number of times: bindings
/// whose rings are all the same memory, which the kernel allows (docs/05-network.md 5.4).
/// For attacks on what one store into shared rings makes the kernel do.
#[derive(Debug)]
pub struct AliasedRun {
    /// Kept private: the run is bound, so nothing but rings may live in it.
    frames: Handle,
    pub entries: u32,
}

impl AliasedRun {
    /// Allocates a run of `2^order` frames and maps it writable at `base` in the managed
    /// window; bound nowhere yet.
    pub fn new(order: u32, base: u64) -> Result<Self, Error> {
        assert!(is_managed(base), "rings live in the managed window");
        let (frames, _) = user::frame_allocate(order)?;
        user::map(frames, Handle::SELF_ENVIRONMENT, base, MapFlags::WRITE)?;
        Ok(Self {
            frames,
            entries: net::ring_entries(order),
        })
    }

    /// Binds the run once more; the binding's handle.
    pub fn bind(&self) -> Result<Handle, Error> {
        // SAFETY: the run is this value's alone and mapped only at its base in the managed
        // window, where no Rust object lives.
        let (handle, _) = unsafe { user::net_bind(self.frames, None) }?;
        Ok(handle)
    }
}

/// What every NIC test's first environment starts with: 10.0.2.15 claimed with the NIC
/// capability, `filters` on it attached to a binding, and an ARP request sent to the
/// gateway, so that QEMU's user networking learns our MAC before the host sends anything.
#[derive(Debug)]
pub struct Station {
    pub nic: Handle,
    pub mac: [u8; 6],
    pub address: Handle,
    pub binding: Binding,
}

impl Station {
    /// A station on rings of `2^order` frames at `base`, whose binding raises bit 1 of a
    /// new notification when a frame lands in its empty receive ring: for a program that
    /// sleeps in `Wait(NOTIFY)` between frames (`udp-reflector`, `tcp-sink`).
    pub fn on_notified_rings(
        order: u32,
        base: u64,
        filters: &[net::Filter],
    ) -> Result<Self, Error> {
        let notification = user::notification_create(1)?;
        let binding = Binding::with(order, Rights::FRAME, base, Some(notification))?;
        Self::start(binding, filters)
    }

    pub fn start(mut binding: Binding, filters: &[net::Filter]) -> Result<Self, Error> {
        let nic = user::start_info().nic().ok_or(Error::NoDevice)?;
        let mac = mac(nic)?;
        let address = user::net_claim(nic, GUEST)?;
        for &filter in filters {
            user::net_filter(binding.handle, address, filter)?;
        }
        let mut frame = [0; MAX_FRAME];
        let length = build_arp(1, mac, GUEST, [0; 6], GATEWAY, &mut frame);
        binding.send(&frame[..length])?;
        Ok(Self {
            nic,
            mac,
            address,
            binding,
        })
    }
}

/// The NIC's MAC, from its capability.
pub fn mac(nic: Handle) -> Result<[u8; 6], Error> {
    Ok(net::mac_from_u64(user::capability_identify(nic)?.value))
}

fn be16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// The UDP datagram in `frame`, if it is one (IPv4, no options checked beyond IHL): whole
/// headers, or `None`, whatever the frame holds.
pub fn parse_udp(frame: &[u8]) -> Option<UdpFrame<'_>> {
    if frame.len() < 14 + 20 + 8 || be16(frame, 12) != ETHERTYPE_IPV4 || frame[23] != IP_UDP {
        return None;
    }
    let ip = &frame[14..];
    let header = usize::from(ip[0] & 0xf) * 4;
    let total = usize::from(be16(ip, 2)).min(ip.len());
    let udp = ip
        .get(header..total)
        .filter(|udp| header >= 20 && udp.len() >= 8)?;
    let length = usize::from(be16(udp, 4)).clamp(8, udp.len());
    Some(UdpFrame {
        destination_mac: frame[0..6].try_into().ok()?,
        source_mac: frame[6..12].try_into().ok()?,
        source: be32(ip, 12),
        source_port: be16(udp, 0),
        destination: be32(ip, 16),
        destination_port: be16(udp, 2),
        payload: &udp[8..length],
    })
}

/// What a UDP frame carries, as the tests build it or take it apart.
#[derive(Clone, Copy, Debug)]
pub struct UdpFrame<'a> {
    pub source_mac: [u8; 6],
    pub destination_mac: [u8; 6],
    pub source: u32,
    pub destination: u32,
    pub source_port: u16,
    pub destination_port: u16,
    pub payload: &'a [u8],
}

/// Builds the frame into `out`; returns its length. (UDP checksum 0: none, as IPv4 allows.)
pub fn build_udp(frame: &UdpFrame<'_>, out: &mut [u8; MAX_FRAME]) -> usize {
    let udp_length = 8 + frame.payload.len();
    let ip_length = 20 + udp_length;
    out[0..6].copy_from_slice(&frame.destination_mac);
    out[6..12].copy_from_slice(&frame.source_mac);
    out[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let ip = &mut out[14..34];
    ip.copy_from_slice(&[
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, IP_UDP, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    ip[2..4].copy_from_slice(&(ip_length as u16).to_be_bytes());
    ip[12..16].copy_from_slice(&frame.source.to_be_bytes());
    ip[16..20].copy_from_slice(&frame.destination.to_be_bytes());
    let sum = internet_checksum(&[ip]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let udp = &mut out[34..42];
    udp[0..2].copy_from_slice(&frame.source_port.to_be_bytes());
    udp[2..4].copy_from_slice(&frame.destination_port.to_be_bytes());
    udp[4..6].copy_from_slice(&(udp_length as u16).to_be_bytes());
    udp[6..8].copy_from_slice(&[0, 0]);
    out[42..42 + frame.payload.len()].copy_from_slice(frame.payload);
    14 + ip_length
}

/// An ARP packet in a frame: `operation` 1 (request) or 2 (reply).
pub fn build_arp(
    operation: u16,
    mac: [u8; 6],
    sender: u32,
    target_mac: [u8; 6],
    target: u32,
    out: &mut [u8; MAX_FRAME],
) -> usize {
    let destination = if operation == 1 {
        [0xff; 6]
    } else {
        target_mac
    };
    out[0..6].copy_from_slice(&destination);
    out[6..12].copy_from_slice(&mac);
    out[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    let arp = &mut out[14..42];
    arp[0..8].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, operation as u8]);
    arp[8..14].copy_from_slice(&mac);
    arp[14..18].copy_from_slice(&sender.to_be_bytes());
    arp[18..24].copy_from_slice(&target_mac);
    arp[24..28].copy_from_slice(&target.to_be_bytes());
    42
}

/// If `frame` is an ARP request for `address`, the reply from `mac` into `out`.
pub fn answer_arp(
    frame: &[u8],
    mac: [u8; 6],
    address: u32,
    out: &mut [u8; MAX_FRAME],
) -> Option<usize> {
    if frame.len() < 42 || be16(frame, 12) != ETHERTYPE_ARP || be16(frame, 20) != 1 {
        return None;
    }
    if be32(frame, 38) != address {
        return None;
    }
    let asker_mac: [u8; 6] = frame[22..28].try_into().ok()?;
    let asker = be32(frame, 28);
    Some(build_arp(2, mac, address, asker_mac, asker, out))
}

/// Answers what `binding`'s receive ring holds: ARP requests for [`GUEST`] (if `arp`), and
/// UDP to `port` with `echo:<payload>` back to its sender; counts the datagrams echoed in
/// `served` and UDP for any other port or address in `foreign`.
pub fn serve_echo(
    binding: &mut Binding,
    mac: [u8; 6],
    port: u16,
    arp: bool,
    served: &mut u64,
    foreign: &mut u64,
) {
    let mut reply = [0; MAX_FRAME];
    while let Some(length) = binding.rings.receive(|frame| {
        if arp && let Some(length) = answer_arp(frame, mac, GUEST, &mut reply) {
            return length;
        }
        let Some(udp) = parse_udp(frame) else {
            return 0;
        };
        if udp.destination != GUEST || udp.destination_port != port {
            *foreign += 1;
            return 0;
        }
        *served += 1;
        let mut payload = [0; 64];
        let size = (5 + udp.payload.len()).min(payload.len());
        payload[..5].copy_from_slice(b"echo:");
        payload[5..size].copy_from_slice(&udp.payload[..size - 5]);
        let echo = UdpFrame {
            source_mac: mac,
            destination_mac: udp.source_mac,
            source: GUEST,
            destination: udp.source,
            source_port: port,
            destination_port: udp.source_port,
            payload: &payload[..size],
        };
        build_udp(&echo, &mut reply)
    }) {
        if length > 0 {
            binding.send(&reply[..length]).expect("queue a reply");
        }
    }
}
