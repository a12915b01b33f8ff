//! NIC multiplexing: two environments bound to different UDP ports on one address each
//! receive only their own traffic, and every bind or send outside what they own is refused.
//!
//! The parent claims 10.0.2.15 with the NIC capability and binds ARP, ICMP and UDP 7001; a
//! child, granted the address, binds UDP 7002 on rings in its own frames. The host (`cargo
//! xtask test`) sends datagrams to both ports through QEMU's port forwarding and expects each
//! echoed back as `echo:<payload>` from the port it went to; each side counts any UDP frame
//! that was not for its port. Before that, both try to send frames from sources they do not
//! own, by system call and through the ring: each is refused and counted, and the packet
//! capture on the host shows none of them (`spoofed!` never leaves the guest).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::mapping::MapFlags;
use exo_abi::net::{Filter, LIMITED_BROADCAST, MAX_FRAME, ipv4};
use exo_abi::syscall::{CapabilityKind, Event};
use exo_abi::user::{self, Wakeup};
use exo_abi::{Error, Handle, Rights};
use userapps::check::{self, expect_error, ok};
use userapps::layout::MANAGED_START;
use userapps::memory::{drop_capability, read_u64, write_u64};
use userapps::net::{self, Binding, GATEWAY, GATEWAY_MAC, GUEST, Station, UdpFrame};
use userapps::println;
use userapps::spawn::{Child, yield_until};

userapps::entry!(main);

const PARENT_PORT: u16 = 7001;
const CHILD_PORT: u16 = 7002;
/// Datagrams the host sends to each port.
const DATAGRAMS: u64 = 20;

/// The page both share: the child's results and its notification for the parent.
const SHARED_PAGE: u64 = MANAGED_START;
const CHILD_READY: u64 = SHARED_PAGE;
const CHILD_SERVED: u64 = SHARED_PAGE + 8;
const CHILD_FOREIGN: u64 = SHARED_PAGE + 16;
const CHILD_SPOOF_REFUSED: u64 = SHARED_PAGE + 24;
const CHILD_OVERLAP_REFUSED: u64 = SHARED_PAGE + 32;
const CHILD_NOTIFICATION: u64 = SHARED_PAGE + 40;
const CHILD_SPOOFS_COUNTED: u64 = SHARED_PAGE + 48;
/// The NIC's MAC, which the parent tells the child (it holds no NIC capability).
const NIC_MAC: u64 = SHARED_PAGE + 56;
const PARENT_RINGS: u64 = MANAGED_START + 0x10_0000;
const CHILD_RINGS: u64 = MANAGED_START + 0x20_0000;
/// Where the binds that must fail would have mapped their rings.
const SPARE_RINGS: u64 = MANAGED_START + 0x30_0000;

/// Notification bits: the parent's ring has frames; the child is done.
const RING_BITS: u64 = 1;
const CHILD_DONE_BITS: u64 = 2;
const CHILD_QUOTA: u64 = 96;

