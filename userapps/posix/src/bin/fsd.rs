//! The file server: the file tree and the pipes every process of the
//! library OS shares (`libos_posixish::fs::server`). The first process that
//! needs files starts it.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libos_posixish::println;

libos_posixish::main!(main);

fn main(_arguments: &[&str]) -> i32 {
    // Typed at a shell, it would be a second server that no process uses.
    if libos_posixish::fs::has_server() {
        println!(
            "fsd: the file server already runs for this process's family (the library OS \
             starts it with the first process); a second one would serve no one"
        );
        return 1;
    }
    libos_posixish::fs::server::run()
}
