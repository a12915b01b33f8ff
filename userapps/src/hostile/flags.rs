//! RFLAGS from ring 3, for programs that enter the kernel with flags it may not expect.
//!
//! Ring 3 may set most of RFLAGS with `popfq`: the arithmetic flags, the trap flag (TF:
//! single-step), the direction flag (DF), nested task (NT), alignment check (AC) and the
//! CPUID flag (ID). It may not change the interrupt flag (IF), the I/O privilege level
//! (IOPL), resume (RF) or virtual-8086 mode (VM): with IOPL 0 `popfq` leaves them as they
//! were, and `pushfq` shows RF and VM as 0 whatever they are. A kernel entry with any of
//! these set — a `syscall`, an exception, an interrupt — must not let them change what the
//! kernel does: NT left set makes the kernel's own `iretq` a task return (#GP in ring 0),
//! DF set reverses the kernel's string copies, AC (with CR0.AM) makes its unaligned
//! accesses fault.
//!
//! Each function here sets the flags it is given with `popfq`, makes one kernel entry (or
//! none, and waits for the timer), reads RFLAGS with `pushfq` at once after it, and puts
//! clean flags back (`0x202`: IF and the reserved bit 1) before Rust code runs again. No
//! instruction between the `popfq` and the `pushfq` changes a flag, so the flags read
//! after are the flags the kernel gave back.
#![allow(unsafe_code)] // `popfq`, `pushfq` and raw `syscall` around them

use core::arch::asm;

use exo_abi::syscall::Sysnum;

pub const CARRY: u64 = 1 << 0;
/// Bit 1 reads as 1 and cannot be changed.
pub const RESERVED_ONE: u64 = 1 << 1;
pub const PARITY: u64 = 1 << 2;
pub const ADJUST: u64 = 1 << 4;
pub const ZERO: u64 = 1 << 6;
pub const SIGN: u64 = 1 << 7;
pub const TRAP: u64 = 1 << 8;
pub const INTERRUPT: u64 = 1 << 9;
pub const DIRECTION: u64 = 1 << 10;
pub const OVERFLOW: u64 = 1 << 11;
pub const IO_PRIVILEGE: u64 = 3 << 12;
pub const NESTED_TASK: u64 = 1 << 14;
pub const RESUME: u64 = 1 << 16;
pub const VIRTUAL_8086: u64 = 1 << 17;
pub const ALIGNMENT_CHECK: u64 = 1 << 18;
pub const VIRTUAL_INTERRUPT: u64 = 1 << 19;
pub const VIRTUAL_INTERRUPT_PENDING: u64 = 1 << 20;
pub const IDENTIFICATION: u64 = 1 << 21;

/// The flags Rust code runs with here: interrupts on, everything else clear.
pub const CLEAN: u64 = RESERVED_ONE | INTERRUPT;

/// Flags ring 3 never has as `pushfq` shows them: IOPL, RF, VM and the virtual-interrupt
/// pair are 0, and IF is 1 (see [`ring3_invariant_holds`]).
pub const NEVER_IN_RING3: u64 =
    IO_PRIVILEGE | RESUME | VIRTUAL_8086 | VIRTUAL_INTERRUPT | VIRTUAL_INTERRUPT_PENDING;

/// Flags that change what code does (rather than report a result): another environment
/// must never see them set unless it set them itself.
pub const CONTROL_FLAGS: u64 = TRAP | DIRECTION | NESTED_TASK | ALIGNMENT_CHECK | IDENTIFICATION;

/// A change a hostile program tries to make to RFLAGS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// What it is called in reports, e.g. `NT (bit 14)`.
    pub name: &'static str,
    /// Bits `popfq` is asked to set.
    pub set: u64,
    /// Bits `popfq` is asked to clear.
    pub clear: u64,
    /// Whether ring 3 can make the change (if not, `popfq` silently leaves the flags).
    pub takes_effect: bool,
}

