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

/// The workspace's packages that build only for the bare-metal target: the kernel, the
/// user programs and the library OS they link. Host commands (unit tests, clippy) take the
/// whole workspace without them.
pub const BARE_METAL_PACKAGES: [&str; 5] = [
    "exo-kernel",
    "libos-posixish",
    "userapps",
    "userapps-posix",
    "userapps-net",
];

/// `cargo <subcommand>` for every host crate: the workspace without
/// [`BARE_METAL_PACKAGES`]. Not the `default-members`, which hold xtask and the libraries
/// only, so that a plain `cargo run` at the root has one program to run: xtask.
pub fn cargo_on_host_crates(subcommand: &str) -> Command {
    let mut command = cargo();
    command.args([subcommand, "--workspace"]);
    for package in BARE_METAL_PACKAGES {
        command.args(["--exclude", package]);
    }
    command
}

/// The target the kernel and user programs build for (`rust-toolchain.toml` names it):
/// bare metal, with prebuilt `core` and `alloc`.
pub const BARE_METAL_TARGET: &str = "x86_64-unknown-none";

/// Adds the bare-metal target to the running toolchain if its standard library is
/// missing. `rust-toolchain.toml` names it, but rustup (from 1.28) no longer installs it on
/// first use, so a toolchain installed earlier without it would fail every kernel build
/// with "can't find crate for `core`".
pub fn ensure_bare_metal_target() -> Result<(), String> {
    let output = Command::new("rustc")
        .current_dir(root())
        .args(["--print", "sysroot"])
        .output()
        .map_err(|error| format!("cannot run rustc: {error}"))?;
    let sysroot = String::from_utf8_lossy(&output.stdout);
    if Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(BARE_METAL_TARGET)
        .exists()
    {
        return Ok(());
    }
    println!("xtask: the {BARE_METAL_TARGET} target is missing; adding it with rustup");
    let status = Command::new("rustup")
        .current_dir(root())
        .args(["target", "add", BARE_METAL_TARGET])
        .status()
        .map_err(|error| format!("cannot run rustup: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`rustup target add {BARE_METAL_TARGET}` failed ({status})"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The package names of the workspace's members, read from their manifests.
    fn member_packages() -> Vec<String> {
        let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
        let members = manifest
            .split("members = [")
            .nth(1)
            .and_then(|rest| rest.split(']').next())
            .unwrap();
        members
            .split('"')
            .skip(1)
            .step_by(2)
            .map(|member| {
                let manifest =
                    std::fs::read_to_string(root().join(member).join("Cargo.toml")).unwrap();
                let line = manifest
                    .lines()
                    .find(|line| line.starts_with("name = "))
                    .unwrap();
                line.trim_start_matches("name = ")
                    .trim_matches('"')
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn the_bare_metal_packages_are_members_and_the_rest_are_host_crates() {
        let members = member_packages();
        for package in BARE_METAL_PACKAGES {
            assert!(members.iter().any(|member| member == package), "{package}");
        }
        assert!(members.iter().any(|member| member == "xtask"));
        assert!(members.len() > BARE_METAL_PACKAGES.len());
    }
}
