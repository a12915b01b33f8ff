//! Building a child environment that runs a function of this program's own image.
//!
//! The kernel loads only the first program; every other environment is built by its
//! parent. [`Child::create`] makes an empty environment and gives it the parent's image:
//! - read-only pages (text, rodata) are the parent's own frames, mapped at the same
//!   addresses with the same permissions through the parent's capabilities;
//! - each writable page (data, bss) is a fresh frame holding a copy of the parent's page as
//!   it is at that moment: the parent maps the frame at `layout::SPAWN_SCRATCH`, copies,
//!   unmaps it again, and maps it writable into the child;
//! - a fresh stack below `layout::CHILD_STACK_TOP`.
//!
//! The parent's stack and start-info page are not given to the child. [`Child::start`] then
//! runs a `fn(u64) -> u64` there with an argument; its return value is the child's exit
//! status. Only the first environment can spawn: it alone has the start-info page that
//! lists its image.
//!
//! The parent holds the capabilities of the frames it allocated for the child, so dropping
//! a [`Child`] destroys the environment (if it still exists) and then gives those frames
//! back: nothing is left behind.
#![allow(unsafe_code)] // copying pages through the scratch mapping, dropping the child's frames

use exo_abi::layout::{PAGE_SIZE, USER_MAP_END};
use exo_abi::mapping::MapFlags;
use exo_abi::syscall::EnvironmentAccount;
use exo_abi::user::{self, Lend};
use exo_abi::{Error, Handle};

use crate::entry;
use crate::layout::{CHILD_STACK_PAGES, CHILD_STACK_TOP, SPAWN_SCRATCH, is_initial_stack};

/// The most frames a parent allocates for one child: its writable pages and its stack.
pub const MAX_CHILD_FRAMES: usize = 64;

/// A child environment built from this program's image, and the frames it was given.
#[derive(Debug)]
#[must_use = "dropping a Child destroys the environment"]
pub struct Child {
    environment: Handle,
    /// Capabilities of the frames allocated for the child; the first is its stack's top page.
    frames: [Handle; MAX_CHILD_FRAMES],
    frame_count: usize,
}

impl Child {
    /// A new environment with `frame_quota` frames (lent from ours) holding this program's
    /// image and a stack, ready to [`start`](Self::start).
    pub fn create(frame_quota: u64) -> Result<Self, Error> {
        Self::create_lending(Lend {
            frames: frame_quota,
            ..Lend::default()
        })
    }

    /// As [`create`](Self::create), lent what `lend` says from our accounts: frames, and
    /// kernel memory and CPU slots too.
    pub fn create_lending(lend: Lend) -> Result<Self, Error> {
        if !entry::loaded_by_kernel() {
            // Only the first environment has the start-info page listing its image.
            return Err(Error::InvalidState);
        }
        let mut child = Child {
            environment: user::environment_create_lending(lend)?,
            frames: [Handle::SELF_ENVIRONMENT; MAX_CHILD_FRAMES],
            frame_count: 0,
        };
        // The stack first, so its top page is `frames[0]`.
        for page in 1..=CHILD_STACK_PAGES {
            let frame = child.allocate_frame()?;
            user::map(
                frame,
                child.environment,
                CHILD_STACK_TOP - page * PAGE_SIZE,
                MapFlags::WRITE,
            )?;
        }
        for page in user::start_info().pages() {
            if page.address >= USER_MAP_END || is_initial_stack(page.address) {
                continue;
            }
            let flags = MapFlags::from_bits_truncate(page.flags);
            let frame = if flags.contains(MapFlags::WRITE) {
                let copy = child.allocate_frame()?;
                fill_through_scratch(copy, |scratch| {
                    // SAFETY: `page.address` is a page of our image, mapped for our whole
                    // life; `scratch` is a page of its own that nothing else refers to. Both
                    // are a page long and do not overlap.
                    unsafe {
                        core::ptr::copy_nonoverlapping(
                            page.address as *const u8,
                            scratch,
                            PAGE_SIZE as usize,
                        );
                    }
                })?;
                copy
            } else {
                Handle::from_raw(page.frame)
            };
            user::map(frame, child.environment, page.address, flags)?;
        }
        Ok(child)
    }

