//! The host functions of the networked scenarios: what the host sends the guest and what
//! it must get back, run beside the guest by the test suite (see
//! [`NetworkScenario`](crate::scenarios::NetworkScenario)).
//!
//! Each returns a precise reason on failure (which port, which datagram, what came back);
//! none judges the serial output or the capture, which the scenario's table entry does.

use std::io::ErrorKind;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::host::echo::udp_round_trips;
use crate::host::hostile_frames::hostile_frames;
use crate::host::side::HostSide;

/// net-test's two environments each echo on their own UDP port.
pub const TWO_BINDINGS_PORTS: [u16; 2] = [7001, 7002];
/// What net-test prints once both of its environments have bound their UDP ports.
pub const TWO_BINDINGS_READY: &str = "net-test: two bindings ready";
/// net-hostile's parent echoes on this UDP port...
pub const HOSTILE_ECHO_PORT: u16 = 7003;
/// ...while its child scribbles over the rings bound to this one.
pub const HOSTILE_CHILD_PORT: u16 = 7004;
pub const HOSTILE_READY: &str = "net-hostile: ready";
/// net-steady receives on this UDP port.
pub const STEADY_PORT: u16 = 7005;
pub const STEADY_RECEIVING: &str = "net-steady: receiving";
/// What net-steady prints once it has stopped receiving (with every datagram it counts,
/// or having given up).
pub const STEADY_RECEIVED: &str = "net-steady: per-packet receive";

/// The UDP port udp-reflector sends datagrams back from (the echo port).
pub const REFLECTOR_PORT: u16 = 7;
/// What udp-reflector prints once its filters are in place, and at its end.
pub const REFLECTOR_READY: &str = "udp-reflector: ready on UDP 7";
pub const REFLECTOR_DONE: &str = "udp-reflector: reflected";
/// The TCP port tcp-sink takes streams on (the discard port).
pub const SINK_PORT: u16 = 9;
/// What tcp-sink prints once its filters are in place, and at its end.
pub const SINK_READY: &str = "tcp-sink: ready on TCP 9";
pub const SINK_DONE: &str = "tcp-sink: received ";
/// Streams the host sends tcp-sink in its scenario, one after the other: a short one, and
/// one of many windows.
const SINK_STREAMS: [u64; 2] = [1000, 4 << 20];

/// Datagrams sent to the reflector before the hostile frames, and again after them.
pub const REFLECTIONS: usize = 20;
/// Ctrl-D: the end of the console's input, which ends udp-reflector.
const END_OF_INPUT: u8 = 4;

/// Datagrams sent to each binding.
const ECHO_ROUNDS: usize = 20;
/// How long one datagram's reply may take: the longest single wait of a host function
/// here, and shorter than the grace a host function has once the guest is gone, so one
/// waiting for a reply when the guest died still reports what it was waiting for.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
const _: () = assert!(REPLY_TIMEOUT.as_secs() < crate::guest::HOST_GRACE.as_secs());
/// Sends of one datagram before giving up: the guest may drop the first while it learns
/// the gateway's hardware address to reply to.
const SENDS_PER_DATAGRAM: u32 = 3;
/// Longer than any datagram this sends or expects, so a longer reply shows as one.
const REPLY_BUFFER: usize = 1500;

/// net-test: two environments each bind a UDP port and echo what arrives, prefixed with
/// `echo:`. Each port's traffic must reach its own environment only.
pub fn echo_on_two_bindings(host: &HostSide) -> Result<(), String> {
    host.wait_for(TWO_BINDINGS_READY)?;
    let [first, second] = TWO_BINDINGS_PORTS;
    let mut bindings = [
        (first, 'A', host.udp(first)?, Vec::new()),
        (second, 'B', host.udp(second)?, Vec::new()),
    ];
    for round in 0..ECHO_ROUNDS {
        for (guest_port, tag, socket, late_replies) in &mut bindings {
            echo(socket, *guest_port, *tag, round, late_replies)?;
        }
    }
    Ok(())
}

