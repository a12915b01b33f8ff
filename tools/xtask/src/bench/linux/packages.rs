//! The Debian packages the Linux guest is made of: Debian 12's current kernel and a static
//! busybox, fetched with `apt-get download`, unpacked with `dpkg-deb -x` and kept under
//! the cache directory `guest` gives, and the kernel modules the guest's network card
//! needs, in the order they must be loaded.
//!
//! This module never installs anything on the host: packages are unpacked into the cache
//! only. Reading `apt-cache` output, the kernel configuration and `modules.dep` are pure
//! functions, tested on the host.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::qemu;

/// The package that depends on the current kernel package of the release.
pub const KERNEL_METAPACKAGE: &str = "linux-image-amd64";
/// Busybox linked statically: it runs in an initramfs with no libraries.
pub const BUSYBOX_PACKAGE: &str = "busybox-static";
/// Where busybox is in its package.
const BUSYBOX_PATH: &str = "bin/busybox";
/// A file written into an unpacked package once it is complete, so an interrupted unpack
/// is done again rather than used.
const UNPACKED_STAMP: &str = ".unpacked";

/// The configuration options the guest's card (virtio-net-pci) needs, and the module each
/// one builds when it is `=m`: the PCI transport and the network driver. What these
/// modules need in turn comes from `modules.dep`.
const NETWORK_CARD_OPTIONS: [(&str, &str); 2] = [
    ("CONFIG_VIRTIO_PCI", "virtio_pci"),
    ("CONFIG_VIRTIO_NET", "virtio_net"),
];

/// An unpacked kernel package.
#[derive(Debug)]
pub struct Kernel {
    /// Where the package is unpacked.
    root: PathBuf,
    /// The kernel release (`6.1.0-56-amd64`): the suffix of its file names.
    pub release: String,
}

impl Kernel {
    /// The compressed kernel image QEMU boots (`boot/vmlinuz-RELEASE`).
    pub fn image(&self) -> PathBuf {
        self.root.join(format!("boot/vmlinuz-{}", self.release))
    }

    fn configuration(&self) -> PathBuf {
        self.root.join(format!("boot/config-{}", self.release))
    }

    fn modules_directory(&self) -> PathBuf {
        self.root.join(format!("lib/modules/{}", self.release))
    }

    /// The modules the network card needs, in load order, as paths relative to the
    /// modules directory (`kernel/drivers/net/virtio_net.ko`). Debian's package has no
    /// `modules.dep` (depmod runs when it is installed), so it is made first with
    /// busybox's `depmod`.
    pub fn network_card_modules(&self, busybox: &Path) -> Result<Vec<String>, String> {
        let configuration = read_text(&self.configuration())?;
        let wanted = modules_for_options(&configuration, &NETWORK_CARD_OPTIONS)?;
        let dependencies = self.modules_directory().join("modules.dep");
        if !dependencies.exists() {
            println!("linux guest: writing modules.dep with busybox depmod");
            let release = self.release.as_str();
            run(Command::new(busybox)
                .arg("depmod")
                .arg("-b")
                .arg(&self.root)
                .arg(release))?;
        }
        load_order(&read_text(&dependencies)?, &wanted)
    }

    /// Module `relative` (from [`Kernel::network_card_modules`]) as `insmod` takes it:
    /// decompressed if the package compresses its modules.
    pub fn module_contents(&self, relative: &str) -> Result<Vec<u8>, String> {
        let path = self.modules_directory().join(relative);
        let decompressor = match path.extension().and_then(|extension| extension.to_str()) {
            Some("ko") => return fs::read(&path).map_err(|e| cannot("read", &path, e)),
            Some("xz") => "xz",
            Some("zst") => "zstd",
            Some("gz") => "gzip",
            _ => return Err(format!("{}: not a kernel module", path.display())),
        };
        let output = Command::new(decompressor)
            .arg("-dc")
            .arg(&path)
            .output()
            .map_err(|error| format!("cannot run {decompressor}: {error}"))?;
        if !output.status.success() {
            return Err(format!(
                "{decompressor} -dc {} failed ({})",
                path.display(),
                output.status
            ));
        }
        Ok(output.stdout)
    }
}

/// Fetches and unpacks the current kernel package under `cache`, or takes the copy already
/// there.
pub fn kernel(cache: &Path) -> Result<Kernel, String> {
    let package = kernel_package()?;
    let root = unpacked(&package, cache)?;
    let boot = root.join("boot");
    let release = fs::read_dir(&boot)
        .map_err(|error| cannot("read", &boot, error))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .find_map(|name| name.strip_prefix("vmlinuz-").map(String::from))
        .ok_or_else(|| format!("{package} has no boot/vmlinuz-*"))?;
    Ok(Kernel { root, release })
}

/// Fetches and unpacks busybox under `cache` (or takes the copy there); returns the path of
/// the busybox binary.
pub fn busybox(cache: &Path) -> Result<PathBuf, String> {
    Ok(unpacked(BUSYBOX_PACKAGE, cache)?.join(BUSYBOX_PATH))
}

