//! PCI configuration space through the 0xcf8/0xcfc port pair.
//!
//! `-M pc` has no memory-mapped configuration space (ECAM), so the
//! `virtio-drivers` crate's PCI code reaches it through this type. The
//! address word is from the PCI Local Bus Specification 3.0, section 3.2.2.3.2:
//! enable bit 31, bus in 23–16, device in 15–11, function in 10–8, register in 7–2.

use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};
use x86_64::instructions::port::Port;

const ADDRESS: u16 = 0xcf8;
const DATA: u16 = 0xcfc;

/// The configuration mechanism of the legacy port pair.
#[derive(Debug)]
pub struct PortConfiguration;

fn address(device_function: DeviceFunction, register_offset: u8) -> u32 {
    1 << 31
        | u32::from(device_function.bus) << 16
        | u32::from(device_function.device) << 11
        | u32::from(device_function.function) << 8
        | u32::from(register_offset & 0xfc)
}

impl ConfigurationAccess for PortConfiguration {
    fn read_word(&self, device_function: DeviceFunction, register_offset: u8) -> u32 {
        // SAFETY: the two ports are PCI configuration mechanism #1 on every
        // PC; the kernel runs with interrupts off, so address and data pair up.
        unsafe {
            Port::<u32>::new(ADDRESS).write(address(device_function, register_offset));
            Port::<u32>::new(DATA).read()
        }
    }

    fn write_word(&mut self, device_function: DeviceFunction, register_offset: u8, data: u32) {
        // SAFETY: as in `read_word`; the caller chose the register to change.
        unsafe {
            Port::<u32>::new(ADDRESS).write(address(device_function, register_offset));
            Port::<u32>::new(DATA).write(data);
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        PortConfiguration
    }
}
