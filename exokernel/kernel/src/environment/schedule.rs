//! Which environment runs next, and what happens at the end of every trap.
//!
//! The CPU is a slice vector of N slots, one timer tick each, run in order
//! round after round. At the start of a slot:
//! - its owner runs, if it is runnable;
//! - otherwise (a free slot, or an owner blocked in `Wait` or `Call`) the
//!   slot goes to the **best-effort pool**: the runnable environments that
//!   hold no slots, round-robin, one per slot; with none, the CPU idles.
//!
//! So an environment holding k slots gets k/N of the CPU however busy the
//! others are, and a program holding none still runs whenever the CPU would
//! otherwise idle. Within a slot, the running environment keeps the CPU
//! until it yields (the rest goes to the pool), donates it (`YieldTo`,
//! `Call`, `Reply`: the target runs at once), or blocks.
//!
//! Every trap from user mode ends in `after_trap` (called by `crate::dispatch`,
//! which dispatches traps to their handlers), which applies these rules,
//! switches the trap frame and address space if another environment is to
//! run, and delivers a pending upcall (slot start, revocation request).

use alloc::collections::BTreeMap;

use exo_abi::counters::Counter;
use exo_abi::trace::Kind;
use exo_abi::upcall::UpcallReason;
use exo_kernel_core::scheduler;

use super::inspect::Usage;
use super::pool::PoolTurns;
use super::{EnvironmentId, SYSTEM, State, System, current};
use crate::arch::cpu;
use crate::arch::trap::TrapFrame;
use crate::qemu::{self, ExitCode};
use crate::{println, time, trace};

/// Sets the system up once at boot: the slice vector gets its `slots`
/// slots, and the capability arena its entries.
pub fn init(slots: usize) {
    let mut system = SYSTEM.lock();
    system.slices.resize(slots);
    let arena = system.reserve_capability_arena();
    println!(
        "capability arena: {} KiB, and the heap as much larger",
        arena >> 10
    );
}

/// Decides which environment `frame` returns to; idles until one can run.
pub fn after_trap(frame: &mut TrapFrame) {
    let previous = current().map_or(0, |id| id.0);
    loop {
        let mut system = SYSTEM.lock();
        system.wake_slot_owner();
        system.enforce_deadlines();
        let choice = system.choose_next();
        if choice.map(|(next, _)| next) != current() {
            // Whoever ran stops here: its context moves from the trap frame
            // to its environment, where wake-ups and replies write results.
            let slot_start = choice.is_some_and(|(_, start)| start);
            system.park_current(frame, slot_start);
        }
        if let Some((next, slot_start)) = choice {
            if system.switch_to(next, frame) {
                trace::record(
                    Kind::Switch,
                    next.0,
                    [u64::from(previous), u64::from(next.0)],
                );
                // The facts page is rewritten once: here after a switch
                // within a slot, in `deliver_upcalls` at a slot start.
                if !slot_start {
                    system.update_facts(next);
                }
            }
            if system.is_ending(next) {
                // It runs no more: its time goes to taking it down, a share
                // at a time.
                system.end_a_share(next);
            } else if system.deliver_upcalls(next, slot_start, frame) {
                return;
            }
            // It ended receiving an upcall, or a share of its ending was
            // done: the clock gets in before the next decision, after a
            // teardown that finished as after one that stopped. Otherwise a
            // row of environments, each ended as it is chosen, would be
            // taken down one after another with interrupts off, and the
            // slots of all the others would wait for the whole row
            // (`hostile-shares`).
            drop(system);
            cpu::take_pending_interrupts();
            continue;
        }
        if system.environments.is_empty() {
            let status = system.first_exit_status;
            drop(system);
            power_off(status);
        }
        drop(system);
        cpu::wait_for_interrupt();
    }
}

/// The context of the first environment to run, its address space loaded
/// (or idles until there is one, or powers off if none is left).
pub fn first_context() -> TrapFrame {
    let mut frame = TrapFrame::default();
    after_trap(&mut frame);
    frame
}

impl System {
    /// Whether, after a system call or an exception, `after_trap` would give the CPU
    /// straight back to the caller with nothing to deliver. The last
    /// decision chose the caller and delivered its upcalls; it still holds
    /// if no slot has started (only a timer tick starts one), the caller
    /// neither yielded nor donated its slot (it may be running on one
    /// donated to it) and can still run (not ending), no deadline
    /// has come (time moves only with ticks), and no revocation request
    /// waits to be delivered to it.
    pub fn caller_continues(&self) -> bool {
        let scheduler = &self.scheduler;
        if scheduler.slot_started
            || scheduler.yield_requested
            || scheduler
                .donation
                .is_some_and(|target| Some(target) != current())
            || time::ticks() >= self.earliest_deadline
        {
            return false;
        }
        current()
            .and_then(|id| self.environments.get(&id))
            .is_some_and(|caller| {
                caller.is_runnable()
                    && caller.ending.is_none()
                    && caller.revocation.is_none_or(|request| request.delivered)
            })
    }

