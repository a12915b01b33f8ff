//! Upcalls onto hostile stacks and entries end in a defined outcome for the environment
//! that chose them, and touch nobody else.
//!
//! An upcall is the kernel writing a frame at the top of a stack the environment named and
//! starting an entry it named (`exo_abi::upcall`). Here a parent first registers for a
//! child what the kernel must refuse: entries and stacks in the kernel half, past the
//! canonical hole, on the page-table view, the start-info and facts pages; stacks too
//! small, larger than their top, and unknown options. Then each child registers one hostile
//! upcall of its own and faults:
//!
//! | child | its upcall | must end |
//! |---|---|---|
//! | unmapped stack | a stack of pages never mapped | destroyed |
//! | read-only stack | a stack on a page mapped read-only | destroyed |
//! | straddling stack | the frame's top in a mapped page, its bottom in the unmapped page below | destroyed |
//! | unmapped entry | an entry on a page never mapped | destroyed |
//! | data entry | an entry on a writable, not executable page | destroyed |
//! | faulting handler | a handler that faults | destroyed |
//! | self-unmapping handler | a handler that unmaps its own stack and returns | destroyed |
//! | fault loop | a handler that resumes at address 0, which faults again, for ever | alive, faulting, in its own time only |
//! | kernel resume | a handler that resumes in the kernel half with IOPL, NT, RF and VM set in the flags | alive, faulting, in its own time only |
//! | non-canonical resume | a handler that resumes at a non-canonical `rip`: the fetch there faults (QEMU; a CPU may fault at the `iretq` instead, in the handler, and end it) | alive, faulting, in its own time only |
//! | busy handler | a handler that never returns, then a revocation request | the request is not delivered into the handler; the deadline takes its frame; alive |
//!
//! A witness runs throughout and must see nothing; when all are gone every frame and byte
//! of kernel memory is back.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::layout::{
    FACTS, KERNEL_HALF_START, PAGE_SIZE, PAGE_TABLE_VIEW, START_INFO, USER_END, USER_MAP_END,
};
use exo_abi::mapping::MapFlags;
use exo_abi::syscall::EnvironmentAccount;
use exo_abi::upcall::UpcallFrame;
use exo_abi::{Error, Handle, user};
use userapps::hostile::conservation::Baseline;
use userapps::hostile::witness::Witness;
use userapps::hostile::{self, shared::Words};
use userapps::layout::MANAGED_START;
use userapps::spawn::Child;
use userapps::{check, facts, memory, println, upcall};

userapps::entry!(main);

const CHILD_QUOTA: u64 = 64;
/// How long a child may take to die, or the witness to move, in ticks.
const PATIENCE_TICKS: u64 = 20_000;
/// How long a looping child is watched, in ticks, and the faults it must take meanwhile.
const LOOP_TICKS: u64 = 100;
const LOOP_FAULTS: u64 = 100;
/// The busy handler's request: one frame, within this many ticks.
const REQUEST_TICKS: u64 = 30;

/// Pages of a child's managed window: a writable stack page, a hole never mapped, a
/// read-only page, and a writable page with the hole-like page below it left unmapped.
const STACK_PAGE: u64 = MANAGED_START + 0x20 * PAGE_SIZE;
const HOLE: u64 = MANAGED_START + 0x40 * PAGE_SIZE;
const READ_ONLY_PAGE: u64 = MANAGED_START + 0x60 * PAGE_SIZE;
const ABOVE_A_HOLE: u64 = MANAGED_START + 0x81 * PAGE_SIZE;
/// The parent's page a child reports in: 1 once its handler runs.
const SHARED: Words = Words::at(MANAGED_START + 0x100 * PAGE_SIZE);
const IN_HANDLER: u64 = 0;

