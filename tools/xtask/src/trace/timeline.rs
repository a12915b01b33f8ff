//! The records turned into a timeline: slices (something that lasted, with a start and an
//! end) and instants, each on a track of an environment, in time order.
//!
//! How records pair into slices, the rules the chapter (docs/08) explains:
//! - running: from a `Switch` to the environment until the CPU's next `Switch`; when the
//!   CPU went idle in between, until the environment's last own event before it (a system
//!   call, an exception, an upcall or a library event). The kernel records no switch into
//!   idle: a switch from 0, or from the environment to itself (it waited and was resumed),
//!   says the CPU was idle before it;
//! - system call: `SyscallEnter` to the next `SyscallExit` on the same CPU;
//! - upcall: `Upcall` to the environment's next `UpcallReturn` when its library OS writes
//!   them, otherwise to its next entry into the kernel that the trace shows (a system
//!   call, an exception, or losing the CPU);
//! - call: `Call` to the `Reply` naming the caller, on the caller's track (a `Wake` of the
//!   caller without a reply ends it too: the server was gone);
//! - slot: `SlotStart` to the CPU's next `SlotStart`, on the kernel's slots track.
//!
//! Everything else is an instant. A slice still open when the stream ends, or whose
//! environment was destroyed, ends there and is marked unfinished. Nothing here reads
//! files or writes any format.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use exo_abi::trace::{Kind, Record};

use super::decode::{self, Argument, Value, kind_of};
use super::stream::Stream;

/// What a track of an environment holds; the kernel (environment 0) has the slots and its
/// idle time, an environment the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lane {
    Slots,
    Running,
    SystemCalls,
    Upcalls,
    Calls,
    Events,
}

impl Lane {
    pub const ALL: [Lane; 6] = [
        Lane::Slots,
        Lane::Running,
        Lane::SystemCalls,
        Lane::Upcalls,
        Lane::Calls,
        Lane::Events,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Lane::Slots => "slots",
            Lane::Running => "running",
            Lane::SystemCalls => "system calls",
            Lane::Upcalls => "upcalls",
            Lane::Calls => "calls",
            Lane::Events => "events",
        }
    }
}

/// Where a slice or an instant is drawn: an environment's lane on a CPU. The kernel's
/// running lane is its idle time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Track {
    pub environment: u32,
    pub lane: Lane,
    pub cpu: u16,
}

/// Something that lasted, in TSC ticks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slice {
    pub track: Track,
    pub start: u64,
    pub end: u64,
    pub name: String,
    pub arguments: Vec<Argument>,
    /// False when the stream or the environment ended before the slice did.
    pub finished: bool,
}

/// An event that took no time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instant {
    pub track: Track,
    pub at: u64,
    pub kind: Option<Kind>,
    pub name: String,
    pub arguments: Vec<Argument>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    /// TSC ticks per second.
    pub tsc_hz: u64,
    /// The first and the last timestamp.
    pub start: u64,
    pub end: u64,
    /// In order of their start (then of their end, longest first, so a slice comes before
    /// the ones it contains).
    pub slices: Vec<Slice>,
    /// In order of time.
    pub instants: Vec<Instant>,
    /// Every environment the records name, the kernel (0) included.
    pub environments: BTreeSet<u32>,
    /// The program names library OSes wrote (`Name` events).
    pub names: BTreeMap<u32, String>,
}

impl Timeline {
    /// `tsc` in microseconds from the start of the trace.
    pub fn microseconds(&self, tsc: u64) -> f64 {
        let hz = self.tsc_hz.max(1) as f64;
        tsc.saturating_sub(self.start) as f64 * 1e6 / hz
    }

    /// How an environment is called: "environment 3 (udp-echo)", or "kernel" for 0.
    pub fn environment_label(&self, environment: u32) -> String {
        match (environment, self.names.get(&environment)) {
            (0, _) => "kernel".to_string(),
            (_, Some(name)) => format!("environment {environment} ({name})"),
            (_, None) => format!("environment {environment}"),
        }
    }
}

