//! An environment's accounts: how much of a resource it may use, and how much
//! is charged to it now.
//!
//! Frames, bytes of kernel memory and CPU slots are all lent the same way
//! (Engler et al.'s "whoever asks, pays", DESIGN.md §1.6): a creator lends a
//! child part of its own limit, which stays charged to the creator until the
//! child is gone; the child is charged for what it uses within that limit.
//! Because every limit below the first environment's is carved out of its
//! creator's, the limits never promise more than the kernel has.
//!
//! This module only counts. It never allocates, and it never lets a charge
//! pass its limit or an uncharge go below zero (a mismatched uncharge would
//! be a kernel bug; it saturates rather than bring the kernel down).

/// The largest capability object the kernel stores (its `Object`); the
/// kernel checks its own against this at compile time.
pub const MAX_OBJECT_SIZE: usize = 32;

/// Kernel bytes one capability costs: its node's block of the heap, and the
/// chunk of the mapping index's side table it may keep (its slot in a table
/// is charged with the table's growth, the arena entry that indexes it is
/// the kernel's own); `tests/kernel_memory_costs.rs` measures it. Part of
/// the ABI, so a library OS can plan.
pub use exo_abi::syscall::CAPABILITY_BYTES;

// A capability's charge holds its node's block and a side-table chunk.
const _: () = assert!(
    crate::caps::NODE_BLOCK_BYTES + crate::mappings::CHUNK_BYTES <= CAPABILITY_BYTES as usize
);

/// Kernel bytes one mapped page's records cost: an entry in each direction
/// of the mapping index, in B-tree nodes that may be only half full and are
/// rounded to a power of two by the heap's buddy allocator;
/// `tests/kernel_memory_costs.rs` measures it.
pub use exo_abi::syscall::MAPPING_RECORD_BYTES;

/// One resource's account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Account {
    limit: u64,
    charged: u64,
}

/// A charge that would pass the limit: nothing was charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exceeded;

impl Account {
    /// An account that may be charged up to `limit`, charged nothing yet.
    pub const fn with_limit(limit: u64) -> Self {
        Self { limit, charged: 0 }
    }

    /// How much may be charged in all.
    pub const fn limit(&self) -> u64 {
        self.limit
    }

    /// How much is charged now.
    pub const fn charged(&self) -> u64 {
        self.charged
    }

    /// How much may still be charged.
    pub const fn available(&self) -> u64 {
        self.limit.saturating_sub(self.charged)
    }

    /// Charges `amount`, or nothing if that would pass the limit.
    pub fn charge(&mut self, amount: u64) -> Result<(), Exceeded> {
        if amount > self.available() {
            return Err(Exceeded);
        }
        self.charged += amount;
        Ok(())
    }

    /// Gives back `amount` charged earlier.
    pub fn uncharge(&mut self, amount: u64) {
        self.charged = self.charged.saturating_sub(amount);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_stop_at_the_limit_and_change_nothing_when_refused() {
        let mut account = Account::with_limit(10);
        assert_eq!(account.charge(4), Ok(()));
        assert_eq!(account.charge(7), Err(Exceeded));
        assert_eq!(account.charged(), 4);
        assert_eq!(account.charge(6), Ok(()));
        assert_eq!(account.available(), 0);
        assert_eq!(account.charge(1), Err(Exceeded));
        account.uncharge(10);
        assert_eq!(account.charged(), 0);
        assert_eq!(account.available(), 10);
    }

    #[test]
    fn a_zero_charge_always_passes() {
        let mut account = Account::with_limit(0);
        assert_eq!(account.charge(0), Ok(()));
        assert_eq!(account.charge(1), Err(Exceeded));
    }

    #[test]
    fn huge_charges_do_not_overflow() {
        let mut account = Account::with_limit(u64::MAX);
        assert_eq!(account.charge(u64::MAX - 1), Ok(()));
        assert_eq!(account.charge(u64::MAX), Err(Exceeded));
        assert_eq!(account.charge(1), Ok(()));
    }
}
