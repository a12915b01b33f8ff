//! The report as SVG charts, written by hand: one horizontal bar chart per unit (exo's,
//! the Linux guest's and, where there is one, the host's figure for each row, each bar
//! labelled with its value), and one chart of the ratios on a log scale, with a line at 1×,
//! each row's target marked, and a whisker from its lowest round's ratio to its highest.
//!
//! Every text is escaped and every element closed, so each chart is well-formed XML (the
//! tests parse each one). Written with `format!`: the charts use four kinds of element, and
//! an SVG-building crate would take as many lines to drive.

use std::fmt::Write;

use super::human_numbers::{MISSING, figure};
use super::markdown::spread_cell;
use super::{Better, Report, Row};

/// Wide enough for a ratio's label with its spread after the longest bar.
const WIDTH: f64 = 820.0;
/// Row names end here (right-aligned); bars start a little after.
const LABEL_RIGHT: f64 = 250.0;
const BARS_LEFT: f64 = 260.0;
/// Bars end here at most, leaving room for their value labels.
const BARS_RIGHT: f64 = 650.0;
const TOP: f64 = 64.0;
const BAR_HEIGHT: f64 = 14.0;
const BAR_GAP: f64 = 3.0;
const ROW_GAP: f64 = 14.0;
const BOTTOM: f64 = 36.0;

/// The series a unit chart shows: (CSS class, legend, colour, figure of a row).
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Row) -> Option<f64>,
);
const SERIES: [Series; 3] = [
    ("exo", "exo", "#2b6cb0", |row| row.exo),
    ("linux", "Linux guest", "#dd6b20", |row| row.linux),
    ("host", "host Linux", "#a0aec0", |row| row.host),
];

pub fn all(report: &Report) -> Vec<(String, String)> {
    let mut units: Vec<&str> = Vec::new();
    for row in &report.rows {
        if !units.contains(&row.unit.as_str()) {
            units.push(&row.unit);
        }
    }
    let mut charts: Vec<(String, String)> = Vec::new();
    for unit in units {
        let rows: Vec<&Row> = report.rows.iter().filter(|row| row.unit == unit).collect();
        let mut name = format!("bench-{}.svg", slug(unit));
        // Two units may make the same slug ("ms" and "m/s"); the later one is numbered.
        let mut number = 2;
        while charts.iter().any(|(taken, _)| *taken == name) || name == "bench-ratios.svg" {
            name = format!("bench-{}-{number}.svg", slug(unit));
            number += 1;
        }
        charts.push((name, unit_chart(unit, &rows, &report.accel)));
    }
    charts.push(("bench-ratios.svg".to_string(), ratio_chart(report)));
    charts
}

/// Exo's, the Linux guest's and the host's figures in `unit`, a group of bars per row.
fn unit_chart(unit: &str, rows: &[&Row], accel: &str) -> String {
    let series: Vec<&Series> = SERIES
        .iter()
        .filter(|(_, _, _, value)| rows.iter().any(|row| value(row).is_some()))
        .collect();
    let bars_per_row = series.len().max(1) as f64;
    let group_height = bars_per_row * (BAR_HEIGHT + BAR_GAP) - BAR_GAP;
    let height = TOP + rows.len() as f64 * (group_height + ROW_GAP) + BOTTOM;
    let largest = rows
        .iter()
        .flat_map(|row| series.iter().filter_map(|(_, _, _, value)| value(row)))
        .filter(|value| value.is_finite())
        .fold(0.0, f64::max);
    let scale = if largest > 0.0 {
        (BARS_RIGHT - BARS_LEFT) / largest
    } else {
        0.0
    };
    let direction = if rows.iter().all(|row| row.better == Better::Lower) {
        " (lower is better)"
    } else if rows.iter().all(|row| row.better == Better::Higher) {
        " (higher is better)"
    } else {
        ""
    };

    let mut svg = open(height, &format!("{unit}{direction} — {accel}"));
    for (index, (_, legend, colour, _)) in series.iter().enumerate() {
        let x = BARS_LEFT + index as f64 * 130.0;
        let _ = write!(
            svg,
            r#"<rect x="{x}" y="38" width="12" height="12" fill="{colour}"/><text x="{}" y="48">{}</text>"#,
            x + 16.0,
            escape(legend)
        );
        svg.push('\n');
    }
    for (index, row) in rows.iter().enumerate() {
        let top = TOP + index as f64 * (group_height + ROW_GAP);
        label(&mut svg, top + group_height / 2.0, &row.name);
        for (place, (class, _, colour, value)) in series.iter().enumerate() {
            let y = top + place as f64 * (BAR_HEIGHT + BAR_GAP);
            let text_y = y + BAR_HEIGHT - 3.0;
            match value(row).filter(|value| value.is_finite()) {
                Some(value) => {
                    let width = (value.max(0.0) * scale).max(1.0);
                    let _ = write!(
                        svg,
                        r#"<rect class="bar {class}" x="{BARS_LEFT}" y="{y}" width="{width:.1}" height="{BAR_HEIGHT}" fill="{colour}"/><text x="{:.1}" y="{text_y}">{}</text>"#,
                        BARS_LEFT + width + 4.0,
                        escape(&figure(value))
                    );
                }
                // The host's figure is context, not a result: its absence needs no mark.
                None if *class == "host" => {}
                None => {
                    let _ = write!(
                        svg,
                        r##"<text x="{}" y="{text_y}" fill="#718096">{MISSING}</text>"##,
                        BARS_LEFT + 4.0
                    );
                }
            }
            svg.push('\n');
        }
    }
    close(svg)
}

