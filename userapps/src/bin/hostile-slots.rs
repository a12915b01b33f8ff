//! CPU slots are lent like frames: an environment takes only the slots its creator lent
//! it, and a witness in the best-effort pool keeps its share whatever the others try.
//!
//! Every environment holds `CONTROL` over itself, so nothing but a quota stops it from
//! binding every free slot of the slice vector to itself (before slot quotas a child took 64 of
//! 64 and its parent and a witness got no CPU for 2,000 ticks). Here:
//!
//! - a greedy child, lent no slot (the default), asks for any slot, then for each slot by
//!   index, then lends a slot to a child of its own: every request is `SlotQuotaExceeded`;
//!   then it spins in the pool for ever, a CPU hog beside the witness;
//! - a child lent 2 slots lends one to a grandchild and takes exactly one for itself;
//!   destroying the grandchild gives the lent one back, and it takes exactly one more;
//!   lending a third is refused, and a dropped slot can be taken again. It then spins in
//!   its 2 slots.
//!
//! Two more children join the pool: one faulting for ever (its upcall handler returns
//! at once, so the read faults again) and one making system calls for ever without
//! yielding. Over 30 rounds of the vector the lent child must run in exactly its 2 slots
//! a round (within one), and the witness — in the pool with the greedy child and the two
//! storms, the parent asleep — at least half its fair share of the other slots, counted in
//! slot starts from the facts page, never in time. At the end every slot is free again (all N can be bound to an
//! environment that is never started), and the parent's frames, slots and kernel memory
//! are back to where they were.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::layout::PAGE_SIZE;
use exo_abi::syscall::{ANY_SLOT, EnvironmentAccount, Event};
use exo_abi::user::{self, Lend};
use exo_abi::{Error, Handle};
use userapps::check::{self, expect_error, ok};
use userapps::hostile::conservation::Baseline;
use userapps::hostile::shared::Words;
use userapps::hostile::witness::Witness;
use userapps::layout::MANAGED_START;
use userapps::spawn::Child;
use userapps::{facts, memory, println, upcall};

userapps::entry!(main);

const SHARED: Words = Words::at(MANAGED_START);
/// Each child's words in `SHARED`: `base + DONE` once its checks passed, `base + ROUNDS`
/// its spin count, `base + SLOTS_RUN` its facts page's `slots_run`.
const GREEDY: u64 = 0;
const LENT: u64 = 8;
const DONE: u64 = 0;
const ROUNDS: u64 = 1;
const SLOTS_RUN: u64 = 2;

/// The environments in the pool while the shares are measured: the witness, the greedy
/// child and the two storms.
const POOL_MEMBERS: u64 = 4;
/// Nothing is ever mapped here: the fault storm reads it.
const UNMAPPED: u64 = MANAGED_START + 0x100 * PAGE_SIZE;
/// Slots lent to the second child.
const LENT_SLOTS: u64 = 2;
const CHILD_QUOTA: u64 = 128;
const GRANDCHILD_QUOTA: u64 = 8;
/// Rounds of the slice vector the shares are counted over.
const MEASURED_ROUNDS: u64 = 30;
/// The most slots any test asks for at once: more than the vector has.
const MAX_SLOTS: usize = 256;
/// How long a child may take over its checks, in ticks.
const CHECK_TICKS: u64 = 20_000;

