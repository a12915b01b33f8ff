//! The Linux guest that `cargo xtask bench` measures exo against: Debian 12's kernel and a
//! busybox initramfs running `linux-peer` (tools/linux-peer), booted with the same QEMU
//! command line as exo ([`QemuConfig`]: machine, memory, one processor, accelerator, the
//! virtio-net-pci card on QEMU's user-mode network).
//!
//! This module owns the cache under `target/linux-guest/` (the Debian packages, unpacked,
//! and the initramfs), the API the benchmark command uses, and the developer command
//! `cargo xtask linux-peer micro|servers`. It never installs anything on the host, and the
//! test suite never calls it: preparing the guest downloads some 70 MB.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::initramfs::{self, Contents, ERROR_LINE, READY_LINE};
use super::packages;
use crate::bench::lines::{self, BenchLine};
use crate::guest::{self, BackgroundGuest};
use crate::qemu::{self, Accelerator, GuestExit, PortForward, Protocol, QemuConfig};
use crate::serial_log::WaitFailure;
use crate::serial_log::last_lines;
use crate::servers::DISCARD_GUEST_PORT;
use crate::servers::ECHO_GUEST_PORT;
use crate::{accelerator, artifacts, workspace};

/// The kernel command line before the mode: the console on the serial port (what QEMU
/// shows), only warnings from the kernel, and a panic (init failing, say) resets at once,
/// which with `-no-reboot` ends QEMU instead of leaving it hanging.
const KERNEL_COMMAND_LINE: &str = "console=ttyS0 quiet panic=-1";
/// How long a `micro` boot may take, benchmarks included; under TCG it takes about a
/// minute.
const MICRO_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the servers may take to listen after QEMU starts.
const SERVERS_READY_TIMEOUT: Duration = Duration::from_secs(180);
/// Serial and QEMU lines shown when a boot fails.
const TAIL_LINES: usize = 20;

/// What the guest runs, as `/init` reads it from the kernel command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerMode {
    /// `linux-peer micro`, then power off.
    Micro,
    /// udp-echo and tcp-echo on port 7, tcp-discard on port 9, until killed.
    Servers,
}

impl PeerMode {
    /// The mode named `word` (`micro`, `servers`).
    pub fn from_word(word: &str) -> Option<PeerMode> {
        match word {
            "micro" => Some(PeerMode::Micro),
            "servers" => Some(PeerMode::Servers),
            _ => None,
        }
    }

    fn word(self) -> &'static str {
        match self {
            PeerMode::Micro => "micro",
            PeerMode::Servers => "servers",
        }
    }
}

/// A prepared guest: its kernel image and initramfs.
#[derive(Debug)]
pub struct LinuxGuest {
    kernel: PathBuf,
    initramfs: PathBuf,
}

/// Where the guest's packages and initramfs are kept between runs.
fn cache_directory() -> PathBuf {
    workspace::root().join("target/linux-guest")
}

/// Makes the guest ready to boot: fetches and unpacks the Debian kernel and busybox unless
/// the cache has them, builds `linux-peer`, and writes the initramfs. Says what it does.
pub fn prepare() -> Result<LinuxGuest, String> {
    let cache = cache_directory();
    let kernel = packages::kernel(&cache)?;
    let busybox_path = packages::busybox(&cache)?;
    let modules = kernel.network_card_modules(&busybox_path)?;
    let mut module_files = Vec::new();
    for module in &modules {
        let name = format!("{}.ko", packages::module_name(module));
        module_files.push((name, kernel.module_contents(module)?));
    }
    artifacts::build(&artifacts::LINUX_PEER)?;
    let read = |path: PathBuf| {
        fs::read(&path).map_err(|error| format!("cannot read {}: {error}", path.display()))
    };
    let busybox = read(busybox_path)?;
    let peer = read(artifacts::LINUX_PEER.binary())?;
    let initramfs = cache.join("initramfs.cpio");
    let archive = initramfs::archive(&Contents {
        busybox: &busybox,
        peer: &peer,
        modules: module_files,
    });
    fs::write(&initramfs, archive)
        .map_err(|error| format!("cannot write {}: {error}", initramfs.display()))?;
    let names: Vec<String> = modules.iter().map(|m| packages::module_name(m)).collect();
    println!(
        "linux guest: kernel {}, modules {}, initramfs {}",
        kernel.release,
        names.join(" "),
        initramfs.display()
    );
    Ok(LinuxGuest {
        kernel: kernel.image(),
        initramfs,
    })
}

