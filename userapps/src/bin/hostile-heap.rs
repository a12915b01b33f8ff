//! No program can lay out the kernel heap's free blocks so that others' frees grow slow.
//!
//! A buddy allocator that, to merge a freed block with its buddy, looks for the buddy in
//! the list of free blocks of their size takes time in proportion to that list, and a
//! program can make it long: here the parent gives [`PAIRS`] pairs of children copies of
//! one frame capability, one to each child of a pair in turn, so that most copies' nodes
//! (one 128-byte block of the heap each) have their buddies in the other child; then it
//! destroys one child of each pair, which leaves 16,368 free blocks of that size, none
//! of them able to merge (every pair is full before any child goes: the holes one child
//! leaves would otherwise be filled by the next pair's copies). Before and after, it times its own revocation of
//! [`COPIES`] copies of a frame capability, each copy's node a block of that size freed,
//! on the guest's instruction clock (`-icount`: the same count every run). The kernel's
//! allocator (kernel-core's `buddy.rs`) knows from a bitmap whether a buddy is free and
//! takes it out of a doubly linked list: the revocation must cost no more after than
//! [`SLOWER_AT_MOST`] times what it cost before (about the same: 192,512 cycles before,
//! 196,616 after). On the `buddy_system_allocator` crate, whose free searches the list, it
//! cost 197 times as much (151,176 before, 29,768,712 after), and each free of a block of
//! that size anywhere in the kernel, in any environment's call, paid the same search. Then
//! the other children are destroyed, and every frame and byte of kernel memory comes
//! back.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::handle::TABLE_CAPACITY;
use exo_abi::syscall::CAPABILITY_BYTES;
use exo_abi::user::{self, Lend};
use exo_abi::{Error, Handle, Rights};
use userapps::hostile::conservation::Baseline;
use userapps::{check, memory, println};

userapps::entry!(main);

/// Pairs of children the copies are shared between.
const PAIRS: usize = 16;
/// Copies revoked in each timed revocation.
const COPIES: usize = 32;
/// Timed revocations before and after; the least of each is compared.
const TIMINGS: usize = 5;
/// How much slower the revocation may be after the heap was cut up (1.0: as fast).
const SLOWER_AT_MOST: u64 = 2;
/// The kernel heap block a copy's node takes (kernel-core's `NODE_BLOCK_BYTES`).
const NODE_BLOCK_BYTES: u64 = 128;
/// Each child's frames and kernel memory: enough for a full table of copies.
const CHILD_FRAMES: u64 = 8;
const CHILD_KERNEL_BYTES: u64 = 320 << 10;

fn main(_: u64) -> u64 {
    let (frame, _) = user::frame_allocate(0).expect("a frame");
    // Before the baseline, what the parent keeps for good: its table grown to hold the
    // children of every pair and the copies at once.
    revocation_cycles(frame, 2 * PAIRS + COPIES);
    let baseline = Baseline::take();
    let before = least_revocation_cycles(frame);

    // Every pair filled before any child goes: the holes a destroyed child leaves would
    // otherwise be filled again by the next pair's copies.
    let mut pairs = [(Handle::SELF_ENVIRONMENT, Handle::SELF_ENVIRONMENT); PAIRS];
    let mut given = 0;
    for pair in &mut pairs {
        *pair = (child(), child());
        while share(frame, pair.0) && share(frame, pair.1) {
            given += 2;
        }
    }
    let in_use = user::kernel_memory().0;
    for &(_, second) in &pairs {
        user::environment_destroy(second).expect("destroy one child of the pair");
    }
    let freed = in_use - user::kernel_memory().0;
    assert!(
        freed >= given / 2 * NODE_BLOCK_BYTES,
        "destroying the children freed {freed} bytes, less than their copies' nodes"
    );
    check::ok(format_args!(
        "{PAIRS} pairs of children given {given} copies, in turns within each pair; one \
         child of each pair destroyed, {freed} bytes freed: {} blocks whose buddies are in \
         use",
        given / 2
    ));

    let after = least_revocation_cycles(frame);
    println!(
        "hostile-heap: revoking {COPIES} copies took {before} cycles before and {after} after"
    );
    assert!(
        after <= before * SLOWER_AT_MOST,
        "a revocation of {COPIES} copies took {after} cycles among the free blocks left \
         apart, {before} before: the kernel's frees grow with what a program left"
    );
    check::ok(format_args!(
        "revoking {COPIES} copies took {after} cycles among them, {before} before"
    ));

    for (first, _) in pairs {
        user::environment_destroy(first).expect("destroy the other child");
    }
    baseline.expect_came_back("hostile-heap", "the children");
    check::all_passed("hostile-heap");
    0
}

/// An empty child with room for a full table of copies.
fn child() -> Handle {
    let lend = Lend {
        frames: CHILD_FRAMES,
        kernel_bytes: CHILD_KERNEL_BYTES,
        slots: 0,
    };
    user::environment_create_lending(lend).expect("create a child")
}

/// Grants `child` a copy of `frame`; false once its table or account is full.
fn share(frame: Handle, child: Handle) -> bool {
    match user::capability_grant(frame, child, Rights::READ) {
        Ok(_) => true,
        Err(Error::TableFull | Error::KernelMemoryExceeded) => false,
        Err(error) => panic!("grant a copy: {error:?}"),
    }
}

/// The least of [`TIMINGS`] revocations' cycles.
fn least_revocation_cycles(frame: Handle) -> u64 {
    (0..TIMINGS)
        .map(|_| revocation_cycles(frame, COPIES))
        .min()
        .expect("timings")
}

/// Cycles of the revocation of `copies` copies, derived from a copy of `frame` (which is
/// then dropped).
fn revocation_cycles(frame: Handle, copies: usize) -> u64 {
    let top = user::capability_derive(frame, Rights::READ | Rights::REVOKE).expect("a copy");
    for _ in 0..copies {
        user::capability_derive(top, Rights::READ).expect("a copy of the copy");
    }
    let cycles = memory::revoke_capability_timed(top).expect("revoke the copies");
    memory::drop_capability(top).expect("drop the copy");
    cycles
}

const _: () = assert!(TABLE_CAPACITY as u64 * CAPABILITY_BYTES < CHILD_KERNEL_BYTES);
