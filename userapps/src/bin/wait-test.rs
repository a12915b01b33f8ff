//! `wait`: sleep until one of the events asked for, and only then.
//!
//! The parent sleeps on the timer and reads on its facts page that the ticks went by. A
//! child waiting only for calls sleeps through 100 ticks of the parent's and wakes when the
//! parent calls it; then it waits for a call or a timeout far away, and the call wakes it.
//! A child waiting only on the timer is not woken by a call (the call is refused) and wakes
//! when its time is up. Asking for no event, or an unknown one, is refused.
//!
//! Each child makes an endpoint and grants it to the parent through a capability for the
//! parent's environment with `GIVE` only, which the parent granted it (as in `call-test`).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::mapping::MapFlags;
use exo_abi::syscall::Event;
use exo_abi::user::{self, Wakeup};
use exo_abi::{Error, Handle, Rights};
use userapps::check::{self, expect_error, ok};
use userapps::facts;
use userapps::layout::MANAGED_START;
use userapps::memory::{read_u64, write_u64};
use userapps::spawn::{Child, yield_until};

userapps::entry!(main);

/// The shared page: the child's endpoint (its handle in the parent's table), whether it is
/// ready, how many times it woke for a call, and for the timer child the ticks it slept.
const SHARED_PAGE: u64 = MANAGED_START;
const ENDPOINT: u64 = SHARED_PAGE;
const READY: u64 = SHARED_PAGE + 8;
const CALLS_SEEN: u64 = SHARED_PAGE + 16;
const SLEPT: u64 = SHARED_PAGE + 24;

const TAG: u64 = 0x3a17;
const PARENT_SLEEP: u64 = 50;
const LONG_SLEEP: u64 = 100;
const CHILD_SLEEP: u64 = 200;
/// A timeout that never comes during the test.
const FOREVER: u64 = 1_000_000_000;
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
    the_timer_wakes_after_its_ticks();
    a_call_wakes_a_call_waiter(shared);
    a_call_does_not_wake_a_timer_waiter(shared);
    bad_events_are_refused();
    check::all_passed("wait-test");
    0
}

/// Sleeps on the timer; returns the ticks that went by.
fn sleep(events: Event, ticks: u64) -> u64 {
    let before = facts::ticks();
    match user::wait(events, ticks) {
        Ok(Wakeup::Timer) => facts::ticks() - before,
        other => panic!("wait({events:?}, {ticks}): expected Ok(Timer), got {other:?}"),
    }
}

fn the_timer_wakes_after_its_ticks() {
    let slept = sleep(Event::TIMER, PARENT_SLEEP);
    assert!(
        slept >= PARENT_SLEEP,
        "wait(TIMER, {PARENT_SLEEP}) woke after {slept} ticks"
    );
    ok(format_args!(
        "wait(TIMER, {PARENT_SLEEP}) woke after {slept} ticks"
    ));
    // With no endpoint to call, TIMER | CALL can only end on the timer.
    let slept = sleep(Event::TIMER | Event::CALL, PARENT_SLEEP);
    assert!(slept >= PARENT_SLEEP);
    ok(format_args!(
        "wait(TIMER | CALL, {PARENT_SLEEP}) with no caller woke on the timer"
    ));
}

/// Makes an endpoint, grants it to the parent (`parent`: our handle for it, with `GIVE`)
/// and says so in the shared page.
fn offer_endpoint(parent: u64) {
    let endpoint = user::endpoint_create(TAG).expect("create an endpoint");
    let theirs = user::capability_grant(endpoint, Handle::from_raw(parent), Rights::CALL)
        .expect("grant the endpoint to the parent");
    write_u64(ENDPOINT, theirs.to_raw());
    write_u64(READY, 1);
}

