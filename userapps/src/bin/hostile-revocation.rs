//! Revocation cannot be dodged: what counts as given back is how far an environment's
//! holdings fell from what it held when asked, and the deadline takes the rest by force.
//!
//! Once, a request for N frames counted as answered when the environment allocated
//! N fresh frames and dropped them: its holdings never moved and nothing was taken. Each
//! child here holds 16 frames of its own (mapped in its managed window) and is asked for
//! some of them with a deadline of 30 ticks; the parent then reads its accounts:
//!
//! | child | answers the request by | must end with |
//! |---|---|---|
//! | honest | dropping 8 of its 16 frames | 8 given back, none taken by force |
//! | churner | allocating 8 fresh frames and dropping them, over and over | none given back, ≥ 8 taken, holdings 8 lower |
//! | copier | deriving 8 copies of its capabilities and dropping the copies | the same |
//! | re-grower | dropping 8 frames, then allocating 8 fresh ones and keeping them | given back and taken ≥ 8 together |
//! | sleeper | nothing: no upcall handler, asleep in `Wait` | ≥ 4 taken, holdings 4 lower |
//! | hoarder | nothing, asked for 1,000 of its 16 | all 16 taken, alive |
//! | stasher | allocating runs of 1,024 frames over and over, and, once its scheduler upcall finds it in a `FrameAllocate` stopped part-way, never going back to it: the run, taken and charged, out of its table's sight | that run taken by force (≥ 1,024), holdings below 1,024 |
//! | replacer | asking for itself, from its handler, one frame within 600,000 ticks: every environment holds `CONTROL` over itself, and a request replaced any open one | its own request refused (`InvalidState`); as the churner, 8 taken by force at the parent's deadline |
//! | grower | nothing; its highest frame has [`GROWER_COPIES`] copies, each mapped, and it derives from them in turn, as fast as it can, all the while | that frame taken by force, and no derivation succeeding past the deadline: the take runs a share at a time, and between shares the grower runs no more |
//! | honest scheduler | as the honest child, from a handler also entered at every slot start (`SCHEDULER`, as a library OS with threads has), asleep in `Wait` when asked | 8 given back, none taken (it was never told once: the slot start's upcall found it first, every time) |
//! | honest caller | as the honest child, blocked in a `Call` the parent (the server) never takes when asked | 8 given back, none taken (its queued call is withdrawn so that it hears the request, and made again after) |
//! | late stasher | as the stasher, but only once asked: its run begun after the request | the run taken, and 8 of its own frames (the run alone, taken first, once stood for the frames asked) |
//! | child with an accomplice | nothing; it gives a sibling (the accomplice) `CONTROL` over itself, and the sibling asks it, every tick, for one frame within 600,000 ticks | the sibling's replacement of the parent's request refused (`InvalidState`: only the maker of a request from outside, or one above it, may replace it); 8 taken by force (a request from outside once fell to any holder of `CONTROL`) |
//! | sacrificer | destroying, in its handler, an empty child it lent 64 frames | none given back, 8 of its own frames taken (a child counted by what it was lent once stood for them) |
//! | asked for everything | `u64::MAX` frames asked; it allocates 4 more and keeps them | every frame it holds taken (a sum that wrapped once took 3), alive |
//! | hider | nothing; it holds no frame of its own: a child of its own (`chain::hider`) allocated 16 and granted it copies | ≥ 8 taken: the child, which its holdings count by what it was lent, destroyed, and the copies gone with its frames (nothing was taken once: it held none) |
//! | spinning hider | as the hider, but its child spins (`chain::spinning_hider`); asked last, with no witness, so that at the deadline the child's address space is the one loaded | as the hider (the take once took that address space apart under the CPU: a kernel panic) |
//!
//! The grower is the holder that would keep a take by force from ending: the take removes
//! the frame's copies a share at a time, and a holder running between shares could hang new
//! copies below those not yet reached as fast as they went. An environment whose take is
//! under way runs no more until it is done.
//!
//! Then a creator whose child gave `CONTROL` over itself to an environment outside the
//! creator's family, which asked first for one frame within 600,000 ticks, must still be
//! able to ask its child for frames (it was `InvalidState`: only the maker of a request
//! from outside, or one above the maker, could replace it).
//!
//! And a child that holds no frame of its own but left 40 page tables behind (a frame
//! mapped and unmapped every 2 MiB, then dropped), asked for 8 and never answering, must
//! lose 8 of those tables by force and live on (the take once saw none of them).
//!
//! "Holdings" are its frames charged, read when it was asked and again once it is quiet.
//! The re-grower is not a dodge: its 8 frames were free for the system to hand out
//! between its drop and its allocation, which its quota allows; it only must not be
//! counted twice or lose more than asked.
//! Every child must still be alive after the deadline (it runs on the parent's frames),
//! the witness keeps running, and when all are gone every frame and byte of kernel memory
//! is back.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::MapFlags;
use exo_abi::syscall::{EnvironmentAccount, Event, Sysnum};
use exo_abi::upcall::{UpcallFrame, UpcallReason};
use exo_abi::{Handle, Rights, user};
use userapps::check::{self, ok};
use userapps::hostile::chain;
use userapps::hostile::conservation::Baseline;
use userapps::hostile::shared::Words;
use userapps::hostile::witness::Witness;
use userapps::layout::MANAGED_START;
use userapps::spawn::Child;
use userapps::{facts, memory, println, upcall};

