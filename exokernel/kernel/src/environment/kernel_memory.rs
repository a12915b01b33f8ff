//! Who pays for kernel memory: what each kernel object costs, and the one
//! way an operation charges for it.
//!
//! Every kernel allocation whose number a user request controls is charged,
//! in bytes, to an environment's kernel-memory account (DESIGN.md §1.6):
//!
//! | object | paid by | bytes |
//! |---|---|---|
//! | an environment's record and facts bookkeeping | the environment itself, at creation | `ENVIRONMENT_BYTES` |
//! | a capability (tree node and table slot) | the environment whose table holds it | `CAPABILITY_BYTES` |
//! | a mapping record (one mapped page, both index directions) | the environment the page is mapped in | `MAPPING_RECORD_BYTES` |
//! | a claimed address, a binding, a filter | the environment that made it | `net::NETWORK_OBJECT_BYTES`, and a capability |
//! | a child's allowance | the creator, until the child is gone | what it lent |
//!
//! A child's allowance is lent out of its creator's, like frames, so the
//! allowances together never exceed the first environment's, which is the
//! heap less its reserve (`memory::heap`). The costs are upper bounds of
//! what the kernel's B-trees and arenas spend per entry: twice the entry's
//! size, for nodes at least half full, and twice again for the buddy
//! allocator's rounding to a power of two. Per-call buffers are on the
//! kernel stack, never on the heap, and teardown frees without allocating.

use exo_abi::Error;
use exo_abi::Handle;
use exo_kernel_core::caps::CapabilitySpace;

use super::{Environment, EnvironmentId, Object, System};

/// The bytes one B-tree or arena entry of `size` bytes may cost (see above).
const fn entry_cost(size: usize) -> u64 {
    (4 * size) as u64
}

/// An environment's own record.
pub const ENVIRONMENT_BYTES: u64 = entry_cost(size_of::<Environment>() + 8);
/// One capability: a node in the arena and a slot in a table.
pub const CAPABILITY_BYTES: u64 = entry_cost(size_of::<Object>() + 64) + 2 * 16;
/// One mapped page's records: (environment, page) → capability, and back.
pub const MAPPING_RECORD_BYTES: u64 = 2 * entry_cost(24);

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

    /// Puts one new capability into `owner`'s table with `insert`, charged
    /// to `owner`; nothing is charged if `insert` fails.
    pub(super) fn new_capability(
        &mut self,
        owner: EnvironmentId,
        insert: impl FnOnce(&mut CapabilitySpace<Object>) -> Result<Handle, Error>,
    ) -> Result<Handle, Error> {
        // Table growth stays charged until the table goes: slots are never
        // given back to the heap before that.
        let bytes = CAPABILITY_BYTES + self.table_growth(owner);
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
