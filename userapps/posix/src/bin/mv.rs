//! Renames a file or directory: `mv FROM TO`.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libos_posixish::{fs, println};

libos_posixish::main!(main);

fn main(arguments: &[&str]) -> i32 {
    let [_, from, to] = arguments else {
        println!("usage: mv FROM TO");
        return 2;
    };
    match fs::rename(from, to) {
        Ok(()) => 0,
        Err(error) => {
            println!("mv: {from} -> {to}: {error}");
            1
        }
    }
}
