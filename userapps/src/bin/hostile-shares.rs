//! Kernel work whose size a program chooses is done a share at a time, wherever it runs:
//! in the caller's own time, or at the start of someone else's slot.
//!
//! A witness holding 2 of the 8 slots of the vector runs throughout, and after each attack
//! must not have waited for the CPU longer than a round of the vector and
//! [`SLACK_TICKS`], and must have run at least [`LEAST_SHARE_PERCENT`]% of what its slots
//! promise:
//!
//! | attack | what the kernel does | before |
//! |---|---|---|
//! | an environment, never started, whose root capability has [`HELPERS`] × ~1,000 direct copies granted into helpers' tables, is destroyed | removes the copies a share at a time, and the root takes no new copy meanwhile | every copy at once, interrupts off: the witness waited 104 ticks |
//! | [`HOARDERS`] children each hold [`HOARD`] frames of their own, one capability each, and are asked for all of them within the same tick; none answers | takes them by force, a capability at a time within the share, a thirty-second of a tick in a slot holder's time and a quarter elsewhere | a request's frames at once, two requests a tick: the witness waited 44 ticks; a quarter of every tick, its own slots' too: it ran 697‰ |
//! | [`ENDERS`] children line up in the pool, each asked for a frame with its upcall stack not mapped | ends each when the request cannot be delivered as it is chosen, and takes it down, with the clock's interrupt let in after every ending | each ending straight after the last, interrupts off: the witness waited 48 ticks and ran 358‰ |
//! | [`SCANNERS`] children each hold [`SCANNED_FRAMES`] frames in their lowest slots under copies of their own capability in every other slot, asked for them with one deadline | reads each table from the top once, a share at a time, where the last share left off | every table read again at every share, uncounted: the witness waited 34 ticks and ran 459‰ |
//!
//! And beside [`SLEEPERS`] children in the pool sleeping a tick at a time, the witness must
//! run as much: their wakes are done only when the slot's owner is not about to run (at
//! every slot start, in its owner's time, they took 11%: 885‰). And those wakes must
//! still come in slots whose owner yields them: the parent, in the pool, sleeps 5 ticks
//! while a child holding the other 6 slots yields each, and must wake within a round of
//! the vector (a kernel that woke them only in slots whose owner could not run never
//! woke it).
//!
//! Then every helper and child is destroyed, and every frame and byte of kernel memory
//! comes back.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::layout::PAGE_SIZE;
use exo_abi::syscall::{ANY_SLOT, EnvironmentAccount, Event};
use exo_abi::user::Lend;
use exo_abi::{Error, Handle, Rights, user};
use userapps::hostile::conservation::Baseline;
use userapps::hostile::set_upcall;
use userapps::hostile::witness::Witness;
use userapps::spawn::Child;
use userapps::{check, facts, memory, println};

userapps::entry!(main);

const NAME: &str = "hostile-shares";
/// What the witness may wait beyond a round of the slice vector, in ticks.
const SLACK_TICKS: u64 = 3;
/// Helpers whose tables hold copies of the doomed environment's root, and what each is
/// lent: page tables, and kernel memory for a full table of copies.
const HELPERS: u64 = 16;
const HELPER_LEND: Lend = Lend {
    frames: 5,
    kernel_bytes: 256 << 10,
    slots: 0,
};
/// The doomed environment's quota: empty.
const DOOMED_QUOTA: u64 = 5;
/// Hoarders, the frames each allocates (a capability each), and its quota: those, its
/// image, stack and page tables.
const HOARDERS: u64 = 4;
const HOARD: u64 = 1_000;
const HOARDER_QUOTA: u64 = HOARD + 100;
/// Scanners, the frames each holds below the copies of its own capability that fill its
/// table, at least how many copies, and what each is lent.
const SCANNERS: usize = 8;
const SCANNED_FRAMES: u64 = 3;
const SCANNER_COPIES: u64 = 1_000;
const SCANNER_LEND: Lend = Lend {
    frames: 64,
    kernel_bytes: 512 << 10,
    slots: 0,
};
/// Children lined up in the pool that end as each is chosen (an empty environment each),
/// where their code, stack and upcall stack would be (nothing is mapped there), and the most
/// slots the vector may have (the parent holds all but the witness's while it lines them
/// up).
const ENDERS: usize = 150;
const ENDER_CODE: u64 = 0x40_0000;
const ENDER_STACK_TOP: u64 = 0x80_0000;
const ENDER_UPCALL_STACK_TOP: u64 = 0xc0_0000;
const MOST_SLOTS: usize = 64;
/// How far ahead the hoarders' deadline is, in ticks: past the time it takes to ask all.
const DEADLINE_TICKS: u64 = 20;
/// Sleepers, their quota (image, stack and page tables), and how long the witness is
/// watched beside them.
const SLEEPERS: usize = 48;
const SLEEPER_QUOTA: u64 = 64;
const WATCH_TICKS: u64 = 200;
/// The least share of what its slots promise the witness must run beside each attack, in
/// percent.
const LEAST_SHARE_PERCENT: u64 = 90;
/// How long the parent sleeps in slots their owner yields.
const YIELDED_SLEEP_TICKS: u64 = 5;
/// How long the children may take to do anything, in ticks.
const PATIENCE_TICKS: u64 = 20_000;

