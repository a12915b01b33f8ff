//! Bad input hurts only its sender: system calls with garbage numbers and
//! arguments get typed errors, and a program that turns the system-call
//! interface against itself is destroyed alone, leaving nothing behind.
//!
//! 1. A child issues 20,000 random calls (all but those that could take its
//!    own memory away) and checks every refusal is a typed error; it must
//!    survive them all, and reports how it fared on a page it shares with
//!    the parent, which judges it.
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
use userapps::hostile::shared::Words;
use userapps::hostile::{self, Garbage};
use userapps::layout::MANAGED_START;
use userapps::println;
use userapps::spawn::Child;

userapps::entry!(main);

const POLITE_CALLS: u64 = 20_000;
const CHAOS_CHILDREN: u64 = 20;
const CHAOS_CALLS: u64 = 2_000;
const CHILD_QUOTA: u64 = 512;

/// Where the polite child reports: its calls made, refused with a typed error, and
/// answered with an untyped status (the number of the first such call, plus 1).
const POLITE_REPORT: Words = Words::at(MANAGED_START);
const CALLS_MADE: u64 = 0;
const CALLS_REFUSED: u64 = 1;
const UNTYPED: u64 = 2;

fn main(_argument: u64) -> u64 {
    let unknown = hostile::call(0xdead_beef, [0; 6]);
    if unknown != Some(Err(Error::UnknownSystemCall.code())) {
        println!("FAIL: an unknown system call gave {unknown:?}");
        return 1;
    }
    check::ok("an unknown system call refused (UnknownSystemCall)");

    let report_page = POLITE_REPORT.allocate().expect("allocate the report page");
    POLITE_REPORT.clear();
    let polite_child = Child::create(CHILD_QUOTA).expect("create the polite child");
    POLITE_REPORT
        .share_with(report_page, polite_child.environment())
        .expect("share the report page");
    polite_child
        .start(polite, 0x5eed)
        .expect("start the polite child");
    polite_child.wait();
    drop(polite_child);
    let untyped = POLITE_REPORT.read(UNTYPED);
    assert_eq!(
        untyped,
        0,
        "system call {} gave an untyped status",
        untyped.wrapping_sub(1)
    );
    assert_eq!(
        POLITE_REPORT.read(CALLS_MADE),
        POLITE_CALLS,
        "the polite child survived them all"
    );
    assert!(POLITE_REPORT.read(CALLS_REFUSED) > 0, "garbage was refused");
    check::ok(format_args!(
        "{POLITE_CALLS} garbage calls: {} refused, each with a typed error; the caller survived",
        POLITE_REPORT.read(CALLS_REFUSED)
    ));
    let (free_before, _) = user::frame_counts();

    for seed in 0..CHAOS_CHILDREN {
        let child = hostile::spawn_chaos(seed * 7919 + 1, CHAOS_CALLS, CHILD_QUOTA)
            .expect("spawn a chaos child");
        child.wait();
    }
    check::ok(format_args!(
        "{CHAOS_CHILDREN} chaos children ran and ended; parent unharmed"
    ));

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
                POLITE_REPORT.write(UNTYPED, number + 1);
                return 1;
            }
        }
        POLITE_REPORT.write(CALLS_MADE, succeeded + refused + skipped);
        POLITE_REPORT.write(CALLS_REFUSED, refused);
    }
    let kinds = seen.iter().filter(|&&seen| seen).count();
    println!(
        "hostile-syscalls: {POLITE_CALLS} garbage calls: {succeeded} succeeded, {refused} refused \
         with typed errors ({kinds} kinds), {skipped} skipped"
    );
    0
}
