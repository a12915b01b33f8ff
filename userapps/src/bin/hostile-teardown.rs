//! Teardown never leaks: 10,000 environments are created, filled with everything the
//! kernel keeps records for, and destroyed, and at the end the kernel's free frames and
//! kernel memory in use are exactly what they were at the start.
//!
//! Each cycle's environment fills itself: frames mapped and derived copies of their
//! capabilities, endpoints, notifications, two child environments (one with a page mapped
//! into it, one holding a granted copy), and — with the network card granted by the
//! parent — the same IPv4 address every cycle, a binding and two filters on it (a claim
//! refused with `AddressInUse` would mean the last cycle's outlived its holder). Then it
//! ends one of four ways, by turns: destroyed while it waits; exiting by itself; destroyed
//! before it ever ran (started, never scheduled); or destroyed holding a CPU slot the
//! parent allocated for it and with a revocation request open.
//!
//! Destroying must not allocate, must finish, and must give back every frame and byte it
//! charged. The program takes the cycle count as its start argument (`init_argument=N`
//! on the kernel command line; 0 means [`CYCLES`]), so a shorter run fits a test suite.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::MapFlags;
use exo_abi::net::{self, Filter};
use exo_abi::syscall::{ANY_SLOT, Event};
use exo_abi::{Error, Handle, Rights, user};
use userapps::check;
use userapps::hostile::conservation::Baseline;
use userapps::hostile::shared::Words;
use userapps::layout::MANAGED_START;
use userapps::net::Binding;
use userapps::spawn::Child;
use userapps::{facts, memory, println};

userapps::entry!(main);

/// Cycles when the start argument is 0.
const CYCLES: u64 = 10_000;
/// How often progress is printed.
const REPORT_EVERY: u64 = 1000;

const SHARED: Words = Words::at(MANAGED_START);
/// Words of `SHARED`: the handles the parent leaves, and what the filler reports.
const NIC_HANDLE: u64 = 0;
/// `cycle + 1` once the filler of that cycle holds everything.
const FILLED: u64 = 1;
/// 0, or `step << 32 | error code` of what failed.
const FAILURE: u64 = 2;

/// Where a filler maps its frames, and its binding's rings.
const FILLER_PAGES: u64 = MANAGED_START + 0x10 * PAGE_SIZE;
const RING_PAGES: u64 = MANAGED_START + 0x100 * PAGE_SIZE;
/// The address every filler claims in turn.
const ADDRESS: u32 = net::ipv4(10, 66, 0, 1);
const PORT: u16 = 9000;
const FILLER_FRAMES: u64 = 4;
const ENDPOINTS: u64 = 2;
const NOTIFICATIONS: u64 = 2;
const FILLER_QUOTA: u64 = 256;
const GRANDCHILD_QUOTAS: [u64; 2] = [8, 16];
/// Frames the parent asks back from a filler it then destroys with the request open.
const FRAMES_ASKED: u64 = 2;
const LONG_DEADLINE: u64 = 100_000;

/// How a cycle's environment ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    DestroyedWhileWaiting,
    Exited,
    DestroyedBeforeRunning,
    DestroyedHoldingSlotAndRequest,
}

impl Ending {
    fn of(cycle: u64) -> Self {
        match cycle % 4 {
            0 => Ending::DestroyedWhileWaiting,
            1 => Ending::Exited,
            2 => Ending::DestroyedBeforeRunning,
            _ => Ending::DestroyedHoldingSlotAndRequest,
        }
    }
}

fn main(argument: u64) -> u64 {
    let cycles = if argument == 0 { CYCLES } else { argument };
    let shared_page = SHARED.allocate().expect("allocate the shared page");
    let nic = user::start_info().nic().expect("a network card");
    // One cycle of each kind first: what the parent keeps for good (its scratch page's
    // tables, its table's size) must exist before the baseline.
    for cycle in 0..4 {
        one_cycle(cycle, shared_page, nic);
    }
    let baseline = Baseline::take();
    println!(
        "hostile-teardown: {cycles} cycles; before: {} frames free, {} bytes of kernel memory \
         in use",
        baseline.free_frames, baseline.kernel_bytes_in_use
    );
    let start = facts::ticks();
    for cycle in 0..cycles {
        one_cycle(cycle, shared_page, nic);
        if (cycle + 1) % REPORT_EVERY == 0 {
            println!(
                "hostile-teardown: {} cycles, {} frames free, {} bytes of kernel memory in use",
                cycle + 1,
                user::frame_counts().0,
                user::kernel_memory().0
            );
        }
    }
    println!(
        "hostile-teardown: {cycles} cycles in {} ticks",
        facts::ticks() - start
    );
    check::ok(format_args!(
        "{cycles} cycles: each filler that ran filled itself, and each ended its way, by turns"
    ));
    baseline.expect_came_back("hostile-teardown", "every cycle");
    check::all_passed("hostile-teardown");
    0
}

