//! Work done a share at a time: revoking, dropping, and taking a family of
//! environments down (`EnvironmentDestroy`, `Exit`, a fatal fault).
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
//!
//! An environment that ends by itself — its `Exit`, or a fault it has no
//! handler for — runs no more code of its own: it is *ending*. Whenever the
//! scheduler would run it (its slots, a pool turn, time donated to it),
//! `schedule.rs` works a share of its teardown instead, its own table and
//! address space included. So its end, however much it built, is paid for
//! in its own time, and nobody else waits for it.

use exo_abi::counters::Counter;
use exo_abi::{Error, Handle, Rights};
use exo_kernel_core::ancestry;
use exo_kernel_core::caps::{CapabilitySpace, NodeId, Progress};

use super::kernel_memory::MAPPING_RECORD_BYTES;
use super::{EnvironmentId, Object, State, System, Undo};
use crate::arch::cpu;
use crate::memory::paging;
use crate::{println, time};

/// Entries of page tables one step of a teardown looks at: one table's.
pub(super) const STEP_ENTRIES: u64 = 512;

/// How a family's top ends once its family is gone.
#[derive(Clone, Copy, Debug)]
pub enum Ending {
    /// By `EnvironmentDestroy` from this environment.
    DestroyedBy(EnvironmentId),
    /// By its own `Exit` with this status.
    Exited(u64),
    /// By a fault it could not handle, reported when it happened.
    Faulted,
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
/// may until a quarter of a tick has passed since it was first asked, and
/// no further than the next tick. (A call with little to do never asks, and
/// never reads the clock.)
pub fn share() -> impl FnMut() -> bool {
    share_of(SHARE_PARTS)
}

/// A share is a quarter of a tick.
pub(super) const SHARE_PARTS: u64 = 4;

/// As [`share`], for a `1 / parts` of a tick.
///
/// A share ends at the next tick, however little of it has passed: with
/// interrupts off the tick waits for it, and the slot that tick starts may
/// be someone else's. Shares of a call, of the kernel's chores after it and
/// of an ending, each a quarter of a tick, once ran one after another into
/// the next slot (a witness holding 2 slots of 8 ran 220–230‰ beside
/// `hostile-kernel-work`'s calls, of the 250‰ its slots promise).
pub fn share_of(parts: u64) -> impl FnMut() -> bool {
    let mut end = None;
    move || {
        let now = cpu::rdtsc();
        now < *end
            .get_or_insert_with(|| (now + time::tsc_per_tick() / parts).min(time::next_tick_tsc()))
    }
}

impl System {
    /// `CapabilityRevoke`, a share at a time.
    pub fn revoke(
        &mut self,
        caller: EnvironmentId,
        handle: Handle,
        go_on: &mut dyn FnMut() -> bool,
    ) -> Result<Progress, Error> {
        self.removing_some(&mut *go_on, |capabilities, undo| {
            capabilities.revoke_some(caller, handle, undo)
        })
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
        if let (Object::Environment(target), true) = (*capability.object, is_root) {
            Ok(self.take_down(caller, target, go_on))
        } else {
            self.removing_some(&mut *go_on, |capabilities, undo| {
                capabilities.drop_some(caller, handle, undo)
            })
        }
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
        let progress = self.take_down(caller, target, go_on);
        if progress == Progress::Stopped
            && let Some(caller) = self.environments.get_mut(&caller)
        {
            caller.finishing = Some((handle, target));
        }
        Ok(progress)
    }

    /// `Exit`: `id` ends with `status`, and is taken down in its own time.
    pub fn exit(&mut self, id: EnvironmentId, status: u64) {
        self.begin_ending(id, Ending::Exited(status));
    }

    /// Reports why `id` failed (a fault it could not handle) and ends it: it
    /// is taken down in its own time.
    pub(super) fn fail(&mut self, id: EnvironmentId, reason: impl core::fmt::Display) {
        if self.environment(id).ending.is_none() {
            println!("environment {} destroyed: {reason}", id.0);
        }
        self.begin_ending(id, Ending::Faulted);
    }

