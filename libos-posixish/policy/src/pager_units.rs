//! What the pager holds: one record per frame capability it maps, the
//! *unit* of mapping, sharing and copying. Pure bookkeeping, tested on the
//! host; libos-posixish's pager and `fork` use it.
//!
//! A unit is a run of `2^order` frames (one page, or the pager's 64 KiB run)
//! named by one capability and mapped at one address. Sharing with a forked
//! child is per unit, because the kernel maps a capability's run whole: a
//! write to any page of a shared run copies the run.
//!
//! The table is indexed by the capability's slot in this environment's
//! table (1024 slots), so recording a new unit never searches and never
//! allocates. Each slot is 16 bytes: the slot's index is the handle's, so
//! only the generation is kept beside the address and the counts. Its slots
//! live in a [`Storage`] that grows as higher slots are used: the library OS
//! maps pages of its own for it, private to the process and never touched by
//! the heap, so the fault handler can always write it, and a program pays
//! for the slots its capabilities reach (a page holds 256), not for 16 KiB
//! in every program's `.bss`. The host tests keep it in a `Vec`.

use exo_abi::Handle;
use exo_abi::layout::PAGE_SIZE;

/// One unit per slot of the capability table.
pub const MAX_UNITS: usize = exo_abi::handle::TABLE_CAPACITY as usize;

/// `Unit::flags` bits.
pub mod flags {
    /// Mapped at `address` in this process. A unit that is not is kept
    /// only because children hold capabilities derived from it.
    pub const MAPPED: u8 = 1 << 0;
    /// Mapped read-only because another process shares the frames: a
    /// write fault copies it (or, if no one else can hold it, unprotects it).
    pub const COPY_ON_WRITE: u8 = 1 << 1;
    /// The capability derives from the parent's, who may still map the frames.
    pub const INHERITED: u8 = 1 << 2;
    /// A read-only page of the program image: shared as it is, never copied.
    pub const IMAGE: u8 = 1 << 3;
    /// Mapped executable (image text).
    pub const EXECUTE: u8 = 1 << 4;
}

/// One capability the pager maps, and who else may use its frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unit {
    pub handle: Handle,
    pub address: u64,
    pub order: u8,
    pub flags: u8,
    /// Live children given a capability derived from this one.
    pub children: u16,
}

impl Unit {
    pub fn pages(&self) -> u64 {
        1 << self.order
    }

    pub fn bytes(&self) -> u64 {
        PAGE_SIZE << self.order
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    pub fn contains(&self, address: u64) -> bool {
        (self.address..self.address + self.bytes()).contains(&address)
    }

    /// The addresses of its pages.
    pub fn page_addresses(&self) -> impl Iterator<Item = u64> {
        let address = self.address;
        (0..self.pages()).map(move |page| address + page * PAGE_SIZE)
    }
}

/// A unit as the table keeps it. Empty when `flags` lacks [`OCCUPIED`].
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    address: u64,
    generation: u32,
    order: u8,
    flags: u8,
    children: u16,
}

/// `Slot::flags` bit of a slot that holds a unit (above the public [`flags`]).
const OCCUPIED: u8 = 1 << 7;

impl Slot {
    const EMPTY: Slot = Slot {
        address: 0,
        generation: 0,
        order: 0,
        flags: 0,
        children: 0,
    };

    fn of(unit: &Unit) -> Slot {
        Slot {
            address: unit.address,
            generation: unit.handle.generation(),
            order: unit.order,
            flags: unit.flags | OCCUPIED,
            children: unit.children,
        }
    }

    /// The unit in slot `index`, if there is one.
    fn unit(&self, index: usize) -> Option<Unit> {
        (self.flags & OCCUPIED != 0).then(|| Unit {
            handle: Handle::new(index as u32, self.generation),
            address: self.address,
            order: self.order,
            flags: self.flags & !OCCUPIED,
            children: self.children,
        })
    }
}

/// A unit of the table to change in place: what it dereferences to is
/// written back to its slot when it is dropped. Its handle must not change.
#[derive(Debug)]
pub struct UnitMut<'a> {
    slot: &'a mut Slot,
    unit: Unit,
}

impl core::ops::Deref for UnitMut<'_> {
    type Target = Unit;

    fn deref(&self) -> &Unit {
        &self.unit
    }
}

impl core::ops::DerefMut for UnitMut<'_> {
    fn deref_mut(&mut self) -> &mut Unit {
        &mut self.unit
    }
}

impl Drop for UnitMut<'_> {
    fn drop(&mut self) {
        *self.slot = Slot::of(&self.unit);
    }
}

