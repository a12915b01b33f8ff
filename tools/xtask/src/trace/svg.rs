//! `timeline.svg`: the timeline as a picture any browser opens. The kernel's slots on top,
//! then one lane per environment (the kernel's own first), time to the right:
//! a grey band while the environment runs, coloured boxes for its system calls, upcalls
//! and calls, ticks under them for instants; a legend and a time axis.
//!
//! It shows one window of the trace (the whole run unless told otherwise). So that a run
//! of 10^5 events stays a picture and not a wall of elements, boxes of one colour on one
//! lane that fall within a pixel of each other are drawn as one: the number of elements
//! is bounded by the width, not by the events. A box wide enough for its name carries it.
//!
//! Written with `format!` and the bench charts' escaping; the tests parse it as XML.

use std::collections::HashMap;
use std::fmt::Write;

use exo_abi::trace::{Class, Kind};

use super::decode::Value;
use super::timeline::{Lane, Slice, Timeline, Track};
use crate::bench::report::charts::escape;

const WIDTH: f64 = 1200.0;
/// Lane labels end here (right-aligned); the plot starts a little after.
const LABEL_RIGHT: f64 = 200.0;
const PLOT_LEFT: f64 = 210.0;
const PLOT_RIGHT: f64 = 1180.0;
const TOP: f64 = 84.0;
const ROW_HEIGHT: f64 = 34.0;
const ROW_GAP: f64 = 6.0;
const AXIS_HEIGHT: f64 = 40.0;
/// Boxes closer than this many pixels merge.
const MERGE_DISTANCE: f64 = 1.0;
/// The time axis has about ten ticks; never more than this.
const MAXIMUM_TICKS: f64 = 20.0;
/// Roughly how wide a character of a box's label is, at its size.
const CHARACTER_WIDTH: f64 = 5.5;

/// A kind of box: its legend, colour, and where it sits in a lane (top, height).
struct Style {
    legend: &'static str,
    colour: &'static str,
    top: f64,
    height: f64,
}

const RUNNING: Style = Style {
    legend: "running (from switch to switch)",
    colour: "#cbd5e0",
    top: 0.0,
    height: ROW_HEIGHT,
};
const CALLS: Style = Style {
    legend: "call, until its reply",
    colour: "#38a169",
    top: 2.0,
    height: 8.0,
};
const UPCALLS: Style = Style {
    legend: "upcall",
    colour: "#dd6b20",
    top: 10.0,
    height: 9.0,
};
const SYSTEM_CALLS: Style = Style {
    legend: "system call",
    colour: "#2b6cb0",
    top: 19.0,
    height: 9.0,
};
const SLOT_EVEN: Style = Style {
    legend: "slot (alternate shades)",
    colour: "#81e6d9",
    top: 4.0,
    height: ROW_HEIGHT - 8.0,
};
const SLOT_ODD: Style = Style {
    legend: "",
    colour: "#38b2ac",
    ..SLOT_EVEN
};
/// An instant's tick; its colour comes from `TICKS`.
const TICK: Style = Style {
    legend: "",
    colour: "",
    top: 28.0,
    height: ROW_HEIGHT - 28.0,
};
/// Ticks for instants: a legend, a colour, and which kinds it marks.
type TickStyle = (&'static str, &'static str, fn(Kind) -> bool);
/// The first that marks an instant's kind is its tick.
const TICKS: [TickStyle; 4] = [
    ("exception", "#e53e3e", |kind| kind == Kind::Exception),
    ("frame in or out, kick, interrupt", "#805ad5", |kind| {
        kind.class() == Class::NET
    }),
    (
        "environment created, started, destroyed",
        "#1a202c",
        |kind| kind.class() == Class::ENVIRONMENTS,
    ),
    ("other event", "#a0aec0", |_| true),
];

/// A part of the trace, in microseconds from its start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub from: f64,
    pub to: f64,
}

