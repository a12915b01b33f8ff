//! No CPU state one environment writes reaches another, no register carries a kernel
//! value out, and no instruction ring 3 may try reaches ring 0.
//!
//! 1. **Neighbours.** Two children loop side by side, each writing its own pattern into
//!    the eight MMX registers (the x87 register file) and its own selectors into `ds`,
//!    `es`, `fs`, `gs`, spinning, and reading them back. Preemption falls between the
//!    write and the read in many rounds. A kernel that switches only the general
//!    registers hands each the other's values. Each must find its own values every time,
//!    or have its floating-point instructions refused with #UD or #NM every time.
//! 2. **Registers.** A child loads every general register but `rsp` with a distinct
//!    value and makes system calls that return by `sysret` (`EnvironmentInfo`, `Null`,
//!    an unknown number), by a switch away and back (`Yield`, `Wait` for a tick), and
//!    spins across timer ticks: every register the ABI does not name as a result or as
//!    clobbered (`rcx`, `r11`) must come back as it went in, and the results must be
//!    exactly the answer — no kernel value in any register.
//! 3. **Traps.** A child tries x87, MMX, SSE and AVX instructions (each runs or is
//!    refused with #UD or #NM), 25 instructions only ring 0 may complete or segment
//!    loads ring 3 may not make (each refused with #GP or #UD: MSRs, control and debug
//!    registers, descriptor tables, `swapgs`, `wrfsbase`, `sysret`, ports, the kernel's
//!    selectors, the TSS's, an LDT's), and `int n` for all 256 vectors (#GP for every
//!    gate but the breakpoint's, which ring 3 may use). Each arrives as one upcall, and
//!    none carries an address: just before, a neighbour took a page fault at an address of
//!    its own, which CR2 keeps (the kernel once passed it on in every upcall's `info[2]`).
//!    Then it single-steps `mov ss` followed by `syscall`: a CPU holds the trap of a
//!    `mov ss` back until after the next instruction, which here enters ring 0 (on the
//!    CPUs of the 2018 "POP SS" advisories, with a data breakpoint); it must come back
//!    from `Null` with its traps in ring 3 only.
//!
//! Throughout, a witness runs; at the end every frame and byte of kernel memory is back.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use exo_abi::layout::USER_MAP_END;
use exo_abi::mapping::MapFlags;
use exo_abi::syscall::{EnvironmentAccount, Event, Sysnum};
use exo_abi::upcall::{UpcallFrame, UpcallReason};
use exo_abi::{Error, Handle};
use userapps::hostile::conservation::Baseline;
use userapps::hostile::flags;
use userapps::hostile::shared::Words;
use userapps::hostile::state::{
    self, FloatingPoint, INT_LENGTH, LDT_DESCRIPTOR, MMX_LENGTH, Privileged, USER_DATA_DESCRIPTOR,
    register::*,
};
use userapps::hostile::witness::Witness;
use userapps::layout::MANAGED_START;
use userapps::spawn::Child;
use userapps::{check, facts, memory, println, upcall};

userapps::entry!(main);

/// Parent and children: `REPORT + n` words for child `n`'s report.
const SHARED: Words = Words::at(MANAGED_START);
/// Words of a child's report, from `8 * n`.
const ROUNDS: u64 = 0;
const MMX_FOREIGN: u64 = 1;
const MMX_REFUSED_ROUNDS: u64 = 2;
const SEGMENTS_FOREIGN: u64 = 3;
const LAST_SEEN: u64 = 4;
/// 1 + the failures a child found, written just before it exits.
const VERDICT: u64 = 5;
const REPORT_WORDS: u64 = 8;

/// Child numbers.
const NEIGHBOURS: [u64; 2] = [0, 1];
const REGISTERS: u64 = 2;
const TRAPS: u64 = 3;

const CHILD_QUOTA: u64 = 128;
/// How long a child may take, in ticks, before the parent gives up on it.
const CHILD_TICKS: u64 = 60_000;
/// Rounds each neighbour must make, and ticks they must span together.
const NEIGHBOUR_ROUNDS: u64 = 200;
const NEIGHBOUR_TICKS: u64 = 40;
/// Iterations of a neighbour's spin between writing its state and reading it back.
const NEIGHBOUR_SPIN: u64 = 20_000;
/// Iterations of one registers spin, and the ticks the spins must span.
const SPIN_ITERATIONS: u64 = 200_000;
const SPIN_TICKS: u64 = 3;

