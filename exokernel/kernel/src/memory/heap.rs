//! The kernel heap: a buddy allocator on runs of frames taken at boot.
//!
//! Its size is fixed at boot, an eighth of usable memory (`HEAP_SHARE`), so
//! its frames never move between it and the frame allocator: the free-frame
//! count a library OS reads only ever changes by what environments hold.
//! Every byte a user request makes the kernel allocate is charged to an
//! environment's kernel-memory account (`environment/kernel_memory.rs`),
//! and those accounts together never promise more than `capacity()` less
//! `reserve()`; the reserve is for the kernel's own structures and for
//! fragmentation. `has_room` is the last line: an operation that would
//! allocate is refused with a typed error when the heap is nearly full,
//! because `alloc` on stable Rust panics when an allocation fails.

use core::sync::atomic::{AtomicUsize, Ordering};

use buddy_system_allocator::LockedHeap;

use super::{frames, phys_to_virt};

/// The heap is this fraction of usable memory (1/8), at least one run.
const HEAP_SHARE: u64 = 8;
/// The largest run taken at once (2^11 frames, 8 MiB) and the smallest heap.
const RUN_ORDER: u32 = 11;
/// Bytes the heap keeps free for the kernel's own use at any time: an
/// operation that would allocate is refused below it (`has_room`).
const FLOOR: usize = 256 * 1024;

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

static CAPACITY: AtomicUsize = AtomicUsize::new(0);

/// Takes the heap's frames (an eighth of `usable_frames`, in runs of at
/// most 8 MiB) and hands them to the allocator; returns its size in bytes.
pub fn init(usable_frames: u64) -> usize {
    let run_frames = 1u64 << RUN_ORDER;
    let wanted = (usable_frames / HEAP_SHARE).max(run_frames);
    let mut taken = 0;
    while taken < wanted {
        let order = RUN_ORDER.min((wanted - taken).ilog2());
        let Ok(physical) = frames::allocate_run(order) else {
            break;
        };
        let start = phys_to_virt(physical).as_u64() as usize;
        let size = (1usize << order) * 4096;
        // SAFETY: the frames were just allocated for the heap alone, and the
        // direct map covers them for the kernel's lifetime.
        unsafe { HEAP.lock().add_to_heap(start, start + size) };
        taken += 1 << order;
    }
    assert!(taken > 0, "no frames for the kernel heap");
    let bytes = taken as usize * 4096;
    CAPACITY.store(bytes, Ordering::Relaxed);
    bytes
}

/// Bytes currently allocated from the heap.
pub fn used_bytes() -> usize {
    HEAP.lock().stats_alloc_actual()
}

/// The heap's size in bytes.
pub fn capacity() -> usize {
    CAPACITY.load(Ordering::Relaxed)
}

/// Bytes of the heap no environment's account may promise: the kernel's
/// own share and room for fragmentation (an eighth).
pub fn reserve() -> usize {
    capacity() / 8
}

/// Whether an operation that allocates may go ahead: more than `FLOOR`
/// bytes are free.
pub fn has_room() -> bool {
    capacity().saturating_sub(used_bytes()) > FLOOR
}
