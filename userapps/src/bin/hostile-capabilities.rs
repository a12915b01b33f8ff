//! Capability handles and derivation trees as a hostile program builds them: every handle
//! that cannot serve a call is refused with its own typed error, no right is gained on the
//! way down a tree, and trees as deep and as wide as the caller's accounts allow are torn
//! down without the kernel's work growing faster than the tree.
//!
//! 1. **Kinds and handles.** One capability of each kind a program can make without
//!    binding itself to a CPU slot (frame, environment, endpoint, notification, NIC,
//!    address, binding, filter) is passed to every call, in every handle argument, that
//!    takes another kind: `WrongKind`, each time. A handle past the table, one at an
//!    index never filled, and a stale one (its capability dropped) are refused by every
//!    call that takes a handle: `InvalidHandle`, `InvalidHandle`, `StaleHandle`.
//! 2. **Rights.** Deriving or granting more rights than held, granting without `GRANT` or
//!    into an environment without `GIVE`, unknown right bits, mapping a read-only copy
//!    writable or executable, mapping without `MAP` or `READ`, and re-protecting a page
//!    mapped through a read-only copy writable are refused; revoking a frame capability
//!    while copies of it are mapped here and in a child takes those pages away at once.
//! 3. **A deep chain across environments.** The parent derives a copy of a copy … of a
//!    frame capability, grants the deepest to a child, which derives as deep as its table
//!    and kernel memory allow and grants its deepest to the next child, and so on through
//!    [`CHAIN_CHILDREN`] children: a chain thousands of capabilities deep, through five
//!    tables. Destroying the child in the middle removes everything below it in the
//!    children after it; revoking the root removes the rest. The kernel walks such trees
//!    without recursion (chapter 2.3); a walk that recursed would need kernel stack in
//!    proportion to the depth and overflow it.
//! 4. **A wide tree.** A frame capability granted into [`WIDE_CHILDREN`] environments as
//!    often as their tables take it, and a copy mapped at [`WIDE_PAGES`] pages in each,
//!    revoked in one call, interrupts off: the call's time on the instruction clock the
//!    scenarios run on (`-icount`, a count of instructions, not wall time) must be about
//!    twice that of a tree half as wide, and per capability no more than the deep chain's
//!    is — within a factor of four.
//!
//! Everything comes back: free frames and kernel memory are what they were before the
//! chain was built.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::handle::TABLE_CAPACITY;
use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::MapFlags;
use exo_abi::net::{Filter, ipv4};
use exo_abi::syscall::{
    ANY_SLOT, CapabilityKind, EnvironmentAccount, Event, NO_CAPABILITY, Sysnum,
};
use exo_abi::user::{self, Lend, entry};
use exo_abi::{Error, Handle, Rights};
use userapps::hostile::conservation::Baseline;
use userapps::hostile::shared::Words;
use userapps::hostile::{self, Outcome};
use userapps::layout::MANAGED_START;
use userapps::memory::{drop_capability, revoke_capability, revoke_capability_timed};
use userapps::net::{self, Binding};
use userapps::spawn::{Child, yield_until};
use userapps::{check, facts, println};

userapps::entry!(main);

const SHARED: Words = Words::at(MANAGED_START);
/// Where the rights tests map pages, here and in a child.
const MAPPED: u64 = MANAGED_START + 0x1_0000;
/// An address nothing is ever mapped at, for calls that must fail before mapping.
const NOWHERE: u64 = MANAGED_START + 0x2_0000;
/// Where the wide tree's copies are mapped in each of its environments.
const WIDE_BASE: u64 = MANAGED_START + 0x100_0000;

/// Words of the shared page: for child `i`, the handle of its part of the chain, its
/// handle to the next child, how deep it derived, and the error that stopped it (0 while
/// it works).
const HANDLE: u64 = 0;
const NEXT: u64 = 8;
const DEPTH: u64 = 16;
const STOPPED_BY: u64 = 24;

