//! `cargo xtask test`: runs the host checks and the in-QEMU scenarios in a fixed order,
//! prints one line per check and ends with the `N passed, N failed` total (and `N
//! skipped`, for the scenarios this machine cannot run, each with its reason).
//!
//! Nothing else may print between the check lines, so failures show their details indented
//! under their own line, and the total is always the last line.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;

use crate::checks::{self, CommandCheck};
use crate::guest::{self, GuestRun};
use crate::host::side;
use crate::host::side::HostNotes;
use crate::host::tap_network::{TapError, TapNetwork};
use crate::scenarios::{self, Capture, Scenario, TraceOutput};
use crate::serial_log::last_lines;
use crate::{artifacts, network_setup, pcap, qemu, servers, trace};

/// Guests running at once by default, at most: each TCG guest keeps a host CPU busy, and
/// guests starved of CPU drift towards their hang timeouts.
const DEFAULT_MAX_JOBS: usize = 2;
/// Lines of a failed cargo command's output to show.
const COMMAND_TAIL_LINES: usize = 40;
/// Lines of a failed scenario's serial output to show.
const SERIAL_TAIL_LINES: usize = 25;
/// Lines of a failed host function's error to show.
const HOST_FAILURE_LINES: usize = 10;
/// Boots of a networked scenario, at most, when QEMU finds a host port taken (see
/// [`network_setup::lost_a_host_port`]).
const HOST_PORT_BOOTS: usize = 3;

#[derive(Debug, PartialEq, Eq)]
pub struct TestOptions {
    /// Run only the scenarios whose name contains this.
    pub filter: Option<String>,
    /// Unit tests, clippy and rustfmt.
    pub host_checks: bool,
    /// Scenarios run at once; `None` picks from the machine's parallelism.
    pub jobs: Option<usize>,
}

/// Counts for the final line: a check counts once, each host unit test once.
#[derive(Debug, Default)]
struct Tally {
    passed: usize,
    failed: usize,
    /// Scenarios that did not run because the machine lacks what they need (a tap scenario
    /// without root): neither passed nor failed.
    skipped: usize,
}

impl Tally {
    fn count(&mut self, passed: bool) {
        if passed {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
    }

    /// The last line of the report.
    fn summary(&self) -> String {
        let mut line = format!("{} passed, {} failed", self.passed, self.failed);
        if self.skipped > 0 {
            line.push_str(&format!(", {} skipped", self.skipped));
        }
        line
    }
}

/// The one line a check prints; `note` follows the verdict.
pub(crate) fn print_verdict(name: &str, passed: bool, note: &str) {
    let verdict = if passed { "ok" } else { "FAILED" };
    println!("test {name} ... {verdict}{note}");
}

/// What a test run found: the tally for its last line, and each scenario's verdict (the
/// labs' rot check, which runs after, grades the tree with them instead of booting again).
#[derive(Debug)]
pub struct TestRun {
    tally: Tally,
    pub judged: BTreeMap<&'static str, Judged>,
}

impl TestRun {
    /// Counts one more check, run after the scenarios.
    pub fn count(&mut self, passed: bool) {
        self.tally.count(passed);
    }

