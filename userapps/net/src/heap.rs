//! A heap for a program on the bare runtime that needs `alloc` — one that links
//! `libos-net`, whose smoltcp allocates its sockets and buffers.
//!
//! The runtime itself never allocates, and a program that declares no heap has none. One
//! that wants a heap names a buddy allocator as its global allocator and gives it memory
//! once, in the environment that allocates (a run of frames it allocates and maps itself):
//!
//! ```ignore
//! #[global_allocator]
//! static HEAP: userapps::heap::Heap = userapps::heap::Heap::empty();
//!
//! userapps::heap::give(&HEAP, HEAP_START, HEAP_ORDER)?;
//! ```
//!
//! A child built by `spawn` starts with a copy of its parent's data, the allocator's state
//! among it: so a parent that spawns must not have given itself a heap, and `give` refuses
//! an allocator that already has memory. The heap never grows: an allocation beyond it
//! fails, which `alloc` turns into a panic.
#![allow(unsafe_code)] // handing the mapped run to the allocator

use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::MapFlags;
use exo_abi::{Error, Handle, user};

use userapps::layout::is_managed;

/// The allocator a program declares as its `#[global_allocator]`.
pub type Heap = buddy_system_allocator::LockedHeap<32>;

/// Allocates `2^order` frames, maps them writable at `start` (page-aligned, free, outside
/// the managed window: Rust objects will live there) and hands them to `heap`. Returns the
/// frames' capability. `InvalidState` if `heap` already has memory (a copy of a parent's).
pub fn give(heap: &Heap, start: u64, order: u32) -> Result<Handle, Error> {
    let size = PAGE_SIZE << order;
    assert!(
        start.is_multiple_of(PAGE_SIZE) && !is_managed(start) && !is_managed(start + size - 1),
        "a heap at {start:#x} would overlap the managed window, where pages may vanish"
    );
    let mut allocator = heap.lock();
    if allocator.stats_total_bytes() != 0 {
        return Err(Error::InvalidState);
    }
    let (frames, _) = user::frame_allocate(order)?;
    if let Err(error) = user::map(frames, Handle::SELF_ENVIRONMENT, start, MapFlags::WRITE) {
        // SAFETY: the frames were just allocated and the map failed: nothing maps them.
        let _ = unsafe { user::capability_drop(frames) };
        return Err(error);
    }
    // SAFETY: `start..start + size` is mapped writable just now through frames of our own
    // (the map would have failed had any page there been mapped already), and the
    // capability is never dropped, so the range stays ours for the environment's life; no
    // Rust object lived there before, and from now on only the allocator hands it out.
    unsafe { allocator.init(start as usize, size as usize) };
    Ok(frames)
}
