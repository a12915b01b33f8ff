//! Calls that go round in circles and environments that end at awkward moments: nothing
//! wedges the kernel or anyone outside the circle, and whoever waits on the dead gets a
//! typed error.
//!
//! | attack | must get |
//! |---|---|
//! | a call through one's own endpoint | `NotReceiving` |
//! | rings of 2 and 5 servers, each calling the next while it serves (A→B→A, and longer), started by a caller outside | every member blocked, the witness running; the first member destroyed: the outside caller, the member queued on it and the one replying to it get `PeerGone`, the rest their replies, and every member serves again |
//! | the endpoint's copies revoked while one call is served and two wait | the waiting calls still served in order (they were made with a good capability); each caller's next call `StaleHandle`; a second `Reply` `NoCaller` |
//! | `YieldTo` oneself, a caller blocked in `Call`, a destroyed environment, a forged handle | `Ok`, `NotReceiving`, `StaleHandle`, a typed error |
//! | `EnvironmentCreate` lending 0 frames, or more than the creator has | `InvalidArgument`, `QuotaExceeded` |
//! | destroying an environment before it starts, twice; starting it after, twice, and oneself | `Ok`, `StaleHandle`, `StaleHandle`, `InvalidState`, `InvalidState` |
//! | a child destroying its parent through a capability without `DESTROY`, and through forged handles | `MissingRights`, typed errors; the parent lives |
//! | a child lending a new environment all the frames it has left | the child lives (and can allocate nothing more) |
//! | a server exiting with two calls queued and two children alive | the callers `PeerGone`; the children gone |
//! | a server destroyed in its upcall handler (it faulted while serving a call, and spins there) | its caller `PeerGone` |
//! | a server with two calls queued, held still by a destroyer destroyed before it could go on | the callers `PeerGone` at once, not when the server is gone |
//!
//! A witness runs throughout; at the end every frame and byte of kernel memory is back.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::layout::PAGE_SIZE;
use exo_abi::syscall::{EnvironmentAccount, EnvironmentState, Event};
use exo_abi::user::{self, IncomingCall, Wakeup};
use exo_abi::{Error, Handle, Rights};
use userapps::check::{self, expect_error, ok};
use userapps::hostile::conservation::Baseline;
use userapps::hostile::shared::Words;
use userapps::hostile::witness::Witness;
use userapps::layout::MANAGED_START;
use userapps::spawn::Child;
use userapps::{facts, memory, upcall};

userapps::entry!(main);

/// The page parent and children share. Child `i` finds its handles at `ARGUMENT + i` and
/// `NEXT + i`, and reports at `NESTED + i` (its call's result), `REPLIED + i` (its
/// reply's) and `SERVED + i` (calls served); a result is its error code, or `OK`.
const SHARED: Words = Words::at(MANAGED_START);
const ARGUMENT: u64 = 0;
const NEXT: u64 = 16;
const NESTED: u64 = 32;
const REPLIED: u64 = 48;
const SERVED: u64 = 64;
const SECOND: u64 = 80;
/// Set by the parent when a waiting child may go on.
const GO: u64 = 96;
/// What a child reports for a call or reply that succeeded (never an error code).
const OK: u64 = 1 << 40;

const CHILD_QUOTA: u64 = 64;
/// How long anything may take, in ticks.
const PATIENCE_TICKS: u64 = 20_000;
const REGISTRY_TAG: u64 = 0x1e6;
const SERVER_TAG: u64 = 0x5e1;
const RING_SIZES: [usize; 2] = [2, 5];
const MAX_RING: usize = 5;
/// Callers queued on one server.
const QUEUED: usize = 3;
/// Copies of its endpoint the stuffed server makes: more than one share of a destroy
/// removes.
const STUFFED: u64 = 1000;
/// The stuffed server's kernel memory: room for its copies.
const STUFFED_BYTES: u64 = 512 * 1024;
/// Where the destroyer of `abandoned_destroy` finds its handle and reports.
const DESTROYER_SLOT: u64 = 2;
/// How long the callers of a server held still may wait to be told, in ticks.
const TOLD_TICKS: u64 = 100;

