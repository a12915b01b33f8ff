//! Chapter 2's memory and capability checks, one `ok:` line each: map, unmap, protect and
//! batched map of its own pages; runs of 1,024 pages, which the kernel maps a part at a
//! time, alone and batched, all or nothing; every bad mapping refused with its own error;
//! stale and guessed handles; derive, grant into a child, recursive revoke; a frame asked
//! for by number.
//!
//! The first failure panics with what was expected and what happened (exit status 101).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::layout::{KERNEL_HALF_START, PAGE_SIZE, USER_END, USER_MAP_END};
use exo_abi::mapping::{MAX_BATCH, MapFlags, MapRequest};
use exo_abi::syscall::{CapabilityKind, EnvironmentAccount, Sysnum};
use exo_abi::user::{self, Lend, entry};
use exo_abi::{Error, Handle, Rights};
use userapps::check::{self, expect_error, ok};
use userapps::hostile;
use userapps::layout::MANAGED_START;
use userapps::memory::{self, read_u64, write_u64};
use userapps::println;
use userapps::spawn::Child;

userapps::entry!(main);

const SELF: Handle = Handle::SELF_ENVIRONMENT;
const READ_ONLY: MapFlags = MapFlags::empty();

/// The `index`th page of the managed window: each check uses pages of its own.
const fn page(index: u64) -> u64 {
    MANAGED_START + index * PAGE_SIZE
}

/// Where the grant-and-revoke check's parent and child share a page.
const SHARED_PAGE: u64 = page(200);
/// What the child writes to the shared page's first word.
const HOLDER_SAW_VALID: u64 = 1;
const HOLDER_SAW_STALE: u64 = 2;
const HOLDER_FAILED: u64 = 3;
/// The second word: the frame the child's granted capability names.
const HOLDER_SAW_FRAME: u64 = SHARED_PAGE + 8;
/// Yields before giving up on the child.
const PATIENCE: u64 = 1_000_000;

fn main(_argument: u64) -> u64 {
    map_write_read_protect_unmap();
    batched_map();
    large_runs();
    bad_mappings_are_refused();
    bad_arguments_are_refused();
    stale_and_guessed_handles();
    derive_rights();
    grant_and_recursive_revoke();
    specific_frames();
    check::all_passed("memory-test");
    0
}

fn allocate() -> (Handle, u64) {
    user::frame_allocate(0).expect("allocate a frame")
}

fn physical(frame: u64) -> u64 {
    frame * PAGE_SIZE
}

fn map_write_read_protect_unmap() {
    let address = page(0);
    let (frame, number) = allocate();
    assert_eq!(
        user::translate(address),
        None,
        "nothing is mapped before map"
    );

    user::map(frame, SELF, address, MapFlags::WRITE).expect("map writable");
    assert_eq!(read_u64(address), 0, "a fresh frame reads as zeros");
    assert_eq!(
        read_u64(address + PAGE_SIZE - 8),
        0,
        "a fresh frame reads as zeros"
    );
    write_u64(address, 0x0123_4567_89ab_cdef);
    write_u64(address + PAGE_SIZE - 8, !0x0123_4567_89ab_cdef);
    assert_eq!(read_u64(address), 0x0123_4567_89ab_cdef);
    assert_eq!(read_u64(address + PAGE_SIZE - 8), !0x0123_4567_89ab_cdef);
    ok("map/write/read back (a fresh frame reads as zeros)");

    assert_eq!(
        user::translate(address + 0x123),
        Some(physical(number) + 0x123),
        "the page-table view shows frame {number:#x}"
    );
    let entry = user::page_table_entry(address).expect("page-table entry");
    assert_ne!(entry & entry::WRITABLE, 0, "writable in the page table");
    assert_ne!(entry & entry::NO_EXECUTE, 0, "no-execute in the page table");
    ok(format_args!(
        "translate() through the page-table view: frame {number:#x}"
    ));

    memory::protect(SELF, address, READ_ONLY).expect("protect read-only");
    let entry = user::page_table_entry(address).expect("page-table entry");
    assert_eq!(
        entry & entry::WRITABLE,
        0,
        "read-only in the page table after protect"
    );
    assert_eq!(read_u64(address), 0x0123_4567_89ab_cdef, "still readable");
    memory::protect(SELF, address, MapFlags::WRITE).expect("protect writable again");
    let entry = user::page_table_entry(address).expect("page-table entry");
    assert_ne!(
        entry & entry::WRITABLE,
        0,
        "writable again in the page table"
    );
    write_u64(address, 42);
    assert_eq!(read_u64(address), 42);
    ok("protect read-only, then writable again");

    memory::unmap(SELF, address).expect("unmap");
    assert_eq!(
        user::translate(address),
        None,
        "unmapped in the page-table view"
    );
    user::map(frame, SELF, address, READ_ONLY).expect("map the frame again");
    assert_eq!(
        read_u64(address),
        42,
        "the frame kept its contents while unmapped"
    );
    memory::unmap(SELF, address).expect("unmap again");
    ok("unmap, and the frame keeps its contents for the next mapping");
    memory::drop_capability(frame).expect("drop the frame");
}

