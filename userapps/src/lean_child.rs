//! Children that pay for their own memory, so that a parent holds one capability per child
//! — its environment's — however many it runs.
//!
//! [`spawn::Child`](crate::spawn::Child) fills a child's stack and writable pages with
//! frames the parent allocates, so the parent holds a capability for each of them: seven or
//! so per child, and a capability table has
//! [`TABLE_CAPACITY`](exo_abi::handle::TABLE_CAPACITY) slots. A [`LeanChild`]
//! allocates those frames itself, from the quota its parent lent it, before it runs any
//! code that needs them:
//!
//! 1. the parent maps its own image into the child through its own capabilities: the
//!    read-only pages as they are, the writable ones (data, bss) *read-only*; and a boot
//!    stack it keeps for the purpose ([`BootStack`], one for all its children), whose top
//!    holds the plan: what to run, where the data lies, and a status word;
//! 2. the child starts on the boot stack in [`build`], which touches no static: it
//!    allocates a run of frames, copies the data pages into it, puts it in their place, and
//!    allocates and maps its own stack;
//! 3. on its own stack it marks the plan built and runs the function it was given; from
//!    then on it never touches the boot stack, which the parent unmaps from it
//!    ([`LeanChild::wait_until_built`]) and lends the next child.
//!
//! The data is copied when the child starts, not when it is created: the parent must not
//! change its statics in between (it waits). A child that cannot build itself — its quota
//! spent, no frame free — writes the kernel's error into the plan and exits, and the parent
//! reads it there. The parent lends the frames: a child needs its data pages rounded up to a
//! power of two, [`STACK_PAGES`], and its page tables, from its quota.
//!
//! Only the first environment can build children: it alone has the start-info page that
//! lists its image.
#![allow(unsafe_code)] // the boot stack's plan, the data copy, the switch to the child's own stack

use core::arch::global_asm;

use exo_abi::layout::{PAGE_SIZE, USER_MAP_END};
use exo_abi::mapping::MapFlags;
use exo_abi::syscall::EnvironmentAccount;
use exo_abi::user::{self, Lend};
use exo_abi::{Error, Handle};

use crate::entry;
use crate::layout::{CHILD_STACK_TOP, is_initial_stack, is_managed};
use crate::memory::{read_u64, write_u64};

/// Pages of the boot stack: the build code's stack, with the plan at its top.
const BOOT_STACK_ORDER: u32 = 1;
const BOOT_STACK_BYTES: u64 = PAGE_SIZE << BOOT_STACK_ORDER;
/// Where a child maps its parent's boot stack, and where it copies its data first (at most
/// [`MAX_DATA_PAGES`]): the bottom of the 2 MiB below its stack top, so that one page table
/// serves them, its stack, and whatever its program maps in between.
const CHILD_BOOT_STACK: u64 = CHILD_STACK_TOP - 0x20_0000;
const CHILD_BUILD_SCRATCH: u64 = CHILD_BOOT_STACK + 0x1_0000;
/// The most data pages a lean child copies.
pub const MAX_DATA_PAGES: u64 = 64;
/// The range a lean child's program may map its own memory in (its heap, say), below the
/// stack and its guard page, above the build scratch.
pub const FREE_BELOW_STACK: core::ops::Range<u64> = CHILD_BUILD_SCRATCH + MAX_DATA_PAGES * PAGE_SIZE
    ..CHILD_STACK_TOP - (STACK_PAGES + 1) * PAGE_SIZE;
/// log2 of the pages of a lean child's own stack, below `layout::CHILD_STACK_TOP`.
const STACK_ORDER: u32 = 2;
/// Pages of a lean child's own stack.
pub const STACK_PAGES: u64 = 1 << STACK_ORDER;