/// net-hostile: the parent echoes while its child scribbles over its own rings. Every
/// datagram to the parent must come back; those to the child land in a ring whose indices
/// are garbage, and must hurt nobody.
pub fn echo_beside_a_hostile_neighbour(host: &HostSide) -> Result<(), String> {
    host.wait_for(HOSTILE_READY)?;
    let echo_socket = host.udp(HOSTILE_ECHO_PORT)?;
    let child_socket = host.udp(HOSTILE_CHILD_PORT)?;
    let mut late_replies = Vec::new();
    for round in 0..ECHO_ROUNDS {
        child_socket
            .send(format!("junk{round}").as_bytes())
            .map_err(|error| format!("guest UDP port {HOSTILE_CHILD_PORT}: {error}"))?;
        echo(
            &echo_socket,
            HOSTILE_ECHO_PORT,
            'H',
            round,
            &mut late_replies,
        )?;
    }
    Ok(())
}

/// udp-reflector: datagrams of every length come back unchanged, before and after every
/// kind of hostile frame aimed at its port; then the console ends, and it exits having
/// counted what the host sent.
pub fn reflections_around_hostile_frames(host: &HostSide) -> Result<(), String> {
    host.wait_for(REFLECTOR_READY)?;
    let socket = host.udp(REFLECTOR_PORT)?;
    let mut late_replies = Vec::new();
    udp_round_trips(&socket, REFLECTOR_PORT, REFLECTIONS, 1, &mut late_replies)
        .map_err(|error| format!("before the hostile frames: {error}"))?;
    let injector = host.frame_injector()?;
    for (index, frame) in hostile_frames(REFLECTOR_PORT).iter().enumerate() {
        injector.send(&frame.bytes).map_err(|error| {
            format!("injecting hostile frame {index} ({}): {error}", frame.kind)
        })?;
    }
    udp_round_trips(&socket, REFLECTOR_PORT, REFLECTIONS, 2, &mut late_replies)
        .map_err(|error| format!("after the hostile frames: {error}"))?;
    host.type_into_console(&[END_OF_INPUT])?;
    // It counts the datagrams it sent back: at least every one the host sent (more if a
    // slow reply made the host send again, or a hostile frame passed for a datagram —
    // a reflector checks no checksum).
    let line = host.serial_line(REFLECTOR_DONE)?;
    let count: usize = line
        .split_whitespace()
        .nth(2)
        .and_then(|word| word.parse().ok())
        .ok_or_else(|| format!("no count in {line:?}"))?;
    let sent = 2 * REFLECTIONS;
    if count < sent {
        return Err(format!(
            "udp-reflector reflected {count} datagrams; the host sent {sent}"
        ));
    }
    Ok(())
}

/// Datagrams sent between two looks at the serial output.
const STEADY_BATCH: usize = 10;
/// How long each look may wait for the guest: it paces the batches (500 datagrams a second
/// at most), so the guest's 128-entry ring does not overflow on a slow host.
const STEADY_PACE: Duration = Duration::from_millis(20);
/// Datagrams sent before giving up on the guest: at the pace above, longer than the
/// guest's own 30 s receive window, so it gives up first and says why.
const STEADY_MAX_DATAGRAMS: usize = 20_000;

/// net-steady: once the guest says it is receiving, sends it datagrams in paced batches
/// until it says it has stopped. The guest counts the 300 it needs and ignores the rest, so
/// a datagram lost on the way (an overflowing ring, say) costs nothing: more keep coming.
pub fn datagrams_for_a_polling_receiver(host: &HostSide) -> Result<(), String> {
    host.wait_for(STEADY_RECEIVING)?;
    let socket = host.udp(STEADY_PORT)?;
    let mut sent = 0;
    while sent < STEADY_MAX_DATAGRAMS {
        for _ in 0..STEADY_BATCH {
            socket
                .send(format!("R{sent}").as_bytes())
                .map_err(|error| {
                    format!("guest UDP port {STEADY_PORT}: sending datagram {sent}: {error}")
                })?;
            sent += 1;
        }
        if host.shows_within(STEADY_RECEIVED, STEADY_PACE)? {
            return Ok(());
        }
    }
    Err(format!(
        "guest UDP port {STEADY_PORT}: sent {sent} datagrams, and the guest never said \
         {STEADY_RECEIVED:?}"
    ))
}

