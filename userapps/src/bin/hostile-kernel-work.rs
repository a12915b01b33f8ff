//! No one system call takes another environment's CPU time: work that grows with what the
//! caller built and paid for is done in the caller's own time.
//!
//! The kernel runs with interrupts off, so while a call runs nobody else does. A witness
//! holds [`WITNESS_SLOTS`] slots of the slice vector, which it takes for itself
//! (`hostile/witness.rs`); the parent runs in the pool and makes, one at a time, the calls
//! whose work grows with what it built, each timed by a lap of the witness:
//!
//! | attack | what is built | the one call |
//! |---|---|---|
//! | a wide tree | a frame capability granted into [`WIDE_TABLES`] empty environments until their tables are full, a copy mapped at [`TREE_PAGES`] pages in each: 24,576 copies | `CapabilityRevoke` of the root |
//! | a deep chain | a frame capability derived in each of [`CHAIN_TABLES`] children as deep as its table allows, each copy from the one before, the deepest granted on to the next: 16,353 deep | `CapabilityDrop` of the root |
//! | a fan | a child that creates sleeping children until its kernel memory runs out: 956 | `EnvironmentDestroy` of the child |
//! | a fan's creator | the same fan | the child's own `Exit` |
//! | a fan's creator that faults | the same fan | none: `ud2`, with no handler for it |
//! | a fan's creator destroyed from inside | the same fan, and a child the creator gave its own capability with `DESTROY` | the child's `EnvironmentDestroy` of its creator |
//! | a server's queue | a child serving an endpoint it never waits on, and [`QUEUE_FANS`] fans whose children each call it and queue: about 2,850 | `EnvironmentDestroy` of the server: every caller answered `PeerGone` |
//! | a member joining a teardown | a top with [`JOINED_COPIES`] copies of its own capability in the slots before its child's, the child given, by the parent, the top's root capability's `DESTROY` and [`REMAP_SLOTS`] slots | the child's `EnvironmentDestroy` of the top, again and again: the first makes the top end, each later one works the teardown under way, until it comes down to the child itself |
//! | a tree's holder | a child holding a copy of a frame capability, granted on from it into [`WIDE_TABLES`] of the parent's environments until they are full: 24,576 copies outside its family | its own `Exit`; again with a fault |
//! | long calls | nothing: each call's work is bounded, but long — a run of 1,024 frames allocated (4 MiB to zero), one mapped whole, a full batch of 512 pages, a batch of [`BATCH_RUNS`] runs of 1,024 | each, again and again for [`LONG_STORM_TICKS`] ticks; then a 4 KiB `ConsoleWrite`, which must be taken again |
//! | a refill | an environment with a page in each of [`REFILL_TABLES`] page tables, and a refiller holding a capability for it with `MAP`, mapping a frame along the same row again and again | `EnvironmentDestroy` of it; again, its own (it ends, and is taken down in its own time): the refiller's maps are all refused while it is taken down |
//! | a remap | a run of 64 frames whose copy its holder, with [`REMAP_SLOTS`] slots to the parent's one, maps at [`REMAP_ROW`] places and again wherever it is taken away | `CapabilityRevoke` of the run: it ends, every map through the copy refused from its first share |
//! | derivations | a frame whose copy's holder, with [`REMAP_SLOTS`] slots, derives a copy of it and then copies of that copy for ever | `CapabilityRevoke` of the frame: it ends, every derivation refused once a share has stopped at the copy |
//! | derivations above the stop | a frame whose copy's holder, with [`REMAP_SLOTS`] slots, derives a copy, a copy of that, and below it as many as its table takes; once the revoke has begun it derives from the first copy, above where the shares stop | `CapabilityRevoke` of the frame: every derivation above the stop refused |
//! | storms | [`STORM_ROUNDS`] trees of 2,002 copies: a mapped copy and [`STORM_COPIES`] grants in each of two tables | `CapabilityRevoke` of each root, one tree after another |
//!
//! After each, the call returned `Ok` and took everything it had to, the witness is alive,
//! and it never waited for the CPU longer than a round of the vector and [`SLACK_TICKS`]
//! ticks: a holder of slots runs in them whatever the others' calls make the kernel do.
//! The environments a tree or the chain was built in are then destroyed, timed the same
//! way in a lap of their own, and every frame and byte of kernel memory is back. Over the
//! storms the witness also ran at least [`LEAST_SHARE_PERCENT`]% of the time its slots
//! promise. A kernel that does such a call in one go takes the CPU from the witness for
//! as long as the call lasts: with every call done at once, interrupts off, the witness
//! waited 274 ticks of the instruction clock during the wide tree's revocation, 19 while
//! its environments were destroyed, 152 during the chain's drop, 509 during each fan's
//! end, 25 during a storm, and ran 147‰ of the storms' time where its slots promise 250‰.
//! A kernel that took an environment down at once when it faulted kept the witness
//! waiting 504 ticks for the fan of the creator that faults, and one that removed an
//! exiting environment's own table at once, 151 ticks for the tree's holder; one that
//! destroyed a family at once when a member asked, 504 ticks for that fan. A kernel that
//! let the refiller map into an environment being taken down saw it make 8,033 pages
//! again behind the teardown, under page directories the teardown then freed with them
//! still below: 8,042 frames never came back. A kernel that let the holder map through a
//! copy being revoked never finished the remap attack's revoke (15 minutes of TCG). A
//! kernel that marked only the node a share stopped at let the holder derive above it:
//! 826 copies hung below the first copy while the revoke went on (71 ticks against 40).
//! A kernel that let a member work its top's teardown down to the member itself stopped
//! with a panic, taking apart the address space the member's call was running on. One
//! that answered a destroyed server's 2,868 queued callers when it reaped the server kept
//! the witness waiting 23 ticks.
//! A kernel that zeroed and mapped a large run, or applied a batch, in one go let those
//! calls cost the witness its share: it waited 14 ticks and ran 121‰ of the time beside
//! allocations of 1,024 frames, 86‰ beside maps of them, 168‰ beside full batches.
//!
//! Times are read from the guest's time-stamp counter, which the scenarios run on the
//! instruction clock (`-icount`): counts of instructions, the same every run.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::counters::Counter;
use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::{MAX_BATCH, MapFlags, MapRequest};
use exo_abi::syscall::{ANY_SLOT, EnvironmentAccount, EnvironmentState, Event};
use exo_abi::user::{self, Lend};
use exo_abi::{Error, Handle, Rights};
use userapps::check::{self, ok};
use userapps::hostile::batch;
use userapps::hostile::chain::{
    self, AboveWords, DeriveWords, FAN_CHILD_QUOTA, FAN_CODE_RIGHTS, RefillWords,
};
use userapps::hostile::conservation::Baseline;
use userapps::hostile::shared::Words;
use userapps::hostile::traps::UserTrap;
use userapps::hostile::witness::{Lap, Witness};
use userapps::layout::MANAGED_START;
use userapps::memory::{self, drop_capability, revoke_capability_timed};
use userapps::spawn::Child;
use userapps::{facts, println};

userapps::entry!(main);

const NAME: &str = "hostile-kernel-work";

/// Slots the witness holds, of the 8 the scenario boots with: a quarter of the CPU.
const WITNESS_SLOTS: u64 = 2;
/// Ticks beyond a round of the slice vector the witness may wait for the CPU.
const SLACK_TICKS: u64 = 3;
/// Of the time its slots promise, the least the witness may run during the storms.
const LEAST_SHARE_PERCENT: u64 = 80;
/// Laps at least this many ticks long must also give the witness that share; shorter
/// ones are a few rounds of the vector, where one slot more or less is a large part.
const SHARE_LAP_TICKS: u64 = 100;

/// Levels of the sparse chain, at most: as many as the kernel memory lent lets it make.
const SPARSE_LEVELS: u64 = 64;
/// What each sparse level keeps for good of what it is lent: its record, its table's
/// growth to 1,024 slots, and the margin it keeps.
const SPARSE_LEVEL_KEEPS: u64 = 24_000;
/// Kernel memory the parent keeps when it lends to the sparse chain.
const SPARSE_RESERVE: u64 = 2 << 20;

