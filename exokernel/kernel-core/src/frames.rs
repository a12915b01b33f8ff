//! Physical frame bookkeeping: which frames exist, and which are free.
//!
//! Two bitmaps with one bit per frame: `usable` (the frame is RAM the kernel
//! may hand out) and `free` (it is not handed out now). Keeping `usable`
//! lets a free of a frame that was never allocatable fail loudly instead of
//! inventing memory. Frames are named by number (physical address / 4096),
//! the same physical names a library OS sees.
//!
//! Allocation is next-fit over 64-frame words, so a run of allocations does
//! not rescan the frames it just handed out. A specific frame, or an aligned
//! run of 2^order frames, can be asked for by number (page colouring needs
//! this).

use core::ops::Range;

const BITS: u64 = u64::BITS as u64;

/// Why a frame operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The frame number is beyond the end of physical memory, or not RAM.
    NotUsable,
    /// The frame (or one in the run) is already allocated.
    InUse,
    /// Freeing a frame that is already free.
    NotAllocated,
    /// A run's start is not a multiple of its length.
    Misaligned,
    /// No free frame (or no free aligned run) is left.
    Exhausted,
}

/// The free/used state of every physical frame.
#[derive(Debug)]
pub struct FrameBitmap<'a> {
    usable: &'a mut [u64],
    free: &'a mut [u64],
    frame_count: u64,
    usable_count: u64,
    free_count: u64,
    /// The word where the next search starts.
    cursor: usize,
}

impl<'a> FrameBitmap<'a> {
    /// How many `u64` words of storage `new` needs for `frame_count` frames.
    pub const fn storage_words(frame_count: u64) -> usize {
        2 * frame_count.div_ceil(BITS) as usize
    }

    /// Bookkeeping for frames `0..frame_count`, none of them usable yet: add
    /// RAM with [`Self::add_usable`]. `storage` must hold at least
    /// [`Self::storage_words`] words.
    pub fn new(storage: &'a mut [u64], frame_count: u64) -> Self {
        let words = Self::storage_words(frame_count) / 2;
        assert!(storage.len() >= 2 * words, "frame bitmap storage too small");
        let (usable, rest) = storage.split_at_mut(words);
        let free = &mut rest[..words];
        usable.fill(0);
        free.fill(0);
        Self {
            usable,
            free,
            frame_count,
            usable_count: 0,
            free_count: 0,
            cursor: 0,
        }
    }

    /// Marks `frames` as usable RAM, and free. Frames already added are left
    /// alone, so overlapping firmware entries are counted once. Frames past
    /// the end are ignored.
    pub fn add_usable(&mut self, frames: Range<u64>) {
        for frame in frames.start..frames.end.min(self.frame_count) {
            let (word, bit) = split(frame);
            if self.usable[word] & bit == 0 {
                self.usable[word] |= bit;
                self.free[word] |= bit;
                self.usable_count += 1;
                self.free_count += 1;
            }
        }
    }

    /// Frames `0..frame_count()` are tracked.
    pub fn frame_count(&self) -> u64 {
        self.frame_count
    }

    /// How many frames are usable RAM.
    pub fn usable_count(&self) -> u64 {
        self.usable_count
    }

    /// How many usable frames are free now.
    pub fn free_count(&self) -> u64 {
        self.free_count
    }

    /// Whether `frame` is usable and free.
    pub fn is_free(&self, frame: u64) -> bool {
        frame < self.frame_count && self.free[split(frame).0] & split(frame).1 != 0
    }

    /// Allocates any free frame.
    pub fn allocate(&mut self) -> Result<u64, FrameError> {
        let words = self.free.len();
        for step in 0..words {
            let word = (self.cursor + step) % words;
            let bits = self.free[word];
            if bits != 0 {
                let frame = word as u64 * BITS + u64::from(bits.trailing_zeros());
                self.take(frame);
                self.cursor = word;
                return Ok(frame);
            }
        }
        Err(FrameError::Exhausted)
    }

    /// Allocates exactly `frame`.
    pub fn allocate_at(&mut self, frame: u64) -> Result<(), FrameError> {
        self.allocate_run_at(frame, 0)
    }

    /// Allocates `2^order` contiguous frames starting at a multiple of
    /// `2^order`, and returns the first.
    pub fn allocate_run(&mut self, order: u32) -> Result<u64, FrameError> {
        let length = run_length(order)?;
        if length == 1 {
            return self.allocate();
        }
        if length < BITS {
            return self.allocate_within_a_word(length);
        }
        let mut start = 0;
        while start + length <= self.frame_count {
            match self.first_unfree(start..start + length) {
                None => {
                    self.take_run(start, length);
                    return Ok(start);
                }
                // Skip to the next aligned start past the frame in the way.
                Some(busy) => start = (busy / length + 1) * length,
            }
        }
        Err(FrameError::Exhausted)
    }

