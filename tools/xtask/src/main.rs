//! `cargo xtask`: the one entry point for building, running, testing and debugging exo.
//!
//! This file owns the command line: it parses the arguments into a [`Command`] and hands it
//! to the module that carries it out. It starts no process itself.

#![forbid(unsafe_code)]

mod accelerator;
mod artifacts;
mod checks;
mod guest;
mod host_side;
mod interactive;
mod net_scenarios;
mod network_setup;
mod pcap;
mod qemu;
mod scenarios;
mod serial_log;
mod test_suite;
mod workspace;

use std::process::ExitCode;

use test_suite::TestOptions;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  build                                 build the kernel and the user programs
  run [--kvm] [--program NAME] [-- <kernel args>...]
                                        build and boot in QEMU, serial on this terminal;
                                        the kernel runs user program NAME (default: sh,
                                        the shell; `none` boots the kernel alone)
                                        (default kernel command line: log=info)
  test [FILTER] [--no-host] [--jobs N]  host unit tests, clippy and rustfmt, then the
                                        QEMU scenarios; a FILTER or --no-host runs only
                                        the scenarios (those whose name contains FILTER)
  gdb [--program NAME] [-- <kernel args>...]
                                        boot paused, waiting for gdb on :1234
  help                                  show this text

user programs are the files in userapps/src/bin/ (on the bare runtime) and
userapps/posix/src/bin/ (on the library OS); all go into the boot file system.
";

/// The program `run` and `gdb` boot unless told otherwise.
const DEFAULT_PROGRAM: &str = "sh";
/// What `--program` takes to boot without a program.
const NO_PROGRAM: &str = "none";

#[derive(Debug, PartialEq, Eq)]
enum Command {
    Help,
    Build,
    Run {
        kvm: bool,
        /// The user program to boot; `None` boots the kernel alone.
        program: Option<String>,
        kernel_command_line: Option<String>,
    },
    Test(TestOptions),
    Gdb {
        program: Option<String>,
        kernel_command_line: Option<String>,
    },
}

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse(&arguments) {
        Ok(command) => command,
        Err(message) => {
            eprint!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let ready = match command {
        Command::Help => Ok(()),
        _ => workspace::ensure_bare_metal_target(),
    };
    if let Err(message) = ready {
        eprintln!("error: {message}");
        return ExitCode::FAILURE;
    }
    let result = match command {
        Command::Help => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Build => build_everything(),
        Command::Run {
            kvm,
            program,
            kernel_command_line,
        } => interactive::run(kvm, program.as_deref(), kernel_command_line),
        Command::Test(options) => test_suite::run(&options),
        Command::Gdb {
            program,
            kernel_command_line,
        } => interactive::gdb(program.as_deref(), kernel_command_line),
    };
    result.unwrap_or_else(|message| {
        eprintln!("error: {message}");
        ExitCode::FAILURE
    })
}

fn build_everything() -> Result<ExitCode, String> {
    let kernel = artifacts::build_kernel()?;
    artifacts::build(&artifacts::USER_PROGRAMS)?;
    let bootfs = artifacts::pack_bootfs()?;
    println!("kernel: {}", kernel.display());
    for name in artifacts::user_program_names() {
        println!("program: {}", artifacts::user_program(&name).display());
    }
    println!("boot file system: {}", bootfs.display());
    Ok(ExitCode::SUCCESS)
}

fn parse(arguments: &[String]) -> Result<Command, String> {
    let Some((name, rest)) = arguments.split_first() else {
        return Ok(Command::Help);
    };
    // Everything after `--` belongs to the kernel, so options are only looked for before it.
    let (options, kernel_words) = match rest.iter().position(|word| word == "--") {
        Some(separator) => (&rest[..separator], Some(&rest[separator + 1..])),
        None => (rest, None),
    };
    let kernel_command_line = kernel_words
        .filter(|words| !words.is_empty())
        .map(|words| words.join(" "));
    let reject_kernel_words = || match kernel_words {
        Some(_) => Err(format!("`{name}` takes no kernel command line")),
        None => Ok(()),
    };

    match name.as_str() {
        "help" | "-h" | "--help" => Ok(Command::Help),
        "build" => {
            reject_kernel_words()?;
            expect_no_options(name, options)?;
            Ok(Command::Build)
        }
        "run" => {
            let mut kvm = false;
            let program = parse_program_options(name, options, |flag| match flag {
                "--kvm" => {
                    kvm = true;
                    true
                }
                _ => false,
            })?;
            Ok(Command::Run {
                kvm,
                program,
                kernel_command_line,
            })
        }
        "test" => {
            reject_kernel_words()?;
            parse_test_options(options).map(Command::Test)
        }
        "gdb" => {
            let program = parse_program_options(name, options, |_| false)?;
            Ok(Command::Gdb {
                program,
                kernel_command_line,
            })
        }
        _ => Err(format!("unknown command `{name}`")),
    }
}

fn expect_no_options(command: &str, options: &[String]) -> Result<(), String> {
    match options {
        [] => Ok(()),
        _ => Err(format!(
            "`{command}` takes no options, got {}",
            options.join(" ")
        )),
    }
}

/// Reads `--program NAME` (or `--program=NAME`) from `options`, offering every other word
/// to `other_flag`, which says whether it took it. Returns the program to boot.
fn parse_program_options(
    command: &str,
    options: &[String],
    mut other_flag: impl FnMut(&str) -> bool,
) -> Result<Option<String>, String> {
    let mut program = None;
    let mut words = options.iter();
    while let Some(word) = words.next() {
        let name = if word == "--program" {
            words.next().ok_or("--program needs a program name")?
        } else if let Some(name) = word.strip_prefix("--program=") {
            name
        } else if other_flag(word) {
            continue;
        } else {
            return Err(format!("unknown option `{word}` for `{command}`"));
        };
        if program.is_some() {
            return Err("--program given twice".to_string());
        }
        if name.is_empty() || name.starts_with('-') {
            return Err(format!("--program needs a program name, got `{name}`"));
        }
        program = Some(name.to_string());
    }
    let program = program.unwrap_or_else(|| DEFAULT_PROGRAM.to_string());
    Ok((program != NO_PROGRAM).then_some(program))
}

fn parse_test_options(options: &[String]) -> Result<TestOptions, String> {
    let mut filter = None;
    let mut no_host = false;
    let mut jobs = None;
    let mut words = options.iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "--no-host" => no_host = true,
            "--jobs" => {
                let count = words.next().ok_or("--jobs needs a number")?;
                jobs = Some(parse_job_count(count)?);
            }
            _ if word.starts_with("--jobs=") => {
                jobs = Some(parse_job_count(&word["--jobs=".len()..])?);
            }
            _ if word.starts_with('-') => {
                return Err(format!("unknown option `{word}` for `test`"));
            }
            _ if filter.is_some() => return Err("`test` takes at most one FILTER".to_string()),
            _ => filter = Some(word.clone()),
        }
    }
    Ok(TestOptions {
        host_checks: !no_host && filter.is_none(),
        filter,
        jobs,
    })
}

