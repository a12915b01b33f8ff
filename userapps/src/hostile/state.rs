//! The CPU state ring 3 can write besides RFLAGS, and the instructions it may try but not
//! complete: what `hostile-state` uses to see whether one environment's state reaches
//! another, or whether ring 3 reaches ring 0.
//!
//! - [`write_mmx`] and [`read_mmx`] use the x87 register file (the MMX registers are its
//!   eight 64-bit mantissas); [`write_segments`] and [`read_segments`] the data segment
//!   selectors `ds`, `es`, `fs`, `gs`. Neither is a general register: a kernel that
//!   saves only those in its context switch hands them on to whoever runs next.
//! - [`registers_across_syscall`] and [`registers_across_spin`] load every general
//!   register but `rsp` from an array, make a system call (or spin across timer ticks),
//!   and store every register back, so a test sees exactly what the kernel left.
//! - [`FloatingPoint`] and [`Privileged`] are single instructions of fixed length that a
//!   kernel may refuse with an exception; [`int_vector`] is `int n` for every `n`. An
//!   upcall handler that gets the exception skips the instruction (its length is known)
//!   and the program goes on.
//!
//! This target is soft-float: compiled code never uses an x87, MMX or SSE register, so
//! the assembly here may write them without telling the compiler.
#![allow(unsafe_code)] // instructions the compiler would never emit, by design

use core::arch::{asm, global_asm};

/// Writes `pattern + n` into MMX register `n`, for n in 0..8. Each `movq` is 4 bytes
/// long ([`MMX_LENGTH`]); if the CPU refuses it, the handler skips it and the next runs.
pub fn write_mmx(pattern: u64) {
    // SAFETY: touches only rax (declared) and the MMX registers, which compiled code on
    // this soft-float target never uses; a refused instruction is skipped by the handler.
    unsafe {
        asm!(
            "movq mm0, rax", "inc rax",
            "movq mm1, rax", "inc rax",
            "movq mm2, rax", "inc rax",
            "movq mm3, rax", "inc rax",
            "movq mm4, rax", "inc rax",
            "movq mm5, rax", "inc rax",
            "movq mm6, rax", "inc rax",
            "movq mm7, rax",
            inout("rax") pattern => _,
            options(nostack),
        );
    }
}

/// The eight MMX registers; a register whose read was refused reads as `unread`.
pub fn read_mmx(unread: u64) -> [u64; 8] {
    let mut values = [0u64; 8];
    // SAFETY: reads the MMX registers into rax and stores it into `values`, which it is
    // given; rax is reset to `unread` before each read, so a skipped one stores that.
    unsafe {
        asm!(
            "mov rax, {unread}", "movq rax, mm0", "mov [{out}], rax",
            "mov rax, {unread}", "movq rax, mm1", "mov [{out} + 8], rax",
            "mov rax, {unread}", "movq rax, mm2", "mov [{out} + 16], rax",
            "mov rax, {unread}", "movq rax, mm3", "mov [{out} + 24], rax",
            "mov rax, {unread}", "movq rax, mm4", "mov [{out} + 32], rax",
            "mov rax, {unread}", "movq rax, mm5", "mov [{out} + 40], rax",
            "mov rax, {unread}", "movq rax, mm6", "mov [{out} + 48], rax",
            "mov rax, {unread}", "movq rax, mm7", "mov [{out} + 56], rax",
            unread = in(reg) unread,
            out = in(reg) values.as_mut_ptr(),
            out("rax") _,
            options(nostack),
        );
    }
    values
}

/// Bytes of each `movq` between an MMX register and a general one (REX.W 0F 6E/7E /r).
pub const MMX_LENGTH: u64 = 4;

/// Selector values ring 3 may load into a data segment register and keep across an
/// `iretq`: null, and the user data segment with RPL 3 and RPL 0 (its DPL is 3).
pub const SELECTORS: [u16; 3] = [0, 0x1b, 0x18];

/// Loads `ds`, `es`, `fs`, `gs` with `selectors`, in that order. Loading `fs` or `gs`
/// also sets its base to the descriptor's, 0; nothing in this runtime uses either.
pub fn write_segments([ds, es, fs, gs]: [u16; 4]) {
    // SAFETY: each selector is one of `SELECTORS` (checked), which ring 3 may load; in
    // 64-bit mode ds and es mean nothing to addressing, and fs and gs are unused here.
    unsafe {
        assert!([ds, es, fs, gs].iter().all(|s| SELECTORS.contains(s)));
        asm!(
            "mov ds, {ds:x}",
            "mov es, {es:x}",
            "mov fs, {fs:x}",
            "mov gs, {gs:x}",
            ds = in(reg) ds,
            es = in(reg) es,
            fs = in(reg) fs,
            gs = in(reg) gs,
            options(nostack, preserves_flags),
        );
    }
}

