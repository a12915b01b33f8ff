//! The CPU as a vector of slots: an environment holding k of the N slots gets k/N of it.
//!
//! Three workers hold 1, 2 and 4 slots, which the parent allocates for them, and spin, each
//! counting its iterations into its own word of a page it shares with the parent. The
//! parent holds no slot, so it runs only in the free ones, where it spins too: the CPU is
//! contended in every slot. It reads the counts at the same slot [`ROUNDS`] rounds apart.
//! Each worker must have run in exactly its slots, and the shares of the work must be 1:2:4
//! within ±10 % — counted in work, not in time.
//!
//! The scenario boots with slots of 10 ms rather than 1 ms. Under QEMU's TCG the guest's
//! timer follows the host's clock, so when the host runs something else, or the emulated
//! timer fires late, the slot then running gets less, or more, work done; the kernel cannot
//! end a slot before its tick arrives. Such hiccups last a millisecond or so: a good part of
//! a 1 ms slot, little of a 10 ms one.
//!
//! Then preemption: a child looping forever on 4 slots cannot keep a 1-slot child or the
//! parent from running. Last, the slot calls refuse bad input with typed errors, and a slot
//! that was dropped, or whose owner was destroyed, can be allocated again.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::mapping::MapFlags;
use exo_abi::syscall::{ANY_SLOT, CapabilityKind, EnvironmentAccount};
use exo_abi::user;
use exo_abi::{Error, Handle, Rights};
use userapps::check::{self, expect_error, ok};
use userapps::layout::MANAGED_START;
use userapps::memory::{self, read_u64, write_u64};
use userapps::spawn::Child;
use userapps::{facts, println};

userapps::entry!(main);

/// The page parent and children share: worker `i` counts its work in word `i` and copies
/// its facts page's `slots_run` into word `SLOTS_RUN_WORDS + i`.
const SHARED_PAGE: u64 = MANAGED_START;
const SLOTS_RUN_WORDS: u64 = 8;

/// The workers' holdings: shares must follow them.
const HOLDINGS: [u64; 3] = [1, 2, 4];
/// Rounds of the slice vector the shares are measured over.
const ROUNDS: u64 = 30;
/// How far a worker's share may stray, in thousandths of its expected share.
const TOLERANCE_PERMILLE: u64 = 100;
/// The infinite-loop child's holding, and the rounds the others must make progress in.
const HOG_SLOTS: u64 = 4;
const HOG_ROUNDS: u64 = 3;
/// Frames a child may hold: its image's writable pages, stack, page tables, facts page.
const CHILD_QUOTA: u64 = 48;

fn main(_argument: u64) -> u64 {
    assert!(facts::present(), "the kernel maps a facts page");
    let shared = share_page();
    println!(
        "slices-test: {} slots of {} us; environment {} holds {}",
        facts::slots(),
        1_000_000 / facts::ticks_per_second().max(1),
        facts::environment_id(),
        facts::slots_held()
    );
    assert_eq!(facts::slots_held(), 0, "the parent starts with no slot");

    let freed = shares_follow_holdings(shared);
    slots_of_a_destroyed_owner_are_free(&freed);
    an_infinite_loop_is_preempted(shared);
    bad_slot_requests_are_refused();
    check::all_passed("slices-test");
    0
}

/// A fresh page mapped at `SHARED_PAGE`, for the children to map too.
fn share_page() -> Handle {
    let (shared, _) = user::frame_allocate(0).expect("allocate the shared page");
    user::map(
        shared,
        Handle::SELF_ENVIRONMENT,
        SHARED_PAGE,
        MapFlags::WRITE,
    )
    .expect("map the shared page");
    shared
}

const fn work_word(index: u64) -> u64 {
    SHARED_PAGE + 8 * index
}

const fn slots_run_word(index: u64) -> u64 {
    SHARED_PAGE + 8 * (SLOTS_RUN_WORDS + index)
}