/// Pairs the stream's records into a timeline.
pub fn build(stream: &Stream) -> Timeline {
    let mut records = stream.records.clone();
    // Each CPU writes its own buffer out: records of several CPUs arrive in blocks.
    records.sort_by_key(|record| record.tsc);
    let mut pairing = Pairing {
        timeline: Timeline {
            tsc_hz: stream.header.tsc_hz,
            start: records.first().map_or(0, |record| record.tsc),
            end: records.last().map_or(0, |record| record.tsc),
            environments: BTreeSet::from([0]),
            ..Timeline::default()
        },
        library_returns: records
            .iter()
            .filter(|record| kind_of(record) == Some(Kind::UpcallReturn))
            .map(|record| record.environment)
            .collect(),
        ..Pairing::default()
    };
    for record in &records {
        pairing.take(record);
    }
    pairing.finish()
}

/// Slices begun and not yet ended, while the records are read in order.
#[derive(Default)]
struct Pairing {
    timeline: Timeline,
    /// The environments whose library OS writes `UpcallReturn`.
    library_returns: BTreeSet<u32>,
    /// By CPU.
    system_calls: HashMap<u16, Open>,
    running: HashMap<u16, Open>,
    slots: HashMap<u16, Open>,
    /// By environment: upcalls nest, the innermost last.
    upcalls: HashMap<u32, Vec<Open>>,
    /// By caller.
    calls: HashMap<u32, Open>,
    /// The last timestamp of each environment's events on each CPU.
    last_seen: HashMap<(u32, u16), u64>,
}

/// A slice begun.
struct Open {
    track: Track,
    start: u64,
    name: String,
    arguments: Vec<Argument>,
}

impl Open {
    fn new(record: &Record, lane: Lane, environment: u32) -> Self {
        Open {
            track: Track {
                environment,
                lane,
                cpu: record.cpu,
            },
            start: record.tsc,
            name: decode::name(record),
            arguments: decode::arguments(record),
        }
    }
}

impl Pairing {
    fn take(&mut self, record: &Record) {
        let environment = record.environment;
        let [first, second] = record.values;
        self.timeline.environments.insert(environment);
        let kind = kind_of(record);
        match kind {
            Some(Kind::Switch) => {
                let to = u32::try_from(second).unwrap_or(environment);
                self.timeline.environments.insert(to);
                if let Some(running) = self.running.remove(&record.cpu) {
                    // After idle: whoever ran before stopped after its last own event.
                    let was_idle = first == 0 || first == second;
                    let end = match was_idle {
                        true => self
                            .last_seen
                            .get(&(running.track.environment, record.cpu))
                            .copied()
                            .unwrap_or(running.start),
                        false => record.tsc,
                    };
                    self.close(running, end, true);
                }
                let mut running = Open::new(record, Lane::Running, to);
                running.name = match to {
                    0 => "idle".to_string(),
                    _ => "running".to_string(),
                };
                self.running.insert(record.cpu, running);
            }
            Some(Kind::SlotStart) => {
                if let Some(slot) = self.slots.remove(&record.cpu) {
                    self.close(slot, record.tsc, true);
                }
                let mut slot = Open::new(record, Lane::Slots, 0);
                slot.arguments
                    .push(("environment", Value::Number(u64::from(environment))));
                self.slots.insert(record.cpu, slot);
            }
            Some(Kind::SyscallEnter) => {
                self.kernel_entry(record);
                let open = Open::new(record, Lane::SystemCalls, environment);
                // One whose exit was never recorded ends where the next one begins.
                if let Some(unreturned) = self.system_calls.insert(record.cpu, open) {
                    self.close(unreturned, record.tsc, false);
                }
            }
            Some(Kind::SyscallExit) => {
                if let Some(mut open) = self.system_calls.remove(&record.cpu) {
                    open.arguments.extend(
                        decode::arguments(record)
                            .into_iter()
                            .filter(|(name, _)| *name == "status"),
                    );
                    self.close(open, record.tsc, true);
                }
            }
            Some(Kind::Exception) => {
                self.kernel_entry(record);
                self.instant(record);
            }
            Some(Kind::Upcall) => {
                let open = Open::new(record, Lane::Upcalls, environment);
                self.upcalls.entry(environment).or_default().push(open);
            }
            Some(Kind::UpcallReturn) => {
                if let Some(open) = self.upcalls.get_mut(&environment).and_then(Vec::pop) {
                    self.close(open, record.tsc, true);
                }
            }
            Some(Kind::Call) => {
                let open = Open::new(record, Lane::Calls, environment);
                if let Some(unanswered) = self.calls.insert(environment, open) {
                    self.close(unanswered, record.tsc, false);
                }
            }
            Some(Kind::Reply) => {
                let caller = u32::try_from(first).unwrap_or(u32::MAX);
                if let Some(open) = self.calls.remove(&caller) {
                    self.close(open, record.tsc, true);
                }
                self.instant(record);
            }
            Some(Kind::Wake) => {
                if let Some(mut open) = self.calls.remove(&environment) {
                    open.arguments.push((
                        "reply",
                        Value::Text("none: the server was gone".to_string()),
                    ));
                    self.close(open, record.tsc, true);
                }
                self.instant(record);
            }
            Some(Kind::Name) => {
                let name = decode::program_name(record);
                self.timeline.names.insert(environment, name);
            }
            Some(Kind::EnvironmentCreate | Kind::EnvironmentStart) => {
                // The child has a lane from its creation, whether or not it ever ran.
                if let Ok(child) = u32::try_from(first) {
                    self.timeline.environments.insert(child);
                }
                self.instant(record);
            }
            Some(Kind::EnvironmentDestroy) => {
                self.instant(record);
                self.end_everything_of(environment, record.tsc);
            }
            _ => self.instant(record),
        }
        // What the environment did itself, on the CPU; the kernel records frames, signals
        // and wake-ups for it while it is not running.
        let its_own = kind.is_some_and(|kind| {
            kind.is_library()
                || matches!(
                    kind,
                    Kind::SyscallEnter | Kind::SyscallExit | Kind::Exception | Kind::Upcall
                )
        });
        if its_own {
            self.last_seen.insert((environment, record.cpu), record.tsc);
        }
    }

