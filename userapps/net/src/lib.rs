//! What a program on the bare runtime (`userapps`) needs to run its own TCP/IP stack
//! (`libos-net`) without a POSIX layer: a heap (`heap`), since smoltcp allocates its
//! sockets and buffers. The programs are `src/bin/<name>.rs`, `#![forbid(unsafe_code)]`.
#![no_std]
#![deny(unsafe_code)]

pub mod heap;
