//! No RFLAGS value ring 3 can make crashes the kernel or leaks into another environment.
//!
//! A ring-3 program may set CF, PF, AF, ZF, SF, TF, DF, OF, NT, AC and ID with `popfq`,
//! and may try (in vain) to clear IF or set IOPL, RF, VM, VIF and VIP. Any of them may be
//! in force when it enters the kernel. `syscall` clears only the flags SFMASK names, so a
//! flag it leaves (NT, in the kernel this test was written against) survives into ring 0,
//! where the kernel's own `iretq` then raises #GP — and, with GS already the user's, the
//! report itself faults and the machine resets without a word. Exceptions and interrupts
//! clear NT and TF themselves, but not DF or AC.
//!
//! So for each attempt (one flag at a time, then every settable flag but TF at once), a
//! fresh child makes every kind of kernel entry with the flags set, each leaving the kernel
//! another way, and checks after each that it got its flags back:
//!
//! | entry | way back |
//! |---|---|
//! | a plain system call (`EnvironmentInfo`) | `sysret` |
//! | `Yield` | a switch to another environment (the witness, preempted: `iretq`) |
//! | `YieldTo` the preempted witness | `iretq` into it, later `sysret` back |
//! | `RequestFrames` on itself | an upcall delivered on the return (`iretq` to the entry) |
//! | `Call` through the parent's endpoint | a switch to the parent (`sysret`), its `Reply` back |
//! | `Wait` for one tick | a switch away, then back when it wakes |
//! | a page fault | an upcall (`iretq`), then the library's own `iretq` back |
//! | a spin across timer ticks | preemption: the witness runs, then `iretq` back |
//! | `Exit` | the kernel destroys it and switches to someone else |
//!
//! With TF set each instruction traps (#DB): the child's upcall handler counts the traps
//! and clears TF after a few, so single-stepping crosses the kernel entry itself. The
//! upcall handler checks that it always starts with clean flags, and the page-fault
//! upcall that it reports the flags the fault interrupted.
//!
//! Then: `cli`, `sti`, `hlt`, `in`, `out`, `int3`, `int 0x80`, `ud2` and a division by
//! zero in ring 3 each end in an upcall (#GP, #UD, #DE); a system call and a spin across
//! a timer tick with `rsp` at 0, 8, the end of the user half, a non-canonical address or
//! a kernel address come back with it untouched (`syscall` does not switch stacks: the
//! kernel must not use the user's); a child that single-steps, and one that faults with
//! every settable flag set, both without an upcall handler, are destroyed alone; and last, with the witness gone, a child waits for
//! the timer with each flag set while the parent waits too, so the kernel idles (`hlt`)
//! between the entry and the return.
//!
//! Throughout, a witness child loops without system calls, counting, and checks that it
//! never sees a control flag (TF, DF, NT, AC, ID) it did not set; at the end every frame
//! and byte of kernel memory is back. A line before each entry names it, so if the kernel
//! dies the last line says where.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::MapFlags;
use exo_abi::syscall::{EnvironmentAccount, Event, NO_CAPABILITY, Sysnum};
use exo_abi::upcall::{UpcallFrame, UpcallReason};
use exo_abi::user::{self, Wakeup};
use exo_abi::{Error, Handle, Rights};
use userapps::check;
use userapps::hostile::conservation::Baseline;
use userapps::hostile::flags::{
    self, ALL_SETTABLE_BUT_TRAP, ATTEMPTS, Attempt, CONTROL_FLAGS, INTERRUPT, TRAP,
};
use userapps::hostile::shared::Words;
use userapps::hostile::traps::{self, BAD_STACKS, DEBUG_VECTOR, PAGE_FAULT_VECTOR, UserTrap};
use userapps::hostile::witness::Witness;
use userapps::layout::MANAGED_START;
use userapps::spawn::Child;
use userapps::{facts, memory, println, upcall};

userapps::entry!(main);

/// Parent and child: the handles the parent leaves the child, and the child's verdicts.
const SHARED: Words = Words::at(MANAGED_START);
/// Words of `SHARED`.
const WITNESS_HANDLE: u64 = 0;
const ENDPOINT_HANDLE: u64 = 1;
/// Set by a child that should have been destroyed but lived on.
const SURVIVED: u64 = 2;
/// `VERDICTS + n`: 1 + the failures child `n` counted, written just before it exits.
const VERDICTS: u64 = 8;
/// Where a child provokes page faults: its upcall handler maps a page there each time.
const FAULT_PAGE: u64 = MANAGED_START + 0x100 * PAGE_SIZE;

