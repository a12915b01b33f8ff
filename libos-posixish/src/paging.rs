//! The library OS's pager: the fault handler that makes the heap, the stack
//! and `mmap` regions appear as they are used, and resolves copy-on-write.
//!
//! The kernel delivers every fault of the process here (an upcall on the
//! exception stack). A page fault on a not-present page in the heap's range
//! or in the stack's growth range is answered with zeroed memory mapped
//! writable — a whole aligned 64 KiB run where it fits (one capability and
//! one fault for sixteen pages; the frame policy may choose another size),
//! else the one page; in an `mmap` region,
//! with a zeroed page mapped with the region's protection. A write to a page
//! `fork` shared copies its unit (`pager_units`) into fresh frames, or, if no
//! other process can still hold it, just makes it writable again. The
//! faulting code then resumes without entering the kernel. A fault in the
//! boot file system maps the run that holds it (`bootfs`), before and
//! without the pager's lock.
//! Anything else — the guard page below the stack, a null pointer, a write
//! to code or to a read-only mapping — is refused, and the upcall dispatcher
//! (`upcall_dispatch`) ends the process like a segmentation fault (status
//! 139). The pager never dispatches upcalls nor ends the process itself.
//!
//! What the pager holds is in one `Pager` behind a lock; its table of units
//! and its `mmap` regions live in pages of its own (`raw::PagerTable`,
//! `raw::RegionsPage`), mapped when first needed. Main code holds the
//! lock only in short sections that cannot fault (they touch the stack they
//! probed beforehand, the data segment and the pager's pages, which are
//! never shared, and system calls), so the handler never finds it held; if
//! it ever did, it would end the process rather than wait forever.
//!
//! Which frame backs a page, how many pages a fault maps and how many frames
//! go back when the kernel asks are a policy (`FramePolicy`), one per
//! program: it may ask for frames of a given colour (`colour`), or a
//! specific frame.

use exo_abi::mapping::{MAX_FRAME_ORDER, MapFlags};
use exo_abi::syscall::UpcallOptions;
use exo_abi::trace::Kind;
use exo_abi::upcall::UpcallFrame;
use exo_abi::{Error, Handle, user};

use crate::layout::{
    EXCEPTION_STACK_PAGES, EXCEPTION_STACK_TOP, HANDOVER, HANDOVER_PAGES, HEAP_END, HEAP_START,
    IMAGE_START, STACK_LIMIT, STACK_TOP, in_heap, in_mmap_area, in_stack,
};
use crate::pager_units::{Unit, Units, flags};
use crate::raw::{PagerTable, RegionsPage};
use crate::regions::Protection;
use crate::{bootfs, info_page, raw, upcall_handler};

const PAGE_FAULT: u64 = 14;
/// Page-fault error code bit 0: the page was present (a protection fault).
const PROTECTION: u64 = 1;
/// Page-fault error code bit 1: the access was a write.
const WRITE_ACCESS: u64 = 2;
/// The exit status of a process ended by a bad memory access (128 + SIGSEGV).
pub const SEGFAULT_STATUS: i32 = 139;

/// log2 of the pages the pager maps at once where it can, unless the frame
/// policy chooses otherwise ([`FramePolicy::run_order`]).
pub const RUN_ORDER: u32 = 4;
const PAGE_SIZE: u64 = exo_abi::layout::PAGE_SIZE;

/// The pager's policy, one per program: where new frames come from, how
/// many pages a demand-zero fault maps at once, and how many frames to give
/// back when the kernel asks for some. Only `allocate` must be written; the
/// other two default to what [`AnyFrame`] does.
pub trait FramePolicy: Sync {
    /// A fresh capability for `2^order` contiguous frames, and the first frame number.
    fn allocate(&self, order: u32) -> Result<(Handle, u64), Error>;

    /// log2 of the pages a fault in the heap or the stack maps at once: the
    /// aligned run around the fault, when it lies in the range and none of its
    /// pages is mapped (else the one page). 0 maps a page at a time; more
    /// than `MAX_FRAME_ORDER` (10: 4 MiB) counts as that. A run costs one
    /// capability and one fault, and frames the program may never touch.
    fn run_order(&self) -> u32 {
        RUN_ORDER
    }

    /// How many frames to give back when the kernel asks for `wanted`
    /// (visible revocation, chapter 2.6). The pager gives back at most that
    /// many, and only frames it can rebuild for nothing; fewer than `wanted`
    /// and the kernel takes the rest by force at its deadline, more (up to
    /// `u64::MAX`: all it can) and the program keeps less memory it is not
    /// using. Runs in the upcall handler: it must not block, allocate or fault.
    fn frames_to_give_back(&self, wanted: u64) -> u64 {
        wanted
    }
}

