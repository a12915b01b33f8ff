//! The kernel's own page tables.
//!
//! `init` replaces the boot trampoline's tables with the layout described in
//! `memory/mod.rs`: RAM direct-mapped with 2 MiB pages, the kernel image with
//! 4 KiB pages and per-section permissions (code read-only and executable,
//! everything else no-execute), and an unmapped guard page under the boot
//! stack. All kernel mappings are global, so they survive address-space
//! switches in the TLB.
//!
//! The upper-half PML4 entries are created once here and never change, so
//! each environment's page tables can share them by copying those entries.

use exo_kernel_core::memory_map::{self, FRAME_SIZE, Region};
use spin::{Mutex, Once};
use x86_64::registers::control::{Cr3, Cr3Flags, Cr4, Cr4Flags};
use x86_64::structures::paging::mapper::MapToError;
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageSize, PageTable, PageTableFlags as Flags,
    PhysFrame, Size2MiB, Size4KiB,
};
use x86_64::{PhysAddr, VirtAddr};

use super::frames::{self, BOOT_WINDOW_END};
use super::{DEVICE_WINDOW_BASE, DIRECT_MAP_BASE, KERNEL_BASE, image_layout, phys_to_virt};

const TWO_MIB: u64 = 2 << 20;

/// Physical address of the kernel's PML4.
static KERNEL_PML4: Once<u64> = Once::new();

/// The next free address in the device window.
static NEXT_DEVICE_ADDRESS: Mutex<u64> = Mutex::new(DEVICE_WINDOW_BASE);

/// Hands page-table frames to the `x86_64` crate's mapper.
struct TableFrames {
    /// Before the switch, new tables must lie inside the boot direct map.
    early: bool,
}

// SAFETY: every frame returned comes fresh from the frame allocator, so it is
// unused; the mapper zeroes it before use.
unsafe impl FrameAllocator<Size4KiB> for TableFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame> {
        let address = frames::allocate().ok()?;
        assert!(
            !self.early || address < BOOT_WINDOW_END,
            "early page table above 1 GiB"
        );
        Some(PhysFrame::containing_address(PhysAddr::new(address)))
    }
}

/// A mapper over the page tables whose PML4 is at physical address `pml4`.
///
/// # Safety
/// `pml4` must be a page table that nothing else is modifying, and every
/// table it reaches must be inside the direct map.
pub unsafe fn mapper(pml4: u64) -> OffsetPageTable<'static> {
    // SAFETY: the caller's promises are exactly OffsetPageTable's.
    unsafe {
        OffsetPageTable::new(
            &mut *phys_to_virt(pml4).as_mut_ptr::<PageTable>(),
            VirtAddr::new(DIRECT_MAP_BASE),
        )
    }
}

