//! A network of its own for a scenario that needs a real interface: a network namespace
//! holding one tap device, which QEMU attaches the guest's card to. Inside, the tap plays
//! QEMU's user-mode gateway (10.0.2.2, with its MAC address), so the guest's usual static
//! configuration works unchanged, and a raw socket on the tap can send anything.
//!
//! [`TapNetwork::create`] says plainly when this machine does not allow it (no root, no
//! `/dev/net/tun`, no `ip`), which makes the scenario skipped, never passed; the guard
//! removes the namespace and the tap on every path (its `Drop`), and a namespace a killed
//! run left behind is removed by the next one. Nothing here touches the host's own
//! interfaces.

use std::io::ErrorKind;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::qemu::{IP, TapBackend};

/// The start of every namespace this module makes; the process id follows, so one run
/// never removes another live run's namespace.
const NAMESPACE_PREFIX: &str = "exo-tap-";
/// The tap's name inside its namespace (alone there, so it needs no unique part).
pub const INTERFACE: &str = "exo-tap0";
/// The gateway the guest's static configuration names, which the tap becomes: QEMU's
/// user-mode defaults (`libos_net::stack::Config`), so the guest needs no change.
pub const GATEWAY_ADDRESS: &str = "10.0.2.2/24";
pub const GATEWAY_MAC: &str = "52:55:0a:00:02:02";
/// Large enough for the oversized frames (up to 9,000 bytes) to leave the raw socket:
/// the guest's card must drop them, not Linux before it.
const TAP_MTU: &str = "9100";
const TUN_DEVICE: &str = "/dev/net/tun";

/// Namespaces made by this process so far, for unique names.
static MADE: AtomicUsize = AtomicUsize::new(0);

/// Why there is no tap network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TapError {
    /// This machine does not allow it: the scenario is skipped, with this reason.
    Unavailable(String),
    /// It should have worked and did not: the scenario fails.
    Failed(String),
}

/// What trying to make a namespace showed, for [`availability`].
#[derive(Debug)]
pub enum Attempt {
    /// `ip` could not be started: `ErrorKind::NotFound` if it is not installed.
    NotStarted(ErrorKind),
    /// `ip netns add` ran and failed, saying this.
    Refused(String),
    Made,
}

/// Whether the scenario can run, found by trying: `/dev/net/tun` must exist, and then
/// `try_namespace` (`ip netns add`) must make a namespace. A refusal is the machine's
/// answer (no root, no `CAP_NET_ADMIN`, a container without namespaces), so it skips; only
/// a made namespace lets it run.
pub fn availability(
    tun_device_exists: bool,
    try_namespace: impl FnOnce() -> Attempt,
) -> Result<(), TapError> {
    let unavailable = |reason: String| Err(TapError::Unavailable(reason));
    if !tun_device_exists {
        return unavailable(format!(
            "no {TUN_DEVICE} on this machine (no tun/tap driver)"
        ));
    }
    match try_namespace() {
        Attempt::NotStarted(ErrorKind::NotFound) => {
            unavailable(format!("`{IP}` is not installed (the iproute2 package)"))
        }
        Attempt::NotStarted(kind) => unavailable(format!("`{IP}` could not be started: {kind}")),
        Attempt::Refused(message) => unavailable(format!(
            "cannot create a network namespace (needs root or CAP_NET_ADMIN): {}",
            message.trim()
        )),
        Attempt::Made => Ok(()),
    }
}

/// A namespace with the tap in it, up and addressed as the gateway; removed on drop.
#[derive(Debug)]
pub struct TapNetwork {
    backend: TapBackend,
}

impl TapNetwork {
    /// Removes namespaces left by runs that were killed, then makes a new one with the tap.
    pub fn create() -> Result<Self, TapError> {
        let tun_device_exists = Path::new(TUN_DEVICE).exists();
        if tun_device_exists {
            remove_stale_namespaces();
        }
        let namespace = format!(
            "{NAMESPACE_PREFIX}{}-{}",
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed)
        );
        availability(tun_device_exists, || {
            match Command::new(IP).args(["netns", "add", &namespace]).output() {
                Err(error) => Attempt::NotStarted(error.kind()),
                Ok(output) if !output.status.success() => {
                    Attempt::Refused(String::from_utf8_lossy(&output.stderr).into_owned())
                }
                Ok(_) => Attempt::Made,
            }
        })?;
        // From here the guard owns the namespace: any failure below removes it.
        let network = TapNetwork {
            backend: TapBackend {
                namespace,
                interface: INTERFACE.to_string(),
            },
        };
        network.configure().map_err(TapError::Failed)?;
        Ok(network)
    }

    /// The tap for QEMU's `-netdev`.
    pub fn backend(&self) -> &TapBackend {
        &self.backend
    }

    /// The tap, made and given the gateway's MAC and address. No IPv6 link-local address:
    /// Linux would otherwise send router solicitations the guest has no use for.
    fn configure(&self) -> Result<(), String> {
        let tap = INTERFACE;
        self.ip(&["link", "set", "dev", "lo", "up"])?;
        self.ip(&["tuntap", "add", "dev", tap, "mode", "tap"])?;
        self.ip(&["link", "set", "dev", tap, "addrgenmode", "none"])?;
        self.ip(&[
            "link",
            "set",
            "dev",
            tap,
            "address",
            GATEWAY_MAC,
            "mtu",
            TAP_MTU,
            "up",
        ])?;
        self.ip(&["address", "add", GATEWAY_ADDRESS, "dev", tap])
    }

    /// `ip -n NAMESPACE arguments…`, its error output in the `Err`.
    fn ip(&self, arguments: &[&str]) -> Result<(), String> {
        let output = Command::new(IP)
            .args(["-n", &self.backend.namespace])
            .args(arguments)
            .output()
            .map_err(|error| format!("cannot start `{IP}`: {error}"))?;
        checked(&output, &format!("{IP} {}", arguments.join(" ")))
    }
}

