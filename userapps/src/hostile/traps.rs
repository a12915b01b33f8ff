//! Kernel entries ring 3 should not be able to make harmful: instructions that trap, and
//! system calls and interrupts taken with a stack pointer that points nowhere.
//!
//! [`UserTrap`]s are instructions that end in a CPU exception in ring 3 — privileged ones
//! (#GP), `int` through a gate ring 3 may not use (#GP), an invalid opcode (#UD), a
//! division by zero (#DE) — each a different path through the kernel's trap entry, with
//! or without an error code. An upcall handler that gets one skips the instruction
//! ([`UserTrap::LENGTH`] tells it how far) and the program goes on.
//!
//! [`syscall_on_stack`] and [`spin_on_stack`] enter the kernel with `rsp` set to a value
//! no stack could have: 0, a kernel address, a non-canonical one. `syscall` does not
//! switch stacks, so a kernel that touched the stack before loading its own would write
//! where the program pointed it; an interrupt switches stacks itself, and the kernel must
//! give the value back untouched. `rsp` is put back from a register the kernel preserves
//! before any Rust code runs.
#![allow(unsafe_code)] // instructions that trap, and `rsp` pointing nowhere

use core::arch::asm;

use exo_abi::layout::{KERNEL_HALF_START, USER_END, USER_MAP_END};
use exo_abi::syscall::Sysnum;

/// An instruction ring 3 may try but not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserTrap {
    /// `cli`: clear the interrupt flag (#GP with IOPL 0).
    ClearInterrupts,
    /// `sti`: set it (#GP).
    SetInterrupts,
    /// `hlt`: stop the CPU (#GP in ring 3).
    Halt,
    /// `in al, dx`: read an I/O port, the serial port's (#GP: no I/O permission).
    PortIn,
    /// `out dx, al`: write one, QEMU's exit device's (#GP).
    PortOut,
    /// `int3`: a breakpoint, through a gate ring 3 may not use (#GP; #BP if it may).
    Breakpoint,
    /// `int 0x80`: a software interrupt, as 32-bit Linux makes system calls (#GP).
    SoftwareInterrupt,
    /// `ud2`: the instruction defined to be invalid (#UD).
    InvalidOpcode,
    /// `div` by zero (#DE).
    DivideByZero,
}

/// Architectural exception vectors (Intel SDM vol. 3, table 6-1).
pub const DIVIDE_ERROR_VECTOR: u64 = 0;
pub const DEBUG_VECTOR: u64 = 1;
pub const BREAKPOINT_VECTOR: u64 = 3;
pub const INVALID_OPCODE_VECTOR: u64 = 6;
pub const GENERAL_PROTECTION_VECTOR: u64 = 13;
pub const PAGE_FAULT_VECTOR: u64 = 14;

impl UserTrap {
    pub const ALL: [UserTrap; 9] = [
        UserTrap::ClearInterrupts,
        UserTrap::SetInterrupts,
        UserTrap::Halt,
        UserTrap::PortIn,
        UserTrap::PortOut,
        UserTrap::Breakpoint,
        UserTrap::SoftwareInterrupt,
        UserTrap::InvalidOpcode,
        UserTrap::DivideByZero,
    ];

    /// Bytes of the instruction that traps, for a handler that skips it.
    pub const fn length(self) -> u64 {
        match self {
            UserTrap::SoftwareInterrupt | UserTrap::InvalidOpcode => 2,
            UserTrap::DivideByZero => 3,
            _ => 1,
        }
    }

    /// Whether `vector` is an exception this instruction may raise in ring 3.
    pub const fn raises(self, vector: u64) -> bool {
        match self {
            UserTrap::InvalidOpcode => vector == INVALID_OPCODE_VECTOR,
            UserTrap::DivideByZero => vector == DIVIDE_ERROR_VECTOR,
            UserTrap::Breakpoint => {
                vector == GENERAL_PROTECTION_VECTOR || vector == BREAKPOINT_VECTOR
            }
            _ => vector == GENERAL_PROTECTION_VECTOR,
        }
    }

