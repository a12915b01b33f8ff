//! Where a process's memory lives. The library OS decides this, not the
//! kernel: another library OS may lay its programs out differently.
//! Constants only; libos-posixish re-exports it as `layout`.
//!
//! The one table of the layout, every constant with its address and what
//! it holds, is `docs/04-libos.md` §4.2; each constant below says its own part.

use exo_abi::layout::{INITIAL_STACK_TOP, PAGE_SIZE};

/// The heap starts here and grows up to `HEAP_END`.
pub const HEAP_START: u64 = 0x0000_1000_0000_0000;
/// The most the heap may grow to: 1 GiB.
pub const HEAP_END: u64 = HEAP_START + (1 << 30);

/// Where the program image starts (`user.ld`); its pages follow without a gap.
pub const IMAGE_START: u64 = 0x40_0000;

/// Anonymous `mmap` regions are placed in this range.
pub const MMAP_START: u64 = 0x0000_2000_0000_0000;
pub const MMAP_END: u64 = 0x0000_3000_0000_0000;

/// A private stack (never shared with a child) on which `fork` write-protects
/// the pages it shares, so that none of its own writes can hit one of them.
pub const FORK_STACK_TOP: u64 = 0x0000_6ffb_0000_0000;
pub const FORK_STACK_PAGES: u64 = 4;

/// Where the fault handler maps a fresh run for a moment to copy a shared
/// one into it (16 pages; the scratch page belongs to the main code).
pub const PAGER_WINDOW: u64 = 0x0000_6ffc_0000_0000;
/// Pages in the pager's window: the largest run it copies at once.
pub const PAGER_WINDOW_PAGES: u64 = 16;

/// Where the pager keeps its table of units (`pager_units`), a page mapped
/// at a time as the capability slots it records reach higher: up to
/// `PAGER_TABLE_PAGES` pages, 256 slots of 16 bytes each.
pub const PAGER_TABLE: u64 = 0x0000_6ff6_0000_0000;
pub const PAGER_TABLE_PAGES: u64 = 4;
/// Where the pager keeps its `mmap` regions (`regions`): one page, mapped at
/// the first `mmap`, `munmap` or `mprotect`.
pub const PAGER_REGIONS: u64 = PAGER_TABLE + 0x10_0000;

/// A page where a parent maps a frame for a moment to fill it for a child.
pub const SCRATCH: u64 = 0x0000_6ffd_0000_0000;

/// Where `exec` writes its plan (up to `EXEC_PLAN_PAGES` pages) and puts the
/// code that carries it out, outside the image it replaces.
pub const EXEC_PLAN: u64 = 0x0000_6ff8_0000_0000;
pub const EXEC_PLAN_PAGES: u64 = 64;
pub const EXEC_TRAMPOLINE: u64 = 0x0000_6ff9_0000_0000;

/// Where a process maps its file-system transfer page, and where the file
/// server maps a client's for the length of one request.
pub const FS_TRANSFER: u64 = 0x0000_6ffa_0000_0000;
pub const FS_WINDOW: u64 = FS_TRANSFER + 0x10_0000;

/// Where the network stack maps its binding's rings (up to 256 pages).
pub const NET_RINGS: u64 = 0x0000_6ff7_0000_0000;

/// The process-info page a parent maps read-only into its child.
pub const PROCESS_INFO: u64 = 0x0000_6ffe_0000_0000;
/// The page where a process writes its exit status for its parent.
pub const EXIT_STATUS: u64 = PROCESS_INFO + PAGE_SIZE;

/// The pages (up to `HANDOVER_PAGES`) where a forked child finds the
/// capabilities its parent granted it for the memory they share.
pub const HANDOVER: u64 = PROCESS_INFO + 0x10_0000;
pub const HANDOVER_PAGES: u64 = 16;

/// The upcall stack: faults are handled here.
pub const EXCEPTION_STACK_TOP: u64 = 0x0000_6fff_0000_0000;
pub const EXCEPTION_STACK_PAGES: u64 = 8;

/// The main stack's top (the kernel's choice for the first environment;
/// the library OS uses the same for the processes it spawns).
pub const STACK_TOP: u64 = INITIAL_STACK_TOP;
/// Pages mapped at start; the rest grows on demand.
pub const STACK_INITIAL_PAGES: u64 = 4;
/// How far the stack may grow: 8 MiB, like Linux's default. The page below
/// is never mapped: a guard.
pub const STACK_LIMIT: u64 = STACK_TOP - (8 << 20);

/// Whether `address` is in the heap's range.
pub fn in_heap(address: u64) -> bool {
    (HEAP_START..HEAP_END).contains(&address)
}

/// Whether `address` is where the stack may grow (not the guard below it).
pub fn in_stack(address: u64) -> bool {
    (STACK_LIMIT..STACK_TOP).contains(&address)
}

/// Whether `address` is in the range where `mmap` places regions.
pub fn in_mmap_area(address: u64) -> bool {
    (MMAP_START..MMAP_END).contains(&address)
}
