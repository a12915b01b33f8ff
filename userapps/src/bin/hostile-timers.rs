//! `Wait`, its timer and notifications under abuse: no timeout, however large, wraps
//! into an early wakeup; no flood of signals overflows anything; a notification whose
//! owner died is a stale handle; and the environments one creator piles up cost nobody
//! else CPU while they sleep.
//!
//! | attack | must get |
//! |---|---|
//! | `Wait` for no event, or for an event the ABI does not have | `InvalidArgument` |
//! | timeouts of 0 and 1 tick | the timer, after 0 and at least 1 tick |
//! | timeouts of `u64::MAX`, and one that makes now + timeout wrap past zero | no timer: a signal 20 ticks later ends the wait |
//! | 100,000 signals of a notification with all 64 bits, from a child | every one `Ok`; the waiter gets the bits once |
//! | a notification whose owner was destroyed, signalled | a typed error |
//! | 40 children asleep until one tick | all woken, none before it |
//! | sleepers destroyed mid-`Wait` (with a timer, and without) | gone; their tick passes harmlessly |
//! | 3,800 environments asleep, made by four fans (`chain.rs`) | the witness's share of the CPU as it was without them |
//! | 3,800 environments asleep until one tick (`chain::fan_of_alarms`), while this one holds every free slot and spins across it | it loses the CPU for at most a tick: the slot start that wakes them wakes a quarter of a tick's worth, the next one the next |
//! | the same, while this one, holding every free slot, sleeps until the tick after theirs | it wakes at most a tick late: a slot start wakes its owner first (it once woke 132 ticks late, its slots lent to the sleepers meanwhile) |
//!
//! The last is the one that found a hole: see `crowd`.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::mapping::MapFlags;
use exo_abi::syscall::{ANY_SLOT, EnvironmentAccount, EnvironmentState, Event};
use exo_abi::user::Wakeup;
use exo_abi::{Error, Handle, Rights, user};
use userapps::check::{self, expect_error, ok};
use userapps::hostile::chain::{self, ALARM_PERIOD};
use userapps::hostile::conservation::Baseline;
use userapps::hostile::shared::Words;
use userapps::hostile::witness::Witness;
use userapps::layout::MANAGED_START;
use userapps::spawn::Child;
use userapps::{facts, memory, println};

userapps::entry!(main);

/// The page parent and children share: a child's handle at `HANDLE`, its count of
/// failures at `FAILURES`, 1 at `DONE` when it is done; the sleepers' ticks from
/// `ASLEEP` and `WOKE` on.
const SHARED: Words = Words::at(MANAGED_START);
const HANDLE: u64 = 0;
const FAILURES: u64 = 1;
const DONE: u64 = 2;
const ASLEEP: u64 = 64;
const WOKE: u64 = 128;

const CHILD_QUOTA: u64 = 64;
/// How long anything may take, in ticks.
const PATIENCE_TICKS: u64 = 20_000;
/// When a signaller signals, in ticks after it starts.
const SIGNAL_AFTER: u64 = 20;
const FLOOD: u64 = 100_000;
/// Sleepers that all wake on one tick, and how far ahead that tick is.
const SLEEPERS: u64 = 40;
const SLEEP_TICKS: u64 = 500;
/// Fans of sleeping environments, and their quota (as `hostile-depth`'s: about 950
/// children each, until their kernel memory runs out).
const FANS: usize = 4;
const FAN_QUOTA: u64 = 30 + 1000 * chain::FAN_CHILD_QUOTA;
const FAN_CHILDREN: u64 = 900;
/// The window the witness's share is measured over, in ticks.
const WINDOW_TICKS: u64 = 400;
const TAG: u64 = 0x71e;
/// Ticks between two looks at a fan growing.
const CENSUS_TICKS: u64 = 50;
/// The most slots this environment takes to watch the alarms, and how long it watches
/// after theirs, in ticks.
const MAX_SLOTS: usize = 64;
const ALARM_WATCH_TICKS: u64 = 10;
/// How late the holder of every slot may wake, asleep until the tick after the alarms.
const ALARM_LATE_TICKS: u64 = 1;

