//! `bench.json`: the report as one object, `accel`, `rows` and `sizes`, each row and size on
//! its own line with its fields in a fixed order so that two runs diff line by line.
//!
//! A row: `name`, `unit`, `exo`, `linux` (medians over rounds), `ratio` (the median of the
//! rounds' ratios), `ratio_min`, `ratio_max`, `rounds` (how many rounds measured it); then,
//! only on rows that have them, `syscalls_per_packet` and `kernel_entries_per_packet` (on
//! every network row, null if not counted), `host`, `target` with `target_met`, and `floor`
//! with `floor_ratio` (on every row with a floor, null if not measured), then
//! `floor_target` with `floor_target_met`.
//!
//! A size: `name`, `elf_bytes`, `loaded_bytes`, `text_bytes`, `data_bytes` (null for files
//! that are not ELF), and `target` with `target_met` where there is one.
//!
//! Numbers are written in full (never an exponent); a missing or non-finite one is `null`.
//! `number` and `string` write `density.json` too (`density`).
//!
//! Written by hand, and read back by serde_json in the tests (a dev-dependency), so what is
//! written is checked to be JSON with the right keys and values. Not serde_json for the
//! writing: its pretty printer puts every field on a line of its own, it writes `50.0` and
//! `1e21` where this file promises `50` and the number in full, keeping the field order
//! would take its `preserve_order` feature or serde's derive macros (syn), and even for the
//! string escaping alone it took the clean build of xtask from 6.3 s to 10.8 s.

use super::{ImageSize, LoadedBytes, Report, Row};

pub fn report(report: &Report) -> String {
    let rows: Vec<String> = report.rows.iter().map(row).collect();
    let sizes: Vec<String> = report.sizes.iter().map(size).collect();
    format!(
        "{{\n  \"accel\": {},\n  \"rows\": {},\n  \"sizes\": {}\n}}\n",
        string(&report.accel),
        array(&rows),
        array(&sizes)
    )
}

/// Objects in an array, one a line.
fn array(objects: &[String]) -> String {
    if objects.is_empty() {
        return "[]".to_string();
    }
    format!("[\n    {}\n  ]", objects.join(",\n    "))
}

fn row(row: &Row) -> String {
    let spread = row.ratio_spread();
    let mut fields = vec![
        ("name", string(&row.name)),
        ("unit", string(&row.unit)),
        ("exo", number(row.exo)),
        ("linux", number(row.linux)),
        ("ratio", number(row.ratio())),
        ("ratio_min", number(spread.map(|spread| spread.lowest))),
        ("ratio_max", number(spread.map(|spread| spread.highest))),
        ("rounds", row.rounds.len().to_string()),
    ];
    if let Some(per_packet) = row.per_packet {
        fields.push(("syscalls_per_packet", number(per_packet.syscalls)));
        fields.push((
            "kernel_entries_per_packet",
            number(per_packet.kernel_entries),
        ));
    }
    if row.host.is_some() {
        fields.push(("host", number(row.host)));
    }
    if let Some(target) = row.target {
        fields.push(("target", string(&target.describe())));
        fields.push(("target_met", boolean(row.target_met())));
    }
    if let Some(floor) = row.floor {
        fields.push(("floor", number(row.floor_figure())));
        fields.push(("floor_ratio", number(row.floor_ratio())));
        if let Some(target) = floor.describe() {
            fields.push(("floor_target", string(&target)));
            fields.push(("floor_target_met", boolean(row.floor_target_met())));
        }
    }
    object(fields)
}

fn size(size: &ImageSize) -> String {
    let loaded = |part: fn(&LoadedBytes) -> u64| {
        size.loaded
            .map_or("null".to_string(), |loaded| part(&loaded).to_string())
    };
    let mut fields = vec![
        ("name", string(&size.name)),
        ("elf_bytes", size.file_bytes.to_string()),
        ("loaded_bytes", loaded(LoadedBytes::total)),
        ("text_bytes", loaded(|loaded| loaded.text)),
        ("data_bytes", loaded(|loaded| loaded.data)),
    ];
    if let Some(target) = size.describe_target() {
        fields.push(("target", string(&target)));
        fields.push(("target_met", boolean(size.target_met())));
    }
    object(fields)
}

