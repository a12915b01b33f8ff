//! Checking an echo server from the host: UDP datagrams and TCP streams must come back
//! byte for byte. The payloads are pseudo-random from a seed, so a long stream is checked
//! against itself regenerated, never stored.
//!
//! Each check returns a precise reason on failure (which datagram, which connection, the
//! first offset that differs); none looks at the guest's serial output.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use crate::host::kernel_network::{exchange, quoted};
use crate::host::pseudo_random::PseudoRandom;

/// How long a TCP read or write may make no progress: far longer than a guest under TCG
/// needs, and only reached when something is stuck. A guest that dies closes its
/// connections, which ends a wait at once.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one datagram's echo may take before it is sent again.
const DATAGRAM_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes written or compared at a time.
const CHUNK: usize = 64 * 1024;
/// The largest UDP payload that fits an Ethernet frame unfragmented (1500 - 20 - 8).
pub const LARGEST_DATAGRAM: usize = 1472;

/// Sends `count` datagrams of pseudo-random bytes (from `seed`, of lengths from 1 to
/// [`LARGEST_DATAGRAM`]) on `socket` and checks that each comes back unchanged.
/// `late_replies` carries, from one call to the next on the same socket, echoes of
/// datagrams sent twice (see [`exchange`]).
pub fn udp_round_trips(
    socket: &UdpSocket,
    guest_port: u16,
    count: usize,
    seed: u64,
    late_replies: &mut Vec<Vec<u8>>,
) -> Result<(), String> {
    let mut random = PseudoRandom::new(seed);
    for index in 0..count {
        // The first datagrams are the extremes; the rest any length.
        let length = match index {
            0 => 1,
            1 => LARGEST_DATAGRAM,
            _ => random.below(1..LARGEST_DATAGRAM + 1),
        };
        let datagram = random.bytes(length);
        exchange(
            socket,
            guest_port,
            &datagram,
            &datagram,
            late_replies,
            DATAGRAM_TIMEOUT,
        )?;
    }
    Ok(())
}

/// How an echoed stream went.
#[derive(Clone, Copy, Debug)]
pub struct StreamEcho {
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Writes `length` pseudo-random bytes (from `seed`) on `stream` from a second thread while
/// this one reads them back and compares, then shuts down the writing half and expects the
/// server to close its side once it has echoed everything. `name` says which connection in
/// messages.
pub fn echo_stream(
    stream: TcpStream,
    length: u64,
    seed: u64,
    name: &str,
) -> Result<StreamEcho, String> {
    let started = Instant::now();
    let context = |error: std::io::Error| format!("{name}: {error}");
    stream
        .set_read_timeout(Some(STREAM_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(STREAM_TIMEOUT)))
        .map_err(context)?;
    let mut writing = stream.try_clone().map_err(context)?;
    let writer_name = name.to_string();
    let writer = thread::spawn(move || -> Result<(), String> {
        let mut random = PseudoRandom::new(seed);
        let mut buffer = vec![0; CHUNK];
        let mut written = 0;
        while written < length {
            let piece = &mut buffer[..CHUNK.min((length - written) as usize)];
            random.fill(piece);
            writing.write_all(piece).map_err(|error| {
                format!("{writer_name}: writing at offset {written} of {length}: {error}")
            })?;
            written += piece.len() as u64;
        }
        writing
            .shutdown(Shutdown::Write)
            .map_err(|error| format!("{writer_name}: ending the stream: {error}"))
    });
    let read = read_back(&stream, length, seed, name);
    // A failed read leaves the writer perhaps blocked on a full window: closing the
    // connection ends its write at once.
    if read.is_err() {
        let _ = stream.shutdown(Shutdown::Both);
    }
    let written = writer
        .join()
        .unwrap_or_else(|_| Err(format!("{name}: the writing thread panicked")));
    read?;
    written?;
    Ok(StreamEcho {
        bytes: length,
        elapsed: started.elapsed(),
    })
}

/// Reads `length` bytes from `stream`, comparing them with the stream from `seed`, then
/// expects its end.
fn read_back(stream: &TcpStream, length: u64, seed: u64, name: &str) -> Result<(), String> {
    let mut random = PseudoRandom::new(seed);
    let mut received = vec![0; CHUNK];
    let mut expected = vec![0; CHUNK];
    let mut offset = 0;
    let mut reader = stream;
    while offset < length {
        let wanted = CHUNK.min((length - offset) as usize);
        let count = match reader.read(&mut received[..wanted]) {
            Ok(0) => {
                return Err(format!(
                    "{name}: the server closed the connection after echoing {offset} of \
                     {length} bytes"
                ));
            }
            Ok(count) => count,
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!(
                    "{name}: nothing echoed for {} s after {offset} of {length} bytes",
                    STREAM_TIMEOUT.as_secs()
                ));
            }
            Err(error) => {
                return Err(format!(
                    "{name}: reading the echo after {offset} of {length} bytes: {error}"
                ));
            }
        };
        random.fill(&mut expected[..count]);
        if let Some(index) = (0..count).find(|&index| received[index] != expected[index]) {
            return Err(format!(
                "{name}: the echo differs at offset {}: expected byte {:#04x}, got {:#04x}",
                offset + index as u64,
                expected[index],
                received[index]
            ));
        }
        offset += count as u64;
    }
    expect_end(reader, name, &format!("all {length} bytes"))
}

