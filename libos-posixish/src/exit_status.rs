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

/// From byte 64: what the process holds at the file server — a count, then
/// (close request, object, end) triples — kept current by the process, so that its
/// parent can close them for it if it ends without closing them itself
/// (killed). At most `HELD_CAPACITY` pairs fit; more are not recorded.
const HELD: usize = 64;
const HELD_CAPACITY: usize = (exo_abi::layout::PAGE_SIZE as usize - HELD - 8) / 24;

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

/// Records in the exit-status page the (close request, object) pairs of what
/// this process holds at the file server now.
pub(crate) fn report_held(held: &[(u64, [u64; 3])]) {
    if user::translate(EXIT_STATUS).is_none() {
        return;
    }
    let held = &held[..held.len().min(HELD_CAPACITY)];
    // The count goes first down, last up: a parent never reads a pair that
    // is being written as one that counts.
    raw::write_exit_status_word(HELD, 0);
    for (index, (close, [object, end, _])) in held.iter().enumerate() {
        let at = HELD + 8 + index * 24;
        raw::write_exit_status_word(at, *close);
        raw::write_exit_status_word(at + 8, *object);
        raw::write_exit_status_word(at + 16, *end);
    }
    raw::write_exit_status_word(HELD, held.len() as u64);
}

/// A child's exit-status page as its parent makes it: empty but for `held`,
/// what the parent counted the child as holding (its descriptors), so that
/// a child killed before it runs still has them closed.
pub(crate) fn page_holding(held: &[(u64, [u64; 3])]) -> alloc::vec::Vec<u8> {
    let held = &held[..held.len().min(HELD_CAPACITY)];
    let mut page = alloc::vec![0u8; HELD + 8 + held.len() * 24];
    let mut put = |at: usize, value: u64| page[at..at + 8].copy_from_slice(&value.to_le_bytes());
    put(HELD, held.len() as u64);
    for (index, (close, [object, end, _])) in held.iter().enumerate() {
        let at = HELD + 8 + index * 24;
        put(at, *close);
        put(at + 8, *object);
        put(at + 16, *end);
    }
    page
}

/// What an ended child still held at the file server, from its exit-status
/// page read by `word`: (close request, object) pairs.
pub(crate) fn decode_held(word: impl Fn(usize) -> u64, mut each: impl FnMut(u64, [u64; 3])) {
    let count = (word(HELD) as usize).min(HELD_CAPACITY);
    for index in 0..count {
        let at = HELD + 8 + index * 24;
        each(word(at), [word(at + 8), word(at + 16), 0]);
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
