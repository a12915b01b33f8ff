//! `_start`, every program's first instruction, for every runtime: the
//! kernel starts the first environment here, and a parent its children
//! (libos-posixish's spawn), with `rsp` at the top of a stack.
//!
//! It only makes the stack what the System V ABI wants before a `call`
//! (16-byte aligned; `rbp = 0` ends frame-pointer backtraces) and calls
//! `exo_runtime_start`, a symbol the runtime linked into the program defines
//! (`userapps/src/entry.rs`, `libos-posixish/src/entry.rs`): what a process
//! does first is the runtime's policy, never this crate's. `rdi` — the
//! argument the starter passed — reaches it untouched.
//!
//! Built only for exo (`target_os = "none"`): host test binaries of crates
//! that use the user side link the host's own `_start`.

#[cfg(target_os = "none")]
unsafe extern "C" {
    /// The runtime's start: takes the start argument (`rdi`), never returns.
    fn exo_runtime_start(argument: u64) -> !;
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .pushsection .text._start, "ax"
    .global _start
_start:
    xor ebp, ebp
    and rsp, -16
    call {start}
    ud2
    .popsection
"#,
    start = sym exo_runtime_start,
);
