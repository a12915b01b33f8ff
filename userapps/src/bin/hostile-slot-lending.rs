//! A slot lent by one environment to another is the lender's to take back: the borrower
//! keeps it not a moment longer, however the lender lets go, and while it has it runs in
//! it and no more.
//!
//! A spinner that never yields borrows one slot at a time from children lent 2 slots
//! each (this environment grants each a capability for the spinner with `CONTROL`):
//!
//! | lender | lets go by | must get |
//! |---|---|---|
//! | a holder | being destroyed | the spinner runs in exactly its slot each round while lent it; once the lender is destroyed it holds none, the slot is free at once and this environment's slot account is back |
//! | a dropper | dropping the slot's capability | the spinner holds none once the drop returns |
//! | a passer | passing the slot's capability through a call first, then being destroyed | the copy received names the slot and dropping it frees nothing; destroying the lender does |
//! | a patron of its parent | lending this environment a slot, then being destroyed | this environment holds the slot while the lender lives, none after |
//!
//! A witness runs throughout; at the end every slot, frame and byte of kernel memory is
//! back.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::syscall::{ANY_SLOT, CapabilityKind, EnvironmentAccount, Event};
use exo_abi::user::{self, Lend, Wakeup};
use exo_abi::{Error, Handle, Rights};
use userapps::check::{self, ok};
use userapps::hostile::conservation::Baseline;
use userapps::hostile::shared::Words;
use userapps::hostile::witness::Witness;
use userapps::layout::MANAGED_START;
use userapps::spawn::Child;
use userapps::{facts, memory};

userapps::entry!(main);

/// The page this environment, the spinner and the lenders share.
const SHARED: Words = Words::at(MANAGED_START);
/// The spinner's rounds and its facts page's `slots_run`.
const ROUNDS: u64 = 0;
const SLOTS_RUN: u64 = 1;
/// A lender's capability for the environment it lends to, and this environment's
/// endpoint (for the passer).
const TARGET: u64 = 8;
const ENDPOINT: u64 = 9;
/// A lender's reports: its `SlotAllocate` (`OK` or an error code) and the slot's index;
/// the dropper's drop.
const ALLOCATED: u64 = 10;
const SLOT_INDEX: u64 = 11;
const DROPPED: u64 = 12;
/// Set by this environment when the dropper may drop.
const GO: u64 = 13;
/// What a lender reports for a call that succeeded (never an error code).
const OK: u64 = 1 << 40;

const CHILD_QUOTA: u64 = 64;
const LENT_SLOTS: u64 = 2;
/// Rounds of the slice vector the spinner's share is counted over.
const MEASURED_ROUNDS: u64 = 10;
/// How long anything may take, in ticks.
const PATIENCE_TICKS: u64 = 20_000;
const TAG: u64 = 0x5107;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lender {
    Holder,
    Dropper,
    Passer,
    Patron,
}

impl Lender {
    const ALL: [Lender; 4] = [
        Lender::Holder,
        Lender::Dropper,
        Lender::Passer,
        Lender::Patron,
    ];

    fn from_number(number: u64) -> Self {
        Self::ALL
            .into_iter()
            .find(|lender| *lender as u64 == number)
            .expect("a lender's number")
    }
}

fn main(_argument: u64) -> u64 {
    let page = SHARED.allocate().expect("allocate the shared page");
    let baseline = Baseline::after_a_witness_and_a_child(CHILD_QUOTA);
    let witness = Witness::start().expect("start the witness");
    witness.expect_progress(1, PATIENCE_TICKS, "it started");
    let endpoint = user::endpoint_create(TAG).expect("create the endpoint");
    SHARED.clear();
    let spinner = Child::create(CHILD_QUOTA).expect("create the spinner");
    share(page, &spinner);
    spinner.start(spin, 0).expect("start the spinner");

    for lender in Lender::ALL {
        lend(lender, page, endpoint, &spinner);
        witness.check_unharmed("a lent slot");
    }

    spinner.destroy();
    witness.expect_progress(1, PATIENCE_TICKS, "the lending");
    witness.stop();
    memory::drop_capability(endpoint).expect("drop the endpoint");
    baseline.expect_came_back("hostile-slot-lending", "every lent slot");
    check::all_passed("hostile-slot-lending");
    0
}

