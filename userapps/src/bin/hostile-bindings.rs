//! A binding signals only through a notification capability that still exists, and a
//! filter made through a copy of a binding's capability goes with that copy.
//!
//! `NetBind` takes a notification to signal when a frame arrives in an empty receive ring;
//! the kernel checks the capability once, when the binding is made. The parent makes a
//! notification into itself and grants a copy to a child, which binds its rings with it,
//! claims 10.0.2.15 and puts a filter on it. Each round the child sends an ARP request to
//! QEMU's gateway and waits for the reply in its ring:
//!
//! 1. with the copy in place, the reply signals the parent (the binding works);
//! 2. after the parent revokes its notification (the child's copy goes), the reply must
//!    signal nobody: the parent took that right back. Before this was checked, the binding
//!    kept the notification's target and bits and signalled the parent on every frame, for
//!    as long as the binding lived.
//!
//! `NetFilter` attaches a filter to a binding through a capability for it with `BIND`. The
//! parent grants the child a copy of its own binding's capability, and the child attaches
//! a filter on its address through it (round 3). The parent revokes the copy: the filter
//! made through it must go, as a page mapped through a revoked frame capability does, so
//! the child can then attach the same filter to its own binding (round 4). Before this was
//! checked, the filter stayed on the parent's binding, which kept receiving the child's
//! traffic (and could send as its address and port) though the parent had taken the
//! copy back; the child's second filter was refused with `AddressInUse`.
//!
//! Last, rights only shrink along the tree: a binding made through a copy of frames
//! without `GRANT` and `REVOKE`, and a filter and an address made through copies without
//! them, carry neither (they once came with both, so a holder could pass on what it had
//! been given to keep).
//!
//! A removal forgets the filters attached through a binding's capability a share at a time,
//! and while it has stopped part-way the capability is on its way out. A second child puts
//! [`REFILL_FILTERS`] filters on its own address through a copy of the parent's binding,
//! and once the parent revokes the copy, attaches filters through it again and again until
//! it is gone. Each must be refused (`StaleHandle`) while the copy is still there: one more
//! filter to forget at every share would keep the removal from ever ending, and the
//! revoker waiting. Before this was checked, every one was attached.
//!
//! Then the children are destroyed, and every frame and byte of kernel memory comes back.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::net::{self, Filter, MAX_FRAME};
use exo_abi::syscall::Event;
use exo_abi::user::{self, Lend, Wakeup};
use exo_abi::{Error, Handle, Rights};
use userapps::hostile::conservation::Baseline;
use userapps::hostile::shared::Words;
use userapps::layout::MANAGED_START;
use userapps::net::{Binding, GATEWAY, GUEST, build_arp, mac};
use userapps::spawn::Child;
use userapps::{check, facts, memory, println};

userapps::entry!(main);

/// Parent and child: handles the parent granted, the round asked and the round done.
const SHARED: Words = Words::at(MANAGED_START);
const NIC_HANDLE: u64 = 0;
const NOTIFICATION_HANDLE: u64 = 1;
/// The round the parent asks for (0: none yet).
const ROUND_ASKED: u64 = 2;
/// The last round the child finished.
const ROUND_DONE: u64 = 3;
/// The child's copy of the parent's binding capability.
const BINDING_HANDLE: u64 = 4;
/// What `NetFilter` answered in the last filter round: 0, or the error code.
const FILTER_RESULT: u64 = 5;
/// The port of the filter rounds 3 and 4 attach.
const FILTER_PORT: u16 = 9;
/// The refill round's words: the child's copy of the parent's binding, its progress
/// (`FILTERED`, then `REVOKING` from the parent, then `GONE`), the filters it attached
/// and was refused while the copy was still there, and the last refusal.
const REFILL_COPY: u64 = 6;
const REFILL_STATE: u64 = 7;
const REFILL_MADE: u64 = 8;
const REFILL_REFUSED: u64 = 9;
const REFILL_ERROR: u64 = 10;
const FILTERED: u64 = 1;
const REVOKING: u64 = 2;
const GONE: u64 = 3;
/// Filters the refiller attaches through the copy before the revocation: forgetting them
/// takes many shares.
const REFILL_FILTERS: u16 = 500;
/// The refiller's address, and its lending: kernel memory for its filters.
const REFILL_ADDRESS: [u8; 4] = [10, 69, 0, 1];
const REFILL_LEND: Lend = Lend {
    frames: QUOTA,
    kernel_bytes: 4 << 20,
    slots: 0,
};
/// The child's rings, in its managed window.
const RING_PAGES: u64 = MANAGED_START + 0x100_0000_0000;
const QUOTA: u64 = 256;
/// The bit the notification sets.
const BIT: u64 = 1 << 5;
/// How long a round may take, in ticks.
const ROUND_TICKS: u64 = 10_000;

