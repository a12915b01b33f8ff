//! This process's own page tables, read through the kernel's read-only view
//! (chapter 2.4): which pages are mapped, found without a system call.
//!
//! It only reads; it never maps, allocates or takes a lock, so `exec` can
//! list its pages with it while it must not allocate.

use exo_abi::layout::{PAGE_TABLE_VIEW_SLOT, USER_MAP_END, page_table_entry_address};
use exo_abi::user::entry;

use crate::raw;

/// Calls `found` with the address of every page mapped in this process
/// below `USER_MAP_END` (the kernel's own windows, the start-info page and
/// the view itself, lie above), in address order.
pub(crate) fn for_each_mapped_page(mut found: impl FnMut(u64)) {
    let present = |address: u64, level: u32| {
        raw::read_table_entry(page_table_entry_address(address, level)) & entry::PRESENT != 0
    };
    for pml4 in 0..PAGE_TABLE_VIEW_SLOT {
        let top = pml4 << 39;
        if top >= USER_MAP_END || !present(top, 4) {
            continue;
        }
        for pdpt in 0..512u64 {
            let middle = top | pdpt << 30;
            if !present(middle, 3) {
                continue;
            }
            for directory in 0..512u64 {
                let low = middle | directory << 21;
                if !present(low, 2) {
                    continue;
                }
                for table in 0..512u64 {
                    let page = low | table << 12;
                    if present(page, 1) {
                        found(page);
                    }
                }
            }
        }
    }
}

/// How many pages this process has mapped (each one a mapping record the
/// kernel keeps for it), below `USER_MAP_END`.
pub fn mapped_pages() -> u64 {
    let mut count = 0;
    for_each_mapped_page(|_| count += 1);
    count
}
