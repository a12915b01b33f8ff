//! The exit-status page a parent maps into each child it starts: how the
//! child tells its parent how it ended, and how a server tells its parent
//! its endpoint.
//!
//! Bottom layer: the page's format and the child's writes to its own copy
//! (`layout::EXIT_STATUS`). The parent reads a child's page through the
//! scratch page (`process`). It never decides anything about processes.

use exo_abi::user;

use crate::layout::EXIT_STATUS;
use crate::raw;

/// Word 0 once the child has exited; word 1 is the status; word 2, a value
/// a server publishes for its parent (its endpoint's handle).
const EXITED: u64 = u64::from_le_bytes(*b"exited\0\0");
const STATUS: usize = 8;
const PUBLISHED: usize = 16;

/// What a process's parent knows of it once it has ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// It called `exit` (or returned from `main`) with this status.
    Exited(i32),
    /// It was destroyed without exiting: killed, or a fault it did not survive.
    Killed,
}

/// Leaves `value` for the parent in the report (exit-status) page; a server
/// tells its parent its endpoint this way.
pub fn publish(value: u64) {
    if user::translate(EXIT_STATUS).is_some() {
        raw::write_exit_status_word(PUBLISHED, value);
    }
}

/// Tells the parent, through the exit-status page, that this process exits.
pub(crate) fn report_exit(status: i32) {
    if user::translate(EXIT_STATUS).is_some() {
        raw::write_exit_status_word(STATUS, status as u32 as u64);
        raw::write_exit_status_word(0, EXITED);
    }
}

/// How a child ended, from its exit-status page read by `word` (offset →
/// the `u64` there).
pub(crate) fn decode_status(word: impl Fn(usize) -> u64) -> ExitStatus {
    match word(0) {
        EXITED => ExitStatus::Exited(word(STATUS) as u32 as i32),
        _ => ExitStatus::Killed,
    }
}

/// What a child has published, from its exit-status page read by `word`.
pub(crate) fn decode_published(word: impl Fn(usize) -> u64) -> Option<u64> {
    Some(word(PUBLISHED)).filter(|&value| value != 0)
}