fn main(_argument: u64) -> u64 {
    let page = SHARED.allocate().expect("allocate the shared page");
    // The largest ring lives together with its starter, and this environment holds a
    // copy of each member's endpoint: its capability table grows to hold them all, and
    // keeps that size.
    let warm_up: [Child; MAX_RING + 2] =
        core::array::from_fn(|_| Child::create(CHILD_QUOTA).expect("create a child"));
    let endpoints: [Handle; MAX_RING + 4] =
        core::array::from_fn(|_| user::endpoint_create(SERVER_TAG).expect("an endpoint"));
    for endpoint in endpoints {
        memory::drop_capability(endpoint).expect("drop it");
    }
    drop(warm_up);
    let baseline = Baseline::after_a_witness_and_a_child(CHILD_QUOTA);
    let witness = Witness::start().expect("start the witness");
    witness.expect_progress(1, PATIENCE_TICKS, "it started");
    let registry = user::endpoint_create(REGISTRY_TAG).expect("create the registry");

    own_endpoint();
    for size in RING_SIZES {
        ring(size, page, registry, &witness);
    }
    revoked_while_queued(page);
    directed_yields(page);
    creation_and_start();
    parent_killer(page);
    whole_quota(page);
    exit_with_callers(page, registry);
    destroyed_in_handler(page, registry);
    abandoned_destroy(page, registry);

    witness.expect_progress(1, PATIENCE_TICKS, "every attack");
    witness.check_unharmed("every attack");
    witness.stop();
    memory::drop_capability(registry).expect("drop the registry");
    baseline.expect_came_back("hostile-lifecycles", "every call and lifecycle");
    check::all_passed("hostile-lifecycles");
    0
}

fn own_endpoint() {
    let endpoint = user::endpoint_create(SERVER_TAG).expect("create an endpoint");
    expect_error(
        "a call through one's own endpoint",
        user::call_endpoint(endpoint, [0, 0], None),
        Error::NotReceiving,
    );
    memory::drop_capability(endpoint).expect("drop it");
}

/// `size` servers in a ring, each calling the next while it serves, started by a caller
/// outside; then the first is destroyed.
fn ring(size: usize, page: Handle, registry: Handle, witness: &Witness) {
    SHARED.clear();
    let mut members = [const { None }; MAX_RING];
    let mut endpoints = [Handle::SELF_ENVIRONMENT; MAX_RING];
    for index in 0..size {
        let child = Child::create(CHILD_QUOTA).expect("create a member");
        share(page, &child);
        let theirs =
            user::capability_grant(registry, child.environment(), Rights::CALL).expect("grant");
        SHARED.write(ARGUMENT + index as u64, theirs.to_raw());
        child
            .start(ring_member, index as u64)
            .expect("start a member");
        endpoints[index] = next_call(REGISTRY_TAG).capability.expect("its endpoint");
        user::reply([0, 0], None).expect("reply to the member");
        members[index] = Some(child);
    }
    for index in 0..size {
        let member = members[index].as_ref().expect("a member");
        let next = endpoints[(index + 1) % size];
        let theirs =
            user::capability_grant(next, member.environment(), Rights::CALL).expect("grant");
        SHARED.write(NEXT + index as u64, theirs.to_raw());
    }
    let starter = Child::create(CHILD_QUOTA).expect("create the starter");
    share(page, &starter);
    let theirs =
        user::capability_grant(endpoints[0], starter.environment(), Rights::CALL).expect("grant");
    SHARED.write(ARGUMENT + MAX_RING as u64, theirs.to_raw());
    starter
        .start(ring_starter, MAX_RING as u64)
        .expect("start the starter");

    let calling = |child: &Child| {
        child.account(EnvironmentAccount::State) == Ok(EnvironmentState::Calling as u64)
    };
    wait_for("the ring to close", || {
        calling(&starter) && members[..size].iter().flatten().all(calling)
    });
    witness.expect_progress(1, PATIENCE_TICKS, "the ring closed");

    members[0].take().expect("the first member").destroy();
    let last = size as u64 - 1;
    wait_for("the ring to open", || {
        SHARED.read(NESTED + MAX_RING as u64) != 0
            && (1..=last).all(|index| SHARED.read(REPLIED + index) != 0)
    });
    let peer_gone = Error::PeerGone.code();
    assert_eq!(
        SHARED.read(NESTED + MAX_RING as u64),
        peer_gone,
        "the starter"
    );
    for index in 1..=last {
        let nested = SHARED.read(NESTED + index);
        let replied = SHARED.read(REPLIED + index);
        let expected_nested = if index == last { peer_gone } else { OK };
        let expected_reply = if index == 1 { peer_gone } else { OK };
        assert_eq!(
            (nested, replied),
            (expected_nested, expected_reply),
            "member {index} of {size}"
        );
    }
    let waiting = |child: &Child| {
        child.account(EnvironmentAccount::State) == Ok(EnvironmentState::Waiting as u64)
    };
    wait_for("the members to serve again", || {
        members[1..size].iter().flatten().all(waiting)
    });
    // The first member's went with it.
    assert_eq!(
        memory::drop_capability(endpoints[0]),
        Err(Error::StaleHandle),
        "the dead member's endpoint"
    );
    for endpoint in &endpoints[1..size] {
        memory::drop_capability(*endpoint).expect("drop a member's endpoint");
    }
    witness.check_unharmed("a ring of calls");
    ok(format_args!(
        "a ring of {size} servers calling each other blocks only itself; destroying one \
         tells the starter, the one queued on it and the one replying to it PeerGone"
    ));
}

