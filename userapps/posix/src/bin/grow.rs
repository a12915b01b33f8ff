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

    /// 1 + 2 + ... + depth, with a 512-byte frame per level.
    fn sum_to(depth: u64) -> u64 {
        let frame = core::hint::black_box([depth; 64]);
        if depth == 0 {
            0
        } else {
            frame[0] + sum_to(depth - 1)
        }
    }
    // About 5 MiB of stack: far past the pages mapped at start.
    let depth = 10_000;
    if sum_to(depth) != depth * (depth + 1) / 2 {
        println!("grow: FAIL: deep recursion gave a wrong result");
        return 1;
    }
    println!("grow: stack grew for a recursion {depth} deep");
    0
}