    /// The child's environment capability, e.g. to grant it capabilities or map more into it.
    pub fn environment(&self) -> Handle {
        self.environment
    }

    /// Starts the child running `function(argument)`; it exits with what `function` returns.
    pub fn start(&self, function: fn(u64) -> u64, argument: u64) -> Result<(), Error> {
        // The child's entry finds `function` in its stack's top word.
        let stack_top_page = self.frames[0];
        fill_through_scratch(stack_top_page, |scratch| {
            let top_word = scratch.wrapping_add(PAGE_SIZE as usize - 8).cast::<usize>();
            // SAFETY: `scratch` is a mapped page nothing else refers to; the word is inside it.
            unsafe { top_word.write(function as usize) }
        })?;
        user::environment_start(
            self.environment,
            entry::child_entry(),
            CHILD_STACK_TOP - 8,
            argument,
        )
    }

    /// Whether the environment still exists (it has not exited or been destroyed).
    pub fn is_alive(&self) -> bool {
        user::environment_info(self.environment, EnvironmentAccount::Id).is_ok()
    }

    /// Sleeps, a tick at a time, until the environment no longer exists
    /// (yielding instead would spin whenever the child itself is asleep).
    pub fn wait(&self) {
        while self.is_alive() {
            let _ = user::wait(exo_abi::syscall::Event::TIMER, 1);
        }
    }

    /// Gives the child the CPU until it blocks (in `Wait` or `Call`):
    /// `yield_to` refuses a target that is not runnable. Panics if it never does.
    pub fn run_until_blocked(&self) {
        for _ in 0..1_000_000 {
            match user::yield_to(self.environment) {
                Ok(()) => {}
                Err(Error::NotReceiving) => return,
                Err(error) => panic!("yield_to the child: {error:?}"),
            }
        }
        panic!("the child never blocked");
    }

    /// One of the child's accounts.
    pub fn account(&self, account: EnvironmentAccount) -> Result<u64, Error> {
        user::environment_info(self.environment, account)
    }

    /// Destroys the environment (if it still exists) and gives back its frames.
    pub fn destroy(self) {
        drop(self);
    }

    fn allocate_frame(&mut self) -> Result<Handle, Error> {
        if self.frame_count == MAX_CHILD_FRAMES {
            return Err(Error::TableFull);
        }
        let (frame, _) = user::frame_allocate(0)?;
        self.frames[self.frame_count] = frame;
        self.frame_count += 1;
        Ok(frame)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // A child that exited or was destroyed already leaves a stale handle: nothing to do.
        let _ = user::environment_destroy(self.environment);
        for &frame in &self.frames[..self.frame_count] {
            // SAFETY: these frames were only ever mapped in the child and, for a moment, at
            // the scratch page, which `fill_through_scratch` unmapped again; no reference of
            // ours points into them.
            let _ = unsafe { user::capability_drop(frame) };
        }
    }
}

/// A child built with [`Child::create`] and started with [`Child::start`].
pub fn spawn(function: fn(u64) -> u64, argument: u64, frame_quota: u64) -> Result<Child, Error> {
    let child = Child::create(frame_quota)?;
    child.start(function, argument)?;
    Ok(child)
}

/// Maps `frame` writable at the scratch page, lets `fill` write it, and unmaps it again.
fn fill_through_scratch(frame: Handle, fill: impl FnOnce(*mut u8)) -> Result<(), Error> {
    user::map(
        frame,
        Handle::SELF_ENVIRONMENT,
        SPAWN_SCRATCH,
        MapFlags::WRITE,
    )?;
    fill(SPAWN_SCRATCH as *mut u8);
    // SAFETY: `fill` has returned and kept no pointer into the scratch page (it got a raw
    // pointer for the duration of the call only).
    unsafe { user::unmap(Handle::SELF_ENVIRONMENT, SPAWN_SCRATCH) }
}

/// Yields until `condition` holds — another environment, sharing a page, is
/// expected to make it so — and panics, naming `what`, after ten million
/// tries: a test must fail rather than hang.
pub fn yield_until(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..10_000_000 {
        if condition() {
            return;
        }
        user::yield_now();
    }
    panic!("gave up waiting until {what}");
}
