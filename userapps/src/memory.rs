//! Memory a program manages itself: reading and writing pages in the managed window, and
//! taking pages away (unmap, protect, drop, revoke) without `unsafe`.
//!
//! No Rust object ever lives in the managed window (`layout::MANAGED_START..MANAGED_END`),
//! so a page there may appear, change permissions or vanish without invalidating any
//! reference. Reads and writes there are volatile and may fault, just as a hardware access
//! would: with no upcall handler, a fault destroys the environment.
//!
//! This module must never let safe code take away a page that Rust memory lives on (the
//! image, a stack, the start-info page). So it refuses — panics, as on a bad slice index —
//! to unmap or re-protect the caller's own pages outside the window, and to drop or revoke
//! a frame capability while one of its frames backs a page of the caller outside the window
//! (found by walking the caller's page-table view). Other environments' pages are not the
//! caller's memory, so they pass through unchecked.
#![allow(unsafe_code)] // volatile accesses to the window, and the ABI's unsafe wrappers

use exo_abi::layout::{PAGE_SIZE, PAGE_TABLE_VIEW_SLOT, USER_MAP_END, page_table_entry_address};
use exo_abi::mapping::MapFlags;
use exo_abi::syscall::CapabilityKind;
use exo_abi::user::{self, entry};
use exo_abi::{Error, Handle};

use crate::layout::{MANAGED_END, MANAGED_START, is_managed};

/// Bit 7 of a page-directory or PDPT entry: it maps a 2 MiB or 1 GiB page itself.
const HUGE_PAGE: u64 = 1 << 7;

fn checked_word_address(address: u64) -> *mut u64 {
    assert!(
        is_managed(address) && is_managed(address + 7) && address.is_multiple_of(8),
        "{address:#x} is not an aligned word of the managed window \
         ({MANAGED_START:#x}..{MANAGED_END:#x})"
    );
    address as *mut u64
}

/// Reads the word at `address` in the managed window (8-byte aligned); faults if unmapped.
pub fn read_u64(address: u64) -> u64 {
    let pointer = checked_word_address(address);
    // SAFETY: no Rust object lives in the managed window, so this volatile read aliases
    // nothing; an unmapped page faults, which the kernel turns into an upcall or the end
    // of the environment, never into undefined behaviour here.
    unsafe { pointer.read_volatile() }
}

/// Writes the word at `address` in the managed window (8-byte aligned); faults if the page
/// is unmapped or read-only.
pub fn write_u64(address: u64, value: u64) {
    let pointer = checked_word_address(address);
    // SAFETY: as for `read_u64`.
    unsafe { pointer.write_volatile(value) }
}

/// Removes the page at `address` from `environment`: anywhere in another environment, only
/// in the managed window of the caller's own (or the kernel's window above
/// `USER_MAP_END`, where the kernel refuses it).
pub fn unmap(environment: Handle, address: u64) -> Result<(), Error> {
    refuse_own_page_outside_window(environment, address, "unmap");
    // SAFETY: checked just above: the page is another environment's, in the window, or in
    // the kernel's window above `USER_MAP_END`, where no Rust memory of ours lies.
    unsafe { user::unmap(environment, address) }
}

/// Changes the permissions of the page at `address` in `environment`, under the same rule
/// as [`unmap`].
pub fn protect(environment: Handle, address: u64, flags: MapFlags) -> Result<(), Error> {
    refuse_own_page_outside_window(environment, address, "re-protect");
    // SAFETY: checked just above.
    unsafe { user::protect(environment, address, flags) }
}

/// Drops `capability` and everything derived from it (with the pages mapped through them).
pub fn drop_capability(capability: Handle) -> Result<(), Error> {
    refuse_frames_backing_own_memory(capability, "drop")?;
    // SAFETY: no page of ours outside the window maps these frames (checked just above).
    unsafe { user::capability_drop(capability) }
}

/// Revokes everything derived from `capability` (with the pages mapped through them).
pub fn revoke_capability(capability: Handle) -> Result<(), Error> {
    refuse_frames_backing_own_memory(capability, "revoke")?;
    // SAFETY: as for `drop_capability`.
    unsafe { user::capability_revoke(capability) }
}

/// As [`revoke_capability`], and returns how many time-stamp counter cycles the system
/// call took (not counting the check of our own pages before it).
pub fn revoke_capability_timed(capability: Handle) -> Result<u64, Error> {
    refuse_frames_backing_own_memory(capability, "revoke")?;
    let start = user::tsc();
    // SAFETY: as for `drop_capability`.
    unsafe { user::capability_revoke(capability) }?;
    Ok(user::tsc() - start)
}

