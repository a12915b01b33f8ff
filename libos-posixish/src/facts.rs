//! What a process reads from the kernel's facts page without a system call:
//! its id, the time in ticks, the kernel's event counters.
//!
//! Bottom layer: it calls nothing of the library OS. `runtime` re-exports
//! these for programs.

/// This process's id: its environment's id.
pub fn getpid() -> u64 {
    exo_abi::user::fact(|facts| &facts.environment_id)
}

/// One of the kernel's event counters as it is now (from the facts page):
/// how tests and benchmarks see what the system did, e.g. how many system
/// calls a sleeping pipe reader made.
pub fn kernel_counter(counter: exo_abi::counters::Counter) -> u64 {
    exo_abi::user::fact(|facts| &facts.counters[counter as usize])
}

/// Timer ticks since boot, from the facts page.
pub fn ticks() -> u64 {
    exo_abi::user::fact(|facts| &facts.ticks)
}
