//! A UDP echo server (RFC 862): every datagram goes back to its sender
//! unchanged. `udp-echo [-p PORT] [-n COUNT]`: port 7 by default; with
//! `-n`, it stops after COUNT datagrams and reports its stack's counters.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libos_posixish::net::{self, UdpSocket};
use libos_posixish::{args, println};

libos_posixish::main!(main);

fn main(arguments: &[&str]) -> i32 {
    let (port, count) = match args::port_and_count(arguments, 7) {
        Ok(options) => options,
        Err(message) => {
            println!("udp-echo: {message}; usage: udp-echo [-p PORT] [-n COUNT]");
            return 2;
        }
    };
    let socket = match UdpSocket::bind(port) {
        Ok(socket) => socket,
        Err(error) => {
            println!("udp-echo: cannot bind udp port {port}: {error:?}");
            return 1;
        }
    };
    println!("udp-echo: listening on udp port {port}");
    let mut buffer = [0u8; 2048];
    let mut echoed = 0;
    while count.is_none_or(|count| echoed < count) {
        let (length, peer) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(error) => {
                println!("udp-echo: receive: {error:?}");
                continue;
            }
        };
        match socket.send_to(&buffer[..length], peer) {
            Ok(()) => echoed += 1,
            Err(error) => println!("udp-echo: reply to {peer}: {error:?}"),
        }
    }
    net::finish(net::FINISH_TICKS);
    println!("udp-echo: echoed {echoed} datagrams");
    println!("udp-echo: stack: {}", net::report());
    0
}
