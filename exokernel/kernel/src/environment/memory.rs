//! Frames and mappings: physical memory as environments see it.
//!
//! An environment allocates frames by number (any, or a specific one), is
//! charged for them against its quota, and holds a root capability for
//! them. It maps a frame into an address space through a capability that
//! allows it — the binding is checked here, once; afterwards the hardware
//! page tables are the fast path. Every mapping is recorded against the
//! capability that authorised it, so removing the capability unmaps it.

use exo_abi::mapping::{MAX_BATCH, MapFlags, MapRequest};
use exo_abi::syscall::MapPart;
use exo_abi::{Error, Handle, Rights};
use exo_kernel_core::caps::NodeId;
use exo_kernel_core::frames::FrameError;
use exo_kernel_core::mappings::tag_of;
use exo_kernel_core::memory_map::FRAME_SIZE;

use super::kernel_memory::MAPPING_RECORD_BYTES;
use super::user_memory::UserRange;
use super::{Allocating, EnvironmentId, Object, Step, System};
use crate::memory::lent_frames;
use x86_64::structures::paging::PageTableFlags as PageFlags;

impl System {
    /// Allocates `2^order` zeroed frames for `owner`, charged to its quota,
    /// all at once (the first program's image).
    pub fn allocate_frames(
        &mut self,
        owner: EnvironmentId,
        order: u64,
        at: Option<u64>,
    ) -> Result<(Handle, u64), Error> {
        match self.allocate_frames_some(owner, order, at, &mut || true)? {
            Step::Done(allocated) => Ok(allocated),
            Step::Stopped(_) => unreachable!("a share that never ends"),
        }
    }

    /// `FrameAllocate`: `2^order` zeroed frames for `owner`, charged to its
    /// quota; `at` asks for the run starting at that frame number. The run
    /// is zeroed a piece at a time (`lent_frames::Zeroing`) while `go_on`
    /// allows — a run of order 10 takes about five ticks — and a call that
    /// stops keeps the run, taken and charged, in `owner`'s record: taken
    /// again, it goes on with it. Runs of one order are alike, so whichever
    /// call of that order and place comes next takes it; a call for another
    /// gives it back first.
    pub fn allocate_frames_some(
        &mut self,
        owner: EnvironmentId,
        order: u64,
        at: Option<u64>,
        go_on: &mut dyn FnMut() -> bool,
    ) -> Result<Step<(Handle, u64)>, Error> {
        if order > u64::from(exo_abi::mapping::MAX_FRAME_ORDER) {
            return Err(Error::InvalidArgument);
        }
        // A frame number whose address does not fit in 64 bits names no frame.
        let address = match at {
            Some(first) => Some(
                first
                    .checked_mul(FRAME_SIZE)
                    .ok_or(Error::FrameUnavailable)?,
            ),
            None => None,
        };
        let count = 1 << order;
        let capability_bytes = self.capability_cost(owner);
        // One look-up for the whole call: the record is borrowed beside the
        // capability space, a field of its own.
        let environment = self
            .environments
            .get_mut(&owner)
            .expect("the caller is a live environment");
        let mut run = match environment.allocating.take() {
            Some(pending) if pending.order == order && pending.at == at => pending.run,
            other => {
                if let Some(other) = other {
                    // Its run goes back as `other` is dropped.
                    environment.frames.uncharge(1 << other.order);
                }
                environment.charge(count)?;
                // Zeroed here: a frame may have held another environment's
                // data, and is never handed on so.
                match lent_frames::Zeroing::take(order as u32, address) {
                    Ok(run) => run,
                    Err(error) => {
                        environment.frames.uncharge(count);
                        return Err(match (at, error) {
                            (None, _) => Error::OutOfMemory,
                            (Some(_), FrameError::Misaligned) => Error::Misaligned,
                            (Some(_), _) => Error::FrameUnavailable,
                        });
                    }
                }
            }
        };
        while !run.zero_piece() {
            if !go_on() {
                environment.allocating = Some(Allocating { order, at, run });
                return Ok(Step::Stopped(0));
            }
        }
        if let Err(error) = environment.charge_kernel(capability_bytes) {
            environment.frames.uncharge(count);
            return Err(error); // the run goes back as it is dropped
        }
        let address = run.lend();
        let object = Object::Frame {
            first: address / FRAME_SIZE,
            order: order as u8,
        };
        match self.capabilities.insert_root(owner, object, Rights::FRAME) {
            Ok(handle) => {
                environment.frames_held += count;
                Ok(Step::Done((handle, address / FRAME_SIZE)))
            }
            Err(error) => {
                lent_frames::free(address, order as u32).expect("just allocated");
                environment.frames.uncharge(count);
                environment.kernel_bytes.uncharge(capability_bytes);
                Err(error)
            }
        }
    }

