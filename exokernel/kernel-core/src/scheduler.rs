//! Which environment runs next: the kernel's scheduling decision, apart
//! from the state it decides on, so the host can test it.
//!
//! The CPU is a slice vector of slots (`slices.rs`), one timer tick each.
//! At the start of a slot its owner runs if it can; otherwise the slot goes
//! to the **best-effort pool** — the runnable environments holding no slots
//! — round-robin, one pool member per slot start: the member whose turn it
//! is gets the slot and goes to the back. Within a slot, the running
//! environment keeps the CPU until it yields (the rest goes to the pool, to
//! someone else if possible), donates it (`YieldTo`, `Call`, `Reply`: the
//! target runs at once) or blocks. This module never looks at an
//! environment beyond the questions `Candidates` answers.

use crate::caps::EnvironmentId;

/// What the decision needs to know about environments.
pub trait Candidates {
    /// Whether `id` exists and may run.
    fn is_runnable(&self, id: EnvironmentId) -> bool;

    /// The pool member whose turn it is, other than `except`: of the
    /// runnable environments that hold no slot, the one that has waited
    /// longest since it joined the pool or was last given a slot start.
    fn pool_next(&mut self, except: Option<EnvironmentId>) -> Option<EnvironmentId>;

    /// `id` was given a slot start from the pool: its next turn comes after
    /// every other member's.
    fn pool_turn_taken(&mut self, id: EnvironmentId);
}

/// The scheduler's own state between decisions.
#[derive(Debug)]
pub struct Scheduler {
    /// A new slot has started since the last decision.
    pub slot_started: bool,
    /// The running environment gave up the rest of its slot.
    pub yield_requested: bool,
    /// Who the rest of the current slot was given to.
    pub donation: Option<EnvironmentId>,
}

impl Default for Scheduler {
    fn default() -> Self {
        Self::new()
    }
}

impl Scheduler {
    pub const fn new() -> Self {
        Self {
            slot_started: false,
            yield_requested: false,
            donation: None,
        }
    }

    /// Gives the rest of the slot to `target`, at once.
    pub fn donate(&mut self, target: EnvironmentId) {
        self.donation = Some(target);
        self.yield_requested = true;
    }

    /// Forgets `id`, which is gone.
    pub fn forget(&mut self, id: EnvironmentId) {
        if self.donation == Some(id) {
            self.donation = None;
        }
    }