/// A neighbour's MMX pattern and selectors (`ds`, `es`, `fs`, `gs`): different from the
/// other's, and from the null selectors an environment starts with, in every register.
const PATTERNS: [u64; 2] = [0x1111_2222_3333_0000, 0x4444_5555_6666_0000];
const SEGMENTS: [[u16; 4]; 2] = [[0x1b, 0x18, 0x1b, 0x18], [0x18, 0x1b, 0x18, 0x1b]];
/// Where the traps child writes the descriptor it leaves at `LDT_DESCRIPTOR`.
const LDT_ALIAS: u64 = MANAGED_START + 0x10_0000;
/// Where a child faults just before the traps child runs: mapped nowhere.
const SECRET_ADDRESS: u64 = 0x1234_5678_9ab8;
/// What a refused MMX read leaves.
const UNREAD: u64 = 0x0bad;

/// Exception vectors (Intel SDM vol. 3, table 6-1).
const DEBUG: u64 = 1;
const BREAKPOINT: u64 = 3;
const INVALID_OPCODE: u64 = 6;
const DEVICE_NOT_AVAILABLE: u64 = 7;
const GENERAL_PROTECTION: u64 = 13;
const PAGE_FAULT: u64 = 14;

/// What the child's upcall handler is to do: skip instructions of this length (0: no
/// exception is expected), counting them, and the vector of the last.
static SKIP_LENGTH: AtomicU64 = AtomicU64::new(0);
static SKIPPED: AtomicU64 = AtomicU64::new(0);
static LAST_VECTOR: AtomicU64 = AtomicU64::new(u64::MAX);
/// Upcalls for exceptions other than a page fault that carried an address, and the last.
static ADDRESSES_SEEN: AtomicU64 = AtomicU64::new(0);
static LAST_ADDRESS: AtomicU64 = AtomicU64::new(0);
/// Vectors outside {#UD, #NM} seen while skipping floating-point instructions.
static ODD_VECTORS: AtomicU64 = AtomicU64::new(0);

fn main(_argument: u64) -> u64 {
    let shared_page = SHARED.allocate().expect("allocate the shared page");
    SHARED.clear();
    let baseline = baseline();
    let witness = Witness::start().expect("start the witness");
    witness.expect_progress(1, CHILD_TICKS, "it started");

    // 1. Two neighbours side by side.
    let neighbours = NEIGHBOURS.map(|number| start_child(shared_page, number));
    let start = facts::ticks();
    let deadline = start + CHILD_TICKS;
    while NEIGHBOURS
        .iter()
        .any(|&n| report(n, ROUNDS) < NEIGHBOUR_ROUNDS)
        || facts::ticks() < start + NEIGHBOUR_TICKS
    {
        assert!(
            facts::ticks() < deadline,
            "the neighbours made too few rounds"
        );
        assert!(neighbours.iter().all(Child::is_alive), "a neighbour died");
        let _ = exo_abi::user::wait(Event::TIMER, 1);
    }
    for child in neighbours {
        child.destroy();
    }
    let mut failed = 0;
    let mut mmx_refused = 0;
    for n in NEIGHBOURS {
        let rounds = report(n, ROUNDS);
        let refused = report(n, MMX_REFUSED_ROUNDS);
        println!(
            "hostile-state: neighbour {n}: {rounds} rounds, MMX refused in {refused}, \
             foreign MMX values in {}, foreign selectors in {} (last seen {:#x})",
            report(n, MMX_FOREIGN),
            report(n, SEGMENTS_FOREIGN),
            report(n, LAST_SEEN),
        );
        if report(n, MMX_FOREIGN) != 0 || (refused != 0 && refused != rounds) {
            failed += 1;
        }
        mmx_refused += refused;
    }
    if failed == 0 {
        let how = if mmx_refused == 0 {
            "each kept its own"
        } else {
            "each was refused them every time"
        };
        check::ok(format_args!(
            "two neighbours writing the x87/MMX registers: {how}, neither saw the other's"
        ));
    }
    let segments_failed = NEIGHBOURS
        .iter()
        .filter(|&&n| report(n, SEGMENTS_FOREIGN) != 0)
        .count();
    if segments_failed == 0 {
        check::ok(format_args!(
            "two neighbours loading ds, es, fs, gs: each kept its own selectors"
        ));
    }
    failed += segments_failed as u64;
    witness.check_unharmed("the neighbours");

    // A neighbour's page fault, at an address it would keep to itself: CR2 keeps it
    // until the next page fault, whoever takes that.
    let faulting = Child::create(CHILD_QUOTA).expect("create the faulting child");
    faulting
        .start(|_| memory::read_u64(SECRET_ADDRESS), 0)
        .expect("start the faulting child");
    faulting.wait();
    faulting.destroy();

    // 2 and 3: one child each, judged by what it reports.
    for (number, what) in [
        (
            REGISTERS,
            "every general register came back as it went in, or as the exact result, \
             across sysret, switches, sleeps and preemption",
        ),
        (
            TRAPS,
            "x87, MMX, SSE, AVX, 30 privileged instructions and segment loads, and int n \
             for all 256 vectors each ended in the one upcall they should, none carrying the \
             address of a neighbour's page fault; a single-stepped `mov ss` then `syscall` \
             trapped only in ring 3",
        ),
    ] {
        let child = start_child(shared_page, number);
        let deadline = facts::ticks() + CHILD_TICKS;
        while child.is_alive() {
            assert!(facts::ticks() < deadline, "child {number} never ended");
            let _ = exo_abi::user::wait(Event::TIMER, 1);
        }
        match report(number, VERDICT) {
            1 => check::ok(format_args!("{what}")),
            0 => {
                println!("FAIL: child {number} ended before it reported");
                failed += 1;
            }
            verdict => {
                println!("FAIL: child {number} found {} failures", verdict - 1);
                failed += 1;
            }
        }
        witness.check_unharmed("a child");
    }

    witness.expect_progress(1, CHILD_TICKS, "the attacks");
    witness.check_unharmed("every attack");
    witness.stop();
    baseline.expect_came_back("hostile-state", "every attack");
    if failed > 0 {
        println!("FAIL: {failed} attacks got through (the lines above say which)");
        return 1;
    }
    check::all_passed("hostile-state");
    0
}

