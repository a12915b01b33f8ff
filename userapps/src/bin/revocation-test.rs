//! Visible revocation and the abort protocol.
//!
//! A stubborn child allocates and maps 8 frames and ignores the kernel's request to give 4
//! back: when the deadline passes, the kernel takes them by force — unmaps them and
//! invalidates their capabilities — and says so in the child's accounts. A cooperative
//! child answers the same request by dropping 4 frames of its choice, and loses nothing
//! by force.
//!
//! Each child reports through a page it shares with the parent (in the managed window):
//! how many of its frames are still mapped and still named by a valid capability.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::MapFlags;
use exo_abi::syscall::EnvironmentAccount;
use exo_abi::upcall::{UpcallFrame, UpcallReason};
use exo_abi::{Handle, user};
use userapps::check::{self, ok};
use userapps::layout::MANAGED_START;
use userapps::memory::{self, read_u64, write_u64};
use userapps::spawn::{Child, yield_until};
use userapps::upcall;

userapps::entry!(main);

/// Words of the shared page: frames the child holds (as far as it knows), revocation
/// upcalls it received, and how many of its pages are still mapped and capabilities valid.
const SHARED_PAGE: u64 = MANAGED_START;
const FRAMES_HELD: u64 = SHARED_PAGE;
const REQUESTS_SEEN: u64 = SHARED_PAGE + 8;
const PAGES_MAPPED: u64 = SHARED_PAGE + 16;
const CAPABILITIES_VALID: u64 = SHARED_PAGE + 24;
/// Where a child maps the frames it allocates.
const HELD_PAGES: u64 = MANAGED_START + 0x100 * PAGE_SIZE;

const FRAMES_ALLOCATED: usize = 8;
const FRAMES_WANTED: u64 = 4;
/// Timer ticks (1 ms each by default) the stubborn child is given; it will not use them.
const SHORT_DEADLINE: u64 = 20;
/// Long enough that a cooperative child always answers first.
const LONG_DEADLINE: u64 = 5_000;
const CHILD_QUOTA: u64 = 64;
const PATIENCE: u64 = 10_000_000;

/// The frames a child allocated, for the cooperative one's handler to choose from.
static HELD: [AtomicU64; FRAMES_ALLOCATED] = [const { AtomicU64::new(0) }; FRAMES_ALLOCATED];
static HELD_COUNT: AtomicUsize = AtomicUsize::new(0);

fn hold_frames_and_spin(handler: fn(&mut UpcallFrame)) -> u64 {
    upcall::register(handler).expect("register the upcall handler");
    for (index, slot) in HELD.iter().enumerate() {
        let (frame, _) = user::frame_allocate(0).expect("allocate");
        let address = held_page(index);
        user::map(frame, Handle::SELF_ENVIRONMENT, address, MapFlags::WRITE).expect("map");
        write_u64(address, index as u64);
        slot.store(frame.to_raw(), Ordering::Relaxed);
    }
    HELD_COUNT.store(FRAMES_ALLOCATED, Ordering::Relaxed);
    write_u64(FRAMES_HELD, FRAMES_ALLOCATED as u64);
    loop {
        let mapped = (0..FRAMES_ALLOCATED)
            .filter(|&index| user::translate(held_page(index)).is_some())
            .count();
        let valid = HELD
            .iter()
            .filter(|slot| {
                user::capability_identify(Handle::from_raw(slot.load(Ordering::Relaxed))).is_ok()
            })
            .count();
        write_u64(PAGES_MAPPED, mapped as u64);
        write_u64(CAPABILITIES_VALID, valid as u64);
        user::yield_now();
    }
}

fn held_page(index: usize) -> u64 {
    HELD_PAGES + index as u64 * PAGE_SIZE
}

fn revocation_request(frame: &UpcallFrame) -> u64 {
    match frame.reason() {
        Some(UpcallReason::RevokeFrames) => {
            write_u64(REQUESTS_SEEN, read_u64(REQUESTS_SEEN) + 1);
            frame.info[0]
        }
        _ => panic!("unexpected upcall {} {:#x?}", frame.reason, frame.info),
    }
}

fn stubborn(_argument: u64) -> u64 {
    hold_frames_and_spin(|frame| {
        revocation_request(frame);
    })
}

