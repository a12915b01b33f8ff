//! `linux-peer udp-echo`, `tcp-echo` and `tcp-discard`: the servers a host client measures
//! exo's network against, written plainly on std::net as any Linux program would be.
//!
//! Each listens on every address of the guest and runs until killed. A connection's
//! failure (the client resetting it, say) ends that connection only.

use std::io::{self, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::thread;

/// The ports the servers listen on unless told otherwise: the Internet's echo and discard.
pub const ECHO_PORT: u16 = 7;
pub const DISCARD_PORT: u16 = 9;

/// The largest UDP payload: a datagram is echoed whole.
const LARGEST_DATAGRAM: usize = 65_535;

/// Sends every datagram back to where it came from.
pub fn udp_echo(port: u16) -> io::Result<()> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))?;
    announce("udp-echo", port);
    let mut datagram = vec![0u8; LARGEST_DATAGRAM];
    loop {
        let (length, sender) = socket.recv_from(&mut datagram)?;
        socket.send_to(&datagram[..length], sender)?;
    }
}

/// Writes back every byte each connection sends, a thread per connection.
pub fn tcp_echo(port: u16) -> io::Result<()> {
    serve_tcp("tcp-echo", port, |mut connection| {
        // Request/response traffic: each reply goes out at once, not held back to be
        // merged with the next (Nagle's algorithm).
        connection.set_nodelay(true)?;
        let mut reader = connection.try_clone()?;
        io::copy(&mut reader, &mut connection)?;
        Ok(())
    })
}

/// Reads each connection until the client closes it, then closes it too.
pub fn tcp_discard(port: u16) -> io::Result<()> {
    serve_tcp("tcp-discard", port, |mut connection| {
        io::copy(&mut connection, &mut io::sink())?;
        Ok(())
    })
}

/// Accepts connections on `port` for ever, each served by `serve` on a thread of its own.
fn serve_tcp(name: &str, port: u16, serve: fn(TcpStream) -> io::Result<()>) -> io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))?;
    announce(name, port);
    loop {
        let (connection, _) = listener.accept()?;
        thread::spawn(move || {
            // One connection's error is that connection's business.
            let _ = serve(connection);
        });
    }
}

fn announce(name: &str, port: u16) {
    println!("linux-peer: {name} listening on port {port}");
    // A console that is not a terminal buffers; whoever waits for this line must see it.
    let _ = io::stdout().flush();
}
