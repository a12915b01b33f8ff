//! Fresh frames filled through the scratch page (`layout::SCRATCH`): a
//! child's image and stack pages, its info page, the pages `exec` loads,
//! the image cache's pages.
//!
//! Bottom layer: it allocates, fills and hands back a frame capability; it
//! never maps anything anywhere else and calls nothing above `raw`.

use exo_abi::mapping::MapFlags;
use exo_abi::{Handle, user};

use crate::layout::SCRATCH;
use crate::{Errno, raw};

/// A new frame holding `contents` (the rest zero), filled through the
/// scratch page and not mapped: for a child's image, or the one `exec` builds.
pub(crate) fn filled_frame(contents: &[u8]) -> Result<Handle, Errno> {
    let (frame, _) = user::frame_allocate(0)?;
    let filled =
        user::map(frame, Handle::SELF_ENVIRONMENT, SCRATCH, MapFlags::WRITE).and_then(|()| {
            raw::fill_page(SCRATCH, 0, contents);
            raw::unmap_scratch()
        });
    match filled {
        Ok(()) => Ok(frame),
        Err(error) => {
            // Mapped at the scratch page at most, and unmapped with the capability.
            raw::drop_unmapped_frame(frame);
            Err(error.into())
        }
    }
}
