//! Exits with the number of its arguments: tests use it to see that
//! arguments arrive.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

libos_posixish::main!(main);

fn main(arguments: &[&str]) -> i32 {
    arguments.len() as i32 - 1
}