/// The page the parent shares with the chain's children and the fan's creator.
const SHARED: Words = Words::at(MANAGED_START);
/// Words of `SHARED`: for chain child `i`, the handle of its part of the chain, its handle
/// for the next child, how deep it derived, and the error that stopped it (0 while it
/// works).
const HANDLE: u64 = 0;
const NEXT: u64 = HANDLE + CHAIN_TABLES as u64;
const DEPTH: u64 = NEXT + CHAIN_TABLES as u64;
const STOPPED_BY: u64 = DEPTH + CHAIN_TABLES as u64;
/// The fan's creator's words: its children, the error that stopped it making more, 1 once
/// every child sleeps, how it is to end when it may (set by the parent: [`END_EXIT`] or
/// [`END_FAULT`]), and the counter just before it ends.
const FAN_CHILDREN: u64 = STOPPED_BY + CHAIN_TABLES as u64;
const FAN_STOPPED_BY: u64 = FAN_CHILDREN + 1;
const FAN_ASLEEP: u64 = FAN_CHILDREN + 2;
const FAN_GO: u64 = FAN_CHILDREN + 3;
const FAN_EXIT_TSC: u64 = FAN_CHILDREN + 4;
/// How the fan's creator will be told to end, set before it starts.
const FAN_PLAN: u64 = FAN_CHILDREN + 5;
/// The member-joins-a-teardown attack: the top writes the parent's handle for its child,
/// then 1; or what failed (`step << 32 | error code`).
const JOINED_CHILD: u64 = FAN_PLAN + 1;
const JOINED_READY: u64 = FAN_PLAN + 2;
const JOINED_FAILURE: u64 = FAN_PLAN + 3;
/// The queued-callers attack: the server writes the parent's handle for its endpoint,
/// then 1.
const QUEUE_ENDPOINT: u64 = FAN_PLAN + 4;
const QUEUE_READY: u64 = FAN_PLAN + 5;
/// The words of the tree's holder: the copy it holds, its handles for the tree's tables,
/// the copies it granted, 1 once it has, how it is to end when it may (set by the parent),
/// and the counter just before it ends.
const HOLDER_COPY: u64 = 0;
const HOLDER_TABLES: u64 = HOLDER_COPY + 1;
const HOLDER_GRANTED: u64 = HOLDER_TABLES + WIDE_TABLES as u64;
const HOLDER_READY: u64 = HOLDER_GRANTED + 1;
const HOLDER_GO: u64 = HOLDER_GRANTED + 2;
const HOLDER_END_TSC: u64 = HOLDER_GRANTED + 3;
/// How a child ends when its parent lets it (`FAN_GO`, `HOLDER_GO`): its `Exit`, a fault,
/// or (the fan's creator only) destroyed by a child it made for that (`FAN_PLAN`).
const END_EXIT: u64 = 1;
const END_FAULT: u64 = 2;
const END_BY_MEMBER: u64 = 3;
/// The tree's holder's frame quota: its image and stack.
const HOLDER_QUOTA: u64 = 64;
/// The least copies the holder must grant for the attack to count.
const HOLDER_LEAST: u64 = 20_000;

/// Where a tree's copy is mapped in each of its environments (2 MiB aligned: one page
/// table), and at how many pages: one `MapBatch` each. (Full batches have a storm of
/// their own, `long_calls`.)
const TREE_PAGES_AT: u64 = MANAGED_START + 0x100_0000;
const TREE_PAGES: u64 = 64;
/// Each tree environment's accounts: its page tables and mapping records, and grants until
/// its table is full.
const TREE_LEND: Lend = Lend {
    frames: 16,
    kernel_bytes: 400_000,
    slots: 0,
};
/// The most tables a tree spreads over.
const WIDE_TABLES: usize = 24;
/// A storm's tables, the copies granted into each, and the storms.
const STORM_TABLES: usize = 2;
const STORM_COPIES: u64 = 1_000;
const STORM_ROUNDS: u64 = 10;

/// The children the chain runs through, a table each.
const CHAIN_TABLES: usize = 16;
/// Each chain child's accounts: its image, and a full table of capabilities.
const CHAIN_LEND: Lend = Lend {
    frames: 96,
    kernel_bytes: 320_000,
    slots: 0,
};

/// The fan's creator's frame quota: its image's page tables, and frames for 1,000
/// children of `FAN_CHILD_QUOTA` (the kernel memory this quota brings runs out a little
/// before); it must make at least [`FAN_LEAST`].
const FAN_QUOTA: u64 = 64 + 1_000 * FAN_CHILD_QUOTA;
const FAN_LEAST: u64 = 900;

/// How long each storm of long calls lasts, in ticks: long enough for its share to count.
const LONG_STORM_TICKS: u64 = 120;
/// The runs of 1,024 frames in a batch of runs.
const BATCH_RUNS: usize = 8;
/// Where the long calls map, in an environment made for them (4 MiB aligned), and what
/// it is lent: page tables and mapping records for [`BATCH_RUNS`] runs.
const LONG_AT: u64 = MANAGED_START + 0x1000_0000_0000;
const LONG_LEND: Lend = Lend {
    frames: 64,
    kernel_bytes: 2_000_000,
    slots: 0,
};

/// The refill attack: an environment with a page in each of [`REFILL_TABLES`] page tables
/// (2 MiB apart from [`REFILL_AT`]), lent frames for them twice over, is destroyed while a
/// refiller maps the same frame at the same addresses again and again.
const REFILL_TABLES: u64 = 8_000;
const REFILL_AT: u64 = MANAGED_START + 0x2000_0000_0000;
const TWO_MIB: u64 = 1 << 21;
const REFILL_LEND: Lend = Lend {
    frames: 2 * REFILL_TABLES + 64,
    kernel_bytes: 4_000_000,
    slots: 0,
};
/// The refiller's frame quota: page tables for its code page, the shared page and its
/// facts page, and the facts page.
const REFILLER_QUOTA: u64 = 16;
/// The member-joins-a-teardown attack: copies of its own capability the top makes before its
/// child, so that its teardown takes shares before it comes down to the child; its lend;
/// the child's quota.
const JOINED_COPIES: u64 = 1_000;
const JOINED_LEND: Lend = Lend {
    frames: 64,
    kernel_bytes: 2_000_000,
    slots: 0,
};
const JOINER_QUOTA: u64 = 16;
/// The queued-callers attack: fans of callers, and the endpoint's tag.
const QUEUE_FANS: usize = 3;
const QUEUE_TAG: u64 = 0x9e;
/// The remap attack: a run of 64 frames, its copy mapped by its holder at [`REMAP_ROW`]
/// places from [`REMAP_AT`] and again wherever a revoke has taken it away; the holder has
/// [`REMAP_SLOTS`] slots of the 8, the revoker the one the witness leaves to the pool.
const REMAP_ORDER: u32 = 6;
const REMAP_ROW: u64 = 256;
const REMAP_AT: u64 = MANAGED_START + 0x3000_0000_0000;
/// Where the parent writes the sparse chain's copy of its code (and, a page above, reads
/// the page it copies): beside the shared page, under page tables it keeps.
const SPARSE_COPY_AT: u64 = MANAGED_START + 16 * PAGE_SIZE;
const REMAP_SLOTS: u64 = 5;
const REMAP_LEND: Lend = Lend {
    frames: 64,
    kernel_bytes: 8_000_000,
    slots: 0,
};
/// How many capabilities the deriving holder holds before the revoke: its table nearly full.
const DERIVED_LEAST: u64 = 1_000;
/// Where in `SHARED` the refiller's words (`chain::RefillWords`) begin.
const REFILL_WORDS: u64 = 128;

/// How long building anything may take, in ticks.
const PATIENCE_TICKS: u64 = 60_000;

fn main(_argument: u64) -> u64 {
    let shared_page = SHARED.allocate().expect("allocate the shared page");
    // What the parent keeps for good exists before the baseline: the page tables of the
    // witness's page and of spawning, and a table grown to hold the chain's children's
    // frames and a tree's environments at once.
    let warm_up = Witness::start_holding(WITNESS_SLOTS).expect("start a witness");
    let children: [Child; CHAIN_TABLES] =
        core::array::from_fn(|_| Child::create_lending(CHAIN_LEND).expect("a child"));
    let tree = Tree::grow(WIDE_TABLES, 1, 1);
    tree.revoke();
    tree.clear();
    drop(children);
    warm_up.stop();
    let baseline = Baseline::take();

    let witness = Witness::start_holding(WITNESS_SLOTS).expect("start the witness");
    let during = Baseline::take();
    println!(
        "{NAME}: the witness holds {WITNESS_SLOTS} of {} slots, a tick ({} cycles) each; it \
         may wait {} ticks for the CPU",
        facts::slots(),
        tick_cycles(),
        allowed_gap() / tick_cycles()
    );

    wide_tree(&witness);
    during.expect_came_back(NAME, "the wide tree");

    deep_chain(shared_page, &witness);
    during.expect_came_back(NAME, "the deep chain");

    let code = chain::code_frame();
    fan_destroyed(shared_page, code, &witness);
    during.expect_came_back(NAME, "the fan destroyed");
    fan_ends(shared_page, code, &witness, END_EXIT);
    during.expect_came_back(NAME, "the fan's creator's exit");
    fan_ends(shared_page, code, &witness, END_FAULT);
    during.expect_came_back(NAME, "the fan's creator's fault");
    fan_ends(shared_page, code, &witness, END_BY_MEMBER);
    during.expect_came_back(NAME, "the fan's creator destroyed from inside");
    server_with_a_queue(shared_page, code, &witness);
    during.expect_came_back(NAME, "the server with a queue");
    member_joins_a_teardown(shared_page, code, &witness);
    during.expect_came_back(NAME, "the member joining its top's teardown");
    for how in [END_EXIT, END_FAULT] {
        holder_ends(shared_page, &witness, how);
        during.expect_came_back(NAME, "the tree's holder's end");
    }

    for by_itself in [false, true] {
        refilled_behind(shared_page, code, &witness, by_itself);
        during.expect_came_back(NAME, "the refill behind a teardown");
    }
    remapped_while_revoked(shared_page, code, &witness);
    during.expect_came_back(NAME, "the remap during a revoke");
    derived_while_revoked(shared_page, code, &witness);
    during.expect_came_back(NAME, "the derivations during a revoke");
    derived_above_the_stop(shared_page, code, &witness);
    during.expect_came_back(NAME, "the derivations above a revoke's stop");
    sparse_chain(&witness);
    during.expect_came_back(NAME, "the sparse chain");

    long_calls(&witness);
    during.expect_came_back(NAME, "the long calls");

    storms(&witness);
    during.expect_came_back(NAME, "the storms");

    witness.check_unharmed("every attack");
    witness.stop();
    baseline.expect_came_back(NAME, "every attack and the witness");
    check::all_passed(NAME);
    0
}