/// Any free frames, as the kernel chooses; runs of [`RUN_ORDER`]; every
/// frame the pager can rebuild goes back when the kernel asks.
#[derive(Debug)]
pub struct AnyFrame;

impl FramePolicy for AnyFrame {
    fn allocate(&self, order: u32) -> Result<(Handle, u64), Error> {
        user::frame_allocate(order)
    }
}

/// Everything the pager knows and decides.
pub(crate) struct Pager {
    /// In pages of their own, mapped as the table grows (`raw::PagerTable`).
    pub(crate) units: Units<PagerTable>,
    /// In a page of their own, mapped at the first `mmap` (`raw::RegionsPage`).
    pub(crate) regions: RegionsPage,
    /// `None`: [`AnyFrame`].
    policy: Option<&'static dyn FramePolicy>,
}

static PAGER: spin::Mutex<Pager> = spin::Mutex::new(Pager {
    units: Units::new(PagerTable::new()),
    regions: RegionsPage::new(),
    policy: None,
});

/// How a write to a copy-on-write unit is resolved ([`Pager::copy_on_write`]),
/// named by `fork` before it marks the first unit: only a program that
/// forks (or a child it forked, which is the same program) has such units.
/// Reaching the copying through this pointer keeps it out of every other
/// program, as `net::DHCP` keeps the DHCP client out.
type CopyOnWrite = fn(&mut Pager, Unit, MapFlags) -> Result<(), Error>;
static COPY_ON_WRITE: spin::Once<CopyOnWrite> = spin::Once::new();

/// Links copy-on-write into this program (`fork` calls it first).
pub(crate) fn enable_copy_on_write() {
    COPY_ON_WRITE.call_once(|| Pager::copy_on_write);
}

/// Whether some code holds the pager's lock (then a thread must not be
/// preempted: another thread's fault would find the lock taken).
pub(crate) fn busy() -> bool {
    PAGER.is_locked()
}

/// The pager, for a main-code section that must not fault (see the module
/// docs): the stack it will use is touched first, so it is mapped and private.
pub(crate) fn lock() -> spin::MutexGuard<'static, Pager> {
    let mut probe = [0u8; 4096];
    core::hint::black_box(&mut probe);
    PAGER.lock()
}

/// The pager, when the caller runs on a stack that is never shared (the
/// exception stack, the fork stack).
pub(crate) fn lock_on_private_stack() -> spin::MutexGuard<'static, Pager> {
    PAGER.lock()
}

/// Chooses where the pager's frames come from from now on (frames already
/// mapped stay where they are). Call it first thing in `main`.
pub fn set_frame_policy(policy: &'static dyn FramePolicy) {
    lock().policy = Some(policy);
}

/// Maps a zeroed frame writable at `page` in this process; not recorded as
/// a unit (for private pages: the exception stack, the fork stack).
pub fn map_zeroed(page: u64) -> Result<(), Error> {
    let (frame, _) = lock().allocate(0)?;
    user::map(frame, Handle::SELF_ENVIRONMENT, page, MapFlags::WRITE)
        .inspect_err(|_| raw::drop_unmapped_frame(frame))
}

