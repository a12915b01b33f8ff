//! The console: `print!`/`println!`, the `log` back end, and a lock-free
//! writer for fatal paths.
//!
//! Everything goes to the serial port. Ordinary output takes a lock so lines
//! from different CPUs do not interleave; a panic or fatal exception uses
//! `FatalWriter`, which takes no lock, so it cannot deadlock on a lock held
//! by the code that failed.

use core::fmt::{Arguments, Write};
use core::sync::atomic::{AtomicU64, Ordering};

use exo_kernel_core::console_input::ConsoleInput;
use log::{LevelFilter, Metadata, Record};
use spin::Mutex;

use crate::arch::serial::SerialPort;

static CONSOLE: Mutex<Option<SerialPort>> = Mutex::new(None);
/// What has arrived and no program has read yet (`poll_input` fills it).
static INPUT: Mutex<ConsoleInput> = Mutex::new(ConsoleInput::new());
/// Writes to the console since boot, and who made the latest: an
/// environment's id, or [`KERNEL_WRITER`]. A shell that sees someone else
/// write while a person types redraws the line being typed.
static WRITES: AtomicU64 = AtomicU64::new(0);
static LAST_WRITER: AtomicU64 = AtomicU64::new(KERNEL_WRITER);
/// The writer id of the kernel's own output: no environment has id 0.
pub const KERNEL_WRITER: u64 = 0;

fn count_write(writer: u64) {
    WRITES.fetch_add(1, Ordering::Relaxed);
    LAST_WRITER.store(writer, Ordering::Relaxed);
}

/// Writes to the console since boot, and the id of the latest writer.
pub fn writes() -> (u64, u64) {
    (
        WRITES.load(Ordering::Relaxed),
        LAST_WRITER.load(Ordering::Relaxed),
    )
}

/// Programs the serial port. Output before this is dropped.
pub fn init() {
    *CONSOLE.lock() = Some(SerialPort::init());
}

/// Starts `log` records at `level` and above going to the console.
pub fn init_logger(level: LevelFilter) {
    // Only fails if a logger is already set, and then that one stays.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

#[doc(hidden)]
pub fn print(arguments: Arguments<'_>) {
    count_write(KERNEL_WRITER);
    if let Some(port) = CONSOLE.lock().as_mut() {
        let _ = port.write_fmt(arguments);
    }
}

/// Writes `bytes` as they are (a user program's output: any encoding) for
/// environment `writer`.
pub fn write_bytes(writer: u64, bytes: &[u8]) {
    count_write(writer);
    if let Some(port) = CONSOLE.lock().as_ref() {
        for &byte in bytes {
            // As `SerialPort::write_str` does: raw terminals need CR LF.
            if byte == b'\n' {
                port.write_byte(b'\r');
            }
            port.write_byte(byte);
        }
    }
}

/// Moves what has arrived on the serial port into the input queue, while it
/// has room; Ctrl-C only counts an interrupt (`ConsoleInput`). Called at every
/// timer tick, so an interrupt is seen while no program reads the console.
pub fn poll_input() {
    let console = CONSOLE.lock();
    let Some(port) = console.as_ref() else {
        return;
    };
    let mut input = INPUT.lock();
    while input.has_room()
        && let Some(byte) = port.read_byte()
    {
        input.arrived(byte);
    }
}

/// Moves what has arrived on the console into `buffer`, without waiting;
/// returns how many bytes.
pub fn read(buffer: &mut [u8]) -> usize {
    poll_input();
    INPUT.lock().take(buffer)
}

/// Interrupts (Ctrl-C) typed on the console since boot.
pub fn interrupts() -> u64 {
    INPUT.lock().interrupts()
}

#[macro_export]
macro_rules! print {
    ($($argument:tt)*) => { $crate::console::print(format_args!($($argument)*)) };
}

#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($argument:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($argument)*))) };
}

/// Writes straight to the serial port, without the console lock: only for
/// reports on the way to stopping the machine.
#[derive(Debug)]
pub struct FatalWriter(SerialPort);

impl FatalWriter {
    pub fn new() -> Self {
        Self(SerialPort)
    }
}

impl Write for FatalWriter {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        self.0.write_str(text)
    }
}

struct Logger;

static LOGGER: Logger = Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // The virtio crate narrates device set-up at `info`; the kernel
        // prints its own one-line summary, so only its warnings pass.
        let chatty = metadata.target().starts_with("virtio_drivers");
        metadata.level() <= log::max_level() && (!chatty || metadata.level() <= log::Level::Warn)
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            let level = record.level().as_str().to_ascii_lowercase();
            println!("[{level:>5}] {}", record.args());
        }
    }

    fn flush(&self) {}
}
