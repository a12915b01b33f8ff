//! Per-CPU state and small CPU instructions.
//!
//! Each CPU's `PerCpu` is reached through the GS segment base: `gs:[0]`
//! holds the structure's own address, so `current()` is one load, with no
//! lock. This is the one accessor for per-CPU state; when more CPUs start,
//! each gets its own `PerCpu` and nothing else changes.

use alloc::vec::Vec;
use core::arch::asm;
use core::arch::x86_64::{__cpuid, __cpuid_count};
use core::mem::offset_of;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use exo_abi::counters::Counter;
use exo_abi::trace::Record;
use spin::Mutex;
use x86_64::VirtAddr;
use x86_64::registers::control::{Cr4, Cr4Flags};
use x86_64::registers::model_specific::{GsBase, KernelGsBase};

/// State private to one CPU.
#[repr(C)]
#[derive(Debug)]
pub struct PerCpu {
    /// The structure's own address; must stay first (read as `gs:[0]`).
    self_address: AtomicU64,
    /// Where the `syscall` entry switches the stack to (`syscall` does not).
    kernel_stack_top: AtomicU64,
    /// Where the `syscall` entry parks the user's `rsp` while it switches.
    user_stack_scratch: AtomicU64,
    /// Small number naming this CPU (0 for the boot CPU).
    pub id: u32,
    /// The environment running on this CPU, or 0 for none.
    environment: AtomicU32,
    counters: [AtomicU64; Counter::COUNT],
    /// The trace classes this CPU records (`exo_abi::trace::Class` bits; 0:
    /// tracing is off), read at every place an event could be recorded.
    trace_classes: AtomicU64,
    /// Its trace records not yet written out (`crate::trace`).
    pub trace_buffer: Mutex<Vec<Record>>,
}

/// Offsets the `syscall` entry stub reads and writes through `gs`.
pub const KERNEL_STACK_TOP_OFFSET: usize = offset_of!(PerCpu, kernel_stack_top);
pub const USER_STACK_SCRATCH_OFFSET: usize = offset_of!(PerCpu, user_stack_scratch);

impl PerCpu {
    const fn new(id: u32) -> Self {
        Self {
            self_address: AtomicU64::new(0),
            kernel_stack_top: AtomicU64::new(0),
            user_stack_scratch: AtomicU64::new(0),
            id,
            environment: AtomicU32::new(0),
            counters: [const { AtomicU64::new(0) }; Counter::COUNT],
            trace_classes: AtomicU64::new(0),
            trace_buffer: Mutex::new(Vec::new()),
        }
    }

    /// The id of the environment running on this CPU (0: none).
    pub fn environment(&self) -> u32 {
        self.environment.load(Ordering::Relaxed)
    }

    pub fn set_environment(&self, id: u32) {
        self.environment.store(id, Ordering::Relaxed);
    }

    /// Adds one to `counter`. Only this CPU writes its counters, with
    /// interrupts off, so a load and a store suffice: no locked
    /// read-modify-write on the system-call path.
    pub fn count(&self, counter: Counter) {
        let counter = &self.counters[counter as usize];
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// The trace classes this CPU records (0: none).
    pub fn trace_classes(&self) -> u64 {
        self.trace_classes.load(Ordering::Relaxed)
    }

    pub fn set_trace_classes(&self, classes: u64) {
        self.trace_classes.store(classes, Ordering::Relaxed);
    }

    /// The current value of `counter` on this CPU.
    pub fn counter(&self, counter: Counter) -> u64 {
        self.counters[counter as usize].load(Ordering::Relaxed)
    }
}

static BOOT_CPU: PerCpu = PerCpu::new(0);

/// Points GS at the boot CPU's state. Must run before anything calls `current()`.
/// `kernel_stack_top` is where every entry from user mode starts.
pub fn init_boot_cpu(kernel_stack_top: u64) {
    let address = &BOOT_CPU as *const PerCpu as u64;
    BOOT_CPU.self_address.store(address, Ordering::Relaxed);
    BOOT_CPU
        .kernel_stack_top
        .store(kernel_stack_top, Ordering::Relaxed);
    // The kernel runs with GS_BASE = its PerCpu; user code's GS base waits in
    // KERNEL_GS_BASE until `swapgs` exchanges them on entry and exit.
    GsBase::write(VirtAddr::new(address));
    KernelGsBase::write(VirtAddr::zero());
}

/// Makes `sgdt`, `sidt`, `sldt`, `smsw` and `str` fault in ring 3 (CR4.UMIP),
/// if the CPU offers it: they would hand ring 3 where the kernel's tables are
/// and what CR0 holds, and no kernel value may come back in a register.
/// Whether it could (QEMU's TCG offers it with `-cpu qemu64,+umip`).
pub fn prevent_user_mode_instructions() -> bool {
    // CPUID leaf 7, sub-leaf 0, ECX bit 2 (Intel SDM vol. 2A, CPUID).
    let offered = __cpuid(0).eax >= 7 && __cpuid_count(7, 0).ecx & (1 << 2) != 0;
    if offered {
        // SAFETY: UMIP only makes those five instructions fault at CPL 3;
        // the kernel never uses them in ring 3.
        unsafe { Cr4::update(|flags| flags.insert(Cr4Flags::USER_MODE_INSTRUCTION_PREVENTION)) };
    }
    offered
}

/// Sets CR4.SMEP if the CPU offers it, and says whether it could: the
/// kernel then faults on running code from any page ring 3 may reach. It
/// never does on purpose (it reaches user memory only through lent frames'
/// direct-map addresses, `UserRange`); a kernel bug that jumped to a user
/// address would fault (fatal, in ring 0) instead of running what the user
/// put there.
///
/// SMAP, the same for reads and writes, is left off: QEMU 7.2's TCG makes
/// the stack reads of an `iretq` in ring 3 (a library OS's return from its
/// upcall handler) supervisor accesses, so with SMAP every such return
/// faulted. The trap entry clears RFLAGS.AC all the same (`trap_common`).
pub fn prevent_kernel_running_user_pages() -> bool {
    // CPUID leaf 7, sub-leaf 0, EBX bit 7 (Intel SDM vol. 2A, CPUID).
    let offered = __cpuid(0).eax >= 7 && __cpuid_count(7, 0).ebx & (1 << 7) != 0;
    if offered {
        // SAFETY: the kernel runs no user-accessible page (see above);
        // SMEP only adds faults there.
        unsafe {
            Cr4::update(|flags| flags.insert(Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION))
        };
    }
    offered
}

/// This CPU's state.
pub fn current() -> &'static PerCpu {
    let address: u64;
    // SAFETY: reads gs:[0], which `init_boot_cpu` made the address of a
    // 'static PerCpu; it has no other effect.
    unsafe {
        asm!("mov {}, gs:[0]", out(reg) address, options(nostack, readonly, preserves_flags))
    };
    // SAFETY: the address is that of a 'static PerCpu (see above).
    unsafe { &*(address as *const PerCpu) }
}

