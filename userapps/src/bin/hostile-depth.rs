//! Structures as deep as an account allows do not break the kernel's walks: a chain of
//! nested environments, each created by the one above, is listed, inspected and destroyed
//! in one call.
//!
//! A kernel that walked a family of environments recursively — to destroy it, or to decide
//! whether one is below another — would use kernel stack in proportion to a depth the user
//! chooses. Here the first level gets [`QUOTA`] frames and each level lends all but
//! `chain::PER_LEVEL` of its own to the next (`userapps/src/hostile/chain.rs`), so the
//! chain is about 1,700 environments deep. The parent waits until the deepest level has
//! parked, checks the depth is exactly what the quota allows, lists the chain through its
//! capability for the top (`EnvironmentNext`, each answer a walk up the chain) and asks
//! the deepest level's parent, then destroys the top: one `EnvironmentDestroy` must take
//! the whole chain, leave none of it visible, and give back every frame and byte of
//! kernel memory. Before that, an environment created before the chain and not above it
//! lists its own family: the kernel must rule out every level of the chain without
//! walking from each to the root again. Then it inspects the deepest level through its
//! own capability, again and again: whether the bottom is below it must be decided in a
//! few dozen steps (kernel-core's `ancestry`), not a walk up all the levels between them.
//! A witness runs throughout.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::mapping::MapFlags;
use exo_abi::syscall::{EnvironmentAccount, EnvironmentState, Event};
use exo_abi::user::Wakeup;
use exo_abi::{Handle, Rights, user};
use userapps::hostile::chain::{self, FLOOR, PER_LEVEL};
use userapps::hostile::conservation::Baseline;
use userapps::hostile::witness::Witness;
use userapps::{check, facts, memory, println};

userapps::entry!(main);

/// The first level's frame quota.
const QUOTA: u64 = 20_000;
/// A short chain built first, so that what the parent keeps for good exists before the
/// baseline.
const WARM_UP_QUOTA: u64 = 100;
/// The outsider's frame quota: an empty environment.
const OUTSIDER_QUOTA: u64 = 5;
/// The most ticks of the guest's instruction clock one `EnvironmentNext` may take here
/// (a scan of the chain once takes 13).
const LISTING_TICKS: u64 = 50;
/// A fan: the children it must make at least, its quota (frames for 1,000 children of
/// `FAN_CHILD_QUOTA`; the kernel memory that quota brings runs out a little before), and
/// the endpoint's tag.
const FAN_CALLERS: u64 = 900;
const FAN_QUOTA: u64 = 30 + 1000 * chain::FAN_CHILD_QUOTA;
const FAN_TAG: u64 = 0xfa2;
/// The longest the witness may wait for the CPU while queued callers are answered: the
/// callers woken with their errors each take a turn of the pool beside it (3 ticks
/// measured for 953), but none of it may be one call's (22 when one `Wait` answered them
/// all).
const QUEUE_GAP_TICKS: u64 = 8;
/// Questions about the bottom of the chain, and the most cycles of the instruction clock
/// one may take: a walk up the chain's 1,666 levels took 2,651,608, the jumps 21,880.
const BOTTOM_QUESTIONS: u64 = 100;
const BOTTOM_CYCLES: u64 = 100_000;
/// How long the chain may take to build, in ticks.
const BUILD_TICKS: u64 = 60_000;

