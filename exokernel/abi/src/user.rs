//! The user side of the ABI: a program's entry (`_start`, in `start`),
//! system-call wrappers, the upcall entry and resume path, and reads of the
//! page-table view.
//!
//! This is the one module of user code that needs `unsafe`: it issues the
//! `syscall` instruction, reads the kernel-provided pages, and restores
//! registers from an upcall frame. Library OSes and programs call the safe
//! functions here and forbid `unsafe` themselves.
#![allow(unsafe_code)]

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::layout::{self, USER_CODE_SELECTOR, USER_DATA_SELECTOR};
use crate::mapping::{MapFlags, MapRequest};
use crate::start_info::{self, StartInfo};
use crate::syscall::{CapabilityInfo, EnvironmentAccount, MapPart, Sysnum};
use crate::upcall::{UpcallFrame, offsets};
use crate::{Error, Handle, Rights};

pub mod rings;
mod start;

/// Issues system call `number` with six arguments; returns (`rax`, `rdx`, `rsi`).
///
/// # Safety
/// The arguments must be valid for that call: in particular, a call that
/// changes the caller's own mappings must not remove memory Rust code still
/// refers to.
#[inline(always)]
pub unsafe fn syscall(number: Sysnum, arguments: [u64; 6]) -> (u64, u64, u64) {
    // SAFETY: the caller's promise covers this call.
    let [status, first, second, ..] = unsafe { syscall_raw(number as u64, arguments) };
    (status, first, second)
}

/// Issues system call `number` — any value, valid or not — with six
/// arguments; returns `[rax, rdx, rsi, rdi, r8, r9]` (most calls return
/// only the first three; `Wait` and `Call` use them all).
///
/// # Safety
/// As for [`syscall`]; an unknown number is refused by the kernel and safe.
#[inline(always)]
pub unsafe fn syscall_raw(number: u64, arguments: [u64; 6]) -> [u64; 6] {
    let status: u64;
    let first: u64;
    let second: u64;
    let third: u64;
    let fourth: u64;
    let fifth: u64;
    // SAFETY: the kernel preserves every register but rax, rdx, rsi (results)
    // and rcx, r11 (clobbered by `syscall`); memory effects are the caller's
    // responsibility as stated above.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") number => status,
            inlateout("rdi") arguments[0] => third,
            inlateout("rsi") arguments[1] => second,
            inlateout("rdx") arguments[2] => first,
            in("r10") arguments[3],
            inlateout("r8") arguments[4] => fourth,
            inlateout("r9") arguments[5] => fifth,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    [status, first, second, third, fourth, fifth]
}

/// Turns the status register into a `Result`.
fn check(status: u64) -> Result<(), Error> {
    match status {
        0 => Ok(()),
        code => Err(Error::try_from(code).unwrap_or(Error::UnknownSystemCall)),
    }
}

/// A call that only adds or reads: safe for any argument values.
fn call(number: Sysnum, arguments: [u64; 6]) -> Result<(u64, u64), Error> {
    // SAFETY: used only for calls that cannot take memory away from the
    // caller at once: Unmap, Protect, CapabilityRevoke, CapabilityDrop and
    // NetBind (the kernel writes into the frames) have unsafe wrappers. (RequestFrames on oneself can, after its
    // deadline, take frames by force; the kernel then unmaps them, and a
    // later access faults rather than reading freed memory.)
    let (status, first, second) = unsafe { syscall(number, arguments) };
    check(status).map(|()| (first, second))
}

fn args(values: &[u64]) -> [u64; 6] {
    let mut arguments = [0; 6];
    arguments[..values.len()].copy_from_slice(values);
    arguments
}

/// Writes `bytes` to the kernel console; returns how many were written.
pub fn console_write(bytes: &[u8]) -> Result<usize, Error> {
    call(
        Sysnum::ConsoleWrite,
        args(&[bytes.as_ptr() as u64, bytes.len() as u64]),
    )
    .map(|(written, _)| written as usize)
}

/// Reads what has arrived on the console into `buffer`, without waiting;
/// returns how many bytes (0 if none).
pub fn console_read(buffer: &mut [u8]) -> Result<usize, Error> {
    call(
        Sysnum::ConsoleRead,
        args(&[buffer.as_mut_ptr() as u64, buffer.len() as u64]),
    )
    .map(|(read, _)| read as usize)
}

