//! Boot (docs/01): the kernel's own self-tests — it boots, keeps time, and reports a page
//! fault, a panic and a double fault with the failure code — and the first program it
//! starts. The first environment's exit status decides a program's verdict: 0 powers off
//! with the pass code, anything else (a failed check panics with status 101) with the
//! failure code.

use super::scenario::{DEFAULT, ExpectedExit, Program, Scenario};

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "boot",
        kernel_command_line: "test=boot log=info",
        program: Program::KernelOnly,
        serial_must_show: &[
            "exo exokernel",
            "memory map:",
            "frames:",
            "heap:",
            "test boot: ok",
        ],
        ..DEFAULT
    },
    Scenario {
        name: "timer",
        kernel_command_line: "test=timer log=info",
        program: Program::KernelOnly,
        serial_must_show: &["timer:", "test timer: ok"],
        ..DEFAULT
    },
    Scenario {
        name: "page-fault",
        kernel_command_line: "test=page-fault log=info",
        program: Program::KernelOnly,
        expected_exit: ExpectedExit::Fail,
        serial_must_show: &["EXCEPTION #PF page fault", "cr2=0x00000000deadbeef", "rip="],
        ..DEFAULT
    },
    Scenario {
        name: "panic",
        kernel_command_line: "test=panic log=info",
        program: Program::KernelOnly,
        expected_exit: ExpectedExit::Fail,
        serial_must_show: &["KERNEL PANIC", "deliberate panic"],
        ..DEFAULT
    },
    Scenario {
        name: "double-fault",
        kernel_command_line: "test=stack-overflow log=info",
        program: Program::KernelOnly,
        expected_exit: ExpectedExit::Fail,
        serial_must_show: &["EXCEPTION #DF double fault"],
        ..DEFAULT
    },
    Scenario {
        name: "hello",
        serial_must_show: &["exo exokernel"],
        checks: Some(2),
        ..DEFAULT
    },
];
