//! An environment's address space: its own page tables.
//!
//! The upper half is the kernel's, shared by copying the kernel PML4's upper
//! entries (they never change after boot). The lower half starts empty. PML4
//! slot 255 points back at the PML4 itself, read-only and user-accessible:
//! through that window (`exo_abi::layout::PAGE_TABLE_VIEW`) the environment
//! reads its own page tables without a system call.
//!
//! This module maps and unmaps pages; it never decides who may. Callers
//! check capabilities first and pass only user addresses below
//! `USER_MAP_END` (or the kernel's own window pages).

use exo_abi::Error;
use exo_abi::layout::PAGE_TABLE_VIEW_SLOT;
use exo_abi::mapping::MapFlags;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::mapper::{MapToError, TranslateResult, UnmapError};
use x86_64::structures::paging::{
    FrameAllocator, Mapper, Page, PageTable, PageTableFlags as Flags, PhysFrame, Size4KiB,
    Translate,
};
use x86_64::{PhysAddr, VirtAddr};

use crate::memory::{frames, paging, phys_to_virt};

/// The page-table flags of a user mapping with `flags`.
fn leaf_flags(flags: MapFlags) -> Flags {
    let mut leaf = Flags::PRESENT | Flags::USER_ACCESSIBLE;
    if flags.contains(MapFlags::WRITE) {
        leaf |= Flags::WRITABLE;
    }
    if !flags.contains(MapFlags::EXECUTE) {
        leaf |= Flags::NO_EXECUTE;
    }
    leaf
}

/// Intermediate tables allow everything; the leaf entry decides.
const TABLE_FLAGS: Flags = Flags::PRESENT
    .union(Flags::WRITABLE)
    .union(Flags::USER_ACCESSIBLE);

/// Page-table frames for one operation, within a budget of frames the
/// environment may still be charged for.
struct TableFrames {
    budget: u64,
    used: u64,
    out_of_memory: bool,
}

// SAFETY: frames come fresh from the frame allocator; the mapper zeroes them.
unsafe impl FrameAllocator<Size4KiB> for TableFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame> {
        if self.used == self.budget {
            return None;
        }
        match frames::allocate() {
            Ok(address) => {
                self.used += 1;
                Some(PhysFrame::containing_address(PhysAddr::new(address)))
            }
            Err(_) => {
                self.out_of_memory = true;
                None
            }
        }
    }
}

/// The page tables of one environment.
#[derive(Debug)]
pub struct AddressSpace {
    /// Physical address of the PML4.
    pml4: u64,
    /// Frames used by page tables (the PML4 included), charged to the environment.
    table_frames: u64,
}

impl AddressSpace {
    /// A fresh address space: kernel half shared, user half empty, the
    /// page-table view in slot 255. Needs one frame.
    pub fn new() -> Result<Self, Error> {
        let pml4 = frames::allocate_zeroed().map_err(|_| Error::OutOfMemory)?;
        let space = Self {
            pml4,
            table_frames: 1,
        };
        // SAFETY: `table` is the fresh frame allocated above, used by nothing
        // else; `kernel` is the kernel's PML4, whose upper half never changes
        // after boot. Both are in the direct map.
        let (table, kernel) = unsafe {
            (
                &mut *phys_to_virt(pml4).as_mut_ptr::<PageTable>(),
                &*phys_to_virt(paging::kernel_pml4()).as_ptr::<PageTable>(),
            )
        };
        for slot in 256..512 {
            table[slot] = kernel[slot].clone();
        }
        table[PAGE_TABLE_VIEW_SLOT as usize].set_addr(
            PhysAddr::new(pml4),
            Flags::PRESENT | Flags::USER_ACCESSIBLE | Flags::NO_EXECUTE,
        );
        Ok(space)
    }

    /// Frames its page tables use.
    pub fn table_frames(&self) -> u64 {
        self.table_frames
    }

