//! Counts lines, words and bytes of standard input (or a file).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libos_posixish::fs;
use libos_posixish::println;

libos_posixish::main!(main);

fn main(arguments: &[&str]) -> i32 {
    let fd = match fs::open_input(arguments.get(1).copied()) {
        Ok(fd) => fd,
        Err(error) => {
            println!(
                "wc: {}: {error}",
                arguments.get(1).unwrap_or(&"standard input")
            );
            return 1;
        }
    };
    let (mut lines, mut words, mut bytes, mut in_word) = (0u64, 0u64, 0u64, false);
    let mut buffer = [0; 1024];
    while let Ok(count) = fs::read(fd, &mut buffer) {
        if count == 0 {
            break;
        }
        for &byte in &buffer[..count] {
            bytes += 1;
            lines += u64::from(byte == b'\n');
            let space = byte.is_ascii_whitespace();
            words += u64::from(in_word && space);
            in_word = !space;
        }
    }
    words += u64::from(in_word);
    println!("{lines} {words} {bytes}");
    0
}
