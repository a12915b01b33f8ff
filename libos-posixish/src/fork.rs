//! `fork`: a child process with a copy-on-write copy of this one's memory,
//! built by this process, resolved by each process's own fault handler.
//!
//! **What the child gets.** For every unit (`pager_units`) this process maps —
//! heap, stack, `mmap` pages — the child gets a capability derived from
//! ours (a grant), the same frames mapped read-only at the same address, and
//! a record marking them copy-on-write and inherited; our own mapping turns
//! read-only and copy-on-write too. Read-only image pages we hold a
//! capability for are shared as they are. Everything else is copied now:
//! the data segment (the statics, which the fault handler must always be
//! able to write), the pager's mmap regions (a page of their own, private
//! for the same reason), and image or stack pages we hold no capability for
//! (those a parent mapped for us). The
//! child also gets its own exception stack, exit-status page, process-info
//! page (the same arguments, its own boot file system capabilities), and a
//! handover page listing its capabilities for what it shares. The pager's
//! table of units, in pages of its own (`raw::PagerTable`), is not copied:
//! the child starts it afresh from the handover.
//!
//! **Who owns shared frames.** The root capability stays with whoever
//! allocated the frames; a child's capability derives from its parent's, so
//! it cannot outlive it — nor does the child, whose environment the parent
//! holds. A process keeps a unit's capability while it maps the unit or
//! while a live child it shared it with may (`Unit::children`, lowered when
//! `wait` reaps the child). On a write fault, a process copies the unit into
//! fresh frames and lets go of the old capability (dropped, or kept unmapped
//! for its children); if it is the last that can map the frames — it shared
//! them with no live child and did not inherit them — it only makes them
//! writable again.
//!
//! **How the child starts.** `fork` saves its callee-saved registers, stack
//! pointer and return address (`raw::capture_registers`); the parent writes
//! them as an `UpcallFrame` at the top of the child's exception stack and
//! starts the child there. The child records its handover, registers its
//! fault handler and resumes from the frame: `capture_registers` returns a
//! second time, and `fork` returns 0.
//!
//! **Limits.** A write to any page of a shared 64 KiB run copies the run.
//! The child's memory is frozen while the parent marks it: what the parent
//! allocated for the fork itself is leaked in the child (a few KiB of heap).
//! A child dies with its parent (chapter 2.8): a process must `wait` for the
//! children it forks before it exits. Threads: call `fork` from a program
//! with one thread.

use alloc::vec;
use alloc::vec::Vec;

use exo_abi::handle::TABLE_CAPACITY;
use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::{MAX_BATCH, MapFlags, MapRequest};
use exo_abi::syscall::EnvironmentAccount;
use exo_abi::upcall::{Registers, UpcallFrame};
use exo_abi::user::entry;
use exo_abi::{Handle, Rights, user};

use crate::child::Child;
use crate::inherit::{self, Descriptors, Role};
use crate::layout::{
    EXCEPTION_STACK_PAGES, EXCEPTION_STACK_TOP, EXIT_STATUS, FORK_STACK_PAGES, FORK_STACK_TOP,
    HANDOVER, HANDOVER_PAGES, HEAP_START, IMAGE_START, PAGER_REGIONS, PROCESS_INFO, STACK_LIMIT,
    STACK_TOP,
};
use crate::pager_units::flags;
use crate::process;
use crate::{Errno, info_page, paging, raw};

/// Where the child's start frame sits below the top of its exception stack.
const FRAME_OFFSET: u64 = 256;
/// Units the fault handler may add while `fork` prepares (its stack growing).
const SLACK: usize = 64;

/// The most frames `fork` lends a child by default: 32 MiB.
pub const MAX_DEFAULT_QUOTA: u64 = 8192;

/// Frames `fork` leaves this process at least, or it refuses with `ENOMEM`:
/// after a fork the parent shares its writable pages with the child, and
/// must copy each one it writes (its stack first), a whole run of the pager
/// at a time (`paging::RUN_ORDER`: 16 pages). Lending away its last frames
/// would make its next write a fault it cannot survive (`hostile-fork` at a
/// shell did). 256 frames: sixteen runs.
pub const PARENT_RESERVE: u64 = 256;

/// Free slots of its capability table `fork` leaves this process at least,
/// or it undoes the child and refuses with `EAGAIN`: every copy-on-write
/// fault takes a slot for the fresh frames, while the shared ones stay for
/// the children (a fork bomb of small quotas filled the parent's table, and
/// its next write was a fault it could not survive). 64 slots: the sixteen
/// runs of `PARENT_RESERVE` with room to spare for descriptors.
pub const PARENT_SLOT_RESERVE: u64 = 64;

