//! What a stack keeps for each socket it hands out (`Stack::entries`), and
//! how it makes a TCP socket: shared by the sockets API (`sockets.rs`) and
//! the stack's own upkeep of listeners (`stack.rs`).

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;

#[derive(Debug)]
pub(crate) struct Listener {
    pub port: u16,
    pub backlog: u32,
    /// Receive buffer of each connection it accepts, in bytes.
    pub receive_buffer: usize,
    /// Sockets listening or completing a handshake.
    pub listening: Vec<Pending>,
    /// How many times the stack has looked at its sockets
    /// (`Stack::tend_sockets`): the clock of [`Pending::half_open_since`].
    pub rounds: u64,
    /// Connections ready for `accept`, oldest first.
    pub accepted: VecDeque<SocketHandle>,
}

/// A socket of a listener's, listening or completing a handshake.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pending {
    pub handle: SocketHandle,
    /// The round that first found it half-open (SYN-RECEIVED): the oldest
    /// goes first when requests find the backlog full.
    pub half_open_since: Option<u64>,
}

#[derive(Debug)]
pub(crate) enum Entry {
    Listener(Listener),
    Tcp {
        handle: SocketHandle,
        port: u16,
    },
    Udp {
        handle: SocketHandle,
        port: u16,
    },
    Icmp {
        handle: SocketHandle,
        identifier: u16,
    },
}

/// A TCP socket with `receive` and `send` bytes of buffer; Nagle off, as
/// servers of small requests want.
pub(crate) fn new_tcp_socket(receive: usize, send: usize) -> tcp::Socket<'static> {
    let mut socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; receive]),
        tcp::SocketBuffer::new(vec![0; send]),
    );
    socket.set_nagle_enabled(false);
    socket
}