fn main(_argument: u64) -> u64 {
    let shared_page = SHARED.allocate().expect("allocate the shared page");
    // The sleepers live together: this environment's capability table grows to hold
    // them, and keeps that size.
    with_sleepers(|_| ());
    let baseline = Baseline::after_a_witness_and_a_child(CHILD_QUOTA);
    let witness = Witness::start().expect("start the witness");
    witness.expect_progress(1, PATIENCE_TICKS, "it started");

    bad_events();
    short_timeouts();
    endless_timeouts(shared_page);
    flood(shared_page);
    dead_owner();
    one_tick(shared_page);
    destroyed_waiters();
    witness.check_unharmed("the waits and signals");
    crowd(&witness);
    alarms();

    witness.expect_progress(1, PATIENCE_TICKS, "the crowd");
    witness.check_unharmed("the crowd");
    witness.stop();
    baseline.expect_came_back("hostile-timers", "every wait and signal");
    check::all_passed("hostile-timers");
    0
}

fn bad_events() {
    expect_error(
        "a Wait for no event",
        user::wait(Event::empty(), 1),
        Error::InvalidArgument,
    );
    expect_error(
        "a Wait for an event the ABI does not have",
        user::wait(Event::from_bits_retain(Event::TIMER.bits() | 1 << 63), 1),
        Error::InvalidArgument,
    );
}

fn short_timeouts() {
    for timeout in [0, 1] {
        let start = facts::ticks();
        let woke = user::wait(Event::TIMER, timeout);
        let slept = facts::ticks() - start;
        assert!(
            matches!(woke, Ok(Wakeup::Timer)),
            "timeout {timeout}: {woke:?}"
        );
        assert!(
            slept >= timeout,
            "timeout {timeout}: woke after {slept} ticks"
        );
    }
    ok("Wait with timeouts of 0 and 1 tick ends on the timer, not before");
}

/// Timeouts that never come, as `u64::MAX` and as a value whose sum with the tick count
/// wraps past zero: only the signal a child sends later may end the wait.
fn endless_timeouts(shared_page: Handle) {
    let notification = user::notification_create(1).expect("create a notification");
    for wrap in [false, true] {
        let child = Child::create(CHILD_QUOTA).expect("create a signaller");
        SHARED.clear();
        share(shared_page, &child);
        let theirs = user::capability_grant(notification, child.environment(), Rights::SIGNAL)
            .expect("grant the notification");
        SHARED.write(HANDLE, theirs.to_raw());
        child.start(signaller, 0).expect("start the signaller");
        // With `wrap`, now + timeout is 2^64 + 1: a kernel that wrapped would time out
        // at tick 1, long past.
        let timeout = match wrap {
            false => u64::MAX,
            true => u64::MAX - facts::ticks() + 2,
        };
        let woke = user::wait(Event::NOTIFY | Event::TIMER, timeout);
        assert_eq!(woke, Ok(Wakeup::Notify(1)), "timeout {timeout:#x}");
        child.wait();
    }
    memory::drop_capability(notification).expect("drop the notification");
    ok("timeouts of u64::MAX and past the wrap never end a Wait: a later signal does");
}

/// A child: sleeps `SIGNAL_AFTER` ticks, then signals the notification it was given.
fn signaller(_argument: u64) -> u64 {
    let _ = user::wait(Event::TIMER, SIGNAL_AFTER);
    user::signal(Handle::from_raw(SHARED.read(HANDLE))).expect("signal");
    0
}

/// A child signals a notification with every bit `FLOOD` times.
fn flood(shared_page: Handle) {
    let notification = user::notification_create(u64::MAX).expect("create a notification");
    let child = Child::create(CHILD_QUOTA).expect("create the flooder");
    SHARED.clear();
    share(shared_page, &child);
    let theirs = user::capability_grant(notification, child.environment(), Rights::SIGNAL)
        .expect("grant the notification");
    SHARED.write(HANDLE, theirs.to_raw());
    child.start(flooder, 0).expect("start the flooder");
    child.wait();
    assert_eq!(SHARED.read(DONE), 1, "the flooder died");
    assert_eq!(SHARED.read(FAILURES), 0, "signals refused");
    let woke = user::wait(Event::NOTIFY | Event::TIMER, 1);
    assert_eq!(woke, Ok(Wakeup::Notify(u64::MAX)));
    let woke = user::wait(Event::NOTIFY | Event::TIMER, 1);
    assert_eq!(woke, Ok(Wakeup::Timer), "bits left pending");
    memory::drop_capability(notification).expect("drop the notification");
    ok(format_args!(
        "{FLOOD} signals of all 64 bits: each Ok, the bits heard once"
    ));
}

