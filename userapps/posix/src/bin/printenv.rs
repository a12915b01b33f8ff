//! Prints environment variables: all of them, or the value of each one named.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libos_posixish::{env, println};

libos_posixish::main!(main);

fn main(arguments: &[&str]) -> i32 {
    if arguments.len() < 2 {
        for (key, value) in env::vars() {
            println!("{key}={value}");
        }
        return 0;
    }
    let mut status = 0;
    for key in &arguments[1..] {
        match env::var(key) {
            Some(value) => println!("{value}"),
            None => status = 1,
        }
    }
    status
}
