//! `cargo xtask bench`: exo's primitives and its library-OS networking, each beside the
//! nearest Linux equivalent, measured in the same run on the same QEMU command line
//! (`docs/07-performance.md`).
//!
//! 0. With `--kvm`, KVM only if both exo and the Linux guest boot under it; else TCG.
//! 1. The microbenchmarks, in rounds: exo's `bench` (kernel primitives, the first program,
//!    and the floors beside them) and `bench-libos` (spawn, thread switch, from the shell),
//!    then the Linux guest (`linux::guest`), whose `linux-peer micro` prints the same
//!    `BENCH` lines (`lines`) for getppid, SIGSEGV + mprotect, and so on; again, `rounds`
//!    times.
//! 2. The network load (`network`), in rounds: exo's servers on the ring path, on the
//!    per-packet system-call path, then the Linux guest's servers; again.
//! 3. The images' sizes (`sizes`).
//!
//! Alternating the guests is what keeps a ratio honest on a loaded host: a burst of load
//! slows one round of both rather than all of one guest. Each round gives a ratio; a row
//! reports the median, the lowest and the highest (`report`).
//!
//! The rows go to a table on the terminal, `target/bench/bench.json`, `bench.md` and SVG
//! charts (`report`). This module judges nothing: a missed target is a row that
//! says so, and the command still succeeds.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::lines::{self, BenchLine};
use super::linux::guest::{self as linux_guest, LinuxGuest};
use exo_loadgen::{BulkReport, UdpEchoReport};

use super::network::{self, DataPath, Load, NetworkFigures};
use super::report::{
    Better, Floor, PerPacket, Progress, Report, RoundFigures, Row, Target, median,
};
use super::sizes;
use crate::guest;
use crate::qemu::{Accelerator, QemuConfig};
use crate::{accelerator, artifacts, servers, workspace};

/// Where the results go, relative to the workspace root.
const OUTPUT_DIRECTORY: &str = "target/bench";
/// How long one microbenchmark boot may take (TCG, a busy host).
const MICRO_LIMIT: Duration = Duration::from_secs(900);

/// Rounds unless `--rounds` says otherwise: the fewest whose median one odd round cannot
/// set.
pub const DEFAULT_ROUNDS: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchOptions {
    /// Try KVM (falling back to TCG if a probe boot fails).
    pub kvm: bool,
    /// A tenth of the network load, for a quick look; the figures are noisier.
    pub quick: bool,
    /// How many rounds of each comparison, exo and the Linux guest alternating (at least 1).
    pub rounds: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            kvm: false,
            quick: false,
            rounds: DEFAULT_ROUNDS,
        }
    }
}

/// A microbenchmark row: the name exo's line has, the Linux guest's, what the row says,
/// the target (how many times cheaper exo must be), if it has one, and exo's floor.
struct Micro {
    name: &'static str,
    linux: &'static str,
    row: &'static str,
    target: Option<f64>,
    floor: Option<MicroFloor>,
}

/// The floor beside a microbenchmark: the `BENCH` line exo's `bench` prints for the
/// cheapest path of the same kind, and the target (at most how many floors), if any. A run
/// whose program prints no such line has no floor figure, which is no error.
struct MicroFloor {
    name: &'static str,
    max_ratio: Option<f64>,
}

/// A system call answered in the kernel's entry stub: what a null system call can approach.
const TRAP_FLOOR: MicroFloor = MicroFloor {
    name: "trap-floor",
    max_ratio: Some(1.5),
};
/// An `int3` delivered to the program's upcall handler and returned, nothing done.
const EXCEPTION_FLOOR: MicroFloor = MicroFloor {
    name: "exception-floor",
    max_ratio: None,
};
/// Two CR3 loads, there and back, measured by the kernel.
const ADDRESS_SPACE_SWITCH_FLOOR: MicroFloor = MicroFloor {
    name: "address-space-switch-floor",
    max_ratio: None,
};

