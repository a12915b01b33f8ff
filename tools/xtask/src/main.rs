//! `cargo xtask`: the one entry point for building, running, testing and debugging exo.
//!
//! This file owns the command line: it parses the arguments into a [`Command`] and hands it
//! to the module that carries it out. It starts no process itself.
//!
//! `lexopt` reads the options (`--name VALUE` and `--name=VALUE` alike, an unwanted value
//! refused); this file says which options each command takes. Not clap: its builder and
//! derive would triple the clean build of xtask (clap alone took 8.7 s, all of xtask 4.1 s),
//! for a usage text written once.

// Denied, not forbidden: `host::raw_link` alone allows it, for the two Linux calls the
// tap scenario needs that std lacks (`setns`, a raw packet socket).
#![deny(unsafe_code)]

mod accelerator;
mod artifacts;
mod bench;
mod checks;
mod cpio;
mod density;
mod fuzz;
mod guest;
mod host;
mod interactive;
mod labs;
mod network_setup;
mod pcap;
mod qemu;
mod scenarios;
mod serial_log;
mod servers;
mod test_suite;
mod trace;
mod workspace;

use std::process::ExitCode;

use lexopt::Arg::{self, Long, Value};
use lexopt::Parser;

use bench::BenchOptions;
use bench::linux::guest::PeerMode;
use density::DensityOptions;
use fuzz::guest::GuestFuzzOptions;
use fuzz::host::HostFuzzOptions;
use servers::HostPorts;
use test_suite::TestOptions;
use trace::{TraceOptions, Window};

const USAGE: &str = "\
usage: cargo xtask <command>
(at the workspace root `cargo run -- <command>` is the same: xtask is its one program)

commands:
  build                                 build the kernel and the user programs
  run [--kvm] [--program NAME] [--http-port N] [--echo-port N] [--no-servers]
      [-- <kernel args>...]
                                        build and boot in QEMU, serial on this terminal;
                                        the kernel runs user program NAME (default: sh,
                                        the shell; `none` boots the kernel alone)
                                        (default kernel command line: log=info).
                                        The shell first starts httpd, tcp-echo and
                                        udp-echo (its /etc/rc), reachable from this
                                        machine: http on 127.0.0.1:8080 (--http-port),
                                        both echo servers on 127.0.0.1:7007, tcp and udp
                                        (--echo-port); --no-servers starts none
  test [FILTER] [--no-host] [--jobs N]  host unit tests, clippy and rustfmt, then the
                                        QEMU scenarios; a FILTER or --no-host runs only
                                        the scenarios (those whose name contains FILTER)
  gdb [--program NAME] [-- <kernel args>...]
                                        boot paused, waiting for gdb on :1234
  bench [--kvm] [--quick] [--rounds N]  measure exo's primitives and networking beside a
                                        Linux guest on the same QEMU command line, the two
                                        alternating in N rounds (default 3): a table here,
                                        target/bench/bench.json, bench.md and SVG charts
                                        (--quick: a tenth of the network load)
  density [--max N]                     start as many isolated UDP echo servers as fit in
                                        256 MiB (at most N; default 3000), each its own
                                        environment and library OS on its own port, check
                                        from here that every one answers; prints
                                        `density: N apps, ...`, writes
                                        target/bench/density.json
  linux-peer micro|servers [--kvm]      boot the Linux guest the benchmarks compare exo
                                        with (Debian 12's kernel, fetched with apt-get
                                        download into target/linux-guest/, and
                                        tools/linux-peer), same QEMU command line:
                                        `micro` prints its BENCH lines; `servers` runs
                                        udp/tcp echo (127.0.0.1:7007) and tcp discard
                                        (127.0.0.1:7009) until Ctrl-C
  trace [--program NAME] [--window FROM:TO] [-- <kernel args>...]
                                        boot NAME (default: sh) unattended with the
                                        kernel's trace on (trace=all unless the kernel
                                        args hold a trace=), its input only Ctrl-D, for
                                        at most 120 s; writes target/trace/trace.bin,
                                        trace.json (open it in ui.perfetto.dev) and
                                        timeline.svg (FROM:TO, in microseconds from the
                                        first event, is the part it shows; default all),
                                        and prints events per kind and per environment
  trace --stream FILE [--window FROM:TO]
                                        the same from a stream collected before (the
                                        traced scenarios leave theirs in
                                        target/trace/scenarios/), without booting
  fuzz host [--seconds N] [--target NAME] [--seed S]
                                        every host fuzz target (tools/fuzz-host: the
                                        ELF loader's checks, boot file system, demux,
                                        rings, capabilities, info page, memfs, httpd's
                                        request) for N seconds each (default 10), then
                                        inputs tried per target; a failing input is
                                        saved under target/fuzz-host/failures/
  fuzz guest [--calls N] [--seed S]     random system calls from several environments
                                        at once (default 10,000,000 calls, seed from the
                                        clock), then the kernel's invariants checked
  lab start N [--dir PATH]              write lab N's skeleton (docs/labs/) to PATH (default
                                        ../exo-lab-N), a git repository of its own
  lab check [N]                         every lab (or lab N) grades full marks on this tree
                                        and zero on its skeleton (part of `test`)
  grade N                               score lab N's exercises on this tree, with the
                                        reason for each lost point
  help                                  show this text