fn cooperative(_argument: u64) -> u64 {
    hold_frames_and_spin(|frame| {
        for _ in 0..revocation_request(frame) {
            let count = HELD_COUNT.load(Ordering::Relaxed);
            if count == 0 {
                break;
            }
            HELD_COUNT.store(count - 1, Ordering::Relaxed);
            let frame = Handle::from_raw(HELD[count - 1].load(Ordering::Relaxed));
            memory::drop_capability(frame).expect("give a frame back");
        }
        write_u64(FRAMES_HELD, HELD_COUNT.load(Ordering::Relaxed) as u64);
    })
}

/// A started child sharing the page at `SHARED_PAGE`, once it holds all its frames.
fn start_holder(shared: Handle, function: fn(u64) -> u64) -> Child {
    for word in [FRAMES_HELD, REQUESTS_SEEN, PAGES_MAPPED, CAPABILITIES_VALID] {
        write_u64(word, 0);
    }
    let child = Child::create(CHILD_QUOTA).expect("create a child");
    user::map(shared, child.environment(), SHARED_PAGE, MapFlags::WRITE).expect("share a page");
    child.start(function, 0).expect("start the child");
    yield_until("the child holds its frames", || {
        read_u64(FRAMES_HELD) == FRAMES_ALLOCATED as u64
    });
    child
}

/// Waits until the child reports that `frames` of its pages are still mapped and as many
/// of its capabilities still valid: the others were unmapped and invalidated.
fn expect_child_keeps(frames: u64, who: &str) {
    let keeps = || read_u64(PAGES_MAPPED) == frames && read_u64(CAPABILITIES_VALID) == frames;
    for _ in 0..PATIENCE {
        if keeps() {
            ok(format_args!(
                "{who} still maps {frames} of its {FRAMES_ALLOCATED} pages and holds \
                 {frames} valid frame capabilities"
            ));
            return;
        }
        user::yield_now();
    }
    panic!(
        "{who} should keep {frames} frames, but reports {} pages mapped and {} capabilities valid",
        read_u64(PAGES_MAPPED),
        read_u64(CAPABILITIES_VALID)
    );
}

fn account(child: &Child, account: EnvironmentAccount) -> u64 {
    child.account(account).expect("read a child's account")
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

    let child = start_holder(shared, stubborn);
    let charged_before = account(&child, EnvironmentAccount::FramesCharged);
    user::request_frames(child.environment(), FRAMES_WANTED, SHORT_DEADLINE).expect("request");
    yield_until("frames are taken by force", || {
        account(&child, EnvironmentAccount::FramesTakenByForce) >= FRAMES_WANTED
    });
    let taken = account(&child, EnvironmentAccount::FramesTakenByForce);
    let charged_after = account(&child, EnvironmentAccount::FramesCharged);
    let requests = read_u64(REQUESTS_SEEN);
    assert_eq!(
        taken, FRAMES_WANTED,
        "exactly the frames asked for are taken"
    );
    ok(format_args!(
        "the stubborn child lost {taken} frames taken by force"
    ));
    assert_eq!(
        charged_before - charged_after,
        FRAMES_WANTED,
        "the charge fell by the frames taken"
    );
    assert_eq!(account(&child, EnvironmentAccount::FramesGivenBack), 0);
    ok(format_args!(
        "its frames charged fell {charged_before} -> {charged_after}, none given back"
    ));
    assert!(requests >= 1, "the kernel asks before it takes");
    ok(format_args!(
        "the stubborn child was asked first ({requests} upcall) and ignored it"
    ));
    expect_child_keeps(
        FRAMES_ALLOCATED as u64 - FRAMES_WANTED,
        "the stubborn child",
    );
    child.destroy();

    let child = start_holder(shared, cooperative);
    user::request_frames(child.environment(), FRAMES_WANTED, LONG_DEADLINE).expect("request");
    yield_until("the cooperative child answers", || {
        account(&child, EnvironmentAccount::FramesGivenBack) >= FRAMES_WANTED
            || account(&child, EnvironmentAccount::FramesTakenByForce) > 0
    });
    let given_back = account(&child, EnvironmentAccount::FramesGivenBack);
    let taken = account(&child, EnvironmentAccount::FramesTakenByForce);
    assert_eq!((given_back, taken), (FRAMES_WANTED, 0));
    assert_eq!(
        read_u64(FRAMES_HELD),
        FRAMES_ALLOCATED as u64 - FRAMES_WANTED
    );
    ok(format_args!(
        "the cooperative child gave back {given_back} frames, {taken} taken by force"
    ));
    expect_child_keeps(
        FRAMES_ALLOCATED as u64 - FRAMES_WANTED,
        "the cooperative child",
    );
    child.destroy();

    check::all_passed("revocation-test");
    0
}
