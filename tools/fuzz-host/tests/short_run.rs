//! The short run of every fuzz target, part of `cargo test` (and so of `cargo xtask
//! test`): its corpus, then a fixed number of inputs from a fixed seed. The long run by
//! time is `cargo xtask fuzz host`.

use exo_fuzz_host::corpus_folder;
use exo_fuzz_host::driver::{self, Budget};
use exo_fuzz_host::targets::TARGETS;

/// Inputs per target: a few seconds in all in a debug build on this machine.
const SHORT_RUN_INPUTS: u64 = 3000;
const SEED: u64 = 0x5eed;

fn short_run(name: &str) {
    let target = TARGETS
        .iter()
        .find(|target| target.name == name)
        .expect("a target of that name");
    let corpus = driver::corpus(&corpus_folder(name));
    assert!(!corpus.is_empty(), "{name} has a corpus");
    let outcome = driver::run(target, &corpus, SEED, Budget::Inputs(SHORT_RUN_INPUTS));
    if let Some(failure) = outcome.failure {
        panic!(
            "{name} failed after {} inputs: {}\ninput: {:02x?}",
            outcome.inputs, failure.message, failure.input
        );
    }
    assert!(outcome.inputs >= SHORT_RUN_INPUTS);
}

#[test]
fn every_target_has_a_short_run_here() {
    let mut names: Vec<&str> = TARGETS.iter().map(|target| target.name).collect();
    names.sort_unstable();
    let expected = [
        "bootfs",
        "capabilities",
        "demux",
        "demux_frames",
        "heap",
        "http_request",
        "info_page",
        "memfs",
        "program_image",
        "ring",
    ];
    assert_eq!(names, expected);
}

#[test]
fn bootfs() {
    short_run("bootfs");
}

#[test]
fn capabilities() {
    short_run("capabilities");
}

#[test]
fn demux() {
    short_run("demux");
}

#[test]
fn demux_frames() {
    short_run("demux_frames");
}

#[test]
fn heap() {
    short_run("heap");
}

#[test]
fn http_request() {
    short_run("http_request");
}

#[test]
fn info_page() {
    short_run("info_page");
}

#[test]
fn memfs() {
    short_run("memfs");
}

#[test]
fn program_image() {
    short_run("program_image");
}

#[test]
fn ring() {
    short_run("ring");
}