userapps::entry!(main);

const SHARED: Words = Words::at(MANAGED_START);
/// Words of `SHARED`: frames the child holds (once it holds them all), revocation
/// upcalls it received, and 1 once it has stopped changing its holdings after the force.
const HELD: u64 = 0;
const REQUESTS_SEEN: u64 = 1;
const QUIET: u64 = 2;
/// 1 once the stasher's scheduler upcall found it in a stopped `FrameAllocate`.
const STASHED: u64 = 3;
/// The run a stasher allocates: 1,024 frames, about five ticks of zeroing.
const STASHED_RUN: u64 = 1 << 10;
/// Where a child maps its frames, and the fresh ones a re-grower keeps: under one page
/// table with the shared page, so that holdings change by frames alone.
const HELD_PAGES: u64 = MANAGED_START + 0x100 * PAGE_SIZE;
const FRESH_PAGES: u64 = MANAGED_START + 0x180 * PAGE_SIZE;
/// The grower's copies of its highest frame, each mapped at a page of its own from
/// [`GROWN_PAGES`], so that the take has a page to unmap for each; the time-stamp count
/// [`LATE_TICKS`] past its request's deadline (the parent's reckoning); and its counts:
/// copies derived from them after that, and refusals.
const GROWER_COPIES: u64 = 900;
const GROWN_PAGES: u64 = MANAGED_START + 0x400 * PAGE_SIZE;
const GROWER_LATE_TSC: u64 = 4;
const GROWN_LATE: u64 = 5;
const GROWER_REFUSED: u64 = 6;
/// 1 once the replacer asked for itself, and the error code it got (0: none).
const REPLACE_TRIED: u64 = 7;
const REPLACE_ERROR: u64 = 8;
/// The hider's handle for the page of `chain::hider`'s code, and the capabilities it held
/// before it made its child.
const HIDER_CODE: u64 = 9;
const HIDER_HELD_BEFORE: u64 = 10;
/// The honest caller's handle for the endpoint it calls.
const CALLED: u64 = 11;
/// The sacrificer's empty child, and 1 once it destroyed it for a request.
const SACRIFICE: u64 = 12;
const SACRIFICED: u64 = 13;
/// The accomplice's handle for the child's environment (with `GIVE`), the child's
/// capability for itself in the accomplice's table, and 1 once that is there.
const ACCOMPLICE: u64 = 14;
const ACCOMPLICE_CONTROL: u64 = 15;
const ACCOMPLICE_READY: u64 = 16;
/// For the creator and the outsider (`creator_not_locked_out`): the creator's handle for
/// the outsider (with `GIVE`), the outsider's capability for the creator's child (with
/// `CONTROL`), the outsider's request's error code and 1 once made, and the creator's.
const OUTSIDER: u64 = 17;
const OUTSIDER_CONTROL: u64 = 18;
const OUTSIDER_ASKED: u64 = 19;
const OUTSIDER_ERROR: u64 = 20;
const CREATOR_ASKED: u64 = 21;
const CREATOR_ERROR: u64 = 22;
/// An outcome word's value for `Ok`.
const OK: u64 = u64::MAX;
/// For the table leaver (`tables_taken`): 1 once it has left its tables, and how many it
/// leaves, one every 2 MiB from [`TABLES_AT`].
const TABLES_LEFT: u64 = 23;
const TABLES: u64 = 40;
const TABLES_AT: u64 = MANAGED_START + 0x10_0000_0000;
/// Frames the child asked for everything allocates when asked.
const GROWN: u64 = 4;
/// Frames the sacrificer lends its empty child: far more than asked.
const SACRIFICED_QUOTA: u64 = 64;
/// Frames the hider lends its child: its page tables, facts page and the 16 it hides.
const HIDER_CHILD_QUOTA: u64 = 32;
/// Ticks past the deadline after which the grower must not derive: the take begins at the
/// first trap of the deadline's tick, which the parent's reckoning from the time-stamp
/// counter may place up to a tick early.
const LATE_TICKS: u64 = 2;
/// Refusals the grower sees before it goes quiet: its copies are gone by then.
const GROWER_QUIET_AFTER: u64 = 1_000;

const FRAMES_HELD: usize = 16;
const DEADLINE_TICKS: u64 = 30;
/// The time allowed counts again from the upcall, so the request may last twice as long.
const SETTLE_TICKS: u64 = 2 * DEADLINE_TICKS + 20;
/// How long the parent waits for a child to hold its frames, or to go quiet.
const PATIENCE_TICKS: u64 = 20_000;
const CHILD_QUOTA: u64 = 128;

/// The frames a child holds, for its handler to choose from (each child its own copy).
static FRAMES: [AtomicU64; FRAMES_HELD] = [const { AtomicU64::new(0) }; FRAMES_HELD];
/// The grower's copies of its highest frame.
static GROWER_COPY_HANDLES: [AtomicU64; GROWER_COPIES as usize] =
    [const { AtomicU64::new(0) }; GROWER_COPIES as usize];
/// Frames the last request wanted, and the tick of its deadline.
static WANTED: AtomicU64 = AtomicU64::new(0);
static DEADLINE: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    Honest,
    Churner,
    Copier,
    ReGrower,
    Sleeper,
    Hoarder,
    Stasher,
    Replacer,
    Accomplice,
    Grower,
    Hider,
    SpinningHider,
    Scheduler,
    Caller,
    LateStasher,
    Sacrificer,
    Insatiable,
}