/// Creates, fills and ends one environment.
fn one_cycle(cycle: u64, shared_page: Handle, nic: Handle) {
    let ending = Ending::of(cycle);
    let filler = Child::create(FILLER_QUOTA).expect("create a filler");
    SHARED
        .share_with(shared_page, filler.environment())
        .expect("share the page");
    let rights = user::capability_identify(nic)
        .expect("identify the NIC")
        .rights;
    let granted = user::capability_grant(nic, filler.environment(), rights).expect("grant the NIC");
    SHARED.write(NIC_HANDLE, granted.to_raw());
    SHARED.write(FILLED, cycle);
    SHARED.write(FAILURE, 0);
    filler
        .start(fill, u64::from(ending == Ending::Exited))
        .expect("start the filler");
    match ending {
        Ending::DestroyedBeforeRunning => {
            filler.destroy();
            return;
        }
        Ending::Exited => filler.wait(),
        _ => filler.run_until_blocked(),
    }
    let failure = SHARED.read(FAILURE);
    assert!(
        failure == 0,
        "cycle {cycle}: the filler's step {} failed with {:?}",
        failure >> 32,
        Error::try_from(failure & 0xffff_ffff)
    );
    assert_eq!(SHARED.read(FILLED), cycle + 1, "cycle {cycle}: not filled");
    match ending {
        Ending::DestroyedHoldingSlotAndRequest => {
            let (slot, _) =
                user::slot_allocate(filler.environment(), ANY_SLOT).expect("a slot for it");
            user::request_frames(filler.environment(), FRAMES_ASKED, LONG_DEADLINE)
                .expect("ask for frames");
            filler.destroy();
            // Its slot went with it; the capability may or may not be stale by now.
            let _ = memory::drop_capability(slot);
        }
        _ => filler.destroy(),
    }
}

/// The filler: takes everything, reports, and waits to be destroyed — or exits, if
/// `exit` is 1.
fn fill(exit: u64) -> u64 {
    if let Err((step, error)) = take_everything() {
        SHARED.write(FAILURE, step << 32 | error.code());
        return 1;
    }
    let cycle_done = SHARED.read(FILLED);
    SHARED.write(FILLED, cycle_done + 1);
    if exit == 1 {
        return 0;
    }
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}

/// Everything a filler holds; the step that failed, if one did.
fn take_everything() -> Result<(), (u64, Error)> {
    let step = |number: u64| move |error: Error| (number, error);
    let mut frames = [Handle::SELF_ENVIRONMENT; FILLER_FRAMES as usize];
    for (page, frame) in (0..).zip(&mut frames) {
        (*frame, _) = user::frame_allocate(0).map_err(step(1))?;
        let address = FILLER_PAGES + page * PAGE_SIZE;
        user::map(*frame, Handle::SELF_ENVIRONMENT, address, MapFlags::WRITE).map_err(step(2))?;
        user::capability_derive(*frame, Rights::READ | Rights::MAP).map_err(step(3))?;
    }
    for entry in 0..ENDPOINTS {
        user::endpoint_create(entry).map_err(step(4))?;
    }
    for bit in 0..NOTIFICATIONS {
        user::notification_create(1 << bit).map_err(step(5))?;
    }
    for (quota, frame) in GRANDCHILD_QUOTAS.into_iter().zip(frames) {
        let grandchild = user::environment_create(quota).map_err(step(6))?;
        user::map(frame, grandchild, MANAGED_START, MapFlags::empty()).map_err(step(7))?;
        user::capability_grant(frame, grandchild, Rights::READ | Rights::MAP).map_err(step(8))?;
    }
    let nic = Handle::from_raw(SHARED.read(NIC_HANDLE));
    let address = user::net_claim(nic, ADDRESS).map_err(step(9))?;
    let binding = Binding::new(RING_PAGES, None).map_err(step(10))?;
    for filter in [Filter::udp(PORT), Filter::tcp(PORT)] {
        user::net_filter(binding.handle, address, filter).map_err(step(11))?;
    }
    Ok(())
}