/// `ds`, `es`, `fs`, `gs` now.
pub fn read_segments() -> [u16; 4] {
    let (ds, es, fs, gs): (u16, u16, u16, u16);
    // SAFETY: reading a segment register has no effect.
    unsafe {
        asm!(
            "mov {ds:x}, ds",
            "mov {es:x}, es",
            "mov {fs:x}, fs",
            "mov {gs:x}, gs",
            ds = out(reg) ds,
            es = out(reg) es,
            fs = out(reg) fs,
            gs = out(reg) gs,
            options(nomem, nostack, preserves_flags),
        );
    }
    [ds, es, fs, gs]
}

/// Indices of the general registers in the arrays below (`rsp`'s is unused: the stack
/// stays where it is).
pub mod register {
    pub const RAX: usize = 0;
    pub const RBX: usize = 1;
    pub const RCX: usize = 2;
    pub const RDX: usize = 3;
    pub const RSI: usize = 4;
    pub const RDI: usize = 5;
    pub const RBP: usize = 6;
    pub const RSP: usize = 7;
    pub const R8: usize = 8;
    pub const R9: usize = 9;
    pub const R10: usize = 10;
    pub const R11: usize = 11;
    pub const R12: usize = 12;
    pub const R13: usize = 13;
    pub const R14: usize = 14;
    pub const R15: usize = 15;
    pub const NAMES: [&str; 16] = [
        "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15",
    ];
}

unsafe extern "C" {
    fn hostile_registers_across_syscall(registers: *mut [u64; 16]);
    fn hostile_registers_across_spin(registers: *mut [u64; 16]);
    static hostile_int_vectors: u8;
}

/// Loads every general register but `rsp` from `registers`, executes `syscall`, and
/// stores every register back into it: `registers[RAX]` is the call's number on the way
/// in and its status on the way out. The number must be one that cannot take the
/// caller's memory away (see [`super::takes_away`]).
pub fn registers_across_syscall(registers: &mut [u64; 16]) {
    assert!(
        !super::takes_away(registers[register::RAX]),
        "{:#x} can take memory away",
        registers[register::RAX]
    );
    // SAFETY: the function saves and restores the callee-saved registers and the array
    // pointer on the stack, which the call leaves alone; the call takes nothing away
    // (checked above).
    unsafe { hostile_registers_across_syscall(registers) }
}

/// Loads every general register but `rsp` from `registers`, runs `loop` until rcx
/// (`registers[RCX]`, the iterations) is 0 — a loop that touches no other register and
/// no memory, across which timer interrupts arrive — and stores every register back.
pub fn registers_across_spin(registers: &mut [u64; 16]) {
    // SAFETY: as above; the loop has no effect but counting rcx down.
    unsafe { hostile_registers_across_spin(registers) }
}

// Both functions: the array pointer (rdi) is pushed and swapped back after the middle
// instruction, so every register carries a chosen value across it.
global_asm!(
    r#"
    .macro hostile_load_all
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    push rdi
    mov rax, [rdi + 0]
    mov rbx, [rdi + 8]
    mov rcx, [rdi + 16]
    mov rdx, [rdi + 24]
    mov rsi, [rdi + 32]
    mov rbp, [rdi + 48]
    mov r8, [rdi + 64]
    mov r9, [rdi + 72]
    mov r10, [rdi + 80]
    mov r11, [rdi + 88]
    mov r12, [rdi + 96]
    mov r13, [rdi + 104]
    mov r14, [rdi + 112]
    mov r15, [rdi + 120]
    mov rdi, [rdi + 40]
    .endm

    .macro hostile_store_all
    xchg rdi, [rsp]
    mov [rdi + 0], rax
    mov [rdi + 8], rbx
    mov [rdi + 16], rcx
    mov [rdi + 24], rdx
    mov [rdi + 32], rsi
    mov [rdi + 48], rbp
    mov [rdi + 64], r8
    mov [rdi + 72], r9
    mov [rdi + 80], r10
    mov [rdi + 88], r11
    mov [rdi + 96], r12
    mov [rdi + 104], r13
    mov [rdi + 112], r14
    mov [rdi + 120], r15
    pop rax
    mov [rdi + 40], rax
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    ret
    .endm

    .section .text.hostile_state, "ax"
    .global hostile_registers_across_syscall
hostile_registers_across_syscall:
    hostile_load_all
    syscall
    hostile_store_all

    .global hostile_registers_across_spin
hostile_registers_across_spin:
    hostile_load_all
2:  loop 2b
    hostile_store_all

    // `int n` for every n, each 4 bytes apart: the two-byte form (CD n) even for 3,
    // then `ret`.
    .balign 4
    .global hostile_int_vectors
hostile_int_vectors:
    .set vector, 0
    .rept 256
    .balign 4
    .byte 0xcd, vector
    ret
    .set vector, vector + 1
    .endr
"#
);

