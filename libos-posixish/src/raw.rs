//! The bottom layer's raw primitives: access to memory the library OS maps
//! itself, the system calls that can invalidate a reference, and the
//! assembly for switching stacks, capturing registers and `exec`'s trampoline.
//!
//! It calls nothing of the library OS above `layout`: the entry points that
//! call up (`_start`, a forked child's first instruction) are in `entry.rs`.
//! Everything here is small and says why it holds. The rest of the library
//! OS denies `unsafe` code (`#![deny(unsafe_code)]`, so that this module and
//! `entry.rs` alone may allow it), and the programs on it forbid it.
#![allow(unsafe_code)]

use core::arch::global_asm;

use exo_abi::layout::PAGE_SIZE;

/// Copies `bytes` into the page at `page` (page-aligned), which the caller
/// has just mapped writable for this purpose and nothing else refers to.
pub fn fill_page(page: u64, offset: usize, bytes: &[u8]) {
    assert!(page.is_multiple_of(PAGE_SIZE) && offset + bytes.len() <= PAGE_SIZE as usize);
    // SAFETY: the caller mapped `page` writable a moment ago (at the scratch
    // address, where no Rust object lives) and unmaps it right after; the
    // range stays inside that page (checked above).
    unsafe {
        core::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            (page as usize + offset) as *mut u8,
            bytes.len(),
        )
    }
}

/// The `length` bytes at `address`, in a region the library OS maps
/// read-only for the process's whole life (the boot file system, the
/// process-info page, a forked child's handover pages).
pub fn mapped_bytes(address: u64, length: usize) -> &'static [u8] {
    // SAFETY: callers pass only the boot file system, the process-info page
    // and a forked child's handover pages, which stay mapped, unchanged and
    // read-only while they are read. The boot file system's runs are mapped
    // on first touch (the fault handler, `bootfs::resolve_fault`), with the
    // bytes they always hold, and never unmapped: a read sees them as if
    // they had been mapped from the start.
    unsafe { core::slice::from_raw_parts(address as *const u8, length) }
}

/// Reads the `u64` at `address` of a page shared with another process.
pub fn read_shared(address: u64) -> u64 {
    // SAFETY: the exit-status page is mapped while the parent waits; the
    // volatile read sees the child's write.
    unsafe { core::ptr::read_volatile(address as *const u64) }
}

/// Writes the `u64` at `address` of a page shared with another process.
pub fn write_shared(address: u64, value: u64) {
    // SAFETY: as for `read_shared`; the page is writable for the writer.
    unsafe { core::ptr::write_volatile(address as *mut u64, value) }
}

/// Hands the address range `start..end` to the heap allocator.
pub fn give_heap(heap: &mut buddy_system_allocator::Heap<32>, start: u64, end: u64) {
    // SAFETY: the range is heap address space nothing else uses (the heap's
    // break only moves up), and every page in it is mapped on first touch by
    // the fault handler, which never allocates from this heap.
    unsafe { heap.add_to_heap(start as usize, end as usize) };
}

/// Unmaps the scratch page, where the library OS maps frames only to fill them.
pub fn unmap_scratch() -> Result<(), exo_abi::Error> {
    // SAFETY: nothing refers to the scratch page once it is filled; it holds
    // no Rust object.
    unsafe { exo_abi::user::unmap(exo_abi::Handle::SELF_ENVIRONMENT, crate::layout::SCRATCH) }
}

/// Drops a capability a client passed the file server as its notification
/// (one whose client is gone, or one that is not a notification).
pub fn drop_notification(notification: exo_abi::Handle) {
    // SAFETY: the server never maps what a client passes for a
    // notification, so no page of its goes with the capability.
    let _ = unsafe { exo_abi::user::capability_drop(notification) };
}

/// Drops a frame capability that was never mapped.
pub fn drop_unmapped_frame(frame: exo_abi::Handle) {
    // SAFETY: nothing maps the frame, so no reference can point into it.
    let _ = unsafe { exo_abi::user::capability_drop(frame) };
}