fn parse_job_count(text: &str) -> Result<usize, String> {
    match text.parse() {
        Ok(count) if count > 0 => Ok(count),
        _ => Err(format!("--jobs needs a positive number, got `{text}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(line: &str) -> Result<Command, String> {
        let arguments: Vec<String> = line.split_whitespace().map(String::from).collect();
        parse(&arguments)
    }

    #[test]
    fn no_arguments_or_help_show_usage() {
        assert_eq!(parse_words(""), Ok(Command::Help));
        assert_eq!(parse_words("help"), Ok(Command::Help));
        assert!(parse_words("frobnicate").is_err());
    }

    #[test]
    fn run_takes_kvm_and_kernel_words() {
        assert_eq!(
            parse_words("run"),
            Ok(Command::Run {
                kvm: false,
                program: Some("sh".to_string()),
                kernel_command_line: None
            })
        );
        assert_eq!(
            parse_words("run --kvm -- test=timer log=debug"),
            Ok(Command::Run {
                kvm: true,
                program: Some("sh".to_string()),
                kernel_command_line: Some("test=timer log=debug".to_string())
            })
        );
        assert!(parse_words("run --fast").is_err());
    }

    #[test]
    fn run_and_gdb_take_a_program() {
        let program = |line: &str| match parse_words(line) {
            Ok(Command::Run { program, .. } | Command::Gdb { program, .. }) => Ok(program),
            Ok(other) => panic!("`{line}` parsed as {other:?}"),
            Err(message) => Err(message),
        };
        assert_eq!(
            program("run --program fault-test"),
            Ok(Some("fault-test".to_string()))
        );
        assert_eq!(
            program("run --kvm --program=memory-test"),
            Ok(Some("memory-test".to_string()))
        );
        assert_eq!(program("run --program none --kvm"), Ok(None));
        assert_eq!(
            program("gdb --program lifecycle-test"),
            Ok(Some("lifecycle-test".to_string()))
        );
        assert_eq!(program("gdb"), Ok(Some("sh".to_string())));
        assert!(program("run --program").is_err());
        assert!(program("run --program --kvm").is_err());
        assert!(program("run --program a --program b").is_err());
        assert!(program("gdb --kvm").is_err());
    }

    #[test]
    fn kernel_words_after_separator_are_not_options() {
        assert_eq!(
            parse_words("gdb -- --kvm"),
            Ok(Command::Gdb {
                program: Some("sh".to_string()),
                kernel_command_line: Some("--kvm".to_string())
            })
        );
    }

    #[test]
    fn a_filter_or_no_host_skips_host_checks() {
        let everything = TestOptions {
            filter: None,
            host_checks: true,
            jobs: None,
        };
        assert_eq!(parse_words("test"), Ok(Command::Test(everything)));
        let Ok(Command::Test(filtered)) = parse_words("test fault --jobs 3") else {
            panic!("`test fault --jobs 3` should parse");
        };
        assert_eq!(filtered.filter.as_deref(), Some("fault"));
        assert_eq!(filtered.jobs, Some(3));
        assert!(!filtered.host_checks);
        let Ok(Command::Test(scenarios_only)) = parse_words("test --no-host --jobs=1") else {
            panic!("`test --no-host --jobs=1` should parse");
        };
        assert!(!scenarios_only.host_checks);
        assert_eq!(scenarios_only.jobs, Some(1));
    }

    #[test]
    fn bad_test_options_are_rejected() {
        assert!(parse_words("test --jobs 0").is_err());
        assert!(parse_words("test --jobs").is_err());
        assert!(parse_words("test a b").is_err());
        assert!(parse_words("test --quick").is_err());
        assert!(parse_words("test -- log=info").is_err());
    }
}
