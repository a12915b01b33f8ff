//! Console output: `print!` and `println!`; and whether console input has ended.
//!
//! Text is formatted into a buffer on the stack and handed to the kernel console in as few
//! `ConsoleWrite` calls as possible — one per line of ordinary length — so lines printed by
//! different environments do not interleave mid-line. Output errors are ignored: a program
//! has nowhere else to report them.

use core::fmt;

use exo_abi::user;

/// Bytes formatted before they are written out.
const BUFFER_SIZE: usize = 256;

/// A `fmt::Write` that collects text and writes it to the console when full or flushed.
#[derive(Debug)]
pub struct ConsoleWriter {
    buffer: [u8; BUFFER_SIZE],
    length: usize,
}

impl ConsoleWriter {
    pub const fn new() -> Self {
        Self {
            buffer: [0; BUFFER_SIZE],
            length: 0,
        }
    }

    /// Writes out what was collected.
    pub fn flush(&mut self) {
        let mut pending = &self.buffer[..self.length];
        while !pending.is_empty() {
            match user::console_write(pending) {
                Ok(written) if written > 0 => pending = &pending[written.min(pending.len())..],
                _ => break,
            }
        }
        self.length = 0;
    }
}

impl Default for ConsoleWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for ConsoleWriter {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut bytes = text.as_bytes();
        while !bytes.is_empty() {
            if self.length == BUFFER_SIZE {
                self.flush();
            }
            let count = bytes.len().min(BUFFER_SIZE - self.length);
            self.buffer[self.length..self.length + count].copy_from_slice(&bytes[..count]);
            self.length += count;
            bytes = &bytes[count..];
        }
        Ok(())
    }
}

impl Drop for ConsoleWriter {
    fn drop(&mut self) {
        self.flush();
    }
}

/// What `print!` expands to.
#[doc(hidden)]
pub fn print_arguments(arguments: fmt::Arguments<'_>) {
    let mut writer = ConsoleWriter::new();
    let _ = fmt::Write::write_fmt(&mut writer, arguments);
}

/// Prints to the kernel console.
#[macro_export]
macro_rules! print {
    ($($argument:tt)*) => {
        $crate::console::print_arguments(::core::format_args!($($argument)*))
    };
}

/// Prints to the kernel console, with a newline.
#[macro_export]
macro_rules! println {
    () => {
        $crate::print!("\n")
    };
    ($($argument:tt)*) => {
        $crate::console::print_arguments(::core::format_args!(
            "{}\n",
            ::core::format_args!($($argument)*)
        ))
    };
}

/// Ctrl-D: the end of console input, which the host types to stop a program that serves
/// until then (`udp-reflector`, `tcp-sink`).
const END_OF_INPUT: u8 = 4;

/// Whether the console's input has ended (Ctrl-D among what is waiting). Reads and drops
/// what is waiting: for programs that take no other input.
pub fn input_ended() -> bool {
    let mut input = [0; 64];
    let read = user::console_read(&mut input).unwrap_or(0);
    input[..read].contains(&END_OF_INPUT)
}
