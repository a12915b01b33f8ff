//! Seeing the system (docs/08): programs booted with `trace=all`, judged on the records of
//! the kernel's trace stream — the order the chapter promises a student will see — rather
//! than on strings.
//!
//! - `trace-upcalls` (fault-test): every page fault is followed, in its environment, by a
//!   fault upcall for it (and, where the library OS writes `UpcallReturn`, by its return);
//! - `trace-calls` (call-test): every call is answered by a reply from the server's track
//!   naming the caller, before the caller calls again, unless the server was destroyed;
//! - `trace-rings` (udp-reflector, with the host sending it datagrams and hostile frames):
//!   every datagram the host sent is seen going into the reflector's receive ring and,
//!   later, a frame of its length leaving through the same binding.

use std::collections::BTreeMap;

use exo_abi::syscall::Sysnum;
use exo_abi::trace::{Kind, Record};
use exo_abi::upcall::UpcallReason;

use super::scenario::{DEFAULT, LONG_TIMEOUT, NetworkScenario, Program, Scenario};
use crate::host::kernel_network;
use crate::trace::stream::Stream;

/// Faults fault-test takes and resolves in user space: one per page of its heap.
const FAULT_TEST_FAULTS: usize = 32;
/// Round trips call-test makes, at least.
const CALL_TEST_ROUND_TRIPS: usize = 1000;
const PAGE_FAULT: u64 = 14;
/// Datagrams the host sends udp-reflector: some before the hostile frames, as many after.
const REFLECTIONS: usize = 2 * kernel_network::REFLECTIONS;

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "trace-upcalls",
        program: Program::Named("fault-test"),
        kernel_command_line: "log=info trace=all",
        // fault-test judges its own faults (3 checks); the trace is judged here.
        checks: Some(3),
        trace_check: Some(faults_become_upcalls),
        ..DEFAULT
    },
    Scenario {
        name: "trace-calls",
        program: Program::Named("call-test"),
        kernel_command_line: "log=info trace=all",
        timeout: LONG_TIMEOUT,
        trace_check: Some(calls_get_replies),
        ..DEFAULT
    },
    // The UDP round trip's floor (chapter 7), whose own test this is too: every datagram
    // back unchanged around hostile frames, and on the trace each sent after one came in.
    Scenario {
        name: "trace-rings",
        program: Program::Named("udp-reflector"),
        kernel_command_line: "log=info trace=all",
        serial_must_show: &[
            kernel_network::REFLECTOR_READY,
            kernel_network::REFLECTOR_DONE,
        ],
        network: Some(NetworkScenario {
            udp_ports: &[kernel_network::REFLECTOR_PORT],
            host: Some(kernel_network::reflections_around_hostile_frames),
            inject_frames: true,
            ..NetworkScenario::DEFAULT
        }),
        trace_check: Some(frames_are_reflected),
        ..DEFAULT
    },
];

/// Each page fault of an environment is followed, before it enters the kernel again, by a
/// fault upcall for that vector; with library events, the upcall returns before its next
/// fault or upcall.
fn faults_become_upcalls(stream: &Stream) -> Result<(), String> {
    let records = whole_and_in_order(stream)?;
    at_least_environments(&records, 1)?;
    let mut faults = 0;
    for (index, fault) in records.iter().enumerate() {
        if kind(fault) != Some(Kind::Exception) || fault.values[0] != PAGE_FAULT {
            continue;
        }
        faults += 1;
        let at = format!("the page fault at tsc {}", fault.tsc);
        let (upcall_index, upcall) =
            next_of(&records, index, fault.environment, &KERNEL_ENTRIES)
                .ok_or_else(|| format!("{at} is never followed by an upcall"))?;
        if kind(upcall) != Some(Kind::Upcall)
            || upcall.values != [UpcallReason::Fault as u64, PAGE_FAULT]
        {
            return Err(format!(
                "{at} is followed in environment {} by {}, not by a fault upcall",
                fault.environment,
                crate::trace::decode::name(upcall)
            ));
        }
        let library_returns = records.iter().any(|record| {
            record.environment == fault.environment && kind(record) == Some(Kind::UpcallReturn)
        });
        if library_returns {
            let after = [Kind::UpcallReturn, Kind::Upcall, Kind::Exception];
            let returned = next_of(&records, upcall_index, fault.environment, &after)
                .is_some_and(|(_, next)| kind(next) == Some(Kind::UpcallReturn));
            if !returned {
                return Err(format!("the upcall for {at} never returns"));
            }
        }
    }
    if faults < FAULT_TEST_FAULTS {
        return Err(format!(
            "{faults} page faults recorded, expected at least {FAULT_TEST_FAULTS}"
        ));
    }
    Ok(())
}

