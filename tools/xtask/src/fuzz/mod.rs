//! `cargo xtask fuzz`: fuzzing the kernel from inside a guest ([`guest`]) and everything
//! that reads untrusted bytes on the host ([`host`]).

pub mod guest;
pub mod host;
