//! The virtual address space, as both sides see it.
//!
//! x86_64 with 4-level paging has 48-bit virtual addresses: the lower half
//! (`0` to `USER_END`) belongs to the environment, the upper half to the
//! kernel. Every environment's page tables share the kernel half.

/// Size of a page and of a physical frame, in bytes.
pub const PAGE_SIZE: u64 = 4096;

/// The first address past the lower (user) half: user mappings lie below it.
pub const USER_END: u64 = 0x0000_8000_0000_0000;

/// The first address of the upper (kernel) half.
pub const KERNEL_HALF_START: u64 = 0xffff_8000_0000_0000;

/// The first address past what an environment may map itself: the top 1 TiB
/// of the user half (PML4 slots 254 and 255) is the kernel's window into it.
pub const USER_MAP_END: u64 = 0x0000_7f00_0000_0000;

/// The start-info page the kernel maps read-only into the first environment
/// (`crate::start_info::StartInfo`).
pub const START_INFO: u64 = 0x0000_7f00_0000_0000;

/// The facts page: read-only, in every environment, kept current by the
/// kernel (`crate::facts::Facts`): time, slot, counters, its own id.
pub const FACTS: u64 = 0x0000_7f00_0000_1000;

/// Where the kernel maps the boot file system (`crate::bootfs`) read-only in
/// the first environment: frames it owns, like any others.
pub const BOOTFS: u64 = 0x0000_7e00_0000_0000;

/// Where the first environment's stack ends (it grows down from here).
pub const INITIAL_STACK_TOP: u64 = 0x0000_7000_0000_0000;
/// Pages of stack the kernel gives the first environment.
pub const INITIAL_STACK_PAGES: u64 = 16;

/// The PML4 slot that points back at the PML4 itself, read-only and
/// user-accessible: through it an environment reads its own page tables.
pub const PAGE_TABLE_VIEW_SLOT: u64 = 255;
/// Where the page-table view starts (PML4 slot 255).
pub const PAGE_TABLE_VIEW: u64 = PAGE_TABLE_VIEW_SLOT << 39;

/// Segment selectors for user code and data (ring 3), for `iretq` frames
/// built by user code when it resumes after an upcall.
pub const USER_CODE_SELECTOR: u16 = 0x20 | 3;
pub const USER_DATA_SELECTOR: u16 = 0x18 | 3;

/// The address, in the page-table view, of the entry that maps user address
/// `address` at `level` (1 = page table entry, 2 = page directory entry,
/// 3 = PDPT entry, 4 = PML4 entry). The entry can be read only if the
/// entries above it are present.
pub const fn page_table_entry_address(address: u64, level: u32) -> u64 {
    let slot = PAGE_TABLE_VIEW_SLOT;
    // Each level of recursion replaces one level of the walk with the PML4
    // itself: the prefix repeats the slot `level` times.
    let mut prefix = 0;
    let mut index = 0;
    while index < level {
        prefix |= slot << (39 - 9 * index);
        index += 1;
    }
    // What remains is the entry's index in its table walk, times 8 bytes,
    // in the low `39 - 9 * (level - 1)` bits.
    let offset_bits = 39 - 9 * (level as u64 - 1);
    let offset = (address >> (9 * level as u64)) & !7;
    prefix | (offset & ((1 << offset_bits) - 1))
}

/// Whether `address` is canonical: bits 63..47 all equal.
pub const fn is_canonical(address: u64) -> bool {
    address < USER_END || address >= KERNEL_HALF_START
}

/// Whether the `length`-byte range at `address` lies wholly in the user half.
pub const fn is_user_range(address: u64, length: u64) -> bool {
    match address.checked_add(length) {
        Some(end) => end <= USER_END,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_addresses() {
        assert!(is_canonical(0));
        assert!(is_canonical(USER_END - 1));
        assert!(!is_canonical(USER_END));
        assert!(!is_canonical(KERNEL_HALF_START - 1));
        assert!(is_canonical(KERNEL_HALF_START));
        assert!(is_canonical(u64::MAX));
    }

    #[test]
    fn page_table_view_addresses() {
        // The PML4 itself appears at slot 255 repeated four times.
        assert_eq!(page_table_entry_address(0, 4), 0x7fbf_dfef_f000);
        // The entry for user address 0x40_1000 at level 1: index 0x401 in the view.
        assert_eq!(
            page_table_entry_address(0x40_1000, 1),
            PAGE_TABLE_VIEW + 0x401 * 8
        );
        // The last user page's PML4 entry is entry 255 of the PML4.
        assert_eq!(
            page_table_entry_address(USER_END - 1, 4),
            0x7fbf_dfef_f000 + 255 * 8
        );
        // Level 2 for 0x20_0000 (2 MiB): page directory entry 1 of the first table.
        assert_eq!(
            page_table_entry_address(0x20_0000, 2),
            PAGE_TABLE_VIEW + (255 << 30) + 8
        );
        for level in 1..=4 {
            assert!(page_table_entry_address(0x1234_5678_9000, level) >= PAGE_TABLE_VIEW);
            assert!(page_table_entry_address(0x1234_5678_9000, level) < USER_END);
        }
    }

    #[test]
    fn user_ranges() {
        assert!(is_user_range(0x1000, PAGE_SIZE));
        assert!(is_user_range(USER_END - PAGE_SIZE, PAGE_SIZE));
        assert!(!is_user_range(USER_END - PAGE_SIZE, PAGE_SIZE + 1));
        assert!(!is_user_range(KERNEL_HALF_START, 1));
        assert!(
            !is_user_range(u64::MAX, 2),
            "wrap-around is not a user range"
        );
    }
}
