//! Giving the CPU away: `YieldTo` donates the rest of the current slot;
//! `Wait` blocks until an event (the timer, a call, a notification) and
//! gives the slot away meanwhile.

use exo_abi::counters::Counter;
use exo_abi::syscall::{Event, Sysnum};
use exo_abi::{Error, Handle, Rights};

use super::calls::Queued;
use super::{EnvironmentId, State, Step, System};
use crate::arch::cpu;
use crate::time;

/// The length of the `syscall` instruction (0F 05), the only way into `Wait`.
const SYSCALL_LENGTH: u64 = 2;

impl System {
    /// Gives the rest of the current slot to the environment `target` names.
    pub fn yield_to(&mut self, caller: EnvironmentId, target: Handle) -> Result<(), Error> {
        let target = self.target(caller, target, Rights::CALL)?;
        if !self.environment(target).is_runnable() {
            return Err(Error::NotReceiving);
        }
        if target != caller {
            self.scheduler.donate(target);
            cpu::current().count(Counter::DirectedYields);
        }
        Ok(())
    }

    /// Blocks `caller` until one of `events`; the results arrive when it
    /// wakes. Returns at once with (`NOTIFY`, bits) if it waits for
    /// notifications and bits are pending, and with (`CALL`, entry tag) and
    /// the call's `rdi`, `r8`, `r9` in `more` if it waits for calls and a
    /// caller is queued (`calls.rs`).
    pub fn wait(
        &mut self,
        caller: EnvironmentId,
        events: u64,
        timeout: u64,
        more: &mut Option<[u64; 3]>,
    ) -> Result<Step<(u64, u64)>, Error> {
        let events = Event::from_bits(events)
            .filter(|events| !events.is_empty())
            .ok_or(Error::InvalidArgument)?;
        // A `Wait` says the caller has nothing more to send for now: its
        // polled rings go out here, not only when it leaves the CPU, which
        // a `Wait` that returns at once never does (chapter 5.5).
        self.net_drain_owned_by(caller);
        let environment = self.environment(caller);
        if events.contains(Event::NOTIFY) && environment.pending_signals != 0 {
            let bits = core::mem::take(&mut environment.pending_signals);
            return Ok(Step::Done((Event::NOTIFY.bits(), bits)));
        }
        if events.contains(Event::CALL) && environment.serving.is_none() {
            match self.take_queued_call(caller, &mut super::share()) {
                Queued::Call([event, entry], registers) => {
                    *more = Some(registers);
                    return Ok(Step::Done((event, entry)));
                }
                // Its share ran out before it found a call to take: it is
                // taken again, as it was made.
                Queued::Stopped => return Ok(Step::Stopped(0)),
                Queued::Empty => {}
            }
        }
        let deadline = match events.contains(Event::TIMER) {
            // At the next tick at the soonest: timers are looked at between
            // ticks too, when the pool runs.
            true => time::ticks().saturating_add(timeout.max(1)),
            false => u64::MAX,
        };
        if events.contains(Event::TIMER) {
            // Its entry was paid for with its record; the heap has room for
            // it unless the accounts are wrong, and then this is the answer.
            if !crate::memory::heap::has_room() {
                return Err(Error::OutOfMemory);
            }
            let environment = self.environment(caller);
            let previous = environment.timer.replace(deadline);
            self.timers.arm(caller, previous, deadline);
        }
        self.environment(caller).state = State::Waiting { events, deadline };
        self.scheduler.yield_requested = true;
        Ok(Step::Done((0, 0)))
    }

    /// Makes `id`, blocked in `Wait`, runnable so that an upcall can run
    /// first, with its `Wait` made again when it resumes: its `rip` back on
    /// the `syscall` instruction, its arguments restored, the timeout what
    /// is left of it. Nothing if it is not waiting or has no upcall entry.
    pub(super) fn interrupt_wait(&mut self, id: EnvironmentId) {
        let now = time::ticks();
        let environment = self.environment(id);
        let State::Waiting { events, deadline } = environment.state else {
            return;
        };
        if environment.upcall.is_none() {
            return;
        }
        let saved = &mut environment.saved;
        saved.rip = saved.rip.wrapping_sub(SYSCALL_LENGTH);
        saved.rax = Sysnum::Wait as u64;
        saved.rdi = events.bits();
        saved.rsi = if events.contains(Event::TIMER) {
            deadline.saturating_sub(now)
        } else {
            0
        };
        environment.state = State::Runnable;
        self.may_join_pool(id);
    }

    /// Makes `id`, blocked in `Call` in a server's queue (the server has
    /// not taken the call), runnable so that an upcall can run first, with
    /// its call withdrawn and made again when it resumes, at the end of the
    /// queue: its `rip` back on the `syscall` instruction, its arguments
    /// restored. Nothing if it is not queued or has no upcall entry: a call
    /// a server has taken is the server's to answer.
    pub(super) fn interrupt_call(&mut self, id: EnvironmentId) {
        let environment = self.environment(id);
        let State::Calling { server } = environment.state else {
            return;
        };
        if environment.upcall.is_none() {
            return;
        }
        let Some(call) = environment.queued.take() else {
            return;
        };
        let before = environment.previous_caller.take();
        let after = environment.next_caller.take();
        let saved = &mut environment.saved;
        saved.rip = saved.rip.wrapping_sub(SYSCALL_LENGTH);
        saved.rax = Sysnum::Call as u64;
        [saved.rsi, saved.rdx] = call.arguments;
        saved.r10 = call.passed;
        environment.state = State::Runnable;
        self.unqueue(server, id, before, after);
        self.may_join_pool(id);
    }

    /// Wakes `id` if it sleeps on a timer that has passed (and takes the
    /// timer out of `timers`): a few steps, however many others expired.
    pub(super) fn wake_if_due(&mut self, id: EnvironmentId) {
        let now = time::ticks();
        let Some(environment) = self.environments.get_mut(&id) else {
            return;
        };
        let Some(deadline) = environment.timer.filter(|&deadline| deadline <= now) else {
            return;
        };
        environment.timer = None;
        self.timers.disarm(id, deadline);
        if let State::Waiting {
            events,
            deadline: waiting_for,
        } = self.environment(id).state
            && events.contains(Event::TIMER)
            && waiting_for == deadline
        {
            self.wake(id, [0, Event::TIMER.bits(), 0]);
        }
    }

    /// Wakes the environments whose timers have passed: the timers are kept
    /// in deadline order, so this looks at the expired ones and no other
    /// environment. One whose wait ended otherwise (a signal, a call, an
    /// upcall) is left as it is. A quarter of a tick's worth at a time: the
    /// rest at the next slot start, a tick later (3,816 sleepers set for one
    /// tick once woke in one go, interrupts off, for 38 ticks of the test
    /// clock, at whoever's slot start it was: `hostile-timers`' alarms).
    pub(super) fn wake_timers(&mut self) {
        let now = time::ticks();
        // Asked whenever the slot's owner is not about to run: with nothing
        // expired, it reads no clock.
        if self.timers.earliest().is_none_or(|deadline| deadline > now) {
            return;
        }
        let mut go_on = super::share();
        while go_on()
            && let Some((id, deadline)) = self.timers.take_expired(now)
        {
            let Some(environment) = self.environments.get_mut(&id) else {
                continue;
            };
            environment.timer = None;
            if let State::Waiting {
                events,
                deadline: waiting_for,
            } = environment.state
                && events.contains(Event::TIMER)
                && waiting_for == deadline
            {
                self.wake(id, [0, Event::TIMER.bits(), 0]);
            }
        }
    }
}
