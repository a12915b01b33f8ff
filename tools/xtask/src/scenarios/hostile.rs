//! Hostile programs (secure multiplexing that holds, docs/02 and docs/03). Each program
//! attacks the kernel from a child while a witness runs and the parent watches; it passes
//! only if the attack is contained (a typed error, or the attacker destroyed alone) and
//! everything comes back.

use super::scenario::{DEFAULT, LONG_TIMEOUT, Scenario};

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "hostile-syscalls",
        checks: Some(4),
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
        name: "hostile-state",
        // The kernel set CR4.SMEP (xtask's TCG model offers it).
        serial_must_show: &["cpu: the kernel faults on running user pages (SMEP)"],
        checks: Some(5),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-depth",
        checks: Some(8),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-kernel-work",
        // 1 ms slots on the instruction clock, 8 of them: the witness holds 2, and may wait
        // for the CPU at most a round (8 ticks) and 3.
        kernel_command_line: "log=info slots=8 slot_us=1000",
        serial_must_show: &["slice vector: 8 slots of 1000 us"],
        checks: Some(61),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-kernel-memory",
        checks: Some(39),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-heap",
        checks: Some(3),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-page-tables",
        checks: Some(2),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-physical",
        checks: Some(16),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-bindings",
        checks: Some(6),
        ..DEFAULT
    },
    Scenario {
        name: "hostile-arp",
        // 1 ms slots on the instruction clock, 8 of them: the witness holds 2, and may wait
        // for the CPU at most a round (8 ticks) and 3.
        kernel_command_line: "log=info slots=8 slot_us=1000",
        serial_must_show: &["slice vector: 8 slots of 1000 us"],
        checks: Some(6),
        ..DEFAULT
    },
    Scenario {
        name: "hostile-shares",
        // 1 ms slots on the instruction clock, 8 of them: the witness holds 2, and may wait
        // for the CPU at most a round (8 ticks) and 3.
        kernel_command_line: "log=info slots=8 slot_us=1000",
        serial_must_show: &["slice vector: 8 slots of 1000 us"],
        checks: Some(7),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-teardown",
        kernel_command_line: "log=info init_argument=10000",
        // The cycle count comes from the command line: the program cannot know it.
        serial_must_show: &["hostile-teardown: 10000 cycles;"],
        checks: Some(2),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-slots",
        // As for slices-test: 1 ms slots on the instruction clock, 20 of them.
        kernel_command_line: "log=info slots=20 slot_us=1000",
        serial_must_show: &["slice vector: 20 slots of 1000 us"],
        checks: Some(7),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-revocation",
        checks: Some(20),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-upcalls",
        checks: Some(14),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-calls",
        checks: Some(7),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-deadlines",
        checks: Some(4),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-fork",
        checks: Some(6),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-fsd",
        checks: Some(3),
        ..DEFAULT
    },
    Scenario {
        name: "hostile-timers",
        checks: Some(13),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-lifecycles",
        checks: Some(15),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-slot-lending",
        // As hostile-slots: 1 ms slots on the instruction clock, 20 of them.
        kernel_command_line: "log=info slots=20 slot_us=1000",
        serial_must_show: &["slice vector: 20 slots of 1000 us"],
        checks: Some(5),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-pointers",
        // Read while refused console reads are tried: none may take a byte of it.
        serial_input: Some("typed into hostile-pointers\n"),
        checks: Some(7),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-capabilities",
        checks: Some(11),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-drains",
        checks: Some(7),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-ring-memory",
        checks: Some(2),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
];
