//! Checks the sockets API inside the guest, where no host program is
//! needed: typed refusals for bad ids, ports, echo identifiers and
//! arguments; ports shared
//! out between programs by the kernel and freed when a program ends; a
//! refused connection reported as a reset; and a thread waiting on the
//! network sleeping in the kernel instead of polling.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use core::net::{Ipv4Addr, SocketAddrV4};

use exo_abi::syscall::EnvironmentAccount;
use exo_abi::{Handle, user};
use libos_net::{MAX_TCP_BUFFER, MIN_TCP_BUFFER, NetError, PollEntry, Readiness, SocketId};
use libos_posixish::net::{self, TcpListener, UdpSocket};
use libos_posixish::process::{self, ExitStatus};
use libos_posixish::{Errno, println, thread};

use userapps_posix::check::{self, check};

libos_posixish::main!(main);

/// A port `udp-echo` holds in a child while this program tries it.
const CHILD_PORT: u16 = 7202;
/// How long the idle check waits, in ticks.
const IDLE_TICKS: u64 = 300;
/// System calls the whole machine may make meanwhile (the file server's
/// and this program's waits, a few ticks' worth): polling would make
/// thousands.
const IDLE_CALLS_AT_MOST: u64 = 40;

fn main(_arguments: &[&str]) -> i32 {
    bad_ids_and_arguments();
    ports_are_exclusive_within_a_program();
    echo_identifiers_are_like_ports();
    ports_are_exclusive_between_programs();
    refused_connection_is_a_reset();
    waiting_sleeps_in_the_kernel();
    println!("net-sockets-test: stack: {}", net::report());
    check::all_passed("net-sockets-test");
    0
}

fn bad_ids_and_arguments() {
    let unknown = SocketId(u32::MAX);
    let mut buffer = [0u8; 8];
    let results = net::with_stack(|stack| {
        (
            stack.read(unknown, &mut buffer),
            stack.write(unknown, b"x"),
            stack.close(unknown),
            stack.accept(unknown).map(|_| ()),
            stack.recv_from(unknown, &mut buffer).map(|_| ()),
        )
    })
    .expect("a stack");
    assert_eq!(results.0, Err(NetError::InvalidSocket));
    assert_eq!(results.1, Err(NetError::InvalidSocket));
    assert_eq!(results.2, Err(NetError::InvalidSocket));
    assert_eq!(results.3, Err(NetError::InvalidSocket));
    assert_eq!(results.4, Err(NetError::InvalidSocket));
    // A UDP socket is not a TCP stream, nor a listener.
    let udp = UdpSocket::bind(7203).expect("bind 7203");
    let wrong_kind = net::with_stack(|stack| stack.read(udp.id(), &mut buffer)).unwrap();
    assert_eq!(wrong_kind, Err(NetError::InvalidSocket));
    assert_eq!(TcpListener::bind(0, 4).unwrap_err(), Errno::EINVAL);
    // A receive buffer outside the stack's bounds is refused, and takes no port.
    for bytes in [0, MIN_TCP_BUFFER - 1, MAX_TCP_BUFFER + 1, usize::MAX] {
        let refused = TcpListener::bind_receiving(7204, 4, bytes).unwrap_err();
        assert_eq!(refused, Errno::EINVAL, "{bytes}-byte receive buffer");
    }
    let _small = TcpListener::bind_receiving(7204, 4, MIN_TCP_BUFFER).expect("listen 7204");
    // Polling an id that names nothing reports a hang-up, not a panic.
    let mut entries = [PollEntry::new(unknown, Readiness::READABLE)];
    assert_eq!(net::poll(&mut entries, Some(1)), Ok(1));
    assert!(entries[0].ready.hangup);
    check(
        format_args!("bad ids and arguments are refused with typed errors"),
        true,
    );
}

