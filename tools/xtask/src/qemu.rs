//! QEMU: making sure it is installed, the one command line every boot uses, and what its
//! exit status says about the guest.
//!
//! Callers decide how QEMU's standard streams are connected and how long it may run; this
//! module never starts a guest itself.

use std::env;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use exo_abi::debug_exit;

pub const QEMU: &str = "qemu-system-x86_64";
const QEMU_PACKAGE: &str = "qemu-system-x86";

/// QEMU's exit status when the kernel reports success or failure (see `exo_abi::debug_exit`).
pub const PASS_STATUS: i32 = debug_exit::qemu_status(debug_exit::SUCCESS);
pub const FAIL_STATUS: i32 = debug_exit::qemu_status(debug_exit::FAILURE);
/// With `-no-reboot`, a reset (a triple fault included) or a power-off ends QEMU cleanly.
const RESET_OR_POWER_OFF_STATUS: i32 = 0;
/// QEMU's status for its own errors (bad option, missing file, accelerator failure).
const QEMU_ERROR_STATUS: i32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accelerator {
    Tcg,
    Kvm,
}

impl fmt::Display for Accelerator {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Accelerator::Tcg => "tcg",
            Accelerator::Kvm => "kvm",
        })
    }
}

/// One boot of the kernel. Network devices will be further fields.
#[derive(Clone, Debug)]
pub struct QemuConfig {
    pub kernel: PathBuf,
    pub kernel_command_line: String,
    /// The boot file system holding every program (QEMU's `-initrd`, which PVH hands over
    /// as the one boot module); without one the kernel powers off after booting.
    pub boot_module: Option<PathBuf>,
    /// The program of the boot file system the kernel starts first (`init=NAME`).
    pub first_program: Option<String>,
    pub accelerator: Accelerator,
    /// Start paused, with a gdb stub on tcp port 1234.
    pub wait_for_debugger: bool,
    /// Virtual time advances with instructions executed (`-icount`), not with the host's
    /// clock: a timer tick is then a fixed amount of guest work, whatever else the host is
    /// doing, and an idle guest skips ahead instead of sleeping. For tests (TCG only).
    pub instruction_clock: bool,
    /// Typed into the serial console, followed by Ctrl-D (end of input); `None`: nothing.
    pub serial_input: Option<String>,
}

/// What a program on exo reads as the end of input (ASCII EOT, Ctrl-D): sent after the
/// last byte of input that does not come from a terminal.
pub const END_OF_INPUT: u8 = 0x04;

impl QemuConfig {
    /// A TCG boot without debugger: what every use starts from.
    pub fn new(kernel: &Path, kernel_command_line: &str) -> Self {
        QemuConfig {
            kernel: kernel.to_path_buf(),
            kernel_command_line: kernel_command_line.to_string(),
            boot_module: None,
            first_program: None,
            instruction_clock: false,
            serial_input: None,
            accelerator: Accelerator::Tcg,
            wait_for_debugger: false,
        }
    }

    /// The QEMU command for this boot; the serial port is QEMU's standard output.
    /// The kernel command line, with `init=NAME` when a first program is named.
    fn full_command_line(&self) -> String {
        match &self.first_program {
            Some(program) => format!("{} init={program}", self.kernel_command_line),
            None => self.kernel_command_line.clone(),
        }
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(QEMU);
        command
            .args(["-machine", "pc", "-m", "256M", "-smp", "1"])
            .args(["-accel", &self.accelerator.to_string()])
            // A reset or triple fault must end the run, not loop through the boot again.
            .arg("-no-reboot")
            .args(["-display", "none", "-monitor", "none", "-serial", "stdio"])
            // No default e1000: the guest sees only the devices listed here.
            .args(["-nic", "none"])
            .args([
                "-device",
                &format!("isa-debug-exit,iobase={:#x},iosize=0x04", debug_exit::PORT),
            ])
            .arg("-kernel")
            .arg(&self.kernel)
            .args(["-append", &self.full_command_line()]);
        if let Some(module) = &self.boot_module {
            command.arg("-initrd").arg(module);
        }
        if self.wait_for_debugger {
            command.args(["-s", "-S"]);
        }
        if self.instruction_clock && self.accelerator == Accelerator::Tcg {
            // 2^3 = 8 ns of virtual time per instruction: a 1 ms slot is 125,000 instructions.
            command.args(["-icount", "shift=3,sleep=off"]);
        }
        command
    }
}

/// How a guest ended, read from QEMU's exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestExit {
    Passed,
    Failed,
    ResetOrPoweredOff,
    QemuError,
    UnexpectedStatus(i32),
    KilledBySignal,
}

impl GuestExit {
    pub fn from_status(status: ExitStatus) -> Self {
        Self::from_code(status.code())
    }

