//! Trace events: a timeline of what the kernel and the library OSes did.
//!
//! With `trace=CLASSES` on the kernel command line (`trace=all`, or a list
//! such as `trace=slots,calls,net`), the kernel records each event of those
//! classes as a 32-byte [`Record`] — a TSC timestamp, the event's kind, the
//! CPU and the environment it concerns, and two values — in a buffer of its
//! own per CPU. Library OSes add their events (thread switches, faults their
//! pager resolved, socket activity) with the `Trace` system call, tagged by
//! the kernel with the caller's environment, so one timeline shows both.
//!
//! The kernel writes the buffer out through QEMU's debug console (I/O port
//! [`DEBUG_CONSOLE_PORT`]) when it fills and when the run ends: first a
//! [`Header`], then records. `cargo xtask trace` turns the stream into a
//! Chrome trace (Perfetto) and a picture (docs/08).
//!
//! With no `trace=`, no class is on, and each place an event could be
//! recorded costs one load and one test.

use crate::numbered::numbered_enum;

/// The I/O port of QEMU's `isa-debugcon` device, where the stream goes.
pub const DEBUG_CONSOLE_PORT: u16 = 0xe9;

/// [`Header::magic`]: "exotrace" in little-endian bytes.
pub const MAGIC: u64 = u64::from_le_bytes(*b"exotrace");
/// The stream's format; [`Header::version`].
pub const VERSION: u64 = 1;

/// The first 32 bytes of the stream, once.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub magic: u64,
    pub version: u64,
    /// The rate of the timestamps, in Hz.
    pub tsc_hz: u64,
    /// The classes recorded ([`Class`] bits).
    pub classes: u64,
}

/// One event.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// The time-stamp counter when it happened.
    pub tsc: u64,
    /// A [`Kind`] number.
    pub kind: u16,
    /// The CPU it happened on.
    pub cpu: u16,
    /// The environment it concerns (0: none, the kernel idle).
    pub environment: u32,
    /// What [`Kind`] says they are.
    pub values: [u64; 2],
}

const _: () = assert!(size_of::<Record>() == 32 && size_of::<Header>() == 32);

impl Record {
    /// The record as the stream carries it (little-endian, as x86 stores it).
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut bytes = [0; 32];
        bytes[0..8].copy_from_slice(&self.tsc.to_le_bytes());
        bytes[8..10].copy_from_slice(&self.kind.to_le_bytes());
        bytes[10..12].copy_from_slice(&self.cpu.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.environment.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.values[0].to_le_bytes());
        bytes[24..32].copy_from_slice(&self.values[1].to_le_bytes());
        bytes
    }

    /// The record in `bytes`, as [`to_bytes`](Self::to_bytes) wrote it.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
        Self {
            tsc: word(0),
            kind: u16::from_le_bytes([bytes[8], bytes[9]]),
            cpu: u16::from_le_bytes([bytes[10], bytes[11]]),
            environment: u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]),
            values: [word(16), word(24)],
        }
    }
}

impl Header {
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut bytes = [0; 32];
        let words = [self.magic, self.version, self.tsc_hz, self.classes];
        for (index, word) in words.into_iter().enumerate() {
            bytes[index * 8..index * 8 + 8].copy_from_slice(&word.to_le_bytes());
        }
        bytes
    }

    /// The header in `bytes`, if they begin a trace stream of this version.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<Self> {
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
        let header = Self {
            magic: word(0),
            version: word(8),
            tsc_hz: word(16),
            classes: word(24),
        };
        (header.magic == MAGIC && header.version == VERSION).then_some(header)
    }
}

bitflags::bitflags! {
    /// Classes of events, each turned on by its name in `trace=`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Class: u64 {
        /// Slot starts and environment switches.
        const SLOTS = 1 << 0;
        /// System call entry and exit.
        const SYSCALLS = 1 << 1;
        /// Exceptions, and upcalls delivered.
        const UPCALLS = 1 << 2;
        /// Calls, replies, signals, wake-ups.
        const CALLS = 1 << 3;
        /// Revocation: requests, frames given back, frames taken by force.
        const REVOCATION = 1 << 4;
        /// Frames into and out of rings, kicks, device interrupts.
        const NET = 1 << 5;
        /// Environments created, started, destroyed.
        const ENVIRONMENTS = 1 << 6;
        /// Events library OSes write with `Trace`.
        const LIBRARY = 1 << 7;
    }
}

