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
