//! The library OS (docs/04): processes, the shell, files, exec, fork with copy-on-write,
//! mmap, page colouring, user-level threads and their schedulers.

use super::scenario::{DEFAULT, LONG_TIMEOUT, Program, Scenario};

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "spawn-test",
        // Printed by the faulting child's library OS as it ends it.
        serial_must_show: &["segmentation fault"],
        checks: Some(12),
        ..DEFAULT
    },
    Scenario {
        name: "shell",
        program: Program::Named("sh"),
        serial_input: Some(
            "echo hello   shell\n\
             echo one two three > /tmp/f\n\
             cat /tmp/f\n\
             ls /bin | grep fs\n\
             cat < /tmp/f | wc\n\
             echo more >> /tmp/f\n\
             cat /tmp/f | head -n 1\n\
             mkdir /tmp/d\n\
             cd /tmp/d\n\
             echo inside > a\n\
             mv a b\n\
             ls\n\
             export GREETING=hello\n\
             printenv GREETING PWD\n\
             cd ..\n\
             rm d/b\n\
             rm d\n\
             ls /tmp\n\
             forktree > /tmp/tree\n\
             grep \"I am\" /tmp/tree | wc\n\
             nosuch\n\
                          spawn-test\n\
             exec nosuch\n\
             exec printenv GREETING\n",
        ),
        serial_must_show: &[
            "exo shell",
            "$ echo hello   shell",
            "hello shell",
            "$ cat /tmp/f",
            "one two three",
            "$ ls /bin | grep fs",
            "fsd",
            "$ cat < /tmp/f | wc",
            "1 3 14",
            "$ cat /tmp/f | head -n 1",
            "one two three",
            "/tmp/d $ ls",
            "b",
            "$ printenv GREETING PWD",
            "hello",
            "/tmp/d",
            "/tmp $ rm d",
            "/tmp $ ls /tmp",
            "f",
            // Fifteen processes wrote through one redirected descriptor: one
            // shared offset, no line lost.
            "$ forktree > /tmp/tree",
            "15 60 244",
            "$ nosuch",
            "nosuch: command not found",
            "$ spawn-test",
            "spawn-test: all checks passed",
            "$ exec nosuch",
            "nosuch: command not found",
            // The shell becomes printenv, which has its variables; printenv's
            // exit status 0 ends the run.
            "$ exec printenv GREETING",
            "hello",
            "all environments have ended",
        ],
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "fs-test",
        checks: Some(21),
        ..DEFAULT
    },
    Scenario {
        name: "exec-test",
        checks: Some(8),
        ..DEFAULT
    },
    Scenario {
        name: "forktree",
        // Which environment the kernel starts first is the boot's fact, not the program's.
        serial_must_show: &["forktree: the root is process 1"],
        checks: Some(1),
        ..DEFAULT
    },
    Scenario {
        name: "cow-test",
        checks: Some(10),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "revoke-test",
        checks: Some(7),
        ..DEFAULT
    },
    Scenario {
        name: "mmap-test",
        checks: Some(17),
        ..DEFAULT
    },
    Scenario {
        name: "colour-test",
        checks: Some(4),
        ..DEFAULT
    },
    Scenario {
        name: "threads-rr",
        checks: Some(10),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "threads-priority",
        checks: Some(5),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "condvar-test",
        checks: Some(4),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "custom-scheduler",
        checks: Some(1),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "primes",
        checks: Some(3),
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
];
