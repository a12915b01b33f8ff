//! tcp-sink: the floor of a TCP bulk transfer into exo. It takes one connection at a time
//! on TCP port 9, as `tcp-discard` does, but with no stack: straight from the receive ring
//! it answers the handshake, counts each in-order segment's bytes without copying them,
//! and acknowledges what arrived each time the ring runs dry (and every
//! [`SEGMENTS_PER_ACK`] segments within a burst), always offering an 8 MiB window; it
//! answers the sender's FIN with its own. `cargo xtask bench` measures TCP bulk against it
//! (docs/07): what `tcp-discard` gets is bounded by this, and this by what the emulator's
//! network and the host can carry.
//!
//! Out-of-order segments are dropped and acknowledged at once (the sender retransmits);
//! checksums are not checked — a floor does the least a receiver can. It waits as
//! `udp-reflector` does: polls its receive ring, sleeps in `Wait(NOTIFY)` when the ring is
//! empty, and at the end of console input (Ctrl-D) prints what it received and exits.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::net::{Filter, MAX_FRAME};
use exo_abi::syscall::Event;
use exo_abi::user::{self, Wakeup};
use exo_abi::wire::{ETHERTYPE_IPV4, IP_TCP, internet_checksum};
use userapps::layout::MANAGED_START;
use userapps::net::{self, GUEST, Station};
use userapps::println;

userapps::entry!(main);

/// The discard port, as `tcp-discard` uses.
const PORT: u16 = 9;
const RINGS: u64 = MANAGED_START;
/// Entries a ring holds, as `2^RING_ORDER` frames give them (as `tcp-discard`'s).
const RING_ORDER: u32 = 7;
/// Window scale offered: 65,535 << 7, about 8 MiB.
const WINDOW_SCALE: u8 = 7;
/// Acknowledge at least this often within a burst of segments.
const SEGMENTS_PER_ACK: u32 = 16;
/// Our initial sequence number: one connection at a time, so any will do.
const OUR_SEQUENCE: u32 = 0x6578_6f00;

const IDLE_TICKS: u64 = 10;
/// The line the host waits for.
const READY: &str = "tcp-sink: ready on TCP 9";

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// The connection being received, if any.
#[derive(Clone, Copy, Debug)]
struct Connection {
    peer_mac: [u8; 6],
    peer: u32,
    peer_port: u16,
    /// The next byte expected from the peer (what we acknowledge).
    receive_next: u32,
    /// Whether the peer offered window scaling (so ours counts).
    scaled: bool,
    /// Whether the peer's FIN has come (we answered with ours).
    finished: bool,
    /// Segments taken since our last acknowledgement.
    unacknowledged: u32,
}

/// What the sink has received over all connections.
#[derive(Debug, Default)]
struct Totals {
    bytes: u64,
    connections: u64,
    out_of_order: u64,
    scaled: u64,
}

fn main(_argument: u64) -> u64 {
    let Station {
        mac, mut binding, ..
    } = Station::on_notified_rings(RING_ORDER, RINGS, &[Filter::arp(), Filter::tcp(PORT)])
        .expect("claim 10.0.2.15 and bind");
    println!("{READY}");
    let mut connection: Option<Connection> = None;
    let mut totals = Totals::default();
    let mut reply = [0; MAX_FRAME];
    loop {
        let taken = binding.rings.receive(|frame| {
            if let Some(length) = net::answer_arp(frame, mac, GUEST, &mut reply) {
                return length;
            }
            take(frame, mac, &mut connection, &mut totals, &mut reply)
        });
        let length = match taken {
            Some(length) => length,
            None => {
                // The ring ran dry: acknowledge the burst, then sleep until more comes.
                if let Some(open) = connection.as_mut().filter(|open| open.unacknowledged > 0) {
                    let length = segment(open, mac, ACK, &mut reply);
                    open.unacknowledged = 0;
                    binding
                        .send(&reply[..length])
                        .expect("queue an acknowledgement");
                    continue;
                }
                match user::wait(Event::NOTIFY | Event::TIMER, IDLE_TICKS) {
                    Ok(Wakeup::Timer) if userapps::console::input_ended() => break,
                    _ => continue,
                }
            }
        };
        if length > 0 {
            binding.send(&reply[..length]).expect("queue a reply");
        }
    }
    println!(
        "tcp-sink: received {} bytes in {} connections ({} scaled), {} segments out of order",
        totals.bytes, totals.connections, totals.scaled, totals.out_of_order
    );
    0
}