/// Drops a frame capability the library OS holds for a child that is gone.
pub fn drop_child_frame(frame: exo_abi::Handle) -> Result<(), exo_abi::Error> {
    // SAFETY: frames allocated for a child are mapped only in the child
    // (gone) and, briefly, at the scratch page (unmapped after each use).
    unsafe { exo_abi::user::capability_drop(frame) }
}

/// Changes the protection of this process's page at `page` to `map`.
pub fn protect_own_page(page: u64, map: exo_abi::mapping::MapFlags) -> Result<(), exo_abi::Error> {
    // SAFETY: a page losing write access here is one the pager shares
    // copy-on-write or one `mprotect` was asked to protect: a later write
    // faults and the pager copies it, or ends the process (a segmentation
    // fault, as POSIX wants) — no write is ever silently lost or misdirected.
    unsafe { exo_abi::user::protect(exo_abi::Handle::SELF_ENVIRONMENT, page, map) }
}

/// Copies `pages` pages from `from` to `to` (both mapped, page-aligned, apart).
pub fn copy_pages(from: u64, to: u64, pages: u64) {
    let bytes = (pages * PAGE_SIZE) as usize;
    assert!(from.is_multiple_of(PAGE_SIZE) && to.is_multiple_of(PAGE_SIZE));
    assert!(from.abs_diff(to) >= bytes as u64);
    // SAFETY: callers copy from pages mapped readable in this process to a
    // window (`PAGER_WINDOW`, `SCRATCH`) they just mapped writable, where no
    // Rust object lives; raw pointers, so no reference to either exists.
    unsafe { core::ptr::copy_nonoverlapping(from as *const u8, to as *mut u8, bytes) }
}

/// Unmaps one of the library OS's private window pages (`PAGER_WINDOW`).
pub fn unmap_private_page(page: u64) -> Result<(), exo_abi::Error> {
    // SAFETY: window pages hold no Rust object; they are mapped only to be
    // filled through raw pointers.
    unsafe { exo_abi::user::unmap(exo_abi::Handle::SELF_ENVIRONMENT, page) }
}

/// Unmaps a page the pager maps again at once with the same contents (a
/// copy-on-write copy).
pub fn unmap_remapped_page(page: u64) -> Result<(), exo_abi::Error> {
    // SAFETY: only the fault handler runs until the page is mapped again, with
    // a copy of the same bytes; the interrupted code's references into it
    // see the same memory when it resumes.
    unsafe { exo_abi::user::unmap(exo_abi::Handle::SELF_ENVIRONMENT, page) }
}

/// Unmaps a page of an `mmap` region (`munmap`).
pub fn unmap_mmap_page(page: u64) -> Result<(), exo_abi::Error> {
    assert!(crate::layout::in_mmap_area(page));
    // SAFETY: safe code reaches the mmap area only through `mmap::load` and
    // `mmap::store`, raw accesses that hold no reference; an access after
    // `munmap` faults and ends the process.
    unsafe { exo_abi::user::unmap(exo_abi::Handle::SELF_ENVIRONMENT, page) }
}

/// Drops a frame capability through which nothing is mapped in this process
/// any more and from which no live child holds a derived capability.
pub fn drop_frame_no_longer_mapped(frame: exo_abi::Handle) {
    // SAFETY: the pager unmapped every page it mapped through `frame`; the
    // children it granted derived capabilities to are gone.
    let _ = unsafe { exo_abi::user::capability_drop(frame) };
}

/// Reads the `u64` at `address` in the mmap area.
pub fn mmap_load(address: u64) -> u64 {
    assert!(crate::layout::in_mmap_area(address) && address.is_multiple_of(8));
    // SAFETY: no Rust object lives in the mmap area; an address not mapped
    // (or not readable) faults, and the pager maps it or ends the process.
    unsafe { core::ptr::read_volatile(address as *const u64) }
}

/// Writes the `u64` at `address` in the mmap area.
pub fn mmap_store(address: u64, value: u64) {
    assert!(crate::layout::in_mmap_area(address) && address.is_multiple_of(8));
    // SAFETY: as for `mmap_load`; a write to a read-only page ends the process.
    unsafe { core::ptr::write_volatile(address as *mut u64, value) }
}

