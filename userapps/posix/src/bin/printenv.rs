//! Prints environment variables: all of them, or the value of each one named.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libos_posixish::{println, variables};

libos_posixish::main!(main);

fn main(arguments: &[&str]) -> i32 {
    if arguments.len() < 2 {
        for (key, value) in variables::vars() {
            println!("{key}={value}");
        }
        return 0;
    }
    let mut status = 0;
    for key in &arguments[1..] {
        match variables::var(key) {
            Some(value) => println!("{value}"),
            None => status = 1,
        }
    }
    status
}
