//! The exo kernel/user interface: the one place that defines it.
//!
//! The kernel and every library OS depend on this crate, so a number or a
//! layout is written exactly once. It has no dependencies on the kernel and
//! builds (and tests) on the host. Later steps add system call numbers,
//! typed errors, capability handles and the shared-memory layouts.
#![no_std]
#![forbid(unsafe_code)]

pub mod counters;
pub mod debug_exit;
pub mod layout;