impl Behaviour {
    const ALL: [Behaviour; 17] = [
        Behaviour::Honest,
        Behaviour::Churner,
        Behaviour::Copier,
        Behaviour::ReGrower,
        Behaviour::Sleeper,
        Behaviour::Hoarder,
        Behaviour::Stasher,
        Behaviour::Replacer,
        Behaviour::Accomplice,
        Behaviour::Grower,
        Behaviour::Hider,
        Behaviour::SpinningHider,
        Behaviour::Scheduler,
        Behaviour::Caller,
        Behaviour::LateStasher,
        Behaviour::Sacrificer,
        Behaviour::Insatiable,
    ];

    /// The behaviour whose number (`behaviour as u64`) is `number`.
    fn from_number(number: u64) -> Self {
        Self::ALL
            .into_iter()
            .find(|behaviour| *behaviour as u64 == number)
            .expect("a behaviour's number")
    }

    fn name(self) -> &'static str {
        match self {
            Behaviour::Honest => "the honest child",
            Behaviour::Churner => "the churner",
            Behaviour::Copier => "the copier",
            Behaviour::ReGrower => "the re-grower",
            Behaviour::Sleeper => "the sleeper",
            Behaviour::Hoarder => "the hoarder",
            Behaviour::Stasher => "the stasher",
            Behaviour::Replacer => "the replacer",
            Behaviour::Accomplice => "the child with an accomplice",
            Behaviour::Grower => "the grower",
            Behaviour::Hider => "the hider",
            Behaviour::SpinningHider => "the spinning hider",
            Behaviour::Scheduler => "the honest scheduler",
            Behaviour::Caller => "the honest caller",
            Behaviour::LateStasher => "the late stasher",
            Behaviour::Sacrificer => "the sacrificer",
            Behaviour::Insatiable => "the child asked for everything",
        }
    }

    /// Its frame quota: a stasher's allocates runs of 1,024; a grower's brings the kernel
    /// memory for its copies and their mappings.
    fn quota(self) -> u64 {
        match self {
            Behaviour::Stasher | Behaviour::LateStasher | Behaviour::Grower => {
                CHILD_QUOTA + STASHED_RUN
            }
            _ => CHILD_QUOTA,
        }
    }

    /// Whether it holds its frames in a child of its own.
    fn hides(self) -> bool {
        matches!(self, Behaviour::Hider | Behaviour::SpinningHider)
    }

    /// Frames the parent asks for.
    fn asked(self) -> u64 {
        match self {
            Behaviour::Sleeper => 4,
            Behaviour::Hoarder => 1000,
            Behaviour::Insatiable => u64::MAX,
            Behaviour::Grower => 1,
            _ => 8,
        }
    }
}

fn main(_argument: u64) -> u64 {
    let shared_page = SHARED.allocate().expect("allocate the shared page");
    let baseline = Baseline::after_a_witness_and_a_child(CHILD_QUOTA);

    let witness = Witness::start().expect("start the witness");
    for behaviour in Behaviour::ALL {
        if behaviour != Behaviour::SpinningHider {
            run(behaviour, shared_page, Some(&witness));
        }
    }
    creator_not_locked_out(shared_page);
    tables_taken(shared_page);
    witness.expect_progress(1, PATIENCE_TICKS, "every revocation");
    witness.check_unharmed("every revocation");
    witness.stop();
    // Alone, so that nobody else runs when its deadline comes: the CPU is its child's.
    run(Behaviour::SpinningHider, shared_page, None);
    baseline.expect_came_back("hostile-revocation", "every revocation");
    check::all_passed("hostile-revocation");
    0
}

/// A creator whose child gave `CONTROL` over itself to an environment outside the
/// creator's family (here the creator gives it, for the child), which asked the child for
/// one frame within 600,000 ticks first: the creator may still ask the child for frames,
/// replacing that request (once `InvalidState` for ten minutes: only the maker of a
/// request from outside, or one above the maker, could replace it).
fn creator_not_locked_out(shared_page: Handle) {
    SHARED.clear();
    let creator = Child::create(CHILD_QUOTA).expect("create the creator");
    let outsider = Child::create(CHILD_QUOTA).expect("create the outsider");
    for child in [&creator, &outsider] {
        SHARED
            .share_with(shared_page, child.environment())
            .expect("share the page");
    }
    let theirs =
        user::capability_grant(outsider.environment(), creator.environment(), Rights::GIVE)
            .expect("let the creator give to the outsider");
    SHARED.write(OUTSIDER, theirs.to_raw());
    outsider.start(ask_first, 0).expect("start the outsider");
    creator.start(create_and_ask, 0).expect("start the creator");
    let deadline = facts::ticks() + PATIENCE_TICKS;
    while SHARED.read(CREATOR_ASKED) == 0 {
        assert!(
            creator.is_alive() && outsider.is_alive(),
            "the creator or the outsider died"
        );
        assert!(facts::ticks() < deadline, "the creator never asked");
        let _ = user::wait(Event::TIMER, 1);
    }
    let outcome = |word| match SHARED.read(word) {
        OK => Ok(()),
        code => Err(code),
    };
    assert_eq!(outcome(OUTSIDER_ERROR), Ok(()), "the outsider's request");
    assert_eq!(
        outcome(CREATOR_ERROR),
        Ok(()),
        "the creator's request after the outsider's (error code)"
    );
    creator.destroy();
    outsider.destroy();
    check::ok(
        "a creator replaced the request of an environment outside its family that its \
         child had given CONTROL over itself",
    );
}

