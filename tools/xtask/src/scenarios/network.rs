//! Networking (docs/05 and docs/06): the network card shared between environments by the
//! kernel's demultiplexer, the sockets API inside the guest, and the library OS's servers
//! against real Linux clients on the host. What each does on the host lives in
//! [`kernel_network`](crate::host::kernel_network) and
//! [`server_clients`](crate::host::server_clients).

use std::time::Duration;

use super::scenario::{
    DEFAULT, LONG_TIMEOUT, NetworkScenario, Program, SERVER_TIMEOUT, Scenario, built, built_list,
};
use crate::host::kernel_network;
use crate::host::server_clients::{
    self, BULK_BYTES, BULK_CONNECTIONS, CONCURRENT_CONNECTIONS, DISCARD_CONNECTIONS, DISCARD_PORT,
    ECHO_PORT, ECHO_TCP_CONNECTIONS, ECHO_UDP_COUNT, HTTP_PORT, HTTP_REQUESTS, HTTPD_READY,
    HTTPD_STACK, MALFORMED_TCP_CONNECTIONS, MALFORMED_UDP_COUNT, PING_ANSWERED, TCP_DISCARD_READY,
    TCP_DISCARD_STACK, TCP_ECHO_READY, TCP_ECHO_STACK, UDP_ECHO_READY, UDP_ECHO_STACK,
};
use crate::host::tap_clients::{self, TAP_TCP_CONNECTIONS, TAP_UDP_COUNT};
use crate::servers;

/// For net-bulk: its 100 MiB each way take seconds under TCG; a stall fails the host side
/// long before this (see `echo::STREAM_TIMEOUT`).
const BULK_TIMEOUT: Duration = Duration::from_secs(300);

