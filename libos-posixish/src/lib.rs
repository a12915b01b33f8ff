//! libos-posixish: a POSIX-ish library OS for exo.
//!
//! Everything an operating system usually does for a program — a heap,
//! stack growth, loading and running other programs, exit statuses — is
//! done here, in the program's own environment, with the exokernel's raw
//! resources: frames it allocates by number, mappings it makes itself,
//! faults it handles itself, environments it builds for its children. The
//! kernel only checks that it may.
//!
//! A program on this library OS names its `main` with [`main!`] and gets
//! its arguments as a slice of strings; it returns its exit status.
//!
//! Modules: `runtime` (start, exit, console), `heap` (the allocator),
//! `paging` with `units` (the fault handler: demand-zero heap and stack,
//! copy-on-write) and `colour` (a frame policy), `mmap` with `regions`
//! (anonymous mappings), `process` (spawn, wait, kill, getpid), `exec`
//! (become another program), `fork`,
//! `net` (blocking sockets on libos-net's TCP/IP stack), `thread` (user-level threads, their scheduling policies, mutexes and
//! condition variables), `fs` (descriptors, files through the file
//! server, pipes), `bootfs` (programs to spawn), `images` (read-only program
//! pages shared by the children spawned), `layout` (where everything
//! lives), `page_table_view` (what this process has mapped, read from its
//! own page tables). `sys` holds the only `unsafe` code.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

pub mod args;
pub mod bootfs;
pub mod colour;
pub mod env;
pub mod errno;
pub mod exec;
pub mod fork;
pub mod fs;
pub mod heap;
mod images;
pub mod layout;
pub mod mmap;
pub mod net;
pub mod page_table_view;
pub mod paging;
pub mod process;
pub mod regions;
pub mod runtime;
mod sys;
pub mod thread;
mod units;

pub use errno::Errno;
pub use runtime::{exit, getpid};

/// Names the program's `main`, a `fn(&[&str]) -> i32` taking its arguments
/// (the program's name first) and returning its exit status:
/// `libos_posixish::main!(main);`.
#[macro_export]
macro_rules! main {
    ($main:path) => {
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        fn libos_program_main(arguments: &[&str]) -> i32 {
            let main: fn(&[&str]) -> i32 = $main;
            main(arguments)
        }
    };
}