    /// A run shorter than a word lies inside one word: looks word by word,
    /// from the next-fit cursor as `allocate` does, for `length` free bits
    /// at a multiple of `length`.
    fn allocate_within_a_word(&mut self, length: u64) -> Result<u64, FrameError> {
        let words = self.free.len();
        let mask = (1u64 << length) - 1;
        for step in 0..words {
            let word = (self.cursor + step) % words;
            let bits = self.free[word];
            let found = (0..BITS)
                .step_by(length as usize)
                .find(|&position| (bits >> position) & mask == mask);
            if let Some(position) = found {
                let start = word as u64 * BITS + position;
                self.take_run(start, length);
                self.cursor = word;
                return Ok(start);
            }
        }
        Err(FrameError::Exhausted)
    }

    /// Allocates the `2^order` frames starting at `first`, which must be a
    /// multiple of `2^order`.
    pub fn allocate_run_at(&mut self, first: u64, order: u32) -> Result<(), FrameError> {
        let length = run_length(order)?;
        if !first.is_multiple_of(length) {
            return Err(FrameError::Misaligned);
        }
        let run = first..first.checked_add(length).ok_or(FrameError::NotUsable)?;
        self.check_usable(run.clone())?;
        if self.first_unfree(run).is_some() {
            return Err(FrameError::InUse);
        }
        self.take_run(first, length);
        Ok(())
    }

    /// Returns `frame` to the free pool.
    pub fn free(&mut self, frame: u64) -> Result<(), FrameError> {
        self.free_run(frame, 0)
    }

    /// Returns the `2^order` frames starting at `first` to the free pool.
    /// Nothing changes unless every frame of the run is allocated.
    pub fn free_run(&mut self, first: u64, order: u32) -> Result<(), FrameError> {
        let length = run_length(order)?;
        let run = first..first.checked_add(length).ok_or(FrameError::NotUsable)?;
        self.check_usable(run.clone())?;
        if run.clone().any(|frame| self.is_free(frame)) {
            return Err(FrameError::NotAllocated);
        }
        for frame in run {
            let (word, bit) = split(frame);
            self.free[word] |= bit;
        }
        self.free_count += length;
        Ok(())
    }

    fn check_usable(&self, run: Range<u64>) -> Result<(), FrameError> {
        if run.end > self.frame_count {
            return Err(FrameError::NotUsable);
        }
        let all_usable = run.into_iter().all(|frame| {
            let (word, bit) = split(frame);
            self.usable[word] & bit != 0
        });
        if all_usable {
            Ok(())
        } else {
            Err(FrameError::NotUsable)
        }
    }

    /// The first frame in `run` that is not free, checking whole words at once
    /// where the run covers them.
    fn first_unfree(&self, run: Range<u64>) -> Option<u64> {
        let mut frame = run.start;
        while frame < run.end {
            let (word, bit) = split(frame);
            if frame.is_multiple_of(BITS) && run.end - frame >= BITS {
                if self.free[word] != u64::MAX {
                    return Some(frame + u64::from((!self.free[word]).trailing_zeros()));
                }
                frame += BITS;
            } else {
                if self.free[word] & bit == 0 {
                    return Some(frame);
                }
                frame += 1;
            }
        }
        None
    }

    fn take(&mut self, frame: u64) {
        let (word, bit) = split(frame);
        debug_assert!(self.free[word] & bit != 0);
        self.free[word] &= !bit;
        self.free_count -= 1;
    }

    fn take_run(&mut self, first: u64, length: u64) {
        for frame in first..first + length {
            self.take(frame);
        }
    }
}

/// The word index and bit mask of `frame`.
fn split(frame: u64) -> (usize, u64) {
    ((frame / BITS) as usize, 1 << (frame % BITS))
}

fn run_length(order: u32) -> Result<u64, FrameError> {
    1u64.checked_shl(order)
        .filter(|_| order < 63)
        .ok_or(FrameError::Exhausted)
}

