//! The exo exokernel.
//!
//! `arch::boot` brings the CPU from QEMU's PVH entry to `kernel_main` below,
//! which sets up, in order: per-CPU state, the console, descriptor tables,
//! the boot information, physical memory (frames, page tables, heap),
//! interrupt controllers and the timer. Then it runs what the command line
//! asks for. `docs/01-boot.md` walks through it.
#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod boot_info;
mod console;
mod dispatch;
mod environment;
mod floors;
mod memory;
mod nic;
mod panic;
mod qemu;
mod selftest;
mod syscalls;
mod time;
mod trace;

use exo_kernel_core::cmdline::CommandLine;
use log::LevelFilter;

use crate::arch::{apic, cpu, gdt, idt, pic, syscall};
use crate::memory::{frames, heap, paging};

/// Slots in the slice vector by default; `slots=N` changes it.
const DEFAULT_SLOTS: u64 = 64;
/// A slot's length in microseconds by default (one timer tick); `slot_us=N` changes it.
const DEFAULT_SLOT_US: u64 = 1000;

/// Entered from `arch::boot` on the boot stack, with interrupts off.
/// `start_info` is the physical address of the PVH start-info structure.
#[unsafe(no_mangle)]
extern "C" fn kernel_main(start_info: u64) -> ! {
    cpu::init_boot_cpu(memory::image_layout().stack_top);
    console::init();
    gdt::init();
    idt::init();
    syscall::init();
    let umip = cpu::prevent_user_mode_instructions();
    let smep = cpu::prevent_kernel_running_user_pages();

    // SAFETY: this is the address the PVH loader passed in `ebx`, and
    // nothing has touched memory outside the kernel image yet.
    let boot = unsafe { boot_info::init(start_info) };
    let command_line = CommandLine::new(boot.command_line());
    let level = command_line.get("log").and_then(|level| level.parse().ok());
    console::init_logger(level.unwrap_or(LevelFilter::Info));

    println!("exo exokernel {} (x86_64)", env!("CARGO_PKG_VERSION"));
    println!("command line: {:?}", command_line.as_str());
    println!("memory map:");
    for region in boot.regions() {
        println!(
            "  {:#014x}-{:#014x} {:?}",
            region.start, region.end, region.kind
        );
    }
    if boot.regions_truncated() {
        log::warn!("memory map truncated: later entries ignored");
    }

    frames::init(boot.regions(), boot.modules());
    paging::init(boot.regions());
    let heap_size = heap::init(frames::counts().usable);
    memory::lent_frames::init(frames::counts().total);
    let counts = frames::counts();
    println!(
        "frames: {} free of {} usable ({} MiB), {} tracked",
        counts.free,
        counts.usable,
        (counts.usable * 4096) >> 20,
        counts.total
    );
    // Logged once the heap is up: the logger may allocate.
    if !umip {
        log::warn!("no UMIP on this CPU: ring 3 can read the descriptor tables' addresses");
    }
    if smep {
        println!("cpu: the kernel faults on running user pages (SMEP)");
    } else {
        log::warn!("no SMEP on this CPU: the kernel could run code from user pages");
    }
    println!("heap: {} MiB", heap_size >> 20);

    pic::disable();
    apic::init();
    let slots = setting(&command_line, "slots", DEFAULT_SLOTS, 1..=4096);
    let slot_us = setting(&command_line, "slot_us", DEFAULT_SLOT_US, 100..=1_000_000);
    let hz = 1_000_000 / slot_us;
    time::init(hz);
    environment::init(slots as usize);
    nic::init();
    println!(
        "timer: local APIC at {hz} Hz (APIC timer {} kHz, TSC {} MHz, measured against the PIT)",
        time::apic_timer_hz() / 1000,
        time::tsc_hz() / 1_000_000
    );
    println!("slice vector: {slots} slots of {slot_us} us");

    if let Some(test) = command_line.get("test") {
        selftest::run(test);
    }
    if let Some(classes) = command_line.get("trace") {
        match exo_abi::trace::Class::parse(classes) {
            Some(_) if !trace::COMPILED_IN => {
                println!("trace: this kernel was built without the trace feature");
            }
            Some(classes) if trace::start(classes) => {
                println!("trace: recording {classes:?} to the debug console");
            }
            Some(_) => println!("trace: no room for the buffer; tracing is off"),
            None => println!("trace: unknown classes {classes:?}; tracing is off"),
        }
    }
    if command_line.get("floors") == Some("on") {
        floors::measure();
    }
    if command_line.get("entry_breakpoints") == Some("on") {
        arch::trap_entry::arm_entry_breakpoints();
        println!("debug: instruction breakpoints on the system-call, #BP and #PF entries");
    }

    let Some(module) = boot.modules().first() else {
        println!("no boot file system given (boot module): powering off");
        cpu::report_counters();
        qemu::exit(qemu::ExitCode::Success)
    };
    // SAFETY: the loader placed the module there; the frame allocator never
    // hands out module memory, so it stays intact and unaliased.
    let archive = unsafe {
        core::slice::from_raw_parts(
            memory::phys_to_virt(module.start).as_ptr::<u8>(),
            (module.end - module.start) as usize,
        )
    };
    let init = command_line.get("init").unwrap_or("init");
    // What the first program makes of its start argument is its own business (the bare
    // runtime hands it to `main`; `bench` reads it as a repetition count).
    let argument = setting(&command_line, "init_argument", 0, 0..=u64::MAX);
    match environment::start_first_program(archive, init, argument) {
        Ok(id) => println!("environment {}: first program {init:?} loaded", id.0),
        Err(error) => println!("the first program {init:?} could not be loaded: {error}"),
    }
    let frame = environment::first_context();
    // SAFETY: `first_context` loaded a runnable environment's context and
    // address space into `frame` and the CPU.
    unsafe { arch::trap_entry::enter(&frame) }
}

/// The number `key=N` on the command line, if it is in `range`; else `default`.
fn setting(
    command_line: &CommandLine<'_>,
    key: &str,
    default: u64,
    range: core::ops::RangeInclusive<u64>,
) -> u64 {
    match command_line.get_u64(key) {
        None => default,
        Some(Ok(value)) if range.contains(&value) => value,
        Some(_) => {
            log::warn!("{key} must be a number in {range:?}; using {default}");
            default
        }
    }
}