    /// The environment to run now and whether it starts a slot, or `None`
    /// if none can run: the decision is kernel-core's (`scheduler.rs`);
    /// first, unless the slot's owner is about to run, whoever's timer has
    /// passed is woken.
    fn choose_next(&mut self) -> Option<(EnvironmentId, bool)> {
        let owner = self.slices.owner(self.slices.current());
        // The others' timers whenever the slot's owner is not about to run:
        // a slot holder is woken at its own slot's start, and the pool runs
        // only when the owner does not. Woken at every slot start, 48
        // sleepers of a tick each took 11% of a slot holder's time
        // (`hostile-shares`).
        if !self.owner_runs_next() {
            self.wake_timers();
        }
        let mut candidates = EnvironmentTable {
            environments: &mut self.environments,
            pool: &mut self.pool,
        };
        self.scheduler
            .choose_next(current(), owner, &mut candidates)
    }

    /// At a slot's start, wakes its owner if its timer has passed, whatever
    /// others' timers expired with its: a sleeper not woken at its own
    /// slot's start would lose the slot to the pool (3,816 sleepers set for
    /// one tick before it once kept the holder of every slot asleep 132
    /// ticks past its own).
    fn wake_slot_owner(&mut self) {
        if self.scheduler.slot_started
            && let Some(owner) = self.slices.owner(self.slices.current())
        {
            self.wake_if_due(owner);
        }
    }

    /// Whether the current slot's owner runs next: it can run, and the slot
    /// starts, or it is running and neither yields nor donates. That time is
    /// its own, and the kernel's chores for others (waking their timers,
    /// taking frames by force) stay out of it, or nearly.
    pub(super) fn owner_runs_next(&self) -> bool {
        let Some(owner) = self.slices.owner(self.slices.current()) else {
            return false;
        };
        if !self
            .environments
            .get(&owner)
            .is_some_and(|environment| environment.is_runnable())
        {
            return false;
        }
        let scheduler = &self.scheduler;
        scheduler.slot_started
            || (current() == Some(owner)
                && !scheduler.yield_requested
                && scheduler.donation.is_none())
    }

    /// Saves the running environment's context from `frame` and leaves the
    /// CPU with no running environment; `slot_start`: a slot starts, and
    /// the time is the next one's.
    fn park_current(&mut self, frame: &TrapFrame, slot_start: bool) {
        if let Some(id) = current() {
            // Leaving the CPU, however it happens, is when its polled
            // transmit rings are worth draining: all of a drain if it
            // blocked in a call of its own (its own time), what the
            // background drains may still take if it was preempted, yielded,
            // or held still at a slot start (the next one's: a program whose
            // frames are taken by force at another's slot start cannot run,
            // and its full rings once drained in that slot's time).
            let blocked_by_itself = !slot_start
                && self
                    .environments
                    .get(&id)
                    .is_some_and(|environment| !environment.is_runnable());
            if blocked_by_itself {
                self.net_drain_owned_by(id);
            } else {
                self.net_drain_preempted(id);
            }
        }
        let mut untold = None;
        if let Some(environment) = current().and_then(|id| self.environments.get_mut(&id)) {
            environment.saved = frame.clone();
            environment.segments = cpu::UserSegments::read();
            environment.usage = environment.usage.plus_since(environment.usage_mark);
            // Going to sleep (or to a server's queue) with a revocation
            // request it has not heard, and not in its handler: it hears it
            // first (`interrupt_wait`, `interrupt_call`), or it could sleep
            // past the deadline, the request never told.
            if environment
                .revocation
                .is_some_and(|request| !request.delivered)
                && matches!(
                    environment.state,
                    State::Waiting { .. } | State::Calling { .. }
                )
                && environment
                    .upcall
                    .is_some_and(|upcall| !upcall.is_handling(frame.rsp))
            {
                untold = Some(environment.id);
            }
        }
        cpu::current().set_environment(0);
        if let Some(id) = untold {
            self.interrupt_wait(id);
            self.interrupt_call(id);
        }
    }

    /// Makes `next` the running environment (the previous one is parked);
    /// returns whether it was not already.
    fn switch_to(&mut self, next: EnvironmentId, frame: &mut TrapFrame) -> bool {
        if current() == Some(next) {
            return false;
        }
        let environment = self.environment(next);
        *frame = environment.saved.clone();
        environment.segments.load();
        environment.usage_mark = Usage::of_this_cpu();
        environment.space.activate();
        cpu::current().set_environment(next.0);
        cpu::current().count(Counter::EnvironmentSwitches);
        true
    }