fn main(_argument: u64) -> u64 {
    let shared_page = SHARED.allocate().expect("allocate the shared page");
    let baseline = Baseline::after_a_witness_and_a_child(QUOTA);
    let notification = user::notification_create(BIT).expect("a notification");
    let child = Child::create(QUOTA).expect("create the child");
    SHARED.clear();
    SHARED
        .share_with(shared_page, child.environment())
        .expect("share the page");
    let nic = user::start_info().nic().expect("a network card");
    let rights = user::capability_identify(nic)
        .expect("identify the NIC")
        .rights;
    let granted = user::capability_grant(nic, child.environment(), rights).expect("grant the NIC");
    SHARED.write(NIC_HANDLE, granted.to_raw());
    let copy = user::capability_grant(notification, child.environment(), Rights::SIGNAL)
        .expect("grant the notification");
    SHARED.write(NOTIFICATION_HANDLE, copy.to_raw());
    child.start(binder, 0).expect("start the child");

    let signalled = round(1, &child);
    println!("hostile-bindings: with the notification, the reply signalled {signalled:#x}");
    assert_eq!(
        signalled, BIT,
        "the binding did not signal through its notification"
    );
    check::ok("a binding signals through the notification it was made with");

    memory::revoke_capability(notification).expect("revoke the notification");
    let signalled = round(2, &child);
    println!("hostile-bindings: after the revocation, the reply signalled {signalled:#x}");
    assert_eq!(
        signalled, 0,
        "a binding signalled through a notification capability that was revoked"
    );
    check::ok("a binding whose notification was revoked signals nobody");

    let (ring_frames, own_binding) =
        Binding::idle_run(net::MIN_RING_ORDER).expect("a binding of the parent's");
    let copy = user::capability_grant(own_binding, child.environment(), Rights::BIND)
        .expect("grant a copy of the binding");
    SHARED.write(BINDING_HANDLE, copy.to_raw());
    let _ = round(3, &child);
    assert_eq!(
        SHARED.read(FILTER_RESULT),
        0,
        "the child's filter through the copy of the parent's binding"
    );
    memory::revoke_capability(own_binding).expect("revoke the copy");
    let _ = round(4, &child);
    let result = SHARED.read(FILTER_RESULT);
    println!(
        "hostile-bindings: after the copy was revoked, the same filter on the child's own \
         binding: {:?}",
        Error::try_from(result)
    );
    assert_eq!(
        result,
        0,
        "a filter made through a revoked copy of a binding's capability stayed: {:?}",
        Error::try_from(result)
    );
    check::ok("a filter made through a copy of a binding's capability goes with the copy");

    child.destroy();
    refills_refused_while_going(shared_page, nic);
    made_rights_only_shrink(nic);
    memory::drop_capability(own_binding).expect("drop the binding");
    memory::drop_capability(ring_frames).expect("drop the ring frames");
    memory::drop_capability(notification).expect("drop the notification");
    baseline.expect_came_back("hostile-bindings", "the child");
    check::all_passed("hostile-bindings");
    0
}