/// The scenarios whose strings are all constants: the kernel's demultiplexer, the sockets
/// API, and `cargo xtask run`'s own layout.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "net-test",
        serial_must_show: &[kernel_network::TWO_BINDINGS_READY],
        checks: Some(28),
        network: Some(NetworkScenario {
            udp_ports: &kernel_network::TWO_BINDINGS_PORTS,
            host: Some(kernel_network::echo_on_two_bindings),
            // The last: the datagram net-test sends from 0.0.0.0:68, holding UDP 68 on
            // 255.255.255.255 (what a DHCP client does).
            capture_must_contain: &[b"echo:A0", b"echo:B0", b"no address yet"],
            // The payload of the frames net-test sends with a forged source: the kernel
            // must keep them off the wire.
            capture_must_not_contain: &[b"spoofed!"],
            ..NetworkScenario::DEFAULT
        }),
        ..DEFAULT
    },
    Scenario {
        name: "net-hostile",
        serial_must_show: &[kernel_network::HOSTILE_READY],
        checks: Some(2),
        network: Some(NetworkScenario {
            udp_ports: &[
                kernel_network::HOSTILE_ECHO_PORT,
                kernel_network::HOSTILE_CHILD_PORT,
            ],
            host: Some(kernel_network::echo_beside_a_hostile_neighbour),
            capture_must_contain: &[b"echo:H0", b"echo:H19"],
            // Every transmit slot the hostile child writes carries this.
            capture_must_not_contain: &[b"hostile!"],
            ..NetworkScenario::DEFAULT
        }),
        ..DEFAULT
    },
    Scenario {
        name: "net-steady",
        checks: Some(5),
        network: Some(NetworkScenario {
            udp_ports: &[kernel_network::STEADY_PORT],
            host: Some(kernel_network::datagrams_for_a_polling_receiver),
            capture_must_contain: &[b"steady state"],
            ..NetworkScenario::DEFAULT
        }),
        ..DEFAULT
    },
    // The sockets API inside the guest, needing no host program: refusals,
    // ports shared out between programs, a refused connection (QEMU's user
    // network resets it), and a thread waiting on the network asleep.
    Scenario {
        name: "net-sockets-test",
        checks: Some(6),
        network: Some(NetworkScenario::DEFAULT),
        ..DEFAULT
    },
    // `cargo xtask run`'s own layout: the shell starts the servers from its rc file; the
    // host function ends the console's input once it has reached each of them.
    Scenario {
        name: "net-run-servers",
        program: Program::Named(servers::SHELL),
        serial_must_show: &["all environments have ended"],
        timeout: SERVER_TIMEOUT,
        network: Some(NetworkScenario {
            udp_ports: &[servers::ECHO_GUEST_PORT],
            tcp_ports: &[servers::HTTP_GUEST_PORT, servers::ECHO_GUEST_PORT],
            host: Some(server_clients::servers_from_rc),
            run_layout: true,
            ..NetworkScenario::DEFAULT
        }),
        ..DEFAULT
    },
    // A person at `cargo xtask run`'s shell, with the rc file's servers up: Ctrl-C ends a
    // server in the foreground and the prompt comes back; the line editor's keys; every
    // program of /bin typed as a user would (the servers and `wget`, which need a host
    // peer, are the `net-` scenarios'), each judged by what it prints. Outputs go through
    // `wc` where the typed line would otherwise show the same words.
    Scenario {
        name: "shell-at-run",
        program: Program::Named(servers::SHELL),
        serial_input: Some(
            "tcp-echo -p 9000\n\x03echo after ctrl-c > /tmp/c\nwc /tmp/c\n\
             hello\n\
             echo hist >> /tmp/h\n\x1b[A\nwc /tmp/h\n\
             nosuch\x15echo erased > /tmp/u\nwc /tmp/u\n\
             echo one two\x17three > /tmp/w\nwc /tmp/w\n\
             echo ac\x1b[Db\x1b[F\x1bO5~ > /tmp/l\nwc /tmp/l\n\
             ls /tmp /www\n\
             head -1 /etc/rc | wc\n\
             cat /nope.txt\n\
             jobs\n\
             ps\n\
             primes\n\
             fs-test\n\
             spawn-test\n\
             argc a b\n\
             forktree | grep \"I am\" | wc\n\
             exec-test\n\
             cow-test\n\
             mmap-test\n\
             revoke-test\n\
             colour-test\n\
             threads-rr\n\
             threads-priority\n\
             condvar-test\n\
             custom-scheduler\n\
             hostile-fork\n\
             net-sockets-test\n\
             ping -c 2 10.0.2.2\n\
             grow\n\
             segv\n\
             fsd\n\
             sh\n\
             echo inner\n\
             \x04mkdir /tmp/d\n\
             mv /tmp/w /tmp/d/w\n\
             rm /tmp/d/w\n\
             printenv PWD\n\
             poweroff\n",
        ),
        serial_must_show: &[
            "$ tcp-echo -p 9000",
            "^C",
            "1 2 13",
            "hello: command not found",
            "2 2 10",
            "1 1 7",
            "1 2 10",
            "1 1 4",
            "/tmp:",
            "/www:",
            "index.html",
            "1 2 23",
            "cat: /nope.txt: No such file or directory",
            "3 httpd",
            "tcp-echo",
            "primes: all checks passed",
            "fs-test: all checks passed",
            "spawn-test: all checks passed",
            "$ argc a b",
            "15 60 244",
            "exec-test: all checks passed",
            "cow-test: all checks passed",
            "mmap-test: all checks passed",
            "revoke-test: all checks passed",
            "colour-test: all checks passed",
            "threads-rr: all checks passed",
            "threads-priority: all checks passed",
            "condvar-test: all checks passed",
            "custom-scheduler: all checks passed",
            "hostile-fork: all checks passed",
            "net-sockets-test: all checks passed",
            "ping: 2 sent, 2 received",
            "grow: stack grew",
            "segmentation fault",
            "fsd: the file server already runs",
            "$ echo inner",
            "inner",
            "$ printenv PWD",
            "/\r\n",
            "all environments have ended",
        ],
        serial_check: Some(no_second_failure_line),
        timeout: LONG_TIMEOUT.saturating_mul(2),
        network: Some(NetworkScenario {
            run_layout: true,
            ..NetworkScenario::DEFAULT
        }),
        ..DEFAULT
    },
];

