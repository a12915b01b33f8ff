//! Protected control transfer: a call runs the server at once, on the caller's slot, and the
//! reply comes straight back, with two values each way and optionally a capability.
//!
//! The server is a child. It makes two endpoints — arithmetic and control, told apart by
//! their entry tags — and must hand them to the parent; a child holds no capability for
//! its parent, so the parent first grants it one for itself with `GIVE` only, and the
//! server grants the endpoints through it and writes their handles (in the parent's table)
//! in a page they share. Then it serves calls for ever: `wait(CALL)`, compute, `reply`.
//!
//! The parent checks a round trip, passing a frame capability and getting one back, 1000
//! round trips, a call to a busy server (it waits in the kernel's queue, not refused),
//! callers queued behind a busy server served first come first served, and the refusals:
//! a reply with no call, a call through a frame, a revoked endpoint, a capability passed
//! without `GRANT`, and a server that exits mid-call and leaves its endpoints behind stale.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::counters::Counter;
use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::MapFlags;
use exo_abi::syscall::Event;
use exo_abi::user::{self, IncomingCall, Wakeup};
use exo_abi::{Error, Handle, Rights};
use userapps::check::{self, expect_error, ok};
use userapps::facts;
use userapps::layout::MANAGED_START;
use userapps::memory::{self, read_u64, write_u64};
use userapps::spawn::{Child, yield_until};

userapps::entry!(main);

/// The shared page: the endpoints' handles in the parent's table, whether the server has
/// written them, and whether the server should stay busy (not waiting) after a reply.
const SHARED_PAGE: u64 = MANAGED_START;
const ARITHMETIC_HANDLE: u64 = SHARED_PAGE;
const CONTROL_HANDLE: u64 = SHARED_PAGE + 8;
const READY: u64 = SHARED_PAGE + 16;
const BUSY: u64 = SHARED_PAGE + 24;
/// The order in which the server took the queued callers' calls: a count, then their first
/// arguments.
const SERVED_COUNT: u64 = SHARED_PAGE + 32;
const SERVED: u64 = SHARED_PAGE + 40;
/// Callers queued at once behind the busy server; the ones destroyed while they wait (the
/// first, one in the middle, the last); and one more queued after that.
const QUEUED_CALLERS: u64 = 5;
const DESTROYED_WHILE_QUEUED: [u64; 3] = [0, 2, 4];
const SERVED_IN_ORDER: [u64; 3] = [1, 3, 5];
/// A queued caller's first argument: this plus its place in the queue.
const QUEUED_BASE: u64 = 1000;
/// Where the server maps a frame it was passed, and one it passes back.
const SERVER_RECEIVED_PAGE: u64 = MANAGED_START + 0x100 * PAGE_SIZE;
const SERVER_RETURNED_PAGE: u64 = MANAGED_START + 0x101 * PAGE_SIZE;
/// Where the parent maps the frame it passes, and the one it gets back.
const PARENT_PASSED_PAGE: u64 = MANAGED_START + 0x200 * PAGE_SIZE;
const PARENT_RETURNED_PAGE: u64 = MANAGED_START + 0x201 * PAGE_SIZE;

/// Entry tags: which endpoint a call came through.
const ARITHMETIC_TAG: u64 = 0xa1;
const CONTROL_TAG: u64 = 0xc0;
/// Control operations (a control call's first argument).
/// Map the passed frame, reply with its first word and a new frame holding that word + 1.
const READ_FRAME: u64 = 1;
/// Set `BUSY`, reply, then stay busy — asleep, not waiting for calls — for the ticks the
/// second argument says, or (0) until the parent clears `BUSY`; then clear `BUSY` and wait
/// for calls again.
const STAY_BUSY: u64 = 2;
const BUSY_TICKS: u64 = 3;
/// Exit without replying.
const EXIT: u64 = 3;

const PASSED_VALUE: u64 = 0x5eed_cafe;
const ROUND_TRIPS: u64 = 1000;
const CHILD_QUOTA: u64 = 48;

