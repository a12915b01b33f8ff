//! Creating, starting and destroying environments.
//!
//! A new environment is empty: kernel half shared, nothing of its own mapped
//! (only the page-table view and the kernel's window), one capability (its
//! own, in slot 0). Its creator holds the root capability
//! for it and lends it `quota` frames of its own quota. An environment lives
//! as long as its root capability: destroying it — by `EnvironmentDestroy`,
//! `Exit`, a fatal fault, or removal of that capability — returns every
//! frame and capability it held, and destroys the environments it created.

use alloc::boxed::Box;
use exo_abi::counters::Counter;
use exo_abi::layout::{FACTS, USER_CODE_SELECTOR, USER_DATA_SELECTOR};
use exo_abi::mapping::MapFlags;
use exo_abi::trace::Kind;
use exo_abi::{Error, Handle, Rights};

use crate::memory::address_space::{AddressSpace, FRESH_TABLE_FRAMES};
use exo_abi::handle::TABLE_CAPACITY;

use exo_abi::syscall::TABLE_GROWTH_BYTES;
use exo_kernel_core::accounts::Account;
use exo_kernel_core::ancestry;

use super::inspect::Usage;
use super::kernel_memory::{CAPABILITY_BYTES, ENVIRONMENT_BYTES};
use super::{Environment, EnvironmentId, Lend, State, System};
use crate::arch::cpu;
use crate::arch::trap::{RESUME_VECTOR, TrapFrame};
use crate::memory::{lent_frames, paging};
use crate::{println, trace};

/// RFLAGS for user code: interrupts enabled (bit 9), reserved bit 1.
pub const USER_RFLAGS: u64 = 0x202;

impl System {
    /// Creates an empty environment. With a `creator`, the root capability
    /// goes into the creator's table and the creator lends it `lend` from its
    /// own accounts; without one (the first environment) it holds its own
    /// root and `lend` is what the kernel gives it. Returns the new id and
    /// the root capability's handle. On failure nothing is charged or left.
    pub fn create_environment(
        &mut self,
        creator: Option<EnvironmentId>,
        lend: Lend,
    ) -> Result<(EnvironmentId, Handle), Error> {
        if lend.frames == 0 {
            return Err(Error::InvalidArgument);
        }
        // How many may exist is bounded by what each costs (frames and
        // kernel memory, lent down from the first environment), not by a
        // table of the kernel's that one environment could fill for all.
        if self.next_id == u32::MAX {
            return Err(Error::TableFull);
        }
        if let Some(creator) = creator {
            self.lend(creator, lend)?;
        }
        let made = self.make_environment(creator, lend);
        if made.is_err()
            && let Some(creator) = creator
        {
            self.give_back(creator, lend);
        }
        made
    }

    /// Charges what `lend` lends to `creator`'s accounts, all or nothing.
    fn lend(&mut self, creator: EnvironmentId, lend: Lend) -> Result<(), Error> {
        let environment = self.environment(creator);
        environment.charge(lend.frames)?;
        if let Err(error) = environment.charge_kernel(lend.kernel_bytes) {
            environment.frames.uncharge(lend.frames);
            return Err(error);
        }
        if environment.slots.charge(lend.slots).is_err() {
            environment.frames.uncharge(lend.frames);
            environment.kernel_bytes.uncharge(lend.kernel_bytes);
            return Err(Error::SlotQuotaExceeded);
        }
        environment.frames_lent += lend.frames;
        Ok(())
    }

    /// Returns what `lend` lent to `creator`'s accounts.
    fn give_back(&mut self, creator: EnvironmentId, lend: Lend) {
        if let Some(environment) = self.environments.get_mut(&creator) {
            environment.frames.uncharge(lend.frames);
            environment.kernel_bytes.uncharge(lend.kernel_bytes);
            environment.slots.uncharge(lend.slots);
            environment.frames_lent = environment.frames_lent.saturating_sub(lend.frames);
        }
    }

