//! How test programs report: one `ok:` line per check, and a refusal that
//! must be exactly the typed error expected.

use core::fmt::Debug;

use exo_abi::Error;

use crate::println;

/// Reports a passed check.
pub fn ok(what: &str) {
    println!("ok: {what}");
}

/// Checks that `result` is the refusal `expected`; panics (failing the
/// program) on anything else.
pub fn expect_error<T: Debug>(what: &str, result: Result<T, Error>, expected: Error) {
    match result {
        Err(error) if error == expected => println!("ok: {what} refused ({expected:?})"),
        other => panic!("{what}: expected Err({expected:?}), got {other:?}"),
    }
}
