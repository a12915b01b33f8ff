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
            "hostile-syscalls: all checks passed",
        ],
        ..DEFAULT
    },
    Scenario {
        name: "hostile-flags",
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
        ..DEFAULT
    },
    Scenario {
        name: "hostile-kernel-memory",
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
        ..DEFAULT
    },
    Scenario {
        name: "hostile-teardown",
        kernel_command_line: "log=info init_argument=10000",
        serial_must_show: &[
            "hostile-teardown: 10000 cycles; before:",
            "hostile-teardown: 5000 cycles,",
            "hostile-teardown: 10000 cycles in",
            "ok: every frame and byte of kernel memory came back after every cycle",
            "hostile-teardown: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
    Scenario {
        name: "hostile-slots",
        // As for slices-test: 1 ms slots on the instruction clock, 20 of them.
        kernel_command_line: "log=info slots=20 slot_us=1000",
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
        ..DEFAULT
    },
    Scenario {
        name: "hostile-revocation",
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
        ..DEFAULT
    },
    Scenario {
        name: "hostile-fork",
        serial_must_show: &[
            "ok: fork_with_quota(128): refused with",
            "ok: fork_with_quota(128): afterwards a fork works again",
            "ok: fork(): refused with",
            "ok: fork(): afterwards a fork works again",
            "hostile-fork: all checks passed",
        ],
        timeout: LONG_TIMEOUT,
        ..DEFAULT
    },
];
