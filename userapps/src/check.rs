//! How test programs report: one `ok:` line per check, a refusal that must be exactly the
//! typed error expected, and at the end the number of checks that passed (`checks: N
//! passed`), which the scenario table compares with the number it expects — so a check
//! skipped is as visible as a check failed. A failed check panics, failing the program.
//!
//! The count lives in this program's own memory: a child spawned from the same image
//! keeps its own, and only a program that calls [`all_passed`] reports one.

use core::fmt::{Debug, Display};
use core::sync::atomic::{AtomicU32, Ordering};

use exo_abi::Error;

use crate::println;

/// The checks passed so far in this program.
static PASSED: AtomicU32 = AtomicU32::new(0);

/// Reports a passed check (`what` may be `format_args!(…)`).
pub fn ok(what: impl Display) {
    PASSED.fetch_add(1, Ordering::Relaxed);
    println!("ok: {what}");
}

/// Checks that `result` is the refusal `expected`; panics (failing the program) on
/// anything else.
pub fn expect_error<T: Debug>(what: &str, result: Result<T, Error>, expected: Error) {
    match result {
        Err(error) if error == expected => ok(format_args!("{what} refused ({expected:?})")),
        other => panic!("{what}: expected Err({expected:?}), got {other:?}"),
    }
}

/// Ends a test program's report: every check passed, and how many there were.
pub fn all_passed(program: &str) {
    println!("{program}: all checks passed");
    println!("checks: {} passed", PASSED.load(Ordering::Relaxed));
}
