//! Ring memory that goes while its binding lives: the binding goes with it, and the kernel
//! never writes a received frame into frames that have gone back to the free pool.
//!
//! The parent claims 10.0.2.15 and binds UDP 7020 on rings of its own; an ARP reply for the
//! address reaches the bindings on it that asked (docs/05-network.md 5.3). A second
//! binding, its rings in a run of four frames, holds the address's ARP filter, asks the
//! gateway and receives the reply; it asks again, and while it waits for that reply its run
//! goes, two ways: the holder drops the frames' capability; a child that bound frames of
//! its own is destroyed. Each time the binding's capability must be gone, the parent must
//! get the very same frames back with `FrameAllocateAt` (they are free), and after more
//! replies have arrived every byte of them must still be the zero the allocator wrote.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::MapFlags;
use exo_abi::net::{Filter, MAX_FRAME};
use exo_abi::syscall::Event;
use exo_abi::{Error, Handle, Rights, user};
use userapps::layout::MANAGED_START;
use userapps::memory::{drop_capability, read_u64, write_u64};
use userapps::net::{self, Binding, GATEWAY, GUEST, Station};
use userapps::spawn::{Child, yield_until};
use userapps::{check, facts};

userapps::entry!(main);

const PORT: u16 = 7020;
/// The ring run under attack: four frames, the least a binding takes.
const ORDER: u32 = 2;
/// ARP requests sent after the run has gone.
const ROUNDS: u32 = 3;
const PATIENCE_TICKS: u64 = 10_000;
const CHILD_QUOTA: u64 = 96;

const SHARED_PAGE: u64 = MANAGED_START;
/// The child's first frame, once it has bound and filtered (0 before).
const CHILD_FRAME: u64 = SHARED_PAGE;
/// 1 once the child's `NetReceive` has returned a frame and it has asked again.
const CHILD_RECEIVED: u64 = SHARED_PAGE + 8;
/// The card's MAC, for the child's requests.
const MAC: u64 = SHARED_PAGE + 16;
const PARENT_RINGS: u64 = MANAGED_START + 0x10_0000;
/// Where the parent maps the frames it takes back, to read them.
const CHECK: u64 = MANAGED_START + 0x20_0000;

fn main(_argument: u64) -> u64 {
    let binding = Binding::new(PARENT_RINGS, None).expect("bind");
    let mut station = Station::start(binding, &[Filter::udp(PORT)]).expect("claim and bind");
    let (shared, _) = user::frame_allocate(0).expect("allocate the shared page");
    user::map(
        shared,
        Handle::SELF_ENVIRONMENT,
        SHARED_PAGE,
        MapFlags::WRITE,
    )
    .expect("map the shared page");

    // The holder drops the frames under its own binding.
    let (frames, binding) = Binding::idle_run(ORDER).expect("bind a run");
    user::net_filter(binding, station.address, Filter::arp()).expect("take ARP");
    ask_gateway(binding, station.mac);
    arp_round(&mut station);
    let mut frame = [0; MAX_FRAME];
    assert!(
        user::net_receive(binding, &mut frame).is_ok(),
        "no reply in the ring"
    );
    let first = user::capability_identify(frames).expect("identify").value;
    // Gone while it waits for a reply, so that one is on its way.
    ask_gateway(binding, station.mac);
    drop_capability(frames).expect("drop the frames");
    expect_gone(
        binding,
        first,
        &mut station,
        "its holder dropped the frames",
    );

    // A child bound on frames of its own is destroyed.
    let child = start_child(shared, &station);
    arp_round(&mut station);
    yield_until("the child receives", || read_u64(CHILD_RECEIVED) != 0);
    let first = read_u64(CHILD_FRAME);
    child.destroy();
    expect_free(first, &mut station, "its environment was destroyed");
    check::all_passed("hostile-ring-memory");
    0
}

/// Sends an ARP request for the gateway from `binding` by `NetSend`: it then waits among
/// the address's askers for the reply.
fn ask_gateway(binding: Handle, mac: [u8; 6]) {
    let mut frame = [0; MAX_FRAME];
    let length = net::build_arp(1, mac, GUEST, [0; 6], GATEWAY, &mut frame);
    user::net_send(binding, &frame[..length]).expect("send an ARP request");
}

