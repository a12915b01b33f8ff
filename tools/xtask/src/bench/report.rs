//! The benchmark report: the rows `cargo xtask bench` measures, and every form they are shown
//! in: `bench.json`, a Markdown table (`bench.md` and the terminal), SVG charts, and the
//! progress lines printed while the rows are measured.
//!
//! Pure: it formats figures it is given and writes files; it never measures, and never
//! decides what a figure is beyond the ratio of two (exo's and the Linux guest's) and whether
//! it meets its target. The JSON, Markdown and SVG are written by hand, each in its own
//! module; the tests read the JSON and the SVG back with parsers (serde_json, roxmltree).

pub mod charts;
mod human_numbers;
pub mod json;
mod markdown;

use std::io::Write;
use std::path::{Path, PathBuf};

/// Which way a figure improves: costs (time, cycles, latency) are better lower, rates
/// (operations per second, throughput) higher. It sets the ratio's direction, so that a
/// ratio above 1 always means exo is ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
}

/// What a row's ratio must reach: at least `min_ratio` (4.0: exo four times ahead).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Target {
    pub min_ratio: f64,
}

impl Target {
    pub fn ratio_at_least(min_ratio: f64) -> Self {
        Target { min_ratio }
    }

    /// How the target reads in `bench.json`: `ratio >= 4`.
    pub fn describe(&self) -> String {
        format!("ratio >= {}", self.min_ratio)
    }
}

/// What exo's library OS spent per packet on a network row, over the whole run of the load
/// generator (divided by its packet count). `None` where it was not counted.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PerPacket {
    pub syscalls: Option<f64>,
    pub kernel_entries: Option<f64>,
}

/// One benchmark: exo's figure beside the Linux guest's on the same QEMU configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub name: String,
    pub unit: String,
    pub better: Better,
    /// `None`: not measured (it failed, or exo has no such path).
    pub exo: Option<f64>,
    /// The Linux guest's figure; `None` where there is none.
    pub linux: Option<f64>,
    /// The host's own Linux, for context only (shown where KVM is in use); never in a ratio.
    pub host: Option<f64>,
    /// `Some` on network rows, which always carry their per-packet costs (if unknown, null).
    pub per_packet: Option<PerPacket>,
    pub target: Option<Target>,
}

impl Row {
    /// A row with neither a host figure, per-packet costs nor a target.
    pub fn new(
        name: impl Into<String>,
        unit: impl Into<String>,
        better: Better,
        exo: Option<f64>,
        linux: Option<f64>,
    ) -> Self {
        Row {
            name: name.into(),
            unit: unit.into(),
            better,
            exo,
            linux,
            host: None,
            per_packet: None,
            target: None,
        }
    }

    /// Makes this a network row with exo's per-packet costs.
    pub fn with_per_packet(mut self, per_packet: PerPacket) -> Self {
        self.per_packet = Some(per_packet);
        self
    }

    pub fn with_host(mut self, host: Option<f64>) -> Self {
        self.host = host;
        self
    }

    pub fn with_target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    /// How far exo is ahead of the Linux guest: linux/exo for costs, exo/linux for rates;
    /// above 1 exo is ahead. `None` when a side is missing, zero or not finite.
    pub fn ratio(&self) -> Option<f64> {
        let usable =
            |figure: Option<f64>| figure.filter(|value| value.is_finite() && *value != 0.0);
        let (exo, linux) = (usable(self.exo)?, usable(self.linux)?);
        let ratio = match self.better {
            Better::Lower => linux / exo,
            Better::Higher => exo / linux,
        };
        Some(ratio).filter(|ratio| ratio.is_finite())
    }

    /// Whether the ratio reaches the target; `None` without a target or a ratio.
    pub fn target_met(&self) -> Option<bool> {
        Some(self.ratio()? >= self.target?.min_ratio)
    }
}

/// Everything one `cargo xtask bench` run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The accelerator both guests ran under: `kvm` or `tcg`.
    pub accel: String,
    pub rows: Vec<Row>,
}

impl Report {
    /// `bench.json`: see the `json` module for its exact form.
    pub fn to_json(&self) -> String {
        json::report(self)
    }

    /// The table shown on the terminal and written to `bench.md`.
    pub fn to_markdown(&self) -> String {
        markdown::report(self)
    }

    /// The charts, as (file name, SVG document): one bar chart per unit, then the ratios.
    pub fn charts(&self) -> Vec<(String, String)> {
        charts::all(self)
    }

