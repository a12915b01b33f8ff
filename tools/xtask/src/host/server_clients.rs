//! The host functions of the scenarios that run the library OS's servers — `udp-echo`,
//! `tcp-echo`, `tcp-discard` and `httpd`, each with a TCP/IP stack of its own — started by the shell:
//! real Linux clients (sockets, `curl`) talk to them through QEMU's port forwards, and one
//! scenario adds hostile frames on the side.
//!
//! The servers' scripts and the lines they must print are the scenarios' table entries
//! (`scenarios/network.rs`), built from the counts here. Each function returns a precise
//! reason on failure.

use std::io::{Read, Write};
use std::net::{Shutdown, UdpSocket};
use std::thread;
use std::time::Duration;

use crate::host::echo::{
    self, echo_on_every_connection, echo_stream, open_echoing, udp_round_trips,
};
use crate::host::hostile_frames::{Fate, HostileFrame, hostile_frames};
use crate::host::http_client::{self, Connection, Response};
use crate::host::side::HostSide;
use crate::qemu::{END_OF_INPUT, Protocol};
use crate::servers;

/// The servers' ports in these scenarios: their defaults.
pub const ECHO_PORT: u16 = servers::ECHO_GUEST_PORT;
pub const HTTP_PORT: u16 = servers::HTTP_GUEST_PORT;
/// What each server prints once it listens, on its default port.
pub const UDP_ECHO_READY: &str = "udp-echo: listening on udp port 7";
pub const TCP_ECHO_READY: &str = "tcp-echo: listening on tcp port 7";
pub const HTTPD_READY: &str = "httpd: listening on tcp port 80, serving /www";
/// The start of each server's statistics line, printed as it exits.
pub const UDP_ECHO_STACK: &str = "udp-echo: stack:";
pub const TCP_ECHO_STACK: &str = "tcp-echo: stack:";
pub const HTTPD_STACK: &str = "httpd: stack:";
/// What `/www/index.html` (from `userapps/files/www/index.html`) says, and the body of a
/// 404.
const INDEX_TEXT: &str = "Hello from exo";
const NOT_FOUND_BODY: &str = "404 not found";

/// How long to wait for a sign of the guest between two datagrams that ask a UDP server
/// to finish, and how many such datagrams before giving up.
const FINISH_PACE: Duration = Duration::from_millis(200);
const FINISH_MAX_DATAGRAMS: usize = 100;

// net-http --------------------------------------------------------------------------------

/// Requests made one at a time: GET /, GET /index.html, GET /no-such-file, two GETs on one
/// curl connection, HEAD and GET on one raw connection.
const SINGLE_REQUESTS: usize = 7;
/// Clients at once, and the requests each makes.
const CONCURRENT_CLIENTS: usize = 8;
const REQUESTS_PER_CLIENT: usize = 4;
/// Requests httpd serves in net-http before it exits (its `-n`).
pub const HTTP_REQUESTS: usize = SINGLE_REQUESTS + CONCURRENT_CLIENTS * REQUESTS_PER_CLIENT;

/// net-http: httpd serves the index page, a 404, keep-alive connections and clients at
/// once, to curl and to a plain HTTP/1.1 client.
pub fn http_from_curl(host: &HostSide) -> Result<(), String> {
    host.wait_for(HTTPD_READY)?;
    let base = format!("http://{}", host.address(Protocol::Tcp, HTTP_PORT)?);
    let index = expect_index(&format!("{base}/"))?;
    let by_name = expect_index(&format!("{base}/index.html"))?;
    if by_name != index {
        return Err(format!(
            "GET /index.html returned {}, GET / {}: `/` must mean `/index.html`",
            body_text(&by_name),
            body_text(&index)
        ));
    }
    let missing = http_client::curl_get(&format!("{base}/no-such-file"))?;
    if missing.status != 404 || !missing.body.starts_with(NOT_FOUND_BODY.as_bytes()) {
        return Err(format!(
            "GET /no-such-file: expected 404 with the body {NOT_FOUND_BODY:?}, got {} with {}",
            missing.status,
            body_text(&missing.body)
        ));
    }

    let url = format!("{base}/");
    let transfers = http_client::curl_get_reusing(&[&url, &url])?;
    if transfers != [(200, 1), (200, 0)] {
        return Err(format!(
            "two GETs of / in one curl run: expected (status, new connections) [(200, 1), \
             (200, 0)], the second reusing the first's connection; got {transfers:?}"
        ));
    }
    head_then_get_on_one_connection(host, &index)?;

    let clients: Vec<_> = (0..CONCURRENT_CLIENTS)
        .map(|client| {
            let url = url.clone();
            let index = index.clone();
            thread::spawn(move || -> Result<(), String> {
                for request in 0..REQUESTS_PER_CLIENT {
                    let body = expect_index(&url)
                        .map_err(|error| format!("client {client}, request {request}: {error}"))?;
                    if body != index {
                        return Err(format!(
                            "client {client}, request {request}: GET / returned {}, earlier {}",
                            body_text(&body),
                            body_text(&index)
                        ));
                    }
                }
                Ok(())
            })
        })
        .collect();
    for client in clients {
        client
            .join()
            .unwrap_or_else(|_| Err("a client thread panicked".to_string()))?;
    }
    // Every request counted: httpd's `-n` ends it now.
    host.wait_for(&format!("httpd: served {HTTP_REQUESTS} requests"))
}