fn flooder(_argument: u64) -> u64 {
    let notification = Handle::from_raw(SHARED.read(HANDLE));
    for _ in 0..FLOOD {
        if user::signal(notification).is_err() {
            SHARED.add(FAILURES, 1);
        }
    }
    SHARED.write(DONE, 1);
    0
}

/// A child passes its own notification through a call; once it is destroyed, the copy
/// signals nobody and says so.
fn dead_owner() {
    let endpoint = user::endpoint_create(TAG).expect("create the endpoint");
    let child = Child::create(CHILD_QUOTA).expect("create the owner");
    let theirs = user::capability_grant(endpoint, child.environment(), Rights::CALL)
        .expect("grant the endpoint");
    child
        .start(notification_owner, theirs.to_raw())
        .expect("start the owner");
    let call = match user::wait(Event::CALL | Event::TIMER, PATIENCE_TICKS) {
        Ok(Wakeup::Call(call)) => call,
        other => panic!("no call came: {other:?}"),
    };
    let passed = call.capability.expect("a notification passed");
    user::reply([0, 0], None).expect("reply");
    user::signal(passed).expect("signal the living owner's notification");
    child.destroy();
    let signalled = user::signal(passed);
    assert!(
        matches!(signalled, Err(Error::StaleHandle | Error::InvalidHandle)),
        "a signal to a dead owner: {signalled:?}"
    );
    memory::drop_capability(endpoint).expect("drop the endpoint");
    ok(format_args!(
        "a notification whose owner was destroyed is refused ({signalled:?})"
    ));
}

fn notification_owner(endpoint: u64) -> u64 {
    let notification = user::notification_create(1).expect("create a notification");
    let _ = user::call_endpoint(Handle::from_raw(endpoint), [0, 0], Some(notification));
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}

/// `SLEEPERS` children asleep until the same tick.
fn one_tick(shared_page: Handle) {
    with_sleepers(|sleepers| sleep_until_one_tick(shared_page, sleepers));
    ok(format_args!(
        "{SLEEPERS} environments asleep until one tick all woke, none before it"
    ));
}

fn sleep_until_one_tick(shared_page: Handle, sleepers: &[Option<Child>]) {
    let target = facts::ticks() + SLEEP_TICKS;
    SHARED.clear();
    for child in sleepers.iter().flatten() {
        share(shared_page, child);
    }
    for (index, child) in sleepers.iter().flatten().enumerate() {
        child
            .start(sleeper, target | (index as u64) << 48)
            .expect("start a sleeper");
    }
    let deadline = facts::ticks() + PATIENCE_TICKS;
    while (0..SLEEPERS).any(|index| SHARED.read(WOKE + index) == 0) {
        assert!(facts::ticks() < deadline, "the sleepers never all woke");
        let _ = user::wait(Event::TIMER, 1);
    }
    for index in 0..SLEEPERS {
        let (asleep, woke) = (SHARED.read(ASLEEP + index), SHARED.read(WOKE + index));
        assert!(asleep < target, "sleeper {index} fell asleep at {asleep}");
        assert!(
            woke >= target,
            "sleeper {index} woke at {woke}, before {target}"
        );
    }
    ok(format_args!(
        "{SLEEPERS} environments asleep until one tick all woke, none before it"
    ));
}

/// Runs `body` with `SLEEPERS` children, not started, and destroys them.
fn with_sleepers(body: impl FnOnce(&[Option<Child>])) {
    let mut sleepers = [const { None }; SLEEPERS as usize];
    for slot in &mut sleepers {
        *slot = Some(Child::create(CHILD_QUOTA).expect("create a sleeper"));
    }
    body(&sleepers);
}

fn sleeper(argument: u64) -> u64 {
    let (target, index) = (argument & ((1 << 48) - 1), argument >> 48);
    let now = facts::ticks();
    SHARED.write(ASLEEP + index, now);
    let _ = user::wait(Event::TIMER, target.saturating_sub(now));
    SHARED.write(WOKE + index, facts::ticks().max(1));
    0
}

/// Sleepers destroyed while they wait, one with a timer and one without.
fn destroyed_waiters() {
    for with_timer in [true, false] {
        let child = Child::create(CHILD_QUOTA).expect("create a sleeper");
        child
            .start(endless_sleeper, u64::from(with_timer))
            .expect("start it");
        let deadline = facts::ticks() + PATIENCE_TICKS;
        while child.account(EnvironmentAccount::State) != Ok(EnvironmentState::Waiting as u64) {
            assert!(facts::ticks() < deadline, "the sleeper never slept");
            let _ = user::wait(Event::TIMER, 1);
        }
        let environment = child.environment();
        child.destroy();
        assert!(user::environment_info(environment, EnvironmentAccount::Id).is_err());
        // Past its timer: nothing is left to wake.
        let _ = user::wait(Event::TIMER, 2 * SIGNAL_AFTER);
    }
    ok("environments destroyed in Wait, with a timer and without, are gone for good");
}

