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
    fn hostile_chain_destroyer();
    fn hostile_chain_joiner();
    fn hostile_chain_refiller();
    fn hostile_chain_deriver();
    fn hostile_chain_above();
}

/// Where every level starts (its argument: its handle for the code page).
pub fn level() -> u64 {
    hostile_chain_level as *const () as u64
}

/// Where an environment starts that destroys the one its argument names (a handle with
/// `Rights::DESTROY` in its table) and then waits for ever: on the same page as [`level`].
pub fn destroyer() -> u64 {
    hostile_chain_destroyer as *const () as u64
}

/// Where an environment starts that destroys the one its argument names (a handle with
/// `Rights::DESTROY` in its table) again and again for ever: a member of that one's family
/// makes it end at the first call, and joins its teardown with every call after. On the
/// same page as [`level`].
pub fn joiner() -> u64 {
    hostile_chain_joiner as *const () as u64
}

/// Where an environment starts that maps one frame, again and again, at a row of addresses
/// in another environment: its argument is the address of [`RefillWords`] it may write.
/// Mapping where a page is already mapped fails and costs little; where a teardown has
/// taken the page away, it makes the page (and its page table) again. On the same page as
/// [`level`].
pub fn refiller() -> u64 {
    hostile_chain_refiller as *const () as u64
}

/// The words a [`refiller`] reads (its handles, the row of addresses) and counts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum RefillWords {
    /// Its handle for the environment it maps into (with `Rights::MAP`).
    Target = 0,
    /// Its handle for the frame it maps.
    Frame = 1,
    /// The first address of the row, the distance between two, and how many.
    First = 2,
    Stride = 3,
    Count = 4,
    /// What it counts: maps that succeeded, and maps refused with the error
    /// whose code is in `RefusedWith`.
    Mapped = 5,
    Refused = 6,
    RefusedWith = 7,
}

/// Where an environment starts that derives a copy of a capability it holds, then derives
/// from that copy again and again for ever: its argument is the address of
/// [`DeriveWords`] it may write. On the same page as [`level`].
pub fn deriver() -> u64 {
    hostile_chain_deriver as *const () as u64
}

/// The words a [`deriver`] reads and counts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum DeriveWords {
    /// Its handle for the capability it derives its copy from.
    From = 0,
    /// Its copy's handle, once derived (0 until then).
    Copy = 1,
    /// What it counts: copies derived from the copy, and derivations refused with the
    /// error whose code is in `RefusedWith`.
    Derived = 2,
    Refused = 3,
    RefusedWith = 4,
}

/// Where an environment starts that derives a copy of a capability it holds, a copy of
/// that copy, and below the second as many copies as its table takes; then, again and
/// again, it asks whether a revoke has begun (a derivation from the capability it was given
/// refused) and, once one has, derives from the first copy: above where the revoke's shares
/// stop. Its argument is the address of [`AboveWords`] it may write. On the same page as
/// [`level`].
pub fn above() -> u64 {
    hostile_chain_above as *const () as u64
}

/// The words an [`above`] reads and counts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum AboveWords {
    /// Its handle for the capability it was given.
    From = 0,
    /// The copy it derives from once a revoke has begun, and that copy's copy, the
    /// parent of the rest (0 until derived).
    Upper = 1,
    Lower = 2,
    /// How many copies it derived below `Lower`.
    Leaves = 3,
    /// What it counts once a revoke has begun: derivations from `From` refused with the
    /// error whose code is in `RefusedWith` (it asked), and derivations from `Upper`
    /// that succeeded, and that were refused with that error.
    Asked = 4,
    Derived = 5,
    Refused = 6,
    RefusedWith = 7,
}

/// The page holding [`level`]'s code.
pub fn code_page() -> u64 {
    level() & !(PAGE_SIZE - 1)
}

/// This environment's capability for the page holding the chain's code (a page of the
/// first program's image, listed on its start-info page).
pub fn code_frame() -> Handle {
    frame_of(code_page())
}

/// This environment's capability for `page` of its image (listed on its start-info page).
pub fn frame_of(page: u64) -> Handle {
    let entry = user::start_info()
        .pages()
        .iter()
        .find(|entry| entry.address == page)
        .expect("the chain's code is a page of the image");
    Handle::from_raw(entry.frame)
}

