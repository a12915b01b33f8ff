//! Cross-compiled artifacts: which package, target and code generation flags each is built
//! with, and where the result lands.
//!
//! Each artifact gets its own target directory, so their different flags never invalidate
//! each other's build cache: the kernel in `target/kernel`, the user programs in
//! `target/user`.

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

/// Code generation flags for user programs:
/// - `relocation-model=static`: programs are linked at a fixed address (0x400000, by
///   `userapps/user.ld`) and the kernel loads them there without applying relocations;
///   the target's default, position-independent code, would need a loader that does.
/// - `force-frame-pointers=yes`: as for the kernel, readable backtraces.
///
/// No `code-model=kernel`: programs live in the lower half, where the default (small) code
/// model reaches them.
const USER_RUSTFLAGS: &[&str] = &["-Crelocation-model=static", "-Cforce-frame-pointers=yes"];

/// How one package's bare-metal binaries are built.
#[derive(Debug)]
pub struct CrossBuild {
    pub package: &'static str,
    /// Relative to the workspace root.
    target_dir: &'static str,
    rustflags: &'static [&'static str],
    /// Extra arguments for `cargo build` (not for clippy, which checks every target it builds).
    build_arguments: &'static [&'static str],
}

pub const KERNEL: CrossBuild = CrossBuild {
    package: "exo-kernel",
    target_dir: "target/kernel",
    rustflags: KERNEL_RUSTFLAGS,
    build_arguments: &[],
};

/// Every program in `userapps/src/bin/`, one binary each, named after its file.
pub const USER_PROGRAMS: CrossBuild = CrossBuild {
    package: "userapps",
    target_dir: "target/user",
    rustflags: USER_RUSTFLAGS,
    build_arguments: &["--bins"],
};

/// Where the user programs' sources are, relative to the workspace root.
const USER_PROGRAM_SOURCES: &str = "userapps/src/bin";

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

    /// `cargo build` for this artifact, with its build arguments.
    pub fn cargo_build(&self) -> Command {
        let mut command = self.cargo("build");
        command.args(self.build_arguments);
        command
    }

    /// Where `cargo build` puts the binary named like the package (the kernel).
    pub fn binary(&self) -> PathBuf {
        self.binary_named(self.package)
    }

    /// Where `cargo build` puts the binary `name` (a user program).
    pub fn binary_named(&self, name: &str) -> PathBuf {
        workspace::root()
            .join(self.target_dir)
            .join(BARE_METAL_TARGET)
            .join("release")
            .join(name)
    }
}

/// Builds `artifact` with cargo's output on this terminal.
pub fn build(artifact: &CrossBuild) -> Result<(), String> {
    let status = artifact
        .cargo_build()
        .status()
        .map_err(|error| format!("cannot start cargo: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("building {} failed", artifact.package))
    }
}

/// Builds the kernel; returns its path.
pub fn build_kernel() -> Result<PathBuf, String> {
    build(&KERNEL)?;
    Ok(KERNEL.binary())
}

/// Where user program `name` is once built.
pub fn user_program(name: &str) -> PathBuf {
    USER_PROGRAMS.binary_named(name)
}

/// The names of all user programs, sorted: the files in `userapps/src/bin/`.
pub fn user_program_names() -> Vec<String> {
    let directory = workspace::root().join(USER_PROGRAM_SOURCES);
    let mut names: Vec<String> = std::fs::read_dir(directory)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let is_source = path.extension().is_some_and(|extension| extension == "rs");
            is_source.then(|| path.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    names.sort();
    names
}

/// Builds the user programs and returns the path of program `name`, which must be one.
pub fn build_user_program(name: &str) -> Result<PathBuf, String> {
    let names = user_program_names();
    if !names.iter().any(|known| known == name) {
        return Err(format!(
            "no user program `{name}`; programs: {}",
            names.join(", ")
        ));
    }
    build(&USER_PROGRAMS)?;
    Ok(user_program(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_is_the_package_binary() {
        assert!(
            KERNEL
                .binary()
                .ends_with("target/kernel/x86_64-unknown-none/release/exo-kernel")
        );
    }

    #[test]
    fn user_programs_have_their_own_directory_flags_and_names() {
        assert!(user_program("hello").ends_with("target/user/x86_64-unknown-none/release/hello"));
        assert!(
            !USER_RUSTFLAGS
                .iter()
                .any(|flag| flag.contains("code-model"))
        );
        let command = USER_PROGRAMS.cargo_build();
        let arguments: Vec<&str> = command.get_args().map(|a| a.to_str().unwrap()).collect();
        assert!(arguments.contains(&"--bins"));
        assert!(
            arguments
                .windows(2)
                .any(|pair| pair == ["--package", "userapps"])
        );
    }

    #[test]
    fn program_names_come_from_the_sources() {
        let names = user_program_names();
        assert!(names.iter().any(|name| name == "hello"), "{names:?}");
        assert!(names.is_sorted());
    }

    #[test]
    fn unknown_programs_are_refused_before_building() {
        let error = build_user_program("no-such-program").unwrap_err();
        assert!(error.contains("hello"), "{error}");
    }
}