/// The kernel package the metapackage depends on now, asking `apt-cache`; with no package
/// lists yet, after `apt-get update`.
fn kernel_package() -> Result<String, String> {
    let depends = || {
        let output = Command::new("apt-cache")
            .args(["depends", KERNEL_METAPACKAGE])
            .output()
            .map_err(|error| format!("cannot run apt-cache: {error}"))?;
        let text = String::from_utf8_lossy(&output.stdout);
        kernel_package_from_depends(&text).ok_or_else(|| {
            format!(
                "`apt-cache depends {KERNEL_METAPACKAGE}` names no kernel package: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )
        })
    };
    depends().or_else(|_| {
        println!("linux guest: no {KERNEL_METAPACKAGE} in the package lists; apt-get update");
        qemu::apt_get(&["update"])?;
        depends()
    })
}

/// The kernel package in `apt-cache depends` output: the first dependency named
/// `linux-image-…` (alternatives, `|Depends:`, count too).
pub fn kernel_package_from_depends(output: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let name = line
            .trim()
            .trim_start_matches('|')
            .strip_prefix("Depends:")?
            .trim();
        (name.starts_with("linux-image-") && !name.starts_with('<')).then(|| name.to_string())
    })
}

/// `package` unpacked under `cache`, fetched and unpacked first if it is not there yet.
fn unpacked(package: &str, cache: &Path) -> Result<PathBuf, String> {
    let root = cache.join(package);
    if root.join(UNPACKED_STAMP).exists() {
        return Ok(root);
    }
    let archive = downloaded(package, &cache.join("downloads"))?;
    println!("linux guest: unpacking {}", archive.display());
    if root.exists() {
        fs::remove_dir_all(&root).map_err(|error| cannot("remove", &root, error))?;
    }
    run(Command::new("dpkg-deb").arg("-x").arg(&archive).arg(&root))?;
    let stamp = root.join(UNPACKED_STAMP);
    fs::write(&stamp, archive.as_os_str().as_encoded_bytes())
        .map_err(|error| cannot("write", &stamp, error))?;
    Ok(root)
}

/// The `.deb` of `package` in `directory`, downloaded first if it is not there; with no
/// package lists yet, after `apt-get update`.
fn downloaded(package: &str, directory: &Path) -> Result<PathBuf, String> {
    fs::create_dir_all(directory).map_err(|error| cannot("create", directory, error))?;
    let find = || -> Option<PathBuf> {
        let prefix = format!("{package}_");
        fs::read_dir(directory)
            .ok()?
            .filter_map(|entry| Some(entry.ok()?.path()))
            .find(|path| {
                let name = path.file_name().and_then(|name| name.to_str());
                name.is_some_and(|name| name.starts_with(&prefix) && name.ends_with(".deb"))
            })
    };
    if let Some(archive) = find() {
        return Ok(archive);
    }
    println!("linux guest: apt-get download {package}");
    // `apt-get download` writes into the current directory. Run as root, apt would hand the
    // download to its sandbox user `_apt`, who cannot write under our target directory; it
    // then downloads as root anyway, with a warning. Saying so first leaves the same download
    // without the warning. `-qq`: no progress lines; errors are still printed.
    let arguments = ["-qq", "-o", "APT::Sandbox::User=root", "download", package];
    let download = || run(qemu::apt_get_command(&arguments).current_dir(directory));
    download().or_else(|_| {
        println!("linux guest: download failed; apt-get update, then again");
        qemu::apt_get(&["update"])?;
        download()
    })?;
    find().ok_or_else(|| format!("apt-get download {package} left no {package}_*.deb"))
}

/// Runs `command` with its output on this terminal; an error unless it succeeds.
fn run(command: &mut Command) -> Result<(), String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let status = command
        .status()
        .map_err(|error| format!("cannot run {program}: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{program} failed ({status})"))
    }
}

fn read_text(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|error| cannot("read", path, error))
}

fn cannot(verb: &str, path: &Path, error: std::io::Error) -> String {
    format!("cannot {verb} {}: {error}", path.display())
}

