//! `cargo xtask bench` and what it needs beside the scenarios: exo's figures beside the
//! nearest Linux equivalents (`suite`), the benchmark programs' report lines (`lines`),
//! the network load (`network`), the report in every form (`report`), the images' sizes
//! (`sizes`), and the Linux guest the figures are compared with (`linux`).

pub mod lines;
pub mod linux;
pub mod network;
pub mod report;
pub mod sizes;
mod suite;

pub use suite::{BenchOptions, run};