/// Destroys the calling environment.
pub fn exit(status: u64) -> ! {
    let _ = call(Sysnum::Exit, args(&[status]));
    unreachable!("the kernel never returns from Exit")
}

/// Gives up the CPU.
pub fn yield_now() {
    let _ = call(Sysnum::Yield, [0; 6]);
}

/// A child capability with `rights` (a subset of the capability's).
pub fn capability_derive(capability: Handle, rights: Rights) -> Result<Handle, Error> {
    call(
        Sysnum::CapabilityDerive,
        args(&[capability.to_raw(), u64::from(rights.bits())]),
    )
    .map(|(handle, _)| Handle::from_raw(handle))
}

/// Copies `capability` (with `rights`) into `environment`'s table; returns
/// the handle there.
pub fn capability_grant(
    capability: Handle,
    environment: Handle,
    rights: Rights,
) -> Result<Handle, Error> {
    let raw = [
        capability.to_raw(),
        environment.to_raw(),
        u64::from(rights.bits()),
    ];
    call(Sysnum::CapabilityGrant, args(&raw)).map(|(handle, _)| Handle::from_raw(handle))
}

/// Removes everything derived from `capability`, in every environment,
/// with every page mapped through those capabilities (the caller's too).
///
/// # Safety
/// No live reference of the caller may point into a page mapped through a
/// capability derived from `capability`.
pub unsafe fn capability_revoke(capability: Handle) -> Result<(), Error> {
    call(Sysnum::CapabilityRevoke, args(&[capability.to_raw()])).map(drop)
}

/// Removes `capability` and everything derived from it.
///
/// # Safety
/// As for [`capability_revoke`], and the pages mapped through `capability`
/// itself go as well.
pub unsafe fn capability_drop(capability: Handle) -> Result<(), Error> {
    call(Sysnum::CapabilityDrop, args(&[capability.to_raw()])).map(drop)
}

/// What `capability` names and what it allows.
pub fn capability_identify(capability: Handle) -> Result<CapabilityInfo, Error> {
    let (packed, value) = call(Sysnum::CapabilityIdentify, args(&[capability.to_raw()]))?;
    CapabilityInfo::unpack(packed, value).ok_or(Error::InvalidArgument)
}

/// `2^order` free frames aligned to their size: (capability, first frame number).
pub fn frame_allocate(order: u32) -> Result<(Handle, u64), Error> {
    call(Sysnum::FrameAllocate, args(&[u64::from(order)]))
        .map(|(handle, frame)| (Handle::from_raw(handle), frame))
}

/// Exactly the `2^order` frames starting at frame number `frame`.
pub fn frame_allocate_at(frame: u64, order: u32) -> Result<Handle, Error> {
    call(Sysnum::FrameAllocateAt, args(&[frame, u64::from(order)]))
        .map(|(handle, _)| Handle::from_raw(handle))
}

/// Maps `frame` at `address` in `environment` (the caller's own:
/// [`Handle::SELF_ENVIRONMENT`]).
pub fn map(frame: Handle, environment: Handle, address: u64, flags: MapFlags) -> Result<(), Error> {
    let raw = [frame.to_raw(), environment.to_raw(), address, flags.bits()];
    call(Sysnum::Map, args(&raw)).map(drop)
}

/// Maps only `part` of the run `frame` names, its first page at `address`.
pub fn map_part(
    frame: Handle,
    environment: Handle,
    address: u64,
    flags: MapFlags,
    part: MapPart,
) -> Result<(), Error> {
    let raw = [
        frame.to_raw(),
        environment.to_raw(),
        address,
        flags.bits(),
        part.pack(),
    ];
    call(Sysnum::Map, args(&raw)).map(drop)
}

/// Applies `requests` in order in `environment`; returns how many succeeded
/// and, if one failed, its error.
pub fn map_batch(environment: Handle, requests: &[MapRequest]) -> (usize, Result<(), Error>) {
    let raw = [
        environment.to_raw(),
        requests.as_ptr() as u64,
        requests.len() as u64,
    ];
    match call(Sysnum::MapBatch, args(&raw)) {
        Ok((done, failure)) => (done as usize, check(failure)),
        Err(error) => (0, Err(error)),
    }
}

