//! The benchmark report: the rows `cargo xtask bench` measures, and every form they are shown
//! in: `bench.json`, a Markdown table (`bench.md` and the terminal), SVG charts, and the
//! progress lines printed while the rows are measured.
//!
//! Pure: it formats figures it is given and writes files; it never measures, and never
//! decides what a figure is beyond medians over rounds, the ratio of two (exo's and the
//! Linux guest's, or exo's and its floor) and whether it meets its target. The JSON,
//! Markdown and SVG are written by hand, each in its own module; the tests read the JSON and
//! the SVG back with parsers (serde_json, roxmltree).

pub mod charts;
mod human_numbers;
pub mod json;
mod markdown;
mod spread;

pub use spread::{Spread, median};

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

/// A row's floor: the cheapest path of the same kind exo's machine allows (a system call
/// answered in the kernel's entry stub, say), measured by exo in the same boot as the row's
/// own figure. Its ratio is how many floors exo's path costs: exo ÷ floor for a cost (cycles,
/// a round trip), floor ÷ exo for a rate (Mbit/s), whose floor is a ceiling.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Floor {
    /// The target, if the row has one: exo at most this many floors.
    pub max_ratio: Option<f64>,
}

impl Floor {
    /// How the target reads in `bench.json`: `floor_ratio <= 1.5`.
    pub fn describe(&self) -> Option<String> {
        self.max_ratio
            .map(|max_ratio| format!("floor_ratio <= {max_ratio}"))
    }
}

/// One round's figures for a row: exo's, the Linux guest's and exo's floor, each `None`
/// where it was not measured. The two guests of a round ran one after the other.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RoundFigures {
    pub exo: Option<f64>,
    pub linux: Option<f64>,
    pub floor: Option<f64>,
}

/// One benchmark: exo's figure beside the Linux guest's on the same QEMU configuration,
/// over one or more rounds.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub name: String,
    pub unit: String,
    pub better: Better,
    /// Each round's figures, in the order they were measured.
    pub rounds: Vec<RoundFigures>,
    /// exo's figure, the median over rounds; `None`: not measured (it failed, or exo has
    /// no such path).
    pub exo: Option<f64>,
    /// The Linux guest's figure, the median over rounds; `None` where there is none.
    pub linux: Option<f64>,
    /// The host's own Linux, for context only (shown where KVM is in use); never in a ratio.
    pub host: Option<f64>,
    /// `Some` on network rows, which always carry their per-packet costs (if unknown, null).
    pub per_packet: Option<PerPacket>,
    pub target: Option<Target>,
    /// `Some` on rows that have a floor, whose figure then is in each round (if measured).
    pub floor: Option<Floor>,
}

impl Row {
    /// A row of one round with neither a host figure, per-packet costs, a target nor a
    /// floor: the tests' shorthand.
    #[cfg(test)]
    pub fn new(
        name: impl Into<String>,
        unit: impl Into<String>,
        better: Better,
        exo: Option<f64>,
        linux: Option<f64>,
    ) -> Self {
        let round = RoundFigures {
            exo,
            linux,
            floor: None,
        };
        Row::from_rounds(name, unit, better, vec![round])
    }