fn endless_sleeper(with_timer: u64) -> u64 {
    loop {
        let _ = match with_timer {
            0 => user::wait(Event::NOTIFY, 0),
            _ => user::wait(Event::TIMER, SIGNAL_AFTER),
        };
    }
}

/// The witness's rounds over `WINDOW_TICKS` ticks while this environment sleeps a tick at
/// a time, first alone, then beside `FANS` fans of environments that sleep for good.
///
/// A sleeping environment costs its creator memory, and should cost nobody time. The
/// kernel woke expired timers by walking every environment at each slot start once any
/// timer was due, and found the pool's next member by walking from the last one chosen
/// past every environment that cannot run: with one environment sleeping a tick at a
/// time, each slot started with two walks over all the sleepers. Beside 1,908 of them the
/// witness ran 155,400 rounds where it ran 314,492 alone; beside 3,816 the fourth fan
/// never finished starting. Now (kernel-core's `Timers`, the kernel's `pool.rs`) the
/// witness keeps 99% of its rounds beside 3,816.
fn crowd(witness: &Witness) {
    let alone = witness_rounds(witness);
    let endpoint = user::endpoint_create(TAG).expect("create the fans' endpoint");
    let (fans, asleep) = asleep_fans(endpoint, chain::fan(false));
    let crowded = witness_rounds(witness);
    println!(
        "hostile-timers: the witness ran {alone} rounds in {WINDOW_TICKS} ticks alone, \
         {crowded} beside {asleep} sleeping environments"
    );
    for fan in fans {
        user::environment_destroy(fan).expect("destroy a fan");
    }
    memory::drop_capability(endpoint).expect("drop the endpoint");
    assert!(
        10 * crowded >= 9 * alone,
        "{asleep} sleepers took the witness from {alone} rounds to {crowded}"
    );
    ok(format_args!(
        "{asleep} environments asleep beside a ticking one left the witness at least 9/10 of \
         its rounds"
    ));
}

fn witness_rounds(witness: &Witness) -> u64 {
    let start = (facts::ticks(), witness.rounds());
    while facts::ticks() < start.0 + WINDOW_TICKS {
        let _ = user::wait(Event::TIMER, 1);
    }
    witness.rounds() - start.1
}

/// [`FANS`] fans of alarms (`chain::fan_of_alarms`): about 3,800 environments asleep until
/// the same tick. This environment then takes every free slot, so that from then on only
/// it runs and what it loses is the kernel's, and spins across that tick. Their timers
/// once all expired in one go at the slot start of that tick, interrupts off: 38 ticks
/// lost; now a slot start wakes a quarter of a tick's worth, the next slot start more.
fn alarms() {
    let endpoint = user::endpoint_create(TAG).expect("create the fans' endpoint");
    let (fans, asleep) = asleep_fans(endpoint, chain::fan_of_alarms());
    let mut slots = [Handle::SELF_ENVIRONMENT; MAX_SLOTS];
    let mut held = 0;
    while held < MAX_SLOTS
        && let Ok((slot, _)) = user::slot_allocate(Handle::SELF_ENVIRONMENT, ANY_SLOT)
    {
        slots[held] = slot;
        held += 1;
    }
    assert!(held > 0, "no slot to hold");
    // Every one asleep now sleeps until the next multiple of the period, and the one
    // after: the first far enough ahead to spin across.
    let now = facts::ticks();
    let mut alarm = (now | (ALARM_PERIOD - 1)) + 1;
    if now + 2 >= alarm {
        alarm += ALARM_PERIOD;
    }
    let _ = user::wait(Event::TIMER, alarm - 2 - now);
    let lost = spin_until(alarm + ALARM_WATCH_TICKS);
    // Their next alarm, and this one asleep until the tick after it: it must wake at its
    // own slot's start, however many of their timers expired first.
    let deadline = alarm + ALARM_PERIOD + 1;
    let _ = user::wait(Event::TIMER, deadline - facts::ticks());
    let late = facts::ticks() - deadline;
    for &slot in &slots[..held] {
        memory::drop_capability(slot).expect("drop a slot's capability");
    }
    for fan in fans {
        user::environment_destroy(fan).expect("destroy a fan");
    }
    memory::drop_capability(endpoint).expect("drop the endpoint");
    let tick = facts::tsc_hz() / facts::ticks_per_second();
    println!(
        "hostile-timers: {asleep} environments asleep until tick {alarm}: holding {held} \
         slots, this one lost the CPU for at most {lost} cycles ({} ticks)",
        lost / tick
    );
    assert!(
        lost <= tick,
        "{asleep} timers expiring on one tick kept the CPU {lost} cycles"
    );
    ok(format_args!(
        "{asleep} environments asleep until one tick kept the CPU from the holder of every \
         slot for at most a tick"
    ));
    println!(
        "hostile-timers: the holder of every slot, asleep until the tick after theirs, woke \
         {late} ticks late"
    );
    assert!(
        late <= ALARM_LATE_TICKS,
        "{asleep} timers expiring a tick earlier woke the holder of every slot {late} ticks late"
    );
    ok(format_args!(
        "{asleep} timers expiring a tick before its own kept the holder of every slot asleep \
         at most {ALARM_LATE_TICKS} ticks past its deadline"
    ));
}