/// The counts once a witness and two children (the most this program holds at once)
/// have come and gone: what the parent keeps for good after holding them (a capability
/// table grown to hold them all) then exists already.
fn baseline() -> Baseline {
    let witness = Witness::start().expect("start a witness");
    let children = NEIGHBOURS.map(|_| Child::create(CHILD_QUOTA).expect("create a child"));
    for child in children {
        child.destroy();
    }
    witness.stop();
    Baseline::take()
}

/// Word `word` of child `number`'s report.
fn report(number: u64, word: u64) -> u64 {
    SHARED.read(REPORT_WORDS * number + word)
}

fn write_report(number: u64, word: u64, value: u64) {
    SHARED.write(REPORT_WORDS * number + word, value);
}

/// Creates child `number`, shares the report page with it and starts it.
fn start_child(shared_page: Handle, number: u64) -> Child {
    let child = Child::create(CHILD_QUOTA).expect("create a child");
    SHARED
        .share_with(shared_page, child.environment())
        .expect("share the page");
    child.start(run_child, number).expect("start the child");
    child
}

fn run_child(number: u64) -> u64 {
    upcall::register(handler).expect("register the upcall handler");
    match number {
        REGISTERS => finish(number, registers()),
        TRAPS => finish(number, traps()),
        _ => neighbour(number),
    }
}

fn finish(number: u64, failures: u64) -> u64 {
    write_report(number, VERDICT, 1 + failures);
    failures
}

/// Writes its state, spins, reads it back, for ever (the parent destroys it).
fn neighbour(number: u64) -> u64 {
    let pattern = PATTERNS[number as usize];
    let segments = SEGMENTS[number as usize];
    loop {
        SKIPPED.store(0, Ordering::Relaxed);
        SKIP_LENGTH.store(MMX_LENGTH, Ordering::Relaxed);
        state::write_mmx(pattern);
        state::write_segments(segments);
        spin(NEIGHBOUR_SPIN);
        let mmx = state::read_mmx(UNREAD);
        let seen_segments = state::read_segments();
        SKIP_LENGTH.store(0, Ordering::Relaxed);
        let refused = SKIPPED.load(Ordering::Relaxed);
        if refused != 0 {
            // Refused, then every one of the 16 instructions, with #UD or #NM only.
            if refused == 16 && ODD_VECTORS.load(Ordering::Relaxed) == 0 {
                add_report(number, MMX_REFUSED_ROUNDS);
            }
        } else if (0..8).any(|n| mmx[n] != pattern + n as u64) {
            let odd = (0..8).find(|&n| mmx[n] != pattern + n as u64).unwrap_or(0);
            write_report(number, LAST_SEEN, mmx[odd]);
            add_report(number, MMX_FOREIGN);
        }
        if seen_segments != segments {
            let packed = seen_segments
                .iter()
                .fold(0, |word, &s| (word << 16) | u64::from(s));
            write_report(number, LAST_SEEN, packed);
            add_report(number, SEGMENTS_FOREIGN);
        }
        add_report(number, ROUNDS);
    }
}

