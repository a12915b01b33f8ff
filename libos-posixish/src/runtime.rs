//! How a program ends (`exit`, a panic), and what programs read of the
//! running process (its id, the clock, the kernel's counters, printing).
//!
//! Top layer: `exit` closes the process's descriptors (so pipe readers see
//! the end of input) and tells the parent the status through the
//! exit-status page. Where a program starts is `entry.rs`.

use core::fmt::Write;
use core::panic::PanicInfo;

use exo_abi::user;

use crate::{exit_status, fs};

pub use crate::facts::{getpid, kernel_counter, ticks};
pub use crate::fs::console::{Console, print};

/// The status of a program that panicked (what Rust's `std` uses on Linux).
pub const PANIC_STATUS: i32 = 101;

/// Ends the process with `status`, which its parent's `wait` returns.
pub fn exit(status: i32) -> ! {
    // Pipe readers see the end of input once every writer has closed: the
    // children this process leaves behind first, then its own descriptors.
    crate::process::end_children();
    fs::close_all();
    exit_status::report_exit(status);
    user::exit(status as u64)
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let mut console = Console::default();
    let _ = match info.location() {
        Some(at) => writeln!(
            console,
            "panicked at {}:{}: {}",
            at.file(),
            at.line(),
            info.message()
        ),
        None => writeln!(console, "panicked: {}", info.message()),
    };
    console.flush();
    exit(PANIC_STATUS)
}
