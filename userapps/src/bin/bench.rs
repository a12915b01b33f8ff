//! Microbenchmarks of the kernel's primitives, in TSC cycles, on the bare runtime: nothing
//! stands between the program and the system calls it times.
//!
//! Each benchmark times every repetition on its own with `tsc()` and prints the median,
//! one line each (`cargo xtask bench` parses them, and the Linux counterparts print the
//! same), then `BENCH-DONE`:
//!
//! ```text
//! BENCH null-syscall 95 cycles n=10000
//! ```
//!
//! - `null-syscall`: `FrameCounts`, the cheapest call that does something (it reads two
//!   counters), through the whole system-call path.
//! - `trap-floor`: `Null`, which the kernel answers in its entry stub: `syscall`, `sysretq`.
//! - `page-fault`: a write to a read-only page, the fault upcall, a handler that makes the
//!   page writable with `Protect`, and the return to the write, which then completes.
//! - `exception-floor`: `int3`, the fault upcall, a handler that does nothing, the return.
//! - `map-touch-unmap`: `FrameAllocate` of one frame, `Map` writable, a write, `Unmap`.
//! - `yield-round-trip`: `YieldTo` a child that at once yields back.
//! - `call-reply`: `Call` through an endpoint to a child blocked in `Wait(CALL)` that
//!   `Reply`s at once.
//!
//! Set-up — the child environments, re-protecting the page, dropping the frame, getting
//! the server back into `Wait` — is outside the timed part. The repetition count is the
//! start argument (`init_argument=N` on the kernel command line); 0 means the default.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::hint::black_box;
use core::sync::atomic::{AtomicU64, Ordering};

use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::{MAX_FRAME_ORDER, MapFlags};
use exo_abi::syscall::Event;
use exo_abi::upcall::{UpcallFrame, UpcallReason};
use exo_abi::user::{self, Wakeup};
use exo_abi::{Error, Handle, Rights};
use userapps::layout::MANAGED_START;
use userapps::memory::{self, read_u64, write_u64};
use userapps::spawn::{Child, yield_until};
use userapps::{facts, println, upcall};

userapps::entry!(main);

const SELF: Handle = Handle::SELF_ENVIRONMENT;
const DEFAULT_REPETITIONS: u64 = 10_000;
/// As many samples as one run of frames holds (4 MiB of u64s).
const MAX_REPETITIONS: u64 = (PAGE_SIZE << MAX_FRAME_ORDER) / 8;
/// Untimed repetitions first, so that every path has run (and been translated, under TCG)
/// before the first timed one.
const WARM_UP: u64 = 32;

/// Where the samples are kept: the bare runtime has no heap and a 64 KiB stack.
const SAMPLES: u64 = MANAGED_START;
/// The page the page-fault benchmark writes to, read-only before each write.
const FAULT_PAGE: u64 = MANAGED_START + 0x1_0000_0000;
/// Where map-touch-unmap maps its frame.
const TOUCH_PAGE: u64 = FAULT_PAGE + PAGE_SIZE;
/// The page the call server shares with us: its endpoint's handle in our table, and
/// whether it has written it.
const SHARED_PAGE: u64 = FAULT_PAGE + 2 * PAGE_SIZE;
const ENDPOINT_HANDLE: u64 = SHARED_PAGE;
const SERVER_READY: u64 = SHARED_PAGE + 8;

const CHILD_QUOTA: u64 = 48;
const PATIENCE: u64 = 1_000_000;
const BREAKPOINT: u64 = 3;
const PAGE_FAULT: u64 = 14;
/// Page-fault error code bit 1: the access was a write.
const WRITE_ACCESS: u64 = 1 << 1;

fn main(argument: u64) -> u64 {
    let repetitions = match argument {
        0 => DEFAULT_REPETITIONS,
        asked => asked.min(MAX_REPETITIONS),
    };
    println!(
        "bench: {repetitions} repetitions each, medians in TSC cycles ({} MHz)",
        facts::tsc_hz() / 1_000_000
    );
    let mut samples = Samples::new(repetitions);
    repeat(&mut samples, |samples, _| {
        let start = user::tsc();
        let end = user::tsc();
        samples.record(end - start);
    });
    println!(
        "bench: two tsc() reads back to back: {} cycles, part of every figure below",
        samples.median()
    );
    samples.clear();
    null_syscall(&mut samples);
    samples.report("null-syscall");
    trap_floor(&mut samples);
    samples.report("trap-floor");
    page_fault(&mut samples);
    samples.report("page-fault");
    exception_floor(&mut samples);
    samples.report("exception-floor");
    map_touch_unmap(&mut samples);
    samples.report("map-touch-unmap");
    yield_round_trip(&mut samples);
    samples.report("yield-round-trip");
    call_reply(&mut samples);
    samples.report("call-reply");
    println!("BENCH-DONE");
    0
}

/// Cycles of each repetition, in a run of frames in the managed window.
struct Samples {
    capacity: u64,
    count: u64,
}

