//! Work a system call does a share at a time: revoking, dropping, and taking
//! a family of environments down (`EnvironmentDestroy`, `Exit`).
//!
//! The kernel runs with interrupts off, so a call that did all its work at
//! once would keep the CPU from whoever holds the next slots for as long as
//! the work lasts, and these calls do work linear in what the caller built:
//! a tree of 100,000 capabilities, a fan of thousands of children. Instead
//! each works for a [`share`] of a tick; if work is left, `syscalls.rs` puts
//! the caller's rip back on its `syscall` instruction and returns with its
//! registers as they were. The clock comes in, the slot may end, and when
//! the caller runs again the same call goes on where it stopped — in the
//! caller's own time — and answers as it would have done all at once. Where
//! it stopped is kept in the capability tree and the records themselves, so
//! a call taken again needs no memory of its own (seL4's revoke is
//! preemptible the same way).
//!
//! A family comes down deepest first. Its top is held still (it runs no
//! more) and its table emptied slot by slot, each capability with all that
//! was derived from it; a child's root capability is not removed but
//! descended into: the child is held still and emptied in turn, and once its
//! table is empty the capabilities that name it go, its root last, which
//! destroys it — cheaply, for it holds nothing any more.

use exo_abi::{Error, Handle, Rights};
use exo_kernel_core::caps::{NodeId, Progress};

use super::kernel_memory::MAPPING_RECORD_BYTES;
use super::{EnvironmentId, Object, System};
use crate::arch::cpu;
use crate::time;

/// Entries of page tables one step of a teardown looks at: one table's.
const STEP_ENTRIES: u64 = 512;

/// How a family's top ends once its family is gone.
#[derive(Clone, Copy, Debug)]
pub enum Ending {
    /// By `EnvironmentDestroy` from this environment.
    DestroyedBy(EnvironmentId),
    /// By its own `Exit` with this status.
    Exited(u64),
}

/// What a teardown does next in the member it is emptying.
enum Next {
    /// Empty this child first: its root capability is in the member's table.
    Descend(EnvironmentId),
    /// Remove this capability with everything derived from it.
    Remove(NodeId),
    /// The member's table is empty.
    Emptied,
}

/// A share of work for one system call: says whether to go on, which it
/// may until a quarter of a tick has passed since it was made.
pub fn share() -> impl FnMut() -> bool {
    let end = cpu::rdtsc() + time::tsc_per_tick() / 4;
    move || cpu::rdtsc() < end
}

impl System {
    /// `CapabilityRevoke`, a share at a time.
    pub fn revoke(
        &mut self,
        caller: EnvironmentId,
        handle: Handle,
        go_on: &mut dyn FnMut() -> bool,
    ) -> Result<Progress, Error> {
        let result = self.removing_within(false, Some(&mut *go_on), |capabilities, undo| {
            capabilities.revoke_some(caller, handle, undo)
        });
        self.reap();
        Ok(self.tidy_after(result?, go_on))
    }

    /// Once a removal is done, gives back the chunks of the capability
    /// arena it left vacant, a share at a time (a large tree leaves hundreds:
    /// giving them all back at once took 14 ticks of the test clock);
    /// `Stopped` if some are left.
    fn tidy_after(&mut self, progress: Progress, go_on: &mut dyn FnMut() -> bool) -> Progress {
        if progress == Progress::Stopped {
            return progress;
        }
        while self.capabilities.tidy() {
            if !go_on() {
                return Progress::Stopped;
            }
        }
        Progress::Done
    }

    /// `CapabilityDrop`, a share at a time. Dropping the root capability of
    /// an environment destroys it: its family comes down as in
    /// `EnvironmentDestroy`.
    pub fn drop_capability(
        &mut self,
        caller: EnvironmentId,
        handle: Handle,
        go_on: &mut dyn FnMut() -> bool,
    ) -> Result<Progress, Error> {
        let capability = self.capabilities.lookup(caller, handle)?;
        let is_root = self
            .capabilities
            .node(capability.node)
            .is_some_and(|node| node.parent.is_none());
        let progress = if let (Object::Environment(target), true) = (*capability.object, is_root) {
            self.take_down(caller, target, Ending::DestroyedBy(caller), go_on)
        } else {
            let result = self.removing_within(false, Some(&mut *go_on), |capabilities, undo| {
                capabilities.drop_some(caller, handle, undo)
            });
            self.reap();
            result?
        };
        // Done, the handle names nothing: a call taken again could not go
        // on with the tidying, which the ticks finish (`events.rs`).
        let _ = self.tidy_after(progress, go_on);
        Ok(progress)
    }

