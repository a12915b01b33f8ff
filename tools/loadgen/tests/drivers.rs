//! The three drivers run for real against servers in this process on 127.0.0.1: a UDP echo
//! server (one that can drop datagrams and answer twice), a TCP echo server and a TCP
//! discard server, each a thread.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use exo_loadgen::{
    BulkOptions, Error, RequestResponseOptions, UdpEchoOptions, tcp_bulk, tcp_request_response,
    udp_echo,
};

/// How the test UDP echo server misbehaves: it drops every `drop_every`-th datagram (0:
/// none) and answers the one after each drop twice, the second time late.
fn udp_echo_server(drop_every: u64) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = socket.local_addr().unwrap();
    thread::spawn(move || {
        let mut buffer = [0; 65_536];
        let mut seen = 0u64;
        let mut previous_dropped = false;
        while let Ok((length, peer)) = socket.recv_from(&mut buffer) {
            seen += 1;
            if drop_every != 0 && seen.is_multiple_of(drop_every) {
                previous_dropped = true;
                continue;
            }
            let _ = socket.send_to(&buffer[..length], peer);
            if previous_dropped {
                let _ = socket.send_to(&buffer[..length], peer);
                previous_dropped = false;
            }
        }
    });
    address
}

/// A TCP server on its own thread that runs `serve` on each connection in turn.
fn tcp_server(serve: fn(TcpStream)) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || serve(stream));
        }
    });
    address
}

fn echo(mut stream: TcpStream) {
    let mut buffer = [0; 8192];
    while let Ok(length @ 1..) = stream.read(&mut buffer) {
        if stream.write_all(&buffer[..length]).is_err() {
            return;
        }
    }
}

fn discard(mut stream: TcpStream) {
    let _ = std::io::copy(&mut stream, &mut std::io::sink());
}

/// A port that was just free: bound, then let go.
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[test]
fn udp_echo_measures_every_datagram_of_a_faithful_server() {
    let target = udp_echo_server(0);
    let options = UdpEchoOptions {
        count: 200,
        size: 100,
        warmup: 10,
        ..UdpEchoOptions::default()
    };
    let report = udp_echo(target, options).unwrap();
    assert_eq!((report.sent, report.received, report.lost), (200, 200, 0));
    assert_eq!(report.packets, 2 * 210);
    let latency = report.latency.unwrap();
    assert_eq!(latency.samples, 200);
    assert!(latency.min_us > 0.0);
    assert!(latency.min_us <= latency.p50_us && latency.p50_us <= latency.p99_us);
    assert!(latency.p99_us <= latency.max_us && latency.mean_us <= latency.max_us);
}

#[test]
fn udp_echo_counts_losses_and_ignores_late_duplicates() {
    let target = udp_echo_server(10);
    let options = UdpEchoOptions {
        count: 50,
        size: 8,
        warmup: 0,
        reply_timeout: Duration::from_millis(300),
        ..UdpEchoOptions::default()
    };
    let report = udp_echo(target, options).unwrap();
    assert_eq!((report.sent, report.received, report.lost), (50, 45, 5));
    // Each answered datagram after a drop (4 of them in 50) was echoed twice; the second
    // echo is read while waiting for the next datagram's, and ignored.
    assert_eq!(report.packets, 50 + 45 + 4);
    assert_eq!(report.latency.unwrap().samples, 45);
}

#[test]
fn udp_echo_gives_up_on_a_silent_server() {
    // A socket that is bound but never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let options = UdpEchoOptions {
        count: 100,
        reply_timeout: Duration::from_millis(20),
        give_up_after: 3,
        ..UdpEchoOptions::default()
    };
    let error = udp_echo(silent.local_addr().unwrap(), options).unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error}");
}

#[test]
fn udp_echo_rejects_a_datagram_too_small_for_its_sequence_number() {
    let options = UdpEchoOptions {
        size: 7,
        ..UdpEchoOptions::default()
    };
    let error = udp_echo(closed_port(), options).unwrap_err();
    assert!(matches!(error, Error::InvalidOptions(_)), "{error}");
}

#[test]
fn tcp_request_response_measures_every_exchange() {
    let target = tcp_server(echo);
    let options = RequestResponseOptions {
        count: 300,
        size: 3000,
        warmup: 5,
        ..RequestResponseOptions::default()
    };
    let report = tcp_request_response(target, options).unwrap();
    assert_eq!(report.transactions, 300);
    assert_eq!(report.latency.samples, 300);
    assert!(report.seconds > 0.0);
    let rate = 300.0 / report.seconds;
    assert!((report.transactions_per_second - rate).abs() < 1e-6 * rate);
    // 3000 bytes are 3 segments of at most 1460, each way, for 305 exchanges.
    assert_eq!(report.packets, 305 * 2 * 3);
}

#[test]
fn tcp_request_response_sees_a_server_that_hangs_up() {
    let target = tcp_server(|mut stream| {
        let mut buffer = [0; 100];
        let _ = stream.read_exact(&mut buffer);
        let _ = stream.write_all(&buffer[..10]);
    });
    let options = RequestResponseOptions {
        size: 100,
        ..RequestResponseOptions::default()
    };
    match tcp_request_response(target, options) {
        Err(Error::ShortRead {
            expected, received, ..
        }) => assert_eq!((expected, received), (100, 10)),
        other => panic!("expected a short read, got {other:?}"),
    }
}

#[test]
fn tcp_drivers_report_a_refused_connection() {
    let target = closed_port();
    let error = tcp_request_response(target, RequestResponseOptions::default()).unwrap_err();
    assert!(matches!(error, Error::Refused { .. }), "{error}");
    let error = tcp_bulk(target, BulkOptions::default()).unwrap_err();
    assert!(matches!(error, Error::Refused { .. }), "{error}");
}

#[test]
fn tcp_bulk_ends_when_the_server_has_read_every_byte() {
    static TAKEN: AtomicU64 = AtomicU64::new(0);
    let target = tcp_server(|mut stream| {
        let taken = std::io::copy(&mut stream, &mut std::io::sink()).unwrap();
        TAKEN.store(taken, Ordering::SeqCst);
    });
    let options = BulkOptions {
        bytes: 5_000_000,
        write_size: 100_000,
        ..BulkOptions::default()
    };
    let report = tcp_bulk(target, options).unwrap();
    // The server stored its count before closing, and the driver returned after the close.
    assert_eq!(TAKEN.load(Ordering::SeqCst), 5_000_000);
    assert_eq!(report.bytes, 5_000_000);
    assert_eq!(report.packets, 5_000_000u64.div_ceil(1460));
    let megabits = 5_000_000.0 * 8.0 / 1e6 / report.seconds;
    assert!((report.megabits_per_second - megabits).abs() < 1e-6 * megabits);
    let ratio = report.megabits_per_second / report.mebibytes_per_second;
    assert!((ratio - 8.0 * 1.048_576).abs() < 1e-9);
}

#[test]
fn tcp_bulk_runs_its_defaults_against_a_discard_server() {
    let report = tcp_bulk(tcp_server(discard), BulkOptions::default()).unwrap();
    assert_eq!(report.bytes, 16 << 20);
}