fn ports_are_exclusive_within_a_program() {
    let listener = TcpListener::bind(7200, 4).expect("listen 7200");
    assert_eq!(TcpListener::bind(7200, 4).unwrap_err(), Errno::EADDRINUSE);
    let udp = UdpSocket::bind(7201).expect("bind 7201");
    assert_eq!(UdpSocket::bind(7201).unwrap_err(), Errno::EADDRINUSE);
    let ephemeral = UdpSocket::bind(0).expect("an ephemeral port");
    let port = ephemeral.local_port().unwrap();
    assert!(port >= 49152, "ephemeral port {port}");
    drop((listener, udp));
    // Closed sockets give their ports back.
    let _again = TcpListener::bind(7200, 4).expect("listen 7200 again");
    let _udp_again = UdpSocket::bind(7201).expect("bind 7201 again");
    check(
        format_args!("a port is used once in a program, and freed by close"),
        true,
    );
}

fn echo_identifiers_are_like_ports() {
    let (zero, first, twice) =
        net::with_stack(|stack| (stack.icmp_bind(0), stack.icmp_bind(77), stack.icmp_bind(77)))
            .expect("a stack");
    assert_eq!(zero, Err(NetError::InvalidArgument), "identifier 0");
    assert_eq!(twice, Err(NetError::AddressInUse));
    let first = first.expect("identifier 77");
    let again = net::with_stack(|stack| {
        stack.close(first).expect("close");
        stack.icmp_bind(77)
    })
    .expect("a stack");
    assert!(again.is_ok(), "identifier 77 after close: {again:?}");
    check(
        format_args!("an echo identifier is used once, and freed by close"),
        true,
    );
}

fn ports_are_exclusive_between_programs() {
    let port = alloc::format!("{CHILD_PORT}");
    let child = process::spawn("udp-echo", &["-p", &port]).expect("spawn udp-echo");
    // The child binds soon; until it has, the port may still be ours to take.
    let mut refused = false;
    for _ in 0..200 {
        match UdpSocket::bind(CHILD_PORT) {
            Err(Errno::EADDRINUSE) => {
                refused = true;
                break;
            }
            Ok(socket) => {
                drop(socket);
                thread::sleep(10);
            }
            Err(error) => panic!("bind {CHILD_PORT}: {error:?}"),
        }
    }
    assert!(refused, "the child never held udp port {CHILD_PORT}");
    process::kill(child).expect("kill the child");
    assert_eq!(process::wait(child), Ok(ExitStatus::Killed));
    // The kernel dropped the child's filters with the child.
    let _mine = UdpSocket::bind(CHILD_PORT).expect("the port is free again");
    check(
        format_args!("another program's port is refused, and freed when it ends"),
        true,
    );
}

fn refused_connection_is_a_reset() {
    // Nothing listens on the host's port 1: QEMU's user network answers the
    // connection request with a reset.
    let peer = SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 2), 1);
    let id = net::with_stack(|stack| stack.connect(peer))
        .unwrap()
        .expect("a connection attempt");
    let mut entries = [PollEntry::new(id, Readiness::WRITABLE)];
    let ready = net::poll(&mut entries, Some(5_000)).expect("poll");
    assert_eq!(ready, 1, "no answer to a connection request within 5 s");
    assert!(entries[0].ready.hangup, "{:?}", entries[0].ready);
    let mut buffer = [0u8; 4];
    let read = net::with_stack(|stack| stack.read(id, &mut buffer)).unwrap();
    assert_eq!(read, Err(NetError::ConnectionReset));
    net::close(id);
    check(format_args!("a refused connection reads as a reset"), true);
}

fn waiting_sleeps_in_the_kernel() {
    let socket = UdpSocket::bind(7204).expect("bind 7204");
    let mut entries = [PollEntry::new(socket.id(), Readiness::READABLE)];
    // Its own calls, not the machine's: servers a shell started may be running too.
    let own_calls = || {
        user::environment_info(Handle::SELF_ENVIRONMENT, EnvironmentAccount::SystemCalls)
            .expect("its own account")
    };
    let calls = own_calls();
    let started = thread::ticks();
    assert_eq!(net::poll(&mut entries, Some(IDLE_TICKS)), Ok(0));
    let waited = thread::ticks() - started;
    let made = own_calls() - calls;
    assert!(waited >= IDLE_TICKS, "woke after {waited} ticks");
    assert!(
        made <= IDLE_CALLS_AT_MOST,
        "{made} system calls in {waited} idle ticks"
    );
    check(
        format_args!("{waited} idle ticks waiting on the network cost {made} system calls"),
        true,
    );
}