/// Each row's ratio as a bar from the 1× line on a log scale, with its target marked.
fn ratio_chart(report: &Report) -> String {
    let rows = &report.rows;
    let row_height = BAR_HEIGHT + ROW_GAP;
    let height = TOP + rows.len() as f64 * row_height + BOTTOM;
    let shown = rows
        .iter()
        .flat_map(|row| {
            let spread = row.ratio_spread();
            [
                spread.map(|spread| spread.lowest),
                spread.map(|spread| spread.highest),
                row.target.map(|target| target.min_ratio),
            ]
        })
        .flatten()
        .filter(|value| value.is_finite() && *value > 0.0);
    let (low, high) = shown.fold((1.0f64, 1.0f64), |(low, high), value| {
        (low.min(value), high.max(value))
    });
    let first_decade = low.log10().floor() as i32;
    let last_decade = (high.log10().ceil() as i32).max(first_decade + 1);
    let x = |value: f64| {
        let fraction =
            (value.log10() - f64::from(first_decade)) / f64::from(last_decade - first_decade);
        BARS_LEFT + fraction * (BARS_RIGHT - BARS_LEFT)
    };
    let bottom = height - BOTTOM + 4.0;

    let title = format!(
        "exo against the Linux guest — {} (log scale; above 1× exo is ahead)",
        report.accel
    );
    let mut svg = open(height, &title);
    svg.push_str(concat!(
        r##"<rect x="260" y="38" width="12" height="12" fill="#38a169"/><text x="276" y="48">exo ahead</text>"##,
        r##"<rect x="360" y="38" width="12" height="12" fill="#e53e3e"/><text x="376" y="48">exo behind</text>"##,
        r##"<path d="M470 38 v12" stroke="#1a202c" stroke-width="3"/><text x="478" y="48">target</text>"##,
        "\n"
    ));
    for decade in first_decade..=last_decade {
        let value = 10f64.powi(decade);
        let line_x = x(value);
        let (stroke, width) = if decade == 0 {
            ("#1a202c", 1.5)
        } else {
            ("#cbd5e0", 1.0)
        };
        let _ = writeln!(
            svg,
            r#"<line class="{}" x1="{line_x:.1}" y1="{TOP}" x2="{line_x:.1}" y2="{bottom}" stroke="{stroke}" stroke-width="{width}"/><text x="{line_x:.1}" y="{}" text-anchor="middle">{}</text>"#,
            if decade == 0 { "one" } else { "decade" },
            bottom + 14.0,
            // 0.1×, 1×, 10×: a power of ten is clearest without trailing zeros.
            format_args!("{value}×")
        );
    }
    for (index, row) in rows.iter().enumerate() {
        let top = TOP + index as f64 * row_height + ROW_GAP / 2.0;
        let text_y = top + BAR_HEIGHT - 3.0;
        label(&mut svg, top + BAR_HEIGHT / 2.0, &row.name);
        let target_x = row
            .target
            .filter(|target| target.min_ratio > 0.0)
            .map(|target| x(target.min_ratio));
        match row.ratio_spread() {
            Some(spread) => {
                let (from, to) = (x(1.0), x(spread.median));
                let (lowest, highest) = (x(spread.lowest), x(spread.highest));
                // The value goes after the bar, its whisker, or the target mark, whichever
                // is furthest.
                let text_x = from
                    .max(to)
                    .max(highest)
                    .max(target_x.map_or(0.0, |mark| mark + 2.0))
                    + 4.0;
                let colour = if spread.median >= 1.0 {
                    "#38a169"
                } else {
                    "#e53e3e"
                };
                let _ = write!(
                    svg,
                    r#"<rect class="bar ratio" x="{:.1}" y="{top}" width="{:.1}" height="{BAR_HEIGHT}" fill="{colour}"/><text x="{:.1}" y="{text_y}">{}</text>"#,
                    from.min(to),
                    (to - from).abs().max(1.0),
                    text_x,
                    escape(&spread_cell(&spread))
                );
                if spread.rounds > 1 {
                    let middle = top + BAR_HEIGHT / 2.0;
                    let _ = write!(
                        svg,
                        r##"<path class="spread" d="M{lowest:.1} {middle} H{highest:.1} M{lowest:.1} {} v8 M{highest:.1} {} v8" stroke="#1a202c" stroke-width="1"/>"##,
                        middle - 4.0,
                        middle - 4.0
                    );
                }
            }
            None => {
                let _ = write!(
                    svg,
                    r##"<text x="{:.1}" y="{text_y}" fill="#718096">{MISSING}</text>"##,
                    x(1.0) + 4.0
                );
            }
        }
        if let (Some(mark), Some(target)) = (target_x, row.target) {
            let _ = write!(
                svg,
                r##"<path class="target" d="M{mark:.1} {} v{}" stroke="#1a202c" stroke-width="3"><title>{}</title></path>"##,
                top - 3.0,
                BAR_HEIGHT + 6.0,
                escape(&target.describe())
            );
        }
        svg.push('\n');
    }
    close(svg)
}

