//! What the kernel does when the hardware or a program interrupts it: a
//! timer tick, the network card, a CPU exception in user mode. Each is a
//! method of `System`, called by `crate::dispatch` with the lock held; which
//! environment runs afterwards is `schedule.rs`'s business.

use exo_abi::counters::Counter;
use exo_abi::trace::Kind;
use exo_abi::upcall::UpcallReason;

use super::{System, current};
use crate::arch::cpu;
use crate::arch::trap::{PAGE_FAULT, PageFaultCause, TrapFrame, exception_name};
use crate::trace;

impl System {
    /// A timer tick: the current slot ends and the next begins. (Whoever
    /// runs in it gets a fresh facts page from `deliver_upcalls`.)
    pub fn timer_tick(&mut self) {
        self.slices.advance();
        self.scheduler.slot_started = true;
        self.net_tick();
    }

    /// A CPU exception in user mode: an upcall to the environment's
    /// handler, or, without one (or inside it), the end of the environment,
    /// which is taken down in its own time (`teardown.rs`).
    pub fn user_exception(&mut self, frame: &mut TrapFrame, address: u64) {
        let Some(id) = current() else { return };
        let info = [frame.vector, frame.error_code, address];
        let environment = self.environment(id);
        let failure = match environment.enter_upcall(frame, UpcallReason::Fault, info) {
            Ok(()) => {
                cpu::current().count(Counter::Upcalls);
                trace::record(Kind::Upcall, id.0, [UpcallReason::Fault as u64, info[0]]);
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
        let reason = FaultReason {
            frame,
            address,
            failure,
        };
        self.fail(id, reason);
    }
}

/// Why a fault ended an environment, written straight to the console:
/// ending one must not allocate.
struct FaultReason<'a> {
    frame: &'a TrapFrame,
    /// A page fault's address (CR2).
    address: u64,
    failure: &'a str,
}

impl core::fmt::Display for FaultReason<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (mnemonic, name) = exception_name(self.frame.vector);
        write!(f, "{mnemonic} {name} at rip={:#x}", self.frame.rip)?;
        if self.frame.vector == PAGE_FAULT {
            let cause = PageFaultCause(self.frame.error_code);
            write!(f, ", address {:#x} ({cause})", self.address)?;
        }
        write!(f, ": {}", self.failure)
    }
}