const MICROBENCHMARKS: [Micro; 9] = [
    Micro {
        name: "null-syscall",
        linux: "null-syscall",
        row: "null system call (Linux: getppid)",
        target: Some(4.0),
        floor: Some(TRAP_FLOOR),
    },
    // What the trace costs: the same call on a kernel built without it, and with every
    // class recorded (`trace=all`). The row above is tracing compiled in and off.
    Micro {
        name: UNTRACED_NULL,
        linux: "null-syscall",
        row: "null system call, kernel built without tracing",
        target: None,
        floor: Some(TRAP_FLOOR),
    },
    Micro {
        name: TRACED_NULL,
        linux: "null-syscall",
        row: "null system call, tracing every event (trace=all)",
        target: None,
        floor: Some(TRAP_FLOOR),
    },
    Micro {
        name: "page-fault",
        linux: "page-fault",
        row: "page-fault round trip (Linux: SIGSEGV handler + mprotect)",
        target: Some(15.0),
        floor: Some(EXCEPTION_FLOOR),
    },
    Micro {
        name: "map-touch-unmap",
        linux: "map-touch-unmap",
        row: "frame allocate + map + touch + unmap (Linux: mmap + touch + munmap)",
        target: Some(10.0),
        floor: None,
    },
    Micro {
        name: "yield-round-trip",
        linux: "yield-round-trip",
        row: "yield_to round trip (Linux: sched_yield between two processes)",
        target: None,
        floor: Some(ADDRESS_SPACE_SWITCH_FLOOR),
    },
    Micro {
        name: "call-reply",
        linux: "call-reply",
        row: "call/reply round trip (Linux: pipe ping-pong)",
        target: Some(10.0),
        floor: Some(ADDRESS_SPACE_SWITCH_FLOOR),
    },
    Micro {
        name: "spawn",
        linux: "spawn",
        row: "spawn until exit (Linux: fork + exec + wait)",
        target: Some(20.0),
        floor: None,
    },
    Micro {
        name: "thread-switch",
        linux: "thread-switch",
        row: "library-OS thread switch (Linux: sched_yield between two threads)",
        target: None,
        floor: None,
    },
];

/// The kernels the microbenchmarks boot: the one built as usual (its trace compiled in),
/// and one built without the trace.
struct Kernels {
    traced: PathBuf,
    untraced: PathBuf,
}

/// The names of the null call's lines from the kernel without tracing and from `trace=all`.
const UNTRACED_NULL: &str = "null-syscall-untraced";
const TRACED_NULL: &str = "null-syscall-traced";

/// `lines`' line `name`, renamed `new_name` (to set one boot's figure beside another's).
fn renamed(lines: &[BenchLine], name: &str, new_name: &str) -> Option<BenchLine> {
    lines
        .iter()
        .find(|line| line.name == name)
        .map(|line| BenchLine {
            name: new_name.to_string(),
            ..line.clone()
        })
}

/// One round of the microbenchmarks: exo's lines (both programs') and the Linux guest's.
struct MicroRound {
    exo: Vec<BenchLine>,
    linux: Vec<BenchLine>,
}

/// One round of the network load: exo's servers on each path, and the Linux guest's.
struct NetworkRound {
    /// exo's servers on each of `DataPath::ALL`, in the order they ran.
    exo: Vec<(DataPath, NetworkFigures)>,
    linux: NetworkFigures,
    /// The UDP load against `udp-reflector`: the floor of the UDP rows.
    reflector: UdpEchoReport,
    /// The same, with `IDLE_BINDINGS` idle bindings beside the reflector's.
    reflector_beside_idle: UdpEchoReport,
    /// The bulk stream into `tcp-sink`: the floor of the TCP bulk rows.
    sink: BulkReport,
}

/// Bindings that carry nothing beside a busy one, to show they cost it nothing: more than
/// one environment's capability table holds, so the reflector's children hold most of them.
const IDLE_BINDINGS: u64 = 1000;

/// The steps the progress line counts: building exo and the Linux guest, then ten steps
/// a round (four for the microbenchmarks, six for the network: exo's three paths, the
/// reflector's two boots as one, the sink, the Linux guest).
fn steps(rounds: usize) -> usize {
    2 + 10 * rounds
}

