//! The best-effort pool's turns (chapter 3.3): the environments that may be
//! in the pool, in the order their turns come, linked through their own
//! records, so that nothing is allocated.
//!
//! An environment joins at the back when it may have become a member — it
//! was woken or started, or a slot it held was freed (`System::may_join_pool`)
//! — and leaves when it is destroyed, or when the scheduler finds it at the
//! front unable to run or holding a slot. So choosing the next member looks
//! at one environment, plus one for each that left, each paid for by the
//! join that put it there: never at the environments asleep. The kernel
//! found the next member by walking every environment in id order from the
//! last one chosen, and with 1,900 of one creator's environments asleep that
//! walk, at every slot start, took most of what `Timers` did not of everyone
//! else's CPU (`hostile-timers`).

use alloc::boxed::Box;
use alloc::collections::BTreeMap;

use super::{Environment, EnvironmentId};

type Environments = BTreeMap<EnvironmentId, Box<Environment>>;

/// The first and the last environment in line; each links to the next.
#[derive(Debug)]
pub(super) struct PoolTurns {
    ends: Option<(EnvironmentId, EnvironmentId)>,
}

impl PoolTurns {
    pub const EMPTY: Self = Self { ends: None };

    /// Puts `id` at the back, unless it is in line already or gone.
    pub fn join(&mut self, environments: &mut Environments, id: EnvironmentId) {
        let Some(environment) = environments.get_mut(&id) else {
            return;
        };
        if environment.in_pool_line {
            return;
        }
        environment.in_pool_line = true;
        environment.pool_next = None;
        environment.pool_previous = self.ends.map(|(_, last)| last);
        match self.ends {
            None => self.ends = Some((id, id)),
            Some((first, last)) => {
                self.ends = Some((first, id));
                if let Some(last) = environments.get_mut(&last) {
                    last.pool_next = Some(id);
                }
            }
        }
    }

    /// Takes `id` out of the line, if it is in it.
    pub fn leave(&mut self, environments: &mut Environments, id: EnvironmentId) {
        let Some(environment) = environments.get_mut(&id) else {
            return;
        };
        if !environment.in_pool_line {
            return;
        }
        environment.in_pool_line = false;
        let (before, after) = (
            environment.pool_previous.take(),
            environment.pool_next.take(),
        );
        self.unlink(environments, id, before, after);
    }

    /// Closes the gap `id` leaves between `before` and `after`; `id` itself
    /// may be gone already (`reap` takes a record out before its links).
    pub fn unlink(
        &mut self,
        environments: &mut Environments,
        id: EnvironmentId,
        before: Option<EnvironmentId>,
        after: Option<EnvironmentId>,
    ) {
        if let Some(before) = before.and_then(|before| environments.get_mut(&before)) {
            before.pool_next = after;
        }
        if let Some(after) = after.and_then(|after| environments.get_mut(&after)) {
            after.pool_previous = before;
        }
        if let Some((first, last)) = self.ends {
            let first = if first == id { after } else { Some(first) };
            let last = if last == id { before } else { Some(last) };
            self.ends = first.zip(last);
        }
    }

    /// The first in line that can run and holds no slot, other than
    /// `except`; each one found before it that cannot, or holds a slot,
    /// leaves the line (it joins again when that changes).
    pub fn next(
        &mut self,
        environments: &mut Environments,
        except: Option<EnvironmentId>,
    ) -> Option<EnvironmentId> {
        let mut next = self.ends.map(|(first, _)| first);
        while let Some(id) = next {
            let environment = environments.get(&id)?;
            next = environment.pool_next;
            if !environment.is_runnable() || environment.slots_held != 0 {
                self.leave(environments, id);
            } else if Some(id) != except {
                return Some(id);
            }
        }
        None
    }

    /// `id` got a slot start: to the back of the line.
    pub fn turn_taken(&mut self, environments: &mut Environments, id: EnvironmentId) {
        self.leave(environments, id);
        self.join(environments, id);
    }
}
