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

/// The left margin, and the room a 12-pixel sans-serif character takes at most on average
/// (DejaVu Sans, rsvg's default, took 6.7 on our longest name; more leaves a little room).
const MARGIN: f64 = 12.0;
const CHARACTER_WIDTH: f64 = 7.2;
/// The bars' greatest length, and the room after it for a value or a ratio with its spread.
const BARS_LENGTH: f64 = 390.0;
const VALUE_ROOM: f64 = 170.0;
const TOP: f64 = 64.0;
const BAR_HEIGHT: f64 = 14.0;
const BAR_GAP: f64 = 3.0;
const ROW_GAP: f64 = 14.0;
const BOTTOM: f64 = 36.0;

/// Where a chart's columns are: the row names, right-aligned, in a column as wide as the
/// longest; the bars after them; their values after the bars.
#[derive(Debug, Clone, Copy)]
struct Columns {
    label_right: f64,
    bars_left: f64,
    bars_right: f64,
    width: f64,
}

impl Columns {
    fn for_names<'a>(names: impl Iterator<Item = &'a str>) -> Self {
        let longest = names.map(|name| name.chars().count()).max().unwrap_or(0);
        let label_right = MARGIN + longest as f64 * CHARACTER_WIDTH;
        let bars_left = label_right + 10.0;
        let bars_right = bars_left + BARS_LENGTH;
        Columns {
            label_right,
            bars_left,
            bars_right,
            width: bars_right + VALUE_ROOM,
        }
    }
}

/// A logarithmic axis from one power of ten to a higher one, drawn from `left` to `right`.
#[derive(Debug, Clone, Copy)]
struct LogAxis {
    first_decade: i32,
    last_decade: i32,
    left: f64,
    right: f64,
}

impl LogAxis {
    /// The fewest whole decades (at least one) that hold every positive finite value of
    /// `values`; `None` if there is none.
    fn spanning(values: impl Iterator<Item = f64>, left: f64, right: f64) -> Option<Self> {
        let (low, high) = values
            .filter(|value| value.is_finite() && *value > 0.0)
            .fold(None, |range: Option<(f64, f64)>, value| {
                Some(range.map_or((value, value), |(low, high)| {
                    (low.min(value), high.max(value))
                }))
            })?;
        let first_decade = low.log10().floor() as i32;
        let last_decade = (high.log10().ceil() as i32).max(first_decade + 1);
        Some(LogAxis {
            first_decade,
            last_decade,
            left,
            right,
        })
    }

    /// The same axis from one decade lower: on a log scale a bar starts nowhere in
    /// particular, and a value just above the first decade would be a sliver.
    fn one_decade_lower(self) -> Self {
        LogAxis {
            first_decade: self.first_decade - 1,
            ..self
        }
    }

    /// Where `value` (positive) lies.
    fn x(&self, value: f64) -> f64 {
        let fraction = (value.log10() - f64::from(self.first_decade))
            / f64::from(self.last_decade - self.first_decade);
        self.left + fraction * (self.right - self.left)
    }

    /// Each power of ten on the axis, and where it lies.
    fn decades(&self) -> impl Iterator<Item = (i32, f64)> + '_ {
        (self.first_decade..=self.last_decade).map(|decade| (decade, self.x(10f64.powi(decade))))
    }
}

/// Values that span more than this factor are drawn on a log scale: on a linear one the
/// smallest bars would be a pixel wide.
const LOG_SCALE_ABOVE: f64 = 100.0;

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

