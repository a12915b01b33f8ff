//! A faulting environment dies alone: a child that touches an unmapped address with no
//! upcall handler is destroyed, and so is one whose handler itself faults and one that
//! removed its handler, while a worker child keeps printing and the parent keeps running.
//!
//! Parent and children share one page (in the managed window): the worker keeps the story
//! in order (it prints its first tick, the faulting children are started and destroyed,
//! and only then does it go on), and each faulting child reports there how far it got, so
//! the parent judges every ending itself. Only the kernel's `destroyed:` lines, which say
//! why, are left for the scenario to read.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::Handle;
use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::MapFlags;
use exo_abi::upcall::UpcallFrame;
use exo_abi::user;
use userapps::check::{self, ok};
use userapps::layout::MANAGED_START;
use userapps::memory::{read_u64, write_u64};
use userapps::spawn::{Child, yield_until};
use userapps::{println, upcall};

userapps::entry!(main);

/// Words of the shared page: the last tick the worker printed; 1 once the faulting
/// children are gone; and what the current faulting child reports: 1 once it reached its
/// faulting read, 1 if that read (or its handler's) returned, which it must not, and the
/// address its upcall handler was entered for (0: never entered).
const SHARED_PAGE: u64 = MANAGED_START;
const TICKS: u64 = SHARED_PAGE;
const FAULTER_GONE: u64 = SHARED_PAGE + 8;
const READ_REACHED: u64 = SHARED_PAGE + 16;
const READ_RETURNED: u64 = SHARED_PAGE + 24;
const HANDLER_ENTERED_FOR: u64 = SHARED_PAGE + 32;
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
    write_u64(READ_REACHED, 1);
    read_u64(UNMAPPED);
    write_u64(READ_RETURNED, 1);
    1
}

fn fault_in_handler(frame: &mut UpcallFrame) {
    write_u64(HANDLER_ENTERED_FOR, frame.info[2]);
    println!(
        "faulty-handler: upcall for address {:#x}; now faulting in the handler",
        frame.info[2]
    );
    read_u64(UNMAPPED + PAGE_SIZE);
    write_u64(READ_RETURNED, 1);
}

fn faulter_with_faulty_handler(_argument: u64) -> u64 {
    upcall::register(fault_in_handler).expect("register the upcall handler");
    println!("faulty-handler: reading unmapped address {UNMAPPED:#x}");
    write_u64(READ_REACHED, 1);
    read_u64(UNMAPPED);
    write_u64(READ_RETURNED, 1);
    1
}

fn never_entered(frame: &mut UpcallFrame) {
    write_u64(HANDLER_ENTERED_FOR, frame.info[2]);
    panic!(
        "removed-handler: entered after its removal, for {:#x}",
        frame.info[2]
    );
}

fn faulter_with_removed_handler(_argument: u64) -> u64 {
    upcall::register(never_entered).expect("register the upcall handler");
    user::remove_upcall_handler().expect("remove the upcall handler");
    println!("removed-handler: reading unmapped address {UNMAPPED:#x}");
    write_u64(READ_REACHED, 1);
    read_u64(UNMAPPED);
    write_u64(READ_RETURNED, 1);
    1
}

/// Runs `function` in a child sharing the page until the child is gone; checks that it
/// reached its faulting read and got no further, and returns the address its upcall
/// handler was entered for (0: never).
fn run_faulting_child(shared: Handle, function: fn(u64) -> u64, who: &str) -> u64 {
    for word in [READ_REACHED, READ_RETURNED, HANDLER_ENTERED_FOR] {
        write_u64(word, 0);
    }
    let child = Child::create(CHILD_QUOTA).expect("create a faulting child");
    user::map(shared, child.environment(), SHARED_PAGE, MapFlags::WRITE).expect("share it");
    child.start(function, 0).expect("start the faulting child");
    child.wait();
    assert_eq!(read_u64(READ_REACHED), 1, "{who} reached its faulting read");
    assert_eq!(
        read_u64(READ_RETURNED),
        0,
        "{who}: a faulting read returned"
    );
    read_u64(HANDLER_ENTERED_FOR)
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

    let entered = run_faulting_child(shared, faulter, "the faulter");
    assert_eq!(entered, 0, "no handler to enter");
    ok("a child reading an unmapped address with no upcall handler ended at that read");
    let entered = run_faulting_child(shared, faulter_with_faulty_handler, "faulty-handler");
    assert_eq!(
        entered, UNMAPPED,
        "the handler was entered for the faulting address"
    );
    ok(format_args!(
        "a child whose upcall handler (entered for {UNMAPPED:#x}) faulted ended in the handler"
    ));
    let entered = run_faulting_child(shared, faulter_with_removed_handler, "removed-handler");
    assert_eq!(entered, 0, "a removed handler is never entered");
    ok("a child that removed its upcall handler ended at its read, the handler not entered");
    let tick = read_u64(TICKS);
    assert!(
        (1..3).contains(&tick),
        "the worker waits at tick {tick} for the faulting children"
    );
    write_u64(FAULTER_GONE, 1);

    working_child.wait();
    assert_eq!(read_u64(TICKS), LAST_TICK, "the worker printed every tick");
    ok(format_args!(
        "the worker ran on from tick {tick} to {LAST_TICK}, and the parent still runs"
    ));
    check::all_passed("isolation-test");
    0
}
