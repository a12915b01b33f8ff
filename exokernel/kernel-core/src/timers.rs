//! The timers of environments asleep in `Wait`, in deadline order.
//!
//! A slot start wakes the environments whose timers have passed. Found by a
//! walk over every environment, that cost each slot start time in proportion
//! to how many environments exist — asleep or never started, made by anyone —
//! and took it from whoever held the slot: one creator's 1,900 sleepers halved
//! everyone else's CPU (`hostile-timers`). Kept in order, the expired timers
//! are the first entries, and a slot start looks at those alone.
//!
//! An environment has at most one timer armed: arming it again replaces the
//! old one, so the set is never larger than the number of environments, and
//! each entry is paid for with its environment's record. An entry may outlive
//! the wait it was armed for (the environment woke for another event); the
//! kernel checks, when the entry expires, whether it is still waiting on it.
//! Nothing here allocates except `arm`, and removal never does.

use alloc::collections::BTreeSet;

use crate::btree::GiveBackWhenEmpty;
use crate::caps::EnvironmentId;

/// Armed timers, earliest first: (deadline tick, environment).
#[derive(Debug, Default)]
pub struct Timers {
    armed: BTreeSet<(u64, EnvironmentId)>,
}

/// What one entry costs at most, in bytes of kernel memory: the B-tree's
/// entry, with room for half-full nodes and rounding (4x, as for the
/// environments' own tree).
pub const TIMER_BYTES: u64 = 4 * size_of::<(u64, EnvironmentId)>() as u64;

impl Timers {
    pub const fn new() -> Self {
        Self {
            armed: BTreeSet::new(),
        }
    }

    /// Arms `id`'s timer for `deadline`; `previous` is the deadline it was
    /// armed for, if any, which it no longer is.
    pub fn arm(&mut self, id: EnvironmentId, previous: Option<u64>, deadline: u64) {
        if let Some(previous) = previous {
            self.armed.remove(&(previous, id));
        }
        self.armed.insert((deadline, id));
    }

    /// Disarms `id`'s timer for `deadline` (the environment is gone).
    pub fn disarm(&mut self, id: EnvironmentId, deadline: u64) {
        self.armed.remove(&(deadline, id));
        self.armed.give_back_when_empty();
    }

    /// The earliest deadline armed, if any.
    pub fn earliest(&self) -> Option<u64> {
        self.armed.first().map(|&(deadline, _)| deadline)
    }

    /// The earliest timer if its deadline is `now` or before, left armed:
    /// the environment and its deadline.
    pub fn first_expired(&self, now: u64) -> Option<(EnvironmentId, u64)> {
        let &(deadline, id) = self.armed.first()?;
        (deadline <= now).then_some((id, deadline))
    }

    /// Takes out the earliest timer if its deadline is `now` or before:
    /// the environment and its deadline.
    pub fn take_expired(&mut self, now: u64) -> Option<(EnvironmentId, u64)> {
        if self.earliest()? > now {
            return None;
        }
        let (deadline, id) = self.armed.pop_first()?;
        self.armed.give_back_when_empty();
        Some((id, deadline))
    }

    /// How many timers are armed.
    pub fn len(&self) -> usize {
        self.armed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.armed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    const fn id(n: u32) -> EnvironmentId {
        EnvironmentId(n)
    }

    fn expired(timers: &mut Timers, now: u64) -> Vec<(u32, u64)> {
        core::iter::from_fn(|| timers.take_expired(now))
            .map(|(id, deadline)| (id.0, deadline))
            .collect()
    }

    #[test]
    fn expired_timers_come_out_earliest_first_and_the_rest_stay() {
        let mut timers = Timers::new();
        timers.arm(id(3), None, 30);
        timers.arm(id(1), None, 10);
        timers.arm(id(2), None, 10);
        timers.arm(id(4), None, u64::MAX);
        assert_eq!(timers.earliest(), Some(10));
        assert_eq!(expired(&mut timers, 9), []);
        assert_eq!(expired(&mut timers, 30), [(1, 10), (2, 10), (3, 30)]);
        assert_eq!(timers.earliest(), Some(u64::MAX));
        assert_eq!(expired(&mut timers, u64::MAX - 1), []);
        assert_eq!(expired(&mut timers, u64::MAX), [(4, u64::MAX)]);
        assert!(timers.is_empty());
    }

    #[test]
    fn arming_again_replaces_the_old_timer() {
        let mut timers = Timers::new();
        timers.arm(id(1), None, 10);
        timers.arm(id(1), Some(10), 50);
        timers.arm(id(1), Some(50), 20);
        assert_eq!(timers.len(), 1);
        assert_eq!(expired(&mut timers, 100), [(1, 20)]);
    }

    #[test]
    fn the_first_expired_timer_stays_until_disarmed() {
        let mut timers = Timers::new();
        timers.arm(id(2), None, 10);
        timers.arm(id(1), None, 20);
        assert_eq!(timers.first_expired(9), None);
        assert_eq!(timers.first_expired(10), Some((id(2), 10)));
        assert_eq!(timers.first_expired(10), Some((id(2), 10)));
        timers.disarm(id(2), 10);
        assert_eq!(timers.first_expired(10), None);
        assert_eq!(timers.first_expired(20), Some((id(1), 20)));
    }

    #[test]
    fn a_disarmed_timer_never_expires() {
        let mut timers = Timers::new();
        timers.arm(id(1), None, 10);
        timers.arm(id(2), None, 10);
        timers.disarm(id(1), 10);
        timers.disarm(id(7), 10); // never armed: nothing happens
        assert_eq!(expired(&mut timers, 10), [(2, 10)]);
        assert_eq!(timers.earliest(), None);
    }

    #[test]
    fn an_early_timer_among_thousands_of_late_ones_expires_alone() {
        let mut timers = Timers::new();
        for n in 0..5_000 {
            timers.arm(id(n), None, 1_000_000 + u64::from(n));
        }
        timers.arm(id(9_999), None, 5);
        assert_eq!(expired(&mut timers, 6), [(9_999, 5)]);
        assert_eq!(timers.len(), 5_000);
    }
}
