//! The benchmark programs' report lines, `BENCH <name> <median> cycles n=<repetitions>`,
//! one per benchmark and then `BENCH-DONE`: exo's `bench` and `bench-libos`
//! (`userapps/src/bin/bench.rs`, `userapps/posix/src/bin/bench-libos.rs`) and the Linux
//! guest's `linux-peer micro` (`tools/linux-peer/src/micro.rs`) all print them. This
//! module reads them back from a serial log ([`parse_report`], for `cargo xtask bench`)
//! and checks their form for the smoke scenarios ([`check`]): never a figure, since
//! tests do not assert on time.

use std::fmt;

/// The benchmarks `bench` runs, in the order it prints them.
pub const KERNEL_BENCHMARKS: [&str; 7] = [
    "null-syscall",
    "trap-floor",
    "page-fault",
    "exception-floor",
    "map-touch-unmap",
    "yield-round-trip",
    "call-reply",
];
/// The benchmarks `bench-libos` runs, in the order it prints them.
pub const LIBOS_BENCHMARKS: [&str; 2] = ["spawn", "thread-switch"];
/// The line after the last benchmark's.
pub const DONE: &str = "BENCH-DONE";

/// Repetitions in the smoke scenarios: `init_argument=` for `bench`, `-n` for
/// `bench-libos` (their table entries are built from these).
pub const KERNEL_SMOKE_REPETITIONS: u64 = 50;
pub const LIBOS_SMOKE_REPETITIONS: u64 = 20;

/// One benchmark's figure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchLine {
    pub name: String,
    /// The median, in TSC cycles.
    pub median: u64,
    pub repetitions: u64,
}

/// The line the benchmark programs print for it.
impl fmt::Display for BenchLine {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "BENCH {} {} cycles n={}",
            self.name, self.median, self.repetitions
        )
    }
}

/// `line` read as a report line, or `None` if it is not one (or is malformed).
pub fn parse(line: &str) -> Option<BenchLine> {
    let mut words = line.trim_end().split(' ');
    let (Some("BENCH"), Some(name), Some(median), Some("cycles"), Some(count), None) = (
        words.next(),
        words.next(),
        words.next(),
        words.next(),
        words.next(),
        words.next(),
    ) else {
        return None;
    };
    Some(BenchLine {
        name: name.to_string(),
        median: median.parse().ok()?,
        repetitions: count.strip_prefix("n=")?.parse().ok()?,
    })
}

/// Every report line in `serial`, in order, which must reach [`DONE`]; other lines (the
/// kernel's, the shell's) are skipped, but a malformed `BENCH` line is an error.
pub fn parse_report(serial: &str) -> Result<Vec<BenchLine>, String> {
    let mut lines = Vec::new();
    for line in serial.lines() {
        if line.trim() == DONE {
            return if lines.is_empty() {
                Err(format!("{DONE} came before any BENCH line"))
            } else {
                Ok(lines)
            };
        }
        if let Some(parsed) = parse(line) {
            lines.push(parsed);
        } else if line.trim_start().starts_with("BENCH ") {
            return Err(format!("malformed benchmark line: `{}`", line.trim()));
        }
    }
    Err(format!(
        "the output ended without {DONE} ({} benchmark lines before)",
        lines.len()
    ))
}

/// Checks that `serial` holds, in this order, one well-formed line for each of `expected`
/// with a positive median and `repetitions` repetitions, and then `BENCH-DONE`.
pub fn check(serial: &str, expected: &[&str], repetitions: u64) -> Result<(), String> {
    let mut lines = serial.lines().map(|line| line.trim_end_matches('\r'));
    for name in expected {
        let prefix = format!("BENCH {name} ");
        let Some(line) = lines.by_ref().find(|line| line.starts_with(&prefix)) else {
            return Err(format!("no {prefix:?} line (searched in order)"));
        };
        let wanted = format!("`BENCH {name} <median> cycles n={repetitions}`");
        match parse(line) {
            Some(parsed) if parsed.median > 0 && parsed.repetitions == repetitions => {}
            Some(parsed) if parsed.median == 0 => {
                return Err(format!("{line:?}: the median must be positive"));
            }
            _ => return Err(format!("{line:?} is not {wanted}")),
        }
    }
    if !lines.any(|line| line == DONE) {
        return Err(format!("no {DONE:?} line after the benchmarks'"));
    }
    Ok(())
}

/// bench-smoke's check of `bench`'s lines.
pub fn kernel_smoke(serial: &str) -> Result<(), String> {
    check(serial, &KERNEL_BENCHMARKS, KERNEL_SMOKE_REPETITIONS)
}

