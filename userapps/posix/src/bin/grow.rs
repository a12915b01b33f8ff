//! The heap and the stack grow on demand: megabytes of heap and a deep
//! recursion, with every page mapped by the library OS's pager when touched.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use libos_posixish::{heap, println};

libos_posixish::main!(main);

fn main(_arguments: &[&str]) -> i32 {
    let numbers: Vec<u64> = (0..1_000_000).collect();
    let sum: u64 = numbers.iter().sum();
    if sum != 499_999_500_000 {
        println!("grow: FAIL: the heap lost values");
        return 1;
    }
    let mut map = BTreeMap::new();
    for key in 0..10_000u64 {
        map.insert(key * 7919 % 10_007, key);
    }
    println!(
        "grow: heap of {} MiB in use, values intact",
        heap::size() >> 20
    );

    /// 1 + 2 + ... + depth, with a 512-byte array in every level's frame;
    /// `deepest` ends as the lowest address an array had. The array is
    /// handed to `black_box` by reference, so there is one copy of it per
    /// level whatever the optimisation level: by value, a size-optimised
    /// build made a second copy as the argument, and the recursion needed
    /// twice the stack (past the 8 MiB limit).
    fn sum_to(depth: u64, deepest: &mut usize) -> u64 {
        let mut frame = [depth; 64];
        core::hint::black_box(&mut frame);
        *deepest = (*deepest).min(frame.as_ptr() as usize);
        if depth == 0 {
            return 0;
        }
        let below = sum_to(depth - 1, deepest);
        core::hint::black_box(&frame)[0] + below
    }
    // About 5 MiB of stack: far past the pages mapped at start.
    let depth = 10_000;
    let top = core::hint::black_box(&depth) as *const u64 as usize;
    let mut deepest = top;
    if sum_to(depth, &mut deepest) != depth * (depth + 1) / 2 {
        println!("grow: FAIL: deep recursion gave a wrong result");
        return 1;
    }
    let grown = top - deepest;
    if grown < (depth as usize) * 512 {
        println!("grow: FAIL: a recursion {depth} deep used only {grown} bytes of stack");
        return 1;
    }
    println!(
        "grow: stack grew by {} KiB for a recursion {depth} deep",
        grown >> 10
    );
    0
}