fn main(_argument: u64) -> u64 {
    let code_frame = chain::code_frame();
    let warm_up = Witness::start().expect("start a witness");
    let (top, _) = build(code_frame, WARM_UP_QUOTA);
    user::environment_destroy(top).expect("destroy the warm-up chain");
    warm_up.stop();
    let baseline = Baseline::take();

    let witness = Witness::start().expect("start the witness");
    witness.expect_progress(1, BUILD_TICKS, "it started");
    // Older than the chain and not above it: listing its family scans every level.
    let outsider = user::environment_create(OUTSIDER_QUOTA).expect("create the outsider");
    let (top, levels) = build(code_frame, QUOTA);
    let expected = expected_depth(QUOTA);
    assert_eq!(
        levels.len() as u64,
        expected,
        "the chain is {} deep, not {expected}",
        levels.len()
    );
    let deepest = levels[levels.len() - 1];
    let parent = user::environment_inspect(top, deepest, EnvironmentAccount::Parent)
        .expect("inspect the deepest level");
    assert_eq!(
        parent,
        levels[levels.len() - 2],
        "the deepest level's parent"
    );
    check::ok(format_args!(
        "a chain of {expected} nested environments, each created by the one above, \
         listed and inspected through the top"
    ));
    witness.check_unharmed("building the chain");
    list_outsider(outsider, &witness);
    user::environment_destroy(outsider).expect("destroy the outsider");
    ask_about_the_bottom(deepest);
    list_from_the_bottom(top, deepest);

    user::environment_destroy(top).expect("destroy the top of the chain");
    let own = Handle::SELF_ENVIRONMENT;
    let mut after = levels[0] - 1;
    while let Some(id) = user::environment_next(own, after).expect("list own family") {
        assert!(
            !levels.contains(&id),
            "environment {id} of the chain outlived its top"
        );
        after = id;
    }
    for id in [levels[0], deepest] {
        assert!(
            user::environment_inspect(own, id, EnvironmentAccount::Id).is_err(),
            "environment {id} of the chain can still be inspected"
        );
    }
    check::ok(format_args!(
        "one EnvironmentDestroy of the top took all {expected} levels"
    ));
    witness.expect_progress(1, BUILD_TICKS, "the chain");
    witness.check_unharmed("the chain");

    fans(code_frame);
    passed_and_revoked(code_frame, &witness);
    witness.expect_progress(1, BUILD_TICKS, "the fans");
    witness.check_unharmed("the fans");
    witness.stop();
    baseline.expect_came_back("hostile-depth", "the chain");
    check::all_passed("hostile-depth");
    0
}

/// `EnvironmentNext` for the outsider, after its own id: every level of the chain is a
/// younger environment the kernel must rule out, each by a walk up its parents. A kernel
/// that walked from each level to the root afresh made about 1.4 million steps in this one
/// call: 1,764 ticks with interrupts off, taken from whoever held the slots. Walking each
/// environment once, the scan took 13 ticks, still in one go; it now works a quarter of a
/// tick at a time, and the witness waits for the CPU at most [`QUEUE_GAP_TICKS`] ticks.
///
/// Measured on the guest's time-stamp counter, which the test scenarios run on the
/// instruction clock (`-icount`): the same count of instructions every run, not wall time.
fn list_outsider(outsider: Handle, witness: &Witness) {
    let id = user::environment_info(outsider, EnvironmentAccount::Id).expect("its id");
    witness.lap();
    let start = user::tsc();
    let found = user::environment_next(outsider, id).expect("list the outsider's family");
    let cycles = user::tsc() - start;
    let lap = witness.lap();
    assert_eq!(found, None, "the outsider has no family");
    let tick = facts::tsc_hz() / facts::ticks_per_second();
    println!(
        "hostile-depth: listing the outsider's family took {} ticks; the witness's longest \
         wait for the CPU {} ticks",
        cycles / tick,
        lap.largest_gap / tick
    );
    assert!(
        cycles < LISTING_TICKS * tick,
        "one EnvironmentNext took {} ticks",
        cycles / tick
    );
    assert!(
        lap.largest_gap <= QUEUE_GAP_TICKS * tick,
        "one EnvironmentNext kept the witness waiting {} ticks",
        lap.largest_gap / tick
    );
    check::ok(format_args!(
        "EnvironmentNext past a {}-deep chain it is not above took less than {LISTING_TICKS} \
         ticks and kept the witness from the CPU at most {QUEUE_GAP_TICKS}",
        expected_depth(QUOTA)
    ));
}