/// A child that holds no frame of its own, but left [`TABLES`] page tables behind (a
/// frame mapped and unmapped every 2 MiB, then dropped), asked for 8 frames and never
/// answering: 8 of those tables are taken by force, and the child lives on (they were out
/// of the take's sight: it took nothing).
fn tables_taken(shared_page: Handle) {
    SHARED.clear();
    let child = Child::create(CHILD_QUOTA).expect("create the table leaver");
    SHARED
        .share_with(shared_page, child.environment())
        .expect("share the page");
    child
        .start(leave_tables, 0)
        .expect("start the table leaver");
    let deadline = facts::ticks() + PATIENCE_TICKS;
    while SHARED.read(TABLES_LEFT) == 0 {
        assert!(child.is_alive(), "the table leaver died");
        assert!(
            facts::ticks() < deadline,
            "the table leaver never left its tables"
        );
        let _ = user::wait(Event::TIMER, 1);
    }
    let account = |which| {
        child
            .account(which)
            .expect("read the table leaver's accounts")
    };
    let before = account(EnvironmentAccount::FramesCharged);
    assert_eq!(
        account(EnvironmentAccount::FramesHeld),
        0,
        "the table leaver holds frames"
    );
    user::request_frames(child.environment(), 8, DEADLINE_TICKS).expect("ask the table leaver");
    let closed = facts::ticks() + DEADLINE_TICKS + SETTLE_TICKS;
    while facts::ticks() < closed {
        let _ = user::wait(Event::TIMER, 1);
    }
    let taken = account(EnvironmentAccount::FramesTakenByForce);
    let after = account(EnvironmentAccount::FramesCharged);
    println!(
        "hostile-revocation: the table leaver: {taken} taken by force, frames charged \
         {before} -> {after}"
    );
    assert!(child.is_alive(), "the table leaver died");
    assert_eq!(
        (taken, before - after),
        (8, 8),
        "the table leaver's tables taken"
    );
    child.destroy();
    check::ok("8 page tables that mapped nothing taken by force from a child holding no frame");
}

/// The table leaver: maps a frame at every 2 MiB from [`TABLES_AT`] and unmaps it, leaving
/// a page table each, drops the frame, and sleeps.
fn leave_tables(_argument: u64) -> u64 {
    let (frame, _) = user::frame_allocate(0).expect("a frame");
    for table in 0..TABLES {
        let address = TABLES_AT + table * (2 << 20);
        user::map(frame, Handle::SELF_ENVIRONMENT, address, MapFlags::WRITE).expect("map");
        memory::unmap(Handle::SELF_ENVIRONMENT, address).expect("unmap");
    }
    memory::drop_capability(frame).expect("drop the frame");
    SHARED.write(TABLES_LEFT, 1);
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}

/// The creator: makes an empty child, gives the outsider `CONTROL` over it, waits until the
/// outsider has asked it for a frame, then asks it for 8 within 30 ticks.
fn create_and_ask(_argument: u64) -> u64 {
    let child = user::environment_create(5).expect("create the child");
    let outsider = Handle::from_raw(SHARED.read(OUTSIDER));
    let control = user::capability_grant(child, outsider, Rights::CONTROL)
        .expect("give the outsider CONTROL");
    SHARED.write(OUTSIDER_CONTROL, control.to_raw());
    while SHARED.read(OUTSIDER_ASKED) == 0 {
        let _ = user::wait(Event::TIMER, 1);
    }
    let result = user::request_frames(child, 8, DEADLINE_TICKS);
    SHARED.write(CREATOR_ERROR, result.err().map_or(OK, |error| error.code()));
    SHARED.write(CREATOR_ASKED, 1);
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}

/// The outsider: once it holds `CONTROL` over the creator's child, asks it for one frame
/// within 600,000 ticks.
fn ask_first(_argument: u64) -> u64 {
    while SHARED.read(OUTSIDER_CONTROL) == 0 {
        let _ = user::wait(Event::TIMER, 1);
    }
    let child = Handle::from_raw(SHARED.read(OUTSIDER_CONTROL));
    let result = user::request_frames(child, 1, 600_000);
    SHARED.write(
        OUTSIDER_ERROR,
        result.err().map_or(OK, |error| error.code()),
    );
    SHARED.write(OUTSIDER_ASKED, 1);
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}

