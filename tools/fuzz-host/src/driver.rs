//! The driver: feeds a target seeded random inputs, and mutations of its corpus, until a
//! count or a time runs out, and keeps the first input that fails.
//!
//! Every input is a byte string, so a failure is reproduced from its file alone
//! (`exo-fuzz-host --target NAME --replay FILE`). The random numbers come from a seed, so
//! a run by count is the same run every time; a run by time differs only in how far it gets.
//! This module never decides what a target checks: a target fails by panicking.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;
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
pub fn run(target: &Target, corpus: &[Vec<u8>], seed: u64, budget: Budget) -> Outcome {
    quiet_panics_on_this_thread();
    QUIET.set(true);
    let outcome = run_quietly(target, corpus, seed, budget);
    QUIET.set(false);
    outcome
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

fn run_quietly(target: &Target, corpus: &[Vec<u8>], seed: u64, budget: Budget) -> Outcome {
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