/// What an environment does in the kernel after a fault before its upcall can run.
const KERNEL_ENTRIES: [Kind; 5] = [
    Kind::Upcall,
    Kind::Exception,
    Kind::SyscallEnter,
    Kind::UpcallReturn,
    Kind::EnvironmentDestroy,
];

/// Each call is answered by a reply recorded for its server and naming its caller, before
/// the caller calls again; only a server destroyed mid-call may leave a call unanswered.
fn calls_get_replies(stream: &Stream) -> Result<(), String> {
    let records = whole_and_in_order(stream)?;
    at_least_environments(&records, 2)?;
    let mut replied = 0;
    for (index, call) in records.iter().enumerate() {
        if kind(call) != Some(Kind::Call) {
            continue;
        }
        let (caller, server) = (call.environment, call.values[0]);
        let answer = records[index + 1..]
            .iter()
            .find(|record| match kind(record) {
                Some(Kind::Reply) => {
                    u64::from(record.environment) == server && record.values[0] == u64::from(caller)
                }
                Some(Kind::Call) => record.environment == caller,
                Some(Kind::EnvironmentDestroy) => u64::from(record.environment) == server,
                _ => false,
            });
        match answer.and_then(kind) {
            Some(Kind::Reply) => replied += 1,
            Some(Kind::EnvironmentDestroy) => {}
            _ => {
                return Err(format!(
                    "the call of environment {caller} to {server} at tsc {} gets no reply \
                     from {server} naming {caller} before the caller calls again",
                    call.tsc
                ));
            }
        }
    }
    if replied < CALL_TEST_ROUND_TRIPS {
        return Err(format!(
            "{replied} calls replied to, expected at least {CALL_TEST_ROUND_TRIPS}"
        ));
    }
    // Every reply belongs to a call: the system calls and the events agree.
    let reply_calls = records
        .iter()
        .filter(|record| {
            kind(record) == Some(Kind::SyscallExit) && record.values == [Sysnum::Reply as u64, 0]
        })
        .count();
    let replies = records
        .iter()
        .filter(|record| kind(record) == Some(Kind::Reply))
        .count();
    if replies != reply_calls {
        return Err(format!(
            "{replies} reply events but {reply_calls} successful Reply system calls"
        ));
    }
    Ok(())
}

/// One environment sent back every datagram at least: a frame sent through a binding counts
/// as a reflection when the same environment received one of the same length through it
/// earlier and has not answered it yet. (The reflector's own frames, such as its ARP
/// request, are not reflections and are not counted.)
fn frames_are_reflected(stream: &Stream) -> Result<(), String> {
    let records = whole_and_in_order(stream)?;
    // By environment, binding and length.
    let mut unanswered: BTreeMap<(u32, u64, u64), usize> = BTreeMap::new();
    let mut reflected: BTreeMap<u32, usize> = BTreeMap::new();
    for record in &records {
        let frame = (record.environment, record.values[0], record.values[1]);
        match kind(record) {
            Some(Kind::FrameReceived) => *unanswered.entry(frame).or_default() += 1,
            Some(Kind::FrameSent) => {
                if let Some(waiting) = unanswered.get_mut(&frame).filter(|waiting| **waiting > 0) {
                    *waiting -= 1;
                    *reflected.entry(record.environment).or_default() += 1;
                }
            }
            _ => {}
        }
    }
    let most = reflected.values().copied().max().unwrap_or(0);
    if most < REFLECTIONS {
        return Err(format!(
            "at most {most} frames sent back by one environment after it received one of the \
             same length through the same binding; expected at least {REFLECTIONS}"
        ));
    }
    Ok(())
}

