//! `run` and `gdb`: booting the kernel with its serial console on this terminal.
//!
//! The exit status tells whether the guest reported success, so scripts can use `run` too.
//! `run` boots the shell with the servers of [`servers`](crate::servers) unless told not to.

use std::io::{IsTerminal, Write};
use std::process::{ExitCode, Stdio};

use crate::qemu::{self, Accelerator, GuestExit, QemuConfig};
use crate::servers::{self, HostPorts};
use crate::{accelerator, artifacts};

const DEFAULT_KERNEL_COMMAND_LINE: &str = "log=info";

/// Boots `program` (a user program's name; `None`: the kernel alone), with the servers'
/// rc file and forwards from `servers` if any.
pub fn run(
    want_kvm: bool,
    program: Option<&str>,
    kernel_command_line: Option<String>,
    servers: Option<HostPorts>,
) -> Result<ExitCode, String> {
    let mut config = build_config(program, kernel_command_line)?;
    if let Some(ports) = servers {
        ports.check_free()?;
        config.boot_module = Some(servers::pack_bootfs()?);
        config.port_forwards = ports.forwards();
    }
    qemu::ensure_installed()?;
    config.accelerator = accelerator::choose(want_kvm, &config.kernel);
    println!("accelerator: {}", config.accelerator);
    if let Some(ports) = servers {
        for line in ports.describe() {
            println!("{line}");
        }
    }
    boot_on_terminal(config)
}

/// Always TCG: QEMU then handles gdb's breakpoints itself, and KVM is unreliable on our
/// development machines.
pub fn gdb(program: Option<&str>, kernel_command_line: Option<String>) -> Result<ExitCode, String> {
    let mut config = build_config(program, kernel_command_line)?;
    qemu::ensure_installed()?;
    config.accelerator = Accelerator::Tcg;
    config.wait_for_debugger = true;
    print_attach_hint(&config);
    boot_on_terminal(config)
}

/// Builds the kernel (and the user programs, if one is to boot) and describes the boot.
fn build_config(
    program: Option<&str>,
    kernel_command_line: Option<String>,
) -> Result<QemuConfig, String> {
    // The program name is checked before anything is built.
    let boot_module = program.map(artifacts::build_user_program).transpose()?;
    let kernel = artifacts::build_kernel()?;
    let mut config = QemuConfig::new(&kernel, &command_line_or_default(kernel_command_line));
    config.boot_module = boot_module;
    config.first_program = program.map(String::from);
    Ok(config)
}

fn command_line_or_default(kernel_command_line: Option<String>) -> String {
    kernel_command_line.unwrap_or_else(|| DEFAULT_KERNEL_COMMAND_LINE.to_string())
}

fn print_attach_hint(config: &QemuConfig) {
    println!("QEMU starts paused, with a gdb stub on :1234. Attach from another terminal:");
    println!(
        "    gdb {} -ex 'target remote :1234'",
        config.kernel.display()
    );
    println!("To stop at the kernel's Rust entry, add: -ex 'break kernel_main' -ex continue");
    if let Some(program) = &config.first_program {
        println!(
            "For the program's symbols as well, add: -ex 'add-symbol-file {}'",
            artifacts::user_program(program).display()
        );
    }
}

/// Boots with the serial console on this process's standard streams. When standard input is
/// not a terminal (a script piped in, or nothing at all), it is passed on followed by Ctrl-D,
/// so the guest sees where it ends.
fn boot_on_terminal(mut config: QemuConfig) -> Result<ExitCode, String> {
    let piped = !std::io::stdin().is_terminal();
    config.console_on_terminal = !piped;
    let mut command = config.command();
    if piped {
        command.stdin(Stdio::piped());
    }
    let mut child = command
        .spawn()
        .map_err(|error| format!("cannot start {}: {error}", qemu::QEMU))?;
    if let Some(mut guest_input) = child.stdin.take() {
        std::thread::spawn(move || {
            // A write error means the guest is gone; its exit status says how.
            let _ = std::io::copy(&mut std::io::stdin(), &mut guest_input);
            let _ = guest_input.write_all(&[qemu::END_OF_INPUT]);
        });
    }
    let status = child
        .wait()
        .map_err(|error| format!("cannot wait for {}: {error}", qemu::QEMU))?;
    let exit = GuestExit::from_status(status);
    println!("{exit}");
    Ok(if exit == GuestExit::Passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
