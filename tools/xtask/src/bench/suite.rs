//! `cargo xtask bench`: exo's primitives and its library-OS networking, each beside the
//! nearest Linux equivalent, measured in the same run on the same QEMU command line
//! (`docs/07-performance.md`).
//!
//! 0. With `--kvm`, KVM only if both exo and the Linux guest boot under it; else TCG.
//! 1. exo's microbenchmarks: `bench` (kernel primitives, the first program) and
//!    `bench-libos` (spawn, thread switch, from the shell); each prints `BENCH` lines of
//!    median TSC cycles (`lines`).
//! 2. The Linux guest (`linux::guest`): Debian's kernel and busybox with `linux-peer`,
//!    whose `micro` prints the same lines for getppid, SIGSEGV + mprotect, and so on.
//! 3. The network load (`network`) against exo's servers on the ring path, on the
//!    per-packet system-call path, and against the Linux guest's servers.
//!
//! The rows go to a table on the terminal, `target/bench/bench.json`, `bench.md` and SVG
//! charts (`report`). This module judges nothing: a missed target is a row that
//! says so, and the command still succeeds.

use std::process::ExitCode;
use std::time::Duration;

use super::lines::{self, BenchLine};
use super::linux::guest::{self as linux_guest, LinuxGuest};
use super::network::{self, DataPath, Load, NetworkFigures};
use super::report::{Better, PerPacket, Progress, Report, Row, Target};
use crate::guest;
use crate::qemu::{Accelerator, QemuConfig};
use crate::{accelerator, artifacts, servers, workspace};

/// Where the results go, relative to the workspace root.
const OUTPUT_DIRECTORY: &str = "target/bench";
/// How long one microbenchmark boot may take (TCG, a busy host).
const MICRO_LIMIT: Duration = Duration::from_secs(900);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BenchOptions {
    /// Try KVM (falling back to TCG if a probe boot fails).
    pub kvm: bool,
    /// A tenth of the work, for a quick look; the figures are noisier.
    pub quick: bool,
}

/// A microbenchmark row: the name both systems print, what the row says, and the target
/// (how many times cheaper exo must be), if the issue sets one.
struct Micro {
    name: &'static str,
    row: &'static str,
    target: Option<f64>,
}

const MICROBENCHMARKS: [Micro; 7] = [
    Micro {
        name: "null-syscall",
        row: "null system call (Linux: getppid)",
        target: Some(4.0),
    },
    Micro {
        name: "page-fault",
        row: "page-fault round trip (Linux: SIGSEGV handler + mprotect)",
        target: Some(15.0),
    },
    Micro {
        name: "map-touch-unmap",
        row: "frame allocate + map + touch + unmap (Linux: mmap + touch + munmap)",
        target: Some(10.0),
    },
    Micro {
        name: "yield-round-trip",
        row: "yield_to round trip (Linux: sched_yield between two processes)",
        target: None,
    },
    Micro {
        name: "call-reply",
        row: "call/reply round trip (Linux: pipe ping-pong)",
        target: Some(10.0),
    },
    Micro {
        name: "spawn",
        row: "spawn until exit (Linux: fork + exec + wait)",
        target: Some(20.0),
    },
    Micro {
        name: "thread-switch",
        row: "library-OS thread switch (Linux: sched_yield between two threads)",
        target: None,
    },
];

/// The steps the progress line counts.
const STEPS: usize = 8;