/// The plan's words, at the top of the boot stack: what the child runs, where its data
/// lies, and the status the child reports.
mod plan {
    pub const FUNCTION: u64 = 0;
    pub const ARGUMENT: u64 = 1;
    pub const DATA_START: u64 = 2;
    pub const DATA_PAGES: u64 = 3;
    pub const STATUS: u64 = 4;
    pub const WORDS: u64 = 8;
}
/// Status words: not yet built; built (then the child runs on its own stack); or
/// `FAILED | error code`.
const BUILDING: u64 = 0;
const BUILT: u64 = 1;
const FAILED: u64 = 1 << 63;

/// Tries at `yield_to` before a child that has neither built itself nor gone is given up.
const BUILD_TRIES: u32 = 100_000;

const _: () = assert!(!is_managed(CHILD_BOOT_STACK) && !is_managed(CHILD_STACK_TOP - 1));

/// The stack children build themselves on, held by their parent and lent to one child at
/// a time, with the plan at its top. It is mapped in the parent's managed window, where the
/// parent writes the plan and reads the status.
#[derive(Debug)]
pub struct BootStack {
    frames: Handle,
    /// Where the parent has it mapped.
    base: u64,
}

impl BootStack {
    /// Allocates the boot stack and maps it at `base` in the managed window.
    pub fn new(base: u64) -> Result<Self, Error> {
        assert!(is_managed(base) && is_managed(base + BOOT_STACK_BYTES - 1));
        let (frames, _) = user::frame_allocate(BOOT_STACK_ORDER)?;
        user::map(frames, Handle::SELF_ENVIRONMENT, base, MapFlags::WRITE)?;
        Ok(Self { frames, base })
    }

    /// Where plan word `index` is in the parent's view.
    fn word(&self, index: u64) -> u64 {
        self.base + BOOT_STACK_BYTES - (plan::WORDS - index) * 8
    }
}

/// A child environment that runs a function of this program's image on memory it
/// allocated itself. Dropping it destroys the environment, which returns that memory.
#[derive(Debug)]
#[must_use = "dropping a LeanChild destroys the environment"]
pub struct LeanChild {
    environment: Handle,
}

impl LeanChild {
    /// A new environment with the accounts `lend` gives it (from ours), this program's
    /// image mapped (its data read-only) and the boot stack, ready to
    /// [`start`](Self::start).
    pub fn create(lend: Lend, boot: &BootStack) -> Result<Self, Error> {
        if !entry::loaded_by_kernel() {
            return Err(Error::InvalidState);
        }
        let child = Self {
            environment: user::environment_create_lending(lend)?,
        };
        for page in image_pages() {
            let flags = MapFlags::from_bits_truncate(page.flags) - MapFlags::WRITE;
            user::map(
                Handle::from_raw(page.frame),
                child.environment,
                page.address,
                flags,
            )?;
        }
        user::map(
            boot.frames,
            child.environment,
            CHILD_BOOT_STACK,
            MapFlags::WRITE,
        )?;
        Ok(child)
    }

    /// The child's environment capability.
    pub fn environment(&self) -> Handle {
        self.environment
    }

    /// One of the child's accounts.
    pub fn account(&self, account: EnvironmentAccount) -> Result<u64, Error> {
        user::environment_info(self.environment, account)
    }

    /// Starts the child: it builds its memory, then runs `function(argument)` and exits
    /// with what it returns. Follow with [`wait_until_built`](Self::wait_until_built)
    /// before starting another child on `boot`.
    pub fn start(
        &self,
        boot: &BootStack,
        function: fn(u64) -> u64,
        argument: u64,
    ) -> Result<(), Error> {
        let (data_start, data_pages) = data_segment()?;
        write_u64(boot.word(plan::FUNCTION), function as usize as u64);
        write_u64(boot.word(plan::ARGUMENT), argument);
        write_u64(boot.word(plan::DATA_START), data_start);
        write_u64(boot.word(plan::DATA_PAGES), data_pages);
        write_u64(boot.word(plan::STATUS), BUILDING);
        let plan = CHILD_BOOT_STACK + BOOT_STACK_BYTES - plan::WORDS * 8;
        user::environment_start(self.environment, build_entry(), plan, plan)
    }

