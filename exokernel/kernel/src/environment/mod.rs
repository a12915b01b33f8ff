//! Environments: the exokernel's protection domains, and the state that
//! binds them to resources.
//!
//! An environment is an address space, a capability table, a saved user
//! context and an upcall entry — nothing more. What runs inside it, and how
//! it manages the memory it holds, is its library OS's business.
//!
//! All of it lives in one `System` behind one lock: environments, the
//! capability space (every table and the derivation tree) and the index of
//! which capability authorised each mapped page. The kernel runs with
//! interrupts off and never blocks, so the lock is only ever contended by
//! other CPUs (later).
//!
//! The operations are split by subject: `lifecycle.rs` (create, start,
//! destroy), `memory.rs` (frames and mappings), `capabilities.rs`,
//! `revocation.rs` (visible revocation and the abort protocol), `upcall.rs`,
//! `slots.rs`, `waiting.rs` (yield, wait), `calls.rs` (protected control
//! transfer), `notifications.rs`,
//! `events.rs` (timer ticks and faults, as `crate::dispatch` hands them on),
//! `kernel_memory.rs` (who pays for kernel memory),
//! `schedule.rs` (which environment runs next) and `facts.rs` (the
//! read-only facts page).
//!
//! None of it is `unsafe`: page tables are `memory::address_space`'s, and
//! environments' frames are read and written only through
//! `memory::lent_frames`, which checks that they are lent.
#![forbid(unsafe_code)]

mod calls;
mod capabilities;
mod events;
mod facts;
mod first_program;
mod inspect;
mod kernel_memory;
mod lifecycle;
mod memory;
pub mod net;
mod notifications;
mod pool;
mod revocation;
mod schedule;
mod slots;
mod teardown;
mod upcall;
pub mod user_memory;
mod waiting;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;

use exo_abi::mapping::MapFlags;
use exo_abi::syscall::{EnvironmentAccount, Event};
use exo_abi::trace::Kind;
use exo_abi::{Error, Handle, Rights};
use exo_kernel_core::accounts::Account;
use exo_kernel_core::caps::{CapabilitySpace, NodeId, Removal, Removed};
use exo_kernel_core::mappings::MappingIndex;
use exo_kernel_core::memory_map::FRAME_SIZE;
use exo_kernel_core::scheduler::Scheduler;
use exo_kernel_core::slices::{SliceVector, SlotId};
use exo_kernel_core::timers::Timers;
use spin::Mutex;

use self::inspect::Usage;
use self::kernel_memory::MAPPING_RECORD_BYTES;
use crate::arch::cpu;
use crate::arch::trap::TrapFrame;
use crate::memory::address_space::AddressSpace;
use crate::memory::lent_frames;
use crate::{println, trace};

pub use exo_kernel_core::caps::EnvironmentId;
pub use first_program::start_first_program;
pub use memory::MapProgress;
pub use schedule::{after_trap, first_context, init};
use teardown::Ending;
pub use teardown::{share, share_of};

/// What a capability names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    /// `2^order` frames starting at frame number `first`.
    Frame {
        first: u64,
        order: u8,
    },
    Environment(EnvironmentId),
    /// A slot of the slice vector.
    Slot(SlotId),
    /// A way to call `server`; each call hands it `entry`.
    Endpoint {
        server: EnvironmentId,
        entry: u64,
    },
    /// A way to set `bits` in `target`'s pending notification word.
    Notification {
        target: EnvironmentId,
        bits: u64,
    },
    /// The network card.
    Nic,
    /// A claimed IPv4 address.
    Address(exo_kernel_core::demux::Ipv4),
    /// Rings in an environment's frames, fed by filters.
    Binding(net::BindingId),
    /// A filter on an address, attached to a binding.
    Filter {
        binding: net::BindingId,
        key: exo_kernel_core::demux::FilterKey,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Built by its parent, not started yet.
    Created,
    /// May run.
    Runnable,
    /// Blocked in `Wait` until one of `events` (the timer: at tick `deadline`).
    Waiting { events: Event, deadline: u64 },
    /// Blocked in `Call` until `server` replies.
    Calling { server: EnvironmentId },
}