    /// Maps the frames `frame` names (all, or the `part` of them packed as
    /// `MapPart`) at `address` in the environment `target` names, both
    /// capabilities in `caller`'s table; all at once (the first program's
    /// image).
    pub fn map(
        &mut self,
        caller: EnvironmentId,
        frame: Handle,
        target: Handle,
        address: u64,
        flags: u64,
        part: u64,
    ) -> Result<(), Error> {
        let request = [frame.to_raw(), target.to_raw(), address, flags, part];
        match self.map_some(caller, request, MapProgress::FRESH, &mut || true)? {
            Step::Done(()) => Ok(()),
            Step::Stopped(_) => unreachable!("a share that never ends"),
        }
    }

    /// `Map` of `[frame, target, address, flags, part]`, a share at a time
    /// from `progress`. A run of more than [`MAP_PART_PAGES`] pages — up to
    /// 1,024, about 2.5 ticks of work — is mapped a part at a time, each
    /// part with a mapping record of its own, while `go_on` allows; a call
    /// that stops answers `Stopped` with its progress packed, which the call
    /// taken again brings back (`syscalls.rs`). All or nothing as at once:
    /// the whole range is checked free first, and if a part fails (another
    /// environment mapped into the range meanwhile, or the page tables'
    /// frames ran out) the parts before it are unmapped again, a share at a
    /// time, before the error is answered.
    pub fn map_some(
        &mut self,
        caller: EnvironmentId,
        [frame, target, address, flags, part]: [u64; 5],
        progress: MapProgress,
        go_on: &mut dyn FnMut() -> bool,
    ) -> Result<Step<()>, Error> {
        let flags = MapFlags::from_bits(flags).ok_or(Error::InvalidArgument)?;
        let capability = self.capabilities.lookup(caller, Handle::from_raw(frame))?;
        let Object::Frame { first, order } = *capability.object else {
            return Err(Error::WrongKind);
        };
        let node = capability.node;
        if self.capabilities.is_going(node) {
            // On its way out: a revoke or drop of it has begun.
            return Err(Error::StaleHandle);
        }
        Self::check_map_rights(capability.rights, flags)?;
        let target = self.target_to_build_in(caller, Handle::from_raw(target), Rights::MAP)?;
        let run = 1u64 << order;
        let (skip, pages) = match MapPart::unpack(part) {
            None => (0, run),
            Some(MapPart { first, count }) => {
                let (skip, pages) = (u64::from(first), u64::from(count));
                if pages == 0 || skip + pages > run {
                    return Err(Error::InvalidArgument);
                }
                (skip, pages)
            }
        };
        Self::check_user_pages(address, pages)?;
        let physical = (first + skip) * FRAME_SIZE;
        if progress == MapProgress::FRESH && pages <= MAP_PART_PAGES {
            return self
                .map_pages(target, node, physical, pages, address, flags)
                .map(Step::Done);
        }
        // Progress comes back from the caller's registers: whatever it says
        // must be a state some share could have left.
        let MapProgress {
            pages: mut done,
            failed,
        } = progress;
        if done >= pages || pages <= MAP_PART_PAGES {
            return Err(Error::InvalidArgument);
        }
        if let Some(error) = failed {
            return self.unmap_parts(target, node, address, done, error, go_on);
        }
        if done == 0 && self.environment(target).space.any_mapped(address, pages) {
            return Err(Error::AlreadyMapped);
        }
        let page = |index: u64| address + index * FRAME_SIZE;
        loop {
            let part = (pages - done).min(MAP_PART_PAGES);
            let frames = physical + done * FRAME_SIZE;
            if let Err(error) = self.map_pages(target, node, frames, part, page(done), flags) {
                return self.unmap_parts(target, node, address, done, error, go_on);
            }
            done += part;
            if done == pages {
                // One record for the run, as a `Map` done at once leaves it
                // (a record a part would crowd the index: every spawned child
                // maps the boot archive's runs) — unless a page of it was
                // unmapped meanwhile, when the parts stay as they are, or the
                // heap is nearly full (a joined run may take a new node).
                if crate::memory::heap::has_room() {
                    self.mappings.join(node, target, address, pages);
                }
                return Ok(Step::Done(()));
            }
            if !go_on() {
                return Ok(Step::Stopped(MapProgress::mapped(done).pack()));
            }
        }
    }

