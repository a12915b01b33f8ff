//! Physical and virtual memory as the kernel itself uses it.
//!
//! The kernel half of every address space looks the same:
//!
//! | virtual address          | what                                          |
//! |--------------------------|-----------------------------------------------|
//! | `0xffff_8000_0000_0000`  | direct map: all RAM at `DIRECT_MAP_BASE + physical` |
//! | `0xffff_ff00_0000_0000`  | device window: MMIO registers, uncached       |
//! | `0xffff_ffff_8000_0000`  | the kernel image (`KERNEL_BASE + physical`)   |
//!
//! Frames (`frames`) are the only physical allocator; page tables
//! (`paging`) and the heap (`heap`) take their memory from it.

pub mod address_space;
pub mod frames;
pub mod heap;
pub mod lent_frames;
pub mod paging;

use exo_kernel_core::memory_map::FRAME_SIZE;
use x86_64::VirtAddr;

/// Where all of physical memory is mapped (PML4 slot 256).
pub const DIRECT_MAP_BASE: u64 = 0xffff_8000_0000_0000;
/// Where device registers are mapped (PML4 slot 510).
pub const DEVICE_WINDOW_BASE: u64 = 0xffff_ff00_0000_0000;
/// Where the kernel image is linked (PML4 slot 511, the top 2 GiB).
pub const KERNEL_BASE: u64 = 0xffff_ffff_8000_0000;

/// The direct-map address of physical address `physical`.
pub fn phys_to_virt(physical: u64) -> VirtAddr {
    VirtAddr::new(DIRECT_MAP_BASE + physical)
}

/// Fills the `bytes` bytes of RAM from `physical` with zeros, through the
/// direct map; `bytes` is a whole number of frames.
///
/// Eight 8-byte stores a round, written as volatile stores so the compiler
/// cannot turn the loop back into `memset`: `memset` is `rep stosq`, which
/// QEMU's TCG runs one 8-byte store at a time through its helper loop, and
/// this loop zeroes a frame in under half the time there (measured per
/// `FrameAllocate`, chapter 7.5). On hardware both are fast.
///
/// # Safety
///
/// The memory must be RAM that nothing else refers to while it is zeroed:
/// a run just allocated.
pub unsafe fn zero_physical(physical: u64, bytes: u64) {
    debug_assert!(bytes.is_multiple_of(FRAME_SIZE));
    let start = phys_to_virt(physical).as_mut_ptr::<[u64; 8]>();
    for index in 0..(bytes / 64) as usize {
        // SAFETY: `start` is the direct-map address of `bytes` bytes of RAM
        // the caller gave over (see the function's contract), and every
        // 64-byte piece written lies inside them.
        unsafe {
            let words = start.add(index).cast::<u64>();
            for word in 0..8 {
                core::ptr::write_volatile(words.add(word), 0);
            }
        }
    }
}

/// Linker-script symbols bounding the kernel image and its sections.
mod image {
    unsafe extern "C" {
        pub static __text_start: u8;
        pub static __rodata_start: u8;
        pub static __data_start: u8;
        pub static __kernel_end: u8;
        pub static boot_stack_guard: u8;
        pub static boot_stack_top: u8;
    }
}

/// Kernel image section bounds, as virtual addresses.
#[derive(Clone, Copy, Debug)]
pub struct ImageLayout {
    pub text: u64,
    pub rodata: u64,
    pub data: u64,
    pub end: u64,
    pub stack_guard: u64,
    pub stack_top: u64,
}

pub fn image_layout() -> ImageLayout {
    use image::*;
    // Only the addresses of the linker symbols are taken, never their contents.
    ImageLayout {
        text: &raw const __text_start as u64,
        rodata: &raw const __rodata_start as u64,
        data: &raw const __data_start as u64,
        end: &raw const __kernel_end as u64,
        stack_guard: &raw const boot_stack_guard as u64,
        stack_top: &raw const boot_stack_top as u64,
    }
}

/// The physical memory the kernel image occupies, including the boot trampoline (from 1 MiB).
pub fn image_physical_range() -> core::ops::Range<u64> {
    0x10_0000..image_layout().end - KERNEL_BASE
}