    fn mapper(&self) -> x86_64::structures::paging::OffsetPageTable<'static> {
        // SAFETY: the PML4 is owned by this address space, which is only
        // changed under the system lock; all tables are in the direct map.
        unsafe { paging::mapper(self.pml4) }
    }

    /// Whether this is the address space the CPU is using now.
    pub fn is_loaded(&self) -> bool {
        Cr3::read().0.start_address().as_u64() == self.pml4
    }

    /// Maps the frame at `physical` at `page` with `flags`. New page tables
    /// may take up to `table_budget` frames; [`table_frames`](Self::table_frames)
    /// counts them, made whether or not the call succeeds (a call refused for
    /// want of a frame for the last table keeps the ones above it).
    pub fn map(
        &mut self,
        page: u64,
        physical: u64,
        flags: MapFlags,
        table_budget: u64,
    ) -> Result<(), Error> {
        let mut tables = TableFrames {
            budget: table_budget,
            used: 0,
            out_of_memory: false,
        };
        let page_ref = Page::<Size4KiB>::containing_address(VirtAddr::new(page));
        let frame = PhysFrame::containing_address(PhysAddr::new(physical));
        let active = self.is_loaded();
        // SAFETY: the frame is one the caller holds a capability for; mapping
        // it into user space cannot alias kernel memory (the kernel reaches
        // frames only through the direct map).
        let result = unsafe {
            self.mapper().map_to_with_table_flags(
                page_ref,
                frame,
                leaf_flags(flags),
                TABLE_FLAGS,
                &mut tables,
            )
        };
        self.table_frames += tables.used;
        match result {
            Ok(flush) if active => flush.flush(),
            Ok(flush) => flush.ignore(),
            Err(MapToError::PageAlreadyMapped(_)) => return Err(Error::AlreadyMapped),
            Err(MapToError::ParentEntryHugePage) => return Err(Error::AlreadyMapped),
            Err(MapToError::FrameAllocationFailed) if tables.out_of_memory => {
                return Err(Error::OutOfMemory);
            }
            Err(MapToError::FrameAllocationFailed) => return Err(Error::QuotaExceeded),
        }
        Ok(())
    }

    /// Removes the mapping at `page`; returns the physical address it mapped.
    pub fn unmap(&mut self, page: u64) -> Result<u64, Error> {
        let page_ref = Page::<Size4KiB>::containing_address(VirtAddr::new(page));
        let active = self.is_loaded();
        match self.mapper().unmap(page_ref) {
            Ok((frame, flush)) => {
                if active {
                    flush.flush();
                } else {
                    flush.ignore();
                }
                Ok(frame.start_address().as_u64())
            }
            Err(UnmapError::PageNotMapped | UnmapError::ParentEntryHugePage) => {
                Err(Error::NotMapped)
            }
            Err(UnmapError::InvalidFrameAddress(_)) => Err(Error::NotMapped),
        }
    }

    /// Changes the permissions of the mapping at `page`.
    pub fn protect(&mut self, page: u64, flags: MapFlags) -> Result<(), Error> {
        let page_ref = Page::<Size4KiB>::containing_address(VirtAddr::new(page));
        let active = self.is_loaded();
        // SAFETY: only the permission bits of an existing user mapping change.
        match unsafe { self.mapper().update_flags(page_ref, leaf_flags(flags)) } {
            Ok(flush) if active => flush.flush(),
            Ok(flush) => flush.ignore(),
            Err(_) => return Err(Error::NotMapped),
        }
        Ok(())
    }

    /// Whether any of the `pages` pages from user address `first` is mapped.
    /// Walks the tables once for each 2 MiB the run crosses, not once a
    /// page: `Map` asks this before it changes anything, for every page of
    /// the run.
    pub fn any_mapped(&self, first: u64, pages: u64) -> bool {
        const TABLE_SPAN: u64 = 512 * 4096;
        let end = first + pages * 4096;
        let mut page = first;
        while page < end {
            let table_end = (page / TABLE_SPAN + 1) * TABLE_SPAN;
            if let Some(table) = self.last_level_table(page) {
                let stop = table_end.min(end);
                let skip = (page >> 12) as usize % 512;
                let count = ((stop - page) >> 12) as usize;
                if table
                    .iter()
                    .skip(skip)
                    .take(count)
                    .any(|entry| !entry.is_unused())
                {
                    return true;
                }
            }
            page = table_end;
        }
        false
    }

    /// The last-level table covering user address `address`, if its tables exist.
    fn last_level_table(&self, address: u64) -> Option<&PageTable> {
        let address = VirtAddr::new(address);
        let indices = [address.p4_index(), address.p3_index(), address.p2_index()];
        let mut table = self.pml4;
        for index in indices {
            // SAFETY: `table` is one of this address space's page tables (the
            // PML4, or a table a present, non-huge entry of one points to),
            // all in the direct map; it is only changed under the system
            // lock, which the caller holds through `&self`'s owner.
            let entry = &unsafe { &*phys_to_virt(table).as_ptr::<PageTable>() }[index];
            if !entry.flags().contains(Flags::PRESENT) || entry.flags().contains(Flags::HUGE_PAGE) {
                return None;
            }
            table = entry.addr().as_u64();
        }
        // SAFETY: as above: a table a present entry points to.
        Some(unsafe { &*phys_to_virt(table).as_ptr::<PageTable>() })
    }

    /// The physical address and flags behind user address `address`.
    pub fn translate(&self, address: u64) -> Option<(u64, Flags)> {
        match self.mapper().translate(VirtAddr::new(address)) {
            TranslateResult::Mapped {
                frame,
                offset,
                flags,
            } => Some((frame.start_address().as_u64() + offset, flags)),
            _ => None,
        }
    }

    /// Makes this the CPU's address space.
    pub fn activate(&self) {
        if !self.is_loaded() {
            // SAFETY: the kernel half is identical in every address space, so
            // the kernel keeps running; the user half is this environment's.
            unsafe {
                Cr3::write(
                    PhysFrame::containing_address(PhysAddr::new(self.pml4)),
                    Cr3Flags::empty(),
                )
            };
        }
    }

    /// Frees every page table of the user half and the PML4. Mapped frames
    /// are not touched: capabilities own them. Returns the frames freed.
    /// Allocates nothing: the walk recurses at most four levels deep.
    pub fn destroy(self) -> u64 {
        assert!(!self.is_loaded(), "destroying the active address space");
        let freed = free_table(self.pml4, 4);
        debug_assert_eq!(freed, self.table_frames);
        freed
    }
}

/// Frees the page table at physical `table`, of `level` (4: a PML4), and
/// every table below it in the user half; returns how many frames it freed.
fn free_table(table: u64, level: u8) -> u64 {
    let mut freed = 1;
    if level > 1 {
        // SAFETY: `table` is a page table of an address space being
        // destroyed, reached through present entries; nothing else uses it.
        let entries = unsafe { &*phys_to_virt(table).as_ptr::<PageTable>() };
        let user_slots = if level == 4 {
            PAGE_TABLE_VIEW_SLOT as usize
        } else {
            512
        };
        for entry in entries.iter().take(user_slots) {
            if entry.flags().contains(Flags::PRESENT) {
                freed += free_table(entry.addr().as_u64(), level - 1);
            }
        }
    }
    frames::free(table).expect("page-table frame was not allocated");
    freed
}