/// Cycles of the time-stamp counter in one tick.
fn tick_cycles() -> u64 {
    facts::tsc_hz() / facts::ticks_per_second()
}

/// The longest the witness may wait for the CPU: a round of the slice vector (a slot is a
/// tick) and [`SLACK_TICKS`], in cycles.
fn allowed_gap() -> u64 {
    (facts::slots() + SLACK_TICKS) * tick_cycles()
}

/// Ends the witness's lap around an attack whose call took `cycles` as its caller saw it
/// (an `Exit`: until the parent saw the environment gone), prints both, and checks that
/// the witness is alive, waited for the CPU no longer than allowed and, over a lap of
/// [`SHARE_LAP_TICKS`] or more, ran at least [`LEAST_SHARE_PERCENT`]% of what its slots
/// promise (a call that overran its share of a tick in every round took a tenth of it).
fn waited_little(witness: &Witness, cycles: u64, attack: core::fmt::Arguments) -> Lap {
    let lap = witness.lap();
    let tick = tick_cycles();
    println!(
        "{NAME}: {attack}: {} ticks; the witness's longest wait for the CPU {} ticks, and it \
         ran {} of {} ticks",
        cycles / tick,
        lap.largest_gap / tick,
        lap.ran / tick,
        lap.length / tick
    );
    witness.check_unharmed("an attack");
    assert!(
        lap.largest_gap <= allowed_gap(),
        "{attack}: the witness waited {} ticks for the CPU, more than {}",
        lap.largest_gap / tick,
        allowed_gap() / tick
    );
    let promised = lap.length * WITNESS_SLOTS / facts::slots();
    assert!(
        lap.length < SHARE_LAP_TICKS * tick || 100 * lap.ran >= LEAST_SHARE_PERCENT * promised,
        "{attack}: the witness ran {} of the {} cycles its slots promise",
        lap.ran,
        promised
    );
    ok(format_args!(
        "{attack}: the witness never waited more than a round and {SLACK_TICKS} ticks"
    ));
    lap
}

/// A tree as wide as [`WIDE_TABLES`] tables hold, revoked in one call.
fn wide_tree(witness: &Witness) {
    let tree = Tree::grow(WIDE_TABLES, u64::MAX, TREE_PAGES);
    let copies = tree.copies;
    witness.lap();
    let cycles = tree.revoke();
    waited_little(
        witness,
        cycles,
        format_args!("revoking a tree of {copies} copies"),
    );
    ok(format_args!(
        "one CapabilityRevoke took a tree of {copies} copies through {WIDE_TABLES} tables, \
         with every page mapped through it"
    ));
    torn_down(
        witness,
        format_args!("destroying the tree's {WIDE_TABLES} environments"),
        || tree.clear(),
    );
}

/// Times `teardown` — destroying what an attack left, itself work that grows with what
/// was built — in a lap of the witness's own, and checks it as [`waited_little`] does.
fn torn_down(witness: &Witness, what: core::fmt::Arguments, teardown: impl FnOnce()) {
    witness.lap();
    let start = user::tsc();
    teardown();
    waited_little(witness, user::tsc() - start, what);
}

/// A chain whose every level's table holds its child's root in its last slot, after a
/// thousand empty ones (`chain::sparse_level`), destroyed at its top. The walk down finds
/// each level's child only after scanning its table. It once went down every level in one
/// share, and looked each empty slot up in the map of tables, there and when it reaped
/// each level: 83 levels kept the witness waiting 93 ticks.
fn sparse_chain(witness: &Witness) {
    let own = Handle::SELF_ENVIRONMENT;
    let left = user::environment_info(own, EnvironmentAccount::KernelBytesLimit)
        .expect("kernel bytes limit")
        - user::environment_info(own, EnvironmentAccount::KernelBytesCharged)
            .expect("kernel bytes charged");
    let kernel_bytes =
        (SPARSE_LEVELS * (chain::SPARSE_FLOOR + SPARSE_LEVEL_KEEPS)).min(left - SPARSE_RESERVE);
    let top = user::environment_create_lending(Lend {
        frames: SPARSE_LEVELS * chain::FLOOR,
        kernel_bytes,
        slots: 0,
    })
    .expect("the sparse chain's top");
    // The levels run a copy of the page holding their code, in a frame of ours that can
    // be revoked (a page of our image may not be: it holds our own code).
    let page = chain::sparse_code_page();
    let (code, _) = user::frame_allocate(0).expect("a frame for the code");
    let source = SPARSE_COPY_AT + PAGE_SIZE;
    user::map(code, own, SPARSE_COPY_AT, MapFlags::WRITE).expect("map the copy");
    user::map(chain::frame_of(page), own, source, MapFlags::empty()).expect("map the code");
    for offset in (0..PAGE_SIZE).step_by(8) {
        memory::write_u64(SPARSE_COPY_AT + offset, memory::read_u64(source + offset));
    }
    memory::unmap(own, SPARSE_COPY_AT).expect("unmap the copy");
    memory::unmap(own, source).expect("unmap the code");
    user::map(code, top, page, MapFlags::EXECUTE).expect("its code");
    let granted = user::capability_grant(code, top, chain::CODE_RIGHTS).expect("grant its code");
    user::environment_start(top, chain::sparse_level(), 0, granted.to_raw()).expect("start it");
    // Built once the family stops growing and every level sleeps (the witness runs).
    let mut last = (0, 0);
    let mut unchanged = 0;
    while unchanged < 5 {
        let now = family();
        unchanged = if now == last && now.0 == now.1 + 1 {
            unchanged + 1
        } else {
            0
        };
        last = now;
        let _ = user::wait(Event::TIMER, 20);
    }
    let levels = last.1;
    assert!(
        levels >= SPARSE_LEVELS / 2,
        "a sparse chain of only {levels} levels"
    );
    // The levels never run again: take their capabilities for the page back, so that
    // each table holds only its child's root.
    revoke_capability_timed(code).expect("revoke the code's copies");
    torn_down(
        witness,
        format_args!(
            "destroying a chain of {levels} levels, each child's root in its table's last slot"
        ),
        || user::environment_destroy(top).expect("destroy the sparse chain"),
    );
    assert_eq!(family(), (1, 0), "a level of the sparse chain outlived it");
    drop_capability(code).expect("drop the code's frame");
    ok(format_args!(
        "destroying a chain of {levels} levels whose roots sit behind a thousand empty slots"
    ));
}

/// A frame capability copied into the tables of empty environments made for it.
struct Tree {
    root: Handle,
    environments: [Handle; WIDE_TABLES],
    width: usize,
    /// Capabilities each environment held before the copies.
    held_before: [u64; WIDE_TABLES],
    /// Copies in all: derived and granted.
    copies: u64,
}