/// A call waiting in a server's queue: what `Wait` will hand the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct QueuedCall {
    /// The entry tag of the endpoint it came through.
    entry: u64,
    arguments: [u64; 2],
    /// The caller's handle of the capability it passes, or `NO_CAPABILITY`;
    /// passed (and checked again) when the server takes the call.
    passed: u64,
}

/// Where upcalls enter an environment.
#[derive(Clone, Copy, Debug)]
struct UpcallEntry {
    entry: u64,
    stack_top: u64,
    stack_size: u64,
    /// Also enter at the start of each slot it gets (`UpcallOptions::SCHEDULER`).
    at_slot_start: bool,
}

impl UpcallEntry {
    /// Whether `rsp` is on the exception stack, i.e. the handler is running.
    fn is_handling(&self, rsp: u64) -> bool {
        rsp <= self.stack_top && rsp > self.stack_top - self.stack_size
    }
}

/// An open request to give frames back (visible revocation).
#[derive(Clone, Copy, Debug)]
struct Revocation {
    wanted: u64,
    /// Tick count after which the kernel takes what is missing by force.
    deadline: u64,
    /// Ticks the environment is given, from the request and again from the upcall.
    allowed_ticks: u64,
    /// `frames_held` when the request was made: only a fall below it counts
    /// as given back, so churning fresh frames satisfies nothing.
    held_when_asked: u64,
    /// Whether the upcall announcing it has been delivered.
    delivered: bool,
    /// Once its deadline passed and the kernel takes what is missing, a
    /// share at a time (`revocation.rs`): what had been given back by then,
    /// and the frames taken by force so far.
    enforcing: Option<Enforcing>,
    /// Made by an environment neither the one asked nor below it: only its
    /// maker (`made_by`), or one above the maker, may replace it
    /// (`request_frames`).
    from_outside: bool,
    made_by: EnvironmentId,
}

#[derive(Clone, Copy, Debug)]
struct Enforcing {
    given: u64,
    taken: u64,
    /// Of those taken, the frames it did not hold through frame
    /// capabilities of its own: its page tables that mapped nothing, and
    /// what its children held (destroyed by the take).
    not_held: u64,
    /// Where the take's search for page tables that map nothing goes on
    /// (`u64::MAX`: done).
    tables_from: u64,
    /// Where its reading of the table for frame capabilities, and for
    /// children, goes on: the slots below these (`u32::MAX`: from the top).
    frames_below: u32,
    children_below: u32,
    /// The child being taken down, if its take stopped part-way, and the
    /// frames it held when the take began.
    child: Option<(EnvironmentId, u64)>,
}

/// A large run `FrameAllocate` is zeroing a share at a time (`memory.rs`):
/// the call's order and place, and the run, taken and charged.
#[derive(Debug)]
struct Allocating {
    order: u64,
    at: Option<u64>,
    run: lent_frames::Zeroing,
}

/// What a share of a call that works in shares came to (`teardown.rs`,
/// `memory.rs`).
#[derive(Debug, PartialEq, Eq)]
pub enum Step<T> {
    /// The call is done, with this answer.
    Done(T),
    /// Its share ran out with this much done: it is to be taken again
    /// (`syscalls.rs`), which carries the figure back (0 where the
    /// environment's record keeps what was done).
    Stopped(u64),
}

