//! The 8254 programmable interval timer, used once: as a known clock
//! (1,193,182 Hz) to measure the local APIC timer and the TSC.
//!
//! Channel 2 is used because its output can be read back through port 0x61
//! without taking an interrupt.

use x86_64::instructions::port::Port;

/// The PIT's input clock in Hz.
pub const FREQUENCY: u64 = 1_193_182;

const CHANNEL_2_DATA: u16 = 0x42;
const MODE_COMMAND: u16 = 0x43;
const SPEAKER_CONTROL: u16 = 0x61;

const GATE_2: u8 = 1 << 0;
const SPEAKER_ENABLE: u8 = 1 << 1;
const OUTPUT_2: u8 = 1 << 5;

/// Runs `measure_start`, busy-waits `milliseconds` (at most 54) by the PIT,
/// then runs `measure_end`.
pub fn around_delay<T>(
    milliseconds: u64,
    measure_start: impl FnOnce(),
    measure_end: impl FnOnce() -> T,
) -> T {
    let count = FREQUENCY * milliseconds / 1000;
    assert!(count <= u64::from(u16::MAX), "PIT delay too long");
    write(
        SPEAKER_CONTROL,
        (read(SPEAKER_CONTROL) & !SPEAKER_ENABLE) | GATE_2,
    );
    // Channel 2 (bits 7-6 = 10), low then high byte (11), mode 0 (000), binary (0).
    write(MODE_COMMAND, 0b1011_0000);
    measure_start();
    // In mode 0 the count starts when its high byte is written.
    write(CHANNEL_2_DATA, count as u8);
    write(CHANNEL_2_DATA, (count >> 8) as u8);
    while read(SPEAKER_CONTROL) & OUTPUT_2 == 0 {
        core::hint::spin_loop();
    }
    measure_end()
}

fn write(port: u16, value: u8) {
    // SAFETY: channel 2 and port 0x61 drive only the PC speaker, which is
    // kept off; nothing else in the kernel uses them.
    unsafe { Port::new(port).write(value) }
}

fn read(port: u16) -> u8 {
    // SAFETY: as in `write`; reading has no side effects.
    unsafe { Port::new(port).read() }
}