    /// The environment itself, once its creator has paid: address space,
    /// facts page, capabilities, record.
    fn make_environment(
        &mut self,
        creator: Option<EnvironmentId>,
        lend: Lend,
    ) -> Result<(EnvironmentId, Handle), Error> {
        // Its own fixed costs come out of what it was lent: its page tables
        // and facts page in frames (too few is `QuotaExceeded`, whatever the
        // allowance); its record and its first capability (slot 0, itself)
        // in kernel memory.
        if lend.frames < FRESH_TABLE_FRAMES + 1 {
            return Err(Error::QuotaExceeded);
        }
        let own_kernel_bytes = ENVIRONMENT_BYTES + CAPABILITY_BYTES + TABLE_GROWTH_BYTES;
        if own_kernel_bytes > lend.kernel_bytes {
            return Err(Error::KernelMemoryExceeded);
        }
        if !crate::memory::heap::has_room() {
            return Err(Error::OutOfMemory);
        }
        let (space, facts) = new_address_space(lend.frames)?;
        let id = EnvironmentId(self.next_id);
        let holder = creator.unwrap_or(id);
        // The root capability sits in the holder's table: a creator pays for it.
        let holder_charge = match creator {
            Some(_) => self.capability_cost(holder),
            None => 0,
        };
        if let Err(error) = self.charge_kernel_if_exists(holder, holder_charge) {
            space.destroy();
            lent_frames::free(facts, 0).expect("facts frame was allocated");
            return Err(error);
        }
        let root = match self.make_capabilities(id, holder) {
            Ok(root) => root,
            Err(error) => {
                space.destroy();
                lent_frames::free(facts, 0).expect("facts frame was allocated");
                self.uncharge_kernel(holder, holder_charge);
                return Err(error);
            }
        };
        let root_node = self
            .capabilities
            .lookup(holder, root)
            .expect("just inserted")
            .node;
        self.next_id += 1;
        let mut frames = Account::with_limit(lend.frames);
        frames
            .charge(space.table_frames() + 1)
            .expect("new_address_space kept within the quota");
        let mut kernel_bytes = Account::with_limit(lend.kernel_bytes);
        kernel_bytes
            .charge(own_kernel_bytes)
            .expect("checked above");
        if creator.is_none() {
            // The first environment holds its own root capability too.
            let _ = kernel_bytes.charge(CAPABILITY_BYTES);
        }
        let depth = creator
            .and_then(|creator| self.environments.get(&creator))
            .map_or(0, |creator| creator.depth.saturating_add(1));
        let jump = creator.map_or(id, |creator| {
            ancestry::jump_for(creator, |id| self.ancestry_link(id))
        });
        self.environments.insert(
            id,
            Box::new(Environment {
                id,
                parent: creator,
                depth,
                jump,
                state: State::Created,
                space,
                saved: TrapFrame::default(),
                segments: cpu::UserSegments::default(),
                upcall: None,
                root: root_node,
                frames,
                kernel_bytes,
                slots: Account::with_limit(lend.slots),
                lent: lend,
                frames_held: 0,
                frames_lent: 0,
                frames_taken_by_force: 0,
                frames_given_back: 0,
                revocation: None,
                revocation_armed: None,
                facts,
                slots_held: 0,
                slots_run: 0,
                serving: None,
                callers: None,
                queued: None,
                previous_caller: None,
                next_caller: None,
                pending_signals: 0,
                timer: None,
                in_pool_line: false,
                pool_previous: None,
                pool_next: None,
                doomed: false,
                doomed_next: None,
                frozen: false,
                teardown_slot: 0,
                teardown_address: 0,
                teardown_at: None,
                ending: None,
                allocating: None,
                finishing: None,
                usage: Usage::default(),
                usage_mark: Usage::default(),
                name: [0; 2],
                family_mark: 0,
                listings: Default::default(),
            }),
        );
        cpu::current().count(Counter::EnvironmentsCreated);
        let creator_id = creator.map_or(0, |creator| creator.0);
        trace::record(Kind::EnvironmentCreate, creator_id, [u64::from(id.0), 0]);
        Ok((id, root))
    }