pub fn run(options: BenchOptions) -> Result<ExitCode, String> {
    let mut progress = Progress::new(STEPS);
    progress.step("building exo");
    let kernel = artifacts::build_kernel()?;
    artifacts::build(&artifacts::USER_PROGRAMS)?;
    artifacts::pack_bootfs()?;
    progress.step("Linux guest: building it (cached under target/linux-guest)");
    let linux_guest = linux_guest::prepare()?;
    let accelerator = both_boot_under(accelerator::choose(options.kvm, &kernel), &linux_guest);
    eprintln!("accelerator: {accelerator}");
    let load = if options.quick {
        Load::quick()
    } else {
        Load::standard()
    };

    progress.step("exo: kernel primitives (bench)");
    let mut exo = micro_on_exo(&kernel, accelerator, "bench", None)?;
    progress.step("exo: library OS (bench-libos, from the shell)");
    exo.extend(micro_on_exo(
        &kernel,
        accelerator,
        servers::SHELL,
        Some("bench-libos"),
    )?);

    progress.step("Linux guest: microbenchmarks");
    let linux = linux_guest.run_micro(accelerator)?;
    let host = match accelerator {
        // Beside KVM the host's own figures give a scale; under TCG they would not.
        Accelerator::Kvm => Some(linux_guest::micro_on_host()?),
        Accelerator::Tcg => None,
    };

    progress.step("exo: network, ring path");
    let rings = network::on_exo(&kernel, DataPath::Rings, accelerator, load)?;
    progress.step("exo: network, system-call path");
    let calls = network::on_exo(&kernel, DataPath::SystemCalls, accelerator, load)?;
    progress.step("Linux guest: network");
    let forwards = network::forwards()?;
    let peer = linux_guest.start_servers(accelerator, forwards.clone())?;
    let linux_network = network::drive_plain(&forwards, &load);
    drop(peer);
    let linux_network = linux_network?;

    let mut rows = micro_rows(&exo, &linux, host.as_deref());
    for (path, figures) in [(DataPath::Rings, &rings), (DataPath::SystemCalls, &calls)] {
        rows.extend(network_rows(path, figures, &linux_network));
    }
    let report = Report {
        accel: accelerator.to_string(),
        rows,
    };
    print!("{}", report.to_markdown());
    let directory = workspace::root().join(OUTPUT_DIRECTORY);
    let written = report
        .write_to(&directory)
        .map_err(|error| format!("cannot write {}: {error}", directory.display()))?;
    for file in written {
        println!("wrote {}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `accelerator`, if the Linux guest boots under it too, otherwise TCG: every ratio is
/// taken within one accelerator. `accelerator::choose` probed KVM with exo only, and
/// Debian's kernel has hung under KVM on these machines where exo ran.
fn both_boot_under(accelerator: Accelerator, linux_guest: &LinuxGuest) -> Accelerator {
    if accelerator == Accelerator::Tcg {
        return accelerator;
    }
    let probe =
        network::forwards().and_then(|forwards| linux_guest.start_servers(accelerator, forwards));
    match probe {
        Ok(peer) => {
            drop(peer);
            accelerator
        }
        Err(error) => {
            eprintln!("{accelerator}: the Linux guest did not boot ({error}); falling back to tcg");
            Accelerator::Tcg
        }
    }
}

/// Boots `program` (the shell, typing `command` into it, or the program itself) and reads
/// its `BENCH` lines.
fn micro_on_exo(
    kernel: &std::path::Path,
    accelerator: Accelerator,
    program: &str,
    command: Option<&str>,
) -> Result<Vec<BenchLine>, String> {
    let mut config = QemuConfig::new(kernel, "log=warn");
    config.boot_module = Some(artifacts::bootfs());
    config.first_program = Some(program.to_string());
    config.accelerator = accelerator;
    config.serial_input = command.map(|command| format!("{command}\npoweroff\n"));
    let run = guest::run_unattended(&config, MICRO_LIMIT)?;
    lines::parse_report(&run.serial).map_err(|error| {
        let what = command.unwrap_or(program);
        format!("exo: {what} ({}): {error}\n{}", run.ending, run.serial)
    })
}

/// One row per microbenchmark, in cycles.
fn micro_rows(exo: &[BenchLine], linux: &[BenchLine], host: Option<&[BenchLine]>) -> Vec<Row> {
    let median = |lines: &[BenchLine], name: &str| {
        lines
            .iter()
            .find(|line| line.name == name)
            .map(|line| line.median as f64)
    };
    MICROBENCHMARKS
        .iter()
        .map(|micro| {
            let mut row = Row::new(
                micro.row,
                "cycles",
                Better::Lower,
                median(exo, micro.name),
                median(linux, micro.name),
            )
            .with_host(host.and_then(|host| median(host, micro.name)));
            if let Some(times) = micro.target {
                row = row.with_target(Target::ratio_at_least(times));
            }
            row
        })
        .collect()
}

/// The network rows for exo on `path`, beside the Linux guest. The targets are
/// for the ring path: UDP p50 at most 0.8 × Linux's, bulk throughput at least Linux's.
fn network_rows(path: DataPath, exo: &NetworkFigures, linux: &NetworkFigures) -> Vec<Row> {
    let name = |what: &str| format!("{what} (exo: {})", path.describe());
    let per_packet = |server: usize| {
        exo.per_packet.map_or(
            PerPacket {
                syscalls: None,
                kernel_entries: None,
            },
            |counts| counts[server],
        )
    };
    let p50 = |figures: &NetworkFigures| figures.udp.latency.map(|latency| latency.p50_us);
    let p99 = |figures: &NetworkFigures| figures.udp.latency.map(|latency| latency.p99_us);
    let rings = path == DataPath::Rings;
    let mut udp_p50 = Row::new(
        name("UDP echo round trip, p50"),
        "us",
        Better::Lower,
        p50(exo),
        p50(linux),
    )
    .with_per_packet(per_packet(0));
    if rings {
        udp_p50 = udp_p50.with_target(Target::ratio_at_least(1.0 / 0.8));
    }
    let udp_p99 = Row::new(
        name("UDP echo round trip, p99"),
        "us",
        Better::Lower,
        p99(exo),
        p99(linux),
    )
    .with_per_packet(per_packet(0));
    let request_response = Row::new(
        name("TCP request/response"),
        "transactions/s",
        Better::Higher,
        Some(exo.request_response.transactions_per_second),
        Some(linux.request_response.transactions_per_second),
    )
    .with_per_packet(per_packet(1));
    let mut bulk = Row::new(
        name("TCP bulk into a discard server"),
        "Mbit/s",
        Better::Higher,
        Some(exo.bulk.megabits_per_second),
        Some(linux.bulk.megabits_per_second),
    )
    .with_per_packet(per_packet(2));
    if rings {
        bulk = bulk.with_target(Target::ratio_at_least(1.0));
    }
    vec![udp_p50, udp_p99, request_response, bulk]
}
