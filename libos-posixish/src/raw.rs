//! The bottom layer's raw primitives: access to memory the library OS maps
//! itself, the system calls that can invalidate a reference, and the
//! assembly for switching stacks, capturing registers and `exec`'s trampoline.
//!
//! It calls nothing of the library OS above `layout`: the entry points that
//! call up (`_start`, a forked child's first instruction) are in `entry.rs`.
//! Everything here is small and says why it holds. A safe function here is
//! sound whatever its caller does: it checks at run time what it needs, or
//! it is an `unsafe fn` whose `# Safety` section says what the caller must
//! promise. The rest of the library OS denies `unsafe` code
//! (`#![deny(unsafe_code)]`): this module and `entry.rs` may allow it, and
//! a caller of one of these `unsafe fn`s allows it for that one statement,
//! with a `// SAFETY:` comment saying why the promise holds there. The
//! programs on the library OS forbid it.
#![allow(unsafe_code)]

use core::arch::global_asm;

use exo_abi::layout::PAGE_SIZE;
use posixish_policy::pager_units::{Slot, Storage};
use posixish_policy::regions::Regions;

/// The `length` bytes at `address`, in a region the library OS maps
/// read-only for the process's whole life: the boot file system, the
/// process-info page, a forked child's handover pages. Panics, as a bad
/// slice index does, for a range anywhere else, or for the info or handover
/// pages when they are not mapped.
pub fn mapped_bytes(address: u64, length: usize) -> &'static [u8] {
    use crate::layout::{HANDOVER, HANDOVER_PAGES, PROCESS_INFO};
    let end = address
        .checked_add(length as u64)
        .expect("a range that does not wrap");
    let within = |start: u64, bytes: u64| start <= address && end <= start + bytes;
    let bootfs = within(
        exo_abi::layout::BOOTFS,
        exo_abi::layout::START_INFO - exo_abi::layout::BOOTFS,
    );
    let pages_mapped = |start: u64, pages: u64| {
        within(start, pages * PAGE_SIZE)
            && (address..end.max(address + 1))
                .step_by(PAGE_SIZE as usize)
                .all(|page| exo_abi::user::translate(page).is_some())
    };
    assert!(
        bootfs || pages_mapped(PROCESS_INFO, 1) || pages_mapped(HANDOVER, HANDOVER_PAGES),
        "{address:#x}+{length:#x} is not in the boot file system, the info page or the handover pages"
    );
    // SAFETY: checked just above: the range lies in the boot file system, or
    // in the process-info or handover pages, which are mapped. Those stay
    // mapped, unchanged and read-only while the process lives. The boot file
    // system's runs are mapped on first touch (the fault handler,
    // `bootfs::resolve_fault`), with the bytes they always hold, and never
    // unmapped: a read sees them as if they had been mapped from the start.
    unsafe { core::slice::from_raw_parts(address as *const u8, length) }
}

/// Writes the `u64` at byte `offset` of this process's exit-status page
/// (`layout::EXIT_STATUS`), which its parent reads. Panics if the page is
/// not mapped or the word is not in it.
pub fn write_exit_status_word(offset: usize, value: u64) {
    let page = crate::layout::EXIT_STATUS;
    assert!(offset.is_multiple_of(8) && offset + 8 <= PAGE_SIZE as usize);
    assert!(
        exo_abi::user::translate(page).is_some(),
        "no exit-status page"
    );
    // SAFETY: checked just above: an aligned word of the exit-status page,
    // which is mapped writable; no Rust object lives there, and the volatile
    // write is what the parent's read sees.
    unsafe { core::ptr::write_volatile((page + offset as u64) as *mut u64, value) }
}

/// A frame mapped at one of the library OS's windows — the scratch page,
/// the pager's window, the file server's window onto a client's transfer
/// page — where no Rust object lives. It lends the frame's bytes for as long
/// as it lives and unmaps the window when dropped, so no reference into the
/// window outlives the mapping.
///
/// Only this type maps or unmaps those windows, and the kernel refuses to
/// map over a mapped page (`AlreadyMapped`), so at most one `Window` exists
/// per window address: the bytes it lends alias nothing.
#[derive(Debug)]
pub struct Window {
    address: u64,
    pages: u64,
    writable: bool,
    /// A capability dropped with the window (a client's transfer page).
    owned: Option<exo_abi::Handle>,
}

impl Window {
    fn map(
        frame: exo_abi::Handle,
        address: u64,
        pages: u64,
        flags: exo_abi::mapping::MapFlags,
    ) -> Result<Self, exo_abi::Error> {
        exo_abi::user::map(frame, exo_abi::Handle::SELF_ENVIRONMENT, address, flags)?;
        Ok(Self {
            address,
            pages,
            writable: flags.contains(exo_abi::mapping::MapFlags::WRITE),
            owned: None,
        })
    }

    /// Maps `frame` (one frame) at the scratch page with `flags`.
    pub fn scratch(
        frame: exo_abi::Handle,
        flags: exo_abi::mapping::MapFlags,
    ) -> Result<Self, exo_abi::Error> {
        Self::map(frame, crate::layout::SCRATCH, 1, flags)
    }

