//! `exo-fuzz-host`: runs every target (or one) for a time or a number of inputs and
//! prints what each did; `cargo xtask fuzz host` runs it optimised.
//!
//! `exo-fuzz-host [--seconds N | --inputs N] [--seed S] [--target NAME]`, or
//! `exo-fuzz-host --target NAME --replay FILE` to run one saved input again.
//! A failing input is written to `target/fuzz-host/failures/NAME-SEED.bin`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use exo_fuzz_host::driver::{self, Budget};
use exo_fuzz_host::targets::{TARGETS, Target};

const USAGE: &str = "usage: exo-fuzz-host [--seconds N | --inputs N] [--seed S] [--target NAME]\n       exo-fuzz-host --target NAME --replay FILE";

#[derive(Debug)]
struct Options {
    budget: Budget,
    seed: u64,
    target: Option<String>,
    replay: Option<PathBuf>,
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1).collect()) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let selected: Vec<&Target> = TARGETS
        .iter()
        .filter(|target| {
            options
                .target
                .as_deref()
                .is_none_or(|name| name == target.name)
        })
        .collect();
    if selected.is_empty() {
        let names: Vec<&str> = TARGETS.iter().map(|target| target.name).collect();
        eprintln!(
            "error: no target called that; targets: {}",
            names.join(", ")
        );
        return ExitCode::from(2);
    }
    if let Some(file) = &options.replay {
        return replay(selected[0], file);
    }
    let (mut failed, mut total) = (0, 0);
    let count = selected.len();
    for target in selected {
        let corpus = driver::corpus(&exo_fuzz_host::corpus_folder(target.name));
        let outcome = driver::run(target, &corpus, options.seed, options.budget);
        total += outcome.inputs;
        let seconds = outcome.elapsed.as_secs_f64();
        let rate = outcome.inputs as f64 / seconds.max(1e-9);
        print!(
            "fuzz {:<14} {:>12} inputs in {:>7.1} s ({:>9.0}/s, corpus {:>3})",
            target.name,
            outcome.inputs,
            seconds,
            rate,
            corpus.len()
        );
        match outcome.failure {
            None => println!(" ok"),
            Some(failure) => {
                failed += 1;
                println!(" FAILED: {}", failure.message);
                match driver::save_failure(target.name, options.seed, &failure.input) {
                    Ok(file) => println!(
                        "  reproduce: cargo run -p exo-fuzz-host -- --target {} --replay {}",
                        target.name,
                        file.display()
                    ),
                    Err(error) => println!("  {error}: {:02x?}", failure.input),
                }
            }
        }
    }
    // The closing line CI and people read: `N passed, N failed` counts targets.
    println!("fuzz host: {total} inputs in all, seed {}", options.seed);
    println!("{} passed, {failed} failed", count - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn replay(target: &Target, file: &PathBuf) -> ExitCode {
    let input = match std::fs::read(file) {
        Ok(input) => input,
        Err(error) => {
            eprintln!("error: {}: {error}", file.display());
            return ExitCode::from(2);
        }
    };
    // The panic's own message and place, as the default hook prints them.
    (target.check)(&input);
    println!("{}: {} passes", target.name, file.display());
    ExitCode::SUCCESS
}

fn parse(arguments: Vec<String>) -> Result<Options, String> {
    let mut options = Options {
        budget: Budget::Time(Duration::from_secs(10)),
        seed: 1,
        target: None,
        replay: None,
    };
    let mut words = arguments.into_iter();
    while let Some(word) = words.next() {
        let mut value = |name: &str| words.next().ok_or(format!("{name} needs a value"));
        let number = |name: &str, text: String| {
            text.parse::<u64>()
                .map_err(|_| format!("{name} needs a number, got `{text}`"))
        };
        match word.as_str() {
            "--seconds" => {
                let seconds = number("--seconds", value("--seconds")?)?;
                options.budget = Budget::Time(Duration::from_secs(seconds));
            }
            "--inputs" => options.budget = Budget::Inputs(number("--inputs", value("--inputs")?)?),
            "--seed" => options.seed = number("--seed", value("--seed")?)?,
            "--target" => options.target = Some(value("--target")?),
            "--replay" => options.replay = Some(PathBuf::from(value("--replay")?)),
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    if options.replay.is_some() && options.target.is_none() {
        return Err("--replay needs --target".to_string());
    }
    Ok(options)
}
