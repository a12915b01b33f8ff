//! The CPU (docs/03). TCG runs guest time at host speed, so these count work and ticks
//! from the facts page rather than time, and get the long timeout.

use super::scenario::{DEFAULT, LONG_TIMEOUT, Scenario};

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
];