/// Creates a child process running the same program from this point, with
/// a copy-on-write copy of this process's memory. Returns the child's
/// process id in the parent and 0 in the child. The child may hold half of
/// the frames this process may still allocate, at most `MAX_DEFAULT_QUOTA`:
/// so a tree of forks fits in its root's quota. `ENOMEM` if that would leave
/// this process fewer than `PARENT_RESERVE` frames, `EAGAIN` if the child
/// would leave it fewer than `PARENT_SLOT_RESERVE` free capability slots.
pub fn fork() -> Result<u64, Errno> {
    let lent = (frames_left() / 2).clamp(1, MAX_DEFAULT_QUOTA);
    fork_with_quota(lent)
}

/// The frames this process may still allocate: its quota less what it has
/// been charged (its frames and the quotas lent to its children).
fn frames_left() -> u64 {
    let account = |which| user::environment_info(Handle::SELF_ENVIRONMENT, which).unwrap_or(0);
    account(EnvironmentAccount::FrameQuota)
        .saturating_sub(account(EnvironmentAccount::FramesCharged))
}

/// [`fork`], lending the child a quota of `quota` frames. `ENOMEM` if that
/// would leave this process fewer than `PARENT_RESERVE` frames, `EAGAIN`
/// fewer than `PARENT_SLOT_RESERVE` free capability slots, as for `fork`:
/// a bomb of small fixed quotas would otherwise spend what its own next
/// copy-on-write faults need.
#[inline(never)]
pub fn fork_with_quota(quota: u64) -> Result<u64, Errno> {
    if frames_left().saturating_sub(quota) < PARENT_RESERVE {
        return Err(Errno::ENOMEM);
    }
    let mut registers = Registers::default();
    // SAFETY: this small `#[inline(never)]` function is the caller the
    // function asks for: on the `true` path the child reads nothing the
    // parent wrote to this frame after the call.
    #[allow(unsafe_code)]
    let child = unsafe { raw::capture_registers(&mut registers) };
    if child {
        // The child: it resumes here, with its own memory. The parent's
        // children came with the copy, and are not its own.
        process::forget_inherited_children();
        inherit::after_fork_in_child();
        return Ok(0);
    }
    parent(&registers, quota)
}

/// This environment's name, as the kernel keeps it.
fn own_name() -> [u64; 2] {
    let own =
        |account| user::environment_info(exo_abi::Handle::SELF_ENVIRONMENT, account).unwrap_or(0);
    [
        own(EnvironmentAccount::NameLow),
        own(EnvironmentAccount::NameHigh),
    ]
}

#[inline(never)]
fn parent(registers: &Registers, quota: u64) -> Result<u64, Errno> {
    let environment = user::environment_create(quota)?;
    // The child runs the same program: it has the same name.
    let _ = user::environment_name(environment, own_name());
    let mut child = Child::new(environment);
    match build(&mut child, registers) {
        Ok(()) => {
            let pid = child.pid;
            process::adopt(child);
            Ok(pid)
        }
        Err(error) => {
            child.abandon();
            Err(error)
        }
    }
}

/// The buffers `share` fills, allocated (and written, so their pages are
/// private) before: `share` runs with the pager locked and must not fault.
struct Sharing {
    requests: Vec<MapRequest>,
    requests_used: usize,
    /// Entries of three words: address, the child's handle, order | flags << 8.
    handover: Vec<u64>,
    handover_entries: usize,
    shared: Vec<Handle>,
    shared_used: usize,
}

