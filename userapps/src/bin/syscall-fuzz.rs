//! The in-guest system-call fuzzer (`cargo xtask fuzz guest`): several children issue
//! random system calls at once, and afterwards the parent checks that the kernel kept its
//! invariants.
//!
//! Four fuzzing children run side by side, each in its own environment with its own frame
//! quota, each from a seed the parent derives from the run's seed: two polite (never a
//! call that could take their own memory away) and two self-harming (they unmap their own
//! pages, drop their capabilities and destroy themselves; `userapps::hostile::fuzz`). When
//! a child ends — its budget spent, or dead by its own hand — the parent destroys what is
//! left of it and starts another in its place, until the children have begun the number of
//! calls asked for. A witness (`hostile::witness`) runs all the while.
//!
//! Then the parent checks: no call was answered with anything but a typed error; the
//! witness is alive, never saw a flag it did not set, still progresses and can still
//! make the largest console write and map batch; no environment is left below the parent
//! (`EnvironmentNext` lists only itself, and none of the environments it destroyed can be
//! inspected) — and, at every progress line, every environment listed is the parent, the
//! witness or one below a live child; every frame and every byte of kernel memory came
//! back (`hostile::conservation`).
//!
//! The start argument (`init_argument=` on the kernel command line) packs the run: the
//! seed in its low 40 bits, the number of calls in thousands above them (0: [`CALLS`]).
//! Progress goes to the console every [`REPORT_EVERY`] calls.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::syscall::{EnvironmentAccount, Event, Sysnum};
use exo_abi::{Error, Handle, user};
use userapps::check;
use userapps::hostile::conservation::Baseline;
use userapps::hostile::fuzz::{self, Echo, Mode, Slot};
use userapps::hostile::shared::Words;
use userapps::hostile::witness::Witness;
use userapps::layout::MANAGED_START;
use userapps::spawn::Child;
use userapps::{facts, print, println};

userapps::entry!(main);

/// Calls when the start argument asks for none.
const CALLS: u64 = 200_000;
/// The start argument's bits that hold the seed; the calls in thousands sit above them.
const SEED_BITS: u32 = 40;
const REPORT_EVERY: u64 = 100_000;
/// Children at once, the first [`POLITE_CHILDREN`] polite, the rest self-harming.
const CHILDREN: usize = 4;
const POLITE_CHILDREN: usize = 2;
/// The most calls one child is given; it may die before.
const CALLS_PER_CHILD: u64 = 25_000;
const CHILD_QUOTA: u64 = 256;
/// A child whose count has not moved for this many seconds has stalled: a failure.
const STALL_SECONDS: u64 = 30;
/// Ids of destroyed children kept to check they are gone.
const DESTROYED_KEPT: usize = 256;

/// The page the children report in (the witness has the next one).
const SHARED: Words = Words::at(MANAGED_START);

/// A running child and what the parent knows of it.
struct Running {
    child: Child,
    id: u64,
    slot: Slot,
    seed: u64,
    last_begun: u64,
    last_moved: u64,
}

/// Everything the parent counts over the run.
struct Tally {
    calls: u64,
    children: u64,
    ended_early: u64,
    reaped: u64,
    /// Per kind of call (`fuzz::kind`): begun, and succeeded.
    kinds: [(u64, u64); fuzz::KINDS],
    destroyed: [u64; DESTROYED_KEPT],
}