    /// Gives the child the CPU until it has built its memory, then takes the boot stack
    /// back from it. The error is the kernel's refusal that stopped the build, or
    /// `InvalidState` if the child vanished (or never finished) without saying why.
    pub fn wait_until_built(&self, boot: &BootStack) -> Result<(), Error> {
        for _ in 0..BUILD_TRIES {
            match read_u64(boot.word(plan::STATUS)) {
                BUILDING => {}
                BUILT => return self.return_boot_stack(),
                failed => {
                    return Err(Error::try_from(failed & !FAILED).unwrap_or(Error::InvalidState));
                }
            }
            if user::yield_to(self.environment).is_err() && !self.is_alive() {
                return Err(Error::InvalidState);
            }
        }
        Err(Error::InvalidState)
    }

    /// Whether the environment still exists.
    pub fn is_alive(&self) -> bool {
        self.account(EnvironmentAccount::Id).is_ok()
    }

    /// Lets the child run for the rest of this environment's life (the kernel returns its
    /// memory when this environment ends); returns its environment capability.
    pub fn detach(self) -> Handle {
        let environment = self.environment;
        core::mem::forget(self);
        environment
    }

    fn return_boot_stack(&self) -> Result<(), Error> {
        for page in 0..1 << BOOT_STACK_ORDER {
            crate::memory::unmap(self.environment, CHILD_BOOT_STACK + page * PAGE_SIZE)?;
        }
        Ok(())
    }
}

impl Drop for LeanChild {
    fn drop(&mut self) {
        // The boot stack goes with the environment's mappings; the child's own frames with
        // its capability table.
        let _ = user::environment_destroy(self.environment);
    }
}

/// This program's image as the kernel mapped it, without the initial stack.
fn image_pages() -> impl Iterator<Item = &'static exo_abi::start_info::StartPage> {
    user::start_info()
        .pages()
        .iter()
        .filter(|page| page.address < USER_MAP_END && !is_initial_stack(page.address))
}

/// The pages a lean child has mapped once built (a kernel mapping record each): this
/// program's read-only pages (its parent's frames), its data run and its stack.
pub fn pages_mapped() -> Result<u64, Error> {
    let read_only = image_pages()
        .filter(|page| !MapFlags::from_bits_truncate(page.flags).contains(MapFlags::WRITE))
        .count() as u64;
    Ok(read_only + data_run_pages()? + STACK_PAGES)
}

/// The frames a lean child allocates for its data: its data pages, rounded up to a power
/// of two (one run).
pub fn data_run_pages() -> Result<u64, Error> {
    data_segment().map(|(_, pages)| pages.next_power_of_two())
}

/// The first page and the page count of the image's writable pages, which must follow
/// each other, [`MAX_DATA_PAGES`] at most.
fn data_segment() -> Result<(u64, u64), Error> {
    let mut writable = image_pages()
        .filter(|page| MapFlags::from_bits_truncate(page.flags).contains(MapFlags::WRITE))
        .map(|page| page.address);
    let start = writable.next().ok_or(Error::InvalidState)?;
    let mut pages = 1;
    for address in writable {
        if address != start + pages * PAGE_SIZE {
            return Err(Error::InvalidState);
        }
        pages += 1;
    }
    if pages > MAX_DATA_PAGES {
        return Err(Error::InvalidState);
    }
    Ok((start, pages))
}

/// Where a lean child starts.
fn build_entry() -> u64 {
    exo_lean_child_start as *const () as u64
}

unsafe extern "C" {
    fn exo_lean_child_start();
    fn exo_lean_child_switch_stack(
        top: u64,
        plan: *mut u64,
        next: extern "C" fn(*mut u64) -> !,
    ) -> !;
}