fn batched_map() {
    let mut requests = [MapRequest {
        frame: 0,
        address: 0,
        flags: 0,
    }; 4];
    let mut numbers = [0; 4];
    for (index, request) in requests.iter_mut().enumerate() {
        let (frame, number) = allocate();
        numbers[index] = number;
        *request = MapRequest {
            frame: frame.to_raw(),
            address: page(10 + index as u64),
            flags: MapFlags::WRITE.bits(),
        };
    }
    let (applied, result) = user::map_batch(SELF, &requests);
    assert_eq!((applied, result), (4, Ok(())), "map_batch of 4 frames");
    for (request, number) in requests.iter().zip(numbers) {
        assert_eq!(user::translate(request.address), Some(physical(number)));
        write_u64(request.address, number);
    }
    for (request, number) in requests.iter().zip(numbers) {
        assert_eq!(
            read_u64(request.address),
            number,
            "each page is its own frame"
        );
    }
    ok("map_batch of 4 frames");

    // The second request is misaligned: the first is applied, the third never tried.
    let (frame, _) = allocate();
    let batch = [
        MapRequest {
            frame: frame.to_raw(),
            address: page(20),
            flags: 0,
        },
        MapRequest {
            frame: frame.to_raw(),
            address: page(21) + 8,
            flags: 0,
        },
        MapRequest {
            frame: frame.to_raw(),
            address: page(22),
            flags: 0,
        },
    ];
    let (applied, result) = user::map_batch(SELF, &batch);
    assert_eq!(
        (applied, result),
        (1, Err(Error::Misaligned)),
        "map_batch stops at the error"
    );
    assert!(user::translate(page(20)).is_some() && user::translate(page(22)).is_none());
    ok("map_batch stops at the first failing request (1 applied, then Misaligned)");
}

/// Where the large-run checks map: 2 MiB aligned, in a part of the managed window no other
/// check uses.
const LARGE_AT: u64 = MANAGED_START + 0x1000_0000_0000;
/// The largest run, in pages, and the bytes between the runs of a batch.
const RUN_PAGES: u64 = 1 << 10;
const RUN_BYTES: u64 = RUN_PAGES * PAGE_SIZE;