    /// Delivers what `id` must hear before it runs: the start of a slot (if
    /// it asked) and an open revocation request. Returns false if that
    /// ended it.
    fn deliver_upcalls(
        &mut self,
        id: EnvironmentId,
        slot_start: bool,
        frame: &mut TrapFrame,
    ) -> bool {
        if slot_start {
            self.environment(id).slots_run += 1;
            let slot = self.slices.current();
            let owner = self.slices.owner(slot).map_or(0, |owner| owner.0);
            trace::record(Kind::SlotStart, id.0, [slot as u64, u64::from(owner)]);
            // Once per slot, not on every trap: the system-call path stays short.
            self.update_facts(id);
        }
        // A revocation request first: entered at a slot start, the slot's
        // upcall would have it find the environment in its handler every
        // time, and a program with one (`SCHEDULER`) never heard a request
        // before its deadline took the frames.
        if !self.deliver_revocation_request(id, frame) {
            return false;
        }
        if slot_start {
            let environment = self.environment(id);
            let wants = environment
                .upcall
                .is_some_and(|upcall| upcall.at_slot_start && !upcall.is_handling(frame.rsp));
            if wants {
                let info = [self.slices.current() as u64, time::ticks(), 0];
                if !self.enter_or_end(id, frame, UpcallReason::SliceStart, info) {
                    return false;
                }
            }
        }
        true
    }

    /// Enters `id`'s upcall with `reason`; ends it if its exception stack
    /// cannot take the frame. Returns whether it may run.
    fn enter_or_end(
        &mut self,
        id: EnvironmentId,
        frame: &mut TrapFrame,
        reason: UpcallReason,
        info: [u64; 3],
    ) -> bool {
        match self.environment(id).enter_upcall(frame, reason, info) {
            Ok(()) => {
                cpu::current().count(Counter::Upcalls);
                trace::record(Kind::Upcall, id.0, [reason as u64, info[0]]);
                true
            }
            Err(_) => {
                self.fail(id, "its exception stack is not mapped writable");
                false
            }
        }
    }

    /// Enters `id`'s upcall entry for an open revocation request it has not
    /// been told about. Returns false if that ended it.
    fn deliver_revocation_request(&mut self, id: EnvironmentId, frame: &mut TrapFrame) -> bool {
        let environment = self.environment(id);
        let Some(mut request) = environment.revocation.filter(|request| !request.delivered) else {
            return true;
        };
        let Some(upcall) = environment.upcall else {
            return true; // nobody to ask: the deadline will decide
        };
        if upcall.is_handling(frame.rsp) {
            return true; // busy in its handler: ask when it is done
        }
        // The time allowed counts again from here; its deadline's entry
        // moves with it (unless the heap is too full to move it, when the
        // first deadline stands).
        let deadline = request.deadline.max(time::ticks() + request.allowed_ticks);
        if deadline != request.deadline && crate::memory::heap::has_room() {
            request.deadline = deadline;
            let previous = environment.revocation_armed.replace(deadline);
            self.revocation_deadlines.arm(id, previous, deadline);
        }
        let environment = self.environment(id);
        request.delivered = true;
        environment.revocation = Some(request);
        self.earliest_deadline = self.earliest_deadline.min(request.deadline);
        let info = [request.wanted, request.deadline, 0];
        self.enter_or_end(id, frame, UpcallReason::RevokeFrames, info)
    }
}

/// No environment is left: report and end the run, successfully if the
/// first environment exited with status 0.
fn power_off(first_exit_status: Option<u64>) -> ! {
    println!("all environments have ended");
    cpu::report_counters();
    match first_exit_status {
        Some(0) => qemu::exit(ExitCode::Success),
        _ => qemu::exit(ExitCode::Failure),
    }
}

/// The environments as the scheduling decision sees them, and the pool's turns.
struct EnvironmentTable<'a> {
    environments: &'a mut BTreeMap<EnvironmentId, alloc::boxed::Box<super::Environment>>,
    pool: &'a mut PoolTurns,
}

impl scheduler::Candidates for EnvironmentTable<'_> {
    fn is_runnable(&self, id: EnvironmentId) -> bool {
        self.environments
            .get(&id)
            .is_some_and(|environment| environment.is_runnable())
    }

    fn pool_next(&mut self, except: Option<EnvironmentId>) -> Option<EnvironmentId> {
        self.pool.next(self.environments, except)
    }

    fn pool_turn_taken(&mut self, id: EnvironmentId) {
        self.pool.turn_taken(self.environments, id);
    }
}
