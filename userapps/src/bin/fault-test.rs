//! Demand-zero paging by a user-level page-fault handler.
//!
//! The program touches pages of a heap region nothing is mapped in. Each touch faults; the
//! kernel delivers the fault as an upcall on the runtime's exception stack; the handler
//! allocates a frame, maps it at the faulting page and returns, and the interrupted access
//! runs again, now hitting the fresh (zeroed) page — all without the kernel deciding
//! anything about paging.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use exo_abi::Handle;
use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::MapFlags;
use exo_abi::upcall::{UpcallFrame, UpcallReason};
use exo_abi::user;
use userapps::check::{self, ok};
use userapps::layout::MANAGED_START;
use userapps::memory::{read_u64, write_u64};
use userapps::upcall;

userapps::entry!(main);

const HEAP_START: u64 = MANAGED_START + 0x10_0000_0000;
const HEAP_PAGES: u64 = 32;
const HEAP_END: u64 = HEAP_START + HEAP_PAGES * PAGE_SIZE;

const PAGE_FAULT: u64 = 14;
/// Page-fault error code bit 1: the access was a write.
const WRITE_ACCESS: u64 = 1 << 1;

static READ_FAULTS: AtomicU64 = AtomicU64::new(0);
static WRITE_FAULTS: AtomicU64 = AtomicU64::new(0);

fn on_upcall(frame: &mut UpcallFrame) {
    let [vector, error_code, address] = frame.info;
    let in_heap = (HEAP_START..HEAP_END).contains(&address);
    if frame.reason() != Some(UpcallReason::Fault) || vector != PAGE_FAULT || !in_heap {
        panic!(
            "unexpected upcall: reason {} info [{vector}, {error_code:#x}, {address:#x}] at rip {:#x}",
            frame.reason, frame.registers.rip
        );
    }
    let page = address & !(PAGE_SIZE - 1);
    let (frame_capability, _) = user::frame_allocate(0).expect("allocate a frame for the heap");
    user::map(
        frame_capability,
        Handle::SELF_ENVIRONMENT,
        page,
        MapFlags::WRITE,
    )
    .expect("map the heap page");
    let counter = if error_code & WRITE_ACCESS != 0 {
        &WRITE_FAULTS
    } else {
        &READ_FAULTS
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

fn pattern(page: u64, offset: u64) -> u64 {
    0x5eed_0000_0000_0000 ^ (page << 16) ^ offset
}

const OFFSETS: [u64; 3] = [0, PAGE_SIZE / 2, PAGE_SIZE - 8];

fn main(_argument: u64) -> u64 {
    upcall::register(on_upcall).expect("register the upcall handler");
    for page in 0..HEAP_PAGES {
        let base = HEAP_START + page * PAGE_SIZE;
        // Even pages are first touched by a read, odd ones by a write.
        if page % 2 == 0 {
            assert_eq!(read_u64(base + 8), 0, "a demand-zero page reads as zeros");
        }
        for offset in OFFSETS {
            write_u64(base + offset, pattern(page, offset));
        }
        for offset in OFFSETS {
            assert_eq!(read_u64(base + offset), pattern(page, offset));
        }
    }
    ok(format_args!(
        "{HEAP_PAGES} demand-zero pages read as zeros until written, then read back what was written"
    ));
    for page in 0..HEAP_PAGES {
        let base = HEAP_START + page * PAGE_SIZE;
        for offset in OFFSETS {
            assert_eq!(
                read_u64(base + offset),
                pattern(page, offset),
                "page {page} kept its data"
            );
        }
        assert_eq!(
            read_u64(base + 16),
            0,
            "the rest of page {page} is still zero"
        );
    }
    ok("every page kept its data, and the rest of it is still zero");
    let reads = READ_FAULTS.load(Ordering::Relaxed);
    let writes = WRITE_FAULTS.load(Ordering::Relaxed);
    assert_eq!(
        (reads, writes),
        (HEAP_PAGES / 2, HEAP_PAGES / 2),
        "one fault per page"
    );
    ok(format_args!(
        "{} page faults handled at user level ({reads} on reads, {writes} on writes): one per page",
        reads + writes
    ));
    check::all_passed("fault-test");
    0
}
