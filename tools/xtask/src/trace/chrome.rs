//! `trace.json`: the timeline in the Chrome Trace Event format, which Perfetto's UI
//! (ui.perfetto.dev) and `chrome://tracing` open.
//!
//! One process per environment (`pid` = its id; the kernel is 0), one thread per lane and
//! CPU (`tid` = 1000 × lane + CPU, named by a `thread_name` event: "system calls (cpu 0)"),
//! so slices that overlap without nesting (a call outlives the system call that made it)
//! sit on threads of their own. Timestamps are microseconds from the first record, from
//! the TSC and the header's rate. The metadata (`"ph": "M"`) comes first, then every
//! slice (`"ph": "X"` with `dur`) and instant (`"ph": "i"`, thread-scoped) in time order,
//! one event per line. Arguments carry the values decoded by name.
//!
//! Written by hand with `bench::report::json`'s string writer, like the other reports, and
//! read back by serde_json in the tests.

use std::fmt::Write;

use exo_abi::trace::Class;

use super::decode::{Argument, Value};
use super::timeline::{Lane, Timeline, Track};
use crate::bench::report::json::string;

/// The thread id of a track within its environment's process.
pub fn thread_id(track: &Track) -> u64 {
    let lane = Lane::ALL
        .iter()
        .position(|lane| *lane == track.lane)
        .unwrap_or(0) as u64
        + 1;
    lane * 1000 + u64::from(track.cpu)
}

/// The whole `trace.json`.
pub fn write(timeline: &Timeline) -> String {
    let mut lines: Vec<String> = metadata(timeline);
    // Slices and instants merged by time; a slice before an instant at the same time.
    let mut timed: Vec<(u64, String)> = Vec::new();
    for slice in &timeline.slices {
        let start = timeline.microseconds(slice.start);
        let duration = timeline.microseconds(slice.end) - start;
        let mut arguments = slice.arguments.clone();
        if !slice.finished {
            arguments.push(("finished", Value::Text("no: cut short".to_string())));
        }
        timed.push((
            slice.start,
            format!(
                r#"{{"name": {}, "cat": {}, "ph": "X", "ts": {start:.3}, "dur": {duration:.3}, "pid": {}, "tid": {}, "args": {}}}"#,
                string(&slice.name),
                string(slice.track.lane.name()),
                slice.track.environment,
                thread_id(&slice.track),
                object(&arguments)
            ),
        ));
    }
    for instant in &timeline.instants {
        let category = instant
            .kind
            .map_or("unknown", |kind| class_name(kind.class()));
        timed.push((
            instant.at,
            format!(
                r#"{{"name": {}, "cat": {}, "ph": "i", "s": "t", "ts": {:.3}, "pid": {}, "tid": {}, "args": {}}}"#,
                string(&instant.name),
                string(category),
                timeline.microseconds(instant.at),
                instant.track.environment,
                thread_id(&instant.track),
                object(&instant.arguments)
            ),
        ));
    }
    // Stable: within one time, slices (in their own order) stay before instants.
    timed.sort_by_key(|(at, _)| *at);
    lines.extend(timed.into_iter().map(|(_, line)| line));
    format!(
        "{{\"traceEvents\": [\n{}\n],\n\"displayTimeUnit\": \"ns\"}}\n",
        lines.join(",\n")
    )
}

/// The names of the processes and threads, and their order on the screen.
fn metadata(timeline: &Timeline) -> Vec<String> {
    let mut lines = Vec::new();
    let mut tracks: Vec<Track> = timeline.slices.iter().map(|slice| slice.track).collect();
    tracks.extend(timeline.instants.iter().map(|instant| instant.track));
    tracks.sort();
    tracks.dedup();
    for &environment in &timeline.environments {
        let name = match environment {
            0 => "kernel (slots, idle)".to_string(),
            _ => timeline.environment_label(environment),
        };
        lines.push(meta(environment, 0, "process_name", "name", &string(&name)));
        lines.push(meta(
            environment,
            0,
            "process_sort_index",
            "sort_index",
            &environment.to_string(),
        ));
    }
    for track in tracks {
        let lane = match (track.environment, track.lane) {
            (0, Lane::Running) => "idle",
            (_, lane) => lane.name(),
        };
        let name = format!("{lane} (cpu {})", track.cpu);
        let thread = thread_id(&track);
        lines.push(meta(
            track.environment,
            thread,
            "thread_name",
            "name",
            &string(&name),
        ));
        lines.push(meta(
            track.environment,
            thread,
            "thread_sort_index",
            "sort_index",
            &thread.to_string(),
        ));
    }
    lines
}

fn meta(pid: u32, tid: u64, event: &str, field: &str, value: &str) -> String {
    format!(
        r#"{{"name": "{event}", "ph": "M", "pid": {pid}, "tid": {tid}, "args": {{"{field}": {value}}}}}"#
    )
}

