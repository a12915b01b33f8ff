//! The host function of net-tap-hostile: from inside the tap's network namespace (see
//! [`tap_network`](super::tap_network)), a raw socket sends every hostile frame there is —
//! [`hostile_frames`](super::hostile_frames)' kinds, IPv4 fragments, ARP lies about the
//! guest's address and the gateway's, and ten thousand connection requests from forged
//! sources — while a well-behaved client on ordinary sockets keeps talking to `udp-echo`
//! and `tcp-echo` at 10.0.2.15, before, between and after the batches. Then the servers'
//! stack lines and the kernel's counters must show the refusals.
//!
//! No wall time is judged: every answer may take as long as the guest needs, within the
//! echo helpers' generous timeouts.

use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use exo_abi::wire::ETHERNET_HEADER;

use crate::host::echo::{echo_stream, udp_round_trips};
use crate::host::hostile_frames::{HostileFrame, hostile_frames};
use crate::host::pseudo_random::PseudoRandom;
use crate::host::raw_link::{RawSocket, enter_namespace};
use crate::host::server_clients::{
    ECHO_PORT, HOSTILE_BATCH, ROUND_TRIPS_AROUND, TCP_ECHO_READY, UDP_ECHO_READY,
    echo_stacks_after_hostile_frames, expect_tcp_echo_served, finish_udp_echo,
};
use crate::host::side::HostSide;
use crate::host::tap_frames::{SYN_FLOOD, arp_spoofs, fragments, syn_flood};
use crate::host::tap_network;

/// The guest, as its static configuration has it.
const GUEST: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
/// Rounds of fragments (eight frames each).
const FRAGMENT_ROUNDS: u16 = 20;
/// Connection requests of the flood sent between two checks of the client's service.
const FLOOD_BATCH: usize = 500;
/// Bytes each checking TCP connection echoes.
const TAP_STREAM: u64 = 2000;
/// How long a TCP connection to the guest may take to open: Linux sends its SYN again
/// (after 1, 3, 7 s ...) if the guest is slow to answer under the flood.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// tcp-echo's `-n`: one connection before the frames, one held open across them all, one
/// after each flood batch, one at the end.
pub const TAP_TCP_CONNECTIONS: usize = 3 + SYN_FLOOD / FLOOD_BATCH;
/// udp-echo's `-n`: more than the datagrams checked (a unit test sees to it), the rest sent
/// by [`finish_udp_echo`].
pub const TAP_UDP_COUNT: usize = 80;

/// Every hostile frame but the flood, mixed in a fixed order. Not the Ethernet headers cut
/// short: Linux refuses to send a frame shorter than the header its interface type has
/// (`EINVAL`), as a real card never delivers such a runt; net-malformed sends them.
pub fn mixed_frames() -> Vec<HostileFrame> {
    let mut frames = hostile_frames(ECHO_PORT);
    frames.retain(|frame| frame.bytes.len() >= ETHERNET_HEADER);
    frames.extend(fragments(ECHO_PORT, FRAGMENT_ROUNDS));
    frames.extend(arp_spoofs());
    let mut random = PseudoRandom::new(0x7461_7031);
    for index in (1..frames.len()).rev() {
        frames.swap(index, random.below(0..index + 1));
    }
    frames
}

