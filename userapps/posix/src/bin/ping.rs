//! Sends ICMP echo requests and counts the replies: `ping [-c COUNT] ADDRESS`
//! (4 by default, one a second). Under QEMU's user-mode network the gateway,
//! 10.0.2.2, answers. The echo identifier is the process id: the kernel
//! gives its replies to this program's stack, whichever program on the
//! address answers pings.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec;
use core::net::Ipv4Addr;

use libos_net::{PollEntry, Readiness};
use libos_posixish::{args, getpid, net, println, thread};

libos_posixish::main!(main);

/// Bytes of payload after the 8-byte ICMP header.
const PAYLOAD: usize = 56;

fn main(arguments: &[&str]) -> i32 {
    let count = match args::parsed::<u16>(arguments, "-c") {
        Ok(count) => count.unwrap_or(4),
        Err(message) => {
            println!("ping: {message}");
            return 2;
        }
    };
    let operands = args::operands(arguments, &["-c"]);
    let Some(peer) = operands
        .first()
        .and_then(|word| word.parse::<Ipv4Addr>().ok())
    else {
        println!("usage: ping [-c COUNT] ADDRESS");
        return 2;
    };
    // Identifier 0 names the address's own ICMP filter, not an echo.
    let identifier = (getpid() as u16).max(1);
    let socket = match net::with_stack(|stack| stack.icmp_bind(identifier)) {
        Ok(Ok(socket)) => socket,
        Ok(Err(error)) => {
            println!("ping: {error}");
            return 1;
        }
        Err(error) => {
            println!("ping: no network: {error:?}");
            return 1;
        }
    };
    let second = thread::ticks_per_second();
    let mut received = 0;
    for sequence in 0..count {
        let mut request = vec![0u8; 8 + PAYLOAD];
        request[0] = 8; // echo request
        request[4..6].copy_from_slice(&identifier.to_be_bytes());
        request[6..8].copy_from_slice(&sequence.to_be_bytes());
        for (index, byte) in request[8..].iter_mut().enumerate() {
            *byte = index as u8;
        }
        // smoltcp fills in the checksum as it sends.
        let sent_at = thread::ticks();
        if let Ok(Err(error)) = net::with_stack(|stack| stack.icmp_send(socket, &request, peer)) {
            println!("ping: send: {error}");
            continue;
        }
        let deadline = sent_at + second;
        while thread::ticks() < deadline {
            let mut entry = [PollEntry::new(socket, Readiness::READABLE)];
            let left = deadline.saturating_sub(thread::ticks()).max(1);
            if net::poll(&mut entry, Some(left)).unwrap_or(0) == 0 {
                continue;
            }
            let mut reply = [0u8; 256];
            let got = net::with_stack(|stack| stack.icmp_recv(socket, &mut reply));
            if let Ok(Ok((length, from))) = got
                && length >= 8
                && reply[0] == 0
                && reply[6..8] == sequence.to_be_bytes()
            {
                let ticks = thread::ticks() - sent_at;
                println!(
                    "{} bytes from {from}: icmp_seq={sequence} time={} ms",
                    length,
                    ticks * 1000 / second.max(1)
                );
                received += 1;
                break;
            }
        }
        if sequence + 1 < count {
            thread::sleep(deadline.saturating_sub(thread::ticks()));
        }
    }
    let _ = net::with_stack(|stack| stack.close(socket));
    println!("ping: {count} sent, {received} received");
    if received > 0 { 0 } else { 1 }
}
