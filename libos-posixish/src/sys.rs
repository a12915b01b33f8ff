//! The library OS's only `unsafe` code: raw access to memory it maps itself,
//! and the program entry.
//!
//! Everything here is small and says why it holds. The rest of the library
//! OS, and the programs on it, are `#![forbid(unsafe_code)]`.
#![allow(unsafe_code)]

use core::arch::global_asm;

use exo_abi::layout::PAGE_SIZE;

/// Copies `bytes` into the page at `page` (page-aligned), which the caller
/// has just mapped writable for this purpose and nothing else refers to.
pub fn fill_page(page: u64, offset: usize, bytes: &[u8]) {
    assert!(page.is_multiple_of(PAGE_SIZE) && offset + bytes.len() <= PAGE_SIZE as usize);
    // SAFETY: the caller mapped `page` writable a moment ago (at the scratch
    // address, where no Rust object lives) and unmaps it right after; the
    // range stays inside that page (checked above).
    unsafe {
        core::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            (page as usize + offset) as *mut u8,
            bytes.len(),
        )
    }
}

/// The `length` bytes at `address`, in a region the library OS mapped
/// read-only for the process's whole life (the boot file system, the
/// process-info page).
pub fn mapped_bytes(address: u64, length: usize) -> &'static [u8] {
    // SAFETY: callers pass only the boot file system and the process-info
    // page, which stay mapped, unchanged and read-only while the process lives.
    unsafe { core::slice::from_raw_parts(address as *const u8, length) }
}

/// Reads the `u64` at `address` of a page shared with another process.
pub fn read_shared(address: u64) -> u64 {
    // SAFETY: the exit-status page is mapped while the parent waits; the
    // volatile read sees the child's write.
    unsafe { core::ptr::read_volatile(address as *const u64) }
}

/// Writes the `u64` at `address` of a page shared with another process.
pub fn write_shared(address: u64, value: u64) {
    // SAFETY: as for `read_shared`; the page is writable for the writer.
    unsafe { core::ptr::write_volatile(address as *mut u64, value) }
}

/// Hands the address range `start..end` to the heap allocator.
pub fn give_heap(heap: &mut buddy_system_allocator::Heap<32>, start: u64, end: u64) {
    // SAFETY: the range is heap address space nothing else uses (the heap's
    // break only moves up), and every page in it is mapped on first touch by
    // the fault handler, which never allocates from this heap.
    unsafe { heap.add_to_heap(start as usize, end as usize) };
}

/// Unmaps the scratch page, where the library OS maps frames only to fill them.
pub fn unmap_scratch() -> Result<(), exo_abi::Error> {
    // SAFETY: nothing refers to the scratch page once it is filled; it holds
    // no Rust object.
    unsafe { exo_abi::user::unmap(exo_abi::Handle::SELF_ENVIRONMENT, crate::layout::SCRATCH) }
}

/// Drops a frame capability that was never mapped.
pub fn drop_unmapped_frame(frame: exo_abi::Handle) {
    // SAFETY: nothing maps the frame, so no reference can point into it.
    let _ = unsafe { exo_abi::user::capability_drop(frame) };
}

/// Drops a frame capability the library OS holds for a child that is gone.
pub fn drop_child_frame(frame: exo_abi::Handle) -> Result<(), exo_abi::Error> {
    // SAFETY: frames allocated for a child are mapped only in the child
    // (gone) and, briefly, at the scratch page (unmapped after each use).
    unsafe { exo_abi::user::capability_drop(frame) }
}

unsafe extern "Rust" {
    /// The program's `main`, defined by [`crate::main!`].
    safe fn libos_program_main(arguments: &[&str]) -> i32;
}

/// Calls the program's `main`.
pub fn program_main(arguments: &[&str]) -> i32 {
    libos_program_main(arguments)
}

// The kernel, or a parent, starts a process here with rsp at the top of its
// stack; the System V ABI wants it 16-byte aligned before a call, and rbp = 0
// ends frame-pointer backtraces.
global_asm!(
    r#"
    .pushsection .text._start, "ax"
    .global _start
_start:
    xor ebp, ebp
    and rsp, -16
    call {start}
    ud2
    .popsection
"#,
    start = sym crate::runtime::start,
);
