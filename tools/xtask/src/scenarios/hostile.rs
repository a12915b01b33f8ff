//! Hostile programs (secure multiplexing that holds, docs/02 and docs/03). Each program
//! attacks the kernel from a child while a witness runs and the parent watches; it passes
//! only if the attack is contained (a typed error, or the attacker destroyed alone) and
//! everything comes back.

use super::scenario::{DEFAULT, LONG_TIMEOUT, Scenario};

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "hostile-syscalls",
        serial_must_show: &[
            "garbage calls:",
            "refused with typed errors",
            "chaos children ran and ended; parent unharmed",
        ],
        checks: Some(2),
        ..DEFAULT
    },
    Scenario {
        name: "hostile-flags",
        serial_must_show: &["never saw a flag it did not set"],
        checks: Some(22),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-kernel-memory",
        checks: Some(33),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-teardown",
        kernel_command_line: "log=info init_argument=10000",
        serial_must_show: &[
            "hostile-teardown: 10000 cycles; before:",
            "hostile-teardown: 5000 cycles,",
            "hostile-teardown: 10000 cycles in",
        ],
        checks: Some(1),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-slots",
        // As for slices-test: 1 ms slots on the instruction clock, 20 of them.
        kernel_command_line: "log=info slots=20 slot_us=1000",
        serial_must_show: &[
            "hostile-slots: 20 slots; the first environment's slot quota is 20",
            "hostile-slots: the lent child holds 2 slots, quota 2, charged 2",
        ],
        checks: Some(6),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-revocation",
        serial_must_show: &[
            "ok: the churner lost 8 frames: the deadline took them by force",
            "ok: the copier lost 8 frames: the deadline took them by force",
            "taken make up the 8 asked",
            "ok: the sleeper lost 4 frames: the deadline took them by force",
        ],
        checks: Some(7),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-fork",
        checks: Some(6),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
];
