//! Blocking synchronisation between threads: [`Mutex`] and [`Condvar`].
//!
//! A thread that must wait puts itself on a [`WaitQueue`] and blocks; the
//! thread that changes the condition wakes it. Checking the condition,
//! queueing and blocking happen with preemption off (a `NoPreemption`), so
//! no wake-up can fall between the check and the block; the queue's own
//! lock is therefore never contended.
//!
//! The mutex keeps its data in a `spin::Mutex` used only through
//! `try_lock`: the spin lock says who holds the data, this module decides
//! what a thread that finds it held does (park, not spin).

use alloc::collections::VecDeque;
use core::ops::{Deref, DerefMut};

use super::ThreadId;
use super::switch::{self, Leaving, NoPreemption};

/// Threads blocked until someone wakes them, in arrival order.
#[derive(Debug, Default)]
pub(crate) struct WaitQueue(spin::Mutex<VecDeque<ThreadId>>);

impl WaitQueue {
    pub(crate) const fn new() -> Self {
        Self(spin::Mutex::new(VecDeque::new()))
    }

    fn queue(&self, _off: &NoPreemption) -> spin::MutexGuard<'_, VecDeque<ThreadId>> {
        self.0
            .try_lock()
            .expect("a wait queue is only used with preemption off")
    }

    /// Puts the calling thread on the queue; it must block before `off` ends.
    pub(crate) fn enqueue(&self, off: &NoPreemption) {
        self.queue(off).push_back(switch::current());
    }

    fn wake_one(&self, off: &NoPreemption) {
        let first = self.queue(off).pop_front();
        if let Some(thread) = first {
            switch::wake(off, thread);
        }
    }

    pub(crate) fn is_empty(&self, off: &NoPreemption) -> bool {
        self.queue(off).is_empty()
    }

    pub(crate) fn wake_all(&self, off: &NoPreemption) {
        let all = core::mem::take(&mut *self.queue(off));
        for thread in all {
            switch::wake(off, thread);
        }
    }
}

/// Mutual exclusion for a `T`; a thread that finds it locked is parked until
/// it is unlocked.
#[derive(Debug, Default)]
pub struct Mutex<T> {
    data: spin::Mutex<T>,
    waiters: WaitQueue,
}

impl<T> Mutex<T> {
    pub const fn new(value: T) -> Self {
        Self {
            data: spin::Mutex::new(value),
            waiters: WaitQueue::new(),
        }
    }

    /// Locks the mutex, parking the calling thread while another holds it.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        loop {
            if let Some(guard) = self.data.try_lock() {
                return MutexGuard {
                    mutex: self,
                    guard: Some(guard),
                };
            }
            let off = NoPreemption::new();
            // Unlocked since the try? Then try again; else the unlocker will
            // wake this thread, as it cannot run before it blocks.
            if self.data.is_locked() {
                self.waiters.enqueue(&off);
                switch::switch_away(&off, Leaving::Blocked);
            }
        }
    }

    /// Locks the mutex if no thread holds it.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.data.try_lock().map(|guard| MutexGuard {
            mutex: self,
            guard: Some(guard),
        })
    }
}

/// The mutex is locked while this lives; dropping it unlocks the mutex and
/// wakes one waiting thread.
#[derive(Debug)]
pub struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
    /// `Some` until dropped.
    guard: Option<spin::MutexGuard<'a, T>>,
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("a live guard")
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("a live guard")
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let off = NoPreemption::new();
        self.mutex.waiters.wake_one(&off);
    }
}

/// A condition variable: threads wait on it, with a mutex held, until
/// another notifies it. As everywhere, wake-ups may be spurious: wait in a
/// loop that checks the condition.
#[derive(Debug, Default)]
pub struct Condvar {
    waiters: WaitQueue,
}

impl Condvar {
    pub const fn new() -> Self {
        Self {
            waiters: WaitQueue::new(),
        }
    }

    /// Unlocks `guard`'s mutex and parks the calling thread until notified,
    /// as one step (no notification can come between); then locks the mutex
    /// again.
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let mutex = guard.mutex;
        let off = NoPreemption::new();
        self.waiters.enqueue(&off);
        drop(guard);
        switch::switch_away(&off, Leaving::Blocked);
        drop(off);
        mutex.lock()
    }

    /// Wakes one waiting thread, the one that has waited longest.
    pub fn notify_one(&self) {
        let off = NoPreemption::new();
        self.waiters.wake_one(&off);
    }

    /// Wakes every waiting thread.
    pub fn notify_all(&self) {
        let off = NoPreemption::new();
        self.waiters.wake_all(&off);
    }
}