fn object(arguments: &[Argument]) -> String {
    let mut text = String::from("{");
    for (index, (name, value)) in arguments.iter().enumerate() {
        if index > 0 {
            text.push_str(", ");
        }
        let value = match value {
            Value::Number(number) => number.to_string(),
            other => string(&other.to_string()),
        };
        let _ = write!(text, "{}: {value}", string(name));
    }
    text.push('}');
    text
}

/// The name `trace=` gives a class; "trace" for the flush, which every class records.
fn class_name(class: Class) -> &'static str {
    Class::NAMES
        .iter()
        .find(|(_, known)| *known == class)
        .map_or("trace", |(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::stream::parse;
    use crate::trace::stream::tests::{bytes_of, record};
    use crate::trace::timeline::build;
    use exo_abi::syscall::Sysnum;
    use exo_abi::trace::{Kind, pack_name};
    use serde_json::{Value as Json, json};

    fn written(records: &[exo_abi::trace::Record]) -> Json {
        let timeline = build(&parse(&bytes_of(records)).unwrap());
        serde_json::from_str(&write(&timeline)).expect("trace.json is JSON")
    }

    fn fault_records() -> Vec<exo_abi::trace::Record> {
        let map = Sysnum::Map as u64;
        vec![
            record(1000, Kind::Switch, 1, [0, 1]),
            record(1500, Kind::Name, 1, pack_name("fault-test")),
            record(2000, Kind::Exception, 1, [14, 0x5000]),
            record(2500, Kind::Upcall, 1, [1, 14]),
            record(3000, Kind::SyscallEnter, 1, [map, 7]),
            record(3500, Kind::SyscallExit, 1, [map, 0]),
            record(9000, Kind::Flush, 0, [6, 0]),
        ]
    }

    #[test]
    fn the_trace_reads_back_with_named_processes_threads_and_events() {
        let json = written(&fault_records());
        assert_eq!(json["displayTimeUnit"], "ns");
        let events = json["traceEvents"].as_array().unwrap();
        let process = |pid: u64| {
            events
                .iter()
                .find(|event| event["name"] == "process_name" && event["pid"] == pid)
                .map(|event| event["args"]["name"].clone())
        };
        assert_eq!(process(0), Some(json!("kernel (slots, idle)")));
        assert_eq!(process(1), Some(json!("environment 1 (fault-test)")));
        let thread_names: Vec<&Json> = events
            .iter()
            .filter(|event| event["name"] == "thread_name" && event["pid"] == 1)
            .map(|event| &event["args"]["name"])
            .collect();
        assert_eq!(
            thread_names,
            [
                "running (cpu 0)",
                "system calls (cpu 0)",
                "upcalls (cpu 0)",
                "events (cpu 0)"
            ]
        );

        let map = events.iter().find(|event| event["name"] == "Map").unwrap();
        assert_eq!(
            *map,
            json!({"name": "Map", "cat": "system calls", "ph": "X", "ts": 2.0, "dur": 0.5,
                   "pid": 1, "tid": 3000,
                   "args": {"system_call": "Map", "number": 22, "first_argument": "0x7",
                            "status": "ok"}})
        );
        let fault = events.iter().find(|event| event["ph"] == "i").unwrap();
        assert_eq!(
            *fault,
            json!({"name": "exception: page fault", "cat": "upcalls", "ph": "i", "s": "t",
                   "ts": 1.0, "pid": 1, "tid": 6000,
                   "args": {"vector": 14, "exception": "page fault", "address": "0x5000"}})
        );
        let upcall = events
            .iter()
            .find(|event| event["cat"] == "upcalls" && event["ph"] == "X");
        assert_eq!(upcall.unwrap()["dur"], 0.5);
    }

    #[test]
    fn metadata_comes_first_then_events_in_time_order() {
        let json = written(&fault_records());
        let events = json["traceEvents"].as_array().unwrap();
        let first_timed = events.iter().position(|event| event["ph"] != "M").unwrap();
        assert!(events[first_timed..].iter().all(|event| event["ph"] != "M"));
        let times: Vec<f64> = events[first_timed..]
            .iter()
            .map(|event| event["ts"].as_f64().unwrap())
            .collect();
        assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "{times:?}");
        let names: Vec<&str> = events[first_timed..]
            .iter()
            .map(|event| event["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "running",
                "exception: page fault",
                "upcall: fault",
                "Map",
                "flush"
            ]
        );
    }

    #[test]
    fn an_unfinished_slice_says_so_and_an_empty_trace_is_still_json() {
        let json = written(&[record(10, Kind::SyscallEnter, 4, [Sysnum::Wait as u64, 0])]);
        let events = json["traceEvents"].as_array().unwrap();
        let wait = events.iter().find(|event| event["name"] == "Wait").unwrap();
        assert_eq!(wait["args"]["finished"], "no: cut short");
        let empty = written(&[]);
        assert!(
            empty["traceEvents"]
                .as_array()
                .unwrap()
                .iter()
                .all(|event| event["ph"] == "M")
        );
    }
}
