//! User-level threads: many threads in one process, scheduled by the
//! library OS inside the CPU time the kernel gives the process.
//!
//! The kernel knows one context per environment. With
//! `UpcallOptions::SCHEDULER` it enters the process's upcall handler at the
//! start of every slot the process gets; this module preempts the running
//! thread there and lets a [`Scheduler`] policy choose the next one. Threads
//! also switch when they yield, sleep, join, or wait on a [`Mutex`] or a
//! [`Condvar`]: a waiting thread is parked, not spinning.
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | the API: `spawn`, `JoinHandle`, `yield_now`, `sleep`, `current_id` |
//! | `policy/src/scheduler.rs` (the `posixish-policy` crate, tested on the host) | [`ThreadId`], the [`Scheduler`] trait, [`RoundRobin`], [`Priority`] and [`Lottery`] |
//! | `switch.rs` | the mechanism: thread records, switching, preemption, races with the upcall |
//! | `sync.rs` | [`Mutex`] and [`Condvar`] |
//!
//! The policy is chosen per program, before it spawns (default
//! [`RoundRobin`]): `thread::set_scheduler(Box::new(Priority::new()))`.
//!
//! Limits: a thread's stack is 64 KiB on the heap with a canary word at the
//! bottom, checked at every switch, not a guard page; a thread that makes a
//! blocking system call (`process::wait`, `user::wait`) blocks the whole
//! process; a panic in any thread ends the process.

mod switch;
mod sync;

use alloc::boxed::Box;
use core::sync::atomic::Ordering;

pub use posixish_policy::scheduler::{Lottery, Priority, RoundRobin, Scheduler, ThreadId};
pub use switch::STACK_BYTES;
pub use switch::after_fork_in_child;
pub(crate) use switch::{on_slice_start, set_idle_path};
pub use sync::{Condvar, Mutex, MutexGuard};

use crate::Errno;
pub(crate) use switch::{Leaving, NoPreemption, switch_away};
pub(crate) use sync::WaitQueue;

/// The priority of the main thread and of threads from [`spawn`].
pub const NORMAL_PRIORITY: u8 = 128;

/// Starts a thread running `work`, at [`NORMAL_PRIORITY`]. It is ready at
/// once and runs when the policy picks it.
pub fn spawn(work: impl FnOnce() + Send + 'static) -> JoinHandle {
    spawn_with_priority(NORMAL_PRIORITY, work)
}

/// [`spawn`] with a priority (higher is more important). [`Priority`]
/// obeys it; [`RoundRobin`] ignores it.
pub fn spawn_with_priority(priority: u8, work: impl FnOnce() + Send + 'static) -> JoinHandle {
    JoinHandle {
        id: switch::create(priority, Box::new(work)),
    }
}

/// A spawned thread. Dropping it without `join` detaches the thread.
#[derive(Debug)]
pub struct JoinHandle {
    id: ThreadId,
}

impl JoinHandle {
    pub fn id(&self) -> ThreadId {
        self.id
    }

    /// Waits (parked) until the thread has finished.
    pub fn join(self) {
        switch::join(self.id);
    }
}

impl Drop for JoinHandle {
    fn drop(&mut self) {
        switch::detach(self.id);
    }
}

/// Lets the policy run another ready thread; returns when this one is
/// picked again (at once if no other is ready).
pub fn yield_now() {
    let off = NoPreemption::new();
    switch::switch_away(&off, Leaving::Ready);
}

/// Sleeps until at least `ticks` timer ticks have passed: the thread is not
/// scheduled before the facts page's tick count reaches its deadline. When
/// every thread sleeps, the process waits in the kernel (`Wait(TIMER)`)
/// rather than spinning.
pub fn sleep(ticks: u64) {
    if ticks == 0 {
        return yield_now();
    }
    let until = crate::facts::ticks().saturating_add(ticks);
    let off = NoPreemption::new();
    switch::switch_away(&off, Leaving::Sleeping(until));
}

/// Sets the calling thread's priority (higher is more important), used
/// from its next time slice on.
pub fn set_priority(priority: u8) {
    switch::set_priority(priority);
}

/// The calling thread's id.
pub fn current_id() -> ThreadId {
    switch::current()
}

/// Timer ticks since boot (the clock [`sleep`] counts in), from the facts page.
pub fn ticks() -> u64 {
    crate::facts::ticks()
}

/// Timer ticks per second, from the facts page.
pub fn ticks_per_second() -> u64 {
    exo_abi::user::fact(|facts| &facts.ticks_per_second)
}

/// Makes `scheduler` the process's thread policy. Call it before spawning:
/// it is refused with `EAGAIN` while any thread but the caller is alive.
pub fn set_scheduler(scheduler: Box<dyn Scheduler>) -> Result<(), Errno> {
    if switch::set_scheduler(scheduler) {
        Ok(())
    } else {
        Err(Errno::EAGAIN)
    }
}

/// Counts since the process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statistics {
    /// Switches from one thread to another, for any reason.
    pub switches: u64,
    /// Slot starts that preempted a thread (whether or not another ran).
    pub preemptions: u64,
    /// Times no thread was ready, so the process waited in the kernel
    /// (`Wait(TIMER)`) for the first sleeper's deadline.
    pub idle_waits: u64,
}

/// The thread library's counts so far.
pub fn statistics() -> Statistics {
    Statistics {
        switches: switch::SWITCHES.load(Ordering::Relaxed),
        preemptions: switch::PREEMPTIONS.load(Ordering::Relaxed),
        idle_waits: switch::IDLE_WAITS.load(Ordering::Relaxed),
    }
}