/// Reads from `stream` and expects the server's end of the stream, nothing more; `after`
/// says what came before, for messages.
pub fn expect_end(mut stream: &TcpStream, name: &str, after: &str) -> Result<(), String> {
    let mut extra = [0u8; 64];
    match stream.read(&mut extra) {
        Ok(0) => Ok(()),
        Ok(count) => Err(format!(
            "{name}: {count} bytes more than were sent came back after {after}: {}",
            quoted(&extra[..count])
        )),
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            Err(format!(
                "{name}: the server did not close its side within {} s of echoing {after}",
                STREAM_TIMEOUT.as_secs()
            ))
        }
        Err(error) => Err(format!(
            "{name}: waiting for the end after {after}: {error}"
        )),
    }
}

/// The payload of connection `index` of many: its number, then pseudo-random bytes, so a
/// reply from the wrong connection shows.
pub fn connection_payload(index: usize, length: usize) -> Vec<u8> {
    let mut payload = format!("connection {index}:").into_bytes();
    let rest = length.saturating_sub(payload.len());
    payload.extend(PseudoRandom::new(index as u64).bytes(rest));
    payload
}

/// Opens `count` connections with `connect` (given each one's index), one at a time: each
/// must echo the first byte of its [`connection_payload`] before the next is opened, which
/// shows that the server holds it. One at a time, too, because QEMU's user network accepts
/// forwarded connections with a backlog of one: a connection asked for before it took the
/// last one waits out the host's SYN retransmissions, a second and more.
pub fn open_echoing(
    count: usize,
    payload_length: usize,
    mut connect: impl FnMut(usize) -> Result<TcpStream, String>,
) -> Result<Vec<TcpStream>, String> {
    let mut streams = Vec::with_capacity(count);
    for index in 0..count {
        let name = format!("connection {index}");
        let stream = connect(index).map_err(|error| format!("opening {name}: {error}"))?;
        stream
            .set_read_timeout(Some(STREAM_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(STREAM_TIMEOUT)))
            .map_err(|error| format!("{name}: {error}"))?;
        let first = connection_payload(index, payload_length)[..1].to_vec();
        let mut echoed = [0u8; 1];
        (&stream)
            .write_all(&first)
            .and_then(|()| (&stream).read_exact(&mut echoed))
            .map_err(|error| {
                format!("{name} (with {index} open): echoing its first byte: {error}")
            })?;
        if echoed[..] != first[..] {
            return Err(format!(
                "{name}: sent {}, the echo was {}",
                quoted(&first),
                quoted(&echoed)
            ));
        }
        streams.push(stream);
    }
    Ok(streams)
}

