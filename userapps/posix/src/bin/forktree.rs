//! A tree of processes made by `fork`, as in JOS's forktree: each process
//! prints its path from the root ('' for the root, then '0', '1', '00', …)
//! and forks two children until the path is three long. Every process waits
//! for its children (a child ends with its parent) and exits 0 only if they
//! all did.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use libos_posixish::fork::fork;
use libos_posixish::process::{self, ExitStatus};
use libos_posixish::{exit, getpid, println};

use userapps_posix::check::{self, check};

libos_posixish::main!(main);

const DEPTH: usize = 3;

/// Prints `path`, forks the subtree below it; true if every descendant exited 0.
fn branch(path: &str) -> bool {
    println!("{:04x}: I am '{path}'", getpid());
    if path.len() >= DEPTH {
        return true;
    }
    let mut children = Vec::new();
    for side in ['0', '1'] {
        let mut child_path = String::from(path);
        child_path.push(side);
        match fork() {
            Ok(0) => exit(if branch(&child_path) { 0 } else { 1 }),
            Ok(pid) => children.push(pid),
            Err(error) => {
                println!("{path}: fork failed: {error:?}");
                return false;
            }
        }
    }
    let mut ok = true;
    for pid in children {
        ok &= process::wait(pid) == Ok(ExitStatus::Exited(0));
    }
    ok
}

fn main(_arguments: &[&str]) -> i32 {
    println!("forktree: the root is process {}", getpid());
    if check("all 14 descendants exited with status 0", branch("")) {
        check::all_passed("forktree");
        0
    } else {
        1
    }
}
