//! Which loadable segments of a program the library OS accepts, and the
//! pages it maps for one.
//!
//! The same rule as the kernel's loader for the first program
//! (`exokernel/kernel/src/environment/first_program.rs`): a segment starts
//! on a page, its file bytes lie within the image, it holds no more file
//! bytes than memory, and its memory lies below `USER_MAP_END`. Pure
//! arithmetic, fuzzed on the host; it never reads the image past its end and
//! never overflows an address.

use core::ops::Range;

use exo_abi::layout::{PAGE_SIZE, USER_MAP_END};

/// A loadable segment's numbers, as its program header gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub address: u64,
    pub file_offset: u64,
    pub file_size: u64,
    pub memory_size: u64,
}

impl Segment {
    /// The segment's file bytes within an image of `image_length` bytes, if
    /// it may be loaded at all.
    pub fn checked(self, image_length: usize) -> Option<Range<usize>> {
        let file_end = self.file_offset.checked_add(self.file_size)?;
        let memory_end = self.address.checked_add(self.memory_size)?;
        let fits = self.address.is_multiple_of(PAGE_SIZE)
            && self.file_size <= self.memory_size
            && file_end <= image_length as u64
            && memory_end <= USER_MAP_END;
        fits.then_some(self.file_offset as usize..file_end as usize)
    }

    /// Every page of the segment: its address and, within `file` (the
    /// segment's file bytes), the bytes it starts with (the rest is zero).
    /// Only for a segment [`Self::checked`] accepted.
    pub fn pages(self, file: &[u8]) -> impl Iterator<Item = (u64, Range<usize>)> + '_ {
        let page = PAGE_SIZE as usize;
        (0..self.memory_size)
            .step_by(page)
            .enumerate()
            .map(move |(index, offset)| {
                let start = index.saturating_mul(page).min(file.len());
                let end = start.saturating_add(page).min(file.len());
                (self.address + offset, start..end)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEGMENT: Segment = Segment {
        address: 0x40_0000,
        file_offset: 0x1000,
        file_size: 0x1800,
        memory_size: 0x3000,
    };

    #[test]
    fn a_segment_within_the_file_and_user_memory_loads() {
        let file = SEGMENT.checked(0x3000).unwrap();
        assert_eq!(file, 0x1000..0x2800);
        let pages: alloc::vec::Vec<_> = SEGMENT.pages(&[0; 0x1800]).collect();
        assert_eq!(
            pages,
            [
                (0x40_0000, 0..0x1000),
                (0x40_1000, 0x1000..0x1800),
                (0x40_2000, 0x1800..0x1800)
            ]
        );
    }

    #[test]
    fn segments_outside_the_file_or_user_memory_are_refused() {
        assert_eq!(SEGMENT.checked(0x27ff), None, "file bytes past the end");
        let refused = [
            Segment {
                address: 0x40_0001,
                ..SEGMENT
            },
            Segment {
                file_size: 0x3001,
                ..SEGMENT
            },
            Segment {
                file_offset: u64::MAX,
                ..SEGMENT
            },
            Segment {
                address: USER_MAP_END - 0x1000,
                ..SEGMENT
            },
            // The library OS's loader once added page offsets to this and overflowed.
            Segment {
                address: !(PAGE_SIZE - 1),
                ..SEGMENT
            },
        ];
        for segment in refused {
            assert_eq!(segment.checked(0x10_0000), None, "{segment:?}");
        }
    }
}
