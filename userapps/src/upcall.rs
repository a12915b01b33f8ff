//! An exception stack for upcalls, and registering a handler on it.
//!
//! The kernel writes each upcall's frame at the top of this stack and the handler runs below
//! it (see `exo_abi::upcall`). It is a `static` of atomics: the kernel writes it behind the
//! compiler's back, which interior mutability allows, and taking its address needs no
//! `unsafe`. Each environment has its own copy (a child gets a copy of the parent's data).

use core::sync::atomic::AtomicU64;

use exo_abi::Error;
use exo_abi::syscall::UpcallOptions;
use exo_abi::upcall::UpcallFrame;
use exo_abi::user;

/// Bytes of exception stack: a handler that formats a line needs about 1 KiB.
pub const STACK_SIZE: usize = 16 * 1024;

/// 16-byte aligned, as the kernel aligns the frame it writes at the top.
#[repr(C, align(16))]
struct UpcallStack([AtomicU64; STACK_SIZE / 8]);

static STACK: UpcallStack = UpcallStack([const { AtomicU64::new(0) }; STACK_SIZE / 8]);

/// Registers `handler` for every upcall to this environment, on the runtime's exception stack.
pub fn register(handler: fn(&mut UpcallFrame)) -> Result<(), Error> {
    register_with(handler, UpcallOptions::empty())
}

/// Registers `handler` as [`register`] does, and also to be entered at the start of every
/// slot the environment gets (`UpcallReason::SliceStart`): a library OS's scheduler entry.
pub fn register_scheduler(handler: fn(&mut UpcallFrame)) -> Result<(), Error> {
    register_with(handler, UpcallOptions::SCHEDULER)
}

fn register_with(handler: fn(&mut UpcallFrame), options: UpcallOptions) -> Result<(), Error> {
    let bottom = STACK.0.as_ptr() as u64;
    let size = STACK_SIZE as u64;
    user::set_upcall_handler_with(handler, bottom + size, size, options)
}