user programs are the files in userapps/src/bin/ (on the bare runtime) and
userapps/posix/src/bin/ (on the library OS); all go into the boot file system, with
the files under userapps/files/ (userapps/files/www/index.html is /www/index.html):
the library OS's programs in /bin, where the shell finds them, the others in /test.
";

/// `cargo xtask test`: the host checks and the scenarios, then the labs' rot check, which
/// grades the tree with the scenarios' verdicts and builds the skeletons elsewhere.
fn test(options: &TestOptions) -> Result<ExitCode, String> {
    let mut run = test_suite::run(options)?;
    if options.host_checks {
        let judged = std::mem::take(&mut run.judged);
        labs::check_all(&judged, &mut |verdict| {
            verdict.print();
            run.count(verdict.passed);
        })?;
    }
    Ok(run.finish())
}

/// The program `run` and `gdb` boot unless told otherwise.
const DEFAULT_PROGRAM: &str = "sh";
/// What `--program` takes to boot without a program.
const NO_PROGRAM: &str = "none";

#[derive(Debug, PartialEq)]
enum Command {
    Help,
    Build,
    Run {
        kvm: bool,
        /// The user program to boot; `None` boots the kernel alone.
        program: Option<String>,
        kernel_command_line: Option<String>,
        /// The host ports forwarded to the servers the shell starts; `None`: no servers.
        servers: Option<HostPorts>,
    },
    Test(TestOptions),
    Gdb {
        program: Option<String>,
        kernel_command_line: Option<String>,
    },
    LinuxPeer {
        mode: PeerMode,
        kvm: bool,
    },
    Bench(BenchOptions),
    Density(DensityOptions),
    FuzzHost(HostFuzzOptions),
    FuzzGuest(GuestFuzzOptions),
    Trace(TraceOptions),
    Lab(labs::LabCommand),
}

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse(&arguments) {
        Ok(command) => command,
        Err(message) => {
            eprint!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let ready = match command {
        Command::Help => Ok(()),
        _ => workspace::ensure_bare_metal_target(),
    };
    if let Err(message) = ready {
        eprintln!("error: {message}");
        return ExitCode::FAILURE;
    }
    let result = match command {
        Command::Help => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Build => build_everything(),
        Command::Run {
            kvm,
            program,
            kernel_command_line,
            servers,
        } => interactive::run(kvm, program.as_deref(), kernel_command_line, servers),
        Command::Test(options) => test(&options),
        Command::Gdb {
            program,
            kernel_command_line,
        } => interactive::gdb(program.as_deref(), kernel_command_line),
        Command::LinuxPeer { mode, kvm } => bench::linux::guest::run_command(mode, kvm),
        Command::Bench(options) => bench::run(options),
        Command::Density(options) => density::run(options),
        Command::FuzzHost(options) => fuzz::host::run(&options),
        Command::FuzzGuest(options) => fuzz::guest::run(options),
        Command::Trace(options) => trace::run(&options),
        Command::Lab(command) => labs::run(command),
    };
    result.unwrap_or_else(|message| {
        eprintln!("error: {message}");
        ExitCode::FAILURE
    })
}

fn build_everything() -> Result<ExitCode, String> {
    let kernel = artifacts::build_kernel()?;
    artifacts::build(&artifacts::USER_PROGRAMS)?;
    let bootfs = artifacts::pack_bootfs()?;
    println!("kernel: {}", kernel.display());
    for name in artifacts::user_program_names() {
        println!("program: {}", artifacts::user_program(&name).display());
    }
    println!("boot file system: {}", bootfs.display());
    Ok(ExitCode::SUCCESS)
}

fn parse(arguments: &[String]) -> Result<Command, String> {
    let Some((name, rest)) = arguments.split_first() else {
        return Ok(Command::Help);
    };
    // Everything after `--` belongs to the kernel, so options are only looked for before it.
    let (options, kernel_words) = match rest.iter().position(|word| word == "--") {
        Some(separator) => (&rest[..separator], Some(&rest[separator + 1..])),
        None => (rest, None),
    };
    let kernel_command_line = kernel_words
        .filter(|words| !words.is_empty())
        .map(|words| words.join(" "));
    let reject_kernel_words = || match kernel_words {
        Some(_) => Err(format!("`{name}` takes no kernel command line")),
        None => Ok(()),
    };
    let options = &mut Parser::from_args(options);
    let name = name.as_str();
    // What a command does not take; an `--option=value` it does not want shows up here too.
    let unexpected = |error: lexopt::Error| format!("{error} for `{name}`");
    let unexpected_option = |option: Arg| unexpected(option.unexpected());

    match name {
        "help" | "-h" | "--help" => Ok(Command::Help),
        "build" => {
            reject_kernel_words()?;
            match options.next().map_err(unexpected)? {
                None => Ok(Command::Build),
                Some(option) => Err(unexpected_option(option)),
            }
        }
        "run" | "gdb" => {
            let (mut kvm, mut no_servers, mut program) = (false, false, None);
            let (mut http_port, mut echo_port) = (None, None);
            while let Some(option) = options.next().map_err(unexpected)? {
                match option {
                    Long("program") => {
                        let value = value(options, "--program", "a program name")?;
                        if program.replace(value).is_some() {
                            return Err("--program given twice".to_string());
                        }
                    }
                    Long("kvm") if name == "run" => kvm = true,
                    Long("no-servers") if name == "run" => no_servers = true,
                    Long("http-port") if name == "run" => {
                        http_port = Some(port(options, "--http-port")?);
                    }
                    Long("echo-port") if name == "run" => {
                        echo_port = Some(port(options, "--echo-port")?);
                    }
                    other => return Err(unexpected_option(other)),
                }
            }
            let program = program_or_default(program)?;
            let program = (program != NO_PROGRAM).then_some(program);
            if name == "gdb" {
                return Ok(Command::Gdb {
                    program,
                    kernel_command_line,
                });
            }
            let servers = run_servers(program.as_deref(), no_servers, http_port, echo_port)?;
            Ok(Command::Run {
                kvm,
                program,
                kernel_command_line,
                servers,
            })
        }
        "trace" => {
            let (mut program, mut window, mut stream) = (None, None, None);
            while let Some(option) = options.next().map_err(unexpected)? {
                match option {
                    Long("stream") => {
                        stream = Some(value(options, "--stream", "a trace stream's file")?.into());
                    }
                    Long("program") => {
                        let value = value(options, "--program", "a program name")?;
                        if program.replace(value).is_some() {
                            return Err("--program given twice".to_string());
                        }
                    }
                    Long("window") => {
                        let text = value(options, "--window", "FROM:TO in microseconds")?;
                        window = Some(parse_window(&text)?);
                    }
                    other => return Err(unexpected_option(other)),
                }
            }
            let program = program_or_default(program)?;
            if stream.is_some() && kernel_command_line.is_some() {
                return Err("--stream converts a stream without booting: no kernel args".into());
            }
            Ok(Command::Trace(TraceOptions {
                program: (program != NO_PROGRAM).then_some(program),
                kernel_command_line,
                window,
                stream,
            }))
        }
        "test" => {
            reject_kernel_words()?;
            let (mut filter, mut no_host, mut jobs) = (None, false, None);
            while let Some(option) = options.next().map_err(unexpected)? {
                match option {
                    Long("no-host") => no_host = true,
                    Long("jobs") => jobs = Some(count(options, "--jobs", "a number")?),
                    Value(word) if filter.is_none() => filter = Some(utf8(word)?),
                    Value(_) => return Err("`test` takes at most one FILTER".to_string()),
                    other => return Err(unexpected_option(other)),
                }
            }
            Ok(Command::Test(TestOptions {
                host_checks: !no_host && filter.is_none(),
                filter,
                jobs,
            }))
        }
        "linux-peer" => {
            reject_kernel_words()?;
            let (mut mode, mut kvm) = (None, false);
            while let Some(option) = options.next().map_err(unexpected)? {
                match option {
                    Long("kvm") => kvm = true,
                    Value(word) if mode.is_none() => {
                        let word = utf8(word)?;
                        mode = PeerMode::from_word(&word);
                        if mode.is_none() {
                            return Err(format!("unknown mode `{word}` for `linux-peer`"));
                        }
                    }
                    other => return Err(unexpected_option(other)),
                }
            }
            let mode = mode.ok_or("`linux-peer` needs a mode: micro or servers")?;
            Ok(Command::LinuxPeer { mode, kvm })
        }
        "bench" => {
            reject_kernel_words()?;
            let mut bench = BenchOptions::default();
            while let Some(option) = options.next().map_err(unexpected)? {
                match option {
                    Long("kvm") => bench.kvm = true,
                    Long("quick") => bench.quick = true,
                    Long("rounds") => {
                        bench.rounds = count(options, "--rounds", "a number of rounds")?;
                    }
                    other => return Err(unexpected_option(other)),
                }
            }
            Ok(Command::Bench(bench))
        }
        "density" => {
            reject_kernel_words()?;
            let mut density = DensityOptions { max_apps: None };
            while let Some(option) = options.next().map_err(unexpected)? {
                match option {
                    Long("max") => {
                        density.max_apps = Some(count(options, "--max", "a number of apps")?);
                    }
                    other => return Err(unexpected_option(other)),
                }
            }
            Ok(Command::Density(density))
        }
        "fuzz" => {
            reject_kernel_words()?;
            let side = match options.next().map_err(unexpected)? {
                Some(Value(word)) => utf8(word)?,
                _ => return Err("`fuzz` needs a side: host or guest".to_string()),
            };
            match side.as_str() {
                "host" => parse_fuzz_host(options).map(Command::FuzzHost),
                "guest" => parse_fuzz_guest(options).map(Command::FuzzGuest),
                _ => Err(format!("unknown side `{side}` for `fuzz`: host or guest")),
            }
        }
        "lab" | "grade" => {
            reject_kernel_words()?;
            labs::parse(name, options).map(Command::Lab)
        }
        _ => Err(format!("unknown command `{name}`")),
    }
}

fn parse_fuzz_host(options: &mut Parser) -> Result<HostFuzzOptions, String> {
    let mut fuzz = HostFuzzOptions::default();
    while let Some(option) = options
        .next()
        .map_err(|error| format!("{error} for `fuzz host`"))?
    {
        match option {
            Long("seconds") => fuzz.seconds = count(options, "--seconds", "a number")? as u64,
            Long("target") => fuzz.target = Some(value(options, "--target", "a target name")?),
            Long("seed") => fuzz.seed = seed(options)?,
            other => return Err(format!("{} for `fuzz host`", other.unexpected())),
        }
    }
    Ok(fuzz)
}

/// The program `--program` named (checked to be a name), or the default.
fn program_or_default(program: Option<String>) -> Result<String, String> {
    match program {
        Some(name) if name.is_empty() || name.starts_with('-') => {
            Err(format!("--program needs a program name, got `{name}`"))
        }
        Some(name) => Ok(name),
        None => Ok(DEFAULT_PROGRAM.to_string()),
    }
}

fn parse_fuzz_guest(options: &mut Parser) -> Result<GuestFuzzOptions, String> {
    let mut fuzz = GuestFuzzOptions::default();
    while let Some(option) = options
        .next()
        .map_err(|error| format!("{error} for `fuzz guest`"))?
    {
        match option {
            Long("calls") => fuzz.calls = count(options, "--calls", "a number")? as u64,
            Long("seed") => fuzz.seed = seed(options)?,
            other => return Err(format!("{} for `fuzz guest`", other.unexpected())),
        }
    }
    Ok(fuzz)
}

fn seed(options: &mut Parser) -> Result<u64, String> {
    let text = value(options, "--seed", "a number")?;
    text.parse()
        .map_err(|_| format!("--seed needs a number, got `{text}`"))
}

/// The value of `option`, given as `--option VALUE` or `--option=VALUE`; `needs` says what
/// it is, for the message when it is missing.
fn value(options: &mut Parser, option: &str, needs: &str) -> Result<String, String> {
    let value = options
        .value()
        .map_err(|_| format!("{option} needs {needs}"))?;
    utf8(value)
}

fn utf8(word: std::ffi::OsString) -> Result<String, String> {
    word.into_string()
        .map_err(|word| format!("`{}` is not UTF-8", word.to_string_lossy()))
}

fn port(options: &mut Parser, option: &str) -> Result<u16, String> {
    let text = value(options, option, "a port number")?;
    match text.parse() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!(
            "{option} needs a port number (1 to 65535), got `{text}`"
        )),
    }
}