/// Takes one frame; writes an immediate reply into `out` and returns its length (0: none).
fn take(
    frame: &[u8],
    mac: [u8; 6],
    connection: &mut Option<Connection>,
    totals: &mut Totals,
    out: &mut [u8; MAX_FRAME],
) -> usize {
    let Some(tcp) = parse_tcp(frame) else {
        return 0;
    };
    if tcp.flags & RST != 0 {
        *connection = None;
        return 0;
    }
    if tcp.flags & SYN != 0 {
        // A new connection (or the same SYN again): start over, and answer it.
        let mut open = Connection {
            peer_mac: frame[6..12].try_into().expect("six bytes"),
            peer: tcp.source,
            peer_port: tcp.source_port,
            receive_next: tcp.sequence.wrapping_add(1),
            scaled: tcp.offers_window_scale,
            finished: false,
            unacknowledged: 0,
        };
        totals.connections += 1;
        totals.scaled += u64::from(open.scaled);
        let length = segment(&mut open, mac, SYN | ACK, out);
        *connection = Some(open);
        return length;
    }
    let Some(open) = connection
        .as_mut()
        .filter(|open| open.peer == tcp.source && open.peer_port == tcp.source_port)
    else {
        return 0;
    };
    if open.finished {
        // Our FIN's acknowledgement: the connection is over.
        *connection = None;
        return 0;
    }
    if tcp.sequence != open.receive_next {
        // Out of order or a duplicate: say at once what we are waiting for.
        totals.out_of_order += 1;
        return segment(open, mac, ACK, out);
    }
    open.receive_next = open.receive_next.wrapping_add(tcp.payload as u32);
    totals.bytes += tcp.payload as u64;
    if tcp.flags & FIN != 0 {
        open.receive_next = open.receive_next.wrapping_add(1);
        open.finished = true;
        return segment(open, mac, FIN | ACK, out);
    }
    open.unacknowledged += 1;
    if open.unacknowledged >= SEGMENTS_PER_ACK {
        open.unacknowledged = 0;
        return segment(open, mac, ACK, out);
    }
    0
}

/// The fields of a TCP segment the sink reads.
struct Tcp {
    source: u32,
    source_port: u16,
    sequence: u32,
    flags: u8,
    /// Bytes of payload.
    payload: usize,
    /// Whether its options offer window scaling (a SYN's do, if the sender scales).
    offers_window_scale: bool,
}

/// The TCP segment in `frame` to our address and port, if it is one with whole headers.
fn parse_tcp(frame: &[u8]) -> Option<Tcp> {
    let be16 = |at: usize| u16::from_be_bytes([frame[at], frame[at + 1]]);
    let be32 = |at: usize| u32::from_be_bytes(frame[at..at + 4].try_into().expect("four bytes"));
    if frame.len() < 14 + 20 + 20 || be16(12) != ETHERTYPE_IPV4 || frame[23] != IP_TCP {
        return None;
    }
    let ip_header = usize::from(frame[14] & 0xf) * 4;
    let ip_end = (14 + usize::from(be16(16))).min(frame.len());
    let tcp = 14 + ip_header;
    if ip_header < 20 || tcp + 20 > ip_end || be32(30) != GUEST || be16(tcp + 2) != PORT {
        return None;
    }
    let tcp_header = usize::from(frame[tcp + 12] >> 4) * 4;
    if tcp_header < 20 || tcp + tcp_header > ip_end {
        return None;
    }
    Some(Tcp {
        source: be32(26),
        source_port: be16(tcp),
        sequence: be32(tcp + 4),
        flags: frame[tcp + 13],
        payload: ip_end - tcp - tcp_header,
        offers_window_scale: offers_window_scale(&frame[tcp + 20..tcp + tcp_header]),
    })
}

