//! Environments and memory (docs/02): mappings and capabilities, page faults handled at
//! user level, isolation of a faulting child, revocation, and a thousand environments
//! created and destroyed.

use super::scenario::{DEFAULT, LONG_TIMEOUT, Scenario};

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "memory-test",
        checks: Some(47),
        ..DEFAULT
    },
    Scenario {
        name: "fault-test",
        checks: Some(3),
        ..DEFAULT
    },
    Scenario {
        name: "isolation-test",
        // The kernel says why each faulting child was destroyed.
        serial_must_show: &[
            "destroyed: #PF page fault",
            ": no upcall handler",
            "destroyed: #PF page fault",
            ": the fault was in its upcall handler",
            "destroyed: #PF page fault",
            ": no upcall handler",
        ],
        checks: Some(4),
        ..DEFAULT
    },
    Scenario {
        name: "revocation-test",
        checks: Some(6),
        ..DEFAULT
    },
    Scenario {
        name: "lifecycle-test",
        checks: Some(3),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        // Lab 1's system call (docs/labs/1-system-call.md).
        name: "kernel-memory-test",
        checks: Some(4),
        ..DEFAULT
    },
    Scenario {
        name: "mapping-tags-test",
        // Two rounds of three checks, and everything back.
        checks: Some(7),
        ..DEFAULT
    },
    Scenario {
        name: "inspect-test",
        checks: Some(15),
        ..DEFAULT
    },
];
