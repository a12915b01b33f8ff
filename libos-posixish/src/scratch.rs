//! Fresh frames filled through the scratch page (`layout::SCRATCH`): a
//! child's image and stack pages, its info page, the pages `exec` loads,
//! the image cache's pages.
//!
//! Bottom layer: it allocates, fills and hands back a frame capability; it
//! never maps anything anywhere else and calls nothing above `raw`.

use exo_abi::mapping::MapFlags;
use exo_abi::{Handle, user};

use crate::{Errno, raw};

/// A new frame holding `contents` (the rest zero), filled through the
/// scratch page and not mapped: for a child's image, or the one `exec` builds.
pub(crate) fn filled_frame(contents: &[u8]) -> Result<Handle, Errno> {
    let (frame, _) = user::frame_allocate(0)?;
    match raw::Window::scratch(frame, MapFlags::WRITE) {
        Ok(mut scratch) => {
            scratch.bytes_mut()[..contents.len()].copy_from_slice(contents);
            Ok(frame) // and the scratch page is unmapped as `scratch` goes
        }
        Err(error) => {
            raw::drop_unmapped_frame(frame);
            Err(error.into())
        }
    }
}