fn main(_argument: u64) -> u64 {
    let (shared, _) = user::frame_allocate(0).expect("allocate the shared page");
    user::map(
        shared,
        Handle::SELF_ENVIRONMENT,
        SHARED_PAGE,
        MapFlags::WRITE,
    )
    .expect("map the shared page");
    let server = start_server(shared);
    let arithmetic = Handle::from_raw(read_u64(ARITHMETIC_HANDLE));
    let control = Handle::from_raw(read_u64(CONTROL_HANDLE));
    let client = Client {
        server: server.environment(),
    };

    let (results, returned) = client
        .call(arithmetic, [6, 7], None)
        .expect("call the server");
    assert_eq!(results, [13, 42], "the server computes from the arguments");
    assert_eq!(returned, None, "no capability came back");
    ok("call/reply round trip: [6, 7] -> [6 + 7, 6 * 7]");

    capabilities_pass_both_ways(&client, control);
    many_round_trips(&client, arithmetic);
    queued_callers_are_served_in_order(&client, arithmetic, control, shared);
    refusals(&client, arithmetic, control);
    a_server_that_goes_away(&client, arithmetic, control, server);
    check::all_passed("call-test");
    0
}

/// Where the parent writes each queued caller's handle for the arithmetic endpoint.
const CALLER_ENDPOINTS: u64 = SHARED_PAGE + 0x800;

/// A queued caller: calls the server with its place in the queue.
fn queued_caller(place: u64) -> u64 {
    let endpoint = Handle::from_raw(read_u64(CALLER_ENDPOINTS + 8 * place));
    let ([sum, _], _) =
        user::call_endpoint(endpoint, [QUEUED_BASE + place, 0], None).expect("queued caller: call");
    assert_eq!(sum, QUEUED_BASE + place);
    0
}

/// While the server stays busy, callers start one after another and each blocks in its
/// queue; some are destroyed while they wait (the first, one in the middle, the last) and
/// one more joins; then the server takes those left in the order they came.
fn queued_callers_are_served_in_order(
    client: &Client,
    arithmetic: Handle,
    control: Handle,
    shared: Handle,
) {
    write_u64(SERVED_COUNT, 0);
    client
        .call(control, [STAY_BUSY, 0], None)
        .expect("ask the server to stay busy until told");
    let queue = |place: u64| {
        let child = Child::create(CHILD_QUOTA).expect("create a caller");
        user::map(shared, child.environment(), SHARED_PAGE, MapFlags::WRITE)
            .expect("share the page");
        let theirs = user::capability_grant(arithmetic, child.environment(), Rights::CALL)
            .expect("grant the caller the endpoint");
        write_u64(CALLER_ENDPOINTS + 8 * place, theirs.to_raw());
        child.start(queued_caller, place).expect("start the caller");
        // It runs until it blocks: in the server's queue, behind the ones before it.
        child.run_until_blocked();
        child
    };
    let mut callers: [Option<Child>; QUEUED_CALLERS as usize] =
        core::array::from_fn(|place| Some(queue(place as u64)));
    for place in DESTROYED_WHILE_QUEUED {
        if let Some(child) = callers[place as usize].take() {
            child.destroy();
        }
    }
    let last = queue(QUEUED_CALLERS);
    assert_eq!(read_u64(BUSY), 1, "the server was busy the whole time");
    write_u64(BUSY, 0);
    for child in callers.iter().flatten().chain([&last]) {
        child.wait();
    }
    let served: [u64; SERVED_IN_ORDER.len()] =
        core::array::from_fn(|index| read_u64(SERVED + 8 * index as u64) - QUEUED_BASE);
    assert_eq!(read_u64(SERVED_COUNT), SERVED_IN_ORDER.len() as u64);
    assert_eq!(served, SERVED_IN_ORDER);
    ok(format_args!(
        "callers queued behind a busy server were served first come, first served: {served:?}, \
         after {DESTROYED_WHILE_QUEUED:?} were destroyed while they waited"
    ));
}

// ---------------------------------------------------------------------------------------
// The server

