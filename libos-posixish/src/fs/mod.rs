//! Files: descriptors, the console, files shared between processes, pipes.
//!
//! The file tree, the open files (with their offsets) and the pipes live in
//! one environment, the file server (`server.rs`, the program `fsd`), which
//! every process of the library OS calls through protected control transfer
//! (`protocol.rs`). What is private to a process stays here: its descriptor
//! table, naming the server's open files and pipes, so that a parent and
//! the children it hands a descriptor share one offset, as POSIX says. The
//! console needs no server: descriptors 0, 1 and 2 start as the console,
//! which this module reads and writes with system calls.
//!
//! The first process starts the server when it first needs it; every
//! process it starts after that gets the server's endpoint, and its own
//! descriptors 0–2 as the parent chose (`spawn_with`: redirection, pipes).
//! The process's side — descriptors, calls to the server, pipes, what a
//! child inherits — is `client.rs`; this file only declares.
//!
//! Reading an empty pipe (or writing a full one) sleeps until the server
//! signals the process's notification (`waiter`): a process waiting on a
//! pipe makes no system calls. The console, with nothing typed, is read a
//! tick at a time.

mod client;
pub mod console;
pub mod protocol;
pub mod server;

pub use client::*;
