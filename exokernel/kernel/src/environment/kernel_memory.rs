//! Who pays for kernel memory: what each kernel object costs, and the one
//! way an operation charges for it.
//!
//! Every kernel allocation whose number a user request controls is charged,
//! in bytes, to an environment's kernel-memory account (DESIGN.md §1.6):
//!
//! | object | paid by | bytes |
//! |---|---|---|
//! | an environment's record, its place in the maps of environments and of tables, facts bookkeeping and timer | the environment itself, at creation | `ENVIRONMENT_BYTES` |
//! | a capability (its node's block, and the side-table chunk a run through it may keep) | the environment whose table holds it | `CAPABILITY_BYTES` |
//! | a mapping record (one mapped page, both index directions) | the environment the page is mapped in | `MAPPING_RECORD_BYTES` |
//! | a claimed address, a filter | the environment that made it | `net::NETWORK_OBJECT_BYTES`, and a capability |
//! | a binding | the environment that made it | `net::BINDING_BYTES`, and a capability |
//! | a child's allowance | the creator, until the child is gone | what it lent |
//!
//! A child's allowance is lent out of its creator's, like frames, so the
//! allowances together never exceed the first environment's, which is the
//! heap less its reserve (`memory::heap`). The costs are upper bounds of
//! what the kernel's B-trees and arenas spend per entry, with nodes half
//! full and the buddy allocator's rounding to a power of two; kernel-core's
//! `tests/kernel_memory_costs.rs` measures the capability and mapping-record
//! figures. Per-call buffers are on the kernel stack, never on the heap, and
//! teardown frees without allocating.

use exo_abi::Error;
use exo_abi::Handle;
use exo_kernel_core::caps::{CapabilitySpace, SLOT_BYTES};

use super::{Environment, EnvironmentId, Object, System};
use crate::memory::heap;

/// An environment's own record: its boxed record, one block of the buddy
/// heap (the record's size rounded up to a power of two), its entries in
/// the environments' B-tree and in the capability space's map of tables,
/// with room for half-full nodes and rounding (4x each), and the one timer
/// and one revocation deadline it may have armed (each an entry of a
/// `Timers`).
pub const ENVIRONMENT_BYTES: u64 = (size_of::<Environment>().next_power_of_two()
    + 4 * size_of::<(EnvironmentId, alloc::boxed::Box<Environment>)>()
    + exo_kernel_core::caps::TABLE_PLACE_BYTES) as u64
    + 2 * exo_kernel_core::timers::TIMER_BYTES;

// A quota of 5 frames (the fewest a new environment needs: its page tables
// and facts page, 2.4) comes with a default allowance that pays for its own
// record, its capability in slot 0 and its table's first growth.
const _: () = assert!(
    ENVIRONMENT_BYTES + CAPABILITY_BYTES + exo_abi::syscall::TABLE_GROWTH_BYTES
        <= exo_abi::syscall::default_kernel_bytes(5)
);

pub use exo_kernel_core::accounts::{CAPABILITY_BYTES, MAPPING_RECORD_BYTES};

// The capability charge was measured for objects up to this size.
const _: () = assert!(size_of::<Object>() <= exo_kernel_core::accounts::MAX_OBJECT_SIZE);

impl System {
    /// Charges `bytes` to `payer`'s kernel-memory account.
    pub(super) fn charge_kernel(&mut self, payer: EnvironmentId, bytes: u64) -> Result<(), Error> {
        self.environment(payer).charge_kernel(bytes)
    }

    /// Charges `bytes` to `payer` if it exists yet (the first environment
    /// pays nothing for what is made before its record).
    pub(super) fn charge_kernel_if_exists(
        &mut self,
        payer: EnvironmentId,
        bytes: u64,
    ) -> Result<(), Error> {
        match self.environments.get_mut(&payer) {
            Some(environment) => environment.charge_kernel(bytes),
            None => Ok(()),
        }
    }

    /// Gives `bytes` back to `payer`'s account, if it still exists (a
    /// destroyed environment's account goes with it).
    pub(super) fn uncharge_kernel(&mut self, payer: EnvironmentId, bytes: u64) {
        if let Some(environment) = self.environments.get_mut(&payer) {
            environment.kernel_bytes.uncharge(bytes);
        }
    }

    /// What one more capability in `owner`'s table costs it: the capability,
    /// and the table's growth if it is full. The growth stays charged until
    /// the table goes: slots are never given back to the heap before that.
    pub(super) fn capability_cost(&self, owner: EnvironmentId) -> u64 {
        let growth = u64::from(self.capabilities.growth_on_insert(owner));
        CAPABILITY_BYTES + growth * SLOT_BYTES as u64
    }

    /// Allocates, once at boot, the capability arena whole, and the list of
    /// the mapping index's side table, for as many capabilities as the
    /// accounts could pay for at once, and grows the heap by what they took:
    /// they are the kernel's own, not a charge, and the reserve stays whole
    /// for what it is for. Neither grows or shrinks afterwards. (An arena
    /// that grew with the most capabilities ever held at once kept their
    /// entries when they went, charged to nobody: chapter 2.7.) Returns the
    /// bytes they took.
    pub(super) fn reserve_capability_arena(&mut self) -> usize {
        let promised = heap::promised() as u64;
        let capabilities = u32::try_from(promised / CAPABILITY_BYTES).unwrap_or(u32::MAX);
        let before = heap::used_bytes();
        self.capabilities
            .reserve(capabilities)
            .expect("the heap holds the capability arena");
        self.mappings
            .reserve(capabilities)
            .expect("the heap holds the mapping index's list");
        let taken = heap::used_bytes() - before;
        let added = heap::grow(taken);
        assert!(added >= taken, "frames for the capability arena");
        taken
    }

    /// Puts one new capability into `owner`'s table with `insert`, charged
    /// to `owner`; nothing is charged if `insert` fails. `InvalidState` if
    /// `owner` is being taken down (`teardown.rs`): a grant or a call's
    /// capability makes nothing in a table a teardown has begun to empty.
    pub(super) fn new_capability(
        &mut self,
        owner: EnvironmentId,
        insert: impl FnOnce(&mut CapabilitySpace<Object>) -> Result<Handle, Error>,
    ) -> Result<Handle, Error> {
        if self.being_taken_down(owner) {
            return Err(Error::InvalidState);
        }
        let bytes = self.capability_cost(owner);
        self.charge_kernel(owner, bytes)?;
        insert(&mut self.capabilities).inspect_err(|_| {
            self.uncharge_kernel(owner, bytes);
        })
    }
}

impl Environment {
    /// Returns one capability's charge: it left this environment's table.
    pub(super) fn capability_removed(&mut self) {
        self.kernel_bytes.uncharge(CAPABILITY_BYTES);
    }
}
