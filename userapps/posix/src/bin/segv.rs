//! Recurses until the stack reaches its guard page, which the pager never
//! maps: the process ends with status 139, alone.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use libos_posixish::println;

libos_posixish::main!(main);

fn main(_arguments: &[&str]) -> i32 {
    println!("segv: recursing past the stack's 8 MiB limit");
    fn recurse(depth: u64) -> u64 {
        let frame = core::hint::black_box([depth; 512]);
        if core::hint::black_box(true) {
            recurse(depth + 1) + frame[0]
        } else {
            depth
        }
    }
    let depth = recurse(0);
    println!("segv: returned from depth {depth}: the guard page did not stop it");
    0
}
