//! Host fuzzing of everything in exo that reads untrusted bytes.
//!
//! [`targets`] says what each target checks; [`driver`] feeds them seeded random inputs
//! and mutations of the corpus kept in `tools/fuzz-host/corpus/<target>/`. The binary
//! (`cargo xtask fuzz host`) runs each target for a time; `tests/short_run.rs` runs each
//! for a fixed number of inputs as part of `cargo test`.

pub mod driver;
pub mod targets;

use std::path::PathBuf;

/// The folder of `target`'s corpus, in the tree.
pub fn corpus_folder(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}
