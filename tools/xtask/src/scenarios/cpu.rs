//! The CPU (docs/03). TCG runs guest time at host speed, so these count work and ticks
//! from the facts page rather than time, and get the long timeout.

use super::scenario::{DEFAULT, LONG_TIMEOUT, Scenario};

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "slices-test",
        // Scenarios run on an instruction-counting clock, so every 1 ms slot is the same
        // amount of guest work and the shares come out exact, whatever the host is doing.
        kernel_command_line: "log=info slots=20 slot_us=1000",
        serial_must_show: &[
            "slices-test: worker 2 holds 4 slots",
            "ok: each worker ran in its slots, every round, and only in them",
            "ok: CPU shares follow holdings 1:2:4 within 10 %",
            "ok: the slots of destroyed workers can be allocated again",
            "ok: an infinite loop on 4 slots does not stop a 1-slot child or the parent",
            "allocating a slot held by another refused (SlotUnavailable)",
            "allocating slot N of N refused (InvalidArgument)",
            "allocating a slot for a frame capability refused (WrongKind)",
            "without CONTROL refused (MissingRights)",
            "dropping a dropped slot capability refused (StaleHandle)",
            "ok: a dropped slot can be allocated again",
            "allocating any slot refused (SlotUnavailable)",
            "ok: destroying the owner frees all its slots",
            "slices-test: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "yield-test",
        serial_must_show: &[
            "yield-test: 1000 round trips in",
            "ok: 1000 round trips of directed-yield ping-pong",
            "yield_to an environment blocked in wait refused (NotReceiving)",
            "without CALL refused (MissingRights)",
            "yield_to a frame capability refused (WrongKind)",
            "yield_to a destroyed environment refused (StaleHandle)",
            "yield-test: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "call-test",
        serial_must_show: &[
            "ok: call/reply round trip",
            "ok: a frame capability passed with a call",
            "ok: a frame capability passed back with the reply",
            "ok: 1000 call/reply round trips",
            "a call to a server that is not waiting refused (NotReceiving)",
            "a reply with no call being served refused (NoCaller)",
            "a call through a frame capability refused (WrongKind)",
            "a call through an environment capability refused (WrongKind)",
            "passing a capability without GRANT refused (MissingRights)",
            "a call through a revoked endpoint refused (StaleHandle)",
            "a call whose server exits before replying refused (PeerGone)",
            "a call through the endpoint of a server that is gone refused (StaleHandle)",
            "call-test: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "wait-test",
        serial_must_show: &[
            "ok: wait(TIMER, 50) woke after",
            "with no caller woke on the timer",
            "ok: a child waiting for calls only slept through",
            "ok: the call woke it, and it answered",
            "ok: a child waiting for a call or a far timeout woke on the call",
            "a call to a child waiting on the timer only refused (NotReceiving)",
            "ok: the child waiting on the timer woke after",
            "wait for no event refused (InvalidArgument)",
            "wait for an unknown event refused (InvalidArgument)",
            "wait-test: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "notify-test",
        serial_must_show: &[
            "ok: signals before a wait are kept, OR'd, and returned at once",
            "ok: the wait cleared them: the next one ends on the timer",
            "ok: a wait for the timer alone leaves the bits pending",
            "a notification with no bits refused (InvalidArgument)",
            "signalling a frame refused (WrongKind)",
            "signalling without SIGNAL refused (MissingRights)",
            "signalling a handle never issued refused (InvalidHandle)",
            "ok: a child waiting for notifications slept through the parent's ticks",
            "ok: the signal woke it, with its bits",
            "signalling a notification whose environment is gone refused (StaleHandle)",
            "notify-test: all checks passed",
        ],
        ..DEFAULT
    },
    Scenario {
        name: "threads-test",
        serial_must_show: &[
            "threads-test: thread B starts at",
            "slot-start upcalls in",
            "ok: a scheduler entry switched between two user threads at every slot start",
            "threads-test: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
];
