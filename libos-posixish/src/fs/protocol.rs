//! How processes talk to the file server.
//!
//! One request is one protected control transfer: the client passes its
//! transfer page (a frame it owns) as the call's capability; the server maps
//! it, reads the request from it, writes the answer into it, unmaps it,
//! drops the capability it was granted, and replies with the status. No
//! byte is buffered in the kernel, and the server needs no state per client.
//!
//! The page, as little-endian `u64` words: a request is
//! `[operation, a, b, c, payload length]`, an answer
//! `[status (0 or an errno), value, second value, payload length]`; the
//! payload (paths, data, directory names) starts at byte `PAYLOAD`.
//!
//! Open files and pipes are the server's objects, named by number and
//! counted by holders: a descriptor handed to a child (or kept by a forked
//! one) is one holder more, so processes share offsets and ends as POSIX
//! says. The one thing the server keeps of a client is the notification it
//! registers, to wake it when a pipe it waits on changes.

use exo_abi::layout::PAGE_SIZE;

/// Where the payload starts in the transfer page.
pub const PAYLOAD: usize = 64;
/// The most payload one request or answer carries.
pub const MAX_PAYLOAD: usize = PAGE_SIZE as usize - PAYLOAD;

/// What a request asks for.
pub mod operation {
    /// payload: path → inode.
    pub const LOOKUP: u64 = 1;
    /// payload: path → inode of a new empty file (`a` = 1: truncate an existing one instead).
    pub const CREATE: u64 = 2;
    /// payload: path → inode of a new directory.
    pub const MKDIR: u64 = 3;
    /// payload: path.
    pub const UNLINK: u64 = 4;
    /// payload: two paths separated by a NUL.
    pub const RENAME: u64 = 5;
    /// `a` = inode → (kind: 1 file / 2 directory, size).
    pub const STAT: u64 = 6;
    /// `a` = inode, `b` = 1 to append → an open file (its offset lives here,
    /// shared by every descriptor that refers to it, across processes).
    pub const OPEN: u64 = 7;
    /// `a` = open file, `c` = length → payload: the bytes read at its offset.
    pub const FILE_READ: u64 = 8;
    /// `a` = open file, payload: the bytes → count, written at its offset
    /// (or at the end, if it appends).
    pub const FILE_WRITE: u64 = 9;
    /// `a` = open file, `b` = offset (two's complement), `c` = whence
    /// (0 start, 1 current, 2 end) → the new offset.
    pub const SEEK: u64 = 16;
    /// `a` = open file: one holder more (handed on), or fewer (closed).
    pub const FILE_DUP: u64 = 17;
    pub const FILE_CLOSE: u64 = 18;
    /// payload: path → payload: the names, each followed by a NUL.
    pub const READDIR: u64 = 10;
    /// → (pipe id): a new pipe with one reader and one writer.
    pub const PIPE: u64 = 11;
    /// `a` = pipe, `c` = length → payload: bytes; `EAGAIN` if empty with writers left.
    pub const PIPE_READ: u64 = 12;
    /// `a` = pipe, payload: bytes → count; `EAGAIN` if full; `EPIPE` with no reader.
    pub const PIPE_WRITE: u64 = 13;
    /// `a` = pipe, `b` = end (0 read, 1 write): one holder fewer.
    pub const PIPE_CLOSE: u64 = 14;
    /// `a` = pipe, `b` = end: one holder more (handed to a child).
    pub const PIPE_DUP: u64 = 15;
    /// Not a page request: the call's capability is a notification of the
    /// client's (`SIGNAL` only) → waiter number (the call's second result).
    /// A `PIPE_READ` or `PIPE_WRITE` refused with `EAGAIN` that names the
    /// waiter in `b` (number + 1) has the server signal it at the pipe's
    /// next change: bytes written or read, an end closed.
    pub const REGISTER_WAITER: u64 = 19;
}

/// Reads word `index` of a page.
pub fn word(page: &[u8], index: usize) -> u64 {
    u64::from_le_bytes(page[index * 8..index * 8 + 8].try_into().expect("8 bytes"))
}

/// Writes word `index` of a page.
pub fn set_word(page: &mut [u8], index: usize, value: u64) {
    page[index * 8..index * 8 + 8].copy_from_slice(&value.to_le_bytes());
}
