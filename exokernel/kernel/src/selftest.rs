//! Kernel self-tests, chosen with `test=NAME` on the command line.
//!
//! `cargo xtask test` boots one per scenario and matches the serial output
//! and exit code. Some end in a deliberate failure (a fault, a panic): the
//! scenario passes when the kernel reports it and exits with the failure code.
//! Tests of system calls and environments are user programs, not these.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::hint::black_box;

use exo_kernel_core::memory_map::FRAME_SIZE;

use crate::arch::cpu;
use crate::memory::{frames, heap, phys_to_virt};
use crate::qemu::{self, ExitCode};
use crate::{println, time};

const TESTS: [(&str, fn() -> !); 5] = [
    ("boot", boot),
    ("timer", timer),
    ("page-fault", page_fault),
    ("panic", deliberate_panic),
    ("stack-overflow", stack_overflow),
];

/// Runs the self-test `name`; never returns.
pub fn run(name: &str) -> ! {
    match TESTS.iter().find(|(test, _)| *test == name) {
        Some((_, test)) => test(),
        None => {
            println!("unknown test {name:?}; known tests:");
            for (test, _) in TESTS {
                println!("  {test}");
            }
            qemu::exit(ExitCode::Failure)
        }
    }
}

fn check(condition: bool, what: &str) {
    if !condition {
        println!("check failed: {what}");
        qemu::exit(ExitCode::Failure);
    }
}

/// The frame allocator and heap work and account for every byte.
fn boot() -> ! {
    let before = frames::counts();
    let mut taken = Vec::new();
    for index in 0..100u64 {
        let address = frames::allocate().expect("frame");
        check(
            address.is_multiple_of(FRAME_SIZE),
            "frames are page-aligned",
        );
        // Each frame is usable memory, reachable through the direct map.
        let word = phys_to_virt(address).as_mut_ptr::<u64>();
        // SAFETY: the frame was just allocated to this test.
        unsafe { word.write_volatile(index) };
        taken.push(address);
    }
    for (index, &address) in taken.iter().enumerate() {
        // SAFETY: as above; each frame still belongs to this test.
        let value = unsafe { phys_to_virt(address).as_ptr::<u64>().read_volatile() };
        check(
            value == index as u64,
            "frames are distinct and keep their contents",
        );
    }
    let run = frames::allocate_run(4).expect("16-frame run");
    check(
        run.is_multiple_of(16 * FRAME_SIZE),
        "runs are aligned to their size",
    );
    check(
        frames::counts().free == before.free - 116,
        "free count follows allocation",
    );
    for address in taken {
        frames::free(address).expect("free");
    }
    frames::free_run(run, 4).expect("free run");
    check(frames::free(run).is_err(), "double free is refused");
    check(
        frames::counts().free == before.free,
        "every frame came back",
    );

    let heap_before = heap::used_bytes();
    {
        let numbers: Vec<u64> = (0..10_000).collect();
        check(
            numbers.iter().sum::<u64>() == 49_995_000,
            "heap vector holds its values",
        );
        let mut map = BTreeMap::new();
        for number in 0..500u64 {
            map.insert(number * 7 % 500, number);
        }
        check(map.len() == 500, "heap map holds its entries");
    }
    check(
        heap::used_bytes() == heap_before,
        "heap returns what it lent",
    );
    println!("frames: allocate/free of 116 frames balanced; heap: self-test ok");
    println!("test boot: ok");
    qemu::exit(ExitCode::Success)
}

/// Timer interrupts arrive while the CPU idles.
fn timer() -> ! {
    const WANTED: u64 = 20;
    let start = time::ticks();
    let tsc_start = cpu::rdtsc();
    while time::ticks() < start + WANTED {
        cpu::wait_for_interrupt();
    }
    let cycles_per_tick = (cpu::rdtsc() - tsc_start) / WANTED;
    println!(
        "timer: {WANTED} ticks at {} Hz, {cycles_per_tick} TSC cycles per tick",
        time::timer_hz()
    );
    println!("test timer: ok");
    qemu::exit(ExitCode::Success)
}

/// A read of an unmapped address gives a page-fault report.
fn page_fault() -> ! {
    println!("test page-fault: reading unmapped address 0xdeadbeef");
    // SAFETY: deliberately unsound: nothing is mapped there, and the test
    // expects the resulting page fault to end the run.
    let value = unsafe { core::ptr::read_volatile(0xdead_beef as *const u8) };
    println!("read {value} from an unmapped address: page fault missing");
    qemu::exit(ExitCode::Failure)
}

fn deliberate_panic() -> ! {
    panic!("deliberate panic (test=panic)");
}

/// Unbounded recursion runs into the stack's guard page; the page fault
/// cannot be delivered on the full stack, so the CPU raises a double fault,
/// which runs on its own stack and reports.
fn stack_overflow() -> ! {
    fn recurse(depth: u64) -> u64 {
        let frame = black_box([depth; 64]);
        // The condition is never false, but the compiler cannot know that.
        if black_box(true) {
            recurse(depth + 1) + frame[0]
        } else {
            depth
        }
    }
    println!("test stack-overflow: recursing until the guard page");
    let depth = recurse(black_box(0));
    println!("recursion returned {depth}: no overflow");
    qemu::exit(ExitCode::Failure)
}