/// Bytes of `int n` (CD ib).
pub const INT_LENGTH: u64 = 2;

/// Executes `int vector` (the two-byte form); returns only if the upcall handler skipped
/// it or it returned.
pub fn int_vector(vector: u8) {
    let stub = &raw const hostile_int_vectors as u64 + 4 * u64::from(vector);
    // SAFETY: the stub is `int vector; ret`; the interrupt either traps to the upcall
    // handler, which resumes after it, or (a gate ring 3 may use) returns the same way.
    // The call clobbers nothing but what a call may.
    unsafe { asm!("call {stub}", stub = in(reg) stub, clobber_abi("C")) }
}

/// An x87, MMX, SSE or AVX instruction: it runs, or the CPU refuses it with #UD or #NM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatingPoint {
    /// `fninit` (x87).
    X87Init,
    /// `fld1`: pushes 1.0 onto the x87 stack.
    X87LoadOne,
    /// `movq mm0, rax` (MMX).
    Mmx,
    /// `movq xmm0, rax` (SSE2).
    Sse,
    /// `vmovq xmm0, rax` (AVX).
    Avx,
}

impl FloatingPoint {
    pub const ALL: [FloatingPoint; 5] = [
        FloatingPoint::X87Init,
        FloatingPoint::X87LoadOne,
        FloatingPoint::Mmx,
        FloatingPoint::Sse,
        FloatingPoint::Avx,
    ];

    /// Bytes of the instruction, for a handler that skips it.
    pub const fn length(self) -> u64 {
        match self {
            FloatingPoint::X87Init | FloatingPoint::X87LoadOne => 2,
            FloatingPoint::Mmx => 4,
            FloatingPoint::Sse | FloatingPoint::Avx => 5,
        }
    }

    /// Executes it; returns when it ran or the handler skipped it.
    pub fn attempt(self) {
        // SAFETY: each writes only an x87, MMX or vector register (unused by compiled
        // code on this target) from rax, which is declared.
        unsafe {
            match self {
                FloatingPoint::X87Init => asm!("fninit", options(nostack)),
                FloatingPoint::X87LoadOne => asm!("fld1", options(nostack)),
                FloatingPoint::Mmx => asm!("movq mm0, rax", in("rax") 1u64, options(nostack)),
                FloatingPoint::Sse => {
                    asm!(".byte 0x66, 0x48, 0x0f, 0x6e, 0xc0", in("rax") 1u64, options(nostack))
                }
                FloatingPoint::Avx => {
                    asm!(".byte 0xc4, 0xe1, 0xf9, 0x6e, 0xc0", in("rax") 1u64, options(nostack))
                }
            }
        }
    }
}

/// An instruction only ring 0 may complete, or a segment load ring 3 may not make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privileged {
    /// `rdmsr` of EFER.
    ReadMsr,
    /// `wrmsr` of LSTAR (where `syscall` goes).
    WriteMsr,
    /// `mov cr3, rax`: another address space.
    WriteCr3,
    /// `mov rax, cr0`.
    ReadCr0,
    /// `mov dr7, rax`: a hardware breakpoint.
    WriteDr7,
    /// `lgdt [rax]`.
    LoadGdt,
    /// `lidt [rax]`.
    LoadIdt,
    /// `ltr ax`.
    LoadTaskRegister,
    /// `invlpg [rax]`.
    InvalidatePage,
    /// `wbinvd`.
    WriteBackCaches,
    /// `clts`.
    ClearTaskSwitched,
    /// `swapgs`: the kernel's per-CPU base would become ring 3's.
    SwapGs,
    /// `wrfsbase rax` (#UD unless CR4.FSGSBASE).
    WriteFsBase,
    /// `wrgsbase rax`.
    WriteGsBase,
    /// `rdpmc` (#GP unless CR4.PCE).
    ReadPerformanceCounter,
    /// `sysretq` from ring 3.
    SysretFromRing3,
    /// `sysexit`.
    Sysexit,
    /// `in al, 0x21`: the PIC's mask.
    PortInImmediate,
    /// `out 0x80, al`: the POST port.
    PortOutImmediate,
    /// `in eax, dx` from 0xcfc: PCI configuration data.
    PortInPci,
    /// `mov ss, ax` with the kernel's data selector.
    KernelStackSegment,
    /// `mov ds, ax` with the kernel's code selector.
    KernelCodeAsData,
    /// `mov es, ax` with the kernel's data selector at RPL 3.
    KernelDataRpl3,
    /// `mov fs, ax` with the task-state segment's selector.
    TaskStateAsData,
    /// `mov gs, ax` with an LDT selector naming [`LDT_DESCRIPTOR`], where a program may
    /// have written a valid descriptor: a CPU whose LDT register still holds its reset
    /// value (base 0, limit 0xffff) would read it from there, in the user's own memory.
    LdtSelector,
    /// `sgdt [rax]`: where the kernel's GDT is (#GP with CR4.UMIP).
    StoreGdt,
    /// `sidt [rax]`: where the kernel's IDT is.
    StoreIdt,
    /// `sldt eax`.
    StoreLdt,
    /// `str eax`: the task register's selector.
    StoreTaskRegister,
    /// `smsw eax`: the low bits of CR0.
    StoreMachineStatus,
}