/// The parent's own part of the chain.
const PARENT_DEPTH: u64 = 500;
const CHAIN_CHILDREN: usize = 4;
/// Each chain child's kernel memory: a full table of capabilities and then some.
const CHAIN_KERNEL_BYTES: u64 = 320_000;
const CHILD_QUOTA: u64 = 96;
/// The chain child destroyed first.
const MIDDLE: usize = 1;
const WIDE_CHILDREN: usize = 4;
const WIDE_PAGES: u64 = 256;
/// Each wide environment's accounts: grants until its table is full, and the mapped pages.
const WIDE_LEND: Lend = Lend {
    frames: 16,
    kernel_bytes: 320_000,
    slots: 0,
};

fn main(_argument: u64) -> u64 {
    let shared_frame = SHARED.allocate().expect("the shared page");
    let target = Child::create(CHILD_QUOTA).expect("a child to aim at");
    kinds_and_handles(target.environment());
    rights(target.environment());
    no_rights_through_the_mappers_capability(shared_frame);
    drop(target);

    // What the parent keeps for good first: a table grown to hold the chain children's
    // frames and its own part of the chain at once.
    let children = chain_children();
    let (root, _) = chain_in_parent(user::frame_allocate(0).expect("a frame").0);
    drop_capability(root).expect("drop the warm-up chain");
    drop(children);
    let baseline = Baseline::take();

    let (chain_cycles, chain_capabilities) = deep_chain(shared_frame);
    let (half, _) = wide_tree(WIDE_CHILDREN / 2);
    let (all, wide_capabilities) = wide_tree(WIDE_CHILDREN);
    let tick = facts::tsc_hz() / facts::ticks_per_second();
    println!(
        "hostile-capabilities: revoking a tree of {wide_capabilities} capabilities as wide as \
         {WIDE_CHILDREN} tables hold took {} ticks ({} for half as wide); the last \
         {chain_capabilities} of the deep chain took {} ticks",
        all / tick,
        half / tick,
        chain_cycles / tick
    );
    assert!(
        4 * all <= 9 * half,
        "revoking the wide tree took {all} cycles, half of it {half}"
    );
    check::ok("revoking a tree twice as wide took about twice as long");
    assert!(
        chain_cycles * wide_capabilities <= 4 * all * chain_capabilities,
        "a deep chain cost {chain_cycles} cycles for {chain_capabilities} capabilities, a \
         wide tree {all} for {wide_capabilities}"
    );
    check::ok("a deep chain cost no more per capability than a wide tree, within four times");
    baseline.expect_came_back("hostile-capabilities", "the deep chain and the wide trees");
    check::all_passed("hostile-capabilities");
    0
}

/// One capability of each kind a program can make here, with its kind.
fn one_of_each(environment: Handle) -> [(CapabilityKind, Handle); 8] {
    let (frame, _) = user::frame_allocate(0).expect("a frame");
    let nic = user::start_info().nic().expect("the NIC capability");
    let address = user::net_claim(nic, net::GUEST).expect("claim 10.0.2.15");
    let binding = Binding::idle(net::RING_ORDER).expect("an idle binding");
    [
        (CapabilityKind::Frame, frame),
        (CapabilityKind::Environment, environment),
        (
            CapabilityKind::Endpoint,
            user::endpoint_create(0x1234).expect("an endpoint"),
        ),
        (
            CapabilityKind::Notification,
            user::notification_create(1).expect("a notification"),
        ),
        (CapabilityKind::Nic, nic),
        (CapabilityKind::Address, address),
        (CapabilityKind::Binding, binding),
        (
            CapabilityKind::Filter,
            user::net_filter(binding, address, Filter::udp(9)).expect("a filter"),
        ),
    ]
}

/// A handle argument of a call: the call, its arguments with the other handles valid, which
/// argument is the handle, and the kind it takes there (`None`: any kind).
struct HandleArgument {
    number: Sysnum,
    arguments: [u64; 6],
    position: usize,
    takes: Option<CapabilityKind>,
}

