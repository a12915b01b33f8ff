//! A fork bomb on the library OS is refused, not fatal: an ordinary POSIX-ish program that
//! forks in a loop, every child staying alive, gets an error from `fork` once its accounts
//! are spent — and the kernel, which before kernel memory was charged panicked at the 25th fork (its heap
//! full of mapping records), goes on.
//!
//! Two bombs, each until `fork` fails (or an absurd number of forks succeeded):
//! 1. `fork_with_quota` of a small fixed quota, so that many children fit and kernel
//!    memory, not frames, may run out first;
//! 2. plain `fork()`, which lends each child half of what the parent may still allocate,
//!    so the quotas shrink until a child no longer fits.
//!
//! After each, every child is killed and reaped, and a fork whose child exits at once
//! must work again: what the bomb held came back.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use libos_posixish::fork::{fork, fork_with_quota};
use libos_posixish::process::{self, ExitStatus};
use libos_posixish::{Errno, exit, thread};

use userapps_posix::check::{self, check};

libos_posixish::main!(main);

/// More forks than any account here pays for: reaching it means `fork` was never refused.
const MAX_FORKS: usize = 2000;
/// The frame quota of each child of the first bomb.
const SMALL_QUOTA: u64 = 128;
/// Ticks a bomb's child sleeps at a time, for ever.
const NAP_TICKS: u64 = 1_000_000;

fn main(_arguments: &[&str]) -> i32 {
    for (name, quota) in [
        ("fork_with_quota(128)", Some(SMALL_QUOTA)),
        ("fork()", None),
    ] {
        let children = bomb(name, quota);
        let count = children.len();
        for pid in children {
            process::kill(pid).expect("kill a child of the bomb");
            let status = process::wait(pid).expect("reap a child of the bomb");
            assert_eq!(status, ExitStatus::Killed, "a killed child");
        }
        check(
            format_args!("{name}: {count} children killed and reaped"),
            true,
        );
        match fork() {
            Ok(0) => exit(0),
            Ok(pid) => assert_eq!(process::wait(pid), Ok(ExitStatus::Exited(0))),
            Err(errno) => panic!("{name}: after the bomb a fork still fails: {errno:?}"),
        }
        check(format_args!("{name}: afterwards a fork works again"), true);
    }
    check::all_passed("hostile-fork");
    0
}

/// Forks (with `quota`, or `fork`'s own choice) until refused; every child sleeps for
/// ever. Returns the children.
fn bomb(name: &str, quota: Option<u64>) -> Vec<u64> {
    let mut children = Vec::new();
    let refusal: Errno = loop {
        assert!(
            children.len() < MAX_FORKS,
            "{name}: {MAX_FORKS} forks and never refused"
        );
        let forked = match quota {
            Some(quota) => fork_with_quota(quota),
            None => fork(),
        };
        match forked {
            Ok(0) => loop {
                thread::sleep(NAP_TICKS);
            },
            Ok(pid) => children.push(pid),
            Err(errno) => break errno,
        }
    };
    check(
        format_args!(
            "{name}: refused with {refusal:?} after {} children",
            children.len()
        ),
        true,
    );
    children
}
