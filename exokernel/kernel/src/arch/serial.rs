//! The 16550 UART on COM1: the kernel's console.
//!
//! Ten lines of port I/O do the job, so no crate: 115200 baud, 8N1, FIFOs
//! off, polled both ways (no interrupts): output waits for the transmitter,
//! input is read when a program asks (`ConsoleRead`). The port has no software state, so a fatal
//! path may write to it without taking the console lock.

use x86_64::instructions::port::Port;

const COM1: u16 = 0x3f8;

// Register offsets from the base port (PC16550D data sheet).
const DATA: u16 = 0;
const INTERRUPT_ENABLE: u16 = 1;
const FIFO_CONTROL: u16 = 2;
const LINE_CONTROL: u16 = 3;
const MODEM_CONTROL: u16 = 4;
const LINE_STATUS: u16 = 5;

const LINE_STATUS_DATA_READY: u8 = 1 << 0;
const LINE_STATUS_TRANSMIT_EMPTY: u8 = 1 << 5;

/// A handle on COM1. Copying it is free; all state is in the hardware.
#[derive(Clone, Copy, Debug)]
pub struct SerialPort;

impl SerialPort {
    /// Programs the UART. Call once, before the first write.
    pub fn init() -> Self {
        write(LINE_CONTROL, 0x80); // DLAB: the next two writes set the divisor
        write(DATA, 1); // 115200 / 1
        write(INTERRUPT_ENABLE, 0);
        write(LINE_CONTROL, 0x03); // 8 data bits, no parity, 1 stop bit
        // FIFOs stay off: turning them on resets the receive side, losing input
        // that arrived before the kernel started (a script piped into QEMU).
        // Without them the UART holds one byte, and QEMU hands over the next
        // only once it is read: nothing is lost, only batched less.
        write(FIFO_CONTROL, 0);
        write(MODEM_CONTROL, 0x03); // DTR, RTS
        write(INTERRUPT_ENABLE, 0);
        Self
    }

    /// A byte that has arrived, if any (never waits).
    pub fn read_byte(&self) -> Option<u8> {
        (read(LINE_STATUS) & LINE_STATUS_DATA_READY != 0).then(|| read(DATA))
    }

    pub fn write_byte(&self, byte: u8) {
        while read(LINE_STATUS) & LINE_STATUS_TRANSMIT_EMPTY == 0 {
            core::hint::spin_loop();
        }
        write(DATA, byte);
    }
}

impl core::fmt::Write for SerialPort {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        for byte in text.bytes() {
            // Terminals in raw mode (QEMU puts stdio in raw mode) need CR LF.
            if byte == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(byte);
        }
        Ok(())
    }
}

fn write(register: u16, value: u8) {
    // SAFETY: COM1's registers; writing them affects only the UART.
    unsafe { Port::new(COM1 + register).write(value) }
}

fn read(register: u16) -> u8 {
    // SAFETY: reading COM1's line status has no side effects.
    unsafe { Port::new(COM1 + register).read() }
}