    /// Maps the run `frame` (`2^order` frames) writable at the pager's window.
    pub fn pager(frame: exo_abi::Handle, order: u32) -> Result<Self, exo_abi::Error> {
        let pages = 1u64 << order;
        assert!(pages <= crate::layout::PAGER_WINDOW_PAGES);
        let write = exo_abi::mapping::MapFlags::WRITE;
        Self::map(frame, crate::layout::PAGER_WINDOW, pages, write)
    }

    /// Maps a client's transfer page, `capability`, writable at the file
    /// server's window. The capability is the window's: dropped with it,
    /// or at once if it cannot be mapped.
    pub fn client_page(capability: exo_abi::Handle) -> Result<Self, exo_abi::Error> {
        let write = exo_abi::mapping::MapFlags::WRITE;
        match Self::map(capability, crate::layout::FS_WINDOW, 1, write) {
            Ok(mut window) => {
                window.owned = Some(capability);
                Ok(window)
            }
            Err(error) => {
                // SAFETY: the map failed, so nothing of this process maps it.
                let _ = unsafe { exo_abi::user::capability_drop(capability) };
                Err(error)
            }
        }
    }

    /// The window's bytes, to write. Panics if it was mapped read-only.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        assert!(self.writable, "a read-only window");
        let length = (self.pages * PAGE_SIZE) as usize;
        // SAFETY: the window is mapped writable while `self` lives, holds no
        // Rust object, and no other `Window` maps it (see the type); the
        // slice borrows `self`, so it ends before the unmap.
        unsafe { core::slice::from_raw_parts_mut(self.address as *mut u8, length) }
    }

    /// Reads the `u64` at byte `offset`, volatile: another process may be
    /// writing the frame (a child's exit-status page).
    pub fn read_word(&self, offset: usize) -> u64 {
        assert!(offset.is_multiple_of(8) && offset as u64 + 8 <= self.pages * PAGE_SIZE);
        // SAFETY: an aligned word inside the window, mapped while `self`
        // lives; a raw volatile read makes no reference.
        unsafe { core::ptr::read_volatile((self.address + offset as u64) as *const u64) }
    }

    /// Fills the window with a copy of this process's pages at `source`
    /// (page-aligned, as many pages as the window). A page there that is
    /// not mapped faults, and the pager maps it or ends the process.
    pub fn copy_from(&mut self, source: u64) {
        let bytes = self.pages * PAGE_SIZE;
        assert!(source.is_multiple_of(PAGE_SIZE) && source.abs_diff(self.address) >= bytes);
        let to = self.bytes_mut().as_mut_ptr();
        // SAFETY: `to` is the window, lent mutably above; `source` is
        // another range (checked), read through a raw pointer, so no
        // reference to it exists. Callers copy a single-threaded process's
        // pages (`fork`) or a unit under the pager's lock, not being written.
        unsafe { core::ptr::copy_nonoverlapping(source as *const u8, to, bytes as usize) }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        for page in 0..self.pages {
            // SAFETY: no reference into the window is left: every one was
            // borrowed from `self`, which is going.
            let _ = unsafe {
                exo_abi::user::unmap(
                    exo_abi::Handle::SELF_ENVIRONMENT,
                    self.address + page * PAGE_SIZE,
                )
            };
        }
        if let Some(capability) = self.owned {
            // SAFETY: it was mapped only at the window, unmapped just above.
            let _ = unsafe { exo_abi::user::capability_drop(capability) };
        }
    }
}

/// The only lock on this process's file-system transfer page
/// (`layout::FS_TRANSFER`).
static TRANSFER_LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// This process's file-system transfer page, held for one request and its
/// answer: it lends the page's bytes while it lives.
#[derive(Debug)]
pub struct TransferPage {
    _lock: spin::MutexGuard<'static, ()>,
}

impl TransferPage {
    /// Waits for the transfer page. Panics if it is not mapped (`fs` maps
    /// it, writable, before the first request and never unmaps it).
    pub fn lock() -> Self {
        let lock = TRANSFER_LOCK.lock();
        let page = crate::layout::FS_TRANSFER;
        let entry = exo_abi::user::page_table_entry(page).unwrap_or(0);
        let present_and_writable = exo_abi::user::entry::PRESENT | exo_abi::user::entry::WRITABLE;
        assert!(
            entry & present_and_writable == present_and_writable,
            "the transfer page is not mapped writable"
        );
        Self { _lock: lock }
    }

    /// The page's bytes.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let page = crate::layout::FS_TRANSFER;
        // SAFETY: mapped writable (checked when locked) and never unmapped;
        // no Rust object lives there; the lock makes this the only
        // `TransferPage`, and the slice borrows it.
        unsafe { core::slice::from_raw_parts_mut(page as *mut u8, PAGE_SIZE as usize) }
    }
}

/// How far the heap allocator has been given address space: ranges given
/// to it must start here or above, so no two overlap.
static HEAP_GIVEN_UP_TO: core::sync::atomic::AtomicU64 =
    core::sync::atomic::AtomicU64::new(crate::layout::HEAP_START);

