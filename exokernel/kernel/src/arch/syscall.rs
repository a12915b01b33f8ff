//! Turning on the `syscall` instruction.
//!
//! `syscall` jumps to the address in LSTAR with CS and SS from STAR, masks
//! RFLAGS with SFMASK, and saves the user's `rip` in `rcx` and `rflags` in
//! `r11`; `sysret` undoes it. EFER.SCE was set by the boot trampoline.
//! Register numbers: Intel SDM vol. 4, "Model-Specific Registers".

use x86_64::registers::model_specific::Msr;

use super::gdt::selectors;
use super::trap_entry::syscall_entry_address;

const STAR: u32 = 0xc000_0081;
const LSTAR: u32 = 0xc000_0082;
const SFMASK: u32 = 0xc000_0084;

/// Flags cleared on entry: every flag ring 3 can set that changes what
/// ring-0 code does. Interrupts (the kernel runs with them off), direction
/// (the ABI wants it clear), trap (no single-stepping into the kernel),
/// alignment check, and nested task: with NT set, the kernel's own `iretq`
/// would be a task return and fault in ring 0. The rest ring 3 can set are
/// arithmetic flags and ID, which mean nothing to the kernel; IOPL, VM and
/// RF it cannot set (`popfq` ignores them at CPL 3). Intel SDM vol. 3,
/// "SYSCALL"; interrupt and exception delivery clear TF, NT and RF by
/// themselves.
const ENTRY_CLEARS: u64 = INTERRUPT | DIRECTION | TRAP | ALIGNMENT_CHECK | NESTED_TASK;

const TRAP: u64 = 1 << 8;
const INTERRUPT: u64 = 1 << 9;
const DIRECTION: u64 = 1 << 10;
const NESTED_TASK: u64 = 1 << 14;
const ALIGNMENT_CHECK: u64 = 1 << 18;

pub fn init() {
    // `syscall` loads CS = STAR[47:32] and SS = that + 8: kernel code, kernel
    // data. `sysret` loads SS = STAR[63:48] + 8 and CS = STAR[63:48] + 16, with
    // RPL 3: user data, user code — why the GDT has user data before user code.
    let sysret_base = u64::from(selectors::KERNEL_DATA);
    let syscall_base = u64::from(selectors::KERNEL_CODE);
    // SAFETY: STAR, LSTAR and SFMASK only configure `syscall`/`sysret`;
    // the entry point they name is the kernel's own stub.
    unsafe {
        Msr::new(STAR).write((sysret_base << 48) | (syscall_base << 32));
        Msr::new(LSTAR).write(syscall_entry_address());
        Msr::new(SFMASK).write(ENTRY_CLEARS);
    }
}