    /// Unmaps again the first `done` pages a `Map` of a large run mapped at
    /// `address` in `target` through `node`, from the last part down, a
    /// part at a time while `go_on` allows; then answers `error`. A page
    /// someone else unmapped (or mapped again through another capability)
    /// meanwhile is left alone.
    fn unmap_parts(
        &mut self,
        target: EnvironmentId,
        node: NodeId,
        address: u64,
        mut done: u64,
        error: Error,
        go_on: &mut dyn FnMut() -> bool,
    ) -> Result<Step<()>, Error> {
        // A page taken out of a run may cut it in two, which takes a node,
        // as `Unmap` does: with the heap nearly full the parts stay mapped
        // (recorded and charged), and the call answers as `Unmap` would.
        if !crate::memory::heap::has_room() {
            return Err(Error::OutOfMemory);
        }
        let environment = self
            .environments
            .get_mut(&target)
            .expect("a target is a live environment");
        while done > 0 {
            let start = (done - 1) / MAP_PART_PAGES * MAP_PART_PAGES;
            for index in start..done {
                let page = address + index * FRAME_SIZE;
                if self.mappings.remove_page(node, target, page) {
                    let _ = environment.space.unmap(page);
                    environment.kernel_bytes.uncharge(MAPPING_RECORD_BYTES);
                }
            }
            done = start;
            if done > 0 && !go_on() {
                let progress = MapProgress {
                    pages: done,
                    failed: Some(error),
                };
                return Ok(Step::Stopped(progress.pack()));
            }
        }
        Err(error)
    }

    /// Maps `pages` frames from physical `physical` at `address` in
    /// `target`, recorded against capability `node`, all or nothing. The
    /// caller has checked rights and addresses.
    pub(super) fn map_pages(
        &mut self,
        target: EnvironmentId,
        node: NodeId,
        physical: u64,
        pages: u64,
        address: u64,
        flags: MapFlags,
    ) -> Result<(), Error> {
        let environment = self
            .environments
            .get_mut(&target)
            .expect("a target is a live environment");
        // A single page needs no look first: `AddressSpace::map` refuses a
        // mapped page before it changes anything, and its tables exist.
        if pages > 1 && environment.space.any_mapped(address, pages) {
            return Err(Error::AlreadyMapped);
        }
        let page = |index: u64| address + index * FRAME_SIZE;
        // The page's mapping records are charged to the environment it is
        // mapped in, as its page tables are.
        environment.charge_kernel(pages * MAPPING_RECORD_BYTES)?;
        for index in 0..pages {
            let budget = environment.frames_available();
            let tables_before = environment.space.table_frames();
            let mapped = environment.space.map(
                page(index),
                physical + index * FRAME_SIZE,
                flags,
                budget,
                tag_of(node),
            );
            // Tables made are charged whether or not the page could be mapped: a
            // call that fails after making some keeps them in the address space
            // (later mappings use them), and uncharged they would be frames
            // beyond the quota, one more with each failing call.
            let tables = environment.space.table_frames() - tables_before;
            environment
                .charge(tables)
                .expect("page tables were kept within the budget");
            if let Err(error) = mapped {
                for done in 0..index {
                    let _ = environment.space.unmap(page(done));
                }
                environment
                    .kernel_bytes
                    .uncharge(pages * MAPPING_RECORD_BYTES);
                return Err(error);
            }
        }
        // Each entry's tag names `node`; the index gets one record for the
        // run (still charged by the page: a page unmapped from its middle
        // later splits it in two).
        self.mappings.insert(node, target, address, pages);
        Ok(())
    }