    /// Writes `bench.json`, `bench.md` and the charts into `directory` (made if missing);
    /// returns the paths written.
    pub fn write_to(&self, directory: &Path) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(directory)?;
        let mut files = vec![
            ("bench.json".to_string(), self.to_json()),
            ("bench.md".to_string(), self.to_markdown()),
        ];
        files.extend(self.charts());
        let mut written = Vec::with_capacity(files.len());
        for (name, contents) in files {
            let path = directory.join(name);
            std::fs::write(&path, contents)?;
            written.push(path);
        }
        Ok(written)
    }
}

/// Progress while the benchmarks run: one `[i/n] what…` line on stderr per step.
#[derive(Debug)]
pub struct Progress {
    done: usize,
    total: usize,
}

impl Progress {
    /// Progress through `total` steps.
    pub fn new(total: usize) -> Self {
        Progress { done: 0, total }
    }

    /// Announces the next step, `what`.
    pub fn step(&mut self, what: &str) {
        let line = self.next_line(what);
        // Progress is a courtesy: a closed stderr must not stop the benchmarks.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    fn next_line(&mut self, what: &str) -> String {
        self.done += 1;
        // More steps than announced is the caller's miscount; show it rather than hide it.
        let total = self.total.max(self.done);
        format!("[{}/{total}] {what}…", self.done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ratio_above_one_means_exo_is_ahead_for_costs_and_rates() {
        let cost = Row::new("null syscall", "ns", Better::Lower, Some(50.0), Some(200.0));
        assert_eq!(cost.ratio(), Some(4.0));
        let rate = Row::new(
            "tcp rr",
            "transactions/s",
            Better::Higher,
            Some(300.0),
            Some(100.0),
        );
        assert_eq!(rate.ratio(), Some(3.0));
        let slower = Row::new("udp p50", "µs", Better::Lower, Some(200.0), Some(50.0));
        assert_eq!(slower.ratio(), Some(0.25));
    }

    #[test]
    fn no_ratio_without_both_sides() {
        let ratio = |exo, linux| Row::new("r", "ns", Better::Lower, exo, linux).ratio();
        assert_eq!(ratio(Some(1.0), None), None);
        assert_eq!(ratio(None, Some(1.0)), None);
        assert_eq!(ratio(Some(0.0), Some(1.0)), None);
        assert_eq!(ratio(Some(1.0), Some(0.0)), None);
        assert_eq!(ratio(Some(f64::NAN), Some(1.0)), None);
        assert_eq!(ratio(Some(f64::MIN_POSITIVE), Some(f64::MAX)), None);
    }

    #[test]
    fn a_target_is_met_at_or_above_its_ratio() {
        let row = |linux| {
            Row::new("r", "ns", Better::Lower, Some(10.0), linux)
                .with_target(Target::ratio_at_least(4.0))
        };
        assert_eq!(row(Some(40.0)).target_met(), Some(true));
        assert_eq!(row(Some(39.0)).target_met(), Some(false));
        assert_eq!(row(None).target_met(), None);
        let untargeted = Row::new("r", "ns", Better::Lower, Some(1.0), Some(2.0));
        assert_eq!(untargeted.target_met(), None);
        assert_eq!(Target::ratio_at_least(4.0).describe(), "ratio >= 4");
        assert_eq!(Target::ratio_at_least(1.5).describe(), "ratio >= 1.5");
    }

    #[test]
    fn progress_counts_its_steps() {
        let mut progress = Progress::new(2);
        assert_eq!(progress.next_line("booting exo"), "[1/2] booting exo…");
        assert_eq!(progress.next_line("udp echo"), "[2/2] udp echo…");
        assert_eq!(progress.next_line("extra"), "[3/3] extra…");
    }

    #[test]
    fn write_to_writes_the_json_the_table_and_the_charts() {
        let directory = std::env::temp_dir().join(format!("exo-bench-{}", std::process::id()));
        let report = Report {
            accel: "tcg".into(),
            rows: vec![Row::new(
                "null syscall",
                "ns",
                Better::Lower,
                Some(1.0),
                Some(2.0),
            )],
        };
        let written = report.write_to(&directory).unwrap();
        let names: Vec<_> = written
            .iter()
            .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["bench.json", "bench.md", "bench-ns.svg", "bench-ratios.svg"]
        );
        let json = std::fs::read_to_string(directory.join("bench.json")).unwrap();
        assert_eq!(json, report.to_json());
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