/// `parent` is the server's handle for the parent's environment, with `GIVE` only.
fn server(parent: u64) -> u64 {
    let parent = Handle::from_raw(parent);
    let endpoint_rights = Rights::CALL | Rights::GRANT | Rights::REVOKE;
    for (tag, word) in [
        (ARITHMETIC_TAG, ARITHMETIC_HANDLE),
        (CONTROL_TAG, CONTROL_HANDLE),
    ] {
        let endpoint = user::endpoint_create(tag).expect("create an endpoint");
        let theirs = user::capability_grant(endpoint, parent, endpoint_rights)
            .expect("grant the endpoint to the parent");
        write_u64(word, theirs.to_raw());
    }
    write_u64(READY, 1);
    loop {
        let call = match user::wait(Event::CALL, 0) {
            Ok(Wakeup::Call(call)) => call,
            other => panic!("server: wait(CALL) returned {other:?}"),
        };
        if call.entry == ARITHMETIC_TAG && call.arguments[0] >= QUEUED_BASE {
            let count = read_u64(SERVED_COUNT);
            write_u64(SERVED + 8 * count, call.arguments[0]);
            write_u64(SERVED_COUNT, count + 1);
        }
        let stay_busy = call.entry == CONTROL_TAG && call.arguments[0] == STAY_BUSY;
        if stay_busy {
            write_u64(BUSY, 1);
        }
        let (results, capability) = serve(&call);
        user::reply(results, capability).expect("server: reply");
        if stay_busy {
            // Busy elsewhere: asleep, not waiting for calls.
            match call.arguments[1] {
                0 => {
                    while read_u64(BUSY) == 1 {
                        let _ = user::wait(Event::TIMER, 1);
                    }
                }
                ticks => {
                    let _ = user::wait(Event::TIMER, ticks);
                }
            }
            write_u64(BUSY, 0);
        }
    }
}

/// What the server answers to `call`.
fn serve(call: &IncomingCall) -> ([u64; 2], Option<Handle>) {
    let [first, second] = call.arguments;
    match (call.entry, first) {
        (ARITHMETIC_TAG, _) => (
            [first.wrapping_add(second), first.wrapping_mul(second)],
            None,
        ),
        (CONTROL_TAG, READ_FRAME) => {
            let passed = call
                .capability
                .expect("server: READ_FRAME without a capability");
            let rights = user::capability_identify(passed)
                .expect("server: identify the passed capability")
                .rights;
            user::map(
                passed,
                Handle::SELF_ENVIRONMENT,
                SERVER_RECEIVED_PAGE,
                MapFlags::empty(),
            )
            .expect("server: map the passed frame");
            let value = read_u64(SERVER_RECEIVED_PAGE);
            memory::unmap(Handle::SELF_ENVIRONMENT, SERVER_RECEIVED_PAGE).expect("unmap");

            let (answer, _) = user::frame_allocate(0).expect("server: allocate a frame");
            user::map(
                answer,
                Handle::SELF_ENVIRONMENT,
                SERVER_RETURNED_PAGE,
                MapFlags::WRITE,
            )
            .expect("server: map its frame");
            write_u64(SERVER_RETURNED_PAGE, value + 1);
            memory::unmap(Handle::SELF_ENVIRONMENT, SERVER_RETURNED_PAGE).expect("unmap");
            ([value, u64::from(rights.bits())], Some(answer))
        }
        (CONTROL_TAG, STAY_BUSY) => ([0, 0], None),
        (CONTROL_TAG, EXIT) => user::exit(0),
        (entry, _) => panic!("server: call with entry tag {entry:#x}, arguments {first} {second}"),
    }
}

/// A started server whose endpoints' handles are in the shared page.
fn start_server(shared: Handle) -> Child {
    let child = Child::create(CHILD_QUOTA).expect("create the server");
    user::map(shared, child.environment(), SHARED_PAGE, MapFlags::WRITE).expect("share the page");
    // GIVE lets the server grant capabilities to us, and nothing else.
    let parent =
        user::capability_grant(Handle::SELF_ENVIRONMENT, child.environment(), Rights::GIVE)
            .expect("grant the server a capability for the parent");
    child
        .start(server, parent.to_raw())
        .expect("start the server");
    yield_until("the server is ready", || read_u64(READY) == 1);
    child
}

// ---------------------------------------------------------------------------------------
// The client

struct Client {
    /// The server's environment: to give it the CPU when it is not waiting yet.
    server: Handle,
}

impl Client {
    /// Calls through `endpoint`: if the server is not back in `wait` yet, the call waits
    /// in the kernel's queue until it is.
    fn call(
        &self,
        endpoint: Handle,
        arguments: [u64; 2],
        capability: Option<Handle>,
    ) -> Result<([u64; 2], Option<Handle>), Error> {
        user::call_endpoint(endpoint, arguments, capability)
    }
}