/// The servers on the library OS, each with a smoltcp stack of its own, started by the
/// shell, against real Linux clients through the forwards. Each server exits after the `-n`
/// its host function counts on, printing its stack's statistics; the shell's `wait` then
/// lets the run end. The counts come from the host functions' own constants, so the two
/// cannot disagree.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "net-http",
            serial_input: Some(shell_starts("", &[("httpd", HTTP_REQUESTS)])),
            serial_must_show: built_list(vec![
                HTTPD_READY,
                built(format!("httpd: served {HTTP_REQUESTS} requests")),
                HTTPD_STACK,
            ]),
            network: Some(NetworkScenario {
                tcp_ports: &[HTTP_PORT],
                host: Some(server_clients::http_from_curl),
                ..NetworkScenario::DEFAULT
            }),
            ..DEFAULT_SERVER_SCENARIO
        },
        Scenario {
            name: "net-echo",
            // ping first, alone on the address (net-run-servers pings beside the servers).
            serial_input: Some(shell_starts(
                "ping -c 3 10.0.2.2\n",
                &[
                    ("udp-echo", ECHO_UDP_COUNT),
                    ("tcp-echo", ECHO_TCP_CONNECTIONS),
                ],
            )),
            // The servers' lines interleave in any order: udp-echo's are checked here, in
            // order; tcp-echo's by the host function.
            serial_must_show: built_list(vec![
                PING_ANSWERED,
                UDP_ECHO_READY,
                built(format!("udp-echo: echoed {ECHO_UDP_COUNT} datagrams")),
                UDP_ECHO_STACK,
            ]),
            network: Some(NetworkScenario {
                udp_ports: &[ECHO_PORT],
                tcp_ports: &[ECHO_PORT],
                host: Some(server_clients::echo_over_udp_and_tcp),
                ..NetworkScenario::DEFAULT
            }),
            ..DEFAULT_SERVER_SCENARIO
        },
        Scenario {
            name: "net-concurrent",
            serial_input: Some(shell_starts("", &[("tcp-echo", CONCURRENT_CONNECTIONS)])),
            serial_must_show: built_list(vec![
                TCP_ECHO_READY,
                built(format!(
                    "tcp-echo: served {CONCURRENT_CONNECTIONS} connections"
                )),
                TCP_ECHO_STACK,
            ]),
            network: Some(NetworkScenario {
                tcp_ports: &[ECHO_PORT],
                host: Some(server_clients::many_connections_at_once),
                ..NetworkScenario::DEFAULT
            }),
            ..DEFAULT_SERVER_SCENARIO
        },
        Scenario {
            name: "net-bulk",
            serial_input: Some(shell_starts("", &[("tcp-echo", BULK_CONNECTIONS)])),
            serial_must_show: built_list(vec![
                TCP_ECHO_READY,
                built(format!(
                    "tcp-echo: served {BULK_CONNECTIONS} connections, {BULK_BYTES} bytes"
                )),
                TCP_ECHO_STACK,
            ]),
            timeout: BULK_TIMEOUT,
            network: Some(NetworkScenario {
                tcp_ports: &[ECHO_PORT],
                host: Some(server_clients::bulk_through_tcp_echo),
                ..NetworkScenario::DEFAULT
            }),
            ..DEFAULT_SERVER_SCENARIO
        },
        // The TCP bulk floor (chapter 7), whose own test this is too.
        Scenario {
            name: "net-sink",
            program: Program::Named("tcp-sink"),
            serial_must_show: &[kernel_network::SINK_READY, kernel_network::SINK_DONE],
            network: Some(NetworkScenario {
                tcp_ports: &[kernel_network::SINK_PORT],
                host: Some(kernel_network::streams_into_sink),
                ..NetworkScenario::DEFAULT
            }),
            ..DEFAULT
        },
        Scenario {
            name: "net-discard",
            serial_input: Some(shell_starts("", &[("tcp-discard", DISCARD_CONNECTIONS)])),
            serial_must_show: built_list(vec![
                TCP_DISCARD_READY,
                built(format!(
                    "tcp-discard: served {DISCARD_CONNECTIONS} connections"
                )),
                TCP_DISCARD_STACK,
            ]),
            network: Some(NetworkScenario {
                tcp_ports: &[DISCARD_PORT],
                host: Some(server_clients::streams_into_tcp_discard),
                ..NetworkScenario::DEFAULT
            }),
            ..DEFAULT_SERVER_SCENARIO
        },
        Scenario {
            name: "net-malformed",
            serial_input: Some(shell_starts(
                "",
                &[
                    ("udp-echo", MALFORMED_UDP_COUNT),
                    ("tcp-echo", MALFORMED_TCP_CONNECTIONS),
                ],
            )),
            serial_must_show: built_list(vec![
                UDP_ECHO_READY,
                built(format!("udp-echo: echoed {MALFORMED_UDP_COUNT} datagrams")),
                UDP_ECHO_STACK,
            ]),
            network: Some(NetworkScenario {
                udp_ports: &[ECHO_PORT],
                tcp_ports: &[ECHO_PORT],
                host: Some(server_clients::hostile_frames_beside_echo_traffic),
                inject_frames: true,
                ..NetworkScenario::DEFAULT
            }),
            ..DEFAULT_SERVER_SCENARIO
        },
        // The same servers on a real interface: a tap in a network namespace of its own,
        // and from a raw socket there everything QEMU's user network would not carry
        // (ARP lies, fragments, a flood of forged connection requests). Skipped, with the
        // reason, where the machine does not allow a tap (not root, say).
        Scenario {
            name: "net-tap-hostile",
            serial_input: Some(shell_starts(
                "",
                &[
                    ("udp-echo", TAP_UDP_COUNT),
                    ("tcp-echo", TAP_TCP_CONNECTIONS),
                ],
            )),
            serial_must_show: built_list(vec![
                UDP_ECHO_READY,
                built(format!("udp-echo: echoed {TAP_UDP_COUNT} datagrams")),
                UDP_ECHO_STACK,
            ]),
            network: Some(NetworkScenario {
                host: Some(tap_clients::hostile_traffic_from_a_tap),
                tap: true,
                ..NetworkScenario::DEFAULT
            }),
            ..DEFAULT_SERVER_SCENARIO
        },
    ]
}

