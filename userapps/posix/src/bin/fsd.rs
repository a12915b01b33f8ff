//! The file server: the file tree and the pipes every process of the
//! library OS shares (`libos_posixish::fs::server`). The first process that
//! needs files starts it.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

libos_posixish::main!(main);

fn main(_arguments: &[&str]) -> i32 {
    libos_posixish::fs::server::run()
}
