//! The report as Markdown tables, for the terminal and `bench.md`: one line per row, figures
//! formatted for reading (see `human_numbers`), then a note on how to read the ratio, then
//! the images' sizes.
//!
//! Columns: benchmark, unit, exo, Linux guest, ratio (above 1× exo is ahead: the median
//! over rounds, with the lowest and highest round's in brackets: `4.10× (3.80–4.40)`),
//! target; exo's floor and exo ÷ floor when some row has a floor; exo's system calls per
//! packet; exo's kernel entries per packet and a host-Linux column join them only when some
//! row has such a figure. The columns that hold exo's figures alone say so: the Linux guest
//! gives no floors and no per-packet counts.

use super::human_numbers::{MISSING, figure, optional, ratio, whole};
use super::{ImageSize, Report, Row, Spread};

pub fn report(report: &Report) -> String {
    let entries = report.rows.iter().any(|row| {
        row.per_packet
            .is_some_and(|costs| costs.kernel_entries.is_some())
    });
    let host = report.rows.iter().any(|row| row.host.is_some());
    let floors = report.rows.iter().any(|row| row.floor.is_some());

    let mut header = vec![
        "benchmark",
        "unit",
        "exo",
        "Linux guest",
        "ratio (above 1×: exo ahead)",
        "target",
    ];
    if floors {
        header.extend(["exo floor", "exo ÷ floor"]);
    }
    header.push("exo syscalls/packet");
    if entries {
        header.push("exo kernel entries/packet");
    }
    if host {
        header.push("host Linux");
    }
    let mut lines = vec![line(header.iter().map(|title| title.to_string()))];
    lines.push(line(header.iter().enumerate().map(|(column, _)| {
        // Text columns (benchmark, unit, target) left, figures right.
        if matches!(column, 0 | 1 | 5) {
            "---"
        } else {
            "--:"
        }
        .to_string()
    })));
    for row in &report.rows {
        let per_packet = row.per_packet.unwrap_or_default();
        let mut cells = vec![
            cell(&row.name),
            cell(&row.unit),
            optional(row.exo),
            optional(row.linux),
            row.ratio_spread()
                .map_or_else(|| MISSING.to_string(), |spread| spread_cell(&spread)),
            target(row),
        ];
        if floors {
            cells.push(if row.floor.is_some() {
                optional(row.floor_figure())
            } else {
                String::new()
            });
            cells.push(floor_ratio(row));
        }
        cells.push(optional(per_packet.syscalls));
        if entries {
            cells.push(optional(per_packet.kernel_entries));
        }
        if host {
            cells.push(optional(row.host));
        }
        lines.push(line(cells.into_iter()));
    }
    let rounds = report
        .rows
        .iter()
        .map(|row| row.rounds.len())
        .max()
        .unwrap_or(0);
    let mut markdown = format!(
        "{}\n\nAccelerator: {}. Rounds: {rounds}, exo and the Linux guest alternating. Ratio: \
         Linux guest ÷ exo for costs, exo ÷ Linux guest for rates, the median of the rounds' \
         ratios (lowest–highest round); above 1× exo is ahead. exo ÷ floor: how many \
         floors exo's path costs (below is better; for a rate, floor ÷ exo). The per-packet counts are exo's: the \
         Linux guest's servers give none.\n",
        lines.join("\n"),
        cell(&report.accel)
    );
    if !report.sizes.is_empty() {
        markdown.push_str(&sizes(&report.sizes));
    }
    markdown
}

/// A median ratio and its spread: `4.10× (3.80–4.40)`, or only `4.10×` from one round.
pub fn spread_cell(spread: &Spread) -> String {
    if spread.rounds < 2 {
        return ratio(spread.median);
    }
    format!(
        "{} ({}–{})",
        ratio(spread.median),
        figure(spread.lowest),
        figure(spread.highest)
    )
}

/// The exo ÷ floor column: empty without a floor, a dash if it was not measured; else the
/// ratio to the floor, and the floor target where there is one: `1.32×; ≤ 1.5×: met`.
fn floor_ratio(row: &Row) -> String {
    let Some(floor) = row.floor else {
        return String::new();
    };
    let Some(spread) = row.floor_spread() else {
        return MISSING.to_string();
    };
    let reached = spread_cell(&spread);
    match floor.max_ratio {
        None => reached,
        Some(max_ratio) if spread.median <= max_ratio => format!("{reached}; ≤ {max_ratio}×: met"),
        Some(max_ratio) => format!(
            "{reached}; ≤ {max_ratio}×: over by {}%",
            figure((spread.median / max_ratio - 1.0) * 100.0)
        ),
    }
}