/// Waits for a call (the first time for nothing else), counts it and answers `argument + 1`.
fn call_waiter(parent: u64) -> u64 {
    offer_endpoint(parent);
    let mut events = Event::CALL;
    loop {
        match user::wait(events, FOREVER) {
            Ok(Wakeup::Call(call)) => {
                assert_eq!(call.entry, TAG, "the endpoint's entry tag");
                write_u64(CALLS_SEEN, read_u64(CALLS_SEEN) + 1);
                user::reply([call.arguments[0] + 1, 0], None).expect("reply");
            }
            other => panic!("call waiter: wait({events:?}) returned {other:?}"),
        }
        events = Event::CALL | Event::TIMER;
    }
}

/// Offers an endpoint, then waits on the timer only and reports how long it slept.
fn timer_waiter(parent: u64) -> u64 {
    offer_endpoint(parent);
    write_u64(SLEPT, sleep(Event::TIMER, CHILD_SLEEP));
    0
}

/// A started child that offered an endpoint; returns it and the endpoint.
fn start_child(shared: Handle, function: fn(u64) -> u64) -> (Child, Handle) {
    for word in [ENDPOINT, READY, CALLS_SEEN, SLEPT] {
        write_u64(word, 0);
    }
    let child = Child::create(CHILD_QUOTA).expect("create a child");
    user::map(shared, child.environment(), SHARED_PAGE, MapFlags::WRITE).expect("share the page");
    let parent =
        user::capability_grant(Handle::SELF_ENVIRONMENT, child.environment(), Rights::GIVE)
            .expect("grant the child a capability for the parent");
    child.start(function, parent.to_raw()).expect("start it");
    yield_until("the child offers its endpoint", || read_u64(READY) == 1);
    let endpoint = Handle::from_raw(read_u64(ENDPOINT));
    (child, endpoint)
}

fn a_call_wakes_a_call_waiter(shared: Handle) {
    let (child, endpoint) = start_child(shared, call_waiter);
    child.run_until_blocked();
    let slept = sleep(Event::TIMER, LONG_SLEEP);
    assert_eq!(read_u64(CALLS_SEEN), 0, "the child woke without a call");
    assert_eq!(
        user::yield_to(child.environment()),
        Err(Error::NotReceiving),
        "the child is still blocked"
    );
    ok(format_args!(
        "a child waiting for calls only slept through {slept} ticks"
    ));

    let (results, _) = user::call_endpoint(endpoint, [41, 0], None).expect("call the child");
    assert_eq!(results[0], 42);
    assert_eq!(read_u64(CALLS_SEEN), 1, "one call, one wakeup");
    ok("the call woke it, and it answered");

    // It is back in `wait`, now for a call or a timeout far away: the call comes first.
    child.run_until_blocked();
    let (results, _) = user::call_endpoint(endpoint, [99, 0], None).expect("call again");
    assert_eq!(results[0], 100);
    assert_eq!(read_u64(CALLS_SEEN), 2);
    ok("a child waiting for a call or a far timeout woke on the call");
    child.destroy();
}

fn a_call_does_not_wake_a_timer_waiter(shared: Handle) {
    let (child, endpoint) = start_child(shared, timer_waiter);
    child.run_until_blocked();
    // The call waits for the child to wait for calls, which it never does: it sleeps its
    // whole sleep and exits, and its end answers the call.
    expect_error(
        "a call to a child waiting on the timer only waits until the child is gone",
        user::call_endpoint(endpoint, [1, 0], None),
        Error::PeerGone,
    );
    let mut patience = PATIENCE;
    while child.is_alive() {
        patience -= 1;
        assert!(patience > 0, "the timer child never woke");
        sleep(Event::TIMER, 10);
    }
    let slept = read_u64(SLEPT);
    assert!(
        slept >= CHILD_SLEEP,
        "the child slept {slept} of {CHILD_SLEEP} ticks"
    );
    ok(format_args!(
        "the child waiting on the timer woke after {slept} ticks"
    ));
    drop(child);
}

fn bad_events_are_refused() {
    expect_error(
        "wait for no event",
        user::wait(Event::empty(), 10),
        Error::InvalidArgument,
    );
    expect_error(
        "wait for an unknown event",
        user::wait(Event::from_bits_retain(1 << 40), 10),
        Error::InvalidArgument,
    );
}