    /// `id` ends as `ending` says: it runs no more, and is taken down in its
    /// own time ([`Self::end_a_share`]). The first way an environment ends
    /// is the one that counts. Blocked, it is woken out of what it waited
    /// in (its queued call withdrawn, its timer disarmed): its time must
    /// come for its end to be worked. Its callers wait until it is gone.
    fn begin_ending(&mut self, id: EnvironmentId, ending: Ending) {
        let environment = self.environment(id);
        if environment.ending.is_some() {
            return;
        }
        environment.ending = Some(ending);
        let timer = environment.timer.take();
        let state = environment.state;
        let queued = environment.queued.take().map(|_| {
            let before = environment.previous_caller.take();
            (before, environment.next_caller.take())
        });
        if let Some(deadline) = timer {
            self.timers.disarm(id, deadline);
        }
        match state {
            State::Runnable => return,
            State::Calling { server } => {
                // Being served, it is no longer waiting once woken: the
                // server's reply finds it gone.
                if let Some((before, after)) = queued {
                    self.unqueue(server, id, before, after);
                }
            }
            State::Waiting { .. } | State::Created => {}
        }
        self.wake(id, [Error::PeerGone.code(), 0, 0]);
    }

    /// Whether `id` is being taken down: held still by a teardown, or
    /// ending. Nothing new is made in it — no capability in its table, no
    /// page in its address space, no slot — and it is not started. A
    /// teardown goes through a member's table and address space once, from
    /// the bottom up, behind cursors in its record: a page made behind the
    /// address cursor would sit in a page table the walk has passed, under
    /// a directory it frees once it has walked it, and its frames would
    /// never come back (`hostile-kernel-work`'s refill attack).
    pub(super) fn being_taken_down(&self, id: EnvironmentId) -> bool {
        self.environments
            .get(&id)
            .is_some_and(|environment| environment.is_being_taken_down())
    }

    /// Whether `id` is ending: the scheduler works its teardown instead of
    /// running it.
    pub(super) fn is_ending(&self, id: EnvironmentId) -> bool {
        self.environments
            .get(&id)
            .is_some_and(|environment| environment.ending.is_some())
    }

    /// A share of taking down `id`, which is ending and has the CPU: its
    /// family, its table, its address space, then itself. `Done` once it is
    /// gone.
    pub(super) fn end_a_share(&mut self, id: EnvironmentId) -> Progress {
        let environment = self.environment(id);
        // Its user half is taken apart under it: the kernel's own tables
        // serve while it does, as none of its code runs again.
        if environment.space.is_loaded() {
            paging::load_kernel_tables();
        }
        cpu::current().count(Counter::EndingShares);
        let go_on = &mut share();
        self.walk_down(id, id, go_on)
    }

    /// A share of taking `target` and its family down for `caller`'s call
    /// (`EnvironmentDestroy`, or `CapabilityDrop` of its root); `Done` once
    /// `target` is gone (or was gone already) — or, if `caller` is in the
    /// family, once `target` is ending.
    pub(super) fn take_down(
        &mut self,
        caller: EnvironmentId,
        target: EnvironmentId,
        go_on: &mut dyn FnMut() -> bool,
    ) -> Progress {
        let Some(top) = self.environments.get(&target) else {
            return Progress::Done;
        };
        // Asked once, at the first share: a family never moves. (A member
        // that calls once a walk is under way joins it in its own time, until
        // the walk comes down to the member itself: `walk_down`.)
        if caller == target || (top.teardown_at.is_none() && self.is_below(caller, target)) {
            // The caller would go with the family before its call was done
            // (its own pages with it), and nobody would go on with the call:
            // the top ends instead, and is taken down in its own time.
            self.begin_ending(target, Ending::DestroyedBy(caller));
            return Progress::Done;
        }
        self.walk_down(caller, target, go_on)
    }

