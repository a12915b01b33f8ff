//! What a networked scenario's boot needs on the host: free host ports for its forwards and
//! a capture file of its own. Judging the capture is the verdict's business (`scenarios`).
//!
//! Host ports are picked for each boot, never fixed, and within this process a port is
//! never handed out twice, so scenarios running at once cannot collide. Another program
//! can still take a port between its pick and QEMU binding it; QEMU then fails to start,
//! which [`lost_a_host_port`] recognises so that the test suite boots again.

use std::collections::BTreeSet;
use std::fs;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::{Mutex, PoisonError};

use crate::guest::{Ending, GuestRun};
use crate::host::side::ScenarioHostFunction;
use crate::qemu::{FrameInjection, GuestExit, PortForward, Protocol, QemuConfig};
use crate::workspace;

/// The host's side of a scenario that uses the network (QEMU's user-mode network: the
/// guest is 10.0.2.15, and the host reaches it only through forwarded ports).
#[derive(Clone, Debug)]
pub struct NetworkScenario {
    /// Guest UDP ports forwarded from free host ports on 127.0.0.1.
    pub udp_ports: &'static [u16],
    /// Guest TCP ports likewise.
    pub tcp_ports: &'static [u16],
    /// Runs on a host thread while the guest runs; its Err fails the scenario.
    pub host: Option<ScenarioHostFunction>,
    /// Byte strings that must appear in at least one captured frame / in none. When
    /// either list is non-empty, every frame the card sends or receives is captured.
    pub capture_must_contain: &'static [&'static [u8]],
    pub capture_must_not_contain: &'static [&'static [u8]],
    /// Whether the host function may put raw frames on the guest's network (see
    /// [`FrameInjection`](crate::qemu::FrameInjection)).
    pub inject_frames: bool,
    /// Whether the guest boots with `cargo xtask run`'s boot file system, whose `etc/rc`
    /// starts the servers (see [`servers`](crate::servers)), rather than the tests' own.
    pub run_layout: bool,
    /// Whether the card is on a tap device in a network namespace of its own instead of
    /// the user-mode network (see [`tap_network`](crate::host::tap_network)): no forwards
    /// then; where the machine does not allow it, the scenario is skipped.
    pub tap: bool,
}

impl NetworkScenario {
    /// What every networked entry starts from: no forwards, no host function, no capture,
    /// no injected frames, the tests' own boot file system.
    pub const DEFAULT: NetworkScenario = NetworkScenario {
        udp_ports: &[],
        tcp_ports: &[],
        host: None,
        capture_must_contain: &[],
        capture_must_not_contain: &[],
        inject_frames: false,
        run_layout: false,
        tap: false,
    };

    pub fn needs_capture(&self) -> bool {
        !self.capture_must_contain.is_empty() || !self.capture_must_not_contain.is_empty()
    }
}

/// Where captures go, relative to the workspace root; one file per scenario, replaced by
/// its next run and kept afterwards for a look with a packet analyser.
const CAPTURE_DIRECTORY: &str = "target/captures";
/// What QEMU says when it cannot bind a forward's host port...
const FORWARDING_FAILURE: &str = "Could not set up host forwarding rule";
/// ...or the frame injection socket's port.
const SOCKET_BIND_FAILURE: &str = "can't bind ip=127.0.0.1 to socket";
/// Tries at a port the operating system offers before giving up (it would have to keep
/// offering ports this process already handed out).
const PORT_ATTEMPTS: usize = 32;

/// Every host port handed out by this process so far.
static PORTS_HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// Fills `config` for one boot of a networked scenario: a forward from a new free host port
/// to each of its guest ports, two more for frame injection if it injects frames, and, if
/// it checks its traffic, a capture file, cleared (a stale one must not be read as this
/// run's). Called again for a boot after one that lost a host port, it picks new ports.
pub fn prepare(
    scenario_name: &str,
    network: &NetworkScenario,
    config: &mut QemuConfig,
) -> Result<(), String> {
    config.port_forwards = free_forwards(network.udp_ports, network.tcp_ports)?;
    config.frame_injection = if network.inject_frames {
        Some(FrameInjection {
            qemu_port: free_host_port(Protocol::Udp)?,
            host_port: free_host_port(Protocol::Udp)?,
        })
    } else {
        None
    };
    config.packet_capture = if network.needs_capture() {
        let directory = workspace::root().join(CAPTURE_DIRECTORY);
        fs::create_dir_all(&directory)
            .map_err(|error| format!("cannot create {}: {error}", directory.display()))?;
        let file = directory.join(format!("{scenario_name}.pcap"));
        match fs::remove_file(&file) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(format!("cannot remove {}: {error}", file.display()));
            }
        }
        Some(file)
    } else {
        None
    };
    Ok(())
}

/// A forward from a new free host port to each of `udp_ports` and `tcp_ports`.
pub fn free_forwards(udp_ports: &[u16], tcp_ports: &[u16]) -> Result<Vec<PortForward>, String> {
    let wanted = udp_ports
        .iter()
        .map(|&port| (Protocol::Udp, port))
        .chain(tcp_ports.iter().map(|&port| (Protocol::Tcp, port)));
    wanted
        .map(|(protocol, guest_port)| {
            Ok(PortForward {
                protocol,
                host_port: free_host_port(protocol)?,
                guest_port,
            })
        })
        .collect()
}

