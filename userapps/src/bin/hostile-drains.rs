//! Transmit rings as a CPU attack: however many full rings one environment builds, a
//! drain keeps the CPU, interrupts off, for a bounded time, and a neighbour's frames still
//! leave.
//!
//! The kernel copies every transmit entry into its own buffer and checks the copy before
//! the device sees it (docs/05-network.md 5.6). A refused entry takes no device buffer, so
//! the device's 64 buffers do not bound how many entries one drain copies; and rings may
//! share memory, so one store of a producer index fills every ring bound to the same
//! frames at once. An attacker child binds one run of 256 frames [`FEW`], then [`MANY`],
//! times (128 entries a ring, every descriptor 1514 bytes, every frame a spoof), kicks each
//! binding once so the kernel polls it, and, when the parent says so, fills every ring with
//! one store and sleeps. The parent spins on the time-stamp counter meanwhile and records
//! the longest stretch it lost the CPU, in ticks of the instruction clock the scenario runs
//! on (`-icount`): a count of instructions, not wall time. A kernel that drained every
//! entry at once lost it 16 ticks to 100 rings and 25 to 800; one that took the device's
//! 64 entries a drain still 14 to 41 to 800, drains running back to back (one took more
//! than a tick). Now neither may take more than [`MOST_TICKS`]. Then the parent, bound on rings of its own,
//! sends UDP frames to the gateway, one at a time, kicking only when the kernel asks: each
//! must leave within [`FRAME_TICKS`] while the rings are still full. A third attack fills
//! the 800 rings before kicking each, so that all are polled and busy beside the parent's.
//!
//! A fourth attack fills the rings with frames the kernel must send: every entry an ARP
//! request from an address the attacker claimed, padded to the longest frame, each ring
//! with a filter on that address, and then sleeps. A drain that sends ends in the device's
//! interrupt for the frames' completion, and every interrupt drained again: back to back,
//! the parent lost the CPU for 55 ticks at once, and ran 40% of the time. Now the tick's
//! drain and the interrupts' together take a few entries a tick (the attacker's own waits
//! and kicks drain its rings in its own time), and the parent must run at least
//! [`LEAST_SHARE_PERCENT`]% of the time. Again with an attacker that spins once its rings
//! are full: the drain as it was preempted took a full drain's worth at each of its turns,
//! in the parent's time, and the parent ran 22% of the time beside it, not half; now such a
//! drain takes only what the tick's and the interrupts' may still take, and the parent
//! must run at least [`LEAST_SHARE_PERCENT`]% of half.
//!
//! Last, a binding as a CPU attack of another kind: a child gives one binding
//! [`FILTERS`] filters, then drops it. Its filters once went with it in one step of the
//! removal, interrupts off, and the parent lost the CPU for 13.1 ticks; they now go one at
//! a time within the removal's shares, as the pages mapped through a frame capability do
//! (1.2 ticks: the child's slot and a share).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::counters::Counter;
use exo_abi::mapping::MapFlags;
use exo_abi::net::{Filter, MAX_FRAME, control, tx_slot_offset};
use exo_abi::syscall::Event;
use exo_abi::user;
use exo_abi::user::Lend;
use exo_abi::{Handle, Rights};
use userapps::layout::MANAGED_START;
use userapps::memory::drop_capability;
use userapps::memory::{read_u64, write_u64};
use userapps::net::{self, AliasedRun, Binding, GATEWAY, GATEWAY_MAC, GUEST, Station, UdpFrame};
use userapps::spawn::{Child, yield_until};
use userapps::{check, facts, println};

userapps::entry!(main);