impl Attempt {
    const fn set(name: &'static str, bits: u64) -> Self {
        Self {
            name,
            set: bits,
            clear: 0,
            takes_effect: true,
        }
    }

    const fn refused(name: &'static str, set: u64, clear: u64) -> Self {
        Self {
            name,
            set,
            clear,
            takes_effect: false,
        }
    }

    /// The RFLAGS value `popfq` is given.
    pub const fn value(&self) -> u64 {
        (CLEAN | self.set) & !self.clear
    }

    /// Whether `flags`, read with `pushfq` after a kernel entry made with this attempt in
    /// force, are what they should be: the change kept if ring 3 may make it (the trap
    /// flag aside: single-step traps are the program's to clear, and it does), nothing
    /// else of [`CONTROL_FLAGS`] set, and ring 3's invariant intact.
    pub fn kept_in(&self, flags: u64) -> bool {
        let expected_control = if self.takes_effect {
            self.set & CONTROL_FLAGS & !TRAP
        } else {
            0
        };
        let kept = !self.takes_effect || flags & self.set & !TRAP == self.set & !TRAP;
        kept && flags & CONTROL_FLAGS & !TRAP == expected_control && ring3_invariant_holds(flags)
    }
}

/// Every flag ring 3 can set, one at a time, then every change it cannot make.
pub const ATTEMPTS: [Attempt; 16] = [
    Attempt::set("CF (bit 0)", CARRY),
    Attempt::set("PF (bit 2)", PARITY),
    Attempt::set("AF (bit 4)", ADJUST),
    Attempt::set("ZF (bit 6)", ZERO),
    Attempt::set("SF (bit 7)", SIGN),
    Attempt::set("TF (bit 8)", TRAP),
    Attempt::set("DF (bit 10)", DIRECTION),
    Attempt::set("OF (bit 11)", OVERFLOW),
    Attempt::set("NT (bit 14)", NESTED_TASK),
    Attempt::set("AC (bit 18)", ALIGNMENT_CHECK),
    Attempt::set("ID (bit 21)", IDENTIFICATION),
    Attempt::refused("IF cleared (bit 9)", 0, INTERRUPT),
    Attempt::refused("IOPL 3 (bits 12-13)", IO_PRIVILEGE, 0),
    Attempt::refused("RF (bit 16)", RESUME, 0),
    Attempt::refused("VM (bit 17)", VIRTUAL_8086, 0),
    Attempt::refused(
        "VIF and VIP (bits 19-20)",
        VIRTUAL_INTERRUPT | VIRTUAL_INTERRUPT_PENDING,
        0,
    ),
];

/// Everything ring 3 can set at once, but the trap flag.
pub const ALL_SETTABLE_BUT_TRAP: Attempt = Attempt::set(
    "every settable flag but TF",
    CARRY
        | PARITY
        | ADJUST
        | ZERO
        | SIGN
        | DIRECTION
        | OVERFLOW
        | NESTED_TASK
        | ALIGNMENT_CHECK
        | IDENTIFICATION,
);

/// Whether `flags` (from `pushfq` in ring 3) show interrupts on and nothing of
/// [`NEVER_IN_RING3`].
pub const fn ring3_invariant_holds(flags: u64) -> bool {
    flags & INTERRUPT != 0 && flags & NEVER_IN_RING3 == 0
}

/// RFLAGS now.
pub fn read() -> u64 {
    let flags: u64;
    // SAFETY: pushes and pops one word of this stack; changes nothing else.
    unsafe { asm!("pushfq", "pop {}", out(reg) flags) };
    flags
}

