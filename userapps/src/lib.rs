//! The bare runtime for programs that talk to the exokernel directly.
//!
//! Until the library OS (`libos-posixish`) exists, this is all a program has: where it starts
//! and how it ends (`entry`), console output (`console`), an exception stack for upcalls
//! (`upcall`), memory it maps itself (`memory`), children built from its own image
//! (`spawn`; `lean_child`, children that allocate their own memory), the facts page
//! (`facts`) and the pieces of user threads (`thread`). `layout` says where each of them
//! lives in the address space.
//!
//! Programs are `src/bin/<name>.rs` and `#![forbid(unsafe_code)]`; the `unsafe` they would
//! need is here, in `entry`, `facts`, `lean_child`, `memory` and `spawn`, each block saying
//! why it holds. The runtime never allocates: there is no heap, output is formatted on the
//! stack.
#![no_std]
#![deny(unsafe_code)]

pub mod check;
pub mod console;
mod entry;
pub mod facts;
pub mod hostile;
pub mod layout;
pub mod lean_child;
pub mod memory;
pub mod net;
pub mod spawn;
pub mod thread;
pub mod upcall;

pub use entry::PANIC_STATUS;