    /// The environment to run now and whether it starts a slot, or `None` if
    /// none can run. `running` is the environment on the CPU, `slot_owner`
    /// the current slot's owner.
    pub fn choose_next(
        &mut self,
        running: Option<EnvironmentId>,
        slot_owner: Option<EnvironmentId>,
        candidates: &mut impl Candidates,
    ) -> Option<(EnvironmentId, bool)> {
        let running = running.filter(|&id| candidates.is_runnable(id));
        if self.slot_started {
            self.slot_started = false;
            self.yield_requested = false;
            self.donation = None;
            if let Some(owner) = slot_owner.filter(|&owner| candidates.is_runnable(owner)) {
                return Some((owner, true));
            }
            let next = candidates.pool_next(None)?;
            candidates.pool_turn_taken(next);
            return Some((next, true));
        }
        if let Some(target) = self.donation {
            if candidates.is_runnable(target) && (running != Some(target) || !self.yield_requested)
            {
                self.yield_requested = false;
                return Some((target, false));
            }
            self.donation = None; // the target gave it up, or cannot run
        }
        if let Some(running) = running
            && !self.yield_requested
        {
            return Some((running, false));
        }
        self.yield_requested = false;
        // The rest of the slot goes to the pool, to someone else if possible.
        // This does not move the pool's turn: whoever gets a remainder still
        // gets its own slot start when its turn comes.
        candidates
            .pool_next(running)
            .or(running)
            .map(|id| (id, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// Environments 1..=n: which can run, which hold slots, and the pool's
    /// turns (first in ascending id order).
    struct World {
        runnable: Vec<bool>,
        holds_slots: Vec<bool>,
        turns: Vec<EnvironmentId>,
    }

    impl World {
        fn new(count: usize) -> Self {
            Self {
                runnable: alloc::vec![true; count + 1],
                holds_slots: alloc::vec![false; count + 1],
                turns: (1..=count as u32).map(EnvironmentId).collect(),
            }
        }
    }

    impl Candidates for World {
        fn is_runnable(&self, id: EnvironmentId) -> bool {
            self.runnable.get(id.0 as usize).copied().unwrap_or(false) && id.0 != 0
        }

        fn pool_next(&mut self, except: Option<EnvironmentId>) -> Option<EnvironmentId> {
            self.turns.iter().copied().find(|&id| {
                self.is_runnable(id) && !self.holds_slots[id.0 as usize] && Some(id) != except
            })
        }

        fn pool_turn_taken(&mut self, id: EnvironmentId) {
            self.turns.retain(|&other| other != id);
            self.turns.push(id);
        }
    }

    const fn id(n: u32) -> EnvironmentId {
        EnvironmentId(n)
    }

    #[test]
    fn a_runnable_owner_gets_its_slot() {
        let mut world = World::new(3);
        let mut scheduler = Scheduler::new();
        scheduler.slot_started = true;
        assert_eq!(
            scheduler.choose_next(Some(id(1)), Some(id(2)), &mut world),
            Some((id(2), true))
        );
    }

    #[test]
    fn free_slots_go_round_the_pool_and_skip_slot_holders() {
        let mut world = World::new(4);
        world.holds_slots[2] = true;
        let mut scheduler = Scheduler::new();
        let mut order = Vec::new();
        for _ in 0..6 {
            scheduler.slot_started = true;
            order.push(scheduler.choose_next(None, None, &mut world).unwrap().0.0);
        }
        assert_eq!(order, [1, 3, 4, 1, 3, 4]);
    }

    #[test]
    fn a_blocked_owner_gives_its_slot_to_the_pool() {
        let mut world = World::new(3);
        world.runnable[2] = false;
        let mut scheduler = Scheduler::new();
        scheduler.slot_started = true;
        assert_eq!(
            scheduler.choose_next(None, Some(id(2)), &mut world),
            Some((id(1), true))
        );
    }

    #[test]
    fn a_donation_runs_the_target_until_it_yields() {
        let mut world = World::new(3);
        let mut scheduler = Scheduler::new();
        scheduler.donate(id(3));
        assert_eq!(
            scheduler.choose_next(Some(id(1)), None, &mut world),
            Some((id(3), false))
        );
        // The target runs on; yielding hands the rest to someone else.
        assert_eq!(
            scheduler.choose_next(Some(id(3)), None, &mut world),
            Some((id(3), false))
        );
        scheduler.yield_requested = true;
        let (next, _) = scheduler
            .choose_next(Some(id(3)), None, &mut world)
            .unwrap();
        assert_ne!(next, id(3));
        assert_eq!(scheduler.donation, None);
    }

    #[test]
    fn a_yield_prefers_someone_else_and_keeps_the_pool_turn() {
        let mut world = World::new(3);
        let mut scheduler = Scheduler::new();
        scheduler.slot_started = true;
        assert_eq!(
            scheduler.choose_next(None, None, &mut world),
            Some((id(1), true))
        );
        scheduler.yield_requested = true;
        assert_eq!(
            scheduler.choose_next(Some(id(1)), None, &mut world),
            Some((id(2), false))
        );
        // The remainder did not move the turn: 2 still gets the next slot start.
        scheduler.slot_started = true;
        assert_eq!(
            scheduler.choose_next(Some(id(2)), None, &mut world),
            Some((id(2), true))
        );
    }

    #[test]
    fn alone_a_yielder_runs_on_and_with_nobody_nothing_runs() {
        let mut world = World::new(1);
        let mut scheduler = Scheduler::new();
        scheduler.yield_requested = true;
        assert_eq!(
            scheduler.choose_next(Some(id(1)), None, &mut world),
            Some((id(1), false))
        );
        world.runnable[1] = false;
        assert_eq!(scheduler.choose_next(Some(id(1)), None, &mut world), None);
    }

    #[test]
    fn a_gone_donation_target_is_forgotten() {
        let mut world = World::new(2);
        let mut scheduler = Scheduler::new();
        scheduler.donate(id(2));
        scheduler.forget(id(2));
        assert_eq!(scheduler.donation, None);
        assert_eq!(
            scheduler.choose_next(Some(id(1)), None, &mut world),
            Some((id(2), false))
        );
    }
}