/// Sends `{tag}{round}` to `guest_port` and waits for `echo:{tag}{round}` (see
/// [`exchange`]).
fn echo(
    socket: &UdpSocket,
    guest_port: u16,
    tag: char,
    round: usize,
    late_replies: &mut Vec<Vec<u8>>,
) -> Result<(), String> {
    let request = format!("{tag}{round}");
    let reply = format!("echo:{request}");
    exchange(
        socket,
        guest_port,
        request.as_bytes(),
        reply.as_bytes(),
        late_replies,
        REPLY_TIMEOUT,
    )
}

/// A byte string as it appears in a message: quoted, anything not printable ASCII escaped.
pub fn quoted(bytes: &[u8]) -> String {
    format!("\"{}\"", bytes.escape_ascii())
}

/// Sends `request` and waits for `reply`, sending again when none comes within
/// `reply_timeout`.
///
/// `late_replies` are replies to datagrams this socket sent more than once: the guest may
/// have answered every copy, so they may still arrive and are skipped. A reply this call
/// had to resend for joins them. Anything else is a wrong reply.
pub fn exchange(
    socket: &UdpSocket,
    guest_port: u16,
    request: &[u8],
    reply: &[u8],
    late_replies: &mut Vec<Vec<u8>>,
    reply_timeout: Duration,
) -> Result<(), String> {
    let mut buffer = [0u8; REPLY_BUFFER];
    for send in 1..=SENDS_PER_DATAGRAM {
        socket.send(request).map_err(|error| {
            format!(
                "guest UDP port {guest_port}: sending {} failed: {error}",
                quoted(request)
            )
        })?;
        let deadline = Instant::now() + reply_timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            socket
                .set_read_timeout(Some(remaining))
                .map_err(|error| format!("guest UDP port {guest_port}: {error}"))?;
            let length = match socket.recv(&mut buffer) {
                Ok(length) => length,
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    break;
                }
                Err(error) => {
                    return Err(format!(
                        "guest UDP port {guest_port}: waiting for the reply to {} (send {send}) \
                         failed: {error}",
                        quoted(request)
                    ));
                }
            };
            let received = &buffer[..length];
            if received == reply {
                if send > 1 {
                    late_replies.push(reply.to_vec());
                }
                return Ok(());
            }
            if !late_replies.iter().any(|late| late == received) {
                return Err(format!(
                    "guest UDP port {guest_port}: sent {}, expected the reply {}, got {}",
                    quoted(request),
                    quoted(reply),
                    quoted(received)
                ));
            }
        }
    }
    Err(format!(
        "guest UDP port {guest_port}: no reply to {} within {} s, sent {SENDS_PER_DATAGRAM} times",
        quoted(request),
        reply_timeout.as_secs_f64()
    ))
}

/// The TCP bulk floor, `bytes` into tcp-sink (waited for), then its end typed (Ctrl-D).
pub fn stream_into_sink(
    host: &HostSide,
    bulk: exo_loadgen::BulkOptions,
) -> Result<exo_loadgen::BulkReport, String> {
    host.wait_for(SINK_READY)?;
    let address = host.address(crate::qemu::Protocol::Tcp, SINK_PORT)?;
    let report = exo_loadgen::tcp_bulk(address, bulk).map_err(|error| format!("tcp-sink: {error}"));
    // Ends the sink, whatever the load gave.
    host.type_into_console(&[END_OF_INPUT])?;
    report
}