/// GETs `url` with curl and expects 200 and the index page; returns the body.
fn expect_index(url: &str) -> Result<Vec<u8>, String> {
    let Response { status, body, .. } = http_client::curl_get(url)?;
    if status != 200 || !String::from_utf8_lossy(&body).contains(INDEX_TEXT) {
        return Err(format!(
            "GET {url}: expected 200 with {INDEX_TEXT:?} in the body, got {status} with {}",
            body_text(&body)
        ));
    }
    Ok(body)
}

/// A body for a message: quoted, cut short if long.
fn body_text(body: &[u8]) -> String {
    const SHOWN: usize = 80;
    let quoted = crate::host::kernel_network::quoted(&body[..body.len().min(SHOWN)]);
    if body.len() > SHOWN {
        format!("{quoted}... ({} bytes)", body.len())
    } else {
        quoted
    }
}

/// HEAD / then GET / on one connection: the HEAD response must give the page's length and
/// no body (a body would be read as the next response), the GET the page.
fn head_then_get_on_one_connection(host: &HostSide, index: &[u8]) -> Result<(), String> {
    let mut connection = Connection::new(host.tcp(HTTP_PORT)?, echo::STREAM_TIMEOUT)?;
    let head = connection.request("HEAD", "/")?;
    if head.status != 200 || head.content_length != Some(index.len()) {
        return Err(format!(
            "HEAD /: expected 200 with Content-Length {}, got {} with {:?}",
            index.len(),
            head.status,
            head.content_length
        ));
    }
    let get = connection
        .request("GET", "/")
        .map_err(|error| format!("{error} (the GET after a HEAD on one connection)"))?;
    if get.status != 200 || get.body != index {
        return Err(format!(
            "GET / after HEAD / on one connection: expected 200 with {}, got {} with {}",
            body_text(index),
            get.status,
            body_text(&get.body)
        ));
    }
    Ok(())
}

// net-echo --------------------------------------------------------------------------------

/// Datagrams net-echo checks, and udp-echo's `-n` there: a few more, which
/// [`finish_udp_echo`] sends (a datagram sent twice may be echoed twice).
const ECHO_DATAGRAMS: usize = 20;
pub const ECHO_UDP_COUNT: usize = ECHO_DATAGRAMS + 4;
/// net-echo's TCP connections and what each sends: a short message, then more than a
/// window's worth.
const ECHO_STREAMS: [u64; 2] = [100, 64 * 1024];
pub const ECHO_TCP_CONNECTIONS: usize = ECHO_STREAMS.len();

/// net-echo: a Linux client's datagrams come back from udp-echo byte for byte, and its
/// TCP streams from tcp-echo, each closed once echoed; each server, on the rings, kicked
/// them out after its polls, at most once a frame it sent. (Before the servers start, the
/// guest pings QEMU's gateway, which answers every ping; the table entry checks that.)
pub fn echo_over_udp_and_tcp(host: &HostSide) -> Result<(), String> {
    host.wait_for(UDP_ECHO_READY)?;
    host.wait_for(TCP_ECHO_READY)?;
    let udp = host.udp(ECHO_PORT)?;
    udp_round_trips(&udp, ECHO_PORT, ECHO_DATAGRAMS, 1, &mut Vec::new())?;
    for (index, length) in ECHO_STREAMS.into_iter().enumerate() {
        let name = format!("TCP connection {} ({length} bytes)", index + 1);
        echo_stream(host.tcp(ECHO_PORT)?, length, index as u64, &name)?;
    }
    finish_udp_echo(host, &udp, ECHO_UDP_COUNT)?;
    expect_tcp_echo_served(host, ECHO_TCP_CONNECTIONS, ECHO_STREAMS.iter().sum())?;
    for stack in [UDP_ECHO_STACK, TCP_ECHO_STACK] {
        expect_kicked_after_polls(&host.serial_line(stack)?)?;
    }
    Ok(())
}

