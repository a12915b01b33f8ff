//! What one record says, in words: a name for it and its two values named as
//! `exo_abi::trace::Kind` documents them, the system call and error numbers decoded with
//! the ABI's own tables. Every output (the Chrome trace, the picture, the summary) names
//! events through here, so they all agree.
//!
//! Nothing here pairs records or orders them: that is the timeline's job.

use exo_abi::Error;
use exo_abi::syscall::Sysnum;
use exo_abi::trace::{Kind, Record, unpack_name};
use exo_abi::upcall::UpcallReason;

/// A value of an event, as it should be shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Number(u64),
    /// An address or a set of bits: shown in hexadecimal.
    Hexadecimal(u64),
    Text(String),
}

impl std::fmt::Display for Value {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Number(number) => write!(formatter, "{number}"),
            Value::Hexadecimal(number) => write!(formatter, "{number:#x}"),
            Value::Text(text) => formatter.write_str(text),
        }
    }
}

/// A named value of an event.
pub type Argument = (&'static str, Value);

/// The record's kind, if its number is one.
pub fn kind_of(record: &Record) -> Option<Kind> {
    Kind::from_number(u64::from(record.kind))
}

/// What an event is called on the timeline.
pub fn name(record: &Record) -> String {
    let [first, _] = record.values;
    let Some(kind) = kind_of(record) else {
        return format!("unknown kind {}", record.kind);
    };
    match kind {
        Kind::SlotStart => format!("slot {first}"),
        Kind::SyscallEnter | Kind::SyscallExit => system_call_name(first),
        Kind::Exception => format!("exception: {}", exception_name(first)),
        Kind::Upcall | Kind::UpcallReturn => format!("upcall: {}", upcall_reason(first)),
        Kind::Call => format!("call to environment {first}"),
        Kind::Reply => format!("reply to environment {first}"),
        Kind::Name => format!("name: {}", program_name(record)),
        other => words(other),
    }
}

/// The record's values, named.
pub fn arguments(record: &Record) -> Vec<Argument> {
    let [first, second] = record.values;
    let number = Value::Number;
    let hexadecimal = Value::Hexadecimal;
    let Some(kind) = kind_of(record) else {
        return vec![
            ("first", hexadecimal(first)),
            ("second", hexadecimal(second)),
        ];
    };
    match kind {
        Kind::SlotStart => vec![("slot", number(first)), ("owner", owner(second))],
        Kind::Switch => vec![("from", number(first)), ("to", number(second))],
        Kind::SyscallEnter => vec![
            ("system_call", Value::Text(system_call_name(first))),
            ("number", number(first)),
            ("first_argument", hexadecimal(second)),
        ],
        Kind::SyscallExit => vec![
            ("system_call", Value::Text(system_call_name(first))),
            ("number", number(first)),
            ("status", Value::Text(status(second))),
        ],
        Kind::Exception => vec![
            ("vector", number(first)),
            ("exception", Value::Text(exception_name(first).to_string())),
            ("address", hexadecimal(second)),
        ],
        Kind::Upcall => vec![
            ("reason", Value::Text(upcall_reason(first))),
            ("first_info", hexadecimal(second)),
        ],
        Kind::UpcallReturn => vec![("reason", Value::Text(upcall_reason(first)))],
        Kind::Call => vec![("server", number(first)), ("entry", number(second))],
        Kind::Reply => vec![("caller", number(first))],
        Kind::Signal => vec![("bits", hexadecimal(first))],
        // What the ended `Wait` or `Call` returns: an event bit and its detail, or the
        // server's two results.
        Kind::Wake => vec![
            ("first_result", hexadecimal(first)),
            ("second_result", hexadecimal(second)),
        ],
        Kind::RevocationRequest => {
            vec![
                ("frames", number(first)),
                ("deadline_ticks", number(second)),
            ]
        }
        Kind::FramesGivenBack | Kind::FramesTaken => vec![("frames", number(first))],
        Kind::FrameReceived | Kind::FrameSent => {
            vec![("binding", number(first)), ("length", number(second))]
        }
        Kind::Kick => vec![("binding", number(first))],
        Kind::DeviceInterrupt => vec![("vector", number(first))],
        Kind::EnvironmentCreate => vec![("child", number(first))],
        Kind::EnvironmentStart => vec![("child", number(first)), ("entry", hexadecimal(second))],
        Kind::EnvironmentDestroy => vec![("environment", number(first))],
        Kind::Flush => vec![("records", number(first))],
        Kind::Name => vec![("name", Value::Text(program_name(record)))],
        Kind::ThreadSwitch => vec![("from", number(first)), ("to", number(second))],
        Kind::DemandZero | Kind::CopyOnWrite => vec![("address", hexadecimal(first))],
        Kind::SocketSend | Kind::SocketReceive => {
            vec![("socket", number(first)), ("bytes", number(second))]
        }
    }
}

/// The program name a `Name` event carries.
pub fn program_name(record: &Record) -> String {
    let mut bytes = [0; 16];
    unpack_name(record.values, &mut bytes).to_string()
}

/// A kind's name in words: `FrameReceived` is "frame received".
pub fn words(kind: Kind) -> String {
    words_of(&format!("{kind:?}"))
}

/// The ABI's name for system call `number` (`Map`, `Call`, …).
pub fn system_call_name(number: u64) -> String {
    match Sysnum::from_number(number) {
        Some(sysnum) => format!("{sysnum:?}"),
        None => format!("system call {number}"),
    }
}

/// "ok", or the ABI's name for the error a system call returned.
fn status(code: u64) -> String {
    match (code, Error::from_number(code)) {
        (0, _) => "ok".to_string(),
        (_, Some(error)) => format!("{error:?}"),
        (_, None) => format!("status {code}"),
    }
}

/// The owner of a slot, where 0 means none.
fn owner(environment: u64) -> Value {
    match environment {
        0 => Value::Text("none".to_string()),
        owner => Value::Number(owner),
    }
}

fn upcall_reason(reason: u64) -> String {
    const REASONS: [UpcallReason; 3] = [
        UpcallReason::Fault,
        UpcallReason::RevokeFrames,
        UpcallReason::SliceStart,
    ];
    match REASONS.iter().find(|known| **known as u64 == reason) {
        Some(known) => words_of(&format!("{known:?}")),
        None => format!("reason {reason}"),
    }
}

/// A Rust name in words: `SliceStart` is "slice start".
fn words_of(camel_case: &str) -> String {
    let mut text = String::new();
    for character in camel_case.chars() {
        if character.is_ascii_uppercase() && !text.is_empty() {
            text.push(' ');
        }
        text.push(character.to_ascii_lowercase());
    }
    text
}

/// The x86 exceptions a user program can take, by vector.
fn exception_name(vector: u64) -> &'static str {
    match vector {
        0 => "divide error",
        1 => "debug",
        3 => "breakpoint",
        4 => "overflow",
        5 => "bound range",
        6 => "invalid opcode",
        7 => "device not available",
        10 => "invalid TSS",
        11 => "segment not present",
        12 => "stack fault",
        13 => "general protection",
        14 => "page fault",
        16 => "x87 floating point",
        17 => "alignment check",
        19 => "SIMD floating point",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::stream::tests::record;
    use exo_abi::trace::pack_name;

    #[test]
    fn system_calls_and_their_status_are_named_by_the_abi() {
        let number = Sysnum::Call as u64;
        let enter = record(1, Kind::SyscallEnter, 3, [number, 0x1000]);
        assert_eq!(name(&enter), "Call");
        assert_eq!(
            arguments(&enter),
            [
                ("system_call", Value::Text("Call".to_string())),
                ("number", Value::Number(number)),
                ("first_argument", Value::Hexadecimal(0x1000)),
            ]
        );
        let refused = record(2, Kind::SyscallExit, 3, [number, Error::StaleHandle as u64]);
        assert_eq!(arguments(&refused)[2].1.to_string(), "StaleHandle");
        let fine = record(2, Kind::SyscallExit, 3, [number, 0]);
        assert_eq!(arguments(&fine)[2].1.to_string(), "ok");
        assert_eq!(
            name(&record(1, Kind::SyscallEnter, 3, [9999, 0])),
            "system call 9999"
        );
    }

    #[test]
    fn every_kind_has_a_name_and_named_values() {
        for kind in Kind::ALL {
            let event = record(1, kind, 1, [14, 2]);
            assert!(!name(&event).is_empty(), "{kind:?}");
            for (argument, _) in arguments(&event) {
                assert!(
                    argument.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                    "{kind:?}: {argument}"
                );
            }
        }
        let mut unknown = record(1, Kind::Flush, 0, [1, 2]);
        unknown.kind = 200;
        assert_eq!(name(&unknown), "unknown kind 200");
    }

    #[test]
    fn faults_upcalls_and_names_read_as_words() {
        let fault = record(1, Kind::Exception, 1, [14, 0xdead_b000]);
        assert_eq!(name(&fault), "exception: page fault");
        assert_eq!(arguments(&fault)[2].1.to_string(), "0xdeadb000");
        let upcall = record(2, Kind::Upcall, 1, [UpcallReason::SliceStart as u64, 3]);
        assert_eq!(name(&upcall), "upcall: slice start");
        let named = record(3, Kind::Name, 1, pack_name("udp-echo"));
        assert_eq!(name(&named), "name: udp-echo");
        assert_eq!(words(Kind::FrameReceived), "frame received");
        assert_eq!(
            name(&record(1, Kind::Reply, 2, [1, 0])),
            "reply to environment 1"
        );
    }
}
