//! [`HostSide`]: what a networked scenario's host function works with while the guest runs
//! — the guest's serial output as it streams, and sockets to the guest's forwarded ports.
//!
//! Every socket has a timeout, so a guest that never answers fails the host function
//! instead of hanging it. This module judges nothing; the host function decides.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use crate::guest::HostFunction;
use crate::qemu::{PortForward, Protocol};
use crate::serial_log::{SerialLog, WaitFailure};

/// How long a socket waits for the guest before an operation fails (a host function may
/// change it on a socket it holds).
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A networked scenario's host function: run on a host thread while the guest runs; its
/// `Err` fails the scenario.
pub type ScenarioHostFunction = fn(&mut HostSide) -> Result<(), String>;

/// What a scenario's host function is handed.
#[derive(Debug)]
pub struct HostSide {
    serial: SerialLog,
    forwards: Vec<PortForward>,
    /// One socket per guest UDP port, made on first use and kept.
    udp_sockets: HashMap<u16, UdpSocket>,
}

/// Wraps a scenario's host function for [`guest::run_unattended_with_host`], which hands
/// it the serial output; `forwards` are the run's port forwards.
///
/// [`guest::run_unattended_with_host`]: crate::guest::run_unattended_with_host
pub fn on_host_thread(function: ScenarioHostFunction, forwards: Vec<PortForward>) -> HostFunction {
    Box::new(move |serial| function(&mut HostSide::new(serial, forwards)))
}

impl HostSide {
    pub fn new(serial: SerialLog, forwards: Vec<PortForward>) -> Self {
        HostSide {
            serial,
            forwards,
            udp_sockets: HashMap::new(),
        }
    }

    /// Waits until the guest's serial output so far contains `text`.
    pub fn wait_for(&mut self, text: &str, timeout: Duration) -> Result<(), String> {
        self.serial
            .wait_for(text, timeout)
            .map_err(|failure| match failure {
                WaitFailure::Ended => {
                    format!("the guest's serial output ended without showing {text:?}")
                }
                WaitFailure::TimedOut => format!(
                    "the guest's serial output did not show {text:?} within {} s",
                    timeout.as_secs_f64()
                ),
            })
    }

    /// The host port on 127.0.0.1 forwarded to `guest_port`, if the scenario forwards it.
    pub fn host_port(&self, protocol: Protocol, guest_port: u16) -> Option<u16> {
        self.forwards
            .iter()
            .find(|forward| forward.protocol == protocol && forward.guest_port == guest_port)
            .map(|forward| forward.host_port)
    }

    /// A UDP socket on 127.0.0.1 connected to the host port forwarded to `guest_port`
    /// (so it receives only from there), with a read timeout of [`IO_TIMEOUT`]. Made on
    /// first use; later calls return the same socket.
    pub fn udp(&mut self, guest_port: u16) -> Result<&UdpSocket, String> {
        let host_port = self.forwarded(Protocol::Udp, guest_port)?;
        match self.udp_sockets.entry(guest_port) {
            Entry::Occupied(socket) => Ok(socket.into_mut()),
            Entry::Vacant(slot) => Ok(slot.insert(connected_udp_socket(host_port, guest_port)?)),
        }
    }

    /// A new TCP connection to the host port forwarded to `guest_port`, with read and write
    /// timeouts of [`IO_TIMEOUT`]. QEMU accepts it on the host before the guest has; a
    /// guest that is not listening shows as the connection closing.
    #[allow(
        dead_code,
        reason = "for the TCP scenarios to come; the unit tests below use it"
    )]
    pub fn tcp_connect(&self, guest_port: u16) -> Result<TcpStream, String> {
        let host_port = self.forwarded(Protocol::Tcp, guest_port)?;
        let context =
            |error| format!("TCP to guest port {guest_port} (host port {host_port}): {error}");
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, host_port));
        let stream = TcpStream::connect_timeout(&address, IO_TIMEOUT).map_err(context)?;
        stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(context)?;
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .map_err(context)?;
        Ok(stream)
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

fn connected_udp_socket(host_port: u16, guest_port: u16) -> Result<UdpSocket, String> {
    let context =
        |error| format!("UDP to guest port {guest_port} (host port {host_port}): {error}");
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(context)?;
    socket
        .connect((Ipv4Addr::LOCALHOST, host_port))
        .map_err(context)?;
    socket.set_read_timeout(Some(IO_TIMEOUT)).map_err(context)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// A host side whose "guest" ports are sockets bound here, standing in for QEMU's
    /// forwards.
    fn host_side(forwards: Vec<PortForward>) -> HostSide {
        HostSide::new(SerialLog::new(), forwards)
    }

    #[test]
    fn udp_reaches_the_forwarded_port_and_the_socket_is_kept() {
        let guest = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let forward = PortForward {
            protocol: Protocol::Udp,
            host_port: guest.local_addr().unwrap().port(),
            guest_port: 7001,
        };
        let mut host = host_side(vec![forward]);
        let first_address = {
            let socket = host.udp(7001).unwrap();
            socket.send(b"A0").unwrap();
            socket.local_addr().unwrap()
        };
        let mut buffer = [0u8; 16];
        let (length, from) = guest.recv_from(&mut buffer).unwrap();
        assert_eq!((&buffer[..length], from), (&b"A0"[..], first_address));
        guest.send_to(b"echo:A0", from).unwrap();
        let socket = host.udp(7001).unwrap();
        assert_eq!(socket.local_addr().unwrap(), first_address);
        let length = socket.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..length], b"echo:A0");
        assert_eq!(socket.read_timeout().unwrap(), Some(IO_TIMEOUT));
    }

    #[test]
    fn only_forwarded_ports_are_offered() {
        let forward = PortForward {
            protocol: Protocol::Udp,
            host_port: 40001,
            guest_port: 7001,
        };
        let mut host = host_side(vec![forward]);
        assert_eq!(host.host_port(Protocol::Udp, 7001), Some(40001));
        assert_eq!(host.host_port(Protocol::Tcp, 7001), None);
        let error = host.udp(7002).unwrap_err();
        assert!(error.contains("udp port 7002 is not forwarded"), "{error}");
        let error = host.tcp_connect(7001).unwrap_err();
        assert!(error.contains("tcp_ports"), "{error}");
    }

    #[test]
    fn tcp_connects_to_the_forwarded_port() {
        let guest = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let forward = PortForward {
            protocol: Protocol::Tcp,
            host_port: guest.local_addr().unwrap().port(),
            guest_port: 80,
        };
        let mut stream = host_side(vec![forward]).tcp_connect(80).unwrap();
        stream.write_all(b"GET").unwrap();
        let mut accepted = guest.accept().unwrap().0;
        let mut request = [0u8; 3];
        accepted.read_exact(&mut request).unwrap();
        assert_eq!(&request, b"GET");
    }

    #[test]
    fn waiting_for_serial_output_says_what_was_missing() {
        let serial = SerialLog::new();
        let mut host = HostSide::new(serial.clone(), Vec::new());
        serial.append(b"net-test: two bindings ready\n");
        assert_eq!(
            host.wait_for("two bindings ready", Duration::from_secs(1)),
            Ok(())
        );
        let error = host
            .wait_for("all checks passed", Duration::from_millis(20))
            .unwrap_err();
        assert!(error.contains("\"all checks passed\" within"), "{error}");
        serial.end();
        let error = host
            .wait_for("all checks passed", Duration::from_secs(10))
            .unwrap_err();
        assert!(error.contains("ended"), "{error}");
    }
}
