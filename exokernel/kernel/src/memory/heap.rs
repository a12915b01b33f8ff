//! The kernel heap: a buddy allocator on one run of frames.
//!
//! The kernel allocates little (per-environment bookkeeping, later), so a
//! fixed heap taken from the frame allocator at boot is enough; it does not
//! grow. Exhaustion panics, as `alloc` does on stable Rust.

use buddy_system_allocator::LockedHeap;

use super::{frames, phys_to_virt};

/// log2 of the heap's size in frames: 2^11 x 4 KiB = 8 MiB.
const HEAP_ORDER: u32 = 11;

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// Takes the heap's frames and hands them to the allocator; returns the
/// heap's (virtual start, size in bytes).
pub fn init() -> (u64, usize) {
    let physical = frames::allocate_run(HEAP_ORDER).expect("no frames for the kernel heap");
    let start = phys_to_virt(physical).as_u64() as usize;
    let size = (1usize << HEAP_ORDER) * 4096;
    // SAFETY: the frames were just allocated for the heap alone, and the
    // direct map covers them for the kernel's lifetime.
    unsafe { HEAP.lock().init(start, size) };
    (start as u64, size)
}

/// Bytes currently allocated from the heap.
pub fn used_bytes() -> usize {
    HEAP.lock().stats_alloc_actual()
}