impl LinuxGuest {
    /// The compressed kernel image QEMU boots.
    pub fn kernel_image(&self) -> &Path {
        &self.kernel
    }

    /// The initramfs: busybox, the card's modules, `linux-peer` and `/init`.
    pub fn initramfs(&self) -> &Path {
        &self.initramfs
    }

    /// The boot running `mode`: exo's QEMU command line with the Linux kernel, this
    /// initramfs as the boot module, and `forwards` to the guest's ports.
    pub fn config(
        &self,
        mode: PeerMode,
        accelerator: Accelerator,
        forwards: Vec<PortForward>,
    ) -> QemuConfig {
        let command_line = format!(
            "{KERNEL_COMMAND_LINE} {}={}",
            initramfs::MODE_PARAMETER,
            mode.word()
        );
        let mut config = QemuConfig::new(&self.kernel, &command_line);
        config.boot_module = Some(self.initramfs.clone());
        config.accelerator = accelerator;
        config.port_forwards = forwards;
        config
    }

    /// Boots `linux-peer micro` and returns its figures, in the order it ran them.
    pub fn run_micro(&self, accelerator: Accelerator) -> Result<Vec<BenchLine>, String> {
        let config = self.config(PeerMode::Micro, accelerator, Vec::new());
        let run = guest::run_unattended(&config, MICRO_TIMEOUT)?;
        let failure = |reason: String| failure_report(&reason, &run.serial, &run.qemu_messages);
        if let Some(line) = run.serial.lines().find(|line| line.contains(ERROR_LINE)) {
            return Err(failure(line.trim().to_string()));
        }
        let measurements = lines::parse_report(&run.serial)
            .map_err(|error| failure(format!("{error} ({})", run.ending)))?;
        Ok(measurements)
    }

    /// Boots the servers (udp-echo and tcp-echo on guest port 7, tcp-discard on 9) with
    /// `forwards` to them, and returns once they listen. The guest runs until the returned
    /// peer is dropped.
    pub fn start_servers(
        &self,
        accelerator: Accelerator,
        forwards: Vec<PortForward>,
    ) -> Result<RunningPeer, String> {
        let config = self.config(PeerMode::Servers, accelerator, forwards);
        let started = Instant::now();
        let guest = guest::start_in_background(&config)?;
        match guest
            .serial
            .wait_for_line(READY_LINE, Some(SERVERS_READY_TIMEOUT))
        {
            Ok(_) => Ok(RunningPeer {
                guest,
                boot_time: started.elapsed(),
            }),
            Err(failure) => {
                let reason = match failure {
                    WaitFailure::Ended => format!("the guest ended before {READY_LINE}"),
                    WaitFailure::TimedOut => format!(
                        "no {READY_LINE} within {} s",
                        SERVERS_READY_TIMEOUT.as_secs()
                    ),
                };
                Err(failure_report(
                    &reason,
                    &guest.serial.text(),
                    &guest.qemu_messages.text(),
                ))
            }
        }
    }
}

/// The guest's servers, listening. Dropping it kills QEMU.
#[derive(Debug)]
pub struct RunningPeer {
    guest: BackgroundGuest,
    /// From starting QEMU to the servers listening.
    pub boot_time: Duration,
}

impl RunningPeer {
    /// Waits until the guest ends (QEMU killed from outside: the guest never stops by
    /// itself).
    pub fn wait(mut self) -> Result<GuestExit, String> {
        self.guest.wait()
    }
}

