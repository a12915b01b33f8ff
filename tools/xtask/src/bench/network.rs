//! The network half of `cargo xtask bench`: one load from the host (`exo_loadgen`) —
//! UDP echo round trips, TCP request/response on one connection, a TCP bulk stream into
//! a discard server — driven the same way against exo's servers on each data path and
//! against the Linux guest's.
//!
//! On exo the shell runs the servers one after another in the foreground, each with `-n`
//! so that it exits when its load is done and prints its `stack:` line: its frames, its
//! data-path system calls, and the kernel entries since its stack started. Since only
//! that server was busy meanwhile, those counts divided by its frames are the per-packet
//! figures. The Linux guest's servers give no such counts.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use exo_loadgen::{
    BulkOptions, BulkReport, RequestResponseOptions, RequestResponseReport, UdpEchoOptions,
    UdpEchoReport,
};

use crate::bench::report::PerPacket;
use crate::guest;
use crate::host::kernel_network;
use crate::host::server_clients::{
    DISCARD_PORT, ECHO_PORT, StackCounts, TCP_DISCARD_READY, TCP_DISCARD_STACK, TCP_ECHO_READY,
    TCP_ECHO_STACK, UDP_ECHO_READY, UDP_ECHO_STACK, finish_udp_echo,
};
use crate::host::side::{self, HostSide};
use crate::network_setup;
use crate::qemu::{Accelerator, END_OF_INPUT, PortForward, Protocol, QemuConfig, forwarded_port};
use crate::{artifacts, servers};

/// The UDP round trip's floor program.
const REFLECTOR: &str = "udp-reflector";
const SINK: &str = "tcp-sink";
/// The guest ports every server set listens on, both systems alike.
pub const UDP_PORTS: [u16; 1] = [ECHO_PORT];
pub const TCP_PORTS: [u16; 2] = [ECHO_PORT, DISCARD_PORT];
/// How long one boot with its whole load may take (TCG, a busy host).
const BOOT_LIMIT: Duration = Duration::from_secs(900);

/// The load, the same for every system.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub udp: UdpEchoOptions,
    pub request_response: RequestResponseOptions,
    pub bulk: BulkOptions,
}

impl Load {
    /// Enough samples for a stable p99 under TCG, in a few minutes for all systems.
    pub fn standard() -> Self {
        Load {
            udp: UdpEchoOptions {
                count: 2000,
                warmup: 100,
                ..UdpEchoOptions::default()
            },
            request_response: RequestResponseOptions {
                count: 2000,
                warmup: 100,
                ..RequestResponseOptions::default()
            },
            bulk: BulkOptions {
                bytes: 64 << 20,
                ..BulkOptions::default()
            },
        }
    }

    /// A quick look (`--quick`): the same shapes, a tenth of the work.
    pub fn quick() -> Self {
        let mut load = Self::standard();
        load.udp.count /= 10;
        load.request_response.count /= 10;
        load.bulk.bytes /= 10;
        load
    }

    /// Datagrams udp-echo must echo before it exits: all the load sends.
    fn udp_datagrams(&self) -> u64 {
        u64::from(self.udp.count + self.udp.warmup)
    }
}

/// What one system did under the load.
#[derive(Clone, Debug)]
pub struct NetworkFigures {
    pub udp: UdpEchoReport,
    pub request_response: RequestResponseReport,
    pub bulk: BulkReport,
    /// exo only: each server's per-packet counts (UDP echo, TCP echo, TCP discard).
    pub per_packet: Option<[PerPacket; 3]>,
}

/// exo's data path, as `NET_PATH` and `NET_FLUSH` name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataPath {
    /// The rings, kicked after each poll that wrote frames (the default).
    Rings,
    /// The rings, written frames left for the kernel's next entry
    /// (`NET_FLUSH=entry`): no system call per packet, and the answer waits
    /// for the rest of the server's event loop.
    RingsAtNextEntry,
    SystemCalls,
}

impl DataPath {
    pub const ALL: [DataPath; 3] = [
        DataPath::Rings,
        DataPath::RingsAtNextEntry,
        DataPath::SystemCalls,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            DataPath::Rings => "rings",
            DataPath::RingsAtNextEntry => "rings, sent at the next entry",
            DataPath::SystemCalls => "system calls",
        }
    }
}

/// The shell's script for one exo boot: the servers in turn, each exiting after its load.
fn exo_script(path: DataPath, load: &Load) -> String {
    let path = match path {
        DataPath::Rings => "",
        DataPath::RingsAtNextEntry => "export NET_FLUSH=entry\n",
        DataPath::SystemCalls => "export NET_PATH=syscalls\n",
    };
    format!(
        "{path}udp-echo -n {}\ntcp-echo -n 1\ntcp-discard -n 1\npoweroff\n",
        load.udp_datagrams()
    )
}