/// Logs this CPU's kernel event counters, for the record at power-off.
pub fn report_counters() {
    let this_cpu = current();
    for counter in Counter::ALL {
        log::info!("counter {} = {}", counter.name(), this_cpu.counter(counter));
    }
    let resumed = ENTRY_DEBUG_TRAPS.load(Ordering::Relaxed);
    if resumed > 0 {
        log::info!("debug traps on the first instruction of an entry, resumed: {resumed}");
    }
}

/// Debug traps taken on the first instruction of an entry and resumed
/// (`trap_entry.rs`, `trap_from_kernel`). Counted by the entry stub, where GS
/// may still be the user's, so it is one atomic for the machine rather than
/// one of [`PerCpu`]'s counters.
pub static ENTRY_DEBUG_TRAPS: AtomicU64 = AtomicU64::new(0);

/// The data segment selectors ring 3 left in `ds`, `es`, `fs` and `gs`.
///
/// Ring 3 may load any selector its privilege allows into them (null, or the
/// user data segment at any RPL), and the kernel never uses them itself:
/// 64-bit addressing ignores `ds` and `es`, and the kernel reaches its
/// per-CPU data through the GS *base*, which `swapgs` exchanges. So they are
/// part of an environment's context, like its general registers: saved when
/// it leaves the CPU and loaded when it comes back — or they would carry one
/// environment's values into the next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserSegments([u16; 4]);

impl UserSegments {
    /// The selectors in the four registers now.
    pub fn read() -> Self {
        let (ds, es, fs, gs): (u16, u16, u16, u16);
        // SAFETY: reading a segment register has no effect.
        unsafe {
            asm!(
                "mov {ds:x}, ds",
                "mov {es:x}, es",
                "mov {fs:x}, fs",
                "mov {gs:x}, gs",
                ds = out(reg) ds,
                es = out(reg) es,
                fs = out(reg) fs,
                gs = out(reg) gs,
                options(nomem, nostack, preserves_flags),
            )
        };
        Self([ds, es, fs, gs])
    }

    /// Loads them back, for the return to ring 3. Loading `fs` or `gs` also
    /// sets that base to the descriptor's, 0: the only base ring 3 can give
    /// either (`wrfsbase` is off, MSRs are privileged). `gs` is loaded between
    /// two `swapgs`, so it sets ring 3's base and the kernel's stays.
    pub fn load(self) {
        let [ds, es, fs, gs] = self.0;
        // SAFETY: each selector was read while ring 3 ran, so it was one ring 3
        // could load — null or the user data segment (there is no LDT, and the
        // GDT never changes) — which ring 0 may load too, or it is the null of
        // a new environment. Interrupts are off, so nothing runs between the
        // two `swapgs` with ring 3's GS base in place.
        unsafe {
            asm!(
                "mov ds, {ds:x}",
                "mov es, {es:x}",
                "mov fs, {fs:x}",
                "swapgs",
                "mov gs, {gs:x}",
                "swapgs",
                ds = in(reg) ds,
                es = in(reg) es,
                fs = in(reg) fs,
                gs = in(reg) gs,
                options(nostack, preserves_flags),
            )
        };
    }
}

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` only reads the counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Stops this CPU for good: interrupts off, halt forever.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// Takes the interrupts that are pending, if any, and goes on at once: a
/// window in long kernel work for the clock to come in.
pub fn take_pending_interrupts() {
    // `sti` lets interrupts in only after the instruction that follows it.
    x86_64::instructions::interrupts::enable();
    x86_64::instructions::nop();
    x86_64::instructions::interrupts::disable();
}

/// Waits for the next interrupt with interrupts enabled, then disables them
/// again: the kernel itself always runs with interrupts off.
pub fn wait_for_interrupt() {
    x86_64::instructions::interrupts::enable_and_hlt();
    x86_64::instructions::interrupts::disable();
}