/// Bindings on the one run, in the first attack and the second.
const FEW: u64 = 100;
const MANY: u64 = 800;
/// In the attacker's argument: fill the rings before kicking each, so that all are polled
/// and busy at once (the parent's own, polled already, among them).
const KICKED_FULL: u64 = 1 << 32;
/// The attacker's run: 256 frames, rings of 128 entries.
const ATTACK_ORDER: u32 = 8;
/// The attacker's frame quota: its image, stack and run.
const CHILD_QUOTA: u64 = 2048;
/// Its allowance: the frames, and kernel memory for [`MANY`] bindings (about 2 KiB each
/// with their capabilities; the 512 bytes a frame that come with a plain quota are 1 MiB).
const ATTACK_LEND: Lend = Lend {
    frames: CHILD_QUOTA,
    kernel_bytes: 4 << 20,
    slots: 0,
};
/// The parent's UDP port, and how many frames it sends under attack.
const VICTIM_PORT: u16 = 7010;
const VICTIM_FRAMES: u64 = 8;
/// How long the parent watches each attack, and how long its frames may take, in ticks.
const WATCH_TICKS: u64 = 40;
/// The most the parent may lose the CPU at once, in ticks: a slot another runs in, and a
/// drain.
const MOST_TICKS: u64 = 2;
const PATIENCE_TICKS: u64 = 20_000;
/// The longest one of the parent's frames may wait to leave, in ticks: it goes when the
/// parent next leaves the CPU, which drains the parent's own polled rings first (behind
/// 800 of the attacker's, one once waited 736 ticks for its turn in a tick's drain).
const FRAME_TICKS: u64 = 3;
/// The least share of the CPU the parent must keep beside rings full of frames to send, in
/// percent of its fair share: all of it beside an attacker asleep once it has filled them,
/// half of it beside one that spins.
const LEAST_SHARE_PERCENT: u64 = 70;
/// Cycles one turn of the watching loop takes at most when nothing interrupts it.
const LOOP_CYCLES: u64 = 10_000;
/// The filters the last attack gives its one binding (a table holds 1,024 capabilities),
/// the kernel memory lent for them (under a kilobyte each), and the address they are on.
const FILTERS: u16 = 1_000;
const FILTER_LEND: Lend = Lend {
    frames: 64,
    kernel_bytes: 4 << 20,
    slots: 0,
};
const FILTERED_ADDRESS: [u8; 4] = [10, 67, 0, 1];
/// The rings of the attack with frames to send (a binding and a filter each: a table
/// holds 1,024 capabilities), and the address its frames come from.
const VALID_RINGS: u64 = 400;
const VALID_ADDRESS: [u8; 4] = [10, 0, 2, 16];
/// In the sender's argument: spin once the rings are full, sharing the pool with the
/// parent, instead of sleeping.
const SPINS: u64 = 1 << 32;

/// A page the parent and the attacker share: how many bindings it made, and when to fill.
const SHARED_PAGE: u64 = MANAGED_START;
const BOUND: u64 = SHARED_PAGE;
/// The parent writes [`FILL`] here, the attacker [`DONE`] once its rings are full.
const FILLED: u64 = SHARED_PAGE + 8;
const FILL: u64 = 1;
const DONE: u64 = 2;
const PARENT_RINGS: u64 = MANAGED_START + 0x10_0000;
const ATTACK_RINGS: u64 = MANAGED_START + 0x20_0000;

fn main(_argument: u64) -> u64 {
    let binding = Binding::new(PARENT_RINGS, None).expect("bind");
    let Station {
        mac, mut binding, ..
    } = Station::start(binding, &[Filter::arp(), Filter::udp(VICTIM_PORT)])
        .expect("claim 10.0.2.15 and bind");
    binding.flush().expect("send the ARP request");
    let (shared, _) = user::frame_allocate(0).expect("allocate the shared page");
    user::map(
        shared,
        Handle::SELF_ENVIRONMENT,
        SHARED_PAGE,
        MapFlags::WRITE,
    )
    .expect("map the shared page");

    let few = attack(shared, FEW, &mut binding, mac);
    let many = attack(shared, MANY, &mut binding, mac);
    let kicked = attack(shared, MANY | KICKED_FULL, &mut binding, mac);
    let tick = facts::tsc_hz() / facts::ticks_per_second();
    println!(
        "hostile-drains: {FEW} full transmit rings kept the CPU for at most {}/100 of a tick, \
         {MANY} for {}/100, {MANY} filled before their kicks for {}/100",
        100 * few / tick,
        100 * many / tick,
        100 * kicked / tick
    );
    for (rings, lost) in [(FEW, few), (MANY, many), (MANY, kicked)] {
        assert!(
            lost <= MOST_TICKS * tick,
            "{rings} full rings kept the CPU for {lost} cycles, a tick is {tick}"
        );
    }
    check::ok(format_args!(
        "{FEW} and {MANY} full transmit rings of one environment kept the CPU no more than \
         {MOST_TICKS} ticks at once"
    ));
    valid_frames(shared, false);
    valid_frames(shared, true);
    filtered_binding_dropped(shared);
    check::all_passed("hostile-drains");
    0
}

