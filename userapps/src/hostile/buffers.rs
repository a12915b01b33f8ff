//! System calls that write into a buffer the caller names (`ConsoleRead`, `NetReceive`),
//! issued with any buffer that cannot hold Rust memory: one that runs past `USER_MAP_END`
//! (the kernel's window, or the last page below it, where no program's memory lies), or
//! one in the managed window, where no Rust object lives. What the kernel does with
//! such a buffer — refuse it, or write into the window — cannot break this program.

use exo_abi::layout::{PAGE_SIZE, USER_MAP_END};
use exo_abi::user;

use super::Outcome;
use crate::layout::is_managed;

/// Issues `number` (a call that writes `length` bytes at `address`) with `arguments`.
/// Panics if the buffer could overlap memory this program's Rust code uses.
pub fn call_writing(number: u64, arguments: [u64; 6], address: u64, length: u64) -> Outcome {
    let outside = address
        .checked_add(length)
        .is_none_or(|end| end > USER_MAP_END && address >= USER_MAP_END - PAGE_SIZE);
    let managed = is_managed(address)
        && address
            .checked_add(length)
            .is_some_and(|end| length == 0 || is_managed(end - 1));
    assert!(
        outside || managed,
        "a buffer at {address:#x} of {length} bytes could hold Rust memory"
    );
    // SAFETY: the buffer is in the kernel's window or the page below it, or inside the
    // managed window, where no Rust object lives (checked above); the call changes nothing else of
    // this program's.
    super::outcome(unsafe { user::syscall_raw(number, arguments) })
}
