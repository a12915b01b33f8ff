//! The machine's floors for what the kernel does, measured at boot when the
//! command line says `floors=on` (`cargo xtask bench` does).
//!
//! A floor is the least an operation can cost on this machine, whatever a
//! kernel does around it; the bench prints each of exo's primitives beside
//! its floor (docs/07). Two floors are measured from user mode by the
//! `bench` program: a system call answered in the entry stub
//! (`Sysnum::Null`) and an exception delivered to the upcall handler and
//! returned. The one measured here needs ring 0: an address-space switch,
//! there and back, is two CR3 loads. Under TCG each load also empties
//! QEMU's software TLB, so every page touched afterwards is translated
//! again; that cost is the switch's too, but it lands on whoever runs next,
//! so it is not in this floor.
//!
//! Each floor is printed like a benchmark line, `BENCH <name> <median>
//! cycles n=<repetitions>`, for the bench to read from the serial log.

use alloc::vec::Vec;

use crate::arch::cpu;
use crate::memory::address_space::AddressSpace;
use crate::memory::paging;
use crate::println;

/// Repetitions of each floor, as in the `bench` program's default.
const REPETITIONS: usize = 10_000;

/// Measures and prints every floor the kernel can measure.
pub fn measure() {
    let Ok(other) = AddressSpace::new() else {
        println!("floors: no frame for a second address space; none measured");
        return;
    };
    let mut samples = Vec::with_capacity(REPETITIONS);
    for _ in 0..REPETITIONS {
        let start = cpu::rdtsc();
        other.activate();
        paging::load_kernel_tables();
        let end = cpu::rdtsc();
        samples.push(end - start);
    }
    print_median("address-space-switch-floor", &mut samples);
    other.destroy();
}

/// Prints the lower median of `samples` as a benchmark line.
fn print_median(name: &str, samples: &mut [u64]) {
    samples.sort_unstable();
    let median = samples[(samples.len() - 1) / 2];
    println!("BENCH {name} {median} cycles n={}", samples.len());
}
