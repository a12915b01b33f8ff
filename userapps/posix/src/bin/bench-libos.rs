//! Microbenchmarks of the library OS, in TSC cycles: the median of many repetitions, each
//! timed on its own with `tsc()`, one line each (the format `bench` and the Linux
//! counterparts print), then `BENCH-DONE`.
//!
//! - `spawn`: `process::spawn` of `argc` (a real program of the boot file system, loaded
//!   from its ELF file) with no arguments, then `process::wait` until it has exited and
//!   been reaped.
//! - `thread-switch`: one switch between two threads of this process that take turns with
//!   `thread::yield_now`: from the moment one calls it until the other runs on.
//!
//! Before the figures it spawns a copy of itself with `--fresh-process`, which reports
//! what a freshly spawned process costs the kernel — the pages it has mapped (a mapping
//! record each), the frames and the kernel memory charged to it — and exits.
//!
//! `bench-libos [-n REPETITIONS] [-s SPAWNS]`: 10000 thread switches and 200 spawns by
//! default; `-n` alone sets both, spawns at most 200.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use exo_abi::syscall::EnvironmentAccount;
use exo_abi::{Handle, user};
use libos_posixish::page_table_view;
use libos_posixish::process::{self, ExitStatus};
use libos_posixish::thread;
use libos_posixish::{args, println};

libos_posixish::main!(main);

const DEFAULT_REPETITIONS: u64 = 10_000;
const DEFAULT_SPAWNS: u64 = 200;
/// Untimed repetitions first, so that every path has run once before the timed ones.
const WARM_UP: u64 = 8;
/// The program spawned: it exits at once with the count of its arguments (0 here).
const SPAWNED: &str = "argc";
/// This program, as the boot file system names it.
const PROGRAM: &str = "bench-libos";

/// The option that makes a spawned copy report its own costs and exit.
const FRESH_PROCESS: &str = "--fresh-process";

fn main(arguments: &[&str]) -> i32 {
    if arguments.contains(&FRESH_PROCESS) {
        return report_fresh_process();
    }
    let options = args::parsed::<u64>(arguments, "-n")
        .and_then(|repetitions| Ok((repetitions, args::parsed::<u64>(arguments, "-s")?)));
    let (repetitions, spawns) = match options {
        Ok((repetitions, spawns)) => (
            repetitions.unwrap_or(DEFAULT_REPETITIONS).max(1),
            spawns
                .or(repetitions.map(|count| count.min(DEFAULT_SPAWNS)))
                .unwrap_or(DEFAULT_SPAWNS)
                .max(1),
        ),
        Err(message) => {
            println!("bench-libos: {message}; usage: bench-libos [-n REPETITIONS] [-s SPAWNS]");
            return 2;
        }
    };
    let fresh = process::spawn(PROGRAM, &[FRESH_PROCESS]).and_then(process::wait);
    assert_eq!(
        fresh,
        Ok(ExitStatus::Exited(0)),
        "the fresh process's report"
    );
    report("spawn", spawn(spawns));
    report("thread-switch", thread_switch(repetitions));
    println!("BENCH-DONE");
    0
}

/// In a copy spawned with `--fresh-process`: what this process costs the kernel, read
/// before it does anything but start.
fn report_fresh_process() -> i32 {
    let pages = page_table_view::mapped_pages();
    let account = |which| user::environment_info(Handle::SELF_ENVIRONMENT, which).unwrap_or(0);
    println!(
        "bench-libos: a fresh process has {pages} pages mapped, {} frames and {} bytes of \
         kernel memory charged",
        account(EnvironmentAccount::FramesCharged),
        account(EnvironmentAccount::KernelBytesCharged)
    );
    0
}

/// Prints the lower median of `samples`.
fn report(name: &str, mut samples: Vec<u64>) {
    samples.sort_unstable();
    let median = samples[(samples.len() - 1) / 2];
    println!("BENCH {name} {median} cycles n={}", samples.len());
}

fn spawn(count: u64) -> Vec<u64> {
    let mut samples = Vec::with_capacity(count as usize);
    for round in 0..WARM_UP + count {
        let start = user::tsc();
        let pid = process::spawn(SPAWNED, &[]).expect("spawn argc");
        let status = process::wait(pid);
        let end = user::tsc();
        assert_eq!(status, Ok(ExitStatus::Exited(0)), "argc's exit status");
        if round >= WARM_UP {
            samples.push(end - start);
        }
    }
    samples
}

/// Two threads take turns: each, once it runs again, records the cycles since the other
/// called `yield_now`, then stamps the time and yields in its turn. With no third thread
/// ready, every yield switches to the other one.
fn thread_switch(count: u64) -> Vec<u64> {
    let total = WARM_UP + count;
    let turns = Arc::new(Turns {
        samples: (0..total).map(|_| AtomicU64::new(0)).collect(),
        taken: AtomicU64::new(0),
        yielded_at: AtomicU64::new(0),
        done: AtomicBool::new(false),
    });
    let other = {
        let turns = turns.clone();
        thread::spawn(move || turns.take_turns())
    };
    turns.take_turns();
    other.join();
    turns
        .samples
        .iter()
        .skip(WARM_UP as usize)
        .map(|sample| sample.load(Ordering::Relaxed))
        .collect()
}

struct Turns {
    samples: Vec<AtomicU64>,
    /// How many switches have been recorded.
    taken: AtomicU64,
    /// When the thread that ran last called `yield_now`.
    yielded_at: AtomicU64,
    done: AtomicBool,
}

impl Turns {
    fn take_turns(&self) {
        loop {
            self.yielded_at.store(user::tsc(), Ordering::Relaxed);
            thread::yield_now();
            let arrived = user::tsc();
            if self.done.load(Ordering::Relaxed) {
                return;
            }
            let index = self.taken.fetch_add(1, Ordering::Relaxed);
            self.samples[index as usize].store(
                arrived - self.yielded_at.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
            if index + 1 == self.samples.len() as u64 {
                self.done.store(true, Ordering::Relaxed);
                return;
            }
        }
    }
}
