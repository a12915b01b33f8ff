//! Seeing the system (docs/08): who may read whose accounts, and what they say.
//!
//! A capability with `INSPECT` for an environment shows it and every environment below it;
//! an id outside that family is `NoSuchEnvironment`, exactly like an id nobody has. The
//! parent (the first environment, above every other) makes two children: one it lends
//! `INSPECT` on itself, which must see only itself, its own child and nothing of its
//! sibling or parent, whatever it asks; and one that only waits. Then the accounts: names
//! set by a creator, states, counts that grow with what an environment does, a child's own
//! count seen from outside. Then the refusals: a capability without `INSPECT`, ids beyond
//! any, naming without `CONTROL`, a destroyed child.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::mapping::MapFlags;
use exo_abi::syscall::{EnvironmentAccount, EnvironmentState, Event};
use exo_abi::trace::pack_name;
use exo_abi::user;
use exo_abi::{Error, Handle, Rights};
use userapps::check::{self, expect_error, ok};
use userapps::layout::MANAGED_START;
use userapps::memory::{read_u64, write_u64};
use userapps::spawn::{Child, yield_until};

userapps::entry!(main);

const SELF: Handle = Handle::SELF_ENVIRONMENT;
/// The shared page: the ids the looker must know, and what it found.
const SHARED_PAGE: u64 = MANAGED_START;
const PARENT_ID: u64 = SHARED_PAGE;
const SIBLING_ID: u64 = SHARED_PAGE + 8;
/// Ids the looker saw, in order, through its own capability: a count, then the ids.
const SEEN_COUNT: u64 = SHARED_PAGE + 16;
const SEEN: u64 = SHARED_PAGE + 24;
/// 1 once it has looked; each refusal it met as an error code (0: none, it saw).
const DONE: u64 = SHARED_PAGE + 64;
const PARENT_ANSWER: u64 = SHARED_PAGE + 72;
const SIBLING_ANSWER: u64 = SHARED_PAGE + 80;
const OWN_CALLS: u64 = SHARED_PAGE + 88;

const CHILD_QUOTA: u64 = 64;
/// System calls the looker makes on purpose before it reports its own count.
const LOOKER_CALLS: u64 = 50;

fn main(_argument: u64) -> u64 {
    let (shared, _) = user::frame_allocate(0).expect("allocate the shared page");
    user::map(shared, SELF, SHARED_PAGE, MapFlags::WRITE).expect("map the shared page");
    let own_id = user::environment_info(SELF, EnvironmentAccount::Id).expect("own id");

    let sleeper = Child::create(CHILD_QUOTA).expect("create the sleeper");
    user::environment_name(sleeper.environment(), pack_name("sleeper")).expect("name it");
    sleeper.start(sleep_for_ever, 0).expect("start the sleeper");
    sleeper.run_until_blocked();
    let sleeper_id = sleeper.account(EnvironmentAccount::Id).expect("its id");

    let looker = Child::create(CHILD_QUOTA).expect("create the looker");
    user::environment_name(looker.environment(), pack_name("looker")).expect("name it");
    user::map(shared, looker.environment(), SHARED_PAGE, MapFlags::WRITE).expect("share");
    // The parent's own capability, with INSPECT taken out, given to the looker.
    let blind = user::capability_derive(SELF, Rights::GIVE | Rights::GRANT).expect("derive");
    let blind_for_looker =
        user::capability_grant(blind, looker.environment(), Rights::GIVE).expect("grant");
    write_u64(PARENT_ID, own_id);
    write_u64(SIBLING_ID, sleeper_id);
    looker
        .start(look, blind_for_looker.to_raw())
        .expect("start the looker");
    yield_until("the looker has looked", || read_u64(DONE) == 1);
    let looker_id = looker.account(EnvironmentAccount::Id).expect("its id");

    the_looker_saw_only_its_family(looker_id);
    the_first_environment_sees_everyone(own_id, sleeper_id, looker_id);
    accounts_say_what_happened(sleeper_id, looker_id);
    refusals_are_typed(&looker);
    sleeper.destroy();
    expect_error(
        "a destroyed child",
        user::environment_inspect(SELF, sleeper_id, EnvironmentAccount::Id),
        Error::NoSuchEnvironment,
    );
    looker.destroy();
    check::all_passed("inspect-test");
    0
}

/// The sleeper: waits for ever.
fn sleep_for_ever(_argument: u64) -> u64 {
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}