/// Runs of 1,024 pages, which the kernel maps a part at a time, a share of a tick each:
/// mapped whole, alone and four in a batch; all or nothing when a late part fails; and a
/// call carrying progress the kernel never gave it refused.
fn large_runs() {
    let (run, _) = user::frame_allocate(10).expect("allocate a run of 1,024 frames");
    user::map(run, SELF, LARGE_AT, MapFlags::WRITE).expect("map a run of 1,024 frames");
    let edges = [0, 63, 64, 511, 512, RUN_PAGES - 1];
    for index in edges {
        write_u64(LARGE_AT + index * PAGE_SIZE, index + 1);
    }
    for index in edges {
        assert_eq!(read_u64(LARGE_AT + index * PAGE_SIZE), index + 1);
    }
    memory::drop_capability(run).expect("drop the run");
    assert_eq!(
        user::translate(LARGE_AT + (RUN_PAGES - 1) * PAGE_SIZE),
        None
    );
    ok(
        "a run of 1,024 frames mapped whole, written and read at its parts' edges, and gone with its capability",
    );

    let runs: [Handle; 4] =
        core::array::from_fn(|_| user::frame_allocate(10).expect("allocate a run").0);
    let requests: [MapRequest; 4] = core::array::from_fn(|index| MapRequest {
        frame: runs[index].to_raw(),
        address: LARGE_AT + index as u64 * RUN_BYTES,
        flags: MapFlags::WRITE.bits(),
    });
    assert_eq!(
        user::map_batch(SELF, &requests),
        (4, Ok(())),
        "a batch of four runs"
    );
    let last = LARGE_AT + 4 * RUN_BYTES - PAGE_SIZE;
    write_u64(last, 4);
    assert_eq!(read_u64(last), 4);
    for run in runs {
        memory::drop_capability(run).expect("drop a run");
    }
    ok("a batch of four runs of 1,024 frames, every page mapped");

    // A child whose quota leaves frames for the page tables of the run's first 512 pages
    // only (a new top-level slot: three tables), then for all of them.
    let lend = |frames| Lend {
        frames,
        kernel_bytes: 200_000,
        slots: 0,
    };
    let probe = user::environment_create_lending(lend(64)).expect("create a probe");
    let base = user::environment_info(probe, EnvironmentAccount::FramesCharged).expect("charged");
    user::environment_destroy(probe).expect("destroy the probe");
    let (run, _) = user::frame_allocate(10).expect("allocate a run");
    let child = user::environment_create_lending(lend(base + 3)).expect("create a child");
    let bytes = |child| {
        user::environment_info(child, EnvironmentAccount::KernelBytesCharged).expect("bytes")
    };
    let before = bytes(child);
    assert_eq!(
        user::map(run, child, LARGE_AT, MapFlags::WRITE),
        Err(Error::QuotaExceeded),
        "a run whose page tables run out half-way"
    );
    for index in [0, 63, 511, 512, RUN_PAGES - 1] {
        assert_eq!(
            memory::unmap(child, LARGE_AT + index * PAGE_SIZE),
            Err(Error::NotMapped),
            "page {index} of a run that could not be mapped whole"
        );
    }
    assert_eq!(bytes(child), before, "mapping records left behind");
    user::environment_destroy(child).expect("destroy the child");
    let child = user::environment_create_lending(lend(base + 4)).expect("create a child");
    user::map(run, child, LARGE_AT, MapFlags::WRITE).expect("map the run with one frame more");
    memory::unmap(child, LARGE_AT + (RUN_PAGES - 1) * PAGE_SIZE).expect("its last page");
    ok(
        "a run whose page tables run out at page 512 maps nothing (QuotaExceeded); with one frame more, all of it",
    );

    // A call taken again carries its progress in rax's high half; one the kernel never
    // gave is refused, and maps nothing.
    let (one, _) = allocate();
    let map = |number: u64, frame: Handle, progress: u64| {
        let arguments = [
            frame.to_raw(),
            child.to_raw(),
            LARGE_AT + RUN_BYTES,
            0,
            0,
            0,
        ];
        hostile::call(number | progress << 32, arguments).expect("a call that takes nothing away")
    };
    let invalid = Err(Error::InvalidArgument.code());
    let forged = [
        (Sysnum::Map, run, RUN_PAGES, "all its pages done"),
        (Sysnum::Map, run, 4095, "more pages done than it has"),
        (
            Sysnum::Map,
            run,
            1 << 20 | 200 << 12 | 64,
            "a failure with no such error",
        ),
        (Sysnum::Map, run, 1 << 21, "bits beyond the progress"),
        (Sysnum::Map, one, 1, "progress on a run of one page"),
    ];
    for (number, frame, progress, what) in forged {
        assert_eq!(map(number as u64, frame, progress), invalid, "{what}");
    }
    let batch = [MapRequest {
        frame: one.to_raw(),
        address: LARGE_AT + RUN_BYTES,
        flags: 0,
    }];
    let raw_batch = |progress: u64| {
        let arguments = [child.to_raw(), batch.as_ptr() as u64, 1, 0, 0, 0];
        hostile::call(Sysnum::MapBatch as u64 | progress << 32, arguments)
            .expect("a call that takes nothing away")
    };
    assert_eq!(raw_batch(1 << 21), invalid, "a batch past its last request");
    assert_eq!(
        map(Sysnum::FrameAllocate as u64, one, 1),
        Err(Error::UnknownSystemCall.code()),
        "progress on a call that never carries it"
    );
    assert_eq!(
        memory::unmap(child, LARGE_AT + RUN_BYTES),
        Err(Error::NotMapped),
        "a forged call mapped a page"
    );
    // `EnvironmentNext` keeps where it goes on in the caller's record, not in `rax`
    // (the id may be one outside the family): a forged figure there is ignored, and the
    // listing starts afresh, finding the child.
    let next = |progress: u64| {
        let arguments = [Handle::SELF_ENVIRONMENT.to_raw(), 0, 0, 0, 0, 0];
        hostile::call(Sysnum::EnvironmentNext as u64 | progress << 32, arguments)
            .expect("a call that takes nothing away")
    };
    let fresh = next(0);
    assert!(
        matches!(fresh, Ok((id, _)) if id != 0),
        "our own family: {fresh:?}"
    );
    for forged in [1, u64::from(u32::MAX)] {
        assert_eq!(
            next(forged),
            fresh,
            "EnvironmentNext went on from a figure in rax it never gave ({forged})"
        );
    }
    user::environment_destroy(child).expect("destroy the child");
    memory::drop_capability(run).expect("drop the run");
    memory::drop_capability(one).expect("drop the frame");
    ok("progress the kernel never gave, in rax's high half, is refused or ignored (9 forms)");
}