/// Single-step traps a child's handler lets through before it clears TF.
const STEP_BUDGET: u64 = 16;
/// Iterations of `flags::spin_with`'s loop between two looks at the clock.
const SPIN_ITERATIONS: u64 = 100_000;
/// Timer ticks a spin must span: at least one interrupt arrives with the flags set.
const SPIN_TICKS: u64 = 2;
/// Tries at a call the parent is not yet waiting for.
const CALL_TRIES: u64 = 10_000;
/// How long a child may take, in ticks, before the parent gives up on it.
const CHILD_TICKS: u64 = 60_000;
const CHILD_QUOTA: u64 = 128;
/// How long the parent waits for a call before it looks whether the child is still
/// there: a wait that ended at every tick would leave it runnable, not receiving, in
/// most of the child's slots.
const SERVE_TICKS: u64 = 20;
/// The parent's endpoint's entry tag.
const ENDPOINT_TAG: u64 = 0xf1a9;

/// Child numbers past one per attempt.
const EVERY_FLAG_AT_ONCE: u64 = ATTEMPTS.len() as u64;
const TRAPS: u64 = EVERY_FLAG_AT_ONCE + 1;
const IDLE: u64 = TRAPS + 1;

/// What a child's upcall handler saw (each environment has its own copy).
static PAGE_FAULTS: AtomicU64 = AtomicU64::new(0);
static FAULT_FLAGS: AtomicU64 = AtomicU64::new(0);
static FAULT_FRAME: AtomicU64 = AtomicU64::new(NO_CAPABILITY);
static DEBUG_TRAPS: AtomicU64 = AtomicU64::new(0);
static REVOCATIONS: AtomicU64 = AtomicU64::new(0);
static SPARE_FRAME: AtomicU64 = AtomicU64::new(NO_CAPABILITY);
/// Entries to the handler whose own flags were not clean, and the last such RFLAGS.
static UNCLEAN_ENTRIES: AtomicU64 = AtomicU64::new(0);
static UNCLEAN_FLAGS: AtomicU64 = AtomicU64::new(0);
/// The length of the `UserTrap` instruction the handler is to skip, or 0 when none is
/// expected; and the vector the last one came with.
static EXPECTED_TRAP: AtomicU64 = AtomicU64::new(0);
static TRAP_VECTOR: AtomicU64 = AtomicU64::new(NO_VECTOR);
const NO_VECTOR: u64 = u64::MAX;

fn main(_argument: u64) -> u64 {
    let shared_page = SHARED.allocate().expect("allocate the shared page");
    let endpoint = user::endpoint_create(ENDPOINT_TAG).expect("create the endpoint");

    let baseline = Baseline::after_a_witness_and_a_child(CHILD_QUOTA);

    let witness = Witness::start().expect("start the witness");
    witness.expect_progress(1, CHILD_TICKS, "it started");
    let mut failed = 0;
    for (number, attempt) in ATTEMPTS.iter().chain([&ALL_SETTABLE_BUT_TRAP]).enumerate() {
        let passed = run_child(shared_page, Some(&witness), endpoint, number as u64);
        witness.check_unharmed(attempt.name);
        if passed {
            check::ok(format_args!(
                "{}: every kernel entry and way back survived, flags kept",
                attempt.name
            ));
        } else {
            failed += 1;
        }
    }
    if run_child(shared_page, Some(&witness), endpoint, TRAPS) {
        check::ok(format_args!(
            "privileged instructions, int3, int 0x80, ud2 and a division by zero each \
             ended in an upcall; system calls and ticks with rsp pointing nowhere came back"
        ));
    } else {
        failed += 1;
    }
    for (what, function) in [
        ("single-steps", step_without_handler as fn(u64) -> u64),
        ("faults with every settable flag set", fault_without_handler),
    ] {
        let child = Child::create(CHILD_QUOTA).expect("create a child");
        SHARED
            .share_with(shared_page, child.environment())
            .expect("share");
        SHARED.write(SURVIVED, 0);
        child.start(function, 0).expect("start the child");
        child.wait();
        assert_eq!(SHARED.read(SURVIVED), 0, "a child that {what} survived");
        check::ok(format_args!(
            "a child that {what} with no upcall handler was destroyed alone"
        ));
    }
    witness.expect_progress(1, CHILD_TICKS, "the attacks");
    witness.check_unharmed("every attack");
    println!(
        "hostile-flags: the witness ran {} rounds and never saw a flag it did not set",
        witness.rounds()
    );
    witness.stop();

    // No witness now: while the child and the parent both wait, the CPU idles.
    if run_child(shared_page, None, endpoint, IDLE) {
        check::ok(format_args!(
            "waits that idled the CPU with each flag set came back with it kept"
        ));
    } else {
        failed += 1;
    }

    let own = flags::read();
    assert!(
        own & CONTROL_FLAGS == 0 && flags::ring3_invariant_holds(own),
        "the parent's own flags changed: {own:#x}"
    );
    baseline.expect_came_back("hostile-flags", "every attack");
    if failed > 0 {
        println!("FAIL: {failed} children found flags mishandled (their lines say how)");
        return 1;
    }
    check::all_passed("hostile-flags");
    0
}