impl Pager {
    fn policy(&self) -> &'static dyn FramePolicy {
        self.policy.unwrap_or(&AnyFrame)
    }

    /// A fresh capability for `2^order` frames from the frame policy, with
    /// its slot of the table ready (`Units::make_room`), so that recording
    /// it once mapped cannot fail; `OutOfMemory` if the table cannot grow.
    pub(crate) fn allocate(&mut self, order: u32) -> Result<(Handle, u64), Error> {
        let (frame, first) = self.policy().allocate(order)?;
        if !self.units.make_room(frame) {
            raw::drop_unmapped_frame(frame);
            return Err(Error::OutOfMemory);
        }
        Ok((frame, first))
    }

    fn record(&mut self, handle: Handle, address: u64, order: u32, unit_flags: u8) {
        // Fails only if the table cannot grow: a handle beyond it (cannot
        // happen: the kernel's table has MAX_UNITS slots), or no frame for its
        // next page. What the pager allocates has its slot already
        // (`allocate`); a page recorded at start (`init`, `adopt_handover`)
        // without one would never be shared or freed.
        let _ = self.units.insert(Unit {
            handle,
            address,
            order: order as u8,
            flags: flags::MAPPED | unit_flags,
            children: 0,
        });
    }

    /// Maps a fresh unit of `2^order` zeroed frames at `address` and records it.
    pub(crate) fn map_new(
        &mut self,
        address: u64,
        order: u32,
        map: MapFlags,
        unit_flags: u8,
    ) -> Result<(), Error> {
        let (frame, _) = self.allocate(order)?;
        if let Err(error) = user::map(frame, Handle::SELF_ENVIRONMENT, address, map) {
            raw::drop_unmapped_frame(frame);
            return Err(error);
        }
        self.record(frame, address, order, unit_flags);
        Ok(())
    }

    /// Maps zeroed memory writable around `address`, which lies in a range
    /// the process may grow into (`within`): the aligned run containing it if
    /// the whole run is in the range and free, else its page.
    fn grow_at(&mut self, address: u64, within: core::ops::Range<u64>) -> Result<(), Error> {
        exo_abi::user::trace(Kind::DemandZero, [address & !(PAGE_SIZE - 1), 0]);
        let order = self.policy().run_order().min(MAX_FRAME_ORDER);
        let run_bytes = PAGE_SIZE << order;
        let run = address & !(run_bytes - 1);
        let run_fits = within.contains(&run) && within.contains(&(run + run_bytes - 1));
        // Part of the run may be mapped already (the first stack pages, which
        // the parent maps one by one): then the kernel would refuse the run,
        // so look first rather than allocate 16 frames to give them back.
        let run_free = || {
            (run..run + run_bytes)
                .step_by(PAGE_SIZE as usize)
                .all(|page| user::translate(page).is_none())
        };
        if run_fits && run_free() && self.map_new(run, order, MapFlags::WRITE, 0).is_ok() {
            return Ok(());
        }
        self.map_new(address & !(PAGE_SIZE - 1), 0, MapFlags::WRITE, 0)
    }

    /// How a unit is mapped when this process may write it, or `None` if it may not.
    fn writable_flags(&self, unit: &Unit) -> Option<MapFlags> {
        if unit.has(flags::IMAGE) {
            None
        } else if in_mmap_area(unit.address) {
            let protection = self.regions.get()?.find(unit.address)?.protection;
            protection
                .allows(Protection::WRITE)
                .then(|| protection.map_flags())
        } else {
            Some(MapFlags::WRITE)
        }
    }

    /// Answers a page fault at `address`; `Err` says why it is a segfault.
    fn resolve(&mut self, address: u64, error: u64) -> Result<(), &'static str> {
        if error & PROTECTION == 0 {
            // LAB 3.1 BEGIN: demand-zero heap, stack and mmap pages
            if in_heap(address) {
                return self
                    .grow_at(address, HEAP_START..HEAP_END)
                    .map_err(|_| "out of memory growing the heap");
            }
            if in_stack(address) {
                return self
                    .grow_at(address, STACK_LIMIT..STACK_TOP)
                    .map_err(|_| "out of memory growing the stack");
            }
            let region = self
                .regions
                .get()
                .and_then(|regions| regions.find(address))
                .ok_or("no mapping there")?;
            if region.protection == Protection::NONE {
                return Err("the mapping allows no access");
            }
            let page = address & !(PAGE_SIZE - 1);
            exo_abi::user::trace(Kind::DemandZero, [page, 0]);
            return self
                .map_new(page, 0, region.protection.map_flags(), 0)
                .map_err(|_| "out of memory for an mmap page");
            // LAB 3.1 STUB
            // // Lab 3.1: a fault on a missing page in the heap or the stack grows it
            // // (`grow_at`); one in an `mmap` region maps a zeroed page with the
            // // region's protection; anywhere else it is a segmentation fault.
            // return Err("lab 3.1: a fault on a missing page is not handled yet");
            // LAB 3.1 END
        }
        if error & WRITE_ACCESS == 0 {
            return Err("protection fault");
        }
        let unit = self
            .units
            .mapped_at(address)
            .ok_or("write to a read-only page")?;
        let map = self
            .writable_flags(&unit)
            .ok_or("write to a read-only mapping")?;
        let copy_on_write = COPY_ON_WRITE
            .get()
            .filter(|_| unit.has(flags::COPY_ON_WRITE))
            .ok_or("write to a read-only mapping")?;
        exo_abi::user::trace(Kind::CopyOnWrite, [address & !(PAGE_SIZE - 1), 0]);
        copy_on_write(self, unit, map).map_err(|_| "out of memory copying a shared page")
    }

    /// Gives this process a private, writable copy of `unit`.
    fn copy_on_write(&mut self, unit: Unit, map: MapFlags) -> Result<(), Error> {
        // LAB 4.2 BEGIN: resolve a copy-on-write fault
        // No child holds it and it is not the parent's: this process is the
        // last that can map these frames, so they need no copy.
        if unit.children == 0 && !unit.has(flags::INHERITED) {
            for page in unit.page_addresses() {
                raw::protect_own_page(page, map)?;
            }
            if let Some(mut unit) = self.units.get_mut(unit.handle) {
                unit.flags &= !flags::COPY_ON_WRITE;
            }
            return Ok(());
        }
        // A run the policy cannot give (a coloured policy gives single
        // frames) is copied a page at a time.
        let (order, first) = match self.allocate(unit.order.into()) {
            Ok(run) => (u32::from(unit.order), Some(run)),
            Err(_) => (0, None),
        };
        let mut fresh = first;
        for chunk in (0..unit.pages()).step_by(1 << order) {
            let (frame, _) = match fresh.take() {
                Some(run) => run,
                None => self.allocate(order)?,
            };
            let address = unit.address + chunk * PAGE_SIZE;
            raw::replace_with_copy(frame, order, address, map)
                .inspect_err(|_| raw::drop_unmapped_frame(frame))?;
            let execute = unit.flags & flags::EXECUTE;
            self.record(frame, address, order, execute);
        }
        self.forget_mapping(unit.handle);
        Ok(())
        // LAB 4.2 STUB
        // // Lab 4.2: if nobody else can map the unit's frames, make its pages
        // // writable again; otherwise copy it into fresh frames
        // // (`raw::replace_with_copy`), record them, and forget the shared unit.
        // // Until then every write to a shared page is a segmentation fault.
        // let _ = (unit, map);
        // Err(Error::InvalidState)
        // LAB 4.2 END
    }

    /// The unit `handle` is no longer mapped here: its capability goes,
    /// unless children still hold capabilities derived from it. Panics if
    /// its pages still map its frames.
    pub(crate) fn forget_mapping(&mut self, handle: Handle) {
        let Some(mut unit) = self.units.get_mut(handle) else {
            return;
        };
        let first = user::capability_identify(handle).map_or(u64::MAX, |frame| frame.value);
        let frames = first..first.saturating_add(unit.pages());
        assert!(
            unit.page_addresses().all(|page| user::translate(page)
                .is_none_or(|physical| !frames.contains(&(physical / PAGE_SIZE)))),
            "unit at {:#x} is still mapped",
            unit.address
        );
        if unit.children > 0 {
            unit.flags &= !(flags::MAPPED | flags::COPY_ON_WRITE);
        } else {
            drop(unit);
            self.units.remove(handle);
            // SAFETY: the pager maps a unit's frames at the unit's pages only
            // (windows map fresh frames, and only while they live), and those
            // pages no longer map them (checked just above).
            #[allow(unsafe_code)]
            unsafe {
                raw::drop_frame_no_longer_mapped(handle)
            };
        }
    }
}

