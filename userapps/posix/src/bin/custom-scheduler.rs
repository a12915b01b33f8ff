//! A custom thread policy in a program: lottery scheduling (Waldspurger and
//! Weihl, OSDI 1994). A thread's priority is its number of tickets; each
//! pick draws one ticket at random, so a thread gets the CPU in proportion
//! to its tickets. The policy is the library's `Lottery`, whose shares
//! `cargo test -p posixish-policy lottery` checks on the host; this program
//! shows it on threads. See `docs/tutorial-scheduler.md`.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use libos_posixish::println;
use libos_posixish::thread::{self, Lottery, Scheduler, ThreadId};

use userapps_posix::check::{self, check};

libos_posixish::main!(main);

/// The library's [`Lottery`] (`libos-posixish/policy/src/scheduler.rs`,
/// tested on the host), counting the lotteries each thread wins.
struct CountedLottery(Lottery);

impl Scheduler for CountedLottery {
    fn add(&mut self, thread: ThreadId, priority: u8) {
        self.0.add(thread, priority);
    }

    fn pick(&mut self) -> Option<ThreadId> {
        let thread = self.0.pick()?;
        WINS[thread.0 as usize % WINS.len()].fetch_add(1, Ordering::Relaxed);
        Some(thread)
    }
}

/// Lotteries won, by thread id (the demonstration's threads are 1 to 3).
static WINS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
static STOP: AtomicBool = AtomicBool::new(false);
const TICKETS: [u8; 3] = [1, 3, 9];

fn main(_arguments: &[&str]) -> i32 {
    let lottery = CountedLottery(Lottery::new(0x2545_f491_4f6c_dd1d));
    thread::set_scheduler(Box::new(lottery)).expect("set before the first spawn");
    // Three busy threads that never yield, with 1, 3 and 9 tickets.
    let workers: Vec<_> = TICKETS
        .iter()
        .map(|&tickets| {
            thread::spawn_with_priority(tickets, || {
                while !STOP.load(Ordering::Relaxed) {
                    core::hint::spin_loop();
                }
            })
        })
        .collect();
    // Main holds 128 tickets but sleeps; each slot start holds a lottery.
    thread::sleep(200);
    STOP.store(true, Ordering::Relaxed);
    let ids: Vec<ThreadId> = workers.iter().map(|worker| worker.id()).collect();
    workers.into_iter().for_each(|worker| worker.join());
    let wins: Vec<u64> = ids
        .iter()
        .map(|id| WINS[id.0 as usize % WINS.len()].load(Ordering::Relaxed))
        .collect();
    println!("custom-scheduler: tickets {TICKETS:?} won {wins:?} lotteries");
    let ordered = wins[0] < wins[1] && wins[1] < wins[2];
    if check("more tickets, more lotteries won", ordered) {
        check::all_passed("custom-scheduler");
        0
    } else {
        1
    }
}
