//! Upcalls: how the kernel enters an environment to tell it something.
//!
//! An environment registers one upcall entry and an exception stack with
//! `SetUpcall`. To deliver an upcall the kernel writes an [`UpcallFrame`] at
//! the top of that stack — the interrupted registers plus the reason — and
//! starts the entry with `rsp` and `rdi` pointing at the frame. The library
//! OS handles the event and resumes the interrupted code itself, from the
//! frame, without entering the kernel.
//!
//! A fault taken while `rsp` is inside the exception stack means the handler
//! itself faulted; the kernel then destroys the environment.

/// Why the kernel entered the upcall entry.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpcallReason {
    /// A CPU exception: `info = [vector, error code, faulting address]`; the
    /// address (CR2) is a page fault's only, 0 for any other exception.
    Fault = 1,
    /// The kernel asks for frames back: `info = [frames wanted, deadline tick, 0]`.
    /// Frames not given back (dropped) by the deadline are taken by force.
    RevokeFrames = 2,
    /// A slot of the environment's starts (with `UpcallOptions::SCHEDULER`):
    /// `info = [slot index, tick, 0]`; the registers are the context that was
    /// interrupted when it last lost the CPU.
    SliceStart = 3,
}

/// The general registers of the interrupted code, as an upcall sees them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Registers {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub rsp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
}

/// What the kernel writes on the exception stack for an upcall.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpcallFrame {
    /// An [`UpcallReason`] code.
    pub reason: u64,
    /// Reason-specific values (see [`UpcallReason`]).
    pub info: [u64; 3],
    /// Where and how to resume the interrupted code; the handler may edit it.
    pub registers: Registers,
}

impl UpcallFrame {
    pub fn reason(&self) -> Option<UpcallReason> {
        match self.reason {
            1 => Some(UpcallReason::Fault),
            2 => Some(UpcallReason::RevokeFrames),
            3 => Some(UpcallReason::SliceStart),
            _ => None,
        }
    }
}

/// Byte offsets into `Registers`, for the resume code in assembly.
pub mod offsets {
    use super::{Registers, UpcallFrame};
    use core::mem::offset_of;

    pub const REGISTERS: usize = offset_of!(UpcallFrame, registers);
    pub const RAX: usize = REGISTERS + offset_of!(Registers, rax);
    pub const RBX: usize = REGISTERS + offset_of!(Registers, rbx);
    pub const RCX: usize = REGISTERS + offset_of!(Registers, rcx);
    pub const RDX: usize = REGISTERS + offset_of!(Registers, rdx);
    pub const RSI: usize = REGISTERS + offset_of!(Registers, rsi);
    pub const RDI: usize = REGISTERS + offset_of!(Registers, rdi);
    pub const RBP: usize = REGISTERS + offset_of!(Registers, rbp);
    pub const RSP: usize = REGISTERS + offset_of!(Registers, rsp);
    pub const R8: usize = REGISTERS + offset_of!(Registers, r8);
    pub const R9: usize = REGISTERS + offset_of!(Registers, r9);
    pub const R10: usize = REGISTERS + offset_of!(Registers, r10);
    pub const R11: usize = REGISTERS + offset_of!(Registers, r11);
    pub const R12: usize = REGISTERS + offset_of!(Registers, r12);
    pub const R13: usize = REGISTERS + offset_of!(Registers, r13);
    pub const R14: usize = REGISTERS + offset_of!(Registers, r14);
    pub const R15: usize = REGISTERS + offset_of!(Registers, r15);
    pub const RIP: usize = REGISTERS + offset_of!(Registers, rip);
    pub const RFLAGS: usize = REGISTERS + offset_of!(Registers, rflags);
}