/// A ring member: registers an endpoint of its own with the parent, then serves calls
/// by calling the next member, and replies.
fn ring_member(index: u64) -> u64 {
    let endpoint = user::endpoint_create(SERVER_TAG + index).expect("create an endpoint");
    let registry = Handle::from_raw(SHARED.read(ARGUMENT + index));
    user::call_endpoint(registry, [index, 0], Some(endpoint)).expect("register");
    while SHARED.read(NEXT + index) == 0 {
        let _ = user::wait(Event::TIMER, 1);
    }
    let next = Handle::from_raw(SHARED.read(NEXT + index));
    loop {
        if let Ok(Wakeup::Call(_)) = user::wait(Event::CALL, 0) {
            let nested = user::call_endpoint(next, [index, 0], None).map(|_| ());
            SHARED.write(NESTED + index, result_word(nested));
            let replied = user::reply([index, 0], None);
            SHARED.write(REPLIED + index, result_word(replied));
            SHARED.add(SERVED + index, 1);
        }
    }
}

/// Calls the endpoint at `ARGUMENT + slot` once and reports how it went at `NESTED + slot`,
/// then (for a caller of `revoked_while_queued`) calls again and reports at `SECOND +
/// slot`.
fn ring_starter(slot: u64) -> u64 {
    let endpoint = Handle::from_raw(SHARED.read(ARGUMENT + slot));
    let first = user::call_endpoint(endpoint, [slot, 0], None).map(|_| ());
    SHARED.write(NESTED + slot, result_word(first));
    let second = user::call_endpoint(endpoint, [slot, 0], None).map(|_| ());
    SHARED.write(SECOND + slot, result_word(second));
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}