// `exo_lean_child_start`: the child's first instruction, with `rsp = rdi =` the plan on the
// boot stack. `exo_lean_child_switch_stack(top, plan, next)`: calls `next(plan)` on the
// stack whose top is `top`, never to return.
global_asm!(
    r#"
    .pushsection .text.exo_lean_child, "ax"
    .global exo_lean_child_start
exo_lean_child_start:
    xor ebp, ebp
    and rsp, -16
    call {build}
    ud2

    .global exo_lean_child_switch_stack
exo_lean_child_switch_stack:
    mov rsp, rdi
    mov rdi, rsi
    xor ebp, ebp
    call rdx
    ud2
    .popsection
"#,
    build = sym build,
);

/// The child, on the boot stack: builds its memory, then goes on to its own stack. It
/// touches no static until then: its data pages are still its parent's, read-only.
extern "C" fn build(plan: *mut u64) -> ! {
    // SAFETY: `plan` is the plan the parent wrote at the top of the boot stack, mapped
    // writable here until this child reports it built; the words are read and written
    // volatile, as the parent reads them from its own mapping.
    let word = |index: u64| unsafe { plan.add(index as usize).read_volatile() };
    match build_memory(word(plan::DATA_START), word(plan::DATA_PAGES)) {
        // SAFETY: `build_memory` mapped a private stack below `CHILD_STACK_TOP`.
        Ok(()) => unsafe { exo_lean_child_switch_stack(CHILD_STACK_TOP, plan, run) },
        Err(error) => {
            // SAFETY: as above.
            unsafe {
                plan.add(plan::STATUS as usize)
                    .write_volatile(FAILED | error.code())
            };
            user::exit(error.code())
        }
    }
}

/// Replaces the parent's read-only data pages with private copies, and maps a stack.
fn build_memory(data_start: u64, data_pages: u64) -> Result<(), Error> {
    let order = data_pages.next_power_of_two().trailing_zeros();
    let (data, _) = user::frame_allocate(order)?;
    user::map(
        data,
        Handle::SELF_ENVIRONMENT,
        CHILD_BUILD_SCRATCH,
        MapFlags::WRITE,
    )?;
    // SAFETY: the data pages are mapped (read-only) at `data_start` and the fresh run
    // writable at the scratch address, both at least `data_pages` pages long, apart; no
    // Rust reference points into either (this code touches no static).
    unsafe {
        core::ptr::copy_nonoverlapping(
            data_start as *const u8,
            CHILD_BUILD_SCRATCH as *mut u8,
            (data_pages * PAGE_SIZE) as usize,
        );
    }
    for page in 0..data_pages {
        // SAFETY: no reference points into the parent's data pages (see above); the
        // copies take their place before anything reads them.
        unsafe { user::unmap(Handle::SELF_ENVIRONMENT, data_start + page * PAGE_SIZE)? };
    }
    for page in 0..1u64 << order {
        // SAFETY: the scratch mapping held only the copy, read through raw pointers.
        unsafe {
            user::unmap(
                Handle::SELF_ENVIRONMENT,
                CHILD_BUILD_SCRATCH + page * PAGE_SIZE,
            )?
        };
    }
    user::map(data, Handle::SELF_ENVIRONMENT, data_start, MapFlags::WRITE)?;
    let (stack, _) = user::frame_allocate(STACK_ORDER)?;
    user::map(
        stack,
        Handle::SELF_ENVIRONMENT,
        CHILD_STACK_TOP - STACK_PAGES * PAGE_SIZE,
        MapFlags::WRITE,
    )
}

/// The child, on its own stack: reports the plan built and runs its function. It never
/// touches the boot stack again.
extern "C" fn run(plan: *mut u64) -> ! {
    // SAFETY: as in `build`: the boot stack is still mapped until the parent reads `BUILT`,
    // which is written last.
    let (function, argument) = unsafe {
        let function = plan.add(plan::FUNCTION as usize).read_volatile();
        let argument = plan.add(plan::ARGUMENT as usize).read_volatile();
        plan.add(plan::STATUS as usize).write_volatile(BUILT);
        (function, argument)
    };
    entry::start_child(function as usize, argument)
}
