//! Reading the facts page: the time, the slice vector and the kernel's counters, without a
//! system call.
//!
//! The kernel rewrites the page behind the program's back (at every switch-in and every
//! tick), so every field is read here with a volatile load: a loop that waits for
//! [`ticks`] to move must read the page each time round, not a value the compiler kept in
//! a register. This module only reads; the page is mapped read-only.

use exo_abi::counters::Counter;
use exo_abi::facts::{Facts, MAGIC};
use exo_abi::user;

/// Reads one field of the facts page as it is now (`user::fact`: a volatile load).
fn read(field: impl FnOnce(&Facts) -> &u64) -> u64 {
    user::fact(field)
}

/// Whether the kernel mapped a facts page here (its magic word is right).
pub fn present() -> bool {
    read(|facts| &facts.magic) == MAGIC
}

/// This environment's id.
pub fn environment_id() -> u64 {
    read(|facts| &facts.environment_id)
}

/// Timer ticks since boot (one tick is one slot).
pub fn ticks() -> u64 {
    read(|facts| &facts.ticks)
}

/// Timer ticks per second.
pub fn ticks_per_second() -> u64 {
    read(|facts| &facts.ticks_per_second)
}

/// The time-stamp counter's rate, in Hz.
pub fn tsc_hz() -> u64 {
    read(|facts| &facts.tsc_hz)
}

/// Slots in the slice vector.
pub fn slots() -> u64 {
    read(|facts| &facts.slots)
}

/// The slot running now.
pub fn current_slot() -> u64 {
    read(|facts| &facts.current_slot)
}

/// Slots this environment holds.
pub fn slots_held() -> u64 {
    read(|facts| &facts.slots_held)
}

/// Slots in which this environment has had the CPU.
pub fn slots_run() -> u64 {
    read(|facts| &facts.slots_run)
}

/// One of the kernel's event counters.
pub fn counter(counter: Counter) -> u64 {
    read(|facts| &facts.counters[counter as usize])
}