#[cfg(test)]
// Lists of usable ranges that happen to hold one range are still lists.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// A bitmap of `frames` frames where `usable` ranges are RAM.
    fn bitmap(frames: u64, usable: &[Range<u64>]) -> (Vec<u64>, u64, Vec<Range<u64>>) {
        (
            vec![0; FrameBitmap::storage_words(frames)],
            frames,
            usable.to_vec(),
        )
    }

    fn build<'a>(parts: &'a mut (Vec<u64>, u64, Vec<Range<u64>>)) -> FrameBitmap<'a> {
        let mut map = FrameBitmap::new(&mut parts.0, parts.1);
        for range in &parts.2 {
            map.add_usable(range.clone());
        }
        map
    }

    #[test]
    fn counts_follow_allocation_and_free() {
        let mut parts = bitmap(1000, &[10..500, 600..1000]);
        let mut map = build(&mut parts);
        assert_eq!(map.usable_count(), 890);
        assert_eq!(map.free_count(), 890);
        let a = map.allocate().unwrap();
        let b = map.allocate().unwrap();
        assert_ne!(a, b);
        assert!(!map.is_free(a) && !map.is_free(b));
        assert_eq!(map.free_count(), 888);
        map.free(a).unwrap();
        map.free(b).unwrap();
        assert_eq!(map.free_count(), 890);
        assert_eq!(map.usable_count(), 890);
    }

    #[test]
    fn never_hands_out_unusable_frames() {
        let mut parts = bitmap(256, &[3..5, 200..201]);
        let mut map = build(&mut parts);
        let mut got: Vec<u64> = (0..3).map(|_| map.allocate().unwrap()).collect();
        got.sort();
        assert_eq!(got, [3, 4, 200]);
        assert_eq!(map.allocate(), Err(FrameError::Exhausted));
    }

    #[test]
    fn overlapping_usable_ranges_count_once() {
        let mut parts = bitmap(128, &[0..64, 32..100]);
        let map = build(&mut parts);
        assert_eq!(map.usable_count(), 100);
        assert_eq!(map.free_count(), 100);
    }

    #[test]
    fn double_free_and_foreign_free_are_refused() {
        let mut parts = bitmap(128, &[16..32]);
        let mut map = build(&mut parts);
        let frame = map.allocate().unwrap();
        map.free(frame).unwrap();
        assert_eq!(map.free(frame), Err(FrameError::NotAllocated));
        assert_eq!(map.free(5), Err(FrameError::NotUsable), "never RAM");
        assert_eq!(map.free(4096), Err(FrameError::NotUsable), "past the end");
        assert_eq!(map.free_count(), 16);
    }

    #[test]
    fn specific_frames() {
        let mut parts = bitmap(128, &[0..128]);
        let mut map = build(&mut parts);
        map.allocate_at(77).unwrap();
        assert_eq!(map.allocate_at(77), Err(FrameError::InUse));
        assert_eq!(map.allocate_at(128), Err(FrameError::NotUsable));
        assert_eq!(map.free_count(), 127);
    }

    #[test]
    fn aligned_runs() {
        let mut parts = bitmap(1024, &[1..1024]);
        let mut map = build(&mut parts);
        // Frame 0 is not usable, so the first 8-run starts at 8.
        assert_eq!(map.allocate_run(3), Ok(8));
        // A 64-frame run (one whole word) cannot start at 0 either.
        assert_eq!(map.allocate_run(6), Ok(64));
        assert_eq!(map.allocate_run(8), Ok(256));
        assert_eq!(map.allocate_run_at(12, 2), Err(FrameError::InUse));
        assert_eq!(map.allocate_run_at(18, 2), Err(FrameError::Misaligned));
        assert_eq!(map.allocate_run_at(16, 2), Ok(()));
        assert_eq!(map.free_count(), 1023 - 8 - 64 - 256 - 4);
        map.free_run(64, 6).unwrap();
        assert_eq!(map.free_run(64, 6), Err(FrameError::NotAllocated));
        assert_eq!(map.allocate_run(10), Err(FrameError::Exhausted));
        assert_eq!(map.allocate_run(70), Err(FrameError::Exhausted));
    }

    #[test]
    fn small_runs_are_found_inside_words_past_busy_frames() {
        let mut parts = bitmap(1024, &[0..1024]);
        let mut map = build(&mut parts);
        // Every other frame busy in the first 512: no 2-run fits there.
        for frame in (0..512).step_by(2) {
            map.allocate_at(frame).unwrap();
        }
        let mut taken = std::collections::BTreeSet::new();
        let mut order = 1;
        while let Ok(start) = map.allocate_run(order) {
            let length = 1 << order;
            assert_eq!(start % length, 0, "a run of {length} at {start}");
            assert!(start >= 512, "{start} overlaps the busy frames");
            for frame in start..start + length {
                assert!(taken.insert(frame), "frame {frame} handed out twice");
            }
            order = order % 5 + 1;
        }
        // The second half went in runs until the next did not fit in what
        // was left of it (less than 32 frames); the first half's odd frames stay.
        assert!(
            taken.len() > 512 - 32,
            "only {} frames in runs",
            taken.len()
        );
        assert_eq!(map.free_count(), 768 - taken.len() as u64);
    }

    #[test]
    fn partial_run_free_changes_nothing() {
        let mut parts = bitmap(64, &[0..64]);
        let mut map = build(&mut parts);
        map.allocate_run_at(0, 2).unwrap();
        map.free(1).unwrap();
        assert_eq!(map.free_run(0, 2), Err(FrameError::NotAllocated));
        assert!(!map.is_free(0) && map.is_free(1) && !map.is_free(2));
        assert_eq!(map.free_count(), 61);
    }

    #[test]
    fn exhaustion_and_full_reuse() {
        let mut parts = bitmap(200, &[0..200]);
        let mut map = build(&mut parts);
        let all: Vec<u64> = (0..200).map(|_| map.allocate().unwrap()).collect();
        assert_eq!(map.allocate(), Err(FrameError::Exhausted));
        let mut sorted = all.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 200, "every frame handed out once");
        for frame in all {
            map.free(frame).unwrap();
        }
        assert_eq!(map.free_count(), 200);
        // Next-fit wraps around to find the frames freed behind the cursor.
        assert!(map.allocate().is_ok());
    }
}
