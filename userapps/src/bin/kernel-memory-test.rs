//! Lab 1's test (docs/labs/1-system-call.md): the system call `KernelMemory` reports the
//! kernel heap's bytes in use and its capacity, and the figure moves with the kernel
//! objects a program makes.
//!
//! The raw call first, which needs only the kernel's side (exercise 1.1); then the
//! wrapper `user::kernel_memory` that programs use (exercise 1.2).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::syscall::Sysnum;
use exo_abi::user;
use userapps::check::{self, ok};
use userapps::hostile;

userapps::entry!(main);

/// Notifications made to see the kernel heap grow: their capabilities alone outgrow the
/// capability table's first chunk.
const NOTIFICATIONS: usize = 64;

fn main(_argument: u64) -> u64 {
    // `KernelMemory` only reads, so the hostile test's raw call issues it.
    let raw = hostile::call(Sysnum::KernelMemory as u64, [0; 6])
        .expect("KernelMemory cannot take memory away");
    let (used, capacity) = match raw {
        Ok(values) => values,
        Err(code) => panic!("the raw call KernelMemory failed with error code {code}"),
    };
    ok("the raw call KernelMemory succeeds");
    assert!(
        0 < used && used < capacity,
        "in use {used} and capacity {capacity}: expected 0 < in use < capacity"
    );
    ok("the kernel heap is in use and smaller than its capacity");

    let (before, wrapper_capacity) = user::kernel_memory();
    assert_eq!(
        wrapper_capacity, capacity,
        "user::kernel_memory's capacity differs from the raw call's"
    );
    ok(format_args!(
        "user::kernel_memory gives the same capacity, {capacity} bytes"
    ));

    for _ in 0..NOTIFICATIONS {
        user::notification_create(1).expect("a notification");
    }
    let (after, _) = user::kernel_memory();
    assert!(
        after > before,
        "{NOTIFICATIONS} notifications left the kernel heap at {after} bytes, from {before}"
    );
    ok(format_args!(
        "{NOTIFICATIONS} notifications take {} bytes of kernel heap",
        after - before
    ));
    check::all_passed("kernel-memory-test");
    0
}