unsafe extern "C" {
    fn exo_capture_registers(registers: *mut exo_abi::upcall::Registers) -> u64;
    fn exo_fork_child();
    fn exo_call_on_stack(top: u64, function: extern "C" fn(*mut ()), data: *mut ());
}

/// Saves the callee-saved registers, the stack pointer, the flags and the
/// return address into `registers`, with `rax = 1`, and returns false. A
/// child resumed from them returns from this call a second time, with true.
///
/// The caller must be a small `#[inline(never)]` function that, on the
/// `true` path, reads nothing it wrote to its frame after this call (the
/// child's copy of the stack is taken later): `fork::fork` is. Always
/// inlined, so that the child resumes in that caller's frame, not in a frame
/// of this wrapper the parent has since overwritten.
#[inline(always)]
pub fn capture_registers(registers: &mut exo_abi::upcall::Registers) -> bool {
    // SAFETY: the assembly writes only `*registers` and preserves every
    // callee-saved register.
    unsafe { exo_capture_registers(registers) != 0 }
}

/// Where a forked child starts: `rsp = rdi =` an `UpcallFrame` its parent
/// wrote on the child's exception stack.
pub fn fork_child_entry() -> u64 {
    exo_fork_child as *const () as u64
}

/// Runs `function` on the stack whose top is `top` (mapped, private).
pub fn call_on_stack(top: u64, function: &mut dyn FnMut()) {
    extern "C" fn trampoline(data: *mut ()) {
        // SAFETY: `data` is the `&mut &mut dyn FnMut()` passed below, alive
        // for the whole call.
        let function = unsafe { &mut *(data as *mut &mut dyn FnMut()) };
        function();
    }
    let mut function = function;
    // SAFETY: the assembly switches to `top`, calls the trampoline, and
    // restores the stack pointer; the caller maps the stack (16-byte
    // aligned top) and nothing else uses it.
    unsafe {
        exo_call_on_stack(
            top,
            trampoline,
            &mut function as *mut &mut dyn FnMut() as *mut (),
        )
    }
}

// ---------------------------------------------------------------------------
// Threads (`crate::thread`): switching stacks.

unsafe extern "C" {
    /// Pushes the callee-saved registers, stores `rsp` at `save`, loads
    /// `next` into `rsp`, pops the callee-saved registers and returns on the
    /// new stack.
    fn exo_thread_switch(save: *mut u64, next: u64);
}

/// Words a new thread's stack needs for its first [`switch_threads`]: the
/// six callee-saved registers, then the address `ret` jumps to.
pub const NEW_STACK_WORDS: usize = 7;

/// Switches from the running thread to another: saves the running thread's
/// callee-saved registers on its own stack and its stack pointer in `save`,
/// and continues the thread whose stack pointer is `next`. Returns when some
/// thread switches back to the stack pointer stored in `save`.
///
/// `next` must be a stack pointer a `switch_threads` stored for a thread that
/// has not run since, or the `rsp` of a fresh stack laid out as
/// [`NEW_STACK_WORDS`] says; and that stack must stay allocated until its
/// thread switches away for the last time. `crate::thread::switch` keeps both
/// promises (it is the only caller) and calls this with preemption off, so
/// no slot-start upcall sees a half-switched thread.
pub fn switch_threads(save: &core::sync::atomic::AtomicU64, next: u64) {
    // SAFETY: by the contract above, `next` points at six saved registers
    // and a return address on a live stack, so the pops and `ret` resume
    // that thread exactly where it switched away (or at its entry); `save`
    // is a live atomic the asm writes one aligned word to. Everything the
    // System V ABI lets a call clobber, the caller of this `extern "C"`
    // function already assumes clobbered.
    unsafe { exo_thread_switch(save.as_ptr(), next) }
}

