//! Physical frames named by number: `FrameAllocateAt` lets any program ask for any frame of
//! the machine (for page colouring, or a run a device can reach), and it must get only a
//! frame nobody holds, and get it zeroed.
//!
//! A program learns physical frame numbers easily: its page-table view shows its own
//! tables and, in the PML4, the kernel's; `translate` shows every frame it maps. So:
//!
//! | attack | must get |
//! |---|---|
//! | each frame it can see in use: its PML4, the tables above its code, the kernel's tables the PML4 names, its code, stack, start-info, facts and boot-file-system pages | `FrameUnavailable`, for the frame alone and for the aligned run of 16 around it, with nothing taken or charged |
//! | device registers (the local APIC's, the I/O APIC's), the VGA hole, a frame past RAM, numbers whose address wraps past 2^64 | `FrameUnavailable` |
//! | a run not aligned to its size, an order past the largest | `Misaligned`, `InvalidArgument` |
//! | a neighbour's 16 frames, each filled with its secret, while it lives | `FrameUnavailable` |
//! | the same frames once it is destroyed, and once another has exited (its teardown runs in its own time) | each, zeroed |
//! | every frame number of the machine and some past it, one after another | each a zeroed frame or `FrameUnavailable`; never a frame seen in use |
//! | `Unmap`, `Protect` (writable) and `Map` over the pages the kernel keeps in the user half: start-info, facts, the page-table view | `KernelAddress`, and each still maps the same frame |
//!
//! Throughout, a witness runs; at the end every frame and byte of kernel memory is back.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::layout::{BOOTFS, FACTS, PAGE_SIZE, PAGE_TABLE_VIEW_SLOT, START_INFO};
use exo_abi::mapping::{MAX_FRAME_ORDER, MapFlags};
use exo_abi::syscall::Event;
use exo_abi::user::{self, entry};
use exo_abi::{Error, Handle};
use userapps::check::{self, expect_error, ok};
use userapps::hostile::conservation::Baseline;
use userapps::hostile::shared::Words;
use userapps::hostile::witness::Witness;
use userapps::layout::MANAGED_START;
use userapps::memory::{self, read_u64, write_u64};
use userapps::println;
use userapps::spawn::{Child, yield_until};

userapps::entry!(main);

/// Where a neighbour reports: word 0 is 1 once its frames hold the secret, words
/// `1..=NEIGHBOUR_FRAMES` their numbers.
const SHARED: Words = Words::at(MANAGED_START);
const READY: u64 = 0;
/// Where the sweep maps each frame it gets, to read it.
const PROBE_PAGE: u64 = MANAGED_START + 0x10 * PAGE_SIZE;
/// Where a neighbour maps its frames.
const NEIGHBOUR_PAGES: u64 = MANAGED_START + 0x40 * PAGE_SIZE;
const NEIGHBOUR_FRAMES: u64 = 16;
const NEIGHBOUR_QUOTA: u64 = 64;
/// What a neighbour writes in every word of its frames, each word xor its index.
const SECRET: u64 = 0x5ec2_e75e_c2e7_5ec2;
/// How a neighbour ends after writing its secret.
const SLEEP: u64 = 0;
const EXIT: u64 = 1;

/// Frame numbers of hardware that is not RAM on QEMU's `pc` machine: the local APIC's and
/// the I/O APIC's registers, the VGA window.
const DEVICE_FRAMES: [(&str, u64); 3] = [
    ("the local APIC's registers", 0xfee00),
    ("the I/O APIC's registers", 0xfec00),
    ("the VGA window", 0xb8),
];
/// Frame numbers the sweep tries past the end of RAM.
const PAST_RAM: u64 = 4096;
/// How far the frames the sweep gets may be from the free frames before it: the kernel's
/// own allocations meanwhile (its heap, the witness's tables) move the count a little.
const SWEEP_SLACK: u64 = 64;
/// Frames in the run asked for around a frame in use (order 4).
const RUN_ORDER: u32 = 4;