/// Free host ports forwarded to the servers' guest ports.
pub fn forwards() -> Result<Vec<PortForward>, String> {
    network_setup::free_forwards(&UDP_PORTS, &TCP_PORTS)
}

/// The host address forwarded to guest `protocol` port `port`.
fn address(forwards: &[PortForward], protocol: Protocol, port: u16) -> Result<SocketAddr, String> {
    forwarded_port(forwards, protocol, port)
        .map(|host_port| SocketAddr::from(([127, 0, 0, 1], host_port)))
        .ok_or_else(|| format!("no forward to guest {protocol} port {port}"))
}

/// Boots exo with `kernel`, runs the load against its servers on `path`, and reads their
/// counts.
pub fn on_exo(
    kernel: &Path,
    path: DataPath,
    accelerator: Accelerator,
    load: Load,
) -> Result<NetworkFigures, String> {
    let mut config = QemuConfig::new(kernel, "log=warn");
    config.boot_module = Some(artifacts::bootfs());
    config.first_program = Some(servers::SHELL.to_string());
    config.accelerator = accelerator;
    config.serial_input = Some(exo_script(path, &load));
    config.port_forwards = forwards()?;
    let result = Arc::new(Mutex::new(None));
    let theirs = Arc::clone(&result);
    let (host, _notes) = side::on_host_thread(
        move |host: &HostSide| {
            let figures = drive_exo(host, &load)?;
            *theirs.lock().unwrap_or_else(PoisonError::into_inner) = Some(figures);
            Ok(())
        },
        &config,
    );
    let run = guest::run_unattended_with_host(&config, BOOT_LIMIT, Some(host))?;
    if let Some(failure) = run.host_failure {
        return Err(format!("exo ({}): {failure}", path.describe()));
    }
    let figures = result.lock().unwrap_or_else(PoisonError::into_inner).take();
    figures.ok_or_else(|| format!("exo ({}): {}", path.describe(), run.ending))
}

/// The floor of the UDP round trip on exo: the same UDP load as the echo servers get,
/// against `udp-reflector`, which sends each datagram straight back from ring to ring with
/// no stack (`userapps/src/bin/udp-reflector.rs`), after it has made `idle_bindings` bindings
/// that carry nothing.
pub fn on_reflector(
    kernel: &Path,
    accelerator: Accelerator,
    load: Load,
    idle_bindings: u64,
) -> Result<UdpEchoReport, String> {
    let command_line = format!("log=warn init_argument={idle_bindings}");
    on_floor_program(kernel, &command_line, REFLECTOR, accelerator, move |host| {
        host.wait_for(kernel_network::REFLECTOR_READY)?;
        let address = host.address(Protocol::Udp, kernel_network::REFLECTOR_PORT)?;
        let udp = exo_loadgen::udp_echo(address, load.udp)
            .map_err(|error| format!("UDP reflector: {error}"));
        // Ends the reflector, whatever the load gave.
        host.type_into_console(&[END_OF_INPUT])?;
        udp
    })
}

/// The floor of TCP bulk on exo: the same stream as `tcp-discard` gets, into `tcp-sink`,
/// which answers the handshake and acknowledges straight from its receive ring with no
/// stack and no copy (`userapps/src/bin/tcp-sink.rs`).
pub fn on_tcp_sink(
    kernel: &Path,
    accelerator: Accelerator,
    load: Load,
) -> Result<BulkReport, String> {
    on_floor_program(kernel, "log=warn", SINK, accelerator, move |host| {
        kernel_network::stream_into_sink(host, load.bulk)
    })
}

/// Boots exo with `program` as its first program and runs `drive` against it from the
/// host; returns what `drive` measured.
fn on_floor_program<T: Send + 'static>(
    kernel: &Path,
    command_line: &str,
    program: &str,
    accelerator: Accelerator,
    drive: impl FnOnce(&HostSide) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let mut config = QemuConfig::new(kernel, command_line);
    config.boot_module = Some(artifacts::bootfs());
    config.first_program = Some(program.to_string());
    config.accelerator = accelerator;
    config.port_forwards = forwards()?;
    let result = Arc::new(Mutex::new(None));
    let theirs = Arc::clone(&result);
    let (host, _notes) = side::on_host_thread(
        move |host: &HostSide| {
            let measured = drive(host)?;
            *theirs.lock().unwrap_or_else(PoisonError::into_inner) = Some(measured);
            Ok(())
        },
        &config,
    );
    let run = guest::run_unattended_with_host(&config, BOOT_LIMIT, Some(host))?;
    if let Some(failure) = run.host_failure {
        return Err(format!("exo ({program}): {failure}"));
    }
    let measured = result.lock().unwrap_or_else(PoisonError::into_inner).take();
    measured.ok_or_else(|| format!("exo ({program}): {}", run.ending))
}

