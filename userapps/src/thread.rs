//! User threads for a library-OS scheduler: a stack to run one on, and a place to keep its
//! registers while it does not run.
//!
//! The kernel knows nothing of threads. With `UpcallOptions::SCHEDULER` it enters the
//! environment's upcall handler at the start of each slot the environment gets, with the
//! registers it interrupted when the environment last lost the CPU, and resumes whatever
//! registers the handler leaves in the frame (`exo_abi::upcall`). So a thread is a saved
//! [`Registers`] and a stack, and switching threads is saving one and loading another.
//!
//! Both are statics of atomics, as the upcall stack is (`upcall.rs`): code running on a
//! stack writes it behind the compiler's back, which interior mutability allows, and a
//! program can take the address and switch threads without `unsafe`. Only general
//! registers are saved: user code is built without SSE (`x86_64-unknown-none` is
//! soft-float), so there is no other register state to keep.

use core::sync::atomic::{AtomicU64, Ordering};

use exo_abi::upcall::Registers;

/// `rflags` for a new thread: interrupts enabled (bit 9) and the always-one bit 1.
const INITIAL_RFLAGS: u64 = 0x202;

/// A stack of `WORDS` 8-byte words for a thread, 16-byte aligned; put it in a `static`.
#[repr(C, align(16))]
#[derive(Debug)]
pub struct ThreadStack<const WORDS: usize>([AtomicU64; WORDS]);

impl<const WORDS: usize> ThreadStack<WORDS> {
    pub const fn new() -> Self {
        const { assert!(WORDS.is_multiple_of(2), "the top must stay 16-byte aligned") };
        Self([const { AtomicU64::new(0) }; WORDS])
    }

    /// The address just past the stack (it grows down from here), 16-byte aligned.
    pub fn top(&self) -> u64 {
        self.0.as_ptr() as u64 + (WORDS * 8) as u64
    }
}

impl<const WORDS: usize> Default for ThreadStack<WORDS> {
    fn default() -> Self {
        Self::new()
    }
}

/// The registers of a thread that is not running; put it in a `static`.
#[derive(Debug)]
pub struct SavedRegisters([AtomicU64; REGISTER_COUNT]);

const REGISTER_COUNT: usize = size_of::<Registers>() / 8;

impl SavedRegisters {
    pub const fn new() -> Self {
        Self([const { AtomicU64::new(0) }; REGISTER_COUNT])
    }

    /// Keeps `registers` (e.g. those an upcall frame says were interrupted).
    pub fn save(&self, registers: &Registers) {
        for (slot, value) in self.0.iter().zip(to_words(registers)) {
            slot.store(value, Ordering::Relaxed);
        }
    }

    /// What was saved last.
    pub fn load(&self) -> Registers {
        from_words(core::array::from_fn(|index| {
            self.0[index].load(Ordering::Relaxed)
        }))
    }
}

impl Default for SavedRegisters {
    fn default() -> Self {
        Self::new()
    }
}

/// The registers of a thread that has not run yet: it starts at `entry` on the stack that
/// ends at `stack_top` (16-byte aligned), as if `entry` had just been called, every other
/// register zero.
pub fn initial_registers(entry: extern "C" fn() -> !, stack_top: u64) -> Registers {
    assert!(
        stack_top.is_multiple_of(16),
        "stack top {stack_top:#x} not 16-byte aligned"
    );
    Registers {
        rip: entry as usize as u64,
        // A call pushes an 8-byte return address: on entry `rsp + 8` is 16-byte aligned.
        // `entry` never returns, so the (zero) word there is never used as one.
        rsp: stack_top - 8,
        rflags: INITIAL_RFLAGS,
        ..Registers::default()
    }
}

fn to_words(registers: &Registers) -> [u64; REGISTER_COUNT] {
    let Registers {
        rax,
        rbx,
        rcx,
        rdx,
        rsi,
        rdi,
        rbp,
        rsp,
        r8,
        r9,
        r10,
        r11,
        r12,
        r13,
        r14,
        r15,
        rip,
        rflags,
    } = *registers;
    [
        rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp, r8, r9, r10, r11, r12, r13, r14, r15, rip, rflags,
    ]
}

fn from_words(words: [u64; REGISTER_COUNT]) -> Registers {
    let [
        rax,
        rbx,
        rcx,
        rdx,
        rsi,
        rdi,
        rbp,
        rsp,
        r8,
        r9,
        r10,
        r11,
        r12,
        r13,
        r14,
        r15,
        rip,
        rflags,
    ] = words;
    Registers {
        rax,
        rbx,
        rcx,
        rdx,
        rsi,
        rdi,
        rbp,
        rsp,
        r8,
        r9,
        r10,
        r11,
        r12,
        r13,
        r14,
        r15,
        rip,
        rflags,
    }
}