    /// A share of taking `target` and its family down, deepest first, for
    /// `driver`: the destroyer, or `target` itself when it is ending. `Done`
    /// once `target` is gone — or, for a driver in the family, once the walk
    /// has come down to it and `target` ends by itself; it ends as its
    /// `ending` says, or as `DestroyedBy(driver)`.
    fn walk_down(
        &mut self,
        driver: EnvironmentId,
        target: EnvironmentId,
        go_on: &mut dyn FnMut() -> bool,
    ) -> Progress {
        let Some(top) = self.environments.get(&target) else {
            return Progress::Done;
        };
        let ends_itself = top.ending.is_some();
        let ending = top.ending.unwrap_or(Ending::DestroyedBy(driver));
        let mut current = top
            .teardown_at
            .filter(|at| self.environments.contains_key(at))
            .unwrap_or(target);
        self.environment(target).teardown_at = Some(current);
        loop {
            // Held still, but for an ending environment taking itself down:
            // the scheduler must still give it its time to do so, whoever
            // else works the walk meanwhile. (An ending environment runs no
            // code of its own either way.)
            if current != driver && !(current == target && ends_itself) {
                self.environment(current).frozen = true;
                // It will never answer: whoever waits on it is told now,
                // not when the walk has emptied it, which it may never do
                // if its driver stops going on with it.
                if self.let_go_of_callers(current, go_on) == Progress::Stopped {
                    return Progress::Stopped;
                }
            }
            match self.next_to_remove(current) {
                Next::Descend(child) if child == driver => {
                    // A member working its top's teardown has come down to
                    // itself: the next step would take apart the address
                    // space its call runs on. Its part ends here; the top
                    // ends (if it was not already) and its own time finishes
                    // the walk, this member with it, held still then.
                    self.begin_ending(target, Ending::DestroyedBy(driver));
                    self.environment(target).frozen = false;
                    // Runnable again, it takes pool turns (a frozen one
                    // may have left the line).
                    self.may_join_pool(target);
                    return Progress::Done;
                }
                Next::Descend(child) => {
                    // Held still before the walk may stop here, and a step
                    // like any other: a chain has a level per member (83
                    // levels, each root behind 1,023 empty slots, once kept
                    // a slot holder waiting 93 ticks, `hostile-kernel-work`).
                    self.environment(child).frozen = true;
                    current = child;
                    self.environment(target).teardown_at = Some(child);
                    if self.let_go_of_callers(child, go_on) == Progress::Stopped {
                        return Progress::Stopped;
                    }
                }
                Next::Remove(node) => {
                    if self.remove_some(node, go_on) == Progress::Stopped {
                        return Progress::Stopped;
                    }
                }
                Next::Emptied => {
                    // Its queued callers are told it is gone, the pages
                    // others mapped in it go and what names it, a share at
                    // a time; then it goes.
                    if self.answer_queued_callers(current, go_on) == Progress::Stopped
                        || self.take_apart(current, go_on) == Progress::Stopped
                    {
                        return Progress::Stopped;
                    }
                    let root = self.environment(current).root;
                    if current == target {
                        // Its copies first, within the share, and no new
                        // ones meanwhile; its root goes with its end. Taken
                        // all at once, 16,368 copies of a root kept a slot
                        // holder from the CPU 104 ticks (`hostile-shares`),
                        // and its creator could derive copies as fast as
                        // they went.
                        let copies = self.removing_some(go_on, |capabilities, undo| {
                            capabilities.remove_children_some(root, undo)
                        });
                        if copies == Progress::Stopped {
                            return Progress::Stopped;
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

    /// Tells the client `server` was serving and the callers queued on it,
    /// which is held still and will never answer, that it is gone: the
    /// client at once, the queue a share at a time.
    fn let_go_of_callers(
        &mut self,
        server: EnvironmentId,
        go_on: &mut dyn FnMut() -> bool,
    ) -> Progress {
        if let Some(client) = self.environment(server).serving.take()
            && self
                .environments
                .get(&client)
                .is_some_and(|client| client.state == (State::Calling { server }))
        {
            self.wake(client, [Error::PeerGone.code(), 0, 0]);
        }
        self.answer_queued_callers(server, go_on)
    }

    /// Answers the callers queued on `server`, which is being taken down
    /// (it takes no new ones), with `PeerGone`, a share at a time: its reap
    /// would answer them all in one go, and one server can have thousands.
    fn answer_queued_callers(
        &mut self,
        server: EnvironmentId,
        go_on: &mut dyn FnMut() -> bool,
    ) -> Progress {
        while let Some((first, _)) = self.pop_queued_caller(server) {
            self.wake(first, [Error::PeerGone.code(), 0, 0]);
            if !go_on() {
                return Progress::Stopped;
            }
        }
        Progress::Done
    }

    /// A share of removing `node` with everything derived from it, itself
    /// last.
    fn remove_some(&mut self, node: NodeId, go_on: &mut dyn FnMut() -> bool) -> Progress {
        self.removing_some(go_on, |capabilities, undo| {
            capabilities.remove_node_some(node, undo)
        })
    }

    /// A share of a capability-space removal (`Self::removing_within`);
    /// whoever it dooms is reaped.
    fn removing_some<T>(
        &mut self,
        go_on: &mut dyn FnMut() -> bool,
        operation: impl FnOnce(&mut CapabilitySpace<Object>, &mut Undo<'_, '_>) -> T,
    ) -> T {
        let result = self.removing_within(false, Some(go_on), operation);
        self.reap();
        result
    }

    /// The next thing to remove from `member`'s table, from the first slot
    /// not yet emptied on.
    fn next_to_remove(&mut self, member: EnvironmentId) -> Next {
        let mut slot = self.environment(member).teardown_slot;
        let mut next = Next::Emptied;
        while let Some(occupied) = self.capabilities.occupied_from(member, slot) {
            slot = occupied;
            let capability = self
                .capabilities
                .capability_at(member, slot)
                .expect("an occupied slot holds a capability");
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
                _ => Next::Remove(node),
            };
            break;
        }
        if matches!(next, Next::Emptied) {
            slot = slot.max(self.capabilities.table_slots(member));
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
        // A walk in others' time (a forced take at a tick, a destroy) may
        // reach the member that ran last, its address space still loaded:
        // the kernel's own tables serve until the next switch, as the member
        // runs no more. (Taken apart loaded, its freed tables could still be
        // walked through the CPU's caches, and once stopped the kernel.)
        if environment.space.is_loaded() {
            paging::load_kernel_tables();
        }
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
    /// of its descendants): in O(log depth) steps (kernel-core's `ancestry`).
    pub(super) fn is_below(&self, id: EnvironmentId, top: EnvironmentId) -> bool {
        let Some(above) = self.environments.get(&top) else {
            return false;
        };
        id != top
            && ancestry::ancestor_at(id, above.depth, |id| self.ancestry_link(id)) == Some(top)
    }

    /// What kernel-core's `ancestry` needs to know of `id`, if it lives.
    pub(super) fn ancestry_link(&self, id: EnvironmentId) -> Option<ancestry::Link<EnvironmentId>> {
        self.environments
            .get(&id)
            .map(|environment| ancestry::Link {
                depth: environment.depth,
                parent: environment.parent,
                jump: environment.jump,
            })
    }

    /// Ends `target` as `ending` says: doomed, reported and reaped.
    fn end(&mut self, target: EnvironmentId, ending: Ending) {
        match ending {
            Ending::DestroyedBy(by) => {
                self.destroy(target, format_args!("destroyed by environment {}", by.0));
            }
            Ending::Exited(status) => self.exited(target, status),
            Ending::Faulted => self.faulted(target),
        }
    }
}