/// The sizes table: each image's file, and what it loads (text and data), in bytes.
fn sizes(sizes: &[ImageSize]) -> String {
    let bytes = |value: Option<u64>| value.map_or_else(|| MISSING.to_string(), whole);
    let mut lines = vec![
        "| image | file bytes | loaded bytes | text | data | target |".to_string(),
        "| --- | --: | --: | --: | --: | --- |".to_string(),
    ];
    for size in sizes {
        let target = match (size.max_loaded_bytes, size.loaded) {
            (None, _) => String::new(),
            (Some(most), Some(loaded)) if loaded.total() <= most => {
                format!("≤ {}: met", kibibytes(most))
            }
            (Some(most), Some(loaded)) => format!(
                "≤ {}: {} over",
                kibibytes(most),
                kibibytes(loaded.total() - most)
            ),
            (Some(most), None) => format!("≤ {}: {MISSING}", kibibytes(most)),
        };
        let cells = [
            cell(&size.name),
            whole(size.file_bytes),
            bytes(size.loaded.map(|loaded| loaded.total())),
            bytes(size.loaded.map(|loaded| loaded.text)),
            bytes(size.loaded.map(|loaded| loaded.data)),
            target,
        ];
        lines.push(line(cells.into_iter()));
    }
    format!(
        "\nSizes: file bytes on disk; loaded bytes, what the ELF's loadable segments take in \
         memory: text (executable) and data (the rest, `.bss` included).\n\n{}\n",
        lines.join("\n")
    )
}

