//! The pure logic of libos-posixish, kept apart so that `cargo test` checks
//! it on the host: no system calls, no `unsafe`, no global state.
//!
//! | module | holds |
//! |---|---|
//! | `layout.rs` | where a process's memory lives |
//! | `regions.rs` | the `mmap` regions and their protection |
//! | `pager_units.rs` | the pager's record of what it maps, by capability |
//! | `scheduler.rs` | [`scheduler::Scheduler`], the thread policies [`scheduler::RoundRobin`], [`scheduler::Priority`] and [`scheduler::Lottery`] |
//! | `info_page.rs` | the process-info page's format |
//! | `arguments.rs` | reading a program's `-x VALUE` options |
//! | `program_image.rs` | which loadable segments of a program are accepted, and their pages |
//! | `http_request.rs` | the request head `httpd` reads, and the file a path names |
//! | `line_editor.rs` | the shell's line editing and history on a terminal |
//!
//! libos-posixish re-exports each under its old name, so programs and the
//! library OS's own modules see no difference.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod arguments;
pub mod http_request;
pub mod info_page;
pub mod layout;
pub mod line_editor;
pub mod pager_units;
pub mod program_image;
pub mod regions;
pub mod scheduler;
