//! The servers `cargo xtask run` starts by default: the shell runs the boot file system's
//! `etc/rc`, which starts `httpd`, `tcp-echo` and `udp-echo` in the background, and QEMU
//! forwards fixed host ports on 127.0.0.1 to them.
//!
//! This module owns that layout — the rc file, the archive holding it, the forwards and
//! the lines `run` prints about them — so that `run` and the scenario testing it
//! (`net-run-servers`) cannot drift apart. It never starts QEMU. The test scenarios boot
//! the plain archive, without the rc file, unless they ask for this one.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::PathBuf;

use crate::qemu::{PortForward, Protocol};
use crate::{artifacts, workspace};

/// The shell that runs `etc/rc` when it is the first program.
pub const SHELL: &str = "sh";
/// The rc file's name in the boot file system; the file server puts it at `/etc/rc`.
const RC_FILE: &str = "etc/rc";

/// The guest port `httpd` listens on unless told otherwise.
pub const HTTP_GUEST_PORT: u16 = 80;
/// The guest port `tcp-echo` and `udp-echo` listen on unless told otherwise.
pub const ECHO_GUEST_PORT: u16 = 7;
/// `tcp-discard`'s port, and the Linux guest's discard server's (RFC 863).
pub const DISCARD_GUEST_PORT: u16 = 9;
/// The host ports forwarded to them unless `--http-port` or `--echo-port` say otherwise.
pub const DEFAULT_HTTP_HOST_PORT: u16 = 8080;
pub const DEFAULT_ECHO_HOST_PORT: u16 = 7007;

/// One server the rc file starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Server {
    /// What `run` calls it in the lines it prints.
    pub label: &'static str,
    /// Its program, started with no arguments, so on its default port.
    pub program: &'static str,
    pub protocol: Protocol,
    pub guest_port: u16,
    /// Which of the host ports is forwarded to it.
    pub host_port: HostPortKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostPortKind {
    Http,
    Echo,
}

/// The servers, in the order the rc file starts them.
pub const SERVERS: [Server; 3] = [
    Server {
        label: "http",
        program: "httpd",
        protocol: Protocol::Tcp,
        guest_port: HTTP_GUEST_PORT,
        host_port: HostPortKind::Http,
    },
    Server {
        label: "tcp echo",
        program: "tcp-echo",
        protocol: Protocol::Tcp,
        guest_port: ECHO_GUEST_PORT,
        host_port: HostPortKind::Echo,
    },
    Server {
        label: "udp echo",
        program: "udp-echo",
        protocol: Protocol::Udp,
        guest_port: ECHO_GUEST_PORT,
        host_port: HostPortKind::Echo,
    },
];

/// The host ports `run` forwards to the servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostPorts {
    pub http: u16,
    /// For both echo servers: one TCP port and one UDP port with this number.
    pub echo: u16,
}

impl Default for HostPorts {
    fn default() -> Self {
        HostPorts {
            http: DEFAULT_HTTP_HOST_PORT,
            echo: DEFAULT_ECHO_HOST_PORT,
        }
    }
}

impl HostPorts {
    fn port(&self, kind: HostPortKind) -> u16 {
        match kind {
            HostPortKind::Http => self.http,
            HostPortKind::Echo => self.echo,
        }
    }

    /// One forward per server.
    pub fn forwards(&self) -> Vec<PortForward> {
        SERVERS
            .iter()
            .map(|server| PortForward {
                protocol: server.protocol,
                host_port: self.port(server.host_port),
                guest_port: server.guest_port,
            })
            .collect()
    }

    /// What `run` prints about each server: where to reach it from this machine.
    pub fn describe(&self) -> Vec<String> {
        SERVERS
            .iter()
            .map(|server| {
                let port = self.port(server.host_port);
                let reach = match server.host_port {
                    HostPortKind::Http => format!("curl http://127.0.0.1:{port}/"),
                    HostPortKind::Echo => format!("127.0.0.1:{port} ({})", server.protocol),
                };
                format!(
                    "{:<11}{reach:<30}-> {}, guest port {}",
                    format!("{}:", server.label),
                    server.program,
                    server.guest_port
                )
            })
            .collect()
    }

