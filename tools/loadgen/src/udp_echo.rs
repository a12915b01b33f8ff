//! The UDP echo driver: datagrams sent one at a time, each waiting for its echo, timed.
//!
//! Each datagram starts with its sequence number (8 bytes, little-endian) followed by a
//! filler that depends on it, so an echo is matched to its datagram and checked whole. A
//! reply that comes after its datagram was given up for lost, or twice, carries an old
//! sequence number and is ignored. The driver never sends a datagram before the last one's
//! echo came back or timed out, so at most one is in flight besides stragglers.
//!
//! Packets: every datagram sent and every echo received during the call, warm-up included:
//! each is one frame through the guest's interface.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::{Error, LatencySummary};

/// The bytes of the sequence number at the start of each datagram.
const SEQUENCE_BYTES: usize = 8;

/// How a UDP echo run goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpEchoOptions {
    /// Measured datagrams.
    pub count: u32,
    /// Payload bytes of each datagram, at least 8 (the sequence number) and at most 65 507.
    pub size: usize,
    /// Datagrams sent first and not measured (they warm caches, ARP and QEMU's NAT entry).
    pub warmup: u32,
    /// How long to wait for one echo before counting its datagram lost.
    pub reply_timeout: Duration,
    /// Give up with [`Error::Timeout`] after this many datagrams in a row went unanswered
    /// (the server is gone, not dropping the odd packet); 0 never gives up.
    pub give_up_after: u32,
}

impl Default for UdpEchoOptions {
    /// 1000 datagrams of 64 bytes after 50 of warm-up; timeouts sized for a guest under
    /// software emulation.
    fn default() -> Self {
        UdpEchoOptions {
            count: 1000,
            size: 64,
            warmup: 50,
            reply_timeout: Duration::from_secs(2),
            give_up_after: 20,
        }
    }
}

/// What a UDP echo run measured. Counts other than `packets` are of measured datagrams only.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UdpEchoReport {
    pub sent: u64,
    pub received: u64,
    /// Datagrams whose echo did not come within the reply timeout.
    pub lost: u64,
    /// Datagrams sent plus echoes received over the whole call, warm-up included.
    pub packets: u64,
    /// Round-trip times of the measured datagrams that came back; `None` if none did.
    pub latency: Option<LatencySummary>,
}

/// Runs `options.warmup` and then `options.count` datagrams against the UDP echo server at
/// `target`.
pub fn udp_echo(target: SocketAddr, options: UdpEchoOptions) -> Result<UdpEchoReport, Error> {
    if options.count == 0 {
        return Err(Error::InvalidOptions("count must be at least 1".into()));
    }
    if !(SEQUENCE_BYTES..=65_507).contains(&options.size) {
        return Err(Error::InvalidOptions(format!(
            "a datagram holds {SEQUENCE_BYTES} to 65507 bytes, not {}",
            options.size
        )));
    }
    if options.reply_timeout.is_zero() {
        return Err(Error::InvalidOptions(
            "the reply timeout must not be zero".into(),
        ));
    }
    let local: SocketAddr = match target {
        SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("an IPv4 wildcard address"),
        SocketAddr::V6(_) => "[::]:0".parse().expect("an IPv6 wildcard address"),
    };
    let io = |what: &str| {
        let what = what.to_string();
        move |source| Error::from_io(&what, target, options.reply_timeout, source)
    };
    let socket = UdpSocket::bind(local).map_err(io("bind"))?;
    // Connected: the kernel delivers only datagrams from the target.
    socket.connect(target).map_err(io("connect"))?;

    let mut run = Run {
        socket,
        target,
        options,
        datagram: vec![0; options.size],
        reply: vec![0; options.size + 1],
        packets: 0,
        unanswered_in_a_row: 0,
    };
    for sequence in 0..u64::from(options.warmup) {
        run.exchange(sequence)?;
    }
    let mut samples = Vec::with_capacity(options.count as usize);
    let first = u64::from(options.warmup);
    for sequence in first..first + u64::from(options.count) {
        if let Some(round_trip) = run.exchange(sequence)? {
            samples.push(round_trip);
        }
    }
    let received = samples.len() as u64;
    Ok(UdpEchoReport {
        sent: u64::from(options.count),
        received,
        lost: u64::from(options.count) - received,
        packets: run.packets,
        latency: LatencySummary::from_samples(&samples),
    })
}