/// Every handle argument of every call; the other handles are `frame`, `environment`,
/// `address`, `binding` and `ring_frames` (a run `NetBind` takes).
fn handle_arguments(
    frame: Handle,
    environment: Handle,
    address: Handle,
    binding: Handle,
    ring_frames: Handle,
) -> [HandleArgument; 31] {
    use CapabilityKind as K;
    let at = |number, arguments: &[u64], position, takes| {
        let mut all = [0; 6];
        all[..arguments.len()].copy_from_slice(arguments);
        HandleArgument {
            number,
            arguments: all,
            position,
            takes,
        }
    };
    let (f, e) = (frame.to_raw(), environment.to_raw());
    let read = u64::from(Rights::READ.bits());
    let filter = Filter::udp(10).pack();
    let elsewhere = u64::from(ipv4(10, 0, 2, 99));
    [
        at(Sysnum::CapabilityDerive, &[0, read], 0, None),
        at(Sysnum::CapabilityGrant, &[0, e, read], 0, None),
        at(
            Sysnum::CapabilityGrant,
            &[f, 0, read],
            1,
            Some(K::Environment),
        ),
        at(Sysnum::CapabilityRevoke, &[0], 0, None),
        at(Sysnum::CapabilityDrop, &[0], 0, None),
        at(Sysnum::CapabilityIdentify, &[0], 0, None),
        at(Sysnum::Map, &[0, 0, NOWHERE, 0, 0], 0, Some(K::Frame)),
        at(Sysnum::Map, &[f, 0, NOWHERE, 0, 0], 1, Some(K::Environment)),
        at(Sysnum::Unmap, &[0, NOWHERE], 0, Some(K::Environment)),
        at(Sysnum::Protect, &[0, NOWHERE, 0], 0, Some(K::Environment)),
        at(Sysnum::MapBatch, &[0, NOWHERE, 0], 0, Some(K::Environment)),
        at(
            Sysnum::EnvironmentStart,
            &[0, 0x40_0000, 0x6000_0000_0000, 0],
            0,
            Some(K::Environment),
        ),
        at(Sysnum::EnvironmentDestroy, &[0], 0, Some(K::Environment)),
        at(Sysnum::SetUpcall, &[0, 0, 0, 0, 0], 0, Some(K::Environment)),
        at(Sysnum::RequestFrames, &[0, 1, 10], 0, Some(K::Environment)),
        at(Sysnum::EnvironmentInfo, &[0, 0], 0, Some(K::Environment)),
        at(Sysnum::EnvironmentNext, &[0, 0], 0, Some(K::Environment)),
        at(
            Sysnum::EnvironmentInspect,
            &[0, 1, 0],
            0,
            Some(K::Environment),
        ),
        at(
            Sysnum::EnvironmentName,
            &[0, 0x41, 0],
            0,
            Some(K::Environment),
        ),
        at(
            Sysnum::SlotAllocate,
            &[0, ANY_SLOT],
            0,
            Some(K::Environment),
        ),
        at(Sysnum::YieldTo, &[0], 0, Some(K::Environment)),
        at(
            Sysnum::Call,
            &[0, 1, 2, NO_CAPABILITY],
            0,
            Some(K::Endpoint),
        ),
        at(Sysnum::Signal, &[0], 0, Some(K::Notification)),
        at(Sysnum::NetClaim, &[0, elsewhere], 0, Some(K::Nic)),
        at(Sysnum::NetBind, &[0, NO_CAPABILITY], 0, Some(K::Frame)),
        at(
            Sysnum::NetBind,
            &[ring_frames.to_raw(), 0],
            1,
            Some(K::Notification),
        ),
        at(
            Sysnum::NetFilter,
            &[0, address.to_raw(), filter],
            0,
            Some(K::Binding),
        ),
        at(
            Sysnum::NetFilter,
            &[binding.to_raw(), 0, filter],
            1,
            Some(K::Address),
        ),
        at(Sysnum::NetKick, &[0], 0, Some(K::Binding)),
        at(Sysnum::NetSend, &[0, NOWHERE, 60], 0, Some(K::Binding)),
        at(Sysnum::NetReceive, &[0, NOWHERE, 0], 0, Some(K::Binding)),
    ]
}

/// Issues `argument`'s call with `handle` in its handle argument.
fn issue(argument: &HandleArgument, handle: Handle) -> Outcome {
    let mut arguments = argument.arguments;
    arguments[argument.position] = handle.to_raw();
    // A kind the call never takes, for the rows that take any kind: only handles that name
    // nothing are passed there.
    let takes = argument.takes.unwrap_or(CapabilityKind::Slot);
    hostile::call_refused(argument.number as u64, arguments, argument.position, takes)
}

