//! `cargo xtask grade N`: runs lab N's checks on this tree and scores each exercise, JOS
//! style: full points when every check passes, none otherwise, with each failing check's
//! own message as the reason.
//!
//! Host tests run through `cargo test`, scenarios through the same code as `cargo xtask
//! test` (`test_suite::run_and_judge`), each scenario booted once however many exercises
//! it judges. A tree that does not build is an error, not a score: the exercises it
//! would judge say so, and the command fails.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::sync::Mutex;
use std::thread;

use crate::checks::{self, libtest_counts};
use crate::scenarios::{SCENARIOS, first_missing_in_order};
use crate::serial_log::last_lines;
use crate::test_suite::Judged;
use crate::{artifacts, qemu, test_suite, workspace};

use super::catalog::{Check, Exercise, Lab};
use super::markers::ExerciseId;

/// Guests booted at once, at most (as `cargo xtask test`).
const MAX_GUESTS: usize = 2;
/// Lines of a failed scenario's serial output shown with its reason.
const SERIAL_LINES: usize = 6;
/// What each of the kernel's closing counter lines holds (`log=info`).
const KERNEL_COUNTER_LINE: &str = "] counter ";
/// Lines of a failed test's panic message shown as its reason.
const PANIC_MESSAGE_LINES: usize = 4;
/// Lines of a build failure shown as its reason.
const BUILD_ERROR_LINES: usize = 12;

/// One exercise's score.
#[derive(Debug, PartialEq, Eq)]
pub struct Score {
    pub exercise: ExerciseId,
    pub title: &'static str,
    pub points: u32,
    pub out_of: u32,
    /// Why points were lost, one line per failing check.
    pub reasons: Vec<String>,
}

/// A lab's scores, and whether everything it needed built.
#[derive(Debug)]
pub struct Grade {
    pub scores: Vec<Score>,
    pub built: bool,
}

/// How one check came out.
enum Outcome {
    Passed,
    Failed(String),
    /// What it needed did not build; the text says what and how.
    NotBuilt(String),
}

/// `cargo xtask grade N`.
pub fn run(lab: &Lab) -> Result<ExitCode, String> {
    println!("lab {}: {} ({})", lab.number, lab.title, lab.chapter);
    let grade = grade(lab, &BTreeMap::new())?;
    print(&grade);
    if grade.built {
        Ok(ExitCode::SUCCESS)
    } else {
        Err("the tree did not build: the exercises above that need it scored nothing".into())
    }
}

/// Runs every check of `lab` on this tree, booting the scenarios not `judged` already.
pub fn grade(lab: &Lab, judged: &BTreeMap<&'static str, Judged>) -> Result<Grade, String> {
    let all_checks = || lab.exercises.iter().flat_map(|exercise| exercise.checks);
    let mut names: Vec<&'static str> = all_checks().filter_map(Check::scenario).collect();
    names.sort_unstable();
    names.dedup();
    let (known, unknown): (Vec<_>, Vec<_>) = names
        .into_iter()
        .partition(|name| judged.contains_key(name));
    let mut scenario_runs = boot_scenarios(&unknown)?;
    for name in known {
        scenario_runs.insert(name, Ok(judged[name].clone()));
    }
    let mut built = true;
    let mut scores = Vec::new();
    for exercise in lab.exercises {
        let mut reasons = Vec::new();
        for check in exercise.checks {
            match judge(check, &scenario_runs)? {
                Outcome::Passed => {}
                Outcome::Failed(reason) => reasons.push(reason),
                Outcome::NotBuilt(reason) => {
                    built = false;
                    reasons.push(reason);
                }
            }
        }
        scores.push(score(lab, exercise, reasons));
    }
    Ok(Grade { scores, built })
}

fn score(lab: &Lab, exercise: &'static Exercise, reasons: Vec<String>) -> Score {
    Score {
        exercise: ExerciseId {
            lab: lab.number,
            number: exercise.number,
        },
        title: exercise.title,
        points: if reasons.is_empty() {
            exercise.points
        } else {
            0
        },
        out_of: exercise.points,
        reasons,
    }
}

