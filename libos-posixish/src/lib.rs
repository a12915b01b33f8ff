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
//! The modules form layers (`docs/04-libos.md` draws them); a module
//! imports only from its own layer or below, and only the lifecycle layer
//! has modules that import each other:
//!
//! | layer | modules |
//! |---|---|
//! | 4 entry | `entry` (the start `_start` calls, a forked child's first instruction, `main`), `upcall_dispatch` (reason → handler), `runtime` (exit, panic) |
//! | 3 lifecycle | `inherit` (every hook run at spawn, fork and exec), `process` (spawn, wait, kill), `fork`, `exec` |
//! | 2 services | `fs` (descriptors, files through the file server, pipes, printing), `net` (blocking sockets on libos-net's stack) |
//! | 1 resources | `heap`, `paging` with `colour` (the fault handler, frame policies), `mmap`, `bootfs`, `image_cache`, `thread`, `variables` (environment variables) |
//! | 0 raw | `raw` (the unsafe primitives), `scratch`, `info_page`, `exit_status`, `upcall_handler`, `facts`, `errno`, `page_table_view`; and from the host-tested `posixish-policy` crate (`policy/`), `layout`, `args`, `regions`, `pager_units`, the thread policies and the info page's format |
//!
//! `raw` and `entry` hold the only `unsafe` code, but for the calls of
//! `raw`'s few `unsafe fn`s: one statement each, allowed where it stands,
//! with a `// SAFETY:` comment.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

pub mod bootfs;
mod child;
pub mod colour;
mod entry;
pub mod errno;
pub mod exec;
mod exit_status;
mod facts;
pub mod fork;
pub mod fs;
pub mod heap;
mod image_cache;
pub mod info_page;
mod inherit;
pub mod mmap;
pub mod net;
pub mod page_table_view;
pub mod paging;
pub mod process;
mod raw;
pub mod runtime;
mod scratch;
pub mod thread;
mod upcall_dispatch;
mod upcall_handler;
pub mod variables;

pub use errno::Errno;
pub use posixish_policy::arguments as args;
pub use posixish_policy::http_request;
pub use posixish_policy::line_editor;
pub(crate) use posixish_policy::pager_units;
pub use posixish_policy::{layout, regions};
pub use runtime::{exit, getpid};