pub fn run(options: BenchOptions) -> Result<ExitCode, String> {
    let rounds = options.rounds.max(1);
    let mut progress = Progress::new(steps(rounds));
    progress.step("building exo");
    let kernel = artifacts::build_kernel()?;
    artifacts::build(&artifacts::UNTRACED_KERNEL)?;
    let kernels = Kernels {
        traced: kernel.clone(),
        untraced: artifacts::UNTRACED_KERNEL.binary(),
    };
    artifacts::build(&artifacts::USER_PROGRAMS)?;
    artifacts::pack_bootfs()?;
    progress.step("Linux guest: building it (cached under target/linux-guest)");
    let linux_guest = linux_guest::prepare()?;
    let accelerator = both_boot_under(accelerator::choose(options.kvm, &kernel), &linux_guest);
    eprintln!("accelerator: {accelerator}; {rounds} rounds, exo and Linux alternating");
    let load = if options.quick {
        Load::quick()
    } else {
        Load::standard()
    };

    let mut micro = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        let mut step = |what: &str| progress.step(&format!("round {round}/{rounds}: {what}"));
        micro.push(micro_round(&kernels, &linux_guest, accelerator, &mut step)?);
    }
    let host = match accelerator {
        // Beside KVM the host's own figures give a scale; under TCG they would not.
        Accelerator::Kvm => Some(linux_guest::micro_on_host()?),
        Accelerator::Tcg => None,
    };

    let mut network = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        let mut step = |what: &str| progress.step(&format!("round {round}/{rounds}: {what}"));
        // The data paths take turns at going first, so that whatever the
        // order does shows in the rounds' spread, not in every round alike.
        let first = (round - 1) % DataPath::ALL.len();
        network.push(network_round(
            &kernel,
            &linux_guest,
            accelerator,
            load,
            first,
            &mut step,
        )?);
    }

    let mut rows = micro_rows(&micro, host.as_deref());
    for path in DataPath::ALL {
        rows.extend(network_rows(path, &network));
    }
    rows.push(idle_bindings_row(&network));
    let report = Report {
        accel: accelerator.to_string(),
        rows,
        sizes: sizes::measure(&kernel, &linux_guest)?,
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

/// One round of the microbenchmarks: exo's `bench` and `bench-libos`, then the Linux
/// guest's `linux-peer micro`; `step` announces each boot.
fn micro_round(
    kernels: &Kernels,
    linux_guest: &LinuxGuest,
    accelerator: Accelerator,
    step: &mut impl FnMut(&str),
) -> Result<MicroRound, String> {
    let kernel = &kernels.traced;
    step("exo: kernel primitives (bench)");
    let mut exo = micro_on_exo(kernel, accelerator, "bench", None, "")?;
    step("exo: the null call without tracing, and tracing everything");
    let untraced = micro_on_exo(&kernels.untraced, accelerator, "bench", None, "")?;
    exo.extend(renamed(&untraced, "null-syscall", UNTRACED_NULL));
    let traced = micro_on_exo(kernel, accelerator, "bench", None, "trace=all")?;
    exo.extend(renamed(&traced, "null-syscall", TRACED_NULL));
    step("exo: library OS (bench-libos, from the shell)");
    exo.extend(micro_on_exo(
        kernel,
        accelerator,
        servers::SHELL,
        Some("bench-libos"),
        "",
    )?);
    step("Linux guest: microbenchmarks");
    let linux = linux_guest.run_micro(accelerator)?;
    Ok(MicroRound { exo, linux })
}

/// One round of the network load: exo's servers on each data path, starting with
/// `DataPath::ALL[first]`, then the Linux guest's; `step` announces each boot.
fn network_round(
    kernel: &Path,
    linux_guest: &LinuxGuest,
    accelerator: Accelerator,
    load: Load,
    first: usize,
    step: &mut impl FnMut(&str),
) -> Result<NetworkRound, String> {
    let paths = DataPath::ALL.len();
    let mut exo = Vec::with_capacity(paths);
    for turn in 0..paths {
        let path = DataPath::ALL[(first + turn) % paths];
        step(&format!("exo: network, {} path", path.describe()));
        exo.push((path, network::on_exo(kernel, path, accelerator, load)?));
    }
    step("exo: UDP reflector (the UDP floor), alone and beside idle bindings");
    let reflector = network::on_reflector(kernel, accelerator, load, 0)?;
    let reflector_beside_idle = network::on_reflector(kernel, accelerator, load, IDLE_BINDINGS)?;
    step("exo: TCP sink (the TCP bulk floor)");
    let sink = network::on_tcp_sink(kernel, accelerator, load)?;
    step("Linux guest: network");
    let forwards = network::forwards()?;
    let peer = linux_guest.start_servers(accelerator, forwards.clone())?;
    let linux = network::drive_plain(&forwards, &load);
    drop(peer);
    Ok(NetworkRound {
        exo,
        linux: linux?,
        reflector,
        reflector_beside_idle,
        sink,
    })
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

/// Boots `program` (the shell, typing `command` into it, or the program itself), with
/// `more_kernel_words` on the kernel's command line, and reads its `BENCH` lines.
fn micro_on_exo(
    kernel: &Path,
    accelerator: Accelerator,
    program: &str,
    command: Option<&str>,
    more_kernel_words: &str,
) -> Result<Vec<BenchLine>, String> {
    // `bench` prints the kernel's floors too: it measures them at boot when asked.
    let floors = if command.is_none() { " floors=on" } else { "" };
    let command_line = format!("log=warn{floors} {more_kernel_words}");
    let mut config = QemuConfig::new(kernel, command_line.trim_end());
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

/// The median `name` reports in `lines`, if it is there.
fn figure(lines: &[BenchLine], name: &str) -> Option<f64> {
    lines
        .iter()
        .find(|line| line.name == name)
        .map(|line| line.median as f64)
}

/// One row per microbenchmark, in cycles, over the rounds.
fn micro_rows(rounds: &[MicroRound], host: Option<&[BenchLine]>) -> Vec<Row> {
    MICROBENCHMARKS
        .iter()
        .map(|micro| {
            let figures = rounds
                .iter()
                .map(|round| RoundFigures {
                    exo: figure(&round.exo, micro.name),
                    linux: figure(&round.linux, micro.linux),
                    floor: micro
                        .floor
                        .as_ref()
                        .and_then(|floor| figure(&round.exo, floor.name)),
                })
                .collect();
            let mut row = Row::from_rounds(micro.row, "cycles", Better::Lower, figures)
                .with_host(host.and_then(|host| figure(host, micro.linux)));
            if let Some(times) = micro.target {
                row = row.with_target(Target::ratio_at_least(times));
            }
            if let Some(floor) = &micro.floor {
                row = row.with_floor(Floor {
                    max_ratio: floor.max_ratio,
                });
            }
            row
        })
        .collect()
}

/// The reflector's UDP p50 beside `IDLE_BINDINGS` idle bindings, with the reflector alone
/// as its floor: a floor ratio of 1 says idle bindings cost a busy one nothing.
fn idle_bindings_row(rounds: &[NetworkRound]) -> Row {
    let p50 = |udp: &UdpEchoReport| udp.latency.map(|latency| latency.p50_us);
    let figures = rounds
        .iter()
        .map(|round| RoundFigures {
            exo: p50(&round.reflector_beside_idle),
            linux: p50(&round.linux.udp),
            floor: p50(&round.reflector),
        })
        .collect();
    Row::from_rounds(
        format!("UDP round trip, p50, reflector beside {IDLE_BINDINGS} idle bindings"),
        "us",
        Better::Lower,
        figures,
    )
    .with_floor(Floor { max_ratio: None })
}

/// exo's figures of `round` on `path`.
fn exo_figures(round: &NetworkRound, path: DataPath) -> &NetworkFigures {
    round
        .exo
        .iter()
        .find(|(ran, _)| *ran == path)
        .map(|(_, figures)| figures)
        .expect("a round runs every data path")
}

/// The network rows for exo on `path`, beside the Linux guest, over the rounds: each
/// round's ratio is that round's exo figure against that round's Linux figure, above 1× when
/// exo is ahead. The targets are for the ring path: UDP p50 at least 1.25× (Linux's round
/// trip over exo's: exo's at most 0.8 of Linux's), bulk throughput at least 1.5× Linux's.
///
/// The UDP rows have a floor, as the microbenchmarks do: the same load against
/// `udp-reflector` in the same round; on the ring path the target is UDP p50 at most 1.2
/// floors.
fn network_rows(path: DataPath, rounds: &[NetworkRound]) -> Vec<Row> {
    let name = |what: &str| format!("{what} (exo: {})", path.describe());
    let exo_of = |round| exo_figures(round, path);
    // The rounds' figures for one measure of the load.
    let figures = |measure: fn(&NetworkFigures) -> Option<f64>| -> Vec<RoundFigures> {
        rounds
            .iter()
            .map(|round| RoundFigures {
                exo: measure(exo_of(round)),
                linux: measure(&round.linux),
                floor: None,
            })
            .collect()
    };
    // The same, with the reflector's figure as each round's floor.
    let udp_figures = |measure: fn(&UdpEchoReport) -> Option<f64>| -> Vec<RoundFigures> {
        rounds
            .iter()
            .map(|round| RoundFigures {
                exo: measure(&exo_of(round).udp),
                linux: measure(&round.linux.udp),
                floor: measure(&round.reflector),
            })
            .collect()
    };
    // The median over rounds of one server's per-packet counts.
    let per_packet = |server: usize| {
        let counts: Vec<PerPacket> = rounds
            .iter()
            .filter_map(|round| exo_of(round).per_packet.map(|counts| counts[server]))
            .collect();
        PerPacket {
            syscalls: median(counts.iter().filter_map(|count| count.syscalls)),
            kernel_entries: median(counts.iter().filter_map(|count| count.kernel_entries)),
        }
    };
    let rings = path == DataPath::Rings;
    let p50 = |udp: &UdpEchoReport| udp.latency.map(|latency| latency.p50_us);
    let p99 = |udp: &UdpEchoReport| udp.latency.map(|latency| latency.p99_us);
    let mut udp_p50 = Row::from_rounds(
        name("UDP echo round trip, p50"),
        "us",
        Better::Lower,
        udp_figures(p50),
    )
    .with_per_packet(per_packet(0))
    .with_floor(Floor {
        max_ratio: rings.then_some(1.2),
    });
    if rings {
        udp_p50 = udp_p50.with_target(Target::ratio_at_least(1.0 / 0.8));
    }
    let udp_p99 = Row::from_rounds(
        name("UDP echo round trip, p99"),
        "us",
        Better::Lower,
        udp_figures(p99),
    )
    .with_per_packet(per_packet(0))
    .with_floor(Floor { max_ratio: None });
    let request_response = Row::from_rounds(
        name("TCP request/response"),
        "transactions/s",
        Better::Higher,
        figures(|figures| Some(figures.request_response.transactions_per_second)),
    )
    .with_per_packet(per_packet(1));
    // The bulk rows' floor: the same stream into `tcp-sink` in the same round.
    let bulk_figures = rounds
        .iter()
        .map(|round| RoundFigures {
            exo: Some(exo_of(round).bulk.megabits_per_second),
            linux: Some(round.linux.bulk.megabits_per_second),
            floor: Some(round.sink.megabits_per_second),
        })
        .collect();
    let mut bulk = Row::from_rounds(
        name("TCP bulk into a discard server"),
        "Mbit/s",
        Better::Higher,
        bulk_figures,
    )
    .with_per_packet(per_packet(2))
    .with_floor(Floor { max_ratio: None });
    if rings {
        bulk = bulk.with_target(Target::ratio_at_least(1.5));
    }
    vec![udp_p50, udp_p99, request_response, bulk]
}

#[cfg(test)]
mod tests {
    use super::*;
    use exo_loadgen::{LatencySummary, RequestResponseReport};

    fn line(name: &str, median: u64) -> BenchLine {
        BenchLine {
            name: name.to_string(),
            median,
            repetitions: 10,
        }
    }

    fn row<'a>(rows: &'a [Row], name: &str) -> &'a Row {
        rows.iter()
            .find(|row| row.name.starts_with(name))
            .unwrap_or_else(|| panic!("no row {name}"))
    }

    #[test]
    fn micro_rows_take_each_rounds_figures_and_floors() {
        let round = |exo_null, linux_null, trap_floor: Option<u64>| {
            let mut exo = vec![line("null-syscall", exo_null), line("spawn", 100)];
            exo.extend(trap_floor.map(|floor| line("trap-floor", floor)));
            MicroRound {
                exo,
                linux: vec![line("null-syscall", linux_null), line("spawn", 2000)],
            }
        };
        let rounds = [
            round(1000, 4000, Some(800)),
            round(1200, 3600, None),
            round(1100, 4950, Some(1000)),
        ];
        let rows = micro_rows(&rounds, None);
        assert_eq!(rows.len(), MICROBENCHMARKS.len());
        let null = row(&rows, "null system call");
        assert_eq!(null.rounds.len(), 3);
        assert_eq!(null.ratio_spread().map(|spread| spread.median), Some(4.0));
        assert_eq!(null.floor_figure(), Some(900.0));
        assert_eq!(null.floor_ratio(), Some(1.175), "(1.25 + 1.1) / 2");
        assert_eq!(null.floor_target_met(), Some(true));
        // A floor the program never printed: the row has a place for it, and nothing in it.
        let fault = row(&rows, "page-fault");
        assert!(fault.floor.is_some());
        assert_eq!((fault.exo, fault.floor_figure()), (None, None));
        assert_eq!(row(&rows, "spawn").ratio(), Some(20.0));
        assert!(row(&rows, "spawn").floor.is_none());
        assert!(row(&rows, "call/reply").floor.is_some());
    }

    fn figures(p50_us: f64, transactions_per_second: f64, megabits: f64) -> NetworkFigures {
        let latency = LatencySummary {
            samples: 1,
            min_us: p50_us,
            p50_us,
            p99_us: p50_us * 2.0,
            mean_us: p50_us,
            max_us: p50_us * 2.0,
        };
        NetworkFigures {
            udp: UdpEchoReport {
                sent: 1,
                received: 1,
                lost: 0,
                packets: 2,
                latency: Some(latency),
            },
            request_response: RequestResponseReport {
                transactions: 1,
                seconds: 1.0,
                transactions_per_second,
                latency,
                packets: 2,
            },
            bulk: BulkReport {
                bytes: 1,
                seconds: 1.0,
                megabits_per_second: megabits,
                mebibytes_per_second: megabits / 8.0,
                packets: 2,
            },
            per_packet: None,
        }
    }

    #[test]
    fn a_network_round_compares_each_exo_path_with_that_rounds_linux() {
        // Round 2's host was slow for everyone: its figures are all halved.
        let rounds = [
            NetworkRound {
                exo: vec![
                    (DataPath::Rings, figures(100.0, 3000.0, 600.0)),
                    (DataPath::RingsAtNextEntry, figures(150.0, 2500.0, 500.0)),
                    (DataPath::SystemCalls, figures(200.0, 2000.0, 400.0)),
                ],
                linux: figures(200.0, 2000.0, 400.0),
                reflector: figures(90.0, 0.0, 0.0).udp,
                reflector_beside_idle: figures(90.0, 0.0, 0.0).udp,
                sink: figures(0.0, 0.0, 1200.0).bulk,
            },
            NetworkRound {
                // Another order: the rows find each path's figures by name.
                exo: vec![
                    (DataPath::SystemCalls, figures(400.0, 1000.0, 200.0)),
                    (DataPath::Rings, figures(200.0, 1500.0, 300.0)),
                    (DataPath::RingsAtNextEntry, figures(300.0, 1250.0, 250.0)),
                ],
                linux: figures(400.0, 1000.0, 200.0),
                reflector: figures(160.0, 0.0, 0.0).udp,
                reflector_beside_idle: figures(160.0, 0.0, 0.0).udp,
                sink: figures(0.0, 0.0, 900.0).bulk,
            },
        ];
        let rings = network_rows(DataPath::Rings, &rounds);
        let p50 = row(&rings, "UDP echo round trip, p50");
        let spread = p50.ratio_spread().unwrap();
        assert_eq!((spread.lowest, spread.highest), (2.0, 2.0));
        assert_eq!(p50.target_met(), Some(true));
        // The reflector's round trip is each round's floor: 100/90 and 200/160.
        assert_eq!(p50.floor_figure(), Some(125.0));
        let floor_ratio = p50.floor_ratio().unwrap();
        assert!((floor_ratio - (100.0 / 90.0 + 1.25) / 2.0).abs() < 1e-9);
        assert_eq!(p50.floor_target_met(), Some(true));
        let bulk = row(&rings, "TCP bulk");
        assert_eq!(bulk.ratio(), Some(1.5));
        assert_eq!(bulk.target.map(|target| target.min_ratio), Some(1.5));
        assert_eq!(bulk.target_met(), Some(true));
        // tcp-sink's rate is each round's floor, a ceiling: 1200/600 and 900/300 floors.
        assert_eq!(bulk.floor_figure(), Some(1050.0));
        assert_eq!(bulk.floor_ratio(), Some(2.5));
        // Idle bindings that cost nothing: the reflector beside them is at its floor.
        let idle = idle_bindings_row(&rounds);
        assert_eq!(idle.floor_ratio(), Some(1.0));
        let calls = network_rows(DataPath::SystemCalls, &rounds);
        assert!(calls.iter().all(|row| row.ratio() == Some(1.0)));
        assert!(calls.iter().all(|row| row.target.is_none()));
        assert!(calls[0].name.ends_with("(exo: system calls)"));
        let lazy = network_rows(DataPath::RingsAtNextEntry, &rounds);
        assert!(lazy.iter().all(|row| row.target.is_none()));
        assert_eq!(row(&lazy, "TCP request/response").ratio(), Some(1.25));
        assert!(
            lazy[0]
                .name
                .ends_with("(exo: rings, sent at the next entry)")
        );
    }
}
