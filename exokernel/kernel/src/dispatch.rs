//! Where every interrupt, exception and system call lands, and what each
//! means: the one place that ties the entry path to the rest of the kernel.
//!
//! `arch/trap_entry.rs` saves the registers and calls `trap_dispatch` by
//! symbol; `arch/` itself knows nothing above `memory`. The kernel runs
//! with interrupts off, so a trap from kernel mode is either a fault (a
//! kernel bug: report and stop) or an interrupt taken while idle in
//! `cpu::wait_for_interrupt`. A trap from user mode belongs to the running
//! environment: `environment::after_trap` decides, once per trap, which
//! environment the frame returns to — unless a system call or an exception
//! changed nothing that decision reads, when the caller simply goes on.

use core::fmt::Write;

use exo_abi::counters::Counter;
use exo_abi::trace::Kind;
use x86_64::registers::control::Cr2;

use crate::arch::trap::{
    DOUBLE_FAULT, MACHINE_CHECK, NMI, PAGE_FAULT, PageFaultCause, SYSCALL_VECTOR, TrapFrame,
    exception_name, write_registers,
};
use crate::arch::{apic, cpu, vectors};
use crate::console::FatalWriter;
use crate::environment::{self, SYSTEM};
use crate::{console, qemu, syscalls, time, trace};

/// Called by `trap_common` with the saved frame.
#[unsafe(no_mangle)]
extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    let this_cpu = cpu::current();
    let from_user = frame.is_from_user_mode();
    match frame.vector {
        SYSCALL_VECTOR => {
            this_cpu.count(Counter::SystemCalls);
            let number = frame.rax;
            trace::record_here(Kind::SyscallEnter, [number, frame.rdi]);
            let mut system = SYSTEM.lock();
            syscalls::dispatch(&mut system, frame);
            trace::record_here(Kind::SyscallExit, [number, frame.rax]);
            // Most calls leave the scheduling decision as it was: the caller
            // goes on, and the lock is taken once for the whole trap.
            if system.caller_continues() {
                return;
            }
        }
        0..=31 => {
            this_cpu.count(Counter::Exceptions);
            // NMI and machine check report the machine, not the code running;
            // a double fault's saved CS is the first fault's, and it means the
            // kernel could not deliver that one.
            if !from_user || matches!(frame.vector, NMI | DOUBLE_FAULT | MACHINE_CHECK) {
                fatal_exception(frame)
            }
            // CR2 holds the last page fault's address, whoever took it: only
            // a page fault's own is the faulting environment's to see.
            let address = if frame.vector == PAGE_FAULT {
                Cr2::read_raw()
            } else {
                0
            };
            trace::record_here(Kind::Exception, [frame.vector, address]);
            let mut system = SYSTEM.lock();
            system.user_exception(frame, address);
            // Delivered as an upcall to the environment that took it: as
            // after a system call, the decision may still hold.
            if system.caller_continues() {
                return;
            }
        }
        vector if vector == u64::from(vectors::TIMER) => {
            this_cpu.count(Counter::TimerTicks);
            time::tick_taken();
            apic::end_of_interrupt();
            // Input that arrived since the last tick, so that Ctrl-C is
            // counted while no program reads the console.
            console::poll_input();
            // Also while idle in the kernel: a tick starts the next slot.
            SYSTEM.lock().timer_tick();
        }
        vector if vector == u64::from(vectors::NIC) => {
            this_cpu.count(Counter::DeviceInterrupts);
            trace::record_here(Kind::DeviceInterrupt, [frame.vector, 0]);
            SYSTEM.lock().net_interrupt();
            apic::end_of_interrupt();
        }
        // A spurious interrupt is not in service: it must not be acknowledged.
        vector if vector == u64::from(vectors::SPURIOUS) => {
            this_cpu.count(Counter::SpuriousInterrupts)
        }
        vector => {
            this_cpu.count(Counter::DeviceInterrupts);
            log::warn!("unexpected interrupt on vector {vector}");
            apic::end_of_interrupt();
        }
    }
    if from_user {
        environment::after_trap(frame);
    }
}

/// Prints a report of an exception the kernel cannot handle and ends the run
/// with the failure exit code.
fn fatal_exception(frame: &TrapFrame) -> ! {
    let mut out = FatalWriter::new();
    let (mnemonic, name) = exception_name(frame.vector);
    let mode = if frame.is_from_user_mode() {
        "user"
    } else {
        "kernel"
    };
    let _ = writeln!(
        out,
        "\nEXCEPTION {mnemonic} {name} (vector {}) in {mode} mode",
        frame.vector
    );
    let _ = write!(out, "  error={:#018x}", frame.error_code);
    if frame.vector == PAGE_FAULT {
        let _ = write!(out, " ({})", PageFaultCause(frame.error_code));
    }
    let cr2 = Cr2::read_raw();
    let _ = writeln!(out, "\n  cr2={cr2:#018x}");
    write_registers(&mut out, frame);
    crate::panic::write_backtrace(&mut out, frame.rbp);
    qemu::exit(qemu::ExitCode::Failure)
}