/// A server on the rings with the default `Flush::EachPoll`: its only data-path system
/// calls are kicks, one after each poll that wrote frames, so at least one and at most one
/// a frame it sent.
fn expect_kicked_after_polls(line: &str) -> Result<(), String> {
    if !line.contains("(path: rings, kicked after each poll)") {
        return Err(format!(
            "{line:?}: not on the rings, kicked after each poll"
        ));
    }
    let counts = StackCounts::parse(line)?;
    if !(1..=counts.frames_out).contains(&counts.system_calls) {
        return Err(format!(
            "{line:?}: {} kicks for {} frames sent; a kick after each poll that sent makes \
             1 to {}",
            counts.system_calls, counts.frames_out, counts.frames_out
        ));
    }
    Ok(())
}

/// Sends datagrams to udp-echo, paced, until it says it has echoed `count` and exits:
/// whatever the checks before sent twice or lost, it then ends.
pub fn finish_udp_echo(host: &HostSide, socket: &UdpSocket, count: usize) -> Result<(), String> {
    let done = format!("udp-echo: echoed {count} datagrams");
    for sent in 0..FINISH_MAX_DATAGRAMS {
        socket
            .send(format!("finish {sent}").as_bytes())
            .map_err(|error| format!("guest UDP port {ECHO_PORT}: sending `finish`: {error}"))?;
        if host.shows_within(&done, FINISH_PACE)? {
            return Ok(());
        }
    }
    Err(format!(
        "udp-echo never said {done:?}, though {FINISH_MAX_DATAGRAMS} more datagrams were sent"
    ))
}

/// Waits for tcp-echo's line saying how many connections and bytes it served, and checks
/// both.
pub fn expect_tcp_echo_served(
    host: &HostSide,
    connections: usize,
    bytes: u64,
) -> Result<(), String> {
    let line = host.serial_line("tcp-echo: served ")?;
    let expected = format!("tcp-echo: served {connections} connections, {bytes} bytes");
    if line != expected {
        return Err(format!("tcp-echo said {line:?}, expected {expected:?}"));
    }
    Ok(())
}

// net-concurrent --------------------------------------------------------------------------

/// Connections open at once in net-concurrent, and tcp-echo's `-n` there.
pub const CONCURRENT_CONNECTIONS: usize = 128;
const CONCURRENT_PAYLOAD: usize = 1000;

/// net-concurrent: opens every connection first (each echoing a first byte), then sends
/// each the rest of its own payload, reads each back exactly, and only then closes them:
/// tcp-echo holds them all at once.
pub fn many_connections_at_once(host: &HostSide) -> Result<(), String> {
    host.wait_for(TCP_ECHO_READY)?;
    let streams = open_echoing(CONCURRENT_CONNECTIONS, CONCURRENT_PAYLOAD, |_| {
        host.tcp(ECHO_PORT)
    })?;
    let bytes = echo_on_every_connection(&streams, CONCURRENT_PAYLOAD)?;
    drop(streams);
    expect_tcp_echo_served(host, CONCURRENT_CONNECTIONS, bytes)
}

// net-bulk --------------------------------------------------------------------------------

/// What net-bulk sends through tcp-echo, and gets back.
pub const BULK_BYTES: u64 = 100 * 1024 * 1024;
/// tcp-echo's `-n` in net-bulk: one connection carries it all.
pub const BULK_CONNECTIONS: usize = 1;

