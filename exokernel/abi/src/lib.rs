//! The exo kernel/user interface: the one place that defines it.
//!
//! The kernel and every library OS depend on this crate, so a number or a
//! layout is written exactly once. It has no dependencies on the kernel and
//! builds (and tests) on the host.
//!
//! The kernel uses the types; user code also enables the `user` feature,
//! which adds the system-call wrappers and the upcall entry (`user`), the
//! only `unsafe` code a library OS needs.
#![no_std]
#![deny(unsafe_code)]

pub mod bootfs;
pub mod counters;
pub mod debug_exit;
pub mod error;
pub mod facts;
pub mod handle;
pub mod layout;
pub mod mapping;
pub mod net;
mod numbered;
pub mod rights;
pub mod start_info;
pub mod syscall;
pub mod trace;
pub mod upcall;
#[cfg(feature = "user")]
pub mod user;
pub mod wire;

pub use error::Error;
pub use handle::Handle;
pub use rights::Rights;