fn main(_argument: u64) -> u64 {
    let baseline = Baseline::after_a_witness_and_a_child(NEIGHBOUR_QUOTA);
    let witness = Witness::start().expect("start the witness");
    let shared = SHARED.allocate().expect("the shared page");

    let in_use = frames_in_use();
    for (what, frame) in &in_use {
        refused_alone_and_in_a_run(what, *frame);
    }
    ok(format_args!(
        "{} frames seen in use (page tables, the kernel's tables, code, stack, start-info, \
         facts, boot files): refused alone and in runs of 16, nothing taken",
        in_use.len()
    ));

    for (what, frame) in DEVICE_FRAMES {
        expect_error(
            what,
            user::frame_allocate_at(frame, 0),
            Error::FrameUnavailable,
        );
    }
    for (what, frame, order) in [
        (
            "a frame whose address is 2^64 - 4096",
            u64::MAX / PAGE_SIZE,
            0,
        ),
        (
            "a frame whose address wraps past 2^64",
            u64::MAX / PAGE_SIZE + 1,
            0,
        ),
        ("the largest frame number", u64::MAX, 0),
        ("a run of 2 whose address wraps", u64::MAX - 1, 1),
    ] {
        expect_error(
            what,
            user::frame_allocate_at(frame, order),
            Error::FrameUnavailable,
        );
    }
    expect_error(
        "a run of 2 at an odd frame",
        user::frame_allocate_at(in_use[0].1 | 1, 1),
        Error::Misaligned,
    );
    expect_error(
        "a run of 2^11 frames",
        user::frame_allocate_at(0, MAX_FRAME_ORDER + 1),
        Error::InvalidArgument,
    );

    kernel_pages_stay(shared);

    for ending in [SLEEP, EXIT] {
        neighbour(shared, ending);
    }

    sweep(&in_use.map(|(_, frame)| frame));

    witness.check_unharmed("the attacks");
    witness.stop();
    memory::drop_capability(shared).expect("drop the shared page");
    baseline.expect_came_back("hostile-physical", "every frame asked for");
    check::all_passed("hostile-physical");
    0
}