impl Samples {
    fn new(capacity: u64) -> Self {
        let pages = (capacity * 8).div_ceil(PAGE_SIZE);
        let order = pages.next_power_of_two().trailing_zeros();
        let (frames, _) = user::frame_allocate(order).expect("allocate frames for the samples");
        user::map(frames, SELF, SAMPLES, MapFlags::WRITE).expect("map the samples");
        Self { capacity, count: 0 }
    }

    fn clear(&mut self) {
        self.count = 0;
    }

    fn full(&self) -> bool {
        self.count == self.capacity
    }

    fn record(&mut self, cycles: u64) {
        write_u64(SAMPLES + self.count * 8, cycles);
        self.count += 1;
    }

    fn at_most(&self, limit: u64) -> u64 {
        (0..self.count)
            .filter(|index| read_u64(SAMPLES + index * 8) <= limit)
            .count() as u64
    }

    /// The lower median: the smallest value at least half the samples are not above,
    /// found by bisecting the values (no sorting, so no copy of the samples is needed).
    fn median(&self) -> u64 {
        let wanted = self.count.div_ceil(2);
        let (mut low, mut high) = (0, u64::MAX);
        while low < high {
            let middle = low + (high - low) / 2;
            if self.at_most(middle) >= wanted {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        low
    }

    fn report(&mut self, name: &str) {
        assert!(
            self.full(),
            "{name}: {} of {} samples",
            self.count,
            self.capacity
        );
        println!("BENCH {name} {} cycles n={}", self.median(), self.count);
        self.clear();
    }
}

/// Runs `repetition` `WARM_UP` times untimed, then until `samples` is full; it records
/// its own cycles, as only it knows which part to time.
fn repeat(samples: &mut Samples, mut repetition: impl FnMut(&mut Samples, u64)) {
    let mut scratch = Samples {
        capacity: 0,
        count: 0,
    };
    for round in 0..WARM_UP {
        repetition(&mut scratch, round);
        scratch.clear();
    }
    let mut round = WARM_UP;
    while !samples.full() {
        repetition(samples, round);
        round += 1;
    }
}

// ---------------------------------------------------------------------------------------

fn null_syscall(samples: &mut Samples) {
    repeat(samples, |samples, _| {
        let start = user::tsc();
        let counts = user::frame_counts();
        let end = user::tsc();
        black_box(counts);
        samples.record(end - start);
    });
}

/// `Null`, answered in the kernel's entry stub: what no system call can go below.
fn trap_floor(samples: &mut Samples) {
    repeat(samples, |samples, _| {
        let start = user::tsc();
        user::null();
        let end = user::tsc();
        samples.record(end - start);
    });
}

// ---------------------------------------------------------------------------------------

static FAULTS: AtomicU64 = AtomicU64::new(0);
static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);

/// The page-fault benchmark's handler: the write to `FAULT_PAGE` faulted because the page
/// is read-only; make it writable, and the write runs again when the handler returns.
fn on_upcall(frame: &mut UpcallFrame) {
    let [vector, error_code, address] = frame.info;
    if frame.reason() == Some(UpcallReason::Fault) && vector == BREAKPOINT {
        // The exception floor: nothing to do; `int3` is a trap, so the
        // handler returns to the instruction after it.
        BREAKPOINTS.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let expected = frame.reason() == Some(UpcallReason::Fault)
        && vector == PAGE_FAULT
        && error_code & WRITE_ACCESS != 0
        && address & !(PAGE_SIZE - 1) == FAULT_PAGE;
    if !expected {
        panic!(
            "unexpected upcall: reason {} info [{vector}, {error_code:#x}, {address:#x}] at rip {:#x}",
            frame.reason, frame.registers.rip
        );
    }
    memory::protect(SELF, FAULT_PAGE, MapFlags::WRITE).expect("make the faulting page writable");
    FAULTS.fetch_add(1, Ordering::Relaxed);
}

fn page_fault(samples: &mut Samples) {
    upcall::register(on_upcall).expect("register the upcall handler");
    let (frame, _) = user::frame_allocate(0).expect("allocate the page to fault on");
    user::map(frame, SELF, FAULT_PAGE, MapFlags::empty()).expect("map it read-only");
    let before = FAULTS.load(Ordering::Relaxed);
    repeat(samples, |samples, round| {
        memory::protect(SELF, FAULT_PAGE, MapFlags::empty()).expect("read-only again");
        let start = user::tsc();
        write_u64(FAULT_PAGE, round);
        let end = user::tsc();
        samples.record(end - start);
    });
    let faults = FAULTS.load(Ordering::Relaxed) - before;
    assert_eq!(faults, WARM_UP + samples.count, "one fault per write");
    memory::drop_capability(frame).expect("drop the page");
    user::remove_upcall_handler().expect("remove the upcall handler");
}

/// An exception delivered to the upcall handler and returned from, with nothing done:
/// the floor of the page-fault round trip, which also changes the page and retries.
fn exception_floor(samples: &mut Samples) {
    upcall::register(on_upcall).expect("register the upcall handler");
    let before = BREAKPOINTS.load(Ordering::Relaxed);
    repeat(samples, |samples, _| {
        let start = user::tsc();
        user::breakpoint();
        let end = user::tsc();
        samples.record(end - start);
    });
    let breakpoints = BREAKPOINTS.load(Ordering::Relaxed) - before;
    assert_eq!(breakpoints, WARM_UP + samples.count, "one upcall per int3");
    user::remove_upcall_handler().expect("remove the upcall handler");
}

// ---------------------------------------------------------------------------------------

fn map_touch_unmap(samples: &mut Samples) {
    repeat(samples, |samples, round| {
        let start = user::tsc();
        let (frame, _) = user::frame_allocate(0).expect("allocate a frame");
        user::map(frame, SELF, TOUCH_PAGE, MapFlags::WRITE).expect("map it");
        write_u64(TOUCH_PAGE, round);
        memory::unmap(SELF, TOUCH_PAGE).expect("unmap it");
        let end = user::tsc();
        samples.record(end - start);
        // Returning the frame is not timed: the runtime's safe drop first walks our page
        // tables to check the frame backs none of our Rust memory.
        memory::drop_capability(frame).expect("drop the frame");
    });
}

// ---------------------------------------------------------------------------------------

/// The yield benchmark's child: gives the CPU straight back to its parent, for ever.
fn yield_back(parent: u64) -> u64 {
    let parent = Handle::from_raw(parent);
    loop {
        let _ = user::yield_to(parent);
    }
}

fn yield_round_trip(samples: &mut Samples) {
    let child = Child::create(CHILD_QUOTA).expect("create the yield partner");
    let parent = user::capability_grant(SELF, child.environment(), Rights::CALL)
        .expect("grant the partner a capability for us");
    child
        .start(yield_back, parent.to_raw())
        .expect("start the partner");
    let partner = child.environment();
    repeat(samples, |samples, _| {
        let start = user::tsc();
        user::yield_to(partner).expect("yield to the partner");
        let end = user::tsc();
        samples.record(end - start);
    });
    child.destroy();
}

// ---------------------------------------------------------------------------------------

const ENDPOINT_TAG: u64 = 0xbe;

/// The call benchmark's server: hands its endpoint to the parent (`parent` has `GIVE`),
/// then answers every call at once with its first argument plus one.
fn server(parent: u64) -> u64 {
    let endpoint = user::endpoint_create(ENDPOINT_TAG).expect("server: create an endpoint");
    let theirs = user::capability_grant(endpoint, Handle::from_raw(parent), Rights::CALL)
        .expect("server: grant the endpoint");
    write_u64(ENDPOINT_HANDLE, theirs.to_raw());
    write_u64(SERVER_READY, 1);
    loop {
        match user::wait(Event::CALL, 0) {
            Ok(Wakeup::Call(call)) => {
                let _ = user::reply([call.arguments[0] + 1, 0], None);
            }
            other => panic!("server: wait(CALL) returned {other:?}"),
        }
    }
}

/// Gives `server` the CPU until it is blocked in `Wait` again (it has replied, but not
/// yet got back there): then a call reaches it at once.
fn until_receiving(server: Handle) {
    for _ in 0..PATIENCE {
        match user::yield_to(server) {
            Ok(()) => {}
            Err(Error::NotReceiving) => return,
            Err(error) => panic!("yield to the server: {error:?}"),
        }
    }
    panic!("the server never waited for calls");
}

fn call_reply(samples: &mut Samples) {
    let (shared, _) = user::frame_allocate(0).expect("allocate the shared page");
    user::map(shared, SELF, SHARED_PAGE, MapFlags::WRITE).expect("map the shared page");
    let child = Child::create(CHILD_QUOTA).expect("create the server");
    user::map(shared, child.environment(), SHARED_PAGE, MapFlags::WRITE).expect("share it");
    let parent = user::capability_grant(SELF, child.environment(), Rights::GIVE)
        .expect("grant the server a capability for us");
    child
        .start(server, parent.to_raw())
        .expect("start the server");
    yield_until("the server is ready", || read_u64(SERVER_READY) == 1);
    let endpoint = Handle::from_raw(read_u64(ENDPOINT_HANDLE));
    let server = child.environment();
    let mut refused = 0;
    repeat(samples, |samples, round| {
        until_receiving(server);
        let start = user::tsc();
        let result = user::call_endpoint(endpoint, [round, 0], None);
        let end = user::tsc();
        match result {
            Ok(([answer, _], None)) => {
                assert_eq!(answer, round + 1, "the server's answer");
                samples.record(end - start);
            }
            // A tick between the check and the call can leave the server elsewhere.
            Err(Error::NotReceiving) => {
                refused += 1;
                assert!(refused < PATIENCE, "calls keep finding the server busy");
            }
            other => panic!("call: {other:?}"),
        }
    });
    child.destroy();
    memory::drop_capability(shared).expect("drop the shared page");
}
