//! Read-only pages of the programs this process has spawned, kept to map
//! into later children of the same program instead of filling fresh frames
//! again — what an operating system's page cache does for a program's text.
//!
//! The boot file system never changes, so a program's read-only page (code,
//! constants) is the same for every child: the first spawn fills a frame
//! with it, this process keeps the frame's capability, and every later
//! child maps that frame read-only. Besides the copying, this spares what
//! rewriting code costs a processor or an emulator that caches decoded
//! instructions by physical page. Writable pages are never shared.
//!
//! The cache holds at most [`MAX_PAGES`] frames, charged to this process's
//! quota until it ends; when it is full, pages are copied as before. It
//! never drops a frame: a child may still map it. A forked child starts
//! with an empty cache, since the handles it inherits name nothing in its
//! own capability table.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use exo_abi::Handle;

use crate::Errno;

/// Frames the cache keeps at most: 512 KiB.
pub const MAX_PAGES: usize = 128;

/// One program's cached pages: (address, frame capability).
struct Program {
    name: String,
    pages: Vec<(u64, Handle)>,
}

static CACHE: spin::Mutex<Vec<Program>> = spin::Mutex::new(Vec::new());

/// The frame holding `program`'s read-only page at `address` (whose contents
/// are `contents`): the cached one, or a new one filled and cached now.
/// `None` when the cache is full and the page was not in it: the caller then
/// gives the child a frame of its own.
pub(crate) fn read_only_page(
    program: &str,
    address: u64,
    contents: &[u8],
) -> Result<Option<Handle>, Errno> {
    let mut cache = CACHE.lock();
    let cached = cache.iter().find(|entry| entry.name == program);
    if let Some(&(_, frame)) =
        cached.and_then(|entry| entry.pages.iter().find(|(page, _)| *page == address))
    {
        return Ok(Some(frame));
    }
    let held: usize = cache.iter().map(|entry| entry.pages.len()).sum();
    if held >= MAX_PAGES {
        return Ok(None);
    }
    let frame = crate::scratch::filled_frame(contents)?;
    let index = match cache.iter().position(|entry| entry.name == program) {
        Some(index) => index,
        None => {
            cache.push(Program {
                name: program.to_string(),
                pages: Vec::new(),
            });
            cache.len() - 1
        }
    };
    cache[index].pages.push((address, frame));
    Ok(Some(frame))
}

/// In a forked child: the parent's cache came with the copy of its memory,
/// but its handles are the parent's.
pub(crate) fn forget_inherited() {
    // The handles are not ours: forget them without dropping anything.
    core::mem::take(&mut *CACHE.lock());
}
