//! `cargo xtask density`: the seed's "shares", measured — as many isolated UDP echo servers
//! as fit in exo's default 256 MiB, each its own environment with its own library OS
//! (`userapps/net/src/bin/density.rs`), and from the host a check that every one answers.
//!
//! The guest program starts apps until the kernel refuses one (or it has started as many
//! as this host forwards ports to), says what stopped it, and prints its figures on a
//! `DENSITY-READY` line. The host then sends every app a datagram through its own forwarded
//! port and waits for each to come back, sending again to those that have not answered.
//! Then it ends the guest (Ctrl-D on the console: the launcher exits and every app with
//! it), prints the closing `density: N apps, ...` line and writes
//! `target/bench/density.json`. `cargo xtask test density` runs the same check on a
//! handful of apps ([`scenario_apps_answer`]).

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::bench::report::json;
use crate::guest::{self, Ending};
use crate::host::side::{self, HostSide};
use crate::qemu::{self, END_OF_INPUT, GuestExit, Protocol, QemuConfig};
use crate::{artifacts, network_setup, workspace};

/// The guest program, and the UDP port its app `i` echoes on, `BASE_PORT + i` (its
/// `BASE_PORT`).
pub const PROGRAM: &str = "density";
const BASE_PORT: u16 = 20_000;
/// Apps the test scenario starts, and their ports.
pub const SCENARIO_APPS: usize = 8;
pub const SCENARIO_PORTS: [u16; SCENARIO_APPS] = ports();
/// The scenario's kernel command line: at most [`SCENARIO_APPS`] apps.
pub const SCENARIO_COMMAND_LINE: &str = "log=info init_argument=8";
/// What the guest prints once its apps are up, with its figures as `key=value` words.
pub const READY: &str = "DENSITY-READY";
/// Host ports forwarded by default, so the most apps the guest starts. One `-netdev`
/// argument holds them all, and Linux allows one argument 128 KiB (`MAX_ARG_STRLEN`),
/// about 3,700 forwards; QEMU needs an open file for each.
const DEFAULT_FORWARDS: usize = 3000;
/// Open files QEMU needs besides its forwards.
const OTHER_FILES: u64 = 256;
/// How long the whole run may take under TCG before the guest is considered hung.
const TIMEOUT: Duration = Duration::from_secs(1800);
/// Rounds of sending to the apps that have not answered yet, datagrams sent before
/// reading replies, and how long a round waits for the last replies.
const ROUNDS: usize = 10;
const BATCH: usize = 64;
const ROUND_WAIT: Duration = Duration::from_secs(3);
/// How long one read of the reply socket waits.
const READ_WAIT: Duration = Duration::from_millis(20);
/// A progress line every this many apps answered.
const PROGRESS_EVERY: usize = 250;
/// Where the figures go, relative to the workspace root.
const OUTPUT: &str = "target/bench/density.json";
/// Boots, at most, when QEMU finds a host port taken (see
/// [`network_setup::lost_a_host_port`]).
const HOST_PORT_BOOTS: usize = 3;

const fn ports() -> [u16; SCENARIO_APPS] {
    let mut ports = [0; SCENARIO_APPS];
    let mut index = 0;
    while index < SCENARIO_APPS {
        ports[index] = BASE_PORT + index as u16;
        index += 1;
    }
    ports
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DensityOptions {
    /// The most apps to start (host ports to forward); `None`: [`DEFAULT_FORWARDS`].
    pub max_apps: Option<usize>,
}

/// The guest's `DENSITY-READY` line, read.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ready {
    apps: usize,
    usable_mib: u64,
    frames_per_app: u64,
    kernel_bytes_per_app: u64,
    start_us_median: u64,
    /// The median start of the first and of the last 50 apps: how it grows with their number.
    start_us_median_first: u64,
    start_us_median_last: u64,
    /// Frames and kernel bytes charged to an app's own accounts, on average, and the pages
    /// it maps.
    app_frames: u64,
    app_kernel_bytes: u64,
    app_pages: u64,
    kernel_heap_used: u64,
    kernel_heap_capacity: u64,
    /// What was left for more apps: free frames, and the launcher's unspent kernel-memory
    /// allowance.
    frames_free: u64,
    kernel_bytes_left: u64,
    /// The kernel's refusal that stopped the launcher, or `limit`.
    stopped_by: String,
}