fn capabilities_pass_both_ways(client: &Client, control: Handle) {
    let (frame, _) = user::frame_allocate(0).expect("allocate a frame");
    user::map(
        frame,
        Handle::SELF_ENVIRONMENT,
        PARENT_PASSED_PAGE,
        MapFlags::WRITE,
    )
    .expect("map it");
    write_u64(PARENT_PASSED_PAGE, PASSED_VALUE);
    // The server gets it read-only: the rights travel with the capability.
    let read_only = Rights::READ | Rights::MAP | Rights::GRANT;
    let passed = user::capability_derive(frame, read_only).expect("derive");
    let (results, returned) = client
        .call(control, [READ_FRAME, 0], Some(passed))
        .expect("call with a capability");
    assert_eq!(results[0], PASSED_VALUE, "the server read the passed frame");
    assert_eq!(
        Rights::from_bits(results[1] as u32),
        Some(read_only),
        "the passed capability keeps its rights"
    );
    ok("a frame capability passed with a call: the server mapped it and read 0x5eedcafe");
    let returned = returned.expect("a capability came back with the reply");
    user::map(
        returned,
        Handle::SELF_ENVIRONMENT,
        PARENT_RETURNED_PAGE,
        MapFlags::empty(),
    )
    .expect("map the returned frame");
    assert_eq!(read_u64(PARENT_RETURNED_PAGE), PASSED_VALUE + 1);
    ok("a frame capability passed back with the reply, mapped and read");
    memory::drop_capability(returned).expect("drop the returned frame");
    memory::drop_capability(frame).expect("drop the passed frame");
}

fn many_round_trips(client: &Client, arithmetic: Handle) {
    let (tick_before, calls_before) = (facts::ticks(), facts::counter(Counter::ProtectedCalls));
    for round in 0..ROUND_TRIPS {
        let arguments = [round, round * 3 + 1];
        let (results, _) = client
            .call(arithmetic, arguments, None)
            .expect("call the server");
        assert_eq!(
            results,
            [arguments[0] + arguments[1], arguments[0] * arguments[1]],
            "round trip {round}"
        );
    }
    let calls = facts::counter(Counter::ProtectedCalls) - calls_before;
    assert!(
        calls >= ROUND_TRIPS,
        "the kernel counted {calls} protected calls"
    );
    ok(format_args!(
        "{ROUND_TRIPS} call/reply round trips in {} ticks ({calls} protected calls counted)",
        facts::ticks() - tick_before
    ));
}

fn refusals(client: &Client, arithmetic: Handle, control: Handle) {
    client
        .call(control, [STAY_BUSY, BUSY_TICKS], None)
        .expect("ask the server to stay busy");
    assert_eq!(read_u64(BUSY), 1, "the server is busy after its reply");
    let (results, _) = user::call_endpoint(arithmetic, [6, 7], None)
        .expect("a call to a busy server waits its turn");
    assert_eq!(results, [13, 42]);
    assert_eq!(read_u64(BUSY), 0, "answered only once the server was done");
    ok(
        "a call to a busy server waits in the kernel until the server waits again, then is answered",
    );
    expect_error(
        "a reply with no call being served",
        user::reply([1, 2], None),
        Error::NoCaller,
    );

    let (frame, _) = user::frame_allocate(0).expect("allocate a frame");
    expect_error(
        "a call through a frame capability",
        user::call_endpoint(frame, [1, 2], None),
        Error::WrongKind,
    );
    expect_error(
        "a call through an environment capability",
        user::call_endpoint(client.server, [1, 2], None),
        Error::WrongKind,
    );
    let ungrantable = user::capability_derive(frame, Rights::READ | Rights::MAP).expect("derive");
    expect_error(
        "passing a capability without GRANT",
        client.call(control, [READ_FRAME, 0], Some(ungrantable)),
        Error::MissingRights,
    );
    memory::drop_capability(frame).expect("drop the frame");

    let derived = user::capability_derive(arithmetic, Rights::CALL).expect("derive");
    let (results, _) = client
        .call(derived, [2, 3], None)
        .expect("call through a derived endpoint");
    assert_eq!(results, [5, 6]);
    memory::revoke_capability(arithmetic).expect("revoke what was derived");
    expect_error(
        "a call through a revoked endpoint",
        user::call_endpoint(derived, [2, 3], None),
        Error::StaleHandle,
    );
    client
        .call(arithmetic, [2, 3], None)
        .expect("the endpoint revoked from still works");
}

fn a_server_that_goes_away(client: &Client, arithmetic: Handle, control: Handle, server: Child) {
    expect_error(
        "a call whose server exits before replying",
        client.call(control, [EXIT, 0], None),
        Error::PeerGone,
    );
    assert!(!server.is_alive(), "the server exited");
    expect_error(
        "a call through the endpoint of a server that is gone",
        user::call_endpoint(arithmetic, [1, 2], None),
        Error::StaleHandle,
    );
    drop(server);
}