/// Exo's, the Linux guest's and the host's figures in `unit`, a group of bars per row; on a
/// log scale when the figures span more than [`LOG_SCALE_ABOVE`].
fn unit_chart(unit: &str, rows: &[&Row], accel: &str) -> String {
    let series: Vec<&Series> = SERIES
        .iter()
        .filter(|(_, _, _, value)| rows.iter().any(|row| value(row).is_some()))
        .collect();
    let columns = Columns::for_names(rows.iter().map(|row| row.name.as_str()));
    let bars_per_row = series.len().max(1) as f64;
    let group_height = bars_per_row * (BAR_HEIGHT + BAR_GAP) - BAR_GAP;
    let height = TOP + rows.len() as f64 * (group_height + ROW_GAP) + BOTTOM;
    let values: Vec<f64> = rows
        .iter()
        .flat_map(|row| series.iter().filter_map(|(_, _, _, value)| value(row)))
        .filter(|value| value.is_finite() && *value > 0.0)
        .collect();
    let largest = values.iter().copied().fold(0.0, f64::max);
    let smallest = values.iter().copied().fold(f64::INFINITY, f64::min);
    let log_axis = (largest > smallest * LOG_SCALE_ABOVE)
        .then(|| {
            LogAxis::spanning(
                values.iter().copied(),
                columns.bars_left,
                columns.bars_right,
            )
        })
        .flatten()
        .map(LogAxis::one_decade_lower);
    // How long a bar for `value` is.
    let length = |value: f64| match log_axis {
        Some(axis) if value > 0.0 => axis.x(value) - columns.bars_left,
        Some(_) => 0.0,
        None if largest > 0.0 => value.max(0.0) * BARS_LENGTH / largest,
        None => 0.0,
    };
    let direction = if rows.iter().all(|row| row.better == Better::Lower) {
        "lower is better"
    } else if rows.iter().all(|row| row.better == Better::Higher) {
        "higher is better"
    } else {
        ""
    };
    let scale = if log_axis.is_some() { "log scale" } else { "" };
    let notes: Vec<&str> = [direction, scale]
        .into_iter()
        .filter(|note| !note.is_empty())
        .collect();
    let title = if notes.is_empty() {
        format!("{unit} — {accel}")
    } else {
        format!("{unit} ({}) — {accel}", notes.join("; "))
    };

    let mut svg = open(columns, height, &title);
    for (index, (_, legend, colour, _)) in series.iter().enumerate() {
        let x = columns.bars_left + index as f64 * 130.0;
        let _ = write!(
            svg,
            r#"<rect x="{x}" y="38" width="12" height="12" fill="{colour}"/><text x="{}" y="48">{}</text>"#,
            x + 16.0,
            escape(legend)
        );
        svg.push('\n');
    }
    if let Some(axis) = log_axis {
        let bottom = height - BOTTOM + 4.0;
        for (decade, line_x) in axis.decades() {
            let _ = writeln!(
                svg,
                r##"<line class="decade" x1="{line_x:.1}" y1="{TOP}" x2="{line_x:.1}" y2="{bottom}" stroke="#cbd5e0" stroke-width="1"/><text x="{line_x:.1}" y="{}" text-anchor="middle">{}</text>"##,
                bottom + 14.0,
                decade_label(decade)
            );
        }
    }
    for (index, row) in rows.iter().enumerate() {
        let top = TOP + index as f64 * (group_height + ROW_GAP);
        label(&mut svg, columns, top + group_height / 2.0, &row.name);
        for (place, (class, _, colour, value)) in series.iter().enumerate() {
            let y = top + place as f64 * (BAR_HEIGHT + BAR_GAP);
            let text_y = y + BAR_HEIGHT - 3.0;
            match value(row).filter(|value| value.is_finite()) {
                Some(value) => {
                    let width = length(value).max(1.0);
                    let _ = write!(
                        svg,
                        r#"<rect class="bar {class}" x="{}" y="{y}" width="{width:.1}" height="{BAR_HEIGHT}" fill="{colour}"/><text x="{:.1}" y="{text_y}">{}</text>"#,
                        columns.bars_left,
                        columns.bars_left + width + 4.0,
                        escape(&figure(value))
                    );
                }
                // The host's figure is context, not a result: its absence needs no mark.
                None if *class == "host" => {}
                None => {
                    let _ = write!(
                        svg,
                        r##"<text x="{}" y="{text_y}" fill="#718096">{MISSING}</text>"##,
                        columns.bars_left + 4.0
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
    let columns = Columns::for_names(rows.iter().map(|row| row.name.as_str()));
    let row_height = BAR_HEIGHT + ROW_GAP;
    let height = TOP + rows.len() as f64 * row_height + BOTTOM;
    let shown = rows.iter().flat_map(|row| {
        let spread = row.ratio_spread();
        [
            spread.map(|spread| spread.lowest),
            spread.map(|spread| spread.highest),
            row.target.map(|target| target.min_ratio),
        ]
    });
    // 1× is always on the axis: every bar starts there.
    let axis = LogAxis::spanning(
        shown.flatten().chain([1.0]),
        columns.bars_left,
        columns.bars_right,
    )
    .expect("1× is on the axis");
    let x = |value: f64| axis.x(value);
    let bottom = height - BOTTOM + 4.0;

    let title = format!(
        "exo against the Linux guest — {} (log scale; above 1× exo is ahead)",
        report.accel
    );
    let mut svg = open(columns, height, &title);
    let left = columns.bars_left;
    let _ = writeln!(
        svg,
        concat!(
            r##"<rect x="{}" y="38" width="12" height="12" fill="#38a169"/><text x="{}" y="48">exo ahead</text>"##,
            r##"<rect x="{}" y="38" width="12" height="12" fill="#e53e3e"/><text x="{}" y="48">exo behind</text>"##,
            r##"<path d="M{} 38 v12" stroke="#1a202c" stroke-width="3"/><text x="{}" y="48">target</text>"##,
        ),
        left,
        left + 16.0,
        left + 100.0,
        left + 116.0,
        left + 210.0,
        left + 218.0,
    );
    for (decade, line_x) in axis.decades() {
        let value = 10f64.powi(decade);
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
        label(&mut svg, columns, top + BAR_HEIGHT / 2.0, &row.name);
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

/// A power of ten, short enough to sit under its line beside the next: `100`, `10k`, `1M`.
fn decade_label(decade: i32) -> String {
    const SUFFIXES: [&str; 5] = ["", "k", "M", "G", "T"];
    if decade < 0 {
        return format!("{}", 10f64.powi(decade));
    }
    let thousands = (decade / 3) as usize;
    match SUFFIXES.get(thousands) {
        Some(suffix) => format!("{}{suffix}", 10u64.pow((decade % 3) as u32)),
        None => format!("1e{decade}"),
    }
}

/// The document's start: its size, font and title.
fn open(columns: Columns, height: f64, title: &str) -> String {
    // The title is bold and larger: about 9 pixels a character.
    let width = columns
        .width
        .max(2.0 * MARGIN + title.chars().count() as f64 * 9.0);
    format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height}" viewBox="0 0 {width:.0} {height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="{MARGIN}" y="24" font-size="15" font-weight="bold">{}</text>
"##,
        escape(title)
    )
}

fn close(mut svg: String) -> String {
    svg.push_str("</svg>\n");
    svg
}

/// A row's name, right-aligned before the bars, centred on `middle`.
fn label(svg: &mut String, columns: Columns, middle: f64, name: &str) {
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
        columns.label_right,
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
    fn every_name_fits_left_of_the_bars() {
        let long = "frame allocate + map + touch + unmap (Linux: mmap + touch + munmap)";
        let mut report = sample();
        report.rows[0].name = long.to_string();
        let label = format!(r#"text-anchor="end">{}</text>"#, escape(long));
        let charts = all(&report);
        // The row's unit chart and the ratio chart.
        let with_the_row: Vec<_> = charts
            .iter()
            .filter(|(_, svg)| svg.contains(&label))
            .collect();
        assert_eq!(with_the_row.len(), 2);
        for (name, svg) in with_the_row {
            let at = svg.find(&label).unwrap();
            let x: f64 = svg[..at]
                .rsplit("<text x=\"")
                .next()
                .and_then(|rest| rest.split('"').next())
                .and_then(|x| x.parse().ok())
                .unwrap();
            let needed = long.chars().count() as f64 * CHARACTER_WIDTH;
            assert!(x - needed > MARGIN - 0.1, "{name}: label ends at {x}");
            let bars = svg.matches(r#"<rect class="bar"#).count();
            assert!(bars > 0 && !svg.contains(r#"x="-"#), "{name}");
        }
    }

    #[test]
    fn figures_spanning_decades_are_drawn_on_a_log_scale() {
        let report = Report {
            accel: "tcg".into(),
            rows: vec![
                Row::new("null", "cycles", Better::Lower, Some(600.0), Some(1_200.0)),
                Row::new("spawn", "cycles", Better::Lower, Some(3e6), Some(5e7)),
                Row::new("near", "ns", Better::Lower, Some(50.0), Some(200.0)),
            ],
            sizes: Vec::new(),
        };
        let charts = all(&report);
        let cycles = &charts[0].1;
        assert!(cycles.contains("(lower is better; log scale)"), "{cycles}");
        // 600 to 5e7: decades 100 to 100 million, and one below, a line each.
        assert_eq!(cycles.matches(r#"class="decade""#).count(), 8);
        assert!(cycles.contains(">10</text>") && cycles.contains(">100M</text>"));
        // The smallest bar is still long enough to see; the largest is the longest.
        let widths: Vec<f64> = cycles
            .split(r#"class="bar "#)
            .skip(1)
            .filter_map(|bar| {
                bar.split(r#" width=""#)
                    .nth(1)?
                    .split('"')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        let (least, most) = widths
            .iter()
            .fold((f64::MAX, 0.0f64), |(l, m), &w| (l.min(w), m.max(w)));
        assert!(least > 40.0 && most <= BARS_LENGTH + 0.1, "{widths:?}");
        let ns = &charts[1].1;
        assert!(!ns.contains("log scale") && !ns.contains(r#"class="decade""#));
    }

    #[test]
    fn decades_are_labelled_short() {
        let labels: Vec<String> = [-1, 0, 1, 2, 3, 4, 6, 8, 9, 12, 15]
            .into_iter()
            .map(decade_label)
            .collect();
        assert_eq!(
            labels,
            [
                "0.1", "1", "10", "100", "1k", "10k", "1M", "100M", "1G", "1T", "1e15"
            ]
        );
    }

    #[test]
    fn slugs_are_plain_file_names() {
        assert_eq!(slug("µs"), "us");
        assert_eq!(slug("Mbit/s"), "mbit-s");
        assert_eq!(slug("transactions / s"), "transactions-s");
        assert_eq!(slug("%"), "unit");
    }
}
