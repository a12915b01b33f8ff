//! What an ARP reply costs the kernel is paid for by the requests that asked for it, and
//! no number of bindings makes one larger.
//!
//! Every environment shares the card's one MAC, so an ARP reply for an address is copied,
//! in the NIC's interrupt, into the rings of bindings on that address (docs/05-network.md
//! 5.3). The parent claims 10.0.2.15 on a binding of its own and grants a child `BIND` on
//! it, as a library OS sharing its address would. The child, hostile, puts [`BINDINGS`]
//! bindings on the address (one run of frames under all of them, a filter each) and then
//! sends ARP requests to QEMU's gateway as fast as it can: from every binding once, and
//! from its first in bursts. Meanwhile:
//!
//! 1. a witness holding slots must never wait for the CPU longer than a round of the
//!    slice vector and [`SLACK_TICKS`]. Before replies went only to the bindings that
//!    asked, each reply was copied into all 500 rings with interrupts off: the witness
//!    waited 32 to 43 ticks in one stretch;
//! 2. the parent, asking from its own binding the gateway and QEMU's name server in turn,
//!    must get each reply within [`REPLY_TICKS`]: the askers of a host are served oldest
//!    first, a few a reply, so the parent's turn comes however many asked before it, and
//!    a reply from the gateway never takes the parent off the queue while it waits for
//!    the name server's (as it did when any reply went to the oldest askers, whoever they
//!    had asked).
//!
//! Before the requests begin, the parent's own packet counts (`EnvironmentInfo`) must cost
//! about what its id does: they add up its own bindings, not the child's 500 too.
//!
//! Then the same again with a child whose 500 bindings each ask, once, a host nobody
//! answers (192.0.2.1), and stay waiting for it, while a pump binding of its own sends
//! requests to the gateway from a ring of 32 and the child sleeps: the kernel's drains
//! send them in others' time, and the replies come in others' time too. When an
//! address's askers were one queue, walked from its front for every reply, each reply
//! from the gateway walked past the 500 stale askers in the NIC's interrupt: the witness
//! waited 24 ticks. Indexed by the host they asked, a reply touches its own askers only:
//! 6 ticks, as beside the first child.
//!
//! Then each child is destroyed, and every frame and byte of kernel memory comes back.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::net::{Filter, MAX_FRAME, control, tx_slot_offset};
use exo_abi::syscall::{EnvironmentAccount, Event};
use exo_abi::{Handle, Rights, user};
use userapps::hostile::conservation::Baseline;
use userapps::hostile::shared::Words;
use userapps::hostile::witness::Witness;
use userapps::layout::MANAGED_START;
use userapps::memory::{read_u64, write_u64};
use userapps::net::{AliasedRun, Binding, GATEWAY, GUEST, Station, build_arp};
use userapps::spawn::Child;
use userapps::{check, facts, println};

userapps::entry!(main);

const NAME: &str = "hostile-arp";
/// Parent and child, at the managed window's third page (the witness has the second).
const SHARED: Words = Words::at(MANAGED_START + 2 * 4096);
/// The child's bindings on the address, once made.
const BOUND: u64 = 0;
/// Set by the parent: begin asking.
const GO: u64 = 1;
/// ARP requests the child has sent.
const SENT: u64 = 2;
/// The MAC, for the child's requests.
const MAC: u64 = 3;
const BINDINGS: u64 = 500;
/// Requests the child sends from its first binding between passes over all of them.
const BURST: u64 = 32;
/// The child's frames: its image, 4 frames of rings, and page tables.
const CHILD_QUOTA: u64 = 256;
/// A kernel-memory allowance for 500 bindings and filters and their capabilities.
const CHILD_KERNEL_BYTES: u64 = 4 << 20;
const PARENT_RINGS: u64 = MANAGED_START + 0x10_0000;
const CHILD_RINGS: u64 = MANAGED_START + 0x20_0000;
/// The stale child's pump: a ring of 32 requests, at the third megabyte of its window.
const PUMP_ORDER: u32 = 6;
const PUMP_RINGS: u64 = MANAGED_START + 0x30_0000;
/// Rounds the parent asks the gateway, and how long each reply may take, in ticks.
const ROUNDS: u64 = 20;
/// QEMU's name server, which answers ARP as its gateway does: every other round the
/// parent asks it, while the child asks the gateway.
const NAMESERVER: u32 = exo_abi::net::ipv4(10, 0, 2, 3);
const REPLY_TICKS: u64 = 100;
/// Reads of an account timed, of which the cheapest counts.
const TRIES: u32 = 20;
/// In the child's argument: make most bindings stale askers (`flood`).
const STALE: u64 = 1 << 32;
/// A host nobody answers for: off QEMU's network.
const NOBODY: u32 = exo_abi::net::ipv4(192, 0, 2, 1);
/// What the witness may wait beyond a round of the slice vector, in ticks.
const SLACK_TICKS: u64 = 3;

