//! The driver: feeds a target seeded random inputs, and mutations of its corpus, until a
//! count or a time runs out, and keeps the first input that fails.
//!
//! Every input is a byte string, so a failure is reproduced from its file alone
//! (`exo-fuzz-host --target NAME --replay FILE`). The random numbers come from a seed, so
//! a run by count is the same run every time; a run by time differs only in how far it gets.
//! This module never decides what a target checks: a target fails by panicking.

use std::cell::Cell;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::targets::Target;

/// The longest input the driver makes; a target that wants a page pads or cuts.
const MAX_INPUT: usize = 8192;

/// SplitMix64: small, fast, and the same sequence on every machine.
#[derive(Debug)]
pub struct Random(pub u64);

impl Random {
    pub fn word(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut mixed = self.0;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^ (mixed >> 31)
    }

    /// A number below `bound` (which is not 0).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.word() % bound as u64) as usize
    }
}

/// When a run stops.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    Inputs(u64),
    Time(Duration),
}

/// What a run did.
#[derive(Debug)]
pub struct Outcome {
    pub inputs: u64,
    pub elapsed: Duration,
    pub failure: Option<Failure>,
}

/// The first input that made the target panic.
#[derive(Debug)]
pub struct Failure {
    pub input: Vec<u8>,
    pub message: String,
}

/// Runs `input` through `target`; the panic's message if it panicked.
pub fn check_one(target: &Target, input: &[u8]) -> Result<(), String> {
    panic::catch_unwind(AssertUnwindSafe(|| (target.check)(input))).map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|text| text.to_string()))
            .unwrap_or_else(|| "a panic without a message".to_string())
    })
}

/// The corpus of `target`: every file in its folder, sorted by name.
pub fn corpus(folder: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|path| std::fs::read(path).ok())
        .collect()
}

/// Replays `corpus`, then tries random inputs from `seed` until `budget` runs out.
///
/// An input that runs for [`STALL`] without returning is a loop: the watchdog saves it
/// (it makes the same input again from the seed) and ends the process.
pub fn run(target: &Target, corpus: &[Vec<u8>], seed: u64, budget: Budget) -> Outcome {
    quiet_panics_on_this_thread();
    let progress = AtomicU64::new(0);
    let finished = AtomicBool::new(false);
    thread::scope(|scope| {
        scope.spawn(|| watch(target, corpus, seed, &progress, &finished));
        QUIET.set(true);
        let outcome = run_quietly(target, corpus, seed, budget, &progress);
        QUIET.set(false);
        finished.store(true, Ordering::Relaxed);
        outcome
    })
}

/// How long one input may run before the driver calls it a loop: far beyond any input's
/// cost (microseconds) even on a loaded machine.
pub const STALL: Duration = Duration::from_secs(30);

/// Ends the process, saving the input, if `progress` stops moving for [`STALL`].
fn watch(
    target: &Target,
    corpus: &[Vec<u8>],
    seed: u64,
    progress: &AtomicU64,
    finished: &AtomicBool,
) {
    let (mut seen, mut since) = (u64::MAX, Instant::now());
    while !finished.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(100));
        let now = progress.load(Ordering::Relaxed);
        if now != seen {
            (seen, since) = (now, Instant::now());
        } else if since.elapsed() >= STALL {
            let input = input_number(corpus, seed, now);
            let file = save_failure(target.name, seed, &input);
            // Straight to the stream: a test's captured output dies with the process.
            let _ = writeln!(
                std::io::stderr(),
                "fuzz {}: input {now} has run for {} s: a loop; saved in {}",
                target.name,
                STALL.as_secs(),
                file.map_or_else(|error| error, |file| file.display().to_string())
            );
            std::process::exit(1);
        }
    }
}

/// Input `number` (counting from 1) of a run from `seed` over `corpus`.
pub fn input_number(corpus: &[Vec<u8>], seed: u64, number: u64) -> Vec<u8> {
    if let Some(known) = corpus.get((number.max(1) - 1) as usize) {
        return known.clone();
    }
    let mut random = Random(seed);
    let mut input = Vec::new();
    for _ in corpus.len() as u64..number {
        next_input(&mut random, corpus, &mut input);
    }
    input
}

/// Writes a failing input to `target/fuzz-host/failures/TARGET-SEED.bin`; its path.
pub fn save_failure(target: &str, seed: u64, input: &[u8]) -> Result<PathBuf, String> {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-host/failures");
    let file = folder.join(format!("{target}-{seed:x}.bin"));
    std::fs::create_dir_all(&folder)
        .and_then(|()| std::fs::write(&file, input))
        .map_err(|error| format!("(not saved: {error})"))?;
    Ok(file)
}