#[derive(Debug)]
struct Environment {
    id: EnvironmentId,
    parent: Option<EnvironmentId>,
    /// How many creators are above it (the first environment: 0), and an
    /// ancestor to jump to (itself for the first), so that whether one
    /// environment is below another takes O(log depth) steps
    /// (`System::is_below`, kernel-core's `ancestry`).
    depth: u32,
    jump: EnvironmentId,
    state: State,
    space: AddressSpace,
    /// The user context while it is not running.
    saved: TrapFrame,
    /// Its data segment selectors while it is not running (`cpu::UserSegments`).
    segments: cpu::UserSegments,
    upcall: Option<UpcallEntry>,
    /// The capability whose removal destroys this environment: the one its
    /// creator holds, or for the first environment its own.
    root: NodeId,
    /// Frames: its allocations, its page tables and facts page, quota lent to children.
    frames: Account,
    /// Bytes of kernel memory (`kernel_memory.rs`): its record, capabilities,
    /// mapping records and network objects, allowances lent to children.
    kernel_bytes: Account,
    /// CPU slots: slot capabilities it allocated, slot quota lent to children.
    slots: Account,
    /// What its creator lent it, given back to the creator when it goes.
    lent: Lend,
    /// Frames it holds through root frame capabilities (its allocations).
    frames_held: u64,
    /// Frames of quota it has lent to its children that are alive: its
    /// frames charged, less these, are the frames it holds itself (what a
    /// forced take counts a child by: `revocation.rs`).
    frames_lent: u64,
    frames_taken_by_force: u64,
    frames_given_back: u64,
    revocation: Option<Revocation>,
    /// Physical address of its facts page (the kernel's frame, not a capability).
    facts: u64,
    /// Slots of the slice vector it holds.
    slots_held: u64,
    /// Slots in which it has had the CPU.
    slots_run: u64,
    /// The environment whose call it is serving.
    serving: Option<EnvironmentId>,
    /// Callers waiting for it to take their calls, first come first served
    /// (`calls.rs`): the first and the last; each links to the next.
    callers: Option<(EnvironmentId, EnvironmentId)>,
    /// While it waits in another's queue: its call, and who is before and
    /// after it.
    queued: Option<QueuedCall>,
    previous_caller: Option<EnvironmentId>,
    next_caller: Option<EnvironmentId>,
    /// Bits its notifications have set since its last `Wait` for them.
    pending_signals: u64,
    /// The deadline its timer is armed for in `System::timers`, if it is.
    timer: Option<u64>,
    /// The deadline its revocation request is armed for in
    /// `System::revocation_deadlines`, if one is (the request may have been
    /// met since: the entry goes when it expires, or with the next request).
    revocation_armed: Option<u64>,
    /// Whether it is in the pool's line (`pool.rs`), and who is before and
    /// after it there.
    in_pool_line: bool,
    pool_previous: Option<EnvironmentId>,
    pool_next: Option<EnvironmentId>,
    /// Whether it is on the doomed list, and the next one on it.
    doomed: bool,
    doomed_next: Option<EnvironmentId>,
    /// While a teardown takes it down a share at a time (`teardown.rs`):
    /// whether it is held still (it runs no more), and the first slot of
    /// its table not yet emptied.
    frozen: bool,
    teardown_slot: u32,
    /// The first address of its user half the teardown has not taken apart.
    teardown_address: u64,
    /// On the top of a family being taken down: the member being emptied now.
    teardown_at: Option<EnvironmentId>,
    /// Once it ends by its own `Exit` or a fault it could not handle: how.
    /// It runs no more code of its own; whenever it would run, the kernel
    /// takes it down a share at a time instead (`teardown.rs`).
    ending: Option<Ending>,
    /// The run its `FrameAllocate` is zeroing, if that call stopped part-way.
    allocating: Option<Allocating>,
    /// Its own `EnvironmentDestroy` that stopped part-way: the handle it
    /// named and the environment that named, so the call taken again goes
    /// on even if the handle (a copy of the root) went with the family.
    finishing: Option<(Handle, EnvironmentId)>,
    /// Its system calls, exceptions and upcalls until it last left the CPU,
    /// and the CPU's counts when it last got it (`inspect.rs`).
    usage: Usage,
    usage_mark: Usage,
    /// Its name, 16 bytes packed as `trace::pack_name` packs them.
    name: [u64; 2],
    /// The last `EnvironmentNext` listing that walked through it, shifted
    /// left by one, and in bit 0 whether it is in that listing's family
    /// (`inspect.rs`); 0 before any.
    family_mark: u64,
    /// Where its last few `EnvironmentNext` listings that stopped go on
    /// (`inspect.rs`).
    listings: inspect::Listings,
}

/// Environments to be destroyed, linked through their own records, so that
/// dooming one never allocates and the list has no size of its own.
#[derive(Debug)]
struct Doomed {
    first: Option<EnvironmentId>,
}

impl Doomed {
    const EMPTY: Self = Self { first: None };