    /// A row of `rounds`, whose figures are the medians over them.
    pub fn from_rounds(
        name: impl Into<String>,
        unit: impl Into<String>,
        better: Better,
        rounds: Vec<RoundFigures>,
    ) -> Self {
        Row {
            name: name.into(),
            unit: unit.into(),
            better,
            exo: median(rounds.iter().filter_map(|round| round.exo)),
            linux: median(rounds.iter().filter_map(|round| round.linux)),
            rounds,
            host: None,
            per_packet: None,
            target: None,
            floor: None,
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

    pub fn with_floor(mut self, floor: Floor) -> Self {
        self.floor = Some(floor);
        self
    }

    /// How far exo was ahead of the Linux guest in each round it was measured in both:
    /// linux/exo for costs, exo/linux for rates, above 1 exo is ahead; the median over those
    /// rounds and the lowest and highest. `None` when no round has both sides (non-zero and
    /// finite).
    pub fn ratio_spread(&self) -> Option<Spread> {
        Spread::of(self.rounds.iter().filter_map(|round| {
            let (exo, linux) = (usable(round.exo)?, usable(round.linux)?);
            Some(match self.better {
                Better::Lower => linux / exo,
                Better::Higher => exo / linux,
            })
        }))
    }

    /// The median of the rounds' ratios: a round whose host was busier than the others'
    /// moves it no more than one round can.
    pub fn ratio(&self) -> Option<f64> {
        self.ratio_spread().map(|spread| spread.median)
    }

    /// Whether the ratio reaches the target; `None` without a target or a ratio.
    pub fn target_met(&self) -> Option<bool> {
        Some(self.ratio()? >= self.target?.min_ratio)
    }

    /// exo's floor figure, the median over rounds; `None` on rows without a floor or
    /// where it was not measured.
    pub fn floor_figure(&self) -> Option<f64> {
        self.floor?;
        median(self.rounds.iter().filter_map(|round| round.floor))
    }

    /// How many floors exo's path costs in each round that measured both (exo ÷ floor, or
    /// floor ÷ exo for a rate), and their median, lowest and highest.
    pub fn floor_spread(&self) -> Option<Spread> {
        self.floor?;
        Spread::of(self.rounds.iter().filter_map(|round| {
            let (exo, floor) = (usable(round.exo)?, usable(round.floor)?);
            Some(match self.better {
                Better::Lower => exo / floor,
                Better::Higher => floor / exo,
            })
        }))
    }

    /// The median over rounds of how many floors exo's path costs.
    pub fn floor_ratio(&self) -> Option<f64> {
        self.floor_spread().map(|spread| spread.median)
    }

    /// Whether exo's path costs at most the floor target's number of floors; `None` without
    /// such a target or a floor ratio.
    pub fn floor_target_met(&self) -> Option<bool> {
        Some(self.floor_ratio()? <= self.floor?.max_ratio?)
    }
}

/// A figure a ratio can be taken of: present, finite and not zero.
fn usable(figure: Option<f64>) -> Option<f64> {
    figure.filter(|value| value.is_finite() && *value != 0.0)
}

/// What an ELF file's loadable segments take in memory (`bench::sizes` reads them): `text`,
/// the executable segments' file bytes; `data`, the rest (read-only data, data, `.bss`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadedBytes {
    pub text: u64,
    pub data: u64,
}

impl LoadedBytes {
    /// Every loaded byte: text and data.
    pub fn total(&self) -> u64 {
        self.text + self.data
    }
}

/// The size of one image: a program, a kernel, the Linux guest's initramfs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSize {
    pub name: String,
    /// The file's bytes (`elf_bytes` in `bench.json`; for the Linux guest's compressed
    /// kernel and initramfs, which are not ELF, their files' bytes all the same).
    pub file_bytes: u64,
    /// What it loads, if it is an ELF file.
    pub loaded: Option<LoadedBytes>,
    /// The target, if there is one: at most this many bytes loaded.
    pub max_loaded_bytes: Option<u64>,
}

impl ImageSize {
    /// How the target reads in `bench.json`: `loaded_bytes <= 131072`.
    pub fn describe_target(&self) -> Option<String> {
        self.max_loaded_bytes
            .map(|bytes| format!("loaded_bytes <= {bytes}"))
    }

    /// Whether it loads no more than its target; `None` without a target or an ELF.
    pub fn target_met(&self) -> Option<bool> {
        Some(self.loaded?.total() <= self.max_loaded_bytes?)
    }
}