/// The frames this environment can see are in use, and what each is.
fn frames_in_use() -> [(&'static str, u64); 13] {
    let code = main as *const () as u64;
    let local = 0u64;
    let stack = &raw const local as u64;
    let table = |address, level| {
        let value = memory::view_entry(address, level).expect("the entries above are present");
        assert!(value & entry::PRESENT != 0, "the entry is present");
        (value & entry::ADDRESS) / PAGE_SIZE
    };
    let kernel_table = |slot: u64| table(slot << 39, 4);
    let mapped = |address| user::translate(address).expect("a mapped page") / PAGE_SIZE;
    [
        // The PML4, through its own slot: the view's entry for the view itself.
        ("its PML4", kernel_table(PAGE_TABLE_VIEW_SLOT)),
        ("the PDPT above its code", table(code, 4)),
        ("the page directory above its code", table(code, 3)),
        ("the page table above its code", table(code, 2)),
        // The kernel half's entries: the tables every address space shares.
        ("the kernel's table for the direct map", kernel_table(256)),
        ("the kernel's table for device registers", kernel_table(510)),
        ("the kernel's table for its image", kernel_table(511)),
        ("its code", mapped(code)),
        ("its stack", mapped(stack)),
        ("its start-info page", mapped(START_INFO)),
        ("its facts page", mapped(FACTS)),
        ("the boot file system's first page", mapped(BOOTFS)),
        ("the page it shares with children", mapped(SHARED.address())),
    ]
}

/// `Unmap`, `Protect` and `Map` over the pages the kernel keeps in the user half are
/// refused, and the pages stay as they were.
fn kernel_pages_stay(frame: Handle) {
    // The view's slot at all four levels: the PML4 itself.
    let view_of_pml4 = (PAGE_TABLE_VIEW_SLOT * 0o1_001_001_001) << 12;
    for (what, address) in [
        ("the start-info page", START_INFO),
        ("the facts page", FACTS),
        ("the page-table view's page for the PML4", view_of_pml4),
    ] {
        let before = user::translate(address);
        assert!(before.is_some(), "{what} is mapped");
        let attempts = [
            ("Unmap", memory::unmap(Handle::SELF_ENVIRONMENT, address)),
            (
                "Protect",
                memory::protect(Handle::SELF_ENVIRONMENT, address, MapFlags::WRITE),
            ),
            (
                "Map",
                user::map(frame, Handle::SELF_ENVIRONMENT, address, MapFlags::WRITE),
            ),
        ];
        for (call, result) in attempts {
            assert_eq!(result, Err(Error::KernelAddress), "{call} of {what}");
        }
        assert_eq!(user::translate(address), before, "{what} moved");
    }
    ok(
        "Unmap, Protect and Map over start-info, facts and the view: KernelAddress, each \
        page as it was",
    );
}

/// Asks for `frame` alone and for the aligned run of 16 around it: both refused, and
/// neither leaves a frame taken or charged.
fn refused_alone_and_in_a_run(what: &str, frame: u64) {
    let before = Baseline::take();
    assert_eq!(
        user::frame_allocate_at(frame, 0),
        Err(Error::FrameUnavailable),
        "{what} ({frame:#x})"
    );
    let run = frame & !((1 << RUN_ORDER) - 1);
    assert_eq!(
        user::frame_allocate_at(run, RUN_ORDER),
        Err(Error::FrameUnavailable),
        "the run of 16 from {run:#x} around {what}"
    );
    assert_eq!(
        Baseline::take(),
        before,
        "refusing {what} took or charged something"
    );
}

/// A neighbour fills 16 frames with its secret and ends by `ending`: they are refused while
/// it lives, and each comes back zeroed once it is gone.
fn neighbour(shared: Handle, ending: u64) {
    SHARED.clear();
    let child = Child::create(NEIGHBOUR_QUOTA).expect("create the neighbour");
    SHARED
        .share_with(shared, child.environment())
        .expect("share the page");
    child
        .start(neighbour_main, ending)
        .expect("start the neighbour");
    yield_until("the neighbour holds its secret", || SHARED.read(READY) == 1);
    let frames: [u64; NEIGHBOUR_FRAMES as usize] =
        core::array::from_fn(|index| SHARED.read(1 + index as u64));
    let how = if ending == SLEEP {
        "destroyed"
    } else {
        "exited"
    };
    if ending == SLEEP {
        for frame in &frames {
            assert_eq!(
                user::frame_allocate_at(*frame, 0),
                Err(Error::FrameUnavailable),
                "the neighbour's frame {frame:#x}"
            );
        }
        ok("a neighbour's 16 frames, holding its secret, refused while it lives");
        child.destroy();
    } else {
        child.wait();
        child.destroy();
    }
    for frame in frames {
        let capability = user::frame_allocate_at(frame, 0)
            .unwrap_or_else(|error| panic!("the {how} neighbour's frame {frame:#x}: {error:?}"));
        assert_zeroed(capability, frame);
    }
    ok(format_args!(
        "once the neighbour {how}, each of its frames came back zeroed"
    ));
}

fn neighbour_main(ending: u64) -> u64 {
    for index in 0..NEIGHBOUR_FRAMES {
        let (frame, number) = user::frame_allocate(0).expect("neighbour: a frame");
        let page = NEIGHBOUR_PAGES + index * PAGE_SIZE;
        user::map(frame, Handle::SELF_ENVIRONMENT, page, MapFlags::WRITE)
            .expect("neighbour: map it");
        for word in 0..PAGE_SIZE / 8 {
            write_u64(page + word * 8, SECRET ^ word);
        }
        SHARED.write(1 + index, number);
    }
    SHARED.write(READY, 1);
    if ending == EXIT {
        return 0;
    }
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}

/// Maps `frame` (capability `capability`) read-only, checks every word is zero, and gives
/// it back.
fn assert_zeroed(capability: Handle, frame: u64) {
    user::map(
        capability,
        Handle::SELF_ENVIRONMENT,
        PROBE_PAGE,
        MapFlags::empty(),
    )
    .expect("map the frame got");
    let dirty = (0..PAGE_SIZE / 8).find(|word| read_u64(PROBE_PAGE + word * 8) != 0);
    assert_eq!(
        dirty, None,
        "frame {frame:#x} was handed out with data in it"
    );
    memory::unmap(Handle::SELF_ENVIRONMENT, PROBE_PAGE).expect("unmap it");
    memory::drop_capability(capability).expect("give it back");
}

/// Asks for every frame number from 0 to `PAST_RAM` past the end of RAM, one at a time:
/// each is a zeroed frame or `FrameUnavailable`, and none is one seen in use.
fn sweep(seen: &[u64]) {
    let (free_before, usable) = user::frame_counts();
    let (mut got, mut refused, mut last_got) = (0u64, 0u64, 0u64);
    let mut frame = 0;
    // Usable frames lie below `usable` plus the holes under 1 MiB; the sweep goes on past
    // both that and the last frame it got.
    while frame <= last_got.max(usable) + PAST_RAM {
        match user::frame_allocate_at(frame, 0) {
            Ok(capability) => {
                assert!(!seen.contains(&frame), "frame {frame:#x} was seen in use");
                assert_zeroed(capability, frame);
                got += 1;
                last_got = frame;
            }
            Err(Error::FrameUnavailable) => refused += 1,
            Err(error) => panic!("frame {frame:#x}: {error:?}"),
        }
        frame += 1;
    }
    println!(
        "hostile-physical: frames 0..{frame:#x}: {got} got (zeroed), {refused} refused; the \
         kernel had {free_before} free of {usable} usable"
    );
    assert!(
        got.abs_diff(free_before) <= SWEEP_SLACK,
        "the sweep got {got} frames where {free_before} were free"
    );
    ok(format_args!(
        "every frame number to {frame:#x}: {got} free frames got zeroed, {refused} refused, \
         none seen in use"
    ));
}
