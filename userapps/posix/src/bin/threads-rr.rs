//! User-level threads under the round-robin policy: threads that never
//! yield are preempted at slot starts and all make progress; a mutex keeps
//! their shared count right; join returns; sleep sleeps at least as long as
//! asked, and while every thread sleeps the process does not spin.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use libos_posixish::println;
use libos_posixish::thread::{self, JoinHandle, Mutex, ThreadId};

use userapps_posix::check::{self, check};

libos_posixish::main!(main);

const WORKERS: usize = 4;
const INCREMENTS: u64 = 100_000;

fn main(_arguments: &[&str]) -> i32 {
    let mut ok = true;
    ok &= check("main is thread 0", thread::current_id() == ThreadId::MAIN);

    // Workers that never yield: each increments the shared count under the
    // mutex and its own progress counter. `main` spins until all have made
    // progress, never yielding either: only preemption can get them all run.
    let total = Arc::new(Mutex::new(0u64));
    let progress: Arc<[AtomicU64; WORKERS]> = Arc::new([const { AtomicU64::new(0) }; WORKERS]);
    let go_on = Arc::new(AtomicBool::new(false));
    let ids = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let (total, progress, go_on, ids) =
                (total.clone(), progress.clone(), go_on.clone(), ids.clone());
            thread::spawn(move || {
                ids.lock().push(thread::current_id());
                for done in 0..INCREMENTS {
                    *total.lock() += 1;
                    progress[worker].store(done + 1, Ordering::Relaxed);
                    // Half way, wait (busily) until main has seen every worker move.
                    while done == INCREMENTS / 2 && !go_on.load(Ordering::Relaxed) {
                        core::hint::spin_loop();
                    }
                }
            })
        })
        .collect();
    let handle_ids: Vec<ThreadId> = handles.iter().map(|handle| handle.id()).collect();
    while progress
        .iter()
        .any(|count| count.load(Ordering::Relaxed) == 0)
    {}
    go_on.store(true, Ordering::Relaxed);
    let preemptions = thread::statistics().preemptions;
    ok &= check(
        "every worker made progress while main and they spun, never yielding",
        preemptions > 0,
    );
    println!("threads-rr: {preemptions} preemptions so far");
    for handle in handles {
        handle.join();
    }
    ok &= check(
        "join returned for every worker, each done",
        progress
            .iter()
            .all(|count| count.load(Ordering::Relaxed) == INCREMENTS),
    );
    let total = *total.lock();
    println!("threads-rr: total {total}");
    ok &= check(
        "the mutex kept the shared count right",
        total == WORKERS as u64 * INCREMENTS,
    );
    let mut seen = ids.lock().clone();
    seen.sort();
    let mut expected = handle_ids.clone();
    expected.sort();
    ok &= check(
        "current_id in each thread is its JoinHandle's id",
        seen == expected && !seen.contains(&ThreadId::MAIN),
    );

    // Threads allocating and freeing all the time, preempted in the middle
    // (the scheduler defers a slot start that finds the heap's lock held).
    let before = thread::statistics().preemptions;
    let intact = Arc::new(AtomicU64::new(0));
    let allocators: Vec<_> = (0..WORKERS as u64)
        .map(|worker| {
            let intact = intact.clone();
            thread::spawn(move || {
                let mut map = BTreeMap::new();
                for round in 0..20_000u64 {
                    map.insert(round, Box::new([worker, round]));
                    if round % 3 == 0 {
                        map.remove(&(round / 2));
                    }
                }
                if map.iter().all(|(&key, value)| **value == [worker, key]) {
                    intact.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    allocators.into_iter().for_each(JoinHandle::join);
    let preempted = thread::statistics().preemptions - before;
    println!("threads-rr: allocating threads were preempted {preempted} times");
    ok &= check(
        "threads allocating on the heap at once kept their data intact",
        intact.load(Ordering::Relaxed) == WORKERS as u64,
    );

    // Sleep, in main alone.
    let before = thread::ticks();
    thread::sleep(5);
    let slept = thread::ticks() - before;
    ok &= check("sleep(5) in main slept at least 5 ticks", slept >= 5);

    // Every thread asleep at once: the process waits in the kernel.
    let slept = Arc::new(Mutex::new(Vec::new()));
    let before = thread::statistics();
    let sleepers: Vec<_> = (1..=3u64)
        .map(|index| {
            let slept = slept.clone();
            thread::spawn(move || {
                let before = thread::ticks();
                thread::sleep(10 * index);
                slept.lock().push((10 * index, thread::ticks() - before));
            })
        })
        .collect();
    let ticks_before = thread::ticks();
    for sleeper in sleepers {
        sleeper.join();
    }
    let ticks = thread::ticks() - ticks_before;
    let after = thread::statistics();
    let slept = slept.lock().clone();
    println!(
        "threads-rr: sleepers (asked, slept): {slept:?}; in {ticks} ticks {} idle waits, {} preemptions",
        after.idle_waits - before.idle_waits,
        after.preemptions - before.preemptions
    );
    ok &= check(
        "three sleeping threads each slept at least the ticks asked",
        slept.len() == 3 && slept.iter().all(|&(asked, got)| got >= asked),
    );
    ok &= check(
        "while every thread slept the process waited in the kernel, not spinning",
        after.idle_waits > before.idle_waits && after.preemptions - before.preemptions < ticks / 2,
    );
    ok &= check(
        "sleeping and joining switched threads",
        after.switches - before.switches >= 6,
    );

    if ok {
        check::all_passed("threads-rr");
        0
    } else {
        1
    }
}