    /// Removes the page at `address` from the environment `target` names.
    pub fn unmap(
        &mut self,
        caller: EnvironmentId,
        target: Handle,
        address: u64,
    ) -> Result<(), Error> {
        // Not in one being taken down: its walk forgets a run at its first
        // page and clears the rest as it reaches them.
        let target = self.target_to_build_in(caller, target, Rights::MAP)?;
        Self::check_user_pages(address, 1)?;
        // A page cut out of the middle of a run leaves two, which may take
        // a new node of the index: paid for when the run was mapped (by the
        // page), but the heap must have room now, or this would panic.
        if !crate::memory::heap::has_room() {
            return Err(Error::OutOfMemory);
        }
        let environment = self
            .environments
            .get_mut(&target)
            .expect("a target is a live environment");
        let (_, tag) = environment.space.unmap(address)?;
        let node = self
            .mappings
            .node_of(&self.capabilities, target, address, tag);
        // Every page below `USER_MAP_END` is mapped through a capability.
        debug_assert!(node.is_some(), "a user page without its node");
        if let Some(node) = node {
            let recorded = self.mappings.remove_page(node, target, address);
            debug_assert!(recorded, "the tags and the index disagree");
            if recorded {
                environment.kernel_bytes.uncharge(MAPPING_RECORD_BYTES);
            }
        }
        Ok(())
    }

    /// Changes the permissions of the page at `address` in `target`, within
    /// the rights of the capability it was mapped through.
    pub fn protect(
        &mut self,
        caller: EnvironmentId,
        target: Handle,
        address: u64,
        flags: u64,
    ) -> Result<(), Error> {
        let flags = MapFlags::from_bits(flags).ok_or(Error::InvalidArgument)?;
        let target = self.target_to_build_in(caller, target, Rights::MAP)?;
        Self::check_user_pages(address, 1)?;
        let tag = self
            .environment(target)
            .space
            .tag_at(address)
            .ok_or(Error::NotMapped)?;
        let node = self
            .mappings
            .node_of(&self.capabilities, target, address, tag)
            .ok_or(Error::NotMapped)?;
        let capability = self
            .capabilities
            .node(node)
            .expect("mapping records name live capabilities");
        Self::check_map_rights(capability.rights, flags)?;
        // Raising a page's access is a binding made anew, so only the holder
        // of the capability it was mapped through may make it. Anyone with
        // `MAP` on the target may take access away; but a child given a page
        // read-only through its parent's capability would otherwise make it
        // writable with the parent's rights, and write the parent's memory.
        if capability.owner != caller {
            let (_, now) = self
                .environment(target)
                .space
                .translate(address)
                .ok_or(Error::NotMapped)?;
            let writable = now.contains(PageFlags::WRITABLE);
            let executable = !now.contains(PageFlags::NO_EXECUTE);
            if (flags.contains(MapFlags::WRITE) && !writable)
                || (flags.contains(MapFlags::EXECUTE) && !executable)
            {
                return Err(Error::ReadOnly);
            }
        }
        self.environment(target).space.protect(address, flags)
    }