    /// The new environment's table, its root capability in `holder`'s table
    /// and, when the holder is its creator, its own capability in its slot 0.
    /// On failure nothing is left behind.
    fn make_capabilities(
        &mut self,
        id: EnvironmentId,
        holder: EnvironmentId,
    ) -> Result<Handle, Error> {
        let capabilities = &mut self.capabilities;
        capabilities.create_table(id, TABLE_CAPACITY)?;
        let undo_table =
            |capabilities: &mut exo_kernel_core::caps::CapabilitySpace<super::Object>| {
                // Nothing in the table has effects yet: removal needs no action.
                capabilities.destroy_table(id, &mut |_| {});
            };
        let root = match capabilities.insert_root(
            holder,
            super::Object::Environment(id),
            Rights::ENVIRONMENT,
        ) {
            Ok(root) => root,
            Err(error) => {
                undo_table(capabilities);
                return Err(error);
            }
        };
        if holder != id
            && let Err(error) = capabilities.grant(holder, root, id, Rights::ENVIRONMENT)
        {
            let _ = capabilities.drop_capability(holder, root, &mut |_| {});
            undo_table(capabilities);
            return Err(error);
        }
        Ok(root)
    }

    /// Makes a created environment runnable at `entry` with `rsp = stack`
    /// and `rdi = argument`.
    pub fn start_environment(
        &mut self,
        id: EnvironmentId,
        entry: u64,
        stack: u64,
        argument: u64,
    ) -> Result<(), Error> {
        use exo_abi::layout::{USER_MAP_END, is_canonical};
        for (address, limit) in [(entry, USER_MAP_END - 1), (stack, USER_MAP_END)] {
            if !is_canonical(address) {
                return Err(Error::NonCanonicalAddress);
            }
            if address > limit {
                return Err(Error::KernelAddress);
            }
        }
        let environment = self.environment(id);
        if environment.state != State::Created {
            return Err(Error::InvalidState);
        }
        environment.saved = TrapFrame {
            rip: entry,
            rsp: stack,
            rdi: argument,
            rflags: USER_RFLAGS,
            cs: u64::from(USER_CODE_SELECTOR),
            ss: u64::from(USER_DATA_SELECTOR),
            vector: RESUME_VECTOR,
            ..TrapFrame::default()
        };
        environment.state = State::Runnable;
        self.may_join_pool(id);
        trace::record_here(Kind::EnvironmentStart, [u64::from(id.0), entry]);
        Ok(())
    }

    /// Destroys `id` and, transitively, every environment whose root
    /// capability it held; prints why.
    pub fn destroy(&mut self, id: EnvironmentId, reason: impl core::fmt::Display) {
        if self.doomed.push(&mut self.environments, id) {
            println!("environment {} destroyed: {reason}", id.0);
            self.reap();
        }
    }

    /// `id` ends with `status`, its family already gone (`teardown.rs`).
    pub(super) fn exited(&mut self, id: EnvironmentId, status: u64) {
        if Some(id) == self.first {
            self.first_exit_status = Some(status);
        }
        // A normal end is the program's business: the log, not the console.
        log::debug!("environment {} exited with status {status}", id.0);
        self.doomed.push(&mut self.environments, id);
        self.reap();
    }

    /// `id` ends after a fault, its family already gone (`teardown.rs`);
    /// why was reported when it faulted.
    pub(super) fn faulted(&mut self, id: EnvironmentId) {
        self.doomed.push(&mut self.environments, id);
        self.reap();
    }

