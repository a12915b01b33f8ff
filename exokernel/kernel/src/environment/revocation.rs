//! Visible revocation and the abort protocol (Engler et al., SOSP 1995, §3.3).
//!
//! To take frames back, the kernel first asks: `RequestFrames` records how
//! many frames an environment should give back and within how many ticks,
//! and an upcall tells it (if it registered an entry); the time allowed
//! counts again from that upcall, so a request never expires before the
//! environment could act on it. The library OS chooses which frames to give
//! up and drops their capabilities. What counts as given back is how far its
//! holdings fell below what it held when asked, so frames allocated after
//! the request and dropped again satisfy nothing. What it did not hold of its
//! own when asked is owed by its family: a child that kept its frames in a
//! child of its own would otherwise owe nothing. If the deadline passes with
//! frames still missing, the kernel takes them by force — a run it is
//! allocating, the root frame capabilities in the highest slots of its table,
//! then its children, newest first, each counted by the frames it held
//! itself — unmapping them wherever they are mapped and invalidating every
//! capability derived from them, and records that it did. Nothing is ever
//! lost to the system.

use exo_abi::counters::Counter;
use exo_abi::trace::Kind;
use exo_abi::{Error, Handle, Rights};

use exo_kernel_core::caps::Progress;

use super::teardown::{SHARE_PARTS, STEP_ENTRIES};
use super::{Enforcing, EnvironmentId, Object, Revocation, System};
use crate::arch::cpu;
use crate::memory::address_space::FRESH_TABLE_FRAMES;
use crate::{println, time, trace};

/// What part of a tick a take by force may have in a slot holder's own time:
/// a thirty-second.
const OWNERS_TIME_PARTS: u64 = 32;

/// Slots of a table a take by force reads between two looks at its share.
const SLOTS_A_STEP: u32 = 32;

/// The longest deadline a request may give, in timer ticks.
const MAX_DEADLINE_TICKS: u64 = 600_000;

impl System {
    /// Asks the environment `target` names to give back `wanted` frames
    /// within `deadline_ticks`. Replaces any open request.
    pub fn request_frames(
        &mut self,
        caller: EnvironmentId,
        target: Handle,
        wanted: u64,
        deadline_ticks: u64,
    ) -> Result<(), Error> {
        if wanted == 0 || deadline_ticks == 0 || deadline_ticks > MAX_DEADLINE_TICKS {
            return Err(Error::InvalidArgument);
        }
        let target = self.target(caller, target, Rights::CONTROL)?;
        // Every environment holds `CONTROL` over itself and may lend it to
        // its children, or pass it to anyone it can reach: the one asked,
        // its family or an accomplice could otherwise put off a request
        // made from outside for ever, or ask one frame for eight, by
        // replacing it. Only the maker may, or one above it, or one above
        // the target that the maker is not above: an accomplice outside
        // the target's creator's family, its request made first, once kept
        // the creator from asking for ten minutes.
        let from_outside = caller != target && !self.is_below(caller, target);
        if let Some(open) = self.environment(target).revocation {
            let may_replace = !open.from_outside
                || caller == open.made_by
                || self.is_below(open.made_by, caller)
                || (self.is_below(target, caller) && !self.is_below(caller, open.made_by));
            // Past its deadline, the take by force goes on.
            if open.enforcing.is_some() || !may_replace {
                return Err(Error::InvalidState);
            }
        }
        // Its deadline's entry was paid for with its record; the heap has
        // room for it unless the accounts are wrong, and then this is the
        // answer.
        if !crate::memory::heap::has_room() {
            return Err(Error::OutOfMemory);
        }
        let deadline = time::ticks() + deadline_ticks;
        let environment = self.environment(target);
        environment.revocation = Some(Revocation {
            wanted,
            deadline,
            allowed_ticks: deadline_ticks,
            held_when_asked: environment.frames_counted(),
            delivered: false,
            enforcing: None,
            from_outside,
            made_by: caller,
        });
        let previous = environment.revocation_armed.replace(deadline);
        self.revocation_deadlines.arm(target, previous, deadline);
        self.earliest_deadline = self.earliest_deadline.min(deadline);
        trace::record(Kind::RevocationRequest, target.0, [wanted, deadline]);
        // Asleep, it could not answer before the deadline: it runs its
        // upcall first, then waits again.
        self.interrupt_wait(target);
        self.interrupt_call(target);
        Ok(())
    }