/// net-bulk: 100 MiB through tcp-echo on one connection, checked byte for byte while it
/// flows; the throughput goes to the report, never into the verdict.
pub fn bulk_through_tcp_echo(host: &HostSide) -> Result<(), String> {
    host.wait_for(TCP_ECHO_READY)?;
    let echo = echo_stream(host.tcp(ECHO_PORT)?, BULK_BYTES, 42, "the bulk connection")?;
    let mebibytes = echo.bytes as f64 / (1024.0 * 1024.0);
    let seconds = echo.elapsed.as_secs_f64();
    host.note(format!(
        "{mebibytes:.0} MiB echoed in {seconds:.1} s: {:.1} MiB/s each way ({:.0} Mbit/s)",
        mebibytes / seconds,
        echo.bytes as f64 * 8.0 / seconds / 1e6
    ));
    expect_tcp_echo_served(host, BULK_CONNECTIONS, BULK_BYTES)
}

// net-malformed ---------------------------------------------------------------------------

/// Hostile frames sent between two UDP round trips.
pub const HOSTILE_BATCH: usize = 25;
/// UDP round trips before and after the hostile frames (and one after each batch).
pub const ROUND_TRIPS_AROUND: usize = 4;
/// udp-echo's `-n` in net-malformed: more than the datagrams checked (a unit test sees to
/// it), the rest sent by [`finish_udp_echo`].
pub const MALFORMED_UDP_COUNT: usize = 40;
/// TCP connections: one before, one held open across the hostile frames, one after.
pub const MALFORMED_TCP_CONNECTIONS: usize = 3;
const MALFORMED_STREAM: u64 = 2000;

/// net-malformed: hundreds of hostile frames go straight onto the guest's network while
/// echo traffic through the port forwards keeps working, before, between and after them;
/// a TCP connection open across them survives. Both servers must then count malformed
/// frames among those they refused.
pub fn hostile_frames_beside_echo_traffic(host: &HostSide) -> Result<(), String> {
    host.wait_for(UDP_ECHO_READY)?;
    host.wait_for(TCP_ECHO_READY)?;
    let udp = host.udp(ECHO_PORT)?;
    let mut late_replies = Vec::new();
    udp_round_trips(&udp, ECHO_PORT, ROUND_TRIPS_AROUND, 10, &mut late_replies)
        .map_err(|error| format!("before the hostile frames: {error}"))?;
    echo_stream(
        host.tcp(ECHO_PORT)?,
        MALFORMED_STREAM,
        11,
        "the TCP connection before the hostile frames",
    )?;
    let held = host.tcp(ECHO_PORT)?;
    let held_name = "the TCP connection open across the hostile frames";

    let injector = host.frame_injector()?;
    let frames = hostile_frames(ECHO_PORT);
    let mut sent = 0;
    for (batch, frames) in frames.chunks(HOSTILE_BATCH).enumerate() {
        for frame in frames {
            injector.send(&frame.bytes).map_err(|error| {
                format!("injecting hostile frame {sent} ({}): {error}", frame.kind)
            })?;
            sent += 1;
        }
        udp_round_trips(&udp, ECHO_PORT, 1, 100 + batch as u64, &mut late_replies)
            .map_err(|error| format!("after {sent} hostile frames: {error}"))?;
    }

    udp_round_trips(&udp, ECHO_PORT, ROUND_TRIPS_AROUND, 12, &mut late_replies)
        .map_err(|error| format!("after all {sent} hostile frames: {error}"))?;
    echo_stream(held, MALFORMED_STREAM, 13, held_name)?;
    echo_stream(
        host.tcp(ECHO_PORT)?,
        MALFORMED_STREAM,
        14,
        "the TCP connection after the hostile frames",
    )?;
    finish_udp_echo(host, &udp, MALFORMED_UDP_COUNT)?;
    expect_tcp_echo_served(host, MALFORMED_TCP_CONNECTIONS, 3 * MALFORMED_STREAM)?;

    // Sent beside the user-mode network, which may drop some: at least one must count.
    echo_stacks_after_hostile_frames(host, &frames, false).map(drop)
}

/// udp-echo's and tcp-echo's stack lines (in that order) after `frames`, each noted with
/// how many of them were aimed at its port. Each stack must have counted malformed frames:
/// every one aimed at it when `all_arrive`, else at least one.
pub fn echo_stacks_after_hostile_frames(
    host: &HostSide,
    frames: &[HostileFrame],
    all_arrive: bool,
) -> Result<[StackCounts; 2], String> {
    let aimed = |fate| frames.iter().filter(|frame| frame.fate == fate).count() as u64;
    let counted = |(stack, fate)| {
        let line = host.serial_line(stack)?;
        let counts = StackCounts::parse(&line)?;
        let sent = aimed(fate);
        host.note(format!("{line} ({sent} malformed frames were aimed at it)"));
        let enough = if all_arrive { sent } else { 1 };
        if counts.malformed < enough {
            return Err(format!(
                "{line:?}: {} malformed frames counted, though {sent} were sent to its port",
                counts.malformed
            ));
        }
        Ok(counts)
    };
    Ok([
        counted((UDP_ECHO_STACK, Fate::MalformedForUdp))?,
        counted((TCP_ECHO_STACK, Fate::MalformedForTcp))?,
    ])
}

