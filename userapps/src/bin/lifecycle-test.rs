//! No frame is lost to the system: 1,000 environments are created, given memory (and
//! some of them started), and destroyed, and the kernel's free-frame count comes back
//! exactly to where it was.
//!
//! The cycles vary what an environment holds when it dies: never started; started and
//! exited by itself after allocating and mapping frames of its own; or destroyed by the
//! parent while it still runs. Each also holds a capability the parent granted it and
//! pages the parent mapped into it.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::MapFlags;
use exo_abi::{Handle, Rights, user};
use userapps::check::{self, ok};
use userapps::layout::MANAGED_START;
use userapps::memory::{self, write_u64};
use userapps::println;
use userapps::spawn::Child;

userapps::entry!(main);

const CYCLES: u64 = 1000;
const CHILD_QUOTA: u64 = 32;
/// Frames the parent maps into each child, and frames a started child maps for itself.
const PARENT_PAGES: u64 = 3;
const CHILD_PAGES: u64 = 4;
const CHILD_OWN_PAGES_AT: u64 = MANAGED_START + 0x1000 * PAGE_SIZE;

/// What a started child does: allocate and map frames of its own, then exit or spin.
fn allocate_then(exit_by_itself: u64) -> u64 {
    for page in 0..CHILD_PAGES {
        let (frame, _) = user::frame_allocate(0).expect("allocate");
        let address = CHILD_OWN_PAGES_AT + page * PAGE_SIZE;
        user::map(frame, Handle::SELF_ENVIRONMENT, address, MapFlags::WRITE).expect("map");
        write_u64(address, page);
    }
    if exit_by_itself == 0 {
        loop {
            user::yield_now();
        }
    }
    0
}

fn one_cycle(cycle: u64) {
    let child = Child::create(CHILD_QUOTA).expect("create a child");
    let mut lent = [Handle::SELF_ENVIRONMENT; PARENT_PAGES as usize];
    for (page, slot) in (0..PARENT_PAGES).zip(&mut lent) {
        let (frame, _) = user::frame_allocate(0).expect("allocate");
        let address = MANAGED_START + page * PAGE_SIZE;
        user::map(frame, child.environment(), address, MapFlags::WRITE).expect("map into child");
        *slot = frame;
    }
    user::capability_grant(lent[0], child.environment(), Rights::READ | Rights::MAP)
        .expect("grant into the child");
    match cycle % 3 {
        0 => {}
        1 => {
            child.start(allocate_then, 1).expect("start");
            child.wait();
        }
        _ => {
            child.start(allocate_then, 0).expect("start");
            for _ in 0..cycle % 7 {
                user::yield_now();
            }
        }
    }
    child.destroy();
    for frame in lent {
        memory::drop_capability(frame).expect("drop a lent frame");
    }
}

fn main(_argument: u64) -> u64 {
    // The first cycle builds the page tables the parent keeps for its scratch page: they
    // are the parent's for good, not a leak, so counting starts after it.
    one_cycle(0);
    let (free_before, usable) = user::frame_counts();
    println!("lifecycle-test: {free_before} of {usable} frames free before");
    for cycle in 0..CYCLES {
        one_cycle(cycle);
        if (cycle + 1) % 250 == 0 && cycle + 1 < CYCLES {
            println!(
                "lifecycle-test: {} cycles, {} frames free",
                cycle + 1,
                user::frame_counts().0
            );
        }
    }
    let (free_after, _) = user::frame_counts();
    assert_eq!(free_before, free_after, "every frame came back");
    ok(format_args!(
        "{CYCLES} cycles, free frames before={free_before} after={free_after}: every frame came back"
    ));
    the_smallest_environment();
    check::all_passed("lifecycle-test");
    0
}

/// The fewest frames a new environment needs are 5 (its page tables and facts page), and
/// the default kernel-memory allowance of 5 frames pays for its own record, its capability
/// in slot 0 and its table's first growth: 5 is enough, 4 is not.
fn the_smallest_environment() {
    check::expect_error(
        "an environment of 4 frames",
        user::environment_create(4),
        exo_abi::Error::QuotaExceeded,
    );
    let smallest = user::environment_create(5).expect("an environment of 5 frames");
    user::environment_destroy(smallest).expect("destroy it");
    ok("an environment of 5 frames, with the default allowance, is made");
}
