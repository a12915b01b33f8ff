//! Choosing the accelerator for `run`: KVM only when asked for and shown to work, TCG
//! otherwise.
//!
//! KVM on the development machines is nested and unreliable (guests hang or die with KVM
//! internal errors, or fault in ways TCG never shows), so an openable `/dev/kvm` is not
//! enough: a short test boot must pass, through user mode and system calls when a boot file
//! system is there to boot `hello` from.

use std::fs::OpenOptions;
use std::path::Path;
use std::time::Duration;

use crate::artifacts;
use crate::guest::{self, Ending};
use crate::qemu::{Accelerator, GuestExit, QemuConfig};

const KVM_DEVICE: &str = "/dev/kvm";
const PROBE_COMMAND_LINE: &str = "test=boot";
/// The program the probe boots when the boot file system has been built.
const PROBE_PROGRAM: &str = "hello";
/// Far longer than a healthy KVM boot takes; a hung guest is what this guards against.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

pub fn choose(want_kvm: bool, kernel: &Path) -> Accelerator {
    if !want_kvm {
        return Accelerator::Tcg;
    }
    match kvm_problem(kernel) {
        None => Accelerator::Kvm,
        Some(problem) => {
            println!("kvm unusable: {problem}; falling back to tcg");
            Accelerator::Tcg
        }
    }
}

/// Why KVM cannot be used, or `None` if the probe boot passed.
fn kvm_problem(kernel: &Path) -> Option<String> {
    let device = OpenOptions::new().read(true).write(true).open(KVM_DEVICE);
    if let Err(error) = device {
        return Some(format!("cannot open {KVM_DEVICE} read-write ({error})"));
    }
    let bootfs = artifacts::bootfs();
    let mut probe = if bootfs.exists() {
        println!("checking kvm with a short boot of `{PROBE_PROGRAM}`");
        let mut probe = QemuConfig::new(kernel, "log=warn");
        probe.boot_module = Some(bootfs);
        probe.first_program = Some(PROBE_PROGRAM.to_string());
        probe
    } else {
        println!("checking kvm with a short `{PROBE_COMMAND_LINE}` boot");
        QemuConfig::new(kernel, PROBE_COMMAND_LINE)
    };
    probe.accelerator = Accelerator::Kvm;
    match guest::run_unattended(&probe, PROBE_TIMEOUT) {
        Err(error) => Some(format!("probe boot did not start ({error})")),
        Ok(run) if run.ending == Ending::Exited(GuestExit::Passed) => None,
        Ok(run) => Some(format!("probe boot failed ({})", run.ending)),
    }
}