    /// Puts `id` on the list unless it is gone or on it already; returns
    /// whether it was put there.
    fn push(
        &mut self,
        environments: &mut BTreeMap<EnvironmentId, Box<Environment>>,
        id: EnvironmentId,
    ) -> bool {
        match environments.get_mut(&id) {
            Some(environment) if !environment.doomed => {
                environment.doomed = true;
                environment.doomed_next = self.first.replace(id);
                true
            }
            _ => false,
        }
    }

    /// Takes the next doomed environment out of `environments`.
    fn pop(
        &mut self,
        environments: &mut BTreeMap<EnvironmentId, Box<Environment>>,
    ) -> Option<Box<Environment>> {
        let id = self.first?;
        let environment = environments
            .remove(&id)
            .expect("a doomed environment exists");
        self.first = environment.doomed_next;
        Some(environment)
    }
}

/// What a creator lends a new environment (`EnvironmentCreate`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lend {
    pub frames: u64,
    pub kernel_bytes: u64,
    pub slots: u64,
}

impl Environment {
    fn frames_available(&self) -> u64 {
        self.frames.available()
    }

    /// Charges `frames` frames, or refuses with `QuotaExceeded`.
    fn charge(&mut self, frames: u64) -> Result<(), Error> {
        self.frames.charge(frames).map_err(|_| Error::QuotaExceeded)
    }

    /// Charges `bytes` of kernel memory, or refuses with
    /// `KernelMemoryExceeded`; `OutOfMemory` if the heap itself is nearly
    /// full (which the accounts should never let happen).
    fn charge_kernel(&mut self, bytes: u64) -> Result<(), Error> {
        if !crate::memory::heap::has_room() {
            return Err(Error::OutOfMemory);
        }
        self.kernel_bytes
            .charge(bytes)
            .map_err(|_| Error::KernelMemoryExceeded)
    }

    /// Ends whatever it was blocked in: it may run again, and the system
    /// call it was blocked in returns `rax` (0 or an error code), `rdx`, `rsi`.
    fn wake(&mut self, [rax, rdx, rsi]: [u64; 3]) {
        trace::record(Kind::Wake, self.id.0, [rdx, rsi]);
        self.state = State::Runnable;
        (self.saved.rax, self.saved.rdx, self.saved.rsi) = (rax, rdx, rsi);
    }

    fn is_runnable(&self) -> bool {
        self.state == State::Runnable && !self.frozen && !self.is_being_forced()
    }

    /// Its revocation deadline passed and what it owes is being taken, a
    /// share at each tick (`revocation.rs`): it runs no more until that is
    /// done, or it could hang new copies below the frames' copies the take
    /// has not reached yet as fast as the take removed them.
    fn is_being_forced(&self) -> bool {
        self.revocation
            .is_some_and(|request| request.enforcing.is_some())
    }

    /// Held still by a teardown, or ending (`System::being_taken_down`).
    fn is_being_taken_down(&self) -> bool {
        self.frozen || self.ending.is_some()
    }
}

/// Everything the kernel knows about environments and what they hold.
#[derive(Debug)]
pub struct System {
    /// Boxed: the tree's nodes then hold small entries, and an environment's
    /// record costs one block of the heap (`ENVIRONMENT_BYTES`).
    environments: BTreeMap<EnvironmentId, Box<Environment>>,
    capabilities: CapabilitySpace<Object>,
    mappings: MappingIndex,
    /// Who owns each slot of the CPU.
    slices: SliceVector,
    /// Environments whose root capability is gone, to be destroyed.
    doomed: Doomed,
    next_id: u32,
    first: Option<EnvironmentId>,
    /// The first environment's exit status, once it has exited.
    first_exit_status: Option<u64>,
    /// The scheduling decision's own state: slot started, yield, donation
    /// (`kernel-core/src/scheduler.rs`).
    scheduler: Scheduler,
    /// Who may be in the best-effort pool, in the order of their turns.
    pool: pool::PoolTurns,
    /// The deadlines of open revocation requests, earliest first: the
    /// taking of expired ones looks only at those (`revocation.rs`).
    revocation_deadlines: Timers,
    /// The earliest of them (`u64::MAX`: none), or the next tick while a
    /// take is under way, so the trap path looks only when one may be due.
    earliest_deadline: u64,
    /// The timers of `Wait`s, earliest first: a slot start looks only at
    /// those that expired (`waiting.rs`).
    timers: Timers,
    /// Addresses, bindings and filters.
    net: net::Network,
    /// `EnvironmentNext` listings so far, numbering each for `family_mark`,
    /// and the top the last one listed the family of: whether an environment
    /// is at or below a top never changes while it lives (its creators do
    /// not change, and a family goes with its top), so listings of the same
    /// top share one number and every verdict left by the ones before.
    family_listings: u64,
    family_listing_top: Option<EnvironmentId>,
}

