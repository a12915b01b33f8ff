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
//! Started [holding slots](Witness::start_holding), it takes them for itself and runs in
//! them alone, and it times itself: between two reads of the time-stamp counter in its loop
//! only the kernel can take the CPU from it, so a gap longer than [`AWAY_FRACTION`] of a
//! tick is time the CPU spent elsewhere. Its parent cuts that time into [laps](Witness::lap)
//! and learns, for each, the longest the witness waited for the CPU and how much of the lap
//! it ran — what a holder of slots must get whatever the others' system calls make the
//! kernel do (`hostile-kernel-work`).
//!
//! It reports in a page of its parent's at [`PAGE`], the managed window's second page (a
//! program that starts a witness leaves that page to it); the page goes when it stops.

use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::{MAX_BATCH, MapFlags};
use exo_abi::syscall::{ANY_SLOT, EnvironmentAccount, Event};
use exo_abi::user::Lend;
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
/// Slots it takes for itself before its loop ([`Witness::start_holding`]).
const SLOTS_TO_TAKE: u64 = 7;
/// Laps ([`Witness::lap`]) its parent asked for and it ended, and the last one's figures.
const LAPS_ASKED: u64 = 8;
const LAPS_ENDED: u64 = 9;
const LAP_LENGTH: u64 = 10;
const LAP_RAN: u64 = 11;
const LAP_LARGEST_GAP: u64 = 12;

/// Frames a witness may hold: its image and stack, and the page tables and frame of a
/// probe, with a kernel-memory allowance (the default for the quota) for a full batch.
pub const QUOTA: u64 = 1024;
/// Where a probe maps its batch (2 MiB aligned: one page table).
const PROBE_PAGES: u64 = MANAGED_START + 0x40_0000_0000;
/// The bytes a probe writes to the console, the most one `ConsoleWrite` takes.
const PROBE_WRITE: usize = 4096;
/// How long a probe, a lap's end or taking its slots may take, in ticks.
const PROBE_TICKS: u64 = 10_000;
/// A gap between two readings of the time-stamp counter longer than a tick divided by
/// this is time the witness did not run. Its loop takes a few hundred instructions and a
/// tick handled between two of its own slots a few thousand; a slot of someone else's is
/// a whole tick (125,000 instructions on the instruction clock).
pub const AWAY_FRACTION: u64 = 4;

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
    /// [`PAGE`] (one witness at a time). It holds no slot: it runs in the pool.
    pub fn start() -> Result<Self, Error> {
        Self::start_holding(0)
    }

    /// As [`start`](Self::start), lent `slots` slots of ours, which it takes for itself
    /// (`SlotAllocate` of any slot: the lowest free) before its loop; returns once it holds
    /// them. It then runs in them and nowhere else (chapter 3.3).
    pub fn start_holding(slots: u64) -> Result<Self, Error> {
        let words = Words::at(PAGE);
        let page = words.allocate()?;
        words.clear();
        words.write(SLOTS_TO_TAKE, slots);
        let child = Child::create_lending(Lend {
            frames: QUOTA,
            kernel_bytes: 0,
            slots,
        })?;
        words.share_with(page, child.environment())?;
        child.start(run, words.address())?;
        let witness = Self { child, words, page };
        let deadline = facts::ticks() + PROBE_TICKS;
        while witness.child.account(EnvironmentAccount::SlotsHeld) != Ok(slots) {
            assert!(witness.is_alive(), "the witness could not take its slots");
            assert!(
                facts::ticks() < deadline,
                "the witness never took its slots"
            );
            let _ = user::wait(Event::TIMER, 1);
        }
        Ok(witness)
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

    /// Ends the lap the witness is in and begins the next; returns the one ended. A lap
    /// ends when the witness next runs after the ask (this waits for that), so laps asked
    /// for just before and just after an attack cover the whole attack. The first lap
    /// began when the witness started its loop.
    pub fn lap(&self) -> Lap {
        let asked = self.words.read(LAPS_ASKED) + 1;
        self.words.write(LAPS_ASKED, asked);
        let deadline = facts::ticks() + PROBE_TICKS;
        while self.words.read(LAPS_ENDED) != asked {
            assert!(self.is_alive(), "the witness died in a lap");
            assert!(facts::ticks() < deadline, "the witness never ended its lap");
            let _ = user::wait(Event::TIMER, 1);
        }
        Lap {
            length: self.words.read(LAP_LENGTH),
            ran: self.words.read(LAP_RAN),
            largest_gap: self.words.read(LAP_LARGEST_GAP),
        }
    }

    /// Destroys it and gives back its frames and the page it reported in.
    pub fn stop(self) {
        self.child.destroy();
        memory::drop_capability(self.page).expect("drop the witness's page");
    }
}

/// A stretch of the witness's time between two asks of its parent, in cycles of the
/// time-stamp counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lap {
    /// From its beginning to its end.
    pub length: u64,
    /// Of it, the time the witness ran: the sum of its gaps shorter than [`AWAY_FRACTION`]
    /// of a tick.
    pub ran: u64,
    /// The longest gap between two readings: the longest the witness waited for the CPU.
    pub largest_gap: u64,
}

/// The lap the witness is in, as it keeps it: the counter when the lap began and at the
/// last reading, and the figures so far.
struct LapClock {
    began: u64,
    last: u64,
    ran: u64,
    largest_gap: u64,
}

impl LapClock {
    fn begin(now: u64) -> Self {
        Self {
            began: now,
            last: now,
            ran: 0,
            largest_gap: 0,
        }
    }

    /// One more reading of the counter; a gap under `away` cycles is time it ran.
    fn read(&mut self, now: u64, away: u64) {
        let gap = now.wrapping_sub(self.last);
        self.last = now;
        self.largest_gap = self.largest_gap.max(gap);
        if gap < away {
            self.ran += gap;
        }
    }

    /// Writes the lap's figures into `words` (its parent reads them once `LAPS_ENDED` moves).
    fn report(&self, words: Words) {
        words.write(LAP_LENGTH, self.last - self.began);
        words.write(LAP_RAN, self.ran);
        words.write(LAP_LARGEST_GAP, self.largest_gap);
    }
}

/// The witness's loop.
fn run(address: u64) -> u64 {
    let words = Words::at(address);
    for _ in 0..words.read(SLOTS_TO_TAKE) {
        if user::slot_allocate(Handle::SELF_ENVIRONMENT, ANY_SLOT).is_err() {
            return 1;
        }
    }
    let away = facts::tsc_hz() / facts::ticks_per_second() / AWAY_FRACTION;
    let mut lap = LapClock::begin(user::tsc());
    loop {
        // The ask first, then the reading: a lap ended on an ask must take in a reading
        // made after the ask was seen, or a gap just before the ask (an attack while the
        // witness was between the two) would fall into the next lap instead.
        let laps_asked = words.read(LAPS_ASKED);
        lap.read(user::tsc(), away);
        if words.read(LAPS_ENDED) != laps_asked {
            lap.report(words);
            words.write(LAPS_ENDED, laps_asked);
            lap = LapClock::begin(lap.last);
        }
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
            // The probe's calls are its own work, not time taken from it.
            lap.last = user::tsc();
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
