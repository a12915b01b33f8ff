//! Segments and the task-state segment.
//!
//! In 64-bit mode segments matter only for privilege level and for the
//! order `syscall`/`sysret` expect: kernel code, kernel data, then user data
//! *before* user code (`sysret` loads SS from STAR+8 and CS from STAR+16).
//! The TSS holds the stacks the CPU switches to: `rsp0` for entry from ring
//! 3, and IST 1 for double faults, so a kernel stack overflow still gets a
//! report instead of a triple fault.
//!
//! There is no LDT, and the LDT register says so (a null selector). Left at
//! its reset value it describes a table at linear address 0, 64 KiB long:
//! in every address space, memory the environment maps itself. Ring 3 could
//! then load a segment selector naming its own descriptors (any selector with
//! bit 2 set), and a call gate there naming the kernel's code segment would be
//! a way into ring 0 at an address of its choosing.

use core::cell::UnsafeCell;

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

use crate::memory::image_layout;

/// Segment selectors, fixed by the order of the table below.
pub mod selectors {
    pub const KERNEL_CODE: u16 = 0x08;
    pub const KERNEL_DATA: u16 = 0x10;
    /// User selectors carry requested privilege level 3; the ABI names them
    /// because user code builds `iretq` frames with them.
    pub const USER_DATA: u16 = exo_abi::layout::USER_DATA_SELECTOR;
    pub const USER_CODE: u16 = exo_abi::layout::USER_CODE_SELECTOR;
    pub const TSS: u16 = 0x28;
}

/// The interrupt-stack-table slot for double faults, and for the other
/// exceptions that need a known-good stack (`idt.rs`); IDT gates count from 1.
pub const DOUBLE_FAULT_IST: u8 = 1;

const DOUBLE_FAULT_STACK_SIZE: usize = 16 * 1024;

/// A stack the CPU writes to behind Rust's back.
#[repr(C, align(16))]
struct Stack(UnsafeCell<[u8; DOUBLE_FAULT_STACK_SIZE]>);

// SAFETY: only the CPU uses this memory, as a stack, while handling a double fault.
unsafe impl Sync for Stack {}

static DOUBLE_FAULT_STACK: Stack = Stack(UnsafeCell::new([0; DOUBLE_FAULT_STACK_SIZE]));
static TSS: Once<TaskStateSegment> = Once::new();
static GDT: Once<GlobalDescriptorTable> = Once::new();

/// Loads the GDT and TSS and reloads every segment register.
pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        let double_fault_top = DOUBLE_FAULT_STACK.0.get() as u64 + DOUBLE_FAULT_STACK_SIZE as u64;
        tss.interrupt_stack_table[usize::from(DOUBLE_FAULT_IST - 1)] =
            VirtAddr::new(double_fault_top);
        // One kernel stack per CPU: the kernel never blocks, so every entry
        // from user mode can start on the same, empty stack.
        tss.privilege_stack_table[0] = VirtAddr::new(image_layout().stack_top);
        tss
    });
    let gdt = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let selectors = [
            gdt.append(Descriptor::kernel_code_segment()),
            gdt.append(Descriptor::kernel_data_segment()),
            gdt.append(Descriptor::user_data_segment()),
            gdt.append(Descriptor::user_code_segment()),
            gdt.append(Descriptor::tss_segment(tss)),
        ];
        let expected = [
            selectors::KERNEL_CODE,
            selectors::KERNEL_DATA,
            selectors::USER_DATA,
            selectors::USER_CODE,
            selectors::TSS,
        ];
        assert_eq!(selectors.map(|selector| selector.0), expected);
        gdt
    });
    gdt.load();
    // SAFETY: the selectors name the descriptors just loaded; the TSS
    // descriptor is unused until now (load_tss marks it busy); a null LDT
    // selector only makes the LDT empty, and the kernel uses none.
    unsafe {
        CS::set_reg(SegmentSelector(selectors::KERNEL_CODE));
        SS::set_reg(SegmentSelector(selectors::KERNEL_DATA));
        DS::set_reg(SegmentSelector(0));
        ES::set_reg(SegmentSelector(0));
        load_tss(SegmentSelector(selectors::TSS));
        // No LDT: a selector that names one is refused (#GP), never read
        // from user memory (see the module's comment).
        core::arch::asm!("lldt {0:x}", in(reg) 0u16, options(nostack, preserves_flags));
    }
}
