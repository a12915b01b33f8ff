//! Upcalls: entering an environment at its registered entry to tell it
//! something (a fault, a revocation request).
//!
//! The kernel writes an `UpcallFrame` — the interrupted registers and the
//! reason — at the top of the environment's exception stack, through its
//! own page tables, and rewrites the trap frame to start the entry there.
//! The library OS resumes the interrupted code itself.

use exo_abi::layout::{USER_CODE_SELECTOR, USER_DATA_SELECTOR, USER_MAP_END};
use exo_abi::syscall::UpcallOptions;
use exo_abi::upcall::{Registers, UpcallFrame, UpcallReason};
use exo_abi::{Error, Handle, Rights};

use super::lifecycle::USER_RFLAGS;
use super::user_memory::UserRange;
use super::{Environment, EnvironmentId, State, System, UpcallEntry};
use crate::arch::trap::{RESUME_VECTOR, TrapFrame};
use crate::memory::lent_frames;

/// The smallest exception stack accepted: the frame plus room to run.
const MIN_STACK: u64 = 1024;

impl System {
    /// Registers where upcalls enter the environment `target` names, and
    /// whether they also enter at the start of each of its slots. Entry 0
    /// removes the registration: faults then end the environment, as they
    /// do before one is made.
    pub fn set_upcall(
        &mut self,
        caller: EnvironmentId,
        target: Handle,
        [entry, stack_top, stack_size, options]: [u64; 4],
    ) -> Result<(), Error> {
        let options = UpcallOptions::from_bits(options).ok_or(Error::InvalidArgument)?;
        let target = self.target(caller, target, Rights::CONTROL)?;
        // Another's entry only before it starts: moved under a running
        // environment, it would run code the holder chose on the target's
        // next fault or slot, or end it at once with a stack that does not
        // take the frame (`CONTROL` is not `DESTROY`).
        if target != caller && self.environment(target).state != State::Created {
            return Err(Error::InvalidState);
        }
        if entry == 0 {
            self.environment(target).upcall = None;
            return Ok(());
        }
        if stack_size < MIN_STACK || stack_size > stack_top {
            return Err(Error::InvalidArgument);
        }
        if entry >= USER_MAP_END || stack_top > USER_MAP_END {
            return Err(Error::KernelAddress);
        }
        let at_slot_start = options.contains(UpcallOptions::SCHEDULER);
        self.environment(target).upcall = Some(UpcallEntry {
            entry,
            stack_top,
            stack_size,
            at_slot_start,
        });
        Ok(())
    }
}

impl Environment {
    /// Rewrites `frame` (this environment's interrupted context) to enter
    /// its upcall entry with `reason`. Fails if it has no entry, is already
    /// in its handler, or its exception stack is not mapped writable.
    pub(super) fn enter_upcall(
        &mut self,
        frame: &mut TrapFrame,
        reason: UpcallReason,
        info: [u64; 3],
    ) -> Result<(), Error> {
        let upcall = self.upcall.ok_or(Error::InvalidState)?;
        if upcall.is_handling(frame.rsp) {
            return Err(Error::InvalidState);
        }
        let record = UpcallFrame {
            reason: reason as u64,
            info,
            registers: Registers {
                rax: frame.rax,
                rbx: frame.rbx,
                rcx: frame.rcx,
                rdx: frame.rdx,
                rsi: frame.rsi,
                rdi: frame.rdi,
                rbp: frame.rbp,
                rsp: frame.rsp,
                r8: frame.r8,
                r9: frame.r9,
                r10: frame.r10,
                r11: frame.r11,
                r12: frame.r12,
                r13: frame.r13,
                r14: frame.r14,
                r15: frame.r15,
                rip: frame.rip,
                rflags: frame.rflags,
            },
        };
        let size = size_of::<UpcallFrame>() as u64;
        let address = (upcall.stack_top - size) & !15;
        UserRange::new(address, size)?.write(&self.space, lent_frames::bytes_of(&record))?;
        *frame = TrapFrame {
            rip: upcall.entry,
            rsp: address,
            rdi: address,
            rflags: USER_RFLAGS,
            cs: u64::from(USER_CODE_SELECTOR),
            ss: u64::from(USER_DATA_SELECTOR),
            vector: RESUME_VECTOR,
            ..TrapFrame::default()
        };
        Ok(())
    }
}
