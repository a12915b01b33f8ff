//! Frames lent to environments, and the only way the rest of the kernel
//! reads or writes them through the direct map.
//!
//! A bitmap marks every frame the kernel handed to an environment: the runs
//! it allocates (`FrameAllocate`), its facts page and, through them, its
//! rings. A run is marked only when it comes fresh from the frame allocator
//! and unmarked when it goes back, so a marked frame never holds the
//! kernel's own data (page tables, the heap, the image). Every access here
//! checks the marks first: whatever a caller got wrong, a copy into a lent
//! frame cannot corrupt the kernel, and a copy anywhere else is refused.
//! This is what lets `environment/` forbid unsafe code.

use core::sync::atomic::{AtomicU64, Ordering};

use exo_kernel_core::frames::FrameError;
use exo_kernel_core::memory_map::FRAME_SIZE;
use spin::Once;

use super::{frames, phys_to_virt};

/// One bit per frame of RAM: set while the frame is lent.
static MARKS: Once<alloc::vec::Vec<AtomicU64>> = Once::new();

/// A range that is not all lent frames: nothing was read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotLent;

/// Makes the bitmap for `frame_count` frames. Once, after the heap.
pub fn init(frame_count: u64) {
    MARKS.call_once(|| {
        (0..frame_count.div_ceil(64))
            .map(|_| AtomicU64::new(0))
            .collect()
    });
}

fn marks() -> &'static [AtomicU64] {
    MARKS.get().expect("lent_frames::init ran at boot")
}

fn set_marks(first_frame: u64, count: u64, lent: bool) {
    for frame in first_frame..first_frame + count {
        let (word, bit) = ((frame / 64) as usize, 1u64 << (frame % 64));
        if lent {
            marks()[word].fetch_or(bit, Ordering::Relaxed);
        } else {
            marks()[word].fetch_and(!bit, Ordering::Relaxed);
        }
    }
}

/// Whether every frame of `physical .. + length` is lent.
pub fn is_lent(physical: u64, length: u64) -> bool {
    let Some(end) = physical.checked_add(length) else {
        return false;
    };
    let marks = marks();
    (physical / FRAME_SIZE..end.div_ceil(FRAME_SIZE)).all(|frame| {
        marks
            .get((frame / 64) as usize)
            .is_some_and(|word| word.load(Ordering::Relaxed) & (1 << (frame % 64)) != 0)
    })
}

/// `2^order` frames, any aligned run (`at` None) or the run starting at
/// physical `at`, zeroed — a frame may have held another environment's
/// data — and marked lent; returns its physical address.
pub fn allocate(order: u32, at: Option<u64>) -> Result<u64, FrameError> {
    let mut run = Zeroing::take(order, at)?;
    while !run.zero_piece() {}
    Ok(run.lend())
}

/// The bytes [`Zeroing::zero_piece`] zeroes: 64 KiB, a run of order 4,
/// about a twelfth of a tick under TCG. (A run of order 10 takes about five
/// ticks to zero.)
pub const ZERO_PIECE: u64 = 16 * FRAME_SIZE;

/// A run taken from the frame allocator for an environment and zeroed a
/// piece at a time, so that `FrameAllocate` of a large run can work in
/// shares of a tick. It is not lent — nothing here reads or writes it for
/// anyone — until it is all zeroed and [`lend`](Zeroing::lend)ed; dropped
/// before, it goes back to the allocator.
#[derive(Debug)]
pub struct Zeroing {
    address: u64,
    order: u32,
    zeroed: u64,
}

impl Zeroing {
    /// Takes `2^order` frames, any aligned run (`at` None) or the run at
    /// physical `at`, none of them zeroed yet.
    pub fn take(order: u32, at: Option<u64>) -> Result<Self, FrameError> {
        let address = match at {
            None => frames::allocate_run(order)?,
            Some(address) => frames::allocate_run_at(address, order).map(|()| address)?,
        };
        Ok(Self {
            address,
            order,
            zeroed: 0,
        })
    }

    /// Zeroes the next [`ZERO_PIECE`] of the run (or what is left of it);
    /// returns whether all of it is zeroed now.
    pub fn zero_piece(&mut self) -> bool {
        let length = FRAME_SIZE << self.order;
        let piece = ZERO_PIECE.min(length - self.zeroed);
        // SAFETY: the run was taken from the allocator by `take` and is
        // neither lent nor given back while `self` lives, so nothing else
        // refers to it; the piece lies inside it.
        unsafe { super::zero_physical(self.address + self.zeroed, piece) };
        self.zeroed += piece;
        self.zeroed == length
    }

    /// Marks the run lent once it is all zeroed; returns its physical address.
    pub fn lend(self) -> u64 {
        assert_eq!(
            self.zeroed,
            FRAME_SIZE << self.order,
            "lent before it was zeroed"
        );
        let address = self.address;
        set_marks(address / FRAME_SIZE, 1 << self.order, true);
        core::mem::forget(self);
        address
    }
}

impl Drop for Zeroing {
    /// An unfinished run goes back, never lent.
    fn drop(&mut self) {
        frames::free_run(self.address, self.order).expect("a taken run is allocated");
    }
}

/// Gives back the lent run at `physical` of `2^order` frames. A run that is
/// not all lent is refused and nothing changes.
pub fn free(physical: u64, order: u32) -> Result<(), NotLent> {
    if !is_lent(physical, FRAME_SIZE << order) {
        return Err(NotLent);
    }
    set_marks(physical / FRAME_SIZE, 1 << order, false);
    frames::free_run(physical, order).expect("a lent run is allocated");
    Ok(())
}

/// Copies `bytes` to lent memory at `physical`.
pub fn write(physical: u64, bytes: &[u8]) -> Result<(), NotLent> {
    if !is_lent(physical, bytes.len() as u64) {
        return Err(NotLent);
    }
    // SAFETY: every byte of the target is in lent frames (checked above):
    // environment memory, never the kernel's, reached through the direct map.
    unsafe {
        core::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            phys_to_virt(physical).as_mut_ptr::<u8>(),
            bytes.len(),
        )
    };
    Ok(())
}

/// Copies lent memory at `physical` into `out`.
pub fn read(physical: u64, out: &mut [u8]) -> Result<(), NotLent> {
    if !is_lent(physical, out.len() as u64) {
        return Err(NotLent);
    }
    // SAFETY: as in `write`; `out` is the kernel's own buffer.
    unsafe {
        core::ptr::copy_nonoverlapping(
            phys_to_virt(physical).as_ptr::<u8>(),
            out.as_mut_ptr(),
            out.len(),
        )
    };
    Ok(())
}

/// Plain data: `repr(C)`, only integer fields (and arrays of them), so no
/// padding and every byte initialised — the kernel may copy its bytes out.
///
/// # Safety
/// Implement it only for types that are so.
pub unsafe trait Plain: Copy {}

// SAFETY: each is repr(C) and made only of u64 fields and arrays of u64s or
// of StartPage (three u64s): no padding, every byte initialised.
unsafe impl Plain for exo_abi::facts::Facts {}
// SAFETY: as above.
unsafe impl Plain for exo_abi::start_info::StartInfo {}
// SAFETY: as above (UpcallFrame: a u64, three u64s, Registers of u64s).
unsafe impl Plain for exo_abi::upcall::UpcallFrame {}

/// The bytes of `value`.
pub fn bytes_of<T: Plain>(value: &T) -> &[u8] {
    // SAFETY: `Plain` promises every byte of a `T` is initialised; the
    // slice borrows `value`, so it lives no longer.
    unsafe { core::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }
}
