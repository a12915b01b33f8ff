//! [`HostSide`]: what a networked scenario's host function works with while the guest runs
//! — the guest's serial console (its output as it streams, and its input unless the
//! scenario types its own), sockets to the guest's forwarded ports, a socket that puts raw
//! frames on the guest's network, and notes for the test report.
//!
//! Nothing here waits without an end: a wait for serial output ends when the output does
//! (the guest's timeout kills QEMU), a TCP connection is given [`CONNECT_TIMEOUT`], and a
//! host function that receives on a socket sets its own deadline. This module judges
//! nothing; the host function decides.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::ChildStdin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::guest::{Console, HostFunction};
use crate::qemu::{FrameInjection, PortForward, Protocol, QemuConfig, TapBackend, forwarded_port};
use crate::serial_log::{SerialLog, WaitFailure};

/// A networked scenario's host function: run on a host thread while the guest runs; its
/// `Err` fails the scenario.
pub type ScenarioHostFunction = fn(&HostSide) -> Result<(), String>;

/// How long a TCP connection to a forwarded port may take. QEMU accepts on the host port
/// itself and connects to the guest afterwards, so this bounds only the host's half.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a scenario's host function is handed.
#[derive(Debug)]
pub struct HostSide {
    serial: SerialLog,
    /// The console's input, while the host function still has it.
    console_input: Mutex<Option<ChildStdin>>,
    forwards: Vec<PortForward>,
    frame_injection: Option<FrameInjection>,
    tap: Option<TapBackend>,
    notes: HostNotes,
}

/// Lines a host function leaves for the test report (a throughput, say), shown under the
/// scenario's verdict line whether it passed or not.
#[derive(Clone, Debug, Default)]
pub struct HostNotes(Arc<Mutex<Vec<String>>>);

impl HostNotes {
    fn push(&self, note: String) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(note);
    }

    /// The notes so far, in the order they were written.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Wraps a scenario's host function for [`guest::run_unattended_with_host`], which hands
/// it the serial console; the sockets it offers follow `config`'s port forwards and frame
/// injection. The notes it leaves come back through the [`HostNotes`].
///
/// [`guest::run_unattended_with_host`]: crate::guest::run_unattended_with_host
pub fn on_host_thread(
    function: impl FnOnce(&HostSide) -> Result<(), String> + Send + 'static,
    config: &QemuConfig,
) -> (HostFunction, HostNotes) {
    let notes = HostNotes::default();
    let forwards = config.port_forwards.clone();
    let frame_injection = config.frame_injection;
    let tap = config.tap.clone();
    let their_notes = notes.clone();
    let host_function: HostFunction = Box::new(move |console: Console| {
        function(&HostSide {
            serial: console.output,
            console_input: Mutex::new(console.input),
            forwards,
            frame_injection,
            tap,
            notes: their_notes,
        })
    });
    (host_function, notes)
}

impl HostSide {
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

    /// Waits (as [`wait_for`](Self::wait_for) does) for a whole line of serial output
    /// containing `text`, and returns it.
    pub fn serial_line(&self, text: &str) -> Result<String, String> {
        self.serial
            .wait_for_line(text, None)
            .map_err(|_| Self::ended_without(text))
    }

    /// The guest's serial output so far.
    pub fn serial_so_far(&self) -> String {
        self.serial.text()
    }

    fn ended_without(text: &str) -> String {
        format!("the guest's serial output ended without showing {text:?}")
    }

    /// Types `text` into the guest's serial console; [`END_OF_INPUT`] in it is Ctrl-D, the
    /// end of input for a program on exo.
    ///
    /// [`END_OF_INPUT`]: crate::qemu::END_OF_INPUT
    pub fn type_into_console(&self, text: &[u8]) -> Result<(), String> {
        let mut input = self
            .console_input
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(input) = input.as_mut() else {
            return Err(
                "the console's input is the scenario's serial_input, not the host \
                        function's"
                    .to_string(),
            );
        };
        input
            .write_all(text)
            .and_then(|()| input.flush())
            .map_err(|error| format!("typing into the guest's console: {error}"))
    }