impl Ready {
    fn parse(line: &str) -> Result<Self, String> {
        let words: HashMap<&str, &str> = line
            .split_whitespace()
            .filter_map(|word| word.split_once('='))
            .collect();
        let text = |key: &str| {
            words
                .get(key)
                .copied()
                .ok_or_else(|| format!("no `{key}=` in the guest's line {line:?}"))
        };
        let number = |key: &str| {
            text(key)?
                .parse::<u64>()
                .map_err(|_| format!("`{key}=` is not a number in {line:?}"))
        };
        let (used, capacity) = text("kernel_heap")?
            .split_once('/')
            .ok_or_else(|| format!("`kernel_heap=` is not USED/CAPACITY in {line:?}"))?;
        let heap = |value: &str| {
            value
                .parse::<u64>()
                .map_err(|_| format!("`kernel_heap=` is not USED/CAPACITY in {line:?}"))
        };
        Ok(Self {
            apps: number("apps")? as usize,
            usable_mib: number("usable_mib")?,
            frames_per_app: number("frames_per_app")?,
            kernel_bytes_per_app: number("kernel_bytes_per_app")?,
            start_us_median: number("start_us_median")?,
            start_us_median_first: number("start_us_median_first")?,
            start_us_median_last: number("start_us_median_last")?,
            app_frames: number("app_frames")?,
            app_kernel_bytes: number("app_kernel_bytes")?,
            app_pages: number("app_pages")?,
            kernel_heap_used: heap(used)?,
            kernel_heap_capacity: heap(capacity)?,
            frames_free: number("frames_free")?,
            kernel_bytes_left: number("kernel_bytes_left")?,
            stopped_by: text("stopped_by")?.to_string(),
        })
    }
}

/// What the host function found: the guest's figures and why it stopped.
#[derive(Debug, Default)]
struct Found {
    ready: Option<Ready>,
    /// The guest's line saying what stopped it.
    stop_line: Option<String>,
}