/// What the server scenarios share: the shell as the first program, the server timeout.
const DEFAULT_SERVER_SCENARIO: Scenario = Scenario {
    program: Program::Named(servers::SHELL),
    timeout: SERVER_TIMEOUT,
    ..DEFAULT
};

/// The shell's input: `first` (whole lines), then each `(program, count)` started in the
/// background, told to serve `count` clients and exit (`-n`), then `wait` for them all and
/// power off.
fn shell_starts(first: &str, servers: &[(&str, usize)]) -> &'static str {
    let starts: String = servers
        .iter()
        .map(|(program, count)| format!("{program} -n {count} &\n"))
        .collect();
    built(format!("{first}{starts}wait\npoweroff\n"))
}

/// The shell adds no "exit status" line under a program's own error message.
fn no_second_failure_line(serial: &str) -> Result<(), String> {
    match serial.lines().find(|line| line.contains("exit status 1")) {
        Some(line) => Err(format!("the shell repeated a failure: {line:?}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_starts_each_server_in_the_background_then_waits() {
        assert_eq!(
            shell_starts("ping -c 3 10.0.2.2\n", &[("udp-echo", 24), ("tcp-echo", 2)]),
            "ping -c 3 10.0.2.2\nudp-echo -n 24 &\ntcp-echo -n 2 &\nwait\npoweroff\n"
        );
        assert_eq!(
            shell_starts("", &[("httpd", 39)]),
            "httpd -n 39 &\nwait\npoweroff\n"
        );
    }
}