/// Removes the page at `address` from `environment`.
///
/// # Safety
/// When `environment` is the caller, no live reference may point into the page.
pub unsafe fn unmap(environment: Handle, address: u64) -> Result<(), Error> {
    call(Sysnum::Unmap, args(&[environment.to_raw(), address])).map(drop)
}

/// Changes the permissions of the page at `address` in `environment`.
///
/// # Safety
/// When `environment` is the caller and the page loses write access, no
/// live `&mut` may point into it.
pub unsafe fn protect(environment: Handle, address: u64, flags: MapFlags) -> Result<(), Error> {
    call(
        Sysnum::Protect,
        args(&[environment.to_raw(), address, flags.bits()]),
    )
    .map(drop)
}

/// A new, empty environment that may hold `frame_quota` frames (lent from
/// the caller's quota until it is destroyed), with the default kernel-memory
/// allowance for that quota and no slots of its own.
pub fn environment_create(frame_quota: u64) -> Result<Handle, Error> {
    environment_create_lending(Lend {
        frames: frame_quota,
        ..Lend::default()
    })
}

/// What a creator lends a new environment from its own accounts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lend {
    /// Frames it may hold (its frame quota).
    pub frames: u64,
    /// Bytes of kernel memory it may be charged for; 0 for the default
    /// ([`crate::syscall::default_kernel_bytes`] of `frames`).
    pub kernel_bytes: u64,
    /// Slots of the slice vector it may take or lend.
    pub slots: u64,
}

/// A new, empty environment with the accounts `lend` gives it.
pub fn environment_create_lending(lend: Lend) -> Result<Handle, Error> {
    call(
        Sysnum::EnvironmentCreate,
        args(&[lend.frames, lend.kernel_bytes, lend.slots]),
    )
    .map(|(handle, _)| Handle::from_raw(handle))
}

/// Starts `environment` at `entry` with `rsp = stack` and `rdi = argument`.
pub fn environment_start(
    environment: Handle,
    entry: u64,
    stack: u64,
    argument: u64,
) -> Result<(), Error> {
    call(
        Sysnum::EnvironmentStart,
        args(&[environment.to_raw(), entry, stack, argument]),
    )
    .map(drop)
}

/// Destroys `environment` and returns everything it held.
pub fn environment_destroy(environment: Handle) -> Result<(), Error> {
    call(Sysnum::EnvironmentDestroy, args(&[environment.to_raw()])).map(drop)
}

/// Asks `environment` to give back `frames` frames within `deadline_ticks`.
pub fn request_frames(environment: Handle, frames: u64, deadline_ticks: u64) -> Result<(), Error> {
    call(
        Sysnum::RequestFrames,
        args(&[environment.to_raw(), frames, deadline_ticks]),
    )
    .map(drop)
}

/// Allocates slot `slot` of the slice vector (or any free one, with
/// `syscall::ANY_SLOT`) for `environment`; returns the capability and the index.
pub fn slot_allocate(environment: Handle, slot: u64) -> Result<(Handle, u64), Error> {
    call(Sysnum::SlotAllocate, args(&[environment.to_raw(), slot]))
        .map(|(handle, index)| (Handle::from_raw(handle), index))
}

/// Gives the rest of the current slot to `environment` (directed yield).
pub fn yield_to(environment: Handle) -> Result<(), Error> {
    call(Sysnum::YieldTo, args(&[environment.to_raw()])).map(drop)
}

/// What `wait` woke up for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wakeup {
    /// The timeout passed.
    Timer,
    /// A call arrived: answer it with [`reply`].
    Call(IncomingCall),
    /// Notifications were signalled: the bits they set (now cleared).
    Notify(u64),
}

/// A call being served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IncomingCall {
    /// The entry tag of the endpoint it came through.
    pub entry: u64,
    pub arguments: [u64; 2],
    /// A capability the caller passed, now in this environment's table.
    pub capability: Option<Handle>,
}

fn optional_handle(raw: u64) -> Option<Handle> {
    (raw != crate::syscall::NO_CAPABILITY).then_some(Handle::from_raw(raw))
}

