//! Revocation deadlines a user sets cannot make the kernel's work grow faster than what
//! it built: requests that expire on the same tick are closed in one pass, not by a scan
//! of every environment for each.
//!
//! `RequestFrames` lets a creator ask each of its children for frames by a deadline, and
//! the kernel closes expired requests, interrupts off, on the first trap at or after the
//! deadline. Here the parent creates [`CHILDREN`] empty children and asks half of them,
//! then all of them, for a frame, choosing each request's length so that all expire on
//! one tick; none has an upcall entry or a frame to give, so each is closed at the
//! deadline and its frames taken by force (none). The parent spins on the time-stamp
//! counter across that tick and records the longest stretch it lost the CPU, on the
//! instruction clock the scenarios run on (`-icount`): a count of instructions, not wall
//! time. A kernel that searched every environment from the first for each expired
//! request took 132 ticks for 900 requests; in one pass it took 56, twice what half as
//! many took (most of it one console line per request); now that the kernel closes them
//! a quarter of a tick at a time, one share a tick, neither loses the parent more than
//! two ticks. Then it asks every child again, each by a tick of its own, one deadline a
//! tick for [`CHILDREN`] ticks, and sleeps across them while the witness, alone in the
//! pool, must run at least [`LEAST_RUN_PERCENT`]% of the time: a kernel that found the
//! expired requests by scanning every environment, twice at each tick that had one, left
//! it 68% (610 of 902 ticks; the scans took the rest, interrupts off); with the deadlines
//! kept in order a tick looks at its own request alone. A witness runs throughout; the
//! requests' edges (a deadline of 0 and of `u64::MAX`, none of a frame) are refused, and
//! once every child is destroyed every frame and byte of kernel memory comes back.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::syscall::{EnvironmentAccount, Event};
use exo_abi::{Error, Handle, user};
use userapps::hostile::conservation::Baseline;
use userapps::hostile::witness::{Lap, Witness};
use userapps::{check, facts, println};

userapps::entry!(main);

/// How many children are asked at once (about as many as the parent's kernel memory
/// allows).
const CHILDREN: usize = 900;
/// Each child's frame quota: it never runs.
const CHILD_QUOTA: u64 = 8;
/// A spawned child's quota, for the baseline: its image and stack.
const SPAWNED_QUOTA: u64 = 64;
/// Ticks from the first request to the common deadline: time enough to make them all.
const LEAD_TICKS: u64 = 200;
/// How long the parent watches after the deadline, in ticks.
const WATCH_TICKS: u64 = 20;
/// How long the witness may take to show progress, in ticks.
const PATIENCE_TICKS: u64 = 20_000;
/// The least share of the time the witness, alone in the pool, must run while requests
/// expire one a tick.
const LEAST_RUN_PERCENT: u64 = 80;

