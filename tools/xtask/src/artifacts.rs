//! Cross-compiled artifacts: which package, target and code generation flags each is built
//! with, and where the result lands.
//!
//! Each artifact gets its own target directory, so their different flags never invalidate
//! each other's build cache. User programs will be a second [`CrossBuild`] next to
//! [`KERNEL`], in `target/user` with flags of their own.

use std::path::PathBuf;
use std::process::Command;

use crate::workspace;

/// Everything exo runs is built for bare metal; the target ships prebuilt `core`/`alloc`.
const BARE_METAL_TARGET: &str = "x86_64-unknown-none";

/// Code generation flags for the kernel:
/// - `relocation-model=static`: the 32-bit boot trampoline refers to kernel symbols by
///   absolute address, which position-independent code (the target's default) cannot link.
/// - `code-model=kernel`: the kernel lives in the top 2 GiB of the address space
///   (`0xffffffff80000000` up), where sign-extended 32-bit addresses reach every symbol.
/// - `force-frame-pointers=yes`: panic and exception reports walk the stack through `rbp`,
///   and gdb backtraces stay readable in release builds.
const KERNEL_RUSTFLAGS: &[&str] = &[
    "-Crelocation-model=static",
    "-Ccode-model=kernel",
    "-Cforce-frame-pointers=yes",
];

/// How one bare-metal binary is built.
#[derive(Debug)]
pub struct CrossBuild {
    pub package: &'static str,
    /// Relative to the workspace root.
    target_dir: &'static str,
    rustflags: &'static [&'static str],
}

pub const KERNEL: CrossBuild = CrossBuild {
    package: "exo-kernel",
    target_dir: "target/kernel",
    rustflags: KERNEL_RUSTFLAGS,
};

impl CrossBuild {
    /// `cargo <subcommand>` (e.g. `build`, `clippy`) for this artifact; callers may append
    /// further arguments.
    pub fn cargo(&self, subcommand: &str) -> Command {
        let mut command = workspace::cargo();
        command
            .arg(subcommand)
            .args(["--release", "--package", self.package])
            .args(["--target", BARE_METAL_TARGET])
            .arg("--target-dir")
            .arg(workspace::root().join(self.target_dir))
            // Cargo prefers the encoded form; removing `RUSTFLAGS` as well keeps a developer's
            // host flags away from anything this build starts, such as a nested cargo.
            .env("CARGO_ENCODED_RUSTFLAGS", self.rustflags.join("\x1f"))
            .env_remove("RUSTFLAGS");
        command
    }

    /// Where `cargo build` puts the binary.
    pub fn binary(&self) -> PathBuf {
        workspace::root()
            .join(self.target_dir)
            .join(BARE_METAL_TARGET)
            .join("release")
            .join(self.package)
    }
}

/// Builds `artifact` with cargo's output on this terminal; returns the binary's path.
pub fn build(artifact: &CrossBuild) -> Result<PathBuf, String> {
    let status = artifact
        .cargo("build")
        .status()
        .map_err(|error| format!("cannot start cargo: {error}"))?;
    if !status.success() {
        return Err(format!("building {} failed", artifact.package));
    }
    Ok(artifact.binary())
}