/// `EnvironmentInspect` of the deepest level, asked [`BOTTOM_QUESTIONS`] times through
/// this environment's own capability: each answer decides that the bottom is below it. A
/// kernel that decided it by walking up every level between them took the whole chain's
/// walk in every call, one lookup a level, interrupts off, and a program could ask in a
/// loop for ever; with a jump per environment to an ancestor higher up (kernel-core's
/// `ancestry`) it takes a few dozen steps. The quickest call (the others may have lost
/// the CPU to the witness between the two readings of the clock) must take at most
/// [`BOTTOM_CYCLES`] of the guest's instruction clock.
fn ask_about_the_bottom(deepest: u64) {
    let mut quickest = u64::MAX;
    for _ in 0..BOTTOM_QUESTIONS {
        let start = user::tsc();
        let id =
            user::environment_inspect(Handle::SELF_ENVIRONMENT, deepest, EnvironmentAccount::Id)
                .expect("inspect the deepest level");
        quickest = quickest.min(user::tsc() - start);
        assert_eq!(id, deepest, "the deepest level's id");
    }
    println!(
        "hostile-depth: EnvironmentInspect of the level {} below: {quickest} cycles",
        expected_depth(QUOTA)
    );
    assert!(
        quickest <= BOTTOM_CYCLES,
        "EnvironmentInspect of the chain's bottom took {quickest} cycles"
    );
    check::ok(format_args!(
        "EnvironmentInspect of an environment {} levels below took {quickest} cycles (at \
         most {BOTTOM_CYCLES})",
        expected_depth(QUOTA)
    ));
}

/// Lists the chain from its bottom through the top, each time a fresh listing (one of our
/// own family between two makes the next start afresh): whether the bottom is below the top
/// must be decided in a few dozen steps (a short walk up, then kernel-core's `ancestry`),
/// not by a walk up every level, which a fresh listing once made twice: 4,994,712 cycles a
/// call, 77,240 now.
fn list_from_the_bottom(top: Handle, deepest: u64) {
    let mut quickest = u64::MAX;
    for _ in 0..BOTTOM_QUESTIONS {
        let start = user::tsc();
        let next = user::environment_next(top, deepest - 1).expect("list from the bottom");
        quickest = quickest.min(user::tsc() - start);
        assert_eq!(next, Some(deepest), "the chain's bottom");
        user::environment_next(Handle::SELF_ENVIRONMENT, 0).expect("list our own family");
    }
    println!("hostile-depth: EnvironmentNext from the bottom, listed afresh: {quickest} cycles");
    assert!(
        quickest <= BOTTOM_CYCLES,
        "EnvironmentNext from the chain's bottom took {quickest} cycles"
    );
    check::ok(format_args!(
        "EnvironmentNext from the bottom of {} levels, each a fresh listing, took {quickest} \
         cycles (at most {BOTTOM_CYCLES})",
        expected_depth(QUOTA)
    ));
}

/// A fan of at least [`FAN_CALLERS`] environments, each blocked in a `Call` to this one
/// and queued in the order it called, destroyed with their creator in one call — and, to
/// compare, the same fan of environments that only wait. Destroyed newest first, queued
/// callers made a kernel that found each one's place in the queue by walking it from the
/// front walk the whole queue each time: on the instruction clock, 1,077 ticks for 953
/// callers against 512 for 953 sleepers. Removing a caller must cost the same wherever it
/// stands, so the callers may take at most half again as long as the sleepers.
fn fans(code_frame: Handle) {
    let endpoint = user::endpoint_create(FAN_TAG).expect("create the endpoint");
    let (sleepers, sleepers_ticks) = fan(code_frame, endpoint, false);
    let (callers, callers_ticks) = fan(code_frame, endpoint, true);
    println!(
        "hostile-depth: destroying {sleepers} sleepers took {sleepers_ticks} ticks, \
         {callers} queued callers {callers_ticks}"
    );
    // No call is left in the queue: a wait for calls ends on the timer.
    let woken = user::wait(Event::CALL | Event::TIMER, 1);
    assert!(
        matches!(woken, Ok(Wakeup::Timer)),
        "a wait for calls after the callers were destroyed gave {woken:?}"
    );
    memory::drop_capability(endpoint).expect("drop the endpoint");
    assert_eq!(callers, sleepers, "the two fans differ");
    assert!(
        2 * callers_ticks <= 3 * sleepers_ticks.max(1),
        "destroying queued callers took {callers_ticks} ticks, sleepers {sleepers_ticks}"
    );
    check::ok(format_args!(
        "{callers} callers queued on this environment, destroyed with their creator in one \
         call, took about as long as as many sleepers and left nothing in the queue"
    ));
}