/// This environment's id.
pub fn own_id() -> Result<u64, Error> {
    user::environment_info(
        Handle::SELF_ENVIRONMENT,
        exo_abi::syscall::EnvironmentAccount::Id,
    )
}

fn refuse_own_page_outside_window(environment: Handle, address: u64, what: &str) {
    // From `USER_MAP_END` up the pages are the kernel's (start-info, facts, the page-table
    // view) or none at all: no Rust memory of ours, and a request there is refused.
    if is_managed(address) || address >= USER_MAP_END {
        return;
    }
    // An environment capability names its environment's id; the call itself reports a bad
    // handle, and with a bad handle it takes nothing away.
    let Ok(target) = user::capability_identify(environment) else {
        return;
    };
    let own = own_id().expect("an environment can always read its own id");
    assert!(
        target.kind != CapabilityKind::Environment || target.value != own,
        "refusing to {what} {address:#x}: own pages outside the managed window may hold Rust memory"
    );
}

/// Panics if a frame `capability` names backs one of our pages outside the managed window;
/// passes the lookup error on if `capability` names nothing.
fn refuse_frames_backing_own_memory(capability: Handle, what: &str) -> Result<(), Error> {
    let info = user::capability_identify(capability)?;
    if info.kind != CapabilityKind::Frame {
        return Ok(());
    }
    let start = info.value * PAGE_SIZE;
    let end = start + (PAGE_SIZE << info.order);
    if let Some(address) = own_page_outside_window_backed_by(start, end) {
        panic!(
            "refusing to {what} frame capability {capability:?}: its frames back page \
             {address:#x}, outside the managed window"
        );
    }
    Ok(())
}

/// The first page of ours outside the managed window that maps a frame in the physical
/// range `start..end`, from a walk of the page-table view.
fn own_page_outside_window_backed_by(start: u64, end: u64) -> Option<u64> {
    let overlaps = |entry: u64, size: u64| {
        let base = entry & entry::ADDRESS;
        base < end && start < base + size
    };
    // Descend only through entries that are present and user-accessible: the view reads a
    // table through the entry above it, and our memory is only under such entries.
    let walkable =
        |entry: u64| entry & (entry::PRESENT | entry::USER) == entry::PRESENT | entry::USER;
    for slot in 0..PAGE_TABLE_VIEW_SLOT {
        let region = slot << 39;
        if is_managed(region) || !walkable(read_view(page_table_entry_address(region, 4))) {
            continue;
        }
        for third in 0..512 {
            let gigabyte = region | third << 30;
            let pdpt_entry = read_view(page_table_entry_address(gigabyte, 3));
            if !walkable(pdpt_entry) {
                continue;
            }
            if pdpt_entry & HUGE_PAGE != 0 {
                if overlaps(pdpt_entry, 1 << 30) {
                    return Some(gigabyte);
                }
                continue;
            }
            for second in 0..512 {
                let two_megabytes = gigabyte | second << 21;
                let directory_entry = read_view(page_table_entry_address(two_megabytes, 2));
                if !walkable(directory_entry) {
                    continue;
                }
                if directory_entry & HUGE_PAGE != 0 {
                    if overlaps(directory_entry, 1 << 21) {
                        return Some(two_megabytes);
                    }
                    continue;
                }
                for first in 0..512 {
                    let page = two_megabytes | first << 12;
                    let table_entry = read_view(page_table_entry_address(page, 1));
                    if table_entry & entry::PRESENT != 0 && overlaps(table_entry, PAGE_SIZE) {
                        return Some(page);
                    }
                }
            }
        }
    }
    None
}

/// The page-table entry at `level` (4: the PML4's, down to 1: the page table's) on the
/// walk to user address `address`, read through the page-table view; `None` if an entry
/// above it is not present. At level 4 the address may be any `slot << 39`, the kernel
/// half's too: those entries name the tables every address space shares.
pub fn view_entry(address: u64, level: u32) -> Option<u64> {
    assert!((1..=4).contains(&level), "paging level {level}");
    assert!(
        level == 4 || address < exo_abi::layout::USER_END,
        "the view walks only the user half below the PML4"
    );
    for above in (level + 1..=4).rev() {
        if read_view(page_table_entry_address(address, above)) & entry::PRESENT == 0 {
            return None;
        }
    }
    Some(read_view(page_table_entry_address(address, level)))
}

fn read_view(address: u64) -> u64 {
    // SAFETY: the kernel maps the page-table view read-only into every environment; the
    // walk reads a table only through an entry above it that is present and user-accessible.
    unsafe { (address as *const u64).read_volatile() }
}