/// Where a table's slots live: memory that grows on request. What a slot
/// holds when it first appears does not matter: the table empties it.
pub trait Storage {
    /// The slots there are now.
    fn slots(&self) -> &[Slot];
    fn slots_mut(&mut self) -> &mut [Slot];
    /// Makes at least the first `count` slots exist (keeping those there
    /// are); false if it cannot.
    fn grow_to(&mut self, count: usize) -> bool;
    /// Gives every slot up, without reading or writing them.
    fn forget(&mut self);
}

/// The units of this process, by capability slot.
#[derive(Debug)]
pub struct Units<S> {
    storage: S,
}

impl<S: Storage> Units<S> {
    pub const fn new(storage: S) -> Self {
        Self { storage }
    }

    /// Makes sure the table has a slot for `handle`, growing it if need be;
    /// false if the slot is beyond the table or the storage cannot grow.
    /// Call it before mapping a capability, so that recording it cannot fail.
    pub fn make_room(&mut self, handle: Handle) -> bool {
        let needed = handle.index() as usize + 1;
        let had = self.storage.slots().len();
        if needed <= had {
            return true;
        }
        if needed > MAX_UNITS || !self.storage.grow_to(needed) {
            return false;
        }
        self.storage.slots_mut()[had..].fill(Slot::EMPTY);
        true
    }

    /// Records `unit`; false if there is no room for it ([`Units::make_room`]).
    pub fn insert(&mut self, unit: Unit) -> bool {
        debug_assert_eq!(unit.flags & OCCUPIED, 0, "not a unit flag");
        if !self.make_room(unit.handle) {
            return false;
        }
        self.storage.slots_mut()[unit.handle.index() as usize] = Slot::of(&unit);
        true
    }