fn build(child: &mut Child, registers: &Registers) -> Result<(), Errno> {
    paging::enable_copy_on_write();
    inherit::before_fork();
    ensure_fork_stack()?;
    // Everything that allocates comes first.
    let copies = pages_to_copy();
    let units = paging::lock().units.count() + SLACK;
    let mut sharing = Sharing {
        requests: vec![
            MapRequest {
                frame: 0,
                address: 0,
                flags: 0
            };
            copies.len() + units
        ],
        requests_used: 0,
        handover: vec![0; 3 * units],
        handover_entries: 0,
        shared: vec![Handle::SELF_ENVIRONMENT; units],
        shared_used: 0,
    };
    child.frames.reserve(copies.len());

    // From here until `share` has marked the shared pages, nothing may
    // allocate or free: the child's allocator state (in the data segment,
    // copied now) must match its heap (frozen by `share`).
    for &(page, map) in &copies {
        let frame = copy_of(child, page)?;
        sharing.requests[sharing.requests_used] = MapRequest {
            frame: frame.to_raw(),
            address: page,
            flags: map.bits(),
        };
        sharing.requests_used += 1;
    }
    let mut outcome = Ok(());
    let environment = child.environment;
    raw::call_on_stack(FORK_STACK_TOP, &mut || {
        outcome = share(environment, &mut sharing);
    });
    sharing.shared.truncate(sharing.shared_used);
    child.shared = core::mem::take(&mut sharing.shared);
    outcome?;

    hand_over(child, &sharing)?;
    let arguments = info_page::own_arguments();
    let names: Vec<&str> = arguments.iter().map(|name| name.as_str()).collect();
    let (program, rest) = names.split_first().map_or(("?", &[][..]), |(p, r)| (*p, r));
    let mut info = process::new_info_page(program, rest)?;
    // The child's descriptors are its copy of ours: each pipe end gains a holder.
    inherit::for_child(child, &mut info, Descriptors::Copied, Role::Program)?;
    child.map_page(PROCESS_INFO, info.bytes(), MapFlags::empty())?;
    let exit_page = crate::exit_status::page_holding(&child.handed_on);
    child.exit_status_page = child.map_page(EXIT_STATUS, &exit_page, MapFlags::WRITE)?;

    let bottom = EXCEPTION_STACK_TOP - EXCEPTION_STACK_PAGES * PAGE_SIZE;
    for page in (bottom..EXCEPTION_STACK_TOP - PAGE_SIZE).step_by(PAGE_SIZE as usize) {
        child.map_page(page, &[], MapFlags::WRITE)?;
    }
    let mut top = vec![0u8; PAGE_SIZE as usize];
    let at = (PAGE_SIZE - FRAME_OFFSET) as usize;
    for (index, word) in frame_words(registers).iter().enumerate() {
        top[at + 8 * index..at + 8 * index + 8].copy_from_slice(&word.to_le_bytes());
    }
    child.map_page(EXCEPTION_STACK_TOP - PAGE_SIZE, &top, MapFlags::WRITE)?;

    let held = user::environment_info(
        Handle::SELF_ENVIRONMENT,
        EnvironmentAccount::CapabilitiesHeld,
    )?;
    if u64::from(TABLE_CAPACITY).saturating_sub(held) < PARENT_SLOT_RESERVE {
        return Err(Errno::EAGAIN);
    }
    child.pid = user::capability_identify(child.environment)?.value;
    let frame = EXCEPTION_STACK_TOP - FRAME_OFFSET;
    user::environment_start(child.environment, raw::fork_child_entry(), frame, frame)?;
    Ok(())
}

/// Grants the child a capability for every unit, maps them into it, and
/// turns the shared ones copy-on-write here. Runs on the fork stack with the
/// pager locked: it writes only that stack, the pager's table and the
/// buffers in `sharing`, and protects pages only after its last write to them.
fn share(environment: Handle, sharing: &mut Sharing) -> Result<(), Errno> {
    let mut pager = paging::lock_on_private_stack();
    for mut unit in pager.units.iter_mut() {
        if !unit.has(flags::MAPPED) {
            continue;
        }
        let entry = sharing.handover_entries;
        if 3 * entry >= sharing.handover.len() || sharing.requests_used >= sharing.requests.len() {
            return Err(Errno::ENOMEM);
        }
        let image = unit.has(flags::IMAGE);
        let execute = unit.flags & flags::EXECUTE;
        let (rights, child_flags) = if image {
            let rights = Rights::READ | Rights::MAP | Rights::GRANT;
            let rights = if execute != 0 {
                rights | Rights::EXECUTE
            } else {
                rights
            };
            (rights, flags::IMAGE | execute)
        } else {
            let rights = Rights::READ | Rights::WRITE | Rights::MAP | Rights::GRANT;
            (rights, flags::COPY_ON_WRITE)
        };
        let theirs = user::capability_grant(unit.handle, environment, rights)?;
        let child_flags = flags::MAPPED | flags::INHERITED | child_flags;
        sharing.handover[3 * entry..3 * entry + 3].copy_from_slice(&[
            unit.address,
            theirs.to_raw(),
            u64::from(unit.order) | u64::from(child_flags) << 8,
        ]);
        sharing.handover_entries += 1;
        let map = if execute != 0 {
            MapFlags::EXECUTE
        } else {
            MapFlags::empty()
        };
        sharing.requests[sharing.requests_used] = MapRequest {
            frame: unit.handle.to_raw(),
            address: unit.address,
            flags: map.bits(),
        };
        sharing.requests_used += 1;
        // LAB 4.1 BEGIN: share the parent's memory copy-on-write
        if !image {
            unit.flags |= flags::COPY_ON_WRITE;
            unit.children += 1;
            sharing.shared[sharing.shared_used] = unit.handle;
            sharing.shared_used += 1;
        }
        // LAB 4.1 STUB
        // // Lab 4.1: a unit that is not part of the image is now shared with the
        // // child: mark it copy-on-write, count the child, and remember it in
        // // `sharing.shared` (its frames go back if the fork fails).
        // LAB 4.1 END
    }
    // LAB 4.1 BEGIN: share the parent's memory copy-on-write
    // The last write to the heap is done: from now on a write there copies.
    for unit in pager.units.iter() {
        if unit.has(flags::MAPPED) && unit.has(flags::COPY_ON_WRITE) {
            for page in unit.page_addresses() {
                raw::protect_own_page(page, MapFlags::empty())?;
            }
        }
    }
    // LAB 4.1 STUB
    // // Lab 4.1, continued: after the last write, take write access away from
    // // every page of every copy-on-write unit here (`raw::protect_own_page`).
    // LAB 4.1 END
    drop(pager);
    for batch in sharing.requests[..sharing.requests_used].chunks(MAX_BATCH as usize) {
        user::map_batch(environment, batch).1?;
    }
    Ok(())
}