/// The looker: lists what its own capability shows, asks about its parent and sibling
/// through it and through the parent's capability it was given without INSPECT, makes
/// some calls, reports, then waits.
fn look(blind: u64) -> u64 {
    let blind = Handle::from_raw(blind);
    let mut count = 0;
    let mut after = 0;
    while let Ok(Some(id)) = user::environment_next(SELF, after) {
        write_u64(SEEN + 8 * count, id);
        count += 1;
        after = id;
        if count == 4 {
            break;
        }
    }
    write_u64(SEEN_COUNT, count);
    let answer = |id| match user::environment_inspect(SELF, id, EnvironmentAccount::Id) {
        Ok(_) => 0,
        Err(error) => error.code(),
    };
    write_u64(PARENT_ANSWER, answer(read_u64(PARENT_ID)));
    write_u64(SIBLING_ANSWER, answer(read_u64(SIBLING_ID)));
    // Through the parent's own capability, which lacks INSPECT.
    let refused = user::environment_next(blind, 0) == Err(Error::MissingRights)
        && user::environment_inspect(blind, read_u64(PARENT_ID), EnvironmentAccount::Id)
            == Err(Error::MissingRights);
    assert!(
        refused,
        "looker: the parent's capability without INSPECT showed something"
    );
    let me = own_id();
    let before = user::environment_inspect(SELF, me, EnvironmentAccount::SystemCalls)
        .expect("own system calls");
    for _ in 0..LOOKER_CALLS {
        let _ = user::frame_counts();
    }
    let after = user::environment_inspect(SELF, me, EnvironmentAccount::SystemCalls)
        .expect("own system calls");
    // Its own count is live: every call so far, the one that read it included.
    write_u64(OWN_CALLS, after - before);
    write_u64(DONE, 1);
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}

fn own_id() -> u64 {
    user::environment_info(SELF, EnvironmentAccount::Id).expect("own id")
}

fn the_looker_saw_only_its_family(looker_id: u64) {
    let seen: [u64; 4] = core::array::from_fn(|index| read_u64(SEEN + 8 * index as u64));
    assert_eq!(
        (read_u64(SEEN_COUNT), seen[0]),
        (1, looker_id),
        "the looker's own capability showed {seen:?}"
    );
    ok("a child's own capability shows itself and nothing else");
    let code = Error::NoSuchEnvironment.code();
    assert_eq!(read_u64(PARENT_ANSWER), code, "asking about the parent");
    assert_eq!(read_u64(SIBLING_ANSWER), code, "asking about the sibling");
    ok("its parent and sibling are NoSuchEnvironment to it, like ids nobody has");
    ok("the parent's capability without INSPECT was refused (MissingRights)");
    assert_eq!(read_u64(OWN_CALLS), LOOKER_CALLS + 1);
    ok(format_args!(
        "its own system-call count grew by the {LOOKER_CALLS} calls it made, and the read"
    ));
}

fn the_first_environment_sees_everyone(own_id: u64, sleeper_id: u64, looker_id: u64) {
    let mut seen = [0; 8];
    let mut count = 0;
    let mut after = 0;
    while let Some(id) = user::environment_next(SELF, after).expect("next") {
        assert!(count < seen.len(), "more environments than made");
        seen[count] = id;
        count += 1;
        after = id;
    }
    assert_eq!(&seen[..count], &[own_id, sleeper_id, looker_id]);
    ok("the first environment sees every environment, in id order, and then the end");
}

fn accounts_say_what_happened(sleeper_id: u64, looker_id: u64) {
    let account = |id, account| user::environment_inspect(SELF, id, account).expect("inspect");
    for (id, name) in [(sleeper_id, "sleeper"), (looker_id, "looker")] {
        let packed = [
            account(id, EnvironmentAccount::NameLow),
            account(id, EnvironmentAccount::NameHigh),
        ];
        assert_eq!(packed, pack_name(name));
    }
    ok("names set by the creator read back");
    let own = own_id();
    assert_eq!(account(own, EnvironmentAccount::Parent), 0);
    assert_eq!(account(looker_id, EnvironmentAccount::Parent), own);
    ok("parents: none for the first, the creator for a child");
    let waiting = EnvironmentState::Waiting as u64;
    assert_eq!(account(sleeper_id, EnvironmentAccount::State), waiting);
    assert_eq!(
        account(own, EnvironmentAccount::State),
        EnvironmentState::Runnable as u64
    );
    ok("states: the sleeper waits, the caller runs");
    assert!(account(looker_id, EnvironmentAccount::SystemCalls) > LOOKER_CALLS);
    assert!(account(sleeper_id, EnvironmentAccount::SystemCalls) >= 1);
    assert!(account(own, EnvironmentAccount::FramesHeld) >= 1);
    let through_info = user::environment_info(SELF, EnvironmentAccount::FramesCharged);
    assert_eq!(
        Ok(account(own, EnvironmentAccount::FramesCharged)),
        through_info
    );
    let held = account(own, EnvironmentAccount::CapabilitiesHeld);
    user::frame_allocate(0).expect("a frame");
    assert_eq!(account(own, EnvironmentAccount::CapabilitiesHeld), held + 1);
    ok(
        "counts seen from outside: calls made, frames held, the same charge both ways, \
         a capability more for a frame allocated",
    );
}

fn refusals_are_typed(looker: &Child) {
    for id in [0, u64::from(u32::MAX), u64::MAX] {
        expect_error(
            "an id beyond any",
            user::environment_inspect(SELF, id, EnvironmentAccount::Id),
            Error::NoSuchEnvironment,
        );
    }
    assert_eq!(user::environment_next(SELF, u64::MAX), Ok(None));
    ok("after the largest id there is nothing");
    expect_error(
        "naming without CONTROL",
        user::environment_name(
            user::capability_derive(looker.environment(), Rights::INSPECT).expect("derive"),
            pack_name("x"),
        ),
        Error::MissingRights,
    );
}
