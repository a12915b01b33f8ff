//! The CPU (docs/03). TCG runs guest time at host speed, so these count work and ticks
//! from the facts page rather than time, and get the long timeout.

use super::scenario::{DEFAULT, LONG_TIMEOUT, Program, Scenario};

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "slices-test",
        // Scenarios run on an instruction-counting clock, so every 1 ms slot is the same
        // amount of guest work and the shares come out exact, whatever the host is doing.
        kernel_command_line: "log=info slots=20 slot_us=1000",
        checks: Some(13),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "yield-test",
        checks: Some(5),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "call-test",
        checks: Some(13),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "wait-test",
        checks: Some(9),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "notify-test",
        checks: Some(10),
        ..DEFAULT
    },
    Scenario {
        name: "threads-test",
        checks: Some(2),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        // Every system call, breakpoint and page fault of `bench` takes a debug trap on the
        // first instruction of its entry in ring 0, as a processor delivers one held back
        // by `mov ss`: the kernel resumes each and counts them (docs/02, entry hygiene).
        name: "entry-debug-traps",
        kernel_command_line: "log=info entry_breakpoints=on init_argument=200",
        program: Program::Named("bench"),
        serial_must_show: &[
            "BENCH-DONE",
            "debug traps on the first instruction of an entry, resumed:",
        ],
        ..DEFAULT
    },
];
