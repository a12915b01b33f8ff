//! An environment's address space: its own page tables.
//!
//! The upper half is the kernel's, shared by copying the kernel PML4's upper
//! entries (they never change after boot). The lower half starts empty. PML4
//! slot 255 points back at the PML4 itself, read-only and user-accessible:
//! through that window (`exo_abi::layout::PAGE_TABLE_VIEW`) the environment
//! reads its own page tables without a system call.
//!
//! Each user entry carries a 14-bit **tag** in bits the processor ignores
//! (9–11 and 52–62): the index, plus one, of the capability node the page
//! was mapped through (`exo_kernel_core::mappings::tag_of`), or 0 (the
//! kernel's own pages, and nodes whose index is too large to tag). `Unmap`
//! and `Protect` read it beside the entry they change instead of searching
//! a tree (chapter 2.4). Bits 59–62 would be protection keys with CR4.PKE
//! set; exo never sets it.
//!
//! This module maps and unmaps pages; it never decides who may. Callers
//! check capabilities first and pass only user addresses below
//! `USER_MAP_END` (or the kernel's own window pages). It walks the user
//! half's tables itself; the kernel half is never walked here.

use core::ops::Range;

use exo_abi::Error;
use exo_abi::layout::{PAGE_TABLE_VIEW_SLOT, USER_END};
use exo_abi::mapping::MapFlags;
use exo_kernel_core::memory_map::FRAME_SIZE;
use x86_64::instructions::tlb;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::page_table::PageTableEntry;
use x86_64::structures::paging::{PageTable, PageTableFlags as Flags, PhysFrame};
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

/// Bytes one last-level table maps: 512 pages.
const TABLE_SPAN: u64 = 512 * FRAME_SIZE;

/// The page table at physical `table`.
///
/// # Safety
///
/// `table` must be a page table of an address space the caller may change
/// (it holds the system lock and the space's `&mut`, or reads only),
/// and no other reference to it may be live.
unsafe fn table_at<'a>(table: u64) -> &'a mut PageTable {
    // SAFETY: the caller's contract; all RAM is in the direct map.
    unsafe { &mut *phys_to_virt(table).as_mut_ptr::<PageTable>() }
}

/// The index of `address`'s entry in its table at `level` (1: last level).
fn index_at(address: u64, level: u8) -> usize {
    ((address >> (12 + 9 * (u32::from(level) - 1))) % 512) as usize
}

/// A last-level table, as found by a walk.
struct Leaf {
    table: u64,
}

impl Leaf {
    /// `address`'s entry, borrowed as long as the leaf is: one at a time.
    fn entry(&mut self, address: u64) -> &mut PageTableEntry {
        // SAFETY: `table` is a last-level table a walk of this address space
        // found; the address space is changed only under the system lock, and
        // the `&mut self` borrow keeps this the only reference made through
        // the leaf.
        let table = unsafe { table_at(self.table) };
        &mut table[index_at(address, 1)]
    }
}

/// An entry's bits holding `tag`.
fn tag_flags(tag: u16) -> Flags {
    let tag = u64::from(tag);
    Flags::from_bits_retain((tag & 0b111) << 9 | (tag >> 3) << 52)
}

/// The tag in an entry.
fn tag_in(entry: &PageTableEntry) -> u16 {
    let bits = entry.flags().bits();
    ((bits >> 9) & 0b111 | ((bits >> 52) & 0x7ff) << 3) as u16
}

/// Page-table frames one `map` may still take, within a budget of frames the
/// environment may still be charged for.
struct TableFrames {
    budget: u64,
    used: u64,
}

impl TableFrames {
    /// A zeroed frame for a table.
    fn allocate(&mut self) -> Result<u64, Error> {
        if self.used == self.budget {
            return Err(Error::QuotaExceeded);
        }
        let table = frames::allocate_zeroed().map_err(|_| Error::OutOfMemory)?;
        self.used += 1;
        Ok(table)
    }
}