/// The load against exo's servers, each waited for in turn; then their counts.
fn drive_exo(host: &HostSide, load: &Load) -> Result<NetworkFigures, String> {
    host.wait_for(UDP_ECHO_READY)?;
    let udp = exo_loadgen::udp_echo(host.address(Protocol::Udp, ECHO_PORT)?, load.udp)
        .map_err(|error| format!("UDP echo: {error}"))?;
    // Lost datagrams leave udp-echo short of its count: send more until it exits.
    finish_udp_echo(host, &host.udp(ECHO_PORT)?, load.udp_datagrams() as usize)?;
    let udp_counts = StackCounts::parse(&host.serial_line(UDP_ECHO_STACK)?)?;
    host.wait_for(TCP_ECHO_READY)?;
    let request_response = exo_loadgen::tcp_request_response(
        host.address(Protocol::Tcp, ECHO_PORT)?,
        load.request_response,
    )
    .map_err(|error| format!("TCP request/response: {error}"))?;
    let echo_counts = StackCounts::parse(&host.serial_line(TCP_ECHO_STACK)?)?;
    host.wait_for(TCP_DISCARD_READY)?;
    let bulk = exo_loadgen::tcp_bulk(host.address(Protocol::Tcp, DISCARD_PORT)?, load.bulk)
        .map_err(|error| format!("TCP bulk: {error}"))?;
    let discard_counts = StackCounts::parse(&host.serial_line(TCP_DISCARD_STACK)?)?;
    Ok(NetworkFigures {
        udp,
        request_response,
        bulk,
        per_packet: Some([udp_counts, echo_counts, discard_counts].map(per_packet)),
    })
}

/// A server's counts per frame it handled, both ways.
fn per_packet(counts: StackCounts) -> PerPacket {
    let frames = (counts.frames_in + counts.frames_out).max(1) as f64;
    PerPacket {
        syscalls: Some(counts.system_calls as f64 / frames),
        kernel_entries: Some(counts.kernel_entries as f64 / frames),
    }
}

/// The load against servers reachable through `forwards` (the Linux guest's).
pub fn drive_plain(forwards: &[PortForward], load: &Load) -> Result<NetworkFigures, String> {
    let udp = exo_loadgen::udp_echo(address(forwards, Protocol::Udp, ECHO_PORT)?, load.udp)
        .map_err(|error| format!("UDP echo: {error}"))?;
    let request_response = exo_loadgen::tcp_request_response(
        address(forwards, Protocol::Tcp, ECHO_PORT)?,
        load.request_response,
    )
    .map_err(|error| format!("TCP request/response: {error}"))?;
    let bulk = exo_loadgen::tcp_bulk(address(forwards, Protocol::Tcp, DISCARD_PORT)?, load.bulk)
        .map_err(|error| format!("TCP bulk: {error}"))?;
    Ok(NetworkFigures {
        udp,
        request_response,
        bulk,
        per_packet: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_runs_each_server_once_on_the_path_asked() {
        let load = Load::quick();
        let rings = exo_script(DataPath::Rings, &load);
        assert!(!rings.contains("NET_PATH") && !rings.contains("NET_FLUSH"));
        assert!(rings.contains(&format!("udp-echo -n {}\n", load.udp_datagrams())));
        assert!(rings.contains("tcp-echo -n 1\ntcp-discard -n 1\npoweroff\n"));
        let calls = exo_script(DataPath::SystemCalls, &load);
        assert!(calls.starts_with("export NET_PATH=syscalls\n"));
        let lazy = exo_script(DataPath::RingsAtNextEntry, &load);
        assert!(lazy.starts_with("export NET_FLUSH=entry\n") && !lazy.contains("NET_PATH"));
    }

    #[test]
    fn per_packet_counts_divide_by_frames_both_ways() {
        let counts = StackCounts {
            frames_in: 300,
            frames_out: 100,
            malformed: 0,
            truncated: 0,
            bad_checksum: 0,
            bad_header: 0,
            system_calls: 4,
            half_open_dropped: 0,
            kernel_entries: 1000,
        };
        let figures = per_packet(counts);
        assert_eq!(figures.syscalls, Some(0.01));
        assert_eq!(figures.kernel_entries, Some(2.5));
    }
}