fn kinds_and_handles(environment: Handle) {
    let capabilities = one_of_each(environment);
    let (ring_frames, _) = user::frame_allocate(net::RING_ORDER).expect("ring frames");
    let handle = |index: usize| capabilities[index].1;
    let rows = handle_arguments(handle(0), handle(1), handle(5), handle(6), ring_frames);
    let mut refused = 0;
    for row in rows.iter().filter(|row| row.takes.is_some()) {
        for (kind, handle) in capabilities {
            if Some(kind) == row.takes {
                continue;
            }
            assert_eq!(
                issue(row, handle),
                Err(Error::WrongKind.code()),
                "{:?} given a {kind:?} capability in argument {}",
                row.number,
                row.position
            );
            refused += 1;
        }
    }
    check::ok(format_args!(
        "{refused} calls given a capability of the wrong kind refused (WrongKind)"
    ));

    let (doomed, _) = user::frame_allocate(0).expect("a frame");
    let stale = user::capability_derive(doomed, Rights::READ).expect("a copy");
    drop_capability(doomed).expect("drop it and its copy");
    let bad = [
        (
            Handle::new(TABLE_CAPACITY, 0),
            Error::InvalidHandle,
            "past the table",
        ),
        (
            Handle::new(u32::MAX, 0),
            Error::InvalidHandle,
            "at the last index",
        ),
        (
            Handle::new(TABLE_CAPACITY - 1, 0),
            Error::InvalidHandle,
            "never filled",
        ),
        (stale, Error::StaleHandle, "stale"),
        (
            Handle::new(stale.index(), stale.generation().wrapping_add(7)),
            Error::StaleHandle,
            "of a guessed generation",
        ),
    ];
    for (handle, expected, what) in bad {
        for row in &rows {
            assert_eq!(
                issue(row, handle),
                Err(expected.code()),
                "{:?} given a handle {what} in argument {}",
                row.number,
                row.position
            );
        }
    }
    check::ok(format_args!(
        "{} handle arguments refused handles past the table, never filled (InvalidHandle), \
         stale or of a guessed generation (StaleHandle)",
        rows.len()
    ));
    // The network objects go with their capabilities; the environment is the caller's.
    for (kind, handle) in capabilities {
        if matches!(kind, CapabilityKind::Frame | CapabilityKind::Address) {
            drop_capability(handle).expect("drop");
        }
    }
    drop_capability(ring_frames).expect("drop the ring frames");
}