/// tcp-sink: each stream is taken to its end (the sink answers the sender's FIN with its
/// own), and the sink counts every byte of every stream, once.
pub fn streams_into_sink(host: &HostSide) -> Result<(), String> {
    host.wait_for(SINK_READY)?;
    let address = host.address(crate::qemu::Protocol::Tcp, SINK_PORT)?;
    for bytes in SINK_STREAMS {
        let options = exo_loadgen::BulkOptions {
            bytes,
            ..exo_loadgen::BulkOptions::default()
        };
        exo_loadgen::tcp_bulk(address, options)
            .map_err(|error| format!("a stream of {bytes} bytes into tcp-sink: {error}"))?;
    }
    host.type_into_console(&[END_OF_INPUT])?;
    let line = host.serial_line(SINK_DONE)?;
    let total: u64 = SINK_STREAMS.iter().sum();
    let expected = format!(
        "{SINK_DONE}{total} bytes in {} connections",
        SINK_STREAMS.len()
    );
    if !line.starts_with(&expected) {
        return Err(format!("tcp-sink said {line:?}, expected {expected:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::thread;

    use super::*;

    /// Short, so the tests that resend stay quick.
    const TEST_TIMEOUT: Duration = Duration::from_millis(200);

    /// A guest stand-in that drops the first `dropped` datagrams, then (if there are
    /// `replies`) answers the next one with them.
    fn echo_server(dropped: usize, replies: &[&[u8]]) -> (UdpSocket, thread::JoinHandle<()>) {
        let server = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let client = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        client.connect(server.local_addr().unwrap()).unwrap();
        let replies: Vec<Vec<u8>> = replies.iter().map(|reply| reply.to_vec()).collect();
        let serving = thread::spawn(move || {
            let mut buffer = [0u8; 64];
            for _ in 0..dropped {
                server.recv_from(&mut buffer).unwrap();
            }
            if replies.is_empty() {
                return;
            }
            let (_, from) = server.recv_from(&mut buffer).unwrap();
            for reply in replies {
                server.send_to(&reply, from).unwrap();
            }
        });
        (client, serving)
    }

    fn exchange_a4(client: &UdpSocket, late_replies: &mut Vec<Vec<u8>>) -> Result<(), String> {
        exchange(client, 7001, b"A4", b"echo:A4", late_replies, TEST_TIMEOUT)
    }

    #[test]
    fn a_dropped_datagram_is_sent_again_and_its_reply_may_come_late() {
        let (client, serving) = echo_server(2, &[b"echo:A4"]);
        let mut late_replies = Vec::new();
        assert_eq!(exchange_a4(&client, &mut late_replies), Ok(()));
        assert_eq!(late_replies, [b"echo:A4"]);
        serving.join().unwrap();
    }

    #[test]
    fn no_reply_to_any_send_fails() {
        let (client, serving) = echo_server(3, &[]);
        let error = exchange_a4(&client, &mut Vec::new()).unwrap_err();
        assert_eq!(
            error,
            "guest UDP port 7001: no reply to \"A4\" within 0.2 s, sent 3 times"
        );
        serving.join().unwrap();
    }

    #[test]
    fn a_late_reply_to_a_resent_datagram_is_skipped() {
        let (client, serving) = echo_server(0, &[b"echo:A3", b"echo:A4"]);
        let mut late_replies = vec![b"echo:A3".to_vec()];
        assert_eq!(exchange_a4(&client, &mut late_replies), Ok(()));
        assert_eq!(late_replies, [b"echo:A3"], "A4 was sent once");
        serving.join().unwrap();
    }

    #[test]
    fn a_duplicate_of_a_datagram_sent_once_is_a_wrong_reply() {
        let (client, serving) = echo_server(0, &[b"echo:A3", b"echo:A4"]);
        let error = exchange_a4(&client, &mut Vec::new()).unwrap_err();
        assert!(error.ends_with("got \"echo:A3\""), "{error}");
        serving.join().unwrap();
    }

    #[test]
    fn a_wrong_reply_names_the_port_and_both_datagrams() {
        let (client, serving) = echo_server(0, &[b"echo:\x01B4"]);
        let error = exchange_a4(&client, &mut Vec::new()).unwrap_err();
        assert_eq!(
            error,
            "guest UDP port 7001: sent \"A4\", expected the reply \"echo:A4\", got \"echo:\\x01B4\""
        );
        serving.join().unwrap();
    }
}