pub static SYSTEM: Mutex<System> = Mutex::new(System::new());

impl System {
    const fn new() -> Self {
        Self {
            environments: BTreeMap::new(),
            capabilities: CapabilitySpace::new(),
            mappings: MappingIndex::new(),
            slices: SliceVector::empty(),
            doomed: Doomed::EMPTY,
            next_id: 1,
            first: None,
            first_exit_status: None,
            scheduler: Scheduler::new(),
            pool: pool::PoolTurns::EMPTY,
            revocation_deadlines: Timers::new(),
            earliest_deadline: u64::MAX,
            timers: Timers::new(),
            net: net::Network::new(),
            family_listings: 0,
            family_listing_top: None,
        }
    }

    fn environment(&mut self, id: EnvironmentId) -> &mut Environment {
        self.environments
            .get_mut(&id)
            .expect("capability names a live environment")
    }

    /// Ends what `id` was blocked in ([`Environment::wake`]); it may run
    /// again, so it joins the best-effort pool's line (`pool.rs`). Every
    /// wake goes through here: one that skipped the line would leave an
    /// environment without slots runnable and never chosen.
    fn wake(&mut self, id: EnvironmentId, results: [u64; 3]) {
        self.environment(id).wake(results);
        self.may_join_pool(id);
    }

    /// `id` may have joined the best-effort pool: it was woken or started,
    /// or a slot it held was freed (`pool.rs`).
    fn may_join_pool(&mut self, id: EnvironmentId) {
        self.pool.join(&mut self.environments, id);
    }

    /// Asks for the running environment to give up the CPU at the end of this trap.
    pub fn request_yield(&mut self) {
        self.scheduler.yield_requested = true;
    }

    /// Whether `range` of `caller`'s memory is mapped writable for it.
    pub fn check_user_writable(
        &mut self,
        caller: EnvironmentId,
        range: user_memory::UserRange,
    ) -> Result<(), Error> {
        range.check_writable(&self.environment(caller).space)
    }

    /// Whether `range` of `caller`'s memory is mapped readable for it.
    pub fn check_user_readable(
        &mut self,
        caller: EnvironmentId,
        range: user_memory::UserRange,
    ) -> Result<(), Error> {
        range.check_readable(&self.environment(caller).space)
    }

    /// Reads `range` of `caller`'s memory into `out`.
    pub fn read_user(
        &mut self,
        caller: EnvironmentId,
        range: user_memory::UserRange,
        out: &mut [u8],
    ) -> Result<(), Error> {
        range.read(&self.environment(caller).space, out)
    }

    /// Copies `bytes` into `range` of `caller`'s memory.
    pub fn write_user(
        &mut self,
        caller: EnvironmentId,
        range: user_memory::UserRange,
        bytes: &[u8],
    ) -> Result<(), Error> {
        range.write(&self.environment(caller).space, bytes)
    }

    /// One account of the environment `target` names (needs `CONTROL`).
    pub fn account(
        &mut self,
        caller: EnvironmentId,
        target: Handle,
        account: EnvironmentAccount,
    ) -> Result<u64, Error> {
        let target = self.target(caller, target, Rights::CONTROL)?;
        Ok(self.account_of(&self.environments[&target], account))
    }

    /// What `kind` takes from the object of the capability `handle` names in
    /// `caller`'s table, and the capability's node: `WrongKind` if `kind`
    /// finds nothing there, `MissingRights` if the capability lacks `needed`.
    fn capability_as<T>(
        &self,
        caller: EnvironmentId,
        handle: Handle,
        needed: Rights,
        kind: impl FnOnce(Object) -> Option<T>,
    ) -> Result<(T, NodeId), Error> {
        let capability = self.capabilities.lookup(caller, handle)?;
        let value = kind(*capability.object).ok_or(Error::WrongKind)?;
        if !capability.rights.contains(needed) {
            return Err(Error::MissingRights);
        }
        Ok((value, capability.node))
    }