/// Everything one `cargo xtask bench` run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// The accelerator both guests ran under: `kvm` or `tcg`.
    pub accel: String,
    pub rows: Vec<Row>,
    /// The images' sizes: exo's kernel and servers, the Linux guest's.
    pub sizes: Vec<ImageSize>,
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

    fn rounds(figures: &[(f64, f64, Option<f64>)]) -> Vec<RoundFigures> {
        figures
            .iter()
            .map(|&(exo, linux, floor)| RoundFigures {
                exo: Some(exo),
                linux: Some(linux),
                floor,
            })
            .collect()
    }

    #[test]
    fn a_row_of_rounds_takes_the_median_of_each_side_and_of_the_rounds_ratios() {
        // A busy host slowed Linux in round 2 and exo in round 3: the ratios say 4, 6, 2.
        let row = Row::from_rounds(
            "null",
            "cycles",
            Better::Lower,
            rounds(&[
                (100.0, 400.0, None),
                (100.0, 600.0, None),
                (300.0, 600.0, None),
            ]),
        );
        assert_eq!((row.exo, row.linux), (Some(100.0), Some(600.0)));
        let spread = row.ratio_spread().unwrap();
        assert_eq!(
            (spread.median, spread.lowest, spread.highest, spread.rounds),
            (4.0, 2.0, 6.0, 3)
        );
        assert_eq!(row.ratio(), Some(4.0), "not 600 / 100, the medians' ratio");
        let rate = Row::from_rounds(
            "bulk",
            "Mbit/s",
            Better::Higher,
            rounds(&[(150.0, 100.0, None), (200.0, 100.0, None)]),
        )
        .with_target(Target::ratio_at_least(1.5));
        assert_eq!(rate.ratio(), Some(1.75));
        assert_eq!(rate.target_met(), Some(true));
    }

    #[test]
    fn a_round_missing_a_side_gives_no_ratio_but_still_counts_its_figure() {
        let mut figures = rounds(&[(100.0, 400.0, None), (200.0, 500.0, None)]);
        figures[1].linux = None;
        let row = Row::from_rounds("null", "cycles", Better::Lower, figures);
        assert_eq!((row.exo, row.linux), (Some(150.0), Some(400.0)));
        assert_eq!(row.ratio_spread().unwrap().rounds, 1);
    }

    #[test]
    fn the_floor_ratio_is_exo_over_its_floor_round_by_round() {
        let figures = rounds(&[
            (130.0, 500.0, Some(100.0)),
            (150.0, 500.0, Some(100.0)),
            (180.0, 500.0, None),
        ]);
        let floored = Row::from_rounds("null", "cycles", Better::Lower, figures.clone())
            .with_floor(Floor {
                max_ratio: Some(1.5),
            });
        assert_eq!(floored.floor_figure(), Some(100.0));
        assert_eq!(floored.floor_ratio(), Some(1.4));
        assert_eq!(floored.floor_target_met(), Some(true));
        let strict = floored.clone().with_floor(Floor {
            max_ratio: Some(1.2),
        });
        assert_eq!(strict.floor_target_met(), Some(false));
        let untargeted = floored.clone().with_floor(Floor::default());
        assert_eq!(untargeted.floor_target_met(), None);
        assert_eq!(Floor::default().describe(), None);
        assert_eq!(
            Floor {
                max_ratio: Some(1.5)
            }
            .describe()
            .as_deref(),
            Some("floor_ratio <= 1.5")
        );
        // Without a floor the rounds' floor figures are not the row's business.
        let plain = Row::from_rounds("null", "cycles", Better::Lower, figures);
        assert_eq!((plain.floor_figure(), plain.floor_ratio()), (None, None));
        // A floor never measured is a missing figure, not an error.
        let unmeasured = Row::new("null", "cycles", Better::Lower, Some(1.0), Some(4.0))
            .with_floor(Floor {
                max_ratio: Some(1.5),
            });
        assert_eq!(unmeasured.floor_ratio(), None);
        assert_eq!(unmeasured.floor_target_met(), None);
    }

    #[test]
    fn a_size_target_is_met_at_or_below_its_bytes() {
        let size = |text, data| ImageSize {
            name: "udp-echo".into(),
            file_bytes: 1,
            loaded: Some(LoadedBytes { text, data }),
            max_loaded_bytes: Some(128 << 10),
        };
        assert_eq!(size(100 << 10, 28 << 10).target_met(), Some(true));
        assert_eq!(size(100 << 10, (28 << 10) + 1).target_met(), Some(false));
        assert_eq!(
            size(1, 1).describe_target().as_deref(),
            Some("loaded_bytes <= 131072")
        );
        let not_elf = ImageSize {
            loaded: None,
            ..size(1, 1)
        };
        assert_eq!(not_elf.target_met(), None);
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
            sizes: Vec::new(),
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