/// Hands the address range `start..end` to the heap allocator. Panics if the
/// range is outside the heap's (`layout::HEAP_START..HEAP_END`) or overlaps
/// one given before.
pub fn give_heap(heap: &mut buddy_system_allocator::Heap<32>, start: u64, end: u64) {
    use core::sync::atomic::Ordering;
    let given = HEAP_GIVEN_UP_TO.load(Ordering::Relaxed);
    assert!(
        given <= start && start < end && end <= crate::layout::HEAP_END,
        "heap range {start:#x}..{end:#x} is not fresh heap address space"
    );
    HEAP_GIVEN_UP_TO.store(end, Ordering::Relaxed);
    // SAFETY: checked just above: heap address space given to nothing before
    // (no Rust object lives there), and every page in it is mapped on first
    // touch by the fault handler, which never allocates from this heap.
    unsafe { heap.add_to_heap(start as usize, end as usize) };
}

/// The pager's table of units (`pager_units`): its slots, in pages mapped
/// at `layout::PAGER_TABLE` as the table grows, so a program holds as much
/// table as its capability slots reach. The frames come from the kernel's
/// choice, not the frame policy (the policy lives in the pager the table
/// belongs to); their capabilities are not units: these pages are private,
/// never shared with a child nor given back.
#[derive(Debug)]
pub struct PagerTable {
    /// Pages mapped, from `PAGER_TABLE` up.
    pages: usize,
}

impl PagerTable {
    /// Slots in a page.
    const SLOTS_PER_PAGE: usize = PAGE_SIZE as usize / core::mem::size_of::<Slot>();

    /// No slots, nothing mapped.
    pub const fn new() -> Self {
        Self { pages: 0 }
    }

    fn slot_count(&self) -> usize {
        self.pages * Self::SLOTS_PER_PAGE
    }
}

impl Storage for PagerTable {
    fn slots(&self) -> &[Slot] {
        // SAFETY: the first `pages` pages from `PAGER_TABLE` are mapped
        // writable (`grow_to` mapped them) and hold nothing but these slots,
        // which any bytes make (integers only). Nothing else in the process
        // refers to them: the one `PagerTable` is the pager's, behind its
        // lock, so `&self` stands for every borrow of them. A forked child's
        // copy names its parent's pages until `forget`, the first thing the
        // child does (`paging::adopt_handover`), before anything reads them.
        unsafe {
            core::slice::from_raw_parts(
                crate::layout::PAGER_TABLE as *const Slot,
                self.slot_count(),
            )
        }
    }

    fn slots_mut(&mut self) -> &mut [Slot] {
        // SAFETY: as for `slots`, with `&mut self` the only borrow.
        unsafe {
            core::slice::from_raw_parts_mut(
                crate::layout::PAGER_TABLE as *mut Slot,
                self.slot_count(),
            )
        }
    }

    fn grow_to(&mut self, count: usize) -> bool {
        use crate::layout::{PAGER_TABLE, PAGER_TABLE_PAGES};
        use exo_abi::mapping::MapFlags;
        use exo_abi::{Handle, user};
        let pages = count.div_ceil(Self::SLOTS_PER_PAGE);
        if pages as u64 > PAGER_TABLE_PAGES {
            return false;
        }
        while self.pages < pages {
            let page = PAGER_TABLE + self.pages as u64 * PAGE_SIZE;
            // After `forget` in the process that mapped it, a page is still
            // there: the table empties the slots it gains.
            if user::translate(page).is_none() {
                let Ok((frame, _)) = user::frame_allocate(0) else {
                    return false;
                };
                if user::map(frame, Handle::SELF_ENVIRONMENT, page, MapFlags::WRITE).is_err() {
                    drop_unmapped_frame(frame);
                    return false;
                }
            }
            self.pages += 1;
        }
        true
    }

    fn forget(&mut self) {
        self.pages = 0;
    }
}

/// The pager's `mmap` regions (`regions`), in a page of their own at
/// `layout::PAGER_REGIONS`, mapped at the first `mmap`, `munmap` or
/// `mprotect`: a program that never maps a region holds no table of them.
/// The page is private, like the pager's table; `fork` copies it into the
/// child, whose regions are its parent's.
#[derive(Debug)]
pub struct RegionsPage {
    mapped: bool,
}

const _: () = assert!(
    core::mem::size_of::<Regions>() <= PAGE_SIZE as usize
        && core::mem::align_of::<Regions>() <= PAGE_SIZE as usize
);

impl RegionsPage {
    /// Not mapped yet: no regions.
    pub const fn new() -> Self {
        Self { mapped: false }
    }

    /// The regions, or `None` while the page is not mapped (none reserved).
    pub fn get(&self) -> Option<&Regions> {
        // SAFETY: once `mapped`, the page at `PAGER_REGIONS` is mapped
        // writable and holds the `Regions` that `get_or_map` wrote (a forked
        // child gets a copy of both the page and this flag). Nothing else
        // in the process refers to it: the one `RegionsPage` is the pager's,
        // behind its lock, so `&self` stands for every borrow of it.
        self.mapped
            .then(|| unsafe { &*(crate::layout::PAGER_REGIONS as *const Regions) })
    }