fn main(_argument: u64) -> u64 {
    let slots = facts::slots();
    let shared_page = SHARED.allocate().expect("allocate the shared page");
    let own_quota = user::environment_info(Handle::SELF_ENVIRONMENT, EnvironmentAccount::SlotQuota)
        .expect("read the slot quota");
    assert_eq!(
        own_quota, slots,
        "the first environment may hold every slot"
    );
    ok(format_args!(
        "the first environment's slot quota is all {own_quota} slots"
    ));

    // Everything the parent keeps for good exists before the baseline: two children and a
    // witness at once, and a table with room for a slot capability per slot.
    let warm_up = Witness::start().expect("start a witness");
    let children = [
        Child::create(CHILD_QUOTA).expect("create a child"),
        Child::create(CHILD_QUOTA).expect("create a child"),
    ];
    every_slot_is_free(slots);
    drop(children);
    warm_up.stop();
    let baseline = Baseline::take();

    let witness = Witness::start().expect("start the witness");
    SHARED.clear();
    let greedy = start_child(shared_page, Lend::default(), greedy);
    wait_done(&greedy, GREEDY, "the greedy child");
    ok("a child lent no slot was refused every slot (SlotQuotaExceeded)");

    let lent = Lend {
        frames: CHILD_QUOTA,
        kernel_bytes: 0,
        slots: LENT_SLOTS,
    };
    let lent_child = start_child(shared_page, lent, lent_two);
    wait_done(&lent_child, LENT, "the child lent 2 slots");
    let account = |which| lent_child.account(which).expect("read its accounts");
    let (held, quota, charged) = (
        account(EnvironmentAccount::SlotsHeld),
        account(EnvironmentAccount::SlotQuota),
        account(EnvironmentAccount::SlotsCharged),
    );
    assert_eq!((held, quota, charged), (LENT_SLOTS, LENT_SLOTS, LENT_SLOTS));
    ok(format_args!(
        "a child lent {LENT_SLOTS} slots holds {held}, quota {quota}, charged {charged}, \
         whatever it tried"
    ));

    let storms = [
        start_child(shared_page, Lend::default(), fault_storm),
        start_child(shared_page, Lend::default(), system_call_storm),
    ];
    shares_hold(slots, &witness);
    drop(storms);
    greedy.destroy();
    lent_child.destroy();
    witness.check_unharmed("the slot attacks");
    witness.stop();
    every_slot_is_free(slots);
    ok("every slot is free again once the children are gone");
    baseline.expect_came_back("hostile-slots", "the slot attacks");
    check::all_passed("hostile-slots");
    0
}

/// A child lent `lend` (frames and slots), sharing our page, started at `function`.
fn start_child(shared_page: Handle, lend: Lend, function: fn(u64) -> u64) -> Child {
    let lend = Lend {
        frames: CHILD_QUOTA,
        ..lend
    };
    let child = Child::create_lending(lend).expect("create a child");
    SHARED
        .share_with(shared_page, child.environment())
        .expect("share the page");
    child.start(function, 0).expect("start the child");
    child
}

/// Sleeps until the child whose words start at `base` reports its checks done.
fn wait_done(child: &Child, base: u64, who: &str) {
    let deadline = facts::ticks() + CHECK_TICKS;
    while SHARED.read(base + DONE) == 0 {
        assert!(
            child.is_alive(),
            "{who} ended before its checks were done (its panic line says why)"
        );
        assert!(facts::ticks() < deadline, "{who} never finished its checks");
        let _ = user::wait(Event::TIMER, 1);
    }
}

/// While the parent sleeps through `MEASURED_ROUNDS` rounds: the lent child runs in
/// exactly its slots, and the witness gets at least half its share of the pool, which it
/// shares with the greedy child and the two storms.
fn shares_hold(slots: u64, witness: &Witness) {
    let lent_before = SHARED.read(LENT + SLOTS_RUN);
    let witness_before = witness.slots_run();
    let greedy_before = SHARED.read(GREEDY + SLOTS_RUN);
    let _ = user::wait(Event::TIMER, MEASURED_ROUNDS * slots);
    let lent_ran = SHARED.read(LENT + SLOTS_RUN) - lent_before;
    let witness_ran = witness.slots_run() - witness_before;
    let greedy_ran = SHARED.read(GREEDY + SLOTS_RUN) - greedy_before;
    println!(
        "hostile-slots: over {MEASURED_ROUNDS} rounds the lent child ran in {lent_ran} slots, \
         the witness in {witness_ran}, the greedy child in {greedy_ran}"
    );
    let lent_share = MEASURED_ROUNDS * LENT_SLOTS;
    assert!(
        lent_ran.abs_diff(lent_share) <= 1,
        "the lent child ran in {lent_ran} slots, not its {lent_share}"
    );
    ok("the lent child ran in exactly its 2 slots a round");
    // The pool: every slot the lent child does not hold, shared by the witness, the
    // greedy child and the two storms.
    let fair = MEASURED_ROUNDS * (slots - LENT_SLOTS) / POOL_MEMBERS;
    assert!(
        witness_ran >= fair / 2,
        "the witness ran in {witness_ran} slots, less than half its fair {fair}"
    );
    ok("the witness kept at least half its share of the pool");
}

/// Binds every slot to an environment that never runs (so nobody starves meanwhile):
/// all of them must be free, and one more is refused; then lets them go.
fn every_slot_is_free(slots: u64) {
    let idle = user::environment_create(GRANDCHILD_QUOTA).expect("create an idle environment");
    let (granted, capabilities, refusal) = take_until_refused(idle);
    assert_eq!(
        granted, slots,
        "every slot can be bound (refused with {refusal:?})"
    );
    assert!(
        matches!(refusal, Error::SlotUnavailable | Error::SlotQuotaExceeded),
        "one slot more than the vector has is refused with {refusal:?}"
    );
    for capability in &capabilities[..granted as usize] {
        memory::drop_capability(*capability).expect("drop a slot capability");
    }
    user::environment_destroy(idle).expect("destroy the idle environment");
}