/// One lender lends one slot and lets go its way.
fn lend(lender: Lender, page: Handle, endpoint: Handle, spinner: &Child) {
    for word in [ALLOCATED, SLOT_INDEX, DROPPED, GO] {
        SHARED.write(word, 0);
    }
    let own_slots = || own(EnvironmentAccount::SlotsCharged);
    let charged_before = own_slots();
    let child = Child::create_lending(Lend {
        frames: CHILD_QUOTA,
        slots: LENT_SLOTS,
        ..Lend::default()
    })
    .expect("create a lender");
    share(page, &child);
    let (borrower, rights) = match lender {
        Lender::Patron => (Handle::SELF_ENVIRONMENT, Rights::CONTROL),
        _ => (spinner.environment(), Rights::CONTROL),
    };
    let theirs =
        user::capability_grant(borrower, child.environment(), rights).expect("grant the target");
    SHARED.write(TARGET, theirs.to_raw());
    if lender == Lender::Passer {
        let theirs =
            user::capability_grant(endpoint, child.environment(), Rights::CALL).expect("grant");
        SHARED.write(ENDPOINT, theirs.to_raw());
    }
    child
        .start(lending, lender as u64)
        .expect("start the lender");
    let passed = match lender {
        Lender::Passer => {
            let call = match user::wait(Event::CALL | Event::TIMER, PATIENCE_TICKS) {
                Ok(Wakeup::Call(call)) => call,
                other => panic!("no call came: {other:?}"),
            };
            user::reply([0, 0], None).expect("reply");
            call.capability
        }
        _ => None,
    };
    wait_for("the lender to allocate", || SHARED.read(ALLOCATED) != 0);
    assert_eq!(SHARED.read(ALLOCATED), OK, "{lender:?}: its SlotAllocate");
    let index = SHARED.read(SLOT_INDEX);
    let held = |environment: Handle| {
        user::environment_info(environment, EnvironmentAccount::SlotsHeld).expect("slots held")
    };
    let borrower_held = || held(borrower);
    assert_eq!(borrower_held(), 1, "{lender:?}: the borrower's slots");

    match lender {
        Lender::Holder => {
            let runs = spinner_runs();
            assert!(
                (MEASURED_ROUNDS - 1..=MEASURED_ROUNDS + 1).contains(&runs),
                "the spinner ran in {runs} slots in {MEASURED_ROUNDS} rounds holding one"
            );
            child.destroy();
            assert_eq!(borrower_held(), 0, "the spinner kept the slot");
            assert_eq!(own_slots(), charged_before, "the lent slots came back");
            // The slot is free: it can be bound again, here to an environment never started.
            let idle = user::environment_create(5).expect("create an idle environment");
            let (slot, again) = user::slot_allocate(idle, index).expect("take the slot again");
            assert_eq!(again, index);
            memory::drop_capability(slot).expect("drop the slot");
            user::environment_destroy(idle).expect("destroy the idle environment");
            ok(format_args!(
                "a spinner lent one slot ran in {runs} of {MEASURED_ROUNDS} rounds, and lost \
                 the slot the moment its lender was destroyed"
            ));
        }
        Lender::Dropper => {
            SHARED.write(GO, 1);
            wait_for("the lender to drop", || SHARED.read(DROPPED) != 0);
            assert_eq!(SHARED.read(DROPPED), OK, "the drop");
            assert_eq!(borrower_held(), 0, "the spinner kept the dropped slot");
            child.destroy();
            ok("a slot whose lender dropped its capability is gone from the borrower at once");
        }
        Lender::Passer => {
            let passed = passed.expect("a slot passed");
            let info = user::capability_identify(passed).expect("identify it");
            assert_eq!((info.kind, info.value), (CapabilityKind::Slot, index));
            memory::drop_capability(passed).expect("drop the copy");
            assert_eq!(borrower_held(), 1, "dropping a copy freed the slot");
            child.destroy();
            assert_eq!(borrower_held(), 0, "the spinner kept the passed slot");
            ok(
                "a slot capability passed through a call names the slot; dropping the copy \
                frees nothing, destroying the lender frees it",
            );
        }
        Lender::Patron => {
            child.destroy();
            assert_eq!(borrower_held(), 0, "this environment kept the slot");
            ok("a slot a child lent its parent is the parent's until the child is destroyed");
        }
    }
    assert_eq!(own_slots(), charged_before, "{lender:?}: slots charged");
}

/// The spinner's slots over `MEASURED_ROUNDS` rounds of the slice vector.
fn spinner_runs() -> u64 {
    let before = SHARED.read(SLOTS_RUN);
    let end = facts::ticks() + MEASURED_ROUNDS * facts::slots();
    while facts::ticks() < end {
        let _ = user::wait(Event::TIMER, 1);
    }
    SHARED.read(SLOTS_RUN) - before
}

/// The spinner: never yields, counts its rounds and its slots.
fn spin(_argument: u64) -> u64 {
    loop {
        SHARED.add(ROUNDS, 1);
        SHARED.write(SLOTS_RUN, facts::slots_run());
    }
}

/// A lender: binds a slot to its target and lets go as `lender` says.
fn lending(lender: u64) -> u64 {
    let lender = Lender::from_number(lender);
    let target = Handle::from_raw(SHARED.read(TARGET));
    let allocated = user::slot_allocate(target, ANY_SLOT);
    let slot = match allocated {
        Ok((slot, index)) => {
            SHARED.write(SLOT_INDEX, index);
            Some(slot)
        }
        Err(_) => None,
    };
    match (lender, slot) {
        (Lender::Passer, Some(slot)) => {
            let endpoint = Handle::from_raw(SHARED.read(ENDPOINT));
            let _ = user::call_endpoint(endpoint, [0, 0], Some(slot));
        }
        (Lender::Dropper, Some(slot)) => {
            SHARED.write(ALLOCATED, result_word(allocated.map(|_| ())));
            while SHARED.read(GO) == 0 {
                let _ = user::wait(Event::TIMER, 1);
            }
            SHARED.write(DROPPED, result_word(memory::drop_capability(slot)));
        }
        _ => {}
    }
    SHARED.write(ALLOCATED, result_word(allocated.map(|_| ())));
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}

fn own(account: EnvironmentAccount) -> u64 {
    user::environment_info(Handle::SELF_ENVIRONMENT, account).expect("own account")
}

fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = facts::ticks() + PATIENCE_TICKS;
    while !condition() {
        assert!(facts::ticks() < deadline, "waited too long for {what}");
        let _ = user::wait(Event::TIMER, 1);
    }
}

/// A result as a lender reports it: `OK`, or the error's code.
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