/// One run's socket, buffers and counters.
struct Run {
    socket: UdpSocket,
    target: SocketAddr,
    options: UdpEchoOptions,
    datagram: Vec<u8>,
    /// One byte longer than a datagram, so an over-long echo shows.
    reply: Vec<u8>,
    packets: u64,
    unanswered_in_a_row: u32,
}

impl Run {
    /// Sends datagram `sequence` and waits for its echo: its round-trip time, or `None` if
    /// it did not come in time.
    fn exchange(&mut self, sequence: u64) -> Result<Option<Duration>, Error> {
        fill(&mut self.datagram, sequence);
        let timeout = self.options.reply_timeout;
        let target = self.target;
        let sent_at = Instant::now();
        self.socket
            .send(&self.datagram)
            .map_err(|source| Error::from_io("send", target, timeout, source))?;
        self.packets += 1;
        let deadline = sent_at + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return self.unanswered(sequence);
            }
            self.socket
                .set_read_timeout(Some(left))
                .map_err(|source| Error::from_io("set timeout", target, timeout, source))?;
            let length = match self.socket.recv(&mut self.reply) {
                Ok(length) => length,
                Err(source) => match Error::from_io("receive", target, timeout, source) {
                    Error::Timeout { .. } => return self.unanswered(sequence),
                    error => return Err(error),
                },
            };
            let round_trip = sent_at.elapsed();
            self.packets += 1;
            let echo = &self.reply[..length];
            let Some(echoed) = sequence_of(echo) else {
                return Err(wrong_echo(
                    target,
                    sequence,
                    "too short for a sequence number",
                ));
            };
            if echoed < sequence {
                continue; // the late echo of a datagram already given up for lost
            }
            if echoed > sequence {
                return Err(wrong_echo(
                    target,
                    sequence,
                    &format!("echo of unsent {echoed}"),
                ));
            }
            if echo != self.datagram.as_slice() {
                return Err(wrong_echo(target, sequence, "bytes differ from those sent"));
            }
            self.unanswered_in_a_row = 0;
            return Ok(Some(round_trip));
        }
    }

    fn unanswered(&mut self, sequence: u64) -> Result<Option<Duration>, Error> {
        self.unanswered_in_a_row += 1;
        let limit = self.options.give_up_after;
        if limit != 0 && self.unanswered_in_a_row >= limit {
            return Err(Error::Timeout {
                what: format!("echo of datagram {sequence}, the {limit}th unanswered in a row"),
                target: self.target,
                after: self.options.reply_timeout,
            });
        }
        Ok(None)
    }
}

/// Writes datagram `sequence`: its number, then bytes that depend on it and their place.
fn fill(datagram: &mut [u8], sequence: u64) {
    let (number, filler) = datagram.split_at_mut(SEQUENCE_BYTES);
    number.copy_from_slice(&sequence.to_le_bytes());
    for (place, byte) in filler.iter_mut().enumerate() {
        *byte = (sequence as u8).wrapping_mul(31).wrapping_add(place as u8);
    }
}

fn sequence_of(datagram: &[u8]) -> Option<u64> {
    let number = datagram.get(..SEQUENCE_BYTES)?;
    Some(u64::from_le_bytes(number.try_into().ok()?))
}

fn wrong_echo(target: SocketAddr, sequence: u64, what: &str) -> Error {
    Error::WrongEcho {
        target,
        what: format!("datagram {sequence}: {what}"),
    }
}