fn bad_mappings_are_refused() {
    let (frame, _) = allocate();
    let target = page(30);

    let unmappable = user::capability_derive(frame, Rights::READ | Rights::WRITE).unwrap();
    expect_error(
        "mapping through a capability without MAP",
        user::map(unmappable, SELF, target, READ_ONLY),
        Error::NotMappable,
    );

    let read_only = user::capability_derive(frame, Rights::READ | Rights::MAP).unwrap();
    expect_error(
        "a writable mapping through a read-only capability",
        user::map(read_only, SELF, target, MapFlags::WRITE),
        Error::ReadOnly,
    );
    let no_execute = user::capability_derive(frame, Rights::READ | Rights::WRITE | Rights::MAP);
    expect_error(
        "an executable mapping through a capability without EXECUTE",
        user::map(no_execute.unwrap(), SELF, target, MapFlags::EXECUTE),
        Error::ReadOnly,
    );
    user::map(read_only, SELF, target, READ_ONLY).expect("a read-only mapping is allowed");
    expect_error(
        "protect making a read-only capability's page writable",
        memory::protect(SELF, target, MapFlags::WRITE),
        Error::ReadOnly,
    );

    let kernel_addresses = [
        ("a kernel-half address", KERNEL_HALF_START),
        ("the kernel image's address", 0xffff_ffff_8000_0000),
        ("the kernel's window in the user half", USER_MAP_END),
    ];
    for (what, address) in kernel_addresses {
        let result = user::map(frame, SELF, address, READ_ONLY);
        expect_error(what, result, Error::KernelAddress);
    }
    let non_canonical = [
        ("the first non-canonical address", USER_END),
        ("a non-canonical address", 0x1234_0000_0000_0000),
    ];
    for (what, address) in non_canonical {
        let result = user::map(frame, SELF, address, READ_ONLY);
        expect_error(what, result, Error::NonCanonicalAddress);
    }
    expect_error(
        "a misaligned address",
        user::map(frame, SELF, page(31) + 0x800, READ_ONLY),
        Error::Misaligned,
    );
    expect_error(
        "mapping over a mapped page",
        user::map(frame, SELF, target, READ_ONLY),
        Error::AlreadyMapped,
    );
    expect_error(
        "unmapping an unmapped page",
        memory::unmap(SELF, page(32)),
        Error::NotMapped,
    );
    expect_error(
        "protecting an unmapped page",
        memory::protect(SELF, page(32), READ_ONLY),
        Error::NotMapped,
    );
    memory::drop_capability(frame).expect("drop the frame and its derived capabilities");
    assert_eq!(
        user::translate(target),
        None,
        "dropping unmapped what was derived"
    );
    ok("dropping a capability unmaps the pages of its derived capabilities");
}

fn bad_arguments_are_refused() {
    let (frame, _) = allocate();
    let target = page(35);
    expect_error(
        "an environment capability used as a frame",
        user::map(SELF, SELF, target, READ_ONLY),
        Error::WrongKind,
    );
    expect_error(
        "a frame capability used as an environment",
        user::map(frame, frame, target, READ_ONLY),
        Error::WrongKind,
    );
    expect_error(
        "unknown mapping flags",
        user::map(frame, SELF, target, MapFlags::from_bits_retain(1 << 40)),
        Error::InvalidArgument,
    );
    let too_many = [MapRequest {
        frame: frame.to_raw(),
        address: target,
        flags: 0,
    }; MAX_BATCH as usize + 1];
    let (applied, result) = user::map_batch(SELF, &too_many);
    expect_error(
        "a batch over MAX_BATCH requests",
        result,
        Error::InvalidArgument,
    );
    assert_eq!(applied, 0);
    assert_eq!(user::translate(target), None, "nothing was mapped");
    memory::drop_capability(frame).expect("drop");
}

