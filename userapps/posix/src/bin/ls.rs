//! Lists directories (the working directory without an argument), or names
//! files: `ls [PATH]...`. Directories end in `/`; with more than one
//! directory, each list starts with its name, as POSIX `ls` does.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use libos_posixish::println;
use libos_posixish::{fs, variables};

libos_posixish::main!(main);

fn main(arguments: &[&str]) -> i32 {
    let operands: Vec<String> = match arguments.get(1..) {
        Some(paths) if !paths.is_empty() => paths.iter().map(|path| String::from(*path)).collect(),
        _ => Vec::from([String::from(".")]),
    };
    let mut status = 0;
    let mut directories = Vec::new();
    // Files first, then each directory's list, as POSIX orders them.
    for operand in &operands {
        let path = variables::absolute(operand);
        match fs::stat(&path) {
            Ok(stat) if stat.is_directory => directories.push((operand, path)),
            Ok(_) => println!("{operand}"),
            Err(error) => {
                println!("ls: {operand}: {error}");
                status = 1;
            }
        }
    }
    let named = operands.len() > 1;
    for (index, (operand, path)) in directories.iter().enumerate() {
        if named {
            let gap = if index > 0 || directories.len() < operands.len() {
                "\n"
            } else {
                ""
            };
            println!("{gap}{operand}:");
        }
        if let Err(error) = list(path) {
            println!("ls: {operand}: {error}");
            status = 1;
        }
    }
    status
}

/// Prints the names in directory `path`.
fn list(path: &str) -> Result<(), libos_posixish::Errno> {
    for name in fs::readdir(path)? {
        let entry = format!("{}/{name}", path.trim_end_matches('/'));
        let is_directory = fs::stat(&entry).is_ok_and(|stat| stat.is_directory);
        println!("{name}{}", if is_directory { "/" } else { "" });
    }
    Ok(())
}