fn rights(child: Handle) {
    let own = Handle::SELF_ENVIRONMENT;
    let (frame, _) = user::frame_allocate(0).expect("a frame");
    let copy = |rights| user::capability_derive(frame, rights).expect("a copy");
    let read_only = copy(Rights::READ | Rights::MAP | Rights::GRANT);
    assert_eq!(
        user::capability_derive(read_only, Rights::READ | Rights::WRITE | Rights::MAP),
        Err(Error::RightsEscalation)
    );
    let unknown = hostile::call(
        Sysnum::CapabilityDerive as u64,
        [frame.to_raw(), 1 << 20, 0, 0, 0, 0],
    );
    assert_eq!(
        unknown,
        Some(Err(Error::InvalidArgument.code())),
        "an unknown right bit"
    );
    let no_grant = copy(Rights::READ | Rights::MAP);
    assert_eq!(
        user::capability_grant(no_grant, child, Rights::READ),
        Err(Error::MissingRights)
    );
    assert_eq!(
        user::capability_grant(read_only, child, Rights::READ | Rights::WRITE),
        Err(Error::RightsEscalation)
    );
    let no_give = user::capability_derive(child, Rights::MAP).expect("a copy of the child's");
    assert_eq!(
        user::capability_grant(frame, no_give, Rights::READ),
        Err(Error::MissingRights)
    );
    check::ok(
        "deriving or granting more rights than held, granting without GRANT or GIVE, \
               and unknown right bits refused",
    );

    assert_eq!(
        user::map(read_only, own, MAPPED, MapFlags::WRITE),
        Err(Error::ReadOnly)
    );
    assert_eq!(
        user::map(read_only, own, MAPPED, MapFlags::EXECUTE),
        Err(Error::ReadOnly)
    );
    assert_eq!(
        user::map(copy(Rights::READ), own, MAPPED, MapFlags::empty()),
        Err(Error::NotMappable)
    );
    assert_eq!(
        user::map(copy(Rights::MAP), own, MAPPED, MapFlags::empty()),
        Err(Error::MissingRights)
    );
    user::map(read_only, own, MAPPED, MapFlags::empty()).expect("map read-only");
    assert_eq!(
        userapps::memory::protect(own, MAPPED, MapFlags::WRITE),
        Err(Error::ReadOnly),
        "re-protect a page mapped through a read-only copy"
    );
    let entry = user::page_table_entry(MAPPED).expect("mapped");
    assert_eq!(entry & entry::WRITABLE, 0, "the page stayed read-only");
    user::capability_grant(read_only, child, Rights::READ | Rights::MAP).expect("grant");
    user::map(read_only, child, MAPPED, MapFlags::empty()).expect("map in the child");
    check::ok(
        "a read-only copy mapped writable or executable, or re-protected writable, and \
               copies without MAP or READ mapped, refused",
    );

    revoke_capability(frame).expect("revoke the frame's copies");
    let gone = user::page_table_entry(MAPPED).is_none_or(|entry| entry & entry::PRESENT == 0);
    assert!(
        gone,
        "a page mapped through a revoked copy is still mapped here"
    );
    assert_eq!(
        userapps::memory::unmap(child, MAPPED),
        Err(Error::NotMapped),
        "and in the child"
    );
    assert_eq!(
        user::capability_identify(read_only),
        Err(Error::StaleHandle)
    );
    drop_capability(frame).expect("drop the frame");
    check::ok(
        "revoking a frame capability unmapped the pages its copies mapped, here and in \
               a child",
    );
}

/// Words of the shared page for the upgrading child: what `Protect` to writable and to
/// executable answered it (0 for success, else the error code), and that it is done.
const UPGRADE_WRITE: u64 = 40;
const UPGRADE_EXECUTE: u64 = 41;
const UPGRADE_DONE: u64 = 42;
/// What the parent keeps in the page it maps read-only into the child.
const PARENTS_WORD: u64 = 0x7061_7265_6e74_2121;

/// The parent maps a page of its own read-only into a child through its own capability,
/// which allows writing and executing. The child holds no capability to that frame, only
/// `MAP` on itself: it may take access away from the page, but not raise it to what the
/// parent's capability allows — a write there would land in the parent's memory.
fn no_rights_through_the_mappers_capability(shared_frame: Handle) {
    let own = Handle::SELF_ENVIRONMENT;
    let (frame, _) = user::frame_allocate(0).expect("a frame");
    user::map(frame, own, MAPPED, MapFlags::WRITE).expect("map it here");
    userapps::memory::write_u64(MAPPED, PARENTS_WORD);
    let child = Child::create(CHILD_QUOTA).expect("a child");
    SHARED
        .share_with(shared_frame, child.environment())
        .expect("share the page");
    user::map(frame, child.environment(), MAPPED, MapFlags::empty()).expect("map it there");
    SHARED.write(UPGRADE_DONE, 0);
    child.start(upgrade, MAPPED).expect("start the child");
    yield_until("the child tries", || SHARED.read(UPGRADE_DONE) == 1);
    let answer = |word| Error::try_from(SHARED.read(word)).ok();
    assert_eq!(
        userapps::memory::read_u64(MAPPED),
        PARENTS_WORD,
        "a child wrote into the parent's page"
    );
    assert_eq!(
        answer(UPGRADE_WRITE),
        Some(Error::ReadOnly),
        "Protect to writable"
    );
    assert_eq!(
        answer(UPGRADE_EXECUTE),
        Some(Error::ReadOnly),
        "Protect to executable"
    );
    child.wait();
    drop(child);
    drop_capability(frame).expect("drop the frame");
    check::ok(
        "a page mapped read-only into a child through the parent's capability stayed \
         read-only: the child may not raise it to the parent's rights",
    );
}

