//! A TCP echo server (RFC 862) with one thread and an event loop: it waits
//! on all its connections at once with `net::poll` and echoes whatever
//! arrives on each, keeping at most `WINDOW` bytes per connection in hand.
//! When a peer shuts down its side, the rest is sent and the connection
//! closed. `tcp-echo [-p PORT] [-n CONNECTIONS]`: port 7 by default; with
//! `-n`, it stops after that many connections have ended.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use libos_net::{NetError, PollEntry, Readiness, SocketId, Stack};
use libos_posixish::net;
use libos_posixish::println;

libos_posixish::main!(main);

/// Connections waiting for `accept` at most.
const BACKLOG: u32 = 256;
/// Bytes read but not yet echoed, per connection, at most.
const WINDOW: usize = 16 * 1024;

/// One connection being echoed.
struct Connection {
    id: SocketId,
    /// Read, not yet written back.
    pending: Vec<u8>,
    /// The peer has shut down its side.
    ended: bool,
}

fn main(arguments: &[&str]) -> i32 {
    let (listener, limit) = match net::tcp_server("tcp-echo", arguments, 7, BACKLOG, None) {
        Ok(server) => server,
        Err(status) => return status,
    };
    let mut connections: Vec<Connection> = Vec::new();
    let (mut served, mut bytes) = (0u64, 0u64);
    let mut entries = Vec::new();
    while limit.is_none_or(|limit| served < limit) {
        entries.clear();
        entries.push(PollEntry::new(listener.id(), Readiness::READABLE));
        entries.extend(connections.iter().map(|connection| {
            let interest = Readiness {
                readable: !connection.ended && connection.pending.len() < WINDOW,
                writable: !connection.pending.is_empty(),
                hangup: false,
            };
            PollEntry::new(connection.id, interest)
        }));
        if let Err(error) = net::poll(&mut entries, None) {
            println!("tcp-echo: poll: {error:?}");
            return 1;
        }
        let step = net::with_stack(|stack| {
            while let Ok((id, _peer)) = stack.accept(listener.id()) {
                connections.push(Connection {
                    id,
                    pending: Vec::new(),
                    ended: false,
                });
            }
            let before = connections.len();
            let mut moved = 0;
            connections.retain_mut(|connection| {
                let (alive, echoed) = echo(stack, connection);
                moved += echoed;
                alive
            });
            (before - connections.len(), moved)
        });
        match step {
            Ok((ended, moved)) => {
                served += ended as u64;
                bytes += moved;
            }
            Err(error) => {
                println!("tcp-echo: {error:?}");
                return 1;
            }
        }
    }
    net::finish(net::FINISH_TICKS);
    println!("tcp-echo: served {served} connections, {bytes} bytes");
    println!("tcp-echo: stack: {}", net::report());
    0
}

/// Moves what `connection` has for us back to it; returns whether it is
/// still open and how many bytes were echoed.
fn echo(stack: &mut Stack, connection: &mut Connection) -> (bool, u64) {
    let mut echoed = 0;
    let mut buffer = [0u8; 4096];
    loop {
        let room = WINDOW - connection.pending.len();
        if !connection.ended && room > 0 {
            let want = room.min(buffer.len());
            match stack.read(connection.id, &mut buffer[..want]) {
                Ok(0) => connection.ended = true,
                Ok(read) => connection.pending.extend_from_slice(&buffer[..read]),
                Err(NetError::WouldBlock) => {}
                Err(_) => return (close(stack, connection.id), echoed),
            }
        }
        if connection.pending.is_empty() {
            break;
        }
        match stack.write(connection.id, &connection.pending) {
            Ok(written) => {
                connection.pending.drain(..written);
                echoed += written as u64;
            }
            Err(NetError::WouldBlock) => break,
            Err(_) => return (close(stack, connection.id), echoed),
        }
    }
    if connection.ended && connection.pending.is_empty() {
        return (close(stack, connection.id), echoed);
    }
    (true, echoed)
}

/// Closes a connection (what is queued still goes out); it is no longer open.
fn close(stack: &mut Stack, id: SocketId) -> bool {
    let _ = stack.close(id);
    false
}