/// Whether TCP `options` hold a window-scale option (kind 3).
fn offers_window_scale(options: &[u8]) -> bool {
    let mut at = 0;
    while let Some(&kind) = options.get(at) {
        match kind {
            0 => return false,
            1 => at += 1,
            3 => return true,
            _ => match options.get(at + 1) {
                Some(&length) => at += usize::from(length).max(2),
                None => return false,
            },
        }
    }
    false
}

/// Builds a segment of ours to the connection's peer with `flags` into `out`; returns its
/// length. A SYN carries our MSS and, if the peer scales, our window scale.
fn segment(open: &mut Connection, mac: [u8; 6], flags: u8, out: &mut [u8; MAX_FRAME]) -> usize {
    let our_sequence = match (flags & SYN != 0, open.finished && flags & FIN == 0) {
        (true, _) => OUR_SEQUENCE,
        // After our FIN, which took one sequence number.
        (false, true) => OUR_SEQUENCE.wrapping_add(2),
        (false, false) => OUR_SEQUENCE.wrapping_add(1),
    };
    let mut options = [0u8; 8];
    let options_length = if flags & SYN != 0 {
        options[..4].copy_from_slice(&[2, 4, 0x05, 0xb4]); // MSS 1460
        if open.scaled {
            options[4..].copy_from_slice(&[1, 3, 3, WINDOW_SCALE]);
            8
        } else {
            4
        }
    } else {
        0
    };
    let tcp_length = 20 + options_length;
    let ip_length = 20 + tcp_length;
    out[0..6].copy_from_slice(&open.peer_mac);
    out[6..12].copy_from_slice(&mac);
    out[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let (ip, rest) = out[14..].split_at_mut(20);
    ip.copy_from_slice(&[
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, IP_TCP, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    ip[2..4].copy_from_slice(&(ip_length as u16).to_be_bytes());
    ip[12..16].copy_from_slice(&GUEST.to_be_bytes());
    ip[16..20].copy_from_slice(&open.peer.to_be_bytes());
    let sum = internet_checksum(&[ip]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let tcp = &mut rest[..tcp_length];
    tcp[0..2].copy_from_slice(&PORT.to_be_bytes());
    tcp[2..4].copy_from_slice(&open.peer_port.to_be_bytes());
    tcp[4..8].copy_from_slice(&our_sequence.to_be_bytes());
    tcp[8..12].copy_from_slice(&open.receive_next.to_be_bytes());
    tcp[12] = ((tcp_length / 4) as u8) << 4;
    tcp[13] = flags;
    // Unscaled in a SYN, as TCP requires; scaled by 2^7 afterwards if the peer agreed.
    tcp[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
    tcp[16..20].fill(0);
    tcp[20..].copy_from_slice(&options[..options_length]);
    let pseudo = pseudo_header(open.peer, tcp_length);
    let sum = internet_checksum(&[&pseudo, tcp]);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    14 + ip_length
}

/// The IPv4 pseudo-header a TCP checksum covers, for a segment of ours to `peer`.
fn pseudo_header(peer: u32, tcp_length: usize) -> [u8; 12] {
    let mut pseudo = [0; 12];
    pseudo[0..4].copy_from_slice(&GUEST.to_be_bytes());
    pseudo[4..8].copy_from_slice(&peer.to_be_bytes());
    pseudo[9] = IP_TCP;
    pseudo[10..12].copy_from_slice(&(tcp_length as u16).to_be_bytes());
    pseudo
}