/// Asks a child behaving like `behaviour` for frames and checks how it ended.
fn run(behaviour: Behaviour, shared_page: Handle, witness: Option<&Witness>) {
    let name = behaviour.name();
    SHARED.clear();
    let child = Child::create(behaviour.quota()).expect("create a child");
    SHARED
        .share_with(shared_page, child.environment())
        .expect("share the page");
    // The caller's endpoint: ours, and we never wait for calls.
    let endpoint = (behaviour == Behaviour::Caller).then(|| {
        let endpoint = user::endpoint_create(0).expect("create an endpoint");
        let theirs = user::capability_grant(endpoint, child.environment(), Rights::CALL)
            .expect("grant the endpoint");
        SHARED.write(CALLED, theirs.to_raw());
        endpoint
    });
    let accomplice = (behaviour == Behaviour::Accomplice).then(|| {
        let accomplice = Child::create(CHILD_QUOTA).expect("create the accomplice");
        SHARED
            .share_with(shared_page, accomplice.environment())
            .expect("share the page");
        let theirs =
            user::capability_grant(accomplice.environment(), child.environment(), Rights::GIVE)
                .expect("let the child give to its accomplice");
        SHARED.write(ACCOMPLICE, theirs.to_raw());
        accomplice
            .start(replace_for_a_sibling, 0)
            .expect("start the accomplice");
        accomplice
    });
    if behaviour.hides() {
        let code = chain::frame_of(chain::hider_page());
        let theirs = user::capability_grant(
            code,
            child.environment(),
            Rights::READ | Rights::EXECUTE | Rights::MAP,
        )
        .expect("grant the hider's code");
        SHARED.write(HIDER_CODE, theirs.to_raw());
    }
    child
        .start(hold_frames, behaviour as u64)
        .expect("start the child");
    wait_until(&child, name, "held its frames", || {
        SHARED.read(HELD) == FRAMES_HELD as u64
    });
    let account = |which| child.account(which).expect("read the child's accounts");
    let before = account(EnvironmentAccount::FramesCharged);
    let asked = behaviour.asked();
    let tick = facts::tsc_hz() / facts::ticks_per_second();
    SHARED.write(
        GROWER_LATE_TSC,
        user::tsc() + (DEADLINE_TICKS + LATE_TICKS) * tick,
    );
    user::request_frames(child.environment(), asked, DEADLINE_TICKS).expect("ask for frames");
    let _ = user::wait(Event::TIMER, SETTLE_TICKS);
    wait_until(&child, name, "went quiet", || SHARED.read(QUIET) == 1);
    let after = account(EnvironmentAccount::FramesCharged);
    let given = account(EnvironmentAccount::FramesGivenBack);
    let taken = account(EnvironmentAccount::FramesTakenByForce);
    let fell = before.saturating_sub(after);
    println!(
        "hostile-revocation: {name}, asked for {asked}: {given} given back, {taken} taken by \
         force, holdings {before} -> {after} (seen {} requests)",
        SHARED.read(REQUESTS_SEEN)
    );
    assert!(child.is_alive(), "{name} did not survive the revocation");
    match behaviour {
        Behaviour::Honest | Behaviour::Caller | Behaviour::Scheduler => {
            assert_eq!(
                (given, taken, fell),
                (asked, 0, asked),
                "{name}: told {} times",
                SHARED.read(REQUESTS_SEEN)
            );
            let how = match behaviour {
                Behaviour::Caller => ", queued in a Call nobody takes,",
                Behaviour::Scheduler => ", entered at every slot start and asleep when asked,",
                _ => "",
            };
            check::ok(format_args!(
                "an honest child{how} gave back what was asked and lost nothing by force"
            ));
        }
        Behaviour::Churner
        | Behaviour::Copier
        | Behaviour::Sleeper
        | Behaviour::Replacer
        | Behaviour::Accomplice => {
            if behaviour == Behaviour::Accomplice {
                let refused = SHARED.read(REPLACE_ERROR);
                println!(
                    "hostile-revocation: {name}: the accomplice asked {} times, refused {refused}",
                    SHARED.read(REPLACE_TRIED)
                );
                assert!(
                    refused > 0,
                    "{name}'s accomplice replaced the parent's request"
                );
            }
            if behaviour == Behaviour::Replacer {
                assert_eq!(
                    SHARED.read(REPLACE_TRIED),
                    1,
                    "{name} never asked for itself"
                );
                assert_eq!(
                    exo_abi::Error::try_from(SHARED.read(REPLACE_ERROR)),
                    Ok(exo_abi::Error::InvalidState),
                    "{name}'s request for itself"
                );
            }
            assert_eq!(given, 0, "{name}: nothing it did gave a frame back");
            assert!(taken >= asked, "{name}: {taken} taken, fewer than {asked}");
            assert_eq!(
                fell, asked,
                "{name}: holdings fell by exactly what was asked"
            );
            check::ok(format_args!(
                "{name} lost {fell} frames: the deadline took them by force"
            ));
        }
        Behaviour::ReGrower => {
            assert!(given + taken >= asked, "{name}: only {given} + {taken}");
            assert!(
                given <= asked && taken <= asked,
                "{name}: counted {given} given back and {taken} taken, for {asked} asked"
            );
            check::ok(format_args!(
                "{name}: {given} given back and {taken} taken make up the {asked} asked"
            ));
        }
        Behaviour::Hoarder => {
            let own = FRAMES_HELD as u64;
            assert_eq!((taken, fell), (own, own), "{name}: all its frames go");
            ok("a hoarder asked for more than it holds lost all its frames and lives on");
        }
        Behaviour::Insatiable => {
            let held = account(EnvironmentAccount::FramesHeld);
            assert_eq!(
                held, 0,
                "{name} still holds {held} frames ({taken} taken): a count that wrapped"
            );
            check::ok(format_args!(
                "{name} (u64::MAX frames), which then allocated {GROWN} more, lost every \
                 frame it held ({taken}) and lives on"
            ));
        }
        Behaviour::LateStasher | Behaviour::Sacrificer => {
            let held = account(EnvironmentAccount::FramesHeld);
            if behaviour == Behaviour::LateStasher {
                assert_eq!(SHARED.read(STASHED), 1, "{name} never stashed a run");
            } else {
                assert_eq!(
                    SHARED.read(SACRIFICED),
                    1,
                    "{name} never destroyed its child"
                );
            }
            assert_eq!(given, 0, "{name}: nothing it did gave a frame back");
            assert!(
                held <= FRAMES_HELD as u64 - asked,
                "{name} still holds {held} of its {FRAMES_HELD} frames ({taken} taken)"
            );
            check::ok(format_args!(
                "{name} lost {asked} of its own frames ({taken} taken in all): {}",
                match behaviour {
                    Behaviour::LateStasher => "a run stashed after the request stood for none",
                    _ => "a child made to be lost stood for none",
                }
            ));
        }
        Behaviour::Stasher => {
            assert_eq!(
                SHARED.read(STASHED),
                1,
                "{name} never stopped in a FrameAllocate"
            );
            assert!(taken >= STASHED_RUN, "{name}: only {taken} taken");
            assert!(after < STASHED_RUN, "{name} still holds {after} frames");
            check::ok(format_args!(
                "{name}'s run, left in a FrameAllocate stopped part-way, was taken by force \
                 ({taken} frames; holdings {after})"
            ));
        }
        Behaviour::Hider | Behaviour::SpinningHider => {
            let held = account(EnvironmentAccount::CapabilitiesHeld);
            assert!(taken >= asked, "{name}: only {taken} taken");
            assert_eq!(
                held,
                SHARED.read(HIDER_HELD_BEFORE),
                "{name} still holds its child or the copies of its frames"
            );
            check::ok(format_args!(
                "{name}, holding its frames in a child of its own, lost the child at the \
                 deadline ({taken} frames taken) and the copies with it"
            ));
        }
        Behaviour::Grower => {
            let (late, refused) = (SHARED.read(GROWN_LATE), SHARED.read(GROWER_REFUSED));
            assert!(taken >= asked, "{name}: only {taken} taken");
            assert_eq!(
                late, 0,
                "{name} derived {late} copies while its frame was being taken"
            );
            check::ok(format_args!(
                "{name}'s frame, with {GROWER_COPIES} mapped copies, was taken by force, and \
                 no derivation succeeded past its deadline ({refused} refused)"
            ));
        }
    }
    if let Some(witness) = witness {
        witness.check_unharmed(name);
    }
    child.destroy();
    if let Some(accomplice) = accomplice {
        accomplice.destroy();
    }
    if let Some(endpoint) = endpoint {
        memory::drop_capability(endpoint).expect("drop the endpoint");
    }
}

