//! Environments and memory (docs/02): mappings and capabilities, page faults handled at
//! user level, isolation of a faulting child, revocation, and a thousand environments
//! created and destroyed.

use super::scenario::{DEFAULT, LONG_TIMEOUT, Scenario};

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "memory-test",
        serial_must_show: &[
            "holder: granted capability valid",
            "holder: granted capability revoked: StaleHandle",
        ],
        checks: Some(43),
        ..DEFAULT
    },
    Scenario {
        name: "fault-test",
        serial_must_show: &[
            "fault-test: 32 page faults handled at user level",
            "fault-test: demand-zero paging ok",
        ],
        ..DEFAULT
    },
    Scenario {
        name: "isolation-test",
        serial_must_show: &[
            "worker: tick 1",
            "faulter: reading unmapped address",
            "destroyed:",
            "#PF page fault",
            "isolation-test: the faulting child is gone",
            "faulty-handler: upcall for address",
            "destroyed:",
            "#PF page fault",
            "isolation-test: the child whose handler faulted is gone",
            "removed-handler: reading unmapped address",
            "destroyed:",
            "#PF page fault",
            "isolation-test: the child that removed its handler is gone",
            "worker: tick 3",
            "worker: tick 5",
            "isolation-test: parent still running",
        ],
        ..DEFAULT
    },
    Scenario {
        name: "revocation-test",
        serial_must_show: &[
            "revocation-test: frames taken by force = 4",
            "revocation-test: the stubborn child was asked first",
            "revocation-test: the stubborn child still maps 4 of its 8 pages",
            "revocation-test: cooperative child gave back 4 frames, 0 taken by force",
            "revocation-test: the cooperative child still maps 4 of its 8 pages",
            "revocation-test: all checks passed",
        ],
        ..DEFAULT
    },
    Scenario {
        name: "lifecycle-test",
        serial_must_show: &["lifecycle-test: 1000 cycles, free frames before="],
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
];