    /// `EnvironmentDestroy`, a share at a time: `handle` names the
    /// environment to destroy (with `Rights::DESTROY`), or, when the
    /// caller's last such call stopped part-way naming the same handle, the
    /// environment that call was destroying.
    pub fn destroy_call(
        &mut self,
        caller: EnvironmentId,
        handle: Handle,
        go_on: &mut dyn FnMut() -> bool,
    ) -> Result<Progress, Error> {
        let target = match self.environment(caller).finishing.take() {
            Some((named, target)) if named == handle => target,
            _ => self.target(caller, handle, Rights::DESTROY)?,
        };
        let progress = self.take_down(caller, target, Ending::DestroyedBy(caller), go_on);
        let progress = self.tidy_after(progress, go_on);
        if progress == Progress::Stopped
            && let Some(caller) = self.environments.get_mut(&caller)
        {
            caller.finishing = Some((handle, target));
        }
        Ok(progress)
    }

    /// `Exit`, a share at a time: `id`'s family comes down, then `id`.
    pub fn exit(
        &mut self,
        id: EnvironmentId,
        status: u64,
        go_on: &mut dyn FnMut() -> bool,
    ) -> Progress {
        self.take_down(id, id, Ending::Exited(status), go_on)
    }

    /// A share of taking `target` and its family down for `caller`, deepest
    /// first; `Done` once `target` is gone (or was gone already).
    fn take_down(
        &mut self,
        caller: EnvironmentId,
        target: EnvironmentId,
        ending: Ending,
        go_on: &mut dyn FnMut() -> bool,
    ) -> Progress {
        let Some(top) = self.environments.get(&target) else {
            return Progress::Done;
        };
        // Asked once, at the first share: a family never moves.
        if top.teardown_at.is_none() && self.is_below(caller, target) {
            // The caller would go with the family before the call is done,
            // and nobody would go on with it: all at once, as a fault does.
            self.end(target, ending);
            return Progress::Done;
        }
        let mut current = top
            .teardown_at
            .filter(|at| self.environments.contains_key(at))
            .unwrap_or(target);
        self.environment(target).teardown_at = Some(current);
        loop {
            if current != caller {
                self.environment(current).frozen = true;
            }
            match self.next_to_remove(current, current == caller) {
                Next::Descend(child) => {
                    current = child;
                    self.environment(target).teardown_at = Some(child);
                    continue; // nothing done yet: no reason to stop
                }
                Next::Remove(node) => {
                    if self.remove_some(node, go_on) == Progress::Stopped {
                        return Progress::Stopped;
                    }
                }
                Next::Emptied => {
                    // The pages others mapped in it (the caller's own stay:
                    // its `syscall` may run from one), what names it, a
                    // share at a time; then it goes.
                    if current != caller && self.take_apart(current, go_on) == Progress::Stopped {
                        return Progress::Stopped;
                    }
                    let root = self.environment(current).root;
                    if current == target {
                        // Its copies first; its root goes with its end.
                        while let Some(copy) = self.capabilities.first_child(root) {
                            if self.remove_some(copy, go_on) == Progress::Stopped {
                                return Progress::Stopped;
                            }
                        }
                        self.end(target, ending);
                        return Progress::Done;
                    }
                    // Its copies, then its root, which destroys it. The root
                    // is in its creator's table, where the walk came down from.
                    let parent = self.environment(current).parent;
                    if self.remove_some(root, go_on) == Progress::Stopped {
                        return Progress::Stopped;
                    }
                    current = parent.expect("a member below the top has a creator");
                    self.environment(target).teardown_at = Some(current);
                }
            }
            if !go_on() {
                return Progress::Stopped;
            }
        }
    }