/// The records in time order, if the stream is whole (it ends with the kernel's last flush).
fn whole_and_in_order(stream: &Stream) -> Result<Vec<Record>, String> {
    if let Some(cut) = stream.cut {
        return Err(cut.to_string());
    }
    let mut records = stream.records.clone();
    records.sort_by_key(|record| record.tsc);
    Ok(records)
}

/// At least `count` environments besides the kernel have events of their own.
fn at_least_environments(records: &[Record], count: usize) -> Result<(), String> {
    let mut environments: Vec<u32> = records
        .iter()
        .map(|record| record.environment)
        .filter(|environment| *environment != 0)
        .collect();
    environments.sort_unstable();
    environments.dedup();
    if environments.len() < count {
        return Err(format!(
            "events for {} environments besides the kernel ({environments:?}), expected at \
             least {count}",
            environments.len()
        ));
    }
    Ok(())
}

/// The first record after `index` of `environment` whose kind is one of `kinds`.
fn next_of<'a>(
    records: &'a [Record],
    index: usize,
    environment: u32,
    kinds: &[Kind],
) -> Option<(usize, &'a Record)> {
    records
        .iter()
        .enumerate()
        .skip(index + 1)
        .find(|(_, record)| {
            record.environment == environment && kind(record).is_some_and(|k| kinds.contains(&k))
        })
}