    /// Closes every request whose deadline has passed: what is missing is
    /// taken by force. Allocates nothing. A share of a tick at a time
    /// (`teardown.rs`): what is left waits for the next tick, so requests
    /// that expire together, each for frames copied into thousands of
    /// tables, cannot keep the CPU from whoever holds it.
    ///
    /// The deadlines are kept in order (`revocation_deadlines`), so a tick
    /// looks at the expired ones alone. Found by a scan of every
    /// environment, once per request closed, k requests expiring together
    /// cost k times every environment, interrupts off (900 on one tick held
    /// the CPU for 132 ticks); by one pass a tick, requests expiring one a
    /// tick cost every tick two passes over every environment.
    pub(super) fn enforce_deadlines(&mut self) {
        let now = time::ticks();
        if now < self.earliest_deadline {
            return;
        }
        // In a slot holder's own time a sliver of a tick, elsewhere a quarter:
        // a quarter at every tick took 30% of a slot holder's time while 4
        // children's 1,000 frames each were taken (`hostile-shares`).
        let parts = if self.owner_runs_next() {
            OWNERS_TIME_PARTS
        } else {
            SHARE_PARTS
        };
        let mut go_on = super::share_of(parts);
        // The share's clock starts here, so that the first request closed
        // counts in it: asked first after it, the share let a second one
        // close at every slot start (each with its line on the console).
        let _ = go_on();
        while let Some((id, deadline)) = self.revocation_deadlines.first_expired(now) {
            let open = self.environments.get(&id).and_then(|e| e.revocation);
            if open.is_some_and(|request| request.deadline == deadline)
                && self.enforce(id, &mut go_on) == Progress::Stopped
            {
                // The rest at the next tick, this one first.
                self.earliest_deadline = now + 1;
                return;
            }
            // Closed now, or met before its deadline: its entry goes.
            self.revocation_deadlines.disarm(id, deadline);
            if let Some(environment) = self.environments.get_mut(&id)
                && environment.revocation_armed == Some(deadline)
            {
                environment.revocation_armed = None;
            }
            if !go_on() {
                self.earliest_deadline = now + 1;
                return;
            }
        }
        self.earliest_deadline = self.revocation_deadlines.earliest().unwrap_or(u64::MAX);
    }

    /// A share of closing `id`'s expired request: what it still owes is
    /// taken by force, then the request is closed; `Stopped` if the share
    /// ran out first (the request stays open, its deadline passed).
    fn enforce(&mut self, id: EnvironmentId, go_on: &mut dyn FnMut() -> bool) -> Progress {
        let environment = self.environment(id);
        let Some(mut request) = environment.revocation else {
            return Progress::Done;
        };
        // What it gave back is counted when the deadline is first seen:
        // what is taken from here on falls below that too, but is not given.
        let mut enforcing = request.enforcing.unwrap_or(Enforcing {
            given: environment.given_back_since(&request),
            taken: 0,
            not_held: 0,
            tables_from: 0,
            frames_below: u32::MAX,
            children_below: u32::MAX,
            child: None,
        });
        // Nothing left to tell it: the deadline is past. Marked as being
        // taken before anything is (`is_being_forced`).
        request.delivered = true;
        request.enforcing = Some(enforcing);
        environment.revocation = Some(request);
        // Its own frames are recounted at each share; what its tables and
        // children made up is not among them, and is owed no more.
        let owed = environment
            .still_owed(&request)
            .saturating_sub(enforcing.not_held);
        let (taken, not_held, progress) =
            self.take_frames_by_force(id, owed, &mut enforcing, go_on);
        enforcing.taken += taken;
        enforcing.not_held += not_held;
        let environment = self.environment(id);
        if progress == Progress::Stopped {
            request.enforcing = Some(enforcing);
            environment.revocation = Some(request);
            return Progress::Stopped;
        }
        environment.revocation = None;
        environment.frames_given_back += enforcing.given;
        // Held while the take went on (`is_being_forced`), it may run again.
        self.may_join_pool(id);
        if enforcing.given > 0 {
            trace::record(Kind::FramesGivenBack, id.0, [enforcing.given, 0]);
        }
        if owed > 0 {
            trace::record(Kind::FramesTaken, id.0, [enforcing.taken, 0]);
            println!(
                "environment {}: revocation deadline passed; took {} frames by force",
                id.0, enforcing.taken
            );
        }
        Progress::Done
    }

