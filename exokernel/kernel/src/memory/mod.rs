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