/// The picture of `window` of `timeline` (all of it when `None`), titled `title`.
pub fn write(timeline: &Timeline, window: Option<Window>, title: &str) -> String {
    let whole = timeline.microseconds(timeline.end);
    let window = window.unwrap_or(Window {
        from: 0.0,
        to: whole,
    });
    let span = (window.to - window.from).max(1e-3);
    let x_of = |microseconds: f64| {
        let fraction = ((microseconds - window.from) / span).clamp(0.0, 1.0);
        PLOT_LEFT + fraction * (PLOT_RIGHT - PLOT_LEFT)
    };
    let visible = |from: f64, to: f64| to >= window.from && from <= window.to;

    // Rows: the slots, then each environment, the kernel first.
    let rows: Vec<(Option<u32>, String)> = std::iter::once((None, "slots".to_string()))
        .chain(
            timeline
                .environments
                .iter()
                .map(|id| (Some(*id), timeline.environment_label(*id))),
        )
        .collect();
    let row_top = |index: usize| TOP + index as f64 * (ROW_HEIGHT + ROW_GAP);
    let row_by_environment: HashMap<u32, usize> = (1..)
        .zip(&timeline.environments)
        .map(|(row, id)| (*id, row))
        .collect();
    let row_of = |track: &Track| match track.lane {
        Lane::Slots => 0,
        _ => row_by_environment
            .get(&track.environment)
            .copied()
            .unwrap_or(0),
    };

    let mut boxes = Boxes::default();
    for slice in &timeline.slices {
        let (from, to) = (
            timeline.microseconds(slice.start),
            timeline.microseconds(slice.end),
        );
        if !visible(from, to) {
            continue;
        }
        let style = match slice.track.lane {
            Lane::Slots if slot_index(slice).is_multiple_of(2) => &SLOT_EVEN,
            Lane::Slots => &SLOT_ODD,
            Lane::Running => &RUNNING,
            Lane::SystemCalls => &SYSTEM_CALLS,
            Lane::Upcalls => &UPCALLS,
            Lane::Calls => &CALLS,
            Lane::Events => continue,
        };
        let row = row_of(&slice.track);
        boxes.add(row, style, x_of(from), x_of(to), Some(&slice.name));
    }
    let mut ticks = Boxes::default();
    for instant in &timeline.instants {
        let at = timeline.microseconds(instant.at);
        if !visible(at, at) {
            continue;
        }
        let (_, colour, _) = instant
            .kind
            .and_then(|kind| TICKS.iter().find(|(_, _, is)| is(kind)))
            .unwrap_or(&TICKS[TICKS.len() - 1]);
        let style = Style { colour, ..TICK };
        ticks.add(row_of(&instant.track), &style, x_of(at), x_of(at), None);
    }

    let height = row_top(rows.len()) + AXIS_HEIGHT;
    let mut svg = format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="12" y="22" font-size="15" font-weight="bold">{}</text>
<text x="12" y="40" fill="#4a5568">{}</text>
"##,
        escape(title),
        escape(&format!(
            "showing {} to {} of a {} trace; boxes of one colour within a pixel of each other are drawn as one",
            time_text(window.from),
            time_text(window.to),
            time_text(whole)
        ))
    );
    legend(&mut svg);
    for (index, (_, label)) in rows.iter().enumerate() {
        let top = row_top(index);
        let _ = writeln!(
            svg,
            r##"<text x="{LABEL_RIGHT}" y="{:.1}" text-anchor="end">{}</text><line x1="{PLOT_LEFT}" y1="{:.1}" x2="{PLOT_RIGHT}" y2="{:.1}" stroke="#edf2f7"/>"##,
            top + ROW_HEIGHT / 2.0 + 4.0,
            escape(label),
            top + ROW_HEIGHT,
            top + ROW_HEIGHT
        );
    }
    boxes.draw(&mut svg, &row_top);
    ticks.draw(&mut svg, &row_top);
    axis(&mut svg, row_top(rows.len()), window, &x_of);
    svg.push_str("</svg>\n");
    svg
}