    /// Takes at least `wanted` frames from `id`: a run it is allocating,
    /// then the root frame capabilities in the highest slots of its table,
    /// then its page tables that map nothing, then its children, newest
    /// first, each counting the frames it held. Returns how many it took,
    /// how many of them were not its own frame capabilities', and `Stopped`
    /// if the share ran out first (a capability whose copies were being
    /// removed is taken at the next share); `enforcing` keeps where the
    /// tables and children are.
    /// Allocates nothing: the table is read slot by slot, from the top.
    fn take_frames_by_force(
        &mut self,
        id: EnvironmentId,
        wanted: u64,
        enforcing: &mut Enforcing,
        go_on: &mut dyn FnMut() -> bool,
    ) -> (u64, u64, Progress) {
        let mut frames = 0;
        // A run its stopped `FrameAllocate` was zeroing is frames it holds
        // out of its table's sight: it goes first (dropped, it goes back).
        let environment = self.environment(id);
        if wanted > 0
            && let Some(pending) = environment.allocating.take()
        {
            frames = 1 << pending.order;
            environment.frames.uncharge(frames);
            environment.frames_taken_by_force += frames;
        }
        let mut progress = Progress::Done;
        // The table is read from the top down, where the last share left
        // off, and the slots read count against the share too: 1,023
        // capabilities of other kinds above its frames were once read again
        // at every share, uncounted.
        let mut index = enforcing
            .frames_below
            .min(self.capabilities.table_slots(id));
        let mut read = 0;
        while frames < wanted
            && progress == Progress::Done
            && let Some(occupied) = self.capabilities.occupied_before(id, index)
        {
            index = occupied;
            read += 1;
            if read % SLOTS_A_STEP == 0 && !go_on() {
                progress = Progress::Stopped;
                index += 1; // this one not read yet
                break;
            }
            let capability = self
                .capabilities
                .capability_at(id, index)
                .expect("an occupied slot holds a capability");
            let Object::Frame { order, .. } = *capability.object else {
                continue;
            };
            let node = capability.node;
            let is_root = self
                .capabilities
                .node(node)
                .is_some_and(|n| n.parent.is_none());
            if !is_root {
                continue;
            }
            progress = self.removing_within(true, Some(&mut *go_on), |capabilities, undo| {
                capabilities.remove_node_some(node, undo)
            });
            // One capability at a time within the share: a request's frames
            // taken in one go, at the start of whoever's slot it was, kept a
            // slot holder from the CPU 44 ticks (`hostile-shares`: 4 of
            // 1,000 frames each, due on the same tick).
            if progress == Progress::Done {
                frames += 1u64 << order;
                if frames < wanted && !go_on() {
                    progress = Progress::Stopped;
                }
            } else {
                index += 1; // its copies were being removed: this one again
            }
        }
        enforcing.frames_below = index;
        // Then its page tables that map nothing: a table a `Map` made stays
        // when its pages go, and a child that mapped and unmapped a page at
        // every 2 MiB kept its quota in tables out of the take's sight. Not
        // looked for in an environment with no more tables than a fresh one
        // (whose tables hold its facts page): 900 empty children asked on
        // one tick are closed in one pass (`hostile-deadlines`).
        let mut not_held = 0;
        if self.environment(id).space.table_frames() <= FRESH_TABLE_FRAMES {
            enforcing.tables_from = u64::MAX;
        }
        while frames < wanted && progress == Progress::Done && enforcing.tables_from != u64::MAX {
            let environment = self.environment(id);
            let (freed, paused) = environment.space.free_empty_tables(
                enforcing.tables_from,
                STEP_ENTRIES,
                wanted - frames,
            );
            environment.frames.uncharge(freed);
            environment.frames_taken_by_force += freed;
            frames += freed;
            not_held += freed;
            enforcing.tables_from = paused.unwrap_or(u64::MAX);
            if paused.is_some() && !go_on() {
                progress = Progress::Stopped;
            }
        }
        // Then its children, newest first, each counted by the frames it
        // held itself: the frames its family allocated are out of its own
        // table's sight (a child that kept its frames in a child of its own,
        // and used them through copies, once kept every one past the
        // deadline). Counted by what it was lent instead, an empty child
        // made to be lost would have stood for frames nobody held.
        // A child whose take stopped part-way goes on first, counted by what
        // it held when its take began (what it holds falls as it goes).
        while frames < wanted && progress == Progress::Done {
            let next = match enforcing
                .child
                .filter(|(child, _)| self.environments.contains_key(child))
            {
                Some(taken) => Some(taken),
                None => match self.newest_child(id, &mut enforcing.children_below, go_on) {
                    Some(found) => found,
                    None => {
                        progress = Progress::Stopped;
                        break;
                    }
                },
            };
            let Some((child, held)) = next else {
                break;
            };
            enforcing.child = Some((child, held));
            progress = self.take_down(id, child, go_on);
            if progress == Progress::Done {
                enforcing.child = None;
                frames += held;
                not_held += held;
                self.environment(id).frames_taken_by_force += held;
            }
        }
        for _ in 0..frames {
            cpu::current().count(Counter::FramesTakenByForce);
        }
        (frames, not_held, progress)
    }
}