/// Makes `child` (an empty environment this one created) the first level: maps it the
/// code page through `code_frame` (this environment's capability for it), grants it a
/// copy, and starts it.
pub fn start(child: Handle, code_frame: Handle) -> Result<(), Error> {
    user::map(code_frame, child, code_page(), MapFlags::EXECUTE)?;
    let granted = user::capability_grant(code_frame, child, CODE_RIGHTS)?;
    user::environment_start(child, level(), 0, granted.to_raw())
}

// At most 512 bytes, 512-aligned: the code never crosses a page boundary. Registers
// only: r12 the code page's handle, r13 the child; each call's error parks the level.
global_asm!(
    r#"
    .section .text.hostile_chain, "ax"
    .balign 512
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
    .global hostile_chain_destroyer
hostile_chain_destroyer:
    mov eax, {destroy}
    syscall
    jmp 2b
    .global hostile_chain_joiner
hostile_chain_joiner:
    mov eax, {destroy}
    syscall
    jmp hostile_chain_joiner
    // rbp the words (`RefillWords`), r14 the next address, rbx the addresses left.
    .global hostile_chain_refiller
hostile_chain_refiller:
    mov rbp, rdi
5:  mov r14, [rbp + 16]
    mov rbx, [rbp + 32]
6:  mov eax, {map}
    mov rdi, [rbp + 8]
    mov rsi, [rbp]
    mov rdx, r14
    xor r10d, r10d
    xor r8d, r8d
    syscall
    test rax, rax
    jnz 7f
    inc qword ptr [rbp + 40]
7:  cmp rax, [rbp + 56]
    jne 8f
    inc qword ptr [rbp + 48]
8:  add r14, [rbp + 24]
    dec rbx
    jnz 6b
    jmp 5b
    // rbp the words (`DeriveWords`), r12 the copy; no rights asked, none needed.
    .global hostile_chain_deriver
hostile_chain_deriver:
    mov rbp, rdi
    mov eax, {derive}
    mov rdi, [rbp]
    xor esi, esi
    syscall
    test rax, rax
    jnz 2b
    mov r12, rdx
    mov [rbp + 8], rdx
9:  mov eax, {derive}
    mov rdi, r12
    xor esi, esi
    syscall
    test rax, rax
    jnz 10f
    inc qword ptr [rbp + 16]
    jmp 9b
10: cmp rax, [rbp + 32]
    jne 9b
    inc qword ptr [rbp + 24]
    jmp 9b
    // rbp the words (`AboveWords`), r12 the capability given, r13 the upper copy, r14 the
    // lower, r15 the last leaf.
    .global hostile_chain_above
hostile_chain_above:
    mov rbp, rdi
    mov r12, [rbp]
    mov eax, {derive}
    mov rdi, r12
    xor esi, esi
    syscall
    test rax, rax
    jnz 2b
    mov r13, rdx
    mov [rbp + 8], rdx
    mov eax, {derive}
    mov rdi, r13
    xor esi, esi
    syscall
    test rax, rax
    jnz 2b
    mov r14, rdx
    mov [rbp + 16], rdx
11: mov eax, {derive}
    mov rdi, r14
    xor esi, esi
    syscall
    test rax, rax
    jnz 12f
    mov r15, rdx
    inc qword ptr [rbp + 24]
    jmp 11b
12: mov eax, {drop}              // room for the one it asks with
    mov rdi, r15
    syscall
    dec qword ptr [rbp + 24]
13: mov eax, {derive}
    mov rdi, r12
    xor esi, esi
    syscall
    test rax, rax
    jnz 14f
    mov rdi, rdx
    mov eax, {drop}
    syscall
    jmp 13b
14: cmp rax, [rbp + 56]
    jne 13b
    inc qword ptr [rbp + 32]
    mov eax, {derive}
    mov rdi, r13
    xor esi, esi
    syscall
    test rax, rax
    jnz 15f
    inc qword ptr [rbp + 40]
    jmp 13b
15: cmp rax, [rbp + 56]
    jne 13b
    inc qword ptr [rbp + 48]
    jmp 13b
    .balign 512
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
    destroy = const Sysnum::EnvironmentDestroy as u64,
    derive = const Sysnum::CapabilityDerive as u64,
    drop = const Sysnum::CapabilityDrop as u64,
);

/// The rights a fan's capability for the code page carries: map it into its children.
pub const FAN_CODE_RIGHTS: Rights = Rights::READ.union(Rights::EXECUTE).union(Rights::MAP);

