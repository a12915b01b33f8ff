//! The verdict on a finished run: its exit, its serial output in order, the count of
//! checks a self-judging program reports, its host side, its packet capture and its trace,
//! each against what the scenario's entry asks. A verdict never depends
//! on how long a guest took, only on whether it hung past its timeout.

use crate::guest::{Ending, GuestRun};
use crate::host::kernel_network::quoted;
use crate::serial_log::contains;

use super::scenario::{Capture, NetworkScenario, Scenario, TraceOutput};

impl Scenario {
    /// Why `run` (with `capture`, for a scenario that checks its traffic, and `trace`, for
    /// one that checks its trace) does not satisfy this scenario, or `None` if it does.
    pub fn failure_reason(
        &self,
        run: &GuestRun,
        capture: Option<&Capture>,
        trace: Option<&TraceOutput>,
    ) -> Option<String> {
        let mut reasons = Vec::new();
        match run.ending {
            Ending::Exited(exit) if exit == self.expected_exit.guest_exit() => {}
            Ending::Exited(exit) => reasons.push(format!(
                "expected the guest to report {}, but {exit}",
                self.expected_exit.describe()
            )),
            Ending::TimedOut(_) => reasons.push(run.ending.to_string()),
            // The host side's failure, below, says why.
            Ending::HostFailed => {}
        }
        if run.host_failure.is_some() {
            let killed = if run.ending == Ending::HostFailed {
                "; guest killed"
            } else {
                ""
            };
            reasons.push(format!("the host side failed{killed} (its error is below)"));
        }
        if let Some(missing) = first_missing_in_order(&run.serial, self.serial_must_show) {
            reasons.push(format!(
                "serial output lacks {missing:?} (searched in order)"
            ));
        }
        if let Some(expected) = self.checks
            && let Some(reason) = check_count_problem(&run.serial, expected)
        {
            reasons.push(reason);
        }
        if let Some(check) = self.serial_check
            && let Err(reason) = check(&run.serial)
        {
            reasons.push(format!("serial output: {reason}"));
        }
        if let Some(network) = &self.network
            && let Some(reason) = network.capture_failure(capture)
        {
            reasons.push(reason);
        }
        if let Some(check) = self.trace_check {
            match trace {
                None => reasons.push("no trace was taken".to_string()),
                Some(TraceOutput {
                    stream: Err(error), ..
                }) => reasons.push(format!("trace unreadable: {error}")),
                Some(TraceOutput {
                    file,
                    stream: Ok(stream),
                }) => {
                    if let Err(reason) = check(stream) {
                        reasons.push(format!("trace {}: {reason}", file.display()));
                    }
                }
            }
        }
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }
}

impl NetworkScenario {
    /// Why `capture` does not satisfy this scenario's traffic checks, or `None` if it does
    /// (or the scenario checks none).
    fn capture_failure(&self, capture: Option<&Capture>) -> Option<String> {
        if !self.needs_capture() {
            return None;
        }
        match capture {
            None => Some("no packet capture was taken".to_string()),
            Some(Capture {
                frames: Err(error), ..
            }) => Some(format!("packet capture unreadable: {error}")),
            Some(Capture {
                file,
                frames: Ok(frames),
            }) => capture_problems(
                frames,
                self.capture_must_contain,
                self.capture_must_not_contain,
            )
            .map(|problems| format!("packet capture {}: {problems}", file.display())),
        }
    }
}

