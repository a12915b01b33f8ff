//! The first instructions: from QEMU's PVH entry to `kernel_main`.
//!
//! QEMU's `-kernel` loader finds the PVH note below, copies the ELF segments
//! to their physical addresses and jumps to `pvh_start` in 32-bit protected
//! mode with paging off and `ebx` holding the physical address of the
//! `hvm_start_info` structure (see `boot_info.rs`).
//!
//! The trampoline builds just enough page tables to enter 64-bit mode. One
//! page directory of 2 MiB pages maps the first GiB of physical memory three
//! times:
//! - identity (virtual = physical), so the instruction after enabling paging
//!   is still mapped;
//! - at `DIRECT_MAP_BASE`, where the kernel reaches physical memory for good
//!   (`memory::phys_to_virt`), so early code uses the same addresses as late code;
//! - at `KERNEL_BASE`, where the kernel image is linked.
//!
//! `memory::paging` replaces these tables with the kernel's own once frames
//! can be allocated. Nothing here is called from Rust.

use core::arch::global_asm;

global_asm!(
    r#"
    // The PVH entry note (Xen's public/elfnote.h: XEN_ELFNOTE_PHYS32_ENTRY = 18).
    .section .note.pvh, "a", @note
    .balign 4
    .long 4             // name size: "Xen\0"
    .long 4             // descriptor size: one 32-bit address
    .long 18            // type
    .asciz "Xen"
    .balign 4
    .long pvh_start
    .balign 4

    .section .boot.bss, "aw", @nobits
    .balign 4096
boot_pml4:       .skip 4096
boot_pdpt_low:   .skip 4096     // PML4[0] and PML4[256]: identity and direct map
boot_pdpt_high:  .skip 4096     // PML4[511]: the kernel image window
boot_pd:         .skip 4096     // 512 x 2 MiB = the first GiB

    .section .boot.text, "ax"
    .code32
    .global pvh_start
pvh_start:
    cli
    cld
    mov esi, ebx                // hvm_start_info, for kernel_main

    // The loader does not promise zeroed memory: clear the four tables.
    mov edi, offset boot_pml4
    mov ecx, 4 * 4096 / 4
    xor eax, eax
    rep stosd

    // boot_pd[i] = i * 2 MiB | present | writable | huge page.
    xor ecx, ecx
1:  mov eax, ecx
    shl eax, 21
    or eax, 0x83
    mov [boot_pd + ecx * 8], eax
    inc ecx
    cmp ecx, 512
    jne 1b

    mov eax, offset boot_pd
    or eax, 0x3                 // present | writable
    mov [boot_pdpt_low], eax
    mov [boot_pdpt_high + 510 * 8], eax    // 0xffffffff80000000 = PML4[511], PDPT[510]

    mov eax, offset boot_pdpt_low
    or eax, 0x3
    mov [boot_pml4], eax
    mov [boot_pml4 + 256 * 8], eax
    mov eax, offset boot_pdpt_high
    or eax, 0x3
    mov [boot_pml4 + 511 * 8], eax

    // Long mode: CR4.PAE, CR3, then EFER.LME (with NXE for no-execute pages and
    // SCE for `syscall`), then CR0.PG with CR0.WP so the kernel honours
    // read-only pages too, and CR0.EM: no x87 or MMX instruction runs, in any
    // ring (#NM, #UD). The kernel is soft-float and switches no floating-point
    // state, so an environment that could use those registers would find the
    // last one's values in them. SSE and AVX stay off as well (CR4.OSFXSR and
    // OSXSAVE clear: #UD).
    mov eax, cr4
    or eax, 1 << 5
    mov cr4, eax
    mov eax, offset boot_pml4
    mov cr3, eax
    mov ecx, 0xC0000080
    rdmsr
    or eax, (1 << 0) | (1 << 8) | (1 << 11)
    wrmsr
    mov eax, cr0
    or eax, (1 << 31) | (1 << 16) | (1 << 2)
    mov cr0, eax

    // Enter 64-bit code through a far return to the 64-bit code segment.
    lgdt [boot_gdt_pointer]
    mov eax, offset boot_long_mode
    push 0x08
    push eax
    retf

    .code64
boot_long_mode:
    xor eax, eax
    mov ds, eax
    mov es, eax
    mov ss, eax
    mov fs, eax
    mov gs, eax
    movabs rax, offset boot_higher_half
    jmp rax

    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff    // 64-bit code, ring 0
boot_gdt_pointer:
    .word boot_gdt_pointer - boot_gdt - 1
    .long boot_gdt

    // From here on, code runs at its linked (higher-half) address.
    .section .text.boot_higher_half, "ax"
boot_higher_half:
    lea rsp, [rip + boot_stack_top]
    xor ebp, ebp                // ends frame-pointer backtraces
    mov r12d, esi               // zero-extends: upper halves are undefined after the mode switch

    // Zero .bss (the stack above is in it, but nothing is on it yet).
    lea rdi, [rip + __bss_start]
    lea rcx, [rip + __bss_end]
    sub rcx, rdi
    shr rcx, 3
    xor eax, eax
    rep stosq

    mov rdi, r12
    call kernel_main
    ud2

    // The boot CPU's kernel stack, with an unmapped guard page below it
    // (memory::paging leaves `boot_stack_guard` out), so an overflow faults.
    .section .bss.boot_stack, "aw", @nobits
    .balign 4096
    .global boot_stack_guard
boot_stack_guard:
    .skip 4096
    .global boot_stack_bottom
boot_stack_bottom:
    .skip 64 * 1024
    .global boot_stack_top
boot_stack_top:
"#
);
