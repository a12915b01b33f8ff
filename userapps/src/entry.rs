//! Where a program starts and how it ends: the start `_start` calls (`_start` itself is
//! shared with every runtime, in `exo_abi::user`), the entry of a spawned child, the
//! `entry!` macro that names a program's `main`, and the panic handler.
//!
//! A program's `main` takes the argument it was started with (`rdi`: 0 for the first
//! environment, the spawner's choice for a child) and returns its exit status.
#![allow(unsafe_code)] // entry glue: assembly, and calling the program's `main` by symbol

use core::arch::global_asm;
use core::fmt::Write;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use exo_abi::user;

use crate::console::ConsoleWriter;

/// The status a program exits with when it panics (what Rust's `std` uses on Linux).
pub const PANIC_STATUS: u64 = 101;

/// Whether this environment was loaded by the kernel (and so has a start-info page) rather
/// than spawned. Set by both entries, because a child starts with a copy of its parent's data.
static LOADED_BY_KERNEL: AtomicBool = AtomicBool::new(false);

/// Whether this environment is the one the kernel loaded, with a start-info page.
pub(crate) fn loaded_by_kernel() -> bool {
    LOADED_BY_KERNEL.load(Ordering::Relaxed)
}

/// Names the program's `main`, a `fn(u64) -> u64` taking the start argument and returning
/// the exit status: `userapps::entry!(main);`.
///
/// It defines the symbol the runtime's start calls. That needs `#[unsafe(no_mangle)]`,
/// which lives here, in the runtime, so that programs can `#![forbid(unsafe_code)]`.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "C" fn exo_program_main(argument: u64) -> u64 {
            let main: fn(u64) -> u64 = $main;
            main(argument)
        }
    };
}

unsafe extern "C" {
    /// The program's `main`, defined by [`entry!`].
    fn exo_program_main(argument: u64) -> u64;
    /// Where a spawned child starts (below).
    fn exo_child_start();
}

// `_start` (in `exo_abi::user`): the kernel starts the first environment there with
// `rdi = 0`, and it calls `start_program`.
//
// `exo_child_start`: a parent starts a child here (spawn.rs) with `rdi` = the argument and
// the function to run in the stack's top word, where the parent wrote it. `rsp` is at the
// top of a stack, which the System V ABI wants 16-byte aligned *before* a `call`; `rbp = 0`
// ends the frame-pointer chain for backtraces.
global_asm!(
    r#"
    .pushsection .text.exo_child_start, "ax"
    .global exo_child_start
exo_child_start:
    mov rsi, rdi
    mov rdi, [rsp]
    xor ebp, ebp
    and rsp, -16
    call {start_child}
    ud2
    .popsection
"#,
    start_child = sym start_child,
);

/// The program's first Rust code: `_start` calls it by this symbol, with the start argument.
#[unsafe(export_name = "exo_runtime_start")]
extern "C" fn start_program(argument: u64) -> ! {
    LOADED_BY_KERNEL.store(true, Ordering::Relaxed);
    // SAFETY: every program defines `exo_program_main` through `entry!`, with this signature.
    let status = unsafe { exo_program_main(argument) };
    user::exit(status)
}

/// Runs `function(argument)` in a child and exits with what it returns (the end of
/// `exo_child_start`, and of a lean child's start, `lean_child`).
pub(crate) extern "C" fn start_child(function: usize, argument: u64) -> ! {
    LOADED_BY_KERNEL.store(false, Ordering::Relaxed);
    // SAFETY: `Child::start` (or `LeanChild::start`, in the plan) wrote this word from a
    // `fn(u64) -> u64` of this same image, which the child maps at the same addresses as its
    // parent.
    let function: fn(u64) -> u64 = unsafe { core::mem::transmute(function) };
    user::exit(function(argument))
}

/// The address at which a spawned child starts.
pub(crate) fn child_entry() -> u64 {
    exo_child_start as *const () as u64
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let mut writer = ConsoleWriter::new();
    let _ = match info.location() {
        Some(location) => writeln!(
            writer,
            "panicked at {}:{}: {}",
            location.file(),
            location.line(),
            info.message()
        ),
        None => writeln!(writer, "panicked: {}", info.message()),
    };
    writer.flush();
    user::exit(PANIC_STATUS)
}