fn main(argument: u64) -> u64 {
    let seed = argument & ((1 << SEED_BITS) - 1);
    let calls = match argument >> SEED_BITS {
        0 => CALLS,
        thousands => thousands * 1000,
    };
    println!(
        "syscall-fuzz: seed {seed}, {calls} calls, {CHILDREN} children ({POLITE_CHILDREN} \
         polite), at most {} calls each",
        CALLS_PER_CHILD.min(calls.div_ceil(2 * CHILDREN as u64))
    );
    let shared_page = SHARED.allocate().expect("allocate the shared page");
    SHARED.clear();
    let nic = user::start_info().nic();
    let own_id =
        user::environment_info(Handle::SELF_ENVIRONMENT, EnvironmentAccount::Id).expect("own id");
    let baseline = warmed_up_baseline(shared_page);

    let witness = Witness::start().expect("start the witness");
    let echo = Echo::start(SHARED, shared_page, CHILD_QUOTA).expect("start the echo server");
    let mut running: [Option<Running>; CHILDREN] = Default::default();
    let mut tally = Tally {
        calls: 0,
        children: 0,
        ended_early: 0,
        reaped: 0,
        kinds: [(0, 0); fuzz::KINDS],
        destroyed: [0; DESTROYED_KEPT],
    };
    let mut generation = 0u64;
    let mut next_report = REPORT_EVERY;
    let mut witness_rounds = witness.rounds();
    let start_ticks = facts::ticks();
    let per_child = CALLS_PER_CHILD.min(calls.div_ceil(2 * CHILDREN as u64));
    let stall_ticks = STALL_SECONDS * facts::ticks_per_second();
    loop {
        let mut outstanding: u64 = running
            .iter()
            .flatten()
            .map(|fuzzer| fuzzer.slot.budget())
            .sum();
        let mut live = 0;
        for (index, place) in running.iter_mut().enumerate() {
            if let Some(fuzzer) = place {
                let begun = fuzzer.slot.begun();
                if begun != fuzzer.last_begun {
                    fuzzer.last_begun = begun;
                    fuzzer.last_moved = facts::ticks();
                }
                if fuzzer.child.is_alive() {
                    assert!(
                        facts::ticks() - fuzzer.last_moved < stall_ticks,
                        "child seed {} stalled after {begun} calls",
                        fuzzer.seed
                    );
                    live += 1;
                    continue;
                }
                let ended = place.take().expect("a child");
                outstanding -= ended.slot.budget();
                reap(ended, &mut tally);
            }
            let unassigned = calls.saturating_sub(tally.calls + outstanding);
            if unassigned == 0 {
                continue;
            }
            // At least two generations of children, however short the run.
            let budget = unassigned.min(per_child);
            let mode = match index < POLITE_CHILDREN {
                true => Mode::Polite,
                false => Mode::SelfHarm,
            };
            generation += 1;
            let child_seed = mix(seed, generation);
            let held = Held { nic, echo: &echo };
            *place = Some(start_child(
                shared_page,
                index as u64,
                child_seed,
                budget,
                mode,
                held,
            ));
            tally.children += 1;
            outstanding += budget;
            live += 1;
        }
        let progress = tally.calls
            + running
                .iter()
                .flatten()
                .map(|fuzzer| fuzzer.slot.begun())
                .sum::<u64>();
        if progress >= next_report {
            next_report += REPORT_EVERY;
            let rounds = witness.rounds();
            assert!(rounds > witness_rounds, "the witness made no progress");
            witness_rounds = rounds;
            check_tree(
                own_id,
                [witness.environment(), echo.environment()],
                &running,
            );
            if let Err(error) = echo.round_trip([progress, seed]) {
                panic!("the echo server failed a round trip: {error:?}");
            }
            println!(
                "syscall-fuzz: {progress} calls, {} children, {} ticks, {} frames free, {} bytes \
                 of kernel memory in use",
                tally.children,
                facts::ticks() - start_ticks,
                user::frame_counts().0,
                user::kernel_memory().0
            );
        }
        if live == 0 {
            break;
        }
        let _ = user::wait(Event::TIMER, 1);
    }
    let ticks = facts::ticks() - start_ticks;
    println!(
        "syscall-fuzz: done: {} calls from {} children ({} ended early, by their own hand) in \
         {ticks} ticks",
        tally.calls, tally.children, tally.ended_early
    );
    print_kinds(&tally.kinds);
    check::ok(format_args!(
        "{} random calls, every refusal a typed error; the kernel survived",
        tally.calls
    ));

    witness.check_unharmed("the fuzzing");
    witness.expect_progress(10, 1000, "the fuzzing");
    check::ok("the witness ran throughout, never saw a flag it did not set, still progresses");
    if let Err(outcome) = witness.probe() {
        panic!("the witness's probe failed after the fuzzing: {outcome:#x}");
    }
    check::ok("the witness can still make the largest console write and map batch");
    witness.stop();
    assert!(echo.is_alive(), "the echo server is gone");
    if let Err(error) = echo.round_trip([tally.calls, seed]) {
        panic!("the echo server failed a round trip after the fuzzing: {error:?}");
    }
    check::ok(format_args!(
        "the echo server answered every round trip of the parent's; it served {} calls ({} \
         wakeups without a call or replies refused)",
        echo.served(),
        echo.odd()
    ));
    echo.stop();

    let mut listed = 0u64;
    let mut after = 0;
    while let Some(id) = user::environment_next(Handle::SELF_ENVIRONMENT, after)
        .expect("list the environments below")
    {
        assert_eq!(id, own_id, "environment {id} is left below the parent");
        listed += 1;
        after = id;
    }
    assert_eq!(listed, 1, "the parent lists itself");
    check::ok("no environment is left below the parent");
    let kept = (tally.reaped as usize).min(DESTROYED_KEPT);
    for &id in &tally.destroyed[..kept] {
        assert_eq!(
            user::environment_inspect(Handle::SELF_ENVIRONMENT, id, EnvironmentAccount::Id),
            Err(Error::NoSuchEnvironment),
            "destroyed environment {id} can still be inspected"
        );
    }
    check::ok(format_args!("the last {kept} children destroyed are gone"));
    baseline.expect_came_back("syscall-fuzz", "the fuzzing");
    check::all_passed("syscall-fuzz");
    0
}

