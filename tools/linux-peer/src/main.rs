//! `linux-peer`: the programs the Linux guest runs so that every figure `cargo xtask bench`
//! reports for exo has a Linux figure beside it, measured on the same QEMU machine.
//!
//! This file owns the command line. `micro` holds the microbenchmarks, `servers` the
//! network servers, `sys` the only `unsafe` code (the raw Linux calls). It is built static
//! (`+crt-static`), so it runs in a busybox initramfs with no libraries.

#![deny(unsafe_code)]

mod micro;
mod servers;
mod sys;

use std::process::ExitCode;

const USAGE: &str = "\
usage: linux-peer <command>

commands:
  micro [--reps N]      run the microbenchmarks, N repetitions each (default 10000; spawn
                        runs N/50), printing `BENCH <name> <median> cycles n=<N>` lines,
                        then BENCH-DONE
  udp-echo [PORT]       echo UDP datagrams (default port 7)
  tcp-echo [PORT]       echo TCP connections, a thread each (default port 7)
  tcp-discard [PORT]    read TCP connections until the client closes (default port 9)
  true                  exit at once with status 0 (what `spawn` starts)
";

#[derive(Debug, PartialEq, Eq)]
enum Command {
    Micro { repetitions: usize },
    UdpEcho { port: u16 },
    TcpEcho { port: u16 },
    TcpDiscard { port: u16 },
    True,
}

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse(&arguments) {
        Ok(command) => command,
        Err(message) => {
            eprint!("linux-peer: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::True => Ok(()),
        Command::Micro { repetitions } => micro::run(repetitions),
        Command::UdpEcho { port } => servers::udp_echo(port),
        Command::TcpEcho { port } => servers::tcp_echo(port),
        Command::TcpDiscard { port } => servers::tcp_discard(port),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("linux-peer: {error}");
            ExitCode::FAILURE
        }
    }
}

fn parse(arguments: &[String]) -> Result<Command, String> {
    let words: Vec<&str> = arguments.iter().map(String::as_str).collect();
    let port = |default: u16| -> Result<u16, String> {
        match words[1..] {
            [] => Ok(default),
            [text] => match text.parse() {
                Ok(port) if port > 0 => Ok(port),
                _ => Err(format!("a port is 1 to 65535, not `{text}`")),
            },
            _ => Err(format!("`{}` takes at most a port", words[0])),
        }
    };
    match words.first().copied() {
        None => Err("no command".to_string()),
        Some("micro") => match words[1..] {
            [] => Ok(Command::Micro {
                repetitions: micro::DEFAULT_REPETITIONS,
            }),
            ["--reps", count] => match count.parse() {
                Ok(repetitions) if repetitions > 0 => Ok(Command::Micro { repetitions }),
                _ => Err(format!("--reps needs a positive number, not `{count}`")),
            },
            _ => Err("`micro` takes only --reps N".to_string()),
        },
        Some("udp-echo") => port(servers::ECHO_PORT).map(|port| Command::UdpEcho { port }),
        Some("tcp-echo") => port(servers::ECHO_PORT).map(|port| Command::TcpEcho { port }),
        Some("tcp-discard") => port(servers::DISCARD_PORT).map(|port| Command::TcpDiscard { port }),
        Some(micro::TRUE_SUBCOMMAND) if words.len() == 1 => Ok(Command::True),
        Some(other) => Err(format!("unknown command `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Command, String> {
        let arguments: Vec<String> = line.split_whitespace().map(String::from).collect();
        parse(&arguments)
    }

    #[test]
    fn commands_and_their_defaults() {
        assert_eq!(
            parse_line("micro"),
            Ok(Command::Micro {
                repetitions: 10_000
            })
        );
        assert_eq!(
            parse_line("micro --reps 50"),
            Ok(Command::Micro { repetitions: 50 })
        );
        assert_eq!(parse_line("udp-echo"), Ok(Command::UdpEcho { port: 7 }));
        assert_eq!(
            parse_line("tcp-echo 7007"),
            Ok(Command::TcpEcho { port: 7007 })
        );
        assert_eq!(
            parse_line("tcp-discard"),
            Ok(Command::TcpDiscard { port: 9 })
        );
        assert_eq!(parse_line("true"), Ok(Command::True));
    }

    #[test]
    fn bad_words_are_refused() {
        for line in [
            "",
            "micro --reps 0",
            "micro --reps",
            "micro 5",
            "udp-echo 0",
            "tcp-echo 70000",
            "tcp-discard 9 10",
            "true false",
            "macro",
        ] {
            assert!(parse_line(line).is_err(), "`{line}` should be refused");
        }
    }
}