/// A fan of at least [`FAN_CALLERS`] environments queued on this one, each passing in
/// its call a copy of the endpoint it calls through; then this environment revokes the
/// endpoint, which takes every passed copy while the calls wait, and waits for a call.
/// Each queued caller whose capability cannot be passed any more is answered with that
/// error and the next one looked at: a kernel that did so for all of them in one `Wait`
/// kept the CPU, interrupts off, for as long as the queue was long: the witness waited 22
/// ticks for 953. The `Wait` now works a quarter of a tick at a time and is taken again,
/// and the witness waits for the CPU at most [`QUEUE_GAP_TICKS`] ticks.
fn passed_and_revoked(code_frame: Handle, witness: &Witness) {
    let endpoint = user::endpoint_create(FAN_TAG).expect("create the endpoint");
    let (fan, callers) = started_fan(
        code_frame,
        endpoint,
        chain::fan_of_passers(),
        EnvironmentState::Calling,
    );
    memory::revoke_capability(endpoint).expect("revoke the endpoint");
    witness.lap();
    let woken = user::wait(Event::CALL | Event::TIMER, 1);
    let lap = witness.lap();
    assert!(
        matches!(woken, Ok(Wakeup::Timer)),
        "a wait for calls whose capabilities were all revoked gave {woken:?}"
    );
    // Every caller got its error and waits for good in the chain's code.
    let (members, waiting) = census(fan, EnvironmentState::Waiting);
    assert_eq!(waiting, members, "{members} in the fan, {waiting} waiting");
    user::environment_destroy(fan).expect("destroy the fan");
    memory::drop_capability(endpoint).expect("drop the endpoint");
    let tick = facts::tsc_hz() / facts::ticks_per_second();
    println!(
        "hostile-depth: {callers} queued callers whose passed capabilities were revoked: \
         the witness's longest wait for the CPU {} ticks",
        lap.largest_gap / tick
    );
    assert!(
        lap.largest_gap <= QUEUE_GAP_TICKS * tick,
        "answering {callers} queued callers kept the witness waiting {} cycles",
        lap.largest_gap
    );
    check::ok(format_args!(
        "{callers} queued callers whose passed capabilities were revoked were answered \
         without keeping the witness waiting more than {QUEUE_GAP_TICKS} ticks"
    ));
}

/// Starts a fan whose children call `endpoint` (or only wait), waits until every child
/// is blocked, destroys the fan; returns how many children it had and the ticks of the
/// guest's instruction clock the destruction took.
fn fan(code_frame: Handle, endpoint: Handle, calling: bool) -> (u64, u64) {
    let blocked = match calling {
        true => EnvironmentState::Calling,
        false => EnvironmentState::Waiting,
    };
    let (fan, children) = started_fan(code_frame, endpoint, chain::fan(calling), blocked);
    let tick = facts::tsc_hz() / facts::ticks_per_second();
    let start = user::tsc();
    user::environment_destroy(fan).expect("destroy the fan");
    (children, (user::tsc() - start) / tick)
}

/// Starts a fan at `entry` (`chain::fan`, `chain::fan_of_passers`) whose children reach
/// `endpoint`, and waits until every child is `blocked` and the fan itself waits; returns
/// the fan and how many children it has (at least [`FAN_CALLERS`]).
fn started_fan(
    code_frame: Handle,
    endpoint: Handle,
    entry: u64,
    blocked: EnvironmentState,
) -> (Handle, u64) {
    let fan = user::environment_create(FAN_QUOTA).expect("create the fan");
    user::map(code_frame, fan, chain::code_page(), MapFlags::EXECUTE).expect("map its code");
    let code = user::capability_grant(code_frame, fan, chain::FAN_CODE_RIGHTS).expect("grant");
    let called = user::capability_grant(endpoint, fan, Rights::CALL | Rights::GRANT)
        .expect("grant the endpoint");
    let argument = chain::fan_argument(code, called).expect("small handles");
    user::environment_start(fan, entry, 0, argument).expect("start the fan");
    let deadline = facts::ticks() + BUILD_TICKS;
    loop {
        let (members, in_state) = census(fan, blocked);
        let parked = user::environment_info(fan, EnvironmentAccount::State)
            == Ok(EnvironmentState::Waiting as u64);
        // The fan itself waits too: among sleepers it counts itself.
        let children = in_state - u64::from(blocked == EnvironmentState::Waiting);
        if parked && children + 1 == members && children >= FAN_CALLERS {
            return (fan, children);
        }
        assert!(
            facts::ticks() < deadline,
            "the fan made {members} environments, {children} of them {blocked:?}"
        );
        let _ = user::wait(Event::TIMER, 1);
    }
}

