//! Printing: [`Console`] buffers what a program prints and writes it to
//! descriptor 1 (the console unless redirected) a line at a time where
//! possible; `print!` and `println!` use it.
//!
//! Part of the file-system client (descriptor 1 is a descriptor like any
//! other); it never decides where output goes.

use core::fmt::{self, Write};

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
            super::write_stdout(&self.buffer[..self.used]);
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
    ($($argument:tt)*) => { $crate::fs::console::print(format_args!($($argument)*)) };
}

/// Prints a line to standard output.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($argument:tt)*) => { $crate::fs::console::print(format_args!("{}\n", format_args!($($argument)*))) };
}