/// Starts child `number` with the shared page, a `CALL` capability for the witness (if
/// any) and one for `endpoint`; serves its calls until it is gone; returns whether it
/// reported no failure.
fn run_child(
    shared_page: Handle,
    witness: Option<&Witness>,
    endpoint: Handle,
    number: u64,
) -> bool {
    let child = Child::create(CHILD_QUOTA).expect("create a child");
    SHARED
        .share_with(shared_page, child.environment())
        .expect("share the page");
    let witness_handle = match witness {
        Some(witness) => {
            user::capability_grant(witness.environment(), child.environment(), Rights::CALL)
                .expect("grant the witness")
                .to_raw()
        }
        None => NO_CAPABILITY,
    };
    let endpoint_handle = user::capability_grant(endpoint, child.environment(), Rights::CALL)
        .expect("grant the endpoint");
    SHARED.write(WITNESS_HANDLE, witness_handle);
    SHARED.write(ENDPOINT_HANDLE, endpoint_handle.to_raw());
    SHARED.write(VERDICTS + number, 0);
    child.start(hostile, number).expect("start the child");
    let deadline = facts::ticks() + CHILD_TICKS;
    while child.is_alive() {
        assert!(
            facts::ticks() < deadline,
            "child {number} still runs after {CHILD_TICKS} ticks"
        );
        if let Ok(Wakeup::Call(call)) = user::wait(Event::CALL | Event::TIMER, SERVE_TICKS) {
            let [first, second] = call.arguments;
            let _ = user::reply([first + 1, second.wrapping_add(1)], None);
        }
    }
    match SHARED.read(VERDICTS + number) {
        0 => {
            println!("FAIL: child {number} ended before it reported");
            false
        }
        verdict => verdict == 1,
    }
}

/// The hostile child: number `n < ATTEMPTS.len()` makes every entry with attempt `n` in
/// force; the others are the phases past the attempts.
fn hostile(number: u64) -> u64 {
    upcall::register(handler).expect("register the upcall handler");
    let failures = match number {
        TRAPS => traps(),
        IDLE => idle(),
        _ => {
            let attempt = attempt(number);
            let mut failures = 0;
            for entry in Entry::ALL {
                println!(
                    "hostile-flags: {} before {}",
                    attempt.name,
                    entry.describe()
                );
                if let Err(failure) = entry.make(attempt) {
                    println!(
                        "FAIL: {} before {}: {}",
                        attempt.name,
                        entry.describe(),
                        failure
                    );
                    failures += 1;
                }
            }
            failures + unclean_handler_entries()
        }
    };
    SHARED.write(VERDICTS + number, 1 + failures);
    let attempt = attempt(number.min(EVERY_FLAG_AT_ONCE));
    println!("hostile-flags: {} before Exit", attempt.name);
    flags::exit_with(attempt.value(), failures)
}

fn attempt(number: u64) -> Attempt {
    ATTEMPTS
        .get(number as usize)
        .copied()
        .unwrap_or(ALL_SETTABLE_BUT_TRAP)
}

/// Handler entries that found their own flags unclean, reported as failures.
fn unclean_handler_entries() -> u64 {
    let count = UNCLEAN_ENTRIES.load(Ordering::Relaxed);
    if count > 0 {
        println!(
            "FAIL: the upcall handler started {count} times with flags not clean (last {:#x})",
            UNCLEAN_FLAGS.load(Ordering::Relaxed)
        );
    }
    count
}