    /// The regions, mapping their page, with none in it, the first time.
    pub fn get_or_map(&mut self) -> Result<&mut Regions, exo_abi::Error> {
        use exo_abi::mapping::MapFlags;
        use exo_abi::{Handle, user};
        let page = crate::layout::PAGER_REGIONS as *mut Regions;
        if !self.mapped {
            let (frame, _) = user::frame_allocate(0)?;
            if let Err(error) = user::map(
                frame,
                Handle::SELF_ENVIRONMENT,
                page as u64,
                MapFlags::WRITE,
            ) {
                drop_unmapped_frame(frame);
                return Err(error);
            }
            // SAFETY: the page was just mapped writable; it is page-aligned,
            // large enough (checked above), and nothing refers to it yet.
            unsafe { page.write(Regions::new()) };
            self.mapped = true;
        }
        // SAFETY: as for `get`, with `&mut self` the only borrow.
        Ok(unsafe { &mut *page })
    }
}

/// Drops a capability a client passed the file server as its notification
/// (one whose client is gone, or one that is not a notification). The
/// server never maps what a client passes for one; checked as
/// [`drop_unmapped_frame`] checks, so a rare path only.
pub fn drop_notification(notification: exo_abi::Handle) {
    drop_unmapped_frame(notification);
}

/// Drops a frame capability none of whose frames is mapped in this process
/// (one never mapped, or unmapped again). Panics, as a bad slice index
/// does, if one is: that page might hold Rust objects. The check walks this
/// process's page tables, so this is for error paths, not hot ones.
pub fn drop_unmapped_frame(frame: exo_abi::Handle) {
    if let Ok(identity) = exo_abi::user::capability_identify(frame)
        && identity.kind == exo_abi::syscall::CapabilityKind::Frame
    {
        let start = identity.value * PAGE_SIZE;
        let end = start + (PAGE_SIZE << identity.order);
        let mut mapped_at = None;
        for_each_mapped_page(|page| {
            let physical = exo_abi::user::translate(page).unwrap_or(u64::MAX);
            if mapped_at.is_none() && (start..end).contains(&physical) {
                mapped_at = Some(page);
            }
        });
        if let Some(page) = mapped_at {
            panic!("refusing to drop frame capability {frame:?}: it backs page {page:#x}");
        }
    }
    // SAFETY: checked just above: no page of this process maps these frames
    // (a handle that names no frame capability takes nothing away).
    let _ = unsafe { exo_abi::user::capability_drop(frame) };
}

/// Drops a capability the library OS holds for a child that is gone.
///
/// Not checked at run time: what matters is which capability a page was
/// mapped through, which the page tables do not say. (A child's frames
/// include copies of the capabilities this process maps the boot file
/// system through: the same frames, mapped here through the originals.)
///
/// # Safety
///
/// No page of this process is mapped through `capability` or through one
/// derived from it: dropping it unmaps those, under any reference into them.
pub unsafe fn drop_child_capability(capability: exo_abi::Handle) -> Result<(), exo_abi::Error> {
    // SAFETY: the caller promises that nothing of this process is mapped
    // through it.
    unsafe { exo_abi::user::capability_drop(capability) }
}

/// Changes the protection of this process's page at `page` to `map`.
pub fn protect_own_page(page: u64, map: exo_abi::mapping::MapFlags) -> Result<(), exo_abi::Error> {
    // SAFETY: a page losing write access here is one the pager shares
    // copy-on-write or one `mprotect` was asked to protect: a later write
    // faults and the pager copies it, or ends the process (a segmentation
    // fault, as POSIX wants) — no write is ever silently lost or misdirected.
    unsafe { exo_abi::user::protect(exo_abi::Handle::SELF_ENVIRONMENT, page, map) }
}

/// Gives this process a private copy of its pages at `address`, as many as
/// the run `frame` holds (`2^order` frames, fresh and mapped nowhere): copies
/// them into `frame` through the pager's window, unmaps them, and maps
/// `frame` there with `map`. Panics if one of the pages is writable (a write
/// between the copy and the unmap would be lost), and ends the process if
/// the pages cannot be put back once unmapped.
///
/// References into the pages stay good: the pages hold the same bytes after
/// as before, and nothing of this process runs in between that could read
/// them (the caller holds the pager's lock, so a fault on them waits).
pub fn replace_with_copy(
    frame: exo_abi::Handle,
    order: u32,
    address: u64,
    map: exo_abi::mapping::MapFlags,
) -> Result<(), exo_abi::Error> {
    let pages = (0..1u64 << order).map(|page| address + page * PAGE_SIZE);
    for page in pages.clone() {
        let entry = exo_abi::user::page_table_entry(page).unwrap_or(0);
        assert!(
            entry & exo_abi::user::entry::WRITABLE == 0,
            "page {page:#x} is writable: a copy could miss a write"
        );
    }
    Window::pager(frame, order)?.copy_from(address);
    for page in pages {
        // SAFETY: the copy in `frame` is mapped here again just below, before
        // anything can read the page: the same bytes (read-only, so unchanged
        // since the copy) under every reference into it.
        unsafe { exo_abi::user::unmap(exo_abi::Handle::SELF_ENVIRONMENT, page) }
            .expect("unmap a page being replaced by its copy");
    }
    exo_abi::user::map(frame, exo_abi::Handle::SELF_ENVIRONMENT, address, map)
        .expect("map a private copy where its original was");
    Ok(())
}

