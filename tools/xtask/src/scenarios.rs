//! The in-QEMU scenarios: what each boots with and what it must show, and the verdict on a
//! finished run (its exit, serial output, host side and packet capture).
//!
//! The table is data; a new scenario is one more entry in [`SCENARIOS`]. Verdicts never
//! depend on how long a guest took, only on whether it hung past its timeout. What a
//! networked scenario does on the host lives in [`net_scenarios`](crate::net_scenarios).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::guest::{Ending, GuestRun};
use crate::host_side::ScenarioHostFunction;
use crate::net_scenarios::{self, quoted};
use crate::qemu::{FAIL_STATUS, GuestExit, PASS_STATUS, QemuConfig};
use crate::serial_log::contains;
use crate::server_scenarios;
use crate::{artifacts, bench_lines, density, servers};

/// Generous, because TCG is slow and several guests may share the machine.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// For the scenario that creates and destroys a thousand environments.
const LONG_TIMEOUT: Duration = Duration::from_secs(120);
/// For the scenarios whose servers talk to clients on the host under TCG.
const SERVER_TIMEOUT: Duration = Duration::from_secs(120);
/// For net-bulk: its 100 MiB each way take seconds under TCG; a stall fails the host side
/// long before this (see `echo_checks::STREAM_TIMEOUT`).
const BULK_TIMEOUT: Duration = Duration::from_secs(300);
/// The kernel command line of the scenarios that boot a program.
const PROGRAM_COMMAND_LINE: &str = "log=info";

/// What a scenario expects the kernel to report through `isa-debug-exit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedExit {
    Pass,
    /// The kernel is meant to fail (a deliberate fault or panic) and report it.
    Fail,
}

impl ExpectedExit {
    fn guest_exit(self) -> GuestExit {
        match self {
            ExpectedExit::Pass => GuestExit::Passed,
            ExpectedExit::Fail => GuestExit::Failed,
        }
    }

    fn describe(self) -> String {
        match self {
            ExpectedExit::Pass => format!("success (exit code {PASS_STATUS})"),
            ExpectedExit::Fail => format!("failure (exit code {FAIL_STATUS})"),
        }
    }
}

#[derive(Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub kernel_command_line: &'static str,
    /// The user program booted as the first environment (a file of `userapps/src/bin/` or
    /// `userapps/posix/src/bin/`); `None` for the kernel's own self-tests.
    pub program: Option<&'static str>,
    /// Typed into the serial console (then Ctrl-D), for programs that read it.
    pub serial_input: Option<&'static str>,
    pub expected_exit: ExpectedExit,
    /// Must appear in the serial output in this order, each after the previous one.
    pub serial_must_show: &'static [&'static str],
    /// How long before the guest is considered hung.
    pub timeout: Duration,
    /// A further check of the whole serial output, for what fixed strings cannot say
    /// (e.g. that a line is well-formed); its `Err` says what is wrong.
    pub serial_check: Option<SerialCheck>,
    /// Host ports forwarded to the guest's network card, a host function talking to it,
    /// and what the card's traffic must show; `None`: the card is there, unused.
    pub network: Option<NetworkScenario>,
}

/// Checks a finished guest's serial output.
pub type SerialCheck = fn(&str) -> Result<(), String>;

/// The host's side of a scenario that uses the network (QEMU's user-mode network: the
/// guest is 10.0.2.15, and the host reaches it only through forwarded ports).
#[derive(Debug)]
pub struct NetworkScenario {
    /// Guest UDP ports forwarded from free host ports on 127.0.0.1.
    pub udp_ports: &'static [u16],
    /// Guest TCP ports likewise.
    pub tcp_ports: &'static [u16],
    /// Runs on a host thread while the guest runs; its Err fails the scenario.
    pub host: Option<ScenarioHostFunction>,
    /// Byte strings that must appear in at least one captured frame / in none. When
    /// either list is non-empty, every frame the card sends or receives is captured.
    pub capture_must_contain: &'static [&'static [u8]],
    pub capture_must_not_contain: &'static [&'static [u8]],
    /// Whether the host function may put raw frames on the guest's network (see
    /// [`FrameInjection`](crate::qemu::FrameInjection)).
    pub inject_frames: bool,
    /// Whether the guest boots with `cargo xtask run`'s boot file system, whose `etc/rc`
    /// starts the servers (see [`servers`](crate::servers)), rather than the tests' own.
    pub run_layout: bool,
}

impl NetworkScenario {
    pub fn needs_capture(&self) -> bool {
        !self.capture_must_contain.is_empty() || !self.capture_must_not_contain.is_empty()
    }
}

