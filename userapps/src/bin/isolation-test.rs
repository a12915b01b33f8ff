//! A faulting environment dies alone: a child that touches an unmapped address with no
//! upcall handler is destroyed, and so is one whose handler itself faults and one that
//! removed its handler, while a worker child keeps printing and the parent keeps running.
//!
//! Parent and worker share one page (in the managed window) to keep the story in order:
//! the worker prints its first tick, the faulting children are started and destroyed, and
//! only then does the worker go on.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::Handle;
use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::MapFlags;
use exo_abi::upcall::UpcallFrame;
use exo_abi::user;
use userapps::layout::MANAGED_START;
use userapps::memory::{read_u64, write_u64};
use userapps::spawn::{Child, spawn, yield_until};
use userapps::{println, upcall};

userapps::entry!(main);

/// Word 0: the last tick the worker printed. Word 1: 1 once the faulting children are gone.
const SHARED_PAGE: u64 = MANAGED_START;
const TICKS: u64 = SHARED_PAGE;
const FAULTER_GONE: u64 = SHARED_PAGE + 8;
/// Nothing is ever mapped here.
const UNMAPPED: u64 = MANAGED_START + 0x100 * PAGE_SIZE;
const LAST_TICK: u64 = 5;
const CHILD_QUOTA: u64 = 32;

fn worker(_argument: u64) -> u64 {
    for tick in 1..=LAST_TICK {
        if tick == 3 {
            yield_until("the faulting children are gone", || {
                read_u64(FAULTER_GONE) == 1
            });
        }
        println!("worker: tick {tick}");
        write_u64(TICKS, tick);
        for _ in 0..3 {
            user::yield_now();
        }
    }
    0
}

fn faulter(_argument: u64) -> u64 {
    println!("faulter: reading unmapped address {UNMAPPED:#x}, with no upcall handler");
    let value = read_u64(UNMAPPED);
    println!("faulter: read {value:#x}: the fault went unnoticed");
    1
}

fn fault_in_handler(frame: &mut UpcallFrame) {
    let address = UNMAPPED + PAGE_SIZE;
    println!(
        "faulty-handler: upcall for address {:#x}; now faulting in the handler",
        frame.info[2]
    );
    let value = read_u64(address);
    println!("faulty-handler: read {value:#x} in the handler: the fault went unnoticed");
}

fn faulter_with_faulty_handler(_argument: u64) -> u64 {
    upcall::register(fault_in_handler).expect("register the upcall handler");
    println!("faulty-handler: reading unmapped address {UNMAPPED:#x}");
    let value = read_u64(UNMAPPED);
    println!("faulty-handler: read {value:#x}: resumed after a faulting handler");
    1
}

fn never_entered(frame: &mut UpcallFrame) {
    panic!(
        "removed-handler: entered after its removal, for {:#x}",
        frame.info[2]
    );
}

fn faulter_with_removed_handler(_argument: u64) -> u64 {
    upcall::register(never_entered).expect("register the upcall handler");
    user::remove_upcall_handler().expect("remove the upcall handler");
    println!("removed-handler: reading unmapped address {UNMAPPED:#x}");
    let value = read_u64(UNMAPPED);
    println!("removed-handler: read {value:#x}: the fault went unnoticed");
    1
}

fn main(_argument: u64) -> u64 {
    let (shared, _) = user::frame_allocate(0).expect("allocate the shared page");
    user::map(
        shared,
        Handle::SELF_ENVIRONMENT,
        SHARED_PAGE,
        MapFlags::WRITE,
    )
    .expect("map it");
    let working_child = Child::create(CHILD_QUOTA).expect("create the worker");
    let environment = working_child.environment();
    user::map(shared, environment, SHARED_PAGE, MapFlags::WRITE).expect("share it");
    working_child.start(worker, 0).expect("start the worker");
    yield_until("the worker prints its first tick", || read_u64(TICKS) >= 1);

    let faulting_child = spawn(faulter, 0, CHILD_QUOTA).expect("spawn the faulting child");
    faulting_child.wait();
    println!(
        "isolation-test: the faulting child is gone, the worker is at tick {}",
        read_u64(TICKS)
    );
    let faulting_child = spawn(faulter_with_faulty_handler, 0, CHILD_QUOTA)
        .expect("spawn the child whose handler faults");
    faulting_child.wait();
    println!("isolation-test: the child whose handler faulted is gone");
    let faulting_child = spawn(faulter_with_removed_handler, 0, CHILD_QUOTA)
        .expect("spawn the child that removes its handler");
    faulting_child.wait();
    println!("isolation-test: the child that removed its handler is gone");

    write_u64(FAULTER_GONE, 1);

    working_child.wait();
    assert_eq!(read_u64(TICKS), LAST_TICK, "the worker printed every tick");
    println!("isolation-test: parent still running");
    0
}
