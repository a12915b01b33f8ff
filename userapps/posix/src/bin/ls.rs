//! Lists a directory (the working directory without an argument);
//! directories end in `/`.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;

use libos_posixish::println;
use libos_posixish::{fs, variables};

libos_posixish::main!(main);

fn main(arguments: &[&str]) -> i32 {
    let directory = match arguments.get(1) {
        Some(directory) => variables::absolute(directory),
        None => variables::current_dir(),
    };
    let directory = directory.as_str();
    let names = match fs::readdir(directory) {
        Ok(names) => names,
        Err(error) => {
            println!("ls: {directory}: {error:?}");
            return 1;
        }
    };
    for name in names {
        let path = format!("{}/{name}", directory.trim_end_matches('/'));
        let is_directory = fs::stat(&path).is_ok_and(|stat| stat.is_directory);
        println!("{name}{}", if is_directory { "/" } else { "" });
    }
    0
}
