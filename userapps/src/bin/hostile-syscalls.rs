//! Bad input hurts only its sender: system calls with garbage numbers and
//! arguments get typed errors, and a program that turns the system-call
//! interface against itself is destroyed alone, leaving nothing behind.
//!
//! 1. A child issues 20,000 random calls (all but those that could take its
//!    own memory away) and checks every refusal is a typed error; it must
//!    survive them all.
//! 2. Twenty chaos children issue 2,000 random calls each, including
//!    unmapping their own pages, dropping their own capabilities and
//!    destroying themselves. Each ends one way or another.
//! 3. The parent checks that every frame came back. It counts from after the
//!    first child is gone, because spawning the first child builds page
//!    tables in the parent (for its scratch page) that it keeps.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::Error;
use exo_abi::user;
use userapps::check;
use userapps::hostile::{self, Garbage};
use userapps::println;
use userapps::spawn;

userapps::entry!(main);

const POLITE_CALLS: u64 = 20_000;
const CHAOS_CHILDREN: u64 = 20;
const CHAOS_CALLS: u64 = 2_000;
const CHILD_QUOTA: u64 = 512;

fn main(_argument: u64) -> u64 {
    let unknown = hostile::call(0xdead_beef, [0; 6]);
    if unknown != Some(Err(Error::UnknownSystemCall.code())) {
        println!("FAIL: an unknown system call gave {unknown:?}");
        return 1;
    }
    check::ok("an unknown system call refused (UnknownSystemCall)");

    let polite = spawn::spawn(polite, 0x5eed, CHILD_QUOTA).expect("spawn the polite child");
    polite.wait();
    drop(polite);
    let (free_before, _) = user::frame_counts();

    for seed in 0..CHAOS_CHILDREN {
        let child = hostile::spawn_chaos(seed * 7919 + 1, CHAOS_CALLS, CHILD_QUOTA)
            .expect("spawn a chaos child");
        child.wait();
    }
    println!("hostile-syscalls: {CHAOS_CHILDREN} chaos children ran and ended; parent unharmed");

    let (free_after, _) = user::frame_counts();
    println!("hostile-syscalls: free frames before={free_before} after={free_after}");
    if free_after != free_before {
        println!("FAIL: frames were lost");
        return 1;
    }
    check::ok("every frame came back after the chaos children");
    check::all_passed("hostile-syscalls");
    0
}

/// Random calls the child can survive; every refusal must be a typed error.
fn polite(seed: u64) -> u64 {
    let mut garbage = Garbage::new(seed);
    let (mut succeeded, mut refused, mut skipped) = (0u64, 0u64, 0u64);
    let mut seen = [false; 32];
    for _ in 0..POLITE_CALLS {
        let number = garbage.number();
        let mut arguments = garbage.arguments();
        hostile::tame(number, &mut arguments);
        match hostile::call(number, arguments) {
            None => skipped += 1,
            Some(Ok(_)) => succeeded += 1,
            Some(Err(code)) if hostile::is_typed_error(code) => {
                refused += 1;
                seen[code as usize % seen.len()] = true;
            }
            Some(Err(code)) => {
                println!("FAIL: system call {number} gave untyped status {code}");
                return 1;
            }
        }
    }
    let kinds = seen.iter().filter(|&&seen| seen).count();
    println!(
        "hostile-syscalls: {POLITE_CALLS} garbage calls: {succeeded} succeeded, {refused} refused \
         with typed errors ({kinds} kinds), {skipped} skipped"
    );
    0
}