/// This environment serves; while it serves one call and two more wait in its queue, it
/// revokes every copy of its endpoint.
fn revoked_while_queued(page: Handle) {
    SHARED.clear();
    let endpoint = user::endpoint_create(SERVER_TAG).expect("create the endpoint");
    let callers: [Child; QUEUED] = core::array::from_fn(|slot| {
        let child = start_caller(page, endpoint, slot as u64);
        // One at a time, so that they queue in order.
        wait_for("a caller to call", || {
            child.account(EnvironmentAccount::State) == Ok(EnvironmentState::Calling as u64)
        });
        child
    });
    let first = next_call(SERVER_TAG);
    assert_eq!(first.arguments[0], 0, "the first caller first");
    memory::revoke_capability(endpoint).expect("revoke the copies");
    user::reply([0, 0], None).expect("reply to the first");
    expect_error(
        "a second Reply to the same call",
        user::reply([0, 0], None),
        Error::NoCaller,
    );
    for slot in 1..QUEUED as u64 {
        assert_eq!(
            next_call(SERVER_TAG).arguments[0],
            slot,
            "calls out of order"
        );
        user::reply([0, 0], None).expect("reply to a queued caller");
    }
    wait_for("every second call", || {
        (0..QUEUED as u64).all(|slot| SHARED.read(SECOND + slot) != 0)
    });
    for slot in 0..QUEUED as u64 {
        assert_eq!(SHARED.read(NESTED + slot), OK, "caller {slot}'s first call");
        assert_eq!(
            SHARED.read(SECOND + slot),
            Error::StaleHandle.code(),
            "caller {slot}'s second call"
        );
    }
    drop(callers);
    memory::drop_capability(endpoint).expect("drop the endpoint");
    ok(
        "calls queued before their endpoint's copies were revoked are served in order; \
        the next ones are StaleHandle",
    );
}

fn directed_yields(page: Handle) {
    SHARED.clear();
    user::yield_to(Handle::SELF_ENVIRONMENT).expect("YieldTo oneself");
    let endpoint = user::endpoint_create(SERVER_TAG).expect("create the endpoint");
    let caller = start_caller(page, endpoint, 0);
    wait_for("the caller to call", || {
        caller.account(EnvironmentAccount::State) == Ok(EnvironmentState::Calling as u64)
    });
    assert_eq!(
        user::yield_to(caller.environment()),
        Err(Error::NotReceiving)
    );
    let environment = caller.environment();
    caller.destroy();
    assert_eq!(user::yield_to(environment), Err(Error::StaleHandle));
    let forged = user::yield_to(Handle::from_raw(0x0bad_0000_0777));
    assert!(
        matches!(forged, Err(error) if error != Error::NotReceiving),
        "YieldTo a forged handle: {forged:?}"
    );
    // Its call is gone with it: a wait for calls ends on the timer.
    assert_eq!(user::wait(Event::CALL | Event::TIMER, 1), Ok(Wakeup::Timer));
    memory::drop_capability(endpoint).expect("drop the endpoint");
    ok(format_args!(
        "YieldTo oneself is Ok; to a caller blocked in Call NotReceiving; to a destroyed \
         environment StaleHandle; to a forged handle {forged:?}"
    ));
}

fn creation_and_start() {
    expect_error(
        "an environment lent no frames",
        user::environment_create(0),
        Error::InvalidArgument,
    );
    expect_error(
        "an environment lent more frames than its creator has",
        user::environment_create(u64::MAX / 2),
        Error::QuotaExceeded,
    );
    let child = user::environment_create(CHILD_QUOTA).expect("create an environment");
    let other = user::environment_create(CHILD_QUOTA).expect("create another");
    user::environment_start(other, 0x40_0000, 0x40_0000, 0).expect("start it");
    assert_eq!(
        user::environment_start(other, 0x40_0000, 0x40_0000, 0),
        Err(Error::InvalidState),
        "started twice"
    );
    assert_eq!(
        user::environment_start(Handle::SELF_ENVIRONMENT, 0x40_0000, 0x40_0000, 0),
        Err(Error::InvalidState),
        "started oneself"
    );
    user::environment_destroy(child).expect("destroy it before it starts");
    assert_eq!(user::environment_destroy(child), Err(Error::StaleHandle));
    assert_eq!(
        user::environment_start(child, 0x40_0000, 0x40_0000, 0),
        Err(Error::StaleHandle)
    );
    // `other` runs nothing mapped: it faults and is destroyed by the kernel, if it has
    // not been already by now.
    let _ = user::environment_destroy(other);
    ok(
        "an environment destroyed before it started is gone (destroying or starting it \
        again StaleHandle); starting one twice, or oneself, InvalidState",
    );
}

