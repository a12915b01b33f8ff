//! Hostile rings: an environment that writes random indices, lengths, flags and frames into
//! its own rings, and calls the network system calls with garbage, disturbs neither the
//! kernel nor its neighbour.
//!
//! The parent echoes UDP on port 7003 (and answers ARP); a child bound to UDP 7004 scribbles
//! over every word of its control page and its transmit slots, kicks, and sends and receives
//! with random arguments, for as long as it lives. The host sends datagrams to both ports;
//! the parent must echo every one sent to it, and the host's capture must show none of the
//! child's frames (each carries `hostile!`). Afterwards the parent's counters show no drop,
//! error or spoof, and the kernel's show the child's frames refused.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::MapFlags;
use exo_abi::net::{Filter, control};
use exo_abi::syscall::{Event, Sysnum};
use exo_abi::user::{self, Wakeup};
use exo_abi::{Handle, Rights};
use userapps::check::{self, ok};
use userapps::hostile::{self, Garbage};
use userapps::layout::MANAGED_START;
use userapps::memory::{read_u64, write_u64};
use userapps::net::{self, Binding, Station};
use userapps::spawn::{Child, yield_until};
use userapps::{facts, println};

userapps::entry!(main);

const PARENT_PORT: u16 = 7003;
const CHILD_PORT: u16 = 7004;
const DATAGRAMS: u64 = 20;

const SHARED_PAGE: u64 = MANAGED_START;
const CHILD_READY: u64 = SHARED_PAGE;
const CHILD_ROUNDS: u64 = SHARED_PAGE + 8;
const PARENT_RINGS: u64 = MANAGED_START + 0x10_0000;
const CHILD_RINGS: u64 = MANAGED_START + 0x20_0000;
const CHILD_QUOTA: u64 = 96;

fn main(_argument: u64) -> u64 {
    let notification = user::notification_create(1).expect("a notification");
    let binding = Binding::new(PARENT_RINGS, Some(notification)).expect("bind");
    let Station {
        mac,
        address,
        mut binding,
        ..
    } = Station::start(binding, &[Filter::arp(), Filter::udp(PARENT_PORT)])
        .expect("claim 10.0.2.15 and bind");

    let (shared, _) = user::frame_allocate(0).expect("allocate the shared page");
    user::map(
        shared,
        Handle::SELF_ENVIRONMENT,
        SHARED_PAGE,
        MapFlags::WRITE,
    )
    .expect("map the shared page");
    let child = Child::create(CHILD_QUOTA).expect("create the child");
    user::map(shared, child.environment(), SHARED_PAGE, MapFlags::WRITE).expect("share the page");
    let theirs = user::capability_grant(address, child.environment(), Rights::BIND)
        .expect("grant the child the address");
    child
        .start(hostile_child, theirs.to_raw())
        .expect("start the child");
    yield_until("the child binds", || read_u64(CHILD_READY) == 1);
    println!("net-hostile: ready");

    let (mut served, mut foreign) = (0, 0);
    while served < DATAGRAMS {
        match user::wait(Event::NOTIFY, 0) {
            Ok(Wakeup::Notify(_)) => {}
            other => panic!("wait returned {other:?}"),
        }
        net::serve_echo(
            &mut binding,
            mac,
            PARENT_PORT,
            true,
            &mut served,
            &mut foreign,
        );
    }
    binding.flush().expect("flush the last echo");
    assert!(read_u64(CHILD_ROUNDS) > 0, "the child never ran");
    assert_eq!(foreign, 0);
    let counters = binding.rings.counters();
    assert_eq!(
        (counters.rx_drops, counters.tx_errors, counters.spoofs),
        (0, 0, 0),
        "{counters:?}"
    );
    ok("the neighbour echoed every datagram while the child scribbled on its rings");
    println!(
        "net-hostile: the child ran {} rounds of garbage",
        read_u64(CHILD_ROUNDS)
    );
    let refused = facts::counter(exo_abi::counters::Counter::FramesRefused);
    assert!(refused > 0, "no frame of the child's was refused");
    child.destroy();
    ok("the kernel refused the child's frames and carried on");
    check::all_passed("net-hostile");
    0
}

/// Writes random words over its control page, random lengths and frames into its transmit
/// ring, kicks, and makes the network calls with random arguments; forever.
fn hostile_child(address: u64) -> u64 {
    let address = Handle::from_raw(address);
    let binding = Binding::new(CHILD_RINGS, None).expect("bind");
    user::net_filter(binding.handle, address, Filter::udp(CHILD_PORT)).expect("bind 7004");
    write_u64(CHILD_READY, 1);
    let mut garbage = Garbage::new(0x5eed_0000_0000_0007);
    let mut rounds = 0;
    loop {
        // Every word the kernel reads: indices, flags, descriptors, counters.
        for _ in 0..64 {
            let word = garbage.next_u64();
            let offset = match word % 4 {
                0 => control::RX_CONSUMER,
                1 => control::TX_PRODUCER,
                2 => control::TX_DESCRIPTORS + 8 * (word >> 8 & 3),
                _ => (word >> 8) % (PAGE_SIZE / 8) * 8,
            };
            write_u64(CHILD_RINGS + offset, garbage.next_u64());
        }
        // Transmit slots full of random headers and the marker the host looks for.
        for slot in 0..16 {
            let at = CHILD_RINGS + PAGE_SIZE + slot * 2048;
            for word in 0..16 {
                write_u64(at + word * 8, garbage.next_u64());
            }
            write_u64(at + 128, u64::from_le_bytes(*b"hostile!"));
        }
        let _ = user::net_kick(binding.handle);
        let mut buffer = [0u8; 256];
        let _ = user::net_receive(binding.handle, &mut buffer);
        let _ = user::net_send(binding.handle, &buffer[..64]);
        // Raw calls with random registers, tamed so they cannot take our own memory away.
        for number in [
            Sysnum::NetKick,
            Sysnum::NetSend,
            Sysnum::NetFilter,
            Sysnum::NetClaim,
        ] {
            let mut arguments = garbage.arguments();
            arguments[0] = if garbage.next_u64().is_multiple_of(2) {
                binding.handle.to_raw()
            } else {
                arguments[0]
            };
            hostile::tame(number as u64, &mut arguments);
            if let Some(Err(code)) = hostile::call(number as u64, arguments) {
                assert!(hostile::is_typed_error(code), "{number:?} returned {code}");
            }
        }
        // Our own view of the rings still works, or says why not.
        let _ = binding.rings.rx_pending();
        let _ = binding.rings.transmit(60, |frame| frame.fill(0x68));
        rounds += 1;
        write_u64(CHILD_ROUNDS, rounds);
    }
}