/// Builds the kernel's page tables and switches to them.
pub fn init(regions: &[Region]) {
    let mut table_frames = TableFrames { early: true };
    let pml4 = frames::allocate_zeroed().expect("no frame for the kernel PML4");
    assert!(pml4 < BOOT_WINDOW_END);
    // SAFETY: a fresh, zeroed table that only this function knows about.
    let mut tables = unsafe { mapper(pml4) };

    // Direct map: every 2 MiB chunk that holds RAM (and the first, with the
    // firmware's low memory and ACPI root pointer).
    let ram_end = memory_map::ram_end(regions);
    let direct = Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE | Flags::GLOBAL;
    for chunk in (0..ram_end).step_by(TWO_MIB as usize) {
        let holds_ram = chunk == 0
            || regions.iter().any(|region| {
                region.kind.is_ram() && region.start < chunk + TWO_MIB && region.end > chunk
            });
        if holds_ram {
            let page = Page::<Size2MiB>::containing_address(VirtAddr::new(DIRECT_MAP_BASE + chunk));
            let frame = PhysFrame::containing_address(PhysAddr::new(chunk));
            // SAFETY: the direct map aliases RAM only as data (no-execute);
            // ownership of each frame is tracked by the frame allocator.
            unsafe { tables.map_to(page, frame, direct, &mut table_frames) }
                .map(|flush| flush.ignore())
                .unwrap_or_else(|error| map_failed(error));
        }
    }

    // The kernel image, section by section.
    let image = image_layout();
    let code = Flags::PRESENT | Flags::GLOBAL;
    let read_only = Flags::PRESENT | Flags::NO_EXECUTE | Flags::GLOBAL;
    let read_write = read_only | Flags::WRITABLE;
    for (start, end, flags) in [
        (image.text, image.rodata, code),
        (image.rodata, image.data, read_only),
        (image.data, image.end, read_write),
    ] {
        for address in (start..end).step_by(FRAME_SIZE as usize) {
            if address == image.stack_guard {
                continue;
            }
            let page = Page::<Size4KiB>::containing_address(VirtAddr::new(address));
            let frame = PhysFrame::containing_address(PhysAddr::new(address - KERNEL_BASE));
            // SAFETY: maps the kernel image onto itself, as the linker laid it out.
            unsafe { tables.map_to(page, frame, flags, &mut table_frames) }
                .map(|flush| flush.ignore())
                .unwrap_or_else(|error| map_failed(error));
        }
    }

    // The device window's PDPT exists from the start, like every upper-half
    // entry, so that environments that copy the kernel half see later devices.
    let device_slot = (DEVICE_WINDOW_BASE >> 39) as usize & 511;
    let pdpt = frames::allocate_zeroed().expect("no frame for the device window");
    tables.level_4_table_mut()[device_slot]
        .set_addr(PhysAddr::new(pdpt), Flags::PRESENT | Flags::WRITABLE);

    // SAFETY: the new tables map everything the kernel uses from now on: its
    // image (including the running code and the stack), the direct map
    // (frame bitmap, boot information) and nothing that is still needed from
    // the boot identity map. Global pages need CR4.PGE.
    unsafe {
        Cr4::update(|flags| flags.insert(Cr4Flags::PAGE_GLOBAL));
        Cr3::write(
            PhysFrame::containing_address(PhysAddr::new(pml4)),
            Cr3Flags::empty(),
        );
    }
    KERNEL_PML4.call_once(|| pml4);
}

/// Maps `length` bytes of device registers at physical address `physical`
/// into the device window, uncached, and returns the virtual address.
pub fn map_device(physical: u64, length: u64) -> VirtAddr {
    let first = physical & !(FRAME_SIZE - 1);
    let pages = (physical + length - first).div_ceil(FRAME_SIZE);
    let mut next = NEXT_DEVICE_ADDRESS.lock();
    let base = *next;
    *next += pages * FRAME_SIZE;

    let flags = Flags::PRESENT
        | Flags::WRITABLE
        | Flags::NO_EXECUTE
        | Flags::GLOBAL
        | Flags::NO_CACHE
        | Flags::WRITE_THROUGH;
    // SAFETY: the kernel PML4 is only changed with NEXT_DEVICE_ADDRESS held
    // (here) or before it exists (init).
    let mut tables = unsafe { mapper(*KERNEL_PML4.get().expect("paging::init has not run")) };
    for index in 0..pages {
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(base + index * FRAME_SIZE));
        let frame = PhysFrame::containing_address(PhysAddr::new(first + index * FRAME_SIZE));
        // SAFETY: device registers are not RAM, so this aliases no memory the
        // kernel hands out; the window's addresses are never reused.
        unsafe { tables.map_to(page, frame, flags, &mut TableFrames { early: false }) }
            .map(|flush| flush.flush())
            .unwrap_or_else(|error| map_failed(error));
    }
    VirtAddr::new(base + (physical - first))
}

/// Switches to the kernel's own page tables (no user half), e.g. before the
/// loaded address space is destroyed.
pub fn load_kernel_tables() {
    // SAFETY: the kernel's tables map everything the kernel uses.
    unsafe {
        Cr3::write(
            PhysFrame::containing_address(PhysAddr::new(kernel_pml4())),
            Cr3Flags::empty(),
        )
    };
}

/// Physical address of the kernel's PML4, whose upper half every address space shares.
pub fn kernel_pml4() -> u64 {
    *KERNEL_PML4.get().expect("paging::init has not run")
}

fn map_failed<S: PageSize + core::fmt::Debug>(error: MapToError<S>) -> ! {
    panic!("kernel mapping failed: {error:?}")
}