/// Answers a revocation request (the upcall dispatcher's `RevokeFrames`):
/// gives back up to `wanted` frames, or fewer if the frame policy says so
/// ([`FramePolicy::frames_to_give_back`]), that it can rebuild for nothing — units of
/// demand-zero memory (heap, stack, `mmap`) of its own, shared with nobody,
/// no page of which was written since it was mapped, which fault back in as
/// zeros — and never a page it cannot rebuild. Returns how many frames went
/// back. Gives none while main code holds the pager (it cannot be asked to
/// let go in the middle of a change).
pub(crate) fn give_back(wanted: u64) -> u64 {
    // LAB 3.2 BEGIN: answer a revocation request with clean pages
    let Some(mut pager) = PAGER.try_lock() else {
        return 0;
    };
    let wanted = pager.policy().frames_to_give_back(wanted);
    let mut given = 0;
    while given < wanted {
        let Some(unit) = pager.units.iter().find(rebuildable) else {
            break;
        };
        if unit
            .page_addresses()
            .any(|page| raw::unmap_clean_page(page).is_err())
        {
            break; // cannot happen: `rebuildable` checked every page
        }
        pager.forget_mapping(unit.handle);
        given += unit.pages();
    }
    given
    // LAB 3.2 STUB
    // // Lab 3.2: give back as many of the `wanted` frames as the frame policy
    // // says, from units that `rebuildable` accepts (unmap each clean page, then
    // // `forget_mapping`); none while the pager is held elsewhere. Until then
    // // the kernel takes them by force.
    // let _ = wanted;
    // 0
    // LAB 3.2 END
}

