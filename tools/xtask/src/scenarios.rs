//! The in-QEMU scenarios: what each boots with and what it must show, and the verdict on a
//! finished run.
//!
//! The table is data; a new scenario is one more entry in [`SCENARIOS`]. Verdicts never
//! depend on how long a guest took, only on whether it hung past its timeout.

use std::path::Path;
use std::time::Duration;

use crate::guest::{Ending, GuestRun};
use crate::qemu::{FAIL_STATUS, GuestExit, PASS_STATUS, QemuConfig};

/// Generous, because TCG is slow and several guests may share the machine.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What a scenario expects the kernel to report through `isa-debug-exit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedExit {
    Pass,
    /// The kernel is meant to fail (a deliberate fault or panic) and report it.
    Fail,
}

impl ExpectedExit {
    fn guest_exit(self) -> GuestExit {
        match self {
            ExpectedExit::Pass => GuestExit::Passed,
            ExpectedExit::Fail => GuestExit::Failed,
        }
    }

    fn describe(self) -> String {
        match self {
            ExpectedExit::Pass => format!("success (exit code {PASS_STATUS})"),
            ExpectedExit::Fail => format!("failure (exit code {FAIL_STATUS})"),
        }
    }
}

#[derive(Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub kernel_command_line: &'static str,
    pub expected_exit: ExpectedExit,
    /// Must appear in the serial output in this order, each after the previous one.
    pub serial_must_show: &'static [&'static str],
    /// How long before the guest is considered hung.
    pub timeout: Duration,
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "boot",
        kernel_command_line: "test=boot log=info",
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "exo exokernel",
            "memory map:",
            "frames:",
            "heap:",
            "test boot: ok",
        ],
        timeout: DEFAULT_TIMEOUT,
    },
    Scenario {
        name: "timer",
        kernel_command_line: "test=timer log=info",
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &["timer:", "test timer: ok"],
        timeout: DEFAULT_TIMEOUT,
    },
    Scenario {
        name: "page-fault",
        kernel_command_line: "test=page-fault log=info",
        expected_exit: ExpectedExit::Fail,
        serial_must_show: &["EXCEPTION #PF page fault", "cr2=0x00000000deadbeef", "rip="],
        timeout: DEFAULT_TIMEOUT,
    },
    Scenario {
        name: "panic",
        kernel_command_line: "test=panic log=info",
        expected_exit: ExpectedExit::Fail,
        serial_must_show: &["KERNEL PANIC", "deliberate panic"],
        timeout: DEFAULT_TIMEOUT,
    },
    Scenario {
        name: "double-fault",
        kernel_command_line: "test=stack-overflow log=info",
        expected_exit: ExpectedExit::Fail,
        serial_must_show: &["EXCEPTION #DF double fault"],
        timeout: DEFAULT_TIMEOUT,
    },
];

/// The scenarios whose name contains `filter` (all of them without one), in table order.
pub fn matching(filter: Option<&str>) -> Vec<&'static Scenario> {
    SCENARIOS
        .iter()
        .filter(|scenario| filter.is_none_or(|filter| scenario.name.contains(filter)))
        .collect()
}

impl Scenario {
    pub fn qemu_config(&self, kernel: &Path) -> QemuConfig {
        QemuConfig::new(kernel, self.kernel_command_line)
    }

    /// Why `run` does not satisfy this scenario, or `None` if it does.
    pub fn failure_reason(&self, run: &GuestRun) -> Option<String> {
        let mut reasons = Vec::new();
        match run.ending {
            Ending::Exited(exit) if exit == self.expected_exit.guest_exit() => {}
            Ending::Exited(exit) => reasons.push(format!(
                "expected the guest to report {}, but {exit}",
                self.expected_exit.describe()
            )),
            Ending::TimedOut(_) => reasons.push(run.ending.to_string()),
        }
        if let Some(missing) = first_missing_in_order(&run.serial, self.serial_must_show) {
            reasons.push(format!(
                "serial output lacks {missing:?} (searched in order)"
            ));
        }
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }
}

/// The first of `expected` that does not occur in `output` after the previous one's match.
fn first_missing_in_order<'a>(output: &str, expected: &[&'a str]) -> Option<&'a str> {
    let mut rest = output;
    for wanted in expected {
        let Some(found) = rest.find(wanted) else {
            return Some(wanted);
        };
        rest = &rest[found + wanted.len()..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_must_appear_in_order() {
        let output = "exo exokernel\nmemory map: 3 regions\nheap: 1 MiB\n";
        assert_eq!(
            first_missing_in_order(output, &["exo", "memory map:", "heap:"]),
            None
        );
        assert_eq!(
            first_missing_in_order(output, &["heap:", "memory map:"]),
            Some("memory map:")
        );
        assert_eq!(
            first_missing_in_order(output, &["frames:"]),
            Some("frames:")
        );
        assert_eq!(first_missing_in_order(output, &[]), None);
    }

    #[test]
    fn a_repeated_string_needs_a_second_occurrence() {
        assert_eq!(first_missing_in_order("ok ok", &["ok", "ok"]), None);
        assert_eq!(first_missing_in_order("ok", &["ok", "ok"]), Some("ok"));
    }

    #[test]
    fn verdict_needs_exit_and_output() {
        let scenario = &SCENARIOS[3];
        assert_eq!(scenario.name, "panic");
        let run = |ending, serial: &str| GuestRun {
            ending,
            serial: serial.to_string(),
            qemu_messages: String::new(),
            elapsed: Duration::ZERO,
        };
        let failed = Ending::Exited(GuestExit::Failed);
        let good = run(failed, "KERNEL PANIC at x: deliberate panic\n");
        assert_eq!(scenario.failure_reason(&good), None);
        let reason = scenario
            .failure_reason(&run(failed, "KERNEL PANIC\n"))
            .unwrap();
        assert!(reason.contains("deliberate panic"), "{reason}");
        let passed = Ending::Exited(GuestExit::Passed);
        let reason = scenario.failure_reason(&run(passed, &good.serial)).unwrap();
        assert!(reason.contains("guest reported success"), "{reason}");
        let hung = Ending::TimedOut(Duration::from_secs(60));
        let reason = scenario.failure_reason(&run(hung, &good.serial)).unwrap();
        assert!(reason.contains("timed out"), "{reason}");
    }

    #[test]
    fn filter_selects_by_name_substring() {
        assert_eq!(matching(None).len(), SCENARIOS.len());
        let names: Vec<_> = matching(Some("fault")).iter().map(|s| s.name).collect();
        assert_eq!(names, ["page-fault", "double-fault"]);
        assert!(matching(Some("nothing-matches")).is_empty());
    }

    #[test]
    fn scenario_names_are_unique() {
        for (index, scenario) in SCENARIOS.iter().enumerate() {
            assert!(
                SCENARIOS[..index]
                    .iter()
                    .all(|other| other.name != scenario.name)
            );
        }
    }
}
