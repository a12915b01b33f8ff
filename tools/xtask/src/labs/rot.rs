//! The labs cannot rot: for every lab, the grader gives full marks on the tree, and its
//! skeleton builds and scores zero on every exercise, which proves each exercise's checks
//! can fail. `cargo xtask test` runs this after the scenarios; `cargo xtask lab check`
//! alone.
//!
//! Every skeleton is graded in one copy of the tree, `target/labs/tree`, made the next
//! lab's skeleton by rewriting only the files that differ, so its builds (its own
//! `target/`) are shared: the dependencies build once, and each lab rebuilds only the
//! crates its regions touch.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use crate::test_suite::Judged;
use crate::{checks, test_suite, workspace};

use super::catalog::Lab;
use super::grade::{self, parse_score_line};
use super::tree;

/// Where the skeletons are graded, relative to the workspace root.
const COPY: &str = "target/labs/tree";

/// One verdict of the rot check, printed like a test.
#[derive(Debug)]
pub struct Verdict {
    pub name: String,
    pub passed: bool,
    /// What went wrong, one line each.
    pub details: Vec<String>,
}

impl Verdict {
    /// Prints it as `cargo xtask test` prints a check, with its details indented below.
    pub fn print(&self) {
        test_suite::print_verdict(&self.name, self.passed, "");
        for line in &self.details {
            println!("    {line}");
        }
    }
}

/// Checks `labs` in order, handing each verdict to `report` as soon as it is known. The
/// tree's scenarios in `judged` (run already by `cargo xtask test`) are not booted again.
pub fn check(
    labs: &[&Lab],
    judged: &BTreeMap<&'static str, Judged>,
    report: &mut dyn FnMut(Verdict),
) -> Result<(), String> {
    for lab in labs {
        report(full_marks_on_the_tree(lab, judged)?);
        report(zero_on_the_skeleton(lab)?);
    }
    Ok(())
}

fn full_marks_on_the_tree(
    lab: &Lab,
    judged: &BTreeMap<&'static str, Judged>,
) -> Result<Verdict, String> {
    let grade = grade::grade(lab, judged)?;
    let details: Vec<String> = grade
        .scores
        .iter()
        .filter(|score| score.points < score.out_of)
        .flat_map(|score| {
            let heading = format!(
                "exercise {} scored {}/{}",
                score.exercise, score.points, score.out_of
            );
            std::iter::once(heading).chain(score.reasons.iter().flat_map(|reason| {
                reason
                    .lines()
                    .map(|line| format!("  {line}"))
                    .collect::<Vec<_>>()
            }))
        })
        .collect();
    Ok(Verdict {
        name: format!("lab {}: full marks on the tree", lab.number),
        passed: grade.built && details.is_empty(),
        details,
    })
}

fn zero_on_the_skeleton(lab: &Lab) -> Result<Verdict, String> {
    let copy: PathBuf = workspace::root().join(COPY);
    tree::sync_copy(&workspace::root(), &copy, lab.number)?;
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(&copy)
        .args(["xtask", "grade", &lab.number.to_string()])
        // The copy builds into its own target directory, never into this tree's.
        .env_remove("CARGO_TARGET_DIR");
    let captured = checks::run_captured(command)?;
    let mut details = Vec::new();
    if !captured.succeeded {
        details.push(format!(
            "the skeleton in {} did not build or grade:",
            copy.display()
        ));
        details.extend(
            crate::serial_log::last_lines(&captured.output, 15)
                .into_iter()
                .map(|line| format!("  {line}")),
        );
    }
    let scores: Vec<_> = captured
        .output
        .lines()
        .filter_map(parse_score_line)
        .collect();
    for exercise in lab.exercises {
        match scores.iter().find(|(id, _)| id.number == exercise.number) {
            Some((_, 0)) => {}
            Some((id, points)) => details.push(format!(
                "exercise {id} scored {points} with its region stubbed: its checks cannot fail"
            )),
            None if captured.succeeded => details.push(format!(
                "the grader in the copy printed no score for exercise {}.{}",
                lab.number, exercise.number
            )),
            None => {}
        }
    }
    Ok(Verdict {
        name: format!("lab {}: the skeleton builds and scores zero", lab.number),
        passed: details.is_empty(),
        details,
    })
}

/// Checks every lab (what `cargo xtask test` runs, with the scenarios it has `judged`);
/// nothing in a lab's copy, whose regions hold a student's work.
pub fn check_all(
    judged: &BTreeMap<&'static str, Judged>,
    report: &mut dyn FnMut(Verdict),
) -> Result<(), String> {
    if tree::is_lab_copy(&workspace::root()) {
        return Ok(());
    }
    let labs: Vec<&Lab> = super::catalog::LABS.iter().collect();
    check(&labs, judged, report)
}