/// The RFLAGS bits a forged frame sets that ring 3 may not change or should not carry:
/// IOPL 3, NT, RF, VM.
const FORGED_FLAGS: u64 = 3 << 12 | 1 << 14 | 1 << 16 | 1 << 17;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attack {
    UnmappedStack,
    ReadOnlyStack,
    StraddlingStack,
    UnmappedEntry,
    DataEntry,
    FaultingHandler,
    SelfUnmappingHandler,
    NonCanonicalResume,
    FaultLoop,
    KernelResume,
    BusyHandler,
}

impl Attack {
    const ALL: [Attack; 11] = [
        Attack::UnmappedStack,
        Attack::ReadOnlyStack,
        Attack::StraddlingStack,
        Attack::UnmappedEntry,
        Attack::DataEntry,
        Attack::FaultingHandler,
        Attack::SelfUnmappingHandler,
        Attack::NonCanonicalResume,
        Attack::FaultLoop,
        Attack::KernelResume,
        Attack::BusyHandler,
    ];

    fn from_number(number: u64) -> Self {
        Self::ALL
            .into_iter()
            .find(|attack| *attack as u64 == number)
            .expect("an attack's number")
    }

    /// Whether the child must be destroyed (the others live on, in their own time).
    fn is_fatal(self) -> bool {
        !matches!(
            self,
            Attack::FaultLoop
                | Attack::KernelResume
                | Attack::NonCanonicalResume
                | Attack::BusyHandler
        )
    }
}

fn main(_argument: u64) -> u64 {
    let shared_page = SHARED.allocate().expect("allocate the shared page");
    let baseline = Baseline::after_a_witness_and_a_child(CHILD_QUOTA);
    let witness = Witness::start().expect("start the witness");
    witness.expect_progress(1, PATIENCE_TICKS, "it started");

    refusals();
    witness.check_unharmed("the refused registrations");
    running_target();
    for attack in Attack::ALL {
        SHARED.clear();
        let child = Child::create(CHILD_QUOTA).expect("create a child");
        SHARED
            .share_with(shared_page, child.environment())
            .expect("share the page");
        child
            .start(attacked, attack as u64)
            .expect("start the child");
        judge(attack, &child);
        witness.expect_progress(1, PATIENCE_TICKS, "an attack");
        witness.check_unharmed("an attack");
        child.destroy();
    }
    witness.stop();
    baseline.expect_came_back("hostile-upcalls", "every hostile upcall");
    check::all_passed("hostile-upcalls");
    0
}

/// Registrations the kernel must refuse, made by the parent for a child not yet started.
fn refusals() {
    let child = Child::create(CHILD_QUOTA).expect("create a child");
    let target = child.environment();
    let entry = MANAGED_START;
    let (top, size) = (STACK_PAGE + PAGE_SIZE, PAGE_SIZE);
    let kernel = Error::KernelAddress.code();
    let invalid = Error::InvalidArgument.code();
    let cases: [(&str, [u64; 4], u64); 14] = [
        (
            "entry in the kernel half",
            [KERNEL_HALF_START, top, size, 0],
            kernel,
        ),
        (
            "entry past the canonical hole",
            [USER_END, top, size, 0],
            kernel,
        ),
        (
            "entry at the last address",
            [u64::MAX, top, size, 0],
            kernel,
        ),
        (
            "entry on the page-table view",
            [PAGE_TABLE_VIEW, top, size, 0],
            kernel,
        ),
        (
            "entry on the start-info page",
            [START_INFO, top, size, 0],
            kernel,
        ),
        (
            "stack on the facts page",
            [entry, FACTS + PAGE_SIZE, size, 0],
            kernel,
        ),
        (
            "stack on the page-table view",
            [entry, PAGE_TABLE_VIEW + size, size, 0],
            kernel,
        ),
        (
            "stack in the kernel half",
            [entry, KERNEL_HALF_START + size, size, 0],
            kernel,
        ),
        (
            "stack just past the user's window",
            [entry, USER_MAP_END + 16, size, 0],
            kernel,
        ),
        ("stack of no bytes", [entry, top, 0, 0], invalid),
        (
            "stack smaller than a frame and room",
            [entry, top, 1023, 0],
            invalid,
        ),
        ("stack larger than its top", [entry, 4096, 8192, 0], invalid),
        (
            "stack ending at u64::MAX",
            [entry, u64::MAX, size, 0],
            kernel,
        ),
        ("unknown options", [entry, top, size, 1 << 63], invalid),
    ];
    for (what, [entry, top, size, options], expected) in cases {
        let answer = hostile::set_upcall(target, entry, top, size, options);
        assert_eq!(answer, Err(expected), "SetUpcall with {what}");
    }
    check::ok(format_args!(
        "{} hostile upcall registrations refused with a typed error",
        cases.len()
    ));
    child.destroy();
}

