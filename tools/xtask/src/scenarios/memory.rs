//! Environments and memory (docs/02): mappings and capabilities, page faults handled at
//! user level, isolation of a faulting child, revocation, and a thousand environments
//! created and destroyed.

use super::scenario::{DEFAULT, LONG_TIMEOUT, Scenario};

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "memory-test",
        serial_must_show: &[
            "ok: map/write/read back",
            "ok: translate() through the page-table view",
            "ok: protect read-only, then writable again",
            "ok: unmap",
            "ok: map_batch of 4 frames",
            "ok: map_batch stops at the first failing request",
            "refused (NotMappable)",
            "a writable mapping through a read-only capability refused (ReadOnly)",
            "refused (KernelAddress)",
            "refused (NonCanonicalAddress)",
            "refused (Misaligned)",
            "refused (AlreadyMapped)",
            "refused (NotMapped)",
            "refused (WrongKind)",
            "unknown mapping flags refused (InvalidArgument)",
            "a dropped handle whose slot was reused refused (StaleHandle)",
            "refused (InvalidHandle)",
            "the right index with a wrong generation refused (StaleHandle)",
            "ok: derive with fewer rights",
            "refused (RightsEscalation)",
            "mapping into an environment through a capability without MAP refused",
            "granting to an environment through a capability without GIVE refused",
            "holder: granted capability valid",
            "ok: grant into a child environment's table",
            "holder: granted capability revoked: StaleHandle",
            "ok: recursive revoke",
            "ok: frame_allocate_at",
            "memory-test: all checks passed",
        ],
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
