//! The TCP bulk driver: one connection's worth of bytes into a discard server, timed until
//! the server has taken them all.
//!
//! The client writes its bytes in large writes, shuts down its sending half and waits for
//! the server's end of file: a discard server closes only after reading to the end, so the
//! time covers every byte arriving, not just leaving the host's buffers. Connecting is not
//! timed.
//!
//! Packets: the data-carrying segments into the guest, the bytes split at
//! [`GUEST_TCP_SEGMENT`](crate::GUEST_TCP_SEGMENT). The guest's acknowledgements, the
//! handshake and the teardown are not counted.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use crate::tcp_request_response::connect;
use crate::{Error, segments_for};

/// How a bulk run goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BulkOptions {
    /// Bytes to send, at least 1.
    pub bytes: u64,
    /// Bytes handed to the socket in one write, at least 1.
    pub write_size: usize,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long one write, or the wait for the server's end of file, may go without
    /// progress.
    pub io_timeout: Duration,
}

impl Default for BulkOptions {
    /// 16 MiB in writes of 256 KiB; timeouts sized for a guest under software emulation.
    fn default() -> Self {
        BulkOptions {
            bytes: 16 << 20,
            write_size: 256 << 10,
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(30),
        }
    }
}

/// What a bulk run measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BulkReport {
    pub bytes: u64,
    /// From the first write to the server's end of file.
    pub seconds: f64,
    /// Megabits (10⁶ bits) per second.
    pub megabits_per_second: f64,
    /// Mebibytes (2²⁰ bytes) per second.
    pub mebibytes_per_second: f64,
    /// Data segments into the guest.
    pub packets: u64,
}

/// Sends `options.bytes` to the TCP discard server at `target` and waits until it has read
/// them all.
pub fn tcp_bulk(target: SocketAddr, options: BulkOptions) -> Result<BulkReport, Error> {
    if options.bytes == 0 || options.write_size == 0 {
        return Err(Error::InvalidOptions(
            "bytes and write size must be at least 1".into(),
        ));
    }
    let mut stream = connect(target, options.connect_timeout, options.io_timeout)?;
    let io =
        |what: &'static str| move |source| Error::from_io(what, target, options.io_timeout, source);
    let block: Vec<u8> = (0..options.write_size).map(|place| place as u8).collect();
    let started = Instant::now();
    let mut left = options.bytes;
    while left > 0 {
        let length = block.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        stream.write_all(&block[..length]).map_err(io("write"))?;
        left -= length as u64;
    }
    stream
        .shutdown(Shutdown::Write)
        .map_err(io("shut down sending"))?;
    // A discard server sends nothing; whatever it might is read and dropped.
    let mut sink = [0; 4096];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(io("wait for the server's end of file")(error)),
        }
    }
    // Never zero, so the rates stay finite however fast the host is.
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    Ok(BulkReport {
        bytes: options.bytes,
        seconds,
        megabits_per_second: options.bytes as f64 * 8.0 / 1e6 / seconds,
        mebibytes_per_second: options.bytes as f64 / f64::from(1u32 << 20) / seconds,
        packets: segments_for(options.bytes),
    })
}