/// Sleeps until `condition` holds, or panics (naming the child and what it waits for) if
/// the child dies or takes too long.
fn wait_until(child: &Child, name: &str, what: &str, condition: impl Fn() -> bool) {
    let deadline = facts::ticks() + PATIENCE_TICKS;
    while !condition() {
        assert!(child.is_alive(), "{name} died before it {what}");
        assert!(facts::ticks() < deadline, "{name} never {what}");
        let _ = user::wait(Event::TIMER, 1);
    }
}

/// A child: allocates and maps its frames, answers requests its way, and reports.
fn hold_frames(behaviour: u64) -> u64 {
    let behaviour = Behaviour::from_number(behaviour);
    let handler: Option<fn(&mut UpcallFrame)> = match behaviour {
        Behaviour::Honest | Behaviour::Caller => Some(give_back),
        Behaviour::Copier => Some(drop_copies),
        Behaviour::ReGrower => Some(give_back_then_grow),
        Behaviour::Churner | Behaviour::Hoarder => Some(|frame| {
            note_request(frame);
        }),
        Behaviour::Replacer => Some(replace_request),
        Behaviour::Accomplice => Some(|frame| {
            note_request(frame);
        }),
        Behaviour::Sleeper | Behaviour::Grower | Behaviour::Hider | Behaviour::SpinningHider => {
            None
        }
        Behaviour::Stasher | Behaviour::LateStasher => {
            upcall::register_scheduler(stash).expect("register the scheduler upcall");
            None
        }
        Behaviour::Sacrificer => Some(sacrifice),
        Behaviour::Insatiable => Some(grow_when_asked),
        Behaviour::Scheduler => {
            upcall::register_scheduler(give_back_at_any_upcall).expect("register");
            None
        }
    };
    if let Some(handler) = handler {
        upcall::register(handler).expect("register the upcall handler");
    }
    match behaviour {
        Behaviour::Hider => hide_frames(chain::hider()),
        Behaviour::SpinningHider => hide_frames(chain::spinning_hider()),
        _ => {}
    }
    for (index, slot) in FRAMES.iter().enumerate() {
        let (frame, _) = user::frame_allocate(0).expect("allocate");
        let address = HELD_PAGES + index as u64 * PAGE_SIZE;
        user::map(frame, Handle::SELF_ENVIRONMENT, address, MapFlags::WRITE).expect("map");
        slot.store(frame.to_raw(), Ordering::Relaxed);
    }
    if behaviour == Behaviour::Grower {
        copy_highest_frame();
    }
    if behaviour == Behaviour::Sacrificer {
        let child = user::environment_create(SACRIFICED_QUOTA).expect("create the child");
        SHARED.write(SACRIFICE, child.to_raw());
    }
    if behaviour == Behaviour::Accomplice {
        let sibling = Handle::from_raw(SHARED.read(ACCOMPLICE));
        let control = user::capability_grant(Handle::SELF_ENVIRONMENT, sibling, Rights::CONTROL)
            .expect("give the accomplice CONTROL over itself");
        SHARED.write(ACCOMPLICE_CONTROL, control.to_raw());
        SHARED.write(ACCOMPLICE_READY, 1);
    }
    SHARED.write(HELD, FRAMES_HELD as u64);
    match behaviour {
        Behaviour::Sleeper | Behaviour::Scheduler => {
            SHARED.write(QUIET, 1);
            loop {
                let _ = user::wait(Event::NOTIFY, 0);
            }
        }
        Behaviour::Caller => {
            SHARED.write(QUIET, 1);
            let endpoint = Handle::from_raw(SHARED.read(CALLED));
            loop {
                let _ = user::call_endpoint(endpoint, [0, 0], None);
            }
        }
        Behaviour::Churner => churn(),
        Behaviour::Grower => grow(),
        Behaviour::LateStasher => {
            while SHARED.read(REQUESTS_SEEN) == 0 {
                user::yield_now();
            }
            loop {
                if let Ok((run, _)) = user::frame_allocate(10) {
                    let _ = memory::drop_capability(run);
                }
            }
        }
        Behaviour::Sacrificer => {
            SHARED.write(QUIET, 1);
            loop {
                user::yield_now();
            }
        }
        Behaviour::Stasher => loop {
            // Every allocation spans slots: zeroing 4 MiB takes about five ticks.
            if let Ok((run, _)) = user::frame_allocate(10) {
                let _ = memory::drop_capability(run);
            }
        },
        _ => {
            SHARED.write(QUIET, 1);
            loop {
                user::yield_now();
            }
        }
    }
}

