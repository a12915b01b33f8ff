//! The host functions of the networked scenarios: what the host sends the guest and what
//! it must get back, run beside the guest by the test suite (see
//! [`NetworkScenario`](crate::scenarios::NetworkScenario)).
//!
//! Each returns a precise reason on failure (which port, which datagram, what came back);
//! none judges the serial output or the capture, which the scenario's table entry does.

use std::io::ErrorKind;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::host_side::HostSide;

/// What net-test prints once both of its environments have bound their UDP ports.
const TWO_BINDINGS_READY: &str = "net-test: two bindings ready";
/// Booting and binding, on a slow TCG host.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Datagrams sent to each binding.
const ECHO_ROUNDS: usize = 20;
/// How long one datagram's reply may take.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Sends of one datagram before giving up: the guest may drop the first while it learns
/// the gateway's hardware address to reply to.
const SENDS_PER_DATAGRAM: u32 = 3;
/// Longer than any datagram this sends or expects, so a longer reply shows as one.
const REPLY_BUFFER: usize = 1500;

/// net-test: two environments each bind a UDP port (7001 and 7002) and echo what arrives,
/// prefixed with `echo:`. Each port's traffic must reach its own environment only.
pub fn echo_on_two_bindings(host: &mut HostSide) -> Result<(), String> {
    host.wait_for(TWO_BINDINGS_READY, READY_TIMEOUT)?;
    let mut bindings = [(7001, 'A', Vec::new()), (7002, 'B', Vec::new())];
    for round in 0..ECHO_ROUNDS {
        for (guest_port, tag, late_replies) in &mut bindings {
            let request = format!("{tag}{round}");
            let reply = format!("echo:{request}");
            let socket = host.udp(*guest_port)?;
            exchange(
                socket,
                *guest_port,
                request.as_bytes(),
                reply.as_bytes(),
                late_replies,
                REPLY_TIMEOUT,
            )?;
        }
    }
    Ok(())
}

/// net-hostile: the parent echoes UDP 7003 while its child scribbles over its own rings on
/// UDP 7004. Every datagram to 7003 must come back; those to 7004 land in a ring whose
/// indices are garbage, and must hurt nobody.
pub fn echo_beside_a_hostile_neighbour(host: &mut HostSide) -> Result<(), String> {
    host.wait_for("net-hostile: ready", READY_TIMEOUT)?;
    let mut late_replies = Vec::new();
    for round in 0..ECHO_ROUNDS {
        let junk = format!("junk{round}");
        host.udp(7004)?
            .send(junk.as_bytes())
            .map_err(|error| format!("guest UDP port 7004: {error}"))?;
        let request = format!("H{round}");
        let reply = format!("echo:{request}");
        let socket = host.udp(7003)?;
        exchange(
            socket,
            7003,
            request.as_bytes(),
            reply.as_bytes(),
            &mut late_replies,
            REPLY_TIMEOUT,
        )?;
    }
    Ok(())
}

/// Datagrams net-steady takes from its receive ring by polling.
const STEADY_DATAGRAMS: usize = 300;
/// Between two of them: the guest's ring holds 128, so a pace keeps it from overflowing
/// on a slow host.
const STEADY_PACE: Duration = Duration::from_millis(2);

/// net-steady: once the guest says it is receiving, sends it `STEADY_DATAGRAMS` datagrams
/// on UDP 7005; the guest counts them and the system calls it made.
pub fn datagrams_for_a_polling_receiver(host: &mut HostSide) -> Result<(), String> {
    host.wait_for("net-steady: receiving", READY_TIMEOUT)?;
    let socket = host.udp(7005)?;
    for index in 0..STEADY_DATAGRAMS {
        socket
            .send(format!("R{index}").as_bytes())
            .map_err(|error| format!("guest UDP port 7005: sending datagram {index}: {error}"))?;
        std::thread::sleep(STEADY_PACE);
    }
    Ok(())
}

/// Sends `request` and waits for `reply`, sending again when none comes within
/// `reply_timeout`.
///
/// `late_replies` are replies to datagrams this socket sent more than once: the guest may
/// have answered every copy, so they may still arrive and are skipped. A reply this call
/// had to resend for joins them. Anything else is a wrong reply.
fn exchange(
    socket: &UdpSocket,
    guest_port: u16,
    request: &[u8],
    reply: &[u8],
    late_replies: &mut Vec<Vec<u8>>,
    reply_timeout: Duration,
) -> Result<(), String> {
    let describe = |bytes: &[u8]| format!("\"{}\"", bytes.escape_ascii());
    let mut buffer = [0u8; REPLY_BUFFER];
    for send in 1..=SENDS_PER_DATAGRAM {
        socket.send(request).map_err(|error| {
            format!(
                "guest UDP port {guest_port}: sending {} failed: {error}",
                describe(request)
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
                        describe(request)
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
                    describe(request),
                    describe(reply),
                    describe(received)
                ));
            }
        }
    }
    Err(format!(
        "guest UDP port {guest_port}: no reply to {} within {} s, sent {SENDS_PER_DATAGRAM} times",
        describe(request),
        reply_timeout.as_secs_f64()
    ))
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
