//! The interrupt descriptor table: every vector goes to its entry stub.
//!
//! The `x86_64` crate's typed IDT wants `extern "x86-interrupt"` handlers,
//! which need nightly Rust; ours is a plain table of 256 gates pointing at
//! the stubs in `trap_entry.rs`, which all lead to `trap::dispatch`.

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;

use super::gdt::{DOUBLE_FAULT_IST, selectors};
use super::trap_entry::stub_address;

/// One 16-byte interrupt gate (Intel SDM vol. 3, "IDT Descriptors").
#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    attributes: u8,
    offset_middle: u16,
    offset_high: u32,
    reserved: u32,
}

/// Present, 64-bit interrupt gate (IF cleared on entry), callable only from ring 0.
const INTERRUPT_GATE: u8 = 0x8e;
/// The same, but `int3` (or `int 3`) from ring 3 may raise it, as on every
/// x86 OS: a breakpoint is then an exception like any other for the
/// environment's upcall handler. Any other `int n` from ring 3 is a #GP.
const USER_INTERRUPT_GATE: u8 = INTERRUPT_GATE | (3 << 5);

impl Gate {
    fn new(handler: u64, ist: u8, attributes: u8) -> Self {
        Self {
            offset_low: handler as u16,
            selector: selectors::KERNEL_CODE,
            ist,
            attributes,
            offset_middle: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static IDT: Once<Idt> = Once::new();

const DEBUG: u8 = 1;
const NMI: u8 = 2;
const BREAKPOINT: u8 = 3;
const DOUBLE_FAULT: u8 = 8;
const MACHINE_CHECK: u8 = 18;

pub fn init() {
    let idt = IDT.call_once(|| {
        Idt(core::array::from_fn(|vector| {
            let vector = vector as u8;
            // Exceptions that could strike at any instruction, even the
            // first of the `syscall` entry (still on the user's stack), take
            // a stack of their own. In kernel mode they only ever end in a
            // report; a debug trap from user mode returns as usual.
            let ist = if [DEBUG, NMI, DOUBLE_FAULT, MACHINE_CHECK].contains(&vector) {
                DOUBLE_FAULT_IST
            } else {
                0
            };
            let attributes = if vector == BREAKPOINT {
                USER_INTERRUPT_GATE
            } else {
                INTERRUPT_GATE
            };
            Gate::new(stub_address(vector), ist, attributes)
        }))
    });
    let pointer = DescriptorTablePointer {
        limit: (size_of::<Idt>() - 1) as u16,
        base: VirtAddr::new(idt as *const Idt as u64),
    };
    // SAFETY: the table is 'static and every gate points at a valid stub.
    unsafe { lidt(&pointer) };
}