/// A worker: counts iterations into word `index` of the shared page, for ever, and keeps
/// word `SLOTS_RUN_WORDS + index` equal to its facts page's `slots_run`.
fn worker(index: u64) -> u64 {
    let mut done: u64 = 0;
    let mut slots_run = 0;
    loop {
        done += 1;
        write_u64(work_word(index), done);
        if facts::slots_run() != slots_run {
            slots_run = facts::slots_run();
            write_u64(slots_run_word(index), slots_run);
        }
    }
}

/// Loops for ever without a system call or a write.
fn hog(_argument: u64) -> u64 {
    loop {
        core::hint::spin_loop();
    }
}

/// A started child sharing the page and holding one slot per entry of `slots` (an index, or
/// `ANY_SLOT`), allocated by us for it. Returns the child and the indices of its slots.
fn start_holder(
    shared: Handle,
    slots: &[u64],
    function: fn(u64) -> u64,
    argument: u64,
) -> (Child, [u64; 4]) {
    let child = Child::create(CHILD_QUOTA).expect("create a child");
    user::map(shared, child.environment(), SHARED_PAGE, MapFlags::WRITE).expect("share the page");
    let mut indices = [u64::MAX; 4];
    for (index, &wanted) in indices.iter_mut().zip(slots) {
        let (capability, slot) =
            user::slot_allocate(child.environment(), wanted).expect("allocate a slot");
        let info = user::capability_identify(capability).expect("identify the slot capability");
        assert_eq!(info.kind, CapabilityKind::Slot, "a slot capability");
        assert_eq!(info.value, slot, "a slot capability names its index");
        *index = slot;
    }
    child.start(function, argument).expect("start the child");
    (child, indices)
}

fn read_words(word: impl Fn(u64) -> u64) -> [u64; 3] {
    core::array::from_fn(|index| read_u64(word(index as u64)))
}

/// Worker `index`'s slots: every other slot from slot 0 on.
///
/// So every worker slot begins alike: after a free slot, in which the parent ran. Under
/// QEMU's TCG how a slot begins changes how much work fits in it — measured here, a slot
/// after an idle CPU got a fifth more than one after a busy slot — an effect of the emulator
/// and the host, not of the kernel, which gives each the same one tick.
fn worker_slots(index: usize) -> [u64; 4] {
    let first: u64 = HOLDINGS[..index].iter().sum();
    core::array::from_fn(|slot| 2 * (first + slot as u64))
}

/// The first slot after the workers' slots.
const WORKER_SLOTS_END: u64 = 2 * (HOLDINGS[0] + HOLDINGS[1] + HOLDINGS[2]);

/// The tick at which slot `slot` next starts.
fn next_start_of(slot: u64) -> u64 {
    let round = facts::slots();
    loop {
        let (tick, current) = (facts::ticks(), facts::current_slot());
        if facts::ticks() == tick {
            let ahead = (slot + round - current) % round;
            return tick + if ahead == 0 { round } else { ahead };
        }
    }
}

/// Spins until tick `tick`: in the free slots, the parent competes for the CPU too.
fn spin_until(tick: u64) {
    while facts::ticks() < tick {
        core::hint::spin_loop();
    }
}

/// Whether `part` of `total` is `holding` of `holdings` within the tolerance.
fn within_tolerance(part: u64, total: u64, holding: u64, holdings: u64) -> bool {
    // |part / total - holding / holdings| <= tolerance * holding / holdings, in integers.
    let actual = u128::from(part) * u128::from(holdings) * 1000;
    let expected = u128::from(total) * u128::from(holding) * 1000;
    let allowed = u128::from(total) * u128::from(holding) * u128::from(TOLERANCE_PERMILLE);
    actual.abs_diff(expected) <= allowed
}

fn percent(part: u64, total: u64) -> (u64, u64) {
    let permille = part * 1000 / total.max(1);
    (permille / 10, permille % 10)
}