unsafe extern "C" {
    fn hostile_fan_of_callers();
    fn hostile_fan_of_sleepers();
    fn hostile_fan_of_alarms();
    fn hostile_fan_of_passers();
}

/// Where a fan starts whose children each make one `Call` through the endpoint the fan
/// grants them (with `CALL` and `GRANT`), passing that same endpoint capability with it,
/// then wait for ever. The argument is [`fan_argument`].
pub fn fan_of_passers() -> u64 {
    hostile_fan_of_passers as *const () as u64
}

/// Where a fan starts whose children each sleep until the next tick that is a multiple of
/// [`ALARM_PERIOD`], again and again: all that were asleep before such a tick wake on it
/// together. The argument is [`fan_argument`] (the endpoint goes unused).
pub fn fan_of_alarms() -> u64 {
    hostile_fan_of_alarms as *const () as u64
}

/// Ticks between two alarms of a [`fan_of_alarms`]'s children: a power of two.
pub const ALARM_PERIOD: u64 = 1 << 10;

/// Where a fan starts: it creates children of [`FAN_CHILD_QUOTA`] frames until its quota
/// or table runs out and then waits for ever. With `calling`, each child makes one `Call`
/// through the endpoint the fan grants it, then waits for ever; otherwise each only
/// waits, so that the two fans differ only in their children's queue. The argument is
/// [`fan_argument`].
pub fn fan(calling: bool) -> u64 {
    match calling {
        true => hostile_fan_of_callers as *const () as u64,
        false => hostile_fan_of_sleepers as *const () as u64,
    }
}

/// Frames each of a fan's children gets: its page tables, facts page and code page's
/// tables.
pub const FAN_CHILD_QUOTA: u64 = 9;

/// The start argument of a fan: its handles for the code page and the endpoint, 16 bits
/// for each index and generation (`None` if one does not fit).
pub fn fan_argument(code: Handle, endpoint: Handle) -> Option<u64> {
    let squeeze = |handle: Handle| {
        let (index, generation) = (u64::from(handle.index()), u64::from(handle.generation()));
        (index < 1 << 16 && generation < 1 << 16).then_some(index | generation << 16)
    };
    Some(squeeze(code)? | squeeze(endpoint)? << 32)
}

// The caller passes no capability: `mov r10, -1` below.
const _: () = assert!(exo_abi::syscall::NO_CAPABILITY == u64::MAX);

// The fan: r12 the code page's handle, r13 the endpoint's, r14 a child, r15 where the
// children start, rbx the rights their endpoint capability carries.
global_asm!(
    r#"
    .section .text.hostile_chain, "ax"
    .balign 256
    .global hostile_fan_of_callers
hostile_fan_of_callers:
    lea r15, [rip + hostile_fan_caller]
    jmp 5f
    .global hostile_fan_of_passers
hostile_fan_of_passers:
    lea r15, [rip + hostile_fan_passer]
    mov ebx, {call_grant}
    jmp 4f
    .global hostile_fan_of_alarms
hostile_fan_of_alarms:
    lea r15, [rip + hostile_fan_alarm]
    jmp 5f
    .global hostile_fan_of_sleepers
hostile_fan_of_sleepers:
    lea r15, [rip + 2f]
5:  mov ebx, {call_right}
4:  // Unsqueeze the two handles: 16-bit index, 16-bit generation each.
    mov r12d, edi
    mov rax, r12
    shr rax, 16
    shl rax, 32
    and r12d, 0xffff
    or r12, rax
    shr rdi, 32
    mov r13d, edi
    mov rax, r13
    shr rax, 16
    shl rax, 32
    and r13d, 0xffff
    or r13, rax
3:  mov eax, {create}
    mov edi, {child_quota}
    xor esi, esi
    xor edx, edx
    syscall
    test rax, rax
    jnz 2f
    mov r14, rdx
    mov eax, {map}
    mov rdi, r12
    mov rsi, r14
    lea rdx, [rip + hostile_fan_of_callers]
    and rdx, -{page}
    mov r10, {execute}
    syscall
    test rax, rax
    jnz 2f
    mov eax, {grant}
    mov rdi, r13
    mov rsi, r14
    mov rdx, rbx
    syscall
    test rax, rax
    jnz 2f
    mov r10, rdx
    mov eax, {start}
    mov rdi, r14
    mov rsi, r15
    xor edx, edx
    syscall
    test rax, rax
    jz 3b
2:  mov eax, {wait}
    mov edi, {call_event}
    xor esi, esi
    syscall
    jmp 2b

hostile_fan_caller:
    mov eax, {call}
    xor esi, esi
    xor edx, edx
    mov r10, -1
    syscall
    jmp 2b

hostile_fan_passer:
    mov r10, rdi
    mov eax, {call}
    xor esi, esi
    xor edx, edx
    syscall
    jmp 2b

    // Sleeps until the next multiple of the period, the tick read on the facts page.
hostile_fan_alarm:
    mov rax, {facts_ticks}
    mov rax, [rax]
    mov rsi, rax
    or rsi, {period_mask}
    inc rsi
    sub rsi, rax
    mov eax, {wait}
    mov edi, {timer_event}
    syscall
    jmp hostile_fan_alarm
    .balign 256
"#,
    create = const Sysnum::EnvironmentCreate as u64,
    child_quota = const FAN_CHILD_QUOTA,
    map = const Sysnum::Map as u64,
    page = const PAGE_SIZE,
    execute = const MapFlags::EXECUTE.bits(),
    grant = const Sysnum::CapabilityGrant as u64,
    call_right = const Rights::CALL.bits(),
    call_grant = const Rights::CALL.union(Rights::GRANT).bits(),
    start = const Sysnum::EnvironmentStart as u64,
    wait = const Sysnum::Wait as u64,
    call_event = const Event::CALL.bits(),
    call = const Sysnum::Call as u64,
    facts_ticks = const exo_abi::layout::FACTS + core::mem::offset_of!(exo_abi::facts::Facts, ticks) as u64,
    period_mask = const ALARM_PERIOD - 1,
    timer_event = const Event::TIMER.bits(),
);

