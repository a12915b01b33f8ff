//! Which environment runs next, and what happens at the end of every trap.
//!
//! Every trap from user mode ends in `after_trap`: it enforces revocation
//! deadlines, picks the environment to return to (the current one until its
//! quantum is used or it yields; then the next in the run queue, round
//! robin), switches the trap frame and address space if that is another
//! one, and delivers a pending upcall. With nothing runnable the CPU idles;
//! with no environments left the machine powers off.
//!
//! This is a stand-in: step 3 replaces the quantum with the slice vector
//! of CPU slots that environments hold by capability.

use alloc::format;

use exo_abi::counters::Counter;
use exo_abi::upcall::UpcallReason;

use super::{EnvironmentId, SYSTEM, State, System, current};
use crate::arch::cpu;
use crate::arch::trap::{PAGE_FAULT, PageFaultCause, TrapFrame, exception_name};
use crate::arch::trap_entry;
use crate::qemu::{self, ExitCode};
use crate::{println, report_counters};

/// Timer ticks an environment runs before the next one gets the CPU.
const QUANTUM_TICKS: u64 = 10;

/// Counts a timer tick against the running environment's quantum.
pub fn timer_tick() {
    SYSTEM.lock().quantum_used += 1;
}

/// A CPU exception in user mode: an upcall to the environment's handler,
/// or, without one (or inside it), the end of the environment.
pub fn user_exception(frame: &mut TrapFrame, cr2: u64) {
    let mut system = SYSTEM.lock();
    let Some(id) = current() else { return };
    let info = [frame.vector, frame.error_code, cr2];
    let environment = system.environment(id);
    let failure = match environment.enter_upcall(frame, UpcallReason::Fault, info) {
        Ok(()) => {
            cpu::current().count(Counter::Upcalls);
            return;
        }
        Err(_) if environment.upcall.is_none() => "no upcall handler",
        Err(_)
            if environment
                .upcall
                .is_some_and(|upcall| upcall.is_handling(frame.rsp)) =>
        {
            "the fault was in its upcall handler"
        }
        Err(_) => "its exception stack is not mapped writable",
    };
    let (mnemonic, name) = exception_name(frame.vector);
    let mut reason = format!("{mnemonic} {name} at rip={:#x}", frame.rip);
    if frame.vector == PAGE_FAULT {
        reason += &format!(", address {cr2:#x} ({})", PageFaultCause(frame.error_code));
    }
    reason += &format!(": {failure}");
    system.destroy(id, &reason);
}

/// Decides which environment `frame` returns to; idles until one can run.
pub fn after_trap(frame: &mut TrapFrame) {
    loop {
        let mut system = SYSTEM.lock();
        system.enforce_deadlines();
        if let Some(next) = system.choose_next() {
            system.switch_to(next, frame);
            if system.deliver_revocation_request(next, frame) {
                return;
            }
            continue; // it died receiving the upcall: choose again
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

/// Enters the first environment; never returns.
pub fn run() -> ! {
    let mut frame = TrapFrame::default();
    after_trap(&mut frame);
    // SAFETY: `after_trap` loaded a runnable environment's context and
    // address space into `frame` and the CPU.
    unsafe { trap_entry::enter(&frame) }
}

impl System {
    /// The environment to run now, or `None` if none can.
    fn choose_next(&mut self) -> Option<EnvironmentId> {
        let running = current().filter(|id| {
            self.environments
                .get(id)
                .is_some_and(|environment| environment.state == State::Runnable)
        });
        let wants_switch = self.yield_requested || self.quantum_used >= QUANTUM_TICKS;
        if let Some(running) = running
            && (!wants_switch || self.run_queue.is_empty())
        {
            if wants_switch {
                self.yield_requested = false;
                self.quantum_used = 0;
            }
            return Some(running);
        }
        let next = self.run_queue.pop_front()?;
        if let Some(running) = running {
            self.run_queue.push_back(running);
        }
        self.yield_requested = false;
        self.quantum_used = 0;
        Some(next)
    }

    /// Makes `next` the running environment, saving the current one's context.
    fn switch_to(&mut self, next: EnvironmentId, frame: &mut TrapFrame) {
        let previous = current();
        if previous == Some(next) {
            return;
        }
        if let Some(environment) = previous.and_then(|id| self.environments.get_mut(&id)) {
            environment.saved = frame.clone();
        }
        let environment = self.environment(next);
        *frame = environment.saved.clone();
        environment.space.activate();
        cpu::current().set_environment(next.0);
        cpu::current().count(Counter::EnvironmentSwitches);
    }

    /// Enters `id`'s upcall entry for an open revocation request it has not
    /// been told about. Returns false if that destroyed it.
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
        let info = [request.wanted, request.deadline, 0];
        request.delivered = true;
        environment.revocation = Some(request);
        match environment.enter_upcall(frame, UpcallReason::RevokeFrames, info) {
            Ok(()) => {
                cpu::current().count(Counter::Upcalls);
                true
            }
            Err(_) => {
                self.destroy(id, "its exception stack is not mapped writable");
                false
            }
        }
    }
}

/// No environment is left: report and end the run, successfully if the
/// first environment exited with status 0.
fn power_off(first_exit_status: Option<u64>) -> ! {
    println!("all environments have ended");
    report_counters();
    match first_exit_status {
        Some(0) => qemu::exit(ExitCode::Success),
        _ => qemu::exit(ExitCode::Failure),
    }
}