/// Maps the handover pages into the child: a count, then its entries.
fn hand_over(child: &mut Child, sharing: &Sharing) -> Result<(), Errno> {
    let words = &sharing.handover[..3 * sharing.handover_entries];
    let mut bytes = Vec::with_capacity(8 + 8 * words.len());
    bytes.extend_from_slice(&(sharing.handover_entries as u64).to_le_bytes());
    for word in words {
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    if bytes.len() as u64 > HANDOVER_PAGES * PAGE_SIZE {
        return Err(Errno::ENOMEM);
    }
    for (index, page) in bytes.chunks(PAGE_SIZE as usize).enumerate() {
        child.map_page(HANDOVER + index as u64 * PAGE_SIZE, page, MapFlags::empty())?;
    }
    Ok(())
}

/// The pages to copy rather than share: the data segment, the pager's
/// `mmap` regions if it has mapped their page, and image and stack pages
/// this process holds no capability for.
fn pages_to_copy() -> Vec<(u64, MapFlags)> {
    let covered = |page| paging::lock().units.mapped_at(page).is_some();
    let present = |page| user::page_table_entry(page).filter(|e| e & entry::PRESENT != 0);
    let mut pages = Vec::new();
    let mut page = IMAGE_START;
    while let Some(pte) = present(page).filter(|_| page < HEAP_START) {
        let writable = pte & entry::WRITABLE != 0;
        let map = if writable {
            MapFlags::WRITE
        } else if pte & entry::NO_EXECUTE == 0 {
            MapFlags::EXECUTE
        } else {
            MapFlags::empty()
        };
        if writable || !covered(page) {
            pages.push((page, map));
        }
        page += PAGE_SIZE;
    }
    for page in (STACK_LIMIT..STACK_TOP).step_by(PAGE_SIZE as usize) {
        if present(page).is_some() && !covered(page) {
            pages.push((page, MapFlags::WRITE));
        }
    }
    if present(PAGER_REGIONS).is_some() {
        pages.push((PAGER_REGIONS, MapFlags::WRITE));
    }
    pages
}

/// A fresh frame, held for the child, holding a copy of our page `page`.
fn copy_of(child: &mut Child, page: u64) -> Result<Handle, Errno> {
    let (frame, _) = user::frame_allocate(0)?;
    child.frames.push(frame);
    raw::Window::scratch(frame, MapFlags::WRITE)?.copy_from(page);
    Ok(frame)
}

/// Maps the fork stack the first time this process forks.
fn ensure_fork_stack() -> Result<(), Errno> {
    let bottom = FORK_STACK_TOP - FORK_STACK_PAGES * PAGE_SIZE;
    for page in (bottom..FORK_STACK_TOP).step_by(PAGE_SIZE as usize) {
        if user::translate(page).is_none() {
            paging::map_zeroed(page)?;
        }
    }
    Ok(())
}

/// The child's start frame, word by word as `UpcallFrame` lays it out.
fn frame_words(r: &Registers) -> [u64; 22] {
    [
        0, 0, 0, 0, // reason, info
        r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11, r.r12,
        r.r13, r.r14, r.r15, r.rip, r.rflags,
    ]
}

/// The forked child's first Rust code, on its exception stack: it learns
/// what it holds, registers its fault handler and returns from `fork`.
pub(crate) fn child_start(frame: &UpcallFrame) -> ! {
    paging::adopt_handover();
    paging::register_handler();
    user::resume(frame)
}
