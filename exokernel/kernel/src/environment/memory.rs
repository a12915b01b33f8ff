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
use super::{EnvironmentId, Object, System};
use crate::memory::lent_frames;
use x86_64::structures::paging::PageTableFlags as PageFlags;

impl System {
    /// Allocates `2^order` zeroed frames for `owner`, charged to its quota.
    /// `at` asks for the run starting at that frame number.
    pub fn allocate_frames(
        &mut self,
        owner: EnvironmentId,
        order: u64,
        at: Option<u64>,
    ) -> Result<(Handle, u64), Error> {
        if order > u64::from(exo_abi::mapping::MAX_FRAME_ORDER) {
            return Err(Error::InvalidArgument);
        }
        let count = 1 << order;
        let capability_bytes = self.capability_cost(owner);
        // One look-up for the whole call: the record is borrowed beside the
        // capability space, a field of its own.
        let environment = self
            .environments
            .get_mut(&owner)
            .expect("the caller is a live environment");
        environment.charge(count)?;
        if let Err(error) = environment.charge_kernel(capability_bytes) {
            environment.frames.uncharge(count);
            return Err(error);
        }
        // Zeroed by `lent_frames`: a frame may have held another
        // environment's data, and is never handed on so.
        let allocated = match at {
            None => lent_frames::allocate(order as u32, None).map_err(|_| Error::OutOfMemory),
            Some(first) => {
                lent_frames::allocate(order as u32, Some(first.saturating_mul(FRAME_SIZE))).map_err(
                    |error| match error {
                        FrameError::Misaligned => Error::Misaligned,
                        _ => Error::FrameUnavailable,
                    },
                )
            }
        };
        let inserted = allocated.and_then(|address| {
            let object = Object::Frame {
                first: address / FRAME_SIZE,
                order: order as u8,
            };
            match self.capabilities.insert_root(owner, object, Rights::FRAME) {
                Ok(handle) => Ok((handle, address / FRAME_SIZE)),
                Err(error) => {
                    lent_frames::free(address, order as u32).expect("just allocated");
                    Err(error)
                }
            }
        });
        match inserted {
            Ok(_) => environment.frames_held += count,
            Err(_) => {
                environment.frames.uncharge(count);
                environment.kernel_bytes.uncharge(capability_bytes);
            }
        }
        inserted
    }

    /// Maps the frames `frame` names (all, or the `part` of them packed as
    /// `MapPart`) at `address` in the environment `target` names, both
    /// capabilities in `caller`'s table.
    pub fn map(
        &mut self,
        caller: EnvironmentId,
        frame: Handle,
        target: Handle,
        address: u64,
        flags: u64,
        part: u64,
    ) -> Result<(), Error> {
        let flags = MapFlags::from_bits(flags).ok_or(Error::InvalidArgument)?;
        let capability = self.capabilities.lookup(caller, frame)?;
        let Object::Frame { first, order } = *capability.object else {
            return Err(Error::WrongKind);
        };
        let node = capability.node;
        Self::check_map_rights(capability.rights, flags)?;
        let target = self.target(caller, target, Rights::MAP)?;
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
        self.map_pages(target, node, physical, pages, address, flags)
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
        let target = self.target(caller, target, Rights::MAP)?;
        Self::check_user_pages(address, 1)?;
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
            environment.kernel_bytes.uncharge(MAPPING_RECORD_BYTES);
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
        let target = self.target(caller, target, Rights::MAP)?;
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

    /// Applies the `count` requests at user address `requests` in order;
    /// returns how many succeeded and the code of the first failure (0 if none).
    pub fn map_batch(
        &mut self,
        caller: EnvironmentId,
        target: Handle,
        requests: u64,
        count: u64,
    ) -> Result<(u64, u64), Error> {
        if count > MAX_BATCH {
            return Err(Error::InvalidArgument);
        }
        // The target is checked once here as well as by each request: a batch
        // of none, or one whose first request fails, must still refuse a
        // handle that is stale or names no environment, as every call does.
        self.target(caller, target, Rights::MAP)?;
        const SIZE: u64 = size_of::<MapRequest>() as u64;
        // The whole array must be readable before the first request is
        // applied, so a bad buffer changes nothing; then each request is
        // read into a buffer on the stack, never the heap.
        let whole = UserRange::new(requests, count * SIZE)?;
        self.check_user_readable(caller, whole)?;
        for done in 0..count {
            let mut chunk = [0u8; SIZE as usize];
            let range = UserRange::new(requests + done * SIZE, SIZE)?;
            self.read_user(caller, range, &mut chunk)?;
            let field = |index: usize| {
                u64::from_le_bytes(chunk[index * 8..index * 8 + 8].try_into().expect("8 bytes"))
            };
            let request = MapRequest {
                frame: field(0),
                address: field(1),
                flags: field(2),
            };
            let frame = Handle::from_raw(request.frame);
            let mapped = self.map(
                caller,
                frame,
                target,
                request.address,
                request.flags,
                MapPart::WHOLE,
            );
            if let Err(error) = mapped {
                return Ok((done, error.code()));
            }
        }
        Ok((count, 0))
    }
}
