//! `run` and `gdb`: booting the kernel with its serial console on this terminal.
//!
//! The exit status tells whether the guest reported success, so scripts can use `run` too.
//! `run` boots the shell with the servers of [`servers`](crate::servers) unless told not to.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};

use crate::qemu::{self, Accelerator, GuestExit, QemuConfig};
use crate::servers::{self, HostPorts};
use crate::{accelerator, artifacts, workspace};

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
/// development machines. No `/etc/rc`, so no servers and no forwards: the fewer programs run,
/// the fewer stop at a breakpoint meant for another (chapter 8.6).
pub fn gdb(program: Option<&str>, kernel_command_line: Option<String>) -> Result<ExitCode, String> {
    let mut config = build_config(program, kernel_command_line)?;
    qemu::ensure_installed()?;
    config.accelerator = Accelerator::Tcg;
    config.wait_for_debugger = true;
    let script = write_gdb_script(&config)?;
    print_attach_hint(&config, &script);
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

/// Where `gdb` writes the script that attaches to the guest.
fn gdb_script_path() -> PathBuf {
    workspace::root().join("target/gdb/attach.gdb")
}

/// Writes the gdb script for this boot: the kernel's symbols, the program's (with its
/// source lines), and the connection to QEMU's stub. Returns its path.
fn write_gdb_script(config: &QemuConfig) -> Result<PathBuf, String> {
    let path = gdb_script_path();
    let program = config.first_program.as_deref().map(artifacts::user_program);
    let script = gdb_script(&config.kernel, program.as_deref());
    let directory = path.parent().expect("the script is in a directory");
    std::fs::create_dir_all(directory)
        .and_then(|()| std::fs::write(&path, script))
        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    Ok(path)
}

/// The gdb commands that load `kernel`'s symbols and `program`'s, then attach.
fn gdb_script(kernel: &Path, program: Option<&Path>) -> String {
    let mut script = String::from("# Written by `cargo xtask gdb`; gdb -x runs it.\n");
    // `add-symbol-file` asks before loading; a script cannot answer.
    script.push_str("set confirm off\n");
    script.push_str(&format!("file {}\n", kernel.display()));
    if let Some(program) = program {
        // Every program is linked at its own fixed addresses (userapps/user.ld): the
        // file's sections say where they are, so no address is given.
        script.push_str(&format!("add-symbol-file {}\n", program.display()));
    }
    script.push_str("set confirm on\ntarget remote :1234\n");
    script
}

fn print_attach_hint(config: &QemuConfig, script: &Path) {
    println!("QEMU starts paused, with a gdb stub on :1234. Attach from another terminal:");
    println!("    gdb -q -x {}", script.display());
    match &config.first_program {
        Some(program) => println!(
            "It loads the kernel's symbols and {program}'s, with source lines. Then, say: \
             break kernel_main, continue."
        ),
        None => println!("It loads the kernel's symbols. Then, say: break kernel_main, continue."),
    }
    if config.first_program.as_deref() == Some(crate::DEFAULT_PROGRAM) {
        println!("Under gdb the shell does not run /etc/rc: no servers, no host forwards.");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gdb_script_loads_the_program_after_the_kernel_then_attaches() {
        let script = gdb_script(Path::new("/k/exo-kernel"), Some(Path::new("/u/sh")));
        let commands: Vec<&str> = script
            .lines()
            .filter(|line| !line.starts_with('#'))
            .collect();
        assert_eq!(
            commands,
            [
                "set confirm off",
                "file /k/exo-kernel",
                "add-symbol-file /u/sh",
                "set confirm on",
                "target remote :1234",
            ]
        );
        let kernel_alone = gdb_script(Path::new("/k/exo-kernel"), None);
        assert!(!kernel_alone.contains("add-symbol-file"));
    }
}