pub fn run(options: DensityOptions) -> Result<ExitCode, String> {
    eprintln!("density: building exo");
    let kernel = artifacts::build_kernel()?;
    artifacts::build(&artifacts::USER_PROGRAMS)?;
    artifacts::pack_bootfs()?;
    qemu::ensure_installed()?;
    let wanted = options.max_apps.unwrap_or(DEFAULT_FORWARDS);
    let (forwards, open_files) = forwards_this_host_allows(wanted)?;
    if forwards < wanted {
        eprintln!(
            "density: this host lets QEMU open {} files, so it forwards {forwards} ports, not \
             {wanted}: at most {forwards} apps (raise the hard `ulimit -n` for more)",
            open_files.unwrap_or(0)
        );
    }
    let guest_ports: Vec<u16> = (0..forwards)
        .map(|index| BASE_PORT + index as u16)
        .collect();
    let mut config = QemuConfig::new(&kernel, &format!("log=warn init_argument={forwards}"));
    config.boot_module = Some(artifacts::bootfs());
    config.first_program = Some(PROGRAM.to_string());
    config.open_files = open_files;
    eprintln!(
        "density: booting exo with {} MiB, at most {forwards} apps (UDP ports {BASE_PORT}-{}), \
         each forwarded from a host port",
        qemu::MEMORY_MIB,
        BASE_PORT as usize + forwards - 1
    );
    let found = Arc::new(Mutex::new(Found::default()));
    let mut boots = 0;
    let run = loop {
        boots += 1;
        config.port_forwards = network_setup::free_forwards(&guest_ports, &[])?;
        let theirs = found.clone();
        let (host, _notes) = side::on_host_thread(
            move |host| {
                let outcome = check_from_host(host, &theirs);
                // Whatever happened, the guest is told to end.
                let _ = host.type_into_console(&[END_OF_INPUT]);
                outcome
            },
            &config,
        );
        let run = guest::run_unattended_with_host(&config, TIMEOUT, Some(host))?;
        if boots >= HOST_PORT_BOOTS || !network_setup::lost_a_host_port(&run) {
            break run;
        }
        eprintln!("density: QEMU found a host port taken; booting again with new ones");
    };
    let found = std::mem::take(&mut *found.lock().unwrap_or_else(PoisonError::into_inner));
    if let Some(failure) = &run.host_failure {
        return Err(format!(
            "density: {failure}\nthe guest's last lines:\n{}",
            last_lines(&run.serial)
        ));
    }
    if run.ending != Ending::Exited(GuestExit::Passed) {
        return Err(format!(
            "density: the guest did not end well: {}\n{}\nits last lines:\n{}",
            run.ending,
            run.qemu_messages.trim_end(),
            last_lines(&run.serial)
        ));
    }
    let ready = found
        .ready
        .ok_or("density: the guest never said its apps were ready")?;
    let stop = found.stop_line.unwrap_or_default();
    let path = workspace::root().join(OUTPUT);
    write_json(&path, &ready, &stop)?;
    println!(
        "density: {} apps, every one answering; {} frames ({} KiB) and {} bytes of kernel \
         memory per app; start median {} us (guest clock); {} MiB; stopped by {} ({})",
        ready.apps,
        ready.frames_per_app,
        ready.frames_per_app * 4,
        ready.kernel_bytes_per_app,
        ready.start_us_median,
        qemu::MEMORY_MIB,
        ready.stopped_by,
        stop.trim_start_matches("density: ")
    );
    println!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// The host function of `cargo xtask density`: relays the guest's progress, reads its
/// figures, and checks that every app answers.
fn check_from_host(host: &HostSide, found: &Mutex<Found>) -> Result<(), String> {
    let mut shown = 0;
    let line = loop {
        let ready = host.shows_within(READY, Duration::from_secs(1))?;
        let text = host.serial_so_far();
        for line in text
            .lines()
            .filter(|line| line.starts_with("density: "))
            .skip(shown)
        {
            eprintln!("{line}");
            shown += 1;
        }
        if ready {
            break host.serial_line(READY)?;
        }
    };
    let ready = Ready::parse(&line)?;
    let stop_line = host
        .serial_so_far()
        .lines()
        .find(|line| line.contains("was refused") || line.contains("apps asked for"))
        .map(str::to_string);
    let apps = ready.apps;
    {
        let mut found = found.lock().unwrap_or_else(PoisonError::into_inner);
        found.ready = Some(ready);
        found.stop_line = stop_line;
    }
    eprintln!("density: the host checks that each of the {apps} apps answers");
    every_app_answers(host, apps, |answered| {
        eprintln!("density: {answered} of {apps} apps answered");
    })
}

/// The test scenario's host function (`cargo xtask test density`): the guest starts the
/// [`SCENARIO_APPS`] apps it is asked for, and every one answers.
pub fn scenario_apps_answer(host: &HostSide) -> Result<(), String> {
    let ready = Ready::parse(&host.serial_line(READY)?)?;
    if ready.apps != SCENARIO_APPS {
        return Err(format!(
            "the guest started {} apps, not the {SCENARIO_APPS} asked for",
            ready.apps
        ));
    }
    let outcome = every_app_answers(host, ready.apps, |_| {});
    host.type_into_console(&[END_OF_INPUT])?;
    outcome
}

/// Sends app `i` the datagram `density app i` through the host port forwarded to its guest
/// port, and waits for the same to come back from there; sends again, in up to [`ROUNDS`]
/// rounds, to the apps that have not answered (a datagram may be lost while an app learns
/// the gateway's hardware address, or in a queue that a burst filled). `progress` hears
/// how many have answered, every [`PROGRESS_EVERY`] and at the end.
fn every_app_answers(host: &HostSide, apps: usize, progress: impl Fn(usize)) -> Result<(), String> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|error| format!("a UDP socket on the host: {error}"))?;
    socket
        .set_read_timeout(Some(READ_WAIT))
        .map_err(|error| format!("a UDP socket on the host: {error}"))?;
    let addresses = (0..apps)
        .map(|index| host.address(Protocol::Udp, BASE_PORT + index as u16))
        .collect::<Result<Vec<SocketAddr>, String>>()?;
    let app_at: HashMap<SocketAddr, usize> = addresses
        .iter()
        .enumerate()
        .map(|(index, &address)| (address, index))
        .collect();
    let payload = |index: usize| format!("density app {index}").into_bytes();
    let mut answered = vec![false; apps];
    let mut count: usize = 0;
    let mut buffer = [0u8; 1500];
    let mut take_replies = |answered: &mut Vec<bool>, until: Instant| -> Result<(), String> {
        while Instant::now() < until && answered.iter().any(|done| !done) {
            match socket.recv_from(&mut buffer) {
                Ok((length, from)) => {
                    let Some(&index) = app_at.get(&from) else {
                        continue;
                    };
                    if buffer[..length] != payload(index) {
                        return Err(format!(
                            "guest UDP port {}: sent {:?}, got back {:?}",
                            BASE_PORT as usize + index,
                            String::from_utf8_lossy(&payload(index)),
                            String::from_utf8_lossy(&buffer[..length])
                        ));
                    }
                    if !answered[index] {
                        answered[index] = true;
                        count += 1;
                        if count.is_multiple_of(PROGRESS_EVERY) || count == apps {
                            progress(count);
                        }
                    }
                }
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(error) => return Err(format!("receiving on the host: {error}")),
            }
        }
        Ok(())
    };
    for _ in 0..ROUNDS {
        let missing: Vec<usize> = (0..apps).filter(|&index| !answered[index]).collect();
        if missing.is_empty() {
            break;
        }
        for batch in missing.chunks(BATCH) {
            for &index in batch {
                socket
                    .send_to(&payload(index), addresses[index])
                    .map_err(|error| {
                        format!(
                            "sending to guest UDP port {}: {error}",
                            BASE_PORT as usize + index
                        )
                    })?;
            }
            take_replies(&mut answered, Instant::now() + READ_WAIT)?;
        }
        take_replies(&mut answered, Instant::now() + ROUND_WAIT)?;
    }
    let silent: Vec<String> = (0..apps)
        .filter(|&index| !answered[index])
        .map(|index| (BASE_PORT as usize + index).to_string())
        .collect();
    if silent.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} of {apps} apps never answered after {ROUNDS} rounds; their guest UDP ports: {}{}",
        silent.len(),
        silent[..silent.len().min(20)].join(", "),
        if silent.len() > 20 { ", ..." } else { "" }
    ))
}

