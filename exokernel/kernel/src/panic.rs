//! Kernel panics: a report on the console, then the failure exit code.

use core::arch::asm;
use core::fmt::Write;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::console::FatalWriter;
use crate::memory::image_layout;
use crate::qemu::{self, ExitCode};

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    x86_64::instructions::interrupts::disable();
    let mut out = FatalWriter::new();
    if PANICKING.swap(true, Ordering::Relaxed) {
        let _ = writeln!(out, "\nKERNEL PANIC while panicking: {}", info.message());
        qemu::exit(ExitCode::Failure);
    }
    let _ = write!(out, "\nKERNEL PANIC");
    if let Some(location) = info.location() {
        let _ = write!(out, " at {}:{}", location.file(), location.line());
    }
    let _ = writeln!(out, ": {}", info.message());
    let rbp: u64;
    // SAFETY: copies the frame pointer register; no other effect.
    unsafe { asm!("mov {}, rbp", out(reg) rbp, options(nomem, nostack, preserves_flags)) };
    write_backtrace(&mut out, rbp);
    qemu::exit(ExitCode::Failure)
}

/// The most frames a backtrace shows.
const MAX_FRAMES: usize = 16;

/// Writes the return addresses found by following saved frame pointers from
/// `rbp` (the kernel is built with frame pointers). Resolve them with
/// `addr2line -e <kernel ELF> <address>`.
pub fn write_backtrace(out: &mut impl Write, mut rbp: u64) {
    let image = image_layout();
    let guard = image.stack_guard..image.stack_guard + 4096;
    let _ = write!(out, "  backtrace:");
    let mut previous = (0, 0); // (address, repeats), so deep recursion prints once
    for _ in 0..MAX_FRAMES {
        // Follow only frames inside the kernel's own writable memory (where
        // all kernel stacks live), aligned and clear of the guard page.
        let readable = rbp.is_multiple_of(8)
            && rbp >= image.data
            && rbp + 16 <= image.end
            && (rbp + 16 <= guard.start || rbp >= guard.end);
        if !readable {
            break;
        }
        // SAFETY: `rbp` and `rbp + 8` lie in mapped kernel data (checked above).
        let (caller_rbp, return_address) =
            unsafe { (*(rbp as *const u64), *((rbp + 8) as *const u64)) };
        if return_address == 0 {
            break;
        }
        if return_address == previous.0 {
            previous.1 += 1;
        } else {
            write_repeats(out, previous.1);
            let _ = write!(out, " {return_address:#x}");
            previous = (return_address, 0);
        }
        rbp = caller_rbp;
    }
    write_repeats(out, previous.1);
    let _ = writeln!(out);
}

fn write_repeats(out: &mut impl Write, repeats: u32) {
    if repeats > 0 {
        let _ = write!(out, " (x{})", repeats + 1);
    }
}
