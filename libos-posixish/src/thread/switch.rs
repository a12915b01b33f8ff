//! The mechanism under threads: their records, switching between them, and
//! preemption at slot starts. It asks the [`Scheduler`] which thread runs;
//! it never decides that itself.
//!
//! **One way to switch.** Every switch is a call: a thread calls
//! [`switch_away`], which takes the next thread from the policy and calls
//! `raw::switch_threads` (save the callee-saved registers on this stack,
//! load the other stack, return there). Only callee-saved registers need
//! keeping, because the switch is an ordinary function call.
//!
//! **Preemption becomes a call.** At a slot start the kernel enters the
//! upcall handler with the interrupted registers. [`on_slice_start`] does
//! not switch there, on the exception stack: it keeps the interrupted
//! registers in [`PREEMPTED`] and edits the frame so that, when the handler
//! returns, the thread itself calls [`preempted`] on its own stack (below
//! where it was interrupted, like a Unix signal handler). That function
//! yields like any thread would, and when the thread is picked again,
//! resumes the interrupted registers with `exo_abi::user::resume` — all of
//! them, `rip`, `rsp` and `rflags` included, without entering the kernel.
//! So the scheduler never runs on the exception stack, where a page fault
//! (a growing heap) would destroy the environment.
//!
//! **Races with the upcall.** The running thread sets [`PREEMPTION_OFF`]
//! (through a [`NoPreemption`] guard) around every touch of the scheduler's
//! state and across the switch itself; the thread switched to clears it. A
//! slot start that finds it set, or finds the heap's lock held (the next
//! thread might allocate and spin on it for ever), only notes
//! [`SWITCH_WANTED`] and returns: the switch happens when the critical
//! section ends, or at the next slot start. Only the running thread writes
//! the flag, and the handler runs between two of its instructions and
//! leaves the flag as it found it, so a plain atomic flag is enough on one
//! CPU. The state's lock is a `try_lock`: finding it taken is a bug, and
//! panics rather than spinning.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use exo_abi::syscall::{Event, UpcallOptions};
use exo_abi::trace::Kind;
use exo_abi::upcall::{Registers, UpcallFrame, UpcallReason};
use exo_abi::user;

use super::{NORMAL_PRIORITY, RoundRobin, Scheduler, ThreadId};
use crate::{facts, heap, paging, raw, upcall_handler};

/// Bytes of stack a spawned thread gets.
pub const STACK_BYTES: usize = 64 * 1024;
const STACK_WORDS: usize = STACK_BYTES / 8;
/// The lowest word of a spawned thread's stack; if a switch finds it
/// changed, the thread overflowed its stack (there is no guard page).
const CANARY: u64 = u64::from_le_bytes(*b"stackend");
/// Bytes below an interrupted `rsp` that the preempted thread's code may
/// still use (the System V red zone; this target disables it, but the
/// handler does not rely on that).
const RED_ZONE: u64 = 128;
/// `rflags` for the call to [`preempted`]: interrupts on, and the direction
/// flag clear as the ABI wants at a call (the thread may have been
/// interrupted inside a backward `rep movsb`); the thread's own flags come
/// back when it resumes.
const CALL_RFLAGS: u64 = 0x202;

/// Set while the running thread is in a scheduler critical section.
static PREEMPTION_OFF: AtomicBool = AtomicBool::new(false);
/// A slot start came while preemption was off: switch when it is back on.
static SWITCH_WANTED: AtomicBool = AtomicBool::new(false);
/// Whether slot-start upcalls were asked for (at the first spawn).
static PREEMPTION_STARTED: AtomicBool = AtomicBool::new(false);
/// The registers a slot start interrupted, from the handler to [`preempted`].
static PREEMPTED: spin::Mutex<Option<Registers>> = spin::Mutex::new(None);
/// The running thread (read without the state's lock).
static CURRENT: AtomicU64 = AtomicU64::new(ThreadId::MAIN.0);
/// Where a finishing thread's stack pointer goes: nobody resumes it.
static DISCARDED: AtomicU64 = AtomicU64::new(0);
/// Switches between threads, and of those how many were preemptions.
pub static SWITCHES: AtomicU64 = AtomicU64::new(0);
pub static PREEMPTIONS: AtomicU64 = AtomicU64::new(0);
/// Times no thread was ready and the process waited in the kernel.
pub static IDLE_WAITS: AtomicU64 = AtomicU64::new(0);