/// The modules to load for `options` (each a configuration option and the module it
/// builds), read from the kernel's configuration: those `=m`; none for those `=y`. An
/// option the kernel lacks is an error, since the card would not work.
pub fn modules_for_options(
    configuration: &str,
    options: &[(&str, &'static str)],
) -> Result<Vec<&'static str>, String> {
    let mut modules = Vec::new();
    for &(option, module) in options {
        let value = configuration
            .lines()
            .find_map(|line| line.strip_prefix(option)?.strip_prefix('='));
        match value {
            Some("m") => modules.push(module),
            Some("y") => {}
            _ => return Err(format!("the kernel is built without {option}")),
        }
    }
    Ok(modules)
}

/// What `modules.dep` says: for each module's name, its path and the paths of the modules
/// it needs.
type Dependencies<'a> = HashMap<String, (&'a str, Vec<&'a str>)>;

/// The modules to load so that every one of `wanted` (names such as `virtio_net`) loads,
/// each after all it depends on, each once, read from `modules.dep` text (lines
/// `path: dependency-path …`, dependencies in no order to rely on). Paths are as
/// `modules.dep` gives them.
pub fn load_order(modules_dep: &str, wanted: &[&str]) -> Result<Vec<String>, String> {
    let mut dependencies = Dependencies::new();
    for line in modules_dep.lines() {
        let Some((path, needs)) = line.split_once(':') else {
            continue;
        };
        let path = path.trim();
        dependencies.insert(
            module_name(path),
            (path, needs.split_whitespace().collect()),
        );
    }
    let mut order = Vec::new();
    for name in wanted {
        add_after_dependencies(
            &module_name(name),
            &dependencies,
            &mut Vec::new(),
            &mut order,
        )?;
    }
    Ok(order)
}

/// Appends module `name` to `order` after the modules it needs, depth first, unless it is
/// there already. `visiting` holds the modules whose dependencies are being added, so a
/// cycle, which no loader could satisfy, is an error rather than endless.
fn add_after_dependencies(
    name: &str,
    dependencies: &Dependencies<'_>,
    visiting: &mut Vec<String>,
    order: &mut Vec<String>,
) -> Result<(), String> {
    let (path, needs) = dependencies
        .get(name)
        .ok_or_else(|| format!("modules.dep has no module {name}"))?;
    if order.iter().any(|done| done == path) {
        return Ok(());
    }
    if visiting.iter().any(|open| open == name) {
        return Err(format!("modules.dep has a dependency cycle through {name}"));
    }
    visiting.push(name.to_string());
    for need in needs {
        add_after_dependencies(&module_name(need), dependencies, visiting, order)?;
    }
    visiting.pop();
    order.push(path.to_string());
    Ok(())
}

/// A module's name from its path: the file name up to `.ko`, with `-` read as `_` (the
/// kernel treats them alike).
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split_once(".ko").map_or(file, |(stem, _)| stem);
    stem.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_package_comes_from_the_metapackage_dependency() {
        let output = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
        assert_eq!(
            kernel_package_from_depends(output).as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        let alternatives = "linux-image-amd64\n |Depends: linux-image-6.1.0-57-amd64\n  \
                            Depends: linux-image-6.1.0-56-amd64\n  Recommends: firmware\n";
        assert_eq!(
            kernel_package_from_depends(alternatives).as_deref(),
            Some("linux-image-6.1.0-57-amd64")
        );
        assert_eq!(kernel_package_from_depends(""), None);
        assert_eq!(
            kernel_package_from_depends("linux-image-amd64\n  Depends: <linux-image-6.1>\n"),
            None,
            "a virtual package is no package to download"
        );
    }

    #[test]
    fn options_built_as_modules_are_loaded_and_built_in_ones_are_not() {
        let configuration = "# comment\nCONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_NET=m\n\
                             CONFIG_VIRTIO_PCI_LEGACY=m\n";
        let options = [
            ("CONFIG_VIRTIO_PCI", "virtio_pci"),
            ("CONFIG_VIRTIO_NET", "virtio_net"),
        ];
        assert_eq!(
            modules_for_options(configuration, &options),
            Ok(vec!["virtio_net"])
        );
        let missing = "# CONFIG_VIRTIO_NET is not set\nCONFIG_VIRTIO_PCI=m\n";
        assert_eq!(
            modules_for_options(missing, &options),
            Err("the kernel is built without CONFIG_VIRTIO_NET".to_string())
        );
    }

    /// Debian 6.1's lines for the card, dependencies listed in no particular order.
    const MODULES_DEP: &str = "\
kernel/drivers/net/virtio_net.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/virtio/virtio_ring.ko: kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/fs/fuse/virtiofs.ko: kernel/fs/fuse/fuse.ko
";

    #[test]
    fn modules_load_after_their_dependencies_each_once() {
        let order = load_order(MODULES_DEP, &["virtio_pci", "virtio_net"]).unwrap();
        assert_eq!(
            order,
            [
                "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
                "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
                "kernel/drivers/virtio/virtio.ko",
                "kernel/drivers/virtio/virtio_ring.ko",
                "kernel/drivers/virtio/virtio_pci.ko",
                "kernel/net/core/failover.ko",
                "kernel/drivers/net/net_failover.ko",
                "kernel/drivers/net/virtio_net.ko",
            ]
        );
        let error = load_order(MODULES_DEP, &["e1000"]).unwrap_err();
        assert_eq!(error, "modules.dep has no module e1000");
        let cycle = "a.ko: b.ko\nb.ko: a.ko\n";
        assert!(load_order(cycle, &["a"]).unwrap_err().contains("cycle"));
    }

    #[test]
    fn module_names_ignore_directories_compression_and_dashes() {
        assert_eq!(
            module_name("kernel/drivers/net/virtio_net.ko"),
            "virtio_net"
        );
        assert_eq!(module_name("kernel/net/core/failover.ko.xz"), "failover");
        assert_eq!(module_name("virtio-pci"), "virtio_pci");
    }
}
