//! The heap: a buddy allocator over a region that grows on demand.
//!
//! The allocator is given address space, not memory: when it runs out, the
//! heap is extended by a chunk of the `layout::HEAP_START..HEAP_END` range,
//! and the pages are mapped only when first touched, by the fault handler
//! (`paging`), with zeroed frames. So a program pays in frames only for the
//! heap it uses.

use core::alloc::Layout;
use core::sync::atomic::{AtomicU64, Ordering};

use buddy_system_allocator::{Heap, LockedHeapWithRescue};

use crate::layout::{HEAP_END, HEAP_START};
use crate::raw;

/// How much address space the heap grows by at a time.
const CHUNK: u64 = 1 << 20;

/// The end of the address space given to the allocator so far.
static BREAK: AtomicU64 = AtomicU64::new(HEAP_START);

#[global_allocator]
static HEAP: LockedHeapWithRescue<32> = LockedHeapWithRescue::new(grow);

/// Gives the allocator enough fresh address space for `layout`: a block of
/// the power-of-two size a buddy allocator serves it from, aligned to that
/// size (the gap it may leave below is address space only, never mapped).
fn grow(heap: &mut Heap<32>, layout: &Layout) {
    let block = (layout.size().max(layout.align()) as u64)
        .next_power_of_two()
        .max(CHUNK);
    let start = BREAK.load(Ordering::Relaxed).next_multiple_of(block);
    let Some(end) = start.checked_add(block).filter(|&end| end <= HEAP_END) else {
        return; // out of heap: the allocation fails
    };
    BREAK.store(end, Ordering::Relaxed);
    // The allocator writes its free-list links into the new range: those
    // writes fault and the fault handler maps zeroed frames.
    raw::give_heap(heap, start, end);
}

/// Bytes of address space the heap has been given.
pub fn size() -> u64 {
    BREAK.load(Ordering::Relaxed) - HEAP_START
}

/// Whether some code is inside the allocator now (its lock is held). The
/// thread scheduler does not preempt a thread then (`thread::switch`): the
/// thread it would switch to might allocate and spin for ever on the lock.
pub(crate) fn busy() -> bool {
    HEAP.is_locked()
}