    /// Checks that every host port can still be bound, so a port another program holds is
    /// reported as such before QEMU starts (QEMU would stop with its own message).
    pub fn check_free(&self) -> Result<(), String> {
        for server in &SERVERS {
            let port = self.port(server.host_port);
            let local = (Ipv4Addr::LOCALHOST, port);
            let bound = match server.protocol {
                Protocol::Tcp => TcpListener::bind(local).map(drop),
                Protocol::Udp => UdpSocket::bind(local).map(drop),
            };
            if let Err(error) = bound {
                let option = match server.host_port {
                    HostPortKind::Http => "--http-port",
                    HostPortKind::Echo => "--echo-port",
                };
                return Err(format!(
                    "host port 127.0.0.1:{port} ({}, for {}) cannot be used: {error}; choose \
                     another with {option} N, or start no servers with --no-servers",
                    server.protocol, server.program
                ));
            }
        }
        Ok(())
    }
}

/// The rc file: the address from QEMU's DHCP server (the shell claims it when it starts
/// the first server), then one line per server, each started in the background.
pub fn rc_file() -> String {
    let servers: String = SERVERS
        .iter()
        .map(|server| format!("{} &\n", server.program))
        .collect();
    format!("export NET_CONFIG=dhcp\n{servers}")
}

/// Where the archive with the rc file is written, beside the plain one.
pub fn bootfs() -> PathBuf {
    workspace::root().join("target/user/bootfs-servers.img")
}

/// Packs the boot file system (built programs and files) with the rc file; returns its
/// path.
pub fn pack_bootfs() -> Result<PathBuf, String> {
    let rc = (RC_FILE.to_string(), rc_file().into_bytes());
    artifacts::pack_bootfs_with(&[rc], &bootfs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rc_file_starts_each_server_in_the_background() {
        assert_eq!(
            rc_file(),
            "export NET_CONFIG=dhcp\nhttpd &\ntcp-echo &\nudp-echo &\n"
        );
    }

    #[test]
    fn the_servers_and_the_shell_are_user_programs() {
        let programs = artifacts::user_program_names();
        for program in SERVERS.iter().map(|server| server.program).chain([SHELL]) {
            assert!(programs.iter().any(|name| name == program), "{program}");
        }
    }

    #[test]
    fn each_server_gets_its_forward_and_a_line() {
        let ports = HostPorts {
            http: 8081,
            echo: 7008,
        };
        let forwards: Vec<(Protocol, u16, u16)> = ports
            .forwards()
            .iter()
            .map(|forward| (forward.protocol, forward.host_port, forward.guest_port))
            .collect();
        assert_eq!(
            forwards,
            [
                (Protocol::Tcp, 8081, 80),
                (Protocol::Tcp, 7008, 7),
                (Protocol::Udp, 7008, 7)
            ]
        );
        assert_eq!(
            HostPorts::default().describe(),
            [
                "http:      curl http://127.0.0.1:8080/   -> httpd, guest port 80",
                "tcp echo:  127.0.0.1:7007 (tcp)          -> tcp-echo, guest port 7",
                "udp echo:  127.0.0.1:7007 (udp)          -> udp-echo, guest port 7",
            ]
        );
    }

    #[test]
    fn a_taken_host_port_is_named_with_the_option_that_moves_it() {
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let free = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let free_port = free.local_addr().unwrap().port();
        drop(free);
        let ports = HostPorts {
            http: port,
            echo: free_port,
        };
        let error = ports.check_free().unwrap_err();
        assert!(
            error.starts_with(&format!(
                "host port 127.0.0.1:{port} (tcp, for httpd) cannot be used: "
            )),
            "{error}"
        );
        assert!(
            error.ends_with(
                "choose another with --http-port N, or start no servers with --no-servers"
            ),
            "{error}"
        );
    }
}
