//! Prints the lines of standard input (or a file) that contain a pattern;
//! exits 1 if none does, as POSIX grep does.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libos_posixish::fs;
use libos_posixish::println;

libos_posixish::main!(main);

fn main(arguments: &[&str]) -> i32 {
    let Some(pattern) = arguments.get(1) else {
        println!("usage: grep PATTERN [FILE]");
        return 2;
    };
    let fd = match fs::open_input(arguments.get(2).copied()) {
        Ok(fd) => fd,
        Err(error) => {
            println!(
                "grep: {}: {error}",
                arguments.get(2).unwrap_or(&"standard input")
            );
            return 2;
        }
    };
    let mut found = false;
    fs::for_each_line(fd, |line| {
        if line.contains(pattern) {
            found = true;
            println!("{line}"); // one write, with its newline
        }
        true
    });
    if found { 0 } else { 1 }
}