/// Holds no frame of its own: a child of its own, started at `entry` (`chain::hider` or
/// `chain::spinning_hider`), allocates [`FRAMES_HELD`] and grants it copies. Then it only
/// yields.
fn hide_frames(entry: u64) -> ! {
    let own =
        |which| user::environment_info(Handle::SELF_ENVIRONMENT, which).expect("read own accounts");
    let held_before = own(EnvironmentAccount::CapabilitiesHeld);
    SHARED.write(HIDER_HELD_BEFORE, held_before);
    let code = Handle::from_raw(SHARED.read(HIDER_CODE));
    let child = user::environment_create(HIDER_CHILD_QUOTA).expect("create the hiding child");
    user::map(code, child, chain::hider_page(), MapFlags::EXECUTE).expect("map its code");
    let give = user::capability_grant(Handle::SELF_ENVIRONMENT, child, Rights::GIVE)
        .expect("let it give to us");
    user::environment_start(child, entry, 0, give.to_raw()).expect("start it");
    // Its root and the copies of its frames.
    while own(EnvironmentAccount::CapabilitiesHeld) < held_before + 1 + chain::HIDDEN_FRAMES {
        let _ = user::wait(Event::TIMER, 1);
    }
    SHARED.write(HELD, FRAMES_HELD as u64);
    SHARED.write(QUIET, 1);
    loop {
        user::yield_now();
    }
}

/// Once asked, allocates and drops as many fresh frames as were wanted, over and over,
/// until the kernel has taken frames by force (or the deadline is well past); then goes
/// quiet.
fn churn() -> ! {
    let own = |which| user::environment_info(Handle::SELF_ENVIRONMENT, which).unwrap_or(0);
    loop {
        let wanted = WANTED.load(Ordering::Relaxed);
        if wanted > 0 && SHARED.read(QUIET) == 0 {
            for _ in 0..wanted {
                if let Ok((fresh, _)) = user::frame_allocate(0) {
                    let _ = memory::drop_capability(fresh);
                }
            }
            let past = facts::ticks() > DEADLINE.load(Ordering::Relaxed) + DEADLINE_TICKS;
            if own(EnvironmentAccount::FramesTakenByForce) > 0 || past {
                SHARED.write(QUIET, 1);
            }
        }
        user::yield_now();
    }
}

/// Copies its highest frame [`GROWER_COPIES`] times and maps each copy at a page of its
/// own, before it reports its frames held.
fn copy_highest_frame() {
    let highest = held_frames(1).next().expect("a frame");
    for (index, copy) in GROWER_COPY_HANDLES.iter().enumerate() {
        let derived = user::capability_derive(highest, Rights::READ | Rights::MAP).expect("derive");
        let address = GROWN_PAGES + index as u64 * PAGE_SIZE;
        user::map(
            derived,
            Handle::SELF_ENVIRONMENT,
            address,
            MapFlags::empty(),
        )
        .expect("map");
        copy.store(derived.to_raw(), Ordering::Relaxed);
    }
}

/// Derives from the copies in turn, dropping each new copy at once: were it to run while
/// the take by force went on, it would find copies the take had not reached yet and hang
/// new ones below them. Counts what succeeds [`LATE_TICKS`] or more past its deadline, and
/// goes quiet after [`GROWER_QUIET_AFTER`] refusals.
fn grow() -> ! {
    loop {
        for copy in &GROWER_COPY_HANDLES {
            let copy = Handle::from_raw(copy.load(Ordering::Relaxed));
            match user::capability_derive(copy, Rights::READ) {
                Ok(new) => {
                    let late = SHARED.read(GROWER_LATE_TSC);
                    if late != 0 && user::tsc() >= late {
                        SHARED.add(GROWN_LATE, 1);
                    }
                    let _ = memory::drop_capability(new);
                }
                Err(_) => {
                    SHARED.add(GROWER_REFUSED, 1);
                    if SHARED.read(GROWER_REFUSED) >= GROWER_QUIET_AFTER {
                        SHARED.write(QUIET, 1);
                    }
                }
            }
        }
    }
}