fn main(_argument: u64) -> u64 {
    let ring_notification = user::notification_create(RING_BITS).expect("a notification");
    let binding = Binding::new(PARENT_RINGS, Some(ring_notification)).expect("bind");
    let filters = [Filter::arp(), Filter::icmp(), Filter::udp(PARENT_PORT)];
    let Station {
        nic,
        mac,
        address,
        mut binding,
    } = Station::start(binding, &filters).expect("claim 10.0.2.15 and bind");
    let info = user::capability_identify(nic).expect("identify the NIC");
    assert_eq!((info.kind, info.rights), (CapabilityKind::Nic, Rights::NET));
    println!(
        "net-test: NIC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    );

    claims_are_checked(nic);
    binds_are_checked(&binding, address);
    spoofs_are_refused(&mut binding, mac);
    the_broadcast_address_is_for_udp(nic, &binding, mac);

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
    let done = user::notification_create(CHILD_DONE_BITS).expect("a notification");
    let theirs = user::capability_grant(done, child.environment(), Rights::SIGNAL)
        .expect("grant the child our notification");
    write_u64(CHILD_NOTIFICATION, theirs.to_raw());
    write_u64(NIC_MAC, exo_abi::net::mac_to_u64(mac));
    let their_address = user::capability_grant(address, child.environment(), Rights::BIND)
        .expect("grant the child the address");
    child
        .start(child_main, their_address.to_raw())
        .expect("start the child");
    yield_until("the child binds", || read_u64(CHILD_READY) == 1);
    assert_eq!(
        read_u64(CHILD_OVERLAP_REFUSED),
        1,
        "the child could bind port 7001"
    );
    assert_eq!(
        read_u64(CHILD_SPOOF_REFUSED),
        1,
        "the child could send from port 7001"
    );
    assert_eq!(read_u64(CHILD_SPOOFS_COUNTED), 1);
    ok("the child's bind of our port and its send from it were refused");
    println!("net-test: two bindings ready");

    let mut served = 0;
    let mut foreign = 0;
    let mut child_done = false;
    while served < DATAGRAMS || !child_done {
        match user::wait(Event::NOTIFY, 0) {
            Ok(Wakeup::Notify(bits)) => child_done |= bits & CHILD_DONE_BITS != 0,
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
    assert_eq!(foreign, 0, "the parent received UDP for another port");
    assert_eq!(
        read_u64(CHILD_FOREIGN),
        0,
        "the child received UDP for another port"
    );
    assert!(read_u64(CHILD_SERVED) >= DATAGRAMS);
    ok("each binding received only its own port's datagrams, and echoed them");

    let counters = binding.rings.counters();
    assert!(counters.rx_packets >= DATAGRAMS && counters.tx_packets >= DATAGRAMS);
    assert_eq!(counters.rx_drops, 0);
    println!("net-test: parent counters {counters:?}");
    ok("the binding's counters count its packets");

    child.destroy();
    user::net_filter(binding.handle, address, Filter::udp(CHILD_PORT))
        .expect("the destroyed child's port is free again");
    drop_capability(address).expect("drop the address");
    let again = user::net_claim(nic, GUEST).expect("the address can be claimed again");
    user::net_filter(binding.handle, again, Filter::udp(PARENT_PORT))
        .expect("dropping the address took its filters with it");
    ok("destroying an environment or dropping an address frees its filters");
    check::all_passed("net-test");
    0
}

fn claims_are_checked(nic: Handle) {
    expect_error(
        "claiming a claimed address",
        user::net_claim(nic, GUEST),
        Error::AddressInUse,
    );
    expect_error(
        "claiming 0.0.0.0",
        user::net_claim(nic, 0),
        Error::InvalidArgument,
    );
    expect_error(
        "claiming a multicast address",
        user::net_claim(nic, ipv4(224, 0, 0, 1)),
        Error::InvalidArgument,
    );
    let (frame, _) = user::frame_allocate(0).expect("allocate a frame");
    expect_error(
        "claiming with a frame",
        user::net_claim(frame, GUEST),
        Error::WrongKind,
    );
    let mute = user::capability_derive(nic, Rights::GRANT).expect("derive");
    expect_error(
        "claiming without BIND",
        user::net_claim(mute, ipv4(10, 0, 2, 16)),
        Error::MissingRights,
    );
}

fn binds_are_checked(binding: &Binding, address: Handle) {
    expect_error(
        "binding a port twice",
        user::net_filter(binding.handle, address, Filter::udp(PARENT_PORT)),
        Error::AddressInUse,
    );
    expect_error(
        "a filter that is no filter",
        exo_abi::user::net_filter(binding.handle, address, Filter::udp(0)),
        Error::InvalidArgument,
    );
    expect_error(
        "rings in one frame",
        Binding::with(0, Rights::FRAME, SPARE_RINGS, None),
        Error::InvalidArgument,
    );
    expect_error(
        "rings in frames we may not write",
        Binding::with(net::RING_ORDER, Rights::READ, SPARE_RINGS, None),
        Error::MissingRights,
    );
    let unbindable = user::capability_derive(address, Rights::GRANT).expect("derive");
    expect_error(
        "a filter on an address without BIND",
        user::net_filter(binding.handle, unbindable, Filter::udp(9)),
        Error::MissingRights,
    );
    expect_error(
        "a filter on an address we hold no capability for",
        user::net_filter(
            binding.handle,
            Handle::from_raw(0xdead_0000_0777),
            Filter::udp(9),
        ),
        Error::InvalidHandle,
    );
    ok("overlapping, malformed and unowned bindings are refused");
}

/// Frames from sources the parent does not own: each is refused, by system call and
/// through the ring, and counted as a spoof; none reaches the wire.
fn spoofs_are_refused(binding: &mut Binding, mac: [u8; 6]) {
    binding.flush().expect("flush the ARP request");
    let sent_before = binding.rings.counters().tx_packets;
    let legit = UdpFrame {
        source_mac: mac,
        destination_mac: GATEWAY_MAC,
        source: GUEST,
        destination: GATEWAY,
        source_port: PARENT_PORT,
        destination_port: 9,
        payload: b"spoofed!",
    };
    let other_port = UdpFrame {
        source_port: 9999,
        ..legit
    };
    let other_address = UdpFrame {
        source: ipv4(10, 0, 2, 99),
        ..legit
    };
    let other_mac = UdpFrame {
        source_mac: [0x52, 0x54, 0, 0xba, 0xd0, 0x01],
        ..legit
    };
    let mut frame = [0; MAX_FRAME];
    let mut spoofs = 0;
    for forged in [other_port, other_address, other_mac] {
        let length = net::build_udp(&forged, &mut frame);
        expect_error(
            "sending a forged frame",
            user::net_send(binding.handle, &frame[..length]),
            Error::NotBound,
        );
        binding
            .send(&frame[..length])
            .expect("queue a forged frame");
        spoofs += 2;
    }
    // An ARP reply claiming the gateway's address is ours.
    let length = net::build_arp(2, mac, GATEWAY, GATEWAY_MAC, GATEWAY, &mut frame);
    expect_error(
        "a lying ARP reply",
        user::net_send(binding.handle, &frame[..length]),
        Error::NotBound,
    );
    spoofs += 1;
    expect_error(
        "a runt frame",
        user::net_send(binding.handle, &frame[..10]),
        Error::InvalidArgument,
    );
    user::net_kick(binding.handle).expect("kick");
    let counters = binding.rings.counters();
    assert_eq!(counters.spoofs, spoofs, "{counters:?}");
    assert_eq!(
        counters.tx_packets, sent_before,
        "a forged frame was sent: {counters:?}"
    );
    ok("frames from another port, address or MAC are refused and counted, on both paths");
}

/// What a DHCP client needs before it has an address: the limited broadcast address takes
/// only UDP filters, and holding port 68 on it (and only that) lets the binding send from
/// 0.0.0.0:68.
fn the_broadcast_address_is_for_udp(nic: Handle, binding: &Binding, mac: [u8; 6]) {
    let broadcast = user::net_claim(nic, LIMITED_BROADCAST).expect("claim 255.255.255.255");
    for filter in [Filter::arp(), Filter::icmp(), Filter::tcp(68)] {
        expect_error(
            "a filter other than UDP on 255.255.255.255",
            user::net_filter(binding.handle, broadcast, filter),
            Error::InvalidArgument,
        );
    }
    let discover = UdpFrame {
        source_mac: mac,
        destination_mac: [0xff; 6],
        source: 0,
        destination: LIMITED_BROADCAST,
        source_port: 68,
        destination_port: 9,
        payload: b"no address yet",
    };
    let mut frame = [0; MAX_FRAME];
    let length = net::build_udp(&discover, &mut frame);
    let spoofs = binding.rings.counters().spoofs;
    expect_error(
        "sending from 0.0.0.0 without the port on 255.255.255.255",
        user::net_send(binding.handle, &frame[..length]),
        Error::NotBound,
    );
    assert_eq!(binding.rings.counters().spoofs, spoofs + 1);
    let port_68 = user::net_filter(binding.handle, broadcast, Filter::udp(68)).expect("UDP 68");
    user::net_send(binding.handle, &frame[..length]).expect("send from 0.0.0.0:68");
    let from_69 = UdpFrame {
        source_port: 69,
        ..discover
    };
    let length = net::build_udp(&from_69, &mut frame);
    expect_error(
        "sending from 0.0.0.0 with another port",
        user::net_send(binding.handle, &frame[..length]),
        Error::NotBound,
    );
    drop_capability(port_68).expect("drop the filter");
    drop_capability(broadcast).expect("drop the address");
    ok("255.255.255.255 takes only UDP filters; port 68 on it lets a binding send from 0.0.0.0:68");
}

/// The child: binds UDP 7002 with the address it was granted, checks it cannot take or
/// speak for the parent's port, then echoes `DATAGRAMS` datagrams and tells the parent.
fn child_main(address: u64) -> u64 {
    let address = Handle::from_raw(address);
    let notification = user::notification_create(RING_BITS).expect("a notification");
    let mut binding = Binding::new(CHILD_RINGS, Some(notification)).expect("bind");
    let overlap = user::net_filter(binding.handle, address, Filter::udp(PARENT_PORT));
    write_u64(
        CHILD_OVERLAP_REFUSED,
        u64::from(overlap == Err(Error::AddressInUse)),
    );
    user::net_filter(binding.handle, address, Filter::udp(CHILD_PORT)).expect("bind 7002");
    let mac = exo_abi::net::mac_from_u64(read_u64(NIC_MAC));
    let mut frame = [0; MAX_FRAME];
    let forged = UdpFrame {
        source_mac: mac,
        destination_mac: GATEWAY_MAC,
        source: GUEST,
        destination: GATEWAY,
        source_port: PARENT_PORT,
        destination_port: 9,
        payload: b"spoofed!",
    };
    let length = net::build_udp(&forged, &mut frame);
    let refused = user::net_send(binding.handle, &frame[..length]) == Err(Error::NotBound);
    write_u64(CHILD_SPOOF_REFUSED, u64::from(refused));
    write_u64(CHILD_SPOOFS_COUNTED, binding.rings.counters().spoofs);
    write_u64(CHILD_READY, 1);

    let parent = Handle::from_raw(read_u64(CHILD_NOTIFICATION));
    let (mut served, mut foreign) = (0, 0);
    let mut told = false;
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
        net::serve_echo(
            &mut binding,
            mac,
            CHILD_PORT,
            false,
            &mut served,
            &mut foreign,
        );
        write_u64(CHILD_SERVED, served);
        write_u64(CHILD_FOREIGN, foreign);
        if served >= DATAGRAMS && !told {
            user::signal(parent).expect("tell the parent");
            told = true;
        }
    }
}
