//! What the programs on the library OS share: how a test program reports ([`check`]).
#![no_std]
#![forbid(unsafe_code)]

pub mod check;
