//! `cargo xtask lab start N [--dir PATH]`, `cargo xtask lab check [N]` and `cargo xtask
//! grade N`: reading them from the command line and carrying them out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use lexopt::Arg::{Long, Value};
use lexopt::Parser;

use crate::workspace;

use super::catalog::{self, Lab};
use super::{grade, rot, tree};

#[derive(Debug, PartialEq, Eq)]
pub enum LabCommand {
    /// Write lab `lab`'s skeleton to `directory` (default `../exo-lab-N` beside the tree).
    Start {
        lab: u32,
        directory: Option<PathBuf>,
    },
    /// The rot check, for one lab or all.
    Check { lab: Option<u32> },
    /// Score lab `lab` on this tree.
    Grade { lab: u32 },
}

/// Reads the words after `lab` or `grade` (`command`).
pub fn parse(command: &str, options: &mut Parser) -> Result<LabCommand, String> {
    let unexpected = |error: lexopt::Error| format!("{error} for `{command}`");
    let mut words = Vec::new();
    let mut directory = None;
    while let Some(option) = options.next().map_err(unexpected)? {
        match option {
            Long("dir") if command == "lab" => {
                let value = options.value().map_err(|_| "--dir needs a directory")?;
                directory = Some(PathBuf::from(value));
            }
            Value(word) => words.push(
                word.into_string()
                    .map_err(|word| format!("`{}` is not UTF-8", word.to_string_lossy()))?,
            ),
            other => return Err(unexpected(other.unexpected())),
        }
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let parsed = match (command, &words[..]) {
        ("grade", [lab]) => LabCommand::Grade {
            lab: lab_number(lab)?,
        },
        ("lab", ["start", lab]) => LabCommand::Start {
            lab: lab_number(lab)?,
            directory: directory.take(),
        },
        ("lab", ["check"]) => LabCommand::Check { lab: None },
        ("lab", ["check", lab]) => LabCommand::Check {
            lab: Some(lab_number(lab)?),
        },
        ("grade", _) => return Err("`grade` takes a lab number: cargo xtask grade 1".into()),
        _ => {
            return Err(
                "`lab` takes `start N [--dir PATH]` or `check [N]`: cargo xtask lab start 1".into(),
            );
        }
    };
    if directory.is_some() {
        return Err("--dir goes with `lab start`".into());
    }
    Ok(parsed)
}

/// A lab that exists.
fn lab_number(word: &str) -> Result<u32, String> {
    let number = word
        .parse()
        .map_err(|_| format!("`{word}` is not a lab number"))?;
    catalog::lab(number).map(|lab| lab.number)
}

pub fn run(command: LabCommand) -> Result<ExitCode, String> {
    match command {
        LabCommand::Grade { lab } => grade::run(catalog::lab(lab)?),
        LabCommand::Start { lab, directory } => start(catalog::lab(lab)?, directory),
        LabCommand::Check { lab } => check(lab),
    }
}

fn start(lab: &Lab, directory: Option<PathBuf>) -> Result<ExitCode, String> {
    let root = workspace::root();
    let directory = directory.unwrap_or_else(|| default_directory(&root, lab.number));
    let mut regions = tree::regions(&root).map_err(|error| {
        format!(
            "{error}\n(a lab's copy cannot make another lab: run `lab start` in exo's own tree)"
        )
    })?;
    regions.sort_by_key(|(_, region)| region.exercise);
    let note = format!(
        "This is lab {n}'s copy of exo ({title}), made by `cargo xtask lab start {n}`.\n\
         Read {chapter}, grade your work with `cargo xtask grade {n}`, and write your\n\
         answers to its questions in answers-lab{n}.md.\n",
        n = lab.number,
        title = lab.title,
        chapter = lab.chapter,
    );
    tree::write_copy(&root, &directory, lab.number, &note)?;
    commit_skeleton(&directory, lab.number)?;
    println!(
        "lab {} ({}) written to {}, a git repository with the skeleton as its first commit.",
        lab.number,
        lab.title,
        directory.display()
    );
    println!("Its exercises, each a stub between its markers:");
    for (file, region) in regions.iter().filter(|(_, r)| r.exercise.lab == lab.number) {
        println!(
            "  {} {}:{}  {}",
            region.exercise,
            file.display(),
            region.begin_line,
            region.title
        );
    }
    println!("Read {} there, then:", lab.chapter);
    println!(
        "  cd {} && cargo xtask grade {}",
        directory.display(),
        lab.number
    );
    Ok(ExitCode::SUCCESS)
}

/// `exo-lab-N` beside the tree.
fn default_directory(root: &Path, lab: u32) -> PathBuf {
    root.parent().unwrap_or(root).join(format!("exo-lab-{lab}"))
}

/// Makes the copy a git repository whose first commit is the skeleton, so `git diff`
/// shows a student's own work.
fn commit_skeleton(directory: &Path, lab: u32) -> Result<(), String> {
    let message = format!("lab {lab}: the skeleton");
    let steps: [&[&str]; 3] = [
        &["init", "--quiet"],
        &["add", "--all"],
        &[
            "-c",
            "user.name=exo lab",
            "-c",
            "user.email=lab@exo.invalid",
            "commit",
            "--quiet",
            "--message",
            &message,
        ],
    ];
    for arguments in steps {
        let status = Command::new("git")
            .current_dir(directory)
            .args(arguments)
            .status()
            .map_err(|error| format!("cannot run git: {error}"))?;
        if !status.success() {
            return Err(format!(
                "`git {}` failed in {}",
                arguments.join(" "),
                directory.display()
            ));
        }
    }
    Ok(())
}

fn check(lab: Option<u32>) -> Result<ExitCode, String> {
    let labs: Vec<&Lab> = match lab {
        Some(number) => vec![catalog::lab(number)?],
        None => catalog::LABS.iter().collect(),
    };
    let mut failed = 0;
    rot::check(&labs, &BTreeMap::new(), &mut |verdict| {
        verdict.print();
        failed += usize::from(!verdict.passed);
    })?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(command: &str, words: &str) -> Result<LabCommand, String> {
        parse(command, &mut Parser::from_args(words.split_whitespace()))
    }

    #[test]
    fn lab_commands_parse() {
        assert_eq!(parse_words("grade", "2"), Ok(LabCommand::Grade { lab: 2 }));
        assert_eq!(
            parse_words("lab", "start 4 --dir /tmp/x"),
            Ok(LabCommand::Start {
                lab: 4,
                directory: Some("/tmp/x".into())
            })
        );
        assert_eq!(
            parse_words("lab", "start 1"),
            Ok(LabCommand::Start {
                lab: 1,
                directory: None
            })
        );
        assert_eq!(
            parse_words("lab", "check"),
            Ok(LabCommand::Check { lab: None })
        );
        assert_eq!(
            parse_words("lab", "check 3"),
            Ok(LabCommand::Check { lab: Some(3) })
        );
    }

    #[test]
    fn bad_lab_commands_are_refused() {
        assert!(parse_words("grade", "").is_err());
        assert!(
            parse_words("grade", "99")
                .unwrap_err()
                .contains("there is no lab 99")
        );
        assert!(parse_words("grade", "one").is_err());
        assert!(parse_words("grade", "1 2").is_err());
        assert!(parse_words("grade", "1 --dir x").is_err());
        assert!(parse_words("lab", "start").is_err());
        assert!(parse_words("lab", "check 1 --dir x").is_err());
        assert!(parse_words("lab", "stop 1").is_err());
        assert!(parse_words("lab", "start 1 --fast").is_err());
    }
}
