//! Prints its arguments, separated by spaces.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libos_posixish::{print, println};

libos_posixish::main!(main);

fn main(arguments: &[&str]) -> i32 {
    for (index, argument) in arguments.iter().skip(1).enumerate() {
        if index > 0 {
            print!(" ");
        }
        print!("{argument}");
    }
    println!();
    0
}