impl Tree {
    /// A fresh frame's capability, copied into `width` new environments: a copy derived
    /// and mapped at `pages` pages in each, then `per_table` grants into each (or until its
    /// table or kernel memory is full, for `u64::MAX`).
    fn grow(width: usize, per_table: u64, pages: u64) -> Self {
        let (root, _) = user::frame_allocate(0).expect("allocate the tree's frame");
        let mut tree = Tree {
            root,
            environments: [Handle::SELF_ENVIRONMENT; WIDE_TABLES],
            width,
            held_before: [0; WIDE_TABLES],
            copies: 0,
        };
        for index in 0..width {
            let environment = user::environment_create_lending(TREE_LEND).expect("a table");
            tree.environments[index] = environment;
            tree.held_before[index] = held(environment);
            let copy = user::capability_derive(root, Rights::FRAME).expect("derive a copy");
            let addresses = (0..pages).map(|page| TREE_PAGES_AT + page * PAGE_SIZE);
            let (mapped, outcome) =
                batch::map_frame_at(environment, copy, addresses, MapFlags::WRITE);
            assert_eq!((mapped, outcome), (pages, Ok(())), "map the copy");
            tree.copies += 1;
            for _ in 0..per_table {
                match user::capability_grant(root, environment, Rights::READ) {
                    Ok(_) => tree.copies += 1,
                    Err(Error::TableFull | Error::KernelMemoryExceeded) => break,
                    Err(error) => panic!("grant into a tree's table: {error:?}"),
                }
            }
        }
        tree
    }

    /// Revokes the root in one call and checks every copy and page went; returns the
    /// call's cycles.
    fn revoke(&self) -> u64 {
        let cycles = revoke_capability_timed(self.root).expect("revoke the tree");
        for (&environment, &before) in self.environments[..self.width]
            .iter()
            .zip(&self.held_before)
        {
            assert_eq!(held(environment), before, "a copy outlived the revocation");
            for page in [0, TREE_PAGES - 1] {
                assert_eq!(
                    memory::unmap(environment, TREE_PAGES_AT + page * PAGE_SIZE),
                    Err(Error::NotMapped),
                    "a page of the tree is still mapped"
                );
            }
        }
        cycles
    }

    /// Destroys its environments and drops its root.
    fn clear(self) {
        for &environment in &self.environments[..self.width] {
            user::environment_destroy(environment).expect("destroy a tree's environment");
        }
        drop_capability(self.root).expect("drop the tree's root");
    }
}

/// Capabilities in `environment`'s table.
fn held(environment: Handle) -> u64 {
    user::environment_info(environment, EnvironmentAccount::CapabilitiesHeld)
        .expect("capabilities held")
}

/// A chain through [`CHAIN_TABLES`] children, each copy derived from the one before,
/// dropped at its root in one call.
fn deep_chain(shared_page: Handle, witness: &Witness) {
    SHARED.clear();
    let children: [Child; CHAIN_TABLES] =
        core::array::from_fn(|_| Child::create_lending(CHAIN_LEND).expect("a chain child"));
    for (index, child) in children.iter().enumerate() {
        SHARED
            .share_with(shared_page, child.environment())
            .expect("share the page");
        if let Some(next) = children.get(index + 1) {
            let give =
                user::capability_grant(next.environment(), child.environment(), Rights::GIVE)
                    .expect("let a child give to the next");
            SHARED.write(NEXT + index as u64, give.to_raw());
        }
    }
    let before: [u64; CHAIN_TABLES] =
        core::array::from_fn(|index| held(children[index].environment()));
    let (root, _) = user::frame_allocate(0).expect("allocate the chain's frame");
    let first = user::capability_grant(root, children[0].environment(), Rights::FRAME)
        .expect("grant the chain to the first child");
    SHARED.write(HANDLE, first.to_raw());
    let mut depth = 0;
    for (index, child) in children.iter().enumerate() {
        let index = index as u64;
        child.start(chain_link, index).expect("start a chain child");
        wait_for("a chain child to derive", || {
            SHARED.read(STOPPED_BY + index) != 0
        });
        let stopped_by = Error::try_from(SHARED.read(STOPPED_BY + index));
        assert!(
            matches!(
                stopped_by,
                Ok(Error::TableFull | Error::KernelMemoryExceeded)
            ),
            "a chain child stopped deriving with {stopped_by:?}"
        );
        depth += 1 + SHARED.read(DEPTH + index);
    }

    witness.lap();
    let start = user::tsc();
    drop_capability(root).expect("drop the chain's root");
    let cycles = user::tsc() - start;
    waited_little(
        witness,
        cycles,
        format_args!("dropping a chain {depth} deep"),
    );
    for (index, child) in children.iter().enumerate() {
        assert_eq!(
            held(child.environment()),
            before[index],
            "child {index} kept part of the chain"
        );
    }
    ok(format_args!(
        "one CapabilityDrop took a chain {depth} deep through {CHAIN_TABLES} tables"
    ));
    torn_down(
        witness,
        format_args!("destroying the chain's {CHAIN_TABLES} children"),
        || drop(children),
    );
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
    if (index as usize) + 1 < CHAIN_TABLES {
        // The grant needs a slot in the next table, not in ours.
        let next = Handle::from_raw(SHARED.read(NEXT + index));
        let granted = user::capability_grant(deepest, next, Rights::FRAME).expect("grant on");
        SHARED.write(HANDLE + index + 1, granted.to_raw());
    }
    SHARED.write(DEPTH + index, depth);
    SHARED.write(STOPPED_BY + index, stopped_by.code());
    loop {
        let _ = user::wait(Event::NOTIFY, 0);
    }
}

/// A fan's creator, started and waited for until every child of it sleeps; returns it
/// and how many children it made. `plan` is how it will be told to end, if it knows.
fn fan(shared_page: Handle, code_frame: Handle, plan: u64) -> (Child, u64) {
    SHARED.clear();
    SHARED.write(FAN_PLAN, plan);
    let creator = Child::create(FAN_QUOTA).expect("create the fan's creator");
    SHARED
        .share_with(shared_page, creator.environment())
        .expect("share the page");
    let code = user::capability_grant(code_frame, creator.environment(), FAN_CODE_RIGHTS)
        .expect("grant the code page");
    creator
        .start(make_fan, code.to_raw())
        .expect("start the fan's creator");
    wait_for("the fan to sleep", || SHARED.read(FAN_ASLEEP) != 0);
    let children = SHARED.read(FAN_CHILDREN);
    let stopped_by = Error::try_from(SHARED.read(FAN_STOPPED_BY));
    assert!(
        children >= FAN_LEAST,
        "the fan made {children} children, stopped by {stopped_by:?}"
    );
    (creator, children)
}

/// A fan destroyed from outside in one call.
fn fan_destroyed(shared_page: Handle, code_frame: Handle, witness: &Witness) {
    let (members, _) = family();
    let (creator, children) = fan(shared_page, code_frame, 0);
    witness.lap();
    let start = user::tsc();
    user::environment_destroy(creator.environment()).expect("destroy the fan");
    let cycles = user::tsc() - start;
    waited_little(
        witness,
        cycles,
        format_args!("destroying a fan of {children}"),
    );
    assert!(
        !creator.is_alive(),
        "the fan's creator outlived its destruction"
    );
    assert_eq!(family().0, members, "a child of the fan outlived it");
    ok(format_args!(
        "one EnvironmentDestroy took a fan of {children} sleepers and their creator"
    ));
    creator.destroy();
}

/// A fan whose creator ends as `how` says, not by its parent's hand: its `Exit`, its
/// fault, or a child of its own destroying it takes the fan.
fn fan_ends(shared_page: Handle, code_frame: Handle, witness: &Witness, how: u64) {
    let (members, _) = family();
    let (creator, children) = fan(shared_page, code_frame, how);
    let ends = end_name(how);
    witness.lap();
    SHARED.write(FAN_GO, how);
    // While its family comes down it shows as ending; then it is gone.
    let seen_ending = core::cell::Cell::new(false);
    let ending = Ok(EnvironmentState::Ending as u64);
    wait_for("the fan's creator to be gone", || {
        if creator.account(EnvironmentAccount::State) == ending {
            seen_ending.set(true);
        }
        !creator.is_alive() && family().0 == members
    });
    assert!(
        seen_ending.get(),
        "the fan's creator never showed as ending after its {ends}"
    );
    let seen_gone = user::tsc();
    let exited = SHARED.read(FAN_EXIT_TSC);
    assert!(exited != 0, "the fan's creator ended before its {ends}");
    waited_little(
        witness,
        seen_gone - exited,
        format_args!("the {ends} of the creator of a fan of {children}"),
    );
    ok(format_args!(
        "the {ends} of a fan's creator took its {children} sleepers with it"
    ));
    creator.destroy();
}