/// The child of [`no_rights_through_the_mappers_capability`]: tries to make the page at
/// `address` writable, and writes it if it could; then executable; then lowers it.
fn upgrade(address: u64) -> u64 {
    let own = Handle::SELF_ENVIRONMENT;
    let code = |result: Result<(), Error>| result.map_or_else(Error::code, |()| 0);
    let writable = userapps::memory::protect(own, address, MapFlags::WRITE);
    if writable.is_ok() {
        userapps::memory::write_u64(address, 0xbad);
    }
    SHARED.write(UPGRADE_WRITE, code(writable));
    let executable = userapps::memory::protect(own, address, MapFlags::EXECUTE);
    SHARED.write(UPGRADE_EXECUTE, code(executable));
    let lowered = userapps::memory::protect(own, address, MapFlags::empty());
    SHARED.write(UPGRADE_DONE, u64::from(lowered.is_ok()));
    0
}

/// Derives [`PARENT_DEPTH`] copies, each of the one before, from `root`: (root, deepest).
fn chain_in_parent(root: Handle) -> (Handle, Handle) {
    let mut deepest = root;
    for _ in 0..PARENT_DEPTH {
        deepest = user::capability_derive(deepest, Rights::FRAME).expect("derive a copy");
    }
    (root, deepest)
}

/// A chain child: derives from its handle until it can derive no more, grants the deepest
/// copy to the next child (if any), reports, and sleeps for ever: it holds its part.
fn chain_link(index: u64) -> u64 {
    let mut deepest = Handle::from_raw(SHARED.read(HANDLE + index));
    let mut depth = 0;
    let stopped_by = loop {
        match user::capability_derive(deepest, Rights::FRAME) {
            Ok(handle) => {
                deepest = handle;
                depth += 1;
            }
            Err(error) => break error,
        }
    };
    // The grant needs one more slot in the next table, not in ours.
    let next = Handle::from_raw(SHARED.read(NEXT + index));
    if (index as usize) + 1 < CHAIN_CHILDREN {
        let granted = user::capability_grant(deepest, next, Rights::FRAME).expect("grant on");
        SHARED.write(HANDLE + index + 1, granted.to_raw());
    }
    SHARED.write(DEPTH + index, depth);
    SHARED.write(STOPPED_BY + index, stopped_by.code());
    loop {
        let _ = user::wait(Event::TIMER, 1_000);
    }
}

/// The children a chain runs through, not started.
fn chain_children() -> [Child; CHAIN_CHILDREN] {
    let lend = Lend {
        frames: CHILD_QUOTA,
        kernel_bytes: CHAIN_KERNEL_BYTES,
        slots: 0,
    };
    core::array::from_fn(|_| Child::create_lending(lend).expect("a chain child"))
}