/// A child given a capability for this environment without `DESTROY` tries to destroy
/// it, through that capability and through forged ones.
fn parent_killer(page: Handle) {
    SHARED.clear();
    let child = Child::create(CHILD_QUOTA).expect("create the child");
    share(page, &child);
    let theirs = user::capability_grant(
        Handle::SELF_ENVIRONMENT,
        child.environment(),
        Rights::INSPECT | Rights::CONTROL,
    )
    .expect("grant a capability for this environment");
    SHARED.write(ARGUMENT, theirs.to_raw());
    child.start(kill_parent, 0).expect("start the child");
    wait_for("the child's attempts", || SHARED.read(NESTED) != 0);
    assert_eq!(SHARED.read(NESTED), Error::MissingRights.code());
    assert_eq!(
        SHARED.read(SECOND),
        OK,
        "forged handles were not all refused"
    );
    child.destroy();
    ok(
        "a child cannot destroy its parent through a capability without DESTROY, or a \
        forged one",
    );
}

fn kill_parent(_argument: u64) -> u64 {
    let parent = Handle::from_raw(SHARED.read(ARGUMENT));
    SHARED.write(SECOND, OK);
    for raw in [1, 2, 0xffff, 1 << 32 | 1, u64::MAX - 1] {
        let forged = Handle::from_raw(raw);
        if forged != parent && user::environment_destroy(forged).is_ok() {
            SHARED.write(SECOND, raw);
        }
    }
    SHARED.write(NESTED, result_word(user::environment_destroy(parent)));
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}

/// A child lends a new environment every frame it has left, and lives on.
fn whole_quota(page: Handle) {
    SHARED.clear();
    let child = Child::create(CHILD_QUOTA).expect("create the child");
    share(page, &child);
    child.start(lend_everything, 0).expect("start the child");
    wait_for("the child to lend", || SHARED.read(NESTED) != 0);
    assert_eq!(SHARED.read(NESTED), OK, "lending every frame left");
    assert_eq!(
        SHARED.read(SECOND),
        Error::QuotaExceeded.code(),
        "allocating after"
    );
    assert!(child.is_alive(), "the child died of lending");
    child.destroy();
    ok(
        "a child that lends a new environment every frame it has left lives on, and can \
        allocate no more",
    );
}

fn lend_everything(_argument: u64) -> u64 {
    let own = |which| user::environment_info(Handle::SELF_ENVIRONMENT, which).unwrap_or(0);
    let left = own(EnvironmentAccount::FrameQuota) - own(EnvironmentAccount::FramesCharged);
    let lent = user::environment_create(left);
    let allocated = user::frame_allocate(0).map(|_| ());
    SHARED.write(SECOND, result_word(allocated));
    SHARED.write(NESTED, result_word(lent.map(|_| ())));
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}

/// A server with two calls queued and two children of its own exits.
fn exit_with_callers(page: Handle, registry: Handle) {
    SHARED.clear();
    let (server, endpoint) = start_server(page, registry, exiting_server);
    let callers: [Child; 2] =
        core::array::from_fn(|slot| start_caller(page, endpoint, slot as u64));
    wait_for("both callers to queue", || {
        callers.iter().all(|child| {
            child.account(EnvironmentAccount::State) == Ok(EnvironmentState::Calling as u64)
        })
    });
    SHARED.write(GO, 1);
    server.wait();
    wait_for("both callers to hear", || {
        SHARED.read(NESTED) != 0 && SHARED.read(NESTED + 1) != 0
    });
    let peer_gone = Error::PeerGone.code();
    assert_eq!(
        [SHARED.read(NESTED), SHARED.read(NESTED + 1)],
        [peer_gone; 2]
    );
    let grandchildren = SHARED.read(SERVED + MAX_RING as u64);
    assert_eq!(grandchildren, 2, "the server's children");
    let _ = memory::drop_capability(endpoint);
    drop(callers);
    server.destroy();
    ok(
        "a server that exits with two calls queued and two children alive: the callers \
        PeerGone, everything back (below)",
    );
}