/// A registration for another environment once it runs: refused (`InvalidState`), an
/// entry or a removal alike. `CONTROL` over a running environment once let its holder
/// move the environment's entry to code of its choosing, or to a stack that cannot take
/// the frame, which ended it at its next upcall: `CONTROL` was `DESTROY`, and more.
fn running_target() {
    let child = Child::create(CHILD_QUOTA).expect("create a child");
    child.start(spin, 0).expect("start the child");
    let target = child.environment();
    let (top, size) = (STACK_PAGE + PAGE_SIZE, PAGE_SIZE);
    for (what, entry) in [("an entry", MANAGED_START), ("a removal", 0)] {
        let answer = hostile::set_upcall(target, entry, top, size, 0);
        assert_eq!(
            answer,
            Err(Error::InvalidState.code()),
            "SetUpcall of {what} for a running child"
        );
    }
    assert!(child.is_alive(), "the running child died");
    check::ok("a registration for another environment once it runs is refused");
    child.destroy();
}

/// Spins for ever.
fn spin(_argument: u64) -> u64 {
    loop {
        core::hint::spin_loop();
    }
}

/// Waits for a child's attack to end as it must.
fn judge(attack: Attack, child: &Child) {
    let account = |which| child.account(which).unwrap_or(0);
    if attack.is_fatal() {
        let deadline = facts::ticks() + PATIENCE_TICKS;
        while child.is_alive() {
            assert!(facts::ticks() < deadline, "{attack:?}: the child lives on");
            let _ = user::wait(exo_abi::syscall::Event::TIMER, 1);
        }
        check::ok(format_args!("{attack:?}: the child alone was destroyed"));
        return;
    }
    let deadline = facts::ticks() + PATIENCE_TICKS;
    while SHARED.read(IN_HANDLER) == 0 {
        assert!(child.is_alive(), "{attack:?}: the child died");
        assert!(
            facts::ticks() < deadline,
            "{attack:?}: its handler never ran"
        );
        let _ = user::wait(exo_abi::syscall::Event::TIMER, 1);
    }
    if attack == Attack::BusyHandler {
        let frames_before = account(EnvironmentAccount::FramesHeld);
        user::request_frames(child.environment(), 1, REQUEST_TICKS).expect("ask for a frame");
        let _ = user::wait(exo_abi::syscall::Event::TIMER, 3 * REQUEST_TICKS);
        let upcalls = account(EnvironmentAccount::Upcalls);
        let taken = account(EnvironmentAccount::FramesTakenByForce);
        let frames_after = account(EnvironmentAccount::FramesHeld);
        println!(
            "hostile-upcalls: busy handler: {upcalls} upcalls, {taken} frames taken, frames \
             held {frames_before} -> {frames_after}"
        );
        assert!(child.is_alive(), "{attack:?}: the child died");
        assert_eq!(
            upcalls, 1,
            "{attack:?}: an upcall was delivered into the handler"
        );
        assert_eq!(taken, 1, "{attack:?}: the deadline took no frame");
        check::ok("a request to a child busy in its handler waits for it; its deadline holds");
        return;
    }
    let faults = account(EnvironmentAccount::Exceptions);
    let _ = user::wait(exo_abi::syscall::Event::TIMER, LOOP_TICKS);
    let more = account(EnvironmentAccount::Exceptions) - faults;
    assert!(child.is_alive(), "{attack:?}: the child died");
    assert!(
        more >= LOOP_FAULTS,
        "{attack:?}: only {more} faults in {LOOP_TICKS} ticks"
    );
    check::ok(format_args!(
        "{attack:?}: the child faulted {more} more times in {LOOP_TICKS} ticks, in its own time"
    ));
}

