//! Everything specific to x86_64: boot entry, descriptor tables, trap entry,
//! interrupt controllers, timers, the serial port and QEMU's debug console. The rest of the kernel
//! talks to the machine only through these modules.

pub mod apic;
pub mod boot;
pub mod cpu;
pub mod debug_console;
pub mod gdt;
pub mod idt;
pub mod ioapic;
pub mod pci;
pub mod pic;
pub mod pit;
pub mod serial;
pub mod syscall;
pub mod trap;
pub mod trap_entry;

/// Interrupt vectors the kernel uses (0–31 are CPU exceptions).
pub mod vectors {
    /// The local APIC timer.
    pub const TIMER: u8 = 32;
    /// The network card (its PCI interrupt line, through the I/O APIC).
    pub const NIC: u8 = 33;
    /// The local APIC's spurious-interrupt vector.
    pub const SPURIOUS: u8 = 0xff;
}