/// How many ports to forward, at most `wanted`, and — if QEMU needs more open files than
/// its soft limit — how many it may have: the soft limit raised as far as the hard limit
/// allows (QEMU then runs under `prlimit`).
fn forwards_this_host_allows(wanted: usize) -> Result<(usize, Option<u64>), String> {
    let limits = fs::read_to_string("/proc/self/limits")
        .map_err(|error| format!("cannot read /proc/self/limits: {error}"))?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .ok_or("no `Max open files` in /proc/self/limits")?;
    // "Max open files  SOFT  HARD  files"; "unlimited" is no limit.
    let limit = |index: usize| {
        line.split_whitespace()
            .nth(index)
            .map(|limit| limit.parse::<u64>().unwrap_or(u64::MAX))
            .ok_or_else(|| format!("cannot read {line:?}"))
    };
    let (soft, hard) = (limit(3)?, limit(4)?);
    let needed = wanted as u64 + OTHER_FILES;
    if needed <= soft {
        return Ok((wanted, None));
    }
    let open_files = needed.min(hard);
    let forwards = (open_files.saturating_sub(OTHER_FILES) as usize).min(wanted);
    Ok((forwards, Some(open_files)))
}

/// Writes the figures as one JSON object, a field a line.
fn write_json(path: &std::path::Path, ready: &Ready, stop: &str) -> Result<(), String> {
    let number = |value: u64| json::number(Some(value as f64));
    let fields = [
        ("apps", number(ready.apps as u64)),
        ("memory_mib", number(qemu::MEMORY_MIB)),
        ("usable_mib", number(ready.usable_mib)),
        ("frames_per_app", number(ready.frames_per_app)),
        ("kernel_bytes_per_app", number(ready.kernel_bytes_per_app)),
        ("start_us_median", number(ready.start_us_median)),
        (
            "start_clock",
            json::string(
                "guest: the TSC (user::micros), from creating the app's environment to its \
                 ready call",
            ),
        ),
        (
            "start_us_median_first_50",
            number(ready.start_us_median_first),
        ),
        (
            "start_us_median_last_50",
            number(ready.start_us_median_last),
        ),
        ("app_frames", number(ready.app_frames)),
        ("app_kernel_bytes", number(ready.app_kernel_bytes)),
        ("app_pages_mapped", number(ready.app_pages)),
        ("kernel_heap_used", number(ready.kernel_heap_used)),
        ("kernel_heap_capacity", number(ready.kernel_heap_capacity)),
        ("frames_free", number(ready.frames_free)),
        (
            "launcher_kernel_bytes_left",
            number(ready.kernel_bytes_left),
        ),
        ("stopped_by", json::string(&ready.stopped_by)),
        ("stop", json::string(stop)),
        ("answered", number(ready.apps as u64)),
        ("accel", json::string("tcg")),
    ];
    let body: Vec<String> = fields
        .iter()
        .map(|(name, value)| format!("  \"{name}\": {value}"))
        .collect();
    if let Some(directory) = path.parent() {
        fs::create_dir_all(directory)
            .map_err(|error| format!("cannot create {}: {error}", directory.display()))?;
    }
    fs::write(path, format!("{{\n{}\n}}\n", body.join(",\n")))
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// The last lines of the guest's output, for a failure's report.
fn last_lines(serial: &str) -> String {
    crate::serial_log::last_lines(serial, 25).join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_line_is_read_word_by_word() {
        let line = "DENSITY-READY apps=512 usable_mib=245 frames_per_app=24 \
                    kernel_bytes_per_app=9000 start_us_median=450 \
                    start_us_median_first=300 start_us_median_last=900 app_frames=24 \
                    app_kernel_bytes=8000 app_pages=59 kernel_heap=4600000/16777216 \
                    frames_free=30000 kernel_bytes_left=0 stopped_by=KernelMemoryExceeded";
        let ready = Ready::parse(line).unwrap();
        assert_eq!(ready.apps, 512);
        assert_eq!(ready.kernel_heap_capacity, 16_777_216);
        assert_eq!(ready.stopped_by, "KernelMemoryExceeded");
        assert!(Ready::parse("DENSITY-READY apps=0").is_err());
        assert!(Ready::parse(&line.replace("apps=512", "apps=many")).is_err());
    }

    #[test]
    fn the_scenario_forwards_its_apps_ports() {
        assert_eq!(SCENARIO_PORTS[0], BASE_PORT);
        assert_eq!(SCENARIO_PORTS[SCENARIO_APPS - 1], BASE_PORT + 7);
        assert!(SCENARIO_COMMAND_LINE.ends_with(&format!("init_argument={SCENARIO_APPS}")));
    }

    #[test]
    fn forwards_never_exceed_what_was_asked() {
        let (forwards, open_files) = forwards_this_host_allows(10).unwrap();
        assert!(forwards <= 10);
        assert!(open_files.is_none_or(|files| files >= forwards as u64));
    }
}
