//! The kernel's trace: a timeline of events, recorded when `trace=CLASSES`
//! is on the command line (`exo_abi::trace` has the format, docs/08 the
//! picture it makes).
//!
//! Each CPU keeps its records in a buffer of its own (`PerCpu`), reached
//! without a lock shared between CPUs. When the buffer is full, and when
//! the run ends, the records go out through QEMU's debug console, after a
//! header at the first write; the time that writing takes is marked by a
//! `Flush` record, so it reads as a gap and not as work. With tracing off,
//! [`record`] is a load and a test; built without the `trace` feature, it
//! is nothing at all (`cargo xtask bench` compares the three).

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use exo_abi::trace::{Class, Header, Kind, MAGIC, Record, VERSION};

use crate::arch::{cpu, debug_console};
use crate::time;

/// Records a CPU's buffer holds before it is written out: 1 MiB.
const CAPACITY: usize = 32 * 1024;

/// Whether the stream's header has gone out.
static HEADER_WRITTEN: AtomicBool = AtomicBool::new(false);

/// Whether this kernel was built with the trace (the `trace` feature).
pub const COMPILED_IN: bool = cfg!(feature = "trace");

/// Turns tracing of `classes` on for this CPU, with a buffer from the
/// kernel's own heap; returns false (tracing stays off) if the heap has no
/// room for it. Called once at boot, before any environment exists.
pub fn start(classes: Class) -> bool {
    let this_cpu = cpu::current();
    let mut buffer = Vec::new();
    if buffer.try_reserve_exact(CAPACITY).is_err() {
        return false;
    }
    *this_cpu.trace_buffer.lock() = buffer;
    this_cpu.set_trace_classes(classes.bits());
    true
}

/// The classes recorded on this CPU (0: none).
pub fn classes() -> u64 {
    cpu::current().trace_classes()
}

/// Records `kind` for `environment` (0: none), if its class is on.
#[inline]
pub fn record(kind: Kind, environment: u32, values: [u64; 2]) {
    if cfg!(feature = "trace") && cpu::current().trace_classes() & kind.class().bits() != 0 {
        append(kind, environment, values);
    }
}

/// Records `kind` for the environment running on this CPU.
#[inline]
pub fn record_here(kind: Kind, values: [u64; 2]) {
    if !cfg!(feature = "trace") {
        return;
    }
    let this_cpu = cpu::current();
    if this_cpu.trace_classes() & kind.class().bits() != 0 {
        append(kind, this_cpu.environment(), values);
    }
}

#[inline(never)]
fn append(kind: Kind, environment: u32, values: [u64; 2]) {
    let this_cpu = cpu::current();
    let record = Record {
        tsc: cpu::rdtsc(),
        kind: kind as u16,
        cpu: this_cpu.id as u16,
        environment,
        values,
    };
    let mut buffer = this_cpu.trace_buffer.lock();
    buffer.push(record);
    if buffer.len() >= CAPACITY {
        write_out(&mut buffer);
    }
}

/// Writes out this CPU's records, at the end of the run. A panic while
/// appending holds the buffer: then they are lost, not waited for.
pub fn flush() {
    let this_cpu = cpu::current();
    if this_cpu.trace_classes() != 0
        && let Some(mut buffer) = this_cpu.trace_buffer.try_lock()
    {
        write_out(&mut buffer);
    }
}

/// Writes `buffer` to the debug console and empties it, keeping one `Flush`
/// record: when the writing began, and how many records went.
fn write_out(buffer: &mut Vec<Record>) {
    if !HEADER_WRITTEN.swap(true, Ordering::Relaxed) {
        let header = Header {
            magic: MAGIC,
            version: VERSION,
            tsc_hz: time::tsc_hz(),
            classes: cpu::current().trace_classes(),
        };
        debug_console::write(&header.to_bytes());
    }
    let flush = Record {
        tsc: cpu::rdtsc(),
        kind: Kind::Flush as u16,
        cpu: cpu::current().id as u16,
        environment: 0,
        values: [buffer.len() as u64, 0],
    };
    for record in buffer.iter().chain([&flush]) {
        debug_console::write(&record.to_bytes());
    }
    buffer.clear();
}