    /// Whether the CPU reports `vector` after the instruction (a trap: nothing to skip)
    /// rather than at it (a fault: the handler must skip [`length`](Self::length) bytes).
    pub const fn reported_after(vector: u64) -> bool {
        vector == BREAKPOINT_VECTOR
    }

    /// Executes it; returns only if the upcall handler skipped it.
    pub fn attempt(self) {
        // SAFETY: in ring 3 each of these traps before it has any effect; the upcall
        // handler resumes after it with every register as it was. (Were one to run, it
        // would only touch the flags, the CPU's state or a port, or registers it names:
        // no memory.)
        unsafe {
            match self {
                UserTrap::ClearInterrupts => asm!("cli"),
                UserTrap::SetInterrupts => asm!("sti"),
                UserTrap::Halt => asm!("hlt"),
                UserTrap::PortIn => asm!("in al, dx", in("dx") 0x3f8u16, out("al") _),
                UserTrap::PortOut => asm!("out dx, al", in("dx") 0xf4u16, in("al") 0x11u8),
                UserTrap::Breakpoint => asm!("int3"),
                UserTrap::SoftwareInterrupt => asm!("int 0x80"),
                UserTrap::InvalidOpcode => asm!("ud2"),
                UserTrap::DivideByZero => asm!(
                    "div rcx",
                    in("rcx") 0u64,
                    inout("rax") 1u64 => _,
                    inout("rdx") 0u64 => _,
                ),
            }
        }
    }
}

/// Stack pointers no stack could have, and what to call each in reports.
pub const BAD_STACKS: [(&str, u64); 6] = [
    ("rsp = 0", 0),
    ("rsp = 8", 8),
    ("rsp at the end of the mappable user half", USER_MAP_END),
    ("rsp non-canonical", USER_END),
    ("rsp in the kernel half", KERNEL_HALF_START),
    ("rsp at the top of the kernel half", u64::MAX - 7),
];

/// Issues system call `number` — one that cannot take the caller's memory away (see
/// [`super::takes_away`]) — with `arguments` while `rsp` is `stack`; returns
/// `[rax, rdx, rsi]` after it.
pub fn syscall_on_stack(stack: u64, number: Sysnum, arguments: [u64; 6]) -> [u64; 3] {
    assert!(
        !super::takes_away(number as u64),
        "{number:?} can take memory away"
    );
    let (mut rax, mut rdx, mut rsi) = (number as u64, arguments[2], arguments[1]);
    // SAFETY: `rsp` is saved in r12, which the kernel preserves across every system call
    // (and an upcall's resume restores), and put back at once; nothing between uses the
    // stack, and upcall handlers run on their own. The call takes nothing away (checked
    // above).
    unsafe {
        asm!(
            "mov r12, rsp",
            "mov rsp, {stack}",
            "syscall",
            "mov rsp, r12",
            stack = in(reg) stack,
            inout("rax") rax,
            in("rdi") arguments[0],
            inout("rsi") rsi,
            inout("rdx") rdx,
            in("r10") arguments[3],
            in("r8") arguments[4],
            in("r9") arguments[5],
            out("r12") _,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    [rax, rdx, rsi]
}

/// Runs `iterations` of a loop that uses no memory while `rsp` is `stack`, so that timer
/// interrupts arrive with it; returns whether `rsp` came back as it was left.
pub fn spin_on_stack(stack: u64, iterations: u64) -> bool {
    let found: u64;
    // SAFETY: as for `syscall_on_stack`; the loop touches only rcx, and interrupts switch
    // to the kernel's own stack.
    unsafe {
        asm!(
            "mov r12, rsp",
            "mov rsp, {stack}",
            "2:",
            "loop 2b",
            "mov {found}, rsp",
            "mov rsp, r12",
            stack = in(reg) stack,
            found = lateout(reg) found,
            inout("rcx") iterations.max(1) => _,
            out("r12") _,
        );
    }
    found == stack
}