// rdi = where to save rsp, rsi = the next rsp. The order of pops is the
// reverse of the pushes, and a new stack holds six zeros (rbp = 0 ends
// frame-pointer backtraces) under the thread's entry.
global_asm!(
    r#"
    .pushsection .text.exo_thread_switch, "ax"
    .global exo_thread_switch
exo_thread_switch:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    mov [rdi], rsp
    mov rsp, rsi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret
    .popsection
"#
);

// `exo_capture_registers(registers)`: what a forked child needs to return
// from this call a second time. `exo_call_on_stack(top, function, data)`:
// calls `function(data)` on another stack, keeping the old one in rbp. (The
// forked child's first instruction, `exo_fork_child`, is in `entry.rs`: it
// calls up into `fork`, and this module calls nothing above it.)
global_asm!(
    r#"
    .pushsection .text.exo_fork, "ax"
    .global exo_capture_registers
exo_capture_registers:
    mov [rdi + {rbx}], rbx
    mov [rdi + {rbp}], rbp
    mov [rdi + {r12}], r12
    mov [rdi + {r13}], r13
    mov [rdi + {r14}], r14
    mov [rdi + {r15}], r15
    lea rax, [rsp + 8]
    mov [rdi + {rsp}], rax
    mov rax, [rsp]
    mov [rdi + {rip}], rax
    pushfq
    pop rax
    mov [rdi + {rflags}], rax
    mov qword ptr [rdi + {rax}], 1
    xor eax, eax
    ret

    .global exo_call_on_stack
exo_call_on_stack:
    push rbp
    mov rbp, rsp
    mov rsp, rdi
    mov rdi, rdx
    call rsi
    mov rsp, rbp
    pop rbp
    ret
    .popsection
"#,
    rax = const core::mem::offset_of!(exo_abi::upcall::Registers, rax),
    rbx = const core::mem::offset_of!(exo_abi::upcall::Registers, rbx),
    rbp = const core::mem::offset_of!(exo_abi::upcall::Registers, rbp),
    rsp = const core::mem::offset_of!(exo_abi::upcall::Registers, rsp),
    r12 = const core::mem::offset_of!(exo_abi::upcall::Registers, r12),
    r13 = const core::mem::offset_of!(exo_abi::upcall::Registers, r13),
    r14 = const core::mem::offset_of!(exo_abi::upcall::Registers, r14),
    r15 = const core::mem::offset_of!(exo_abi::upcall::Registers, r15),
    rip = const core::mem::offset_of!(exo_abi::upcall::Registers, rip),
    rflags = const core::mem::offset_of!(exo_abi::upcall::Registers, rflags),
);

/// The page at `address`, where the file system maps a transfer page (its
/// own, or a client's) while it uses it.
pub fn window_page(address: u64) -> &'static mut [u8] {
    assert!(address == crate::layout::FS_TRANSFER || address == crate::layout::FS_WINDOW);
    // SAFETY: the caller mapped the page writable at one of the two
    // file-system addresses, where no Rust object lives, and uses the slice
    // only until it unmaps the page again; one user at a time (the client
    // holds its transfer lock, the server serves one call at a time).
    unsafe { core::slice::from_raw_parts_mut(address as *mut u8, PAGE_SIZE as usize) }
}

/// Unmaps a client's transfer page from the file server's window.
pub fn unmap_window(address: u64) -> Result<(), exo_abi::Error> {
    assert_eq!(address, crate::layout::FS_WINDOW);
    // SAFETY: the slice from `window_page` is no longer used (the request
    // has been answered).
    unsafe { exo_abi::user::unmap(exo_abi::Handle::SELF_ENVIRONMENT, address) }
}

/// An entry of this process's page-table view (`exo_abi::layout::PAGE_TABLE_VIEW`).
pub fn read_table_entry(address: u64) -> u64 {
    assert!((exo_abi::layout::PAGE_TABLE_VIEW..exo_abi::layout::USER_END).contains(&address));
    // SAFETY: the kernel maps the page-table view read-only; callers read a
    // level only after finding the entry above it present.
    unsafe { core::ptr::read_volatile(address as *const u64) }
}

