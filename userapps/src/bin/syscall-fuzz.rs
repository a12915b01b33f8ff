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
//! calls asked for. Two witnesses run all the while: one that only counts
//! (`hostile::witness`), and an echo server the children call with random arguments and
//! capabilities (`hostile::fuzz::Echo`).
//!
//! At every progress line the parent checks that the witness has progressed, that a round
//! trip through the echo server comes back right, and that every environment listed below
//! it is itself, a witness, or one below a live child. Afterwards it checks: no call was
//! answered with anything but a typed error; the witness is alive, never saw a flag it did
//! not set, still progresses and can still make the largest console write and map batch;
//! the echo server still answers; no environment is left below the parent
//! (`EnvironmentNext` lists only itself, and none of the environments it destroyed can be
//! inspected); every frame and every byte of kernel memory came back
//! (`hostile::conservation`).
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

/// What the start argument asks for.
#[derive(Clone, Copy)]
struct Plan {
    seed: u64,
    calls: u64,
    /// Calls given to one child: at least two generations of children, however short
    /// the run.
    per_child: u64,
}

impl Plan {
    fn from_argument(argument: u64) -> Self {
        let calls = match argument >> SEED_BITS {
            0 => CALLS,
            thousands => thousands * 1000,
        };
        Self {
            seed: argument & ((1 << SEED_BITS) - 1),
            calls,
            per_child: CALLS_PER_CHILD.min(calls.div_ceil(2 * CHILDREN as u64)),
        }
    }
}

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
    let plan = Plan::from_argument(argument);
    println!(
        "syscall-fuzz: seed {}, {} calls, {CHILDREN} children ({POLITE_CHILDREN} polite), at \
         most {} calls each",
        plan.seed, plan.calls, plan.per_child
    );
    let shared_page = SHARED.allocate().expect("allocate the shared page");
    SHARED.clear();
    let own_id =
        user::environment_info(Handle::SELF_ENVIRONMENT, EnvironmentAccount::Id).expect("own id");
    let baseline = warmed_up_baseline(shared_page);

    let witness = Witness::start().expect("start the witness");
    let echo = Echo::start(SHARED, shared_page, CHILD_QUOTA).expect("start the echo server");
    let start_ticks = facts::ticks();
    let mut fuzzers = Fuzzers::new(plan, shared_page, &echo);
    fuzzers.run(own_id, &witness);
    let tally = fuzzers.tally;
    println!(
        "syscall-fuzz: done: {} calls from {} children ({} ended early, by their own hand) in \
         {} ticks",
        tally.calls,
        tally.children,
        tally.ended_early,
        facts::ticks() - start_ticks
    );
    print_kinds(&tally.kinds);
    check::ok(format_args!(
        "{} random calls, every refusal a typed error; the kernel survived",
        tally.calls
    ));
    check_witnesses(witness, echo, [tally.calls, plan.seed]);
    check_nothing_left(own_id, &tally);
    baseline.expect_came_back("syscall-fuzz", "the fuzzing");
    check::all_passed("syscall-fuzz");
    0
}

/// The fuzzing children, a place for each, and what the parent counts of them.
struct Fuzzers<'a> {
    plan: Plan,
    shared_page: Handle,
    nic: Option<Handle>,
    echo: &'a Echo,
    running: [Option<Running>; CHILDREN],
    tally: Tally,
}

impl<'a> Fuzzers<'a> {
    fn new(plan: Plan, shared_page: Handle, echo: &'a Echo) -> Self {
        Self {
            plan,
            shared_page,
            nic: user::start_info().nic(),
            echo,
            running: Default::default(),
            tally: Tally {
                calls: 0,
                children: 0,
                ended_early: 0,
                reaped: 0,
                kinds: [(0, 0); fuzz::KINDS],
                destroyed: [0; DESTROYED_KEPT],
            },
        }
    }

    /// Keeps children running until they have begun the calls planned, checking the
    /// witnesses and the environment tree at every progress line.
    fn run(&mut self, own_id: u64, witness: &Witness) {
        let mut next_report = REPORT_EVERY;
        let mut witness_rounds = witness.rounds();
        let start_ticks = facts::ticks();
        while self.tend() > 0 {
            let progress = self.progress();
            if progress >= next_report {
                next_report += REPORT_EVERY;
                let rounds = witness.rounds();
                assert!(rounds > witness_rounds, "the witness made no progress");
                witness_rounds = rounds;
                check_tree(
                    own_id,
                    [witness.environment(), self.echo.environment()],
                    &self.running,
                );
                if let Err(error) = self.echo.round_trip([progress, self.plan.seed]) {
                    panic!("the echo server failed a round trip: {error:?}");
                }
                println!(
                    "syscall-fuzz: {progress} calls, {} children, {} ticks, {} frames free, {} \
                     bytes of kernel memory in use",
                    self.tally.children,
                    facts::ticks() - start_ticks,
                    user::frame_counts().0,
                    user::kernel_memory().0
                );
            }
            let _ = user::wait(Event::TIMER, 1);
        }
    }