/// A way into the kernel and out again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    PlainCall,
    NullCall,
    Yield,
    YieldToPreempted,
    UpcallOnReturn,
    CallAndReply,
    Sleep,
    PageFault,
    TimerPreemption,
}

/// Why an entry failed: what was wrong, and RFLAGS (or another value) as found.
#[derive(Clone, Copy, Debug)]
struct Failure {
    what: &'static str,
    found: u64,
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} (found {:#x})", self.what, self.found)
    }
}

fn fail<T>(what: &'static str, found: u64) -> Result<T, Failure> {
    Err(Failure { what, found })
}

impl Entry {
    const ALL: [Entry; 9] = [
        Entry::PlainCall,
        Entry::NullCall,
        Entry::Yield,
        Entry::YieldToPreempted,
        Entry::UpcallOnReturn,
        Entry::CallAndReply,
        Entry::Sleep,
        Entry::PageFault,
        Entry::TimerPreemption,
    ];

    fn describe(self) -> &'static str {
        match self {
            Entry::PlainCall => "a system call (back by sysret)",
            Entry::NullCall => "Null (answered in the entry stub, sysret at once)",
            Entry::Yield => "Yield (a switch to the preempted witness)",
            Entry::YieldToPreempted => "YieldTo the preempted witness (iretq into it)",
            Entry::UpcallOnReturn => "RequestFrames on itself (an upcall delivered on return)",
            Entry::CallAndReply => "Call to the parent (a switch by sysret, Reply back)",
            Entry::Sleep => "Wait for one tick (a switch away and back)",
            Entry::PageFault => "a page fault (delivered as an upcall)",
            Entry::TimerPreemption => "a spin across timer ticks (preemption)",
        }
    }

    /// Makes the entry with `attempt` in force and checks what came back.
    fn make(self, attempt: Attempt) -> Result<(), Failure> {
        let value = attempt.value();
        DEBUG_TRAPS.store(0, Ordering::Relaxed);
        let flags_after = match self {
            Entry::PlainCall => {
                let own = Handle::SELF_ENVIRONMENT.to_raw();
                let arguments = [own, EnvironmentAccount::Id as u64, 0, 0, 0, 0];
                let ([status, id, ..], after) =
                    flags::harmless_syscall_with(value, Sysnum::EnvironmentInfo, arguments);
                if status != 0 || id != facts::environment_id() {
                    return fail("EnvironmentInfo gave a wrong answer", status);
                }
                after
            }
            Entry::NullCall => {
                // Garbage in every argument register: Null reads none of them.
                let arguments = [u64::MAX, 1 << 63, 0xdead_beef, 7, u64::MAX, 1];
                let ([status, first, second, ..], after) =
                    flags::harmless_syscall_with(value, Sysnum::Null, arguments);
                if (status, first, second) != (0, 0, 0) {
                    return fail("Null did not return 0 with zero results", status);
                }
                after
            }
            Entry::Yield => checked_call(value, Sysnum::Yield, [0; 6])?,
            Entry::YieldToPreempted => {
                let witness = SHARED.read(WITNESS_HANDLE);
                checked_call(value, Sysnum::YieldTo, [witness, 0, 0, 0, 0, 0])?
            }
            Entry::UpcallOnReturn => upcall_on_return(value)?,
            Entry::CallAndReply => call_parent(value)?,
            Entry::Sleep => {
                let ([status, event, ..], after) = flags::harmless_syscall_with(
                    value,
                    Sysnum::Wait,
                    [Event::TIMER.bits(), 1, 0, 0, 0, 0],
                );
                if status != 0 || event != Event::TIMER.bits() {
                    return fail("Wait(TIMER, 1) did not end on the timer", status);
                }
                after
            }
            Entry::PageFault => page_fault(attempt)?,
            Entry::TimerPreemption => {
                let start = facts::ticks();
                let mut after = flags::spin_with(value, SPIN_ITERATIONS);
                while facts::ticks() < start + SPIN_TICKS && attempt.kept_in(after) {
                    after = flags::spin_with(value, SPIN_ITERATIONS);
                }
                after
            }
        };
        if !attempt.kept_in(flags_after) {
            return fail("RFLAGS after the entry are not what was set", flags_after);
        }
        if attempt.set & TRAP != 0 && DEBUG_TRAPS.load(Ordering::Relaxed) == 0 {
            return fail("TF was set but no single-step trap arrived", flags_after);
        }
        Ok(())
    }
}

