//! The legacy 8259 interrupt controllers, which this kernel does not use.
//!
//! Firmware leaves them delivering on vectors 8–15, on top of CPU
//! exceptions. They are moved out of the way (to `LEGACY_BASE`) and masked,
//! so a stray legacy interrupt can never look like a double fault.

use x86_64::instructions::port::Port;

/// Where the two controllers' 16 vectors go: unused, below the spurious vector.
const LEGACY_BASE: u8 = 0xe0;

const MASTER_COMMAND: u16 = 0x20;
const MASTER_DATA: u16 = 0x21;
const SLAVE_COMMAND: u16 = 0xa0;
const SLAVE_DATA: u16 = 0xa1;

/// Remaps both controllers and masks every line.
pub fn disable() {
    let sequence = [
        (MASTER_COMMAND, 0x11), // ICW1: initialise, ICW4 follows
        (SLAVE_COMMAND, 0x11),
        (MASTER_DATA, LEGACY_BASE), // ICW2: vector base
        (SLAVE_DATA, LEGACY_BASE + 8),
        (MASTER_DATA, 4), // ICW3: slave on line 2
        (SLAVE_DATA, 2),
        (MASTER_DATA, 1), // ICW4: 8086 mode
        (SLAVE_DATA, 1),
        (MASTER_DATA, 0xff), // mask all
        (SLAVE_DATA, 0xff),
    ];
    for (port, value) in sequence {
        // SAFETY: programming the 8259s only affects legacy interrupt
        // delivery, which is being switched off.
        unsafe { Port::<u8>::new(port).write(value) };
    }
}