/// Unmaps a page of demand-zero memory (heap, stack or `mmap` area) that
/// has not been written since it was mapped: its page-table entry, read
/// here, is present and not dirty, so the page holds only zeros, and
/// whatever refers to it reads the same zeros from the fresh page the
/// pager maps on the next touch. `InvalidState` for any other page. (For
/// giving frames back on request, `paging::give_back`.)
pub fn unmap_clean_page(page: u64) -> Result<(), exo_abi::Error> {
    use crate::layout::{in_heap, in_mmap_area, in_stack};
    use exo_abi::user::entry::{DIRTY, PRESENT};
    let demand_zero = in_heap(page) || in_stack(page) || in_mmap_area(page);
    let entry = exo_abi::user::page_table_entry(page).unwrap_or(0);
    if !demand_zero || entry & PRESENT == 0 || entry & DIRTY != 0 {
        return Err(exo_abi::Error::InvalidState);
    }
    // SAFETY: the page holds zeros and demand-zero paging gives zeros back
    // on the next access (checked above); the caller runs in the upcall
    // handler, so no code of this process writes the page meanwhile.
    unsafe { exo_abi::user::unmap(exo_abi::Handle::SELF_ENVIRONMENT, page) }
}

/// Unmaps a page of an `mmap` region (`munmap`).
pub fn unmap_mmap_page(page: u64) -> Result<(), exo_abi::Error> {
    assert!(crate::layout::in_mmap_area(page));
    // SAFETY: safe code reaches the mmap area only through `mmap::load` and
    // `mmap::store`, raw accesses that hold no reference; an access after
    // `munmap` faults and ends the process.
    unsafe { exo_abi::user::unmap(exo_abi::Handle::SELF_ENVIRONMENT, page) }
}

/// Drops a frame capability of the pager's without walking the page tables
/// (a unit unmapped or replaced by a copy: on every `munmap` and
/// copy-on-write fault, where [`drop_unmapped_frame`]'s walk would cost too
/// much).
///
/// # Safety
///
/// No page of this process maps any of `frame`'s frames: they may be handed
/// out again, and a page still mapping one could then change under a Rust
/// reference.
pub unsafe fn drop_frame_no_longer_mapped(frame: exo_abi::Handle) {
    // SAFETY: the caller promises that no page of this process maps these
    // frames.
    let _ = unsafe { exo_abi::user::capability_drop(frame) };
}

/// Reads the `u64` at `address` in the mmap area.
pub fn mmap_load(address: u64) -> u64 {
    assert!(crate::layout::in_mmap_area(address) && address.is_multiple_of(8));
    // SAFETY: no Rust object lives in the mmap area; an address not mapped
    // (or not readable) faults, and the pager maps it or ends the process.
    unsafe { core::ptr::read_volatile(address as *const u64) }
}

/// Writes the `u64` at `address` in the mmap area.
pub fn mmap_store(address: u64, value: u64) {
    assert!(crate::layout::in_mmap_area(address) && address.is_multiple_of(8));
    // SAFETY: as for `mmap_load`; a write to a read-only page ends the process.
    unsafe { core::ptr::write_volatile(address as *mut u64, value) }
}

unsafe extern "C" {
    fn exo_capture_registers(registers: *mut exo_abi::upcall::Registers) -> u64;
    fn exo_fork_child();
    fn exo_call_on_stack(top: u64, function: extern "C" fn(*mut ()), data: *mut ());
}

/// Saves the callee-saved registers, the stack pointer, the flags and the
/// return address into `registers`, with `rax = 1`, and returns false. A
/// child resumed from them returns from this call a second time, with true.
///
/// Meant for a small `#[inline(never)]` function that, on the `true` path,
/// reads nothing it wrote to its frame after this call (the child's copy of
/// the stack is taken later): `fork::fork_with_quota` is. Always inlined, so
/// that the child resumes in that caller's frame, not in a frame of this
/// wrapper the parent has since overwritten.
///
/// # Safety
///
/// The caller is such a function: a child resumed from `registers` runs on
/// in the caller's frame as the parent left it when the child's stack was
/// copied, and must find there only what it needs.
#[inline(always)]
pub unsafe fn capture_registers(registers: &mut exo_abi::upcall::Registers) -> bool {
    // SAFETY: the assembly writes only `*registers` and preserves every
    // callee-saved register; resuming from it is the caller's promise.
    unsafe { exo_capture_registers(registers) != 0 }
}