    /// The environment entered the kernel: an upcall it was handling is over, unless its
    /// library OS says itself when it returns.
    fn kernel_entry(&mut self, record: &Record) {
        let environment = record.environment;
        if self.library_returns.contains(&environment) {
            return;
        }
        let open: Vec<Open> = self.upcalls.remove(&environment).unwrap_or_default();
        for upcall in open {
            self.close(upcall, record.tsc, true);
        }
    }

    fn instant(&mut self, record: &Record) {
        self.timeline.instants.push(Instant {
            track: Track {
                environment: record.environment,
                lane: Lane::Events,
                cpu: record.cpu,
            },
            at: record.tsc,
            kind: kind_of(record),
            name: decode::name(record),
            arguments: decode::arguments(record),
        });
    }

    /// Ends the slices of a destroyed environment.
    fn end_everything_of(&mut self, environment: u32, at: u64) {
        let mut ended: Vec<Open> = self.upcalls.remove(&environment).unwrap_or_default();
        ended.extend(self.calls.remove(&environment));
        for cpu in self.system_calls.keys().copied().collect::<Vec<_>>() {
            if self.system_calls[&cpu].track.environment == environment {
                ended.extend(self.system_calls.remove(&cpu));
            }
        }
        for open in ended {
            self.close(open, at, false);
        }
    }

    fn close(&mut self, open: Open, end: u64, finished: bool) {
        self.timeline.slices.push(Slice {
            track: open.track,
            start: open.start,
            end: end.max(open.start),
            name: open.name,
            arguments: open.arguments,
            finished,
        });
    }