/// A child attaches [`REFILL_FILTERS`] filters through a copy of our binding; we revoke the
/// copy, and each filter it attaches through the copy meanwhile must be refused while the
/// copy is still there.
fn refills_refused_while_going(shared_page: Handle, nic: Handle) {
    let child = Child::create_lending(REFILL_LEND).expect("create the refiller");
    SHARED
        .share_with(shared_page, child.environment())
        .expect("share the page");
    let rights = user::capability_identify(nic).expect("identify").rights;
    let granted = user::capability_grant(nic, child.environment(), rights & Rights::NET)
        .expect("grant the NIC");
    let (ring_frames, binding) =
        Binding::idle_run(net::MIN_RING_ORDER).expect("a binding of the parent's");
    let copy = user::capability_grant(binding, child.environment(), Rights::BIND)
        .expect("grant a copy of the binding");
    SHARED.write(REFILL_COPY, copy.to_raw());
    SHARED.write(REFILL_STATE, 0);
    child
        .start(refiller, granted.to_raw())
        .expect("start the refiller");
    wait_for_state(FILTERED, &child);
    SHARED.write(REFILL_STATE, REVOKING);
    memory::revoke_capability(binding).expect("revoke the copy");
    wait_for_state(GONE, &child);
    let (made, refused) = (SHARED.read(REFILL_MADE), SHARED.read(REFILL_REFUSED));
    let error = Error::try_from(SHARED.read(REFILL_ERROR));
    println!(
        "hostile-bindings: while the copy with {REFILL_FILTERS} filters was revoked, the \
         refiller attached {made} through it and was refused {refused} times ({error:?})"
    );
    assert!(
        refused > 0 && error == Ok(Error::StaleHandle),
        "a binding's copy on its way out still took filters: {made} attached, {refused} \
         refused ({error:?})"
    );
    check::ok("a binding's copy being revoked takes no new filter while it is on its way out");
    child.destroy();
    memory::drop_capability(binding).expect("drop the binding");
    memory::drop_capability(ring_frames).expect("drop the ring frames");
}

/// Waits until the refiller says `state`.
fn wait_for_state(state: u64, child: &Child) {
    wait_until(child, format_args!("the refiller's state {state}"), || {
        SHARED.read(REFILL_STATE) == state
    });
}

/// Sleeps a tick at a time until `done`; panics, naming `what`, if `child`
/// dies first or [`ROUND_TICKS`] pass. Only the timer: signals stay pending
/// until `round` asks for them.
fn wait_until(child: &Child, what: core::fmt::Arguments, done: impl Fn() -> bool) {
    let deadline = facts::ticks() + ROUND_TICKS;
    while !done() {
        assert!(child.is_alive(), "the child died before {what}");
        assert!(facts::ticks() < deadline, "the child never reached {what}");
        let _ = user::wait(Event::TIMER, 1);
    }
}

/// The refiller: claims [`REFILL_ADDRESS`] with the NIC capability its argument names,
/// attaches [`REFILL_FILTERS`] filters through the parent's copy, and once the parent
/// revokes it, attaches (and drops) one filter after another through it until it is gone,
/// counting those attached and those refused while it was still there.
fn refiller(nic: u64) -> u64 {
    let [a, b, c, d] = REFILL_ADDRESS;
    let address =
        user::net_claim(Handle::from_raw(nic), net::ipv4(a, b, c, d)).expect("claim an address");
    let copy = Handle::from_raw(SHARED.read(REFILL_COPY));
    for port in 1..=REFILL_FILTERS {
        user::net_filter(copy, address, Filter::udp(port))
            .unwrap_or_else(|error| panic!("filter {port} refused: {error:?}"));
    }
    SHARED.write(REFILL_STATE, FILTERED);
    while SHARED.read(REFILL_STATE) != REVOKING {
        let _ = user::wait(Event::TIMER, 1);
    }
    let (mut made, mut refused) = (0u64, 0u64);
    let mut port = REFILL_FILTERS;
    loop {
        port = port.checked_add(1).unwrap_or(REFILL_FILTERS + 1);
        match user::net_filter(copy, address, Filter::udp(port)) {
            Ok(filter) => {
                made += 1;
                memory::drop_capability(filter).expect("drop the filter");
            }
            Err(error) if user::capability_identify(copy).is_ok() => {
                refused += 1;
                SHARED.write(REFILL_ERROR, error.code());
            }
            // The copy is gone.
            Err(_) => break,
        }
    }
    SHARED.write(REFILL_MADE, made);
    SHARED.write(REFILL_REFUSED, refused);
    SHARED.write(REFILL_STATE, GONE);
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}

