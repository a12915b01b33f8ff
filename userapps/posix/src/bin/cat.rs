//! Copies files (or standard input, with no arguments) to standard output.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libos_posixish::fs::{self, OpenOptions};
use libos_posixish::{Errno, println};

libos_posixish::main!(main);

fn main(arguments: &[&str]) -> i32 {
    if arguments.len() < 2 {
        return copy(0).map_or(1, |()| 0);
    }
    let mut status = 0;
    for path in &arguments[1..] {
        match fs::open(
            path,
            OpenOptions {
                read: true,
                ..OpenOptions::default()
            },
        ) {
            Ok(fd) => {
                if copy(fd).is_err() {
                    status = 1;
                }
                let _ = fs::close(fd);
            }
            Err(error) => {
                println!("cat: {path}: {error}");
                status = 1;
            }
        }
    }
    status
}

fn copy(fd: usize) -> Result<(), Errno> {
    let mut buffer = [0; 1024];
    loop {
        let count = fs::read(fd, &mut buffer)?;
        if count == 0 {
            return Ok(());
        }
        fs::write(1, &buffer[..count])?;
    }
}
