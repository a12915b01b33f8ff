//! The data path needs no system call per packet: under load, the ring path's counters show
//! no system call at all, where the per-packet path makes one per frame.
//!
//! 1. Transmit: 2,000 datagrams to the host's discard port through the transmit ring, kept
//!    full. The kernel drains it at interrupts and ticks while it keeps finding entries, so
//!    after the first kick the producer never needs another.
//!    A frame queued just before a `Wait` that returns at once (a signal was pending) has
//!    left the ring when the `Wait` returns.
//! 2. Receive: the host sends 300 datagrams; the program takes the first half from the
//!    receive ring by polling memory, the rest by `NetReceive`, one system call each.
//! 3. The same 2,000 datagrams by `NetSend`: one system call each.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::net::{Filter, MAX_FRAME};
use exo_abi::syscall::Event;
use exo_abi::user;
use userapps::check::{self, ok};
use userapps::layout::MANAGED_START;
use userapps::net::{self, Binding, GATEWAY, GATEWAY_MAC, GUEST, Station, UdpFrame};
use userapps::{facts, println};

userapps::entry!(main);

const PORT: u16 = 7005;
const DISCARD: u16 = 9;
const SENT: u64 = 2_000;
/// After this many, the ring path is in steady state: the first kick is behind it.
const WARM_UP: u64 = 100;
const RECEIVED: u64 = 300;
/// How long to wait for the host's datagrams before giving up, in ticks.
const RECEIVE_TICKS: u64 = 30_000;
const RINGS: u64 = MANAGED_START;

fn main(_argument: u64) -> u64 {
    // The notification wakes the per-packet receiver; the ring path never waits for it.
    let notification = user::notification_create(1).expect("a notification");
    let binding =
        Binding::with(8, exo_abi::Rights::FRAME, RINGS, Some(notification)).expect("bind");
    let Station {
        mac, mut binding, ..
    } = Station::start(binding, &[Filter::arp(), Filter::udp(PORT)])
        .expect("claim 10.0.2.15 and bind");
    let mut frame = [0; MAX_FRAME];

    let datagram = UdpFrame {
        source_mac: mac,
        destination_mac: GATEWAY_MAC,
        source: GUEST,
        destination: GATEWAY,
        source_port: PORT,
        destination_port: DISCARD,
        payload: b"steady state",
    };
    let length = net::build_udp(&datagram, &mut frame);
    let frame = &frame[..length];

    // 1. Transmit through the ring.
    let mut warm = None;
    for index in 0..SENT {
        if index == WARM_UP {
            warm = Some(binding.rings.counters());
        }
        // A full ring waits for the kernel's next drain, without a system call.
        while binding.rings.tx_free() == 0 {
            core::hint::spin_loop();
        }
        binding.send(frame).expect("queue a datagram");
    }
    while binding.rings.counters().tx_packets < SENT + 1 {
        core::hint::spin_loop();
    }
    let warm = warm.expect("past the warm-up");
    let end = binding.rings.counters();
    let steady_calls = end.syscalls - warm.syscalls;
    let steady_packets = end.tx_packets - warm.tx_packets;
    println!(
        "net-steady: ring transmit: {steady_packets} frames in steady state, {steady_calls} system calls ({} kicks in all)",
        end.kicks
    );
    assert_eq!(steady_calls, 0, "{end:?}");
    ok("the transmit ring needed no system call per packet in steady state");

    // A `Wait` sends what the ring holds, even one that returns at once (a signal is
    // pending) and so never leaves the CPU: a frame queued just before it must not wait
    // for the next tick. The kick makes the kernel poll the ring again, so the frame
    // below is queued without one.
    user::net_kick(binding.handle).expect("kick");
    user::signal(notification).expect("signal ourselves");
    let kick_asked = binding
        .rings
        .transmit(frame.len(), |slot| slot.copy_from_slice(frame))
        .expect("queue one datagram");
    assert!(!kick_asked, "the kernel polls the ring just after a kick");
    let woke = user::wait(Event::NOTIFY, 0).expect("wait");
    assert!(matches!(woke, user::Wakeup::Notify(_)), "{woke:?}");
    assert_eq!(
        binding.rings.tx_free(),
        binding.rings.entries(),
        "the frame was still in the ring after the Wait"
    );
    ok("a Wait that returns at once has sent what the ring held");

    // 2. Receive by polling the ring.
    let before = binding.rings.counters();
    println!("net-steady: receiving");
    let deadline = facts::ticks() + RECEIVE_TICKS;
    let mut received = 0;
    while received < RECEIVED / 2 && facts::ticks() < deadline {
        if binding
            .rings
            .receive(|frame| net::parse_udp(frame).is_some_and(|udp| udp.destination_port == PORT))
            == Some(true)
        {
            received += 1;
        }
    }
    let after = binding.rings.counters();
    println!(
        "net-steady: ring receive: {received} datagrams, {} system calls, {} dropped",
        after.syscalls - before.syscalls,
        after.rx_drops
    );
    assert_eq!(
        received,
        RECEIVED / 2,
        "the host's datagrams did not all arrive"
    );
    assert_eq!(after.syscalls, before.syscalls);
    ok("the receive ring needed no system call per packet");

    // The rest by `NetReceive`: the same ring, one system call (or more) per frame.
    let mut buffer = [0; MAX_FRAME];
    let before = after;
    let mut by_call = 0;
    while by_call < RECEIVED / 2 && facts::ticks() < deadline {
        match user::net_receive(binding.handle, &mut buffer) {
            Ok(length) => {
                if net::parse_udp(&buffer[..length]).is_some_and(|udp| udp.destination_port == PORT)
                {
                    by_call += 1;
                }
            }
            // Nothing yet: sleep until a frame lands in the empty ring.
            Err(exo_abi::Error::WouldBlock) => {
                let _ = user::wait(Event::NOTIFY | Event::TIMER, 100);
            }
            Err(error) => panic!("NetReceive: {error}"),
        }
    }
    let after = binding.rings.counters();
    let calls = after.syscalls - before.syscalls;
    println!("net-steady: per-packet receive: {by_call} datagrams, {calls} system calls");
    assert_eq!(
        by_call,
        RECEIVED / 2,
        "the host's datagrams did not all arrive"
    );
    assert!(calls >= by_call);
    ok("the per-packet path receives with a system call for every frame");

    // 3. The per-packet path, for comparison.
    let before = binding.rings.counters();
    for _ in 0..SENT {
        while user::net_send(binding.handle, frame) == Err(exo_abi::Error::WouldBlock) {
            user::yield_now();
        }
    }
    let after = binding.rings.counters();
    let calls = after.syscalls - before.syscalls;
    println!(
        "net-steady: per-packet transmit: {} frames, {calls} system calls",
        after.tx_packets - before.tx_packets
    );
    assert!(calls >= SENT);
    ok("the per-packet path makes a system call for every frame");
    check::all_passed("net-steady");
    0
}