/// A networked run's packet capture, read once the guest has gone.
#[derive(Debug)]
pub struct Capture {
    pub file: PathBuf,
    /// The frames in the order they were recorded, or why the file could not be read.
    pub frames: Result<Vec<Vec<u8>>, String>,
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "boot",
        kernel_command_line: "test=boot log=info",
        program: None,
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "exo exokernel",
            "memory map:",
            "frames:",
            "heap:",
            "test boot: ok",
        ],
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "timer",
        kernel_command_line: "test=timer log=info",
        program: None,
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &["timer:", "test timer: ok"],
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "page-fault",
        kernel_command_line: "test=page-fault log=info",
        program: None,
        serial_input: None,
        expected_exit: ExpectedExit::Fail,
        serial_must_show: &["EXCEPTION #PF page fault", "cr2=0x00000000deadbeef", "rip="],
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "panic",
        kernel_command_line: "test=panic log=info",
        program: None,
        serial_input: None,
        expected_exit: ExpectedExit::Fail,
        serial_must_show: &["KERNEL PANIC", "deliberate panic"],
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "double-fault",
        kernel_command_line: "test=stack-overflow log=info",
        program: None,
        serial_input: None,
        expected_exit: ExpectedExit::Fail,
        serial_must_show: &["EXCEPTION #DF double fault"],
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: None,
    },
    // The first environment's exit status decides the verdict: 0 powers off with the pass
    // code, anything else (a failed check panics with status 101) with the failure code.
    Scenario {
        name: "hello",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("hello"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "exo exokernel",
            "hello from environment",
            "start-info lists",
        ],
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "memory-test",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("memory-test"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
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
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "fault-test",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("fault-test"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "fault-test: 32 page faults handled at user level",
            "fault-test: demand-zero paging ok",
        ],
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "isolation-test",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("isolation-test"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
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
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "revocation-test",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("revocation-test"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "revocation-test: frames taken by force = 4",
            "revocation-test: the stubborn child was asked first",
            "revocation-test: the stubborn child still maps 4 of its 8 pages",
            "revocation-test: cooperative child gave back 4 frames, 0 taken by force",
            "revocation-test: the cooperative child still maps 4 of its 8 pages",
            "revocation-test: all checks passed",
        ],
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "hostile-syscalls",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("hostile-syscalls"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "garbage calls:",
            "refused with typed errors",
            "chaos children ran and ended; parent unharmed",
            "hostile-syscalls: all checks passed",
        ],
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: None,
    },
    // Step 8: secure multiplexing that holds. Each program attacks the kernel from a child
    // while a witness runs and the parent watches; it passes only if the attack is contained
    // (a typed error, or the attacker destroyed alone) and everything comes back.
    Scenario {
        name: "hostile-flags",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("hostile-flags"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "ok: CF (bit 0): every kernel entry and way back survived, flags kept",
            "ok: TF (bit 8): every kernel entry and way back survived, flags kept",
            "ok: DF (bit 10): every kernel entry and way back survived, flags kept",
            "ok: NT (bit 14): every kernel entry and way back survived, flags kept",
            "ok: AC (bit 18): every kernel entry and way back survived, flags kept",
            "ok: ID (bit 21): every kernel entry and way back survived, flags kept",
            "ok: IF cleared (bit 9): every kernel entry and way back survived, flags kept",
            "ok: IOPL 3 (bits 12-13): every kernel entry and way back survived, flags kept",
            "ok: every settable flag but TF: every kernel entry and way back survived",
            "ok: privileged instructions, int3, int 0x80, ud2 and a division by zero each ended \
             in an upcall; system calls and ticks with rsp pointing nowhere came back",
            "ok: a child that single-steps with no upcall handler was destroyed alone",
            "ok: a child that faults with every settable flag set with no upcall handler was \
             destroyed alone",
            "never saw a flag it did not set",
            "ok: waits that idled the CPU with each flag set came back with it kept",
            "ok: every frame and byte of kernel memory came back after every attack",
            "hostile-flags: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "hostile-kernel-memory",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("hostile-kernel-memory"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "ok: mappings: refused with",
            "ok: mappings: afterwards the witness wrote 4 KiB and mapped a full batch",
            "ok: every frame and byte of kernel memory came back after mappings",
            "ok: environments: refused with",
            "ok: environments: afterwards the witness wrote 4 KiB",
            "ok: every frame and byte of kernel memory came back after environments",
            "ok: over-lending: refused with KernelMemoryExceeded after 0",
            "ok: derivations: refused with",
            "ok: a derivation chain: refused with",
            "ok: grants: refused with",
            "ok: endpoints: refused with",
            "ok: notifications: refused with",
            "ok: addresses: refused with",
            "ok: bindings: refused with",
            "ok: filters: refused with",
            "ok: every frame and byte of kernel memory came back after filters",
            "hostile-kernel-memory: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "hostile-teardown",
        kernel_command_line: "log=info init_argument=10000",
        program: Some("hostile-teardown"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "hostile-teardown: 10000 cycles; before:",
            "hostile-teardown: 5000 cycles,",
            "hostile-teardown: 10000 cycles in",
            "ok: every frame and byte of kernel memory came back after every cycle",
            "hostile-teardown: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "hostile-slots",
        // As for slices-test: 1 ms slots on the instruction clock, 20 of them.
        kernel_command_line: "log=info slots=20 slot_us=1000",
        program: Some("hostile-slots"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "hostile-slots: 20 slots; the first environment's slot quota is 20",
            "ok: a child lent no slot was refused every slot (SlotQuotaExceeded)",
            "hostile-slots: the lent child holds 2 slots, quota 2, charged 2",
            "ok: a child lent 2 slots got exactly 2, whatever it tried",
            "ok: the lent child ran in exactly its 2 slots a round",
            "ok: the witness kept at least half its share of the pool",
            "ok: every slot is free again once the children are gone",
            "ok: every frame and byte of kernel memory came back after the slot attacks",
            "hostile-slots: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "hostile-revocation",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("hostile-revocation"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "ok: an honest child gave back what was asked and lost nothing by force",
            "ok: the churner lost 8 frames: the deadline took them by force",
            "ok: the copier lost 8 frames: the deadline took them by force",
            "taken make up the 8 asked",
            "ok: the sleeper lost 4 frames: the deadline took them by force",
            "ok: a hoarder asked for more than it holds lost all its frames and lives on",
            "ok: every frame and byte of kernel memory came back after every revocation",
            "hostile-revocation: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "hostile-fork",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("hostile-fork"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "ok: fork_with_quota(128): refused with",
            "ok: fork_with_quota(128): afterwards a fork works again",
            "ok: fork(): refused with",
            "ok: fork(): afterwards a fork works again",
            "hostile-fork: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        serial_check: None,
        network: None,
    },
    // Step 3: the CPU. TCG runs guest time at host speed, so these count work and ticks
    // from the facts page rather than time, and get the long timeout.
    Scenario {
        name: "slices-test",
        // Scenarios run on an instruction-counting clock, so every 1 ms slot is the same
        // amount of guest work and the shares come out exact, whatever the host is doing.
        kernel_command_line: "log=info slots=20 slot_us=1000",
        program: Some("slices-test"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "slices-test: worker 2 holds 4 slots",
            "ok: each worker ran in its slots, every round, and only in them",
            "ok: CPU shares follow holdings 1:2:4 within 10 %",
            "ok: the slots of destroyed workers can be allocated again",
            "ok: an infinite loop on 4 slots does not stop a 1-slot child or the parent",
            "allocating a slot held by another refused (SlotUnavailable)",
            "allocating slot N of N refused (InvalidArgument)",
            "allocating a slot for a frame capability refused (WrongKind)",
            "without CONTROL refused (MissingRights)",
            "dropping a dropped slot capability refused (StaleHandle)",
            "ok: a dropped slot can be allocated again",
            "allocating any slot refused (SlotUnavailable)",
            "ok: destroying the owner frees all its slots",
            "slices-test: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "yield-test",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("yield-test"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "yield-test: 1000 round trips in",
            "ok: 1000 round trips of directed-yield ping-pong",
            "yield_to an environment blocked in wait refused (NotReceiving)",
            "without CALL refused (MissingRights)",
            "yield_to a frame capability refused (WrongKind)",
            "yield_to a destroyed environment refused (StaleHandle)",
            "yield-test: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "call-test",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("call-test"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "ok: call/reply round trip",
            "ok: a frame capability passed with a call",
            "ok: a frame capability passed back with the reply",
            "ok: 1000 call/reply round trips",
            "a call to a server that is not waiting refused (NotReceiving)",
            "a reply with no call being served refused (NoCaller)",
            "a call through a frame capability refused (WrongKind)",
            "a call through an environment capability refused (WrongKind)",
            "passing a capability without GRANT refused (MissingRights)",
            "a call through a revoked endpoint refused (StaleHandle)",
            "a call whose server exits before replying refused (PeerGone)",
            "a call through the endpoint of a server that is gone refused (StaleHandle)",
            "call-test: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "wait-test",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("wait-test"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "ok: wait(TIMER, 50) woke after",
            "with no caller woke on the timer",
            "ok: a child waiting for calls only slept through",
            "ok: the call woke it, and it answered",
            "ok: a child waiting for a call or a far timeout woke on the call",
            "a call to a child waiting on the timer only refused (NotReceiving)",
            "ok: the child waiting on the timer woke after",
            "wait for no event refused (InvalidArgument)",
            "wait for an unknown event refused (InvalidArgument)",
            "wait-test: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "notify-test",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("notify-test"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "ok: signals before a wait are kept, OR'd, and returned at once",
            "ok: the wait cleared them: the next one ends on the timer",
            "ok: a wait for the timer alone leaves the bits pending",
            "a notification with no bits refused (InvalidArgument)",
            "signalling a frame refused (WrongKind)",
            "signalling without SIGNAL refused (MissingRights)",
            "signalling a handle never issued refused (InvalidHandle)",
            "ok: a child waiting for notifications slept through the parent's ticks",
            "ok: the signal woke it, with its bits",
            "signalling a notification whose environment is gone refused (StaleHandle)",
            "notify-test: all checks passed",
        ],
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "threads-test",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("threads-test"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "threads-test: thread B starts at",
            "slot-start upcalls in",
            "ok: a scheduler entry switched between two user threads at every slot start",
            "threads-test: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "spawn-test",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("spawn-test"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
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
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "shell",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("sh"),
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
        expected_exit: ExpectedExit::Pass,
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
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "fs-test",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("fs-test"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
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
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "exec-test",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("exec-test"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
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
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "forktree",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("forktree"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "forktree: the root is process 1",
            "I am ''",
            "ok: all 14 descendants exited with status 0",
            "forktree: all checks passed",
        ],
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "cow-test",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("cow-test"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
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
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "mmap-test",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("mmap-test"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
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
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "colour-test",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("colour-test"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "ok: every heap page has the colour",
            "ok: every mmap page has the colour",
            "ok: the values are intact",
            "colour-test: all checks passed",
        ],
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "threads-rr",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("threads-rr"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
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
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "threads-priority",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("threads-priority"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
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
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "condvar-test",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("condvar-test"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "condvar-test: the consumers took",
            "ok: every item produced was consumed exactly once",
            "ok: every consumer took some",
            "ok: producers and consumers parked on full and empty",
            "ok: notify_all released all five waiters, none before the gate opened",
            "condvar-test: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "custom-scheduler",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("custom-scheduler"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "custom-scheduler: tickets [1, 3, 9] won",
            "ok: more tickets, more lotteries won",
            "custom-scheduler: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "primes",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("primes"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
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
        serial_check: None,
        network: None,
    },
    Scenario {
        name: "lifecycle-test",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("lifecycle-test"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &["lifecycle-test: 1000 cycles, free frames before="],
        timeout: LONG_TIMEOUT,
        serial_check: None,
        network: None,
    },
    // Step 5: the network card, shared between environments by the kernel's demultiplexer.
    // The guest microbenchmarks, with few repetitions: every line there and well-formed
    // (`bench_lines`), never a figure judged.
    Scenario {
        name: "bench-smoke",
        kernel_command_line: "log=info init_argument=50",
        program: Some("bench"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &["BENCH-DONE"],
        timeout: DEFAULT_TIMEOUT,
        serial_check: Some(bench_lines::kernel_smoke),
        network: None,
    },
    Scenario {
        name: "bench-libos-smoke",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("sh"),
        serial_input: Some("bench-libos -n 20\npoweroff\n"),
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &["$ bench-libos -n 20", "BENCH-DONE"],
        timeout: DEFAULT_TIMEOUT,
        serial_check: Some(bench_lines::libos_smoke),
        network: None,
    },
    Scenario {
        name: "net-test",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("net-test"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            net_scenarios::TWO_BINDINGS_READY,
            "net-test: all checks passed",
        ],
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: Some(NetworkScenario {
            udp_ports: &net_scenarios::TWO_BINDINGS_PORTS,
            tcp_ports: &[],
            host: Some(net_scenarios::echo_on_two_bindings),
            // The last: the datagram net-test sends from 0.0.0.0:68, holding UDP 68 on
            // 255.255.255.255 (what a DHCP client does).
            capture_must_contain: &[b"echo:A0", b"echo:B0", b"no address yet"],
            // The payload of the frames net-test sends with a forged source: the kernel
            // must keep them off the wire.
            capture_must_not_contain: &[b"spoofed!"],
            inject_frames: false,
            run_layout: false,
        }),
    },
    Scenario {
        name: "net-hostile",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("net-hostile"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            net_scenarios::HOSTILE_READY,
            "ok: the neighbour echoed every datagram while the child scribbled on its rings",
            "net-hostile: all checks passed",
        ],
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: Some(NetworkScenario {
            udp_ports: &[
                net_scenarios::HOSTILE_ECHO_PORT,
                net_scenarios::HOSTILE_CHILD_PORT,
            ],
            tcp_ports: &[],
            host: Some(net_scenarios::echo_beside_a_hostile_neighbour),
            capture_must_contain: &[b"echo:H0", b"echo:H19"],
            // Every transmit slot the hostile child writes carries this.
            capture_must_not_contain: &[b"hostile!"],
            inject_frames: false,
            run_layout: false,
        }),
    },
    Scenario {
        name: "net-steady",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("net-steady"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "ok: the transmit ring needed no system call per packet in steady state",
            "ok: the receive ring needed no system call per packet",
            "ok: the per-packet path receives with a system call for every frame",
            "ok: the per-packet path makes a system call for every frame",
            "net-steady: all checks passed",
        ],
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: Some(NetworkScenario {
            udp_ports: &[net_scenarios::STEADY_PORT],
            tcp_ports: &[],
            host: Some(net_scenarios::datagrams_for_a_polling_receiver),
            capture_must_contain: &[b"steady state"],
            capture_must_not_contain: &[],
            inject_frames: false,
            run_layout: false,
        }),
    },
    // The sockets API inside the guest, needing no host program: refusals,
    // ports shared out between programs, a refused connection (QEMU's user
    // network resets it), and a thread waiting on the network asleep.
    Scenario {
        name: "net-sockets-test",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("net-sockets-test"),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            "ok: bad ids and arguments are refused with typed errors",
            "ok: a port is used once in a program, and freed by close",
            "ok: an echo identifier is used once, and freed by close",
            "ok: another program's port is refused, and freed when it ends",
            "ok: a refused connection reads as a reset",
            "waiting on the network cost",
            "net-sockets-test: all checks passed",
        ],
        timeout: DEFAULT_TIMEOUT,
        serial_check: None,
        network: Some(NetworkScenario {
            udp_ports: &[],
            tcp_ports: &[],
            host: None,
            capture_must_contain: &[],
            capture_must_not_contain: &[],
            inject_frames: false,
            run_layout: false,
        }),
    },
    // Step 6: TCP/IP as a library. Servers on the library OS, each with a smoltcp stack
    // of its own, started by the shell, against real Linux clients through the forwards.
    // Each server exits after the `-n` the host function counts on, printing its stack's
    // statistics; the shell's `wait` then lets the run end.
    Scenario {
        name: "net-http",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("sh"),
        serial_input: Some("httpd -n 39 &\nwait\npoweroff\n"),
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            server_scenarios::HTTPD_READY,
            "httpd: served 39 requests",
            server_scenarios::HTTPD_STACK,
        ],
        timeout: SERVER_TIMEOUT,
        serial_check: None,
        network: Some(NetworkScenario {
            udp_ports: &[],
            tcp_ports: &[server_scenarios::HTTP_PORT],
            host: Some(server_scenarios::http_from_curl),
            capture_must_contain: &[],
            capture_must_not_contain: &[],
            inject_frames: false,
            run_layout: false,
        }),
    },
    Scenario {
        name: "net-echo",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("sh"),
        // ping first, alone on the address (net-run-servers pings beside the servers).
        serial_input: Some(
            "ping -c 3 10.0.2.2\n\
             udp-echo -n 24 &\n\
             tcp-echo -n 2 &\n\
             wait\n\
             poweroff\n",
        ),
        expected_exit: ExpectedExit::Pass,
        // The servers' lines interleave in any order: udp-echo's are checked here, in
        // order; tcp-echo's by the host function.
        serial_must_show: &[
            server_scenarios::PING_ANSWERED,
            server_scenarios::UDP_ECHO_READY,
            "udp-echo: echoed 24 datagrams",
            server_scenarios::UDP_ECHO_STACK,
        ],
        timeout: SERVER_TIMEOUT,
        serial_check: None,
        network: Some(NetworkScenario {
            udp_ports: &[server_scenarios::ECHO_PORT],
            tcp_ports: &[server_scenarios::ECHO_PORT],
            host: Some(server_scenarios::echo_over_udp_and_tcp),
            capture_must_contain: &[],
            capture_must_not_contain: &[],
            inject_frames: false,
            run_layout: false,
        }),
    },
    Scenario {
        name: "net-concurrent",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("sh"),
        serial_input: Some("tcp-echo -n 128 &\nwait\npoweroff\n"),
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            server_scenarios::TCP_ECHO_READY,
            "tcp-echo: served 128 connections",
            server_scenarios::TCP_ECHO_STACK,
        ],
        timeout: SERVER_TIMEOUT,
        serial_check: None,
        network: Some(NetworkScenario {
            udp_ports: &[],
            tcp_ports: &[server_scenarios::ECHO_PORT],
            host: Some(server_scenarios::many_connections_at_once),
            capture_must_contain: &[],
            capture_must_not_contain: &[],
            inject_frames: false,
            run_layout: false,
        }),
    },
    Scenario {
        name: "net-bulk",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("sh"),
        serial_input: Some("tcp-echo -n 1 &\nwait\npoweroff\n"),
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            server_scenarios::TCP_ECHO_READY,
            "tcp-echo: served 1 connections, 104857600 bytes",
            server_scenarios::TCP_ECHO_STACK,
        ],
        timeout: BULK_TIMEOUT,
        serial_check: None,
        network: Some(NetworkScenario {
            udp_ports: &[],
            tcp_ports: &[server_scenarios::ECHO_PORT],
            host: Some(server_scenarios::bulk_through_tcp_echo),
            capture_must_contain: &[],
            capture_must_not_contain: &[],
            inject_frames: false,
            run_layout: false,
        }),
    },
    Scenario {
        name: "net-discard",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("sh"),
        serial_input: Some("tcp-discard -n 2 &\nwait\npoweroff\n"),
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            server_scenarios::TCP_DISCARD_READY,
            "tcp-discard: served 2 connections",
            server_scenarios::TCP_DISCARD_STACK,
        ],
        timeout: SERVER_TIMEOUT,
        serial_check: None,
        network: Some(NetworkScenario {
            udp_ports: &[],
            tcp_ports: &[server_scenarios::DISCARD_PORT],
            host: Some(server_scenarios::streams_into_tcp_discard),
            capture_must_contain: &[],
            capture_must_not_contain: &[],
            inject_frames: false,
            run_layout: false,
        }),
    },
    Scenario {
        name: "net-malformed",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some("sh"),
        serial_input: Some("udp-echo -n 40 &\ntcp-echo -n 3 &\nwait\npoweroff\n"),
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &[
            server_scenarios::UDP_ECHO_READY,
            "udp-echo: echoed 40 datagrams",
            server_scenarios::UDP_ECHO_STACK,
        ],
        timeout: SERVER_TIMEOUT,
        serial_check: None,
        network: Some(NetworkScenario {
            udp_ports: &[server_scenarios::ECHO_PORT],
            tcp_ports: &[server_scenarios::ECHO_PORT],
            host: Some(server_scenarios::hostile_frames_beside_echo_traffic),
            capture_must_contain: &[],
            capture_must_not_contain: &[],
            inject_frames: true,
            run_layout: false,
        }),
    },
    // `cargo xtask run`'s own layout: the shell starts the servers from its rc file; the
    // host function ends the console's input once it has reached each of them.
    Scenario {
        name: "net-run-servers",
        kernel_command_line: PROGRAM_COMMAND_LINE,
        program: Some(servers::SHELL),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &["all environments have ended"],
        timeout: SERVER_TIMEOUT,
        serial_check: None,
        network: Some(NetworkScenario {
            udp_ports: &[servers::ECHO_GUEST_PORT],
            tcp_ports: &[servers::HTTP_GUEST_PORT, servers::ECHO_GUEST_PORT],
            host: Some(server_scenarios::servers_from_rc),
            capture_must_contain: &[],
            capture_must_not_contain: &[],
            inject_frames: false,
            run_layout: true,
        }),
    },
    Scenario {
        name: "density",
        kernel_command_line: density::SCENARIO_COMMAND_LINE,
        program: Some(density::PROGRAM),
        serial_input: None,
        expected_exit: ExpectedExit::Pass,
        serial_must_show: &["density: started the 8 apps asked for", density::READY],
        timeout: SERVER_TIMEOUT,
        serial_check: None,
        network: Some(NetworkScenario {
            udp_ports: &density::SCENARIO_PORTS,
            tcp_ports: &[],
            host: Some(density::scenario_apps_answer),
            capture_must_contain: &[],
            capture_must_not_contain: &[],
            inject_frames: false,
            run_layout: false,
        }),
    },
];

/// The scenarios whose name contains `filter` (all of them without one), in table order.
pub fn matching(filter: Option<&str>) -> Vec<&'static Scenario> {
    SCENARIOS
        .iter()
        .filter(|scenario| filter.is_none_or(|filter| scenario.name.contains(filter)))
        .collect()
}

impl Scenario {
    /// Whether it boots `cargo xtask run`'s boot file system (see
    /// [`NetworkScenario::run_layout`]).
    pub fn boots_run_layout(&self) -> bool {
        self.network
            .as_ref()
            .is_some_and(|network| network.run_layout)
    }

    pub fn qemu_config(&self, kernel: &Path) -> QemuConfig {
        let mut config = QemuConfig::new(kernel, self.kernel_command_line);
        config.boot_module = self.program.map(|_| match self.boots_run_layout() {
            false => artifacts::bootfs(),
            true => servers::bootfs(),
        });
        config.first_program = self.program.map(String::from);
        // Verdicts must not depend on how busy the host is. A networked guest talks to a
        // peer on the host's clock, though: with the instruction clock an idle guest skips
        // ahead, so its waits for the host would expire in a blink of host time.
        config.instruction_clock = self.network.is_none();
        config.serial_input = self.serial_input.map(String::from);
        config
    }

    /// Why `run` (with `capture`, for a scenario that checks its traffic) does not satisfy
    /// this scenario, or `None` if it does.
    pub fn failure_reason(&self, run: &GuestRun, capture: Option<&Capture>) -> Option<String> {
        let mut reasons = Vec::new();
        match run.ending {
            Ending::Exited(exit) if exit == self.expected_exit.guest_exit() => {}
            Ending::Exited(exit) => reasons.push(format!(
                "expected the guest to report {}, but {exit}",
                self.expected_exit.describe()
            )),
            Ending::TimedOut(_) => reasons.push(run.ending.to_string()),
            // The host side's failure, below, says why.
            Ending::HostFailed => {}
        }
        if run.host_failure.is_some() {
            let killed = if run.ending == Ending::HostFailed {
                "; guest killed"
            } else {
                ""
            };
            reasons.push(format!("the host side failed{killed} (its error is below)"));
        }
        if let Some(missing) = first_missing_in_order(&run.serial, self.serial_must_show) {
            reasons.push(format!(
                "serial output lacks {missing:?} (searched in order)"
            ));
        }
        if let Some(check) = self.serial_check
            && let Err(reason) = check(&run.serial)
        {
            reasons.push(format!("serial output: {reason}"));
        }
        if let Some(network) = &self.network
            && let Some(reason) = network.capture_failure(capture)
        {
            reasons.push(reason);
        }
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }
}

impl NetworkScenario {
    /// Why `capture` does not satisfy this scenario's traffic checks, or `None` if it does
    /// (or the scenario checks none).
    fn capture_failure(&self, capture: Option<&Capture>) -> Option<String> {
        if !self.needs_capture() {
            return None;
        }
        match capture {
            None => Some("no packet capture was taken".to_string()),
            Some(Capture {
                frames: Err(error), ..
            }) => Some(format!("packet capture unreadable: {error}")),
            Some(Capture {
                file,
                frames: Ok(frames),
            }) => capture_problems(
                frames,
                self.capture_must_contain,
                self.capture_must_not_contain,
            )
            .map(|problems| format!("packet capture {}: {problems}", file.display())),
        }
    }
}

/// What `frames` lack of `must_contain` or hold of `must_not_contain`, or `None`.
fn capture_problems(
    frames: &[Vec<u8>],
    must_contain: &[&[u8]],
    must_not_contain: &[&[u8]],
) -> Option<String> {
    let mut problems = Vec::new();
    for wanted in must_contain {
        if !frames.iter().any(|frame| contains(frame, wanted)) {
            problems.push(format!(
                "no frame contains {} ({} frames captured)",
                quoted(wanted),
                frames.len()
            ));
        }
    }
    for unwanted in must_not_contain {
        let holding: Vec<String> = (1..)
            .zip(frames)
            .filter(|(_, frame)| contains(frame, unwanted))
            .map(|(number, _)| number.to_string())
            .collect();
        if !holding.is_empty() {
            problems.push(format!(
                "{} of {} frames contain {}, which must appear in none (frames {})",
                holding.len(),
                frames.len(),
                quoted(unwanted),
                holding.join(", ")
            ));
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// The first of `expected` that does not occur in `output` after the previous one's match.
fn first_missing_in_order<'a>(output: &str, expected: &[&'a str]) -> Option<&'a str> {
    let mut rest = output;
    for wanted in expected {
        let Some(found) = rest.find(wanted) else {
            return Some(wanted);
        };
        rest = &rest[found + wanted.len()..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_must_appear_in_order() {
        let output = "exo exokernel\nmemory map: 3 regions\nheap: 1 MiB\n";
        assert_eq!(
            first_missing_in_order(output, &["exo", "memory map:", "heap:"]),
            None
        );
        assert_eq!(
            first_missing_in_order(output, &["heap:", "memory map:"]),
            Some("memory map:")
        );
        assert_eq!(
            first_missing_in_order(output, &["frames:"]),
            Some("frames:")
        );
        assert_eq!(first_missing_in_order(output, &[]), None);
    }

    #[test]
    fn a_repeated_string_needs_a_second_occurrence() {
        assert_eq!(first_missing_in_order("ok ok", &["ok", "ok"]), None);
        assert_eq!(first_missing_in_order("ok", &["ok", "ok"]), Some("ok"));
    }

    #[test]
    fn verdict_needs_exit_and_output() {
        let scenario = &SCENARIOS[3];
        assert_eq!(scenario.name, "panic");
        let run = |ending, serial: &str| GuestRun {
            ending,
            serial: serial.to_string(),
            qemu_messages: String::new(),
            elapsed: Duration::ZERO,
            host_failure: None,
        };
        let failed = Ending::Exited(GuestExit::Failed);
        let good = run(failed, "KERNEL PANIC at x: deliberate panic\n");
        assert_eq!(scenario.failure_reason(&good, None), None);
        let reason = scenario
            .failure_reason(&run(failed, "KERNEL PANIC\n"), None)
            .unwrap();
        assert!(reason.contains("deliberate panic"), "{reason}");
        let passed = Ending::Exited(GuestExit::Passed);
        let reason = scenario
            .failure_reason(&run(passed, &good.serial), None)
            .unwrap();
        assert!(reason.contains("guest reported success"), "{reason}");
        let hung = Ending::TimedOut(Duration::from_secs(60));
        let reason = scenario
            .failure_reason(&run(hung, &good.serial), None)
            .unwrap();
        assert!(reason.contains("timed out"), "{reason}");
    }

    #[test]
    fn a_host_side_failure_fails_a_scenario_that_otherwise_passed() {
        let scenario = SCENARIOS.iter().find(|s| s.name == "net-test").unwrap();
        let mut run = GuestRun {
            ending: Ending::Exited(GuestExit::Passed),
            serial: "net-test: two bindings ready\nnet-test: all checks passed\n".to_string(),
            qemu_messages: String::new(),
            elapsed: Duration::ZERO,
            host_failure: None,
        };
        let capture = good_net_test_capture();
        assert_eq!(scenario.failure_reason(&run, Some(&capture)), None);
        run.host_failure = Some("guest UDP port 7001: no reply".to_string());
        let reason = scenario.failure_reason(&run, Some(&capture)).unwrap();
        assert_eq!(reason, "the host side failed (its error is below)");
        run.ending = Ending::HostFailed;
        let reason = scenario.failure_reason(&run, Some(&capture)).unwrap();
        assert_eq!(
            reason,
            "the host side failed; guest killed (its error is below)"
        );
    }

    /// A capture that satisfies net-test's table entry.
    fn good_net_test_capture() -> Capture {
        Capture {
            file: PathBuf::from("/t/captures/net-test.pcap"),
            frames: Ok(vec![
                b"..echo:A0..".to_vec(),
                b"..echo:B0..".to_vec(),
                b"..no address yet..".to_vec(),
            ]),
        }
    }

    #[test]
    fn a_scenario_that_checks_its_traffic_needs_a_capture_that_passes() {
        let scenario = SCENARIOS.iter().find(|s| s.name == "net-test").unwrap();
        let run = GuestRun {
            ending: Ending::Exited(GuestExit::Passed),
            serial: "net-test: two bindings ready\nnet-test: all checks passed\n".to_string(),
            qemu_messages: String::new(),
            elapsed: Duration::ZERO,
            host_failure: None,
        };
        assert_eq!(
            scenario.failure_reason(&run, None).unwrap(),
            "no packet capture was taken"
        );
        let mut capture = good_net_test_capture();
        capture.frames = Ok(vec![
            b"..echo:A0..".to_vec(),
            b"no address yet".to_vec(),
            b"spoofed!".to_vec(),
        ]);
        assert_eq!(
            scenario.failure_reason(&run, Some(&capture)).unwrap(),
            "packet capture /t/captures/net-test.pcap: no frame contains \"echo:B0\" \
             (3 frames captured); 1 of 3 frames contain \"spoofed!\", which must appear in \
             none (frames 3)"
        );
        capture.frames = Err("truncated pcap file".to_string());
        assert_eq!(
            scenario.failure_reason(&run, Some(&capture)).unwrap(),
            "packet capture unreadable: truncated pcap file"
        );
    }

    #[test]
    fn the_capture_must_hold_each_wanted_string_and_no_unwanted_one() {
        let frames = vec![
            b"....echo:A0....".to_vec(),
            b"....echo:B0....".to_vec(),
            b"...".to_vec(),
        ];
        let wanted: &[&[u8]] = &[b"echo:A0", b"echo:B0"];
        assert_eq!(capture_problems(&frames, wanted, &[b"spoofed!"]), None);
        let problems = capture_problems(&frames, &[b"echo:A1"], &[b"echo:B0", b"..."]).unwrap();
        assert_eq!(
            problems,
            "no frame contains \"echo:A1\" (3 frames captured); \
             1 of 3 frames contain \"echo:B0\", which must appear in none (frames 2); \
             3 of 3 frames contain \"...\", which must appear in none (frames 1, 2, 3)"
        );
    }

    #[test]
    fn an_empty_capture_lacks_everything_wanted() {
        let problems = capture_problems(&[], &[b"echo:A0"], &[b"spoofed!"]).unwrap();
        assert_eq!(
            problems,
            "no frame contains \"echo:A0\" (0 frames captured)"
        );
    }

    #[test]
    fn only_networked_scenarios_run_on_the_hosts_clock() {
        for scenario in SCENARIOS {
            let config = scenario.qemu_config(Path::new("/k/exo-kernel"));
            assert_eq!(config.instruction_clock, scenario.network.is_none());
            assert!(config.port_forwards.is_empty() && config.packet_capture.is_none());
        }
    }

    #[test]
    fn filter_selects_by_name_substring() {
        assert_eq!(matching(None).len(), SCENARIOS.len());
        let names: Vec<_> = matching(Some("fault")).iter().map(|s| s.name).collect();
        assert_eq!(names, ["page-fault", "double-fault", "fault-test"]);
        assert!(matching(Some("nothing-matches")).is_empty());
    }

    #[test]
    fn programs_exist_and_are_boot_modules() {
        let programs = artifacts::user_program_names();
        for scenario in SCENARIOS {
            let config = scenario.qemu_config(Path::new("/k/exo-kernel"));
            match scenario.program {
                Some(program) => {
                    assert!(programs.iter().any(|name| name == program), "{program}");
                    let archive = match scenario.boots_run_layout() {
                        false => artifacts::bootfs(),
                        true => servers::bootfs(),
                    };
                    assert_eq!(config.boot_module, Some(archive));
                    assert_eq!(config.first_program.as_deref(), Some(program));
                }
                None => assert_eq!(config.boot_module, None),
            }
        }
    }

    #[test]
    fn server_scripts_agree_with_their_host_functions() {
        use server_scenarios::*;
        let scenario = |name| SCENARIOS.iter().find(|s| s.name == name).unwrap();
        let expect = |name, command: String, line: String| {
            let scenario = scenario(name);
            let script = scenario.serial_input.unwrap();
            assert!(
                script.contains(&format!("{command} &\n")),
                "{name}: {script:?}"
            );
            assert!(
                scenario.serial_must_show.contains(&line.as_str()),
                "{name}: {line}"
            );
        };
        expect(
            "net-http",
            format!("httpd -n {HTTP_REQUESTS}"),
            format!("httpd: served {HTTP_REQUESTS} requests"),
        );
        expect(
            "net-echo",
            format!("udp-echo -n {ECHO_UDP_COUNT}"),
            format!("udp-echo: echoed {ECHO_UDP_COUNT} datagrams"),
        );
        assert!(
            scenario("net-echo")
                .serial_input
                .unwrap()
                .contains(&format!("tcp-echo -n {ECHO_TCP_CONNECTIONS} &"))
        );
        expect(
            "net-concurrent",
            format!("tcp-echo -n {CONCURRENT_CONNECTIONS}"),
            format!("tcp-echo: served {CONCURRENT_CONNECTIONS} connections"),
        );
        expect(
            "net-bulk",
            "tcp-echo -n 1".to_string(),
            format!("tcp-echo: served 1 connections, {BULK_BYTES} bytes"),
        );
        expect(
            "net-discard",
            format!("tcp-discard -n {DISCARD_CONNECTIONS}"),
            format!("tcp-discard: served {DISCARD_CONNECTIONS} connections"),
        );
        expect(
            "net-malformed",
            format!("udp-echo -n {MALFORMED_UDP_COUNT}"),
            format!("udp-echo: echoed {MALFORMED_UDP_COUNT} datagrams"),
        );
        assert!(
            scenario("net-malformed")
                .serial_input
                .unwrap()
                .contains(&format!("tcp-echo -n {MALFORMED_TCP_CONNECTIONS} &"))
        );
    }

    #[test]
    fn bench_smoke_repetitions_agree_with_their_checks() {
        let scenario = |name| SCENARIOS.iter().find(|s| s.name == name).unwrap();
        let kernel = scenario("bench-smoke");
        assert!(kernel.kernel_command_line.contains(&format!(
            "init_argument={}",
            bench_lines::KERNEL_SMOKE_REPETITIONS
        )));
        let libos = scenario("bench-libos-smoke");
        let command = format!("bench-libos -n {}", bench_lines::LIBOS_SMOKE_REPETITIONS);
        assert!(
            libos
                .serial_input
                .unwrap()
                .contains(&format!("{command}\n"))
        );
        assert!(
            libos
                .serial_must_show
                .contains(&format!("$ {command}").as_str())
        );
    }

    #[test]
    fn scenario_names_are_unique() {
        for (index, scenario) in SCENARIOS.iter().enumerate() {
            assert!(
                SCENARIOS[..index]
                    .iter()
                    .all(|other| other.name != scenario.name)
            );
        }
    }
}
