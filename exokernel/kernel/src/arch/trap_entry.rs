//! Entry stubs for all 256 vectors and for `syscall`, and the one path back
//! to user mode.
//!
//! Each vector's stub is 16 bytes, so stub `v` is at `trap_stubs + 16 * v`.
//! It pushes a zero where the CPU pushes no error code (so every frame has
//! the same shape), then the vector number, and jumps to `trap_common`,
//! which saves the general registers to complete a `TrapFrame` (see
//! `trap.rs`) and calls `trap_dispatch`.
//!
//! `syscall` pushes nothing and does not switch stacks, so `syscall_entry`
//! builds the same frame by hand on the CPU's kernel stack, with the
//! pseudo-vector `SYSCALL_VECTOR`; from there the path is shared. The one
//! exception is `Sysnum::Null`, answered before anything is saved: it
//! measures what no system call can go below.
//!
//! `trap_return` leaves through `sysretq` when the frame is a system call's
//! (cheaper; `rcx` and `r11` are clobbered, as the ABI says) and through
//! `iretq` otherwise. `swapgs` runs exactly when crossing between ring 3 and
//! ring 0, so GS always points at the per-CPU data inside the kernel; a trap
//! taken in kernel mode checks the GS base itself (`trap_from_kernel`), so
//! even a fault on the way out reaches the per-CPU data and is reported.

use core::arch::global_asm;

use exo_abi::layout::{USER_CODE_SELECTOR, USER_DATA_SELECTOR};

use super::cpu::{ENTRY_DEBUG_TRAPS, KERNEL_STACK_TOP_OFFSET, USER_STACK_SCRATCH_OFFSET};
use super::trap::{PAGE_FAULT, SYSCALL_VECTOR, TrapFrame};

global_asm!(
    r#"
    .section .text.trap_entry, "ax"

    // The general registers, in the order `TrapFrame` lists them (reversed).
    .macro push_general_registers
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    .endm

    .balign 16
    .global trap_stubs
trap_stubs:
    .set vector, 0
    .rept 256
    .balign 16
    // Vectors where the CPU pushes an error code: 8, 10-14, 17, 21, 29, 30.
    .if vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21 || vector == 29 || vector == 30
    .else
    push 0
    .endif
    push vector
    jmp trap_common
    .set vector, vector + 1
    .endr

    .global syscall_entry
syscall_entry:
    // `Null` is answered here, touching neither stack nor GS: the floor of
    // a kernel round trip. Only to a canonical rip (see `trap_return`);
    // otherwise it takes the full path, which leaves through `iretq`.
    cmp rax, {null_call}
    jne 3f
    mov rax, rcx
    shr rax, 47
    jnz 4f
    xor edx, edx
    xor esi, esi
    sysretq
4:  mov eax, {null_call}
3:  swapgs
    mov gs:[{user_stack}], rsp
    mov rsp, gs:[{kernel_stack}]
    push {user_data}                // ss
    push qword ptr gs:[{user_stack}] // rsp
    push r11                        // rflags, saved by `syscall`
    push {user_code}                // cs
    push rcx                        // rip, saved by `syscall`
    push 0                          // error code
    push {syscall_vector}
    jmp trap_save_registers

trap_common:
    // Stack: vector, error, rip, cs, rflags, rsp, ss. CS is at rsp+24.
    test byte ptr [rsp + 24], 3
    jz trap_from_kernel
    swapgs
    // An interrupt gate clears IF and TF but not AC, which ring 3 may set
    // (`popfq`): the kernel runs with it clear, as after `syscall` (SFMASK),
    // so that it would not lift SMAP were that on. The user's RFLAGS, saved
    // in the frame, keep it. Only a trap that finds it set pays: under TCG
    // `popfq` ends the translated block.
    test dword ptr [rsp + 32], {ac}
    jz trap_save_registers
    pushfq
    and dword ptr [rsp], {not_ac}
    popfq
trap_save_registers:
    push_general_registers
trap_dispatch_frame:
    mov rdi, rsp                // &mut TrapFrame; rsp is 16-byte aligned here
    cld
    call trap_dispatch

    .global trap_return
trap_return:
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    // Stack: vector, error, rip, cs, rflags, rsp, ss.
    test byte ptr [rsp + 24], 3
    jz 2f                       // back to the kernel: no swapgs
    cmp qword ptr [rsp], {syscall_vector}
    jne 1f
    // sysret, but only to a canonical lower-half rip: on Intel CPUs sysret
    // with a non-canonical rcx faults in ring 0 on the user's stack.
    mov rcx, [rsp + 16]
    mov r11, rcx
    shr r11, 47
    jnz 1f
    mov r11, [rsp + 32]
    mov rsp, [rsp + 40]
    swapgs
    sysretq
1:  swapgs
2:  add rsp, 16                 // vector and error code
    iretq

    // A trap from kernel mode usually finds the kernel's GS base (an
    // interrupt while idle), but a fault on the way out to user mode —
    // between `swapgs` and `iretq`, or `iretq` itself — finds the user's.
    // Ask the CPU rather than guess: a kernel GS base is a kernel-half
    // (negative) address. Such a fault is always fatal, so the dispatcher
    // never returns through here with the user's base swapped in.
trap_from_kernel:
    // A debug trap on the first instruction of an entry belongs to the
    // user's last instruction: after `mov ss` or `pop ss` a processor holds
    // a single-step or data-breakpoint trap until the next instruction is
    // done (Intel SDM vol. 3A, 6.8.3), so `mov ss; syscall` with TF set
    // delivers it at `syscall_entry` — ring 0, the user's GS and stack —
    // and `mov ss; int3` at the first instruction of a stub. The kernel
    // traces nothing of its own, so it counts the trap and resumes the
    // entry (RF set: an instruction breakpoint there lets it run once).
    cmp qword ptr [rsp], {debug_vector}
    jne 5f
    push rax
    push rcx
    mov rax, [rsp + 32]             // the trap's rip
    lea rcx, [rip + syscall_entry]
    cmp rax, rcx
    je 6f
    lea rcx, [rip + trap_stubs]
    sub rax, rcx
    cmp rax, 16 * 256
    jae 7f
    test al, 15
    jz 6f
7:  pop rcx
    pop rax
    jmp 5f
6:  lock inc qword ptr [rip + {entry_debug_traps}]
    or qword ptr [rsp + 48], {resume_flag} // the trap's rflags
    pop rcx
    pop rax
    add rsp, 16                     // vector and error code
    iretq
5:  push_general_registers
    mov ecx, {gs_base_msr}
    rdmsr
    test edx, edx
    js trap_dispatch_frame
    swapgs
    jmp trap_dispatch_frame
"#,
    user_stack = const USER_STACK_SCRATCH_OFFSET,
    kernel_stack = const KERNEL_STACK_TOP_OFFSET,
    user_data = const USER_DATA_SELECTOR,
    user_code = const USER_CODE_SELECTOR,
    syscall_vector = const SYSCALL_VECTOR,
    null_call = const exo_abi::syscall::Sysnum::Null as u64,
    gs_base_msr = const GS_BASE_MSR,
    debug_vector = const DEBUG_VECTOR,
    resume_flag = const RESUME_FLAG,
    entry_debug_traps = sym ENTRY_DEBUG_TRAPS,
    ac = const ALIGNMENT_CHECK_FLAG,
    not_ac = const !ALIGNMENT_CHECK_FLAG,
);

