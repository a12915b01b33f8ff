//! The exo kernel's pure logic: bookkeeping that needs no hardware.
//!
//! Everything here is `no_std`, free of `unsafe`, and tested by `cargo test`
//! on the host. The kernel (`exokernel/kernel`) wraps these types with locks
//! and hardware access; it should hold no algorithm that could live here.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

#[cfg(test)]
extern crate std;

pub mod accounts;
pub mod ancestry;
pub mod askers;
pub mod btree;
pub mod buddy;
pub mod caps;
pub mod cmdline;
pub mod console_input;
pub mod demux;
pub mod frames;
pub mod mappings;
pub mod memory_map;
pub mod scheduler;
pub mod slices;
pub mod timers;
