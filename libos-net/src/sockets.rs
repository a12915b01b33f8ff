//! The sockets API: TCP listen, accept, connect, read, write, shutdown,
//! close; UDP bind, send_to, recv_from; ICMP echo; and readiness over many
//! sockets at once (`poll`-like).
//!
//! Every operation is non-blocking: it does what can be done now or says
//! [`NetError::WouldBlock`]. Operations queue and take; [`Stack::poll`]
//! sends what they queued and takes in what has arrived, so a program
//! that handles many sockets at once polls once for the lot. A program waits with [`Stack::wait`] (a bare
//! event loop) or through its library OS's blocking layer (libos-posixish
//! parks the calling thread). Sockets are named by [`SocketId`]s, small
//! numbers this stack hands out and checks: an id that names nothing, or a
//! socket of the wrong kind, is `InvalidSocket`, never a panic.
//!
//! A listener keeps a few idle listening sockets so that connection
//! requests are answered at once, and at most `backlog` connections that
//! are starting or waiting for `accept`; beyond that, requests are refused
//! with a reset, so a client learns at once (Linux drops them instead, and
//! clients retry). A backlog full of half-open connections (a flood of
//! requests from forged sources, whose handshakes never complete) gives up
//! its oldest to a new request instead, as BSD's SYN cache does: smoltcp
//! never abandons a handshake, so without this the flood would hold the
//! backlog for good.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};

use exo_abi::net::Protocol;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::{icmp, tcp, udp};
use smoltcp::wire::{IpAddress, IpEndpoint};

use crate::NetError;
use crate::entries::{Entry, Listener, new_tcp_socket};
use crate::stack::Stack;

/// A socket of one stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SocketId(pub u32);

/// ICMP echo messages queued each way, and their bytes.
const ICMP_PACKETS: usize = 8;
const ICMP_BYTES: usize = 4 * 1024;
/// The smallest and largest receive buffer a listener may ask for: room for
/// one full segment, and a bound on what one connection may take from the
/// process's heap.
pub const MIN_TCP_BUFFER: usize = 2 * 1024;
pub const MAX_TCP_BUFFER: usize = 256 * 1024;

/// What a socket is ready for; `poll` reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// `read`/`recv_from`/`accept` would not block (for a TCP stream this
    /// includes the end of input and a reset connection).
    pub readable: bool,
    /// `write`/`send_to` would not block.
    pub writable: bool,
    /// The connection is over: reset, refused, or closed both ways.
    pub hangup: bool,
}

impl Readiness {
    pub const READABLE: Readiness = Readiness {
        readable: true,
        writable: false,
        hangup: false,
    };
    pub const WRITABLE: Readiness = Readiness {
        readable: false,
        writable: true,
        hangup: false,
    };

    pub fn any(self) -> bool {
        self.readable || self.writable || self.hangup
    }

    /// What of `self` an interest in `wanted` reports (a hang-up always).
    pub fn masked(self, wanted: Readiness) -> Readiness {
        Readiness {
            readable: self.readable && wanted.readable,
            writable: self.writable && wanted.writable,
            hangup: self.hangup,
        }
    }
}

/// One socket's line in a [`Stack::poll_sockets`] call.
#[derive(Clone, Copy, Debug)]
pub struct PollEntry {
    pub socket: SocketId,
    pub interest: Readiness,
    /// Filled in by the call.
    pub ready: Readiness,
}

impl PollEntry {
    pub fn new(socket: SocketId, interest: Readiness) -> Self {
        Self {
            socket,
            interest,
            ready: Readiness::default(),
        }
    }
}

fn endpoint(address: SocketAddrV4) -> IpEndpoint {
    IpEndpoint::new(IpAddress::Ipv4(*address.ip()), address.port())
}

fn socket_address(endpoint: IpEndpoint) -> SocketAddrV4 {
    let IpAddress::Ipv4(address) = endpoint.addr;
    SocketAddrV4::new(address, endpoint.port)
}

impl Stack {
    fn entry(&self, id: SocketId) -> Result<&Entry, NetError> {
        self.entries.get(&id.0).ok_or(NetError::InvalidSocket)
    }