    /// Calls begun so far, by children ended and running.
    fn progress(&self) -> u64 {
        let running: u64 = self
            .running
            .iter()
            .flatten()
            .map(|fuzzer| fuzzer.slot.begun())
            .sum();
        self.tally.calls + running
    }

    /// Reaps the children that ended and starts others in their places while calls are
    /// left to give; returns how many children are running.
    fn tend(&mut self) -> usize {
        let stall_ticks = STALL_SECONDS * facts::ticks_per_second();
        let mut outstanding: u64 = self
            .running
            .iter()
            .flatten()
            .map(|fuzzer| fuzzer.slot.budget())
            .sum();
        for index in 0..CHILDREN {
            if let Some(fuzzer) = &mut self.running[index] {
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
                    continue;
                }
                let ended = self.running[index].take().expect("a child");
                outstanding -= ended.slot.budget();
                reap(ended, &mut self.tally);
            }
            let budget = self
                .plan
                .calls
                .saturating_sub(self.tally.calls + outstanding)
                .min(self.plan.per_child);
            if budget > 0 {
                self.running[index] = Some(self.start(index, budget));
                outstanding += budget;
            }
        }
        self.running.iter().flatten().count()
    }

    /// Starts a child in place `index` with `budget` calls, from the next seed.
    fn start(&mut self, index: usize, budget: u64) -> Running {
        self.tally.children += 1;
        let seed = mix(self.plan.seed, self.tally.children);
        let mode = match index < POLITE_CHILDREN {
            true => Mode::Polite,
            false => Mode::SelfHarm,
        };
        let child = Child::create(CHILD_QUOTA).expect("create a child");
        SHARED
            .share_with(self.shared_page, child.environment())
            .expect("share the page");
        let endpoint = self
            .echo
            .grant_to(child.environment())
            .expect("grant the endpoint");
        let nic = self.nic.map(|nic| {
            let rights = user::capability_identify(nic)
                .expect("identify the NIC")
                .rights;
            user::capability_grant(nic, child.environment(), rights).expect("grant the NIC")
        });
        let slot = Slot::new(SHARED, index as u64);
        slot.prepare(seed, budget, mode, nic, Some(endpoint));
        let id = child
            .account(EnvironmentAccount::Id)
            .expect("the child's id");
        child
            .start(fuzz::child, SHARED.address() + index as u64)
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
}

/// The witnesses after the run: alive, unharmed, still progressing and answering; then
/// gone.
fn check_witnesses(witness: Witness, echo: Echo, arguments: [u64; 2]) {
    witness.check_unharmed("the fuzzing");
    witness.expect_progress(10, 1000, "the fuzzing");
    check::ok("the witness ran throughout, never saw a flag it did not set, still progresses");
    if let Err(outcome) = witness.probe() {
        panic!("the witness's probe failed after the fuzzing: {outcome:#x}");
    }
    check::ok("the witness can still make the largest console write and map batch");
    witness.stop();
    assert!(echo.is_alive(), "the echo server is gone");
    if let Err(error) = echo.round_trip(arguments) {
        panic!("the echo server failed a round trip after the fuzzing: {error:?}");
    }
    check::ok(format_args!(
        "the echo server answered every round trip of the parent's; it served {} calls ({} \
         wakeups without a call or replies refused)",
        echo.served(),
        echo.odd()
    ));
    echo.stop();
}

/// No environment is left below the parent, and the children it destroyed are gone.
fn check_nothing_left(own_id: u64, tally: &Tally) {
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
}

/// The baseline, taken after a witness, an echo server and a full set of children have
/// come and gone: what the parent keeps for good (its scratch page's tables, its
/// capability table grown to hold every child's frames) exists then already.
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
/// server), a live child, or one below a live child: nothing outlives the child that
/// made it.
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
fn mix(seed: u64, child: u64) -> u64 {
    let mut value = seed.wrapping_add(child.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}
