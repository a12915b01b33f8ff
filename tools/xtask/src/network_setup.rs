//! What a networked scenario's run needs on the host: free host ports for its forwards, a
//! capture file of its own, and afterwards the capture's verdict.
//!
//! Host ports are picked when the run starts, never fixed, so scenarios running at once (or
//! anything else on the machine) cannot collide; within this process a port is never
//! handed out twice.

use std::collections::BTreeSet;
use std::fs;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use crate::qemu::{PortForward, Protocol, QemuConfig};
use crate::scenarios::NetworkScenario;
use crate::{pcap, workspace};

/// Where captures go, relative to the workspace root; one file per scenario, replaced by
/// its next run and kept afterwards for a look with a packet analyser.
const CAPTURE_DIRECTORY: &str = "target/captures";
/// Tries at a port the operating system offers before giving up (it would have to keep
/// offering ports this process already handed out).
const PORT_ATTEMPTS: usize = 32;

/// Every host port handed out by this process so far.
static PORTS_HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// One run of a networked scenario, before and after QEMU.
#[derive(Debug)]
pub struct NetworkRun {
    pub forwards: Vec<PortForward>,
    /// The pcap file QEMU writes, when the scenario checks its traffic.
    pub capture: Option<PathBuf>,
}

impl NetworkRun {
    /// Picks the host ports and, if the scenario checks its traffic, clears its capture
    /// file (a stale one must not be read as this run's).
    pub fn prepare(scenario_name: &str, network: &NetworkScenario) -> Result<Self, String> {
        let wanted = network
            .udp_ports
            .iter()
            .map(|&port| (Protocol::Udp, port))
            .chain(network.tcp_ports.iter().map(|&port| (Protocol::Tcp, port)));
        let mut forwards = Vec::new();
        for (protocol, guest_port) in wanted {
            forwards.push(PortForward {
                protocol,
                host_port: free_host_port(protocol)?,
                guest_port,
            });
        }
        let capture = if network.needs_capture() {
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
        Ok(NetworkRun { forwards, capture })
    }

    /// Adds this run's forwards and capture to `config`.
    pub fn configure(&self, config: &mut QemuConfig) {
        config.port_forwards.clone_from(&self.forwards);
        config.packet_capture.clone_from(&self.capture);
    }

    /// Why the capture does not satisfy `network`, or `None` if it does (or there is none).
    pub fn capture_failure(&self, network: &NetworkScenario) -> Option<String> {
        let file = self.capture.as_ref()?;
        match pcap::read_frames(file) {
            Ok(frames) => capture_problems(
                &frames,
                network.capture_must_contain,
                network.capture_must_not_contain,
            )
            .map(|problems| format!("packet capture {}: {problems}", file.display())),
            Err(error) => Some(format!("packet capture unreadable: {error}")),
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago and this process has not handed out
/// before. Another program could still take it before QEMU binds it: QEMU then fails to
/// start, which the run reports; it cannot make a wrong verdict.
pub fn free_host_port(protocol: Protocol) -> Result<u16, String> {
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

/// What `frames` lack of `must_contain` or hold of `must_not_contain`, or `None`.
fn capture_problems(
    frames: &[Vec<u8>],
    must_contain: &[&[u8]],
    must_not_contain: &[&[u8]],
) -> Option<String> {
    let describe = |bytes: &[u8]| format!("\"{}\"", bytes.escape_ascii());
    let mut problems = Vec::new();
    for wanted in must_contain {
        if !frames.iter().any(|frame| contains(frame, wanted)) {
            problems.push(format!(
                "no frame contains {} ({} frames captured)",
                describe(wanted),
                frames.len()
            ));
        }
    }
    for unwanted in must_not_contain {
        let holding: Vec<String> = (1..)
            .zip(frames)
            .filter(|(_, frame)| contains(frame, unwanted))
            .map(|(number, _)| number.to_string())
            .collect();
        if !holding.is_empty() {
            problems.push(format!(
                "{} of {} frames contain {}, which must appear in none (frames {})",
                holding.len(),
                frames.len(),
                describe(unwanted),
                holding.join(", ")
            ));
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_capture_must_hold_each_wanted_string_and_no_unwanted_one() {
        let frames = vec![
            b"....echo:A0....".to_vec(),
            b"....echo:B0....".to_vec(),
            b"...".to_vec(),
        ];
        let wanted: &[&[u8]] = &[b"echo:A0", b"echo:B0"];
        assert_eq!(capture_problems(&frames, wanted, &[b"spoofed!"]), None);
        let problems = capture_problems(&frames, &[b"echo:A1"], &[b"echo:B0", b"..."]).unwrap();
        assert_eq!(
            problems,
            "no frame contains \"echo:A1\" (3 frames captured); \
             1 of 3 frames contain \"echo:B0\", which must appear in none (frames 2); \
             3 of 3 frames contain \"...\", which must appear in none (frames 1, 2, 3)"
        );
    }

    #[test]
    fn an_empty_capture_lacks_everything_wanted() {
        let problems = capture_problems(&[], &[b"echo:A0"], &[b"spoofed!"]).unwrap();
        assert_eq!(
            problems,
            "no frame contains \"echo:A0\" (0 frames captured)"
        );
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