/// The index of a slot's slice.
fn slot_index(slice: &Slice) -> u64 {
    slice
        .arguments
        .iter()
        .find_map(|argument| match argument {
            ("slot", Value::Number(index)) => Some(*index),
            _ => None,
        })
        .unwrap_or(0)
}

/// Boxes being merged, per row and colour, in the order they were added (by start).
#[derive(Default)]
struct Boxes {
    merged: Vec<Merged>,
    /// Where the last box of each row and colour is in `merged`.
    last: HashMap<(usize, &'static str), usize>,
}

struct Merged {
    row: usize,
    colour: &'static str,
    /// Within the row.
    top: f64,
    height: f64,
    from: f64,
    to: f64,
    /// The name, while the box is one slice.
    name: Option<String>,
}

impl Boxes {
    fn add(&mut self, row: usize, style: &Style, from: f64, to: f64, name: Option<&str>) {
        if let Some(&index) = self.last.get(&(row, style.colour)) {
            let last = &mut self.merged[index];
            if from <= last.to + MERGE_DISTANCE {
                last.to = last.to.max(to);
                last.name = None;
                return;
            }
        }
        self.last.insert((row, style.colour), self.merged.len());
        self.merged.push(Merged {
            row,
            colour: style.colour,
            top: style.top,
            height: style.height,
            from,
            to,
            name: name.map(String::from),
        });
    }

    fn draw(&self, svg: &mut String, row_top: &dyn Fn(usize) -> f64) {
        // The running bands first: the boxes go on top of them.
        let (background, foreground): (Vec<&Merged>, Vec<&Merged>) = self
            .merged
            .iter()
            .partition(|merged| merged.colour == RUNNING.colour);
        for merged in background.into_iter().chain(foreground) {
            let y = row_top(merged.row) + merged.top;
            let width = (merged.to - merged.from).max(1.0);
            let _ = write!(
                svg,
                r#"<rect x="{:.1}" y="{y:.1}" width="{width:.1}" height="{:.1}" fill="{}"/>"#,
                merged.from, merged.height, merged.colour
            );
            if let Some(name) = &merged.name
                && width >= name.chars().count() as f64 * CHARACTER_WIDTH + 4.0
                && merged.colour != RUNNING.colour
            {
                let _ = write!(
                    svg,
                    r##"<text x="{:.1}" y="{:.1}" font-size="8" fill="#ffffff">{}</text>"##,
                    merged.from + 2.0,
                    y + merged.height - 1.5,
                    escape(name)
                );
            }
            svg.push('\n');
        }
    }
}

fn legend(svg: &mut String) {
    let mut x = PLOT_LEFT;
    let boxes = [&RUNNING, &SLOT_EVEN, &SYSTEM_CALLS, &UPCALLS, &CALLS];
    for style in boxes {
        let _ = write!(
            svg,
            r##"<rect x="{x}" y="50" width="12" height="10" fill="{}" stroke="#a0aec0" stroke-width="0.5"/><text x="{}" y="59" font-size="10">{}</text>"##,
            style.colour,
            x + 16.0,
            escape(style.legend)
        );
        x += 16.0 + style.legend.len() as f64 * 5.6 + 14.0;
    }
    svg.push('\n');
    let mut x = PLOT_LEFT;
    for (legend, colour, _) in TICKS {
        let _ = write!(
            svg,
            r#"<rect x="{x}" y="64" width="2" height="10" fill="{colour}"/><text x="{}" y="73" font-size="10">tick: {}</text>"#,
            x + 6.0,
            escape(legend)
        );
        x += 6.0 + (legend.len() + 6) as f64 * 5.6 + 14.0;
    }
    svg.push('\n');
}

/// The time axis under the rows: a tick at every round step, about ten across.
fn axis(svg: &mut String, top: f64, window: Window, x_of: &dyn Fn(f64) -> f64) {
    let span = (window.to - window.from).max(1e-3);
    let step = round_step(span / 10.0);
    let _ = writeln!(
        svg,
        r##"<line x1="{PLOT_LEFT}" y1="{top}" x2="{PLOT_RIGHT}" y2="{top}" stroke="#4a5568"/>"##
    );
    let first = (window.from / step).ceil();
    // Counted, not added up: far from zero, adding a small step may not move a float.
    let ticks = ((window.to / step + 1e-9).floor() - first).clamp(0.0, MAXIMUM_TICKS) as u32;
    for index in 0..=ticks {
        let at = (first + f64::from(index)) * step;
        let x = x_of(at);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{}" stroke="#4a5568"/><text x="{x:.1}" y="{}" text-anchor="middle" font-size="10">{}</text>"##,
            top + 5.0,
            top + 17.0,
            escape(&time_text(at))
        );
    }
    let _ = writeln!(
        svg,
        r##"<text x="{PLOT_RIGHT}" y="{}" text-anchor="end" font-size="10" fill="#4a5568">time since the first event →</text>"##,
        top + 32.0
    );
}