/// The fan's creator: creates children of `FAN_CHILD_QUOTA` frames, each sleeping in the
/// chain's code (a level whose quota is below `chain::FLOOR` makes no child), until it can
/// make no more; reports; waits until every child sleeps; and ends when told to
/// ([`end_when_told`]). Planned to be destroyed by a member, it first makes the child that
/// will: one that starts in the chain's code at `chain::destroyer`, given the creator's
/// own capability with `DESTROY` (every environment holds one, in slot 0).
fn make_fan(code: u64) -> u64 {
    let code = Handle::from_raw(code);
    let destroyer = (SHARED.read(FAN_PLAN) == END_BY_MEMBER)
        .then(|| destroyer(code).expect("make the child that destroys the fan's creator"));
    let mut children = 0;
    let stopped_by = loop {
        match sleeper(code) {
            Ok(()) => children += 1,
            Err(error) => break error,
        }
    };
    SHARED.write(FAN_CHILDREN, children);
    SHARED.write(FAN_STOPPED_BY, stopped_by.code());
    while family().1 < children {
        let _ = user::wait(Event::TIMER, 1);
    }
    SHARED.write(FAN_ASLEEP, 1);
    end_when_told(FAN_GO, FAN_EXIT_TSC, destroyer)
}

/// A child of this environment, not yet started, that will destroy it: the chain's code
/// page mapped, and this environment's own capability granted with `DESTROY` only.
/// Returns the child and its handle for this environment.
fn destroyer(code: Handle) -> Result<(Handle, Handle), Error> {
    assert_eq!(
        chain::destroyer() & !(PAGE_SIZE - 1),
        chain::code_page(),
        "the destroyer's code is on the chain's page"
    );
    let child = user::environment_create(FAN_CHILD_QUOTA)?;
    user::map(code, child, chain::code_page(), MapFlags::EXECUTE)?;
    let handle = user::capability_grant(Handle::SELF_ENVIRONMENT, child, Rights::DESTROY)?;
    Ok((child, handle))
}

/// A server destroyed with thousands of callers queued on it: [`QUEUE_FANS`] fans of
/// children that each call it once while it never waits for calls. Each queued caller is
/// answered `PeerGone`; a kernel that answered them all when the server was reaped did it
/// in one go, interrupts off. They are now answered a share at a time as the teardown
/// comes to the server.
fn server_with_a_queue(shared_page: Handle, code_frame: Handle, witness: &Witness) {
    let (members, _) = family();
    SHARED.clear();
    let server = Child::create_lending(JOINED_LEND).expect("create the server");
    SHARED
        .share_with(shared_page, server.environment())
        .expect("share the page");
    let for_server =
        user::capability_grant(Handle::SELF_ENVIRONMENT, server.environment(), Rights::GIVE)
            .expect("give the server a way to hand us its endpoint");
    server
        .start(busy_server, for_server.to_raw())
        .expect("start the server");
    wait_for("the server's endpoint", || SHARED.read(QUEUE_READY) != 0);
    let endpoint = Handle::from_raw(SHARED.read(QUEUE_ENDPOINT));
    let fans: [Handle; QUEUE_FANS] = core::array::from_fn(|_| {
        let fan = user::environment_create(FAN_QUOTA).expect("create a fan");
        user::map(code_frame, fan, chain::code_page(), MapFlags::EXECUTE).expect("its code");
        let code = user::capability_grant(code_frame, fan, FAN_CODE_RIGHTS).expect("grant");
        let called = user::capability_grant(endpoint, fan, Rights::CALL | Rights::GRANT)
            .expect("grant the endpoint");
        let argument = chain::fan_argument(code, called).expect("small handles");
        user::environment_start(fan, chain::fan(true), 0, argument).expect("start the fan");
        fan
    });
    let least = QUEUE_FANS as u64 * FAN_LEAST;
    wait_for("the fans' children queued on the server", || {
        in_family(EnvironmentState::Calling) >= least
    });
    let callers = in_family(EnvironmentState::Calling);

    witness.lap();
    let start = user::tsc();
    user::environment_destroy(server.environment()).expect("destroy the server");
    waited_little(
        witness,
        user::tsc() - start,
        format_args!("destroying a server with {callers} callers queued"),
    );
    wait_for("every caller answered", || {
        in_family(EnvironmentState::Calling) == 0
    });
    ok(format_args!(
        "a server destroyed with {callers} callers queued answered them all (PeerGone)"
    ));
    for fan in fans {
        user::environment_destroy(fan).expect("destroy a fan");
    }
    let _ = drop_capability(endpoint);
    server.destroy();
    assert_eq!(family().0, members, "a fan outlived its destruction");
}

/// How many of this environment's family, itself not counted, are in `state`.
fn in_family(state: EnvironmentState) -> u64 {
    let own = Handle::SELF_ENVIRONMENT;
    let mut after = memory::own_id().expect("own id");
    let mut count = 0;
    while let Some(id) = user::environment_next(own, after).expect("list own family") {
        let found = user::environment_inspect(own, id, EnvironmentAccount::State);
        count += u64::from(found == Ok(state as u64));
        after = id;
    }
    count
}

/// The server of [`server_with_a_queue`]: makes an endpoint, hands the parent a copy
/// through `parent` (a handle for the parent with `GIVE`), and never waits for calls.
fn busy_server(parent: u64) -> u64 {
    let Ok(endpoint) = user::endpoint_create(QUEUE_TAG) else {
        return 1;
    };
    let rights = Rights::CALL | Rights::GRANT;
    let Ok(theirs) = user::capability_grant(endpoint, Handle::from_raw(parent), rights) else {
        return 2;
    };
    SHARED.write(QUEUE_ENDPOINT, theirs.to_raw());
    SHARED.write(QUEUE_READY, 1);
    loop {
        let _ = user::wait(Event::TIMER, 1_000);
    }
}

/// A member that destroys its family's top again and again (`chain::joiner`). The first
/// call makes the top end (a member's destroy always does: the member would otherwise go
/// with the family before its call was done); the top is then taken down in its own time,
/// and every later call joins that teardown, working it in the member's own time — with
/// five slots, most of it. The walk comes down the top's table to the member's root, and
/// there it must stop for this caller: the next step would take apart the address space
/// the member is running its call on. A kernel that went on panicked there (it checks
/// that the space it frees is not the one loaded). The top's own time finishes the walk,
/// the member with it.
fn member_joins_a_teardown(shared_page: Handle, code_frame: Handle, witness: &Witness) {
    let (members, _) = family();
    SHARED.clear();
    let top = Child::create_lending(JOINED_LEND).expect("create the top");
    SHARED
        .share_with(shared_page, top.environment())
        .expect("share the page");
    let for_top = user::capability_grant(Handle::SELF_ENVIRONMENT, top.environment(), Rights::GIVE)
        .expect("give the top a way to hand us its child");
    top.start(joined_top, for_top.to_raw())
        .expect("start the top");
    wait_for("the top to make its child", || {
        SHARED.read(JOINED_READY) != 0 || SHARED.read(JOINED_FAILURE) != 0
    });
    let failure = SHARED.read(JOINED_FAILURE);
    assert_eq!(
        failure,
        0,
        "the top failed at step {} with {:?}",
        failure >> 32,
        Error::try_from(failure & 0xffff_ffff)
    );
    let member = Handle::from_raw(SHARED.read(JOINED_CHILD));
    assert_eq!(
        chain::joiner() & !(PAGE_SIZE - 1),
        chain::code_page(),
        "the joiner's code is on the chain's page"
    );
    user::map(code_frame, member, chain::code_page(), MapFlags::EXECUTE).expect("its code");
    // A copy of the top's root, which the teardown removes only at its very end, after
    // the member: one in the top's own table would go before the walk came down to it.
    let destroy_top = user::capability_grant(top.environment(), member, Rights::DESTROY)
        .expect("grant the member the top's destruction");
    let slots = remap_slots(member);

    witness.lap();
    let start = user::tsc();
    user::environment_start(member, chain::joiner(), 0, destroy_top.to_raw())
        .expect("start the member");
    wait_for("the top and its family to be gone", || {
        !top.is_alive() && family().0 == members
    });
    waited_little(
        witness,
        user::tsc() - start,
        format_args!("a member destroying its top while the top is taken down"),
    );
    ok(format_args!(
        "a member that joined its top's teardown {JOINED_COPIES} copies deep was taken down \
         with it, not under its own call"
    ));
    drop_slots(slots);
    top.destroy();
}

/// The top of [`member_joins_a_teardown`]: fills the slots of its table with
/// [`JOINED_COPIES`] copies of its own capability, creates its child (whose root lands in
/// the slot after them), hands the parent a capability for the child through `parent` (a
/// handle for the parent with `GIVE`), and waits.
fn joined_top(parent: u64) -> u64 {
    let parent = Handle::from_raw(parent);
    let failed = |step: u64, error: Error| -> u64 {
        SHARED.write(JOINED_FAILURE, step << 32 | error.code());
        0
    };
    for _ in 0..JOINED_COPIES {
        if let Err(error) = user::capability_derive(Handle::SELF_ENVIRONMENT, Rights::empty()) {
            return failed(1, error);
        }
    }
    let child = match user::environment_create(JOINER_QUOTA) {
        Ok(child) => child,
        Err(error) => return failed(2, error),
    };
    let rights = Rights::GIVE | Rights::MAP | Rights::CONTROL;
    match user::capability_grant(child, parent, rights) {
        Ok(theirs) => SHARED.write(JOINED_CHILD, theirs.to_raw()),
        Err(error) => return failed(3, error),
    }
    SHARED.write(JOINED_READY, 1);
    loop {
        let _ = user::wait(Event::TIMER, 1_000);
    }
}

