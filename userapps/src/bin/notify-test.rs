//! Notifications: a wakeup with no data, for environments that share memory.
//!
//! Bits signalled before a `wait` are kept and returned at once, OR'd together; a `wait`
//! clears them. A child waiting only for notifications sleeps through the parent's ticks
//! and wakes when the parent signals the notification it granted it. Bad calls get typed
//! errors: bits 0, a capability of another kind, one without `SIGNAL`, and a notification
//! whose environment is gone.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::mapping::MapFlags;
use exo_abi::syscall::{CapabilityKind, Event};
use exo_abi::user::{self, Wakeup};
use exo_abi::{Error, Handle, Rights};
use userapps::check::{self, expect_error, ok};
use userapps::facts;
use userapps::layout::MANAGED_START;
use userapps::memory::{read_u64, write_u64};
use userapps::spawn::{Child, yield_until};

userapps::entry!(main);

/// The shared page: the child's notification (its handle in the parent's table), whether
/// it is ready, and the bits it woke with (0 until it wakes).
const SHARED_PAGE: u64 = MANAGED_START;
const NOTIFICATION: u64 = SHARED_PAGE;
const READY: u64 = SHARED_PAGE + 8;
const WOKE_WITH: u64 = SHARED_PAGE + 16;

const CHILD_BITS: u64 = 0x40;
const PARENT_SLEEP: u64 = 50;
const CHILD_QUOTA: u64 = 48;

fn main(_argument: u64) -> u64 {
    pending_bits_are_kept_and_cleared();
    bad_calls_are_refused();
    let (shared, _) = user::frame_allocate(0).expect("allocate the shared page");
    user::map(
        shared,
        Handle::SELF_ENVIRONMENT,
        SHARED_PAGE,
        MapFlags::WRITE,
    )
    .expect("map the shared page");
    a_signal_wakes_a_sleeping_child(shared);
    check::all_passed("notify-test");
    0
}

fn pending_bits_are_kept_and_cleared() {
    let one = user::notification_create(0b01).expect("create a notification");
    let two = user::notification_create(0b10).expect("create another");
    let info = user::capability_identify(one).expect("identify it");
    assert_eq!(
        (info.kind, info.value, info.rights),
        (CapabilityKind::Notification, 0b01, Rights::NOTIFICATION)
    );
    for notification in [one, two, one] {
        user::signal(notification).expect("signal");
    }
    let before = facts::ticks();
    let woke = user::wait(Event::NOTIFY | Event::TIMER, 1_000_000);
    assert_eq!(
        woke,
        Ok(Wakeup::Notify(0b11)),
        "the bits of three signals, at once"
    );
    assert!(facts::ticks() - before < 1_000_000);
    ok("signals before a wait are kept, OR'd, and returned at once");
    assert_eq!(
        user::wait(Event::NOTIFY | Event::TIMER, 5),
        Ok(Wakeup::Timer),
        "the wait cleared them"
    );
    ok("the wait cleared them: the next one ends on the timer");
    // Signals while waiting only for the timer stay pending.
    user::signal(two).expect("signal");
    assert_eq!(user::wait(Event::TIMER, 5), Ok(Wakeup::Timer));
    assert_eq!(user::wait(Event::NOTIFY, 0), Ok(Wakeup::Notify(0b10)));
    ok("a wait for the timer alone leaves the bits pending");
}

fn bad_calls_are_refused() {
    expect_error(
        "a notification with no bits",
        user::notification_create(0),
        Error::InvalidArgument,
    );
    let (frame, _) = user::frame_allocate(0).expect("allocate a frame");
    expect_error("signalling a frame", user::signal(frame), Error::WrongKind);
    let notification = user::notification_create(1).expect("create a notification");
    let mute = user::capability_derive(notification, Rights::GRANT).expect("derive");
    expect_error(
        "signalling without SIGNAL",
        user::signal(mute),
        Error::MissingRights,
    );
    expect_error(
        "signalling a handle never issued",
        user::signal(Handle::from_raw(0xdead_0000_0777)),
        Error::InvalidHandle,
    );
}

/// Makes a notification, grants it to the parent (`parent`: our handle for it, with
/// `GIVE`), then waits for notifications only, and records the bits it woke with.
fn notified_child(parent: u64) -> u64 {
    let notification = user::notification_create(CHILD_BITS).expect("create a notification");
    let theirs = user::capability_grant(notification, Handle::from_raw(parent), Rights::SIGNAL)
        .expect("grant it to the parent");
    write_u64(NOTIFICATION, theirs.to_raw());
    write_u64(READY, 1);
    match user::wait(Event::NOTIFY, 0) {
        Ok(Wakeup::Notify(bits)) => write_u64(WOKE_WITH, bits),
        other => panic!("child: wait(NOTIFY) returned {other:?}"),
    }
    // Stay, blocked, until the parent destroys it.
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}

fn a_signal_wakes_a_sleeping_child(shared: Handle) {
    let child = Child::create(CHILD_QUOTA).expect("create a child");
    user::map(shared, child.environment(), SHARED_PAGE, MapFlags::WRITE).expect("share the page");
    let parent =
        user::capability_grant(Handle::SELF_ENVIRONMENT, child.environment(), Rights::GIVE)
            .expect("grant the child a capability for the parent");
    child
        .start(notified_child, parent.to_raw())
        .expect("start it");
    yield_until("the child offers its notification", || read_u64(READY) == 1);
    let notification = Handle::from_raw(read_u64(NOTIFICATION));
    child.run_until_blocked();
    assert_eq!(user::wait(Event::TIMER, PARENT_SLEEP), Ok(Wakeup::Timer));
    assert_eq!(read_u64(WOKE_WITH), 0, "the child woke without a signal");
    ok("a child waiting for notifications slept through the parent's ticks");

    user::signal(notification).expect("signal the child");
    child.run_until_blocked();
    assert_eq!(read_u64(WOKE_WITH), CHILD_BITS);
    ok("the signal woke it, with its bits");

    child.destroy();
    expect_error(
        "signalling a notification whose environment is gone",
        user::signal(notification),
        Error::StaleHandle,
    );
}