/// Runs an attacker with `bindings` rings on one run; returns the most cycles the parent
/// lost the CPU at once while the rings were drained, after checking that the parent's
/// frames still leave.
fn attack(shared: Handle, bindings: u64, victim: &mut Binding, mac: [u8; 6]) -> u64 {
    write_u64(BOUND, 0);
    write_u64(FILLED, 0);
    let child = Child::create_lending(ATTACK_LEND).expect("create the attacker");
    user::map(shared, child.environment(), SHARED_PAGE, MapFlags::WRITE).expect("share the page");
    child.start(attacker, bindings).expect("start the attacker");
    yield_until("the attacker binds", || read_u64(BOUND) != 0);
    let bindings = bindings & !KICKED_FULL;
    assert_eq!(read_u64(BOUND), bindings, "the attacker's bindings");

    write_u64(FILLED, FILL);
    let lost = watch(WATCH_TICKS);
    assert_eq!(
        read_u64(FILLED),
        DONE,
        "the attacker did not fill its rings"
    );

    // One frame at a time, kicking only when the kernel asks (`NEED_WAKEUP`), as a
    // library OS does: once the parent's ring is polled, its frames wait for a drain.
    let mut frame = [0; MAX_FRAME];
    let mut slowest = 0;
    for index in 0..VICTIM_FRAMES {
        let payload = index.to_le_bytes();
        let udp = UdpFrame {
            source_mac: mac,
            destination_mac: GATEWAY_MAC,
            source: GUEST,
            destination: GATEWAY,
            source_port: VICTIM_PORT,
            destination_port: 9,
            payload: &payload,
        };
        let length = net::build_udp(&udp, &mut frame);
        let sent = victim.rings.counters().tx_packets;
        let queued_at = facts::ticks();
        victim.send(&frame[..length]).expect("queue a frame");
        while victim.rings.counters().tx_packets == sent {
            assert!(
                facts::ticks() < queued_at + PATIENCE_TICKS,
                "the parent's frames did not leave beside {bindings} full rings"
            );
            let _ = user::wait(Event::TIMER, 1);
        }
        slowest = slowest.max(facts::ticks() - queued_at);
        let _ = user::wait(Event::TIMER, 1);
    }
    println!(
        "hostile-drains: beside {bindings} full rings the parent's slowest frame left after \
         {slowest} ticks"
    );
    assert!(
        slowest <= FRAME_TICKS,
        "a frame of the parent's took {slowest} ticks to leave beside {bindings} full rings"
    );
    let counters = victim.rings.counters();
    assert_eq!(
        (counters.tx_errors, counters.spoofs),
        (0, 0),
        "{counters:?}"
    );
    check::ok(format_args!(
        "a neighbour's frames left beside {bindings} full transmit rings, each within \
         {FRAME_TICKS} ticks"
    ));
    child.destroy();
    lost
}

/// An attacker lent `lend`, sharing the page, started at `entry` with a NIC capability's
/// handle (the network rights of ours) or'd with `flags` as its argument.
fn attacker_with_the_nic(shared: Handle, lend: Lend, entry: fn(u64) -> u64, flags: u64) -> Child {
    write_u64(BOUND, 0);
    write_u64(FILLED, 0);
    let child = Child::create_lending(lend).expect("create the attacker");
    user::map(shared, child.environment(), SHARED_PAGE, MapFlags::WRITE).expect("share the page");
    let nic = user::start_info().nic().expect("a network card");
    let rights = user::capability_identify(nic)
        .expect("identify the NIC")
        .rights;
    let granted = user::capability_grant(nic, child.environment(), rights & Rights::NET)
        .expect("grant the NIC");
    child
        .start(entry, granted.to_raw() | flags)
        .expect("start the attacker");
    child
}