/// A server's statistics line (`libos_posixish::net::report`): `NAME: stack: frames in X,
/// out Y, malformed M (truncated a, bad checksum b, bad header c), send errors e, system
/// calls s, half-open connections dropped h (path: P); since it started, the kernel was
/// entered E times, ...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackCounts {
    pub frames_in: u64,
    pub frames_out: u64,
    pub malformed: u64,
    pub truncated: u64,
    pub bad_checksum: u64,
    pub bad_header: u64,
    /// The stack's system calls on its data path (`NetSend`, `NetReceive`, `NetKick`).
    pub system_calls: u64,
    /// Half-open TCP connections given up to make room for a new request in a full backlog.
    pub half_open_dropped: u64,
    /// Entries into the kernel, by any program, since the stack started.
    pub kernel_entries: u64,
}

impl StackCounts {
    pub fn parse(line: &str) -> Result<Self, String> {
        let mut rest = line
            .split_once(": stack: ")
            .map(|(_, rest)| rest)
            .ok_or_else(|| format!("not a statistics line: {line:?}"))?;
        let mut next = |label: &str| -> Result<u64, String> {
            let after = rest
                .split_once(label)
                .map(|(_, after)| after)
                .ok_or_else(|| format!("no `{label}` in the statistics line {line:?}"))?;
            let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            rest = &after[digits..];
            after[..digits]
                .parse()
                .map_err(|_| format!("no number after `{label}` in {line:?}"))
        };
        Ok(StackCounts {
            frames_in: next("frames in ")?,
            frames_out: next(", out ")?,
            malformed: next(", malformed ")?,
            truncated: next(" (truncated ")?,
            bad_checksum: next(", bad checksum ")?,
            bad_header: next(", bad header ")?,
            system_calls: next(", system calls ")?,
            half_open_dropped: next(", half-open connections dropped ")?,
            kernel_entries: next("the kernel was entered ")?,
        })
    }
}

// net-run-servers -------------------------------------------------------------------------

/// What the shell prints when QEMU's DHCP server has leased it the address.
pub const DHCP_LEASE: &str = "net: 10.0.2.15/24 via 10.0.2.2, leased from 10.0.2.2 (DHCP)";
/// What `ping -c 3` prints when every echo came back.
pub const PING_ANSWERED: &str = "ping: 3 sent, 3 received";

/// net-run-servers: the guest boots as `cargo xtask run` boots it, the shell leasing the
/// address by DHCP and starting the servers from its rc file. Each answers on its default
/// port, and `ping` typed into the shell gets its replies while a server's stack answers
/// pings for the address; then the console's input ends, as `cargo xtask run </dev/null`
/// ends it, and the run must end too.
pub fn servers_from_rc(host: &HostSide) -> Result<(), String> {
    for ready in [DHCP_LEASE, HTTPD_READY, TCP_ECHO_READY, UDP_ECHO_READY] {
        host.wait_for(ready)?;
    }
    host.type_into_console(b"ping -c 3 10.0.2.2\n")?;
    host.wait_for(PING_ANSWERED)?;
    let base = format!("http://{}", host.address(Protocol::Tcp, HTTP_PORT)?);
    expect_index(&format!("{base}/"))?;
    let udp = host.udp(ECHO_PORT)?;
    udp_round_trips(&udp, ECHO_PORT, 3, 20, &mut Vec::new())?;
    echo_stream(host.tcp(ECHO_PORT)?, 1000, 21, "the TCP connection")?;
    host.type_into_console(&[END_OF_INPUT])
}

// net-discard -----------------------------------------------------------------------------