fn main(_argument: u64) -> u64 {
    let shared_page = SHARED.allocate().expect("allocate the shared page");
    let binding = Binding::new(PARENT_RINGS, None).expect("bind the parent's rings");
    let mut station = Station::start(binding, &[Filter::udp(7010)]).expect("a station");
    settle(&mut station.binding);
    let baseline = Baseline::after_a_witness_and_a_child(CHILD_QUOTA);
    let witness = Witness::start_holding(2).expect("a witness");
    flood(shared_page, &mut station, &witness, false);
    flood(shared_page, &mut station, &witness, true);
    witness.stop();
    baseline.expect_came_back(NAME, "the child and the witness");
    check::all_passed(NAME);
    0
}

/// A child with [`BINDINGS`] bindings on the parent's address asks as fast as it can while
/// the parent asks the gateway and the name server in turn and the witness runs; `stale`:
/// its bindings each ask, once, a host that never answers, and stay waiting, and a pump
/// of its own asks the gateway from its ring without end (`pump`), so that every reply
/// from the gateway once walked past all of them, in the NIC's interrupt.
fn flood(shared_page: Handle, station: &mut Station, witness: &Witness, stale: bool) {
    SHARED.clear();
    let mut mac = [0; 8];
    mac[..6].copy_from_slice(&station.mac);
    SHARED.write(MAC, u64::from_le_bytes(mac));
    let child = Child::create_lending(user::Lend {
        frames: CHILD_QUOTA,
        kernel_bytes: CHILD_KERNEL_BYTES,
        slots: 0,
    })
    .expect("create the child");
    SHARED
        .share_with(shared_page, child.environment())
        .expect("share the page");
    let address = user::capability_grant(station.address, child.environment(), Rights::BIND)
        .expect("grant the address");
    let argument = address.to_raw() | if stale { STALE } else { 0 };
    child.start(asker, argument).expect("start the child");
    let deadline = facts::ticks() + 10_000;
    while SHARED.read(BOUND) == 0 {
        assert!(
            child.is_alive() && facts::ticks() < deadline,
            "the child never bound"
        );
        let _ = user::wait(Event::TIMER, 1);
    }
    println!(
        "{NAME}: the child has {} bindings on 10.0.2.15",
        SHARED.read(BOUND)
    );
    if !stale {
        counts_cost_little();
    }
    let _ = witness.lap();
    SHARED.write(GO, 1);

    let mut longest = 0;
    for round in 0..ROUNDS {
        let host = if round.is_multiple_of(2) {
            GATEWAY
        } else {
            NAMESERVER
        };
        longest = longest.max(ask(station, host));
    }
    let lap = witness.lap();
    let tick = facts::tsc_hz() / facts::ticks_per_second();
    let allowed = (facts::slots() + SLACK_TICKS) * tick;
    println!(
        "{NAME}: {} requests from the child; the witness's longest wait for the CPU {} ticks \
         (allowed {}); the parent's slowest reply {longest} ticks",
        SHARED.read(SENT),
        lap.largest_gap / tick,
        allowed / tick
    );
    witness.check_unharmed("the replies");
    assert!(
        lap.largest_gap <= allowed,
        "ARP replies kept the witness from the CPU {} ticks",
        lap.largest_gap / tick
    );
    assert!(child.is_alive(), "the child died");
    let least = if stale {
        BINDINGS + ROUNDS
    } else {
        ROUNDS * BURST
    };
    assert!(SHARED.read(SENT) > least, "the child hardly asked");
    let which = if stale {
        ", most of them waiting for a host that never answers,"
    } else {
        ""
    };
    check::ok(format_args!(
        "ARP replies to a binding's many askers{which} never keep a slot holder waiting"
    ));
    assert!(
        longest <= REPLY_TICKS,
        "the parent's ARP reply took {longest} ticks"
    );
    check::ok(format_args!(
        "a library OS sharing its address gets its ARP replies among many askers{which}"
    ));

    child.destroy();
}

/// The parent's own packet counts, beside the child's 500 bindings, cost at most four times
/// what its id does: an environment's counts add up its own bindings, never everyone's
/// (they once did: 33 times an `Id`; twice now). The cheapest of [`TRIES`] of each, so that
/// no tick lands in it.
fn counts_cost_little() {
    let cheapest = |account| {
        (0..TRIES)
            .map(|_| {
                let start = user::tsc();
                let _ = user::environment_info(Handle::SELF_ENVIRONMENT, account);
                user::tsc() - start
            })
            .min()
            .unwrap_or(u64::MAX)
    };
    let id = cheapest(EnvironmentAccount::Id);
    let sent = cheapest(EnvironmentAccount::PacketsSent);
    println!("{NAME}: EnvironmentInfo: Id {id} cycles, PacketsSent {sent}");
    assert!(
        sent <= 4 * id,
        "the parent's packet counts cost {sent} cycles beside the child's bindings, its id {id}"
    );
    check::ok(
        "an environment's packet counts cost what its id does, beside 500 bindings of another's",
    );
}

/// Takes whatever is in the receive ring (the reply to the station's first request).
fn settle(binding: &mut Binding) {
    let _ = user::wait(Event::TIMER, 20);
    while binding.rings.receive(|_| ()).is_some() {}
}

