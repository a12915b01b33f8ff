//! The summary `cargo xtask trace` prints at its end: how many events of each kind, and a
//! small table of what each environment did. Counted from the records themselves, not
//! from the slices, so a stream cut short still counts everything it holds.

use std::collections::BTreeMap;
use std::fmt::Write;

use exo_abi::trace::Kind;

use super::stream::Stream;
use super::timeline::Timeline;

/// The per-environment columns: a heading and the kinds it counts.
const COLUMNS: [(&str, &[Kind]); 6] = [
    ("system calls", &[Kind::SyscallEnter]),
    ("exceptions", &[Kind::Exception]),
    ("upcalls", &[Kind::Upcall]),
    ("calls", &[Kind::Call]),
    ("frames in", &[Kind::FrameReceived]),
    ("frames out", &[Kind::FrameSent]),
];

pub fn write(stream: &Stream, timeline: &Timeline) -> String {
    let mut text = String::new();
    let duration = timeline.microseconds(timeline.end) / 1000.0;
    let environments = timeline.environments.iter().filter(|id| **id != 0).count();
    let plural = if environments == 1 { "" } else { "s" };
    let _ = writeln!(
        text,
        "{} events over {duration:.3} ms of guest time ({:.2} GHz timestamps): the kernel \
         and {environments} environment{plural}",
        stream.records.len(),
        timeline.tsc_hz as f64 / 1e9,
    );
    if let Some(cut) = stream.cut {
        let _ = writeln!(text, "warning: {cut}");
    }

    let mut per_kind: BTreeMap<u16, usize> = BTreeMap::new();
    let mut per_environment: BTreeMap<u32, BTreeMap<u16, usize>> = BTreeMap::new();
    for record in &stream.records {
        *per_kind.entry(record.kind).or_default() += 1;
        let counts = per_environment.entry(record.environment).or_default();
        *counts.entry(record.kind).or_default() += 1;
    }
    text.push_str("events per kind:\n");
    for (kind, count) in &per_kind {
        let name = match Kind::from_number(u64::from(*kind)) {
            Some(kind) => format!("{kind:?}"),
            None => format!("unknown kind {kind}"),
        };
        let _ = writeln!(text, "  {name:<20} {count:>8}");
    }

    let labels: Vec<String> = per_environment
        .keys()
        .map(|id| timeline.environment_label(*id))
        .collect();
    let width = labels
        .iter()
        .map(String::len)
        .chain([11])
        .max()
        .unwrap_or(11);
    text.push_str("events per environment:\n");
    let _ = write!(text, "  {:<width$} {:>8}", "environment", "events");
    for (heading, _) in COLUMNS {
        let _ = write!(text, " {heading:>12}");
    }
    text.push('\n');
    for ((_, counts), label) in per_environment.iter().zip(&labels) {
        let total: usize = counts.values().sum();
        let _ = write!(text, "  {label:<width$} {total:>8}");
        for (_, kinds) in COLUMNS {
            let count: usize = kinds
                .iter()
                .map(|kind| counts.get(&(*kind as u16)).copied().unwrap_or(0))
                .sum();
            let _ = write!(text, " {count:>12}");
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::stream::parse;
    use crate::trace::stream::tests::{bytes_of, record};
    use crate::trace::timeline::build;
    use exo_abi::trace::pack_name;

    #[test]
    fn the_summary_counts_kinds_and_environments() {
        let records = [
            record(0, Kind::Name, 1, pack_name("fault-test")),
            record(1_000, Kind::Exception, 1, [14, 0]),
            record(2_000, Kind::Upcall, 1, [1, 14]),
            record(3_000, Kind::SyscallEnter, 1, [22, 0]),
            record(4_000, Kind::SyscallExit, 1, [22, 0]),
            record(5_000, Kind::FrameReceived, 2, [1, 60]),
        ];
        let stream = parse(&bytes_of(&records)).unwrap();
        let text = write(&stream, &build(&stream));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "6 events over 0.005 ms of guest time (1.00 GHz timestamps): the kernel and 2 \
             environments"
        );
        assert!(
            lines[1].starts_with("warning: the stream was cut"),
            "{text}"
        );
        assert!(text.contains("  Exception                   1\n"), "{text}");
        assert!(text.contains("  SyscallEnter                1\n"), "{text}");
        let row = lines
            .iter()
            .find(|line| line.contains("environment 1 (fault-test)"))
            .unwrap();
        let numbers: Vec<&str> = row.split_whitespace().skip(3).collect();
        assert_eq!(numbers, ["5", "1", "1", "1", "0", "0", "0"]);
        let row = lines
            .iter()
            .find(|line| line.trim_start().starts_with("environment 2"));
        assert!(
            row.unwrap().ends_with("           1            0"),
            "{text}"
        );
    }
}