/// Sleeps until one of `events` happens; `timeout_ticks` matters with `Event::TIMER`.
pub fn wait(events: crate::syscall::Event, timeout_ticks: u64) -> Result<Wakeup, Error> {
    // SAFETY: Wait only blocks and reports; it takes nothing away.
    let [status, event, entry, first, second, capability] =
        unsafe { syscall_raw(Sysnum::Wait as u64, args(&[events.bits(), timeout_ticks])) };
    check(status)?;
    match crate::syscall::Event::from_bits(event) {
        Some(crate::syscall::Event::CALL) => Ok(Wakeup::Call(IncomingCall {
            entry,
            arguments: [first, second],
            capability: optional_handle(capability),
        })),
        Some(crate::syscall::Event::NOTIFY) => Ok(Wakeup::Notify(entry)),
        _ => Ok(Wakeup::Timer),
    }
}

/// A new notification into this environment: signalling it sets `bits`
/// (not 0) in the pending word a `wait` for `Event::NOTIFY` returns.
pub fn notification_create(bits: u64) -> Result<Handle, Error> {
    call(Sysnum::NotificationCreate, args(&[bits])).map(|(handle, _)| Handle::from_raw(handle))
}

/// Signals `notification`; never blocks.
pub fn signal(notification: Handle) -> Result<(), Error> {
    call(Sysnum::Signal, args(&[notification.to_raw()])).map(drop)
}

/// A new endpoint into this environment; calls through it carry `entry`.
pub fn endpoint_create(entry: u64) -> Result<Handle, Error> {
    call(Sysnum::EndpointCreate, args(&[entry])).map(|(handle, _)| Handle::from_raw(handle))
}

/// Calls through `endpoint` with two arguments and optionally a capability
/// (granted to the callee with its rights); returns the two results and any
/// capability the callee passed back.
pub fn call_endpoint(
    endpoint: Handle,
    arguments: [u64; 2],
    capability: Option<Handle>,
) -> Result<([u64; 2], Option<Handle>), Error> {
    let passed = capability.map_or(crate::syscall::NO_CAPABILITY, Handle::to_raw);
    let raw = [endpoint.to_raw(), arguments[0], arguments[1], passed];
    // SAFETY: Call only transfers control and values; it takes nothing away.
    let [status, first, second, returned, ..] =
        unsafe { syscall_raw(Sysnum::Call as u64, args(&raw)) };
    check(status)?;
    Ok(([first, second], optional_handle(returned)))
}

/// Answers the call being served with two results and optionally a capability.
pub fn reply(results: [u64; 2], capability: Option<Handle>) -> Result<(), Error> {
    let passed = capability.map_or(crate::syscall::NO_CAPABILITY, Handle::to_raw);
    call(Sysnum::Reply, args(&[results[0], results[1], passed])).map(drop)
}

/// Raises a breakpoint exception (`int3`): the kernel delivers it to the
/// upcall handler as a fault with vector 3, and the handler's return resumes
/// after the instruction (it is a trap). Without a handler the kernel
/// destroys the caller, as for any fault.
pub fn breakpoint() {
    // SAFETY: `int3` touches no memory of ours; the upcall mechanism saves
    // and restores every register around the handler.
    unsafe { asm!("int3") };
}

