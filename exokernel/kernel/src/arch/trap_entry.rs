//! Entry stubs for all 256 vectors, and the common path into Rust.
//!
//! Each stub is 16 bytes, so stub `v` is at `trap_stubs + 16 * v`. It pushes
//! a zero where the CPU pushes no error code (so every frame has the same
//! shape), then the vector number, and jumps to `trap_common`, which saves
//! the general registers to complete a `TrapFrame` (see `trap.rs`), calls
//! `trap_dispatch`, and returns with `iretq`.
//!
//! `swapgs` runs only when the trap came from ring 3, so GS always points
//! at the per-CPU data inside the kernel.

use core::arch::global_asm;

global_asm!(
    r#"
    .section .text.trap_entry, "ax"
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

trap_common:
    // Stack: vector, error, rip, cs, rflags, rsp, ss. CS is at rsp+24.
    test byte ptr [rsp + 24], 3
    jz 1f
    swapgs
1:  push rax
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
    mov rdi, rsp                // &mut TrapFrame; rsp is 16-byte aligned here
    cld
    call trap_dispatch
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
    test byte ptr [rsp + 24], 3
    jz 2f
    swapgs
2:  add rsp, 16                 // vector and error code
    iretq
"#
);

unsafe extern "C" {
    static trap_stubs: u8;
}

/// The address of the entry stub for `vector`.
pub fn stub_address(vector: u8) -> u64 {
    &raw const trap_stubs as u64 + 16 * u64::from(vector)
}