    /// Prints the last line; the exit code.
    pub fn finish(self) -> ExitCode {
        println!("{}", self.tally.summary());
        if self.tally.failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

/// The host checks (unless `options` leaves them out), then the scenarios.
pub fn run(options: &TestOptions) -> Result<TestRun, String> {
    let selected = scenarios::matching(options.filter.as_deref());
    if let Some(filter) = &options.filter
        && selected.is_empty()
    {
        let names: Vec<_> = scenarios::SCENARIOS.iter().map(|s| s.name).collect();
        return Err(format!(
            "no scenario name contains `{filter}`; scenarios: {}",
            names.join(", ")
        ));
    }
    // Before the long host checks, so a missing QEMU is reported at once.
    qemu::ensure_installed()?;

    let mut tally = Tally::default();
    let mut judged = BTreeMap::new();
    if options.host_checks {
        run_unit_tests(&mut tally)?;
        for check in checks::lint_checks() {
            run_command_check(check, &mut tally)?;
        }
    }
    let kernel_build = CommandCheck {
        name: "kernel build",
        command: artifacts::KERNEL.cargo_build(),
    };
    if !run_command_check(kernel_build, &mut tally)? {
        println!(
            "({} scenarios not run: the kernel did not build)",
            selected.len()
        );
    } else {
        let runnable = build_user_programs_if_needed(selected, &mut tally)?;
        let jobs = options.jobs.unwrap_or_else(default_jobs);
        judged = run_scenarios(&runnable, &artifacts::KERNEL.binary(), jobs, &mut tally);
    }
    Ok(TestRun { tally, judged })
}

/// Builds the user programs once if a selected scenario boots one; returns the scenarios
/// that can run (all of them, unless the programs did not build).
fn build_user_programs_if_needed(
    selected: Vec<&'static Scenario>,
    tally: &mut Tally,
) -> Result<Vec<&'static Scenario>, String> {
    if selected.iter().all(|scenario| scenario.program().is_none()) {
        return Ok(selected);
    }
    let user_build = CommandCheck {
        name: "user programs build",
        command: artifacts::USER_PROGRAMS.cargo_build(),
    };
    if run_command_check(user_build, tally)? {
        let debug_information = artifacts::check_debug_information();
        print_verdict(
            "user programs carry debug information for gdb",
            debug_information.is_ok(),
            "",
        );
        tally.count(debug_information.is_ok());
        if let Err(message) = debug_information {
            println!("    {message}");
        }
        let size = crate::bench::sizes::udp_echo_within_target();
        print_verdict("udp-echo loads at most 128 KiB", size.is_ok(), "");
        tally.count(size.is_ok());
        if let Err(message) = size {
            println!("    {message}");
        }
        artifacts::pack_bootfs()?;
        if selected.iter().any(|scenario| scenario.boots_run_layout()) {
            servers::pack_bootfs()?;
        }
        return Ok(selected);
    }
    let (runnable, stranded): (Vec<_>, Vec<_>) = selected
        .into_iter()
        .partition(|scenario| scenario.program().is_none());
    println!(
        "({} scenarios not run: the user programs did not build)",
        stranded.len()
    );
    Ok(runnable)
}

fn default_jobs() -> usize {
    thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(DEFAULT_MAX_JOBS)
}

/// Each host unit test counts on its own in the total.
fn run_unit_tests(tally: &mut Tally) -> Result<(), String> {
    let captured = checks::run_captured(checks::unit_tests_command())?;
    let mut counts = checks::libtest_counts(&captured.output);
    if !captured.succeeded && counts.failed == 0 {
        // Nothing ran (a build error, say): still one failure.
        counts.failed = 1;
    }
    let passed = counts.failed == 0;
    let name = if passed {
        format!("host unit tests ({} passed)", counts.passed)
    } else {
        format!(
            "host unit tests ({} passed, {} failed)",
            counts.passed, counts.failed
        )
    };
    print_verdict(&name, passed, "");
    tally.passed += counts.passed;
    tally.failed += counts.failed;
    if !passed {
        print_tail(&captured.output, COMMAND_TAIL_LINES);
    }
    Ok(())
}

fn run_command_check(check: CommandCheck, tally: &mut Tally) -> Result<bool, String> {
    let captured = checks::run_captured(check.command)?;
    print_verdict(check.name, captured.succeeded, "");
    tally.count(captured.succeeded);
    if !captured.succeeded {
        print_tail(&captured.output, COMMAND_TAIL_LINES);
    }
    Ok(captured.succeeded)
}

/// A scenario's serial output and, if it failed, why.
pub(crate) type Judged = (String, Option<String>);

/// Runs up to `jobs` guests at once but reports in table order, each as soon as it and all
/// scenarios before it have finished; returns each one's verdict by name.
fn run_scenarios(
    selected: &[&'static Scenario],
    kernel: &Path,
    jobs: usize,
    tally: &mut Tally,
) -> BTreeMap<&'static str, Judged> {
    let mut judged = BTreeMap::new();
    let next_index = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel();
    thread::scope(|scope| {
        for _ in 0..jobs.min(selected.len()) {
            let sender = sender.clone();
            let next_index = &next_index;
            scope.spawn(move || {
                loop {
                    let index = next_index.fetch_add(1, Ordering::Relaxed);
                    let Some(scenario) = selected.get(index) else {
                        break;
                    };
                    let run = run_scenario(scenario, kernel);
                    if sender.send((index, run)).is_err() {
                        break;
                    }
                }
            });
        }
        // The workers hold the only senders left, so `recv` fails only if one panicked.
        drop(sender);

        let mut finished: Vec<Option<Result<Outcome, String>>> =
            selected.iter().map(|_| None).collect();
        for (index, scenario) in selected.iter().enumerate() {
            let run = loop {
                if let Some(run) = finished[index].take() {
                    break run;
                }
                let (done, run) = receiver.recv().expect("a scenario worker panicked");
                finished[done] = Some(run);
            };
            if let Some(verdict) = report_scenario(scenario, run, tally) {
                judged.insert(scenario.name, verdict);
            }
        }
    });
    judged
}

/// How a scenario went on its worker: it ran, or the machine could not run it (the reason).
#[derive(Debug)]
enum Outcome {
    // Boxed: a run is large and a skip is a line (clippy's `large_enum_variant`).
    Ran(Box<ScenarioRun>),
    Skipped(String),
}

/// A scenario's guest run and, for one that checks its traffic or its trace, its capture
/// or its trace.
#[derive(Debug)]
struct ScenarioRun {
    guest: GuestRun,
    capture: Option<Capture>,
    trace: Option<TraceOutput>,
    /// Boots it took: more than one when QEMU found a host port taken.
    boots: usize,
    /// What its host function left for the report.
    notes: Vec<String>,
}

/// Boots the scenario's guest, with its network's forwards (or tap), host function and
/// capture; boots it again with new host ports if another program took one first. A tap
/// scenario where no tap can be made is skipped.
fn run_scenario(scenario: &Scenario, kernel: &Path) -> Result<Outcome, String> {
    let mut config = scenario.qemu_config(kernel);
    // Held until the guest and its host function are done; removed on every path by its
    // `Drop`.
    let tap = match scenario.network.as_ref().is_some_and(|network| network.tap) {
        false => None,
        true => match TapNetwork::create() {
            Ok(network) => Some(network),
            Err(TapError::Unavailable(reason)) => return Ok(Outcome::Skipped(reason)),
            Err(TapError::Failed(error)) => return Err(error),
        },
    };
    config.tap = tap.as_ref().map(|network| network.backend().clone());
    if let Some(file) = &config.trace_output {
        trace::prepare_output(file)?;
    }
    let mut boots = 0;
    let mut notes = HostNotes::default();
    let guest = loop {
        boots += 1;
        let mut host = None;
        if let Some(network) = &scenario.network {
            network_setup::prepare(scenario.name, network, &mut config)?;
            if let Some(function) = network.host {
                let (function, its_notes) = side::on_host_thread(function, &config);
                host = Some(function);
                notes = its_notes;
            }
        }
        let guest = guest::run_unattended_with_host(&config, scenario.timeout, host)?;
        let boot_again = scenario.network.is_some()
            && boots < HOST_PORT_BOOTS
            && network_setup::lost_a_host_port(&guest);
        if !boot_again {
            break guest;
        }
    };
    let capture = config.packet_capture.map(|file| Capture {
        frames: pcap::read_frames(&file),
        file,
    });
    let trace = config.trace_output.map(|file| TraceOutput {
        stream: trace::read(&file),
        file,
    });
    Ok(Outcome::Ran(Box::new(ScenarioRun {
        guest,
        capture,
        trace,
        boots,
        notes: notes.take(),
    })))
}

/// Boots `scenario` as [`run`] does and judges it (`cargo xtask grade` judges labs with
/// the table's scenarios); one the machine cannot run fails with the reason.
pub(crate) fn run_and_judge(scenario: &Scenario, kernel: &Path) -> Judged {
    match run_scenario(scenario, kernel) {
        Err(error) => (String::new(), Some(error)),
        Ok(Outcome::Skipped(reason)) => (String::new(), Some(format!("not run: {reason}"))),
        Ok(Outcome::Ran(run)) => {
            let reason =
                scenario.failure_reason(&run.guest, run.capture.as_ref(), run.trace.as_ref());
            (run.guest.serial, reason)
        }
    }
}

/// Prints the scenario's verdict; returns it, unless the scenario was skipped.
fn report_scenario(
    scenario: &Scenario,
    run: Result<Outcome, String>,
    tally: &mut Tally,
) -> Option<Judged> {
    let name = format!("scenario {}", scenario.name);
    let ScenarioRun {
        guest: run,
        capture,
        trace,
        boots,
        notes,
    } = match run {
        Ok(Outcome::Ran(run)) => *run,
        Ok(Outcome::Skipped(reason)) => {
            println!("test {name} ... skipped: {reason}");
            tally.skipped += 1;
            return None;
        }
        Err(error) => {
            print_verdict(&name, false, "");
            tally.count(false);
            println!("    {error}");
            return Some((String::new(), Some(error)));
        }
    };
    let reason = scenario.failure_reason(&run, capture.as_ref(), trace.as_ref());
    let passed = reason.is_none();
    let boots = if boots > 1 {
        format!("; booted {boots} times, a host port was taken")
    } else {
        String::new()
    };
    let note = format!(" ({:.1} s{boots})", run.elapsed.as_secs_f64());
    print_verdict(&name, passed, &note);
    tally.count(passed);
    for note in notes {
        println!("    {note}");
    }
    if let Some(reason) = &reason {
        println!("    {reason}");
        if let Some(failure) = &run.host_failure {
            println!("    host side said:");
            print_tail(failure, HOST_FAILURE_LINES);
        }
        println!("    last serial lines:");
        print_tail(&run.serial, SERIAL_TAIL_LINES);
        if !run.qemu_messages.trim().is_empty() {
            println!("    QEMU said:");
            print_tail(&run.qemu_messages, SERIAL_TAIL_LINES);
        }
    }
    Some((run.serial, reason))
}

fn print_tail(text: &str, count: usize) {
    let lines = last_lines(text, count);
    if lines.is_empty() {
        println!("        (nothing)");
    }
    for line in lines {
        println!("        {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_scenarios_are_counted_apart_and_named_only_when_there_are_some() {
        let mut tally = Tally::default();
        tally.count(true);
        tally.count(true);
        tally.count(false);
        assert_eq!(tally.summary(), "2 passed, 1 failed");
        tally.skipped += 1;
        assert_eq!(tally.summary(), "2 passed, 1 failed, 1 skipped");
    }
}
