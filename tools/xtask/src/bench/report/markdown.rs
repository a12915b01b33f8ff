//! The report as a Markdown table, for the terminal and `bench.md`: one line per row, figures
//! formatted for reading (see `human_numbers`), then a note on how to read the ratio.
//!
//! Columns: benchmark, unit, exo, Linux guest, ratio, target, syscalls/packet; a
//! kernel-entries/packet column and a host-Linux column join them only when some row has
//! such a figure.

use super::human_numbers::{MISSING, figure, optional, ratio};
use super::{Report, Row};

pub fn report(report: &Report) -> String {
    let entries = report.rows.iter().any(|row| {
        row.per_packet
            .is_some_and(|costs| costs.kernel_entries.is_some())
    });
    let host = report.rows.iter().any(|row| row.host.is_some());

    let mut header = vec!["benchmark", "unit", "exo", "Linux guest", "ratio", "target"];
    header.push("syscalls/packet");
    if entries {
        header.push("kernel entries/packet");
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
            row.ratio().map_or_else(|| MISSING.to_string(), ratio),
            target(row),
            optional(per_packet.syscalls),
        ];
        if entries {
            cells.push(optional(per_packet.kernel_entries));
        }
        if host {
            cells.push(optional(row.host));
        }
        lines.push(line(cells.into_iter()));
    }
    format!(
        "{}\n\nAccelerator: {}. Ratio: Linux guest ÷ exo for costs, exo ÷ Linux guest for rates; \
         above 1× exo is ahead.\n",
        lines.join("\n"),
        cell(&report.accel)
    )
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
    use crate::bench::report::{Better, PerPacket, Target};

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
        }
    }

    #[test]
    fn the_table_has_one_line_per_row() {
        let table = sample().to_markdown();
        let table_lines: Vec<&str> = table.lines().filter(|line| line.starts_with('|')).collect();
        assert_eq!(table_lines.len(), 2 + 3);
        assert_eq!(
            table_lines[0],
            "| benchmark | unit | exo | Linux guest | ratio | target | syscalls/packet \
             | kernel entries/packet |"
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
        assert!(table.contains("Accelerator: tcg."));
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
}