/// Spins until `tick`; returns the most cycles between two readings of the time-stamp
/// counter.
fn spin_until(tick: u64) -> u64 {
    let (mut lost, mut last) = (0, user::tsc());
    while facts::ticks() < tick {
        let now = user::tsc();
        lost = lost.max(now - last);
        last = now;
    }
    lost
}

/// [`FANS`] fans started at `entry`, each asleep with all its children; returns them
/// and how many environments they are.
fn asleep_fans(endpoint: Handle, entry: u64) -> ([Handle; FANS], u64) {
    let code_frame = chain::code_frame();
    let mut fans = [Handle::SELF_ENVIRONMENT; FANS];
    let mut asleep = 0;
    for fan in &mut fans {
        *fan = start_fan(code_frame, endpoint, entry);
        asleep += wait_until_asleep(*fan);
        println!("hostile-timers: {asleep} asleep at tick {}", facts::ticks());
    }
    (fans, asleep)
}

/// A fan started at `entry`: of sleepers (`chain::fan`), which wait for calls that never
/// come, or of alarms (`chain::fan_of_alarms`). It makes children until its kernel
/// memory runs out.
fn start_fan(code_frame: Handle, endpoint: Handle, entry: u64) -> Handle {
    let fan = user::environment_create(FAN_QUOTA).expect("create a fan");
    user::map(code_frame, fan, chain::code_page(), MapFlags::EXECUTE).expect("map its code");
    let code = user::capability_grant(code_frame, fan, chain::FAN_CODE_RIGHTS).expect("grant");
    let called = user::capability_grant(endpoint, fan, Rights::CALL | Rights::GRANT)
        .expect("grant the endpoint");
    let argument = chain::fan_argument(code, called).expect("small handles");
    user::environment_start(fan, entry, 0, argument).expect("start the fan");
    fan
}

/// Waits until `fan` and every child of it wait; returns how many they are.
fn wait_until_asleep(fan: Handle) -> u64 {
    let deadline = facts::ticks() + PATIENCE_TICKS;
    loop {
        let waiting = EnvironmentState::Waiting as u64;
        let parked = user::environment_info(fan, EnvironmentAccount::State) == Ok(waiting);
        let mut last = user::environment_info(fan, EnvironmentAccount::Id).expect("its id");
        let (mut members, mut asleep) = (1, u64::from(parked));
        while let Some(id) = user::environment_next(fan, last).expect("list the fan") {
            members += 1;
            let state = user::environment_inspect(fan, id, EnvironmentAccount::State);
            asleep += u64::from(state == Ok(waiting));
            last = id;
        }
        if parked && asleep == members && members > FAN_CHILDREN {
            return members;
        }
        assert!(
            facts::ticks() < deadline,
            "a fan of {members} has {asleep} asleep"
        );
        // Each look lists the whole fan: not at every tick.
        let _ = user::wait(Event::TIMER, CENSUS_TICKS);
    }
}

/// Maps the shared page (our frame `shared_page`) into `child`.
fn share(shared_page: Handle, child: &Child) {
    SHARED
        .share_with(shared_page, child.environment())
        .expect("share the page");
}

const _: () = assert!(SLEEPERS <= WOKE - ASLEEP && WOKE + SLEEPERS <= Words::COUNT);