/// `{"name": value, ...}` on one line, in the order given.
fn object(fields: Vec<(&str, String)>) -> String {
    let fields: Vec<String> = fields
        .into_iter()
        .map(|(name, value)| format!("\"{name}\": {value}"))
        .collect();
    format!("{{{}}}", fields.join(", "))
}

fn boolean(value: Option<bool>) -> String {
    value
        .map_or("null", |value| if value { "true" } else { "false" })
        .to_string()
}

/// A finite number as Rust writes it (shortest form that reads back the same; whole
/// numbers without a point), which is valid JSON; anything else is `null`.
pub fn number(value: Option<f64>) -> String {
    match value {
        Some(value) if value.is_finite() => format!("{value}"),
        _ => "null".to_string(),
    }
}

/// A JSON string literal: quotes, backslashes and control characters escaped, the rest
/// (UTF-8 included) as it is.
pub fn string(text: &str) -> String {
    let mut literal = String::with_capacity(text.len() + 2);
    literal.push('"');
    for character in text.chars() {
        match character {
            '"' => literal.push_str("\\\""),
            '\\' => literal.push_str("\\\\"),
            '\n' => literal.push_str("\\n"),
            '\r' => literal.push_str("\\r"),
            '\t' => literal.push_str("\\t"),
            control if u32::from(control) < 0x20 => {
                literal.push_str(&format!("\\u{:04x}", u32::from(control)));
            }
            other => literal.push(other),
        }
    }
    literal.push('"');
    literal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::{Better, Floor, PerPacket, RoundFigures, Target};

    fn round(exo: f64, linux: f64, floor: Option<f64>) -> RoundFigures {
        RoundFigures {
            exo: Some(exo),
            linux: Some(linux),
            floor,
        }
    }

    #[test]
    fn a_small_report_is_written_exactly() {
        let report = Report {
            accel: "tcg".into(),
            rows: vec![
                Row::new(
                    "null \"syscall\"",
                    "ns",
                    Better::Lower,
                    Some(50.0),
                    Some(200.5),
                )
                .with_target(Target::ratio_at_least(4.0)),
                Row::new(
                    "udp echo p50 (ring)\\1",
                    "µs",
                    Better::Lower,
                    Some(1.5),
                    None,
                )
                .with_per_packet(PerPacket {
                    syscalls: Some(0.25),
                    kernel_entries: None,
                }),
                Row::new(
                    "tcp bulk\n",
                    "Mbit/s",
                    Better::Higher,
                    Some(f64::NAN),
                    Some(900.0),
                )
                .with_host(Some(40000.0)),
                Row::new("\u{1}", "x", Better::Higher, Some(3.0), Some(1.0))
                    .with_target(Target::ratio_at_least(1.5)),
            ],
            sizes: Vec::new(),
        };
        let expected = r#"{
  "accel": "tcg",
  "rows": [
    {"name": "null \"syscall\"", "unit": "ns", "exo": 50, "linux": 200.5, "ratio": 4.01, "ratio_min": 4.01, "ratio_max": 4.01, "rounds": 1, "target": "ratio >= 4", "target_met": true},
    {"name": "udp echo p50 (ring)\\1", "unit": "µs", "exo": 1.5, "linux": null, "ratio": null, "ratio_min": null, "ratio_max": null, "rounds": 1, "syscalls_per_packet": 0.25, "kernel_entries_per_packet": null},
    {"name": "tcp bulk\n", "unit": "Mbit/s", "exo": null, "linux": 900, "ratio": null, "ratio_min": null, "ratio_max": null, "rounds": 1, "host": 40000},
    {"name": "\u0001", "unit": "x", "exo": 3, "linux": 1, "ratio": 3, "ratio_min": 3, "ratio_max": 3, "rounds": 1, "target": "ratio >= 1.5", "target_met": true}
  ],
  "sizes": []
}
"#;
        assert_eq!(report.to_json(), expected);
    }

    #[test]
    fn rounds_floors_and_sizes_are_written_exactly() {
        let rounds = vec![
            round(1000.0, 4000.0, Some(800.0)),
            round(1200.0, 3600.0, Some(1000.0)),
            round(1100.0, 4950.0, None),
        ];
        let report = Report {
            accel: "tcg".into(),
            rows: vec![
                Row::from_rounds("null", "cycles", Better::Lower, rounds)
                    .with_target(Target::ratio_at_least(4.0))
                    .with_floor(Floor {
                        max_ratio: Some(1.5),
                    }),
                Row::new("spawn", "cycles", Better::Lower, Some(5.0), Some(50.0))
                    .with_floor(Floor::default()),
            ],
            sizes: vec![
                ImageSize {
                    name: "udp-echo".into(),
                    file_bytes: 200_000,
                    loaded: Some(LoadedBytes {
                        text: 100_000,
                        data: 40_000,
                    }),
                    max_loaded_bytes: Some(128 << 10),
                },
                ImageSize {
                    name: "initramfs".into(),
                    file_bytes: 9,
                    loaded: None,
                    max_loaded_bytes: None,
                },
            ],
        };
        let expected = r#"{
  "accel": "tcg",
  "rows": [
    {"name": "null", "unit": "cycles", "exo": 1100, "linux": 4000, "ratio": 4, "ratio_min": 3, "ratio_max": 4.5, "rounds": 3, "target": "ratio >= 4", "target_met": true, "floor": 900, "floor_ratio": 1.225, "floor_target": "floor_ratio <= 1.5", "floor_target_met": true},
    {"name": "spawn", "unit": "cycles", "exo": 5, "linux": 50, "ratio": 10, "ratio_min": 10, "ratio_max": 10, "rounds": 1, "floor": null, "floor_ratio": null}
  ],
  "sizes": [
    {"name": "udp-echo", "elf_bytes": 200000, "loaded_bytes": 140000, "text_bytes": 100000, "data_bytes": 40000, "target": "loaded_bytes <= 131072", "target_met": false},
    {"name": "initramfs", "elf_bytes": 9, "loaded_bytes": null, "text_bytes": null, "data_bytes": null}
  ]
}
"#;
        assert_eq!(report.to_json(), expected);
        let read: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(read["rows"][0]["ratio_min"], serde_json::json!(3));
        assert_eq!(read["sizes"][0]["target_met"], serde_json::json!(false));
    }

    #[test]
    fn an_empty_report_is_still_an_object_with_rows_and_sizes() {
        let report = Report {
            accel: "kvm".into(),
            ..Report::default()
        };
        assert_eq!(
            report.to_json(),
            "{\n  \"accel\": \"kvm\",\n  \"rows\": [],\n  \"sizes\": []\n}\n"
        );
    }

    #[test]
    fn the_report_reads_back_as_json_with_its_figures() {
        let report = Report {
            accel: "kvm".into(),
            rows: vec![
                Row::new("a \"b\"\u{8}\\", "µs", Better::Lower, Some(2.5), Some(10.0))
                    .with_target(Target::ratio_at_least(4.0)),
                Row::new("c", "ns", Better::Higher, None, Some(1e-7)).with_host(Some(3.0)),
            ],
            sizes: Vec::new(),
        };
        let read: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(
            read,
            serde_json::json!({
                "accel": "kvm",
                "rows": [
                    {"name": "a \"b\"\u{8}\\", "unit": "µs", "exo": 2.5, "linux": 10,
                     "ratio": 4, "ratio_min": 4, "ratio_max": 4, "rounds": 1,
                     "target": "ratio >= 4", "target_met": true},
                    {"name": "c", "unit": "ns", "exo": null, "linux": 1e-7, "ratio": null,
                     "ratio_min": null, "ratio_max": null, "rounds": 1, "host": 3}
                ],
                "sizes": []
            })
        );
    }

    #[test]
    fn numbers_are_never_written_with_an_exponent_or_as_nan() {
        assert_eq!(number(Some(1e21)), "1000000000000000000000");
        assert_eq!(number(Some(1.5e-7)), "0.00000015");
        assert_eq!(number(Some(f64::INFINITY)), "null");
        assert_eq!(number(None), "null");
    }
}