    /// Leaves `note` for the test report.
    pub fn note(&self, note: String) {
        self.notes.push(note);
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

    /// A new TCP connection to the host port forwarded to `guest_port`, without read or
    /// write timeouts (whoever uses it sets them). QEMU accepts it before it has reached
    /// the guest: a guest that refuses shows as the connection closing at once.
    pub fn tcp(&self, guest_port: u16) -> Result<TcpStream, String> {
        let address = self.address(Protocol::Tcp, guest_port)?;
        TcpStream::connect_timeout(&address, CONNECT_TIMEOUT).map_err(|error| {
            format!(
                "TCP to guest port {guest_port} (host port {}): {error}",
                address.port()
            )
        })
    }

    /// The address on 127.0.0.1 forwarded to guest `protocol` port `guest_port`.
    pub fn address(&self, protocol: Protocol, guest_port: u16) -> Result<SocketAddr, String> {
        let host_port = self.forwarded(protocol, guest_port)?;
        Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, host_port)))
    }

    /// A UDP socket whose every datagram QEMU puts on the guest's network as one raw
    /// Ethernet frame; it also receives a copy of every frame on that network.
    pub fn frame_injector(&self) -> Result<UdpSocket, String> {
        let Some(injection) = self.frame_injection else {
            return Err("the scenario injects no frames: set its inject_frames".to_string());
        };
        let context = |error| {
            format!(
                "the frame injection socket (host port {}, QEMU's {}): {error}",
                injection.host_port, injection.qemu_port
            )
        };
        let socket =
            UdpSocket::bind((Ipv4Addr::LOCALHOST, injection.host_port)).map_err(context)?;
        socket
            .connect((Ipv4Addr::LOCALHOST, injection.qemu_port))
            .map_err(context)?;
        Ok(socket)
    }

    /// The tap the guest's card is on (see [`tap_network`](crate::host::tap_network)).
    pub fn tap(&self) -> Result<&TapBackend, String> {
        self.tap
            .as_ref()
            .ok_or_else(|| "the scenario has no tap: set its network's tap".to_string())
    }

    fn forwarded(&self, protocol: Protocol, guest_port: u16) -> Result<u16, String> {
        forwarded_port(&self.forwards, protocol, guest_port).ok_or_else(|| {
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
        host_side_with(SerialLog::new(), forwards)
    }

    fn host_side_with(serial: SerialLog, forwards: Vec<PortForward>) -> HostSide {
        HostSide {
            serial,
            console_input: Mutex::new(None),
            forwards,
            frame_injection: None,
            tap: None,
            notes: HostNotes::default(),
        }
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
        assert_eq!(
            forwarded_port(&host.forwards, Protocol::Udp, 7001),
            Some(40001)
        );
        assert_eq!(forwarded_port(&host.forwards, Protocol::Tcp, 7001), None);
        let error = host.udp(7002).unwrap_err();
        assert!(error.contains("udp port 7002 is not forwarded"), "{error}");
        assert!(error.contains("udp_ports"), "{error}");
    }

    #[test]
    fn tcp_reaches_the_forwarded_port() {
        let guest = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let forward = PortForward {
            protocol: Protocol::Tcp,
            host_port: guest.local_addr().unwrap().port(),
            guest_port: 80,
        };
        let host = host_side(vec![forward]);
        let stream = host.tcp(80).unwrap();
        let (accepted, _) = guest.accept().unwrap();
        assert_eq!(accepted.peer_addr().unwrap(), stream.local_addr().unwrap());
        let error = host.tcp(7).unwrap_err();
        assert!(error.contains("tcp port 7 is not forwarded"), "{error}");
    }

    #[test]
    fn injected_frames_go_to_qemus_port_from_the_hosts() {
        let qemu = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let host_port = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut host = host_side(Vec::new());
        let error = host.frame_injector().unwrap_err();
        assert_eq!(
            error,
            "the scenario injects no frames: set its inject_frames"
        );
        host.frame_injection = Some(FrameInjection {
            qemu_port: qemu.local_addr().unwrap().port(),
            host_port,
        });
        let injector = host.frame_injector().unwrap();
        injector.send(b"\x52\x54\x00\x12\x34\x56 frame").unwrap();
        let mut buffer = [0u8; 64];
        let (length, from) = qemu.recv_from(&mut buffer).unwrap();
        assert_eq!(&buffer[..length], b"\x52\x54\x00\x12\x34\x56 frame");
        assert_eq!(from.port(), host_port);
    }

    #[test]
    fn the_host_function_types_into_the_console_and_leaves_notes() {
        // `cat` stands in for QEMU: what is typed comes back as its output.
        let mut console = std::process::Command::new("cat")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let config = QemuConfig::new(std::path::Path::new("/k/exo-kernel"), "log=info");
        let (function, notes) = on_host_thread(
            |host| {
                host.note("typed one line".to_string());
                host.type_into_console(b"poweroff\n")?;
                host.type_into_console(&[crate::qemu::END_OF_INPUT])
            },
            &config,
        );
        let result = function(Console {
            output: SerialLog::new(),
            input: console.stdin.take(),
        });
        assert_eq!(result, Ok(()));
        assert_eq!(notes.take(), ["typed one line"]);
        assert!(notes.take().is_empty(), "taken once");
        let output = console.wait_with_output().unwrap();
        assert_eq!(
            output.stdout, b"poweroff\n\x04",
            "the input ended with the function"
        );

        let host = host_side(Vec::new());
        let error = host.type_into_console(b"ls\n").unwrap_err();
        assert!(error.contains("serial_input"), "{error}");
    }

    #[test]
    fn waiting_for_serial_output_says_what_was_missing() {
        let serial = SerialLog::new();
        let host = host_side_with(serial.clone(), Vec::new());
        serial.append(b"net-test: two bindings ready\n");
        assert_eq!(host.wait_for("two bindings ready"), Ok(()));
        assert_eq!(
            host.serial_line("two bindings").as_deref(),
            Ok("net-test: two bindings ready")
        );
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