    /// A share of removing `node` with everything derived from it, itself
    /// last; whoever that dooms is reaped.
    fn remove_some(&mut self, node: NodeId, go_on: &mut dyn FnMut() -> bool) -> Progress {
        let progress = self.removing_within(false, Some(go_on), |capabilities, undo| {
            capabilities.remove_node_some(node, undo)
        });
        self.reap();
        progress
    }

    /// The next thing to remove from `member`'s table, from the first slot
    /// not yet emptied on. With `children_only` (the member is the caller,
    /// taking itself down), only its children: a call taken again runs its
    /// `syscall` instruction from the caller's own pages, so they stay
    /// until the member's end takes what is left at once — at most a
    /// table's 4,096 capabilities.
    fn next_to_remove(&mut self, member: EnvironmentId, children_only: bool) -> Next {
        let slots = self.capabilities.table_slots(member);
        let mut slot = self.environment(member).teardown_slot;
        let mut next = Next::Emptied;
        while slot < slots {
            if let Some(capability) = self.capabilities.capability_at(member, slot) {
                let node = capability.node;
                let is_root = self
                    .capabilities
                    .node(node)
                    .is_some_and(|node| node.parent.is_none());
                next = match *capability.object {
                    // The first environment holds its own root: it goes
                    // last, as the member's end (`end`).
                    Object::Environment(child) if is_root && child == member => {
                        slot += 1;
                        continue;
                    }
                    Object::Environment(child) if is_root => Next::Descend(child),
                    _ if children_only => {
                        slot += 1;
                        continue;
                    }
                    _ => Next::Remove(node),
                };
                break;
            }
            slot += 1;
        }
        self.environment(member).teardown_slot = slot;
        next
    }

    /// A share of taking `member`'s address space apart: the pages others
    /// mapped in it through their capabilities (its own went with its table)
    /// are forgotten, a run at a time, and its page tables below the top one
    /// freed, in one walk from the address where the last share stopped,
    /// [`STEP_ENTRIES`] entries a step. A member may have made thousands of
    /// tables, each paid for with a frame; what is left for its end is the
    /// top table alone.
    fn take_apart(&mut self, member: EnvironmentId, go_on: &mut dyn FnMut() -> bool) -> Progress {
        let environment = self
            .environments
            .get_mut(&member)
            .expect("a member being emptied exists");
        let (mappings, capabilities) = (&mut self.mappings, &self.capabilities);
        let mut forgotten = 0;
        let progress = loop {
            let paused = environment.space.take_apart(
                environment.teardown_address,
                STEP_ENTRIES,
                &mut |page, tag| {
                    // The kernel's own pages (the facts page) have no record;
                    // a run's first page forgets the whole run.
                    if let Some(node) = mappings.node_of(capabilities, member, page, tag)
                        && let Some((_, pages)) = mappings.remove_run_holding(node, member, page)
                    {
                        forgotten += pages;
                    }
                },
            );
            let Some(at) = paused else {
                break Progress::Done;
            };
            environment.teardown_address = at;
            if !go_on() {
                break Progress::Stopped;
            }
        };
        environment
            .kernel_bytes
            .uncharge(forgotten * MAPPING_RECORD_BYTES);
        progress
    }

    /// Whether `id` is a strict descendant of `top` (created by it, or by one
    /// of its descendants).
    fn is_below(&self, id: EnvironmentId, top: EnvironmentId) -> bool {
        let mut at = self.environments.get(&id).and_then(|e| e.parent);
        while let Some(ancestor) = at {
            if ancestor == top {
                return true;
            }
            at = self.environments.get(&ancestor).and_then(|e| e.parent);
        }
        false
    }

    /// Ends `target` as `ending` says: doomed, reported and reaped.
    fn end(&mut self, target: EnvironmentId, ending: Ending) {
        match ending {
            Ending::DestroyedBy(by) => {
                self.destroy(target, format_args!("destroyed by environment {}", by.0));
            }
            Ending::Exited(status) => self.exited(target, status),
        }
    }
}
