//! How test programs on the library OS report, like `userapps::check` for the bare
//! runtime: one `ok:` (or `FAIL:`) line per check, and at the end the number of checks
//! that passed (`checks: N passed`), which the scenario table compares with the number
//! it expects — so a check skipped is as visible as a check failed. A program still
//! decides its own exit status from what [`check`] returns.
//!
//! The count lives in the process's own memory: a forked child starts from its parent's
//! count and keeps its own, and only a program that calls [`all_passed`] reports one.

use core::fmt::Display;
use core::sync::atomic::{AtomicU32, Ordering};

use libos_posixish::println;

/// The checks passed so far in this process (threads share it).
static PASSED: AtomicU32 = AtomicU32::new(0);

/// Reports one check (`what` may be `format_args!(…)`) and returns whether it passed.
pub fn check(what: impl Display, passed: bool) -> bool {
    if passed {
        PASSED.fetch_add(1, Ordering::Relaxed);
        println!("ok: {what}");
    } else {
        println!("FAIL: {what}");
    }
    passed
}

/// Ends a test program's report: every check passed, and how many there were.
pub fn all_passed(program: &str) {
    println!("{program}: all checks passed");
    println!("checks: {} passed", PASSED.load(Ordering::Relaxed));
}
