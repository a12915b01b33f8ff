//! Prints the first lines of standard input (or a file): `head [-n N] [FILE]`,
//! or `head -N [FILE]`, the short form POSIX keeps from older systems.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libos_posixish::fs;
use libos_posixish::println;

libos_posixish::main!(main);

fn main(arguments: &[&str]) -> i32 {
    let (count, rest) = match arguments.get(1..) {
        Some(["-n", number, rest @ ..]) => match number.parse::<usize>() {
            Ok(count) => (count, rest),
            Err(_) => {
                println!("head: bad line count {number}");
                return 2;
            }
        },
        Some([option, rest @ ..]) if option.len() > 1 && option.starts_with('-') => {
            match option[1..].parse::<usize>() {
                Ok(count) => (count, rest),
                Err(_) => {
                    println!("head: unknown option {option} (usage: head [-n N | -N] [FILE])");
                    return 2;
                }
            }
        }
        Some(rest) => (10, rest),
        None => (10, &[][..]),
    };
    let fd = match fs::open_input(rest.first().copied()) {
        Ok(fd) => fd,
        Err(error) => {
            println!(
                "head: {}: {error}",
                rest.first().unwrap_or(&"standard input")
            );
            return 1;
        }
    };
    let mut printed = 0;
    fs::for_each_line(fd, |line| {
        if printed == count {
            return false;
        }
        println!("{line}"); // one write, with its newline
        printed += 1;
        true
    });
    0
}