    /// The environment `handle` (in `caller`'s table) names, if it is an
    /// environment capability with `needed` rights.
    pub fn target(
        &self,
        caller: EnvironmentId,
        handle: Handle,
        needed: Rights,
    ) -> Result<EnvironmentId, Error> {
        let (id, _) = self.capability_as(caller, handle, needed, |object| match object {
            Object::Environment(id) => Some(id),
            _ => None,
        })?;
        Ok(id)
    }

    /// As [`Self::target`], for a call that makes or changes something in
    /// the environment (maps, unmaps or protects a page, binds a slot) or
    /// sets it going: `InvalidState` if it is being taken down
    /// (`teardown.rs`).
    pub fn target_to_build_in(
        &self,
        caller: EnvironmentId,
        handle: Handle,
        needed: Rights,
    ) -> Result<EnvironmentId, Error> {
        let id = self.target(caller, handle, needed)?;
        if self.being_taken_down(id) {
            return Err(Error::InvalidState);
        }
        Ok(id)
    }

    /// Runs a capability-space operation that may remove capabilities, and
    /// carries out what each removal means: pages mapped through it are
    /// unmapped everywhere, a root frame capability's frames go back to the
    /// allocator, a root environment capability's environment is doomed.
    /// `forced` says the kernel is taking frames back after a deadline.
    ///
    /// Doomed environments are left for `reap`, which the caller runs: a
    /// removal inside `reap` must not start another `reap`, or a long chain
    /// of environments would recurse as deep as it is long.
    fn removing<T>(
        &mut self,
        forced: bool,
        operation: impl FnOnce(&mut CapabilitySpace<Object>, &mut Undo<'_, '_>) -> T,
    ) -> T {
        self.removing_within(forced, None, operation)
    }

    /// [`Self::removing`] for an operation that works a share at a time:
    /// `go_on` says whether its share allows more.
    fn removing_within<T>(
        &mut self,
        forced: bool,
        go_on: Option<&mut dyn FnMut() -> bool>,
        operation: impl FnOnce(&mut CapabilitySpace<Object>, &mut Undo<'_, '_>) -> T,
    ) -> T {
        let System {
            capabilities,
            environments,
            mappings,
            doomed,
            slices,
            net,
            pool,
            ..
        } = self;
        let mut undo = Undo {
            environments,
            mappings,
            doomed,
            slices,
            net,
            pool,
            forced,
            go_on,
        };
        operation(capabilities, &mut undo)
    }

    /// The page-aligned user addresses `address .. + pages` pages, checked.
    fn check_user_pages(address: u64, pages: u64) -> Result<(), Error> {
        use exo_abi::layout::{USER_MAP_END, is_canonical};
        if !is_canonical(address) {
            return Err(Error::NonCanonicalAddress);
        }
        if !address.is_multiple_of(FRAME_SIZE) {
            return Err(Error::Misaligned);
        }
        match address.checked_add(pages * FRAME_SIZE) {
            Some(end) if end <= USER_MAP_END => Ok(()),
            _ => Err(Error::KernelAddress),
        }
    }

    /// Whether a capability with `rights` allows a mapping with `flags`.
    fn check_map_rights(rights: Rights, flags: MapFlags) -> Result<(), Error> {
        if !rights.contains(Rights::MAP) {
            return Err(Error::NotMappable);
        }
        if !rights.contains(Rights::READ) {
            return Err(Error::MissingRights);
        }
        if flags.contains(MapFlags::WRITE) && !rights.contains(Rights::WRITE) {
            return Err(Error::ReadOnly);
        }
        if flags.contains(MapFlags::EXECUTE) && !rights.contains(Rights::EXECUTE) {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }
}

/// The environment running on this CPU, if any.
fn current() -> Option<EnvironmentId> {
    match cpu::current().environment() {
        0 => None,
        id => Some(EnvironmentId(id)),
    }
}

/// What removing a capability means for the rest of the system (`System::removing`).
struct Undo<'a, 'g> {
    environments: &'a mut BTreeMap<EnvironmentId, Box<Environment>>,
    mappings: &'a mut MappingIndex,
    doomed: &'a mut Doomed,
    slices: &'a mut SliceVector,
    net: &'a mut net::Network,
    pool: &'a mut pool::PoolTurns,
    /// The kernel is taking frames back after a deadline.
    forced: bool,
    /// The share of a call that works a share at a time (`teardown.rs`).
    go_on: Option<&'g mut dyn FnMut() -> bool>,
}

impl Undo<'_, '_> {
    /// Forgets one filter attached through `node`, a binding's capability;
    /// false if none was left.
    fn forget_a_filter_through(&mut self, node: NodeId) -> bool {
        let environments = &mut *self.environments;
        self.net.forget_a_filter_through(node, &mut |payer, bytes| {
            refund_network_object(environments, payer, bytes)
        })
    }