/// The round number (1, 2 or 5 times a power of ten) at or above `rough`.
fn round_step(rough: f64) -> f64 {
    let power = 10f64.powf(rough.max(1e-6).log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * power)
        .find(|step| *step >= rough)
        .unwrap_or(10.0 * power)
}

/// A time in microseconds as a person writes it: "750 µs", "1.5 ms", "2 s".
fn time_text(microseconds: f64) -> String {
    let (value, unit) = if microseconds >= 1e6 {
        (microseconds / 1e6, "s")
    } else if microseconds >= 1e3 {
        (microseconds / 1e3, "ms")
    } else {
        (microseconds, "µs")
    };
    let rounded = (value * 1000.0).round() / 1000.0;
    format!("{rounded} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::stream::parse;
    use crate::trace::stream::tests::{bytes_of, record};
    use crate::trace::timeline::build;
    use exo_abi::syscall::Sysnum;
    use exo_abi::trace::{Record, pack_name};

    fn picture(records: &[Record], window: Option<Window>) -> String {
        let timeline = build(&parse(&bytes_of(records)).unwrap());
        write(&timeline, window, "exo trace: <test> & co")
    }

    fn rectangles<'a>(
        document: &'a roxmltree::Document,
        colour: &str,
    ) -> Vec<roxmltree::Node<'a, 'a>> {
        document
            .descendants()
            .filter(|node| node.has_tag_name("rect") && node.attribute("fill") == Some(colour))
            .collect()
    }

    #[test]
    fn each_environment_has_a_labelled_lane_with_its_boxes_and_ticks() {
        let map = Sysnum::Map as u64;
        let svg = picture(
            &[
                record(0, Kind::SlotStart, 1, [0, 1]),
                record(0, Kind::Switch, 1, [0, 1]),
                record(10, Kind::Name, 1, pack_name("fault-test")),
                record(1_000, Kind::Exception, 1, [14, 0x5000]),
                record(2_000, Kind::Upcall, 1, [1, 14]),
                record(50_000, Kind::SyscallEnter, 1, [map, 0]),
                record(90_000, Kind::SyscallExit, 1, [map, 0]),
                record(95_000, Kind::EnvironmentCreate, 1, [2, 0]),
                record(100_000, Kind::Flush, 0, [8, 0]),
            ],
            None,
        );
        let document = roxmltree::Document::parse(&svg).expect("timeline.svg is XML");
        let texts: Vec<&str> = document
            .descendants()
            .filter(|node| node.has_tag_name("text"))
            .filter_map(|node| node.text())
            .collect();
        assert_eq!(texts[0], "exo trace: <test> & co");
        for label in [
            "slots",
            "kernel",
            "environment 1 (fault-test)",
            "environment 2",
            "Map",
        ] {
            assert!(texts.contains(&label), "{label} missing from {texts:?}");
        }
        assert!(texts.contains(&"100 µs"), "{texts:?}");
        // The plot is 970 pixels for 100 µs: the system call runs from 50 to 90 µs.
        let system_call = &rectangles(&document, SYSTEM_CALLS.colour)[1];
        assert_eq!(system_call.attribute("x"), Some("695.0"));
        assert_eq!(system_call.attribute("width"), Some("388.0"));
        assert_eq!(
            rectangles(&document, UPCALLS.colour).len(),
            2,
            "legend and the upcall"
        );
        assert_eq!(
            rectangles(&document, TICKS[0].1).len(),
            2,
            "legend and the exception"
        );
        assert_eq!(
            rectangles(&document, TICKS[2].1).len(),
            2,
            "legend and the creation"
        );
    }

    #[test]
    fn a_window_shows_only_what_falls_in_it() {
        let map = Sysnum::Map as u64;
        let records = [
            record(0, Kind::SyscallEnter, 1, [map, 0]),
            record(1_000, Kind::SyscallExit, 1, [map, 0]),
            record(50_000, Kind::SyscallEnter, 1, [map, 0]),
            record(51_000, Kind::SyscallExit, 1, [map, 0]),
            record(100_000, Kind::Flush, 0, [4, 0]),
        ];
        let svg = picture(
            &records,
            Some(Window {
                from: 40.0,
                to: 60.0,
            }),
        );
        let document = roxmltree::Document::parse(&svg).unwrap();
        let boxes = rectangles(&document, SYSTEM_CALLS.colour);
        assert_eq!(boxes.len(), 2, "the legend and the second call");
        assert_eq!(boxes[1].attribute("x"), Some("695.0"));
        assert!(svg.contains("showing 40 µs to 60 µs of a 100 µs trace"));
    }

    #[test]
    fn a_hundred_thousand_events_stay_a_small_picture() {
        let number = Sysnum::Null as u64;
        let records: Vec<Record> = (0..50_000u64)
            .flat_map(|index| {
                [
                    record(
                        index * 100,
                        Kind::SyscallEnter,
                        1 + (index % 3) as u32,
                        [number, 0],
                    ),
                    record(
                        index * 100 + 40,
                        Kind::SyscallExit,
                        1 + (index % 3) as u32,
                        [number, 0],
                    ),
                ]
            })
            .collect();
        let svg = picture(&records, None);
        let document = roxmltree::Document::parse(&svg).unwrap();
        let elements = document
            .descendants()
            .filter(|node| node.is_element())
            .count();
        assert!(elements < 300, "{elements} elements");
        assert!(svg.len() < 100_000, "{} bytes", svg.len());
    }

    #[test]
    fn a_window_far_from_the_start_still_gets_a_few_ticks() {
        let timeline = build(&parse(&bytes_of(&[record(0, Kind::Flush, 0, [0, 0])])).unwrap());
        let window = Window {
            from: 1e17,
            to: 1e17 + 32.0,
        };
        let svg = write(&timeline, Some(window), "far");
        let document = roxmltree::Document::parse(&svg).unwrap();
        let lines = document
            .descendants()
            .filter(|node| node.has_tag_name("line"));
        assert!(lines.count() <= 2 + MAXIMUM_TICKS as usize + 1);
    }

    #[test]
    fn steps_and_times_are_round() {
        assert_eq!(round_step(0.7), 1.0);
        assert_eq!(round_step(13.0), 20.0);
        assert_eq!(round_step(3000.0), 5000.0);
        assert_eq!(time_text(750.0), "750 µs");
        assert_eq!(time_text(1500.0), "1.5 ms");
        assert_eq!(time_text(2e6), "2 s");
    }
}