/// Waits until the parent writes how to end in word `go`, writes the counter in word
/// `tsc`, and ends so: returns (to `Exit`), faults (with no upcall handler, that ends the
/// environment), or starts `destroyer` (made by [`destroyer`]) and waits to be destroyed.
fn end_when_told(go: u64, tsc: u64, destroyer: Option<(Handle, Handle)>) -> u64 {
    while SHARED.read(go) == 0 {
        let _ = user::wait(Event::TIMER, 1);
    }
    SHARED.write(tsc, user::tsc());
    match (SHARED.read(go), destroyer) {
        (END_FAULT, _) => UserTrap::InvalidOpcode.attempt(),
        (END_BY_MEMBER, Some((child, handle))) => {
            user::environment_start(child, chain::destroyer(), 0, handle.to_raw())
                .expect("start the child that destroys its creator");
            loop {
                let _ = user::wait(Event::TIMER, 1);
            }
        }
        _ => {}
    }
    0
}

/// What [`end_when_told`] calls each way to end.
fn end_name(how: u64) -> &'static str {
    match how {
        END_FAULT => "fault",
        END_BY_MEMBER => "destruction by its own child",
        _ => "Exit",
    }
}

/// A child holding a tree's copy, granted on into every table of the tree, ends as `how`
/// says: the copies below its own capability go with it, in its own time.
fn holder_ends(shared_page: Handle, witness: &Witness, how: u64) {
    SHARED.clear();
    let tree = Tree::grow(WIDE_TABLES, 0, 0);
    let holder = Child::create(HOLDER_QUOTA).expect("create the tree's holder");
    let to_holder = |handle, rights| {
        user::capability_grant(handle, holder.environment(), rights)
            .expect("grant to the tree's holder")
    };
    SHARED
        .share_with(shared_page, holder.environment())
        .expect("share the page");
    let copy = to_holder(tree.root, Rights::READ | Rights::GRANT);
    SHARED.write(HOLDER_COPY, copy.to_raw());
    for (index, &table) in tree.environments.iter().enumerate() {
        SHARED.write(
            HOLDER_TABLES + index as u64,
            to_holder(table, Rights::GIVE).to_raw(),
        );
    }
    holder.start(hold_tree, 0).expect("start the tree's holder");
    wait_for("the holder to fill the tables", || {
        SHARED.read(HOLDER_READY) != 0
    });
    let granted = SHARED.read(HOLDER_GRANTED);
    assert!(
        granted >= HOLDER_LEAST,
        "the holder granted {granted} copies"
    );
    let ends = end_name(how);
    witness.lap();
    SHARED.write(HOLDER_GO, how);
    wait_for("the tree's holder to be gone", || !holder.is_alive());
    let seen_gone = user::tsc();
    waited_little(
        witness,
        seen_gone - SHARED.read(HOLDER_END_TSC),
        format_args!("the {ends} of the holder of {granted} copies"),
    );
    for (&environment, &before) in tree.environments.iter().zip(&tree.held_before) {
        assert_eq!(held(environment), before, "a copy outlived its holder");
    }
    ok(format_args!(
        "the {ends} of a child took the {granted} copies it granted into {WIDE_TABLES} \
         tables outside its family"
    ));
    holder.destroy();
    tree.clear();
}

/// The tree's holder: grants its copy into each of the tree's tables until it is full,
/// reports, and ends when told to.
fn hold_tree(_argument: u64) -> u64 {
    let copy = Handle::from_raw(SHARED.read(HOLDER_COPY));
    let mut granted = 0;
    for index in 0..WIDE_TABLES as u64 {
        let table = Handle::from_raw(SHARED.read(HOLDER_TABLES + index));
        loop {
            match user::capability_grant(copy, table, Rights::READ) {
                Ok(_) => granted += 1,
                Err(Error::TableFull | Error::KernelMemoryExceeded) => break,
                Err(error) => panic!("grant into a tree's table: {error:?}"),
            }
        }
    }
    SHARED.write(HOLDER_GRANTED, granted);
    SHARED.write(HOLDER_READY, 1);
    end_when_told(HOLDER_GO, HOLDER_END_TSC, None)
}

/// One child of the fan, started in the chain's code; an environment made but not started
/// is destroyed again.
fn sleeper(code: Handle) -> Result<(), Error> {
    let child = user::environment_create(FAN_CHILD_QUOTA)?;
    let started = user::map(code, child, chain::code_page(), MapFlags::EXECUTE)
        .and_then(|()| user::environment_start(child, chain::level(), 0, 0));
    if started.is_err() {
        user::environment_destroy(child)?;
    }
    started
}

/// This environment's family, itself not counted: how many, and how many of them sleep
/// in `Wait`.
fn family() -> (u64, u64) {
    let own = Handle::SELF_ENVIRONMENT;
    let mut after = memory::own_id().expect("own id");
    let (mut members, mut asleep) = (0, 0);
    while let Some(id) = user::environment_next(own, after).expect("list own family") {
        let state = user::environment_inspect(own, id, EnvironmentAccount::State);
        members += 1;
        asleep += u64::from(state == Ok(EnvironmentState::Waiting as u64));
        after = id;
    }
    (members, asleep)
}

/// [`STORM_ROUNDS`] trees built and revoked one after another, the witness's share of
/// the CPU measured over all of them.
fn storms(witness: &Witness) {
    witness.lap();
    let mut longest = 0;
    for _ in 0..STORM_ROUNDS {
        let tree = Tree::grow(STORM_TABLES, STORM_COPIES, TREE_PAGES);
        assert_eq!(tree.copies, STORM_TABLES as u64 * (STORM_COPIES + 1));
        longest = longest.max(tree.revoke());
        tree.clear();
    }
    let copies = STORM_TABLES as u64 * (STORM_COPIES + 1);
    let lap = waited_little(
        witness,
        longest,
        format_args!("{STORM_ROUNDS} storms of {copies} copies built and revoked (the longest)"),
    );
    ok(format_args!(
        "{STORM_ROUNDS} CapabilityRevoke calls each took a tree of {copies} copies"
    ));
    // ran / length >= LEAST_SHARE_PERCENT% of slots held / slots.
    let promised = lap.length * WITNESS_SLOTS / facts::slots();
    println!(
        "{NAME}: over the storms the witness ran {} per mille of the time; its slots \
         promise {} per mille",
        1000 * lap.ran / lap.length,
        1000 * WITNESS_SLOTS / facts::slots()
    );
    assert!(
        100 * lap.ran >= LEAST_SHARE_PERCENT * promised,
        "over the storms the witness ran {} of {} cycles its slots promise",
        lap.ran,
        promised
    );
    ok(format_args!(
        "over the storms the witness ran at least {LEAST_SHARE_PERCENT}% of what its slots \
         promise"
    ));
}

/// A call whose work is bounded but long, made again and again.
#[derive(Clone, Copy, Debug)]
enum LongCall {
    /// `FrameAllocate` of 1,024 frames: 4 MiB to zero.
    Allocate,
    /// `Map` of a run of 1,024 frames whole.
    MapRun,
    /// `MapBatch` of 512 requests, one page each.
    FullBatch,
    /// `MapBatch` of [`BATCH_RUNS`] requests, each a run of 1,024 frames.
    BatchOfRuns,
}

impl LongCall {
    const ALL: [LongCall; 4] = [
        LongCall::Allocate,
        LongCall::MapRun,
        LongCall::FullBatch,
        LongCall::BatchOfRuns,
    ];