    fn from_code(code: Option<i32>) -> Self {
        match code {
            Some(PASS_STATUS) => GuestExit::Passed,
            Some(FAIL_STATUS) => GuestExit::Failed,
            Some(RESET_OR_POWER_OFF_STATUS) => GuestExit::ResetOrPoweredOff,
            Some(QEMU_ERROR_STATUS) => GuestExit::QemuError,
            Some(other) => GuestExit::UnexpectedStatus(other),
            None => GuestExit::KilledBySignal,
        }
    }
}

impl fmt::Display for GuestExit {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuestExit::Passed => write!(
                formatter,
                "guest reported success (exit code {PASS_STATUS})"
            ),
            GuestExit::Failed => write!(
                formatter,
                "guest reported failure (exit code {FAIL_STATUS})"
            ),
            GuestExit::ResetOrPoweredOff => {
                formatter.write_str("guest reset or powered off without an exit code")
            }
            GuestExit::QemuError => {
                write!(formatter, "QEMU failed (exit code {QEMU_ERROR_STATUS})")
            }
            GuestExit::UnexpectedStatus(code) => {
                write!(formatter, "QEMU exited with unexpected code {code}")
            }
            GuestExit::KilledBySignal => formatter.write_str("QEMU was killed by a signal"),
        }
    }
}

/// Makes sure QEMU can be started, installing it with apt-get when we are root.
pub fn ensure_installed() -> Result<(), String> {
    if is_on_path(QEMU) {
        return Ok(());
    }
    if !running_as_root() {
        return Err(format!(
            "{QEMU} not found; install it with: sudo apt-get install {QEMU_PACKAGE}"
        ));
    }
    println!("{QEMU} not found; installing {QEMU_PACKAGE} with apt-get");
    apt_get(&["update"])?;
    apt_get(&["install", "-y", QEMU_PACKAGE])?;
    if is_on_path(QEMU) {
        Ok(())
    } else {
        Err(format!(
            "{QEMU} is still not on PATH after installing {QEMU_PACKAGE}"
        ))
    }
}

fn is_on_path(program: &str) -> bool {
    let Some(path) = env::var_os("PATH") else {
        return false;
    };
    env::split_paths(&path).any(|directory| {
        directory
            .join(program)
            .metadata()
            .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
    })
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.status.success() && output.stdout.trim_ascii() == b"0")
}

fn apt_get(arguments: &[&str]) -> Result<(), String> {
    let status = Command::new("apt-get")
        .args(arguments)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|error| format!("cannot start apt-get: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("apt-get {} failed ({status})", arguments.join(" ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_isa_debug_exit() {
        assert_eq!(PASS_STATUS, 33);
        assert_eq!(FAIL_STATUS, 35);
    }

    #[test]
    fn exit_codes_are_classified() {
        assert_eq!(GuestExit::from_code(Some(33)), GuestExit::Passed);
        assert_eq!(GuestExit::from_code(Some(35)), GuestExit::Failed);
        assert_eq!(GuestExit::from_code(Some(0)), GuestExit::ResetOrPoweredOff);
        assert_eq!(GuestExit::from_code(Some(1)), GuestExit::QemuError);
        assert_eq!(
            GuestExit::from_code(Some(3)),
            GuestExit::UnexpectedStatus(3)
        );
        assert_eq!(GuestExit::from_code(None), GuestExit::KilledBySignal);
    }

    #[test]
    fn command_line_carries_kernel_and_accelerator() {
        let mut config = QemuConfig::new(Path::new("/k/exo-kernel"), "test=boot log=info");
        config.accelerator = Accelerator::Kvm;
        config.wait_for_debugger = true;
        let command = config.command();
        let arguments: Vec<&str> = command.get_args().map(|a| a.to_str().unwrap()).collect();
        let after = |flag: &str| {
            let position = arguments.iter().position(|a| *a == flag).unwrap();
            arguments[position + 1]
        };
        assert_eq!(command.get_program(), QEMU);
        assert_eq!(after("-kernel"), "/k/exo-kernel");
        assert_eq!(after("-append"), "test=boot log=info");
        assert_eq!(after("-accel"), "kvm");
        assert_eq!(after("-device"), "isa-debug-exit,iobase=0xf4,iosize=0x04");
        assert!(arguments.contains(&"-no-reboot"));
        assert!(arguments.ends_with(&["-s", "-S"]));
        assert!(
            !arguments.contains(&"-initrd"),
            "no boot module unless asked for"
        );
    }

    #[test]
    fn the_boot_file_system_is_the_initrd_and_init_names_the_program() {
        let mut config = QemuConfig::new(Path::new("/k/exo-kernel"), "log=info");
        config.boot_module = Some(PathBuf::from("/u/bootfs.img"));
        config.first_program = Some("hello".to_string());
        let command = config.command();
        let arguments: Vec<&str> = command.get_args().map(|a| a.to_str().unwrap()).collect();
        let after = |flag: &str| arguments[arguments.iter().position(|a| *a == flag).unwrap() + 1];
        assert_eq!(after("-initrd"), "/u/bootfs.img");
        assert_eq!(after("-append"), "log=info init=hello");
    }
}
