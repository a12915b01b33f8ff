//! Anonymous memory: `mmap`, `munmap`, `mprotect` for the calling process.
//!
//! `mmap` only reserves address space in the mmap area (`layout`) and
//! records the region's protection (`regions`); the pager maps a zeroed page
//! on its first touch. `munmap` unmaps the touched pages and drops their
//! capabilities (their frames return to the kernel unless a forked child
//! still shares them). `mprotect` changes the region's protection and that
//! of its mapped pages; a page shared copy-on-write stays read-only until
//! the write that copies it.
//!
//! No Rust reference can point into the mmap area: programs reach it only
//! by address, through [`load`] and [`store`]. So unmapping and protecting
//! are safe: a bad access faults, and the pager ends the process (status 139).
//!
//! Limits: `PROT_NONE` works for untouched pages only (a mapping cannot
//! forbid reads): `mprotect(PROT_NONE)` over touched pages is `ENOTSUP`.
//! `MAP_FIXED`, file mappings and shared mappings are not offered.

use exo_abi::layout::PAGE_SIZE;

use crate::layout::{MMAP_END, MMAP_START};
use crate::pager_units::flags;
pub use crate::regions::Protection;
use crate::{Errno, paging, raw};

/// Reserves `length` bytes (rounded up to whole pages) of demand-zero memory
/// with `protection`; returns its address.
pub fn mmap(length: u64, protection: Protection) -> Result<u64, Errno> {
    let length = checked_length(length)?;
    paging::lock()
        .regions
        .get_or_map()?
        .reserve(length, protection)
        .ok_or(Errno::ENOMEM)
}

/// Removes the pages of `address..address + length` from the process.
pub fn munmap(address: u64, length: u64) -> Result<(), Errno> {
    let end = checked_range(address, length)?;
    let mut pager = paging::lock();
    let regions = pager.regions.get_or_map()?;
    regions.carve(address, end).ok_or(Errno::ENOMEM)?;
    regions.remove_inside(address, end);
    // One unit at a time: a list would not fit the stack this section may use.
    loop {
        let next = pager
            .units
            .iter()
            .find(|unit| unit.has(flags::MAPPED) && (address..end).contains(&unit.address));
        let Some(unit) = next else { break };
        for page in unit.page_addresses() {
            raw::unmap_mmap_page(page)?;
        }
        pager.forget_mapping(unit.handle);
    }
    Ok(())
}

/// Sets the protection of `address..address + length`, all of it mapped
/// by `mmap`.
pub fn mprotect(address: u64, length: u64, protection: Protection) -> Result<(), Errno> {
    let end = checked_range(address, length)?;
    let mut pager = paging::lock();
    let touched = pager
        .units
        .iter()
        .any(|unit| unit.has(flags::MAPPED) && address <= unit.address && unit.address < end);
    if protection == Protection::NONE && touched {
        return Err(Errno::ENOTSUP);
    }
    let regions = pager.regions.get_or_map()?;
    if regions.carve(address, end).ok_or(Errno::ENOMEM)? != end - address {
        return Err(Errno::ENOMEM); // part of the range is not mapped
    }
    regions.protect_inside(address, end, protection);
    for unit in pager.units.iter() {
        if unit.flags & flags::MAPPED != 0
            && !unit.has(flags::COPY_ON_WRITE)
            && (address..end).contains(&unit.address)
        {
            raw::protect_own_page(unit.address, protection.map_flags())?;
        }
    }
    Ok(())
}

/// Reads the `u64` at `address` (8-byte aligned) in the mmap area.
///
/// # Panics
/// If `address` is outside the mmap area or misaligned.
pub fn load(address: u64) -> u64 {
    raw::mmap_load(address)
}

/// Writes the `u64` at `address` (8-byte aligned) in the mmap area; a write
/// to a page mapped without `Protection::WRITE` ends the process (139).
///
/// # Panics
/// If `address` is outside the mmap area or misaligned.
pub fn store(address: u64, value: u64) {
    raw::mmap_store(address, value)
}

fn checked_length(length: u64) -> Result<u64, Errno> {
    match length.checked_next_multiple_of(PAGE_SIZE) {
        Some(length) if length > 0 && length <= MMAP_END - MMAP_START => Ok(length),
        _ => Err(Errno::EINVAL),
    }
}

/// The end of `address..address + length`, which must be page-aligned and
/// inside the mmap area.
fn checked_range(address: u64, length: u64) -> Result<u64, Errno> {
    let length = checked_length(length)?;
    let end = address.checked_add(length).ok_or(Errno::EINVAL)?;
    if !address.is_multiple_of(PAGE_SIZE) || address < MMAP_START || end > MMAP_END {
        return Err(Errno::EINVAL);
    }
    Ok(end)
}