impl System {
    /// The child of `id`'s whose root capability sits highest in its table
    /// below slot `below`, and the frames it holds itself: all its frames are
    /// charged, less what it lent its own children; `Some(None)` if there is
    /// none. Reads the table down from `below`, which it moves down as it
    /// goes, and the slots read count against the share: `None` if it ran
    /// out first.
    fn newest_child(
        &self,
        id: EnvironmentId,
        below: &mut u32,
        go_on: &mut dyn FnMut() -> bool,
    ) -> Option<Option<(EnvironmentId, u64)>> {
        let mut index = (*below).min(self.capabilities.table_slots(id));
        let mut read = 0;
        while let Some(occupied) = self.capabilities.occupied_before(id, index) {
            read += 1;
            if read % SLOTS_A_STEP == 0 && !go_on() {
                return None;
            }
            index = occupied;
            *below = index + 1; // it, again, while its child is taken
            let capability = self
                .capabilities
                .capability_at(id, index)
                .expect("an occupied slot holds a capability");
            if let Object::Environment(child) = *capability.object
                && child != id
                && self
                    .capabilities
                    .node(capability.node)
                    .is_some_and(|node| node.parent.is_none())
                && let Some(environment) = self.environments.get(&child)
            {
                let held = environment
                    .frames
                    .charged()
                    .saturating_sub(environment.frames_lent);
                return Some(Some((child, held)));
            }
            *below = index;
        }
        Some(None)
    }
}

impl super::Environment {
    /// The frames a revocation request counts as its own: those it holds
    /// through root frame capabilities and a run its stopped `FrameAllocate`
    /// is zeroing (the take removes that run first: not counted, a run begun
    /// after the request and left there stood for the frames asked).
    fn frames_counted(&self) -> u64 {
        let pending = self
            .allocating
            .as_ref()
            .map_or(0, |pending| 1u64 << pending.order);
        self.frames_held + pending
    }

    /// Frames given back since `request` was made, up to what it asked for:
    /// how far its holdings fell below what it held when asked.
    fn given_back_since(&self, request: &Revocation) -> u64 {
        request
            .held_when_asked
            .saturating_sub(self.frames_counted())
            .min(request.wanted)
    }

    /// Frames it must lose at the deadline: enough to bring its holdings
    /// down to what it held when asked, less what was asked. Frames
    /// allocated since count too: the kernel takes from the top of the
    /// table, where fresh ones sit, so an environment that held one when
    /// the deadline came kept one of those asked (`hostile-revocation`'s
    /// churner, once it ran in another order).
    ///
    /// What it did not hold of its own when asked is owed by its family:
    /// the take goes on to its children once its own frames are gone.
    fn still_owed(&self, request: &Revocation) -> u64 {
        let owed_level = request.held_when_asked.saturating_sub(request.wanted);
        let by_family = request.wanted.saturating_sub(request.held_when_asked);
        // `wanted` may be anything up to `u64::MAX`: a sum that wrapped
        // would take fewer frames than the request said.
        self.frames_counted()
            .saturating_sub(owed_level)
            .saturating_add(by_family)
    }

    /// Closes the open request early if what it asked for has been given
    /// back (called when a root frame capability goes).
    pub(super) fn check_revocation_met(&mut self) {
        if let Some(request) = self.revocation
            && request.enforcing.is_none()
            && self.given_back_since(&request) >= request.wanted
        {
            self.frames_given_back += request.wanted;
            self.revocation = None;
            trace::record(Kind::FramesGivenBack, self.id.0, [request.wanted, 0]);
        }
    }
}
