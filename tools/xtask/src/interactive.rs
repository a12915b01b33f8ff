//! `run` and `gdb`: booting the kernel with its serial console on this terminal.
//!
//! The exit status tells whether the guest reported success, so scripts can use `run` too.

use std::path::Path;
use std::process::ExitCode;

use crate::qemu::{self, Accelerator, GuestExit, QemuConfig};
use crate::{accelerator, artifacts};

const DEFAULT_KERNEL_COMMAND_LINE: &str = "log=info";

pub fn run(want_kvm: bool, kernel_command_line: Option<String>) -> Result<ExitCode, String> {
    let kernel = artifacts::build(&artifacts::KERNEL)?;
    qemu::ensure_installed()?;
    let accelerator = accelerator::choose(want_kvm, &kernel);
    println!("accelerator: {accelerator}");
    let mut config = QemuConfig::new(&kernel, &command_line_or_default(kernel_command_line));
    config.accelerator = accelerator;
    boot_on_terminal(&config)
}

/// Always TCG: QEMU then handles gdb's breakpoints itself, and KVM is unreliable on our
/// development machines.
pub fn gdb(kernel_command_line: Option<String>) -> Result<ExitCode, String> {
    let kernel = artifacts::build(&artifacts::KERNEL)?;
    qemu::ensure_installed()?;
    let mut config = QemuConfig::new(&kernel, &command_line_or_default(kernel_command_line));
    config.accelerator = Accelerator::Tcg;
    config.wait_for_debugger = true;
    print_attach_hint(&kernel);
    boot_on_terminal(&config)
}

fn command_line_or_default(kernel_command_line: Option<String>) -> String {
    kernel_command_line.unwrap_or_else(|| DEFAULT_KERNEL_COMMAND_LINE.to_string())
}

fn print_attach_hint(kernel: &Path) {
    println!("QEMU starts paused, with a gdb stub on :1234. Attach from another terminal:");
    println!("    gdb {} -ex 'target remote :1234'", kernel.display());
    println!("To stop at the kernel's Rust entry, add: -ex 'break kernel_main' -ex continue");
}

fn boot_on_terminal(config: &QemuConfig) -> Result<ExitCode, String> {
    let status = config
        .command()
        .status()
        .map_err(|error| format!("cannot start {}: {error}", qemu::QEMU))?;
    let exit = GuestExit::from_status(status);
    println!("{exit}");
    Ok(if exit == GuestExit::Passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
