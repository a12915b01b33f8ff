//! Condition variables: producers and consumers through a small bounded
//! buffer (each side parks on a `Condvar` when the buffer is full or empty),
//! and `notify_all` releasing every waiter at once.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use libos_posixish::println;
use libos_posixish::thread::{self, Condvar, Mutex};

use userapps_posix::check::{self, check};

libos_posixish::main!(main);

const CAPACITY: usize = 4;
const PRODUCERS: u64 = 2;
const CONSUMERS: u64 = 3;
const ITEMS_EACH: u64 = 500;
/// Marks the end of the stream for one consumer.
const DONE: u64 = u64::MAX;

/// A bounded queue: `put` waits while it is full, `take` while it is empty.
#[derive(Default)]
struct Channel {
    items: Mutex<VecDeque<u64>>,
    not_empty: Condvar,
    not_full: Condvar,
    /// How many times a thread found it full or empty and waited.
    waits: AtomicU64,
}

impl Channel {
    fn put(&self, item: u64) {
        let mut items = self.items.lock();
        while items.len() == CAPACITY {
            self.waits.fetch_add(1, Ordering::Relaxed);
            items = self.not_full.wait(items);
        }
        items.push_back(item);
        self.not_empty.notify_one();
    }

    fn take(&self) -> u64 {
        let mut items = self.items.lock();
        loop {
            if let Some(item) = items.pop_front() {
                self.not_full.notify_one();
                return item;
            }
            self.waits.fetch_add(1, Ordering::Relaxed);
            items = self.not_empty.wait(items);
        }
    }
}

fn main(_arguments: &[&str]) -> i32 {
    let mut ok = true;

    let channel = Arc::new(Channel::default());
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let channel = channel.clone();
            let result = Arc::new(Mutex::new((0u64, 0u64)));
            let out = result.clone();
            let handle = thread::spawn(move || {
                let (mut count, mut sum) = (0, 0);
                loop {
                    match channel.take() {
                        DONE => break,
                        item => {
                            count += 1;
                            sum += item;
                            // "Work" on the item: let the others take some.
                            thread::yield_now();
                        }
                    }
                }
                *out.lock() = (count, sum);
            });
            (handle, result)
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            let channel = channel.clone();
            thread::spawn(move || {
                for index in 0..ITEMS_EACH {
                    channel.put(producer * ITEMS_EACH + index + 1);
                }
            })
        })
        .collect();
    for producer in producers {
        producer.join();
    }
    for _ in 0..CONSUMERS {
        channel.put(DONE);
    }
    let mut taken_each = Vec::new();
    let mut sum = 0;
    for (consumer, result) in consumers {
        consumer.join();
        let (taken, added) = *result.lock();
        taken_each.push(taken);
        sum += added;
    }
    println!("condvar-test: the consumers took {taken_each:?} items");
    let count: u64 = taken_each.iter().sum();
    let items = PRODUCERS * ITEMS_EACH;
    ok &= check(
        "every item produced was consumed exactly once",
        count == items && sum == items * (items + 1) / 2,
    );
    ok &= check(
        "every consumer took some",
        taken_each.iter().all(|&taken| taken > 0),
    );
    let waits = channel.waits.load(Ordering::Relaxed);
    println!("condvar-test: threads waited on the condition variables {waits} times");
    ok &= check(
        "producers and consumers parked on full and empty",
        waits > 0,
    );

    // notify_all: every waiter wakes, sees the gate open and goes on.
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let passed = Arc::new(AtomicU64::new(0));
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let (gate, passed) = (gate.clone(), passed.clone());
            thread::spawn(move || {
                let mut open = gate.0.lock();
                while !*open {
                    open = gate.1.wait(open);
                }
                passed.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    // Let them all reach the wait (a few ticks), then open the gate.
    thread::sleep(5);
    let early = passed.load(Ordering::Relaxed);
    *gate.0.lock() = true;
    gate.1.notify_all();
    for waiter in waiters {
        waiter.join();
    }
    ok &= check(
        "notify_all released all five waiters, none before the gate opened",
        early == 0 && passed.load(Ordering::Relaxed) == 5,
    );

    if ok {
        check::all_passed("condvar-test");
        0
    } else {
        1
    }
}
