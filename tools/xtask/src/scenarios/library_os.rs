//! The library OS (docs/04): processes, the shell, files, exec, fork with copy-on-write,
//! mmap, page colouring, user-level threads and their schedulers.

use super::scenario::{DEFAULT, LONG_TIMEOUT, Program, Scenario};

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "spawn-test",
        serial_must_show: &[
            "hello from a child",
            "ok: arguments arrive: argc exits with their count",
            "ok: heap and stack grow on demand",
            "segmentation fault",
            "ok: a stack overflow ends the child with status 139",
            "ok: a killed child is reported killed",
            "ok: twenty children at once",
            "spawn-test: all checks passed",
        ],
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
        serial_must_show: &[
            "ok: read back what was written",
            "ok: append adds at the end",
            "ok: rename moves the file",
            "ok: a missing file: ENOENT",
            "ok: writing a program: EROFS",
            "ok: a closed descriptor: EBADF",
            "ok: echo's output went to the file",
            "ok: the file holds it",
            "ok: a waiting pipe reader does not poll",
            "ok: the write woke it",
            "ok: a pipe takes more than it holds at once",
            "ok: wc counted every line, word and byte",
            "fs-test: all checks passed",
        ],
        ..DEFAULT
    },
    Scenario {
        name: "exec-test",
        serial_must_show: &[
            "ok: no such program: ENOENT, and the caller goes on",
            "ok: arguments larger than the info page: E2BIG",
            "ok: the parent sees the new program's exit status (argc: 3)",
            "ok: the process id survives exec",
            "ok: standard output survives exec",
            "ok: echo, exec'd, wrote to it",
            "ok: a failed exec (quota) gives back the frames it loaded",
            "ok: five execs in a row, each with a heap",
            "exec-test: all checks passed",
        ],
        ..DEFAULT
    },
    Scenario {
        name: "forktree",
        serial_must_show: &[
            "forktree: the root is process 1",
            "I am ''",
            "ok: all 14 descendants exited with status 0",
            "forktree: all checks passed",
        ],
        ..DEFAULT
    },
    Scenario {
        name: "cow-test",
        serial_must_show: &[
            "ok: the parent's write copies the shared run",
            "ok: the child saw shared frames before writing and its own after",
            "ok: the child's heap write stays in the child",
            "ok: the child's stack write stays in the child",
            "ok: the child's write to a static stays in the child",
            "ok: the child's write to an mmap page stays in the child",
            "ok: a page nobody wrote is still the same frame",
            "ok: once the child is reaped, a write needs no copy",
            "ok: fifty children forked, exited, reaped",
            "ok: the free-frame count returns to where it was",
            "cow-test: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "mmap-test",
        serial_must_show: &[
            "ok: pages are demand-zero",
            "ok: munmap of a page in the middle leaves the others",
            "ok: touching 64 pages takes 64 frames",
            "ok: munmap gives every frame back",
            "ok: writable again after mprotect back",
            "ok: a write to a PROT_READ page kills the child with 139",
            "ok: touching a PROT_NONE page kills the child with 139",
            "ok: touching an unmapped page kills the child with 139",
            "ok: mmap larger than the area: EINVAL",
            "mmap-test: all checks passed",
        ],
        ..DEFAULT
    },
    Scenario {
        name: "colour-test",
        serial_must_show: &[
            "ok: every heap page has the colour",
            "ok: every mmap page has the colour",
            "ok: the values are intact",
            "colour-test: all checks passed",
        ],
        ..DEFAULT
    },
    Scenario {
        name: "threads-rr",
        serial_must_show: &[
            "ok: main is thread 0",
            "ok: every worker made progress while main and they spun, never yielding",
            "ok: join returned for every worker, each done",
            "ok: the mutex kept the shared count right",
            "ok: current_id in each thread is its JoinHandle's id",
            "ok: threads allocating on the heap at once kept their data intact",
            "ok: sleep(5) in main slept at least 5 ticks",
            "ok: three sleeping threads each slept at least the ticks asked",
            "ok: while every thread slept the process waited in the kernel, not spinning",
            "ok: sleeping and joining switched threads",
            "threads-rr: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "threads-priority",
        serial_must_show: &[
            "threads-priority: Priority:",
            "ok: Priority: both high threads finished before the low one started",
            "ok: Priority: the two high threads took turns (both started before either finished)",
            "threads-priority: RoundRobin:",
            "ok: RoundRobin: the low thread, spawned first, started first",
            "ok: RoundRobin: all three started before any finished",
            "ok: the two policies ran the same program in a different order",
            "threads-priority: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "condvar-test",
        serial_must_show: &[
            "condvar-test: the consumers took",
            "ok: every item produced was consumed exactly once",
            "ok: every consumer took some",
            "ok: producers and consumers parked on full and empty",
            "ok: notify_all released all five waiters, none before the gate opened",
            "condvar-test: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "custom-scheduler",
        serial_must_show: &[
            "custom-scheduler: tickets [1, 3, 9] won",
            "ok: more tickets, more lotteries won",
            "custom-scheduler: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "primes",
        // Every prime below 100, in order, each from its own process.
        serial_must_show: &[
            "prime 2",
            "prime 3",
            "prime 5",
            "prime 7",
            "prime 11",
            "prime 13",
            "prime 17",
            "prime 19",
            "prime 23",
            "prime 29",
            "prime 31",
            "prime 37",
            "prime 41",
            "prime 43",
            "prime 47",
            "prime 53",
            "prime 59",
            "prime 61",
            "prime 67",
            "prime 71",
            "prime 73",
            "prime 79",
            "prime 83",
            "prime 89",
            "prime 97",
            "primes: the sieve of 100 finished",
        ],
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
];