/// Issues system call `number` with `arguments` while RFLAGS is `flags`; returns what
/// [`exo_abi::user::syscall_raw`] returns and RFLAGS right after the call.
///
/// # Safety
/// As for [`exo_abi::user::syscall_raw`]: the call must not take away memory Rust code
/// still uses.
pub unsafe fn syscall_with(flags: u64, number: u64, arguments: [u64; 6]) -> ([u64; 6], u64) {
    let [mut rax, mut rdx, mut rsi, mut rdi, mut r8, mut r9] = [
        number,
        arguments[2],
        arguments[1],
        arguments[0],
        arguments[4],
        arguments[5],
    ];
    let after: u64;
    // SAFETY: the flags are set only for the `syscall`, and clean flags are restored before
    // Rust code runs again; registers follow the system-call convention, as in
    // `syscall_raw`; what the call does is the caller's promise.
    unsafe {
        asm!(
            "push {flags}",
            "popfq",
            "syscall",
            "pushfq",
            "pop {after}",
            "push {clean}",
            "popfq",
            flags = in(reg) flags,
            clean = const CLEAN,
            after = lateout(reg) after,
            inout("rax") rax,
            inout("rdi") rdi,
            inout("rsi") rsi,
            inout("rdx") rdx,
            in("r10") arguments[3],
            inout("r8") r8,
            inout("r9") r9,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    ([rax, rdx, rsi, rdi, r8, r9], after)
}

/// A system call that cannot take the caller's memory away (see [`super::takes_away`]),
/// or `RequestFrames` — which takes frames only after its deadline, unmapping them first —
/// made while RFLAGS is `flags`. Returns the registers and RFLAGS after.
pub fn harmless_syscall_with(flags: u64, number: Sysnum, arguments: [u64; 6]) -> ([u64; 6], u64) {
    assert!(
        !super::takes_away(number as u64) || number == Sysnum::RequestFrames,
        "{number:?} can take memory away"
    );
    // SAFETY: checked just above.
    unsafe { syscall_with(flags, number as u64, arguments) }
}

/// Reads the word at `address` while RFLAGS is `flags` — meant to fault, so that the
/// kernel delivers the fault with those flags — and returns the word and RFLAGS after.
/// The caller's upcall handler must make the read succeed when resumed.
pub fn load_with(flags: u64, address: u64) -> (u64, u64) {
    assert!(
        crate::layout::is_managed(address) && address.is_multiple_of(8),
        "loads only from aligned words of the managed window, where no Rust object lives"
    );
    let value: u64;
    let after: u64;
    // SAFETY: a volatile-like read of the managed window, which aliases no Rust object; a
    // fault there becomes an upcall (or the end of the environment), never undefined
    // behaviour. The flags are clean again before Rust code runs.
    unsafe {
        asm!(
            "push {flags}",
            "popfq",
            "mov {value}, [{address}]",
            "pushfq",
            "pop {after}",
            "push {clean}",
            "popfq",
            flags = in(reg) flags,
            address = in(reg) address,
            clean = const CLEAN,
            value = lateout(reg) value,
            after = lateout(reg) after,
        );
    }
    (value, after)
}

/// Runs `iterations` of a loop that changes no flag (`loop` decrements `rcx` alone) while
/// RFLAGS is `flags`, so that timer interrupts arrive with them set; returns RFLAGS after.
pub fn spin_with(flags: u64, iterations: u64) -> u64 {
    let after: u64;
    // SAFETY: registers only; the flags are clean again before Rust code runs.
    unsafe {
        asm!(
            "push {flags}",
            "popfq",
            "2:",
            "loop 2b",
            "pushfq",
            "pop {after}",
            "push {clean}",
            "popfq",
            flags = in(reg) flags,
            clean = const CLEAN,
            after = lateout(reg) after,
            inout("rcx") iterations.max(1) => _,
        );
    }
    after
}

/// Ends the environment with `Exit(status)` made while RFLAGS is `flags`.
pub fn exit_with(flags: u64, status: u64) -> ! {
    // SAFETY: `Exit` never returns, so no Rust code runs with these flags.
    unsafe {
        asm!(
            "push {flags}",
            "popfq",
            "syscall",
            "ud2",
            flags = in(reg) flags,
            in("rax") Sysnum::Exit as u64,
            in("rdi") status,
            options(noreturn),
        );
    }
}
