//! The slice vector: the CPU as a fixed round of time slots.
//!
//! Aegis (Engler et al., SOSP 1995) exposes the CPU as a vector of time
//! slices that environments own. Each timer tick ends one slot and starts
//! the next, round and round; an environment holding k of the N slots gets
//! k/N of the CPU however busy the others are. Which environment a free
//! slot (or an unused one) runs is the kernel's scheduling policy, not this
//! module's: it only records who owns which slot.
//!
//! Slots are named by index and generation, so a capability for a slot that
//! was freed (or whose owner was destroyed) cannot free the slot's next owner.

use alloc::vec::Vec;

use crate::caps::EnvironmentId;

/// A slot as a capability names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlotId {
    pub index: u32,
    pub generation: u32,
}

/// Why a slot could not be allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotError {
    /// No slot has that index.
    OutOfRange,
    /// The slot is held by an environment.
    Taken,
    /// Every slot is held.
    NoneFree,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    owner: Option<EnvironmentId>,
    /// Who allocated it, and is charged for it while it is held.
    payer: EnvironmentId,
    generation: u32,
}

/// Who owns each slot, and which slot is running.
#[derive(Debug)]
pub struct SliceVector {
    slots: Vec<Slot>,
    current: usize,
}

impl SliceVector {
    /// A vector with no slots; [`Self::resize`] gives it its length at boot.
    pub const fn empty() -> Self {
        Self {
            slots: Vec::new(),
            current: 0,
        }
    }

