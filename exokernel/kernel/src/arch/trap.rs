//! The trap frame, as the entry stubs build it, and the words for what is in
//! it: exception names, page-fault causes, a register dump.
//!
//! The dispatcher that decides what a trap means lives above, in
//! `crate::dispatch`, reached from the assembly by symbol: nothing here knows
//! environments or system calls.

use core::fmt::Write;

/// The `vector` of a frame built by the `syscall` entry: not a hardware vector.
pub const SYSCALL_VECTOR: u64 = 0x100;
/// The `vector` of a frame rewritten to enter an upcall or a fresh
/// environment: it must leave through `iretq`, which restores every register.
pub const RESUME_VECTOR: u64 = 0x101;

/// The registers at the moment of the trap, as `trap_entry.rs` saves them
/// (general registers) and the CPU pushes them (`rip` onward).
#[repr(C)]
#[derive(Clone, Debug, Default)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

impl TrapFrame {
    pub fn is_from_user_mode(&self) -> bool {
        self.cs & 3 == 3
    }
}

/// The mnemonic and name of CPU exception `vector` (0–31).
pub fn exception_name(vector: u64) -> (&'static str, &'static str) {
    EXCEPTIONS[(vector as usize) % EXCEPTIONS.len()]
}

/// Names of the architectural exceptions (Intel SDM vol. 3, table 6-1).
const EXCEPTIONS: [(&str, &str); 32] = [
    ("#DE", "divide error"),
    ("#DB", "debug"),
    ("NMI", "non-maskable interrupt"),
    ("#BP", "breakpoint"),
    ("#OF", "overflow"),
    ("#BR", "bound range exceeded"),
    ("#UD", "invalid opcode"),
    ("#NM", "device not available"),
    ("#DF", "double fault"),
    ("", "coprocessor segment overrun"),
    ("#TS", "invalid TSS"),
    ("#NP", "segment not present"),
    ("#SS", "stack-segment fault"),
    ("#GP", "general protection"),
    ("#PF", "page fault"),
    ("", "reserved (15)"),
    ("#MF", "x87 floating-point error"),
    ("#AC", "alignment check"),
    ("#MC", "machine check"),
    ("#XM", "SIMD floating-point"),
    ("#VE", "virtualization"),
    ("#CP", "control protection"),
    ("", "reserved (22)"),
    ("", "reserved (23)"),
    ("", "reserved (24)"),
    ("", "reserved (25)"),
    ("", "reserved (26)"),
    ("", "reserved (27)"),
    ("#HV", "hypervisor injection"),
    ("#VC", "VMM communication"),
    ("#SX", "security"),
    ("", "reserved (31)"),
];

pub const PAGE_FAULT: u64 = 14;
pub const NMI: u64 = 2;
pub const DOUBLE_FAULT: u64 = 8;
pub const MACHINE_CHECK: u64 = 18;

/// Writes every register of `frame`, a few to a line.
pub fn write_registers(out: &mut impl Write, frame: &TrapFrame) {
    let lines: [&[(&str, u64)]; 7] = [
        &[
            ("rip", frame.rip),
            ("cs", frame.cs),
            ("rflags", frame.rflags),
        ],
        &[("rsp", frame.rsp), ("ss", frame.ss), ("rbp", frame.rbp)],
        &[("rax", frame.rax), ("rbx", frame.rbx), ("rcx", frame.rcx)],
        &[("rdx", frame.rdx), ("rsi", frame.rsi), ("rdi", frame.rdi)],
        &[("r8", frame.r8), ("r9", frame.r9), ("r10", frame.r10)],
        &[("r11", frame.r11), ("r12", frame.r12), ("r13", frame.r13)],
        &[("r14", frame.r14), ("r15", frame.r15)],
    ];
    for line in lines {
        let _ = write!(out, " ");
        for (name, value) in line.iter() {
            let _ = write!(out, " {name:>3}={value:#018x}");
        }
        let _ = writeln!(out);
    }
}

/// The page-fault error code in words (Intel SDM vol. 3, "Interrupt 14").
pub struct PageFaultCause(pub u64);

impl core::fmt::Display for PageFaultCause {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let bit = |n: u32| self.0 & (1 << n) != 0;
        let access = if bit(4) {
            "instruction fetch"
        } else if bit(1) {
            "write"
        } else {
            "read"
        };
        let page = if bit(0) {
            "protection violation"
        } else {
            "page not present"
        };
        let mode = if bit(2) { "user" } else { "kernel" };
        write!(f, "{access}, {page}, {mode} access")?;
        if bit(3) {
            write!(f, ", reserved bit set")?;
        }
        Ok(())
    }
}