/// How many environments are in `top`'s family, `top` included, and how many of them are
/// in `state`.
fn census(top: Handle, state: EnvironmentState) -> (u64, u64) {
    let mut last = user::environment_info(top, EnvironmentAccount::Id).expect("the fan's id");
    let in_state = |id| {
        let found = user::environment_inspect(top, id, EnvironmentAccount::State);
        u64::from(found == Ok(state as u64))
    };
    let (mut members, mut counted) = (1, in_state(last));
    while let Some(id) = user::environment_next(top, last).expect("list the fan") {
        counted += in_state(id);
        members += 1;
        last = id;
    }
    (members, counted)
}

/// How many levels a first level with `quota` frames makes.
fn expected_depth(quota: u64) -> u64 {
    let mut levels = 1;
    let mut quota = quota;
    while quota >= FLOOR {
        quota -= PER_LEVEL;
        levels += 1;
    }
    levels
}

/// The most levels this program checks (the chain of `QUOTA` and then some).
const MAX_LEVELS: usize = 2048;

/// Builds a chain whose first level has `quota` frames; waits until its deepest level
/// has parked. Returns the top's capability and the levels' ids, top first.
fn build(code_frame: Handle, quota: u64) -> (Handle, heapless_ids::Ids) {
    let top = user::environment_create(quota).expect("create the top of the chain");
    chain::start(top, code_frame).expect("start the chain");
    let mut levels = heapless_ids::Ids::new();
    levels.push(user::environment_info(top, EnvironmentAccount::Id).expect("the top's id"));
    let deadline = facts::ticks() + BUILD_TICKS;
    loop {
        let last = levels.last();
        // Each answer is a walk from the new level up to the top.
        if let Some(next) = user::environment_next(top, last).expect("list the chain") {
            levels.push(next);
            continue;
        }
        let state = user::environment_inspect(top, last, EnvironmentAccount::State);
        let quota = user::environment_inspect(top, last, EnvironmentAccount::FrameQuota);
        if state == Ok(EnvironmentState::Waiting as u64) && quota.is_ok_and(|q| q < FLOOR) {
            println!(
                "hostile-depth: a chain of {} levels from a quota of {quota:?} frames",
                levels.len()
            );
            return (top, levels);
        }
        assert!(
            facts::ticks() < deadline,
            "the chain stopped at {} levels (the last: state {state:?}, quota {quota:?})",
            levels.len()
        );
        let _ = user::wait(Event::TIMER, 1);
    }
}

/// A fixed array of ids, as this runtime has no heap.
mod heapless_ids {
    use super::MAX_LEVELS;

    pub struct Ids {
        ids: [u64; MAX_LEVELS],
        len: usize,
    }

    impl Ids {
        pub fn new() -> Self {
            Self {
                ids: [0; MAX_LEVELS],
                len: 0,
            }
        }

        pub fn push(&mut self, id: u64) {
            assert!(self.len < MAX_LEVELS, "more than {MAX_LEVELS} levels");
            self.ids[self.len] = id;
            self.len += 1;
        }

        pub fn last(&self) -> u64 {
            self.ids[self.len - 1]
        }

        pub fn len(&self) -> usize {
            self.len
        }

        pub fn contains(&self, id: &u64) -> bool {
            self.ids[..self.len].contains(id)
        }
    }

    impl core::ops::Index<usize> for Ids {
        type Output = u64;

        fn index(&self, index: usize) -> &u64 {
            &self.ids[..self.len][index]
        }
    }
}
