//! Page tables are paid for, even by a request that is refused.
//!
//! Mapping a page may need up to three new page tables above it, each a frame charged to
//! the environment the page is mapped in, within its quota. A child with one frame of its
//! quota left maps a frame, again and again, each time in a gigabyte of address space of
//! its own: the table for that gigabyte fits the frame left, the last-level table below it
//! does not, and the kernel refuses the request (`QuotaExceeded`). The table it made stays
//! in the child's address space (a later mapping there uses it), so it must be charged: if
//! it were not, every refusal would leave one more frame beyond the quota, and 4,000
//! refusals would take 16 MiB that nobody was charged for.
//!
//! The child does that through `Map` and through `MapBatch`, then sleeps holding everything.
//! The parent compares the kernel's free frames with a child that did the same except the
//! refused requests: at most the one frame left in the quota may differ. After both are
//! destroyed, every frame and byte of kernel memory is back.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::mapping::{MapFlags, MapRequest};
use exo_abi::syscall::Event;
use exo_abi::user;
use exo_abi::{Error, Handle};
use userapps::hostile::conservation::Baseline;
use userapps::layout::MANAGED_START;
use userapps::memory;
use userapps::spawn::Child;
use userapps::{check, println};

userapps::entry!(main);

/// The attacker's quota: its image's writable pages and stack, and frames to spend.
const QUOTA: u64 = 96;
/// Refused requests of each kind.
const ATTEMPTS: u64 = 2_000;
/// Each request's address lies in a gigabyte of its own, from here.
const ATTACK_START: u64 = MANAGED_START + 0x300_0000_0000;
const GIGABYTE: u64 = 1 << 30;

/// What the child does: 0 spends its quota and sleeps; 1 also makes the refused requests.
const QUIET: u64 = 0;
const ATTACK: u64 = 1;

fn main(_argument: u64) -> u64 {
    let baseline = Baseline::after_a_witness_and_a_child(QUOTA);
    let quiet = free_frames_taken_by(QUIET);
    let attacked = free_frames_taken_by(ATTACK);
    println!(
        "hostile-page-tables: a child that spent its quota took {quiet} free frames; one that \
         then had {} requests refused took {attacked}",
        2 * ATTEMPTS
    );
    assert!(
        attacked <= quiet + 1,
        "refused requests left {} frames of page tables beyond the quota",
        attacked - quiet
    );
    check::ok("refused mappings leave no page table beyond the quota");
    baseline.expect_came_back("hostile-page-tables", "both children");
    check::all_passed("hostile-page-tables");
    0
}

/// Runs a child doing `what` until it sleeps; returns how many free frames it took then,
/// and destroys it.
fn free_frames_taken_by(what: u64) -> u64 {
    let (free_before, _) = user::frame_counts();
    let child = Child::create(QUOTA).expect("create the child");
    child.start(child_main, what).expect("start the child");
    child.run_until_blocked();
    let (free_now, _) = user::frame_counts();
    child.destroy();
    free_before - free_now
}

fn child_main(what: u64) -> u64 {
    let (frame, _) = user::frame_allocate(0).expect("a frame to map");
    // Spend the quota, then give one frame back: one frame left for page tables.
    let mut last = None;
    loop {
        match user::frame_allocate(0) {
            Ok((spent, _)) => last = Some(spent),
            Err(Error::QuotaExceeded) => break,
            Err(error) => panic!("spending the quota: {error:?}"),
        }
    }
    memory::drop_capability(last.expect("the quota had room")).expect("give one frame back");
    if what == ATTACK {
        let address = |attempt: u64| ATTACK_START + attempt * GIGABYTE;
        for attempt in 0..ATTEMPTS {
            let result = user::map(
                frame,
                Handle::SELF_ENVIRONMENT,
                address(attempt),
                MapFlags::empty(),
            );
            assert_eq!(result, Err(Error::QuotaExceeded), "Map, attempt {attempt}");
        }
        for attempt in ATTEMPTS..2 * ATTEMPTS {
            let request = MapRequest {
                frame: frame.to_raw(),
                address: address(attempt),
                flags: MapFlags::empty().bits(),
            };
            let (done, result) = user::map_batch(Handle::SELF_ENVIRONMENT, &[request]);
            assert_eq!(
                (done, result),
                (0, Err(Error::QuotaExceeded)),
                "MapBatch, attempt {attempt}"
            );
        }
    }
    // Sleep holding everything, until the parent destroys us.
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}