/// tcp-discard's port in net-discard: its default.
pub const DISCARD_PORT: u16 = servers::DISCARD_GUEST_PORT;
pub const TCP_DISCARD_READY: &str = "tcp-discard: listening on tcp port 9";
pub const TCP_DISCARD_STACK: &str = "tcp-discard: stack:";
/// net-discard's TCP connections and what each sends: a short message, then more than the
/// server's receive window.
const DISCARD_STREAMS: [usize; 2] = [100, 256 * 1024];
pub const DISCARD_CONNECTIONS: usize = DISCARD_STREAMS.len();

/// net-discard: a Linux client's streams are read to their end by tcp-discard, which sends
/// nothing back and closes each connection once the client has shut down its side.
pub fn streams_into_tcp_discard(host: &HostSide) -> Result<(), String> {
    host.wait_for(TCP_DISCARD_READY)?;
    for (index, length) in DISCARD_STREAMS.into_iter().enumerate() {
        let name = format!("TCP connection {} ({length} bytes)", index + 1);
        let context = |error: std::io::Error| format!("{name}: {error}");
        let mut stream = host.tcp(DISCARD_PORT)?;
        stream
            .set_read_timeout(Some(echo::STREAM_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(echo::STREAM_TIMEOUT)))
            .map_err(context)?;
        let payload: Vec<u8> = (0..length).map(|offset| (offset % 251) as u8).collect();
        stream.write_all(&payload).map_err(context)?;
        stream.shutdown(Shutdown::Write).map_err(context)?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).map_err(context)?;
        if !answer.is_empty() {
            return Err(format!(
                "{name}: the discard server sent {} bytes back; it must send none",
                answer.len()
            ));
        }
    }
    let line = host.serial_line("tcp-discard: served ")?;
    let bytes: usize = DISCARD_STREAMS.iter().sum();
    let expected =
        format!("tcp-discard: served {DISCARD_CONNECTIONS} connections, {bytes} bytes discarded");
    if line != expected {
        return Err(format!("tcp-discard said {line:?}, expected {expected:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_server_kicks_at_least_once_and_at_most_once_a_frame_sent() {
        let line = |calls: u64, path: &str| {
            format!(
                "udp-echo: stack: frames in 40, out 30, malformed 0 (truncated 0, bad checksum \
                 0, bad header 0), send errors 0, system calls {calls}, half-open connections \
                 dropped 0 (path: {path}); since it started, the kernel was entered 90 times, \
                 70 of them system calls (all programs)"
            )
        };
        let after_polls = "rings, kicked after each poll";
        assert!(expect_kicked_after_polls(&line(1, after_polls)).is_ok());
        assert!(expect_kicked_after_polls(&line(30, after_polls)).is_ok());
        assert!(expect_kicked_after_polls(&line(0, after_polls)).is_err());
        assert!(expect_kicked_after_polls(&line(31, after_polls)).is_err());
        assert!(expect_kicked_after_polls(&line(3, "rings, sent at the next entry")).is_err());
        assert!(expect_kicked_after_polls(&line(70, "system calls")).is_err());
    }

    #[test]
    fn statistics_lines_are_read_field_by_field() {
        let line = "udp-echo: stack: frames in 512, out 31, malformed 70 (truncated 20, bad \
                    checksum 40, bad header 10), send errors 0, system calls 14, half-open \
                    connections dropped 3 (path: rings); \
                    since it started, the kernel was entered 9001 times, 77 of them system \
                    calls (all programs)";
        assert_eq!(
            StackCounts::parse(line),
            Ok(StackCounts {
                frames_in: 512,
                frames_out: 31,
                malformed: 70,
                truncated: 20,
                bad_checksum: 40,
                bad_header: 10,
                system_calls: 14,
                half_open_dropped: 3,
                kernel_entries: 9001,
            })
        );
        let error = StackCounts::parse("udp-echo: stack: frames in 5, out 5").unwrap_err();
        assert!(
            error.starts_with("no `, malformed ` in the statistics line"),
            "{error}"
        );
        assert!(StackCounts::parse("udp-echo: echoed 5 datagrams").is_err());
        assert!(StackCounts::parse("x: stack: frames in many, out 1").is_err());
    }

    #[test]
    fn malformed_counts_fit_the_frames() {
        let frames = hostile_frames(ECHO_PORT).len();
        let checked = 2 * ROUND_TRIPS_AROUND + frames.div_ceil(HOSTILE_BATCH);
        assert!(MALFORMED_UDP_COUNT > checked, "{checked} datagrams checked");
    }
}
