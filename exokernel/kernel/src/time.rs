//! Kernel time: the periodic tick and the measured clock rates.
//!
//! The local APIC timer's rate is not architectural, so it is measured
//! against the PIT at boot, together with the TSC. The tick count is the
//! boot CPU's `TimerTicks` counter.

use core::sync::atomic::{AtomicU64, Ordering};

use exo_abi::counters::Counter;

use crate::arch::{apic, cpu, pit};

/// How long the calibration watches the PIT.
const CALIBRATION_MS: u64 = 50;

static TIMER_HZ: AtomicU64 = AtomicU64::new(0);
static TSC_HZ: AtomicU64 = AtomicU64::new(0);
/// Time-stamp counter cycles per timer tick, divided out once at boot.
static TSC_PER_TICK: AtomicU64 = AtomicU64::new(0);
static APIC_TIMER_HZ: AtomicU64 = AtomicU64::new(0);
/// The time-stamp counter when the last tick was taken.
static LAST_TICK_TSC: AtomicU64 = AtomicU64::new(0);

/// Measures the clocks and starts the periodic timer at `hz` interrupts per second.
pub fn init(hz: u64) {
    let mut tsc_start = 0;
    let (apic_counts, tsc_end) = pit::around_delay(
        CALIBRATION_MS,
        || {
            apic::start_measuring();
            tsc_start = cpu::rdtsc();
        },
        || (apic::stop_measuring(), cpu::rdtsc()),
    );
    let apic_hz = u64::from(apic_counts) * 1000 / CALIBRATION_MS;
    let tsc_hz = (tsc_end - tsc_start) * 1000 / CALIBRATION_MS;
    APIC_TIMER_HZ.store(apic_hz, Ordering::Relaxed);
    TSC_HZ.store(tsc_hz, Ordering::Relaxed);
    TIMER_HZ.store(hz, Ordering::Relaxed);
    TSC_PER_TICK.store(tsc_hz / hz.max(1), Ordering::Relaxed);
    let period = u32::try_from(apic_hz / hz).unwrap_or(u32::MAX);
    apic::start_periodic(period);
}

/// A tick is being taken: notes when, for [`next_tick_tsc`].
pub fn tick_taken() {
    LAST_TICK_TSC.store(cpu::rdtsc(), Ordering::Relaxed);
}

/// About when the next tick comes, on the time-stamp counter: a tick after
/// the last was taken. (Taken late, with interrupts off, the last makes
/// this late by as much.)
pub fn next_tick_tsc() -> u64 {
    LAST_TICK_TSC.load(Ordering::Relaxed) + tsc_per_tick()
}

/// Timer interrupts since boot on this CPU.
pub fn ticks() -> u64 {
    cpu::current().counter(Counter::TimerTicks)
}

/// The periodic timer's rate, in interrupts per second.
pub fn timer_hz() -> u64 {
    TIMER_HZ.load(Ordering::Relaxed)
}

/// The time-stamp counter's measured rate, in Hz.
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Time-stamp counter cycles per timer tick.
pub fn tsc_per_tick() -> u64 {
    TSC_PER_TICK.load(Ordering::Relaxed)
}

/// The local APIC timer's measured count rate (after its divider), in Hz.
pub fn apic_timer_hz() -> u64 {
    APIC_TIMER_HZ.load(Ordering::Relaxed)
}
