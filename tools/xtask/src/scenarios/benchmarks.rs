//! Benchmarks (docs/07): the guest microbenchmarks run with few repetitions, judged only
//! on every line being there and well-formed ([`lines`](crate::bench::lines)), never on a
//! figure. The repetitions come from the constants those checks count on.

use super::scenario::{DEFAULT, Program, Scenario, built, built_list};
use crate::bench::lines::{self, DONE, KERNEL_SMOKE_REPETITIONS, LIBOS_SMOKE_REPETITIONS};

pub fn scenarios() -> Vec<Scenario> {
    let libos_command = format!("bench-libos -n {LIBOS_SMOKE_REPETITIONS}");
    vec![
        Scenario {
            name: "bench-smoke",
            kernel_command_line: built(format!(
                "log=info init_argument={KERNEL_SMOKE_REPETITIONS}"
            )),
            program: Program::Named("bench"),
            serial_must_show: &[DONE],
            serial_check: Some(lines::kernel_smoke),
            ..DEFAULT
        },
        Scenario {
            name: "bench-libos-smoke",
            program: Program::Named("sh"),
            serial_input: Some(built(format!("{libos_command}\npoweroff\n"))),
            serial_must_show: built_list(vec![built(format!("$ {libos_command}")), DONE]),
            serial_check: Some(lines::libos_smoke),
            ..DEFAULT
        },
    ]
}