/// A child fills [`VALID_RINGS`] rings on one run with frames the kernel sends (`sender`)
/// while the parent watches: it may lose the CPU no longer than beside the spoofs.
fn valid_frames(shared: Handle, spins: bool) {
    let child = attacker_with_the_nic(shared, ATTACK_LEND, sender, if spins { SPINS } else { 0 });
    yield_until("the attacker binds", || read_u64(BOUND) != 0);
    assert_eq!(read_u64(BOUND), VALID_RINGS, "the attacker's rings");
    let before = facts::counter(Counter::FramesSent);
    write_u64(FILLED, FILL);
    let (lost, share) = watch_with_share(WATCH_TICKS);
    assert_eq!(
        read_u64(FILLED),
        DONE,
        "the attacker did not fill its rings"
    );
    let sent = facts::counter(Counter::FramesSent) - before;
    let tick = facts::tsc_hz() / facts::ticks_per_second();
    println!(
        "hostile-drains: {VALID_RINGS} rings full of frames to send ({sent} sent meanwhile) \
         kept the CPU for at most {}/100 of a tick; the parent ran {share}% of the time",
        100 * lost / tick
    );
    assert!(sent > 0, "none of the attacker's frames was sent");
    // Its fair share: all of the CPU beside a sleeper, half of it beside a spinner.
    let fair = if spins { 50 } else { 100 };
    assert!(
        100 * share >= LEAST_SHARE_PERCENT * fair,
        "beside {VALID_RINGS} rings full of frames to send the parent ran {share}% of the time"
    );
    assert!(
        lost <= MOST_TICKS * tick,
        "{VALID_RINGS} rings full of frames to send kept the CPU for {lost} cycles, a tick is \
         {tick}"
    );
    check::ok(format_args!(
        "{VALID_RINGS} transmit rings full of frames the kernel sends kept the CPU no more \
         than {MOST_TICKS} ticks at once, and left the parent {share}% of it"
    ));
    child.destroy();
}

/// Claims [`VALID_ADDRESS`] with the NIC capability its argument names, binds one run
/// [`VALID_RINGS`] times, each binding with a filter on the address, and makes every
/// transmit entry an ARP request from the address, padded to the longest frame; kicks
/// each binding so the kernel polls it, and, when the parent says so, fills every ring
/// with one store; then sleeps.
fn sender(argument: u64) -> u64 {
    let nic = Handle::from_raw(argument & !SPINS);
    let [a, b, c, d] = VALID_ADDRESS;
    let from = exo_abi::net::ipv4(a, b, c, d);
    let address = user::net_claim(nic, from).expect("claim an address");
    let mac = net::mac(nic).expect("the MAC");
    let run = AliasedRun::new(ATTACK_ORDER, ATTACK_RINGS).expect("map the run");
    let entries = run.entries;
    let mut frame = [0; MAX_FRAME];
    let length = net::build_arp(1, mac, from, [0; 6], GATEWAY, &mut frame);
    let longest = MAX_FRAME as u64;
    for pair in 0..u64::from(entries) / 2 {
        let at = ATTACK_RINGS + control::TX_DESCRIPTORS + 8 * pair;
        write_u64(at, longest | longest << 32);
    }
    for slot in 0..entries {
        let at = ATTACK_RINGS + tx_slot_offset(entries, slot);
        for (word, bytes) in frame[..length].chunks(8).enumerate() {
            let mut padded = [0; 8];
            padded[..bytes.len()].copy_from_slice(bytes);
            write_u64(at + 8 * word as u64, u64::from_le_bytes(padded));
        }
    }
    for port in 0..VALID_RINGS {
        let binding = run.bind().expect("bind the run again");
        user::net_filter(binding, address, Filter::udp(20_000 + port as u16))
            .expect("a filter on the address");
        user::net_kick(binding).expect("kick the binding");
    }
    write_u64(BOUND, VALID_RINGS);
    while read_u64(FILLED) != FILL {
        let _ = user::wait(Event::TIMER, 1);
    }
    write_u64(ATTACK_RINGS + control::TX_PRODUCER, u64::from(entries));
    write_u64(FILLED, DONE);
    loop {
        if argument & SPINS == 0 {
            let _ = user::wait(Event::NOTIFY, 0);
        }
    }
}

/// A child gives one binding [`FILTERS`] filters and drops it while the parent watches:
/// the parent may lose the CPU no longer than beside the rings.
fn filtered_binding_dropped(shared: Handle) {
    let child = attacker_with_the_nic(shared, FILTER_LEND, filterer, 0);
    yield_until("the attacker filters", || read_u64(BOUND) != 0);
    assert_eq!(
        read_u64(BOUND),
        u64::from(FILTERS),
        "the attacker's filters"
    );
    write_u64(FILLED, FILL);
    let lost = watch(WATCH_TICKS);
    assert_eq!(
        read_u64(FILLED),
        DONE,
        "the attacker did not drop its binding"
    );
    let tick = facts::tsc_hz() / facts::ticks_per_second();
    println!(
        "hostile-drains: a binding with {FILTERS} filters, dropped, kept the CPU for at most \
         {}/100 of a tick",
        100 * lost / tick
    );
    assert!(
        lost <= MOST_TICKS * tick,
        "dropping a binding with {FILTERS} filters kept the CPU for {lost} cycles, a tick is \
         {tick}"
    );
    check::ok(format_args!(
        "dropping a binding with {FILTERS} filters kept the CPU no more than {MOST_TICKS} \
         ticks at once"
    ));
    child.destroy();
}