/// The document's start: its size, font and title.
fn open(height: f64, title: &str) -> String {
    format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="12" y="24" font-size="15" font-weight="bold">{}</text>
"##,
        escape(title)
    )
}

fn close(mut svg: String) -> String {
    svg.push_str("</svg>\n");
    svg
}

/// A row's name, right-aligned before the bars, centred on `middle`.
fn label(svg: &mut String, middle: f64, name: &str) {
    let _ = write!(
        svg,
        r#"<text x="{LABEL_RIGHT}" y="{:.1}" text-anchor="end">{}</text>"#,
        middle + 4.0,
        escape(name)
    );
}

/// Text safe in XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            // XML 1.0 allows no other control characters, even escaped.
            control if control.is_control() && !matches!(control, '\t' | '\n') => escaped.push(' '),
            other => escaped.push(other),
        }
    }
    escaped
}

/// A unit as a file-name part: `µs` → `us`, `Mbit/s` → `mbit-s`.
fn slug(unit: &str) -> String {
    let mut slug = String::new();
    for character in unit.chars() {
        match character {
            'µ' | 'μ' => slug.push('u'),
            letter if letter.is_ascii_alphanumeric() => slug.push(letter.to_ascii_lowercase()),
            _ if !slug.is_empty() && !slug.ends_with('-') => slug.push('-'),
            _ => {}
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "unit".to_string()
    } else {
        slug.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::{PerPacket, RoundFigures, Target};

    fn sample() -> Report {
        Report {
            accel: "tcg".into(),
            rows: vec![
                Row::new("null syscall", "ns", Better::Lower, Some(50.0), Some(200.0))
                    .with_target(Target::ratio_at_least(4.0))
                    .with_host(Some(70.0)),
                Row::new(
                    "page <fault> & \"map\"",
                    "ns",
                    Better::Lower,
                    Some(900.0),
                    None,
                ),
                Row::new(
                    "udp echo p50 'ring'",
                    "µs",
                    Better::Lower,
                    Some(300.0),
                    Some(150.0),
                )
                .with_per_packet(PerPacket::default())
                .with_target(Target::ratio_at_least(2.0)),
                Row::new(
                    "tcp bulk",
                    "Mbit/s",
                    Better::Higher,
                    Some(90.0),
                    Some(300.0),
                ),
                Row::new("tcp bulk ring", "Mbit/s", Better::Higher, None, None),
            ],
            sizes: Vec::new(),
        }
    }

    #[test]
    fn every_chart_is_well_formed() {
        let charts = all(&sample());
        let names: Vec<&str> = charts.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "bench-ns.svg",
                "bench-us.svg",
                "bench-mbit-s.svg",
                "bench-ratios.svg"
            ]
        );
        for (name, svg) in &charts {
            assert!(
                svg.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
                "{name}: no XML declaration"
            );
            let document = roxmltree::Document::parse(svg)
                .map_err(|error| format!("{name}: {error}"))
                .unwrap();
            assert_eq!(document.root_element().tag_name().name(), "svg", "{name}");
        }
        let ns = &charts[0].1;
        assert!(ns.contains("page &lt;fault&gt; &amp; &quot;map&quot;"));
        assert!(ns.contains("(lower is better)"));
    }

    #[test]
    fn a_unit_chart_has_one_bar_per_value() {
        let charts = all(&sample());
        let count = |svg: &str, class: &str| svg.matches(&format!("class=\"bar {class}\"")).count();
        // ns: exo 2, Linux 1, host 1; µs: one each, no host series; Mbit/s: one exo, one Linux.
        assert_eq!(
            [count(&charts[0].1, "exo"), count(&charts[0].1, "linux")],
            [2, 1]
        );
        assert_eq!(count(&charts[0].1, "host"), 1);
        assert_eq!(
            [count(&charts[1].1, "exo"), count(&charts[1].1, "linux")],
            [1, 1]
        );
        assert!(!charts[1].1.contains("host Linux"));
        assert_eq!(charts[2].1.matches("class=\"bar ").count(), 2);
        // The values are written beside their bars.
        assert!(charts[0].1.contains(">200</text>") && charts[0].1.contains(">50.0</text>"));
    }

    #[test]
    fn the_ratio_chart_has_a_bar_per_ratio_a_line_at_one_and_the_targets() {
        let report = sample();
        let svg = all(&report).pop().unwrap().1;
        let ratios = report
            .rows
            .iter()
            .filter(|row| row.ratio().is_some())
            .count();
        assert_eq!(ratios, 3);
        assert_eq!(svg.matches("class=\"bar ratio\"").count(), ratios);
        assert_eq!(svg.matches("class=\"one\"").count(), 1);
        assert_eq!(svg.matches("class=\"target\"").count(), 2);
        // 0.3× to 4×: the scale runs from 0.1× to 10×.
        assert!(svg.contains(">0.1×</text>") && svg.contains(">10×</text>"));
        assert!(svg.contains(">4.00×</text>") && svg.contains(">0.500×</text>"));
        assert_eq!(
            svg.matches("class=\"spread\"").count(),
            0,
            "one round, no whisker"
        );
    }

    #[test]
    fn a_ratio_of_several_rounds_has_a_whisker_and_its_range() {
        let round = |exo, linux| RoundFigures {
            exo: Some(exo),
            linux: Some(linux),
            floor: None,
        };
        let report = Report {
            accel: "tcg".into(),
            rows: vec![Row::from_rounds(
                "null",
                "cycles",
                Better::Lower,
                vec![
                    round(100.0, 410.0),
                    round(100.0, 380.0),
                    round(100.0, 440.0),
                ],
            )],
            sizes: Vec::new(),
        };
        let svg = all(&report).pop().unwrap().1;
        roxmltree::Document::parse(&svg).unwrap();
        assert_eq!(svg.matches("class=\"spread\"").count(), 1);
        assert!(svg.contains(">4.10× (3.80–4.40)</text>"));
    }

    #[test]
    fn slugs_are_plain_file_names() {
        assert_eq!(slug("µs"), "us");
        assert_eq!(slug("Mbit/s"), "mbit-s");
        assert_eq!(slug("transactions / s"), "transactions-s");
        assert_eq!(slug("%"), "unit");
    }
}
