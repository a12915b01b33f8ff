//! What a scenario is: what it boots with, what it must show, how long it may take and
//! what the host does beside it; the defaults every table entry starts from ([`DEFAULT`]);
//! and the QEMU configuration a scenario boots with.
//!
//! The entries themselves live in one file per chapter of the book (`boot.rs`,
//! `memory.rs`, …); the verdict on a finished run in `verdict.rs`. Nothing here runs QEMU.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::qemu::{FAIL_STATUS, GuestExit, PASS_STATUS, QemuConfig};
use crate::trace::stream::Stream;
use crate::{artifacts, servers, workspace};

pub use crate::network_setup::NetworkScenario;

/// Generous, because TCG is slow and several guests may share the machine.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// For the scenarios that do a lot of work (a thousand environments, hostile children) or
/// count CPU shares.
pub const LONG_TIMEOUT: Duration = Duration::from_secs(120);
/// For the scenarios whose servers talk to clients on the host under TCG.
pub const SERVER_TIMEOUT: Duration = Duration::from_secs(120);
/// The kernel command line of the scenarios that boot a program.
pub const PROGRAM_COMMAND_LINE: &str = "log=info";

/// Where the trace of a scenario with a trace check goes, relative to the workspace root;
/// one file per scenario, replaced by its next run.
const TRACE_DIRECTORY: &str = "target/trace/scenarios";

/// What every entry of the table starts from: boot the program named like the scenario
/// with the program command line, expect it to pass within [`DEFAULT_TIMEOUT`], with no
/// console input, no check count, no further check, no trace and no network traffic. An
/// entry writes only what differs (`..DEFAULT`).
pub const DEFAULT: Scenario = Scenario {
    name: "",
    kernel_command_line: PROGRAM_COMMAND_LINE,
    program: Program::NamedLikeScenario,
    serial_input: None,
    expected_exit: ExpectedExit::Pass,
    serial_must_show: &[],
    checks: None,
    timeout: DEFAULT_TIMEOUT,
    serial_check: None,
    trace_check: None,
    network: None,
};

/// What a scenario expects the kernel to report through `isa-debug-exit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedExit {
    Pass,
    /// The kernel is meant to fail (a deliberate fault or panic) and report it.
    Fail,
}

impl ExpectedExit {
    pub fn guest_exit(self) -> GuestExit {
        match self {
            ExpectedExit::Pass => GuestExit::Passed,
            ExpectedExit::Fail => GuestExit::Failed,
        }
    }

    pub fn describe(self) -> String {
        match self {
            ExpectedExit::Pass => format!("success (exit code {PASS_STATUS})"),
            ExpectedExit::Fail => format!("failure (exit code {FAIL_STATUS})"),
        }
    }
}

/// The user program a scenario boots as the first environment (a file of
/// `userapps/src/bin/`, `userapps/posix/src/bin/` or `userapps/net/src/bin/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    /// The program with the scenario's own name (most scenarios: `fs-test` boots `fs-test`).
    NamedLikeScenario,
    Named(&'static str),
    /// None: the kernel runs one of its own self-tests (its command line's `test=`).
    KernelOnly,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub kernel_command_line: &'static str,
    pub program: Program,
    /// Typed into the serial console (then Ctrl-D), for programs that read it.
    pub serial_input: Option<&'static str>,
    pub expected_exit: ExpectedExit,
    /// Must appear in the serial output in this order, each after the previous one.
    pub serial_must_show: &'static [&'static str],
    /// For a program that judges itself (`userapps::check` or its posix twin): how many
    /// checks it must report passed (its line `checks: N passed`), on top of exiting
    /// with the expected status. Its `ok:` lines then need no mirror in
    /// `serial_must_show`, which keeps only what the program cannot judge itself.
    pub checks: Option<u32>,
    /// How long before the guest is considered hung.
    pub timeout: Duration,
    /// A further check of the whole serial output, for what fixed strings cannot say
    /// (e.g. that a line is well-formed); its `Err` says what is wrong.
    pub serial_check: Option<SerialCheck>,
    /// A check of the kernel's trace stream (`trace=` must be on the command line), read
    /// from QEMU's debug console once the guest has gone; its `Err` says what is wrong.
    pub trace_check: Option<TraceCheck>,
    /// Host ports forwarded to the guest's network card, a host function talking to it,
    /// and what the card's traffic must show; `None`: the card is there, unused.
    pub network: Option<NetworkScenario>,
}

/// Checks a finished guest's serial output.
pub type SerialCheck = fn(&str) -> Result<(), String>;

/// Checks a finished guest's trace stream, judging its records.
pub type TraceCheck = fn(&Stream) -> Result<(), String>;

/// A traced run's stream, read once the guest has gone.
#[derive(Debug)]
pub struct TraceOutput {
    pub file: PathBuf,
    /// The stream, or why the file could not be read as one.
    pub stream: Result<Stream, String>,
}

/// A networked run's packet capture, read once the guest has gone.
#[derive(Debug)]
pub struct Capture {
    pub file: PathBuf,
    /// The frames in the order they were recorded, or why the file could not be read.
    pub frames: Result<Vec<Vec<u8>>, String>,
}

impl Scenario {
    /// The program it boots as the first environment; `None` for the kernel's own
    /// self-tests.
    pub fn program(&self) -> Option<&'static str> {
        match self.program {
            Program::NamedLikeScenario => Some(self.name),
            Program::Named(program) => Some(program),
            Program::KernelOnly => None,
        }
    }

    /// Whether it boots `cargo xtask run`'s boot file system (see
    /// [`NetworkScenario::run_layout`]).
    pub fn boots_run_layout(&self) -> bool {
        self.network
            .as_ref()
            .is_some_and(|network| network.run_layout)
    }

    pub fn qemu_config(&self, kernel: &Path) -> QemuConfig {
        let mut config = QemuConfig::new(kernel, self.kernel_command_line);
        config.boot_module = self.program().map(|_| match self.boots_run_layout() {
            false => artifacts::bootfs(),
            true => servers::bootfs(),
        });
        config.first_program = self.program().map(String::from);
        // Verdicts must not depend on how busy the host is. A networked guest talks to a
        // peer on the host's clock, though: with the instruction clock an idle guest skips
        // ahead, so its waits for the host would expire in a blink of host time.
        config.instruction_clock = self.network.is_none();
        config.serial_input = self.serial_input.map(String::from);
        config.trace_output = self.trace_check.map(|_| {
            workspace::root()
                .join(TRACE_DIRECTORY)
                .join(format!("{}.bin", self.name))
        });
        config
    }
}

/// A string made from constants once, when the table is built (a server's `-n` and the
/// line it prints with the same count): it lives as long as the program, like the
/// rest of the table.
pub fn built(text: String) -> &'static str {
    text.leak()
}

/// A list of strings made likewise.
pub fn built_list(strings: Vec<&'static str>) -> &'static [&'static str] {
    strings.leak()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_boots_the_program_named_like_it_unless_told_otherwise() {
        let named_like = Scenario {
            name: "fs-test",
            ..DEFAULT
        };
        assert_eq!(named_like.program(), Some("fs-test"));
        let shell = Scenario {
            name: "shell",
            program: Program::Named("sh"),
            ..DEFAULT
        };
        assert_eq!(shell.program(), Some("sh"));
        let kernel = Scenario {
            name: "boot",
            program: Program::KernelOnly,
            ..DEFAULT
        };
        assert_eq!(kernel.program(), None);
        assert_eq!(
            kernel.qemu_config(Path::new("/k/exo-kernel")).boot_module,
            None
        );
    }
}