fn add_report(number: u64, word: u64) {
    SHARED.add(REPORT_WORDS * number + word, 1);
}

fn spin(iterations: u64) {
    for i in 0..iterations {
        core::hint::black_box(i);
    }
}

/// A system call the registers child makes, and what must come back.
struct Probe {
    what: &'static str,
    number: u64,
    rdi: u64,
    rsi: u64,
    /// `rax` and `rdx` after it.
    status: u64,
    rdx: u64,
    /// Registers the ABI names as further results of this call.
    results: &'static [usize],
}

/// The registers child: returns its failures.
fn registers() -> u64 {
    let own = Handle::SELF_ENVIRONMENT.to_raw();
    let probe = |what, number, rdi, rsi, status, rdx, results| Probe {
        what,
        number,
        rdi,
        rsi,
        status,
        rdx,
        results,
    };
    let info = (
        Sysnum::EnvironmentInfo as u64,
        EnvironmentAccount::Id as u64,
    );
    let timer = Event::TIMER.bits();
    let probes = [
        probe(
            "EnvironmentInfo",
            info.0,
            own,
            info.1,
            0,
            facts::environment_id(),
            &[RSI],
        ),
        probe("Null", Sysnum::Null as u64, 0, 0, 0, 0, &[RSI]),
        probe(
            "an unknown number",
            0xdead,
            0,
            0,
            Error::UnknownSystemCall.code(),
            0,
            &[RSI],
        ),
        probe("Yield", Sysnum::Yield as u64, 0, 0, 0, 0, &[RSI]),
        probe(
            "Wait for a tick",
            Sysnum::Wait as u64,
            timer,
            1,
            0,
            timer,
            &[RSI, RDI, R8, R9],
        ),
    ];
    let mut failures = 0;
    for (round, probe) in probes.iter().enumerate() {
        let what = probe.what;
        let sent = pattern(round as u64, probe.number, probe.rdi, probe.rsi);
        let mut seen = sent;
        state::registers_across_syscall(&mut seen);
        for index in 0..16 {
            let expected = match index {
                RAX => Some(probe.status),
                RDX => Some(probe.rdx),
                RCX | R11 | RSP => None, // rcx and r11: `syscall`'s; rsp: not loaded
                _ if probe.results.contains(&index) => None,
                _ => Some(sent[index]),
            };
            if let Some(expected) = expected.filter(|&value| value != seen[index]) {
                println!(
                    "FAIL: after {what}, {} is {:#x}, not {expected:#x}",
                    NAMES[index], seen[index]
                );
                failures += 1;
            }
        }
        // rcx is where `syscall` returns to; r11 the RFLAGS it saved.
        if seen[RCX] >= USER_MAP_END || !flags::ring3_invariant_holds(seen[R11]) {
            println!(
                "FAIL: after {what}, rcx {:#x} and r11 {:#x} are not a return address and \
                 RFLAGS",
                seen[RCX], seen[R11]
            );
            failures += 1;
        }
    }
    // Preemption: timer interrupts arrive during the loop and return by `iretq`, after
    // the witness (and the parent) ran.
    let start = facts::ticks();
    let mut spins = 0;
    while facts::ticks() < start + SPIN_TICKS {
        let mut sent = pattern(100 + spins, 0, 0, 0);
        sent[RCX] = SPIN_ITERATIONS;
        let mut seen = sent;
        state::registers_across_spin(&mut seen);
        for index in (0..16).filter(|&i| i != RCX && i != RSP) {
            if seen[index] != sent[index] {
                println!(
                    "FAIL: across a spin, {} became {:#x}, not {:#x}",
                    NAMES[index], seen[index], sent[index]
                );
                failures += 1;
            }
        }
        spins += 1;
    }
    failures
}

/// A distinct value for every register in `round`, with the call's number and its two
/// arguments in place.
fn pattern(round: u64, number: u64, rdi: u64, rsi: u64) -> [u64; 16] {
    let mut registers: [u64; 16] =
        core::array::from_fn(|index| 0x5eed_0000_0000_0000 | (round << 16) | index as u64);
    registers[RAX] = number;
    registers[RDI] = rdi;
    registers[RSI] = rsi;
    registers
}

