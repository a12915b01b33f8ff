//! A library-OS scheduler entry: two user threads in one environment, switched at slot starts.
//!
//! The program registers its upcall handler with `UpcallOptions::SCHEDULER`, so the kernel
//! enters it at the start of every slot the environment gets, with the registers it
//! interrupted at the end of the previous one. The handler is a round-robin scheduler of two
//! threads: it saves those registers as the running thread's, and leaves the other thread's
//! in the frame to be resumed. Thread A is `main` on the first stack; thread B starts at
//! [`thread_b`] on a stack of its own, from registers built for it. Each counts in a loop
//! of its own and never yields: only the slot starts switch them. Thread A ends the test
//! once both have counted in several slices each.
//!
//! This is the mechanism a library OS's threads rest on: the kernel hands out slices, the
//! library OS decides what runs in them.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use exo_abi::counters::Counter;
use exo_abi::upcall::{UpcallFrame, UpcallReason};
use userapps::check::{self, ok};
use userapps::thread::{SavedRegisters, ThreadStack, initial_registers};
use userapps::{facts, println, upcall};

userapps::entry!(main);

const THREAD_COUNT: usize = 2;
const A: usize = 0;
const B: usize = 1;
/// Slices each thread must have run in, and iterations each must have counted.
const SLICES_WANTED: u64 = 10;
const ITERATIONS_WANTED: u64 = 10_000;

/// Thread B's stack: 16 KiB.
static STACK_B: ThreadStack<2048> = ThreadStack::new();
/// The registers of each thread while it does not run.
static SAVED: [SavedRegisters; THREAD_COUNT] = [const { SavedRegisters::new() }; THREAD_COUNT];
/// The thread the handler resumed last: the one a slot start interrupts.
static RUNNING: AtomicUsize = AtomicUsize::new(A);
/// Per thread: slices it was given, and iterations it counted.
static SLICES: [AtomicU64; THREAD_COUNT] = [const { AtomicU64::new(0) }; THREAD_COUNT];
static ITERATIONS: [AtomicU64; THREAD_COUNT] = [const { AtomicU64::new(0) }; THREAD_COUNT];
/// Slot-start upcalls seen, and the facts page's `slots_run` at the first.
static SLICE_STARTS: AtomicU64 = AtomicU64::new(0);
static FIRST_SLOTS_RUN: AtomicU64 = AtomicU64::new(0);
/// Set (to 1 + the thread) if a thread found its registers were not as it left them.
static CORRUPTED: AtomicU64 = AtomicU64::new(0);
/// Set if the slot-start upcall's information disagreed with the facts page.
static BAD_INFO: AtomicU64 = AtomicU64::new(0);

/// The scheduler entry: switches to the other thread at every slot start.
fn schedule(frame: &mut UpcallFrame) {
    match frame.reason() {
        Some(UpcallReason::SliceStart) => {}
        _ => panic!(
            "threads-test: unexpected upcall {} {:#x?} at {:#x}",
            frame.reason, frame.info, frame.registers.rip
        ),
    }
    let [slot, tick, _] = frame.info;
    if slot >= facts::slots() || tick > facts::ticks() {
        BAD_INFO.store(slot << 32 | tick, Ordering::Relaxed);
    }
    if SLICE_STARTS.fetch_add(1, Ordering::Relaxed) == 0 {
        FIRST_SLOTS_RUN.store(facts::slots_run(), Ordering::Relaxed);
    }
    let interrupted = RUNNING.load(Ordering::Relaxed);
    let next = (interrupted + 1) % THREAD_COUNT;
    SAVED[interrupted].save(&frame.registers);
    frame.registers = SAVED[next].load();
    RUNNING.store(next, Ordering::Relaxed);
    SLICES[next].fetch_add(1, Ordering::Relaxed);
}

/// Counts one iteration of `thread`, which keeps its own count in a local (a register):
/// if a switch lost or mixed up the thread's registers, the two disagree.
fn count(thread: usize, local: &mut u64) {
    if ITERATIONS[thread].load(Ordering::Relaxed) != *local {
        CORRUPTED.store(1 + thread as u64, Ordering::Relaxed);
    }
    *local += 1;
    ITERATIONS[thread].store(*local, Ordering::Relaxed);
}

/// Thread B: counts for ever; it never ends, the environment does.
extern "C" fn thread_b() -> ! {
    let mut local = 0;
    loop {
        count(B, &mut local);
    }
}

fn both_threads_ran_enough() -> bool {
    (0..THREAD_COUNT).all(|thread| {
        SLICES[thread].load(Ordering::Relaxed) >= SLICES_WANTED
            && ITERATIONS[thread].load(Ordering::Relaxed) >= ITERATIONS_WANTED
    })
}

fn main(_argument: u64) -> u64 {
    let b = initial_registers(thread_b, STACK_B.top());
    SAVED[B].save(&b);
    println!(
        "threads-test: thread B starts at {:#x} with rsp {:#x}",
        b.rip, b.rsp
    );
    let (tick_before, upcalls_before) = (facts::ticks(), facts::counter(Counter::Upcalls));
    upcall::register_scheduler(schedule).expect("register the scheduler entry");

    // Thread A: count, and end the test once both threads have had their share.
    let mut local = 0;
    while !both_threads_ran_enough() {
        count(A, &mut local);
    }
    let ticks = facts::ticks() - tick_before;
    let upcalls = facts::counter(Counter::Upcalls) - upcalls_before;
    let starts = SLICE_STARTS.load(Ordering::Relaxed);
    let slots_run = facts::slots_run() - FIRST_SLOTS_RUN.load(Ordering::Relaxed);
    let [slices_a, slices_b] = SLICES
        .each_ref()
        .map(|slices| slices.load(Ordering::Relaxed));
    let [iterations_a, iterations_b] = ITERATIONS
        .each_ref()
        .map(|iterations| iterations.load(Ordering::Relaxed));
    println!(
        "threads-test: {starts} slot-start upcalls in {ticks} ticks ({slots_run} slots run \
         since the first); thread A: {slices_a} slices, {iterations_a} iterations; thread B: \
         {slices_b} slices, {iterations_b} iterations"
    );
    assert_eq!(
        CORRUPTED.load(Ordering::Relaxed),
        0,
        "a thread's registers changed while it was switched out"
    );
    ok("each thread's registers survived every switch");
    assert_eq!(
        BAD_INFO.load(Ordering::Relaxed),
        0,
        "slot-start upcall info disagrees with the facts page"
    );
    // One either way: whether the facts page read in the first upcall already counted that
    // slot, and its upcall, depends on when in the trap the kernel rewrites the page.
    assert!(
        starts.abs_diff(slots_run) <= 1,
        "one slot-start upcall per slot run"
    );
    assert!(
        upcalls + 1 >= starts,
        "the kernel counted {upcalls} upcalls for {starts} slot starts"
    );
    // Round robin: thread A was interrupted first, so B got the odd slices.
    assert!(slices_b.abs_diff(slices_a) <= 1, "the threads alternate");
    ok("a scheduler entry switched between two user threads at every slot start");
    check::all_passed("threads-test");
    0
}