    fn name(self) -> &'static str {
        match self {
            LongCall::Allocate => "FrameAllocate of 1,024 frames",
            LongCall::MapRun => "Map of 1,024 frames",
            LongCall::FullBatch => "MapBatch of 512 pages",
            LongCall::BatchOfRuns => "MapBatch of 8 runs of 1,024 frames",
        }
    }

    /// Makes the call once, mapping into `target`, checks its answer, and undoes it;
    /// returns the cycles of the call alone.
    fn once(self, target: Handle) -> u64 {
        let run = || {
            user::frame_allocate(10)
                .expect("allocate a run of 1,024 frames")
                .0
        };
        let start;
        let frames: &[Handle] = match self {
            LongCall::Allocate => {
                start = user::tsc();
                &[run()]
            }
            LongCall::MapRun => {
                let frame = run();
                start = user::tsc();
                user::map(frame, target, LONG_AT, MapFlags::WRITE).expect("map a run");
                &[frame]
            }
            LongCall::FullBatch => {
                let (frame, _) = user::frame_allocate(0).expect("allocate a frame");
                let addresses = (0..MAX_BATCH).map(|page| LONG_AT + page * PAGE_SIZE);
                start = user::tsc();
                let mapped = batch::map_frame_at(target, frame, addresses, MapFlags::WRITE);
                assert_eq!(mapped, (MAX_BATCH, Ok(())), "a full batch");
                &[frame]
            }
            LongCall::BatchOfRuns => {
                let runs: [Handle; BATCH_RUNS] = core::array::from_fn(|_| run());
                let requests: [MapRequest; BATCH_RUNS] = core::array::from_fn(|index| MapRequest {
                    frame: runs[index].to_raw(),
                    address: LONG_AT + (index as u64) * 1024 * PAGE_SIZE,
                    flags: MapFlags::WRITE.bits(),
                });
                start = user::tsc();
                let mapped = user::map_batch(target, &requests);
                assert_eq!(mapped, (BATCH_RUNS, Ok(())), "a batch of runs");
                return Self::undo(start, &runs);
            }
        };
        Self::undo(start, frames)
    }

    /// The cycles since `start`; then drops `frames`, which unmaps them.
    fn undo(start: u64, frames: &[Handle]) -> u64 {
        let cycles = user::tsc() - start;
        for &frame in frames {
            drop_capability(frame).expect("drop a run");
        }
        cycles
    }
}

/// An environment of [`REFILL_TABLES`] page tables taken down while another maps into it
/// behind the teardown — destroyed by the parent, or (`by_itself`) destroying itself, so
/// that it is ending and taken down in its own time: a teardown takes an address space
/// apart a step at a time, from the bottom up, freeing each table once it has walked what
/// is below it; a refiller holding a capability for it with `MAP` makes pages (and page
/// tables) again below where the teardown has got to. Nothing may be made in an
/// environment being taken down, so the teardown frees everything it made.
fn refilled_behind(shared_page: Handle, code: Handle, witness: &Witness, by_itself: bool) {
    let target = user::environment_create_lending(REFILL_LEND).expect("the environment");
    let (frame, _) = user::frame_allocate(0).expect("a frame to map");
    let addresses = (0..REFILL_TABLES).map(|table| REFILL_AT + table * TWO_MIB);
    let mapped = batch::map_frame_at(target, frame, addresses, MapFlags::empty());
    assert_eq!(mapped, (REFILL_TABLES, Ok(())), "a page in each table");

    assert_eq!(
        chain::refiller() & !(PAGE_SIZE - 1),
        chain::code_page(),
        "the refiller's code is on the chain's page"
    );
    let refiller = user::environment_create(REFILLER_QUOTA).expect("the refiller");
    user::map(code, refiller, chain::code_page(), MapFlags::EXECUTE).expect("its code");
    SHARED.share_with(shared_page, refiller).expect("its words");
    let word = |which: RefillWords| REFILL_WORDS + which as u64;
    let granted = |capability, rights| {
        user::capability_grant(capability, refiller, rights).expect("grant the refiller")
    };
    SHARED.write(
        word(RefillWords::Target),
        granted(target, Rights::MAP).to_raw(),
    );
    SHARED.write(
        word(RefillWords::Frame),
        granted(frame, Rights::READ | Rights::MAP).to_raw(),
    );
    SHARED.write(word(RefillWords::First), REFILL_AT);
    SHARED.write(word(RefillWords::Stride), TWO_MIB);
    SHARED.write(word(RefillWords::Count), REFILL_TABLES);
    SHARED.write(word(RefillWords::Mapped), 0);
    SHARED.write(word(RefillWords::Refused), 0);
    SHARED.write(word(RefillWords::RefusedWith), Error::InvalidState.code());
    user::environment_start(
        refiller,
        chain::refiller(),
        0,
        SHARED.address() + 8 * word(RefillWords::Target),
    )
    .expect("start the refiller");
    // A pass over the row first: every address is mapped, and every map refused.
    wait_for("the refiller's first pass", || {
        user::environment_info(refiller, EnvironmentAccount::SystemCalls)
            .is_ok_and(|calls| calls > REFILL_TABLES)
    });
    assert_eq!(
        SHARED.read(word(RefillWords::Mapped)),
        0,
        "nothing to map yet"
    );

    let how = if by_itself {
        "destroying itself"
    } else {
        "destroyed"
    };
    torn_down(
        witness,
        format_args!(
            "an environment of {REFILL_TABLES} page tables {how} while another maps into it"
        ),
        || {
            if !by_itself {
                return user::environment_destroy(target).expect("destroy it");
            }
            // It runs the chain's destroyer on its own handle: it ends, and is taken
            // down in its own time.
            user::map(code, target, chain::code_page(), MapFlags::EXECUTE).expect("its code");
            let own = Handle::SELF_ENVIRONMENT.to_raw();
            user::environment_start(target, chain::destroyer(), 0, own).expect("start it");
            wait_for("the environment's end", || {
                user::environment_info(target, EnvironmentAccount::Id).is_err()
            });
        },
    );
    let (remade, refused) = (
        SHARED.read(word(RefillWords::Mapped)),
        SHARED.read(word(RefillWords::Refused)),
    );
    println!(
        "{NAME}: during the teardown the refiller made {remade} pages again and had {refused} \
         refused"
    );
    assert!(refused > 0, "the refiller mapped during the teardown");
    assert_eq!(remade, 0, "pages made in an environment being taken down");
    ok(format_args!(
        "nothing made in an environment being taken down: {refused} maps refused \
         (InvalidState)"
    ));
    user::environment_destroy(refiller).expect("destroy the refiller");
    drop_capability(frame).expect("drop the frame");
}

/// A run revoked while the holder of its copy maps it again and again, with five times
/// the revoker's CPU: the revoke takes the copy's pages a run at a time, and a holder
/// that mapped again as fast as they went would keep the revoke from ever ending, and
/// the frames from ever coming back. A capability a removal has begun at takes nothing
/// more: every map through it is `StaleHandle` from the revoke's first share on.
fn remapped_while_revoked(shared_page: Handle, code: Handle, witness: &Witness) {
    let (run, _) = user::frame_allocate(REMAP_ORDER).expect("a run of 64 frames");
    let holder = user::environment_create_lending(REMAP_LEND).expect("the holder");
    user::map(code, holder, chain::code_page(), MapFlags::EXECUTE).expect("its code");
    SHARED.share_with(shared_page, holder).expect("its words");
    let copy = user::capability_grant(run, holder, Rights::READ | Rights::MAP)
        .expect("grant the holder a copy");
    let word = |which: RefillWords| REFILL_WORDS + which as u64;
    for (which, value) in [
        (RefillWords::Target, Handle::SELF_ENVIRONMENT.to_raw()),
        (RefillWords::Frame, copy.to_raw()),
        (RefillWords::First, REMAP_AT),
        (RefillWords::Stride, PAGE_SIZE << REMAP_ORDER),
        (RefillWords::Count, REMAP_ROW),
        (RefillWords::Mapped, 0),
        (RefillWords::Refused, 0),
        (RefillWords::RefusedWith, Error::StaleHandle.code()),
    ] {
        SHARED.write(word(which), value);
    }
    let slots = remap_slots(holder);
    user::environment_start(
        holder,
        chain::refiller(),
        0,
        SHARED.address() + 8 * word(RefillWords::Target),
    )
    .expect("start the holder");
    wait_for("the holder's copy mapped along its row", || {
        SHARED.read(word(RefillWords::Mapped)) >= REMAP_ROW
    });

    witness.lap();
    let mapped = SHARED.read(word(RefillWords::Mapped));
    let cycles = revoke_capability_timed(run).expect("revoke the run");
    waited_little(
        witness,
        cycles,
        format_args!(
            "revoking a run mapped {} times by a holder with {REMAP_SLOTS} slots mapping it again",
            REMAP_ROW
        ),
    );
    let (remade, refused) = (
        SHARED.read(word(RefillWords::Mapped)) - mapped,
        SHARED.read(word(RefillWords::Refused)),
    );
    println!("{NAME}: during the revoke the holder mapped {remade} runs again, {refused} refused");
    assert!(refused > 0, "the holder mapped during the revoke");
    assert_eq!(remade, 0, "runs mapped through a copy being revoked");
    ok(format_args!(
        "a revoke ends however fast the holder maps: {refused} maps through the copy refused \
         (StaleHandle)"
    ));
    user::environment_destroy(holder).expect("destroy the holder");
    drop_slots(slots);
    drop_capability(run).expect("drop the run");
}