    /// Sets the number of slots (all free). Only before any is allocated.
    pub fn resize(&mut self, count: usize) {
        assert!(count > 0, "the slice vector needs at least one slot");
        assert!(
            self.slots.iter().all(|slot| slot.owner.is_none()),
            "slots are held"
        );
        self.slots = alloc::vec![
            Slot {
                owner: None,
                payer: EnvironmentId(0),
                generation: 0,
            };
            count
        ];
        self.current = 0;
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Gives `owner` slot `wanted`, or the lowest free slot, charged to `payer`.
    pub fn allocate(
        &mut self,
        owner: EnvironmentId,
        payer: EnvironmentId,
        wanted: Option<u32>,
    ) -> Result<SlotId, SlotError> {
        let index = match wanted {
            Some(index) => {
                let slot = self
                    .slots
                    .get(index as usize)
                    .ok_or(SlotError::OutOfRange)?;
                if slot.owner.is_some() {
                    return Err(SlotError::Taken);
                }
                index as usize
            }
            None => self
                .slots
                .iter()
                .position(|slot| slot.owner.is_none())
                .ok_or(SlotError::NoneFree)?,
        };
        let slot = &mut self.slots[index];
        slot.owner = Some(owner);
        slot.payer = payer;
        Ok(SlotId {
            index: index as u32,
            generation: slot.generation,
        })
    }

    /// Frees the slot `id` names and returns who held it and who paid for
    /// it; `None` if it was already freed since.
    pub fn free(&mut self, id: SlotId) -> Option<(EnvironmentId, EnvironmentId)> {
        match self.slots.get_mut(id.index as usize) {
            Some(slot) if slot.generation == id.generation && slot.owner.is_some() => {
                slot.generation = slot.generation.wrapping_add(1);
                slot.owner.take().map(|owner| (owner, slot.payer))
            }
            _ => None,
        }
    }

    /// Undoes the allocation of `id`, which nothing has named yet (its
    /// caller could not pay, or had no room for its capability): the slot is
    /// free again at the same generation. Freed instead, each refused
    /// `SlotAllocate` moved the generation on, for nothing: 2^32 of them
    /// would bring it back round to a stale capability's.
    pub fn unallocate(&mut self, id: SlotId) {
        if let Some(slot) = self.slots.get_mut(id.index as usize)
            && slot.generation == id.generation
        {
            slot.owner = None;
        }
    }

    /// Frees every slot `owner` holds, handing each one's payer to
    /// `released`; returns how many.
    pub fn release_all(
        &mut self,
        owner: EnvironmentId,
        mut released_by: impl FnMut(EnvironmentId),
    ) -> usize {
        let mut released = 0;
        for slot in self
            .slots
            .iter_mut()
            .filter(|slot| slot.owner == Some(owner))
        {
            slot.owner = None;
            slot.generation = slot.generation.wrapping_add(1);
            released_by(slot.payer);
            released += 1;
        }
        released
    }

    /// The owner of slot `index`.
    pub fn owner(&self, index: usize) -> Option<EnvironmentId> {
        self.slots.get(index).and_then(|slot| slot.owner)
    }

    /// How many slots `owner` holds.
    pub fn held_by(&self, owner: EnvironmentId) -> usize {
        self.slots
            .iter()
            .filter(|slot| slot.owner == Some(owner))
            .count()
    }

    /// The running slot.
    pub fn current(&self) -> usize {
        self.current
    }

    /// Ends the running slot and starts the next; returns its index.
    pub fn advance(&mut self) -> usize {
        self.current = (self.current + 1) % self.slots.len();
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const A: EnvironmentId = EnvironmentId(1);
    const B: EnvironmentId = EnvironmentId(2);
    const C: EnvironmentId = EnvironmentId(3);

    #[test]
    fn shares_follow_holdings_exactly() {
        let mut vector = SliceVector::empty();
        vector.resize(64);
        for (owner, count) in [(A, 1), (B, 2), (C, 4)] {
            for _ in 0..count {
                vector.allocate(owner, owner, None).unwrap();
            }
        }
        let mut runs: HashMap<Option<EnvironmentId>, usize> = HashMap::new();
        for _ in 0..64 * 100 {
            let slot = vector.advance();
            *runs.entry(vector.owner(slot)).or_default() += 1;
        }
        assert_eq!(runs[&Some(A)], 100);
        assert_eq!(runs[&Some(B)], 200);
        assert_eq!(runs[&Some(C)], 400);
        assert_eq!(runs[&None], 57 * 100);
    }

    #[test]
    fn specific_slots_and_refusals() {
        let mut vector = SliceVector::empty();
        vector.resize(4);
        let slot = vector.allocate(A, A, Some(2)).unwrap();
        assert_eq!(slot.index, 2);
        assert_eq!(vector.allocate(B, B, Some(2)), Err(SlotError::Taken));
        assert_eq!(vector.allocate(B, B, Some(4)), Err(SlotError::OutOfRange));
        for _ in 0..3 {
            vector.allocate(B, B, None).unwrap();
        }
        assert_eq!(vector.allocate(C, C, None), Err(SlotError::NoneFree));
        assert_eq!(vector.held_by(B), 3);
    }

    #[test]
    fn stale_slot_ids_free_nothing() {
        let mut vector = SliceVector::empty();
        vector.resize(2);
        let first = vector.allocate(A, A, Some(0)).unwrap();
        assert_eq!(vector.free(first), Some((A, A)));
        assert_eq!(vector.free(first), None, "double free");
        let second = vector.allocate(B, B, Some(0)).unwrap();
        assert_ne!(first, second);
        assert_eq!(
            vector.free(first),
            None,
            "an old id must not free the new owner's slot"
        );
        assert_eq!(vector.owner(0), Some(B));
        assert_eq!(vector.release_all(B, |_| {}), 1);
        assert_eq!(vector.free(second), None, "released with its owner");
        assert_eq!(vector.owner(0), None);
    }

    #[test]
    fn an_allocation_undone_leaves_the_generation_where_it_was() {
        let mut vector = SliceVector::empty();
        vector.resize(1);
        let first = vector.allocate(A, A, Some(0)).unwrap();
        assert_eq!(vector.free(first), Some((A, A)));
        // Refused a million times (no quota, no room): the slot is free, and a stale
        // id of it stays stale however often that happens.
        for _ in 0..1_000_000 {
            let id = vector.allocate(B, B, Some(0)).unwrap();
            vector.unallocate(id);
        }
        assert_eq!(vector.owner(0), None);
        let second = vector.allocate(C, C, Some(0)).unwrap();
        assert_eq!(second.generation, first.generation + 1);
        assert_eq!(vector.free(first), None);
    }

    #[test]
    fn the_round_wraps() {
        let mut vector = SliceVector::empty();
        vector.resize(3);
        assert_eq!(
            [vector.advance(), vector.advance(), vector.advance()],
            [1, 2, 0]
        );
    }
}
