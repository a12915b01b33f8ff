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
//!
//! Asked to [`probe`](Witness::probe), it makes the calls an attack on kernel memory
//! would break first for everyone else: a 4 KiB `ConsoleWrite` (the largest) and a full
//! `MapBatch` (512 requests) into itself, and reports how they went.
//!
//! It reports in a page of its parent's at [`PAGE`], the managed window's second page (a
//! program that starts a witness leaves that page to it); the page goes when it stops.

use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::{MAX_BATCH, MapFlags};
use exo_abi::syscall::Event;
use exo_abi::{Error, Handle, user};

use super::shared::Words;
use super::{batch, flags};
use crate::layout::MANAGED_START;
use crate::spawn::Child;
use crate::{facts, memory};

/// Words of the witness's page.
const ROUNDS: u64 = 0;
const SLOTS_RUN: u64 = 1;
const BAD_FLAGS_SEEN: u64 = 2;
const LAST_BAD_FLAGS: u64 = 3;
const PROBES_ASKED: u64 = 4;
const PROBES_DONE: u64 = 5;
/// 0, or what went wrong in the last probe ([`Witness::probe`]).
const PROBE_OUTCOME: u64 = 6;

/// Frames a witness may hold: its image and stack, and the page tables and frame of a
/// probe, with a kernel-memory allowance (the default for the quota) for a full batch.
pub const QUOTA: u64 = 1024;
/// Where a probe maps its batch (2 MiB aligned: one page table).
const PROBE_PAGES: u64 = MANAGED_START + 0x40_0000_0000;
/// The bytes a probe writes to the console, the most one `ConsoleWrite` takes.
const PROBE_WRITE: usize = 4096;
/// How long a probe may take, in ticks.
const PROBE_TICKS: u64 = 10_000;

/// Where a witness's parent and the witness share the page it reports in.
pub const PAGE: u64 = MANAGED_START + PAGE_SIZE;

/// A running witness and the page it reports in.
#[derive(Debug)]
pub struct Witness {
    child: Child,
    words: Words,
    /// The frame of the page, ours.
    page: Handle,
}

impl Witness {
    /// Starts a witness that may hold [`QUOTA`] frames, reporting in a fresh page at
    /// [`PAGE`] (one witness at a time).
    pub fn start() -> Result<Self, Error> {
        let words = Words::at(PAGE);
        let page = words.allocate()?;
        words.clear();
        let child = Child::create(QUOTA)?;
        words.share_with(page, child.environment())?;
        child.start(run, words.address())?;
        Ok(Self { child, words, page })
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

    /// Asks it for a 4 KiB console write and a full `MapBatch` into itself and waits until
    /// it has made them; `Err` says what went wrong: an error code, or `PROBE_SHORT + n`
    /// if the batch mapped only `n` of its requests.
    pub fn probe(&self) -> Result<(), u64> {
        let asked = self.words.read(PROBES_ASKED) + 1;
        self.words.write(PROBES_ASKED, asked);
        let deadline = facts::ticks() + PROBE_TICKS;
        while self.words.read(PROBES_DONE) != asked {
            assert!(self.is_alive(), "the witness died in a probe");
            assert!(
                facts::ticks() < deadline,
                "the witness never made its probe"
            );
            let _ = user::wait(Event::TIMER, 1);
        }
        match self.words.read(PROBE_OUTCOME) {
            0 => Ok(()),
            outcome => Err(outcome),
        }
    }

    /// Destroys it and gives back its frames and the page it reported in.
    pub fn stop(self) {
        self.child.destroy();
        memory::drop_capability(self.page).expect("drop the witness's page");
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
        let asked = words.read(PROBES_ASKED);
        if words.read(PROBES_DONE) != asked {
            words.write(PROBE_OUTCOME, probe().err().unwrap_or(0));
            words.write(PROBES_DONE, asked);
        }
    }
}

/// What `Witness::probe` reports, past the error codes, when a batch mapped only part.
pub const PROBE_SHORT: u64 = 1 << 32;

/// The probe: a full console write, then a full batch of mappings of one fresh frame,
/// which go again with the frame.
fn probe() -> Result<(), u64> {
    let mut line = [b' '; PROBE_WRITE];
    let text = b"witness: one console write of 4096 bytes";
    line[..text.len()].copy_from_slice(text);
    line[PROBE_WRITE - 1] = b'\n';
    match user::console_write(&line) {
        Ok(PROBE_WRITE) => {}
        Ok(written) => return Err(PROBE_SHORT + written as u64),
        Err(error) => return Err(error.code()),
    }
    let (frame, _) = user::frame_allocate(0).map_err(Error::code)?;
    let pages = (0..MAX_BATCH).map(|page| PROBE_PAGES + page * PAGE_SIZE);
    let (mapped, outcome) =
        batch::map_frame_at(Handle::SELF_ENVIRONMENT, frame, pages, MapFlags::empty());
    let dropped = memory::drop_capability(frame);
    outcome.map_err(Error::code)?;
    dropped.map_err(Error::code)?;
    if mapped != MAX_BATCH {
        return Err(PROBE_SHORT + mapped);
    }
    Ok(())
}