/// `SlotAllocate(environment, ANY_SLOT)` until refused: how many were granted, their
/// capabilities, and the refusal.
fn take_until_refused(environment: Handle) -> (u64, [Handle; MAX_SLOTS], Error) {
    let mut capabilities = [Handle::SELF_ENVIRONMENT; MAX_SLOTS];
    for (granted, slot) in capabilities.iter_mut().enumerate() {
        match user::slot_allocate(environment, ANY_SLOT) {
            Ok((capability, _)) => *slot = capability,
            Err(error) => return (granted as u64, capabilities, error),
        }
    }
    panic!("more than {MAX_SLOTS} slots granted");
}

/// Lent no slot: every way of taking one is refused. Then it spins in the pool.
fn greedy(_argument: u64) -> u64 {
    let slots = facts::slots();
    let (granted, _, refusal) = take_until_refused(Handle::SELF_ENVIRONMENT);
    assert_eq!(granted, 0, "slots granted to a child lent none");
    assert_eq!(refusal, Error::SlotQuotaExceeded);
    for index in 0..slots {
        expect_error(
            "a child lent no slot taking a slot by its index",
            user::slot_allocate(Handle::SELF_ENVIRONMENT, index),
            Error::SlotQuotaExceeded,
        );
    }
    expect_error(
        "a child lent no slot lending one",
        lend_one_slot(),
        Error::SlotQuotaExceeded,
    );
    SHARED.write(GREEDY + DONE, 1);
    spin(GREEDY)
}

/// Lent 2 slots: takes exactly what it was lent, however it goes about it. Then it spins
/// in its slots.
fn lent_two(_argument: u64) -> u64 {
    let grandchild = lend_one_slot().expect("lend one slot to a grandchild");
    let (granted, first, refusal) = take_until_refused(Handle::SELF_ENVIRONMENT);
    assert_eq!(
        (granted, refusal),
        (1, Error::SlotQuotaExceeded),
        "with one of two slots lent on, one more"
    );
    user::environment_destroy(grandchild).expect("destroy the grandchild");
    let (granted, _, refusal) = take_until_refused(Handle::SELF_ENVIRONMENT);
    assert_eq!(
        (granted, refusal),
        (1, Error::SlotQuotaExceeded),
        "with the lent slot back, exactly one more"
    );
    expect_error(
        "lending a slot beyond the quota",
        lend_one_slot(),
        Error::SlotQuotaExceeded,
    );
    memory::drop_capability(first[0]).expect("drop a slot capability");
    let (granted, _, refusal) = take_until_refused(Handle::SELF_ENVIRONMENT);
    assert_eq!(
        (granted, refusal),
        (1, Error::SlotQuotaExceeded),
        "a dropped slot can be taken again, and only it"
    );
    let held = user::environment_info(Handle::SELF_ENVIRONMENT, EnvironmentAccount::SlotsHeld);
    assert_eq!(held, Ok(LENT_SLOTS), "it holds what it was lent");
    SHARED.write(LENT + DONE, 1);
    spin(LENT)
}

/// A child environment lent one slot (and a few frames).
fn lend_one_slot() -> Result<Handle, Error> {
    user::environment_create_lending(Lend {
        frames: GRANDCHILD_QUOTA,
        kernel_bytes: 0,
        slots: 1,
    })
}

/// Counts rounds and copies the facts page's `slots_run` into the words at `base`, for
/// ever, without a system call.
fn spin(base: u64) -> ! {
    loop {
        SHARED.add(base + ROUNDS, 1);
        SHARED.write(base + SLOTS_RUN, facts::slots_run());
    }
}

/// Faults for ever: its upcall handler returns at once, so the read faults again.
fn fault_storm(_argument: u64) -> u64 {
    upcall::register(|_frame| {}).expect("register the upcall handler");
    loop {
        memory::read_u64(UNMAPPED);
    }
}

/// Makes system calls for ever, never yielding.
fn system_call_storm(_argument: u64) -> u64 {
    loop {
        let _ = user::environment_info(Handle::SELF_ENVIRONMENT, EnvironmentAccount::Id);
    }
}