/// Claims [`FILTERED_ADDRESS`] with the NIC capability its argument names, gives one
/// binding a UDP filter on each of [`FILTERS`] ports, and, when the parent says so, drops
/// the binding; then sleeps.
fn filterer(nic: u64) -> u64 {
    let [a, b, c, d] = FILTERED_ADDRESS;
    let address = user::net_claim(Handle::from_raw(nic), exo_abi::net::ipv4(a, b, c, d))
        .expect("claim an address");
    let (_run, binding) = Binding::idle_run(exo_abi::net::MIN_RING_ORDER).expect("a binding");
    for port in 1..=FILTERS {
        user::net_filter(binding, address, Filter::udp(port))
            .unwrap_or_else(|error| panic!("filter {port} refused: {error:?}"));
    }
    write_u64(BOUND, u64::from(FILTERS));
    while read_u64(FILLED) != FILL {
        let _ = user::wait(Event::TIMER, 1);
    }
    drop_capability(binding).expect("drop the binding");
    write_u64(FILLED, DONE);
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}

/// Spins for `ticks` ticks; returns the most cycles between two readings of the
/// time-stamp counter.
fn watch(ticks: u64) -> u64 {
    watch_with_share(ticks).0
}

/// As [`watch`], and the share of the time it ran, in percent: the cycles between two
/// readings of the counter that took longer than a loop's turn could are the CPU lost.
fn watch_with_share(ticks: u64) -> (u64, u64) {
    let end = facts::ticks() + ticks;
    let (mut lost, mut lost_in_all) = (0, 0);
    let start = user::tsc();
    let mut last = start;
    while facts::ticks() < end {
        let now = user::tsc();
        lost = lost.max(now - last);
        if now - last > LOOP_CYCLES {
            lost_in_all += now - last;
        }
        last = now;
    }
    let length = (last - start).max(1);
    (lost, 100 - 100 * lost_in_all / length)
}

/// Binds one run `bindings` times with every transmit entry a maximum-length spoof, kicks
/// each binding once so the kernel polls it, then, when the parent says so, fills every
/// ring with one store, and sleeps.
fn attacker(argument: u64) -> u64 {
    let bindings = argument & !KICKED_FULL;
    let run = AliasedRun::new(ATTACK_ORDER, ATTACK_RINGS).expect("map the run");
    let entries = run.entries;
    // Every descriptor the longest frame; every frame from nobody's MAC.
    let length = MAX_FRAME as u64;
    for pair in 0..u64::from(entries) / 2 {
        let at = ATTACK_RINGS + control::TX_DESCRIPTORS + 8 * pair;
        write_u64(at, length | length << 32);
    }
    for slot in 0..entries {
        let at = ATTACK_RINGS + tx_slot_offset(entries, slot);
        for word in 0..length.div_ceil(8) {
            write_u64(at + 8 * word, u64::from_le_bytes(*b"hostile!"));
        }
    }
    if argument & KICKED_FULL != 0 {
        // Bound first (a bind sets the run's producer index to 0), filled, then each
        // kicked: every ring polled and busy, and the parent's somewhere among them.
        let mut handles = [Handle::from_raw(0); MANY as usize];
        for handle in &mut handles[..bindings as usize] {
            *handle = run.bind().expect("bind the run again");
        }
        write_u64(ATTACK_RINGS + control::TX_PRODUCER, u64::from(entries));
        for &handle in &handles[..bindings as usize] {
            user::net_kick(handle).expect("kick the binding");
        }
        write_u64(BOUND, bindings);
        while read_u64(FILLED) != FILL {
            let _ = user::wait(Event::TIMER, 1);
        }
        write_u64(FILLED, DONE);
        loop {
            let _ = user::wait(Event::NOTIFY, 0);
        }
    }
    for _ in 0..bindings {
        let binding = run.bind().expect("bind the run again");
        user::net_kick(binding).expect("kick the binding");
    }
    write_u64(BOUND, bindings);
    while read_u64(FILLED) != FILL {
        let _ = user::wait(Event::TIMER, 1);
    }
    // One store: every ring on the run now holds a ring's worth of entries.
    write_u64(ATTACK_RINGS + control::TX_PRODUCER, u64::from(entries));
    write_u64(FILLED, DONE);
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}