/// Builds the chain through the parent and [`CHAIN_CHILDREN`] children, destroys the one
/// in the middle and revokes the root; returns the revocation's cycles and how many
/// capabilities it removed.
fn deep_chain(shared_frame: Handle) -> (u64, u64) {
    SHARED.clear();
    let children = chain_children();
    for (index, child) in children.iter().enumerate() {
        SHARED
            .share_with(shared_frame, child.environment())
            .expect("share the page");
        if let Some(next) = children.get(index + 1) {
            let give =
                user::capability_grant(next.environment(), child.environment(), Rights::GIVE)
                    .expect("let a child give to the next");
            SHARED.write(NEXT + index as u64, give.to_raw());
        }
    }
    let (root, deepest) = chain_in_parent(user::frame_allocate(0).expect("a frame").0);
    let first = user::capability_grant(deepest, children[0].environment(), Rights::FRAME)
        .expect("grant the chain to the first child");
    SHARED.write(HANDLE, first.to_raw());
    let mut depth = PARENT_DEPTH;
    for (index, child) in children.iter().enumerate() {
        child
            .start(chain_link, index as u64)
            .expect("start a chain child");
        yield_until("a chain child derives", || {
            SHARED.read(STOPPED_BY + index as u64) != 0
        });
        let stopped_by = Error::try_from(SHARED.read(STOPPED_BY + index as u64));
        assert!(
            matches!(
                stopped_by,
                Ok(Error::TableFull | Error::KernelMemoryExceeded)
            ),
            "a chain child stopped deriving with {stopped_by:?}"
        );
        depth += 1 + SHARED.read(DEPTH + index as u64);
    }
    let held = |child: &Child| {
        child
            .account(EnvironmentAccount::CapabilitiesHeld)
            .expect("held")
    };
    let before: [u64; CHAIN_CHILDREN] = core::array::from_fn(|index| held(&children[index]));
    let own_part = |index: usize| SHARED.read(DEPTH + index as u64) + 1;
    println!(
        "hostile-capabilities: a chain {depth} capabilities deep through {} tables",
        CHAIN_CHILDREN + 1
    );

    let start = user::tsc();
    user::environment_destroy(children[MIDDLE].environment()).expect("destroy the middle child");
    let destroy_cycles = user::tsc() - start;
    for index in MIDDLE + 1..CHAIN_CHILDREN {
        assert_eq!(
            held(&children[index]),
            before[index] - own_part(index),
            "child {index}'s part"
        );
    }
    // The first child loses only its capability to the child destroyed.
    assert_eq!(
        held(&children[0]),
        before[0] - 1,
        "the first child's part stays"
    );
    let removed = (MIDDLE + 1..CHAIN_CHILDREN).map(own_part).sum::<u64>();
    check::ok(format_args!(
        "destroying the chain's middle holder removed the {removed} capabilities below it in \
         the children after it, and no other"
    ));

    let cycles = revoke_capability_timed(root).expect("revoke the root");
    assert_eq!(
        held(&children[0]),
        before[0] - 1 - own_part(0),
        "the first child's part"
    );
    assert_eq!(user::capability_identify(deepest), Err(Error::StaleHandle));
    let revoked = PARENT_DEPTH + own_part(0);
    let tick = facts::tsc_hz() / facts::ticks_per_second();
    println!(
        "hostile-capabilities: destroying the middle holder took {} ticks, revoking the \
         root's {revoked} descendants {} ticks",
        destroy_cycles / tick,
        cycles / tick
    );
    check::ok(format_args!(
        "revoking the root of a chain {depth} deep removed its remaining {revoked}, the kernel \
         unharmed"
    ));
    drop_capability(root).expect("drop the root");
    drop(children);
    (cycles, revoked)
}

/// Grants a frame capability into `width` new environments until their tables are full,
/// and maps a copy at [`WIDE_PAGES`] pages in each; revokes it. Returns the revocation's
/// cycles and how many capabilities it removed.
fn wide_tree(width: usize) -> (u64, u64) {
    let (root, _) = user::frame_allocate(0).expect("a frame");
    let mut environments = [Handle::SELF_ENVIRONMENT; WIDE_CHILDREN];
    let mut capabilities = 0;
    for environment in &mut environments[..width] {
        *environment = user::environment_create_lending(WIDE_LEND).expect("an environment");
        let copy = user::capability_derive(root, Rights::FRAME).expect("a copy");
        capabilities += 1;
        for page in 0..WIDE_PAGES {
            user::map(
                copy,
                *environment,
                WIDE_BASE + page * PAGE_SIZE,
                MapFlags::WRITE,
            )
            .expect("map the copy");
        }
        loop {
            match user::capability_grant(root, *environment, Rights::READ) {
                Ok(_) => capabilities += 1,
                Err(Error::TableFull | Error::KernelMemoryExceeded) => break,
                Err(error) => panic!("grant into a wide environment: {error:?}"),
            }
        }
    }
    let cycles = revoke_capability_timed(root).expect("revoke the wide tree");
    for &environment in &environments[..width] {
        assert_eq!(
            userapps::memory::unmap(environment, WIDE_BASE),
            Err(Error::NotMapped),
            "a page of the wide tree is still mapped"
        );
        user::environment_destroy(environment).expect("destroy");
    }
    drop_capability(root).expect("drop the root");
    (cycles, capabilities)
}
