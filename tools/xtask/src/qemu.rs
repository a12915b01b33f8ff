//! QEMU: making sure it is installed, the one command line every boot uses, and what its
//! exit status says about the guest.
//!
//! Callers decide how QEMU's standard streams are connected and how long it may run; this
//! module never starts a guest itself.

use std::env;
use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use exo_abi::debug_exit;

pub const QEMU: &str = "qemu-system-x86_64";
const QEMU_PACKAGE: &str = "qemu-system-x86";
/// The guest's memory, in MiB: every boot has the same.
pub const MEMORY_MIB: u64 = 256;
/// iproute2's `ip`, which runs QEMU inside a network namespace for a tap backend.
pub const IP: &str = "ip";
/// util-linux's `prlimit`, which runs a command with other resource limits.
const PRLIMIT: &str = "prlimit";

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

/// The guest's one network card: the MAC address its driver reads from the device.
pub const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// QEMU's name for the network backend the card is attached to: the user-mode network,
/// or with frame injection a hub port.
const NETDEV_ID: &str = "net0";
/// With frame injection: the user-mode network's name, and the hub joining it, the card
/// and the injection socket.
const USER_NETDEV_ID: &str = "user0";
const INJECTION_NETDEV_ID: &str = "inject0";
const HUB_ID: u32 = 0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Udp,
    Tcp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
        })
    }
}

/// A host port on 127.0.0.1 that QEMU's user-mode network forwards to a guest port.
#[derive(Clone, Debug)]
pub struct PortForward {
    pub protocol: Protocol,
    pub host_port: u16,
    pub guest_port: u16,
}

/// The host port on 127.0.0.1 that one of `forwards` forwards to guest `protocol` port
/// `guest_port`, if any.
pub fn forwarded_port(
    forwards: &[PortForward],
    protocol: Protocol,
    guest_port: u16,
) -> Option<u16> {
    forwards
        .iter()
        .find(|forward| forward.protocol == protocol && forward.guest_port == guest_port)
        .map(|forward| forward.host_port)
}

/// A way for the host to put raw Ethernet frames on the guest's network, which port
/// forwarding cannot (it carries only well-formed TCP and UDP): QEMU's `socket` backend,
/// one frame per UDP datagram, joined by a hub to the card and the user-mode network, so
/// the card receives what the host sends and the host gets a copy of what the card sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInjection {
    /// Where QEMU receives frames: the host sends them here, on 127.0.0.1.
    pub qemu_port: u16,
    /// Where QEMU sends every frame on the hub, on 127.0.0.1.
    pub host_port: u16,
}

/// A tap device in a network namespace as the card's backend, instead of the user-mode
/// network: the guest's frames are then real frames on a Linux interface, and anything a
/// raw socket can send reaches the card. QEMU runs inside the namespace (`ip netns exec`),
/// where the tap lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapBackend {
    pub namespace: String,
    pub interface: String,
}

