//! The `mmap` regions of a process: which address ranges of the mmap area
//! are reserved, and with what protection. Pure bookkeeping, no system
//! calls, tested on the host; libos-posixish's `mmap` and pager use it.
//!
//! A region's protection holds for all of its pages, touched or not: the
//! pager maps a page on its first touch with the region's protection, and
//! `mprotect` of part of a region splits it first.

use crate::layout::{MMAP_END, MMAP_START};

/// POSIX `PROT_*` bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protection(pub u8);

impl Protection {
    pub const NONE: Protection = Protection(0);
    pub const READ: Protection = Protection(1);
    pub const WRITE: Protection = Protection(2);
    pub const EXECUTE: Protection = Protection(4);
    pub const READ_WRITE: Protection = Protection(3);

    pub fn allows(self, other: Protection) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// How a page of it is mapped (every mapping is readable).
    pub fn map_flags(self) -> exo_abi::mapping::MapFlags {
        let mut flags = exo_abi::mapping::MapFlags::empty();
        if self.allows(Protection::WRITE) {
            flags |= exo_abi::mapping::MapFlags::WRITE;
        }
        if self.allows(Protection::EXECUTE) {
            flags |= exo_abi::mapping::MapFlags::EXECUTE;
        }
        flags
    }
}

/// An address range handed out by `mmap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    pub protection: Protection,
}

/// How many regions a process may have (splits count).
pub const MAX_REGIONS: usize = 128;

#[derive(Debug)]
pub struct Regions {
    slots: [Option<Region>; MAX_REGIONS],
}

impl Regions {
    pub const fn new() -> Self {
        Self {
            slots: [None; MAX_REGIONS],
        }
    }

    /// The region containing `address`.
    pub fn find(&self, address: u64) -> Option<Region> {
        self.iter()
            .find(|region| (region.start..region.end).contains(&address))
    }

    fn iter(&self) -> impl Iterator<Item = Region> + '_ {
        self.slots.iter().flatten().copied()
    }

    fn add(&mut self, region: Region) -> bool {
        match self.slots.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => {
                *slot = Some(region);
                true
            }
            None => false,
        }
    }

    /// Reserves `length` bytes (a multiple of the page size) at the lowest
    /// free address of the mmap area: first fit.
    pub fn reserve(&mut self, length: u64, protection: Protection) -> Option<u64> {
        let mut start = MMAP_START;
        loop {
            let end = start.checked_add(length).filter(|&end| end <= MMAP_END)?;
            match self
                .iter()
                .filter(|region| region.start < end && start < region.end)
                .map(|region| region.end)
                .max()
            {
                Some(past) => start = past,
                None => {
                    let added = self.add(Region {
                        start,
                        end,
                        protection,
                    });
                    return added.then_some(start);
                }
            }
        }
    }

    /// Splits regions at `start` and `end`, so that every region overlapping
    /// `start..end` lies inside it; returns how many bytes of it are covered.
    /// `None` (and nothing changed) if the table has no room for the splits.
    pub fn carve(&mut self, start: u64, end: u64) -> Option<u64> {
        let splits = [start, end]
            .iter()
            .filter(|&&at| {
                self.iter()
                    .any(|region| region.start < at && at < region.end)
            })
            .count();
        if self.slots.iter().filter(|slot| slot.is_none()).count() < splits {
            return None;
        }
        for at in [start, end] {
            let inside = self
                .slots
                .iter_mut()
                .flatten()
                .find(|region| region.start < at && at < region.end);
            if let Some(region) = inside {
                let upper = Region {
                    start: at,
                    ..*region
                };
                region.end = at;
                self.add(upper);
            }
        }
        Some(
            self.iter()
                .filter(|region| start <= region.start && region.end <= end)
                .map(|region| region.end - region.start)
                .sum(),
        )
    }

    /// Removes the regions inside `start..end` (after `carve`).
    pub fn remove_inside(&mut self, start: u64, end: u64) {
        for slot in &mut self.slots {
            if slot.is_some_and(|region| start <= region.start && region.end <= end) {
                *slot = None;
            }
        }
    }

    /// Sets the protection of the regions inside `start..end` (after `carve`).
    pub fn protect_inside(&mut self, start: u64, end: u64, protection: Protection) {
        for region in self.slots.iter_mut().flatten() {
            if start <= region.start && region.end <= end {
                region.protection = protection;
            }
        }
    }
}

impl Default for Regions {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: u64 = 4096;

    #[test]
    fn reserve_is_first_fit_from_the_start_of_the_area() {
        let mut regions = Regions::new();
        let first = regions.reserve(2 * PAGE, Protection::READ_WRITE).unwrap();
        let second = regions.reserve(PAGE, Protection::READ).unwrap();
        assert_eq!((first, second), (MMAP_START, MMAP_START + 2 * PAGE));
        assert_eq!(
            regions.find(first + PAGE).unwrap().protection,
            Protection::READ_WRITE
        );
        assert_eq!(regions.find(second + PAGE), None);
        // A hole left by munmap is found again.
        assert_eq!(regions.carve(first, first + 2 * PAGE), Some(2 * PAGE));
        regions.remove_inside(first, first + 2 * PAGE);
        assert_eq!(regions.reserve(PAGE, Protection::NONE), Some(first));
    }

    #[test]
    fn reserve_refuses_what_does_not_fit_in_the_area() {
        let mut regions = Regions::new();
        assert_eq!(
            regions.reserve(MMAP_END - MMAP_START + PAGE, Protection::READ),
            None
        );
        assert_eq!(regions.reserve(u64::MAX, Protection::READ), None);
    }

    #[test]
    fn carving_the_middle_splits_and_protects_only_it() {
        let mut regions = Regions::new();
        let start = regions.reserve(4 * PAGE, Protection::READ_WRITE).unwrap();
        assert_eq!(
            regions.carve(start + PAGE, start + 3 * PAGE),
            Some(2 * PAGE)
        );
        regions.protect_inside(start + PAGE, start + 3 * PAGE, Protection::READ);
        let protection = |page: u64| regions.find(start + page * PAGE).unwrap().protection;
        assert_eq!(
            [0, 1, 2, 3].map(protection),
            [
                Protection::READ_WRITE,
                Protection::READ,
                Protection::READ,
                Protection::READ_WRITE
            ]
        );
    }

    #[test]
    fn a_full_table_refuses_splits_and_changes_nothing() {
        let mut regions = Regions::new();
        let mut last = 0;
        for _ in 0..MAX_REGIONS {
            last = regions.reserve(2 * PAGE, Protection::READ).unwrap();
        }
        assert_eq!(regions.reserve(PAGE, Protection::READ), None);
        assert_eq!(regions.carve(last + PAGE, last + 2 * PAGE), None);
        assert_eq!(regions.find(last + PAGE).unwrap().start, last);
    }

    #[test]
    fn protection_bits_say_how_a_page_is_mapped() {
        use exo_abi::mapping::MapFlags;
        assert_eq!(Protection::READ.map_flags(), MapFlags::empty());
        assert_eq!(Protection::READ_WRITE.map_flags(), MapFlags::WRITE);
        assert_eq!(Protection(5).map_flags(), MapFlags::EXECUTE);
        assert!(!Protection::NONE.allows(Protection::NONE));
        assert!(Protection::READ_WRITE.allows(Protection::WRITE));
    }
}
