//! The labs (docs/labs/): students rebuild exo's mechanisms from skeletons of the real
//! code, and a grader scores their work.
//!
//! - `markers.rs`: the `// LAB N.M BEGIN … STUB … END` regions in the source, and stubbing.
//! - `tree.rs`: the tracked files, their regions, copies of the tree with a lab stubbed.
//! - `catalog.rs`: every lab's exercises, points and checks.
//! - `grade.rs`: `cargo xtask grade N`.
//! - `rot.rs`: the check `cargo xtask test` runs, that every lab still grades both ways.
//! - `command.rs`: `cargo xtask lab …` and `grade` on the command line.

mod catalog;
mod command;
mod grade;
mod markers;
mod rot;
mod tree;

pub use command::{LabCommand, parse, run};
pub use rot::check_all;