fn exiting_server(slot: u64) -> u64 {
    let endpoint = user::endpoint_create(SERVER_TAG).expect("create an endpoint");
    let registry = Handle::from_raw(SHARED.read(ARGUMENT + slot));
    user::call_endpoint(registry, [0, 0], Some(endpoint)).expect("register");
    for _ in 0..2 {
        if user::environment_create(8).is_ok() {
            SHARED.add(SERVED + slot, 1);
        }
    }
    while SHARED.read(GO) == 0 {
        let _ = user::wait(Event::TIMER, 1);
    }
    0
}

/// A server takes a call, faults, and spins in its upcall handler; it is destroyed
/// there.
fn destroyed_in_handler(page: Handle, registry: Handle) {
    SHARED.clear();
    let (server, endpoint) = start_server(page, registry, faulting_server);
    let caller = start_caller(page, endpoint, 0);
    wait_for("the server's handler", || SHARED.read(GO) == 1);
    server.destroy();
    wait_for("the caller to hear", || SHARED.read(NESTED) != 0);
    assert_eq!(SHARED.read(NESTED), Error::PeerGone.code(), "the caller");
    let _ = memory::drop_capability(endpoint);
    caller.destroy();
    ok("a server destroyed in its upcall handler, mid-call: its caller PeerGone");
}

fn faulting_server(slot: u64) -> u64 {
    let endpoint = user::endpoint_create(SERVER_TAG).expect("create an endpoint");
    let registry = Handle::from_raw(SHARED.read(ARGUMENT + slot));
    user::call_endpoint(registry, [0, 0], Some(endpoint)).expect("register");
    upcall::register(|_| {
        SHARED.write(GO, 1);
        loop {
            core::hint::spin_loop();
        }
    })
    .expect("register the handler");
    if let Ok(Wakeup::Call(_)) = user::wait(Event::CALL, 0) {
        // Nothing is mapped there: the handler runs, and never returns.
        memory::read_u64(MANAGED_START + 0x40 * PAGE_SIZE);
    }
    0
}

/// A server with two calls queued, held still by a destroyer that never goes on with its
/// call: the destroyer, given `DESTROY` for the server, is itself destroyed once the
/// server is held still and the call has stopped part-way (the server's table holds
/// [`STUFFED`] capabilities, more than a share removes). The callers must be told the
/// server is gone: it will never answer. They once waited for as long as the server was
/// held still — for good, had its creator not destroyed it in the end.
fn abandoned_destroy(page: Handle, registry: Handle) {
    SHARED.clear();
    let (server, endpoint) = start_server_lent(page, registry, stuffed_server, STUFFED_BYTES);
    wait_for("the server to stuff its table", || SHARED.read(GO) == 1);
    let callers: [Child; 2] =
        core::array::from_fn(|slot| start_caller(page, endpoint, slot as u64));
    wait_for("both callers to queue", || {
        callers.iter().all(|child| {
            child.account(EnvironmentAccount::State) == Ok(EnvironmentState::Calling as u64)
        })
    });
    let destroyer = Child::create(CHILD_QUOTA).expect("create the destroyer");
    share(page, &destroyer);
    let theirs = user::capability_grant(
        server.environment(),
        destroyer.environment(),
        Rights::DESTROY,
    )
    .expect("grant DESTROY on the server");
    SHARED.write(ARGUMENT + DESTROYER_SLOT, theirs.to_raw());
    destroyer
        .start(destroy_once, DESTROYER_SLOT)
        .expect("start the destroyer");
    wait_for("the server to be held still", || {
        server.account(EnvironmentAccount::State) == Ok(EnvironmentState::Ending as u64)
    });
    destroyer.destroy();
    assert_eq!(
        SHARED.read(NESTED + DESTROYER_SLOT),
        0,
        "the destroyer finished before it was destroyed"
    );
    let deadline = facts::ticks() + TOLD_TICKS;
    while SHARED.read(NESTED) == 0 || SHARED.read(NESTED + 1) == 0 {
        assert!(
            facts::ticks() < deadline,
            "the callers of a server held still by an abandoned destroy were never told"
        );
        let _ = user::wait(Event::TIMER, 1);
    }
    let peer_gone = Error::PeerGone.code();
    assert_eq!(
        [SHARED.read(NESTED), SHARED.read(NESTED + 1)],
        [peer_gone; 2]
    );
    let _ = memory::drop_capability(endpoint);
    drop(callers);
    server.destroy();
    ok(
        "a server held still by a destroyer that never went on: its queued callers PeerGone \
         at once",
    );
}