/// What `frames` lack of `must_contain` or hold of `must_not_contain`, or `None`.
fn capture_problems(
    frames: &[Vec<u8>],
    must_contain: &[&[u8]],
    must_not_contain: &[&[u8]],
) -> Option<String> {
    let mut problems = Vec::new();
    for wanted in must_contain {
        if !frames.iter().any(|frame| contains(frame, wanted)) {
            problems.push(format!(
                "no frame contains {} ({} frames captured)",
                quoted(wanted),
                frames.len()
            ));
        }
    }
    for unwanted in must_not_contain {
        let holding: Vec<String> = (1..)
            .zip(frames)
            .filter(|(_, frame)| contains(frame, unwanted))
            .map(|(number, _)| number.to_string())
            .collect();
        if !holding.is_empty() {
            problems.push(format!(
                "{} of {} frames contain {}, which must appear in none (frames {})",
                holding.len(),
                frames.len(),
                quoted(unwanted),
                holding.join(", ")
            ));
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// Why `output` does not report exactly `expected` passed checks (one line `checks: N
/// passed` with N equal to `expected`), or `None` if it does.
fn check_count_problem(output: &str, expected: u32) -> Option<String> {
    let reported: Vec<&str> = output
        .lines()
        .filter_map(|line| line.trim().strip_prefix("checks: "))
        .filter_map(|rest| rest.strip_suffix(" passed"))
        .collect();
    match reported[..] {
        [count] if count.parse() == Ok(expected) => None,
        [] => Some(format!(
            "serial output has no check count (expected \"checks: {expected} passed\")"
        )),
        _ => Some(format!(
            "expected \"checks: {expected} passed\", but the guest reported {}",
            reported.join(", ")
        )),
    }
}

/// The first of `expected` that does not occur in `output` after the previous one's match.
pub fn first_missing_in_order<'a>(output: &str, expected: &[&'a str]) -> Option<&'a str> {
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
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::qemu::GuestExit;
    use crate::scenarios::SCENARIOS;

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
    fn the_check_count_must_be_reported_once_and_exactly() {
        assert_eq!(check_count_problem("ok: a\nchecks: 2 passed\n", 2), None);
        let reason = check_count_problem("ok: a\nchecks: 1 passed\n", 2).unwrap();
        assert!(reason.contains("reported 1"), "{reason}");
        let reason = check_count_problem("ok: a\nok: b\n", 2).unwrap();
        assert!(reason.contains("no check count"), "{reason}");
        let twice = "checks: 2 passed\nchecks: 2 passed\n";
        assert!(check_count_problem(twice, 2).is_some());
    }

    #[test]
    fn verdict_needs_exit_and_output() {
        let scenario = SCENARIOS.iter().find(|s| s.name == "panic").unwrap();
        let run = |ending, serial: &str| GuestRun {
            ending,
            serial: serial.to_string(),
            qemu_messages: String::new(),
            elapsed: Duration::ZERO,
            host_failure: None,
        };
        let failed = Ending::Exited(GuestExit::Failed);
        let good = run(failed, "KERNEL PANIC at x: deliberate panic\n");
        assert_eq!(scenario.failure_reason(&good, None, None), None);
        let reason = scenario
            .failure_reason(&run(failed, "KERNEL PANIC\n"), None, None)
            .unwrap();
        assert!(reason.contains("deliberate panic"), "{reason}");
        let passed = Ending::Exited(GuestExit::Passed);
        let reason = scenario
            .failure_reason(&run(passed, &good.serial), None, None)
            .unwrap();
        assert!(reason.contains("guest reported success"), "{reason}");
        let hung = Ending::TimedOut(Duration::from_secs(60));
        let reason = scenario
            .failure_reason(&run(hung, &good.serial), None, None)
            .unwrap();
        assert!(reason.contains("timed out"), "{reason}");
    }

    #[test]
    fn a_host_side_failure_fails_a_scenario_that_otherwise_passed() {
        let scenario = SCENARIOS.iter().find(|s| s.name == "net-test").unwrap();
        let mut run = GuestRun {
            ending: Ending::Exited(GuestExit::Passed),
            serial: net_test_serial(scenario),
            qemu_messages: String::new(),
            elapsed: Duration::ZERO,
            host_failure: None,
        };
        let capture = good_net_test_capture();
        assert_eq!(scenario.failure_reason(&run, Some(&capture), None), None);
        run.host_failure = Some("guest UDP port 7001: no reply".to_string());
        let reason = scenario.failure_reason(&run, Some(&capture), None).unwrap();
        assert_eq!(reason, "the host side failed (its error is below)");
        run.ending = Ending::HostFailed;
        let reason = scenario.failure_reason(&run, Some(&capture), None).unwrap();
        assert_eq!(
            reason,
            "the host side failed; guest killed (its error is below)"
        );
    }

    /// Serial output that satisfies net-test's table entry.
    fn net_test_serial(scenario: &Scenario) -> String {
        let checks = scenario.checks.expect("net-test counts its checks");
        format!("net-test: two bindings ready\nchecks: {checks} passed\n")
    }

    /// A capture that satisfies net-test's table entry.
    fn good_net_test_capture() -> Capture {
        Capture {
            file: PathBuf::from("/t/captures/net-test.pcap"),
            frames: Ok(vec![
                b"..echo:A0..".to_vec(),
                b"..echo:B0..".to_vec(),
                b"..no address yet..".to_vec(),
            ]),
        }
    }

    #[test]
    fn a_scenario_that_checks_its_traffic_needs_a_capture_that_passes() {
        let scenario = SCENARIOS.iter().find(|s| s.name == "net-test").unwrap();
        let run = GuestRun {
            ending: Ending::Exited(GuestExit::Passed),
            serial: net_test_serial(scenario),
            qemu_messages: String::new(),
            elapsed: Duration::ZERO,
            host_failure: None,
        };
        assert_eq!(
            scenario.failure_reason(&run, None, None).unwrap(),
            "no packet capture was taken"
        );
        let mut capture = good_net_test_capture();
        capture.frames = Ok(vec![
            b"..echo:A0..".to_vec(),
            b"no address yet".to_vec(),
            b"spoofed!".to_vec(),
        ]);
        assert_eq!(
            scenario.failure_reason(&run, Some(&capture), None).unwrap(),
            "packet capture /t/captures/net-test.pcap: no frame contains \"echo:B0\" \
             (3 frames captured); 1 of 3 frames contain \"spoofed!\", which must appear in \
             none (frames 3)"
        );
        capture.frames = Err("truncated pcap file".to_string());
        assert_eq!(
            scenario.failure_reason(&run, Some(&capture), None).unwrap(),
            "packet capture unreadable: truncated pcap file"
        );
    }

    #[test]
    fn the_capture_must_hold_each_wanted_string_and_no_unwanted_one() {
        let frames = vec![
            b"....echo:A0....".to_vec(),
            b"....echo:B0....".to_vec(),
            b"...".to_vec(),
        ];
        let wanted: &[&[u8]] = &[b"echo:A0", b"echo:B0"];
        assert_eq!(capture_problems(&frames, wanted, &[b"spoofed!"]), None);
        let problems = capture_problems(&frames, &[b"echo:A1"], &[b"echo:B0", b"..."]).unwrap();
        assert_eq!(
            problems,
            "no frame contains \"echo:A1\" (3 frames captured); \
             1 of 3 frames contain \"echo:B0\", which must appear in none (frames 2); \
             3 of 3 frames contain \"...\", which must appear in none (frames 1, 2, 3)"
        );
    }

    #[test]
    fn an_empty_capture_lacks_everything_wanted() {
        let problems = capture_problems(&[], &[b"echo:A0"], &[b"spoofed!"]).unwrap();
        assert_eq!(
            problems,
            "no frame contains \"echo:A0\" (0 frames captured)"
        );
    }
}