/// Whether `unit` is demand-zero memory the pager could give back and map
/// again as zeros: its own (no child shares it, not inherited, not image),
/// every page present and none written.
fn rebuildable(unit: &Unit) -> bool {
    use exo_abi::user::entry::{DIRTY, PRESENT};
    let own = unit.has(flags::MAPPED)
        && unit.flags & (flags::COPY_ON_WRITE | flags::INHERITED | flags::IMAGE) == 0
        && unit.children == 0;
    let demand_zero = in_heap(unit.address) || in_stack(unit.address) || in_mmap_area(unit.address);
    own && demand_zero
        && unit.page_addresses().all(|page| {
            user::page_table_entry(page)
                .is_some_and(|entry| entry & PRESENT != 0 && entry & DIRTY == 0)
        })
}

/// A child that shared `handles` has been reaped: they are one holder fewer.
pub(crate) fn release_shared(handles: &[Handle]) {
    let mut pager = lock();
    for &handle in handles {
        let Some(mut unit) = pager.units.get_mut(handle) else {
            continue;
        };
        unit.children = unit.children.saturating_sub(1);
        if unit.children == 0 && !unit.has(flags::MAPPED) {
            drop(unit);
            pager.forget_mapping(handle);
        }
    }
}

/// Maps the exception stack, registers the upcall dispatcher, and records the
/// pages the kernel mapped for the first process (so `fork` can share its
/// code and stack instead of copying them).
pub fn init() {
    let bottom = EXCEPTION_STACK_TOP - EXCEPTION_STACK_PAGES * PAGE_SIZE;
    for page in (bottom..EXCEPTION_STACK_TOP).step_by(PAGE_SIZE as usize) {
        map_zeroed(page).expect("map the exception stack");
    }
    register_handler();
    if info_page::own().is_none() {
        let start = user::start_info();
        let mut pager = lock();
        for page in start.pages() {
            let map = MapFlags::from_bits_truncate(page.flags);
            let handle = Handle::from_raw(page.frame);
            if in_stack(page.address) {
                pager.record(handle, page.address, 0, 0);
            } else if (IMAGE_START..HEAP_START).contains(&page.address)
                && !map.contains(MapFlags::WRITE)
            {
                let execute = if map.contains(MapFlags::EXECUTE) {
                    flags::EXECUTE
                } else {
                    0
                };
                pager.record(handle, page.address, 0, flags::IMAGE | execute);
            }
        }
    }
}

/// In a forked child, before anything can fault: forgets the parent's units
/// (the data segment came as a copy) and records the capabilities the
/// parent granted, listed on the handover page.
pub(crate) fn adopt_handover() {
    let mut pager = lock_on_private_stack();
    pager.units.clear();
    if user::translate(HANDOVER).is_none() {
        return;
    }
    let word = |bytes: &[u8], index: usize| {
        u64::from_le_bytes(bytes[8 * index..8 * index + 8].try_into().expect("8 bytes"))
    };
    let limit = (HANDOVER_PAGES * PAGE_SIZE) as usize;
    let count = word(raw::mapped_bytes(HANDOVER, 8), 0) as usize;
    let length = (8 + 24 * count).min(limit);
    let bytes = raw::mapped_bytes(HANDOVER, length);
    for entry in 0..(length - 8) / 24 {
        let [address, handle, packed] = [0, 1, 2].map(|at| word(bytes, 1 + 3 * entry + at));
        let unit_flags = (packed >> 8) as u8 & !flags::MAPPED;
        pager.record(
            Handle::from_raw(handle),
            address,
            packed as u8 as u32,
            unit_flags,
        );
    }
}

/// Registers the upcall dispatcher on the exception stack (which must be
/// mapped), without slot-start upcalls.
pub(crate) fn register_handler() {
    upcall_handler::register(UpcallOptions::empty()).expect("register upcalls");
}

/// Answers a fault (the upcall dispatcher's `Fault`); `Err` says why it is
/// a segmentation fault.
pub(crate) fn on_fault(frame: &UpcallFrame) -> Result<(), &'static str> {
    let [vector, error, address] = frame.info;
    let not_present = error & PROTECTION == 0;
    if vector != PAGE_FAULT {
        return Err("not a page fault");
    }
    // The boot file system needs nothing of the pager's: its runs are
    // mapped on first touch even while main code holds the pager.
    match not_present
        .then(|| bootfs::resolve_fault(address))
        .flatten()
    {
        Some(Ok(())) => Ok(()),
        Some(Err(_)) => Err("cannot map the boot file system"),
        None => match PAGER.try_lock() {
            Some(mut pager) => pager.resolve(address, error),
            None => Err("fault while the pager was busy"),
        },
    }
}
