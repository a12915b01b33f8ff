//! The system-call fuzzer's short runs (`cargo xtask fuzz guest` runs it long; docs/09):
//! 200,000 random calls from fixed seeds, from four children at once beside two witnesses,
//! then the kernel's invariants checked by the program itself (`syscall-fuzz`).

use super::scenario::{DEFAULT, Program, Scenario};

/// The checks `syscall-fuzz` reports passed: the calls, the witness twice, the echo
/// server, the environment tree twice, and every frame and byte back.
const CHECKS: u32 = 7;

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "syscall-fuzz-seed-1",
        program: Program::Named("syscall-fuzz"),
        // Seed 1, 200,000 calls: `fuzz::guest::kernel_command_line(1, 200_000)`.
        kernel_command_line: "log=warn init_argument=219902325555201",
        checks: Some(CHECKS),
        ..DEFAULT
    },
    Scenario {
        name: "syscall-fuzz-seed-2",
        program: Program::Named("syscall-fuzz"),
        // Seed 2, 200,000 calls.
        kernel_command_line: "log=warn init_argument=219902325555202",
        checks: Some(CHECKS),
        ..DEFAULT
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::guest::kernel_command_line;

    #[test]
    fn the_command_lines_are_those_of_fuzz_guest() {
        assert_eq!(
            SCENARIOS[0].kernel_command_line,
            kernel_command_line(1, 200_000)
        );
        assert_eq!(
            SCENARIOS[1].kernel_command_line,
            kernel_command_line(2, 200_000)
        );
    }
}
