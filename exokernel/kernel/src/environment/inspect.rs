//! What an environment may see of others: every environment's accounts
//! and name, for `ps` and the trace (docs/08).
//!
//! A capability with `INSPECT` for an environment shows it and every
//! environment below it — those it created, those they created, and so on;
//! every environment is below the first. Ids are not capabilities: asking
//! about an id outside that family gets the same `NoSuchEnvironment` as an
//! id nobody has, so inspection says nothing about what exists outside it.
//!
//! The events counted per environment cost nothing on the paths they count:
//! an environment's system calls, exceptions and upcalls are the CPU's own
//! counters while it runs, read when it is switched in and out (`Usage`).

use exo_abi::counters::Counter;
use exo_abi::syscall::{EnvironmentAccount, EnvironmentState};
use exo_abi::{Error, Handle, Rights};

use super::{Environment, EnvironmentId, State, Step, System, current};
use crate::arch::cpu;

/// Events counted for one environment.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Usage {
    system_calls: u64,
    exceptions: u64,
    upcalls: u64,
}

impl Usage {
    /// This CPU's counters now.
    pub(super) fn of_this_cpu() -> Self {
        let this_cpu = cpu::current();
        Self {
            system_calls: this_cpu.counter(Counter::SystemCalls),
            exceptions: this_cpu.counter(Counter::Exceptions),
            upcalls: this_cpu.counter(Counter::Upcalls),
        }
    }

    /// `self` plus what the CPU counted since `mark`.
    pub(super) fn plus_since(self, mark: Usage) -> Self {
        let now = Self::of_this_cpu();
        Self {
            system_calls: self.system_calls + (now.system_calls - mark.system_calls),
            exceptions: self.exceptions + (now.exceptions - mark.exceptions),
            upcalls: self.upcalls + (now.upcalls - mark.upcalls),
        }
    }
}

/// The most parents one decision of `EnvironmentNext` walks up, marking.
const MARKED_WALK: u32 = 8;

/// Where a stopped `EnvironmentNext` goes on: kept in the caller's record,
/// not in its `rax`, since the id it goes on from may be one outside the
/// family, whose existence the caller may not learn.
#[derive(Clone, Copy, Debug)]
struct ListingResume {
    top: EnvironmentId,
    after: u32,
    next: EnvironmentId,
}

/// How many listings of one environment may be stopped at once, each
/// going on where it stopped: one per thread of a library OS listing
/// something else (a record is shared by every listing of the same top
/// from the same id, which finds the same answer). A fifth that stops
/// replaces the oldest, which starts again.
const LISTINGS: usize = 4;

/// An environment's stopped listings, and which of them stopped first.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Listings {
    resumes: [Option<ListingResume>; LISTINGS],
    oldest: usize,
}

impl Listings {
    /// Where a listing of `top` after `after` goes on: where one stopped,
    /// or the start. Ids are never reused and an environment's creators
    /// never change, so every id a stopped listing passed is still outside
    /// the family, and any call of the same listing may skip them.
    fn from(&self, top: EnvironmentId, after: u32) -> EnvironmentId {
        self.resumes
            .iter()
            .flatten()
            .find(|resume| resume.top == top && resume.after == after)
            .map_or(EnvironmentId(0), |resume| resume.next)
    }

    /// A listing stopped with `next` to go on from.
    fn stopped(&mut self, resume: ListingResume) {
        let same = |held: &Option<ListingResume>| {
            held.is_some_and(|held| held.top == resume.top && held.after == resume.after)
        };
        match self.resumes.iter().position(same) {
            Some(place) => self.resumes[place] = Some(resume),
            None => {
                self.resumes[self.oldest] = Some(resume);
                self.oldest = (self.oldest + 1) % LISTINGS;
            }
        }
    }
}

/// What a stopped `EnvironmentNext` leaves in the caller's `rax`: only that
/// it was taken again.
const LISTING_TAKEN_AGAIN: u64 = 1;

impl System {
    /// `EnvironmentNext` for `caller`: the smallest id above `after` of `top`
    /// or an environment below it, or 0; a share at a time, going on where
    /// a listing of the same `top` from the same `after` stopped, if one
    /// did (`Listings`).
    ///
    /// Every younger environment may have to be ruled out, each by a walk up
    /// its parents. Walked afresh, a chain of them as deep as an account
    /// allows would cost the square of its depth in this one call, with
    /// interrupts off (`hostile-depth`); so the listing leaves its verdict on
    /// each environment it passes (`family_mark`), and a walk stops at the
    /// first one already decided — by this call or an earlier listing of the
    /// same top, so a program listing a family call by call, or a call
    /// taken again, decides each environment once. Ruling out every younger environment is
    /// still work that grows with what others built (5,700 environments in
    /// fans outside the family once kept the CPU 49 ticks in one call): it
    /// stops when its share is used, and goes on when the caller runs again.
    pub fn environment_next(
        &mut self,
        caller: EnvironmentId,
        top: EnvironmentId,
        after: u64,
        go_on: &mut dyn FnMut() -> bool,
    ) -> Step<u64> {
        let Ok(after) = u32::try_from(after) else {
            return Step::Done(0);
        };
        let from = self.environment(caller).listings.from(top, after);
        if self.family_listing_top != Some(top) {
            self.family_listings += 1;
            self.family_listing_top = Some(top);
        }
        let listing = self.family_listings;
        // Nothing older than `top` is below it.
        let mut first = EnvironmentId(after.saturating_add(1)).max(top).max(from);
        while let Some(id) = self.environments.range(first..).map(|(&id, _)| id).next() {
            if self.is_at_or_below_marking(id, top, listing) {
                return Step::Done(u64::from(id.0));
            }
            let Some(next) = id.0.checked_add(1) else {
                break;
            };
            first = EnvironmentId(next);
            if !go_on() {
                let next = EnvironmentId(next);
                let resume = ListingResume { top, after, next };
                self.environment(caller).listings.stopped(resume);
                return Step::Stopped(LISTING_TAKEN_AGAIN);
            }
        }
        Step::Done(0)
    }