/// Asks `host` for its MAC and waits for its reply; returns the ticks it took. Replies
/// from anyone else are passed over.
fn ask(station: &mut Station, host: u32) -> u64 {
    let mut frame = [0; MAX_FRAME];
    let length = build_arp(1, station.mac, GUEST, [0; 6], host, &mut frame);
    let began = facts::ticks();
    station
        .binding
        .send(&frame[..length])
        .expect("send the ARP request");
    loop {
        let reply = station.binding.rings.receive(|frame| {
            frame.len() >= 42
                && frame[12..14] == [8, 6]
                && frame[20..22] == [0, 2]
                && frame[28..32] == host.to_be_bytes()
        });
        match reply {
            Some(true) => return facts::ticks() - began,
            Some(false) => {}
            None => {
                assert!(
                    facts::ticks() - began <= 10 * REPLY_TICKS,
                    "no ARP reply from {host:#x} for the parent"
                );
                let _ = user::wait(Event::TIMER, 1);
            }
        }
    }
}

/// The stale child's pump: a binding of its own on `address` whose transmit ring is full
/// of requests to the gateway, sent again whenever the kernel has taken them all; the
/// child sleeps meanwhile, so the kernel's background drains send them, and the replies
/// come in others' time. `sent` requests were sent before.
fn pump(address: Handle, mac: [u8; 6], mut sent: u64) -> ! {
    let run = AliasedRun::new(PUMP_ORDER, PUMP_RINGS).expect("map the pump's run");
    let pump = run.bind().expect("bind the pump");
    user::net_filter(pump, address, Filter::udp(19_999)).expect("the pump's filter");
    let mut frame = [0; MAX_FRAME];
    let length = build_arp(1, mac, GUEST, [0; 6], GATEWAY, &mut frame);
    for pair in 0..u64::from(run.entries) / 2 {
        let at = PUMP_RINGS + control::TX_DESCRIPTORS + 8 * pair;
        write_u64(at, length as u64 | (length as u64) << 32);
    }
    for slot in 0..run.entries {
        let at = PUMP_RINGS + tx_slot_offset(run.entries, slot);
        for (word, bytes) in frame[..length].chunks(8).enumerate() {
            let mut padded = [0; 8];
            padded[..bytes.len()].copy_from_slice(bytes);
            write_u64(at + 8 * word as u64, u64::from_le_bytes(padded));
        }
    }
    let mut produced = 0u32;
    loop {
        let consumed = read_u64(PUMP_RINGS + control::TX_CONSUMER) as u32;
        if consumed == produced {
            produced = produced.wrapping_add(run.entries);
            write_u64(PUMP_RINGS + control::TX_PRODUCER, u64::from(produced));
            user::net_kick(pump).expect("kick the pump");
            sent += u64::from(run.entries);
            SHARED.write(SENT, sent);
        }
        let _ = user::wait(Event::TIMER, 1);
    }
}

/// The child: [`BINDINGS`] bindings on the granted address, then ARP requests to the
/// gateway from each and in bursts from the first, without end.
fn asker(argument: u64) -> u64 {
    let address = Handle::from_raw(argument & !STALE);
    let run = AliasedRun::new(2, CHILD_RINGS).expect("map the run");
    let mut bindings = [Handle::from_raw(0); BINDINGS as usize];
    let mut made = 0;
    for (index, slot) in bindings.iter_mut().enumerate() {
        let Ok(binding) = run.bind() else { break };
        if user::net_filter(binding, address, Filter::udp(20_000 + index as u16)).is_err() {
            break;
        }
        *slot = binding;
        made += 1;
    }
    SHARED.write(BOUND, made as u64);
    while SHARED.read(GO) == 0 {
        let _ = user::wait(Event::TIMER, 1);
    }
    let bindings = &bindings[..made];
    let first = bindings[0];
    let mut mac = [0; 6];
    mac.copy_from_slice(&SHARED.read(MAC).to_le_bytes()[..6]);
    let mut frame = [0; MAX_FRAME];
    let mut sent = 0;
    if argument & STALE != 0 {
        let length = build_arp(1, mac, GUEST, [0; 6], NOBODY, &mut frame);
        for &binding in bindings {
            if user::net_send(binding, &frame[..length]).is_ok() {
                sent += 1;
                SHARED.write(SENT, sent);
            }
        }
        pump(address, mac, sent);
    }
    let length = build_arp(1, mac, GUEST, [0; 6], GATEWAY, &mut frame);
    loop {
        for (index, &binding) in bindings.iter().enumerate() {
            if user::net_send(binding, &frame[..length]).is_ok() {
                sent += 1;
                SHARED.write(SENT, sent);
            }
            if (index as u64).is_multiple_of(BURST) {
                for _ in 0..BURST {
                    if user::net_send(first, &frame[..length]).is_ok() {
                        sent += 1;
                        SHARED.write(SENT, sent);
                    }
                }
            }
        }
    }
}