thread_local! {
    /// Whether this thread's panics are a target's, caught and reported once by the driver.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// The panic hook is the process's, shared by test threads running side by side: it stays
/// silent only on a thread that is running a target.
fn quiet_panics_on_this_thread() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |information| {
            if !QUIET.get() {
                default(information);
            }
        }));
    });
}

fn run_quietly(
    target: &Target,
    corpus: &[Vec<u8>],
    seed: u64,
    budget: Budget,
    progress: &AtomicU64,
) -> Outcome {
    let started = Instant::now();
    let mut random = Random(seed);
    let mut input = Vec::with_capacity(MAX_INPUT);
    let mut inputs = 0u64;
    let failed = |input: &[u8], message| Failure {
        input: input.to_vec(),
        message,
    };
    for known in corpus {
        inputs += 1;
        progress.store(inputs, Ordering::Relaxed);
        if let Err(message) = check_one(target, known) {
            let failure = Some(failed(known, message));
            return Outcome {
                inputs,
                elapsed: started.elapsed(),
                failure,
            };
        }
    }
    loop {
        let done = match budget {
            Budget::Inputs(count) => inputs >= count,
            // Reading the clock every input would cost more than some targets do.
            Budget::Time(limit) => inputs.is_multiple_of(256) && started.elapsed() >= limit,
        };
        if done {
            return Outcome {
                inputs,
                elapsed: started.elapsed(),
                failure: None,
            };
        }
        next_input(&mut random, corpus, &mut input);
        inputs += 1;
        progress.store(inputs, Ordering::Relaxed);
        if let Err(message) = check_one(target, &input) {
            return Outcome {
                inputs,
                elapsed: started.elapsed(),
                failure: Some(failed(&input, message)),
            };
        }
    }
}

/// Half the time fresh random bytes (mostly short), else a corpus input with a few bytes
/// changed, inserted or cut off: random bytes rarely get past a magic number.
fn next_input(random: &mut Random, corpus: &[Vec<u8>], input: &mut Vec<u8>) {
    input.clear();
    if corpus.is_empty() || random.below(2) == 0 {
        let length = match random.below(8) {
            0..=4 => random.below(64),
            5 | 6 => random.below(1024),
            _ => random.below(MAX_INPUT),
        };
        while input.len() < length {
            input.extend_from_slice(&random.word().to_le_bytes());
        }
        input.truncate(length);
        return;
    }
    input.extend_from_slice(&corpus[random.below(corpus.len())]);
    for _ in 0..1 + random.below(8) {
        let at = if input.is_empty() {
            0
        } else {
            random.below(input.len())
        };
        match random.below(8) {
            _ if input.is_empty() => input.push(random.word() as u8),
            0..=3 => input[at] = random.word() as u8,
            4 => input[at] ^= 1 << random.below(8),
            5 => input.insert(at, interesting_byte(random)),
            6 => input.truncate(at),
            _ => {
                let word = interesting_byte(random);
                let end = (at + 8).min(input.len());
                input[at..end].fill(word);
            }
        }
    }
    input.truncate(MAX_INPUT);
}

/// Bytes at the edges, where length and count fields go wrong.
fn interesting_byte(random: &mut Random) -> u8 {
    [
        0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, b'/', b'.', b'\r', b'\n', b'=', b':', b' ',
    ][random.below(13)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const LENGTH_37_FAILS: Target = Target {
        name: "length-37",
        checks: "no input is 37 bytes long",
        check: |input| assert_ne!(input.len(), 37),
    };

    #[test]
    fn a_failure_is_found_kept_and_made_again_from_its_number() {
        let corpus = vec![vec![1, 2, 3], vec![0; 36]];
        let outcome = run(&LENGTH_37_FAILS, &corpus, 9, Budget::Inputs(1_000_000));
        let failure = outcome.failure.expect("some input is 37 bytes long");
        assert_eq!(failure.input.len(), 37);
        assert!(failure.message.contains("assertion"), "{}", failure.message);
        assert_eq!(input_number(&corpus, 9, outcome.inputs), failure.input);
        assert_eq!(input_number(&corpus, 9, 2), corpus[1]);
    }

    #[test]
    fn a_run_by_count_tries_that_many_inputs() {
        let outcome = run(&crate::targets::TARGETS[0], &[], 1, Budget::Inputs(500));
        assert_eq!(outcome.inputs, 500);
        assert!(outcome.failure.is_none());
    }
}