/// The baseline, taken after a witness, an echo server and a full set of children have
/// come and gone:
/// what the parent keeps for good (its scratch page's tables, its capability table grown
/// to hold every child's frames) exists then already.
fn warmed_up_baseline(shared_page: Handle) -> Baseline {
    let witness = Witness::start().expect("start a witness");
    let echo = Echo::start(SHARED, shared_page, CHILD_QUOTA).expect("start an echo server");
    let children: [Child; CHILDREN] = core::array::from_fn(|_| {
        let child = Child::create(CHILD_QUOTA).expect("create a child");
        echo.grant_to(child.environment())
            .expect("grant the endpoint");
        child
    });
    drop(children);
    echo.stop();
    witness.stop();
    Baseline::take()
}

/// What the parent grants each child.
struct Held<'a> {
    nic: Option<Handle>,
    echo: &'a Echo,
}

fn start_child(
    shared_page: Handle,
    index: u64,
    seed: u64,
    budget: u64,
    mode: Mode,
    held: Held,
) -> Running {
    let child = Child::create(CHILD_QUOTA).expect("create a child");
    SHARED
        .share_with(shared_page, child.environment())
        .expect("share the page");
    let endpoint = held
        .echo
        .grant_to(child.environment())
        .expect("grant the endpoint");
    let granted = held.nic.map(|nic| {
        let rights = user::capability_identify(nic)
            .expect("identify the NIC")
            .rights;
        user::capability_grant(nic, child.environment(), rights).expect("grant the NIC")
    });
    let slot = Slot::new(SHARED, index);
    slot.prepare(seed, budget, mode, granted, Some(endpoint));
    let id = child
        .account(EnvironmentAccount::Id)
        .expect("the child's id");
    child
        .start(fuzz::child, SHARED.address() + index)
        .expect("start the child");
    Running {
        child,
        id,
        slot,
        seed,
        last_begun: 0,
        last_moved: facts::ticks(),
    }
}

/// Counts an ended child, checks it met no untyped answer, and destroys what is left.
fn reap(ended: Running, tally: &mut Tally) {
    if let Some((number, status)) = ended.slot.untyped() {
        panic!(
            "child seed {}: system call {number} gave untyped status {status:#x}",
            ended.seed
        );
    }
    let begun = ended.slot.begun();
    if begun < ended.slot.budget() {
        tally.ended_early += 1;
    }
    tally.calls += begun;
    for (kind, counts) in tally.kinds.iter_mut().enumerate() {
        let (begun, succeeded) = ended.slot.tally(kind);
        counts.0 += begun;
        counts.1 += succeeded;
    }
    tally.destroyed[tally.reaped as usize % DESTROYED_KEPT] = ended.id;
    tally.reaped += 1;
    ended.child.destroy();
}

/// Every environment below the parent is itself, a witness (the witness, the echo
/// server), a live child, or one below
/// a live child: nothing outlives the child that made it.
fn check_tree(own_id: u64, witnesses: [Handle; 2], running: &[Option<Running>]) {
    let [first, second] = witnesses.map(|witness| {
        user::environment_info(witness, EnvironmentAccount::Id).expect("a witness's id")
    });
    let known = [own_id, first, second];
    let mut after = 0;
    while let Some(id) = user::environment_next(Handle::SELF_ENVIRONMENT, after)
        .expect("list the environments below")
    {
        after = id;
        if known.contains(&id) {
            continue;
        }
        let below_a_child = running.iter().flatten().any(|fuzzer| {
            user::environment_inspect(fuzzer.child.environment(), id, EnvironmentAccount::Id)
                .is_ok()
        });
        // Gone since it was listed (its child died meanwhile): nothing left behind.
        let gone = user::environment_inspect(Handle::SELF_ENVIRONMENT, id, EnvironmentAccount::Id)
            == Err(Error::NoSuchEnvironment);
        assert!(
            below_a_child || gone,
            "environment {id} is listed, but below no live child"
        );
    }
}

/// Prints the calls of each kind begun and succeeded, a few kinds a line.
fn print_kinds(kinds: &[(u64, u64); fuzz::KINDS]) {
    const PER_LINE: usize = 6;
    for (line, chunk) in kinds.chunks(PER_LINE).enumerate() {
        print!("syscall-fuzz: calls (succeeded):");
        for (offset, (begun, succeeded)) in chunk.iter().enumerate() {
            match Sysnum::ALL.get(line * PER_LINE + offset) {
                Some(sysnum) => print!(" {sysnum:?} {begun} ({succeeded})"),
                None => print!(" unknown {begun} ({succeeded})"),
            }
        }
        println!();
    }
}

/// A child's seed: the run's seed and the child's number, mixed (splitmix64).
fn mix(seed: u64, generation: u64) -> u64 {
    let mut value = seed.wrapping_add(generation.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}
