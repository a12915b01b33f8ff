//! Scheduling policy: which ready thread runs next.
//!
//! Pure logic, tested on the host; libos-posixish's `thread` re-exports it.
//! The mechanism (`thread/switch.rs`) asks a [`Scheduler`] two things only: take this
//! ready thread, and which one now. Everything else — stacks, blocking,
//! sleeping, preemption — stays in the mechanism, so a policy is a few dozen
//! lines and a program may bring its own (`thread::set_scheduler`; the
//! tutorial `docs/tutorial-scheduler.md` writes [`Lottery`], which
//! `custom-scheduler` installs).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
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
        // LAB 5.1 BEGIN: priority: highest level first, round robin within it
        let mut highest = self.levels.last_entry()?;
        let thread = highest.get_mut().pop_front();
        if highest.get().is_empty() {
            highest.remove();
        }
        thread
        // LAB 5.1 STUB
        // todo!("lab 5.1: take the first thread of the highest level; forget a level once empty")
        // LAB 5.1 END
    }
}

/// Lottery scheduling (Waldspurger and Weihl, OSDI 1994): a thread's
/// priority is its number of tickets (at least one); each pick draws one
/// ticket at random and its holder runs, so over many picks a thread runs in
/// proportion to its tickets and no thread with a ticket starves.
///
/// The draw is a xorshift generator (no floating point, no library), so a
/// given seed always draws the same sequence: the host test counts picks.
#[derive(Debug)]
pub struct Lottery {
    /// The ready threads with their tickets.
    ready: Vec<(ThreadId, u64)>,
    /// The generator's state; xorshift never leaves zero, so never zero.
    random: u64,
}

impl Lottery {
    /// An empty ready set whose draws start from `seed` (0 is taken as 1:
    /// xorshift from zero would draw zero forever).
    pub const fn new(seed: u64) -> Self {
        Self {
            ready: Vec::new(),
            random: if seed == 0 { 1 } else { seed },
        }
    }
}

impl Scheduler for Lottery {
    fn add(&mut self, thread: ThreadId, priority: u8) {
        self.ready.push((thread, u64::from(priority).max(1)));
    }

    fn pick(&mut self) -> Option<ThreadId> {
        // LAB 5.2 BEGIN: lottery: shares in proportion to tickets
        let total: u64 = self.ready.iter().map(|&(_, tickets)| tickets).sum();
        if total == 0 {
            return None;
        }
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        let mut winner = self.random % total;
        let index = self.ready.iter().position(|&(_, tickets)| {
            let won = winner < tickets;
            winner = winner.saturating_sub(tickets);
            won
        })?;
        // `swap_remove` reorders the others, which a lottery does not mind.
        let (thread, _) = self.ready.swap_remove(index);
        Some(thread)
        // LAB 5.2 STUB
        // todo!("lab 5.2: draw a ticket with the xorshift generator; its holder leaves the set")
        // LAB 5.2 END
    }
}

#[cfg(test)]
mod tests {
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

    /// Threads 1, 2 and 3 with 1, 3 and 9 tickets, always ready (each picked
    /// thread goes straight back, as a busy thread preempted at a slot start
    /// does): each should win about its share of 13 tickets.
    #[test]
    fn lottery_shares_follow_tickets() {
        const TICKETS: [u8; 3] = [1, 3, 9];
        const PICKS: u64 = 13_000;
        let mut scheduler = Lottery::new(0x2545_f491_4f6c_dd1d);
        for (thread, &tickets) in (1..).zip(&TICKETS) {
            scheduler.add(ThreadId(thread), tickets);
        }
        let mut wins = [0u64; 3];
        for _ in 0..PICKS {
            let thread = scheduler.pick().expect("three threads are ready");
            wins[thread.0 as usize - 1] += 1;
            scheduler.add(thread, TICKETS[thread.0 as usize - 1]);
        }
        let total_tickets: u64 = TICKETS.iter().map(|&tickets| u64::from(tickets)).sum();
        for (won, &tickets) in wins.iter().zip(&TICKETS) {
            let expected = PICKS * u64::from(tickets) / total_tickets;
            // Within 10% of the expected share (a fixed seed: the same
            // counts every run; a fair draw lands well inside).
            assert!(
                won.abs_diff(expected) * 10 <= expected,
                "tickets {TICKETS:?} won {wins:?}, expected about {expected} for {tickets}"
            );
        }
    }

    #[test]
    fn lottery_gives_a_ticketless_thread_one_ticket_and_empties() {
        let mut scheduler = Lottery::new(0);
        scheduler.add(ThreadId(4), 0);
        assert_eq!(scheduler.pick(), Some(ThreadId(4)));
        assert_eq!(scheduler.pick(), None);
    }

    #[test]
    fn thread_ids_print_as_numbers() {
        assert_eq!(alloc::format!("{}", ThreadId(42)), "42");
        assert_eq!(ThreadId::MAIN, ThreadId(0));
    }
}
