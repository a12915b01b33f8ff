//! Where the library OS's code is entered from outside: `_start` (a process's
//! first instruction, from the kernel or a parent), a forked child's first
//! instruction, and the program's `main`, reached by symbol.
//!
//! This is the top of the library OS: it calls down into everything and
//! nothing calls it by name (the assembly is reached by symbol, as the
//! kernel reaches a program's entry). `start` sets up the process — pager,
//! upcall dispatcher, arguments — runs `main` and exits with its status.
#![allow(unsafe_code)]

use alloc::vec::Vec;
use core::arch::global_asm;

use crate::{fs, info_page, paging, process, runtime, upcall_dispatch};

/// A process's first Rust code, on the stack its parent (or the kernel)
/// mapped: installs the upcall dispatcher and the file server's starter,
/// maps the pager's exception stack and registers the dispatcher, reads the arguments from the process-info page, calls the
/// program's `main`, and exits with what it returns.
extern "C" fn start() -> ! {
    upcall_dispatch::install();
    fs::set_server_starter(process::start_file_server);
    paging::init();
    let arguments = info_page::own_arguments();
    let names: Vec<&str> = arguments.iter().map(|argument| argument.as_str()).collect();
    runtime::exit(libos_program_main(&names))
}

unsafe extern "Rust" {
    /// The program's `main`, defined by [`crate::main!`].
    safe fn libos_program_main(arguments: &[&str]) -> i32;
}

// The kernel, or a parent, starts a process here with rsp at the top of its
// stack; the System V ABI wants it 16-byte aligned before a call, and rbp = 0
// ends frame-pointer backtraces.
global_asm!(
    r#"
    .pushsection .text._start, "ax"
    .global _start
_start:
    xor ebp, ebp
    and rsp, -16
    call {start}
    ud2
    .popsection
"#,
    start = sym start,
);

/// A forked child's first Rust code (`exo_fork_child`, below, calls it).
extern "C" fn fork_child_start(frame: *const exo_abi::upcall::UpcallFrame) -> ! {
    // SAFETY: the parent wrote a whole `UpcallFrame` at this address on the
    // child's exception stack, the stack we run on, below the frame.
    let frame = unsafe { frame.read() };
    crate::fork::child_start(&frame)
}

// `exo_fork_child`: where a forked child starts, with `rsp = rdi =` the
// `UpcallFrame` its parent wrote on the child's exception stack
// (`raw::fork_child_entry` names it for `fork`).
global_asm!(
    r#"
    .pushsection .text.exo_fork_child, "ax"
    .global exo_fork_child
exo_fork_child:
    xor ebp, ebp
    and rsp, -16
    call {child_start}
    ud2
    .popsection
"#,
    child_start = sym fork_child_start,
);