/// bench-libos-smoke's check of `bench-libos`'s lines.
pub fn libos_smoke(serial: &str) -> Result<(), String> {
    check(serial, &LIBOS_BENCHMARKS, LIBOS_SMOKE_REPETITIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_parse() {
        assert_eq!(
            parse("BENCH null-syscall 95 cycles n=10000\r"),
            Some(BenchLine {
                name: "null-syscall".to_string(),
                median: 95,
                repetitions: 10000
            })
        );
        for bad in [
            "BENCH null-syscall 95 cycles",
            "BENCH null-syscall -3 cycles n=10",
            "BENCH null-syscall 95 ticks n=10",
            "BENCH null-syscall 95 cycles n=",
            "BENCH null-syscall 95 cycles n=10 extra",
            "bench: 10 repetitions each",
            "BENCH-DONE",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_benchmark_in_order_then_done() {
        let good = "bench: 2 repetitions\nBENCH spawn 900 cycles n=2\nenvironment 3: exited\n\
                    BENCH thread-switch 40 cycles n=2\r\nBENCH-DONE\n";
        assert_eq!(check(good, &LIBOS_BENCHMARKS, 2), Ok(()));
        let reason = check(good, &LIBOS_BENCHMARKS, 3).unwrap_err();
        assert!(
            reason.contains("is not `BENCH spawn <median> cycles n=3`"),
            "{reason}"
        );
        let zero = good.replace("900", "0");
        let reason = check(&zero, &LIBOS_BENCHMARKS, 2).unwrap_err();
        assert!(reason.contains("must be positive"), "{reason}");
        let missing = good.replace("BENCH spawn", "BENCH spwan");
        let reason = check(&missing, &LIBOS_BENCHMARKS, 2).unwrap_err();
        assert!(reason.contains("\"BENCH spawn \""), "{reason}");
        let unfinished = good.replace("BENCH-DONE", "");
        let reason = check(&unfinished, &LIBOS_BENCHMARKS, 2).unwrap_err();
        assert!(reason.contains("BENCH-DONE"), "{reason}");
        let reversed =
            "BENCH thread-switch 40 cycles n=2\nBENCH spawn 900 cycles n=2\nBENCH-DONE\n";
        assert!(check(reversed, &LIBOS_BENCHMARKS, 2).is_err());
    }

    #[test]
    fn lines_the_check_does_not_ask_for_are_read_and_passed_over() {
        // Floors and whatever else a program learns to print between the lines it must.
        let serial = "BENCH null-syscall 900 cycles n=50\n\
                      BENCH trap-floor 300 cycles n=50\n\
                      BENCH page-fault 9000 cycles n=50\n\
                      BENCH exception-floor 3000 cycles n=50\n\
                      BENCH map-touch-unmap 16000 cycles n=50\n\
                      BENCH yield-round-trip 36000 cycles n=50\n\
                      BENCH call-reply 33000 cycles n=50\n\
                      BENCH address-space-switch-floor 2000 cycles n=50\n\
                      BENCH-DONE\n";
        assert_eq!(check(serial, &KERNEL_BENCHMARKS, 50), Ok(()));
        let names: Vec<String> = parse_report(serial)
            .unwrap()
            .into_iter()
            .map(|line| line.name)
            .collect();
        assert_eq!(names.len(), 8);
        assert!(names.contains(&"address-space-switch-floor".to_string()));
    }

    #[test]
    fn a_line_prints_as_read() {
        let line = "BENCH page-fault 9123 cycles n=10000";
        assert_eq!(parse(line).unwrap().to_string(), line);
    }

    #[test]
    fn a_report_runs_to_bench_done() {
        let output = "[    1.2] random: crng init done\r\n\
                      BENCH null-syscall 812 cycles n=10000\r\n\
                      BENCH spawn 900000 cycles n=200\r\n\
                      BENCH-DONE\r\n\
                      reboot: Power down\r\n";
        let names: Vec<String> = parse_report(output)
            .unwrap()
            .into_iter()
            .map(|line| line.name)
            .collect();
        assert_eq!(names, ["null-syscall", "spawn"]);
    }

    #[test]
    fn a_cut_short_or_malformed_report_is_an_error() {
        let cut = parse_report("BENCH null-syscall 812 cycles n=10\n").unwrap_err();
        assert!(
            cut.contains("without BENCH-DONE (1 benchmark lines"),
            "{cut}"
        );
        let malformed = parse_report("BENCH spawn ? cycles n=1\nBENCH-DONE\n").unwrap_err();
        assert!(
            malformed.contains("`BENCH spawn ? cycles n=1`"),
            "{malformed}"
        );
        assert!(parse_report("BENCH-DONE\n").is_err());
    }
}
