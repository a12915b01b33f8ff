//! The local APIC: interrupt acknowledgement and the per-CPU timer.
//!
//! Registers are memory-mapped (xAPIC mode) at the physical address in the
//! IA32_APIC_BASE MSR, normally 0xfee00000; `init` maps them uncached into
//! the device window. Offsets are from Intel SDM vol. 3, "Local APIC Register
//! Address Map".

use spin::Once;
use x86_64::registers::model_specific::Msr;

use super::vectors;
use crate::memory::paging::map_device;

const IA32_APIC_BASE: u32 = 0x1b;
const APIC_BASE_ENABLE: u64 = 1 << 11;

const TASK_PRIORITY: usize = 0x80;
const END_OF_INTERRUPT: usize = 0xb0;
const SPURIOUS_VECTOR: usize = 0xf0;
const LVT_TIMER: usize = 0x320;
const TIMER_INITIAL_COUNT: usize = 0x380;
const TIMER_CURRENT_COUNT: usize = 0x390;
const TIMER_DIVIDE: usize = 0x3e0;

const SOFTWARE_ENABLE: u32 = 1 << 8;
const LVT_MASKED: u32 = 1 << 16;
const LVT_PERIODIC: u32 = 1 << 17;
/// Divide configuration 0b0011: the timer counts at bus clock / 16.
const DIVIDE_BY_16: u32 = 0b0011;

/// Virtual address of the register page.
static REGISTERS: Once<u64> = Once::new();

fn write(register: usize, value: u32) {
    let base = *REGISTERS.get().expect("apic::init has not run");
    // SAFETY: an aligned 32-bit register inside the mapped APIC page; MMIO
    // needs the volatile access.
    unsafe { core::ptr::write_volatile((base as usize + register) as *mut u32, value) }
}

fn read(register: usize) -> u32 {
    let base = *REGISTERS.get().expect("apic::init has not run");
    // SAFETY: as in `write`.
    unsafe { core::ptr::read_volatile((base as usize + register) as *const u32) }
}

/// Maps and software-enables this CPU's local APIC, with the timer masked.
pub fn init() {
    let mut base_msr = Msr::new(IA32_APIC_BASE);
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU; setting the global
    // enable bit (already set by firmware) changes nothing else.
    let base = unsafe {
        let value = base_msr.read();
        base_msr.write(value | APIC_BASE_ENABLE);
        value & 0x000f_ffff_ffff_f000
    };
    REGISTERS.call_once(|| map_device(base, 4096).as_u64());
    write(TASK_PRIORITY, 0);
    write(LVT_TIMER, LVT_MASKED | u32::from(vectors::TIMER));
    write(
        SPURIOUS_VECTOR,
        SOFTWARE_ENABLE | u32::from(vectors::SPURIOUS),
    );
}

/// Acknowledges the interrupt being serviced.
pub fn end_of_interrupt() {
    write(END_OF_INTERRUPT, 0);
}

/// Starts the timer counting down from its maximum, masked, for calibration.
pub fn start_measuring() {
    write(TIMER_DIVIDE, DIVIDE_BY_16);
    write(LVT_TIMER, LVT_MASKED | u32::from(vectors::TIMER));
    write(TIMER_INITIAL_COUNT, u32::MAX);
}

/// Stops a measurement and returns how many timer counts passed.
pub fn stop_measuring() -> u32 {
    let elapsed = u32::MAX - read(TIMER_CURRENT_COUNT);
    write(TIMER_INITIAL_COUNT, 0);
    elapsed
}

/// Counts the periodic timer has gone down since its period began: it
/// counts down from the initial count and reloads it at every tick.
pub fn counts_into_period() -> u32 {
    read(TIMER_INITIAL_COUNT).wrapping_sub(read(TIMER_CURRENT_COUNT))
}

/// Interrupts on `vectors::TIMER` every `counts` timer counts (at the rate
/// `stop_measuring` measured).
pub fn start_periodic(counts: u32) {
    write(TIMER_DIVIDE, DIVIDE_BY_16);
    write(LVT_TIMER, LVT_PERIODIC | u32::from(vectors::TIMER));
    write(TIMER_INITIAL_COUNT, counts.max(1));
}