    /// Unmaps one run of pages mapped through `node`; false if none was left.
    fn unmap_run(&mut self, node: NodeId) -> bool {
        let environments = &mut *self.environments;
        self.mappings.take_run(node, |id, page| {
            if let Some(environment) = environments.get_mut(&id) {
                let _ = environment.space.unmap(page);
                environment.kernel_bytes.uncharge(MAPPING_RECORD_BYTES);
            }
        })
    }
}

/// Gives `payer` back the charge, `bytes`, for a network record that went.
fn refund_network_object(
    environments: &mut BTreeMap<EnvironmentId, Box<Environment>>,
    payer: EnvironmentId,
    bytes: u64,
) {
    if let Some(payer) = environments.get_mut(&payer) {
        payer.kernel_bytes.uncharge(bytes);
    }
}

impl Removal<Object> for Undo<'_, '_> {
    /// The pages mapped through `leaf` go a run at a time, and the filters
    /// attached through it one at a time, within the share: one capability
    /// can be mapped at 65,536 pages, and a binding's feed a thousand filters.
    fn prepare(&mut self, leaf: NodeId) -> bool {
        while self.unmap_run(leaf) {
            if !self.go_on() {
                return false;
            }
        }
        // So do the filters attached through it: one binding can feed thousands.
        while self.forget_a_filter_through(leaf) {
            if !self.go_on() {
                return false;
            }
        }
        true
    }

    fn removed(&mut self, removed: Removed<Object>) {
        // Its pages were unmapped by `prepare`, which every removal asks first.
        let environments = &mut *self.environments;
        self.net.removed(
            removed.object,
            removed.node,
            removed.owner,
            &mut |payer, bytes| refund_network_object(environments, payer, bytes),
        );
        if let Some(owner) = environments.get_mut(&removed.owner) {
            owner.capability_removed();
        }
        if !removed.was_root {
            return;
        }
        match removed.object {
            Object::Frame { first, order } => {
                lent_frames::free(first * FRAME_SIZE, u32::from(order))
                    .expect("a root frame capability owns its frames");
                if let Some(owner) = environments.get_mut(&removed.owner) {
                    let count = 1 << order;
                    owner.frames.uncharge(count);
                    owner.frames_held = owner.frames_held.saturating_sub(count);
                    if self.forced {
                        owner.frames_taken_by_force += count;
                    } else {
                        owner.check_revocation_met();
                    }
                }
            }
            Object::Environment(id) => {
                if self.doomed.push(environments, id) {
                    println!(
                        "environment {} destroyed: its root capability was removed",
                        id.0
                    );
                }
            }
            Object::Slot(slot) => {
                // Freed now, unless its owner's destruction freed it already.
                if let Some((owner, payer)) = self.slices.free(slot) {
                    if let Some(environment) = environments.get_mut(&owner) {
                        environment.slots_held -= 1;
                        self.pool.join(environments, owner);
                    }
                    if let Some(payer) = environments.get_mut(&payer) {
                        payer.slots.uncharge(1);
                    }
                }
            }
            Object::Endpoint { .. }
            | Object::Notification { .. }
            | Object::Nic
            | Object::Address(_)
            | Object::Binding(_)
            | Object::Filter { .. } => {}
        }
    }

    fn go_on(&mut self) -> bool {
        self.go_on.as_mut().is_none_or(|go_on| go_on())
    }
}