/// The linear address an LDT at base 0 would hold descriptor 512 at, and the selector
/// naming it (index 512, table indicator 1: the LDT, RPL 3).
pub const LDT_DESCRIPTOR: u64 = 0x1000;
pub const LDT_SELECTOR: u16 = (LDT_DESCRIPTOR as u16) | 4 | 3;
/// A present, writable data segment of DPL 3, base 0, limit 4 GiB: a descriptor ring 3
/// could load, were it read from its own memory.
pub const USER_DATA_DESCRIPTOR: u64 = 0x00cf_f300_0000_ffff;

impl Privileged {
    pub const ALL: [Privileged; 30] = [
        Privileged::ReadMsr,
        Privileged::WriteMsr,
        Privileged::WriteCr3,
        Privileged::ReadCr0,
        Privileged::WriteDr7,
        Privileged::LoadGdt,
        Privileged::LoadIdt,
        Privileged::LoadTaskRegister,
        Privileged::InvalidatePage,
        Privileged::WriteBackCaches,
        Privileged::ClearTaskSwitched,
        Privileged::SwapGs,
        Privileged::WriteFsBase,
        Privileged::WriteGsBase,
        Privileged::ReadPerformanceCounter,
        Privileged::SysretFromRing3,
        Privileged::Sysexit,
        Privileged::PortInImmediate,
        Privileged::PortOutImmediate,
        Privileged::PortInPci,
        Privileged::KernelStackSegment,
        Privileged::KernelCodeAsData,
        Privileged::KernelDataRpl3,
        Privileged::TaskStateAsData,
        Privileged::LdtSelector,
        Privileged::StoreGdt,
        Privileged::StoreIdt,
        Privileged::StoreLdt,
        Privileged::StoreTaskRegister,
        Privileged::StoreMachineStatus,
    ];

    /// Bytes of the instruction, for a handler that skips it.
    pub const fn length(self) -> u64 {
        match self {
            Privileged::WriteFsBase | Privileged::WriteGsBase => 5,
            Privileged::WriteCr3
            | Privileged::ReadCr0
            | Privileged::WriteDr7
            | Privileged::LoadGdt
            | Privileged::LoadIdt
            | Privileged::LoadTaskRegister
            | Privileged::InvalidatePage
            | Privileged::SwapGs
            | Privileged::SysretFromRing3 => 3,
            // `mov sreg, ax`: 66 8E /r.
            Privileged::KernelStackSegment
            | Privileged::KernelCodeAsData
            | Privileged::KernelDataRpl3
            | Privileged::TaskStateAsData
            | Privileged::LdtSelector => 3,
            // 0F 01 /0, 0F 01 /1, 0F 00 /0, 0F 00 /1, 0F 01 /4.
            Privileged::StoreGdt
            | Privileged::StoreIdt
            | Privileged::StoreLdt
            | Privileged::StoreTaskRegister
            | Privileged::StoreMachineStatus => 3,
            Privileged::PortInPci => 1,
            _ => 2,
        }
    }