fn main(_argument: u64) -> u64 {
    warm_up();
    let baseline = Baseline::after_a_witness_and_a_child(HOARDER_QUOTA);
    let witness = Witness::start_holding(2).expect("a witness");
    copies_of_a_root(&witness);
    hoarders_taken_at_once(&witness);
    frames_under_other_capabilities(&witness);
    endings_in_a_row(&witness);
    sleepers_waking_every_tick(&witness);
    woken_in_yielded_slots();
    witness.stop();
    baseline.expect_came_back(
        NAME,
        "the helpers, the hoarders, the sleepers and the witness",
    );
    check::all_passed(NAME);
    0
}

/// Grows our table to hold the helpers, or the sleepers with their frames: it keeps the
/// room, which must exist before the baseline. Not inlined: the children are large.
#[inline(never)]
fn warm_up() {
    let helpers: [Handle; HELPERS as usize + 1] = core::array::from_fn(|_| {
        user::environment_create(DOOMED_QUOTA).expect("create an environment to warm up")
    });
    for environment in helpers {
        user::environment_destroy(environment).expect("destroy it");
    }
    let sleepers: [Child; SLEEPERS] =
        core::array::from_fn(|_| Child::create(SLEEPER_QUOTA).expect("create a child to warm up"));
    drop(sleepers);
}

/// The longest the witness waited for the CPU since its last lap, checked against a round
/// of the vector and [`SLACK_TICKS`]; `what` names the attack.
fn expect_witness_kept_running(witness: &Witness, what: &str) {
    let lap = witness.lap();
    let tick = facts::tsc_hz() / facts::ticks_per_second();
    let allowed = facts::slots() + SLACK_TICKS;
    let promised = lap.length * 2 / facts::slots();
    println!(
        "{NAME}: {what}: the witness's longest wait for the CPU {} ticks (allowed {allowed}); \
         it ran {}‰ of its promise over {} ticks",
        lap.largest_gap / tick,
        lap.ran * 1000 / promised,
        lap.length / tick
    );
    assert!(
        lap.largest_gap <= allowed * tick,
        "{what} kept the witness from the CPU {} ticks",
        lap.largest_gap / tick
    );
    assert!(
        lap.ran * 100 >= promised * LEAST_SHARE_PERCENT,
        "{what}: the witness ran {}‰ of its promise",
        lap.ran * 1000 / promised
    );
    witness.check_unharmed(what);
}

/// An environment whose root has a copy in every free slot of [`HELPERS`] helpers' tables
/// is destroyed: the copies go a share at a time.
fn copies_of_a_root(witness: &Witness) {
    let doomed = user::environment_create(DOOMED_QUOTA).expect("create the doomed");
    let mut helpers = [Handle::from_raw(0); HELPERS as usize];
    let mut copies = 0u64;
    for helper in &mut helpers {
        *helper = user::environment_create_lending(HELPER_LEND).expect("create a helper");
        loop {
            match user::capability_grant(doomed, *helper, Rights::empty()) {
                Ok(_) => copies += 1,
                Err(Error::TableFull) => break,
                Err(error) => panic!("a copy of the doomed's root: {error:?}"),
            }
        }
    }
    println!("{NAME}: {copies} copies of the doomed environment's root in {HELPERS} tables");
    assert!(copies >= HELPERS * 1_000, "only {copies} copies");
    let _ = witness.lap();
    user::environment_destroy(doomed).expect("destroy the doomed");
    expect_witness_kept_running(witness, "destroying an environment with its root's copies");
    for helper in helpers {
        user::environment_destroy(helper).expect("destroy a helper");
    }
    check::ok(format_args!(
        "{copies} copies of a destroyed environment's root went a share at a time"
    ));
}