/// Where a forked child starts: `rsp = rdi =` an `UpcallFrame` its parent
/// wrote on the child's exception stack.
pub fn fork_child_entry() -> u64 {
    exo_fork_child as *const () as u64
}

/// Runs `function` on the fork stack (`layout::FORK_STACK_TOP`), private to
/// this process. Panics unless `top` is that stack's top and the stack is
/// mapped.
pub fn call_on_stack(top: u64, function: &mut dyn FnMut()) {
    use crate::layout::{FORK_STACK_PAGES, FORK_STACK_TOP};
    assert_eq!(top, FORK_STACK_TOP, "only the fork stack");
    let bottom = FORK_STACK_TOP - FORK_STACK_PAGES * PAGE_SIZE;
    assert!(
        (bottom..FORK_STACK_TOP)
            .step_by(PAGE_SIZE as usize)
            .all(|page| exo_abi::user::translate(page).is_some()),
        "the fork stack is not mapped"
    );
    extern "C" fn trampoline(data: *mut ()) {
        // SAFETY: `data` is the `&mut &mut dyn FnMut()` passed below, alive
        // for the whole call.
        let function = unsafe { &mut *(data as *mut &mut dyn FnMut()) };
        function();
    }
    let mut function = function;
    // SAFETY: the assembly switches to `top`, calls the trampoline, and
    // restores the stack pointer; the stack is mapped (checked above), its
    // top page-aligned, and nothing else uses it: the fork stack is private
    // (never shared with a child) and `fork` runs on one thread.
    unsafe {
        exo_call_on_stack(
            top,
            trampoline,
            &mut function as *mut &mut dyn FnMut() as *mut (),
        )
    }
}

// ---------------------------------------------------------------------------
// Threads (`crate::thread`): switching stacks.

unsafe extern "C" {
    /// Pushes the callee-saved registers, stores `rsp` at `save`, loads
    /// `next` into `rsp`, pops the callee-saved registers and returns on the
    /// new stack.
    fn exo_thread_switch(save: *mut u64, next: u64);
}

/// Words a new thread's stack needs for its first [`switch_threads`]: the
/// six callee-saved registers, then the address `ret` jumps to.
pub const NEW_STACK_WORDS: usize = 7;

/// Switches from the running thread to another: saves the running thread's
/// callee-saved registers on its own stack and its stack pointer in `save`,
/// and continues the thread whose stack pointer is `next`. Returns when some
/// thread switches back to the stack pointer stored in `save`.
///
/// `crate::thread::switch` is the only caller, and calls this with
/// preemption off, so no slot-start upcall sees a half-switched thread.
///
/// # Safety
///
/// `next` is a stack pointer a `switch_threads` stored for a thread that has
/// not run since, or the `rsp` of a fresh stack laid out as
/// [`NEW_STACK_WORDS`] says; and that stack stays allocated until its thread
/// switches away for the last time.
pub unsafe fn switch_threads(save: &core::sync::atomic::AtomicU64, next: u64) {
    // SAFETY: by the caller's promise, `next` points at six saved registers
    // and a return address on a live stack, so the pops and `ret` resume
    // that thread exactly where it switched away (or at its entry); `save`
    // is a live atomic the asm writes one aligned word to. Everything the
    // System V ABI lets a call clobber, the caller of this `extern "C"`
    // function already assumes clobbered.
    unsafe { exo_thread_switch(save.as_ptr(), next) }
}

// rdi = where to save rsp, rsi = the next rsp. The order of pops is the
// reverse of the pushes, and a new stack holds six zeros (rbp = 0 ends
// frame-pointer backtraces) under the thread's entry.
global_asm!(
    r#"
    .pushsection .text.exo_thread_switch, "ax"
    .global exo_thread_switch
exo_thread_switch:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    mov [rdi], rsp
    mov rsp, rsi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret
    .popsection
"#
);

// `exo_capture_registers(registers)`: what a forked child needs to return
// from this call a second time. `exo_call_on_stack(top, function, data)`:
// calls `function(data)` on another stack, keeping the old one in rbp. (The
// forked child's first instruction, `exo_fork_child`, is in `entry.rs`: it
// calls up into `fork`, and this module calls nothing above it.)
global_asm!(
    r#"
    .pushsection .text.exo_fork, "ax"
    .global exo_capture_registers
exo_capture_registers:
    mov [rdi + {rbx}], rbx
    mov [rdi + {rbp}], rbp
    mov [rdi + {r12}], r12
    mov [rdi + {r13}], r13
    mov [rdi + {r14}], r14
    mov [rdi + {r15}], r15
    lea rax, [rsp + 8]
    mov [rdi + {rsp}], rax
    mov rax, [rsp]
    mov [rdi + {rip}], rax
    pushfq
    pop rax
    mov [rdi + {rflags}], rax
    mov qword ptr [rdi + {rax}], 1
    xor eax, eax
    ret

    .global exo_call_on_stack
exo_call_on_stack:
    push rbp
    mov rbp, rsp
    mov rsp, rdi
    mov rdi, rdx
    call rsi
    mov rsp, rbp
    pop rbp
    ret
    .popsection
"#,
    rax = const core::mem::offset_of!(exo_abi::upcall::Registers, rax),
    rbx = const core::mem::offset_of!(exo_abi::upcall::Registers, rbx),
    rbp = const core::mem::offset_of!(exo_abi::upcall::Registers, rbp),
    rsp = const core::mem::offset_of!(exo_abi::upcall::Registers, rsp),
    r12 = const core::mem::offset_of!(exo_abi::upcall::Registers, r12),
    r13 = const core::mem::offset_of!(exo_abi::upcall::Registers, r13),
    r14 = const core::mem::offset_of!(exo_abi::upcall::Registers, r14),
    r15 = const core::mem::offset_of!(exo_abi::upcall::Registers, r15),
    rip = const core::mem::offset_of!(exo_abi::upcall::Registers, rip),
    rflags = const core::mem::offset_of!(exo_abi::upcall::Registers, rflags),
);

