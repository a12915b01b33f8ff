//! Scheduling policy: which ready thread runs next.
//!
//! Pure logic, tested on the host; libos-posixish's `thread` re-exports it.
//! The mechanism (`thread/switch.rs`) asks a [`Scheduler`] two things only: take this
//! ready thread, and which one now. Everything else — stacks, blocking,
//! sleeping, preemption — stays in the mechanism, so a policy is a few dozen
//! lines and a program may bring its own (`thread::set_scheduler`; the
//! tutorial `docs/tutorial-scheduler.md` writes a lottery scheduler).

use alloc::collections::{BTreeMap, VecDeque};
use core::fmt;

/// A thread's id, unique in the process; the main thread is 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ThreadId(pub u64);

impl ThreadId {
    /// The thread `main` runs on.
    pub const MAIN: ThreadId = ThreadId(0);
}

impl fmt::Display for ThreadId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

/// A thread scheduling policy: the set of threads ready to run, and the
/// choice among them.
///
/// A thread is in the ready set from [`add`](Scheduler::add) until
/// [`pick`](Scheduler::pick) returns it; it runs, and when it stops running
/// but can go on (its time slice ended, or it yielded) it is added again.
/// Blocked, sleeping and finished threads are never in the set, so a policy
/// needs no `remove`.
///
/// The mechanism calls these with preemption off and its own state locked:
/// they may allocate, but must not block, yield or spawn (the library panics
/// if they do), and should be quick — they run at every switch.
pub trait Scheduler: Send {
    /// `thread` is ready: new, woken, preempted or yielding. `priority` is
    /// what it was spawned with (higher is more important); a policy may
    /// read it as it likes, or ignore it.
    fn add(&mut self, thread: ThreadId, priority: u8);

    /// Takes the thread to run next out of the ready set; `None` if no
    /// thread is ready (then the process sleeps until a sleeper is due).
    fn pick(&mut self) -> Option<ThreadId>;
}

/// Every ready thread in turn, first come first served; priorities ignored.
#[derive(Debug, Default)]
pub struct RoundRobin {
    ready: VecDeque<ThreadId>,
}

impl RoundRobin {
    pub const fn new() -> Self {
        Self {
            ready: VecDeque::new(),
        }
    }
}

impl Scheduler for RoundRobin {
    fn add(&mut self, thread: ThreadId, _priority: u8) {
        self.ready.push_back(thread);
    }

    fn pick(&mut self) -> Option<ThreadId> {
        self.ready.pop_front()
    }
}

/// Strict priority: a ready thread of a higher priority always runs before
/// one of a lower; threads of the same priority take turns (round robin).
/// A busy high-priority thread starves every lower one — by design.
#[derive(Debug, Default)]
pub struct Priority {
    /// Per priority with a ready thread, its threads in arrival order.
    levels: BTreeMap<u8, VecDeque<ThreadId>>,
}

impl Priority {
    pub const fn new() -> Self {
        Self {
            levels: BTreeMap::new(),
        }
    }
}

impl Scheduler for Priority {
    fn add(&mut self, thread: ThreadId, priority: u8) {
        self.levels.entry(priority).or_default().push_back(thread);
    }

    fn pick(&mut self) -> Option<ThreadId> {
        let mut highest = self.levels.last_entry()?;
        let thread = highest.get_mut().pop_front();
        if highest.get().is_empty() {
            highest.remove();
        }
        thread
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;

    fn drain(scheduler: &mut dyn Scheduler) -> Vec<u64> {
        core::iter::from_fn(|| scheduler.pick())
            .map(|thread| thread.0)
            .collect()
    }

    #[test]
    fn round_robin_takes_threads_in_arrival_order_and_ignores_priority() {
        let mut scheduler = RoundRobin::new();
        for (thread, priority) in [(1, 10), (2, 200), (3, 0)] {
            scheduler.add(ThreadId(thread), priority);
        }
        assert_eq!(scheduler.pick(), Some(ThreadId(1)));
        // A preempted thread goes to the back.
        scheduler.add(ThreadId(1), 10);
        assert_eq!(drain(&mut scheduler), [2, 3, 1]);
        assert_eq!(scheduler.pick(), None);
    }

    #[test]
    fn priority_runs_higher_first_and_takes_turns_within_a_level() {
        let mut scheduler = Priority::new();
        for (thread, priority) in [(1, 1), (2, 9), (3, 5), (4, 9), (5, 1)] {
            scheduler.add(ThreadId(thread), priority);
        }
        assert_eq!(scheduler.pick(), Some(ThreadId(2)));
        scheduler.add(ThreadId(2), 9);
        assert_eq!(drain(&mut scheduler), [4, 2, 3, 1, 5]);
        assert_eq!(scheduler.pick(), None);
    }

    #[test]
    fn an_empty_level_is_forgotten() {
        let mut scheduler = Priority::new();
        scheduler.add(ThreadId(7), 3);
        assert_eq!(scheduler.pick(), Some(ThreadId(7)));
        assert!(scheduler.levels.is_empty());
    }

    #[test]
    fn thread_ids_print_as_numbers() {
        assert_eq!(alloc::format!("{}", ThreadId(42)), "42");
        assert_eq!(ThreadId::MAIN, ThreadId(0));
    }
}
