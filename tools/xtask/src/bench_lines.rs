//! The lines a benchmark program prints, one per benchmark: `BENCH <name> <median> cycles
//! n=<repetitions>`, then `BENCH-DONE` once all have run. `linux-peer micro` prints them
//! (tools/linux-peer/src/micro.rs); this module reads them back from a serial log.
//!
//! It only parses: what the figures mean, and how they compare, is the caller's business.

use std::fmt;

/// The line that follows the last benchmark's.
pub const DONE: &str = "BENCH-DONE";
const PREFIX: &str = "BENCH";
const UNIT: &str = "cycles";

/// One benchmark's figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    pub name: String,
    /// The median of the repetitions, in time-stamp counter cycles.
    pub median_cycles: f64,
    pub repetitions: u64,
}

/// The line `linux-peer micro` prints for this measurement.
impl fmt::Display for Measurement {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{PREFIX} {} {} {UNIT} n={}",
            self.name, self.median_cycles, self.repetitions
        )
    }
}

/// The measurement on `line`, if it is a well-formed `BENCH` line (a serial line's `\r`
/// and surrounding blanks are ignored).
pub fn parse_line(line: &str) -> Option<Measurement> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let [PREFIX, name, median, UNIT, repetitions] = words[..] else {
        return None;
    };
    let median_cycles: f64 = median.parse().ok()?;
    let repetitions = repetitions.strip_prefix("n=")?.parse().ok()?;
    median_cycles.is_finite().then(|| Measurement {
        name: name.to_string(),
        median_cycles,
        repetitions,
    })
}

/// Every measurement in `output`, in order, which must end with [`DONE`]; other lines
/// (the kernel's, the shell's) are skipped.
pub fn parse_report(output: &str) -> Result<Vec<Measurement>, String> {
    let mut measurements = Vec::new();
    for line in output.lines() {
        if line.trim() == DONE {
            return if measurements.is_empty() {
                Err(format!("{DONE} came before any BENCH line"))
            } else {
                Ok(measurements)
            };
        }
        if let Some(measurement) = parse_line(line) {
            measurements.push(measurement);
        } else if line.trim_start().starts_with("BENCH ") {
            return Err(format!("malformed benchmark line: `{}`", line.trim()));
        }
    }
    Err(format!(
        "the output ended without {DONE} ({} benchmark lines before)",
        measurements.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bench_line_gives_name_median_and_repetitions() {
        assert_eq!(
            parse_line("BENCH null-syscall 812 cycles n=10000\r"),
            Some(Measurement {
                name: "null-syscall".to_string(),
                median_cycles: 812.0,
                repetitions: 10_000,
            })
        );
        assert_eq!(
            parse_line("BENCH spawn 1.5e6 cycles n=200").map(|m| m.median_cycles),
            Some(1_500_000.0)
        );
        let line = "BENCH page-fault 9123 cycles n=10000";
        assert_eq!(
            parse_line(line).unwrap().to_string(),
            line,
            "printed as read"
        );
    }

    #[test]
    fn other_lines_are_not_bench_lines() {
        for line in [
            "",
            "BENCH-DONE",
            "BENCH null-syscall 812 cycles",
            "BENCH null-syscall 812 ns n=10",
            "BENCH null-syscall many cycles n=10",
            "BENCH null-syscall 812 cycles n=",
            "BENCH null-syscall NaN cycles n=10",
            "[    0.000000] Linux version 6.1.0",
        ] {
            assert_eq!(parse_line(line), None, "`{line}`");
        }
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
            .map(|measurement| measurement.name)
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