/// A system call that must succeed; returns RFLAGS after it.
fn checked_call(value: u64, number: Sysnum, arguments: [u64; 6]) -> Result<u64, Failure> {
    let ([status, ..], after) = flags::harmless_syscall_with(value, number, arguments);
    if status != 0 {
        return fail("the call was refused", status);
    }
    Ok(after)
}

/// `RequestFrames(self, 1)` with the flags set: the kernel delivers the request as an
/// upcall on the way back, and the handler gives back a spare frame.
fn upcall_on_return(value: u64) -> Result<u64, Failure> {
    let (spare, _) = user::frame_allocate(0).map_err(|_| Failure {
        what: "no spare frame to give back",
        found: 0,
    })?;
    SPARE_FRAME.store(spare.to_raw(), Ordering::Relaxed);
    let before = REVOCATIONS.load(Ordering::Relaxed);
    let own = Handle::SELF_ENVIRONMENT.to_raw();
    let after = checked_call(value, Sysnum::RequestFrames, [own, 1, 100_000, 0, 0, 0])?;
    if REVOCATIONS.load(Ordering::Relaxed) == before {
        println!("hostile-flags: (the revocation upcall was not delivered on that return)");
    }
    Ok(after)
}

/// `Call` through the parent's endpoint with the flags set; the parent answers each
/// argument plus one.
fn call_parent(value: u64) -> Result<u64, Failure> {
    let endpoint = SHARED.read(ENDPOINT_HANDLE);
    for _ in 0..CALL_TRIES {
        let arguments = [endpoint, 7, value, NO_CAPABILITY, 0, 0];
        let ([status, first, second, ..], after) =
            flags::harmless_syscall_with(value, Sysnum::Call, arguments);
        if status == Error::NotReceiving.code() {
            user::yield_now();
            continue;
        }
        if status != 0 {
            return fail("the call was refused", status);
        }
        if [first, second] != [8, value + 1] {
            return fail("the parent's reply came back wrong", first);
        }
        return Ok(after);
    }
    fail("the parent never received the call", 0)
}

/// A read of an unmapped page with the flags set: the upcall must report them, and the
/// handler maps a page so the read succeeds when it resumes.
fn page_fault(attempt: Attempt) -> Result<u64, Failure> {
    let before = PAGE_FAULTS.load(Ordering::Relaxed);
    let (value, after) = flags::load_with(attempt.value(), FAULT_PAGE);
    if PAGE_FAULTS.load(Ordering::Relaxed) != before + 1 || value != 0 {
        return fail(
            "the page fault was not delivered once",
            PAGE_FAULTS.load(Ordering::Relaxed) - before,
        );
    }
    let seen = FAULT_FLAGS.load(Ordering::Relaxed);
    let frame = Handle::from_raw(FAULT_FRAME.swap(NO_CAPABILITY, Ordering::Relaxed));
    memory::drop_capability(frame).map_err(|_| Failure {
        what: "could not drop the page the handler mapped",
        found: frame.to_raw(),
    })?;
    let wanted = if attempt.takes_effect { attempt.set } else { 0 };
    if seen & wanted != wanted || !flags::ring3_invariant_holds(seen) {
        return fail(
            "the fault upcall reported other flags than were in force",
            seen,
        );
    }
    Ok(after)
}

/// Every `UserTrap`: each must arrive as one upcall with a vector it may raise, which
/// the handler skips; then system calls and timer interrupts with `rsp` pointing nowhere.
fn traps() -> u64 {
    let mut failures = 0;
    for trap in UserTrap::ALL {
        println!("hostile-flags: {trap:?} in ring 3");
        EXPECTED_TRAP.store(trap.length(), Ordering::Relaxed);
        trap.attempt();
        let vector = TRAP_VECTOR.swap(NO_VECTOR, Ordering::Relaxed);
        if EXPECTED_TRAP.swap(0, Ordering::Relaxed) != 0 || !trap.raises(vector) {
            println!("FAIL: {trap:?} in ring 3 gave no upcall, or vector {vector}");
            failures += 1;
        }
        if flags::read() & INTERRUPT == 0 {
            println!("FAIL: {trap:?} turned interrupts off in ring 3");
            failures += 1;
        }
    }
    for (name, stack) in BAD_STACKS {
        println!("hostile-flags: a system call and a timer tick with {name}");
        let own = Handle::SELF_ENVIRONMENT.to_raw();
        let arguments = [own, EnvironmentAccount::Id as u64, 0, 0, 0, 0];
        let [status, id, _] = traps::syscall_on_stack(stack, Sysnum::EnvironmentInfo, arguments);
        if status != 0 || id != facts::environment_id() {
            println!("FAIL: a system call with {name} gave status {status}, value {id}");
            failures += 1;
        }
        let start = facts::ticks();
        while facts::ticks() < start + SPIN_TICKS {
            if !traps::spin_on_stack(stack, SPIN_ITERATIONS) {
                println!("FAIL: {name} did not survive a timer tick");
                failures += 1;
                break;
            }
        }
    }
    failures + unclean_handler_entries()
}

