//! Where the runtime puts things in a program's address space.
//!
//! The kernel fixes three places: the program image (linked at [`IMAGE_START`] by `user.ld`),
//! the first environment's stack (below `exo_abi::layout::INITIAL_STACK_TOP`) and its
//! start-info page. Everything else is this runtime's choice, and a library OS may choose
//! differently.
//!
//! ```text
//! 0x0000_0000_0040_0000  program image: text, rodata, data + bss
//! 0x0000_1000_0000_0000  managed window: frames a program maps itself (memory.rs)
//! 0x0000_5000_0000_0000  end of the managed window
//! 0x0000_5f00_0000_0000  spawn scratch page: a child's fresh page, while the parent fills it
//! 0x0000_6000_0000_0000  top of a child's stack (spawn.rs)
//! 0x0000_7000_0000_0000  top of the first environment's stack (the kernel's)
//! 0x0000_7f00_0000_0000  start-info page, page-table view: the kernel's window
//! ```

use exo_abi::layout::{INITIAL_STACK_PAGES, INITIAL_STACK_TOP, PAGE_SIZE};

/// Where `user.ld` links every program.
pub const IMAGE_START: u64 = 0x40_0000;

/// The managed window, `MANAGED_START..MANAGED_END`: no Rust object ever lives here, so a
/// program may map, unmap and re-protect its own pages here without `unsafe`. Whole PML4
/// slots (512 GiB each), so page-table walks can skip it by slot.
pub const MANAGED_START: u64 = 0x0000_1000_0000_0000;
pub const MANAGED_END: u64 = 0x0000_5000_0000_0000;

/// The one page through which a parent fills a fresh frame before giving it to a child.
pub const SPAWN_SCRATCH: u64 = 0x0000_5f00_0000_0000;

/// Where a child's stack ends (it grows down), in the child's own address space.
pub const CHILD_STACK_TOP: u64 = 0x0000_6000_0000_0000;
/// Pages of stack a child gets: formatting a line takes about 1 KiB.
pub const CHILD_STACK_PAGES: u64 = 4;

/// Whether `address` lies in the managed window.
pub const fn is_managed(address: u64) -> bool {
    MANAGED_START <= address && address < MANAGED_END
}

/// Whether `address` lies in the first environment's stack, as the kernel maps it.
pub const fn is_initial_stack(address: u64) -> bool {
    INITIAL_STACK_TOP - INITIAL_STACK_PAGES * PAGE_SIZE <= address && address < INITIAL_STACK_TOP
}

const SLOT_SIZE: u64 = 1 << 39;
const _: () =
    assert!(MANAGED_START.is_multiple_of(SLOT_SIZE) && MANAGED_END.is_multiple_of(SLOT_SIZE));
const _: () = assert!(!is_managed(SPAWN_SCRATCH) && !is_managed(CHILD_STACK_TOP - 1));
const _: () = assert!(!is_managed(INITIAL_STACK_TOP - 1) && !is_managed(IMAGE_START));
const _: () = assert!(CHILD_STACK_TOP <= INITIAL_STACK_TOP - INITIAL_STACK_PAGES * PAGE_SIZE);
