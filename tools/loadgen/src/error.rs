//! What can stop a driver: one error type for all three, each case saying which step failed
//! and against what, so a benchmark's output names the cause without a backtrace.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Why a driver could not produce a report.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The options cannot describe a run (a zero count, a datagram too small for its
    /// sequence number, ...).
    InvalidOptions(String),
    /// Nothing listens at the target: the connection or the datagram was refused.
    Refused { target: SocketAddr },
    /// A step took longer than its timeout; `what` names the step.
    Timeout {
        what: String,
        target: SocketAddr,
        after: Duration,
    },
    /// The server closed the connection before sending all it owed.
    ShortRead {
        target: SocketAddr,
        expected: usize,
        received: usize,
    },
    /// The server answered with bytes other than those it was sent.
    WrongEcho { target: SocketAddr, what: String },
    /// Any other failure of the socket; `what` names the step.
    Io {
        what: String,
        target: SocketAddr,
        source: io::Error,
    },
}

impl Error {
    /// Sorts an I/O error from step `what`: refusals and timeouts get their own cases.
    pub(crate) fn from_io(
        what: &str,
        target: SocketAddr,
        after: Duration,
        source: io::Error,
    ) -> Self {
        match source.kind() {
            io::ErrorKind::ConnectionRefused => Error::Refused { target },
            // A socket timeout shows as `WouldBlock` on Unix and `TimedOut` on Windows.
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout {
                what: what.to_string(),
                target,
                after,
            },
            _ => Error::Io {
                what: what.to_string(),
                target,
                source,
            },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidOptions(message) => write!(formatter, "invalid options: {message}"),
            Error::Refused { target } => {
                write!(formatter, "{target}: refused (nothing listening?)")
            }
            Error::Timeout {
                what,
                target,
                after,
            } => write!(formatter, "{target}: {what}: no progress in {after:?}"),
            Error::ShortRead {
                target,
                expected,
                received,
            } => write!(
                formatter,
                "{target}: connection closed after {received} of {expected} bytes"
            ),
            Error::WrongEcho { target, what } => write!(formatter, "{target}: wrong echo: {what}"),
            Error::Io {
                what,
                target,
                source,
            } => write!(formatter, "{target}: {what}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