/// Calls `found` with the address of every page mapped in this process
/// below `USER_MAP_END` (the kernel's own windows, the start-info page and
/// the view itself, lie above), in address order, from a walk of the
/// process's read-only view of its own page tables. It never maps,
/// allocates or takes a lock.
pub fn for_each_mapped_page(mut found: impl FnMut(u64)) {
    use exo_abi::layout::{PAGE_TABLE_VIEW_SLOT, USER_MAP_END, page_table_entry_address};
    let present = |address: u64, level: u32| {
        let entry = page_table_entry_address(address, level);
        // SAFETY: the kernel maps the page-table view read-only; the walk
        // reads a level only after finding the entry above it present.
        let value = unsafe { core::ptr::read_volatile(entry as *const u64) };
        value & exo_abi::user::entry::PRESENT != 0
    };
    for pml4 in 0..PAGE_TABLE_VIEW_SLOT {
        let top = pml4 << 39;
        if top >= USER_MAP_END || !present(top, 4) {
            continue;
        }
        for pdpt in 0..512u64 {
            let middle = top | pdpt << 30;
            if !present(middle, 3) {
                continue;
            }
            for directory in 0..512u64 {
                let low = middle | directory << 21;
                if !present(low, 2) {
                    continue;
                }
                for table in 0..512u64 {
                    let page = low | table << 12;
                    if present(page, 1) {
                        found(page);
                    }
                }
            }
        }
    }
}

/// Unmaps the plan and trampoline an earlier `exec` left in this process,
/// if any, so that this one can map its own. Nothing here lends a reference
/// into those pages ([`write_plan_word`] and [`enter_exec_trampoline`] use
/// raw accesses), so no reference can outlive them.
pub fn unmap_exec_leftovers() -> Result<(), exo_abi::Error> {
    use crate::layout::{EXEC_PLAN, EXEC_PLAN_PAGES, EXEC_TRAMPOLINE};
    let plan = (0..EXEC_PLAN_PAGES).map(|page| EXEC_PLAN + page * PAGE_SIZE);
    for page in plan.chain([EXEC_TRAMPOLINE]) {
        if exo_abi::user::translate(page).is_some() {
            // SAFETY: no reference into these pages exists: this module
            // lends none, and the earlier exec's trampoline, their only
            // other user, has finished (it started this program).
            unsafe { exo_abi::user::unmap(exo_abi::Handle::SELF_ENVIRONMENT, page)? }
        }
    }
    Ok(())
}

/// Words at the start of the exec plan: unmap count, map count, entry,
/// stack top. Then the addresses to unmap, then (frame, address, flags)
/// triples to map.
pub const EXEC_PLAN_HEADER_WORDS: u64 = 4;

/// Writes word `index` of the exec plan. Panics if that word's page is not
/// mapped writable (`exec` maps the plan pages before writing them).
pub fn write_plan_word(index: u64, value: u64) {
    let address = crate::layout::EXEC_PLAN + index * 8;
    assert!(index < crate::layout::EXEC_PLAN_PAGES * PAGE_SIZE / 8);
    assert!(
        mapped_with(address, exo_abi::user::entry::WRITABLE),
        "the exec plan page of word {index} is not mapped writable"
    );
    // SAFETY: checked just above: an aligned word of a page mapped writable,
    // in the plan's range of the layout, where no Rust object lives.
    unsafe { core::ptr::write_volatile(address as *mut u64, value) }
}

/// Whether the page of `address` is present with every bit of `bits` set in
/// its page-table entry.
fn mapped_with(address: u64, bits: u64) -> bool {
    let wanted = exo_abi::user::entry::PRESENT | bits;
    exo_abi::user::page_table_entry(address).is_some_and(|entry| entry & wanted == wanted)
}