/// `FROM:TO`, microseconds from the first event of a trace, FROM before TO.
fn parse_window(text: &str) -> Result<Window, String> {
    let bounds = text
        .split_once(':')
        .map(|(from, to)| (from.trim().parse::<f64>(), to.trim().parse::<f64>()));
    match bounds {
        Some((Ok(from), Ok(to)))
            if from.is_finite() && to.is_finite() && 0.0 <= from && from < to =>
        {
            Ok(Window { from, to })
        }
        _ => Err(format!(
            "--window needs FROM:TO, microseconds with FROM before TO (e.g. 0:500), got `{text}`"
        )),
    }
}

/// The positive number `option` was given.
fn count(options: &mut Parser, option: &str, needs: &str) -> Result<usize, String> {
    let text = value(options, option, needs)?;
    match text.parse() {
        Ok(count) if count > 0 => Ok(count),
        _ => Err(format!("{option} needs a positive number, got `{text}`")),
    }
}

/// The servers `run` starts: by default when it boots the shell, which runs the rc file
/// that starts them, on the default host ports or those given.
fn run_servers(
    program: Option<&str>,
    no_servers: bool,
    http_port: Option<u16>,
    echo_port: Option<u16>,
) -> Result<Option<HostPorts>, String> {
    let ports_given = http_port.is_some() || echo_port.is_some();
    if no_servers && ports_given {
        return Err(
            "--no-servers starts no servers, so it takes no --http-port or --echo-port".to_string(),
        );
    }
    if program != Some(servers::SHELL) {
        if ports_given {
            return Err(format!(
                "--http-port and --echo-port are for the servers the shell starts, and \
                 `{}` is not the shell",
                program.unwrap_or(NO_PROGRAM)
            ));
        }
        return Ok(None);
    }
    if no_servers {
        return Ok(None);
    }
    let defaults = HostPorts::default();
    Ok(Some(HostPorts {
        http: http_port.unwrap_or(defaults.http),
        echo: echo_port.unwrap_or(defaults.echo),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(line: &str) -> Result<Command, String> {
        let arguments: Vec<String> = line.split_whitespace().map(String::from).collect();
        parse(&arguments)
    }

    #[test]
    fn fuzz_takes_a_side_and_its_options() {
        assert_eq!(
            parse_words("fuzz host"),
            Ok(Command::FuzzHost(HostFuzzOptions::default()))
        );
        assert_eq!(
            parse_words("fuzz host --seconds 600 --target demux --seed=7"),
            Ok(Command::FuzzHost(HostFuzzOptions {
                seconds: 600,
                target: Some("demux".to_string()),
                seed: 7,
            }))
        );
        let Ok(Command::FuzzGuest(guest)) = parse_words("fuzz guest --calls 200000 --seed 42")
        else {
            panic!("`fuzz guest` with options should parse");
        };
        assert_eq!((guest.calls, guest.seed), (200_000, 42));
        assert!(matches!(
            parse_words("fuzz guest"),
            Ok(Command::FuzzGuest(_))
        ));
        assert!(parse_words("fuzz").is_err());
        assert!(parse_words("fuzz sideways").is_err());
        assert!(parse_words("fuzz host --seconds 0").is_err());
        assert!(parse_words("fuzz host --calls 5").is_err());
        assert!(parse_words("fuzz guest --seconds 5").is_err());
        assert!(parse_words("fuzz guest --seed x").is_err());
        assert!(parse_words("fuzz host -- log=debug").is_err());
    }

    #[test]
    fn no_arguments_or_help_show_usage() {
        assert_eq!(parse_words(""), Ok(Command::Help));
        assert_eq!(parse_words("help"), Ok(Command::Help));
        assert!(parse_words("frobnicate").is_err());
    }

    #[test]
    fn run_takes_kvm_and_kernel_words() {
        assert_eq!(
            parse_words("run"),
            Ok(Command::Run {
                kvm: false,
                program: Some("sh".to_string()),
                kernel_command_line: None,
                servers: Some(HostPorts::default()),
            })
        );
        assert_eq!(
            parse_words("run --kvm -- test=timer log=debug"),
            Ok(Command::Run {
                kvm: true,
                program: Some("sh".to_string()),
                kernel_command_line: Some("test=timer log=debug".to_string()),
                servers: Some(HostPorts::default()),
            })
        );
        assert!(parse_words("run --fast").is_err());
        assert!(parse_words("run --kvm=yes").is_err());
    }

    #[test]
    fn the_shell_starts_servers_on_ports_that_options_change() {
        let servers = |line: &str| match parse_words(line) {
            Ok(Command::Run { servers, .. }) => Ok(servers),
            Ok(other) => panic!("`{line}` parsed as {other:?}"),
            Err(message) => Err(message),
        };
        let ports = |http, echo| Ok(Some(HostPorts { http, echo }));
        assert_eq!(servers("run --http-port 8081"), ports(8081, 7007));
        assert_eq!(servers("run --echo-port=7008 --kvm"), ports(8080, 7008));
        assert_eq!(
            servers("run --program sh --http-port=80 --echo-port 7"),
            ports(80, 7)
        );
        assert_eq!(servers("run --no-servers"), Ok(None));
        assert_eq!(servers("run --program forktree"), Ok(None));
        assert_eq!(servers("run --program none"), Ok(None));
        assert_eq!(
            servers("run --http-port"),
            Err("--http-port needs a port number".to_string())
        );
        assert_eq!(
            servers("run --echo-port 0"),
            Err("--echo-port needs a port number (1 to 65535), got `0`".to_string())
        );
        assert!(servers("run --http-port 65536").is_err());
        assert!(servers("run --no-servers --http-port 8081").is_err());
        let error = servers("run --program forktree --echo-port 7008").unwrap_err();
        assert!(error.contains("`forktree` is not the shell"), "{error}");
        assert!(parse_words("gdb --no-servers").is_err());
    }

    #[test]
    fn run_and_gdb_take_a_program() {
        let program = |line: &str| match parse_words(line) {
            Ok(Command::Run { program, .. } | Command::Gdb { program, .. }) => Ok(program),
            Ok(other) => panic!("`{line}` parsed as {other:?}"),
            Err(message) => Err(message),
        };
        assert_eq!(
            program("run --program fault-test"),
            Ok(Some("fault-test".to_string()))
        );
        assert_eq!(
            program("run --kvm --program=memory-test"),
            Ok(Some("memory-test".to_string()))
        );
        assert_eq!(program("run --program none --kvm"), Ok(None));
        assert_eq!(
            program("gdb --program lifecycle-test"),
            Ok(Some("lifecycle-test".to_string()))
        );
        assert_eq!(program("gdb"), Ok(Some("sh".to_string())));
        assert!(program("run --program").is_err());
        assert!(program("run --program --kvm").is_err());
        assert!(program("run --program a --program b").is_err());
        assert!(program("gdb --kvm").is_err());
    }

    #[test]
    fn kernel_words_after_separator_are_not_options() {
        assert_eq!(
            parse_words("gdb -- --kvm"),
            Ok(Command::Gdb {
                program: Some("sh".to_string()),
                kernel_command_line: Some("--kvm".to_string())
            })
        );
    }

    #[test]
    fn trace_takes_a_program_a_window_and_kernel_words() {
        assert_eq!(
            parse_words("trace"),
            Ok(Command::Trace(TraceOptions {
                program: Some("sh".to_string()),
                kernel_command_line: None,
                window: None,
                stream: None,
            }))
        );
        assert_eq!(
            parse_words("trace --program fault-test --window 10:250.5 -- log=warn trace=calls"),
            Ok(Command::Trace(TraceOptions {
                program: Some("fault-test".to_string()),
                kernel_command_line: Some("log=warn trace=calls".to_string()),
                window: Some(Window {
                    from: 10.0,
                    to: 250.5
                }),
                stream: None,
            }))
        );
        let Ok(Command::Trace(converted)) =
            parse_words("trace --stream target/trace/scenarios/trace-calls.bin")
        else {
            panic!("`trace --stream FILE` should parse");
        };
        assert_eq!(
            converted.stream,
            Some("target/trace/scenarios/trace-calls.bin".into())
        );
        assert!(parse_words("trace --stream a.bin -- log=info").is_err());
        assert!(parse_words("trace --window 5:5").is_err());
        assert!(parse_words("trace --window 5").is_err());
        assert!(parse_words("trace --window=-1:3").is_err());
        assert!(parse_words("trace --kvm").is_err());
        assert!(parse_words("trace --program").is_err());
    }

    #[test]
    fn a_filter_or_no_host_skips_host_checks() {
        let everything = TestOptions {
            filter: None,
            host_checks: true,
            jobs: None,
        };
        assert_eq!(parse_words("test"), Ok(Command::Test(everything)));
        let Ok(Command::Test(filtered)) = parse_words("test fault --jobs 3") else {
            panic!("`test fault --jobs 3` should parse");
        };
        assert_eq!(filtered.filter.as_deref(), Some("fault"));
        assert_eq!(filtered.jobs, Some(3));
        assert!(!filtered.host_checks);
        let Ok(Command::Test(scenarios_only)) = parse_words("test --no-host --jobs=1") else {
            panic!("`test --no-host --jobs=1` should parse");
        };
        assert!(!scenarios_only.host_checks);
        assert_eq!(scenarios_only.jobs, Some(1));
    }

    #[test]
    fn linux_peer_takes_a_mode_and_kvm() {
        assert_eq!(
            parse_words("linux-peer micro"),
            Ok(Command::LinuxPeer {
                mode: PeerMode::Micro,
                kvm: false
            })
        );
        assert_eq!(
            parse_words("linux-peer --kvm servers"),
            Ok(Command::LinuxPeer {
                mode: PeerMode::Servers,
                kvm: true
            })
        );
        assert_eq!(
            parse_words("bench --quick"),
            Ok(Command::Bench(BenchOptions {
                kvm: false,
                quick: true,
                rounds: 3
            }))
        );
        assert_eq!(
            parse_words("bench --rounds 5 --kvm"),
            Ok(Command::Bench(BenchOptions {
                kvm: true,
                quick: false,
                rounds: 5
            }))
        );
        assert!(parse_words("bench --rounds 0").is_err());
        assert!(parse_words("bench --rounds").is_err());
        assert!(parse_words("bench --fast").is_err());
        assert!(parse_words("linux-peer").is_err());
        assert!(parse_words("linux-peer micro servers").is_err());
        assert!(parse_words("linux-peer micro --fast").is_err());
        assert!(parse_words("linux-peer micro -- quiet").is_err());
    }

    #[test]
    fn lab_and_grade_go_to_the_labs() {
        assert_eq!(
            parse_words("grade 3"),
            Ok(Command::Lab(labs::LabCommand::Grade { lab: 3 }))
        );
        assert_eq!(
            parse_words("lab check"),
            Ok(Command::Lab(labs::LabCommand::Check { lab: None }))
        );
        assert!(parse_words("grade 1 -- log=info").is_err());
    }

    #[test]
    fn density_takes_a_maximum() {
        assert_eq!(
            parse_words("density"),
            Ok(Command::Density(DensityOptions { max_apps: None }))
        );
        assert_eq!(
            parse_words("density --max 600"),
            Ok(Command::Density(DensityOptions {
                max_apps: Some(600)
            }))
        );
        assert!(parse_words("density --max 0").is_err());
        assert!(parse_words("density --fast").is_err());
        assert!(parse_words("density -- log=info").is_err());
    }

    #[test]
    fn an_option_is_refused_a_value_it_does_not_take() {
        assert_eq!(
            parse_words("bench --quick=yes"),
            Err("unexpected argument for option '--quick': \"yes\" for `bench`".to_string())
        );
        assert!(parse_words("build --kvm").is_err());
        assert!(parse_words("build extra").is_err());
        assert!(parse_words("run --no-servers=1").is_err());
        assert_eq!(
            parse_words("density --max=12"),
            Ok(Command::Density(DensityOptions { max_apps: Some(12) }))
        );
    }

    #[test]
    fn bad_test_options_are_rejected() {
        assert!(parse_words("test --jobs 0").is_err());
        assert!(parse_words("test --jobs").is_err());
        assert!(parse_words("test a b").is_err());
        assert!(parse_words("test --quick").is_err());
        assert!(parse_words("test -- log=info").is_err());
    }
}