    pub fn get_mut(&mut self, handle: Handle) -> Option<UnitMut<'_>> {
        let slot = self.storage.slots_mut().get_mut(handle.index() as usize)?;
        let unit = slot
            .unit(handle.index() as usize)
            .filter(|unit| unit.handle == handle)?;
        Some(UnitMut { slot, unit })
    }

    pub fn remove(&mut self, handle: Handle) -> Option<Unit> {
        let slot = self.storage.slots_mut().get_mut(handle.index() as usize)?;
        let unit = slot
            .unit(handle.index() as usize)
            .filter(|unit| unit.handle == handle)?;
        *slot = Slot::EMPTY;
        Some(unit)
    }

    /// The unit mapped over `address`, if any.
    pub fn mapped_at(&self, address: u64) -> Option<Unit> {
        self.iter()
            .find(|unit| unit.has(flags::MAPPED) && unit.contains(address))
    }

    pub fn iter(&self) -> impl Iterator<Item = Unit> + '_ {
        self.storage
            .slots()
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| slot.unit(index))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = UnitMut<'_>> {
        self.storage
            .slots_mut()
            .iter_mut()
            .enumerate()
            .filter_map(|(index, slot)| {
                let unit = slot.unit(index)?;
                Some(UnitMut { slot, unit })
            })
    }

    pub fn count(&self) -> usize {
        self.storage
            .slots()
            .iter()
            .filter(|slot| slot.flags & OCCUPIED != 0)
            .count()
    }

    /// Forgets every unit and gives the storage up (a forked child, whose
    /// copy of the table names its parent's capabilities and pages, starts
    /// again from its handover).
    pub fn clear(&mut self) {
        self.storage.forget();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slots in a 4 KiB page, the step the library OS's storage grows by.
    const SLOTS_PER_PAGE: usize = 256;

    /// Storage that grows a page at a time, as the library OS's does, and
    /// whose new slots hold garbage that looks like a unit: the table must
    /// empty them. `limit`: the most slots it can give.
    #[derive(Debug)]
    struct Pages {
        slots: Vec<Slot>,
        limit: usize,
    }

    impl Storage for Pages {
        fn slots(&self) -> &[Slot] {
            &self.slots
        }

        fn slots_mut(&mut self) -> &mut [Slot] {
            &mut self.slots
        }

        fn grow_to(&mut self, count: usize) -> bool {
            let count = count.next_multiple_of(SLOTS_PER_PAGE);
            if count > self.limit {
                return false;
            }
            let garbage = Slot {
                address: 0xdead_0000,
                generation: 1,
                order: 0,
                flags: OCCUPIED | flags::MAPPED,
                children: 0,
            };
            self.slots.resize(count, garbage);
            true
        }

        fn forget(&mut self) {
            self.slots.clear();
        }
    }

    fn new_units() -> Units<Pages> {
        Units::new(Pages {
            slots: Vec::new(),
            limit: MAX_UNITS,
        })
    }

    fn unit(index: u32, generation: u32, address: u64, order: u8, unit_flags: u8) -> Unit {
        Unit {
            handle: Handle::new(index, generation),
            address,
            order,
            flags: unit_flags,
            children: 0,
        }
    }

    #[test]
    fn a_unit_covers_its_run_of_pages() {
        let run = unit(3, 1, 0x10_0000, 4, flags::MAPPED);
        assert_eq!(run.pages(), 16);
        assert!(run.contains(0x10_0000 + 16 * PAGE_SIZE - 1));
        assert!(!run.contains(0x10_0000 + 16 * PAGE_SIZE));
        assert_eq!(run.page_addresses().nth(2), Some(0x10_0000 + 2 * PAGE_SIZE));
    }

    #[test]
    fn units_are_found_by_handle_and_by_mapped_address() {
        let mut units = new_units();
        assert!(units.insert(unit(3, 1, 0x10_0000, 0, flags::MAPPED)));
        assert!(units.insert(unit(4, 1, 0x20_0000, 0, 0)));
        assert_eq!(units.count(), 2);
        assert_eq!(
            units.mapped_at(0x10_0010).unwrap().handle,
            Handle::new(3, 1)
        );
        // Kept for its children, not mapped: no address finds it.
        assert_eq!(units.mapped_at(0x20_0000), None);
        // A stale handle (another generation in the same slot) finds nothing.
        assert!(units.get_mut(Handle::new(3, 2)).is_none());
        assert_eq!(units.remove(Handle::new(3, 2)), None);
        assert!(units.remove(Handle::new(3, 1)).is_some());
        assert_eq!(units.count(), 1);
        units.clear();
        assert_eq!(units.count(), 0);
    }

    #[test]
    fn changes_through_get_mut_and_iter_mut_are_kept() {
        let mut units = new_units();
        assert!(units.insert(unit(3, 7, 0x10_0000, 4, flags::MAPPED)));
        assert!(units.insert(unit(9, 1, 0x20_0000, 0, flags::MAPPED)));
        units.get_mut(Handle::new(3, 7)).unwrap().children = 2;
        for mut unit in units.iter_mut() {
            unit.flags |= flags::COPY_ON_WRITE;
        }
        let kept: Vec<Unit> = units.iter().collect();
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].handle, Handle::new(3, 7));
        assert_eq!(kept[0].children, 2);
        assert_eq!(kept[0].order, 4);
        assert!(
            kept.iter()
                .all(|unit| unit.flags == flags::MAPPED | flags::COPY_ON_WRITE)
        );
    }

    #[test]
    fn a_slot_is_sixteen_bytes() {
        assert_eq!(core::mem::size_of::<Slot>(), 16);
    }

    #[test]
    fn a_handle_beyond_the_table_is_refused() {
        let mut units = new_units();
        assert!(!units.insert(unit(MAX_UNITS as u32, 1, 0, 0, flags::MAPPED)));
        assert!(units.storage.slots.is_empty());
    }

    #[test]
    fn the_storage_grows_only_as_far_as_the_highest_slot_and_starts_empty() {
        let mut units = new_units();
        assert!(units.storage.slots.is_empty());
        assert!(units.insert(unit(3, 1, 0x10_0000, 0, flags::MAPPED)));
        assert_eq!(units.storage.slots.len(), SLOTS_PER_PAGE);
        // The garbage the storage's new slots held is no unit.
        assert_eq!(units.count(), 1);
        assert!(units.make_room(Handle::new(255, 1)));
        assert_eq!(units.storage.slots.len(), SLOTS_PER_PAGE);
        assert!(units.insert(unit(600, 1, 0x20_0000, 0, flags::MAPPED)));
        assert_eq!(units.storage.slots.len(), 3 * SLOTS_PER_PAGE);
        assert_eq!(units.count(), 2);
        // Asking about a slot the storage never had finds nothing and grows nothing.
        assert!(units.get_mut(Handle::new(900, 1)).is_none());
        assert_eq!(units.remove(Handle::new(900, 1)), None);
        assert_eq!(units.storage.slots.len(), 3 * SLOTS_PER_PAGE);
    }

    #[test]
    fn storage_that_cannot_grow_refuses_the_unit() {
        let mut units = Units::new(Pages {
            slots: Vec::new(),
            limit: SLOTS_PER_PAGE,
        });
        assert!(units.insert(unit(5, 1, 0x10_0000, 0, flags::MAPPED)));
        assert!(!units.make_room(Handle::new(256, 1)));
        assert!(!units.insert(unit(256, 1, 0x20_0000, 0, flags::MAPPED)));
        assert_eq!(units.count(), 1);
    }

    #[test]
    fn clearing_gives_the_storage_up() {
        let mut units = new_units();
        assert!(units.insert(unit(3, 1, 0x10_0000, 0, flags::MAPPED)));
        units.clear();
        assert!(units.storage.slots.is_empty());
        assert_eq!(units.count(), 0);
        assert!(units.insert(unit(4, 1, 0x10_0000, 0, flags::MAPPED)));
        assert_eq!(units.count(), 1);
    }
}