fn main(_argument: u64) -> u64 {
    // The children once first: the capability table they grow is the parent's for good.
    let mut children = [Handle::from_raw(0); CHILDREN];
    create(&mut children);
    for child in children {
        user::environment_destroy(child).expect("destroy a child");
    }
    let baseline = Baseline::after_a_witness_and_a_child(SPAWNED_QUOTA);
    let witness = Witness::start().expect("start the witness");
    witness.expect_progress(1, PATIENCE_TICKS, "it started");

    create(&mut children);
    edges(children[0]);
    let half = expire_together(&children[..CHILDREN / 2]);
    let all = expire_together(&children);
    let tick = facts::tsc_hz() / facts::ticks_per_second();
    println!(
        "hostile-deadlines: requests expiring on one tick: {} held the CPU for at most {} \
         ticks, {CHILDREN} for {} ticks",
        CHILDREN / 2,
        half / tick,
        all / tick
    );
    assert!(
        half <= 2 * tick && all <= 2 * tick,
        "closing {CHILDREN} requests together took {all} cycles, {} took {half}",
        CHILDREN / 2
    );
    check::ok(format_args!(
        "{CHILDREN} revocation requests expiring on one tick held the CPU for at most two ticks, \
         as half as many did"
    ));
    let lap = expire_one_a_tick(&children, &witness);
    println!(
        "hostile-deadlines: requests expiring one a tick for {CHILDREN} ticks: the witness ran \
         {} of {} ticks",
        lap.ran / tick,
        lap.length / tick
    );
    assert!(
        lap.ran * 100 >= LEAST_RUN_PERCENT * lap.length,
        "the witness ran {} of {} cycles while requests expired one a tick",
        lap.ran,
        lap.length
    );
    check::ok(format_args!(
        "{CHILDREN} revocation requests expiring one a tick left the witness at least \
         {LEAST_RUN_PERCENT}% of the CPU"
    ));
    for child in children {
        let alive = user::environment_info(child, EnvironmentAccount::Id);
        assert!(
            alive.is_ok(),
            "a child asked for frames it did not have died"
        );
        user::environment_destroy(child).expect("destroy a child");
    }
    witness.expect_progress(1, PATIENCE_TICKS, "the deadlines");
    witness.check_unharmed("the deadlines");
    witness.stop();
    baseline.expect_came_back("hostile-deadlines", "nine hundred deadlines");
    check::all_passed("hostile-deadlines");
    0
}

/// Fills `children` with new, empty environments.
fn create(children: &mut [Handle]) {
    for child in children.iter_mut() {
        *child = user::environment_create(CHILD_QUOTA).expect("create a child");
    }
}

/// A request with no frames, no time or more time than the kernel allows is refused.
fn edges(child: Handle) {
    for (frames, deadline) in [(1, 0), (1, u64::MAX), (0, 10), (u64::MAX, 0)] {
        assert_eq!(
            user::request_frames(child, frames, deadline),
            Err(Error::InvalidArgument),
            "a request for {frames} frames within {deadline} ticks"
        );
    }
    check::ok("requests with a deadline of 0 or u64::MAX ticks, or for no frames, are refused");
}

/// Asks every child for a frame by one common tick, then spins across it; returns the
/// most cycles between two readings of the time-stamp counter.
fn expire_together(children: &[Handle]) -> u64 {
    let deadline = facts::ticks() + LEAD_TICKS;
    for &child in children {
        let now = facts::ticks();
        assert!(
            now + 1 < deadline,
            "the requests took longer than {LEAD_TICKS} ticks"
        );
        user::request_frames(child, 1, deadline - now).expect("ask a child for a frame");
    }
    // Closer to the deadline, sleep; from a tick before it, spin and watch.
    let _ = user::wait(
        Event::TIMER,
        (deadline - 1).saturating_sub(facts::ticks()).max(1),
    );
    watch(deadline)
}

/// Asks every child for a frame, each by a tick of its own, one deadline a tick, then
/// sleeps across them; returns the witness's lap over that stretch.
fn expire_one_a_tick(children: &[Handle], witness: &Witness) -> Lap {
    let first = facts::ticks() + LEAD_TICKS;
    for (index, &child) in children.iter().enumerate() {
        let now = facts::ticks();
        assert!(
            now + 1 < first,
            "the requests took longer than {LEAD_TICKS} ticks"
        );
        let deadline = first + index as u64;
        user::request_frames(child, 1, deadline - now).expect("ask a child for a frame");
    }
    let _ = user::wait(Event::TIMER, first.saturating_sub(facts::ticks()).max(1));
    witness.lap();
    let _ = user::wait(Event::TIMER, children.len() as u64);
    witness.lap()
}

/// Spins from now until [`WATCH_TICKS`] past `tick`; returns the most cycles between two
/// readings of the time-stamp counter.
fn watch(tick: u64) -> u64 {
    let deadline = tick;
    let mut lost = 0;
    let mut last = user::tsc();
    while facts::ticks() < deadline + WATCH_TICKS {
        let now = user::tsc();
        lost = lost.max(now - last);
        last = now;
    }
    lost
}