static STATE: spin::Mutex<Option<State>> = spin::Mutex::new(None);

/// What the idle path asks before sleeping a tick at a time: a function
/// that, with every thread blocked or asleep, waits for something else that
/// wakes threads (the network stack's frames and timers, `net`) and returns
/// whether it waited. Set by the layer above that owns the waiting, so that
/// this module names nothing above it.
type IdlePath = fn(&NoPreemption, Option<u64>) -> bool;
static IDLE_PATH: spin::Once<IdlePath> = spin::Once::new();

/// Names the idle path (the first call wins; `net` calls it when it makes
/// its stack).
pub fn set_idle_path(idle: IdlePath) {
    IDLE_PATH.call_once(|| idle);
}

/// Preemption is off while this lives; dropping the outermost one turns it
/// back on and performs a switch a slot start asked for meanwhile. Holding
/// one is the proof [`switch_away`] and the wait queues ask for.
#[derive(Debug)]
pub struct NoPreemption {
    was_off: bool,
}

impl NoPreemption {
    pub fn new() -> Self {
        Self {
            was_off: PREEMPTION_OFF.swap(true, Ordering::SeqCst),
        }
    }
}

impl Drop for NoPreemption {
    fn drop(&mut self) {
        if !self.was_off {
            preemption_on();
        }
    }
}

