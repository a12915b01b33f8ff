//! A witness: a child that only runs and counts, so that a test can see an attack did not
//! stop, starve or disturb anyone else.
//!
//! It loops without a system call — so the timer is the only thing that takes the CPU
//! from it, and it is always a preempted environment another may `YieldTo` — and in each
//! round counts one more round, copies its facts page's `slots_run`, and checks its own
//! RFLAGS: the flags that change what code does (`flags::CONTROL_FLAGS`: TF, DF, NT, AC,
//! ID) must be clear and ring 3's invariant must hold, since it never sets any of them. A
//! flag another environment left in the kernel and the kernel carried over would show
//! here.

use exo_abi::{Error, Handle};

use super::flags;
use super::shared::Words;
use crate::facts;
use crate::spawn::{self, Child};

/// Words of the witness's page.
const ROUNDS: u64 = 0;
const SLOTS_RUN: u64 = 1;
const BAD_FLAGS_SEEN: u64 = 2;
const LAST_BAD_FLAGS: u64 = 3;

/// A running witness and the page it reports in.
#[derive(Debug)]
pub struct Witness {
    child: Child,
    words: Words,
}

impl Witness {
    /// Starts a witness that may hold `frame_quota` frames and reports in `words`, a page
    /// of ours whose frame is `page`. It shares the page with nobody else.
    pub fn start(page: Handle, words: Words, frame_quota: u64) -> Result<Self, Error> {
        words.clear();
        let child = Child::create(frame_quota)?;
        words.share_with(page, child.environment())?;
        child.start(run, words.address())?;
        Ok(Self { child, words })
    }

    /// Its environment capability.
    pub fn environment(&self) -> Handle {
        self.child.environment()
    }

    pub fn is_alive(&self) -> bool {
        self.child.is_alive()
    }

    /// Rounds of its loop so far.
    pub fn rounds(&self) -> u64 {
        self.words.read(ROUNDS)
    }

    /// Its facts page's `slots_run`, as it last copied it.
    pub fn slots_run(&self) -> u64 {
        self.words.read(SLOTS_RUN)
    }

    /// Rounds in which it found a flag set it never set, and the last such RFLAGS.
    pub fn bad_flags(&self) -> (u64, u64) {
        (
            self.words.read(BAD_FLAGS_SEEN),
            self.words.read(LAST_BAD_FLAGS),
        )
    }

    /// Waits (sleeping a tick at a time) until it has run `rounds` more rounds than now;
    /// panics, naming `after`, if it does not within `ticks` ticks.
    pub fn expect_progress(&self, rounds: u64, ticks: u64, after: &str) {
        let start = self.rounds();
        let deadline = facts::ticks() + ticks;
        while self.rounds() < start + rounds {
            assert!(
                facts::ticks() < deadline,
                "the witness made {} rounds in {ticks} ticks after {after}, fewer than {rounds}",
                self.rounds() - start
            );
            let _ = exo_abi::user::wait(exo_abi::syscall::Event::TIMER, 1);
        }
    }

    /// Checks it is alive and never saw a flag it did not set; panics otherwise.
    pub fn check_unharmed(&self, after: &str) {
        assert!(self.is_alive(), "the witness is gone after {after}");
        let (seen, last) = self.bad_flags();
        assert!(
            seen == 0,
            "the witness saw flags it never set {seen} times after {after} (last RFLAGS {last:#x})"
        );
    }

    /// Destroys it and gives back its frames.
    pub fn stop(self) {
        self.child.destroy();
    }
}

/// The witness's loop.
fn run(address: u64) -> u64 {
    let words = Words::at(address);
    loop {
        let rflags = flags::read();
        if rflags & flags::CONTROL_FLAGS != 0 || !flags::ring3_invariant_holds(rflags) {
            words.add(BAD_FLAGS_SEEN, 1);
            words.write(LAST_BAD_FLAGS, rflags);
        }
        words.add(ROUNDS, 1);
        words.write(SLOTS_RUN, facts::slots_run());
    }
}

/// Starts a witness, as [`Witness::start`], with the spawn module's defaults.
pub fn start(page: Handle, words: Words) -> Result<Witness, Error> {
    Witness::start(page, words, spawn::MAX_CHILD_FRAMES as u64 * 2)
}
