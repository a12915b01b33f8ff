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
//!
//! The allocator is kernel-core's (`buddy.rs`): every allocation and free
//! takes a bounded number of steps, however the heap's free blocks lie, so
//! no program can make the kernel's frees slow for others by the shape it
//! leaves the heap in. Each run is one of its regions, whole, so that an
//! 8 MiB run is one 8 MiB block; the region's bitmap, a sixty-fourth of its
//! size (at least a frame), is in frames of its own beside it. This module gives the allocator
//! the memory and reads and writes the free blocks' links.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

use exo_kernel_core::buddy::{self, Buddy, Links};
use spin::Mutex;

use super::{frames, phys_to_virt};

/// The heap is this fraction of usable memory (1/8), at least one run.
const HEAP_SHARE: u64 = 8;
/// The largest run taken at once (2^11 frames, 8 MiB) and the smallest heap.
const RUN_ORDER: u32 = 11;
/// Bytes the heap keeps free for the kernel's own use at any time: an
/// operation that would allocate is refused below it (`has_room`).
const FLOOR: usize = 256 * 1024;

const FRAME_ORDER: u32 = 12;
const _: () = assert!(RUN_ORDER + FRAME_ORDER <= buddy::MAX_ORDER);

/// The global allocator: the buddy allocator behind a lock.
struct KernelHeap(Mutex<Buddy<'static, FreeBlockLinks>>);

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(Mutex::new(Buddy::new(FreeBlockLinks)));

// SAFETY: blocks come from regions of frames the heap owns alone (`add_run`),
// aligned to their size and at least the layout's size and alignment
// (`buddy::block_order`); a block is handed out once until it is freed.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let block = self.0.lock().allocate(layout.size(), layout.align());
        block.map_or(core::ptr::null_mut(), |block| block as *mut u8)
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        self.0
            .lock()
            .free(pointer as usize, layout.size(), layout.align())
    }
}

/// A free block's links, in its first two words.
struct FreeBlockLinks;

impl FreeBlockLinks {
    fn word(block: usize, index: usize) -> *mut usize {
        (block as *mut usize).wrapping_add(index)
    }
}

// SAFETY (each method): the allocator passes only free blocks of its
// regions, each at least `buddy::MIN_BLOCK` (two words) long and aligned to
// it, which nothing else uses while they are free.
impl Links for FreeBlockLinks {
    fn next(&self, block: usize) -> usize {
        // SAFETY: as above.
        unsafe { Self::word(block, 0).read() }
    }

    fn previous(&self, block: usize) -> usize {
        // SAFETY: as above.
        unsafe { Self::word(block, 1).read() }
    }

    fn set_next(&mut self, block: usize, next: usize) {
        // SAFETY: as above.
        unsafe { Self::word(block, 0).write(next) }
    }

    fn set_previous(&mut self, block: usize, previous: usize) {
        // SAFETY: as above.
        unsafe { Self::word(block, 1).write(previous) }
    }
}

static CAPACITY: AtomicUsize = AtomicUsize::new(0);
/// The heap's size before `grow`: what the accounts' promise and the
/// reserve are reckoned from.
static BASE: AtomicUsize = AtomicUsize::new(0);

/// Takes the heap's frames (an eighth of `usable_frames`, in runs of at
/// most 8 MiB) and hands them to the allocator; returns its size in bytes.
pub fn init(usable_frames: u64) -> usize {
    let run_frames = 1u64 << RUN_ORDER;
    let wanted = (usable_frames / HEAP_SHARE).max(run_frames);
    let bytes = add_bytes(wanted as usize * 4096);
    assert!(bytes > 0, "no frames for the kernel heap");
    CAPACITY.store(bytes, Ordering::Relaxed);
    BASE.store(bytes, Ordering::Relaxed);
    bytes
}

/// Adds at least `bytes` to the heap, once at boot, for what the kernel
/// allocated for itself out of it (the capability arena): the promise and
/// the reserve stay what they were. Returns the bytes added (fewer if the
/// frames ran out).
pub fn grow(bytes: usize) -> usize {
    let added = add_bytes(bytes);
    CAPACITY.fetch_add(added, Ordering::Relaxed);
    added
}

/// Takes frames, in runs of at most 8 MiB, until the heap has `wanted`
/// bytes more; returns how many it got (fewer if the frames ran out).
fn add_bytes(wanted: usize) -> usize {
    let mut added = 0;
    while added < wanted {
        let frames = (wanted - added).div_ceil(4096) as u64;
        match add_run(RUN_ORDER.min(frames.ilog2())) {
            Some(bytes) => added += bytes,
            None => break,
        }
    }
    added
}

/// Takes a run of `2^order` frames, and frames for its bitmap, and makes
/// the run one of the allocator's regions; returns its bytes, or `None` if
/// there are no such frames (or the allocator holds no more regions).
fn add_run(order: u32) -> Option<usize> {
    let region_order = order + FRAME_ORDER;
    let words = buddy::bitmap_words(region_order);
    let bitmap_order = (words * 8).div_ceil(4096).next_power_of_two().ilog2();
    // The run first: a bitmap taken first could split the last free run of
    // its size.
    let physical = frames::allocate_run(order).ok()?;
    let Ok(bitmap_physical) = frames::allocate_run(bitmap_order) else {
        frames::free_run(physical, order).expect("frames just allocated");
        return None;
    };
    let start = phys_to_virt(physical).as_u64() as usize;
    let bitmap = phys_to_virt(bitmap_physical).as_mut_ptr::<u64>();
    // SAFETY: the bitmap's frames were just allocated for it alone, hold at
    // least `words` words, and the direct map covers them for the kernel's
    // lifetime.
    let bitmap = unsafe { core::slice::from_raw_parts_mut(bitmap, words) };
    let added = HEAP.0.lock().add_region(start, region_order, bitmap);
    match added {
        Ok(()) => Some(1 << region_order),
        Err(error) => {
            log::warn!("heap: a run of {} KiB refused: {error:?}", 4 << order);
            frames::free_run(physical, order).expect("frames just allocated");
            frames::free_run(bitmap_physical, bitmap_order).expect("frames just allocated");
            None
        }
    }
}

/// Bytes currently allocated from the heap.
pub fn used_bytes() -> usize {
    HEAP.0.lock().allocated()
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
/// bytes are free in blocks of 4 KiB or more (`buddy::LARGE_ORDER`), as
/// large as any a request makes the kernel allocate (3,056 bytes was the
/// largest seen after boot across the hostile tests). Smaller free blocks
/// do not count, so a heap cut into pieces refuses requests with a typed
/// error rather than failing an allocation, which would stop the kernel.
pub fn has_room() -> bool {
    HEAP.0.lock().free_in_large_blocks() > FLOOR
}