/// With every stream of `streams` open and the first byte of its [`connection_payload`]
/// echoed (see [`open_echoing`]): writes each the rest, reads each back exactly, then
/// shuts down each one's writing half and expects the server to close. Returns the bytes
/// echoed in all.
pub fn echo_on_every_connection(
    streams: &[TcpStream],
    payload_length: usize,
) -> Result<u64, String> {
    for (index, stream) in streams.iter().enumerate() {
        (&*stream)
            .write_all(&connection_payload(index, payload_length)[1..])
            .map_err(|error| format!("connection {index}: sending its payload: {error}"))?;
    }
    let mut received = vec![0; payload_length];
    for (index, stream) in streams.iter().enumerate() {
        let name = format!("connection {index} of {}", streams.len());
        let expected = connection_payload(index, payload_length);
        // The first byte came back when the connection was opened.
        received[0] = expected[0];
        (&*stream)
            .read_exact(&mut received[1..])
            .map_err(|error| match error.kind() {
                ErrorKind::UnexpectedEof => format!(
                    "{name}: the server closed it before echoing all {payload_length} bytes"
                ),
                _ => format!("{name}: reading the echo: {error}"),
            })?;
        if let Some(offset) = (0..payload_length).find(|&at| received[at] != expected[at]) {
            let shown = |bytes: &[u8]| quoted(&bytes[offset..payload_length.min(offset + 24)]);
            return Err(format!(
                "{name}: the echo differs at offset {offset}: expected {}, got {}",
                shown(&expected),
                shown(&received)
            ));
        }
    }
    for (index, stream) in streams.iter().enumerate() {
        stream
            .shutdown(Shutdown::Write)
            .map_err(|error| format!("connection {index}: ending it: {error}"))?;
    }
    for (index, stream) in streams.iter().enumerate() {
        expect_end(stream, &format!("connection {index}"), "its payload")?;
    }
    Ok((streams.len() * payload_length) as u64)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, TcpListener};

    use super::*;

    /// A stand-in for tcp-echo: echoes `connections` connections, each on its own thread,
    /// closing each when its peer has finished; flips the byte at `corrupt_at`, if any.
    fn tcp_echo(connections: usize, corrupt_at: Option<usize>) -> (u16, thread::JoinHandle<()>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let serving = thread::spawn(move || {
            let mut echoes = Vec::new();
            for _ in 0..connections {
                let (mut stream, _) = listener.accept().unwrap();
                echoes.push(thread::spawn(move || {
                    let mut buffer = [0u8; 4096];
                    let mut offset = 0;
                    loop {
                        let count = match stream.read(&mut buffer) {
                            Ok(0) | Err(_) => break,
                            Ok(count) => count,
                        };
                        if let Some(at) = corrupt_at
                            && (offset..offset + count).contains(&at)
                        {
                            buffer[at - offset] ^= 0xff;
                        }
                        if stream.write_all(&buffer[..count]).is_err() {
                            break;
                        }
                        offset += count;
                    }
                }));
            }
            for echo in echoes {
                echo.join().unwrap();
            }
        });
        (port, serving)
    }

    fn connect(port: u16) -> TcpStream {
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap()
    }

    #[test]
    fn a_stream_comes_back_whole() {
        let (port, serving) = tcp_echo(1, None);
        let echo = echo_stream(connect(port), 3 * CHUNK as u64 + 5, 9, "bulk").unwrap();
        assert_eq!(echo.bytes, 3 * CHUNK as u64 + 5);
        serving.join().unwrap();
    }

    #[test]
    fn the_first_differing_offset_is_named() {
        let (port, serving) = tcp_echo(1, Some(100_000));
        let error = echo_stream(connect(port), 200_000, 9, "bulk").unwrap_err();
        assert!(
            error.starts_with("bulk: the echo differs at offset 100000: expected byte 0x"),
            "{error}"
        );
        serving.join().unwrap();
    }

    #[test]
    fn a_server_that_closes_early_is_reported() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let closing = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buffer = [0u8; 10];
            stream.read_exact(&mut buffer).unwrap();
            stream.write_all(&buffer).unwrap();
        });
        let error = echo_stream(connect(port), 1000, 9, "short").unwrap_err();
        closing.join().unwrap();
        // Closed with unread bytes, the server's side resets rather than ends the stream.
        assert!(
            error.starts_with("short: the server closed the connection after echoing 10 of 1000")
                || error.starts_with("short: reading the echo after 10 of 1000 bytes: "),
            "{error}"
        );
    }

    #[test]
    fn every_connection_echoes_its_own_payload() {
        let (port, serving) = tcp_echo(20, None);
        let streams = open_echoing(20, 300, |_| Ok(connect(port))).unwrap();
        assert_eq!(echo_on_every_connection(&streams, 300), Ok(6000));
        serving.join().unwrap();
        assert!(connection_payload(3, 300).starts_with(b"connection 3:"));
        assert_ne!(connection_payload(3, 300), connection_payload(4, 300));
    }

    #[test]
    fn udp_datagrams_come_back_unchanged() {
        let server = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let client = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        client.connect(server.local_addr().unwrap()).unwrap();
        let serving = thread::spawn(move || {
            let mut buffer = [0u8; 2048];
            for _ in 0..5 {
                let (count, from) = server.recv_from(&mut buffer).unwrap();
                server.send_to(&buffer[..count], from).unwrap();
            }
        });
        assert_eq!(udp_round_trips(&client, 7, 5, 1, &mut Vec::new()), Ok(()));
        serving.join().unwrap();
    }
}