/// The line the rot check reads back from a grade run in a copy (see [`parse_score_line`]).
fn score_line(score: &Score) -> String {
    format!(
        "exercise {} {}: {}/{}",
        score.exercise, score.title, score.points, score.out_of
    )
}

/// Reads `exercise 4.2 title: 0/20` back into the exercise and its points.
pub fn parse_score_line(line: &str) -> Option<(ExerciseId, u32)> {
    let rest = line.strip_prefix("exercise ")?;
    let (id, _) = rest.split_once(' ')?;
    let (_, fraction) = rest.rsplit_once(": ")?;
    let (points, _) = fraction.split_once('/')?;
    Some((ExerciseId::parse(id)?, points.parse().ok()?))
}

fn print(grade: &Grade) {
    for score in &grade.scores {
        println!("{}", score_line(score));
        for reason in &score.reasons {
            for line in reason.lines() {
                println!("    {line}");
            }
        }
    }
    let points: u32 = grade.scores.iter().map(|score| score.points).sum();
    let out_of: u32 = grade.scores.iter().map(|score| score.out_of).sum();
    println!("score: {points}/{out_of}");
}

/// Each scenario's verdict, or why it could not be booted (what did not build).
type ScenarioRuns = BTreeMap<&'static str, Result<Judged, String>>;

/// Builds the kernel and the programs once, then boots each named scenario, two at a time.
fn boot_scenarios(names: &[&'static str]) -> Result<ScenarioRuns, String> {
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    qemu::ensure_installed()?;
    for build in [&artifacts::KERNEL, &artifacts::USER_PROGRAMS] {
        let captured = checks::run_captured(build.cargo_build())?;
        if !captured.succeeded {
            let error = format!(
                "{} did not build:\n{}",
                build.package,
                first_errors(&captured.output)
            );
            return Ok(names
                .iter()
                .map(|&name| (name, Err(error.clone())))
                .collect());
        }
    }
    artifacts::pack_bootfs()?;
    let kernel = artifacts::KERNEL.binary();
    let queue = Mutex::new(names.to_vec());
    let runs = Mutex::new(BTreeMap::new());
    let guests = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    thread::scope(|scope| {
        for _ in 0..guests.min(MAX_GUESTS).min(names.len()) {
            scope.spawn(|| {
                loop {
                    // Its own statement, so the queue is unlocked while the guest runs.
                    let next = queue.lock().expect("no worker panics").pop();
                    let Some(name) = next else { break };
                    let scenario = SCENARIOS
                        .iter()
                        .find(|scenario| scenario.name == name)
                        .expect("the catalog names scenarios of the table (a unit test)");
                    let run = test_suite::run_and_judge(scenario, &kernel);
                    runs.lock().expect("no worker panics").insert(name, Ok(run));
                }
            });
        }
    });
    Ok(runs.into_inner().expect("no worker panicked"))
}

fn judge(check: &Check, scenario_runs: &ScenarioRuns) -> Result<Outcome, String> {
    let (name, lines) = match check {
        Check::HostTests { package, tests } => return host_tests(package, tests),
        Check::Scenario(name) => (name, None),
        Check::ScenarioShows { scenario, lines } => (scenario, Some(*lines)),
    };
    let run = scenario_runs
        .get(name)
        .expect("every scenario named was booted");
    let (serial, reason) = match run {
        Err(error) => return Ok(Outcome::NotBuilt(error.clone())),
        Ok(run) => run,
    };
    let failure = match lines {
        None => reason.clone(),
        Some(lines) => first_missing_in_order(serial, lines)
            .map(|missing| format!("serial output lacks {missing:?} (searched in order)")),
    };
    Ok(match failure {
        None => Outcome::Passed,
        Some(reason) => {
            // The kernel's closing counters say nothing about an exercise: show what came
            // before them (a program's own panic message, say).
            let lines: Vec<&str> = serial
                .lines()
                .filter(|line| !line.contains(KERNEL_COUNTER_LINE))
                .collect();
            let tail = lines[lines.len().saturating_sub(SERIAL_LINES)..].join("\n    ");
            Outcome::Failed(format!(
                "scenario {name}: {reason}\n  its last lines:\n    {tail}"
            ))
        }
    })
}

/// Runs exactly `tests` of `package`'s library on the host; each must run and pass.
fn host_tests(package: &str, tests: &[&str]) -> Result<Outcome, String> {
    let mut command = workspace::cargo();
    command
        .args(["test", "--package", package, "--lib", "--", "--exact"])
        .args(tests);
    let captured = checks::run_captured(command)?;
    let counts = libtest_counts(&captured.output);
    let ran = counts.passed + counts.failed;
    if ran == 0 && !captured.succeeded {
        return Ok(Outcome::NotBuilt(format!(
            "{package} did not build:\n{}",
            first_errors(&captured.output)
        )));
    }
    if captured.succeeded && counts.passed == tests.len() {
        return Ok(Outcome::Passed);
    }
    if ran < tests.len() {
        return Ok(Outcome::Failed(format!(
            "only {ran} of the {} tests ran in {package}: {}",
            tests.len(),
            tests.join(", ")
        )));
    }
    Ok(Outcome::Failed(failed_tests(&captured.output)))
}

/// Each failed test with the first line of what it said (its panic message).
fn failed_tests(output: &str) -> String {
    let mut reasons = Vec::new();
    let mut lines = output.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|rest| rest.strip_suffix(" stdout ----"))
        else {
            continue;
        };
        // `thread '...' panicked at FILE:LINE:COLUMN:` then the message, which may take a
        // few lines (an assertion's `left:` and `right:`) and ends before a blank line.
        let message: Vec<&str> = lines
            .by_ref()
            .skip_while(|line| !line.contains("panicked at"))
            .skip(1)
            .take_while(|line| !line.trim().is_empty() && !line.starts_with("note:"))
            .take(PANIC_MESSAGE_LINES)
            .collect();
        let message = match message[..] {
            [] => "(no message)".to_string(),
            _ => message.join("\n    "),
        };
        reasons.push(format!("host test {name} failed: {message}"));
    }
    if reasons.is_empty() {
        "the host tests failed (no test reported why)".to_string()
    } else {
        reasons.join("\n")
    }
}