/// Sends one ARP request for the gateway and waits until its reply has reached the
/// parent's binding; empties the parent's receive ring.
fn arp_round(station: &mut Station) {
    let before = station.binding.rings.counters().rx_packets;
    let mut frame = [0; MAX_FRAME];
    let length = net::build_arp(1, station.mac, GUEST, [0; 6], GATEWAY, &mut frame);
    station
        .binding
        .send(&frame[..length])
        .expect("send an ARP request");
    let deadline = facts::ticks() + PATIENCE_TICKS;
    while station.binding.rings.counters().rx_packets == before {
        assert!(facts::ticks() < deadline, "no ARP reply came");
        let _ = user::wait(Event::TIMER, 1);
    }
    while station.binding.rings.receive(|_| ()).is_some() {}
}

/// The binding is gone, and its frames are free and stay zero through [`ROUNDS`] replies.
fn expect_gone(binding: Handle, first: u64, station: &mut Station, how: &str) {
    assert!(
        user::net_kick(binding).is_err(),
        "the binding outlived its frames ({how})"
    );
    expect_free(first, station, how);
}

/// Takes the run at frame `first` back, and checks that replies arriving afterwards leave
/// every byte of it zero.
fn expect_free(first: u64, station: &mut Station, how: &str) {
    let frames = user::frame_allocate_at(first, ORDER)
        .unwrap_or_else(|error| panic!("the run did not come back ({how}): {error:?}"));
    user::map(frames, Handle::SELF_ENVIRONMENT, CHECK, MapFlags::WRITE).expect("map it");
    for _ in 0..ROUNDS {
        arp_round(station);
    }
    let bytes = PAGE_SIZE << ORDER;
    for offset in (0..bytes).step_by(8) {
        let word = read_u64(CHECK + offset);
        assert_eq!(
            word, 0,
            "byte {offset} of the freed run was written ({how})"
        );
    }
    drop_capability(frames).expect("give the run back");
    check::ok(format_args!(
        "the binding went with its frames and nothing reached them once free: {how}"
    ));
}

/// A child given the address, started on [`bound_on_its_own`]; returns once it has bound.
fn start_child(shared: Handle, station: &Station) -> Child {
    write_u64(CHILD_FRAME, 0);
    write_u64(CHILD_RECEIVED, 0);
    let mut mac = [0; 8];
    mac[..6].copy_from_slice(&station.mac);
    write_u64(MAC, u64::from_le_bytes(mac));
    let child = Child::create(CHILD_QUOTA).expect("create a child");
    user::map(shared, child.environment(), SHARED_PAGE, MapFlags::WRITE).expect("share the page");
    let address = user::capability_grant(station.address, child.environment(), Rights::BIND)
        .expect("grant the address");
    child
        .start(bound_on_its_own, address.to_raw())
        .expect("start the child");
    yield_until("the child binds", || read_u64(CHILD_FRAME) != 0);
    child
}

/// Binds a run of its own, mapped nowhere, takes the address's ARP filter, reports the
/// run's first frame, asks the gateway until a reply comes, asks once more and reports;
/// then sleeps until destroyed.
fn bound_on_its_own(address: u64) -> u64 {
    let (frames, binding) = Binding::idle_run(ORDER).expect("bind a run");
    user::net_filter(binding, Handle::from_raw(address), Filter::arp()).expect("take ARP");
    let first = user::capability_identify(frames).expect("identify").value;
    write_u64(CHILD_FRAME, first);
    let mut mac = [0; 6];
    mac.copy_from_slice(&read_u64(MAC).to_le_bytes()[..6]);
    let mut frame = [0; MAX_FRAME];
    'asking: loop {
        ask_gateway(binding, mac);
        for _ in 0..100 {
            if user::net_receive(binding, &mut frame) != Err(Error::WouldBlock) {
                break 'asking;
            }
            let _ = user::wait(Event::TIMER, 1);
        }
    }
    ask_gateway(binding, mac);
    write_u64(CHILD_RECEIVED, 1);
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}