/// Network objects made through copies without `GRANT` and `REVOKE` carry neither.
fn made_rights_only_shrink(nic: Handle) {
    let passing = Rights::GRANT | Rights::REVOKE;
    let rights_of = |handle| user::capability_identify(handle).expect("identify").rights;
    let (frames, binding) =
        Binding::idle_run_through(net::MIN_RING_ORDER, Rights::READ | Rights::WRITE)
            .expect("a binding through a copy without GRANT");
    let nic_copy = user::capability_derive(nic, Rights::BIND).expect("a copy of the NIC");
    let address = user::net_claim(nic_copy, net::ipv4(10, 68, 0, 1)).expect("claim");
    let address_copy = user::capability_derive(address, Rights::BIND).expect("a copy");
    let filter = user::net_filter(binding, address_copy, Filter::udp(7)).expect("a filter");
    for (what, handle) in [
        ("a binding", binding),
        ("an address", address),
        ("a filter", filter),
    ] {
        let rights = rights_of(handle);
        println!("hostile-bindings: {what} made through a copy without them: {rights:?}");
        assert!(
            !rights.intersects(passing),
            "{what} made through a copy without GRANT and REVOKE carries {rights:?}"
        );
    }
    memory::drop_capability(address).expect("drop the address");
    memory::drop_capability(nic_copy).expect("drop the NIC's copy");
    memory::drop_capability(frames).expect("drop the frames and the binding");
    check::ok(
        "a binding, an address and a filter made through copies without GRANT and REVOKE carry neither",
    );
}

/// Asks the child for round `number` and waits until it took the reply; returns the bits
/// the parent's notifications set meanwhile (0: none).
fn round(number: u64, child: &Child) -> u64 {
    SHARED.write(ROUND_ASKED, number);
    wait_until(child, format_args!("round {number}"), || {
        SHARED.read(ROUND_DONE) >= number
    });
    match user::wait(Event::NOTIFY | Event::TIMER, 1).expect("wait") {
        Wakeup::Notify(bits) => bits,
        _ => 0,
    }
}

/// The child: binds rings signalling the granted notification, claims the guest's
/// address with a filter on it, and sends an ARP request in rounds 1 and 2; in round 3
/// attaches a filter through its copy of the parent's binding, in round 4 the same filter
/// to its own binding.
fn binder(_argument: u64) -> u64 {
    let nic = Handle::from_raw(SHARED.read(NIC_HANDLE));
    let notification = Handle::from_raw(SHARED.read(NOTIFICATION_HANDLE));
    let own_mac = mac(nic).expect("the NIC's MAC");
    let address = user::net_claim(nic, GUEST).expect("claim the guest's address");
    let mut binding = Binding::new(RING_PAGES, Some(notification)).expect("bind rings");
    // An ARP reply for the address goes to every binding with a filter on it.
    user::net_filter(binding.handle, address, Filter::udp(7)).expect("a filter");
    let mut done = 0;
    loop {
        let asked = SHARED.read(ROUND_ASKED);
        if asked == done {
            let _ = user::wait(Event::TIMER, 1);
            continue;
        }
        if asked >= 3 {
            let through = match asked {
                3 => Handle::from_raw(SHARED.read(BINDING_HANDLE)),
                _ => binding.handle,
            };
            let result = user::net_filter(through, address, Filter::udp(FILTER_PORT));
            SHARED.write(
                FILTER_RESULT,
                result.map_or_else(|error| error.code(), |_| 0),
            );
            done = asked;
            SHARED.write(ROUND_DONE, done);
            continue;
        }
        let mut frame = [0; MAX_FRAME];
        let length = build_arp(1, own_mac, GUEST, [0; 6], GATEWAY, &mut frame);
        binding
            .send(&frame[..length])
            .expect("send the ARP request");
        while binding.rings.rx_pending() == 0 {
            let _ = user::wait(Event::TIMER, 1);
        }
        while binding.rings.receive(|_| ()).is_some() {}
        done = asked;
        SHARED.write(ROUND_DONE, done);
    }
}
