//! How the kernel ends a QEMU run and tells the host whether it passed.
//!
//! QEMU's `isa-debug-exit` device, at `PORT`, makes QEMU exit with status
//! `(value << 1) | 1` when the guest writes `value`. The kernel and
//! `cargo xtask` both use these numbers. The low bit of the status is
//! always set, so a guest can never fake QEMU's own clean exit (0) or its
//! error status (1).

/// The device's `iobase`.
pub const PORT: u16 = 0xf4;
/// Written when the run did what it should.
pub const SUCCESS: u32 = 0x10;
/// Written on a panic, a fatal exception or a failed test.
pub const FAILURE: u32 = 0x11;

/// QEMU's exit status after the guest wrote `value`.
pub const fn qemu_status(value: u32) -> i32 {
    ((value << 1) | 1) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(qemu_status(SUCCESS), 33);
        assert_eq!(qemu_status(FAILURE), 35);
    }
}