/// net-tap-hostile's host function.
pub fn hostile_traffic_from_a_tap(host: &HostSide) -> Result<(), String> {
    host.wait_for(UDP_ECHO_READY)?;
    host.wait_for(TCP_ECHO_READY)?;
    let tap = host.tap()?;
    // This thread only: the sockets below live beside the tap, the test suite's do not.
    enter_namespace(&tap.namespace)?;
    let raw = RawSocket::open(&tap.interface)?;
    let guest = SocketAddr::from((GUEST, ECHO_PORT));
    let connect = || {
        TcpStream::connect_timeout(&guest, CONNECT_TIMEOUT)
            .map_err(|error| format!("TCP to {guest}: {error}"))
    };
    let udp = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|socket| socket.connect(guest).map(|()| socket))
        .map_err(|error| format!("UDP to {guest}: {error}"))?;
    let mut late_replies = Vec::new();
    udp_round_trips(&udp, ECHO_PORT, ROUND_TRIPS_AROUND, 30, &mut late_replies)
        .map_err(|error| format!("before the hostile frames: {error}"))?;
    echo_stream(
        connect()?,
        TAP_STREAM,
        31,
        "the TCP connection before the frames",
    )?;
    let held = connect()?;
    let held_name = "the TCP connection open across the hostile frames";

    let frames = mixed_frames();
    let mut sent = 0;
    for (batch, frames) in frames.chunks(HOSTILE_BATCH).enumerate() {
        for frame in frames {
            raw.send(&frame.bytes)
                .map_err(|error| format!("hostile frame {sent} ({}): {error}", frame.kind))?;
            sent += 1;
        }
        udp_round_trips(&udp, ECHO_PORT, 1, 100 + batch as u64, &mut late_replies)
            .map_err(|error| format!("after {sent} hostile frames: {error}"))?;
    }

    let flood = syn_flood(ECHO_PORT, SYN_FLOOD);
    for (batch, requests) in flood.chunks(FLOOD_BATCH).enumerate() {
        for request in requests {
            raw.send(request)?;
        }
        let flooded = (batch + 1) * FLOOD_BATCH;
        udp_round_trips(&udp, ECHO_PORT, 1, 200 + batch as u64, &mut late_replies)
            .map_err(|error| format!("after {flooded} forged connection requests: {error}"))?;
        let name = format!("a TCP connection after {flooded} forged connection requests");
        let stream = connect().map_err(|error| format!("{name}: {error}"))?;
        echo_stream(stream, TAP_STREAM, 300 + batch as u64, &name)?;
    }

    udp_round_trips(&udp, ECHO_PORT, ROUND_TRIPS_AROUND, 32, &mut late_replies)
        .map_err(|error| format!("after every hostile frame: {error}"))?;
    echo_stream(held, TAP_STREAM, 33, held_name)?;
    echo_stream(
        connect()?,
        TAP_STREAM,
        34,
        "the TCP connection after the frames",
    )?;
    finish_udp_echo(host, &udp, TAP_UDP_COUNT)?;
    expect_tcp_echo_served(
        host,
        TAP_TCP_CONNECTIONS,
        TAP_TCP_CONNECTIONS as u64 * TAP_STREAM,
    )?;

    let dropped_by_tap = tap_network::frames_dropped_by_the_tap(tap)?;
    host.note(format!(
        "sent {sent} hostile frames and {SYN_FLOOD} forged connection requests; the tap \
         dropped {dropped_by_tap} (QEMU busy)"
    ));
    expect_refusals_counted(host, &frames, dropped_by_tap)
}

/// Once the servers have exited: their stack lines and the kernel's counters must account
/// for `frames` and the flood (of which the tap dropped `dropped_by_tap`).
fn expect_refusals_counted(
    host: &HostSide,
    frames: &[HostileFrame],
    dropped_by_tap: u64,
) -> Result<(), String> {
    // Sent in small batches, each answered before the next: none is lost to a full ring,
    // so each must be counted.
    let [_, tcp_echo] = echo_stacks_after_hostile_frames(host, frames, true)?;
    let received = kernel_counter(host, "frames_received")?;
    let unmatched = kernel_counter(host, "frames_unmatched")?;
    host.note(format!(
        "the kernel received {received} frames and dropped {unmatched} (no owner, or its \
         ring full)"
    ));
    // Every forged request reached the card unless the tap dropped it; there, the kernel
    // dropped it (tcp-echo's ring full), or tcp-echo's stack took it in.
    let reached = SYN_FLOOD as u64 - dropped_by_tap.min(SYN_FLOOD as u64);
    if unmatched + tcp_echo.frames_in < reached {
        return Err(format!(
            "{reached} forged connection requests reached the card, but the kernel dropped \
             only {unmatched} frames and tcp-echo took in only {}",
            tcp_echo.frames_in
        ));
    }
    // More requests reached tcp-echo than its backlog holds: it must have given up
    // half-open ones for them, or the clients above would have been refused.
    if tcp_echo.half_open_dropped == 0 {
        return Err(format!(
            "tcp-echo gave up no half-open connection, though it took in {} frames during a \
             flood of {SYN_FLOOD} forged connection requests",
            tcp_echo.frames_in
        ));
    }
    Ok(())
}

/// The kernel's counter `name` as it reports it at power-off (`counter NAME = VALUE`).
fn kernel_counter(host: &HostSide, name: &str) -> Result<u64, String> {
    let label = format!("counter {name} = ");
    let line = host.serial_line(&label)?;
    line.split_once(&label)
        .and_then(|(_, value)| value.trim().parse().ok())
        .ok_or_else(|| format!("no count in the kernel's line {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_echo_serves_more_datagrams_than_are_checked() {
        let batches = mixed_frames().len().div_ceil(HOSTILE_BATCH) + SYN_FLOOD / FLOOD_BATCH;
        let checked = 2 * ROUND_TRIPS_AROUND + batches;
        assert!(TAP_UDP_COUNT > checked, "{checked} datagrams checked");
    }

    #[test]
    fn every_kind_is_sent_and_linux_can_send_each_frame() {
        let frames = mixed_frames();
        assert!(frames.len() > 500, "{}", frames.len());
        assert!(
            frames
                .iter()
                .all(|frame| frame.bytes.len() >= ETHERNET_HEADER)
        );
        for kind in [
            "random bytes",
            "UDP with a wrong checksum",
            "a frame longer than Ethernet allows",
            "the first IPv4 fragment of a UDP datagram",
            "a gratuitous ARP claiming the gateway's address",
            "an ARP reply claiming the guest's address, to the guest",
        ] {
            assert!(frames.iter().any(|frame| frame.kind == kind), "{kind}");
        }
    }
}