    fn tcp_handle(&self, id: SocketId) -> Result<SocketHandle, NetError> {
        match self.entry(id)? {
            Entry::Tcp { handle, .. } => Ok(*handle),
            _ => Err(NetError::InvalidSocket),
        }
    }

    fn udp_handle(&self, id: SocketId) -> Result<SocketHandle, NetError> {
        match self.entry(id)? {
            Entry::Udp { handle, .. } => Ok(*handle),
            _ => Err(NetError::InvalidSocket),
        }
    }

    /// Listens for TCP connections on `port`, keeping at most `backlog`
    /// (at least 1) starting or waiting for [`accept`](Self::accept).
    pub fn listen(&mut self, port: u16, backlog: u32) -> Result<SocketId, NetError> {
        self.listen_receiving(port, backlog, self.config.tcp_buffer)
    }

    /// Like [`listen`](Self::listen), with a receive buffer of
    /// `receive_buffer` bytes for each connection it accepts (the send
    /// buffer stays the stack's default). A receiver of bulk data wants
    /// about the path's bandwidth-delay product: the window a sender may
    /// have in flight is at most this buffer. From [`MIN_TCP_BUFFER`] to
    /// [`MAX_TCP_BUFFER`]; past 64 KiB the window is scaled (RFC 7323).
    pub fn listen_receiving(
        &mut self,
        port: u16,
        backlog: u32,
        receive_buffer: usize,
    ) -> Result<SocketId, NetError> {
        if !(MIN_TCP_BUFFER..=MAX_TCP_BUFFER).contains(&receive_buffer) {
            return Err(NetError::InvalidArgument);
        }
        if port == 0 {
            return Err(NetError::InvalidArgument);
        }
        let listening = self
            .entries
            .values()
            .any(|entry| matches!(entry, Entry::Listener(listener) if listener.port == port));
        if listening {
            return Err(NetError::AddressInUse);
        }
        self.use_port(Protocol::Tcp, port)?;
        let id = self.add_entry(Entry::Listener(Listener {
            port,
            backlog: backlog.max(1),
            receive_buffer,
            listening: Vec::new(),
            rounds: 0,
            accepted: VecDeque::new(),
        }));
        self.tend_sockets(); // its first idle sockets, before any request arrives
        Ok(SocketId(id))
    }