    fn finish(mut self) -> Timeline {
        let end = self.timeline.end;
        let mut open: Vec<Open> = Vec::new();
        open.extend(self.system_calls.drain().map(|(_, open)| open));
        open.extend(self.slots.drain().map(|(_, open)| open));
        open.extend(self.upcalls.drain().flat_map(|(_, open)| open));
        open.extend(self.calls.drain().map(|(_, open)| open));
        let running: Vec<Open> = self.running.drain().map(|(_, open)| open).collect();
        for slice in open {
            self.close(slice, end, false);
        }
        // The last environment to run is still running when the trace ends: not cut short.
        for slice in running {
            self.close(slice, end, true);
        }
        let slices = &mut self.timeline.slices;
        slices.sort_by(|a, b| (a.start, b.end, a.track).cmp(&(b.start, a.end, b.track)));
        self.timeline.instants.sort_by_key(|instant| instant.at);
        self.timeline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::stream::parse;
    use crate::trace::stream::tests::{bytes_of, record};
    use exo_abi::syscall::Sysnum;
    use exo_abi::trace::pack_name;

    fn timeline_of(records: &[Record]) -> Timeline {
        build(&parse(&bytes_of(records)).unwrap())
    }

    /// (lane, environment, start, end, name) of each slice.
    fn slices(timeline: &Timeline) -> Vec<(Lane, u32, u64, u64, &str)> {
        timeline
            .slices
            .iter()
            .map(|s| {
                (
                    s.track.lane,
                    s.track.environment,
                    s.start,
                    s.end,
                    s.name.as_str(),
                )
            })
            .collect()
    }

    #[test]
    fn a_fault_resolved_in_user_space_is_an_exception_then_an_upcall_until_the_next_entry() {
        let map = Sysnum::Map as u64;
        let timeline = timeline_of(&[
            record(100, Kind::Switch, 1, [0, 1]),
            record(110, Kind::Exception, 1, [14, 0x5000]),
            record(120, Kind::Upcall, 1, [1, 14]),
            record(150, Kind::SyscallEnter, 1, [map, 7]),
            record(160, Kind::SyscallExit, 1, [map, 0]),
            record(200, Kind::Flush, 0, [5, 0]),
        ]);
        assert_eq!(
            slices(&timeline),
            [
                (Lane::Running, 1, 100, 200, "running"),
                (Lane::Upcalls, 1, 120, 150, "upcall: fault"),
                (Lane::SystemCalls, 1, 150, 160, "Map"),
            ]
        );
        assert!(timeline.slices.iter().all(|slice| slice.finished));
        let instants: Vec<&str> = timeline.instants.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(instants, ["exception: page fault", "flush"]);
        assert_eq!(timeline.environments, BTreeSet::from([0, 1]));
        assert_eq!(timeline.microseconds(1100), 1.0);
    }

    #[test]
    fn with_library_events_an_upcall_lasts_until_it_returns() {
        let yield_number = Sysnum::Yield as u64;
        let timeline = timeline_of(&[
            record(10, Kind::Name, 2, pack_name("fault-test")),
            record(20, Kind::Upcall, 2, [1, 14]),
            record(30, Kind::SyscallEnter, 2, [yield_number, 0]),
            record(40, Kind::SyscallExit, 2, [yield_number, 0]),
            record(50, Kind::UpcallReturn, 2, [1, 0]),
        ]);
        assert_eq!(
            slices(&timeline),
            [
                (Lane::Upcalls, 2, 20, 50, "upcall: fault"),
                (Lane::SystemCalls, 2, 30, 40, "Yield"),
            ]
        );
        assert_eq!(timeline.environment_label(2), "environment 2 (fault-test)");
        assert_eq!(timeline.environment_label(3), "environment 3");
        assert_eq!(timeline.environment_label(0), "kernel");
    }

    #[test]
    fn a_call_lasts_until_the_reply_naming_its_caller() {
        let call = Sysnum::Call as u64;
        let reply = Sysnum::Reply as u64;
        let timeline = timeline_of(&[
            record(10, Kind::SyscallEnter, 1, [call, 0]),
            record(12, Kind::Call, 1, [2, 5]),
            record(14, Kind::SyscallExit, 1, [call, 0]),
            record(15, Kind::Switch, 2, [1, 2]),
            record(20, Kind::SyscallEnter, 2, [reply, 0]),
            record(22, Kind::Reply, 2, [1, 0]),
            record(24, Kind::SyscallExit, 2, [reply, 0]),
            record(25, Kind::Switch, 1, [2, 1]),
            record(26, Kind::Wake, 1, [0, 42]),
        ]);
        let calls: Vec<_> = slices(&timeline)
            .into_iter()
            .filter(|slice| slice.0 == Lane::Calls)
            .collect();
        assert_eq!(calls, [(Lane::Calls, 1, 12, 22, "call to environment 2")]);
        let reply = &timeline.instants[0];
        assert_eq!(
            (reply.track.environment, reply.name.as_str()),
            (2, "reply to environment 1")
        );
        // The switch from 1 to 2 ends 1's running and starts 2's.
        let running: Vec<_> = slices(&timeline)
            .into_iter()
            .filter(|slice| slice.0 == Lane::Running)
            .collect();
        assert_eq!(
            running,
            [
                (Lane::Running, 2, 15, 25, "running"),
                (Lane::Running, 1, 25, 26, "running")
            ]
        );
    }

    #[test]
    fn an_idle_cpu_ends_the_last_runner_at_its_last_event() {
        let wait = Sysnum::Wait as u64;
        let timeline = timeline_of(&[
            record(10, Kind::Switch, 1, [0, 1]),
            record(20, Kind::SyscallEnter, 1, [wait, 0]),
            record(30, Kind::SyscallExit, 1, [wait, 0]),
            // Idle from about 30 to 90, which the kernel does not record.
            record(90, Kind::DeviceInterrupt, 0, [33, 0]),
            record(92, Kind::FrameReceived, 1, [1, 60]),
            record(95, Kind::Switch, 1, [0, 1]),
            record(96, Kind::SyscallEnter, 1, [wait, 0]),
            record(97, Kind::SyscallExit, 1, [wait, 0]),
            // It waited again and was resumed: a switch from itself to itself.
            record(150, Kind::Switch, 1, [1, 1]),
        ]);
        let running: Vec<_> = slices(&timeline)
            .into_iter()
            .filter(|slice| slice.0 == Lane::Running)
            .collect();
        assert_eq!(
            running,
            [
                (Lane::Running, 1, 10, 30, "running"),
                (Lane::Running, 1, 95, 97, "running"),
                (Lane::Running, 1, 150, 150, "running"),
            ]
        );
    }

    #[test]
    fn slots_follow_each_other_and_unfinished_slices_are_marked() {
        let wait = Sysnum::Wait as u64;
        let timeline = timeline_of(&[
            record(0, Kind::SlotStart, 1, [0, 1]),
            record(10, Kind::SlotStart, 2, [1, 0]),
            record(15, Kind::SyscallEnter, 2, [wait, 0]),
            record(20, Kind::SlotStart, 1, [2, 1]),
        ]);
        assert_eq!(
            slices(&timeline),
            [
                (Lane::Slots, 0, 0, 10, "slot 0"),
                (Lane::Slots, 0, 10, 20, "slot 1"),
                (Lane::SystemCalls, 2, 15, 20, "Wait"),
                (Lane::Slots, 0, 20, 20, "slot 2"),
            ]
        );
        let unfinished: Vec<&str> = timeline
            .slices
            .iter()
            .filter(|slice| !slice.finished)
            .map(|slice| slice.name.as_str())
            .collect();
        assert_eq!(unfinished, ["Wait", "slot 2"]);
        let slot = &timeline.slices[1];
        assert!(slot.arguments.contains(&("environment", Value::Number(2))));
        assert!(
            slot.arguments
                .contains(&("owner", Value::Text("none".to_string())))
        );
    }

    #[test]
    fn a_system_call_without_its_exit_ends_at_the_next_entry() {
        let null = Sysnum::Null as u64;
        let timeline = timeline_of(&[
            record(10, Kind::SyscallEnter, 1, [null, 0]),
            record(20, Kind::SyscallEnter, 1, [null, 0]),
            record(30, Kind::SyscallExit, 1, [null, 0]),
        ]);
        let finished: Vec<(u64, u64, bool)> = timeline
            .slices
            .iter()
            .map(|slice| (slice.start, slice.end, slice.finished))
            .collect();
        assert_eq!(finished, [(10, 20, false), (20, 30, true)]);
    }

    #[test]
    fn a_destroyed_environment_ends_what_it_had_open() {
        let exit = Sysnum::Exit as u64;
        let timeline = timeline_of(&[
            record(10, Kind::Upcall, 3, [1, 14]),
            record(20, Kind::SyscallEnter, 3, [exit, 0]),
            record(30, Kind::EnvironmentDestroy, 3, [3, 0]),
            record(40, Kind::Flush, 0, [3, 0]),
        ]);
        assert_eq!(
            slices(&timeline),
            [
                (Lane::Upcalls, 3, 10, 20, "upcall: fault"),
                (Lane::SystemCalls, 3, 20, 30, "Exit"),
            ]
        );
        assert!(!timeline.slices[1].finished);
    }
}