/// A frame revoked while the holder of its copy derives from a copy of that copy again and
/// again, with five times the revoker's CPU: the revoke removes the copies a leaf at a
/// time, going back up to their parent after each, and a holder that hung new ones below
/// the parent as fast as they went would keep the revoke from ever ending. The node a
/// share of the removal stops at is going: from the first stop there, every derivation
/// is `StaleHandle`.
fn derived_while_revoked(shared_page: Handle, code: Handle, witness: &Witness) {
    let (frame, _) = user::frame_allocate(0).expect("a frame");
    let holder = user::environment_create_lending(REMAP_LEND).expect("the holder");
    user::map(code, holder, chain::code_page(), MapFlags::EXECUTE).expect("its code");
    SHARED.share_with(shared_page, holder).expect("its words");
    assert_eq!(
        chain::deriver() & !(PAGE_SIZE - 1),
        chain::code_page(),
        "the deriver's code is on the chain's page"
    );
    let copy = user::capability_grant(frame, holder, Rights::READ).expect("grant a copy");
    let word = |which: DeriveWords| REFILL_WORDS + which as u64;
    for (which, value) in [
        (DeriveWords::From, copy.to_raw()),
        (DeriveWords::Copy, 0),
        (DeriveWords::Derived, 0),
        (DeriveWords::Refused, 0),
        (DeriveWords::RefusedWith, Error::StaleHandle.code()),
    ] {
        SHARED.write(word(which), value);
    }
    let slots = remap_slots(holder);
    user::environment_start(
        holder,
        chain::deriver(),
        0,
        SHARED.address() + 8 * word(DeriveWords::From),
    )
    .expect("start the holder");
    wait_for("the holder's table full of copies", || {
        user::environment_info(holder, EnvironmentAccount::CapabilitiesHeld)
            .is_ok_and(|held| held >= DERIVED_LEAST)
    });

    witness.lap();
    let derived = SHARED.read(word(DeriveWords::Derived));
    let cycles = revoke_capability_timed(frame).expect("revoke the frame");
    waited_little(
        witness,
        cycles,
        format_args!(
            "revoking a frame whose holder, with {REMAP_SLOTS} slots, derives below its copy"
        ),
    );
    let (more, refused) = (
        SHARED.read(word(DeriveWords::Derived)) - derived,
        SHARED.read(word(DeriveWords::Refused)),
    );
    println!("{NAME}: during the revoke the holder derived {more} copies more, {refused} refused");
    assert!(refused > 0, "the holder derived during the revoke");
    ok(format_args!(
        "a revoke ends however fast the holder derives: {more} derived, then {refused} \
         refused (StaleHandle)"
    ));
    user::environment_destroy(holder).expect("destroy the holder");
    drop_slots(slots);
    drop_capability(frame).expect("drop the frame");
}

/// A frame revoked while the holder of its copy derives above where the revoke's shares
/// stop. The holder builds the copy → an upper copy → a lower copy → a thousand leaves
/// below the lower, so that the revoke takes shares and each stops among the leaves; once
/// it sees the revoke begun (a derivation from the copy, the removal's top, refused), it
/// derives from the upper copy, two levels above. A removal that marked only its top and
/// the node it stopped at would let those copies hang below the upper copy as fast as the
/// leaves went, and a holder with the CPU to spare could keep it from ever ending; the
/// whole path from where it stopped up to its top is going, so every one is refused.
fn derived_above_the_stop(shared_page: Handle, code: Handle, witness: &Witness) {
    let (frame, _) = user::frame_allocate(0).expect("a frame");
    let holder = user::environment_create_lending(REMAP_LEND).expect("the holder");
    user::map(code, holder, chain::code_page(), MapFlags::EXECUTE).expect("its code");
    SHARED.share_with(shared_page, holder).expect("its words");
    assert_eq!(
        chain::above() & !(PAGE_SIZE - 1),
        chain::code_page(),
        "the holder's code is on the chain's page"
    );
    let copy = user::capability_grant(frame, holder, Rights::READ).expect("grant a copy");
    let word = |which: AboveWords| REFILL_WORDS + which as u64;
    for which in [
        AboveWords::Upper,
        AboveWords::Lower,
        AboveWords::Leaves,
        AboveWords::Asked,
        AboveWords::Derived,
        AboveWords::Refused,
    ] {
        SHARED.write(word(which), 0);
    }
    SHARED.write(word(AboveWords::From), copy.to_raw());
    SHARED.write(word(AboveWords::RefusedWith), Error::StaleHandle.code());
    let slots = remap_slots(holder);
    user::environment_start(
        holder,
        chain::above(),
        0,
        SHARED.address() + 8 * word(AboveWords::From),
    )
    .expect("start the holder");
    wait_for("the holder's table full of leaves", || {
        SHARED.read(word(AboveWords::Leaves)) >= DERIVED_LEAST
    });

    witness.lap();
    let cycles = revoke_capability_timed(frame).expect("revoke the frame");
    waited_little(
        witness,
        cycles,
        format_args!(
            "revoking a frame whose holder, with {REMAP_SLOTS} slots, derives above the stop"
        ),
    );
    // Once the revoke is done the copy is gone and the holder is refused too; it may not
    // have run since.
    wait_for("the holder to ask after the revoke", || {
        SHARED.read(word(AboveWords::Refused)) > 0
    });
    let (leaves, asked, derived, refused) = (
        SHARED.read(word(AboveWords::Leaves)),
        SHARED.read(word(AboveWords::Asked)),
        SHARED.read(word(AboveWords::Derived)),
        SHARED.read(word(AboveWords::Refused)),
    );
    println!(
        "{NAME}: {leaves} leaves; once the revoke had begun the holder derived {derived} \
         copies above the stop, {refused} refused, in {asked} tries"
    );
    assert_eq!(derived, 0, "copies derived above where a revoke stopped");
    ok(format_args!(
        "every derivation above where a revoke stopped refused: {refused} (StaleHandle)"
    ));
    user::environment_destroy(holder).expect("destroy the holder");
    drop_slots(slots);
    drop_capability(frame).expect("drop the frame");
}

/// [`REMAP_SLOTS`] slots of the slice vector for `holder`, from the parent's quota: with
/// them it has five times the CPU of the parent's pool time.
fn remap_slots(holder: Handle) -> [Handle; REMAP_SLOTS as usize] {
    core::array::from_fn(|_| {
        let (slot, _) = user::slot_allocate(holder, ANY_SLOT).expect("a slot for the holder");
        slot
    })
}

/// Gives back slots [`remap_slots`] took.
fn drop_slots(slots: [Handle; REMAP_SLOTS as usize]) {
    for slot in slots {
        drop_capability(slot).expect("drop a slot's capability");
    }
}

/// Each [`LongCall`] made again and again for [`LONG_STORM_TICKS`], timed by a lap of the
/// witness, into an environment made for them.
fn long_calls(witness: &Witness) {
    let target = user::environment_create_lending(LONG_LEND).expect("a target");
    let before = held(target);
    for call in LongCall::ALL {
        witness.lap();
        let end = facts::ticks() + LONG_STORM_TICKS;
        let (mut calls, mut longest) = (0, 0);
        while facts::ticks() < end {
            longest = longest.max(call.once(target));
            calls += 1;
        }
        waited_little(
            witness,
            longest,
            format_args!("{calls} calls of {} (the longest)", call.name()),
        );
        assert_eq!(held(target), before, "a mapping outlived its frame");
    }
    user::environment_destroy(target).expect("destroy the target");
    long_console_write();
}

/// A `ConsoleWrite` of 4 KiB: every byte an exit to QEMU, 11 ms of real time under TCG
/// (2.6 ticks of the instruction clock), and done at once it kept a witness waiting 44
/// ticks of real time. It prints a share at a time, taken again from its `syscall` with
/// what it printed in `rax`'s high half, and answers 4,096.
fn long_console_write() {
    let mut text = [b'.'; 4096];
    for line in text.chunks_mut(64) {
        line[63] = b'\n';
    }
    let before = facts::counter(Counter::CallsTakenAgain);
    assert_eq!(
        user::console_write(&text),
        Ok(4096),
        "a 4 KiB console write"
    );
    let _ = user::wait(Event::TIMER, 1); // the facts page is at most a tick old
    let taken = facts::counter(Counter::CallsTakenAgain) - before;
    assert!(
        taken >= 2,
        "a 4 KiB console write was taken again {taken} times"
    );
    ok(format_args!(
        "a 4 KiB ConsoleWrite printed a share at a time (taken again {taken} times)"
    ));
}

/// Sleeps a tick at a time until `condition` holds; panics after [`PATIENCE_TICKS`].
fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = facts::ticks() + PATIENCE_TICKS;
    while !condition() {
        assert!(facts::ticks() < deadline, "waited too long for {what}");
        let _ = user::wait(Event::TIMER, 1);
    }
}
