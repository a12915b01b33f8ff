//! The same three busy threads under two policies, with an observable
//! difference in order. A low-priority thread `L` is spawned first, then two
//! high-priority threads `H1` and `H2`; each logs when it starts and ends,
//! and works (never yielding) until 10 ticks have passed since it started.
//! `main` spawns them at the highest priority, then joins them.
//!
//! - `Priority`: `H1` and `H2` take turns (same level, round robin) and
//!   both finish before `L` gets the CPU at all.
//! - `RoundRobin`: priorities are ignored; `L`, spawned first, starts first,
//!   and all three have started before any finishes.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use libos_posixish::println;
use libos_posixish::thread::{self, Mutex, Priority, RoundRobin, Scheduler};

use userapps_posix::check::{self, check};

libos_posixish::main!(main);

const LOW: u8 = 10;
const HIGH: u8 = 200;
const WORK_TICKS: u64 = 10;

/// Runs `L`, `H1`, `H2` under `policy`; returns the events in order
/// ("L+" when L starts, "L-" when it ends).
fn run(policy: Box<dyn Scheduler>) -> Vec<String> {
    thread::set_scheduler(policy).expect("no other thread is alive");
    // Outrank the workers while spawning them: under Priority a slot start
    // between two spawns must not start one before all three exist.
    thread::set_priority(u8::MAX);
    let log = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = [("L", LOW), ("H1", HIGH), ("H2", HIGH)]
        .into_iter()
        .map(|(name, priority)| {
            let log = log.clone();
            thread::spawn_with_priority(priority, move || {
                log.lock().push(format!("{name}+"));
                let start = thread::ticks();
                while thread::ticks() < start + WORK_TICKS {
                    core::hint::spin_loop();
                }
                log.lock().push(format!("{name}-"));
            })
        })
        .collect();
    for handle in handles {
        handle.join();
    }
    log.lock().clone()
}

fn position(events: &[String], event: &str) -> usize {
    events
        .iter()
        .position(|seen| seen == event)
        .unwrap_or(usize::MAX)
}

fn main(_arguments: &[&str]) -> i32 {
    let mut ok = true;

    let by_priority = run(Box::new(Priority::new()));
    println!("threads-priority: Priority:   {}", by_priority.join(" "));
    let at = |event| position(&by_priority, event);
    ok &= check(
        "Priority: both high threads finished before the low one started",
        at("H1-") < at("L+") && at("H2-") < at("L+") && at("L+") < at("L-"),
    );
    ok &= check(
        "Priority: the two high threads took turns (both started before either finished)",
        at("H1+").max(at("H2+")) < at("H1-").min(at("H2-")),
    );

    let by_round_robin = run(Box::new(RoundRobin::new()));
    println!("threads-priority: RoundRobin: {}", by_round_robin.join(" "));
    let at = |event| position(&by_round_robin, event);
    ok &= check(
        "RoundRobin: the low thread, spawned first, started first",
        at("L+") == 0,
    );
    ok &= check(
        "RoundRobin: all three started before any finished",
        ["L+", "H1+", "H2+"]
            .iter()
            .all(|start| ["L-", "H1-", "H2-"].iter().all(|end| at(start) < at(end))),
    );
    ok &= check(
        "the two policies ran the same program in a different order",
        by_priority != by_round_robin,
    );

    if ok {
        check::all_passed("threads-priority");
        0
    } else {
        1
    }
}