/// The time-stamp counter: cycles at the rate the facts page's `tsc_hz`
/// gives (invariant on the machines exo runs on).
pub fn tsc() -> u64 {
    // SAFETY: `rdtsc` only reads the counter; user mode may (CR4.TSD is clear).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Microseconds since boot, from the time-stamp counter.
pub fn micros() -> u64 {
    let hz = fact(|facts| &facts.tsc_hz).max(1);
    (u128::from(tsc()) * 1_000_000 / u128::from(hz)) as u64
}

/// One field of the facts page as it is now, e.g.
/// `fact(|facts| &facts.ticks)`. The kernel rewrites the page behind the
/// program's back, so the word is read with a volatile load: a loop waiting
/// for the tick to move reads the page each time round.
pub fn fact(field: impl FnOnce(&crate::facts::Facts) -> &u64) -> u64 {
    // SAFETY: the kernel maps the facts page read-only at FACTS in every
    // environment for its whole life and writes it only as whole aligned
    // u64s; the reference only locates the field, which is read volatile.
    let facts = unsafe { &*(layout::FACTS as *const crate::facts::Facts) };
    let word: *const u64 = field(facts);
    // SAFETY: `word` is an aligned field of that mapped page.
    unsafe { word.read_volatile() }
}

/// Adds a library-OS event to the kernel's trace, if it records the library
/// class (the facts page says); costs a load and a test otherwise.
pub fn trace(kind: crate::trace::Kind, values: [u64; 2]) {
    if fact(|facts| &facts.trace_classes) & crate::trace::Class::LIBRARY.bits() != 0 {
        let _ = call(Sysnum::Trace, args(&[kind as u64, values[0], values[1]]));
    }
}

/// The next id after `after` of `environment` or an environment below it
/// (`None` after the last); the capability needs `INSPECT`.
pub fn environment_next(environment: Handle, after: u64) -> Result<Option<u64>, Error> {
    call(
        Sysnum::EnvironmentNext,
        args(&[environment.to_raw(), after]),
    )
    .map(|(id, _)| (id != 0).then_some(id))
}

/// One of the accounts of environment `id`, `environment` itself or one
/// below it; the capability needs `INSPECT`.
pub fn environment_inspect(
    environment: Handle,
    id: u64,
    account: EnvironmentAccount,
) -> Result<u64, Error> {
    call(
        Sysnum::EnvironmentInspect,
        args(&[environment.to_raw(), id, account as u64]),
    )
    .map(|(value, _)| value)
}

/// Names `environment` for `ps` and the trace: 16 bytes, packed by
/// [`crate::trace::pack_name`].
pub fn environment_name(environment: Handle, [low, high]: [u64; 2]) -> Result<(), Error> {
    call(
        Sysnum::EnvironmentName,
        args(&[environment.to_raw(), low, high]),
    )
    .map(drop)
}

/// One of `environment`'s accounts.
pub fn environment_info(environment: Handle, account: EnvironmentAccount) -> Result<u64, Error> {
    call(
        Sysnum::EnvironmentInfo,
        args(&[environment.to_raw(), account as u64]),
    )
    .map(|(value, _)| value)
}

/// A kernel round trip that does nothing: the floor of a system call.
pub fn null() {
    let _ = call(Sysnum::Null, [0; 6]);
}

/// The kernel's (free, usable) frame counts.
pub fn frame_counts() -> (u64, u64) {
    call(Sysnum::FrameCounts, [0; 6]).unwrap_or((0, 0))
}

/// The kernel heap's (bytes in use, capacity).
pub fn kernel_memory() -> (u64, u64) {
    // LAB 1.2 BEGIN: the user-side wrapper user::kernel_memory
    call(Sysnum::KernelMemory, [0; 6]).unwrap_or((0, 0))
    // LAB 1.2 STUB
    // todo!("lab 1.2: issue KernelMemory through `call` and return its two values")
    // LAB 1.2 END
}

/// The start-info page. Only the first environment has one (elsewhere the
/// read faults); a child learns what it needs from its parent.
pub fn start_info() -> &'static StartInfo {
    // SAFETY: the kernel maps the page read-only at START_INFO in the first
    // environment for its whole life; it is never written after start.
    let info = unsafe { &*(layout::START_INFO as *const StartInfo) };
    assert_eq!(
        info.magic,
        start_info::MAGIC,
        "no start-info page in this environment"
    );
    info
}

// ---------------------------------------------------------------------------
// Upcalls

/// The library OS's upcall handler; 0 until registered.
static UPCALL_HANDLER: AtomicUsize = AtomicUsize::new(0);

/// Registers `handler` to receive every upcall, on the exception stack at
/// `stack_top - stack_size .. stack_top` (which must be mapped writable).
/// When the handler returns, the interrupted code resumes from the frame.
pub fn set_upcall_handler(
    handler: fn(&mut UpcallFrame),
    stack_top: u64,
    stack_size: u64,
) -> Result<(), Error> {
    set_upcall_handler_with(
        handler,
        stack_top,
        stack_size,
        crate::syscall::UpcallOptions::empty(),
    )
}

/// [`set_upcall_handler`] with options, e.g. `UpcallOptions::SCHEDULER` to
/// be entered at the start of every slot.
pub fn set_upcall_handler_with(
    handler: fn(&mut UpcallFrame),
    stack_top: u64,
    stack_size: u64,
    options: crate::syscall::UpcallOptions,
) -> Result<(), Error> {
    UPCALL_HANDLER.store(handler as usize, Ordering::Release);
    let entry = exo_upcall_entry as *const () as u64;
    let raw = [
        Handle::SELF_ENVIRONMENT.to_raw(),
        entry,
        stack_top,
        stack_size,
        options.bits(),
    ];
    call(Sysnum::SetUpcall, args(&raw)).map(drop)
}

