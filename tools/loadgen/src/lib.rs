//! A host-side load generator for exo's network benchmarks.
//!
//! Three drivers, each run against one server reached over a socket address (for a guest,
//! a QEMU user-network port forward on 127.0.0.1), each the same whatever answers: exo's
//! library OS on either path, a Linux guest, or a server on the host itself.
//!
//! - [`udp_echo`]: round-trip latency of datagrams sent one at a time to a UDP echo server.
//! - [`tcp_request_response`]: transactions per second over one connection to a TCP echo
//!   server.
//! - [`tcp_bulk`]: throughput of one connection's worth of bytes into a TCP discard server.
//!
//! Every report carries `packets`, what the guest's interface carried during the call,
//! counted as the module of each driver documents, so a caller can divide the guest's
//! system-call and kernel-entry counts over the same call by it.
//!
//! This crate measures and reports; it never judges a figure (that is the caller's), and it
//! starts no guest.

#![forbid(unsafe_code)]

mod error;
mod latency;
mod tcp_bulk;
mod tcp_request_response;
mod udp_echo;

pub use error::Error;
pub use latency::{LatencySummary, nearest_rank};
pub use tcp_bulk::{BulkOptions, BulkReport, tcp_bulk};
pub use tcp_request_response::{
    RequestResponseOptions, RequestResponseReport, tcp_request_response,
};
pub use udp_echo::{UdpEchoOptions, UdpEchoReport, udp_echo};

/// The TCP payload bytes one segment carries to or from the guest: QEMU's user network
/// re-segments the host's stream for the guest's 1500-byte MTU, less 40 bytes of IPv4 and
/// TCP headers. The TCP drivers count packets with it.
pub const GUEST_TCP_SEGMENT: usize = 1460;

/// How many segments of at most [`GUEST_TCP_SEGMENT`] bytes carry `bytes`.
fn segments_for(bytes: u64) -> u64 {
    bytes.div_ceil(GUEST_TCP_SEGMENT as u64)
}
