//! [`HostSide`]: what a networked scenario's host function works with while the guest runs
//! — the guest's serial output as it streams, and sockets to the guest's forwarded ports.
//!
//! Nothing here waits without an end: a wait for serial output ends when the output does
//! (the guest's timeout kills QEMU), and a host function that receives on a socket sets
//! its own deadline. This module judges nothing; the host function decides.

use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

use crate::guest::HostFunction;
use crate::qemu::{PortForward, Protocol};
use crate::serial_log::{SerialLog, WaitFailure};

/// A networked scenario's host function: run on a host thread while the guest runs; its
/// `Err` fails the scenario.
pub type ScenarioHostFunction = fn(&HostSide) -> Result<(), String>;

/// What a scenario's host function is handed.
#[derive(Debug)]
pub struct HostSide {
    serial: SerialLog,
    forwards: Vec<PortForward>,
}

/// Wraps a scenario's host function for [`guest::run_unattended_with_host`], which hands
/// it the serial output; `forwards` are the run's port forwards.
///
/// [`guest::run_unattended_with_host`]: crate::guest::run_unattended_with_host
pub fn on_host_thread(function: ScenarioHostFunction, forwards: Vec<PortForward>) -> HostFunction {
    Box::new(move |serial| function(&HostSide::new(serial, forwards)))
}

impl HostSide {
    fn new(serial: SerialLog, forwards: Vec<PortForward>) -> Self {
        HostSide { serial, forwards }
    }

    /// Waits until the guest's serial output contains `text`. There is no deadline of its
    /// own: the guest's timeout is the one bound, and ends the output when it kills QEMU.
    pub fn wait_for(&self, text: &str) -> Result<(), String> {
        self.serial
            .wait_for(text, None)
            .map_err(|_| Self::ended_without(text))
    }

    /// Whether the guest's serial output contains `text` now or does within `timeout`; an
    /// `Err` if it ended without.
    pub fn shows_within(&self, text: &str, timeout: Duration) -> Result<bool, String> {
        match self.serial.wait_for(text, Some(timeout)) {
            Ok(()) => Ok(true),
            Err(WaitFailure::TimedOut) => Ok(false),
            Err(WaitFailure::Ended) => Err(Self::ended_without(text)),
        }
    }

    fn ended_without(text: &str) -> String {
        format!("the guest's serial output ended without showing {text:?}")
    }

    /// A new UDP socket on 127.0.0.1 connected to the host port forwarded to `guest_port`,
    /// so it receives only from there. It has no read timeout: whoever receives on it sets
    /// the deadline it needs.
    pub fn udp(&self, guest_port: u16) -> Result<UdpSocket, String> {
        let host_port = self.forwarded(Protocol::Udp, guest_port)?;
        let context =
            |error| format!("UDP to guest port {guest_port} (host port {host_port}): {error}");
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(context)?;
        socket
            .connect((Ipv4Addr::LOCALHOST, host_port))
            .map_err(context)?;
        Ok(socket)
    }

    /// The host port on 127.0.0.1 forwarded to `guest_port`, if the scenario forwards it.
    fn host_port(&self, protocol: Protocol, guest_port: u16) -> Option<u16> {
        self.forwards
            .iter()
            .find(|forward| forward.protocol == protocol && forward.guest_port == guest_port)
            .map(|forward| forward.host_port)
    }

    fn forwarded(&self, protocol: Protocol, guest_port: u16) -> Result<u16, String> {
        self.host_port(protocol, guest_port).ok_or_else(|| {
            format!(
                "guest {protocol} port {guest_port} is not forwarded: list it in the \
                 scenario's {protocol}_ports"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host side whose "guest" ports are sockets bound here, standing in for QEMU's
    /// forwards.
    fn host_side(forwards: Vec<PortForward>) -> HostSide {
        HostSide::new(SerialLog::new(), forwards)
    }

    #[test]
    fn each_udp_socket_reaches_the_forwarded_port_and_hears_only_its_replies() {
        let guest = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let forward = PortForward {
            protocol: Protocol::Udp,
            host_port: guest.local_addr().unwrap().port(),
            guest_port: 7001,
        };
        let host = host_side(vec![forward]);
        let first = host.udp(7001).unwrap();
        let second = host.udp(7001).unwrap();
        assert_ne!(first.local_addr().unwrap(), second.local_addr().unwrap());
        let mut buffer = [0u8; 16];
        for (socket, request, reply) in [(&first, "A0", "echo:A0"), (&second, "B0", "echo:B0")] {
            socket.send(request.as_bytes()).unwrap();
            let (length, from) = guest.recv_from(&mut buffer).unwrap();
            assert_eq!(
                (&buffer[..length], from),
                (request.as_bytes(), socket.local_addr().unwrap())
            );
            guest.send_to(reply.as_bytes(), from).unwrap();
        }
        for (socket, reply) in [(&first, "echo:A0"), (&second, "echo:B0")] {
            let length = socket.recv(&mut buffer).unwrap();
            assert_eq!(&buffer[..length], reply.as_bytes());
        }
    }

    #[test]
    fn only_forwarded_ports_are_offered() {
        let forward = PortForward {
            protocol: Protocol::Udp,
            host_port: 40001,
            guest_port: 7001,
        };
        let host = host_side(vec![forward]);
        assert_eq!(host.host_port(Protocol::Udp, 7001), Some(40001));
        assert_eq!(host.host_port(Protocol::Tcp, 7001), None);
        let error = host.udp(7002).unwrap_err();
        assert!(error.contains("udp port 7002 is not forwarded"), "{error}");
        assert!(error.contains("udp_ports"), "{error}");
    }

    #[test]
    fn waiting_for_serial_output_says_what_was_missing() {
        let serial = SerialLog::new();
        let host = HostSide::new(serial.clone(), Vec::new());
        serial.append(b"net-test: two bindings ready\n");
        assert_eq!(host.wait_for("two bindings ready"), Ok(()));
        assert_eq!(
            host.shows_within("two bindings ready", Duration::ZERO),
            Ok(true)
        );
        assert_eq!(
            host.shows_within("all checks passed", Duration::from_millis(20)),
            Ok(false)
        );
        serial.end();
        let error = host.wait_for("all checks passed").unwrap_err();
        assert_eq!(
            error,
            "the guest's serial output ended without showing \"all checks passed\""
        );
        let error = host
            .shows_within("all checks passed", Duration::from_secs(10))
            .unwrap_err();
        assert!(error.contains("ended"), "{error}");
    }
}
