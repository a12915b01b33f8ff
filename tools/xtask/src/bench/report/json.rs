//! `bench.json`: the report as one object, `accel` and then `rows`, each row on its own line
//! with its fields in a fixed order so that two runs diff line by line:
//!
//! `name`, `unit`, `exo`, `linux`, `ratio`; then, only on rows that have them,
//! `syscalls_per_packet` and `kernel_entries_per_packet` (on every network row, null if not
//! counted), `host`, and `target` with `target_met`.
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

use super::{Report, Row};

pub fn report(report: &Report) -> String {
    let mut json = format!("{{\n  \"accel\": {},\n  \"rows\": [", string(&report.accel));
    for (index, row) in report.rows.iter().enumerate() {
        json.push_str(if index == 0 { "\n    " } else { ",\n    " });
        json.push_str(&object(row));
    }
    json.push_str(if report.rows.is_empty() {
        "]\n}\n"
    } else {
        "\n  ]\n}\n"
    });
    json
}

fn object(row: &Row) -> String {
    let mut fields = vec![
        ("name", string(&row.name)),
        ("unit", string(&row.unit)),
        ("exo", number(row.exo)),
        ("linux", number(row.linux)),
        ("ratio", number(row.ratio())),
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
        let met = row
            .target_met()
            .map_or("null", |met| if met { "true" } else { "false" });
        fields.push(("target_met", met.to_string()));
    }
    let fields: Vec<String> = fields
        .into_iter()
        .map(|(name, value)| format!("\"{name}\": {value}"))
        .collect();
    format!("{{{}}}", fields.join(", "))
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
    use crate::bench::report::{Better, PerPacket, Target};

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
        };
        let expected = r#"{
  "accel": "tcg",
  "rows": [
    {"name": "null \"syscall\"", "unit": "ns", "exo": 50, "linux": 200.5, "ratio": 4.01, "target": "ratio >= 4", "target_met": true},
    {"name": "udp echo p50 (ring)\\1", "unit": "µs", "exo": 1.5, "linux": null, "ratio": null, "syscalls_per_packet": 0.25, "kernel_entries_per_packet": null},
    {"name": "tcp bulk\n", "unit": "Mbit/s", "exo": null, "linux": 900, "ratio": null, "host": 40000},
    {"name": "\u0001", "unit": "x", "exo": 3, "linux": 1, "ratio": 3, "target": "ratio >= 1.5", "target_met": true}
  ]
}
"#;
        assert_eq!(report.to_json(), expected);
    }

    #[test]
    fn an_empty_report_is_still_an_object_with_rows() {
        let report = Report {
            accel: "kvm".into(),
            rows: Vec::new(),
        };
        assert_eq!(
            report.to_json(),
            "{\n  \"accel\": \"kvm\",\n  \"rows\": []\n}\n"
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
        };
        let read: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(
            read,
            serde_json::json!({
                "accel": "kvm",
                "rows": [
                    {"name": "a \"b\"\u{8}\\", "unit": "µs", "exo": 2.5, "linux": 10,
                     "ratio": 4, "target": "ratio >= 4", "target_met": true},
                    {"name": "c", "unit": "ns", "exo": null, "linux": 1e-7, "ratio": null,
                     "host": 3}
                ]
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