/// `Wait(TIMER, 2)` with each attempt in force, while the parent waits too: nobody can
/// run, so the kernel idles before it returns.
fn idle() -> u64 {
    let mut failures = 0;
    for attempt in ATTEMPTS.iter().chain([&ALL_SETTABLE_BUT_TRAP]) {
        println!(
            "hostile-flags: {} before Wait while nothing else can run",
            attempt.name
        );
        DEBUG_TRAPS.store(0, Ordering::Relaxed);
        let ([status, ..], after) = flags::harmless_syscall_with(
            attempt.value(),
            Sysnum::Wait,
            [Event::TIMER.bits(), 2, 0, 0, 0, 0],
        );
        if status != 0 || !attempt.kept_in(after) {
            println!(
                "FAIL: {} before an idle Wait: status {status}, RFLAGS after {after:#x}",
                attempt.name
            );
            failures += 1;
        }
    }
    failures + unclean_handler_entries()
}

/// A child with no upcall handler that sets TF: its first single-step trap must end it.
fn step_without_handler(_argument: u64) -> u64 {
    flags::spin_with(TRAP | flags::CLEAN, SPIN_ITERATIONS);
    SHARED.write(SURVIVED, 1);
    1
}

/// A child with no upcall handler that reads an unmapped page with every settable flag
/// but TF set: the fault must end it.
fn fault_without_handler(_argument: u64) -> u64 {
    flags::load_with(ALL_SETTABLE_BUT_TRAP.value(), FAULT_PAGE);
    SHARED.write(SURVIVED, 1);
    1
}

/// Every child's upcall handler.
fn handler(frame: &mut UpcallFrame) {
    let own = flags::read();
    if own & CONTROL_FLAGS != 0 || !flags::ring3_invariant_holds(own) {
        UNCLEAN_ENTRIES.fetch_add(1, Ordering::Relaxed);
        UNCLEAN_FLAGS.store(own, Ordering::Relaxed);
    }
    match (frame.reason(), frame.info[0]) {
        (Some(UpcallReason::Fault), PAGE_FAULT_VECTOR) => {
            FAULT_FLAGS.store(frame.registers.rflags, Ordering::Relaxed);
            let page = frame.info[2] & !(PAGE_SIZE - 1);
            let (fresh, _) = user::frame_allocate(0).expect("a frame for the faulting page");
            user::map(fresh, Handle::SELF_ENVIRONMENT, page, MapFlags::WRITE)
                .expect("map the faulting page");
            FAULT_FRAME.store(fresh.to_raw(), Ordering::Relaxed);
            PAGE_FAULTS.fetch_add(1, Ordering::Relaxed);
        }
        (Some(UpcallReason::Fault), DEBUG_VECTOR) => {
            if DEBUG_TRAPS.fetch_add(1, Ordering::Relaxed) + 1 >= STEP_BUDGET {
                frame.registers.rflags &= !TRAP;
            }
        }
        (Some(UpcallReason::Fault), vector) if EXPECTED_TRAP.load(Ordering::Relaxed) != 0 => {
            let length = EXPECTED_TRAP.swap(0, Ordering::Relaxed);
            TRAP_VECTOR.store(vector, Ordering::Relaxed);
            if !UserTrap::reported_after(vector) {
                frame.registers.rip += length;
            }
        }
        (Some(UpcallReason::RevokeFrames), _) => {
            let spare = Handle::from_raw(SPARE_FRAME.swap(NO_CAPABILITY, Ordering::Relaxed));
            let _ = memory::drop_capability(spare);
            REVOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        _ => panic!(
            "unexpected upcall: reason {} info {:#x?} at rip {:#x}",
            frame.reason, frame.info, frame.registers.rip
        ),
    }
}
