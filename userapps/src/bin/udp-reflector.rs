//! udp-reflector: the floor of a UDP round trip on exo. Every datagram to UDP port 7 goes
//! straight back from the receive ring to the transmit ring, its addresses and ports
//! swapped, with no stack, no socket and no copy beyond the one between the two rings.
//! `cargo xtask bench` measures the UDP echo round trip against it (docs/07): what the
//! echo servers spend above this is their library OS's, not the kernel's or the wire's.
//!
//! It waits like the ring path of `libos-net` does: it polls the receive ring, and when it
//! finds it empty sleeps in `Wait(NOTIFY)` until the kernel signals a frame landing there;
//! it kicks the kernel only when the transmit ring asks (`NEED_WAKEUP`).
//!
//! Swapping the addresses keeps both checksums right: the IPv4 header checksum and the UDP
//! checksum (over a pseudo-header holding both addresses) are sums, and a sum does not
//! change when two of its terms trade places.
//!
//! It prints [`READY`] once its filters are in place; at the end of console input (Ctrl-D,
//! which the host types when it is done) it prints how many datagrams it reflected and
//! exits.
//!
//! `init_argument=N` on the kernel command line: first make N more bindings that never send
//! or receive anything, so the bench can show that idle bindings cost a busy one nothing
//! (the kernel drains only the transmit rings it polls). One environment holds at most
//! [`IDLE_PER_ENVIRONMENT`] of them (two capabilities each, in a table of 1,024); the rest
//! are held by children that make theirs and sleep.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::handle::TABLE_CAPACITY;
use exo_abi::net::{Filter, MAX_FRAME};
use exo_abi::syscall::Event;
use exo_abi::user::{self, Lend, Wakeup};
use userapps::layout::MANAGED_START;
use userapps::net::{self, Binding, GUEST, Station};
use userapps::println;
use userapps::spawn::{Child, MAX_CHILD_FRAMES};

userapps::entry!(main);

/// The echo port, as the echo servers use.
const PORT: u16 = 7;
const RINGS: u64 = MANAGED_START;
/// Entries a ring holds, as `2^RING_ORDER` frames give them.
const RING_ORDER: u32 = 6;
/// The idle bindings' rings: the smallest run `NetBind` takes.
const IDLE_RING_ORDER: u32 = 2;
/// Idle bindings one environment makes: each takes two capabilities (its frames and the
/// binding), and the table keeps room for the environment's own.
const IDLE_PER_ENVIRONMENT: u64 = (TABLE_CAPACITY as u64 - 124) / 2;
/// Children holding idle bindings, at most: 2,250 idle bindings in all with ours.
const MAX_HOLDERS: usize = 4;

/// How long it sleeps, with nothing arriving, before it looks at the console.
const IDLE_TICKS: u64 = 10;

/// The line the host waits for.
const READY: &str = "udp-reflector: ready on UDP 7";

fn main(idle_bindings: u64) -> u64 {
    let ours = idle_bindings.min(IDLE_PER_ENVIRONMENT);
    make_idle_bindings(ours);
    // Kept until the end: dropping a holder destroys it, and its bindings with it.
    let _holders = start_holders(idle_bindings - ours);
    let Station {
        mac, mut binding, ..
    } = Station::on_notified_rings(RING_ORDER, RINGS, &[Filter::arp(), Filter::udp(PORT)])
        .expect("claim 10.0.2.15 and bind");
    println!("{READY}");
    let mut reflected = 0u64;
    let mut reply = [0; MAX_FRAME];
    loop {
        let Some(length) = binding
            .rings
            .receive(|frame| answer(frame, mac, &mut reply))
        else {
            // Empty: sleep until the kernel signals a frame in the empty ring (one that came
            // since the look above has set the bit already: Wait returns at once). Only when
            // nothing came for a while, look at the console.
            match user::wait(Event::NOTIFY | Event::TIMER, IDLE_TICKS) {
                Ok(Wakeup::Timer) if userapps::console::input_ended() => break,
                _ => continue,
            }
        };
        if length > 0 {
            binding.send(&reply[..length]).expect("queue a reflection");
            reflected += u64::from(net::parse_udp(&reply[..length]).is_some());
        }
    }
    println!("udp-reflector: reflected {reflected} datagrams");
    0
}