fn stale_and_guessed_handles() {
    let (first, _) = allocate();
    memory::drop_capability(first).expect("drop");
    expect_error(
        "a dropped handle",
        user::capability_identify(first),
        Error::StaleHandle,
    );
    let (second, _) = allocate();
    assert_eq!(
        second.index(),
        first.index(),
        "the lowest free slot is reused"
    );
    assert_ne!(second.generation(), first.generation());
    expect_error(
        "a dropped handle whose slot was reused",
        user::map(first, SELF, page(40), READ_ONLY),
        Error::StaleHandle,
    );
    user::capability_identify(second).expect("the new handle works");

    let guessed = Handle::new(4000, 0);
    expect_error(
        "a guessed handle (index 4000)",
        user::capability_identify(guessed),
        Error::InvalidHandle,
    );
    expect_error(
        "a guessed handle (index 4000) used to map",
        user::map(guessed, SELF, page(40), READ_ONLY),
        Error::InvalidHandle,
    );
    expect_error(
        "a handle beyond any table",
        user::capability_identify(Handle::new(u32::MAX, 0)),
        Error::InvalidHandle,
    );
    let wrong_generation = Handle::new(second.index(), second.generation().wrapping_add(1));
    expect_error(
        "the right index with a wrong generation",
        user::capability_identify(wrong_generation),
        Error::StaleHandle,
    );
    expect_error(
        "the right index with a wrong generation used to map",
        user::map(wrong_generation, SELF, page(40), READ_ONLY),
        Error::StaleHandle,
    );
    memory::drop_capability(second).expect("drop");
}

fn derive_rights() {
    let (frame, number) = allocate();
    let root = user::capability_identify(frame).expect("identify");
    assert_eq!(
        (root.kind, root.value, root.order),
        (CapabilityKind::Frame, number, 0)
    );
    assert!(
        root.rights
            .contains(Rights::READ | Rights::WRITE | Rights::MAP | Rights::GRANT)
    );
    let fewer = user::capability_derive(frame, Rights::READ | Rights::MAP).expect("derive");
    let derived = user::capability_identify(fewer).expect("identify");
    assert_eq!(
        (derived.rights, derived.value),
        (Rights::READ | Rights::MAP, number)
    );
    ok("derive with fewer rights");
    expect_error(
        "deriving more rights than the capability has",
        user::capability_derive(fewer, Rights::READ | Rights::WRITE | Rights::MAP),
        Error::RightsEscalation,
    );
    memory::drop_capability(frame).expect("drop");
    expect_error(
        "a derived handle after its parent was dropped",
        user::capability_identify(fewer),
        Error::StaleHandle,
    );
}

/// The child of the grant check: holds a granted frame capability until it goes stale.
fn holder(granted: u64) -> u64 {
    let granted = Handle::from_raw(granted);
    match user::capability_identify(granted) {
        Ok(info) => write_u64(HOLDER_SAW_FRAME, info.value),
        Err(error) => {
            println!("holder: granted capability unusable: {error:?}");
            write_u64(SHARED_PAGE, HOLDER_FAILED);
            return 1;
        }
    }
    write_u64(SHARED_PAGE, HOLDER_SAW_VALID);
    loop {
        match user::capability_identify(granted) {
            Ok(_) => user::yield_now(),
            Err(Error::StaleHandle) => {
                write_u64(SHARED_PAGE, HOLDER_SAW_STALE);
                return 0;
            }
            Err(error) => {
                println!("holder: unexpected {error:?}");
                write_u64(SHARED_PAGE, HOLDER_FAILED);
                return 1;
            }
        }
    }
}

fn wait_for_shared_value(unwanted: u64) -> u64 {
    for _ in 0..PATIENCE {
        let value = read_u64(SHARED_PAGE);
        if value != unwanted {
            return value;
        }
        user::yield_now();
    }
    panic!("the holder child never wrote to the shared page");
}