/// RFLAGS.AC, the low double word's bit 18: alignment checks in ring 3, and
/// SMAP lifted in ring 0.
const ALIGNMENT_CHECK_FLAG: i32 = 1 << 18;

/// #DB.
const DEBUG_VECTOR: u64 = 1;
/// RFLAGS.RF: the next instruction's instruction breakpoints do not fire.
const RESUME_FLAG: u64 = 1 << 16;

/// IA32_GS_BASE (Intel SDM vol. 4): the GS base in use now.
const GS_BASE_MSR: u32 = 0xc000_0101;

unsafe extern "C" {
    static trap_stubs: u8;
    fn syscall_entry();
    fn trap_return() -> !;
}

/// The address of the entry stub for `vector`.
pub fn stub_address(vector: u8) -> u64 {
    &raw const trap_stubs as u64 + 16 * u64::from(vector)
}

/// The address `syscall` jumps to (for the LSTAR register).
pub fn syscall_entry_address() -> u64 {
    syscall_entry as *const () as u64
}

/// Leaves the kernel into the context in `frame`, as if returning from a
/// trap. Used once, to enter the first environment; every later entry to
/// user mode is the return of a trap.
///
/// # Safety
/// `frame` must describe a valid ring-3 context of the address space that is loaded.
pub unsafe fn enter(frame: &TrapFrame) -> ! {
    // SAFETY: `trap_return` pops a TrapFrame from rsp and returns to it; the
    // caller vouches for the frame. The kernel stack below is abandoned,
    // which is fine: the next trap starts again at the stack top.
    unsafe {
        core::arch::asm!(
            "mov rsp, {frame}",
            "jmp {trap_return}",
            frame = in(reg) frame as *const TrapFrame,
            trap_return = sym trap_return,
            options(noreturn),
        )
    }
}

/// Makes every system call, breakpoint and page fault from ring 3 take a debug trap on
/// the first instruction of its entry (`entry_breakpoints=on`): instruction breakpoints
/// on `syscall_entry` and on the #BP and #PF stubs, in the debug registers, which nothing
/// else uses. A processor delivers the trap `mov ss` held back at those same places, with
/// the same state (ring 0; at `syscall_entry` the user's GS and stack), but QEMU's
/// emulation drops such a trap instead: this is how the way out of it in
/// `trap_from_kernel` is tested.
pub fn arm_entry_breakpoints() {
    use x86_64::registers::debug::{DebugAddressRegister, Dr0, Dr1, Dr2, Dr7, Dr7Flags, Dr7Value};
    Dr0::write(syscall_entry_address());
    Dr1::write(stub_address(BREAKPOINT_VECTOR));
    Dr2::write(stub_address(PAGE_FAULT as u8));
    // Condition and length 0: execution of the byte at the address.
    let mut control = Dr7Value::from_bits_truncate(0);
    control.insert_flags(
        Dr7Flags::LOCAL_BREAKPOINT_0_ENABLE
            | Dr7Flags::LOCAL_BREAKPOINT_1_ENABLE
            | Dr7Flags::LOCAL_BREAKPOINT_2_ENABLE,
    );
    Dr7::write(control);
}

const BREAKPOINT_VECTOR: u8 = 3;