    /// Destroys every doomed environment. Removing what one held may doom
    /// more (its children); the loop takes them in turn, never recursing.
    pub(super) fn reap(&mut self) {
        while let Some(environment) = self.doomed.pop(&mut self.environments) {
            let id = environment.id;
            // Its slots are free again (the capabilities naming them are
            // stale by generation), and whoever is blocked calling it is told.
            let environments = &mut self.environments;
            self.slices.release_all(id, |payer| {
                if let Some(payer) = environments.get_mut(&payer) {
                    payer.slots.uncharge(1);
                }
            });
            self.scheduler.forget(id);
            if let Some(deadline) = environment.timer {
                self.timers.disarm(id, deadline);
            }
            if let Some(deadline) = environment.revocation_armed {
                self.revocation_deadlines.disarm(id, deadline);
            }
            if environment.in_pool_line {
                let (before, after) = (environment.pool_previous, environment.pool_next);
                self.pool.unlink(&mut self.environments, id, before, after);
            }
            // Out of the queue it waited in, if it was calling; its own
            // callers, queued or served, are told it is gone.
            if let State::Calling { server } = environment.state
                && environment.queued.is_some()
            {
                self.unqueue(
                    server,
                    id,
                    environment.previous_caller,
                    environment.next_caller,
                );
            }
            // Those are the callers in its queue and the one it was serving:
            // walked from its own records, not by looking at every
            // environment (with thousands alive, destroying many would be
            // quadratic, interrupts off).
            let mut next = environment.callers.map(|(first, _)| first);
            while let Some(caller) = next.and_then(|caller| self.environments.get_mut(&caller)) {
                debug_assert_eq!(caller.state, State::Calling { server: id });
                next = caller.next_caller.take();
                caller.previous_caller = None;
                caller.queued = None;
                let caller = caller.id;
                self.wake(caller, [Error::PeerGone.code(), 0, 0]);
            }
            if let Some(served) = environment
                .serving
                .and_then(|served| self.environments.get_mut(&served))
                .filter(|served| served.state == (State::Calling { server: id }))
            {
                let served = served.id;
                self.wake(served, [Error::PeerGone.code(), 0, 0]);
            }
            if cpu::current().environment() == id.0 {
                cpu::current().set_environment(0);
            }
            // Its root capability (and every copy derived from it), then
            // everything it held. Both may doom further environments.
            self.removing(false, |capabilities, on_removed| {
                capabilities.remove_node(environment.root, on_removed);
                capabilities.destroy_table(id, on_removed);
            });
            // Pages still mapped in it (through others' capabilities: its own
            // are gone with its table): their records go, a run at a time;
            // the page tables themselves are freed next.
            let (mappings, capabilities) = (&mut self.mappings, &self.capabilities);
            environment.space.for_each_mapped(|page, tag| {
                if let Some(node) = mappings.node_of(capabilities, id, page, tag) {
                    let _ = mappings.remove_run_holding(node, id, page);
                }
            });
            if environment.space.is_loaded() {
                paging::load_kernel_tables();
            }
            environment.space.destroy();
            lent_frames::free(environment.facts, 0).expect("facts frame was allocated");
            if let Some(parent) = environment.parent {
                self.give_back(parent, environment.lent);
            }
            cpu::current().count(Counter::EnvironmentsDestroyed);
            trace::record(Kind::EnvironmentDestroy, id.0, [u64::from(id.0), 0]);
        }
    }
}

/// A fresh address space with a facts page (allocated and mapped read-only
/// at `FACTS`) whose page tables fit in `quota` frames with the page itself.
/// Returns the space and the facts page's physical address.
fn new_address_space(quota: u64) -> Result<(AddressSpace, u64), Error> {
    let mut space = AddressSpace::new()?;
    let facts = match lent_frames::allocate(0, None) {
        Ok(facts) => facts,
        Err(_) => {
            space.destroy();
            return Err(Error::OutOfMemory);
        }
    };
    let budget = quota.saturating_sub(space.table_frames() + 1);
    if let Err(error) = space.map(FACTS, facts, MapFlags::empty(), budget, 0) {
        space.destroy();
        lent_frames::free(facts, 0).expect("just allocated");
        return Err(error);
    }
    debug_assert_eq!(space.table_frames(), FRESH_TABLE_FRAMES);
    Ok((space, facts))
}