// The exec trampoline: position-independent, it uses no stack and no memory
// but the plan (rdi). It removes the upcall registration (the handler is
// about to go; the new program registers its own) with every argument
// register zeroed, as the kernel checks the options word even for a removal;
// it unmaps every page of the old image, maps every page of the new one,
// loads the new stack and jumps to the new entry. Plan words: [unmap count,
// map count, entry, stack top, addresses to unmap..., (frame, address,
// flags) to map...]. Errors are ignored: there is no one left to tell, and a
// missing page faults in the new program.
global_asm!(
    r#"
    .pushsection .text.exo_exec, "ax"
    .global exo_exec_trampoline_start
    .global exo_exec_trampoline_end
exo_exec_trampoline_start:
    mov rbx, rdi
    mov eax, {set_upcall}
    xor edi, edi
    xor esi, esi
    xor edx, edx
    xor r10d, r10d
    xor r8d, r8d
    syscall
    mov r12, [rbx]
    lea r13, [rbx + 32]
2:  test r12, r12
    jz 3f
    mov eax, {unmap}
    xor edi, edi
    mov rsi, [r13]
    syscall
    add r13, 8
    dec r12
    jmp 2b
3:  mov r12, [rbx + 8]
4:  test r12, r12
    jz 5f
    mov eax, {map}
    mov rdi, [r13]
    xor esi, esi
    mov rdx, [r13 + 8]
    mov r10, [r13 + 16]
    syscall
    add r13, 24
    dec r12
    jmp 4b
5:  mov rsp, [rbx + 24]
    mov rax, [rbx + 16]
    xor edi, edi
    xor ebp, ebp
    jmp rax
exo_exec_trampoline_end:
    .popsection
"#,
    unmap = const exo_abi::syscall::Sysnum::Unmap as u64,
        map = const exo_abi::syscall::Sysnum::Map as u64,
    set_upcall = const exo_abi::syscall::Sysnum::SetUpcall as u64,
);

unsafe extern "C" {
    static exo_exec_trampoline_start: u8;
    static exo_exec_trampoline_end: u8;
}

/// The exec trampoline's machine code, to copy outside the image.
pub fn exec_trampoline_code() -> &'static [u8] {
    let start = &raw const exo_exec_trampoline_start as usize;
    let end = &raw const exo_exec_trampoline_end as usize;
    // SAFETY: the two labels bound the trampoline in this image's text,
    // which is mapped readable and never changes.
    unsafe { core::slice::from_raw_parts(start as *const u8, end - start) }
}

/// Runs the exec trampoline at `layout::EXEC_TRAMPOLINE` with the plan at
/// `layout::EXEC_PLAN`: this program ends, and the plan's starts in the same
/// environment. Panics, and runs nothing, unless the trampoline page holds
/// [`exec_trampoline_code`] and is mapped executable, and every plan word
/// the header counts lies in a page that is mapped.
pub fn enter_exec_trampoline() -> ! {
    use crate::layout::{EXEC_PLAN, EXEC_PLAN_PAGES, EXEC_TRAMPOLINE};
    let code = exec_trampoline_code();
    assert!(
        mapped_with(EXEC_TRAMPOLINE, 0)
            && exo_abi::user::page_table_entry(EXEC_TRAMPOLINE)
                .is_some_and(|entry| entry & exo_abi::user::entry::NO_EXECUTE == 0),
        "the exec trampoline is not mapped executable"
    );
    assert!(code.len() <= PAGE_SIZE as usize, "a trampoline of one page");
    let copied = (0..code.len()).all(|offset| {
        // SAFETY: the trampoline page is mapped (checked just above) and
        // holds no Rust object; a raw volatile read makes no reference.
        let byte = unsafe { core::ptr::read_volatile((EXEC_TRAMPOLINE as *const u8).add(offset)) };
        byte == code[offset]
    });
    assert!(
        copied,
        "the exec trampoline page does not hold the trampoline"
    );
    assert!(mapped_with(EXEC_PLAN, 0), "no exec plan");
    let plan_word = |index: u64| {
        // SAFETY: called for the counts, words 0 and 1, of the first plan
        // page, checked mapped just above; a raw volatile read makes no
        // reference.
        unsafe { core::ptr::read_volatile((EXEC_PLAN + index * 8) as *const u64) }
    };
    let words = plan_word(0)
        .checked_add(plan_word(1).saturating_mul(3))
        .and_then(|listed| listed.checked_add(EXEC_PLAN_HEADER_WORDS))
        .filter(|&words| words <= EXEC_PLAN_PAGES * PAGE_SIZE / 8)
        .expect("the exec plan's counts overrun it");
    let pages = words.div_ceil(PAGE_SIZE / 8);
    assert!(
        (0..pages).all(|page| mapped_with(EXEC_PLAN + page * PAGE_SIZE, 0)),
        "the exec plan is not all mapped"
    );
    // SAFETY: checked just above: the code jumped to is the trampoline,
    // mapped executable, and every word of the plan it reads is mapped. It
    // never returns: this program, and every reference it holds, ends here,
    // and the one the plan describes starts in its place.
    unsafe {
        core::arch::asm!(
            "jmp {}",
            in(reg) EXEC_TRAMPOLINE,
            in("rdi") EXEC_PLAN,
            options(noreturn)
        )
    }
}
