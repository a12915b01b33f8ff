//! Where a program starts and how it ends, and printing (to descriptor 1).
//!
//! `start` (entered from `_start`) registers the fault handler, reads the
//! arguments its parent left in the process-info page, calls the program's
//! `main`, and exits with what it returns. `exit` first tells the parent
//! the status through the exit-status page.

use alloc::vec::Vec;
use core::fmt::{self, Write};
use core::panic::PanicInfo;

use exo_abi::user;

use crate::{paging, process, sys};

/// The status of a program that panicked (what Rust's `std` uses on Linux).
pub const PANIC_STATUS: i32 = 101;

pub(crate) extern "C" fn start() -> ! {
    paging::init();
    let arguments = process::arguments();
    let names: Vec<&str> = arguments.iter().map(|argument| argument.as_str()).collect();
    exit(sys::program_main(&names))
}

/// Ends the process with `status`, which its parent's `wait` returns.
pub fn exit(status: i32) -> ! {
    // Pipe readers see the end of input once every writer has closed.
    crate::fs::close_all();
    process::report_exit(status);
    user::exit(status as u64)
}

/// This process's id: its environment's id.
pub fn getpid() -> u64 {
    user::fact(|facts| &facts.environment_id)
}

/// One of the kernel's event counters as it is now (from the facts page):
/// how tests and benchmarks see what the system did, e.g. how many system
/// calls a sleeping pipe reader made.
pub fn kernel_counter(counter: exo_abi::counters::Counter) -> u64 {
    user::fact(|facts| &facts.counters[counter as usize])
}

/// Timer ticks since boot, from the facts page.
pub fn ticks() -> u64 {
    user::fact(|facts| &facts.ticks)
}

/// Writes to standard output (descriptor 1: the console unless redirected),
/// a line at a time where possible.
#[derive(Debug)]
pub struct Console {
    buffer: [u8; 256],
    used: usize,
}

impl Default for Console {
    fn default() -> Self {
        Self {
            buffer: [0; 256],
            used: 0,
        }
    }
}

impl Console {
    pub fn flush(&mut self) {
        if self.used > 0 {
            crate::fs::write_stdout(&self.buffer[..self.used]);
            self.used = 0;
        }
    }
}

impl Write for Console {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for &byte in text.as_bytes() {
            if self.used == self.buffer.len() {
                self.flush();
            }
            self.buffer[self.used] = byte;
            self.used += 1;
            if byte == b'\n' {
                self.flush();
            }
        }
        Ok(())
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.flush();
    }
}

#[doc(hidden)]
pub fn print(arguments: fmt::Arguments<'_>) {
    let _ = Console::default().write_fmt(arguments);
}

/// Prints to standard output.
#[macro_export]
macro_rules! print {
    ($($argument:tt)*) => { $crate::runtime::print(format_args!($($argument)*)) };
}

/// Prints a line to standard output.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($argument:tt)*) => { $crate::runtime::print(format_args!("{}\n", format_args!($($argument)*))) };
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