/// A server that fills its table with copies of its endpoint, says so, and spins.
fn stuffed_server(slot: u64) -> u64 {
    let endpoint = user::endpoint_create(SERVER_TAG).expect("create an endpoint");
    let registry = Handle::from_raw(SHARED.read(ARGUMENT + slot));
    user::call_endpoint(registry, [0, 0], Some(endpoint)).expect("register");
    for _ in 0..STUFFED {
        if user::capability_derive(endpoint, Rights::CALL).is_err() {
            break;
        }
    }
    SHARED.write(GO, 1);
    loop {
        core::hint::spin_loop();
    }
}

/// Destroys the environment its slot's handle names, once, and reports how it went.
fn destroy_once(slot: u64) -> u64 {
    let target = Handle::from_raw(SHARED.read(ARGUMENT + slot));
    let result = user::environment_destroy(target);
    SHARED.write(NESTED + slot, result_word(result));
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}

/// Starts a child that calls `endpoint` through `ring_starter` from slot `slot` of the
/// shared page.
fn start_caller(page: Handle, endpoint: Handle, slot: u64) -> Child {
    let child = Child::create(CHILD_QUOTA).expect("create a caller");
    share(page, &child);
    let theirs =
        user::capability_grant(endpoint, child.environment(), Rights::CALL).expect("grant");
    SHARED.write(ARGUMENT + slot, theirs.to_raw());
    child.start(ring_starter, slot).expect("start a caller");
    child
}

/// Starts a server running `entry` and takes the endpoint it registers through
/// `registry`.
fn start_server(page: Handle, registry: Handle, entry: fn(u64) -> u64) -> (Child, Handle) {
    start_server_lent(page, registry, entry, 0)
}

/// As [`start_server`], with `kernel_bytes` of kernel memory (0: the default).
fn start_server_lent(
    page: Handle,
    registry: Handle,
    entry: fn(u64) -> u64,
    kernel_bytes: u64,
) -> (Child, Handle) {
    let server = Child::create_lending(user::Lend {
        frames: CHILD_QUOTA,
        kernel_bytes,
        slots: 0,
    })
    .expect("create the server");
    share(page, &server);
    let theirs =
        user::capability_grant(registry, server.environment(), Rights::CALL).expect("grant");
    SHARED.write(ARGUMENT + MAX_RING as u64, theirs.to_raw());
    server
        .start(entry, MAX_RING as u64)
        .expect("start the server");
    let endpoint = next_call(REGISTRY_TAG).capability.expect("its endpoint");
    user::reply([0, 0], None).expect("reply to the server");
    (server, endpoint)
}

/// Waits for the next call through the endpoint tagged `tag`.
fn next_call(tag: u64) -> IncomingCall {
    match user::wait(Event::CALL | Event::TIMER, PATIENCE_TICKS) {
        Ok(Wakeup::Call(call)) => {
            assert_eq!(call.entry, tag);
            call
        }
        other => panic!("no call came: {other:?}"),
    }
}

fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = facts::ticks() + PATIENCE_TICKS;
    while !condition() {
        assert!(facts::ticks() < deadline, "waited too long for {what}");
        let _ = user::wait(Event::TIMER, 1);
    }
}

/// A result as a child reports it: `OK`, or the error's code.
fn result_word(result: Result<(), Error>) -> u64 {
    match result {
        Ok(()) => OK,
        Err(error) => error.code(),
    }
}

/// Maps the shared page (our frame `page`) into `child`.
fn share(page: Handle, child: &Child) {
    SHARED
        .share_with(page, child.environment())
        .expect("share the page");
}