/// Whether `run` ended because QEMU could not bind one of its host ports (a forward's, or
/// frame injection's): another program took it between [`free_host_port`] and QEMU
/// starting. Booting again with new ports is then the cure.
pub fn lost_a_host_port(run: &GuestRun) -> bool {
    run.ending == Ending::Exited(GuestExit::QemuError)
        && (run.qemu_messages.contains(FORWARDING_FAILURE)
            || run.qemu_messages.contains(SOCKET_BIND_FAILURE))
}

/// A port on 127.0.0.1 that was free a moment ago and this process has not handed out
/// before. Another program could still take it before QEMU binds it: QEMU then fails to
/// start (see [`lost_a_host_port`]) and the run boots again with new ports.
fn free_host_port(protocol: Protocol) -> Result<u16, String> {
    let mut handed_out = PORTS_HANDED_OUT
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    for _ in 0..PORT_ATTEMPTS {
        let local = (Ipv4Addr::LOCALHOST, 0);
        // The socket closes at the end of the statement, freeing the port for QEMU.
        let port = match protocol {
            Protocol::Udp => UdpSocket::bind(local).and_then(|socket| socket.local_addr()),
            Protocol::Tcp => TcpListener::bind(local).and_then(|listener| listener.local_addr()),
        }
        .map_err(|error| format!("cannot find a free {protocol} port on 127.0.0.1: {error}"))?
        .port();
        if handed_out.insert(port) {
            return Ok(port);
        }
    }
    Err(format!(
        "no new free {protocol} port on 127.0.0.1 after {PORT_ATTEMPTS} tries"
    ))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;

    #[test]
    fn each_boot_gets_new_host_ports_for_the_same_guest_ports() {
        let network = NetworkScenario {
            udp_ports: &[7001, 7002],
            tcp_ports: &[80],
            host: None,
            capture_must_contain: &[],
            capture_must_not_contain: &[],
            inject_frames: false,
            run_layout: false,
            tap: false,
        };
        let mut config = QemuConfig::new(Path::new("/k/exo-kernel"), "log=info");
        prepare("prepare-test", &network, &mut config).unwrap();
        let first = config.port_forwards.clone();
        let wanted = [
            (Protocol::Udp, 7001),
            (Protocol::Udp, 7002),
            (Protocol::Tcp, 80),
        ];
        let guest_ports = |forwards: &[PortForward]| -> Vec<(Protocol, u16)> {
            forwards
                .iter()
                .map(|forward| (forward.protocol, forward.guest_port))
                .collect()
        };
        assert_eq!(guest_ports(&first), wanted);
        assert_eq!(config.packet_capture, None);
        prepare("prepare-test", &network, &mut config).unwrap();
        assert_eq!(guest_ports(&config.port_forwards), wanted);
        for (old, new) in first.iter().zip(&config.port_forwards) {
            assert_ne!(old.host_port, new.host_port);
        }
        assert_eq!(config.frame_injection, None);
    }

    #[test]
    fn frame_injection_gets_two_new_ports() {
        let network = NetworkScenario {
            udp_ports: &[7],
            tcp_ports: &[],
            host: None,
            capture_must_contain: &[],
            capture_must_not_contain: &[],
            inject_frames: true,
            run_layout: false,
            tap: false,
        };
        let mut config = QemuConfig::new(Path::new("/k/exo-kernel"), "log=info");
        prepare("prepare-injection-test", &network, &mut config).unwrap();
        let injection = config.frame_injection.unwrap();
        let forwarded = config.port_forwards[0].host_port;
        let mut ports = [injection.qemu_port, injection.host_port, forwarded];
        ports.sort();
        assert!(ports[0] != ports[1] && ports[1] != ports[2], "{ports:?}");
    }

    #[test]
    fn only_a_qemu_error_about_forwarding_is_a_lost_host_port() {
        let run = |ending, qemu_messages: &str| GuestRun {
            ending,
            serial: String::new(),
            qemu_messages: qemu_messages.to_string(),
            elapsed: Duration::ZERO,
            host_failure: None,
        };
        // What QEMU 7.2 prints when the port is taken.
        let taken = "qemu-system-x86_64: -netdev user,id=net0,hostfwd=udp:127.0.0.1:46071-:7001: \
                     Could not set up host forwarding rule 'udp:127.0.0.1:46071-:7001'\n";
        let qemu_error = Ending::Exited(GuestExit::QemuError);
        assert!(lost_a_host_port(&run(qemu_error, taken)));
        assert!(!lost_a_host_port(&run(qemu_error, "could not load kernel")));
        let socket_taken = "qemu-system-x86_64: -netdev socket,id=inject0,udp=127.0.0.1:47111,\
                            localaddr=127.0.0.1:47112: can't bind ip=127.0.0.1 to socket: \
                            Address already in use\n";
        assert!(lost_a_host_port(&run(qemu_error, socket_taken)));
        let failed = Ending::Exited(GuestExit::Failed);
        assert!(!lost_a_host_port(&run(failed, taken)));
    }

    #[test]
    fn host_ports_are_never_handed_out_twice() {
        let mut ports = BTreeSet::new();
        for protocol in [Protocol::Udp, Protocol::Tcp, Protocol::Udp, Protocol::Tcp] {
            let port = free_host_port(protocol).unwrap();
            assert_ne!(port, 0);
            assert!(ports.insert(port), "port {port} handed out twice");
        }
        // Free means QEMU can bind it.
        let port = free_host_port(Protocol::Udp).unwrap();
        UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }
}
