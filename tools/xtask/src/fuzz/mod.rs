//! `cargo xtask fuzz`: fuzzing the kernel from inside a guest ([`guest`]).

pub mod guest;
