//! Makes directories.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libos_posixish::{fs, println};

libos_posixish::main!(main);

fn main(arguments: &[&str]) -> i32 {
    let mut status = 0;
    for path in &arguments[1..] {
        if let Err(error) = fs::mkdir(path) {
            println!("mkdir: {path}: {error}");
            status = 1;
        }
    }
    status
}
