//! The Linux guest's initramfs: busybox and the applets `/init` uses, the network card's
//! modules, `linux-peer`, and the `/init` script that loads the modules, configures the
//! card for QEMU's user-mode network and runs what the kernel command line asks for
//! (`exo_peer=micro` or `exo_peer=servers`), as a newc archive (`cpio`).
//!
//! This module only lays the archive out and writes the script; it fetches and builds
//! nothing (`guest` hands it the files).

use crate::cpio::Archive;
use crate::servers::{DISCARD_GUEST_PORT, ECHO_GUEST_PORT};

/// The kernel command line parameter naming what `/init` runs.
pub const MODE_PARAMETER: &str = "exo_peer";
/// What `/init` prints once the servers listen.
pub const READY_LINE: &str = "PEER-READY";
/// What `/init` prints, followed by the reason, when it cannot do its work.
pub const ERROR_LINE: &str = "PEER-ERROR:";

/// The busybox applets the script calls, each a link to busybox in `/bin`.
const APPLETS: [&str; 10] = [
    "sh", "mount", "insmod", "ip", "cat", "grep", "netstat", "sleep", "usleep", "poweroff",
];
/// QEMU's user-mode network: the guest's address and prefix, and the gateway (the host).
const GUEST_ADDRESS: &str = "10.0.2.15/24";
const GATEWAY: &str = "10.0.2.2";
/// Where modules go in the archive; each keeps its file name.
const MODULES_DIRECTORY: &str = "lib/modules";

/// What goes into the initramfs.
#[derive(Debug)]
pub struct Contents<'a> {
    /// The static busybox binary.
    pub busybox: &'a [u8],
    /// The static `linux-peer` binary.
    pub peer: &'a [u8],
    /// The modules to load, in load order: file name (`virtio_net.ko`, uncompressed) and
    /// contents.
    pub modules: Vec<(String, Vec<u8>)>,
}

/// The initramfs holding `contents`, as a newc cpio archive.
pub fn archive(contents: &Contents<'_>) -> Vec<u8> {
    let mut archive = Archive::new();
    for directory in ["bin", "dev", "proc", "sys", "tmp", "lib", MODULES_DIRECTORY] {
        archive.directory(directory, 0o755);
    }
    // The kernel opens /dev/console for init's standard streams before /init runs, so the
    // node must already be there: devtmpfs is only mounted by the script.
    archive.character_device("dev/console", 0o600, 5, 1);
    archive.file("bin/busybox", 0o755, contents.busybox);
    for applet in APPLETS {
        archive.symbolic_link(&format!("bin/{applet}"), "busybox");
    }
    archive.file("bin/linux-peer", 0o755, contents.peer);
    for (name, module) in &contents.modules {
        archive.file(&format!("{MODULES_DIRECTORY}/{name}"), 0o644, module);
    }
    let module_names: Vec<&str> = contents
        .modules
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    archive.file("init", 0o755, init_script(&module_names).as_bytes());
    archive.finish()
}

/// The `/init` script, loading `modules` (file names in `lib/modules`) in this order.
pub fn init_script(modules: &[&str]) -> String {
    let load_modules: String = modules
        .iter()
        .map(|module| {
            format!("insmod /{MODULES_DIRECTORY}/{module} || fail \"cannot load {module}\"\n")
        })
        .collect();
    let echo = ECHO_GUEST_PORT;
    let discard = DISCARD_GUEST_PORT;
    format!(
        r#"#!/bin/sh
# The Linux guest's init, written by cargo xtask (tools/xtask/src/bench/linux/initramfs.rs).
export PATH=/bin
fail() {{
    echo "{ERROR_LINE} $*"
    poweroff -f
}}
mount -t proc proc /proc || fail "cannot mount /proc"
mount -t sysfs sysfs /sys || fail "cannot mount /sys"
mount -t devtmpfs devtmpfs /dev || fail "cannot mount /dev"
{load_modules}
# The driver registers eth0 as it probes the card; give it up to five seconds.
tries=0
until [ -e /sys/class/net/eth0 ]; do
    tries=$((tries + 1))
    [ "$tries" -gt 100 ] && fail "no eth0 after loading the modules"
    usleep 50000
done
ip link set lo up
ip link set eth0 up || fail "cannot bring eth0 up"
ip addr add {GUEST_ADDRESS} dev eth0 || fail "cannot give eth0 {GUEST_ADDRESS}"
ip route add default via {GATEWAY} || fail "cannot route through {GATEWAY}"

# Whether a server listens: protocol (t or u) and port.
listening() {{
    netstat -ln"$1" | grep -q "0.0.0.0:$2 "
}}

case " $(cat /proc/cmdline) " in
*" {MODE_PARAMETER}=micro "*)
    linux-peer micro || echo "{ERROR_LINE} linux-peer micro failed"
    poweroff -f
    ;;
*" {MODE_PARAMETER}=servers "*)
    linux-peer udp-echo {echo} &
    linux-peer tcp-echo {echo} &
    linux-peer tcp-discard {discard} &
    tries=0
    until listening u {echo} && listening t {echo} && listening t {discard}; do
        tries=$((tries + 1))
        [ "$tries" -gt 100 ] && fail "the servers did not start listening"
        usleep 50000
    done
    echo {READY_LINE}
    while true; do sleep 3600; done
    ;;
*)
    fail "the kernel command line has no {MODE_PARAMETER}=micro or {MODE_PARAMETER}=servers"
    ;;
esac
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_loads_modules_in_order_and_knows_both_modes() {
        let script = init_script(&["virtio.ko", "virtio_net.ko"]);
        assert!(script.starts_with("#!/bin/sh\n"));
        let first = script.find("insmod /lib/modules/virtio.ko").unwrap();
        let second = script.find("insmod /lib/modules/virtio_net.ko").unwrap();
        let network = script.find("ip addr add 10.0.2.15/24 dev eth0").unwrap();
        assert!(first < second && second < network);
        assert!(script.contains("ip route add default via 10.0.2.2"));
        assert!(script.contains(r#"*" exo_peer=micro "*)"#));
        assert!(script.contains(r#"*" exo_peer=servers "*)"#));
        assert!(script.contains("linux-peer tcp-discard 9 &"));
        assert!(script.contains("echo PEER-READY\n"));
    }

    #[test]
    fn the_archive_holds_init_busybox_links_and_modules() {
        let contents = Contents {
            busybox: b"busybox",
            peer: b"peer",
            modules: vec![("virtio.ko".to_string(), b"module".to_vec())],
        };
        let bytes = archive(&contents);
        let has_name = |name: &str| {
            let wanted = format!("{name}\0");
            crate::serial_log::contains(&bytes, wanted.as_bytes())
        };
        for name in [
            "init",
            "bin/busybox",
            "bin/sh",
            "bin/linux-peer",
            "dev/console",
            "lib/modules/virtio.ko",
            "TRAILER!!!",
        ] {
            assert!(has_name(name), "{name}");
        }
    }
}