    /// Executes it; returns only if the upcall handler skipped it.
    pub fn attempt(self) {
        // What the table loads and stores and `invlpg` name: ten mapped bytes of this stack.
        let mut here = [0u64; 2];
        // SAFETY: in ring 3 each raises #GP or #UD before any effect (the test checks
        // which); were one to complete it would change CPU state, not this program's
        // memory. The selectors are loaded into registers this runtime does not use, and
        // memory operands point at `here`, which is mapped, this function's own and
        // mutable: a store that completed (`sgdt`, `sidt` without UMIP) writes ten bytes
        // of it.
        unsafe {
            match self {
                Privileged::ReadMsr => {
                    asm!("rdmsr", in("ecx") 0xc000_0080u32, out("eax") _, out("edx") _)
                }
                Privileged::WriteMsr => {
                    asm!("wrmsr", in("ecx") 0xc000_0082u32, in("eax") 0u32, in("edx") 0u32)
                }
                Privileged::WriteCr3 => asm!("mov cr3, rax", in("rax") 0u64),
                Privileged::ReadCr0 => asm!("mov rax, cr0", out("rax") _),
                Privileged::WriteDr7 => asm!("mov dr7, rax", in("rax") 0xffu64),
                Privileged::LoadGdt => asm!("lgdt [rax]", in("rax") &raw const here),
                Privileged::LoadIdt => asm!("lidt [rax]", in("rax") &raw const here),
                Privileged::LoadTaskRegister => asm!("ltr ax", in("ax") 0x28u16),
                Privileged::InvalidatePage => asm!("invlpg [rax]", in("rax") &raw const here),
                Privileged::WriteBackCaches => asm!("wbinvd"),
                Privileged::ClearTaskSwitched => asm!("clts"),
                Privileged::SwapGs => asm!("swapgs"),
                Privileged::WriteFsBase => {
                    asm!(".byte 0xf3, 0x48, 0x0f, 0xae, 0xd0", in("rax") 0u64)
                }
                Privileged::WriteGsBase => {
                    asm!(".byte 0xf3, 0x48, 0x0f, 0xae, 0xd8", in("rax") 0u64)
                }
                Privileged::ReadPerformanceCounter => {
                    asm!("rdpmc", in("ecx") 0u32, out("eax") _, out("edx") _)
                }
                Privileged::SysretFromRing3 => asm!("sysretq", out("rcx") _, out("r11") _),
                Privileged::Sysexit => asm!("sysexit", out("rcx") _, out("rdx") _),
                Privileged::PortInImmediate => asm!("in al, 0x21", out("al") _),
                Privileged::PortOutImmediate => asm!("out 0x80, al", in("al") 0u8),
                Privileged::PortInPci => asm!("in eax, dx", in("dx") 0xcfcu16, out("eax") _),
                Privileged::KernelStackSegment => asm!("mov ss, ax", in("ax") 0x10u16),
                Privileged::KernelCodeAsData => asm!("mov ds, ax", in("ax") 0x08u16),
                Privileged::KernelDataRpl3 => asm!("mov es, ax", in("ax") 0x13u16),
                Privileged::TaskStateAsData => asm!("mov fs, ax", in("ax") 0x28u16),
                Privileged::LdtSelector => asm!("mov gs, ax", in("ax") LDT_SELECTOR),
                Privileged::StoreGdt => asm!(".byte 0x0f, 0x01, 0x00", in("rax") &raw mut here),
                Privileged::StoreIdt => asm!(".byte 0x0f, 0x01, 0x08", in("rax") &raw mut here),
                Privileged::StoreLdt => asm!(".byte 0x0f, 0x00, 0xc0", out("eax") _),
                Privileged::StoreTaskRegister => asm!(".byte 0x0f, 0x00, 0xc8", out("eax") _),
                Privileged::StoreMachineStatus => asm!(".byte 0x0f, 0x01, 0xe0", out("eax") _),
            }
        }
    }
}

/// Sets TF, loads `ss` (with the user data selector it holds already) and makes the
/// `Null` system call at once, then clears TF. A single-step trap after `mov ss` is
/// held back until the next instruction is done (Intel SDM vol. 3, "MOV SS"): here,
/// the `syscall`, so a CPU that delivers it then delivers it on the kernel's first
/// instruction, in ring 0 with ring 3's stack and GS. Each single-step trap in ring 3
/// arrives as an upcall; returns `rax` after the call (0).
pub fn single_step_mov_ss_syscall() -> u64 {
    let status: u64;
    // SAFETY: TF only makes the CPU trap after each instruction (the upcall handler
    // returns from each); `ss` gets the selector it holds; `Null` changes nothing.
    unsafe {
        asm!(
            "pushfq",
            "or qword ptr [rsp], 0x100",
            "popfq",
            "mov {selector:x}, ss",
            "mov ss, {selector:x}",
            "syscall",
            "pushfq",
            "and qword ptr [rsp], ~0x100",
            "popfq",
            selector = out(reg) _,
            inout("rax") exo_abi::syscall::Sysnum::Null as u64 => status,
            out("rcx") _,
            out("r11") _,
            out("rdx") _,
            out("rsi") _,
        );
    }
    status
}