/// The stasher's upcall, at each slot start: once it finds the child stopped in a
/// `FrameAllocate` (`rip` back on its `syscall`), it never goes back to it, so the run
/// stays taken; while it spins here in its handler no other upcall comes, and the
/// deadline decides.
fn stash(frame: &mut UpcallFrame) {
    if frame.reason() == Some(UpcallReason::RevokeFrames) {
        note_request(frame);
        return;
    }
    let in_allocate = frame.registers.rax & 0xffff_ffff == Sysnum::FrameAllocate as u64;
    if frame.reason() == Some(UpcallReason::SliceStart) && in_allocate {
        SHARED.write(STASHED, 1);
        SHARED.write(QUIET, 1);
        loop {
            user::yield_now();
        }
    }
}

/// Records the request (and returns how many frames it wants).
fn note_request(frame: &mut UpcallFrame) -> u64 {
    match frame.reason() {
        Some(UpcallReason::RevokeFrames) => {
            SHARED.add(REQUESTS_SEEN, 1);
            DEADLINE.store(frame.info[1], Ordering::Relaxed);
            WANTED.store(frame.info[0], Ordering::Relaxed);
            frame.info[0]
        }
        _ => panic!("unexpected upcall {} {:#x?}", frame.reason, frame.info),
    }
}

/// The frames held from the highest down, `count` of them.
fn held_frames(count: u64) -> impl Iterator<Item = Handle> {
    FRAMES
        .iter()
        .rev()
        .take(count as usize)
        .map(|slot| Handle::from_raw(slot.load(Ordering::Relaxed)))
}

/// Answers a request by asking for itself, once: one frame, by the latest deadline there
/// is. Had it replaced the parent's, its deadline would be 600,000 ticks away and one frame.
fn replace_request(frame: &mut UpcallFrame) {
    note_request(frame);
    if SHARED.read(REPLACE_TRIED) == 0 {
        let result = user::request_frames(Handle::SELF_ENVIRONMENT, 1, 600_000);
        SHARED.write(REPLACE_ERROR, result.err().map_or(0, |error| error.code()));
        SHARED.write(REPLACE_TRIED, 1);
    }
}

/// The accomplice: once the child has given it `CONTROL` over itself, asks it for one
/// frame within 600,000 ticks, every tick, for ever; counts its tries, and its refusals
/// with `InvalidState` (a request of the parent's open).
fn replace_for_a_sibling(_argument: u64) -> u64 {
    while SHARED.read(ACCOMPLICE_READY) == 0 {
        let _ = user::wait(Event::TIMER, 1);
    }
    let sibling = Handle::from_raw(SHARED.read(ACCOMPLICE_CONTROL));
    loop {
        let result = user::request_frames(sibling, 1, 600_000);
        if result == Err(exo_abi::Error::InvalidState) {
            SHARED.write(REPLACE_ERROR, SHARED.read(REPLACE_ERROR) + 1);
        }
        SHARED.write(REPLACE_TRIED, SHARED.read(REPLACE_TRIED) + 1);
        let _ = user::wait(Event::TIMER, 1);
    }
}

/// Answers a request by allocating [`GROWN`] more frames and keeping them.
fn grow_when_asked(frame: &mut UpcallFrame) {
    note_request(frame);
    for index in 0..GROWN {
        let (fresh, _) = user::frame_allocate(0).expect("allocate a fresh frame");
        let address = FRESH_PAGES + index * PAGE_SIZE;
        user::map(fresh, Handle::SELF_ENVIRONMENT, address, MapFlags::WRITE).expect("map it");
    }
}

/// Answers a request by destroying the empty child it made for the purpose.
fn sacrifice(frame: &mut UpcallFrame) {
    note_request(frame);
    let child = Handle::from_raw(SHARED.read(SACRIFICE));
    if user::environment_destroy(child).is_ok() {
        SHARED.write(SACRIFICED, 1);
    }
}

/// The honest answer, from a handler entered at slot starts too: those it returns from.
fn give_back_at_any_upcall(frame: &mut UpcallFrame) {
    if frame.reason() == Some(UpcallReason::SliceStart) {
        return;
    }
    give_back(frame);
}

/// The honest answer: drop the frames wanted.
fn give_back(frame: &mut UpcallFrame) {
    for held in held_frames(note_request(frame)) {
        memory::drop_capability(held).expect("give a frame back");
    }
}

/// Derives a copy of each frame wanted and drops the copy: nothing is freed.
fn drop_copies(frame: &mut UpcallFrame) {
    for held in held_frames(note_request(frame)) {
        let copy = user::capability_derive(held, Rights::READ | Rights::MAP).expect("derive");
        memory::drop_capability(copy).expect("drop the copy");
    }
}

/// Drops the frames wanted, then allocates as many fresh ones and keeps them mapped.
fn give_back_then_grow(frame: &mut UpcallFrame) {
    let wanted = note_request(frame);
    for held in held_frames(wanted) {
        memory::drop_capability(held).expect("give a frame back");
    }
    for index in 0..wanted {
        let (fresh, _) = user::frame_allocate(0).expect("allocate a fresh frame");
        let address = FRESH_PAGES + index * PAGE_SIZE;
        user::map(fresh, Handle::SELF_ENVIRONMENT, address, MapFlags::WRITE).expect("map it");
    }
}