/// The traps child: returns its failures.
fn traps() -> u64 {
    let mut failures = 0;
    // A valid descriptor where an LDT at its reset base (0) would keep entry 512.
    // It is written through a second mapping of the same frame, in the managed window.
    let (page, _) = exo_abi::user::frame_allocate(0).expect("a frame for the false LDT");
    for address in [LDT_DESCRIPTOR, LDT_ALIAS] {
        exo_abi::user::map(page, Handle::SELF_ENVIRONMENT, address, MapFlags::WRITE)
            .expect("map the false LDT");
    }
    memory::write_u64(LDT_ALIAS, USER_DATA_DESCRIPTOR);
    for instruction in FloatingPoint::ALL {
        println!("hostile-state: {instruction:?} in ring 3");
        match expect_trap(instruction.length(), || instruction.attempt()) {
            None => println!("hostile-state: {instruction:?} ran"),
            Some(INVALID_OPCODE | DEVICE_NOT_AVAILABLE) => {}
            Some(vector) => {
                println!("FAIL: {instruction:?} raised vector {vector}");
                failures += 1;
            }
        }
    }
    for instruction in Privileged::ALL {
        println!("hostile-state: {instruction:?} in ring 3");
        match expect_trap(instruction.length(), || instruction.attempt()) {
            Some(GENERAL_PROTECTION | INVALID_OPCODE) => {}
            outcome => {
                println!("FAIL: {instruction:?} gave {outcome:?}, not #GP or #UD");
                failures += 1;
            }
        }
    }
    println!("hostile-state: single-stepping mov ss then syscall");
    SKIPPED.store(0, Ordering::Relaxed);
    SKIP_LENGTH.store(u64::MAX, Ordering::Relaxed);
    let status = state::single_step_mov_ss_syscall();
    SKIP_LENGTH.store(0, Ordering::Relaxed);
    let steps = SKIPPED.load(Ordering::Relaxed);
    if status != 0 || steps == 0 || LAST_VECTOR.load(Ordering::Relaxed) != DEBUG {
        println!("FAIL: single-stepping mov ss and syscall: status {status}, {steps} traps");
        failures += 1;
    }
    println!("hostile-state: int n for every n");
    for vector in 0..=255u8 {
        let expected = if u64::from(vector) == BREAKPOINT {
            BREAKPOINT
        } else {
            GENERAL_PROTECTION
        };
        let outcome = expect_trap(INT_LENGTH, || state::int_vector(vector));
        if outcome != Some(expected) {
            println!("FAIL: int {vector} gave {outcome:?}, not vector {expected}");
            failures += 1;
        }
    }
    let seen = ADDRESSES_SEEN.load(Ordering::Relaxed);
    if seen != 0 {
        println!(
            "FAIL: {seen} upcalls for exceptions other than a page fault carried an address, \
             the last {:#x} (a neighbour faulted at {SECRET_ADDRESS:#x})",
            LAST_ADDRESS.load(Ordering::Relaxed)
        );
        failures += 1;
    }
    failures
}

/// Runs `attempt`, letting the handler skip `length` bytes at an exception; returns the
/// vector of the one exception it raised, or `None` if it ran.
fn expect_trap(length: u64, attempt: impl FnOnce()) -> Option<u64> {
    SKIPPED.store(0, Ordering::Relaxed);
    SKIP_LENGTH.store(length, Ordering::Relaxed);
    attempt();
    SKIP_LENGTH.store(0, Ordering::Relaxed);
    match SKIPPED.load(Ordering::Relaxed) {
        0 => None,
        1 => Some(LAST_VECTOR.load(Ordering::Relaxed)),
        more => {
            println!("FAIL: one instruction gave {more} upcalls");
            Some(u64::MAX)
        }
    }
}

/// Every child's upcall handler: skips an instruction it was told to expect.
fn handler(frame: &mut UpcallFrame) {
    let length = SKIP_LENGTH.load(Ordering::Relaxed);
    match frame.reason() {
        Some(UpcallReason::Fault) if length != 0 => {
            let vector = frame.info[0];
            if vector != PAGE_FAULT && frame.info[2] != 0 {
                ADDRESSES_SEEN.fetch_add(1, Ordering::Relaxed);
                LAST_ADDRESS.store(frame.info[2], Ordering::Relaxed);
            }
            SKIPPED.fetch_add(1, Ordering::Relaxed);
            LAST_VECTOR.store(vector, Ordering::Relaxed);
            if length == MMX_LENGTH && vector != INVALID_OPCODE && vector != DEVICE_NOT_AVAILABLE {
                ODD_VECTORS.fetch_add(1, Ordering::Relaxed);
            }
            // A trap is reported after the instruction; a fault at it.
            if vector != BREAKPOINT && vector != DEBUG {
                frame.registers.rip += length;
            }
        }
        _ => panic!(
            "unexpected upcall: reason {} info {:#x?} at rip {:#x}",
            frame.reason, frame.info, frame.registers.rip
        ),
    }
}
