//! Page colouring: a frame policy that gives the pager only frames of one
//! cache colour.
//!
//! A physically indexed cache maps frame `f` to colour `f % colours`; a
//! program whose pages all have one colour uses only that slice of the
//! cache (and leaves the rest to others). The exokernel names frames
//! physically and lets a library OS ask for a specific one
//! (`FrameAllocateAt`), so the policy is a few lines here: probe frame
//! numbers of the colour upward until the kernel grants one.
//!
//! It gives single frames only (a contiguous run spans every colour), so
//! its run order is 0: the pager maps coloured memory a page at a time.
//!
//! ```ignore
//! static COLOURED: ColouredFrames = ColouredFrames::new(16, 5);
//! paging::set_frame_policy(&COLOURED);
//! ```

use core::sync::atomic::{AtomicU64, Ordering};

use exo_abi::{Error, Handle, user};

use crate::paging::FramePolicy;

/// Frames whose number is `colour` modulo `colours`.
#[derive(Debug)]
pub struct ColouredFrames {
    colours: u64,
    colour: u64,
    /// Where the next probe starts: frames below were taken or missing.
    next: AtomicU64,
}

impl ColouredFrames {
    /// # Panics
    /// If `colours` is 0 or `colour >= colours`.
    pub const fn new(colours: u64, colour: u64) -> Self {
        assert!(colours > 0 && colour < colours);
        Self {
            colours,
            colour,
            next: AtomicU64::new(colour),
        }
    }

    /// The colour of frame number `frame`.
    pub fn colour_of(&self, frame: u64) -> u64 {
        frame % self.colours
    }
}

impl FramePolicy for ColouredFrames {
    fn allocate(&self, order: u32) -> Result<(Handle, u64), Error> {
        if order != 0 {
            return Err(Error::InvalidArgument);
        }
        // Physical memory may have holes: probe past the usable count.
        let (_, usable) = user::frame_counts();
        let limit = usable + (1 << 18);
        let start = self.next.load(Ordering::Relaxed);
        // Once from the last success to the limit, then once from the bottom.
        let probes = (start..limit)
            .step_by(self.colours as usize)
            .chain((self.colour..start).step_by(self.colours as usize));
        for frame in probes {
            match user::frame_allocate_at(frame, 0) {
                Ok(handle) => {
                    self.next.store(frame + self.colours, Ordering::Relaxed);
                    return Ok((handle, frame));
                }
                Err(Error::FrameUnavailable) => {}
                Err(error) => return Err(error),
            }
        }
        Err(Error::OutOfMemory)
    }

    /// Single frames only: a fault maps its page, without asking for a run first.
    fn run_order(&self) -> u32 {
        0
    }
}
