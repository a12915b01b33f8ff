//! The host-side checks: unit tests, clippy and rustfmt, each one cargo command run with its
//! output captured, and reading libtest's summary lines.
//!
//! Host commands cover the whole workspace but the packages that only build for bare metal
//! ([`workspace::BARE_METAL_PACKAGES`]); the kernel and the user programs are linted through
//! their own [`CrossBuild`](crate::artifacts::CrossBuild)s.

use std::process::{Command, Stdio};

use crate::artifacts;
use crate::workspace;

/// A check that passes when its command succeeds.
#[derive(Debug)]
pub struct CommandCheck {
    pub name: &'static str,
    pub command: Command,
}

/// The checks after the unit tests, in the order they run.
pub fn lint_checks() -> Vec<CommandCheck> {
    let mut host_clippy = workspace::cargo_on_host_crates("clippy");
    host_clippy.args(["--all-targets", "--", "-D", "warnings"]);
    let mut kernel_clippy = artifacts::KERNEL.cargo("clippy");
    kernel_clippy.args(["--", "-D", "warnings"]);
    let mut user_clippy = artifacts::USER_PROGRAMS.cargo("clippy");
    user_clippy.args(["--", "-D", "warnings"]);
    let mut format = workspace::cargo();
    // rustfmt colours its diff even into a pipe; captured output is shown indented.
    format.args(["fmt", "--all", "--", "--check", "--color", "never"]);
    vec![
        CommandCheck {
            name: "clippy (host crates)",
            command: host_clippy,
        },
        CommandCheck {
            name: "clippy (kernel)",
            command: kernel_clippy,
        },
        CommandCheck {
            name: "clippy (user programs)",
            command: user_clippy,
        },
        CommandCheck {
            name: "rustfmt",
            command: format,
        },
    ]
}

pub fn unit_tests_command() -> Command {
    workspace::cargo_on_host_crates("test")
}

#[derive(Debug)]
pub struct Captured {
    pub succeeded: bool,
    /// Standard output followed by standard error.
    pub output: String,
}

pub fn run_captured(mut command: Command) -> Result<Captured, String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot start {:?}: {error}", command.get_program()))?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok(Captured {
        succeeded: output.status.success(),
        output: text,
    })
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TestCounts {
    pub passed: usize,
    pub failed: usize,
}

/// Sums libtest's `test result: ok. 12 passed; 0 failed; ...` lines, one per test binary.
pub fn libtest_counts(output: &str) -> TestCounts {
    let mut counts = TestCounts::default();
    for line in output.lines() {
        let Some(summary) = line.trim().strip_prefix("test result: ") else {
            continue;
        };
        // `ok. 12 passed; 1 failed; 0 ignored; ...`: skip the verdict, read `number word` pairs.
        let Some((_, tallies)) = summary.split_once(". ") else {
            continue;
        };
        for tally in tallies.split("; ") {
            let Some((number, word)) = tally.split_once(' ') else {
                continue;
            };
            let Ok(number) = number.parse::<usize>() else {
                continue;
            };
            match word {
                "passed" => counts.passed += number,
                "failed" => counts.failed += number,
                _ => {}
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_summaries_are_summed() {
        let output = "\
running 2 tests
test a ... ok
test b ... ok

test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

test result: FAILED. 10 passed; 3 failed; 1 ignored; 0 measured; 0 filtered out; finished in 1.2s

test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";
        assert_eq!(
            libtest_counts(output),
            TestCounts {
                passed: 12,
                failed: 3
            }
        );
    }

    #[test]
    fn output_without_summaries_counts_nothing() {
        let output = "error[E0425]: cannot find value `x`\nerror: could not compile `exo-abi`\n";
        assert_eq!(libtest_counts(output), TestCounts::default());
    }
}
