//! The I/O APIC: routes device interrupt lines to vectors of the local APIC.
//!
//! QEMU's `pc` machine has one I/O APIC at the standard address 0xfec00000
//! (its ACPI MADT says so; the kernel does not read ACPI yet). Registers are
//! reached through a select register and a window (Intel 82093AA datasheet,
//! section 3): the redirection entry for input `n` is the register pair
//! `0x10 + 2n` (low half) and `0x11 + 2n` (high half).

use spin::Once;

use crate::memory::paging::map_device;

const BASE: u64 = 0xfec0_0000;
const SELECT: usize = 0x00;
const WINDOW: usize = 0x10;
const VERSION: u32 = 0x01;
const REDIRECTION: u32 = 0x10;

const MASKED: u32 = 1 << 16;
const LEVEL_TRIGGERED: u32 = 1 << 15;

/// Virtual address of the registers.
static REGISTERS: Once<u64> = Once::new();

fn write(register: u32, value: u32) {
    let base = *REGISTERS.get().expect("ioapic::init has not run") as usize;
    // SAFETY: the two registers lie in the page `init` mapped uncached; the
    // kernel runs with interrupts off, so select and window pair up.
    unsafe {
        core::ptr::write_volatile((base + SELECT) as *mut u32, register);
        core::ptr::write_volatile((base + WINDOW) as *mut u32, value);
    }
}

fn read(register: u32) -> u32 {
    let base = *REGISTERS.get().expect("ioapic::init has not run") as usize;
    // SAFETY: as in `write`.
    unsafe {
        core::ptr::write_volatile((base + SELECT) as *mut u32, register);
        core::ptr::read_volatile((base + WINDOW) as *const u32)
    }
}

/// Maps the I/O APIC and masks every input; returns how many inputs it has.
pub fn init() -> u32 {
    REGISTERS.call_once(|| map_device(BASE, 4096).as_u64());
    let inputs = ((read(VERSION) >> 16) & 0xff) + 1;
    for input in 0..inputs {
        write(REDIRECTION + 2 * input, MASKED);
        write(REDIRECTION + 2 * input + 1, 0);
    }
    inputs
}

/// Delivers input `input` as `vector` to the local APIC with id 0 (the boot
/// CPU), level-triggered and active high: PCI INTx lines as QEMU's MADT
/// describes them.
pub fn route_pci(input: u8, vector: u8) {
    let entry = REDIRECTION + 2 * u32::from(input);
    write(entry + 1, 0); // destination: APIC id 0, physical mode
    write(entry, u32::from(vector) | LEVEL_TRIGGERED);
}
