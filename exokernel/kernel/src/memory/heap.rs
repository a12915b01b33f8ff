//! The kernel heap: a buddy allocator on runs of frames taken at boot.
//!
//! Its size is fixed at boot, an eighth of usable memory (`HEAP_SHARE`),
//! and as much more as the capability arena takes (`grow`), so its frames
//! never move between it and the frame allocator: the free-frame count a
//! library OS reads only ever changes by what environments hold. Every byte
//! a user request makes the kernel allocate is charged to an environment's
//! kernel-memory account (`environment/kernel_memory.rs`), and those
//! accounts together never promise more than `promised()`, the eighth less
//! an eighth of it; that eighth, the reserve, is for the kernel's own
//! structures and for fragmentation. `has_room` is the last line: an
//! operation that would allocate is refused with a typed error when the
//! heap is nearly full, because `alloc` on stable Rust panics when an
//! allocation fails.

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
/// The heap's size before `grow`: what the accounts' promise and the
/// reserve are reckoned from.
static BASE: AtomicUsize = AtomicUsize::new(0);

/// Takes the heap's frames (an eighth of `usable_frames`, in runs of at
/// most 8 MiB) and hands them to the allocator; returns its size in bytes.
pub fn init(usable_frames: u64) -> usize {
    let run_frames = 1u64 << RUN_ORDER;
    let wanted = (usable_frames / HEAP_SHARE).max(run_frames);
    let taken = add_frames(wanted);
    assert!(taken > 0, "no frames for the kernel heap");
    let bytes = taken as usize * 4096;
    CAPACITY.store(bytes, Ordering::Relaxed);
    BASE.store(bytes, Ordering::Relaxed);
    bytes
}

/// Adds at least `bytes` to the heap, once at boot, for what the kernel
/// allocated for itself out of it (the capability arena): the promise and
/// the reserve stay what they were. Returns the bytes added (fewer if the
/// frames ran out).
pub fn grow(bytes: usize) -> usize {
    let added = add_frames(bytes.div_ceil(4096) as u64) as usize * 4096;
    CAPACITY.fetch_add(added, Ordering::Relaxed);
    added
}

/// Takes `wanted` frames, in runs of at most 8 MiB, for the heap; returns
/// how many it got.
fn add_frames(wanted: u64) -> u64 {
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
    taken
}

/// Bytes currently allocated from the heap.
pub fn used_bytes() -> usize {
    HEAP.lock().stats_alloc_actual()
}

/// The heap's size in bytes.
pub fn capacity() -> usize {
    CAPACITY.load(Ordering::Relaxed)
}

/// Bytes of the heap the environments' accounts may promise in all: the
/// heap as `init` made it, less an eighth, the reserve, for the kernel's
/// own structures and for fragmentation (what `grow` added is beyond both).
pub fn promised() -> usize {
    let base = BASE.load(Ordering::Relaxed);
    base - base / 8
}

/// Whether an operation that allocates may go ahead: more than `FLOOR`
/// bytes are free.
pub fn has_room() -> bool {
    capacity().saturating_sub(used_bytes()) > FLOOR
}
