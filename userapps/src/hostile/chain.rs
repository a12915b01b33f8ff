//! A chain of nested environments as deep as a frame quota allows: each level creates the
//! next, lending it all but [`PER_LEVEL`] frames of its own quota, and gives it the one
//! page of code it runs.
//!
//! Only the first environment can build children from its image (`spawn`), so each level
//! runs [`level`], a few instructions that use no stack and no data: they live in one
//! page of this program's text, which every level maps at the same address through a
//! capability its creator granted it. A level asks its own quota (`EnvironmentInfo`),
//! and, while it is at least [`FLOOR`], creates a child, maps it the page, grants it the
//! page's capability and starts it at [`level`] with that handle as its argument; then it
//! waits for a call that never comes. The deepest level only waits.
#![allow(unsafe_code)] // the level's code: system calls with no stack

use core::arch::global_asm;

use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::MapFlags;
use exo_abi::syscall::{EnvironmentAccount, Event, Sysnum};
use exo_abi::{Error, Handle, Rights, user};

/// Frames a level keeps of its quota: its page tables (the facts page's and the code
/// page's) and facts page, with room to spare. It lends the rest to the next.
pub const PER_LEVEL: u64 = 12;
/// A level whose quota is below this creates no child.
pub const FLOOR: u64 = 2 * PER_LEVEL;
/// The rights each level's capability for the code page carries: enough to map it
/// executable into the next level and grant it on.
pub const CODE_RIGHTS: Rights = Rights::READ
    .union(Rights::EXECUTE)
    .union(Rights::MAP)
    .union(Rights::GRANT);

unsafe extern "C" {
    fn hostile_chain_level();
}

/// Where every level starts (its argument: its handle for the code page).
pub fn level() -> u64 {
    hostile_chain_level as *const () as u64
}

/// The page holding [`level`]'s code.
pub fn code_page() -> u64 {
    level() & !(PAGE_SIZE - 1)
}

/// Makes `child` (an empty environment this one created) the first level: maps it the
/// code page through `code_frame` (this environment's capability for it), grants it a
/// copy, and starts it.
pub fn start(child: Handle, code_frame: Handle) -> Result<(), Error> {
    user::map(code_frame, child, code_page(), MapFlags::EXECUTE)?;
    let granted = user::capability_grant(code_frame, child, CODE_RIGHTS)?;
    user::environment_start(child, level(), 0, granted.to_raw())
}

// 256 bytes, 256-aligned: the code never crosses a page boundary. Registers only:
// r12 the code page's handle, r13 the child; each call's error parks the level.
global_asm!(
    r#"
    .section .text.hostile_chain, "ax"
    .balign 256
    .global hostile_chain_level
hostile_chain_level:
    mov r12, rdi
    mov eax, {info}
    xor edi, edi
    mov esi, {frame_quota}
    syscall
    test rax, rax
    jnz 2f
    cmp rdx, {floor}
    jb 2f
    lea rdi, [rdx - {per_level}]
    mov eax, {create}
    xor esi, esi
    xor edx, edx
    syscall
    test rax, rax
    jnz 2f
    mov r13, rdx
    mov eax, {map}
    mov rdi, r12
    mov rsi, r13
    lea rdx, [rip + hostile_chain_level]
    and rdx, -{page}
    mov r10, {execute}
    syscall
    test rax, rax
    jnz 2f
    mov eax, {grant}
    mov rdi, r12
    mov rsi, r13
    mov rdx, {rights}
    syscall
    test rax, rax
    jnz 2f
    mov r10, rdx
    mov eax, {start}
    mov rdi, r13
    lea rsi, [rip + hostile_chain_level]
    xor edx, edx
    syscall
2:  mov eax, {wait}
    mov edi, {call}
    xor esi, esi
    syscall
    jmp 2b
    .balign 256
"#,
    info = const Sysnum::EnvironmentInfo as u64,
    frame_quota = const EnvironmentAccount::FrameQuota as u64,
    floor = const FLOOR,
    per_level = const PER_LEVEL,
    create = const Sysnum::EnvironmentCreate as u64,
    map = const Sysnum::Map as u64,
    page = const PAGE_SIZE,
    execute = const MapFlags::EXECUTE.bits(),
    grant = const Sysnum::CapabilityGrant as u64,
    rights = const CODE_RIGHTS.bits(),
    start = const Sysnum::EnvironmentStart as u64,
    wait = const Sysnum::Wait as u64,
    call = const Event::CALL.bits(),
);