    /// `is_at_or_below` for a live `id`, for listing number `listing`: the
    /// walk up stops at an environment this listing already decided, and
    /// leaves the verdict on every one it passed. It passes at most
    /// [`MARKED_WALK`]; beyond them `is_below` decides, in a few dozen
    /// steps however deep the family: a listing begun afresh at the bottom
    /// of a chain (alternating two tops starts a new one each call) walked
    /// every level twice, 1,666 of them in one call.
    fn is_at_or_below_marking(
        &mut self,
        id: EnvironmentId,
        top: EnvironmentId,
        listing: u64,
    ) -> bool {
        let mut next = Some(id);
        let mut passed = 0;
        let below = loop {
            let Some(step) = next.filter(|&step| step > top) else {
                break next == Some(top);
            };
            if passed == MARKED_WALK {
                break self.is_below(step, top);
            }
            let Some(environment) = self.environments.get(&step) else {
                break false;
            };
            if environment.family_mark >> 1 == listing {
                break environment.family_mark & 1 == 1;
            }
            next = environment.parent;
            passed += 1;
        };
        // Every one passed is an ancestor of `id` younger than `top`: below
        // `top` exactly if `id` is.
        let mark = (listing << 1) | u64::from(below);
        let mut next = Some(id);
        for _ in 0..passed {
            let Some(environment) = next.and_then(|step| self.environments.get_mut(&step)) else {
                break;
            };
            environment.family_mark = mark;
            next = environment.parent;
        }
        below
    }

    /// `EnvironmentInspect`: one account of environment `id`, `top` or below it.
    pub fn inspect(
        &self,
        top: EnvironmentId,
        id: u64,
        account: EnvironmentAccount,
    ) -> Result<u64, Error> {
        let id = u32::try_from(id)
            .map(EnvironmentId)
            .map_err(|_| Error::NoSuchEnvironment)?;
        if !self.is_at_or_below(id, top) {
            return Err(Error::NoSuchEnvironment);
        }
        let environment = self.environments.get(&id).ok_or(Error::NoSuchEnvironment)?;
        Ok(self.account_of(environment, account))
    }

    /// `EnvironmentName`: names the environment `target` names.
    pub fn name_environment(
        &mut self,
        caller: EnvironmentId,
        target: Handle,
        name: [u64; 2],
    ) -> Result<(), Error> {
        let target = self.target(caller, target, Rights::CONTROL)?;
        self.environment(target).name = name;
        Ok(())
    }

    /// Whether `id` is a live environment and `top` or below it.
    fn is_at_or_below(&self, id: EnvironmentId, top: EnvironmentId) -> bool {
        self.environments.contains_key(&id) && (id == top || self.is_below(id, top))
    }

    /// Any of `environment`'s accounts, with its counts up to now.
    pub(super) fn account_of(&self, environment: &Environment, account: EnvironmentAccount) -> u64 {
        let usage = if current() == Some(environment.id) {
            environment.usage.plus_since(environment.usage_mark)
        } else {
            environment.usage
        };
        let packets = || self.net_counts_of(environment.id);
        match account {
            EnvironmentAccount::Parent => {
                environment.parent.map_or(0, |parent| u64::from(parent.0))
            }
            EnvironmentAccount::State => state_number(environment) as u64,
            EnvironmentAccount::SystemCalls => usage.system_calls,
            EnvironmentAccount::Exceptions => usage.exceptions,
            EnvironmentAccount::Upcalls => usage.upcalls,
            EnvironmentAccount::SlotsRun => environment.slots_run,
            EnvironmentAccount::FramesHeld => environment.frames_held,
            EnvironmentAccount::PacketsReceived => packets().rx_packets,
            EnvironmentAccount::PacketsSent => packets().tx_packets,
            EnvironmentAccount::PacketsDropped => {
                let counts = packets();
                counts.rx_drops + counts.tx_errors + counts.spoofs
            }
            EnvironmentAccount::NameLow => environment.name[0],
            EnvironmentAccount::NameHigh => environment.name[1],
            EnvironmentAccount::Id => u64::from(environment.id.0),
            EnvironmentAccount::FramesCharged => environment.frames.charged(),
            EnvironmentAccount::FrameQuota => environment.frames.limit(),
            EnvironmentAccount::FramesTakenByForce => environment.frames_taken_by_force,
            EnvironmentAccount::FramesGivenBack => environment.frames_given_back,
            EnvironmentAccount::KernelBytesCharged => environment.kernel_bytes.charged(),
            EnvironmentAccount::KernelBytesLimit => environment.kernel_bytes.limit(),
            EnvironmentAccount::SlotsHeld => environment.slots_held,
            EnvironmentAccount::SlotQuota => environment.slots.limit(),
            EnvironmentAccount::SlotsCharged => environment.slots.charged(),
            EnvironmentAccount::CapabilitiesHeld => self.capabilities.len(environment.id) as u64,
        }
    }
}

fn state_number(environment: &Environment) -> EnvironmentState {
    if environment.is_being_taken_down() {
        return EnvironmentState::Ending;
    }
    match environment.state {
        State::Created => EnvironmentState::Created,
        State::Runnable => EnvironmentState::Runnable,
        State::Waiting { .. } => EnvironmentState::Waiting,
        State::Calling { .. } => EnvironmentState::Calling,
    }
}
