//! The library OS's pager: the fault handler that makes the heap and the
//! stack appear as they are used.
//!
//! The kernel delivers every fault of the process here (an upcall on the
//! exception stack). A page fault on a not-present page in the heap's range
//! or in the stack's growth range is answered with zeroed memory mapped
//! writable — a whole aligned 64 KiB run where it fits (one capability and
//! one fault for sixteen pages), else the one page — and the faulting code
//! resumes without entering the kernel.
//! Anything else — the guard page below the stack, a null pointer, a write
//! to code — ends the process like a segmentation fault (status 139).
//!
//! Which frame backs a page is a policy (`FramePolicy`): a library OS may
//! ask for frames of a given colour, or a specific frame.

use exo_abi::mapping::MapFlags;
use exo_abi::upcall::{UpcallFrame, UpcallReason};
use exo_abi::{Error, Handle, user};

use crate::layout::{
    EXCEPTION_STACK_PAGES, EXCEPTION_STACK_TOP, HEAP_END, HEAP_START, STACK_LIMIT, STACK_TOP,
    in_heap, in_stack,
};
use crate::{println, runtime, sys};

const PAGE_FAULT: u64 = 14;
/// Page-fault error code bit 0: the page was present (a protection fault).
const PROTECTION: u64 = 1;
/// The exit status of a process ended by a bad memory access (128 + SIGSEGV).
pub const SEGFAULT_STATUS: i32 = 139;

/// log2 of the pages the pager maps at once where it can.
const RUN_ORDER: u32 = 4;
/// Bytes in such a run.
const RUN_BYTES: u64 = exo_abi::layout::PAGE_SIZE << RUN_ORDER;

/// Where new frames come from.
pub trait FramePolicy: Sync {
    /// A fresh capability for `2^order` contiguous frames, and the first frame number.
    fn allocate(&self, order: u32) -> Result<(Handle, u64), Error>;
}

/// Any free frames, as the kernel chooses.
#[derive(Debug)]
pub struct AnyFrame;

impl FramePolicy for AnyFrame {
    fn allocate(&self, order: u32) -> Result<(Handle, u64), Error> {
        user::frame_allocate(order)
    }
}

static POLICY: spin::Once<&'static dyn FramePolicy> = spin::Once::new();

/// Chooses where the pager's frames come from (before the first fault).
pub fn set_frame_policy(policy: &'static dyn FramePolicy) {
    POLICY.call_once(|| policy);
}

fn policy() -> &'static dyn FramePolicy {
    *POLICY.call_once(|| &AnyFrame)
}

/// Maps a zeroed frame writable at `page` in this process.
pub fn map_zeroed(page: u64) -> Result<(), Error> {
    let (frame, _) = policy().allocate(0)?;
    user::map(frame, Handle::SELF_ENVIRONMENT, page, MapFlags::WRITE)
}

/// Maps zeroed memory writable around `address`, which lies in a range the
/// process may grow into (`within`): the aligned run containing it if the
/// whole run is in the range and free, else its page.
fn grow_at(address: u64, within: core::ops::Range<u64>) -> Result<(), Error> {
    let run = address & !(RUN_BYTES - 1);
    let run_fits = within.contains(&run) && within.contains(&(run + RUN_BYTES - 1));
    if run_fits && let Ok((frame, _)) = policy().allocate(RUN_ORDER) {
        match user::map(frame, Handle::SELF_ENVIRONMENT, run, MapFlags::WRITE) {
            Ok(()) => return Ok(()),
            // Part of the run is mapped already (e.g. the first stack pages).
            Err(_) => sys::drop_unmapped_frame(frame),
        }
    }
    map_zeroed(address & !(exo_abi::layout::PAGE_SIZE - 1))
}

/// Maps the exception stack and registers the fault handler.
pub fn init() {
    let bottom = EXCEPTION_STACK_TOP - EXCEPTION_STACK_PAGES * exo_abi::layout::PAGE_SIZE;
    for page in (bottom..EXCEPTION_STACK_TOP).step_by(exo_abi::layout::PAGE_SIZE as usize) {
        map_zeroed(page).expect("map the exception stack");
    }
    let size = EXCEPTION_STACK_TOP - bottom;
    user::set_upcall_handler(on_upcall, EXCEPTION_STACK_TOP, size).expect("register upcalls");
}

fn on_upcall(frame: &mut UpcallFrame) {
    match frame.reason() {
        Some(UpcallReason::Fault) => on_fault(frame),
        // The kernel asks for frames back; this pager gives none up yet, so
        // the kernel takes them at the deadline (see the chapter's notes).
        Some(UpcallReason::RevokeFrames | UpcallReason::SliceStart) | None => {}
    }
}

fn on_fault(frame: &UpcallFrame) {
    let [vector, error, address] = frame.info;
    let range = if in_heap(address) {
        Some(HEAP_START..HEAP_END)
    } else if in_stack(address) {
        Some(STACK_LIMIT..STACK_TOP)
    } else {
        None
    };
    if let Some(range) = range.filter(|_| vector == PAGE_FAULT && error & PROTECTION == 0) {
        match grow_at(address, range) {
            Ok(()) => return,
            Err(error) => println!("out of memory growing to {address:#x}: {error}"),
        }
    }
    println!(
        "segmentation fault: vector {vector}, address {address:#x}, rip {:#x}",
        frame.registers.rip
    );
    runtime::exit(SEGFAULT_STATUS)
}