/// Runs the three workers; returns the slots they held, free again once they are destroyed.
fn shares_follow_holdings(shared: Handle) -> [[u64; 4]; 3] {
    let round = facts::slots();
    assert!(
        round > WORKER_SLOTS_END + 2,
        "the test needs more than {WORKER_SLOTS_END} slots"
    );
    let workers: [(Child, [u64; 4]); 3] = core::array::from_fn(|index| {
        let slots = worker_slots(index);
        start_holder(
            shared,
            &slots[..HOLDINGS[index] as usize],
            worker,
            index as u64,
        )
    });
    for (index, (child, slots)) in workers.iter().enumerate() {
        let held = &slots[..HOLDINGS[index] as usize];
        println!("slices-test: worker {index} holds slots {held:?}");
        assert_eq!(
            child.account(EnvironmentAccount::SlotsHeld),
            Ok(HOLDINGS[index]),
            "worker {index} holds the slots allocated for it"
        );
    }
    ok(format_args!("the workers hold {HOLDINGS:?} slots"));
    assert_eq!(
        facts::slots_held(),
        0,
        "slots allocated for children are theirs"
    );

    // The parent looks at the start of the same free slot, far from the workers' slots,
    // [`ROUNDS`] rounds apart: in between, each worker had exactly its slots, ROUNDS times.
    let sample_slot = (WORKER_SLOTS_END + round) / 2;
    let mut tick = next_start_of(sample_slot);
    spin_until(tick);
    // Every worker has run once before the first look, so none is still starting up.
    tick += round;
    spin_until(tick);
    assert!(!read_words(work_word).contains(&0), "a worker never ran");
    let (work_before, slots_before) = (read_words(work_word), read_words(slots_run_word));
    spin_until(tick + ROUNDS * round);
    let (work_after, slots_after) = (read_words(work_word), read_words(slots_run_word));

    let work: [u64; 3] = core::array::from_fn(|index| work_after[index] - work_before[index]);
    let total: u64 = work.iter().sum();
    let holdings: u64 = HOLDINGS.iter().sum();
    println!("slices-test: {ROUNDS} rounds: work {work:?}");
    for index in 0..3 {
        let slots_run = slots_after[index] - slots_before[index];
        let (share, share_tenths) = percent(work[index], total);
        let (expected, expected_tenths) = percent(HOLDINGS[index], holdings);
        println!(
            "slices-test: worker {index} ({} slots): ran in {slots_run} slots, did \
             {share}.{share_tenths} % of the work, expected {expected}.{expected_tenths} %",
            HOLDINGS[index],
        );
        // One slot either way: a slot the emulator cut too short for the worker to copy
        // its `slots_run` in, just before a look.
        assert!(
            slots_run.abs_diff(ROUNDS * HOLDINGS[index]) <= 1,
            "worker {index} ran in each of its slots, and only in them"
        );
    }
    ok("each worker ran in its slots, every round, and only in them");
    for index in 0..3 {
        assert!(
            within_tolerance(work[index], total, HOLDINGS[index], holdings),
            "worker {index} with {} of {holdings} held slots did {} of {total} units of work",
            HOLDINGS[index],
            work[index]
        );
    }
    ok("CPU shares follow holdings 1:2:4 within 10 %");
    workers.map(|(child, slots)| {
        child.destroy();
        slots
    })
}

fn slots_of_a_destroyed_owner_are_free(freed: &[[u64; 4]; 3]) {
    let child = Child::create(CHILD_QUOTA).expect("create a child");
    for &slot in freed.iter().flatten().filter(|&&slot| slot != u64::MAX) {
        let (capability, index) = user::slot_allocate(child.environment(), slot)
            .expect("a destroyed owner's slot is free again");
        assert_eq!(index, slot);
        memory::drop_capability(capability).expect("drop the slot capability");
    }
    ok("the slots of destroyed workers can be allocated again");
}