/// Turns preemption back on; if a slot start was deferred, yields now.
fn preemption_on() {
    PREEMPTION_OFF.store(false, Ordering::SeqCst);
    if SWITCH_WANTED.swap(false, Ordering::SeqCst) {
        let off = NoPreemption::new();
        switch_away(&off, Leaving::Ready);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Running,
    Ready,
    Blocked,
    Finished,
}

struct Thread {
    /// Its stack pointer while it is switched out.
    saved_rsp: Arc<AtomicU64>,
    /// Its stack (`None` for the main thread, on the process stack).
    stack: Option<Vec<u64>>,
    priority: u8,
    status: Status,
    /// The closure it runs, until it starts.
    entry: Option<Box<dyn FnOnce() + Send>>,
    /// A thread blocked in `join` on it.
    joiner: Option<ThreadId>,
    /// Its `JoinHandle` is gone: forget it as soon as it finishes.
    detached: bool,
}

struct State {
    scheduler: Box<dyn Scheduler>,
    /// The live threads by id, in the order they were made: ids only grow,
    /// so a new one goes at the end and a lookup is a binary search. A
    /// process has a handful; a `BTreeMap` did the same with a few KiB more
    /// code in every program.
    threads: Vec<(ThreadId, Thread)>,
    /// Sleeping threads and the tick each may run again at.
    sleepers: Vec<(u64, ThreadId)>,
    /// Stacks of finished threads, freed once no thread runs on them.
    dead_stacks: Vec<Vec<u64>>,
    next_id: u64,
}

impl State {
    fn new() -> Self {
        let main = Thread {
            saved_rsp: Arc::new(AtomicU64::new(0)),
            stack: None,
            priority: NORMAL_PRIORITY,
            status: Status::Running,
            entry: None,
            joiner: None,
            detached: true,
        };
        Self {
            scheduler: Box::new(RoundRobin::new()),
            threads: alloc::vec![(ThreadId::MAIN, main)],
            sleepers: Vec::new(),
            dead_stacks: Vec::new(),
            next_id: ThreadId::MAIN.0 + 1,
        }
    }

    /// Where thread `id` is in `threads`, if it lives.
    fn position(&self, id: ThreadId) -> Option<usize> {
        self.threads.binary_search_by_key(&id, |&(id, _)| id).ok()
    }

    fn find(&mut self, id: ThreadId) -> Option<&mut Thread> {
        let at = self.position(id)?;
        Some(&mut self.threads[at].1)
    }

    fn thread(&mut self, id: ThreadId) -> &mut Thread {
        self.find(id).expect("a live thread")
    }

    /// Forgets thread `id`'s record.
    fn remove(&mut self, id: ThreadId) {
        if let Some(at) = self.position(id) {
            self.threads.remove(at);
        }
    }

    /// Makes a blocked thread ready. A thread may be woken for a wait it
    /// has left already (a sleeper woken early, then finished): nothing.
    fn wake(&mut self, id: ThreadId) {
        let Some(thread) = self.find(id) else {
            return;
        };
        if thread.status == Status::Blocked {
            thread.status = Status::Ready;
            let priority = thread.priority;
            self.scheduler.add(id, priority);
        }
    }

    fn wake_sleepers(&mut self, now: u64) {
        let (due, sleeping) = self
            .sleepers
            .drain(..)
            .partition(|&(until, _)| until <= now);
        self.sleepers = sleeping;
        for (_, id) in due {
            self.wake(id);
        }
    }

    /// Records how the running thread `me` stops running.
    fn leave(&mut self, me: ThreadId, leaving: Leaving) {
        let thread = self.thread(me);
        if let Some(stack) = &thread.stack {
            assert_eq!(stack[0], CANARY, "thread {me} overflowed its stack");
        }
        match leaving {
            Leaving::Ready => {
                thread.status = Status::Ready;
                let priority = thread.priority;
                self.scheduler.add(me, priority);
            }
            Leaving::Blocked => thread.status = Status::Blocked,
            Leaving::Sleeping(until) => {
                thread.status = Status::Blocked;
                self.sleepers.push((until, me));
            }
            Leaving::Finished => {
                thread.status = Status::Finished;
                let (joiner, detached, stack) =
                    (thread.joiner, thread.detached, thread.stack.take());
                self.dead_stacks.extend(stack);
                if let Some(joiner) = joiner {
                    self.wake(joiner);
                }
                if detached {
                    self.remove(me);
                }
            }
        }
    }
}

/// Runs `work` on the scheduler's state (created on first use, with the
/// main thread). Needs preemption off, which `_off` proves.
fn with_state<R>(_off: &NoPreemption, work: impl FnOnce(&mut State) -> R) -> R {
    let mut state = STATE
        .try_lock()
        .expect("the thread scheduler was re-entered (from a Scheduler method?)");
    work(state.get_or_insert_with(State::new))
}

/// How the running thread stops running.
#[derive(Clone, Copy, Debug)]
pub enum Leaving {
    /// It can go on: back to the policy (a yield, or its slice ended).
    Ready,
    /// It waits for another thread to wake it (it put itself on a queue).
    Blocked,
    /// It sleeps until the tick given.
    Sleeping(u64),
    /// It has finished; it never runs again.
    Finished,
}

/// Stops running the current thread as `leaving` says and runs the thread
/// the policy picks, or, if none is ready, sleeps the whole process until
/// the first sleeper is due. Returns when this thread is picked again.
pub fn switch_away(off: &NoPreemption, leaving: Leaving) {
    let me = current();
    with_state(off, |state| state.leave(me, leaving));
    loop {
        let now = facts::ticks();
        let step = with_state(off, |state| {
            state.wake_sleepers(now);
            let Some(next) = state.scheduler.pick() else {
                return Err(state.sleepers.iter().map(|&(until, _)| until).min());
            };
            SWITCH_WANTED.store(false, Ordering::SeqCst);
            let thread = state.thread(next);
            thread.status = Status::Running;
            if next == me {
                return Ok(None);
            }
            let next_rsp = thread.saved_rsp.load(Ordering::SeqCst);
            // A finishing thread keeps nothing on the stack it leaves for good.
            let save = match leaving {
                Leaving::Finished => None,
                _ => Some(state.thread(me).saved_rsp.clone()),
            };
            CURRENT.store(next.0, Ordering::SeqCst);
            exo_abi::user::trace(Kind::ThreadSwitch, [me.0, next.0]);
            Ok(Some((save, next_rsp)))
        });
        match step {
            Ok(None) => return,
            Ok(Some((save, next_rsp))) => {
                SWITCHES.fetch_add(1, Ordering::Relaxed);
                let save = save.as_deref().unwrap_or(&DISCARDED);
                // SAFETY: `next_rsp` is what the next thread's last switch
                // stored (it was not `Running`, so it has not run since), or
                // its fresh stack's top as `create` lays it out; a finished
                // thread's stack waits in `dead_stacks` until another thread
                // runs, off it for good.
                #[allow(unsafe_code)]
                unsafe {
                    raw::switch_threads(save, next_rsp);
                }
                break;
            }
            // Every thread blocked or asleep: let the kernel run others until
            // the first sleeper is due or, if threads wait on the network,
            // frames arrive.
            Err(first_due) => {
                IDLE_WAITS.fetch_add(1, Ordering::Relaxed);
                let timeout = first_due.map(|until| until.saturating_sub(now).max(1));
                if !IDLE_PATH.get().is_some_and(|idle| idle(off, timeout)) {
                    let Some(timeout) = timeout else {
                        panic!("thread {me}: every thread is blocked for ever (deadlock)");
                    };
                    let _ = user::wait(Event::TIMER, timeout);
                }
            }
        }
    }
    // Running again: whoever switched here is off its stack now.
    with_state(off, |state| state.dead_stacks.clear());
}

/// The running thread's id.
pub fn current() -> ThreadId {
    ThreadId(CURRENT.load(Ordering::SeqCst))
}

/// Makes blocked thread `id` ready.
pub fn wake(off: &NoPreemption, id: ThreadId) {
    with_state(off, |state| state.wake(id));
}

/// Creates a thread that will run `entry` on a fresh stack; it is ready at
/// once. Starts preemption if this is the first.
pub fn create(priority: u8, entry: Box<dyn FnOnce() + Send>) -> ThreadId {
    let mut stack = alloc::vec![0u64; STACK_WORDS];
    stack[0] = CANARY;
    // The top, 16-byte aligned; `ret` into `thread_entry` leaves rsp at
    // `top - 8`, as if it had been called.
    let base = stack.as_ptr() as u64;
    let top = (base + STACK_BYTES as u64) & !15;
    let return_address = ((top - 16 - base) / 8) as usize;
    stack[return_address] = thread_entry as *const () as u64;
    let rsp = top - 16 - 8 * (raw::NEW_STACK_WORDS as u64 - 1);

    let off = NoPreemption::new();
    let id = with_state(&off, |state| {
        let id = ThreadId(state.next_id);
        state.next_id += 1;
        let thread = Thread {
            saved_rsp: Arc::new(AtomicU64::new(rsp)),
            stack: Some(stack),
            priority,
            status: Status::Ready,
            entry: Some(entry),
            joiner: None,
            detached: false,
        };
        state.threads.push((id, thread));
        state.scheduler.add(id, priority);
        id
    });
    if !PREEMPTION_STARTED.swap(true, Ordering::SeqCst) {
        upcall_handler::register(UpcallOptions::SCHEDULER).expect("ask for slot-start upcalls");
    }
    id
}

/// Where a new thread starts: `switch_threads` returns here, with
/// preemption off as after every switch.
extern "C" fn thread_entry() -> ! {
    let off = NoPreemption { was_off: false };
    let entry = with_state(&off, |state| {
        state.dead_stacks.clear();
        state.thread(current()).entry.take()
    });
    drop(off);
    entry.expect("a new thread's closure")();
    let off = NoPreemption::new();
    switch_away(&off, Leaving::Finished);
    unreachable!("a finished thread was resumed");
}

/// Blocks in `join` until thread `id` has finished.
pub fn join(id: ThreadId) {
    let off = NoPreemption::new();
    let me = current();
    let finished = with_state(&off, |state| {
        let thread = state.thread(id);
        let finished = thread.status == Status::Finished;
        if !finished {
            thread.joiner = Some(me);
        }
        finished
    });
    if !finished {
        switch_away(&off, Leaving::Blocked);
    }
}

/// Forgets thread `id` once finished (its `JoinHandle` is gone).
pub fn detach(id: ThreadId) {
    let off = NoPreemption::new();
    with_state(&off, |state| {
        let thread = state.thread(id);
        if thread.status == Status::Finished {
            state.remove(id);
        } else {
            thread.detached = true;
        }
    });
}

/// Changes the running thread's priority (it is not in the ready set now,
/// so the policy learns it at the next `add`).
pub fn set_priority(priority: u8) {
    let off = NoPreemption::new();
    with_state(&off, |state| state.thread(current()).priority = priority);
}

/// In a child just made by `fork`: only the thread that forked exists (as
/// POSIX has it). Forgets the others — their stacks are the child's copies —
/// and the slot-start upcalls, which the child has not asked for.
pub fn after_fork_in_child() {
    let off = NoPreemption::new();
    with_state(&off, |state| {
        let me = current();
        while state.scheduler.pick().is_some() {}
        state.sleepers.clear();
        state.threads.retain(|&(id, _)| id == me);
    });
    SWITCH_WANTED.store(false, Ordering::SeqCst);
    PREEMPTION_STARTED.store(false, Ordering::SeqCst);
}

/// Replaces the policy; refused (`false`) while another thread is alive.
pub fn set_scheduler(scheduler: Box<dyn Scheduler>) -> bool {
    let off = NoPreemption::new();
    with_state(&off, |state| {
        let me = current();
        let alone = state
            .threads
            .iter()
            .all(|(id, thread)| *id == me || thread.status == Status::Finished);
        if alone {
            state.scheduler = scheduler;
        }
        alone
    })
}

/// The `SliceStart` upcall (from `upcall_dispatch`), on the exception
/// stack: turns the interrupted thread's next instruction into a call of
/// [`preempted`], unless the thread is in a critical section, the heap or
/// the pager (whose locks another thread might then need).
pub fn on_slice_start(frame: &mut UpcallFrame) {
    if PREEMPTION_OFF.load(Ordering::SeqCst) || heap::busy() || paging::busy() {
        SWITCH_WANTED.store(true, Ordering::SeqCst);
        return;
    }
    let Some(mut preempted_registers) = PREEMPTED.try_lock() else {
        return; // cannot happen: only touched with preemption off
    };
    *preempted_registers = Some(frame.registers);
    PREEMPTION_OFF.store(true, Ordering::SeqCst);
    let registers = &mut frame.registers;
    // As if called: rsp + 8 is 16-byte aligned at the first instruction.
    registers.rsp = ((registers.rsp - RED_ZONE) & !15) - 8;
    registers.rip = preempted as *const () as u64;
    registers.rflags = CALL_RFLAGS;
}

/// A preempted thread continues here, on its own stack, with preemption off.
extern "C" fn preempted() -> ! {
    let registers = PREEMPTED
        .try_lock()
        .and_then(|mut registers| registers.take())
        .expect("the registers of a preempted thread");
    PREEMPTIONS.fetch_add(1, Ordering::Relaxed);
    let off = NoPreemption { was_off: false };
    switch_away(&off, Leaving::Ready);
    // Turns preemption on (a slot start from here on preempts this very
    // code, below it on the stack, which is fine) and resumes.
    drop(off);
    let frame = UpcallFrame {
        reason: UpcallReason::SliceStart as u64,
        info: [0; 3],
        registers,
    };
    user::resume(&frame)
}
