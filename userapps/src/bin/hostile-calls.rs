//! Capabilities passed through `Call` and `Reply` are checked where they are taken, and a
//! reply to a caller that is gone passes nothing.
//!
//! This environment is the server of an endpoint; each child calls it once, its way:
//!
//! | child | passes | must get |
//! |---|---|---|
//! | self-passer | `SELF_ENVIRONMENT` | its call served; the server holds a capability naming the caller, not itself |
//! | stale passer | a frame capability it dropped | `StaleHandle`, and the server hears no call |
//! | ungrantable passer | a copy of a frame without `GRANT` | `MissingRights`, and the server hears no call |
//! | queued passer | a frame the server revokes while the call waits in its queue | a typed error when the server next waits, which hears no call |
//! | dead caller | nothing; the server destroys it and replies with a frame | the reply refused with `PeerGone`, nothing passed |
//!
//! And `Reply` with nobody to answer is `NoCaller`. A witness runs throughout; when all
//! are gone every frame and byte of kernel memory is back.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::syscall::{CapabilityKind, EnvironmentAccount, EnvironmentState, Event};
use exo_abi::user::Wakeup;
use exo_abi::{Error, Handle, Rights, user};
use userapps::hostile::conservation::Baseline;
use userapps::hostile::shared::Words;
use userapps::hostile::witness::Witness;
use userapps::layout::MANAGED_START;
use userapps::spawn::Child;
use userapps::{check, facts, memory};

userapps::entry!(main);

const CHILD_QUOTA: u64 = 64;
const TAG: u64 = 0xca11;
/// How long anything may take, in ticks.
const PATIENCE_TICKS: u64 = 20_000;
/// How long the server listens for a call that must not come, in ticks.
const QUIET_TICKS: u64 = 30;

/// The page parent and child share: the child's endpoint and frame handles, its result
/// (0 or an error code) and 1 once it has one.
const SHARED: Words = Words::at(MANAGED_START + 0x100 * exo_abi::layout::PAGE_SIZE);
const ENDPOINT: u64 = 0;
const FRAME: u64 = 1;
const RESULT: u64 = 2;
const DONE: u64 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attack {
    SelfPasser,
    StalePasser,
    UngrantablePasser,
    QueuedPasser,
    DeadCaller,
}

impl Attack {
    const ALL: [Attack; 5] = [
        Attack::SelfPasser,
        Attack::StalePasser,
        Attack::UngrantablePasser,
        Attack::QueuedPasser,
        Attack::DeadCaller,
    ];

    fn from_number(number: u64) -> Self {
        Self::ALL
            .into_iter()
            .find(|caller| *caller as u64 == number)
            .expect("a caller's number")
    }
}

fn main(_argument: u64) -> u64 {
    let shared_page = SHARED.allocate().expect("allocate the shared page");
    let baseline = Baseline::after_a_witness_and_a_child(CHILD_QUOTA);
    let endpoint = user::endpoint_create(TAG).expect("create the endpoint");
    let witness = Witness::start().expect("start the witness");
    witness.expect_progress(1, PATIENCE_TICKS, "it started");

    assert_eq!(user::reply([0, 0], None), Err(Error::NoCaller));
    check::ok("a Reply with no call being served is refused with NoCaller");
    for caller in Attack::ALL {
        SHARED.clear();
        let child = Child::create(CHILD_QUOTA).expect("create a child");
        SHARED
            .share_with(shared_page, child.environment())
            .expect("share the page");
        let granted = user::capability_grant(endpoint, child.environment(), Rights::CALL)
            .expect("grant the endpoint");
        SHARED.write(ENDPOINT, granted.to_raw());
        let frame = match caller {
            Attack::QueuedPasser => {
                let (frame, _) = user::frame_allocate(0).expect("allocate a frame");
                let rights = Rights::READ | Rights::MAP | Rights::GRANT;
                let theirs = user::capability_grant(frame, child.environment(), rights)
                    .expect("grant the frame");
                SHARED.write(FRAME, theirs.to_raw());
                Some(frame)
            }
            _ => None,
        };
        child
            .start(calling, caller as u64)
            .expect("start the child");
        serve(caller, &child, frame);
        if let Some(frame) = frame {
            memory::drop_capability(frame).expect("drop the frame");
        }
        witness.check_unharmed("a call");
        child.destroy();
    }
    witness.expect_progress(1, PATIENCE_TICKS, "the calls");
    witness.stop();
    memory::drop_capability(endpoint).expect("drop the endpoint");
    baseline.expect_came_back("hostile-calls", "every hostile call");
    check::all_passed("hostile-calls");
    0
}

