//! A TCP discard server (RFC 863) with one thread and an event loop: it waits on all its
//! connections at once with `net::poll`, reads whatever arrives on each and drops it, and
//! closes a connection once its peer has shut down its side. `tcp-discard [-p PORT]
//! [-n CONNECTIONS]`: port 9 by default; with `-n`, it stops after that many connections
//! have ended.
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
/// Each connection's receive buffer, and so the most a sender may have in
/// flight: 128 KiB, four times the stack's default. A bulk sender's rate is
/// at most window / round trip; against QEMU's user-mode network under TCG
/// the default 32 KiB held a 64 MiB transfer near 400 Mbit/s and 128 KiB
/// lifted it by about 1.6× (docs/07).
const RECEIVE_BUFFER: usize = 128 * 1024;

fn main(arguments: &[&str]) -> i32 {
    let (listener, limit) =
        match net::tcp_server("tcp-discard", arguments, 9, BACKLOG, Some(RECEIVE_BUFFER)) {
            Ok(server) => server,
            Err(status) => return status,
        };
    let mut connections: Vec<SocketId> = Vec::new();
    let (mut served, mut bytes) = (0u64, 0u64);
    let mut entries = Vec::new();
    while limit.is_none_or(|limit| served < limit) {
        entries.clear();
        entries.push(PollEntry::new(listener.id(), Readiness::READABLE));
        entries.extend(
            connections
                .iter()
                .map(|&id| PollEntry::new(id, Readiness::READABLE)),
        );
        if let Err(error) = net::poll(&mut entries, None) {
            println!("tcp-discard: poll: {error:?}");
            return 1;
        }
        let step = net::with_stack(|stack| {
            while let Ok((id, _peer)) = stack.accept(listener.id()) {
                connections.push(id);
            }
            let before = connections.len();
            let mut dropped = 0;
            connections.retain(|&id| {
                let (open, read) = discard(stack, id);
                dropped += read;
                open
            });
            (before - connections.len(), dropped)
        });
        match step {
            Ok((ended, dropped)) => {
                served += ended as u64;
                bytes += dropped;
            }
            Err(error) => {
                println!("tcp-discard: {error:?}");
                return 1;
            }
        }
    }
    net::finish(net::FINISH_TICKS);
    println!("tcp-discard: served {served} connections, {bytes} bytes discarded");
    println!("tcp-discard: stack: {}", net::report());
    0
}

/// Reads and drops all `id` has for us; returns whether it is still open and how many
/// bytes were dropped. At the end of the peer's stream (or on an error) it is closed.
fn discard(stack: &mut Stack, id: SocketId) -> (bool, u64) {
    let mut dropped = 0;
    let mut buffer = [0u8; 4096];
    loop {
        match stack.read(id, &mut buffer) {
            Ok(0) => break,
            Ok(read) => dropped += read as u64,
            Err(NetError::WouldBlock) => return (true, dropped),
            Err(_) => break,
        }
    }
    let _ = stack.close(id);
    (false, dropped)
}