impl Class {
    /// Each class's name in `trace=`, in bit order.
    pub const NAMES: [(&'static str, Class); 8] = [
        ("slots", Class::SLOTS),
        ("syscalls", Class::SYSCALLS),
        ("upcalls", Class::UPCALLS),
        ("calls", Class::CALLS),
        ("revocation", Class::REVOCATION),
        ("net", Class::NET),
        ("environments", Class::ENVIRONMENTS),
        ("library", Class::LIBRARY),
    ];

    /// The classes `text` names: `all`, or names separated by commas. `None`
    /// if a name is unknown.
    pub fn parse(text: &str) -> Option<Class> {
        if text == "all" {
            return Some(Class::all());
        }
        text.split(',').try_fold(Class::empty(), |classes, name| {
            let (_, class) = Self::NAMES.iter().find(|(known, _)| *known == name)?;
            Some(classes | *class)
        })
    }
}

numbered_enum! {
    /// What happened. Kernel events are below [`FIRST_LIBRARY_KIND`]; the
    /// `Trace` system call takes only kinds from there up.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum Kind {
        /// A slot started: (slot index, its owner or 0). The environment is
        /// the one that runs in it.
        SlotStart = 1,
        /// The CPU went from one environment to another: (from, to); 0 is
        /// the kernel idle.
        Switch = 2,
        /// A system call began: (number, first argument).
        SyscallEnter = 3,
        /// It returned to its caller: (number, status: 0 or an error code).
        SyscallExit = 4,
        /// An exception in user mode: (vector, faulting address or 0).
        Exception = 5,
        /// An upcall entered the environment: (reason, first info word).
        Upcall = 6,
        /// A call through an endpoint: (the server, the entry tag).
        Call = 7,
        /// The server replied: (the caller it returns to, 0).
        Reply = 8,
        /// A notification into the environment was signalled: (bits, 0).
        Signal = 9,
        /// A `Wait` or a `Call` of the environment ended: (the two values it
        /// returns: for `Wait` the event bit and its detail).
        Wake = 10,
        /// The environment was asked to give frames back: (frames, deadline
        /// in ticks).
        RevocationRequest = 11,
        /// It gave frames back before its deadline: (frames, 0).
        FramesGivenBack = 12,
        /// Its deadline passed: (frames taken by force, 0).
        FramesTaken = 13,
        /// A received frame went into the environment's receive ring:
        /// (binding, length).
        FrameReceived = 14,
        /// One of its frames left for the wire, from its transmit ring or by
        /// `NetSend`: (binding, length).
        FrameSent = 15,
        /// It kicked its transmit ring: (binding, 0).
        Kick = 16,
        /// A device interrupt: (vector, 0).
        DeviceInterrupt = 17,
        /// It created an environment: (the child, 0).
        EnvironmentCreate = 18,
        /// It started an environment: (the child, entry).
        EnvironmentStart = 19,
        /// The environment was destroyed: (its id, 0).
        EnvironmentDestroy = 20,
        /// The kernel wrote its buffer out, a gap in time: (records, 0).
        Flush = 21,

        /// Library OS: the environment's name, for the timeline's track: up
        /// to 16 bytes of it, little-endian, zero-padded.
        Name = 64,
        /// Library OS: an upcall handler returned to the interrupted code:
        /// (reason, 0).
        UpcallReturn = 65,
        /// Library OS: its thread scheduler switched threads: (from, to).
        ThreadSwitch = 66,
        /// Library OS: its pager gave a fresh zeroed page: (address, 0).
        DemandZero = 67,
        /// Library OS: its pager copied a page written after a fork: (address, 0).
        CopyOnWrite = 68,
        /// Library OS: a socket sent: (socket, bytes).
        SocketSend = 69,
        /// Library OS: a socket received: (socket, bytes).
        SocketReceive = 70,
    }
}

/// The first kind a library OS may write.
pub const FIRST_LIBRARY_KIND: u64 = 64;