/// `reason`, with the end of the guest's serial output and of QEMU's messages.
fn failure_report(reason: &str, serial: &str, qemu_messages: &str) -> String {
    let mut report = format!("linux guest: {reason}\nlast serial lines:");
    for line in last_lines(serial, TAIL_LINES) {
        report.push_str(&format!("\n    {line}"));
    }
    if !qemu_messages.trim().is_empty() {
        report.push_str("\nQEMU said:");
        for line in last_lines(qemu_messages, TAIL_LINES) {
            report.push_str(&format!("\n    {line}"));
        }
    }
    report
}

/// The host ports `cargo xtask linux-peer servers` forwards: echo on 7007 (TCP and UDP),
/// discard on 7009.
fn developer_forwards() -> Vec<PortForward> {
    let forward = |protocol, host_port, guest_port| PortForward {
        protocol,
        host_port,
        guest_port,
    };
    vec![
        forward(Protocol::Tcp, 7007, ECHO_GUEST_PORT),
        forward(Protocol::Udp, 7007, ECHO_GUEST_PORT),
        forward(Protocol::Tcp, 7009, DISCARD_GUEST_PORT),
    ]
}

/// `linux-peer micro` run on this machine itself, for scale beside KVM figures: the
/// peer's binary is built by [`prepare`], which must have run.
pub fn micro_on_host() -> Result<Vec<BenchLine>, String> {
    let binary = artifacts::LINUX_PEER.binary();
    let output = std::process::Command::new(&binary)
        .arg("micro")
        .output()
        .map_err(|error| format!("cannot run {}: {error}", binary.display()))?;
    lines::parse_report(&String::from_utf8_lossy(&output.stdout))
        .map_err(|error| format!("linux-peer micro on the host: {error}"))
}

/// `cargo xtask linux-peer micro|servers [--kvm]`: boots the guest for a person to try.
/// With `--kvm`, KVM is used only if exo's probe boot passes on it, as for `run`.
pub fn run_command(mode: PeerMode, want_kvm: bool) -> Result<ExitCode, String> {
    qemu::ensure_installed()?;
    let accelerator = if want_kvm {
        accelerator::choose(true, &artifacts::build_kernel()?)
    } else {
        Accelerator::Tcg
    };
    let guest = prepare()?;
    println!("accelerator: {accelerator}");
    match mode {
        PeerMode::Micro => {
            let started = Instant::now();
            let measurements = guest.run_micro(accelerator)?;
            for measurement in &measurements {
                println!("{measurement}");
            }
            println!("{}", lines::DONE);
            println!(
                "boot, benchmarks and power-off took {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        PeerMode::Servers => {
            let forwards = developer_forwards();
            let peer = guest.start_servers(accelerator, forwards.clone())?;
            println!(
                "servers listening {:.1} s after QEMU started:",
                peer.boot_time.as_secs_f64()
            );
            for forward in &forwards {
                println!(
                    "    127.0.0.1:{} ({}) -> guest port {}",
                    forward.host_port, forward.protocol, forward.guest_port
                );
            }
            println!("Ctrl-C stops the guest.");
            let exit = peer.wait()?;
            println!("{exit}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_is_exos_command_line_with_the_linux_kernel_and_mode() {
        let guest = LinuxGuest {
            kernel: PathBuf::from("/c/vmlinuz-6.1.0-56-amd64"),
            initramfs: PathBuf::from("/c/initramfs.cpio"),
        };
        let config = guest.config(PeerMode::Servers, Accelerator::Tcg, developer_forwards());
        assert_eq!(config.kernel, PathBuf::from("/c/vmlinuz-6.1.0-56-amd64"));
        assert_eq!(config.boot_module, Some(PathBuf::from("/c/initramfs.cpio")));
        assert_eq!(config.first_program, None);
        assert_eq!(
            config.kernel_command_line,
            "console=ttyS0 quiet panic=-1 exo_peer=servers"
        );
        assert_eq!(config.port_forwards.len(), 3);
    }

    #[test]
    fn modes_are_named_by_their_words() {
        for mode in [PeerMode::Micro, PeerMode::Servers] {
            assert_eq!(PeerMode::from_word(mode.word()), Some(mode));
        }
        assert_eq!(PeerMode::from_word("bench"), None);
    }
}
