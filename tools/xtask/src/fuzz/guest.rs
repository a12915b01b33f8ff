//! `cargo xtask fuzz guest`: random system calls from inside a guest. Not built on this
//! branch yet: the command line parses, and the run says so.

use std::process::ExitCode;

/// What `fuzz guest` was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct GuestFuzzOptions {
    pub calls: u64,
    pub seed: u64,
}

pub fn run(_options: GuestFuzzOptions) -> Result<ExitCode, String> {
    Err("`fuzz guest` is not built yet".to_string())
}