impl Kind {
    /// The class that turns this kind on.
    pub const fn class(self) -> Class {
        match self {
            Kind::SlotStart | Kind::Switch => Class::SLOTS,
            Kind::SyscallEnter | Kind::SyscallExit => Class::SYSCALLS,
            Kind::Exception | Kind::Upcall => Class::UPCALLS,
            Kind::Call | Kind::Reply | Kind::Signal | Kind::Wake => Class::CALLS,
            Kind::RevocationRequest | Kind::FramesGivenBack | Kind::FramesTaken => {
                Class::REVOCATION
            }
            Kind::FrameReceived | Kind::FrameSent | Kind::Kick | Kind::DeviceInterrupt => {
                Class::NET
            }
            Kind::EnvironmentCreate | Kind::EnvironmentStart | Kind::EnvironmentDestroy => {
                Class::ENVIRONMENTS
            }
            // A flush is always recorded: without it a gap would look like idle time.
            Kind::Flush => Class::all(),
            Kind::Name
            | Kind::UpcallReturn
            | Kind::ThreadSwitch
            | Kind::DemandZero
            | Kind::CopyOnWrite
            | Kind::SocketSend
            | Kind::SocketReceive => Class::LIBRARY,
        }
    }

    /// Whether a library OS may write it.
    pub const fn is_library(self) -> bool {
        self as u64 >= FIRST_LIBRARY_KIND
    }
}

/// Packs up to 16 bytes of `name` into a [`Kind::Name`] event's values.
pub fn pack_name(name: &str) -> [u64; 2] {
    let mut bytes = [0; 16];
    let length = name.len().min(16);
    bytes[..length].copy_from_slice(&name.as_bytes()[..length]);
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
    [word(0), word(8)]
}

/// The name [`pack_name`] packed (lossy if it was not UTF-8 when cut).
pub fn unpack_name(values: [u64; 2], out: &mut [u8; 16]) -> &str {
    out[..8].copy_from_slice(&values[0].to_le_bytes());
    out[8..].copy_from_slice(&values[1].to_le_bytes());
    let length = out.iter().position(|byte| *byte == 0).unwrap_or(16);
    match core::str::from_utf8(&out[..length]) {
        Ok(name) => name,
        Err(error) => core::str::from_utf8(&out[..error.valid_up_to()]).unwrap_or(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_the_header_round_trip_through_bytes() {
        let record = Record {
            tsc: 0x0102_0304_0506_0708,
            kind: Kind::Call as u16,
            cpu: 3,
            environment: 0xdead_beef,
            values: [u64::MAX, 7],
        };
        assert_eq!(Record::from_bytes(&record.to_bytes()), record);
        let header = Header {
            magic: MAGIC,
            version: VERSION,
            tsc_hz: 2_600_000_000,
            classes: Class::all().bits(),
        };
        assert_eq!(Header::from_bytes(&header.to_bytes()), Some(header));
        assert_eq!(Header::from_bytes(&record.to_bytes()), None);
    }

    #[test]
    fn classes_parse_by_name() {
        assert_eq!(Class::parse("all"), Some(Class::all()));
        assert_eq!(Class::parse("slots,net"), Some(Class::SLOTS | Class::NET));
        assert_eq!(Class::parse("slots,nets"), None);
        assert_eq!(Class::parse(""), None);
        for (name, class) in Class::NAMES {
            assert_eq!(Class::parse(name), Some(class));
        }
    }

    #[test]
    fn library_kinds_are_the_library_class_and_only_they() {
        for kind in Kind::ALL {
            assert_eq!(
                kind.is_library(),
                kind.class() == Class::LIBRARY,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn names_pack_and_unpack() {
        let mut out = [0; 16];
        assert_eq!(unpack_name(pack_name("udp-echo"), &mut out), "udp-echo");
        assert_eq!(
            unpack_name(pack_name("a-very-long-program-name"), &mut out),
            "a-very-long-prog"
        );
        assert_eq!(unpack_name(pack_name(""), &mut out), "");
        // Cut inside a character: what is whole survives.
        assert_eq!(
            unpack_name(pack_name("fifteen-chars-é"), &mut out),
            "fifteen-chars-é"
        );
        assert_eq!(
            unpack_name(pack_name("sixteen-chars-xé"), &mut out),
            "sixteen-chars-x"
        );
    }
}