/// Removes the caller's upcall registration: from now on a fault ends it,
/// as before it registered one.
pub fn remove_upcall_handler() -> Result<(), Error> {
    UPCALL_HANDLER.store(0, Ordering::Release);
    call(
        Sysnum::SetUpcall,
        args(&[Handle::SELF_ENVIRONMENT.to_raw(), 0]),
    )
    .map(drop)
}

/// Called by `exo_upcall_entry` with the frame the kernel wrote.
extern "C" fn dispatch_upcall(frame: &mut UpcallFrame) {
    let handler = UPCALL_HANDLER.load(Ordering::Acquire);
    if handler == 0 {
        let _ = console_write(b"upcall with no handler registered\n");
        exit(1);
    }
    // SAFETY: only `set_upcall_handler` stores here, and it stores a `fn(&mut UpcallFrame)`.
    let handler: fn(&mut UpcallFrame) = unsafe { core::mem::transmute(handler) };
    handler(frame);
    // The handler is done: the interrupted code resumes next (`exo_resume`).
    trace(crate::trace::Kind::UpcallReturn, [frame.reason, 0]);
}

unsafe extern "C" {
    fn exo_upcall_entry();
    fn exo_resume(frame: *const UpcallFrame) -> !;
}

/// Resumes the code described by `frame.registers` (all general registers,
/// `rip`, `rsp`, `rflags`), without entering the kernel.
pub fn resume(frame: &UpcallFrame) -> ! {
    // SAFETY: `exo_resume` reads the frame and jumps; what it resumes is the
    // caller's choice, in its own address space and ring 3.
    unsafe { exo_resume(frame) }
}

// The kernel enters here with rsp = rdi = the frame, 16-byte aligned. The
// handler runs on the exception stack below the frame; then the registers
// are restored with `iretq`, which ring 3 may use to return to ring 3: it
// restores rip, rflags and rsp together, so no register and no byte of the
// interrupted stack is disturbed.
global_asm!(
    r#"
    .section .text.exo_upcall, "ax"
    .global exo_upcall_entry
exo_upcall_entry:
    call {dispatch}
    mov rdi, rsp
    .global exo_resume
exo_resume:
    push {user_data}
    push qword ptr [rdi + {rsp}]
    push qword ptr [rdi + {rflags}]
    push {user_code}
    push qword ptr [rdi + {rip}]
    mov rax, [rdi + {rax}]
    mov rbx, [rdi + {rbx}]
    mov rcx, [rdi + {rcx}]
    mov rdx, [rdi + {rdx}]
    mov rsi, [rdi + {rsi}]
    mov rbp, [rdi + {rbp}]
    mov r8, [rdi + {r8}]
    mov r9, [rdi + {r9}]
    mov r10, [rdi + {r10}]
    mov r11, [rdi + {r11}]
    mov r12, [rdi + {r12}]
    mov r13, [rdi + {r13}]
    mov r14, [rdi + {r14}]
    mov r15, [rdi + {r15}]
    mov rdi, [rdi + {rdi}]
    iretq
"#,
    dispatch = sym dispatch_upcall,
    user_data = const USER_DATA_SELECTOR,
    user_code = const USER_CODE_SELECTOR,
    rax = const offsets::RAX,
    rbx = const offsets::RBX,
    rcx = const offsets::RCX,
    rdx = const offsets::RDX,
    rsi = const offsets::RSI,
    rdi = const offsets::RDI,
    rbp = const offsets::RBP,
    rsp = const offsets::RSP,
    r8 = const offsets::R8,
    r9 = const offsets::R9,
    r10 = const offsets::R10,
    r11 = const offsets::R11,
    r12 = const offsets::R12,
    r13 = const offsets::R13,
    r14 = const offsets::R14,
    r15 = const offsets::R15,
    rip = const offsets::RIP,
    rflags = const offsets::RFLAGS,
);

// ---------------------------------------------------------------------------
// The page-table view