fn make_idle_bindings(count: u64) {
    for _ in 0..count {
        Binding::idle(IDLE_RING_ORDER).expect("an idle binding");
    }
}

/// Children that hold `count` idle bindings between them, each as many as one table
/// takes; returns once every one has made its bindings and sleeps.
fn start_holders(count: u64) -> [Option<Child>; MAX_HOLDERS] {
    let mut holders = [const { None }; MAX_HOLDERS];
    let mut left = count;
    for holder in &mut holders {
        if left == 0 {
            break;
        }
        let share = left.min(IDLE_PER_ENVIRONMENT);
        let child = Child::create_lending(Lend {
            frames: MAX_CHILD_FRAMES as u64 + (share << IDLE_RING_ORDER),
            ..Lend::default()
        })
        .expect("a child to hold idle bindings");
        child.start(hold_idle_bindings, share).expect("start it");
        // It runs until it sleeps, its bindings made.
        child.run_until_blocked();
        assert!(child.is_alive(), "a holder of idle bindings died");
        *holder = Some(child);
        left -= share;
    }
    assert_eq!(left, 0, "at most {MAX_HOLDERS} holders of idle bindings");
    holders
}

/// A holder's life: `count` idle bindings, then sleep until destroyed.
fn hold_idle_bindings(count: u64) -> u64 {
    make_idle_bindings(count);
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}

/// What to send back for `frame` into `out` (its length; 0 for nothing): an ARP reply for
/// our address, or the datagram itself, reflected.
fn answer(frame: &[u8], mac: [u8; 6], out: &mut [u8; MAX_FRAME]) -> usize {
    // LAB 6.1 BEGIN: answer ARP, and take only whole datagrams to our address and port
    if let Some(length) = net::answer_arp(frame, mac, GUEST, out) {
        return length;
    }
    // `parse_udp` finds whole headers or nothing: a short or malformed frame is dropped.
    let is_ours = net::parse_udp(frame)
        .is_some_and(|udp| udp.destination == GUEST && udp.destination_port == PORT);
    if !is_ours || frame.len() > out.len() {
        return 0;
    }
    let out = &mut out[..frame.len()];
    out.copy_from_slice(frame);
    reflect(out);
    frame.len()
    // LAB 6.1 STUB
    // // Lab 6.1: answer an ARP request for our address (`net::answer_arp`); copy a
    // // whole UDP datagram to GUEST:PORT into `out` and `reflect` it there; drop
    // // everything else (return 0). Until then nothing is answered.
    // let _ = (frame, mac, out);
    // 0
    // LAB 6.1 END
}

/// Swaps the Ethernet addresses, the IPv4 addresses and the UDP ports of the datagram in
/// `frame` (`parse_udp` found whole IPv4 and UDP headers in it).
fn reflect(frame: &mut [u8]) {
    // LAB 6.2 BEGIN: reflect a datagram: swap its addresses and ports
    swap(frame, 0, 6, 6);
    let ip = 14;
    let header = usize::from(frame[ip] & 0xf) * 4;
    swap(frame, ip + 12, ip + 16, 4);
    let udp = ip + header;
    swap(frame, udp, udp + 2, 2);
    // LAB 6.2 STUB
    // // Lab 6.2: swap the Ethernet addresses, the IPv4 addresses and the UDP
    // // ports in place (`swap`); mind the IPv4 header's length. Until then the
    // // datagram goes back as it came, and the kernel drops it as a spoof.
    // let _ = frame;
    // LAB 6.2 END
}

/// Swaps `frame[a..a + length]` with `frame[b..b + length]` (not overlapping).
fn swap(frame: &mut [u8], a: usize, b: usize, length: usize) {
    for offset in 0..length {
        frame.swap(a + offset, b + offset);
    }
}
