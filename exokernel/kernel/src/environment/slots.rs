//! CPU slots as capabilities (`SlotAllocate`): a slot capability binds one
//! slot of the slice vector to an environment; the binding is checked once,
//! then each round the slot simply runs its owner. Slots are lent like
//! frames: the caller pays from its slot account until the slot is freed.

use exo_abi::syscall::ANY_SLOT;
use exo_abi::{Error, Handle, Rights};
use exo_kernel_core::slices::SlotError;

use super::{EnvironmentId, Object, System};

impl System {
    /// Binds slot `slot` (or any free one) to the environment `target` names;
    /// the capability goes into `caller`'s table, and the slot is charged to
    /// `caller`'s slot account while it is held (until the capability goes or
    /// its owner is destroyed): slots are lent like frames, so no
    /// environment takes more than its creator gave it.
    pub fn slot_allocate(
        &mut self,
        caller: EnvironmentId,
        target: Handle,
        slot: u64,
    ) -> Result<(Handle, u64), Error> {
        let owner = self.target_to_build_in(caller, target, Rights::CONTROL)?;
        let wanted = match slot {
            ANY_SLOT => None,
            index => Some(u32::try_from(index).map_err(|_| Error::InvalidArgument)?),
        };
        // Whether the slot is there to take first: with every slot held,
        // that is the answer even for an environment whose quota is spent.
        let id = self
            .slices
            .allocate(owner, caller, wanted)
            .map_err(|error| match error {
                SlotError::OutOfRange => Error::InvalidArgument,
                SlotError::Taken | SlotError::NoneFree => Error::SlotUnavailable,
            })?;
        if self.environment(caller).slots.charge(1).is_err() {
            self.slices.unallocate(id);
            return Err(Error::SlotQuotaExceeded);
        }
        let inserted = self.new_capability(caller, |capabilities| {
            capabilities.insert_root(caller, Object::Slot(id), Rights::SLOT)
        });
        match inserted {
            Ok(handle) => {
                self.environment(owner).slots_held += 1;
                Ok((handle, u64::from(id.index)))
            }
            Err(error) => {
                self.slices.unallocate(id);
                self.environment(caller).slots.uncharge(1);
                Err(error)
            }
        }
    }

    /// How many slots the slice vector has.
    pub fn slot_count(&self) -> u64 {
        self.slices.len() as u64
    }
}
