//! Directed yield: an environment gives the rest of its slot to another one it names.
//!
//! Parent and child play ping-pong through a page they share: a turn word says whose turn it
//! is; each side, on its turn, counts a stroke, passes the turn and `yield_to`s the other.
//! Neither holds a slot, so without directed yield each would mostly find it is not its
//! turn and spin until the next tick; with it, nearly every `yield_to` lands on the other
//! side just as it is its turn. Then bad input: `yield_to` a destroyed environment, a frame
//! capability, an environment capability without `CALL`, and an environment that is
//! blocked in `wait`.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::counters::Counter;
use exo_abi::mapping::MapFlags;
use exo_abi::syscall::Event;
use exo_abi::user;
use exo_abi::{Error, Handle, Rights};
use userapps::check::{self, expect_error, ok};
use userapps::layout::MANAGED_START;
use userapps::memory::{self, read_u64, write_u64};
use userapps::spawn::{Child, yield_until};
use userapps::{facts, println};

userapps::entry!(main);

/// The shared page: whose turn it is, each side's strokes, and each side's `yield_to`s that
/// found it was still not its turn.
const SHARED_PAGE: u64 = MANAGED_START;
const TURN: u64 = SHARED_PAGE;
const PARENT_STROKES: u64 = SHARED_PAGE + 8;
const CHILD_STROKES: u64 = SHARED_PAGE + 16;
const CHILD_IN_VAIN: u64 = SHARED_PAGE + 24;
/// Set by a child just before it blocks in `wait`.
const WAITING: u64 = SHARED_PAGE + 32;

const PARENT_TURN: u64 = 1;
const CHILD_TURN: u64 = 2;
const ROUND_TRIPS: u64 = 1000;
const CHILD_QUOTA: u64 = 48;
const PATIENCE: u64 = 1_000_000;

fn main(_argument: u64) -> u64 {
    let (shared, _) = user::frame_allocate(0).expect("allocate the shared page");
    user::map(
        shared,
        Handle::SELF_ENVIRONMENT,
        SHARED_PAGE,
        MapFlags::WRITE,
    )
    .expect("map the shared page");
    ping_pong(shared);
    bad_targets_are_refused(shared);
    check::all_passed("yield-test");
    0
}

/// A child sharing the page at `SHARED_PAGE`, not yet started.
fn create_child(shared: Handle) -> Child {
    let child = Child::create(CHILD_QUOTA).expect("create a child");
    user::map(shared, child.environment(), SHARED_PAGE, MapFlags::WRITE).expect("share the page");
    child
}

/// One side of the game, [`ROUND_TRIPS`] times: waits for `mine`, counts a stroke in
/// `strokes`, passes the turn to `theirs` and yields to `other`. Returns how many of its
/// yields found, on return, that it was still not its turn.
fn play(mine: u64, theirs: u64, strokes: u64, other: Handle) -> u64 {
    let mut in_vain = 0;
    for _ in 0..ROUND_TRIPS {
        while read_u64(TURN) != mine {
            in_vain += 1;
            user::yield_to(other).expect("yield to the other player");
        }
        write_u64(strokes, read_u64(strokes) + 1);
        write_u64(TURN, theirs);
        user::yield_to(other).expect("yield to the other player");
    }
    in_vain
}

/// The child's side; `parent` is its handle for the parent's environment (with `CALL`).
fn child_player(parent: u64) -> u64 {
    let in_vain = play(
        CHILD_TURN,
        PARENT_TURN,
        CHILD_STROKES,
        Handle::from_raw(parent),
    );
    write_u64(CHILD_IN_VAIN, in_vain);
    0
}

fn ping_pong(shared: Handle) {
    write_u64(TURN, PARENT_TURN);
    let child = create_child(shared);
    // The child may donate its slot to us: it needs our environment with CALL, no more.
    let parent =
        user::capability_grant(Handle::SELF_ENVIRONMENT, child.environment(), Rights::CALL)
            .expect("grant the child a capability for the parent");
    child
        .start(child_player, parent.to_raw())
        .expect("start the child");

    let (tick_before, switches_before, yields_before) = (
        facts::ticks(),
        facts::counter(Counter::EnvironmentSwitches),
        facts::counter(Counter::DirectedYields),
    );
    let parent_in_vain = play(PARENT_TURN, CHILD_TURN, PARENT_STROKES, child.environment());
    // The child strokes last; once it has, it exits.
    yield_until("the child has finished", || {
        read_u64(CHILD_STROKES) >= ROUND_TRIPS && !child.is_alive()
    });
    let ticks = facts::ticks() - tick_before;
    let switches = facts::counter(Counter::EnvironmentSwitches) - switches_before;
    let yields = facts::counter(Counter::DirectedYields) - yields_before;
    let child_in_vain = read_u64(CHILD_IN_VAIN);
    println!(
        "yield-test: {ROUND_TRIPS} round trips in {ticks} ticks, {yields} directed yields, \
         {switches} environment switches; yields that found the turn not passed yet: parent \
         {parent_in_vain}, child {child_in_vain}"
    );
    assert!(
        yields >= 2 * ROUND_TRIPS,
        "the kernel counted {yields} directed yields"
    );
    assert_eq!(read_u64(PARENT_STROKES), ROUND_TRIPS);
    assert_eq!(read_u64(CHILD_STROKES), ROUND_TRIPS);
    // Without directed yield every turn would wait for a tick, spinning in vain meanwhile.
    assert!(
        parent_in_vain + child_in_vain < ROUND_TRIPS,
        "directed yields should mostly find the turn passed"
    );
    ok("1000 round trips of directed-yield ping-pong");
    drop(child);
}

/// Blocks for ever, waiting for calls that never come.
fn waiter(_argument: u64) -> u64 {
    write_u64(WAITING, 1);
    let wakeup = user::wait(Event::CALL, 0);
    panic!("the waiter woke up: {wakeup:?}");
}

fn bad_targets_are_refused(shared: Handle) {
    let child = create_child(shared);
    child.start(waiter, 0).expect("start the waiter");
    let environment = child.environment();
    // The waiter is runnable until it reaches `wait`: until then, a donation is taken.
    let mut patience = PATIENCE;
    let refused = loop {
        match user::yield_to(environment) {
            Ok(()) => {
                patience -= 1;
                assert!(patience > 0, "the waiter never blocked");
            }
            other => break other,
        }
    };
    assert_eq!(read_u64(WAITING), 1, "the waiter ran before it blocked");
    expect_error(
        "yield_to an environment blocked in wait",
        refused,
        Error::NotReceiving,
    );

    let weak = user::capability_derive(environment, Rights::CONTROL).expect("derive");
    expect_error(
        "yield_to through an environment capability without CALL",
        user::yield_to(weak),
        Error::MissingRights,
    );
    let (frame, _) = user::frame_allocate(0).expect("allocate a frame");
    expect_error(
        "yield_to a frame capability",
        user::yield_to(frame),
        Error::WrongKind,
    );
    memory::drop_capability(frame).expect("drop the frame");

    child.destroy();
    expect_error(
        "yield_to a destroyed environment",
        user::yield_to(environment),
        Error::StaleHandle,
    );
}