/// The first compiler errors of a failed build, with their locations.
fn first_errors(output: &str) -> String {
    let errors: Vec<&str> = output
        .lines()
        .filter(|line| line.starts_with("error") || line.trim_start().starts_with("-->"))
        .take(BUILD_ERROR_LINES)
        .collect();
    if errors.is_empty() {
        last_lines(output, BUILD_ERROR_LINES).join("\n")
    } else {
        errors.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_lines_read_back() {
        let score = Score {
            exercise: ExerciseId { lab: 4, number: 2 },
            title: "resolve a copy-on-write fault: the copy",
            points: 0,
            out_of: 20,
            reasons: vec![],
        };
        assert_eq!(
            parse_score_line(&score_line(&score)),
            Some((ExerciseId { lab: 4, number: 2 }, 0))
        );
        assert_eq!(parse_score_line("score: 10/40"), None);
        assert_eq!(parse_score_line("exercise x y: 1/2"), None);
    }

    #[test]
    fn failed_tests_are_named_with_their_message() {
        let output = "\
running 2 tests
test caps::tests::a ... FAILED

failures:

---- caps::tests::a stdout ----

thread 'caps::tests::a' panicked at exokernel/kernel-core/src/caps.rs:10:5:
assertion `left == right` failed
  left: 1
 right: 2
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

failures:
    caps::tests::a
";
        assert_eq!(
            failed_tests(output),
            "host test caps::tests::a failed: assertion `left == right` failed\n      left: 1\n     right: 2"
        );
        assert_eq!(
            failed_tests("nothing"),
            "the host tests failed (no test reported why)"
        );
    }
}