/// The page tables of a fresh environment's address space: its PML4 and the
/// three below it for the facts page (`environment::lifecycle`).
pub const FRESH_TABLE_FRAMES: u64 = 4;

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

    /// Whether this is the address space the CPU is using now.
    pub fn is_loaded(&self) -> bool {
        Cr3::read().0.start_address().as_u64() == self.pml4
    }

    /// The last-level table covering user address `address`, if its tables
    /// exist; with `make`, making those that do not within its budget.
    fn walk(
        &self,
        address: u64,
        mut make: Option<&mut TableFrames>,
    ) -> Result<Option<Leaf>, Error> {
        // The user half below the page-table view only: the view's slot
        // points back at the PML4, and the kernel half is the kernel's.
        // Callers check addresses first; this keeps a mistake from walking
        // the PML4 as if it were a lower table.
        if address >= USER_END || index_at(address, 4) >= user_slots(4) {
            return Err(Error::InvalidArgument);
        }
        let mut table = self.pml4;
        for level in [4, 3, 2] {
            // SAFETY: `table` is this address space's PML4 or a table a
            // present entry of one of its tables points to.
            let entries = unsafe { table_at(table) };
            let entry = &mut entries[index_at(address, level)];
            if !entry.flags().contains(Flags::PRESENT) {
                let Some(frames) = make.as_deref_mut() else {
                    return Ok(None);
                };
                let new = frames.allocate()?;
                entry.set_addr(PhysAddr::new(new), TABLE_FLAGS);
            }
            debug_assert!(
                !entry.flags().contains(Flags::HUGE_PAGE),
                "no huge user pages"
            );
            table = entry.addr().as_u64();
        }
        Ok(Some(Leaf { table }))
    }

    /// Maps the frame at `physical` at `page` with `flags`, tagged `tag` (the
    /// node it is mapped through, 0: none; see the module's comment). New page
    /// tables may take up to `table_budget` frames; [`table_frames`](Self::table_frames)
    /// counts them, made whether or not the call succeeds (a call refused for
    /// want of frames for the last table keeps the ones above it).
    pub fn map(
        &mut self,
        page: u64,
        physical: u64,
        flags: MapFlags,
        table_budget: u64,
        tag: u16,
    ) -> Result<(), Error> {
        let mut tables = TableFrames {
            budget: table_budget,
            used: 0,
        };
        let leaf = self.walk(page, Some(&mut tables));
        self.table_frames += tables.used;
        let mut leaf = leaf?.ok_or(Error::InvalidArgument)?; // made if missing: never `None`
        let entry = leaf.entry(page);
        if !entry.is_unused() {
            return Err(Error::AlreadyMapped);
        }
        // No TLB flush: a processor caches no translation whose entry is not
        // present (Intel SDM vol. 3A, 4.10.2.3), and QEMU's TLB likewise.
        entry.set_addr(PhysAddr::new(physical), leaf_flags(flags) | tag_flags(tag));
        Ok(())
    }

    /// Removes the mapping at `page`; returns the physical address it mapped
    /// and its tag.
    pub fn unmap(&mut self, page: u64) -> Result<(u64, u16), Error> {
        let mut leaf = self.walk(page, None)?.ok_or(Error::NotMapped)?;
        let entry = leaf.entry(page);
        if entry.is_unused() {
            return Err(Error::NotMapped);
        }
        let (physical, tag) = (entry.addr().as_u64(), tag_in(entry));
        entry.set_unused();
        self.flush(page);
        Ok((physical, tag))
    }

    /// The tag of the page at `page`; `None` if it is not mapped.
    pub fn tag_at(&self, page: u64) -> Option<u16> {
        let mut leaf = self.walk(page, None).ok()??;
        let entry = leaf.entry(page);
        (!entry.is_unused()).then(|| tag_in(entry))
    }

    /// Changes the permissions of the mapping at `page`.
    pub fn protect(&mut self, page: u64, flags: MapFlags) -> Result<(), Error> {
        let mut leaf = self.walk(page, None)?.ok_or(Error::NotMapped)?;
        let entry = leaf.entry(page);
        if entry.is_unused() {
            return Err(Error::NotMapped);
        }
        let (physical, tag) = (entry.addr(), tag_in(entry));
        entry.set_addr(physical, leaf_flags(flags) | tag_flags(tag));
        self.flush(page);
        Ok(())
    }

    /// Forgets a changed entry for `page` if this is the CPU's address space
    /// (another's is not in the TLB: every switch loads CR3, and no user page
    /// is global).
    fn flush(&self, page: u64) {
        if self.is_loaded() {
            tlb::flush(VirtAddr::new(page));
        }
    }

    /// Whether any of the `pages` pages from user address `first` is mapped.
    /// Walks the tables once for each 2 MiB the run crosses, not once a
    /// page: `Map` asks this before it changes anything, for every page of
    /// the run.
    pub fn any_mapped(&self, first: u64, pages: u64) -> bool {
        let end = first + pages * FRAME_SIZE;
        let mut page = first;
        while page < end {
            let table_end = (page / TABLE_SPAN + 1) * TABLE_SPAN;
            if let Ok(Some(mut leaf)) = self.walk(page, None) {
                let stop = table_end.min(end);
                let mut entries = (page..stop).step_by(FRAME_SIZE as usize);
                if entries.any(|address| !leaf.entry(address).is_unused()) {
                    return true;
                }
            }
            page = table_end;
        }
        false
    }

    /// Calls `mapped(page, tag)` for every page mapped in the user half, in
    /// address order. Allocates nothing.
    pub fn for_each_mapped(&self, mut mapped: impl FnMut(u64, u16)) {
        walk_tables(self.pml4, 4, 0, &mut mapped);
    }

    /// Takes the user half apart a step at a time, from address `from` on:
    /// hands each page still mapped to `forget(page, tag)` and frees every
    /// table below the top one, each emptied as it goes, looking at no more
    /// than `budget` entries. Returns where it paused, or `None` once
    /// nothing is left below the top table. For an environment being taken
    /// down, never the running one: it is one walk, where forgetting its
    /// pages and then destroying its tables would be two, and a step may
    /// stop inside any table.
    pub fn take_apart(
        &mut self,
        from: u64,
        budget: u64,
        forget: &mut dyn FnMut(u64, u16),
    ) -> Option<u64> {
        assert!(!self.is_loaded(), "taking the active address space apart");
        let mut budget = budget;
        let (freed, paused) = take_apart_below(self.pml4, 4, 0, from, &mut budget, forget);
        self.table_frames -= freed;
        paused
    }

    /// Frees up to `most` tables of the user half that map nothing, from
    /// address `from` on, looking at no more than `budget` entries; returns
    /// how many it freed and where it paused, or `None` once it reached the
    /// end. A table a `Map` made stays when its pages go; a take by force of
    /// frames gives these back (`revocation.rs`). Nothing mapped changes.
    pub fn free_empty_tables(&mut self, from: u64, budget: u64, most: u64) -> (u64, Option<u64>) {
        let mut limits = (budget, most);
        let (freed, paused) = free_empty_below(self.pml4, 4, 0, from, &mut limits);
        self.table_frames -= freed;
        if freed > 0 && self.is_loaded() {
            // The paging-structure caches may hold the entries just cleared.
            tlb::flush_all();
        }
        (freed, paused)
    }

    /// The physical address and flags behind user address `address`.
    pub fn translate(&self, address: u64) -> Option<(u64, Flags)> {
        let mut leaf = self.walk(address, None).ok()??;
        let entry = leaf.entry(address);
        entry
            .flags()
            .contains(Flags::PRESENT)
            .then(|| (entry.addr().as_u64() + address % FRAME_SIZE, entry.flags()))
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

/// The user slots of a table at `level`: the PML4's end at the page-table view.
fn user_slots(level: u8) -> usize {
    if level == 4 {
        PAGE_TABLE_VIEW_SLOT as usize
    } else {
        512
    }
}

/// What each entry of a table at `level` covers, and the indices of its
/// user entries that cover addresses at or above `from`, for a table that
/// covers addresses from `base`.
fn entries_from(level: u8, base: u64, from: u64) -> (u64, Range<usize>) {
    let span = FRAME_SIZE << (9 * (u32::from(level) - 1));
    let first = usize::try_from(from.saturating_sub(base) / span).unwrap_or(usize::MAX);
    (span, first.min(512)..user_slots(level))
}

/// Calls `leaf(page, tag)` for every used entry of the last-level tables
/// below `table` (at `level`, covering addresses from `base`).
fn walk_tables(table: u64, level: u8, base: u64, leaf: &mut dyn FnMut(u64, u16)) {
    // SAFETY: `table` is a page table of the address space being walked,
    // reached through present entries; it is only read.
    let entries = unsafe { table_at(table) };
    let span = FRAME_SIZE << (9 * (u32::from(level) - 1));
    for (index, entry) in entries.iter().enumerate().take(user_slots(level)) {
        let address = base + index as u64 * span;
        if level == 1 {
            if !entry.is_unused() {
                leaf(address, tag_in(entry));
            }
        } else if entry.flags().contains(Flags::PRESENT) {
            walk_tables(entry.addr().as_u64(), level - 1, address, leaf);
        }
    }
}

/// Hands each used entry of the tables below `table` (at `level`, covering
/// addresses from `base`) at or above `from` to `forget` and clears it, and
/// frees each table below `table` once it is empty, each entry looked at
/// costing one from `budget`; returns how many tables it freed and where it
/// paused, if it did. What is done is cleared, so going on from the same
/// address finds only what is left.
fn take_apart_below(
    table: u64,
    level: u8,
    base: u64,
    from: u64,
    budget: &mut u64,
    forget: &mut dyn FnMut(u64, u16),
) -> (u64, Option<u64>) {
    // SAFETY: `table` is a page table of an address space being taken
    // apart, not loaded, reached through present entries.
    let entries = unsafe { table_at(table) };
    let (span, indices) = entries_from(level, base, from);
    let mut freed = 0;
    for index in indices {
        let address = base + index as u64 * span;
        if *budget == 0 {
            return (freed, Some(address.max(from)));
        }
        *budget -= 1;
        let entry = &mut entries[index];
        if level == 1 {
            if !entry.is_unused() {
                forget(address, tag_in(entry));
                entry.set_unused();
            }
            continue;
        }
        if !entry.flags().contains(Flags::PRESENT) {
            continue;
        }
        let below = entry.addr().as_u64();
        let (more, paused) = take_apart_below(below, level - 1, address, from, budget, forget);
        freed += more;
        if paused.is_some() {
            return (freed, paused);
        }
        frames::free(below).expect("page-table frame was not allocated");
        entry.set_unused();
        freed += 1;
    }
    (freed, None)
}

/// Frees each table below `table` (at `level`, covering addresses from
/// `base`) at or above `from` that maps nothing, each entry looked at costing
/// one from the first of `limits` (a budget) and each table freed one from
/// the second (the most); returns how many tables it freed and where it
/// paused, if it did. Going on from the same address finds only what is
/// left.
fn free_empty_below(
    table: u64,
    level: u8,
    base: u64,
    from: u64,
    limits: &mut (u64, u64),
) -> (u64, Option<u64>) {
    // SAFETY: `table` is a page table of the address space being tidied,
    // reached through present entries; the caller flushes the TLB if it is
    // loaded.
    let entries = unsafe { table_at(table) };
    let (span, indices) = entries_from(level, base, from);
    let mut freed = 0;
    for index in indices {
        let address = base + index as u64 * span;
        let (budget, most) = limits;
        if *budget == 0 || *most == 0 {
            return (freed, Some(address.max(from)));
        }
        *budget -= 1;
        let entry = &mut entries[index];
        if !entry.flags().contains(Flags::PRESENT) {
            continue;
        }
        let below = entry.addr().as_u64();
        if level > 2 {
            let (more, paused) = free_empty_below(below, level - 1, address, from, limits);
            freed += more;
            if paused.is_some() {
                return (freed, paused);
            }
        }
        // SAFETY: as above, only read. The entries read count too: a
        // directory of 511 tables each with its last page mapped would
        // otherwise cost 512 times the budget.
        let used = unsafe { table_at(below) }
            .iter()
            .position(|entry| !entry.is_unused());
        limits.0 = limits
            .0
            .saturating_sub(used.map_or(512, |index| index as u64 + 1));
        if used.is_none() {
            if limits.1 == 0 {
                // The tables below it took the last of `most`: it is next.
                return (freed, Some(address.max(from)));
            }
            frames::free(below).expect("page-table frame was not allocated");
            entry.set_unused();
            freed += 1;
            limits.1 -= 1;
        }
    }
    (freed, None)
}

/// Frees the page table at physical `table`, of `level` (4: a PML4), and
/// every table below it in the user half; returns how many frames it freed.
fn free_table(table: u64, level: u8) -> u64 {
    let mut freed = 1;
    if level > 1 {
        // SAFETY: `table` is a page table of an address space being
        // destroyed, reached through present entries; nothing else uses it.
        let entries = unsafe { table_at(table) };
        for entry in entries.iter().take(user_slots(level)) {
            if entry.flags().contains(Flags::PRESENT) {
                freed += free_table(entry.addr().as_u64(), level - 1);
            }
        }
    }
    frames::free(table).expect("page-table frame was not allocated");
    freed
}