/// Bytes in KiB, to one decimal where not whole: `128 KiB`, `8.7 KiB`.
fn kibibytes(bytes: u64) -> String {
    if bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// The target column: empty without a target; else `≥ 4×: met` or `≥ 4×: missed by 38%`
/// (how far short the ratio is, as a share of the target).
fn target(row: &Row) -> String {
    let Some(target) = row.target else {
        return String::new();
    };
    let wanted = format!("≥ {}×", target.min_ratio);
    match (row.ratio(), row.target_met()) {
        (_, Some(true)) => format!("{wanted}: met"),
        (Some(reached), Some(false)) => {
            let short = (1.0 - reached / target.min_ratio) * 100.0;
            format!("{wanted}: missed by {}%", figure(short))
        }
        _ => format!("{wanted}: {MISSING}"),
    }
}

fn line(cells: impl Iterator<Item = String>) -> String {
    let cells: Vec<String> = cells.collect();
    format!("| {} |", cells.join(" | "))
}

/// Text safe inside a table cell: a `|` would end the cell, a line break the row.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::{Better, Floor, LoadedBytes, PerPacket, RoundFigures, Target};

    fn sample() -> Report {
        Report {
            accel: "tcg".into(),
            rows: vec![
                Row::new("null syscall", "ns", Better::Lower, Some(50.0), Some(200.0))
                    .with_target(Target::ratio_at_least(4.0)),
                Row::new(
                    "udp echo p50 | ring",
                    "µs",
                    Better::Lower,
                    Some(120.0),
                    Some(150.0),
                )
                .with_per_packet(PerPacket {
                    syscalls: Some(0.125),
                    kernel_entries: Some(1.5),
                })
                .with_target(Target::ratio_at_least(2.0)),
                Row::new("tcp bulk", "Mbit/s", Better::Higher, Some(1234.5), None),
            ],
            sizes: Vec::new(),
        }
    }

    #[test]
    fn the_table_has_one_line_per_row() {
        let table = sample().to_markdown();
        let table_lines: Vec<&str> = table.lines().filter(|line| line.starts_with('|')).collect();
        assert_eq!(table_lines.len(), 2 + 3);
        assert_eq!(
            table_lines[0],
            "| benchmark | unit | exo | Linux guest | ratio (above 1×: exo ahead) | target \
             | exo syscalls/packet | exo kernel entries/packet |"
        );
        assert_eq!(
            table_lines[1],
            "| --- | --- | --: | --: | --: | --- | --: | --: |"
        );
        assert_eq!(
            table_lines[2],
            "| null syscall | ns | 50.0 | 200 | 4.00× | ≥ 4×: met | — | — |"
        );
        assert_eq!(
            table_lines[3],
            "| udp echo p50 \\| ring | µs | 120 | 150 | 1.25× | ≥ 2×: missed by 37.5% \
             | 0.125 | 1.50 |"
        );
        assert_eq!(
            table_lines[4],
            "| tcp bulk | Mbit/s | 1,235 | — | — |  | — | — |"
        );
        assert!(table.contains("Accelerator: tcg. Rounds: 1,"));
        assert!(!table.contains("Sizes:"));
    }

    #[test]
    fn a_host_column_appears_only_when_a_row_has_a_host_figure() {
        let mut report = sample();
        assert!(!report.to_markdown().contains("host Linux"));
        report.rows[0].host = Some(20.0);
        let table = report.to_markdown();
        assert!(table.lines().next().unwrap().ends_with("| host Linux |"));
        assert!(table.lines().nth(2).unwrap().ends_with("| 20.0 |"));
    }

    #[test]
    fn the_ratio_shows_its_spread_over_rounds() {
        let round = |exo, linux| RoundFigures {
            exo: Some(exo),
            linux: Some(linux),
            floor: Some(100.0),
        };
        let rows = vec![
            Row::from_rounds(
                "null",
                "cycles",
                Better::Lower,
                vec![
                    round(100.0, 410.0),
                    round(100.0, 380.0),
                    round(100.0, 440.0),
                ],
            )
            .with_floor(Floor {
                max_ratio: Some(1.5),
            }),
            Row::from_rounds(
                "fault",
                "cycles",
                Better::Lower,
                vec![round(200.0, 420.0), round(200.0, 380.0)],
            )
            .with_floor(Floor::default()),
            Row::new("spawn", "cycles", Better::Lower, Some(1.0), Some(20.0)),
        ];
        let report = Report {
            accel: "tcg".into(),
            rows,
            sizes: Vec::new(),
        };
        let table = report.to_markdown();
        let lines: Vec<&str> = table.lines().filter(|line| line.starts_with('|')).collect();
        assert_eq!(
            lines[0],
            "| benchmark | unit | exo | Linux guest | ratio (above 1×: exo ahead) | target \
             | exo floor | exo ÷ floor | exo syscalls/packet |"
        );
        assert_eq!(
            lines[2],
            "| null | cycles | 100 | 410 | 4.10× (3.80–4.40) |  | 100 | 1.00× (1.00–1.00); \
             ≤ 1.5×: met | — |"
        );
        assert_eq!(
            lines[3],
            "| fault | cycles | 200 | 400 | 2.00× (1.90–2.10) |  | 100 | 2.00× (2.00–2.00) | — |"
        );
        assert_eq!(
            lines[4],
            "| spawn | cycles | 1.00 | 20.0 | 20.0× |  |  |  | — |"
        );
        assert!(table.contains("Rounds: 3,"));
    }

    #[test]
    fn sizes_follow_the_table_with_their_target() {
        let mut report = sample();
        let loaded = |text, data| Some(LoadedBytes { text, data });
        report.sizes = vec![
            ImageSize {
                name: "udp-echo".into(),
                file_bytes: 300_000,
                loaded: loaded(100_000, 40_000),
                max_loaded_bytes: Some(128 << 10),
            },
            ImageSize {
                name: "argc".into(),
                file_bytes: 9_000,
                loaded: loaded(4096, 100),
                max_loaded_bytes: Some(128 << 10),
            },
            ImageSize {
                name: "initramfs".into(),
                file_bytes: 9,
                loaded: None,
                max_loaded_bytes: None,
            },
        ];
        let markdown = report.to_markdown();
        let sizes = markdown.split_once("Sizes:").unwrap().1;
        let lines: Vec<&str> = sizes.lines().filter(|line| line.starts_with('|')).collect();
        assert_eq!(
            lines[0],
            "| image | file bytes | loaded bytes | text | data | target |"
        );
        assert_eq!(
            lines[2],
            "| udp-echo | 300,000 | 140,000 | 100,000 | 40,000 | ≤ 128 KiB: 8.7 KiB over |"
        );
        assert_eq!(
            lines[3],
            "| argc | 9,000 | 4,196 | 4,096 | 100 | ≤ 128 KiB: met |"
        );
        assert_eq!(lines[4], "| initramfs | 9 | — | — | — |  |");
    }
}