fn grant_and_recursive_revoke() {
    let (root, number) = allocate();
    let all = Rights::READ | Rights::WRITE | Rights::MAP | Rights::GRANT;
    let first = user::capability_derive(root, all).expect("derive");
    let second =
        user::capability_derive(first, Rights::READ | Rights::MAP | Rights::GRANT).unwrap();
    let mapped_through_second = page(50);
    user::map(second, SELF, mapped_through_second, READ_ONLY).expect("map the derived capability");

    // A page both environments map, for the child to report through.
    let (shared, _) = allocate();
    user::map(shared, SELF, SHARED_PAGE, MapFlags::WRITE).expect("map the shared page");
    write_u64(SHARED_PAGE, 0);
    let child = Child::create(64).expect("create the holder child");
    user::map(shared, child.environment(), SHARED_PAGE, MapFlags::WRITE).expect("share the page");

    let cannot_map_into =
        user::capability_derive(child.environment(), Rights::CONTROL | Rights::GIVE);
    expect_error(
        "mapping into an environment through a capability without MAP",
        user::map(shared, cannot_map_into.unwrap(), page(201), READ_ONLY),
        Error::MissingRights,
    );
    let cannot_give_to =
        user::capability_derive(child.environment(), Rights::CONTROL | Rights::MAP);
    expect_error(
        "granting to an environment through a capability without GIVE",
        user::capability_grant(second, cannot_give_to.unwrap(), Rights::READ),
        Error::MissingRights,
    );
    let no_grant = user::capability_derive(root, Rights::READ | Rights::MAP).unwrap();
    expect_error(
        "granting a capability without GRANT",
        user::capability_grant(no_grant, child.environment(), Rights::READ),
        Error::MissingRights,
    );
    expect_error(
        "granting more rights than the capability has",
        user::capability_grant(second, child.environment(), Rights::READ | Rights::WRITE),
        Error::RightsEscalation,
    );
    let granted = user::capability_grant(second, child.environment(), Rights::READ | Rights::MAP)
        .expect("grant into the child");
    child
        .start(holder, granted.to_raw())
        .expect("start the holder");
    assert_eq!(
        wait_for_shared_value(0),
        HOLDER_SAW_VALID,
        "the child saw its granted capability"
    );
    assert_eq!(
        read_u64(HOLDER_SAW_FRAME),
        number,
        "the granted capability names the same frame in the child"
    );
    ok(format_args!(
        "grant into a child environment's table (handle {granted:?} there)"
    ));

    memory::revoke_capability(root).expect("revoke the root");
    for (name, handle) in [
        ("derived", first),
        ("derived twice", second),
        ("no-grant", no_grant),
    ] {
        match user::capability_identify(handle) {
            Err(Error::StaleHandle) => {}
            other => panic!("{name} handle after revoke: expected StaleHandle, got {other:?}"),
        }
    }
    assert_eq!(
        user::translate(mapped_through_second),
        None,
        "revoke unmapped the derived page"
    );
    let survivor = user::capability_identify(root).expect("the revoked capability itself stays");
    assert_eq!(survivor.value, number);
    assert_eq!(
        wait_for_shared_value(HOLDER_SAW_VALID),
        HOLDER_SAW_STALE,
        "the child saw it go stale"
    );
    child.wait();
    ok("recursive revoke: derived handles here and the granted one in the child are stale");
    child.destroy();
    memory::drop_capability(root).expect("drop");
    memory::unmap(SELF, SHARED_PAGE).expect("unmap the shared page");
    memory::drop_capability(shared).expect("drop");
}

fn specific_frames() {
    let (frame, number) = allocate();
    memory::drop_capability(frame).expect("drop");
    let again = user::frame_allocate_at(number, 0).expect("allocate that frame by number");
    assert_eq!(
        user::capability_identify(again).map(|info| info.value),
        Ok(number)
    );
    expect_error(
        "allocating a frame that is taken",
        user::frame_allocate_at(number, 0),
        Error::FrameUnavailable,
    );
    user::map(again, SELF, page(60), READ_ONLY).expect("map");
    assert_eq!(user::translate(page(60)), Some(physical(number)));
    ok(format_args!(
        "frame_allocate_at({number:#x}) got exactly that frame back"
    ));

    let (run, first) = user::frame_allocate(2).expect("allocate an aligned run of 4 frames");
    assert_eq!(first % 4, 0, "a run of 4 frames is 4-frame aligned");
    user::map(run, SELF, page(64), MapFlags::WRITE).expect("map the run");
    for index in 0..4 {
        let address = page(64 + index);
        assert_eq!(user::translate(address), Some(physical(first + index)));
        write_u64(address, index);
    }
    ok(format_args!(
        "an aligned run of 4 frames ({first:#x}..), mapped by one call"
    ));
}