/// One boot of the kernel.
#[derive(Debug)]
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
    /// The serial console is a person's terminal (`run`, `gdb`): Ctrl-C goes to the guest
    /// (the shell ends its foreground job) instead of ending QEMU, and Ctrl-A x ends QEMU.
    pub console_on_terminal: bool,
    /// Host ports forwarded to the guest's network card (which is always there).
    pub port_forwards: Vec<PortForward>,
    /// Every frame the card sends or receives, written to this file in pcap format.
    pub packet_capture: Option<PathBuf>,
    /// Raw frames from the host onto the card's network.
    pub frame_injection: Option<FrameInjection>,
    /// The card on a tap device instead of the user-mode network (no forwards then).
    pub tap: Option<TapBackend>,
    /// Where QEMU's debug console (I/O port 0xe9) writes: the kernel's trace stream, with
    /// `trace=` on its command line (`exo_abi::trace`). `None`: no debug console.
    pub trace_output: Option<PathBuf>,
    /// Files QEMU may open, when it needs more than the host's usual limit (a host port
    /// forward takes one): QEMU then runs under `prlimit`. `None`: the limit it inherits.
    pub open_files: Option<u64>,
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
            console_on_terminal: false,
            accelerator: Accelerator::Tcg,
            wait_for_debugger: false,
            port_forwards: Vec::new(),
            packet_capture: None,
            frame_injection: None,
            tap: None,
            trace_output: None,
            open_files: None,
        }
    }

    /// The kernel command line, with `init=NAME` when a first program is named (its name in
    /// the boot file system: `init=test/NAME` for one on the bare runtime).
    fn full_command_line(&self) -> String {
        match &self.first_program {
            Some(program) => format!(
                "{} init={}",
                self.kernel_command_line,
                crate::artifacts::boot_file_name(program)
            ),
            None => self.kernel_command_line.clone(),
        }
    }

    /// The `-netdev` arguments: QEMU's user-mode network (the guest is 10.0.2.15 behind a
    /// NAT, the host 10.0.2.2) with this boot's port forwards, reachable from this machine
    /// only, as the card's backend; with frame injection, a hub between the card, that
    /// network and the injection socket instead. Each backend a hub port names must come
    /// before the port.
    fn netdev_arguments(&self) -> Vec<String> {
        if let Some(tap) = &self.tap {
            // QEMU neither configures nor removes the interface: its owner does.
            return vec![format!(
                "tap,id={NETDEV_ID},ifname={},script=no,downscript=no",
                tap.interface
            )];
        }
        let Some(injection) = self.frame_injection else {
            return vec![self.user_network(NETDEV_ID)];
        };
        vec![
            format!("hubport,id={NETDEV_ID},hubid={HUB_ID}"),
            self.user_network(USER_NETDEV_ID),
            format!("hubport,id={USER_NETDEV_ID}port,hubid={HUB_ID},netdev={USER_NETDEV_ID}"),
            format!(
                "socket,id={INJECTION_NETDEV_ID},udp=127.0.0.1:{},localaddr=127.0.0.1:{}",
                injection.host_port, injection.qemu_port
            ),
            format!(
                "hubport,id={INJECTION_NETDEV_ID}port,hubid={HUB_ID},\
                 netdev={INJECTION_NETDEV_ID}"
            ),
        ]
    }

    /// The user-mode network named `id`, with this boot's port forwards.
    fn user_network(&self, id: &str) -> String {
        let mut argument = format!("user,id={id}");
        for forward in &self.port_forwards {
            argument.push_str(&format!(
                ",hostfwd={}:127.0.0.1:{}-:{}",
                forward.protocol, forward.host_port, forward.guest_port
            ));
        }
        argument
    }

    /// The CPU model: under TCG, QEMU's default with UMIP, so that the kernel can make
    /// `sgdt`, `sidt`, `sldt`, `smsw` and `str` fault in ring 3 (they would hand out where
    /// its tables are), and with SMEP, so that the kernel faults if it ever runs a user
    /// page. (Not SMAP: QEMU 7.2's TCG takes a ring-3 `iretq`'s stack reads for the
    /// kernel's, and every upcall return faulted.) Under KVM the default model: `-cpu
    /// host` aborts on these machines (PLATFORM-NOTES), and the host's CPU decides.
    fn cpu_arguments(&self) -> Vec<String> {
        match self.accelerator {
            Accelerator::Tcg => vec!["-cpu".to_string(), "qemu64,+umip,+smep".to_string()],
            Accelerator::Kvm => Vec::new(),
        }
    }

    /// The serial port on QEMU's standard streams. On a terminal, QEMU's multiplexer is
    /// between them for its escape key (Ctrl-A x ends QEMU), and QEMU leaves Ctrl-C alone
    /// (`signal=off`): the byte reaches the guest as on a serial line.
    fn serial_arguments(&self) -> &'static [&'static str] {
        if self.console_on_terminal {
            &[
                "-chardev",
                "stdio,id=console,mux=on,signal=off",
                "-serial",
                "chardev:console",
            ]
        } else {
            &["-serial", "stdio"]
        }
    }

    /// The QEMU command for this boot; the serial port is QEMU's standard output.
    pub fn command(&self) -> Command {
        // Each wrapper sets up one thing, then becomes the next: `ip netns exec` enters the
        // tap's namespace, `prlimit` sets its own limit.
        let mut words: Vec<String> = Vec::new();
        if let Some(tap) = &self.tap {
            words.extend([IP, "netns", "exec", &tap.namespace].map(String::from));
        }
        if let Some(files) = self.open_files {
            words.extend([
                PRLIMIT.to_string(),
                format!("--nofile={files}"),
                "--".to_string(),
            ]);
        }
        words.push(QEMU.to_string());
        let mut command = Command::new(&words[0]);
        command.args(&words[1..]);
        command
            .args([
                "-machine",
                "pc",
                "-m",
                &format!("{MEMORY_MIB}M"),
                "-smp",
                "1",
            ])
            .args(["-accel", &self.accelerator.to_string()])
            .args(self.cpu_arguments())
            // A reset or triple fault must end the run, not loop through the boot again.
            .arg("-no-reboot")
            .args(["-display", "none", "-monitor", "none"])
            .args(self.serial_arguments())
            .args([
                "-device",
                &format!("isa-debug-exit,iobase={:#x},iosize=0x04", debug_exit::PORT),
            ])
            // Every boot has the card, so the kernel always finds it. Giving a `-netdev`
            // also drops QEMU's default e1000: this is the guest's only network card. The
            // default (transitional) virtio-net-pci offers the modern transport the
            // kernel's driver uses; without its option ROM, the firmware does not stop to
            // offer network boot.
            .args(
                self.netdev_arguments()
                    .into_iter()
                    .flat_map(|argument| ["-netdev".to_string(), argument]),
            )
            .args([
                "-device",
                &format!(
                    "virtio-net-pci,netdev={NETDEV_ID},mac={},romfile=",
                    mac_text(GUEST_MAC)
                ),
            ])
            .arg("-kernel")
            .arg(&self.kernel)
            .args(["-append", &self.full_command_line()]);
        if let Some(module) = &self.boot_module {
            command.arg("-initrd").arg(module);
        }
        if let Some(capture) = &self.packet_capture {
            command.arg("-object").arg(filter_dump_argument(capture));
        }
        if let Some(trace) = &self.trace_output {
            // The legacy `file:` form takes the rest of the word as the path, commas and all.
            let mut argument = OsString::from("file:");
            argument.push(trace);
            command.arg("-debugcon").arg(argument);
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

/// A MAC address as QEMU writes it: `52:54:00:12:34:56`.
fn mac_text(mac: [u8; 6]) -> String {
    let bytes: Vec<String> = mac.iter().map(|byte| format!("{byte:02x}")).collect();
    bytes.join(":")
}

/// QEMU's `filter-dump` on the card's network, both directions, into `capture`. QEMU
/// splits its options at commas, so a comma in the path is doubled.
fn filter_dump_argument(capture: &Path) -> OsString {
    let mut argument = format!("filter-dump,id=dump0,netdev={NETDEV_ID},file=").into_bytes();
    for &byte in capture.as_os_str().as_bytes() {
        argument.push(byte);
        if byte == b',' {
            argument.push(b',');
        }
    }
    OsString::from_vec(argument)
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

/// `apt-get` with `arguments`, never stopping to ask a question.
pub fn apt_get_command(arguments: &[&str]) -> Command {
    let mut command = Command::new("apt-get");
    command
        .args(arguments)
        .env("DEBIAN_FRONTEND", "noninteractive");
    command
}

/// Runs `apt-get` with `arguments`, its output on this terminal.
pub fn apt_get(arguments: &[&str]) -> Result<(), String> {
    let status = apt_get_command(arguments)
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
        let arguments = arguments_of(&command);
        let after = |flag: &str| {
            let position = arguments.iter().position(|a| *a == flag).unwrap();
            arguments[position + 1].as_str()
        };
        assert_eq!(command.get_program(), QEMU);
        assert_eq!(after("-kernel"), "/k/exo-kernel");
        assert_eq!(after("-append"), "test=boot log=info");
        assert_eq!(after("-accel"), "kvm");
        assert!(values_of(&arguments, "-cpu").is_empty());
        config.accelerator = Accelerator::Tcg;
        assert_eq!(
            values_of(&arguments_of(&config.command()), "-cpu"),
            ["qemu64,+umip,+smep"]
        );
        assert_eq!(
            values_of(&arguments, "-device"),
            [
                "isa-debug-exit,iobase=0xf4,iosize=0x04",
                "virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56,romfile="
            ]
        );
        assert!(arguments.iter().any(|a| a == "-no-reboot"));
        assert!(arguments.ends_with(&["-s".to_string(), "-S".to_string()]));
        assert!(
            !arguments.iter().any(|a| a == "-initrd"),
            "no boot module unless asked for"
        );
    }

    /// The command's arguments as strings (the tests use no other).
    fn arguments_of(command: &Command) -> Vec<String> {
        command
            .get_args()
            .map(|a| a.to_str().unwrap().to_string())
            .collect()
    }

    /// Every value given to `flag`, in order.
    fn values_of<'a>(arguments: &'a [String], flag: &str) -> Vec<&'a str> {
        arguments
            .windows(2)
            .filter(|pair| pair[0] == flag)
            .map(|pair| pair[1].as_str())
            .collect()
    }

    #[test]
    fn every_boot_has_the_network_card_and_no_capture_unless_asked() {
        let config = QemuConfig::new(Path::new("/k/exo-kernel"), "log=info");
        let arguments = arguments_of(&config.command());
        assert_eq!(values_of(&arguments, "-netdev"), ["user,id=net0"]);
        assert!(
            values_of(&arguments, "-device")
                .contains(&"virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56,romfile=")
        );
        assert!(values_of(&arguments, "-object").is_empty());
        assert!(
            !arguments.iter().any(|a| a == "-nic"),
            "a -nic would add a second card"
        );
    }

    #[test]
    fn port_forwards_listen_on_localhost_only() {
        let mut config = QemuConfig::new(Path::new("/k/exo-kernel"), "log=info");
        config.port_forwards = vec![
            PortForward {
                protocol: Protocol::Udp,
                host_port: 40001,
                guest_port: 7001,
            },
            PortForward {
                protocol: Protocol::Tcp,
                host_port: 40002,
                guest_port: 80,
            },
        ];
        let arguments = arguments_of(&config.command());
        assert_eq!(
            values_of(&arguments, "-netdev"),
            ["user,id=net0,hostfwd=udp:127.0.0.1:40001-:7001,hostfwd=tcp:127.0.0.1:40002-:80"]
        );
    }

    #[test]
    fn frame_injection_puts_the_card_on_a_hub_with_the_user_network_and_a_socket() {
        let mut config = QemuConfig::new(Path::new("/k/exo-kernel"), "log=info");
        config.port_forwards = vec![PortForward {
            protocol: Protocol::Tcp,
            host_port: 40002,
            guest_port: 7,
        }];
        config.frame_injection = Some(FrameInjection {
            qemu_port: 40003,
            host_port: 40004,
        });
        config.packet_capture = Some(PathBuf::from("/t/captures/net-malformed.pcap"));
        let arguments = arguments_of(&config.command());
        assert_eq!(
            values_of(&arguments, "-netdev"),
            [
                "hubport,id=net0,hubid=0",
                "user,id=user0,hostfwd=tcp:127.0.0.1:40002-:7",
                "hubport,id=user0port,hubid=0,netdev=user0",
                "socket,id=inject0,udp=127.0.0.1:40004,localaddr=127.0.0.1:40003",
                "hubport,id=inject0port,hubid=0,netdev=inject0",
            ]
        );
        // The card and its capture stay on `net0`, now the card's hub port.
        assert!(
            values_of(&arguments, "-device")
                .contains(&"virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56,romfile=")
        );
        assert_eq!(
            values_of(&arguments, "-object"),
            ["filter-dump,id=dump0,netdev=net0,file=/t/captures/net-malformed.pcap"]
        );
    }

    #[test]
    fn a_tap_backend_runs_qemu_in_its_namespace_on_the_tap() {
        let mut config = QemuConfig::new(Path::new("/k/exo-kernel"), "log=info");
        config.tap = Some(TapBackend {
            namespace: "exo-tap-42".to_string(),
            interface: "exo-tap0".to_string(),
        });
        let command = config.command();
        assert_eq!(command.get_program(), IP);
        let arguments = arguments_of(&command);
        assert_eq!(arguments[..4], ["netns", "exec", "exo-tap-42", QEMU]);
        assert_eq!(
            values_of(&arguments, "-netdev"),
            ["tap,id=net0,ifname=exo-tap0,script=no,downscript=no"]
        );
        assert!(
            values_of(&arguments, "-device")
                .contains(&"virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56,romfile=")
        );
        config.open_files = Some(4000);
        assert_eq!(
            arguments_of(&config.command())[..7],
            [
                "netns",
                "exec",
                "exo-tap-42",
                PRLIMIT,
                "--nofile=4000",
                "--",
                QEMU
            ]
        );
    }

    #[test]
    fn a_packet_capture_dumps_the_card_and_escapes_commas() {
        let mut config = QemuConfig::new(Path::new("/k/exo-kernel"), "log=info");
        config.packet_capture = Some(PathBuf::from("/t/captures/a,b.pcap"));
        let arguments = arguments_of(&config.command());
        assert_eq!(
            values_of(&arguments, "-object"),
            ["filter-dump,id=dump0,netdev=net0,file=/t/captures/a,,b.pcap"]
        );
    }

    #[test]
    fn more_open_files_run_qemu_under_prlimit() {
        let mut config = QemuConfig::new(Path::new("/k/exo-kernel"), "log=info");
        assert_eq!(
            arguments_of(&config.command())[..4],
            ["-machine", "pc", "-m", "256M"]
        );
        config.open_files = Some(4000);
        let command = config.command();
        assert_eq!(command.get_program(), PRLIMIT);
        assert_eq!(
            arguments_of(&command)[..5],
            ["--nofile=4000", "--", QEMU, "-machine", "pc"]
        );
    }

    #[test]
    fn a_trace_output_is_the_debug_console_file_and_absent_unless_asked() {
        let mut config = QemuConfig::new(Path::new("/k/exo-kernel"), "log=info trace=all");
        assert!(values_of(&arguments_of(&config.command()), "-debugcon").is_empty());
        config.trace_output = Some(PathBuf::from("/t/trace/a,b.bin"));
        let arguments = arguments_of(&config.command());
        assert_eq!(
            values_of(&arguments, "-debugcon"),
            ["file:/t/trace/a,b.bin"]
        );
        assert_eq!(values_of(&arguments, "-append"), ["log=info trace=all"]);
    }

    #[test]
    fn the_boot_file_system_is_the_initrd_and_init_names_the_program() {
        let mut config = QemuConfig::new(Path::new("/k/exo-kernel"), "log=info");
        config.boot_module = Some(PathBuf::from("/u/bootfs.img"));
        config.first_program = Some("hello".to_string());
        let arguments = arguments_of(&config.command());
        assert_eq!(values_of(&arguments, "-initrd"), ["/u/bootfs.img"]);
        assert_eq!(
            values_of(&arguments, "-append"),
            ["log=info init=test/hello"]
        );
    }
}
