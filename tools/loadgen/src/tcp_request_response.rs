//! The TCP request/response driver: one connection to an echo server, requests written one
//! at a time, each answered in full before the next, timed.
//!
//! Requests are filled with bytes that depend on their number, so a response is checked
//! whole against its request. Nagle's algorithm is off so each request leaves at once.
//!
//! Packets: the data-carrying segments of every exchange, warm-up included, each request
//! and each response split at [`GUEST_TCP_SEGMENT`](crate::GUEST_TCP_SEGMENT) bytes. The
//! handshake, the teardown and pure acknowledgements are not counted: they depend on the
//! stacks' timers, not on the load.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::{Error, LatencySummary, segments_for};

/// The largest request: the driver writes a whole request before reading its echo, so both
/// must fit in the sockets' buffers along the way.
const MAX_REQUEST: usize = 64 * 1024;

/// How a request/response run goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestResponseOptions {
    /// Measured exchanges.
    pub count: u32,
    /// Bytes of each request, and so of each response: 1 to 65 536.
    pub size: usize,
    /// Exchanges done first and not measured.
    pub warmup: u32,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long one write or read may wait for progress.
    pub io_timeout: Duration,
}

impl Default for RequestResponseOptions {
    /// 1000 exchanges of 64 bytes after 50 of warm-up; timeouts sized for a guest under
    /// software emulation.
    fn default() -> Self {
        RequestResponseOptions {
            count: 1000,
            size: 64,
            warmup: 50,
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(10),
        }
    }
}

/// What a request/response run measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RequestResponseReport {
    /// Measured exchanges, all of them complete.
    pub transactions: u64,
    /// From the first measured request's write to the last response's last byte.
    pub seconds: f64,
    pub transactions_per_second: f64,
    /// Each exchange's time from writing its request to reading the last byte of its echo.
    pub latency: LatencySummary,
    /// Data segments both ways over the whole call, warm-up included.
    pub packets: u64,
}

/// Connects to the TCP echo server at `target` and runs `options.warmup`, then
/// `options.count` exchanges over that one connection.
pub fn tcp_request_response(
    target: SocketAddr,
    options: RequestResponseOptions,
) -> Result<RequestResponseReport, Error> {
    if options.count == 0 {
        return Err(Error::InvalidOptions("count must be at least 1".into()));
    }
    if !(1..=MAX_REQUEST).contains(&options.size) {
        return Err(Error::InvalidOptions(format!(
            "a request holds 1 to {MAX_REQUEST} bytes, not {}",
            options.size
        )));
    }
    let mut stream = connect(target, options.connect_timeout, options.io_timeout)?;
    let mut request = vec![0; options.size];
    let mut response = vec![0; options.size];
    let mut exchange = |number: u64| -> Result<Duration, Error> {
        for (place, byte) in request.iter_mut().enumerate() {
            *byte = (number as u8).wrapping_mul(17).wrapping_add(place as u8);
        }
        let what = format!("exchange {number}");
        let io = |step: &str| {
            let what = format!("{what}: {step}");
            move |source| Error::from_io(&what, target, options.io_timeout, source)
        };
        let started = Instant::now();
        stream
            .write_all(&request)
            .map_err(io("write the request"))?;
        read_exactly(&mut stream, &mut response).map_err(|error| match error {
            ReadError::Closed(received) => Error::ShortRead {
                target,
                expected: options.size,
                received,
            },
            ReadError::Io(source) => io("read the echo")(source),
        })?;
        let round_trip = started.elapsed();
        if response != request {
            return Err(Error::WrongEcho {
                target,
                what: format!("{what}: the response differs from the request"),
            });
        }
        Ok(round_trip)
    };
    for number in 0..u64::from(options.warmup) {
        exchange(number)?;
    }
    let first = u64::from(options.warmup);
    let started = Instant::now();
    let samples = (first..first + u64::from(options.count))
        .map(&mut exchange)
        .collect::<Result<Vec<_>, _>>()?;
    let seconds = started.elapsed().as_secs_f64();
    let exchanges = u64::from(options.warmup) + u64::from(options.count);
    Ok(RequestResponseReport {
        transactions: u64::from(options.count),
        seconds,
        transactions_per_second: f64::from(options.count) / seconds,
        latency: LatencySummary::from_samples(&samples).expect("count is at least 1"),
        packets: exchanges * 2 * segments_for(options.size as u64),
    })
}

/// Connects to `target` with Nagle's algorithm off and `io_timeout` on reads and writes.
pub(crate) fn connect(
    target: SocketAddr,
    connect_timeout: Duration,
    io_timeout: Duration,
) -> Result<TcpStream, Error> {
    let stream = TcpStream::connect_timeout(&target, connect_timeout)
        .map_err(|source| Error::from_io("connect", target, connect_timeout, source))?;
    let set_up = |source| Error::from_io("set up the connection", target, io_timeout, source);
    stream.set_nodelay(true).map_err(set_up)?;
    stream.set_read_timeout(Some(io_timeout)).map_err(set_up)?;
    stream.set_write_timeout(Some(io_timeout)).map_err(set_up)?;
    Ok(stream)
}

/// Why [`read_exactly`] stopped short.
enum ReadError {
    /// The peer closed the connection after this many bytes.
    Closed(usize),
    Io(std::io::Error),
}

/// Fills `buffer` from `stream`; unlike `read_exact`, says how much came before a close.
fn read_exactly(stream: &mut TcpStream, buffer: &mut [u8]) -> Result<(), ReadError> {
    let mut filled = 0;
    while filled < buffer.len() {
        match stream.read(&mut buffer[filled..]) {
            Ok(0) => return Err(ReadError::Closed(filled)),
            Ok(length) => filled += length,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(ReadError::Io(error)),
        }
    }
    Ok(())
}