    /// `MapBatch`: maps each of the `count` requests at `requests` (in the
    /// caller's memory) into the environment `target` names, as `Map` would,
    /// in order, and stops at the first that fails: answers how many were
    /// mapped and that one's error code (0 if none failed). A share at a
    /// time, from `progress` (the request it got to, and how far that
    /// request's own `Map` got), which a call that stops answers packed.
    pub fn map_batch(
        &mut self,
        caller: EnvironmentId,
        target: Handle,
        [requests, count]: [u64; 2],
        progress: u64,
        go_on: &mut dyn FnMut() -> bool,
    ) -> Result<Step<(u64, u64)>, Error> {
        if count > MAX_BATCH {
            return Err(Error::InvalidArgument);
        }
        // The target is checked once here as well as by each request: a batch
        // of none, or one whose first request fails, must still refuse a
        // handle that is stale or names no environment, as every call does.
        self.target_to_build_in(caller, target, Rights::MAP)?;
        const SIZE: u64 = size_of::<MapRequest>() as u64;
        // The whole array must be readable before the first request is
        // applied, so a bad buffer changes nothing; then each request is
        // read into a buffer on the stack, never the heap.
        let whole = UserRange::new(requests, count * SIZE)?;
        self.check_user_readable(caller, whole)?;
        let mut done = progress >> MapProgress::BITS;
        let mut within = MapProgress::unpack(progress & ((1 << MapProgress::BITS) - 1))?;
        if progress != 0 && done >= count {
            return Err(Error::InvalidArgument);
        }
        while done < count {
            let mut chunk = [0u8; SIZE as usize];
            let range = UserRange::new(requests + done * SIZE, SIZE)?;
            self.read_user(caller, range, &mut chunk)?;
            let field = |index: usize| {
                u64::from_le_bytes(chunk[index * 8..index * 8 + 8].try_into().expect("8 bytes"))
            };
            let request = [
                field(0),
                target.to_raw(),
                field(1),
                field(2),
                MapPart::WHOLE,
            ];
            match self.map_some(caller, request, within, go_on) {
                Ok(Step::Done(())) => {}
                Ok(Step::Stopped(part)) => {
                    return Ok(Step::Stopped(done << MapProgress::BITS | part));
                }
                Err(error) => return Ok(Step::Done((done, error.code()))),
            }
            done += 1;
            within = MapProgress::FRESH;
            if done < count && !go_on() {
                return Ok(Step::Stopped(done << MapProgress::BITS));
            }
        }
        Ok(Step::Done((count, 0)))
    }
}

/// Pages a `Map` of a large run maps before it looks at its share again:
/// as many as a removal takes of a run at once, about a sixth of a tick
/// under TCG.
pub const MAP_PART_PAGES: u64 = exo_kernel_core::mappings::TAKE_PAGES;

/// How far a `Map` of a large run got when its share ran out: the pages it
/// mapped, and, once a part failed, the error it answers when it has
/// unmapped them again. The call taken again carries it packed in
/// [`MapProgress::BITS`] bits (`syscalls.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapProgress {
    pages: u64,
    failed: Option<Error>,
}

impl MapProgress {
    /// A call that has done nothing yet.
    pub const FRESH: Self = Self {
        pages: 0,
        failed: None,
    };
    /// Bits of the packed form: 12 of pages (a run has at most 1,024), 8 of
    /// error code, 1 that says there is one.
    pub const BITS: u32 = 21;
    const PAGE_BITS: u32 = 12;
    const ERROR_BITS: u32 = 8;

    fn mapped(pages: u64) -> Self {
        Self {
            pages,
            failed: None,
        }
    }

    pub fn pack(self) -> u64 {
        let failed = self.failed.map_or(0, |error| {
            error.code() << Self::PAGE_BITS | 1 << (Self::PAGE_BITS + Self::ERROR_BITS)
        });
        self.pages | failed
    }

    /// The progress `raw` packs; `InvalidArgument` if no share could have
    /// left it (it comes back from the caller's registers).
    pub fn unpack(raw: u64) -> Result<Self, Error> {
        let pages = raw & ((1 << Self::PAGE_BITS) - 1);
        let code = (raw >> Self::PAGE_BITS) & ((1 << Self::ERROR_BITS) - 1);
        let failed = match raw >> (Self::PAGE_BITS + Self::ERROR_BITS) {
            0 if code == 0 => None,
            1 => Some(Error::try_from(code).map_err(|_| Error::InvalidArgument)?),
            _ => return Err(Error::InvalidArgument),
        };
        Ok(Self { pages, failed })
    }
}
