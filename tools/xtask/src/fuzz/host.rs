//! `cargo xtask fuzz host`: runs every host fuzz target (`tools/fuzz-host`) for a time
//! each, optimised, and reports inputs tried, rates and any failing input.
//!
//! The targets, the driver and the corpus live in `tools/fuzz-host`; this module only
//! builds and starts it. Its short run by count is an ordinary `cargo test`, so
//! `cargo xtask test` runs it with the other host unit tests.

use std::process::ExitCode;

use crate::workspace;

/// Seconds per target unless told.
pub const DEFAULT_SECONDS: u64 = 10;

/// What `fuzz host` was asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFuzzOptions {
    /// Seconds each target runs.
    pub seconds: u64,
    /// Only the target of this name.
    pub target: Option<String>,
    /// The random inputs' seed; the same seed tries the same inputs.
    pub seed: u64,
}

impl Default for HostFuzzOptions {
    fn default() -> Self {
        Self {
            seconds: DEFAULT_SECONDS,
            target: None,
            seed: 1,
        }
    }
}

pub fn run(options: &HostFuzzOptions) -> Result<ExitCode, String> {
    let mut command = workspace::cargo();
    command.args(["run", "--release", "--quiet", "-p", "exo-fuzz-host", "--"]);
    command.args(["--seconds", &options.seconds.to_string()]);
    command.args(["--seed", &options.seed.to_string()]);
    if let Some(target) = &options.target {
        command.args(["--target", target]);
    }
    let status = command
        .status()
        .map_err(|error| format!("could not run cargo: {error}"))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