/// [`HOARDERS`] children hold [`HOARD`] frames each and never answer: asked for all of
/// them, with one deadline, they lose them by force a capability at a time.
fn hoarders_taken_at_once(witness: &Witness) {
    let hoarders: [Child; HOARDERS as usize] = core::array::from_fn(|_| {
        let child = Child::create(HOARDER_QUOTA).expect("create a hoarder");
        child.start(hoarder, 0).expect("start a hoarder");
        child
    });
    wait_for_each(&hoarders, "a hoarder never got its frames", |child| {
        child.account(EnvironmentAccount::FramesHeld) == Ok(HOARD)
    });
    let _ = witness.lap();
    // All within one tick, so that the deadlines fall on the same one.
    let asked = facts::ticks();
    for child in &hoarders {
        user::request_frames(child.environment(), HOARD, DEADLINE_TICKS)
            .expect("ask a hoarder for its frames");
    }
    assert!(
        facts::ticks() - asked < DEADLINE_TICKS,
        "asking took too long"
    );
    wait_for_each(&hoarders, "a hoarder's frames were never taken", |child| {
        child.account(EnvironmentAccount::FramesTakenByForce) == Ok(HOARD)
    });
    expect_witness_kept_running(witness, "taking frames by force from hoarders");
    for child in hoarders {
        child.destroy();
    }
    check::ok(format_args!(
        "{} frames taken by force from {HOARDERS} hoarders a capability at a time",
        HOARDERS * HOARD
    ));
}

/// [`SLEEPERS`] children in the pool sleep a tick at a time, for ever: their timers expire
/// at every slot start. The witness must still run at least [`LEAST_SHARE_PERCENT`]% of
/// what its 2 slots of 8 promise, over [`WATCH_TICKS`]. Not inlined: the children are
/// large.
#[inline(never)]
fn sleepers_waking_every_tick(witness: &Witness) {
    let sleepers: [Child; SLEEPERS] = core::array::from_fn(|_| {
        let child = Child::create(SLEEPER_QUOTA).expect("create a sleeper");
        child.start(sleeper, 0).expect("start a sleeper");
        child
    });
    let _ = user::wait(Event::TIMER, 10);
    let _ = witness.lap();
    let _ = user::wait(Event::TIMER, WATCH_TICKS);
    let lap = witness.lap();
    let promised = lap.length * 2 / facts::slots();
    println!(
        "{NAME}: beside {SLEEPERS} sleepers waking every tick, the witness ran {}‰ of what its \
         slots promise",
        lap.ran * 1000 / promised
    );
    assert!(
        lap.ran * 100 >= promised * LEAST_SHARE_PERCENT,
        "beside sleepers waking every tick the witness ran {}‰ of its share",
        lap.ran * 1000 / promised
    );
    witness.check_unharmed("sleepers waking every tick");
    for child in sleepers {
        child.destroy();
    }
    check::ok(format_args!(
        "{SLEEPERS} sleepers waking every tick left a slot holder its share"
    ));
}

/// [`ENDERS`] empty children, each with an upcall entry whose stack is not mapped and
/// asked for a frame, start one after another while we hold every slot the witness does
/// not, so that they stand in a row in the pool line. Then we let the slots go: as each is
/// chosen the kernel cannot deliver its request, ends it and takes it down, and chooses
/// the next. The clock must get in between, or the witness's slots wait for the whole
/// row. Not inlined: the row is large.
#[inline(never)]
fn endings_in_a_row(witness: &Witness) {
    let _ = witness.lap();
    let mut slots = [Handle::from_raw(0); MOST_SLOTS];
    let held = &mut slots[..facts::slots() as usize - 2];
    for slot in held.iter_mut() {
        *slot = user::slot_allocate(Handle::SELF_ENVIRONMENT, ANY_SLOT)
            .expect("take a slot")
            .0;
    }
    let enders: [Handle; ENDERS] = core::array::from_fn(|_| {
        let ender = user::environment_create(DOOMED_QUOTA).expect("create an ender");
        set_upcall(ender, ENDER_CODE, ENDER_UPCALL_STACK_TOP, PAGE_SIZE, 0)
            .unwrap_or_else(|code| panic!("an ender's upcall entry: {code:#x}"));
        user::request_frames(ender, 1, PATIENCE_TICKS).expect("ask an ender for a frame");
        user::environment_start(ender, ENDER_CODE, ENDER_STACK_TOP, 0).expect("start it");
        ender
    });
    for slot in held.iter() {
        memory::drop_capability(*slot).expect("give a slot back");
    }
    // Each looked at until it is gone, once: a look at every one at every wake-up
    // would be most of the work.
    let deadline = facts::ticks() + PATIENCE_TICKS;
    for ender in enders {
        while user::environment_info(ender, EnvironmentAccount::Id).is_ok() {
            assert!(facts::ticks() < deadline, "an ender never ended");
            let _ = user::wait(Event::TIMER, 1);
        }
    }
    expect_witness_kept_running(witness, "children ending one after another as chosen");
    check::ok(format_args!(
        "{ENDERS} children ending one after another as chosen let the clock in between"
    ));
}

