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
/// The time-stamp counter when the last tick fired.
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
    tick_taken();
}

/// A tick is being taken: notes when it fired, for [`next_tick_tsc`]. Not
/// when it is taken, which may be late (interrupts off): a guess from the
/// time taken would grow later by that much at every tick, and a program
/// that kept the kernel busy across each could make the guess as late as
/// it liked. The timer's own count says how far into its period it is.
pub fn tick_taken() {
    let into = u128::from(apic::counts_into_period());
    let tsc_into = into * u128::from(tsc_hz()) / u128::from(apic_timer_hz().max(1));
    let fired = cpu::rdtsc().saturating_sub(u64::try_from(tsc_into).unwrap_or(u64::MAX));
    LAST_TICK_TSC.store(fired, Ordering::Relaxed);
}

/// When the next tick comes, on the time-stamp counter: a period after the
/// last fired.
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
