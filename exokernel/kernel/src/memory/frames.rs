//! The physical frame allocator: one lock around `exo_kernel_core::frames`.
//!
//! At boot it takes every usable frame from the firmware memory map except
//! the first MiB (firmware data, and where real hardware keeps surprises),
//! the kernel image and boot modules. The bitmap's own storage is carved
//! out of the first usable run big enough to hold it.

use core::ops::Range;
use exo_kernel_core::frames::{FrameBitmap, FrameError};
use exo_kernel_core::memory_map::{self, FRAME_SIZE, Region};

use spin::Mutex;

use crate::memory::{image_physical_range, phys_to_virt};

/// The boot page tables direct-map only the first GiB: anything the kernel
/// touches before `paging::init` must lie below this.
pub const BOOT_WINDOW_END: u64 = 1 << 30;

static FRAMES: Mutex<Option<FrameBitmap<'static>>> = Mutex::new(None);

/// A snapshot of the allocator's counts.
#[derive(Clone, Copy, Debug)]
pub struct FrameCounts {
    pub total: u64,
    pub usable: u64,
    pub free: u64,
}

/// Builds the allocator from the memory map `regions`, keeping out the
/// boot `modules` (physical ranges the loader placed).
pub fn init(regions: &[Region], modules: &[Range<u64>]) {
    let frame_count = memory_map::ram_end(regions).div_ceil(FRAME_SIZE);
    let words = FrameBitmap::storage_words(frame_count);
    let storage_bytes = (words * size_of::<u64>()) as u64;

    let kernel = image_physical_range();
    let mut excluded = [0..0x10_0000, kernel, 0..0, 0..0, 0..0, 0..0, 0..0];
    for (slot, module) in excluded[2..].iter_mut().zip(modules) {
        *slot = module.clone();
    }
    assert!(modules.len() <= excluded.len() - 3, "too many boot modules");

    // Find a home for the bitmap below the boot window, then exclude it too.
    let mut storage_at = None;
    memory_map::usable_frames(regions, &excluded[..6], |run| {
        let start = run.start * FRAME_SIZE;
        let fits = (run.end - run.start) * FRAME_SIZE >= storage_bytes;
        if storage_at.is_none() && fits && start + storage_bytes <= BOOT_WINDOW_END {
            storage_at = Some(start);
        }
    });
    let storage_at = storage_at.expect("no room for the frame bitmap below 1 GiB");
    let last = excluded.len() - 1;
    excluded[last] = storage_at..storage_at + storage_bytes;

    // SAFETY: this memory is usable RAM (from the memory map), is excluded
    // from allocation just above, so nothing else will ever alias it, and is
    // reachable through the direct map, which never goes away.
    let storage: &'static mut [u64] =
        unsafe { core::slice::from_raw_parts_mut(phys_to_virt(storage_at).as_mut_ptr(), words) };
    let mut bitmap = FrameBitmap::new(storage, frame_count);
    memory_map::usable_frames(regions, &excluded, |run| bitmap.add_usable(run));
    *FRAMES.lock() = Some(bitmap);
}

fn with<T>(action: impl FnOnce(&mut FrameBitmap<'static>) -> T) -> T {
    action(
        FRAMES
            .lock()
            .as_mut()
            .expect("frame allocator not initialised"),
    )
}

/// Allocates any free frame; returns its physical address.
pub fn allocate() -> Result<u64, FrameError> {
    with(|frames| frames.allocate()).map(|frame| frame * FRAME_SIZE)
}

/// Allocates any free frame and fills it with zeros.
pub fn allocate_zeroed() -> Result<u64, FrameError> {
    let address = allocate()?;
    // SAFETY: the frame was just allocated, so nothing else refers to it.
    unsafe { super::zero_physical(address, FRAME_SIZE) };
    Ok(address)
}

/// Allocates `2^order` contiguous frames aligned to their size; returns the first's address.
pub fn allocate_run(order: u32) -> Result<u64, FrameError> {
    with(|frames| frames.allocate_run(order)).map(|frame| frame * FRAME_SIZE)
}

/// Allocates the `2^order` frames starting at physical address `address`.
pub fn allocate_run_at(address: u64, order: u32) -> Result<(), FrameError> {
    with(|frames| frames.allocate_run_at(address / FRAME_SIZE, order))
}

/// Frees the frame at physical address `address`.
pub fn free(address: u64) -> Result<(), FrameError> {
    with(|frames| frames.free(address / FRAME_SIZE))
}

/// Frees `2^order` frames starting at physical address `address`.
pub fn free_run(address: u64, order: u32) -> Result<(), FrameError> {
    with(|frames| frames.free_run(address / FRAME_SIZE, order))
}

pub fn counts() -> FrameCounts {
    with(|frames| FrameCounts {
        total: frames.frame_count(),
        usable: frames.usable_count(),
        free: frames.free_count(),
    })
}