/// A child holds every slot the witness does not and yields each at once: the rest of
/// each goes to the pool, and a pool member's timer must be woken there (a kernel that
/// woke others' timers only in slots whose owner could not run never woke ours).
fn woken_in_yielded_slots() {
    let yielder = Child::create_lending(Lend {
        frames: SLEEPER_QUOTA,
        kernel_bytes: 0,
        slots: facts::slots() - 2,
    })
    .expect("create the yielder");
    yielder
        .start(yield_every_slot, facts::slots() - 2)
        .expect("start the yielder");
    wait_for_each(
        core::slice::from_ref(&yielder),
        "the yielder never took its slots",
        |child| child.account(EnvironmentAccount::SlotsHeld) == Ok(facts::slots() - 2),
    );
    let asked = facts::ticks();
    let _ = user::wait(Event::TIMER, YIELDED_SLEEP_TICKS);
    let slept = facts::ticks() - asked;
    println!("{NAME}: asleep for {YIELDED_SLEEP_TICKS} ticks in yielded slots: woke after {slept}");
    assert!(
        slept <= YIELDED_SLEEP_TICKS + facts::slots(),
        "asleep for {YIELDED_SLEEP_TICKS} ticks in yielded slots, woke after {slept}"
    );
    yielder.destroy();
    check::ok("a timer in the pool woke in slots their owner yielded");
}

/// The yielder: takes `slots` slots and yields each as soon as it gets it, for ever.
fn yield_every_slot(slots: u64) -> u64 {
    for _ in 0..slots {
        user::slot_allocate(Handle::SELF_ENVIRONMENT, ANY_SLOT).expect("take a slot");
    }
    loop {
        user::yield_now();
    }
}

/// A sleeper: a tick at a time, for ever.
fn sleeper(_argument: u64) -> u64 {
    loop {
        let _ = user::wait(Event::TIMER, 1);
    }
}

/// [`SCANNERS`] children each hold [`SCANNED_FRAMES`] frames in their lowest slots and
/// copies of their own capability in every slot above, asked for those frames with one
/// deadline, never answering: the take reads each table from the top, a share at a time
/// (it once read every table again at every share, uncounted).
fn frames_under_other_capabilities(witness: &Witness) {
    let scanners: [Child; SCANNERS] = core::array::from_fn(|_| {
        let child = Child::create_lending(SCANNER_LEND).expect("create a scanner");
        child.start(fill_table, 0).expect("start a scanner");
        child
    });
    wait_for_each(&scanners, "a scanner never filled its table", |child| {
        child
            .account(EnvironmentAccount::CapabilitiesHeld)
            .unwrap_or(0)
            >= SCANNER_COPIES
    });
    let _ = witness.lap();
    for child in &scanners {
        user::request_frames(child.environment(), SCANNED_FRAMES, DEADLINE_TICKS)
            .expect("ask a scanner for its frames");
    }
    wait_for_each(&scanners, "a scanner's frames were never taken", |child| {
        child.account(EnvironmentAccount::FramesTakenByForce) == Ok(SCANNED_FRAMES)
    });
    expect_witness_kept_running(witness, "taking frames from under other capabilities");
    for child in scanners {
        child.destroy();
    }
    check::ok(format_args!(
        "frames taken by force from under {SCANNER_COPIES} other capabilities in each of \
         {SCANNERS} tables"
    ));
}

/// Waits a tick at a time until `ready` holds for each of `children`; panics, saying what
/// never happened, if one of them dies first or [`PATIENCE_TICKS`] pass.
fn wait_for_each(children: &[Child], never: &str, ready: impl Fn(&Child) -> bool) {
    let deadline = facts::ticks() + PATIENCE_TICKS;
    for child in children {
        while !ready(child) {
            assert!(child.is_alive(), "a child died: {never}");
            assert!(facts::ticks() < deadline, "{never}");
            let _ = user::wait(Event::TIMER, 1);
        }
    }
}

/// A scanner: [`SCANNED_FRAMES`] frames, then copies of its own capability until its
/// table is full; sleeps.
fn fill_table(_argument: u64) -> u64 {
    for _ in 0..SCANNED_FRAMES {
        user::frame_allocate(0).expect("a frame");
    }
    while user::capability_derive(Handle::SELF_ENVIRONMENT, Rights::empty()).is_ok() {}
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}

/// A hoarder: allocates [`HOARD`] frames, a capability each, and sleeps for ever.
fn hoarder(_argument: u64) -> u64 {
    for _ in 0..HOARD {
        user::frame_allocate(0).expect("a frame");
    }
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}