unsafe extern "C" {
    fn hostile_sparse_level();
}

/// Where a level of a *sparse* chain starts (its argument: its handle for the page holding
/// this code, [`sparse_code_page`]). It fills its table with copies of its own capability,
/// drops the last copy, creates the next level — whose root capability lands in that last
/// slot — lending it all the frames and all but [`SPARSE_MARGIN`] of the kernel memory it
/// has left, maps it the page and starts it here; then drops its own capability, and the
/// copies with it, and waits for ever. While it has at least [`SPARSE_FLOOR`] bytes of
/// kernel memory left after filling its table, it makes a next level. Each level's table
/// then holds its child's root in its last slot, after a thousand empty ones, and the page's
/// capability.
pub fn sparse_level() -> u64 {
    hostile_sparse_level as *const () as u64
}

/// The page holding [`sparse_level`]'s code (not [`code_page`]).
pub fn sparse_code_page() -> u64 {
    sparse_level() & !(PAGE_SIZE - 1)
}

/// Kernel memory a sparse level needs left after filling its table to make the next.
pub const SPARSE_FLOOR: u64 = 300_000;
/// Kernel memory a sparse level keeps of what it has left when it makes the next.
pub const SPARSE_MARGIN: u64 = 1024;

// Registers only: r12 the page's handle, r13 the child, r14 the last copy, rbx the kernel
// memory to lend, rbp the frames.
global_asm!(
    r#"
    .section .text.hostile_chain, "ax"
    .balign 256
    .global hostile_sparse_level
hostile_sparse_level:
    mov r12, rdi
    xor r14d, r14d
1:  mov eax, {derive}
    xor edi, edi
    xor esi, esi
    syscall
    test rax, rax
    jnz 2f
    mov r14, rdx
    jmp 1b
2:  test r14, r14
    jz 9f
    mov eax, {drop}
    mov rdi, r14
    syscall
    mov eax, {info}
    xor edi, edi
    mov esi, {kernel_limit}
    syscall
    test rax, rax
    jnz 9f
    mov rbx, rdx
    mov eax, {info}
    xor edi, edi
    mov esi, {kernel_charged}
    syscall
    test rax, rax
    jnz 9f
    sub rbx, rdx
    jb 9f
    cmp rbx, {floor}
    jb 9f
    sub rbx, {margin}
    mov eax, {info}
    xor edi, edi
    mov esi, {frame_quota}
    syscall
    test rax, rax
    jnz 9f
    mov rbp, rdx
    mov eax, {info}
    xor edi, edi
    mov esi, {frames_charged}
    syscall
    test rax, rax
    jnz 9f
    sub rbp, rdx
    jb 9f
    cmp rbp, {frame_floor}
    jb 9f
    mov eax, {create}
    mov rdi, rbp
    mov rsi, rbx
    xor edx, edx
    syscall
    test rax, rax
    jnz 9f
    mov r13, rdx
    mov eax, {map}
    mov rdi, r12
    mov rsi, r13
    lea rdx, [rip + hostile_sparse_level]
    and rdx, -{page}
    mov r10, {execute}
    xor r8d, r8d
    syscall
    test rax, rax
    jnz 9f
    mov eax, {grant}
    mov rdi, r12
    mov rsi, r13
    mov rdx, {rights}
    syscall
    test rax, rax
    jnz 9f
    mov r10, rdx
    mov eax, {start}
    mov rdi, r13
    lea rsi, [rip + hostile_sparse_level]
    xor edx, edx
    syscall
9:  mov eax, {drop}
    xor edi, edi
    syscall
3:  mov eax, {wait}
    mov edi, {call}
    xor esi, esi
    syscall
    jmp 3b
    .balign 256
"#,
    derive = const Sysnum::CapabilityDerive as u64,
    drop = const Sysnum::CapabilityDrop as u64,
    info = const Sysnum::EnvironmentInfo as u64,
    kernel_limit = const EnvironmentAccount::KernelBytesLimit as u64,
    kernel_charged = const EnvironmentAccount::KernelBytesCharged as u64,
    frame_quota = const EnvironmentAccount::FrameQuota as u64,
    frames_charged = const EnvironmentAccount::FramesCharged as u64,
    floor = const SPARSE_FLOOR,
    margin = const SPARSE_MARGIN,
    frame_floor = const FLOOR,
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

unsafe extern "C" {
    fn hostile_hider();
    fn hostile_spinning_hider();
}

/// Where an environment starts that allocates [`HIDDEN_FRAMES`] frames, grants a copy of
/// each (with [`HIDDEN_RIGHTS`]) to the environment its argument names (a handle with
/// `Rights::GIVE` in its table), and waits for ever: it holds frames for its creator, who
/// uses them through the copies and holds none of its own. Its code lies within one page
/// ([`hider_page`]), not necessarily [`code_page`].
pub fn hider() -> u64 {
    hostile_hider as *const () as u64
}

/// Where an environment starts that does what a [`hider`] does but then spins for ever
/// instead of waiting: when its creator's frames are taken by force, it is the one on the
/// CPU, or the last to have been. Its code lies in [`hider_page`] too.
pub fn spinning_hider() -> u64 {
    hostile_spinning_hider as *const () as u64
}

/// The page holding [`hider`]'s and [`spinning_hider`]'s code.
pub fn hider_page() -> u64 {
    hider() & !(PAGE_SIZE - 1)
}

/// Frames a [`hider`] allocates and gives copies of.
pub const HIDDEN_FRAMES: u64 = 16;
/// The rights of the copies a [`hider`] gives.
pub const HIDDEN_RIGHTS: Rights = Rights::READ.union(Rights::WRITE).union(Rights::MAP);

// At most 128 bytes, 128-aligned: within one page. r12 its handle for the environment it
// gives to, rbx the frames left, r13 1 if it spins at the end.
global_asm!(
    r#"
    .section .text.hostile_hider, "ax"
    .balign 128
    .global hostile_hider
    .global hostile_spinning_hider
hostile_hider:
    xor r13d, r13d
    jmp 0f
hostile_spinning_hider:
    mov r13d, 1
0:  mov r12, rdi
    mov ebx, {hidden}
1:  mov eax, {allocate}
    xor edi, edi
    syscall
    test rax, rax
    jnz 2f
    mov rdi, rdx
    mov rsi, r12
    mov edx, {hidden_rights}
    mov eax, {grant}
    syscall
    dec rbx
    jnz 1b
    test r13, r13
    jnz 3f
2:  mov eax, {wait}
    mov edi, {call}
    xor esi, esi
    syscall
    jmp 2b
3:  jmp 3b
    .balign 128
"#,
    hidden = const HIDDEN_FRAMES,
    allocate = const Sysnum::FrameAllocate as u64,
    hidden_rights = const HIDDEN_RIGHTS.bits(),
    grant = const Sysnum::CapabilityGrant as u64,
    wait = const Sysnum::Wait as u64,
    call = const Event::CALL.bits(),
);