/// Unmaps the plan and trampoline an earlier `exec` left in this process,
/// if any, so that this one can map its own.
pub fn unmap_exec_leftovers() -> Result<(), exo_abi::Error> {
    use crate::layout::{EXEC_PLAN, EXEC_PLAN_PAGES, EXEC_TRAMPOLINE};
    let plan = (0..EXEC_PLAN_PAGES).map(|page| EXEC_PLAN + page * PAGE_SIZE);
    for page in plan.chain([EXEC_TRAMPOLINE]) {
        if exo_abi::user::translate(page).is_some() {
            // SAFETY: nothing of this program refers to these pages: the
            // earlier exec's trampoline was their only user, and it has
            // finished (it started this program).
            unsafe { exo_abi::user::unmap(exo_abi::Handle::SELF_ENVIRONMENT, page)? }
        }
    }
    Ok(())
}

/// Writes word `index` of the exec plan, which `exec` has mapped writable.
pub fn write_plan_word(index: u64, value: u64) {
    let address = crate::layout::EXEC_PLAN + index * 8;
    assert!(index < crate::layout::EXEC_PLAN_PAGES * PAGE_SIZE / 8);
    // SAFETY: `exec` maps the plan pages writable before writing them; no
    // Rust object lives there.
    unsafe { core::ptr::write_volatile(address as *mut u64, value) }
}

// The exec trampoline: position-independent, it uses no stack and no memory
// but the plan (rdi). It removes the upcall registration (the handler is
// about to go; the new program registers its own), unmaps every page of the old image, maps every page
// of the new one, loads the new stack and jumps to the new entry. Plan
// words: [unmap count, map count, entry, stack top, addresses to unmap...,
// (frame, address, flags) to map...]. Errors are ignored: there is no one
// left to tell, and a missing page faults in the new program.
global_asm!(
    r#"
    .pushsection .text.exo_exec, "ax"
    .global exo_exec_trampoline_start
    .global exo_exec_trampoline_end
exo_exec_trampoline_start:
    mov rbx, rdi
    mov eax, {set_upcall}
    xor edi, edi
    xor esi, esi
    syscall
    mov r12, [rbx]
    lea r13, [rbx + 32]
2:  test r12, r12
    jz 3f
    mov eax, {unmap}
    xor edi, edi
    mov rsi, [r13]
    syscall
    add r13, 8
    dec r12
    jmp 2b
3:  mov r12, [rbx + 8]
4:  test r12, r12
    jz 5f
    mov eax, {map}
    mov rdi, [r13]
    xor esi, esi
    mov rdx, [r13 + 8]
    mov r10, [r13 + 16]
    syscall
    add r13, 24
    dec r12
    jmp 4b
5:  mov rsp, [rbx + 24]
    mov rax, [rbx + 16]
    xor edi, edi
    xor ebp, ebp
    jmp rax
exo_exec_trampoline_end:
    .popsection
"#,
    unmap = const exo_abi::syscall::Sysnum::Unmap as u64,
        map = const exo_abi::syscall::Sysnum::Map as u64,
    set_upcall = const exo_abi::syscall::Sysnum::SetUpcall as u64,
);

unsafe extern "C" {
    static exo_exec_trampoline_start: u8;
    static exo_exec_trampoline_end: u8;
}

/// The exec trampoline's machine code, to copy outside the image.
pub fn exec_trampoline_code() -> &'static [u8] {
    let start = &raw const exo_exec_trampoline_start as usize;
    let end = &raw const exo_exec_trampoline_end as usize;
    // SAFETY: the two labels bound the trampoline in this image's text,
    // which is mapped readable and never changes.
    unsafe { core::slice::from_raw_parts(start as *const u8, end - start) }
}

/// Runs the exec trampoline copied to `trampoline` with the plan at `plan`.
pub fn enter_exec_trampoline(trampoline: u64, plan: u64) -> ! {
    // SAFETY: this is the point of no return of `exec`: the trampoline
    // replaces this program with another in the same environment. The code
    // at `trampoline` is the copy made by `exec`, mapped executable, and
    // the plan it reads is complete.
    unsafe { core::arch::asm!("jmp {}", in(reg) trampoline, in("rdi") plan, options(noreturn)) }
}
