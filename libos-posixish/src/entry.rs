//! Where the library OS's code is entered from outside: `start` (which
//! `_start`, a process's first instruction, shared with every runtime in
//! `exo_abi::user`, calls by symbol), a forked child's first instruction,
//! and the program's `main`, reached by symbol.
//!
//! This is the top of the library OS: it calls down into everything and
//! nothing calls it by name (the assembly is reached by symbol, as the
//! kernel reaches a program's entry). `start` sets up the process — pager,
//! upcall dispatcher, arguments, its name — runs `main` and exits with its
//! status.
#![allow(unsafe_code)]

use alloc::vec::Vec;
use core::arch::global_asm;

use crate::{fs, info_page, paging, runtime, upcall_dispatch};

/// A process's first Rust code (`_start`, in `exo_abi::user`, calls it by
/// this symbol), on the stack its parent (or the kernel)
/// mapped: installs the upcall dispatcher,
/// maps the pager's exception stack and registers the dispatcher, reads the arguments from the process-info page, calls the
/// program's `main`, and exits with what it returns.
#[unsafe(export_name = "exo_runtime_start")]
extern "C" fn start(_argument: u64) -> ! {
    upcall_dispatch::install();
    paging::init();
    let info = info_page::own();
    // The first process has no info page: the kernel named it after its program.
    if let Some(program) = info.as_ref().and_then(|info| info.arguments.first()) {
        name_self(program);
    }
    // What it was handed (descriptors 0–2) is held from the start.
    fs::report_held();
    let arguments = info_page::own_arguments();
    let names: Vec<&str> = arguments.iter().map(|argument| argument.as_str()).collect();
    runtime::exit(libos_program_main(&names))
}

/// Gives the environment its program's name, for `ps` and the trace's track.
fn name_self(program: &str) {
    let name = exo_abi::trace::pack_name(program);
    let _ = exo_abi::user::environment_name(exo_abi::Handle::SELF_ENVIRONMENT, name);
    exo_abi::user::trace(exo_abi::trace::Kind::Name, name);
}

unsafe extern "Rust" {
    /// The program's `main`, defined by [`crate::main!`].
    safe fn libos_program_main(arguments: &[&str]) -> i32;
}

/// A forked child's first Rust code (`exo_fork_child`, below, calls it).
extern "C" fn fork_child_start(frame: *const exo_abi::upcall::UpcallFrame) -> ! {
    // SAFETY: the parent wrote a whole `UpcallFrame` at this address on the
    // child's exception stack, the stack we run on, below the frame.
    let frame = unsafe { frame.read() };
    crate::fork::child_start(&frame)
}

// `exo_fork_child`: where a forked child starts, with `rsp = rdi =` the
// `UpcallFrame` its parent wrote on the child's exception stack
// (`raw::fork_child_entry` names it for `fork`). The stack is made ready for
// a call as `_start` does: 16-byte aligned, `rbp = 0`.
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

/// Names the program's `main`, a `fn(&[&str]) -> i32` taking its arguments
/// (the program's name first) and returning its exit status:
/// `libos_posixish::main!(main);`.
#[macro_export]
macro_rules! main {
    ($main:path) => {
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        fn libos_program_main(arguments: &[&str]) -> i32 {
            let main: fn(&[&str]) -> i32 = $main;
            main(arguments)
        }
    };
}
