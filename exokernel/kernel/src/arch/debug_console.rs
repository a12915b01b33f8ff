//! QEMU's debug console (`isa-debugcon`): one I/O port whose bytes QEMU
//! copies to a file or character device. The trace stream leaves this way
//! (`crate::trace`); without the device the bytes go nowhere.

use exo_abi::trace::DEBUG_CONSOLE_PORT;
use x86_64::instructions::port::Port;

/// Writes `bytes` to the debug console.
pub fn write(bytes: &[u8]) {
    let mut port = Port::<u8>::new(DEBUG_CONSOLE_PORT);
    for &byte in bytes {
        // SAFETY: the port is QEMU's debug console or nothing; writing it
        // has no effect on memory or on any other device.
        unsafe { port.write(byte) };
    }
}