/// Serves (or refuses to hear) `caller`'s call and checks how it ended.
fn serve(caller: Attack, child: &Child, frame: Option<Handle>) {
    let held = || {
        user::environment_info(
            Handle::SELF_ENVIRONMENT,
            EnvironmentAccount::CapabilitiesHeld,
        )
        .expect("own capabilities")
    };
    match caller {
        Attack::SelfPasser => {
            let call = next_call();
            let passed = call.capability.expect("a capability passed");
            let info = user::capability_identify(passed).expect("identify it");
            let child_id = child
                .account(EnvironmentAccount::Id)
                .expect("the child's id");
            assert_eq!(
                (info.kind, info.value),
                (CapabilityKind::Environment, child_id)
            );
            user::reply([1, 0], None).expect("reply");
            assert_eq!(result(child), 0, "the self-passer's call");
            memory::drop_capability(passed).expect("drop the passed capability");
            check::ok("SELF_ENVIRONMENT passed through a call names the caller");
        }
        Attack::StalePasser | Attack::UngrantablePasser => {
            let before = held();
            let expected = match caller {
                Attack::StalePasser => Error::StaleHandle,
                _ => Error::MissingRights,
            };
            let heard = user::wait(Event::CALL | Event::TIMER, QUIET_TICKS);
            assert!(
                matches!(heard, Ok(Wakeup::Timer)),
                "{caller:?}: heard {heard:?}"
            );
            assert_eq!(result(child), expected.code(), "{caller:?}");
            assert_eq!(held(), before, "{caller:?}: the server's table changed");
            check::ok(format_args!(
                "{caller:?}: refused with {expected:?}, nothing passed"
            ));
        }
        Attack::QueuedPasser => {
            let before = held();
            wait_for(|| {
                child.account(EnvironmentAccount::State) == Ok(EnvironmentState::Calling as u64)
            });
            memory::revoke_capability(frame.expect("the frame")).expect("revoke the frame");
            let heard = user::wait(Event::CALL | Event::TIMER, QUIET_TICKS);
            assert!(
                matches!(heard, Ok(Wakeup::Timer)),
                "{caller:?}: heard {heard:?}"
            );
            let code = result(child);
            assert!(
                code == Error::InvalidHandle.code() || code == Error::StaleHandle.code(),
                "{caller:?}: its call ended with {code}"
            );
            assert_eq!(held(), before, "{caller:?}: the server's table changed");
            check::ok("a capability revoked while its call was queued is not passed");
        }
        Attack::DeadCaller => {
            let call = next_call();
            assert_eq!(call.capability, None);
            let (gift, _) = user::frame_allocate(0).expect("allocate a frame");
            user::environment_destroy(child.environment()).expect("destroy the caller");
            let before = held();
            assert_eq!(user::reply([0, 0], Some(gift)), Err(Error::PeerGone));
            assert_eq!(held(), before, "the server's table changed");
            assert!(user::capability_identify(gift).is_ok(), "the gift is gone");
            memory::drop_capability(gift).expect("drop the gift");
            assert_eq!(user::reply([0, 0], None), Err(Error::NoCaller));
            check::ok("a reply to a caller that died is refused with PeerGone, passing nothing");
        }
    }
}

/// Waits for the next call.
fn next_call() -> exo_abi::user::IncomingCall {
    match user::wait(Event::CALL | Event::TIMER, PATIENCE_TICKS) {
        Ok(Wakeup::Call(call)) => {
            assert_eq!(call.entry, TAG);
            call
        }
        other => panic!("no call came: {other:?}"),
    }
}

/// Waits for the child's result.
fn result(child: &Child) -> u64 {
    wait_for(|| SHARED.read(DONE) == 1 || !child.is_alive());
    assert_eq!(SHARED.read(DONE), 1, "the child died");
    SHARED.read(RESULT)
}

fn wait_for(condition: impl Fn() -> bool) {
    let deadline = facts::ticks() + PATIENCE_TICKS;
    while !condition() {
        assert!(facts::ticks() < deadline, "waited too long");
        let _ = user::wait(Event::TIMER, 1);
    }
}

/// A child: calls the parent once, its way, and reports how the call ended.
fn calling(caller: u64) -> u64 {
    let caller = Attack::from_number(caller);
    let endpoint = Handle::from_raw(SHARED.read(ENDPOINT));
    let passed = match caller {
        Attack::SelfPasser => Some(Handle::SELF_ENVIRONMENT),
        Attack::StalePasser => {
            let (frame, _) = user::frame_allocate(0).expect("allocate a frame");
            memory::drop_capability(frame).expect("drop it");
            Some(frame)
        }
        Attack::UngrantablePasser => {
            let (frame, _) = user::frame_allocate(0).expect("allocate a frame");
            Some(user::capability_derive(frame, Rights::READ | Rights::MAP).expect("derive"))
        }
        Attack::QueuedPasser => Some(Handle::from_raw(SHARED.read(FRAME))),
        Attack::DeadCaller => None,
    };
    let code = match user::call_endpoint(endpoint, [caller as u64, 0], passed) {
        Ok(_) => 0,
        Err(error) => error.code(),
    };
    SHARED.write(RESULT, code);
    SHARED.write(DONE, 1);
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}