fn an_infinite_loop_is_preempted(shared: Handle) {
    for index in 0..3 {
        write_u64(work_word(index), 0);
        write_u64(slots_run_word(index), 0);
    }
    let (hog, _) = start_holder(shared, &[ANY_SLOT; HOG_SLOTS as usize], hog, 0);
    let (counter, _) = start_holder(shared, &[ANY_SLOT], worker, 0);
    // The parent spins too, without a system call: only preemption can give the others
    // the CPU, and only preemption can end this loop, when the ticks have moved on.
    let (work_before, slots_run_before, tick_before) =
        (read_u64(work_word(0)), facts::slots_run(), facts::ticks());
    let until = tick_before + HOG_ROUNDS * facts::slots();
    let mut spins: u64 = 0;
    while facts::ticks() < until {
        spins += 1;
    }
    let work = read_u64(work_word(0)) - work_before;
    let slots_run = facts::slots_run() - slots_run_before;
    println!(
        "slices-test: while a {HOG_SLOTS}-slot child looped for {HOG_ROUNDS} rounds, a 1-slot \
         child did {work} units of work and the parent spun {spins} times in {slots_run} slots"
    );
    assert!(hog.is_alive(), "the looping child still runs");
    assert!(work > 0, "the 1-slot child made progress");
    assert!(
        slots_run >= HOG_ROUNDS,
        "the parent ran in free slots every round"
    );
    ok("an infinite loop on 4 slots does not stop a 1-slot child or the parent");
    hog.destroy();
    counter.destroy();
}

fn bad_slot_requests_are_refused() {
    let child = Child::create(CHILD_QUOTA).expect("create a child");
    let environment = child.environment();
    let (capability, index) =
        user::slot_allocate(environment, ANY_SLOT).expect("allocate any slot");
    expect_error(
        "allocating a slot held by another",
        user::slot_allocate(Handle::SELF_ENVIRONMENT, index),
        Error::SlotUnavailable,
    );
    expect_error(
        "allocating slot N of N",
        user::slot_allocate(environment, facts::slots()),
        Error::InvalidArgument,
    );
    let (frame, _) = user::frame_allocate(0).expect("allocate a frame");
    expect_error(
        "allocating a slot for a frame capability",
        user::slot_allocate(frame, ANY_SLOT),
        Error::WrongKind,
    );
    let weak = user::capability_derive(environment, Rights::CALL).expect("derive");
    expect_error(
        "allocating through an environment capability without CONTROL",
        user::slot_allocate(weak, ANY_SLOT),
        Error::MissingRights,
    );

    memory::drop_capability(capability).expect("drop the slot capability");
    expect_error(
        "dropping a dropped slot capability",
        memory::drop_capability(capability),
        Error::StaleHandle,
    );
    let (again, same) =
        user::slot_allocate(environment, index).expect("a dropped slot is free again");
    assert_eq!(same, index);
    ok("a dropped slot can be allocated again");

    // Every slot taken: then none is free.
    let mut taken = 1;
    loop {
        match user::slot_allocate(environment, ANY_SLOT) {
            Ok(_) => taken += 1,
            Err(Error::SlotUnavailable) => break,
            Err(error) => panic!("allocating every slot: {error:?}"),
        }
    }
    assert_eq!(
        taken,
        facts::slots(),
        "every slot could be allocated, then none"
    );
    ok(format_args!(
        "with all {taken} slots held, allocating any slot refused (SlotUnavailable)"
    ));
    memory::drop_capability(again).expect("drop");
    memory::drop_capability(frame).expect("drop");
    child.destroy();
    let (capability, _) = user::slot_allocate(Handle::SELF_ENVIRONMENT, ANY_SLOT)
        .expect("the destroyed child's slots are free");
    memory::drop_capability(capability).expect("drop");
    ok("destroying the owner frees all its slots");
}