/// A child: registers its hostile upcall and faults.
fn attacked(attack: u64) -> u64 {
    let attack = Attack::from_number(attack);
    map_own(STACK_PAGE, MapFlags::WRITE);
    let stack_top = STACK_PAGE + PAGE_SIZE;
    let registered = match attack {
        Attack::UnmappedStack => user::set_upcall_handler(unreached, HOLE + PAGE_SIZE, PAGE_SIZE),
        Attack::ReadOnlyStack => {
            map_own(READ_ONLY_PAGE, MapFlags::empty());
            user::set_upcall_handler(unreached, READ_ONLY_PAGE + PAGE_SIZE, PAGE_SIZE)
        }
        Attack::StraddlingStack => {
            map_own(ABOVE_A_HOLE, MapFlags::WRITE);
            user::set_upcall_handler(unreached, ABOVE_A_HOLE + 64, 2 * PAGE_SIZE)
        }
        Attack::UnmappedEntry => raw(HOLE, stack_top),
        Attack::DataEntry => raw(STACK_PAGE, stack_top),
        Attack::FaultingHandler => upcall::register(|_| {
            SHARED.write(IN_HANDLER, 1);
            memory::read_u64(HOLE);
        }),
        Attack::SelfUnmappingHandler => user::set_upcall_handler(
            |_| {
                SHARED.write(IN_HANDLER, 1);
                memory::unmap(Handle::SELF_ENVIRONMENT, STACK_PAGE).expect("unmap");
            },
            stack_top,
            PAGE_SIZE,
        ),
        Attack::NonCanonicalResume => upcall::register(|frame| {
            SHARED.write(IN_HANDLER, 1);
            frame.registers.rip = USER_END;
        }),
        Attack::FaultLoop => upcall::register(|frame| {
            SHARED.write(IN_HANDLER, 1);
            frame.registers.rip = 0;
        }),
        Attack::KernelResume => upcall::register(|frame| {
            SHARED.write(IN_HANDLER, 1);
            frame.registers.rip = KERNEL_HALF_START + 0x1000;
            frame.registers.rflags |= FORGED_FLAGS;
        }),
        Attack::BusyHandler => upcall::register(|_| {
            SHARED.write(IN_HANDLER, 1);
            loop {
                core::hint::spin_loop();
            }
        }),
    };
    registered.expect("register the upcall");
    memory::read_u64(HOLE);
    unreachable!("a read of a hole returned");
}

/// A handler the kernel must never reach.
fn unreached(frame: &mut UpcallFrame) {
    panic!("an upcall reached a handler on a hostile stack: {frame:?}");
}

/// Registers `entry` on a stack of one page below `stack_top`.
fn raw(entry: u64, stack_top: u64) -> Result<(), Error> {
    hostile::set_upcall(Handle::SELF_ENVIRONMENT, entry, stack_top, PAGE_SIZE, 0)
        .map_err(|code| Error::try_from(code).expect("a typed error"))
}

/// Allocates a frame and maps it at `address` in this environment.
fn map_own(address: u64, flags: MapFlags) {
    let (frame, _) = user::frame_allocate(0).expect("allocate a frame");
    user::map(frame, Handle::SELF_ENVIRONMENT, address, flags).expect("map a frame");
}