    /// The oldest connection waiting on `listener`, as a new socket, with
    /// its peer's address.
    pub fn accept(&mut self, listener: SocketId) -> Result<(SocketId, SocketAddrV4), NetError> {
        let Entry::Listener(entry) = self
            .entries
            .get_mut(&listener.0)
            .ok_or(NetError::InvalidSocket)?
        else {
            return Err(NetError::InvalidSocket);
        };
        let port = entry.port;
        let handle = entry.accepted.pop_front().ok_or(NetError::WouldBlock)?;
        let peer = self
            .sockets
            .get::<tcp::Socket>(handle)
            .remote_endpoint()
            .map_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0), socket_address);
        // The connection shares the listener's filter, and keeps it alive
        // for as long as it lives, even if the listener closes first.
        self.use_port(Protocol::Tcp, port)?;
        let id = self.add_entry(Entry::Tcp { handle, port });
        self.tend_sockets(); // replaces the idle socket the connection used
        Ok((SocketId(id), peer))
    }

    /// Starts a TCP connection to `peer` from a free ephemeral port; the
    /// socket becomes writable once it is established, and reports a
    /// hang-up if it is refused.
    pub fn connect(&mut self, peer: SocketAddrV4) -> Result<SocketId, NetError> {
        let port = self.use_ephemeral_port(Protocol::Tcp)?;
        let handle = self.sockets.add(new_tcp_socket(
            self.config.tcp_buffer,
            self.config.tcp_buffer,
        ));
        let context = self.interface.context();
        let started =
            self.sockets
                .get_mut::<tcp::Socket>(handle)
                .connect(context, endpoint(peer), port);
        if started.is_err() {
            self.sockets.remove(handle);
            self.release_port(Protocol::Tcp, port);
            return Err(NetError::InvalidArgument);
        }
        let id = self.add_entry(Entry::Tcp { handle, port });
        Ok(SocketId(id))
    }

    /// Reads what has arrived on a TCP connection into `buffer`. `Ok(0)`
    /// is the end of input (the peer shut down its side); `WouldBlock` if
    /// nothing has arrived yet; `ConnectionReset` if the connection was
    /// reset or refused.
    pub fn read(&mut self, id: SocketId, buffer: &mut [u8]) -> Result<usize, NetError> {
        let handle = self.tcp_handle(id)?;
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        match socket.recv_slice(buffer) {
            Ok(0) if !buffer.is_empty() => {
                if socket.may_recv() {
                    Err(NetError::WouldBlock)
                } else {
                    Ok(0)
                }
            }
            Ok(read) => Ok(read),
            Err(tcp::RecvError::Finished) => Ok(0),
            Err(tcp::RecvError::InvalidState) => match socket.state() {
                tcp::State::SynSent | tcp::State::SynReceived => Err(NetError::WouldBlock),
                _ => Err(NetError::ConnectionReset),
            },
        }
    }

    /// Queues as much of `data` as fits for sending; `WouldBlock` if none
    /// fits now, `NotConnected` while the handshake runs, `ConnectionReset`
    /// once the connection is gone or shut down for writing.
    pub fn write(&mut self, id: SocketId, data: &[u8]) -> Result<usize, NetError> {
        let handle = self.tcp_handle(id)?;
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        if !socket.may_send() {
            return Err(match socket.state() {
                tcp::State::SynSent | tcp::State::SynReceived => NetError::WouldBlock,
                _ => NetError::ConnectionReset,
            });
        }
        let written = match socket.send_slice(data) {
            Ok(0) if !data.is_empty() => return Err(NetError::WouldBlock),
            Ok(written) => written,
            Err(_) => return Err(NetError::ConnectionReset),
        };
        Ok(written)
    }

    /// Sends no more on this connection (a FIN after what is queued); the
    /// socket can still read.
    pub fn shutdown(&mut self, id: SocketId) -> Result<(), NetError> {
        let handle = self.tcp_handle(id)?;
        self.sockets.get_mut::<tcp::Socket>(handle).close();
        Ok(())
    }

    /// The peer of a TCP connection.
    pub fn peer(&self, id: SocketId) -> Result<SocketAddrV4, NetError> {
        let handle = self.tcp_handle(id)?;
        self.sockets
            .get::<tcp::Socket>(handle)
            .remote_endpoint()
            .map(socket_address)
            .ok_or(NetError::NotConnected)
    }

    /// Closes any socket. A TCP connection sends what is queued, then a
    /// FIN, and finishes in the background; a listener refuses new
    /// requests and resets the connections nobody accepted.
    pub fn close(&mut self, id: SocketId) -> Result<(), NetError> {
        let entry = self.entries.remove(&id.0).ok_or(NetError::InvalidSocket)?;
        match entry {
            Entry::Tcp { handle, port } => {
                self.sockets.get_mut::<tcp::Socket>(handle).close();
                self.closing.push((handle, port));
            }
            Entry::Listener(listener) => {
                let pending = listener.listening.into_iter().map(|pending| pending.handle);
                for handle in pending.chain(listener.accepted) {
                    self.sockets.get_mut::<tcp::Socket>(handle).abort();
                    // Aborted sockets send their reset at the next poll, then retire.
                    self.closing.push((handle, listener.port));
                    self.use_port(Protocol::Tcp, listener.port)?;
                }
                self.link.gate.close(listener.port);
                self.release_port(Protocol::Tcp, listener.port);
            }
            Entry::Udp { handle, port } => {
                self.sockets.remove(handle);
                self.release_port(Protocol::Udp, port);
            }
            Entry::Icmp { handle, identifier } => {
                self.sockets.remove(handle);
                self.release_port(Protocol::Icmp, identifier);
            }
        }
        Ok(())
    }

    /// A UDP socket on `port` (0: a free ephemeral port).
    pub fn udp_bind(&mut self, port: u16) -> Result<SocketId, NetError> {
        let port = if port == 0 {
            self.use_ephemeral_port(Protocol::Udp)?
        } else {
            // One socket per UDP port: a second would never see a datagram.
            if self.holds_port(Protocol::Udp, port) {
                return Err(NetError::AddressInUse);
            }
            self.use_port(Protocol::Udp, port)?;
            port
        };
        let (packets, bytes) = (self.config.udp_packets, self.config.udp_bytes);
        let buffer =
            || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; packets], vec![0; bytes]);
        let mut socket = udp::Socket::new(buffer(), buffer());
        if socket.bind(port).is_err() {
            self.release_port(Protocol::Udp, port);
            return Err(NetError::InvalidArgument);
        }
        let handle = self.sockets.add(socket);
        Ok(SocketId(self.add_entry(Entry::Udp { handle, port })))
    }

    /// The local port of a UDP socket.
    pub fn udp_port(&self, id: SocketId) -> Result<u16, NetError> {
        match self.entry(id)? {
            Entry::Udp { port, .. } => Ok(*port),
            _ => Err(NetError::InvalidSocket),
        }
    }

    /// Queues one datagram to `peer`; `WouldBlock` if the queue is full,
    /// `MessageTooLong` if it could never fit.
    pub fn send_to(
        &mut self,
        id: SocketId,
        data: &[u8],
        peer: SocketAddrV4,
    ) -> Result<(), NetError> {
        let handle = self.udp_handle(id)?;
        let socket = self.sockets.get_mut::<udp::Socket>(handle);
        match socket.send_slice(data, endpoint(peer)) {
            Ok(()) => {}
            Err(udp::SendError::BufferFull) if data.len() <= self.config.udp_bytes => {
                return Err(NetError::WouldBlock);
            }
            Err(udp::SendError::BufferFull) => return Err(NetError::MessageTooLong),
            Err(udp::SendError::Unaddressable) => return Err(NetError::InvalidArgument),
        }
        Ok(())
    }

    /// Takes the oldest datagram into `buffer`: its length and sender.
    /// `MessageTooLong` (and the datagram is gone) if it does not fit.
    pub fn recv_from(
        &mut self,
        id: SocketId,
        buffer: &mut [u8],
    ) -> Result<(usize, SocketAddrV4), NetError> {
        let handle = self.udp_handle(id)?;
        let socket = self.sockets.get_mut::<udp::Socket>(handle);
        match socket.recv_slice(buffer) {
            Ok((length, metadata)) => Ok((length, socket_address(metadata.endpoint))),
            Err(udp::RecvError::Exhausted) => Err(NetError::WouldBlock),
            Err(udp::RecvError::Truncated) => Err(NetError::MessageTooLong),
        }
    }

    /// An ICMP socket for echo replies carrying `identifier` (not 0), with
    /// the kernel's filter for that identifier, so replies reach this stack
    /// whichever stack answers pings for the address. `AddressInUse` if
    /// another socket or program holds the identifier.
    pub fn icmp_bind(&mut self, identifier: u16) -> Result<SocketId, NetError> {
        if identifier == 0 {
            return Err(NetError::InvalidArgument);
        }
        if self.holds_port(Protocol::Icmp, identifier) {
            return Err(NetError::AddressInUse);
        }
        let buffer = || {
            icmp::PacketBuffer::new(
                vec![icmp::PacketMetadata::EMPTY; ICMP_PACKETS],
                vec![0; ICMP_BYTES],
            )
        };
        let mut socket = icmp::Socket::new(buffer(), buffer());
        socket
            .bind(icmp::Endpoint::Ident(identifier))
            .map_err(|_| NetError::InvalidArgument)?;
        self.use_port(Protocol::Icmp, identifier)?;
        let handle = self.sockets.add(socket);
        Ok(SocketId(self.add_entry(Entry::Icmp { handle, identifier })))
    }

    /// Queues an ICMP message (`packet`: type, code, checksum, rest; the
    /// checksum is filled in) to `peer`.
    pub fn icmp_send(
        &mut self,
        id: SocketId,
        packet: &[u8],
        peer: Ipv4Addr,
    ) -> Result<(), NetError> {
        let Entry::Icmp { handle, .. } = *self.entry(id)? else {
            return Err(NetError::InvalidSocket);
        };
        let socket = self.sockets.get_mut::<icmp::Socket>(handle);
        socket
            .send_slice(packet, IpAddress::Ipv4(peer))
            .map_err(|_| NetError::WouldBlock)?;
        Ok(())
    }

    /// Takes the oldest ICMP message for this socket: its length and sender.
    pub fn icmp_recv(
        &mut self,
        id: SocketId,
        buffer: &mut [u8],
    ) -> Result<(usize, Ipv4Addr), NetError> {
        let Entry::Icmp { handle, .. } = *self.entry(id)? else {
            return Err(NetError::InvalidSocket);
        };
        let socket = self.sockets.get_mut::<icmp::Socket>(handle);
        match socket.recv_slice(buffer) {
            Ok((length, IpAddress::Ipv4(sender))) => Ok((length, sender)),
            Err(icmp::RecvError::Exhausted) => Err(NetError::WouldBlock),
            Err(icmp::RecvError::Truncated) => Err(NetError::MessageTooLong),
        }
    }

    /// What `id` is ready for now.
    pub fn readiness(&self, id: SocketId) -> Result<Readiness, NetError> {
        Ok(match self.entry(id)? {
            Entry::Listener(listener) => Readiness {
                readable: !listener.accepted.is_empty(),
                ..Readiness::default()
            },
            Entry::Tcp { handle, .. } => {
                let socket = self.sockets.get::<tcp::Socket>(*handle);
                let starting = matches!(
                    socket.state(),
                    tcp::State::SynSent | tcp::State::SynReceived
                );
                let over = !socket.is_open() || socket.state() == tcp::State::TimeWait;
                Readiness {
                    readable: socket.can_recv() || (!starting && !socket.may_recv()),
                    writable: socket.can_send() || over,
                    hangup: over,
                }
            }
            Entry::Udp { handle, .. } => {
                let socket = self.sockets.get::<udp::Socket>(*handle);
                Readiness {
                    readable: socket.can_recv(),
                    writable: socket.can_send(),
                    hangup: false,
                }
            }
            Entry::Icmp { handle, .. } => {
                let socket = self.sockets.get::<icmp::Socket>(*handle);
                Readiness {
                    readable: socket.can_recv(),
                    writable: socket.can_send(),
                    hangup: false,
                }
            }
        })
    }

    /// Fills in each entry's readiness (what it wants, and any hang-up);
    /// returns how many are ready. An id that names no socket reports a
    /// hang-up, as `poll`'s `POLLNVAL` does.
    pub fn poll_sockets(&self, entries: &mut [PollEntry]) -> usize {
        let mut ready = 0;
        for entry in entries.iter_mut() {
            entry.ready = match self.readiness(entry.socket) {
                Ok(readiness) => readiness.masked(entry.interest),
                Err(_) => Readiness {
                    hangup: true,
                    ..Readiness::default()
                },
            };
            ready += usize::from(entry.ready.any());
        }
        ready
    }

    /// Bytes written to TCP connections (closed ones too) that the peers
    /// have not acknowledged yet, and one more for each closed connection
    /// whose end (its FIN) is not acknowledged yet: 0 when everything has
    /// been delivered. A FIN still in the stack or in the transmit ring when
    /// the process exits is lost with them, and the peer waits for it.
    pub fn unsent(&self) -> usize {
        let open = self.entries.values().filter_map(|entry| match entry {
            Entry::Tcp { handle, .. } => Some(*handle),
            _ => None,
        });
        let closing = self.closing.iter().map(|&(handle, _)| handle);
        open.chain(closing)
            .map(|handle| {
                let socket = self.sockets.get::<tcp::Socket>(handle);
                let fin_unacknowledged = matches!(
                    socket.state(),
                    tcp::State::FinWait1 | tcp::State::Closing | tcp::State::LastAck
                );
                let data = if socket.is_open() {
                    socket.send_queue()
                } else {
                    0
                };
                data + usize::from(fin_unacknowledged)
            })
            .sum()
    }
}
