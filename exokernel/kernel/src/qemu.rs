//! Ending the run: QEMU's `isa-debug-exit` device, with ACPI power-off as a fallback.
//!
//! The numbers are shared with `cargo xtask` through `exo_abi::debug_exit`:
//! QEMU exits with 33 for success and 35 for failure.

use exo_abi::debug_exit;
use x86_64::instructions::port::Port;

use crate::arch::cpu;

/// QEMU's PIIX4 power-management control register, and the value for "sleep
/// state S5" (soft off), for a QEMU started without the exit device.
const ACPI_PM1A_CONTROL: u16 = 0x604;
const ACPI_SOFT_OFF: u16 = 0x2000;

#[derive(Clone, Copy, Debug)]
#[repr(u32)]
pub enum ExitCode {
    /// The run did what it should: QEMU exits with 33.
    Success = debug_exit::SUCCESS,
    /// Something failed (a panic, a fatal exception, a failed test): QEMU exits with 35.
    Failure = debug_exit::FAILURE,
}

/// Stops the machine, reporting `code` to whoever started QEMU.
pub fn exit(code: ExitCode) -> ! {
    crate::trace::flush();
    // SAFETY: both ports belong to QEMU's exit and power-off devices; writing
    // them ends the virtual machine, which is what this function is for.
    unsafe {
        Port::<u32>::new(debug_exit::PORT).write(code as u32);
        Port::<u16>::new(ACPI_PM1A_CONTROL).write(ACPI_SOFT_OFF);
    }
    cpu::halt_forever()
}
