//! libos-net: a TCP/IP stack as a library, for exo.
//!
//! Each program that links it runs its own stack — smoltcp, as the TCP/IP
//! engine — on a binding of the kernel's NIC multiplexer
//! (`docs/05-network.md`): frames arrive in a receive ring in the program's
//! own memory and leave through a transmit ring, with no system call per
//! packet; or, chosen when the stack starts, through one system call per
//! frame, for comparison. The kernel only checks that the program may use
//! its address and ports; ARP, IP, ICMP, UDP and TCP happen here.
//!
//! | module | holds |
//! |---|---|
//! | `stack.rs` | [`Stack`]: smoltcp's interface, the kernel filters for its ports, polling and sleeping |
//! | `sockets.rs` | the sockets API on a stack: TCP, UDP, ICMP echo, readiness |
//! | `dhcp.rs` | [`dhcp::acquire`]: an address from a DHCP server, for a program with the card and no address yet |
//! | `link.rs` | smoltcp's device over a binding, by either [`Path`]; [`Statistics`] |
//! | `front_door.rs` | the checks every received frame passes first, counted by reason |
//! | `checksum.rs` | the Internet checksum the front door verifies, eight bytes at a time |
//! | `capabilities.rs` | the only `unsafe` code: dropping capabilities, binding and giving back the rings' frames |
//!
//! A program drives its stack from an event loop:
//!
//! ```ignore
//! let mut stack = Stack::new(credentials, Config::qemu_user_network(RINGS))?;
//! let listener = stack.listen(7, 128)?;
//! loop {
//!     stack.poll();
//!     while let Ok((connection, _peer)) = stack.accept(listener) { /* ... */ }
//!     stack.wait(None); // sleeps until frames arrive or a timer is due
//! }
//! ```
//!
//! libos-posixish builds blocking sockets on the same calls, parking the
//! calling thread instead (`libos_posixish::net`).
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

mod capabilities;
mod checksum;
pub mod dhcp;
mod entries;
pub mod front_door;
mod link;
mod sockets;
mod stack;

use core::fmt;

pub use link::{Flush, Path, Statistics};
pub use sockets::{MAX_TCP_BUFFER, MIN_TCP_BUFFER, PollEntry, Readiness, SocketId};
pub use stack::{Config, Credentials, Stack};

/// Why a network operation did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// Nothing can be done now; poll and wait, then try again.
    WouldBlock,
    /// The id names no socket of this stack, or one of another kind.
    InvalidSocket,
    /// A bad argument: port 0 to listen on, an unroutable peer.
    InvalidArgument,
    /// The port is in use, here or by another program; or no ephemeral
    /// port is free.
    AddressInUse,
    /// The connection is not established.
    NotConnected,
    /// The connection was reset or refused, or is shut down for writing.
    ConnectionReset,
    /// A datagram larger than the socket's buffer.
    MessageTooLong,
    /// No answer in time: no DHCP server offered an address.
    TimedOut,
    /// The kernel refused a call (a missing right, no frames left, ...).
    Kernel(exo_abi::Error),
}

impl From<exo_abi::Error> for NetError {
    fn from(error: exo_abi::Error) -> Self {
        match error {
            exo_abi::Error::AddressInUse => NetError::AddressInUse,
            error => NetError::Kernel(error),
        }
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::WouldBlock => formatter.write_str("would block"),
            NetError::InvalidSocket => formatter.write_str("no such socket"),
            NetError::InvalidArgument => formatter.write_str("invalid argument"),
            NetError::AddressInUse => formatter.write_str("address in use"),
            NetError::NotConnected => formatter.write_str("not connected"),
            NetError::ConnectionReset => formatter.write_str("connection reset"),
            NetError::MessageTooLong => formatter.write_str("message too long"),
            NetError::TimedOut => formatter.write_str("timed out"),
            NetError::Kernel(error) => write!(formatter, "kernel: {error:?}"),
        }
    }
}
