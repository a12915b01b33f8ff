//! What the loader tells the kernel: memory map, command line, boot modules.
//!
//! QEMU's PVH loader passes a `hvm_start_info` structure (Xen's
//! `public/arch-x86/hvm/start_info.h`, version 1). Its pointers are
//! physical; this module copies what the kernel keeps into its own storage
//! during early boot, so nothing later depends on firmware memory staying put.

use core::ops::Range;

use exo_kernel_core::memory_map::{Region, RegionKind};
use spin::Once;

use crate::memory::phys_to_virt;

const START_INFO_MAGIC: u32 = 0x336e_c578;
const MAX_REGIONS: usize = 64;
const MAX_MODULES: usize = 4;
const MAX_COMMAND_LINE: usize = 512;

/// `struct hvm_start_info`.
#[repr(C)]
struct StartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    module_count: u32,
    module_list: u64,
    command_line: u64,
    rsdp: u64,
    // Version 1 and later:
    memory_map: u64,
    memory_map_entries: u32,
    reserved: u32,
}

/// `struct hvm_memmap_table_entry`.
#[repr(C)]
struct MemoryMapEntry {
    address: u64,
    size: u64,
    kind: u32,
    reserved: u32,
}

/// `struct hvm_modlist_entry`.
#[repr(C)]
struct ModuleEntry {
    address: u64,
    size: u64,
    command_line: u64,
    reserved: u64,
}

/// The kernel's copy of the boot information.
#[derive(Debug)]
pub struct BootInfo {
    regions: [Region; MAX_REGIONS],
    region_count: usize,
    modules: [Range<u64>; MAX_MODULES],
    module_count: usize,
    command_line: [u8; MAX_COMMAND_LINE],
    command_line_len: usize,
}

static BOOT_INFO: Once<BootInfo> = Once::new();

/// Reads the loader's structure at physical address `start_info` and keeps a copy.
///
/// # Safety
/// `start_info` must be the address the PVH loader passed in `ebx`, and the
/// memory it describes must still be intact and reachable via the direct map.
pub unsafe fn init(start_info: u64) -> &'static BootInfo {
    // SAFETY: the caller promises this is the loader's structure; the boot
    // page tables direct-map the first GiB, where QEMU places it.
    let info = unsafe { &*phys_to_virt(start_info).as_ptr::<StartInfo>() };
    assert_eq!(info.magic, START_INFO_MAGIC, "not booted through PVH");
    assert!(
        info.version >= 1,
        "PVH start info version {} has no memory map",
        info.version
    );

    BOOT_INFO.call_once(|| {
        let mut boot = BootInfo {
            regions: [Region {
                start: 0,
                end: 0,
                kind: RegionKind::Reserved,
            }; MAX_REGIONS],
            region_count: 0,
            modules: [0..0, 0..0, 0..0, 0..0],
            module_count: 0,
            command_line: [0; MAX_COMMAND_LINE],
            command_line_len: 0,
        };
        // SAFETY: the loader's memory map, at the address and with the count it gave.
        let entries = unsafe { table::<MemoryMapEntry>(info.memory_map, info.memory_map_entries) };
        for (slot, entry) in boot.regions.iter_mut().zip(entries) {
            *slot = Region {
                start: entry.address,
                end: entry.address.saturating_add(entry.size),
                kind: RegionKind::from_e820(entry.kind),
            };
            boot.region_count += 1;
        }
        // SAFETY: the loader's module list, at the address and with the count it gave.
        let modules = unsafe { table::<ModuleEntry>(info.module_list, info.module_count) };
        for (slot, module) in boot.modules.iter_mut().zip(modules) {
            *slot = module.address..module.address + module.size;
            boot.module_count += 1;
        }
        if info.command_line != 0 {
            // SAFETY: the loader's NUL-terminated command line; only the
            // bytes before the NUL (or the first 511) are kept.
            let text = unsafe { table::<u8>(info.command_line, MAX_COMMAND_LINE as u32 - 1) };
            let len = text
                .iter()
                .position(|&byte| byte == 0)
                .unwrap_or(text.len());
            boot.command_line[..len].copy_from_slice(&text[..len]);
            boot.command_line_len = len;
        }
        boot
    })
}

impl BootInfo {
    /// The firmware memory map.
    pub fn regions(&self) -> &[Region] {
        &self.regions[..self.region_count]
    }

    /// Physical ranges of boot modules (`-initrd`), which the frame allocator must not hand out.
    pub fn modules(&self) -> &[Range<u64>] {
        &self.modules[..self.module_count]
    }

    /// The command line; empty when there is none or it is not UTF-8.
    pub fn command_line(&self) -> &str {
        core::str::from_utf8(&self.command_line[..self.command_line_len]).unwrap_or("")
    }

    /// Whether the loader's memory map had more entries than the kernel keeps.
    pub fn regions_truncated(&self) -> bool {
        self.region_count == MAX_REGIONS
    }
}

/// A read-only view of `count` values of `T` at physical address `address`.
///
/// # Safety
/// The memory must hold `count` valid values of `T` and stay unchanged while
/// the slice is used.
unsafe fn table<'a, T>(address: u64, count: u32) -> &'a [T] {
    if address == 0 || count == 0 {
        return &[];
    }
    // SAFETY: guaranteed by the caller; the direct map covers it.
    unsafe { core::slice::from_raw_parts(phys_to_virt(address).as_ptr(), count as usize) }
}