/// Page-table entry bits (Intel SDM vol. 3, "Paging").
pub mod entry {
    pub const PRESENT: u64 = 1 << 0;
    pub const WRITABLE: u64 = 1 << 1;
    pub const USER: u64 = 1 << 2;
    /// Set by the CPU on the first write through the entry.
    pub const DIRTY: u64 = 1 << 6;
    pub const NO_EXECUTE: u64 = 1 << 63;
    /// Bits 12–51: the physical address of the frame or next table. Mask
    /// with it: bits 9–11 and 52–62 of a page's entry hold the kernel's tag
    /// for the capability it was mapped through (chapter 2.4).
    pub const ADDRESS: u64 = 0x000f_ffff_ffff_f000;
}

/// The page-table entry that maps user address `address`, read through the
/// environment's read-only view of its own page tables, without a system
/// call. `None` if any level of the walk is not present (the entry is
/// returned even if it is not present itself).
pub fn page_table_entry(address: u64) -> Option<u64> {
    if !layout::is_user_range(address, 1) {
        return None;
    }
    for level in (2..=4).rev() {
        if read_view(layout::page_table_entry_address(address, level)) & entry::PRESENT == 0 {
            return None;
        }
    }
    Some(read_view(layout::page_table_entry_address(address, 1)))
}

/// The physical address `address` maps to, if it is mapped.
pub fn translate(address: u64) -> Option<u64> {
    let entry = page_table_entry(address)?;
    (entry & entry::PRESENT != 0).then_some((entry & entry::ADDRESS) | (address & 0xfff))
}

fn read_view(address: u64) -> u64 {
    // SAFETY: the kernel maps the page-table view read-only in every
    // environment; callers read a level only after the level above it was
    // found present, so the address is mapped.
    unsafe { core::ptr::read_volatile(address as *const u64) }
}

/// Claims the IPv4 address `address` (`net::ipv4`) with the NIC capability.
pub fn net_claim(nic: Handle, address: u32) -> Result<Handle, Error> {
    call(Sysnum::NetClaim, args(&[nic.to_raw(), u64::from(address)]))
        .map(|(handle, _)| Handle::from_raw(handle))
}

/// A binding whose rings live in the run of frames `frames` names; returns
/// it and the entries per ring. `notification` is signalled when a frame
/// arrives in an empty receive ring.
///
/// # Safety
/// From now on the kernel writes into those frames (indices, counters,
/// received frames): they must not hold anything Rust code uses, wherever
/// they are mapped.
pub unsafe fn net_bind(
    frames: Handle,
    notification: Option<Handle>,
) -> Result<(Handle, u32), Error> {
    let notification = notification.map_or(crate::syscall::NO_CAPABILITY, Handle::to_raw);
    // SAFETY: the caller promises the frames hold no Rust memory.
    let (status, handle, entries) =
        unsafe { syscall(Sysnum::NetBind, args(&[frames.to_raw(), notification])) };
    check(status).map(|()| (Handle::from_raw(handle), entries as u32))
}

/// Sends frames matching `filter` on `address` to `binding`.
pub fn net_filter(
    binding: Handle,
    address: Handle,
    filter: crate::net::Filter,
) -> Result<Handle, Error> {
    call(
        Sysnum::NetFilter,
        args(&[binding.to_raw(), address.to_raw(), filter.pack()]),
    )
    .map(|(handle, _)| Handle::from_raw(handle))
}

/// Asks the kernel to drain `binding`'s transmit ring and poll it again.
pub fn net_kick(binding: Handle) -> Result<(), Error> {
    call(Sysnum::NetKick, args(&[binding.to_raw()])).map(drop)
}

/// Sends `frame` through `binding` now: one system call per frame.
pub fn net_send(binding: Handle, frame: &[u8]) -> Result<(), Error> {
    call(
        Sysnum::NetSend,
        args(&[binding.to_raw(), frame.as_ptr() as u64, frame.len() as u64]),
    )
    .map(drop)
}

/// Takes the oldest frame from `binding`'s receive ring into `buffer`:
/// one system call per frame. `WouldBlock` if there is none.
pub fn net_receive(binding: Handle, buffer: &mut [u8]) -> Result<usize, Error> {
    call(
        Sysnum::NetReceive,
        args(&[
            binding.to_raw(),
            buffer.as_mut_ptr() as u64,
            buffer.len() as u64,
        ]),
    )
    .map(|(length, _)| length as usize)
}