impl Drop for TapNetwork {
    /// Deleting the tap first, then the namespace; a failure is left for the next run's
    /// [`remove_stale_namespaces`] (there is no one to report it to on an unwinding path).
    fn drop(&mut self) {
        let _ = self.ip(&["link", "delete", "dev", INTERFACE]);
        remove_namespace(&self.backend.namespace);
    }
}

/// Frames Linux dropped on `tap` because QEMU was not reading them fast enough (its queue
/// was full): sent by the raw socket, never seen by the guest's card.
pub fn frames_dropped_by_the_tap(tap: &TapBackend) -> Result<u64, String> {
    // `ip netns exec` mounts the namespace's own /sys for the command.
    let file = format!("/sys/class/net/{}/statistics/tx_dropped", tap.interface);
    let output = Command::new(IP)
        .args(["netns", "exec", &tap.namespace, "cat", &file])
        .output()
        .map_err(|error| format!("cannot start `{IP}`: {error}"))?;
    checked(&output, &format!("reading {file}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .parse()
        .map_err(|_| format!("{file} holds {text:?}, not a count"))
}

fn checked(output: &Output, what: &str) -> Result<(), String> {
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "`{what}` failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

fn remove_namespace(namespace: &str) {
    let _ = Command::new(IP)
        .args(["netns", "delete", namespace])
        .output();
}

/// Removes the namespaces of this module's making whose process is gone (a run killed
/// before its guard could drop). Another live run's are left alone.
fn remove_stale_namespaces() {
    let Ok(output) = Command::new(IP).args(["netns", "list"]).output() else {
        return;
    };
    for namespace in stale_namespaces(&String::from_utf8_lossy(&output.stdout), |process| {
        Path::new(&format!("/proc/{process}")).exists()
    }) {
        let _ = Command::new(IP)
            .args(["-n", &namespace, "link", "delete", "dev", INTERFACE])
            .output();
        remove_namespace(&namespace);
    }
}

/// The namespaces in `ip netns list`'s output named by this module for a process that
/// `is_alive` says is gone. Each line is a name, perhaps followed by ` (id: N)`.
fn stale_namespaces(listing: &str, is_alive: impl Fn(u32) -> bool) -> Vec<String> {
    listing
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| {
            let Some(rest) = name.strip_prefix(NAMESPACE_PREFIX) else {
                return false;
            };
            let process = rest.split('-').next().and_then(|pid| pid.parse().ok());
            process.is_some_and(|process| !is_alive(process))
        })
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scenario_runs_only_where_a_namespace_could_be_made_with_a_tun_device() {
        assert_eq!(availability(true, || Attempt::Made), Ok(()));
        let skipped = |tun, attempt| match availability(tun, || attempt) {
            Err(TapError::Unavailable(reason)) => reason,
            other => panic!("expected a skip, got {other:?}"),
        };
        // Without the device, nothing is tried.
        assert!(matches!(
            availability(false, || panic!("a namespace was tried")),
            Err(TapError::Unavailable(_))
        ));
        assert_eq!(
            skipped(false, Attempt::Made),
            "no /dev/net/tun on this machine (no tun/tap driver)"
        );
        assert_eq!(
            skipped(true, Attempt::NotStarted(ErrorKind::NotFound)),
            "`ip` is not installed (the iproute2 package)"
        );
        assert!(
            skipped(true, Attempt::NotStarted(ErrorKind::PermissionDenied))
                .starts_with("`ip` could not be started")
        );
        // What iproute2 says to a user without the privilege.
        let refused = "mkdir /var/run/netns failed: Permission denied\n";
        assert_eq!(
            skipped(true, Attempt::Refused(refused.to_string())),
            "cannot create a network namespace (needs root or CAP_NET_ADMIN): mkdir \
             /var/run/netns failed: Permission denied"
        );
    }

    #[test]
    fn only_namespaces_of_processes_that_are_gone_are_stale() {
        let listing = "exo-tap-100-0 (id: 3)\nexo-tap-200-1\nother-ns\nexo-tap-x-0\n\
                       exo-tap-300-0 (id: 4)\n";
        let alive = |process| process == 200;
        assert_eq!(
            stale_namespaces(listing, alive),
            ["exo-tap-100-0", "exo-tap-300-0"]
        );
        assert!(stale_namespaces("", alive).is_empty());
    }
}
