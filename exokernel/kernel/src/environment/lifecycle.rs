//! Creating, starting and destroying environments.
//!
//! A new environment is empty: kernel half shared, nothing of its own mapped
//! (only the page-table view and the kernel's window), one capability (its
//! own, in slot 0). Its creator holds the root capability
//! for it and lends it `quota` frames of its own quota. An environment lives
//! as long as its root capability: destroying it — by `EnvironmentDestroy`,
//! `Exit`, a fatal fault, or removal of that capability — returns every
//! frame and capability it held, and destroys the environments it created.

use exo_abi::counters::Counter;
use exo_abi::layout::{FACTS, USER_CODE_SELECTOR, USER_DATA_SELECTOR};
use exo_abi::mapping::MapFlags;
use exo_abi::{Error, Handle, Rights};

use super::address_space::AddressSpace;
use exo_abi::handle::TABLE_CAPACITY;

use super::{Environment, EnvironmentId, MAX_ENVIRONMENTS, State, System};
use crate::arch::cpu;
use crate::arch::trap::{RESUME_VECTOR, TrapFrame};
use crate::memory::{frames, paging};
use crate::println;

/// RFLAGS for user code: interrupts enabled (bit 9), reserved bit 1.
pub const USER_RFLAGS: u64 = 0x202;

impl System {
    /// Creates an empty environment. With a `creator`, the root capability
    /// goes into the creator's table and the creator lends `quota` frames;
    /// without one (the first environment) it holds its own root.
    /// Returns the new id and the root capability's handle.
    pub fn create_environment(
        &mut self,
        creator: Option<EnvironmentId>,
        quota: u64,
    ) -> Result<(EnvironmentId, Handle), Error> {
        if quota == 0 {
            return Err(Error::InvalidArgument);
        }
        if self.environments.len() >= MAX_ENVIRONMENTS || self.next_id == u32::MAX {
            return Err(Error::TableFull);
        }
        if let Some(creator) = creator {
            self.environment(creator).charge(quota)?;
        }
        let uncharge_creator = |system: &mut System| {
            if let Some(creator) = creator {
                system.environment(creator).frames_charged -= quota;
            }
        };
        let (space, facts) = match new_address_space(quota) {
            Ok(made) => made,
            Err(error) => {
                uncharge_creator(self);
                return Err(error);
            }
        };
        let id = EnvironmentId(self.next_id);
        let holder = creator.unwrap_or(id);
        let root = match self.make_capabilities(id, holder) {
            Ok(root) => root,
            Err(error) => {
                space.destroy();
                frames::free(facts).expect("facts frame was allocated");
                uncharge_creator(self);
                return Err(error);
            }
        };
        let root_node = self
            .capabilities
            .lookup(holder, root)
            .expect("just inserted")
            .node;
        self.next_id += 1;
        // Charged: its page tables and its facts page.
        let charged = space.table_frames() + 1;
        self.environments.insert(
            id,
            Environment {
                id,
                parent: creator,
                state: State::Created,
                space,
                saved: TrapFrame::default(),
                upcall: None,
                root: root_node,
                frame_quota: quota,
                frames_charged: charged,
                frames_taken_by_force: 0,
                frames_given_back: 0,
                revocation: None,
                facts,
                slots_held: 0,
                slots_run: 0,
                serving: None,
                pending_signals: 0,
            },
        );
        cpu::current().count(Counter::EnvironmentsCreated);
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
        Ok(())
    }

    /// Destroys `id` and, transitively, every environment whose root
    /// capability it held; prints why.
    pub fn destroy(&mut self, id: EnvironmentId, reason: &str) {
        if self.environments.contains_key(&id) {
            println!("environment {} destroyed: {reason}", id.0);
            self.doomed.push(id);
            self.reap();
        }
    }

    /// `id` ends itself with `status`.
    pub fn exit(&mut self, id: EnvironmentId, status: u64) {
        if Some(id) == self.first {
            self.first_exit_status = Some(status);
        }
        // A normal end is the program's business: the log, not the console.
        log::debug!("environment {} exited with status {status}", id.0);
        self.doomed.push(id);
        self.reap();
    }

    /// Destroys every doomed environment. Removing what one held may doom
    /// more (its children); the loop takes them in turn, never recursing.
    pub(super) fn reap(&mut self) {
        while let Some(id) = self.doomed.pop() {
            let Some(environment) = self.environments.remove(&id) else {
                continue; // already gone: doomed twice
            };
            // Its slots are free again (the capabilities naming them are
            // stale by generation), and whoever is blocked calling it is told.
            self.slices.release_all(id);
            if self.donation == Some(id) {
                self.donation = None;
            }
            for waiting in self.environments.values_mut() {
                if waiting.state == (State::Calling { server: id }) {
                    waiting.wake([Error::PeerGone.code(), 0, 0]);
                }
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
            // Pages that others' capabilities mapped into it: the records go;
            // the page tables themselves are freed next.
            self.mappings.take_environment(id);
            if environment.space.is_loaded() {
                paging::load_kernel_tables();
            }
            environment.space.destroy();
            frames::free(environment.facts).expect("facts frame was allocated");
            if let Some(parent) = environment
                .parent
                .and_then(|parent| self.environments.get_mut(&parent))
            {
                parent.frames_charged -= environment.frame_quota;
            }
            cpu::current().count(Counter::EnvironmentsDestroyed);
        }
    }
}

/// A fresh address space with a facts page (allocated and mapped read-only
/// at `FACTS`) whose page tables fit in `quota` frames with the page itself.
/// Returns the space and the facts page's physical address.
fn new_address_space(quota: u64) -> Result<(AddressSpace, u64), Error> {
    let mut space = AddressSpace::new()?;
    let facts = match frames::allocate_zeroed() {
        Ok(facts) => facts,
        Err(_) => {
            space.destroy();
            return Err(Error::OutOfMemory);
        }
    };
    let budget = quota.saturating_sub(space.table_frames() + 1);
    if let Err(error) = space.map(FACTS, facts, MapFlags::empty(), budget) {
        space.destroy();
        frames::free(facts).expect("just allocated");
        return Err(error);
    }
    Ok((space, facts))
}
