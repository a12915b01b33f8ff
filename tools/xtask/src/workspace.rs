//! Where the workspace is and how to start cargo in it.
//!
//! Every cargo command xtask runs starts here, so they all see the same workspace root,
//! `rust-toolchain.toml` and `.cargo/config.toml`, whichever directory xtask was run from.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root: this crate lives in `tools/xtask`.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tools/xtask has two parent directories")
        .to_path_buf()
}

/// `cargo` in the workspace root. Prefers the cargo that is running xtask, so nested builds
/// use the same toolchain.
pub fn cargo() -> Command {
    let mut command = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(root());
    command
}
