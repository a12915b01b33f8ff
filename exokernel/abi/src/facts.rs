//! The facts page: what an environment may know without a system call.
//!
//! The kernel maps one read-only page at [`FACTS`](crate::layout::FACTS) in
//! every environment and keeps it current: it rewrites the page when the
//! environment is switched in, at every timer tick while it runs, and at
//! each slot start, so it is at most one tick old. A
//! library OS reads the time, which slot it is in and the kernel's event
//! counters from it (Engler et al.: "expose information").

use crate::counters::Counter;

/// `Facts::magic`: "exofacts" in little-endian bytes.
pub const MAGIC: u64 = u64::from_le_bytes(*b"exofacts");

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Facts {
    pub magic: u64,
    /// The environment's own id.
    pub environment_id: u64,
    /// Timer ticks since boot (one tick is one slot).
    pub ticks: u64,
    /// Timer ticks per second.
    pub ticks_per_second: u64,
    /// The time-stamp counter's rate, in Hz.
    pub tsc_hz: u64,
    /// Slots in the slice vector.
    pub slots: u64,
    /// The slot running now.
    pub current_slot: u64,
    /// Slots the environment holds.
    pub slots_held: u64,
    /// Slot starts at which the environment got the CPU (its own slots and
    /// pool slots; donated remainders of others' slots do not count).
    pub slots_run: u64,
    /// The trace classes the kernel records ([`crate::trace::Class`] bits;
    /// 0 when tracing is off), so that a library OS makes no `Trace` call
    /// the kernel would ignore.
    pub trace_classes: u64,
    /// The kernel's event counters, indexed by [`Counter`].
    pub counters: [u64; Counter::COUNT],
    /// Interrupt keys (Ctrl-C) typed on the console since boot. The kernel
    /// keeps them out of what `ConsoleRead` returns; a shell ends its
    /// foreground job when this grows.
    pub console_interrupts: u64,
    /// Writes to the console since boot (system calls and kernel messages)...
    pub console_writes: u64,
    /// ...and whether the latest was this environment's (1) or someone
    /// else's (0): a shell redraws the line a person is typing when someone
    /// else wrote. A yes or no, not who: the page names no other environment.
    pub console_last_write_yours: u64,
}

const _: () = assert!(size_of::<Facts>() <= 4096);