fn kind(record: &Record) -> Option<Kind> {
    Kind::from_number(u64::from(record.kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::SCENARIOS;
    use crate::trace::stream::parse;
    use crate::trace::stream::tests::{bytes_of, record};

    fn stream_of(records: &[Record]) -> Stream {
        parse(&bytes_of(records)).unwrap()
    }

    /// fault-test's `count` faults, each resolved: fault, upcall, frame, map.
    fn faults(count: u64, library: bool) -> Vec<Record> {
        let mut records = vec![record(0, Kind::EnvironmentCreate, 0, [1, 0])];
        for index in 0..count {
            let at = 100 + index * 100;
            let allocate = Sysnum::FrameAllocate as u64;
            records.extend([
                record(at, Kind::Exception, 1, [PAGE_FAULT, 0x1000 * index]),
                record(
                    at + 10,
                    Kind::Upcall,
                    1,
                    [UpcallReason::Fault as u64, PAGE_FAULT],
                ),
                record(at + 20, Kind::SyscallEnter, 1, [allocate, 0]),
                record(at + 30, Kind::SyscallExit, 1, [allocate, 0]),
            ]);
            if library {
                records.push(record(at + 40, Kind::UpcallReturn, 1, [1, 0]));
            }
        }
        records.push(record(100_000, Kind::Flush, 0, [0, 0]));
        records
    }

    #[test]
    fn resolved_faults_pass_and_a_fault_without_its_upcall_fails() {
        assert_eq!(
            faults_become_upcalls(&stream_of(&faults(32, false))),
            Ok(())
        );
        assert_eq!(faults_become_upcalls(&stream_of(&faults(32, true))), Ok(()));
        let error = faults_become_upcalls(&stream_of(&faults(31, false))).unwrap_err();
        assert!(error.contains("31 page faults recorded"), "{error}");

        // The upcall of the fifth fault is gone: the system call comes first.
        let mut records = faults(32, false);
        let upcall = records.iter().position(|r| r.tsc == 510).unwrap();
        records.remove(upcall);
        let error = faults_become_upcalls(&stream_of(&records)).unwrap_err();
        assert!(
            error.contains("at tsc 500 is followed in environment 1 by FrameAllocate"),
            "{error}"
        );

        // With library events, an upcall must return.
        let mut records = faults(32, true);
        let last_return = records
            .iter()
            .rposition(|r| r.kind == Kind::UpcallReturn as u16);
        records.remove(last_return.unwrap());
        let error = faults_become_upcalls(&stream_of(&records)).unwrap_err();
        assert!(error.contains("never returns"), "{error}");

        // A stream cut short is not judged.
        let mut records = faults(32, false);
        records.pop();
        let error = faults_become_upcalls(&stream_of(&records)).unwrap_err();
        assert!(error.contains("does not end with a flush"), "{error}");
    }

    /// `count` round trips from 1 to server 2, and a call to a server 3 destroyed mid-call.
    fn calls(count: u64) -> Vec<Record> {
        let reply = Sysnum::Reply as u64;
        let mut records = Vec::new();
        for index in 0..count {
            let at = index * 100;
            records.extend([
                record(at, Kind::Call, 1, [2, 7]),
                record(at + 10, Kind::SyscallEnter, 2, [reply, 0]),
                record(at + 20, Kind::Reply, 2, [1, 0]),
                record(at + 30, Kind::SyscallExit, 2, [reply, 0]),
                record(at + 40, Kind::Wake, 1, [0, 0]),
            ]);
        }
        let end = count * 100;
        records.extend([
            record(end, Kind::Call, 1, [3, 0]),
            record(end + 10, Kind::EnvironmentDestroy, 3, [3, 0]),
            record(end + 20, Kind::Flush, 0, [0, 0]),
        ]);
        records
    }

    #[test]
    fn calls_need_replies_naming_their_caller() {
        assert_eq!(calls_get_replies(&stream_of(&calls(1000))), Ok(()));
        let error = calls_get_replies(&stream_of(&calls(999))).unwrap_err();
        assert!(error.contains("999 calls replied to"), "{error}");

        // The reply of the tenth call names someone else.
        let mut records = calls(1000);
        let reply = records.iter_mut().find(|r| r.tsc == 920).unwrap();
        reply.values[0] = 5;
        let error = calls_get_replies(&stream_of(&records)).unwrap_err();
        assert!(
            error.contains("the call of environment 1 to 2 at tsc 900 gets no reply"),
            "{error}"
        );
    }

    #[test]
    fn one_environment_is_not_enough_for_calls() {
        let records = [
            record(0, Kind::Call, 1, [1, 0]),
            record(10, Kind::Reply, 1, [1, 0]),
            record(20, Kind::Flush, 0, [0, 0]),
        ];
        let error = calls_get_replies(&stream_of(&records)).unwrap_err();
        assert!(error.contains("events for 1 environments"), "{error}");
    }

    #[test]
    fn a_reflector_sends_back_what_it_received() {
        // Its own ARP request first, then 40 reflections of frames of several lengths.
        let mut records = vec![record(0, Kind::FrameSent, 1, [3, 42])];
        for index in 0..40 {
            let (at, length) = (100 + index * 100, 60 + index);
            records.extend([
                record(at, Kind::FrameReceived, 1, [3, length]),
                record(at + 10, Kind::FrameSent, 1, [3, length]),
            ]);
        }
        records.push(record(10_000, Kind::Flush, 0, [0, 0]));
        assert_eq!(frames_are_reflected(&stream_of(&records)), Ok(()));
        // Sent before it was received: not a reflection.
        let mut early = records.clone();
        early[2].tsc = 90;
        let error = frames_are_reflected(&stream_of(&early)).unwrap_err();
        assert!(error.contains("at most 39 frames sent back"), "{error}");
        // Through another binding: not a reflection.
        let mut elsewhere = records;
        elsewhere[4].values[0] = 4;
        assert!(frames_are_reflected(&stream_of(&elsewhere)).is_err());
    }

    #[test]
    fn traced_scenarios_turn_the_trace_on_and_get_a_file_of_their_own() {
        let traced: Vec<&Scenario> = SCENARIOS
            .iter()
            .filter(|scenario| scenario.trace_check.is_some())
            .collect();
        assert!(traced.len() >= 2);
        for scenario in traced {
            assert!(
                scenario.kernel_command_line.contains("trace="),
                "{}",
                scenario.name
            );
            let config = scenario.qemu_config(std::path::Path::new("/k/exo-kernel"));
            let file = config.trace_output.unwrap();
            assert!(file.ends_with(format!("target/trace/scenarios/{}.bin", scenario.name)));
        }
        let untraced = SCENARIOS.iter().find(|s| s.trace_check.is_none()).unwrap();
        assert_eq!(
            untraced
                .qemu_config(std::path::Path::new("/k"))
                .trace_output,
            None
        );
    }
}
