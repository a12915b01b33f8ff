//! The library OS honours revocation: asked for frames back, its pager gives back what it
//! can rebuild for nothing — demand-zero pages nobody wrote — never a page it cannot, and the
//! kernel's deadline then takes nothing. How much it gives, and how many pages a fault maps,
//! are the program's own frame policy.
//!
//! A child maps `TOUCHED` pages of anonymous memory, reads every one (each fault maps a zero
//! page, which stays clean), writes values into the first `WRITTEN`, says it is ready by
//! creating a file, and sleeps. The parent asks the kernel to have it give `ASKED` frames
//! back within `DEADLINE` ticks, sleeps past the deadline, and reads the child's accounts:
//! every frame asked for given back, none taken by force. The child then wakes and checks
//! that its written pages kept their values and the rest read as zeros (faulted in again).
//!
//! A second child does the same under a frame policy of its own, `Generous`: it gives back
//! every clean page when asked for any, and maps its heap a page at a time where the library
//! OS's default maps 16 (the parent checks the default on its own heap).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use exo_abi::layout::PAGE_SIZE;
use exo_abi::syscall::EnvironmentAccount;
use exo_abi::{Error, Handle, user};
use libos_posixish::Errno;
use libos_posixish::fs::{self, OpenOptions};
use libos_posixish::mmap::{self, Protection};
use libos_posixish::paging::{self, FramePolicy, RUN_ORDER};
use libos_posixish::process::{self, ExitStatus};
use libos_posixish::thread;
use userapps_posix::check::{self, check};

libos_posixish::main!(main);

/// Pages the child reads, and of those the pages it writes first.
const TOUCHED: u64 = 64;
const WRITTEN: u64 = 8;
/// Frames the parent asks for back, fewer than the clean pages, and within how many ticks.
const ASKED: u64 = 32;
const DEADLINE: u64 = 20;
/// The file the child creates once its pages are in place.
const READY: &str = "/tmp/revoke-test-ready";
/// How long the child sleeps, in ticks: past the deadline the parent sleeps through.
const CHILD_SLEEP: u64 = 4 * DEADLINE;

/// The second child's frame policy: any frames, one page per fault, and every frame it can
/// rebuild back when the kernel asks for any.
struct Generous;

impl FramePolicy for Generous {
    fn allocate(&self, order: u32) -> Result<(Handle, u64), Error> {
        user::frame_allocate(order)
    }

    fn run_order(&self) -> u32 {
        0
    }

    fn frames_to_give_back(&self, _wanted: u64) -> u64 {
        u64::MAX
    }
}

static GENEROUS: Generous = Generous;

fn main(arguments: &[&str]) -> i32 {
    match arguments.get(1) {
        Some(&"--child") => return child(),
        Some(&"--generous-child") => {
            paging::set_frame_policy(&GENEROUS);
            let one_page = heap_pages_mapped_by_one_fault() == 1;
            return if one_page { child() } else { 3 };
        }
        _ => {}
    }
    let run = heap_pages_mapped_by_one_fault();
    let mut ok = check(
        format_args!("a heap fault mapped {run} pages under the default policy"),
        run == 1 << RUN_ORDER,
    );

    let round = ask_child("--child");
    ok &= check(
        format_args!(
            "the child gave back {} of the {ASKED} frames asked for",
            round.given
        ),
        round.given >= ASKED,
    );
    ok &= check(
        format_args!(
            "the deadline took nothing from the child that answered ({} taken)",
            round.taken
        ),
        round.taken == 0,
    );
    ok &= check(
        format_args!(
            "its holdings fell from {} to {} frames",
            round.held_before, round.held_after
        ),
        round.held_before - round.held_after >= ASKED,
    );
    ok &= check(
        "the child's written pages kept their values and the rest read as zeros",
        round.status == Ok(ExitStatus::Exited(0)),
    );

    let generous = ask_child("--generous-child");
    let fell = generous.held_before - generous.held_after;
    ok &= check(
        format_args!(
            "asked for {ASKED}, the generous child gave back {fell} frames (all {} clean pages), \
             none taken",
            TOUCHED - WRITTEN
        ),
        generous.given == ASKED && fell >= TOUCHED - WRITTEN && generous.taken == 0,
    );
    ok &= check(
        "its heap grew a page per fault, and its pages kept their values",
        generous.status == Ok(ExitStatus::Exited(0)),
    );
    if !ok {
        return 1;
    }
    check::all_passed("revoke-test");
    0
}

/// What a child's accounts said about one request for frames, and how it ended.
struct Round {
    given: u64,
    taken: u64,
    held_before: u64,
    held_after: u64,
    status: Result<ExitStatus, Errno>,
}

/// Starts a child with `mode`, asks for `ASKED` frames once it is ready, and waits for it.
fn ask_child(mode: &str) -> Round {
    let _ = fs::unlink(READY);
    let pid = process::spawn("revoke-test", &[mode]).expect("spawn the child");
    while fs::stat(READY).is_err() {
        thread::sleep(1);
    }
    let account = |account| process::account(pid, account).expect("the child's account");
    let held_before = account(EnvironmentAccount::FramesHeld);
    process::request_frames(pid, ASKED, DEADLINE).expect("ask the child for frames");
    thread::sleep(2 * DEADLINE);
    Round {
        given: account(EnvironmentAccount::FramesGivenBack),
        taken: account(EnvironmentAccount::FramesTakenByForce),
        held_before,
        held_after: account(EnvironmentAccount::FramesHeld),
        status: process::wait(pid),
    }
}

/// How many pages of a fresh, aligned heap block one write at its start maps: the pager's
/// run under this process's frame policy. (The allocator reads only the block's first
/// bytes, its free-list entry, before handing it out.)
fn heap_pages_mapped_by_one_fault() -> usize {
    let mut block: Vec<u8> = Vec::with_capacity(1 << 20);
    block.push(1);
    let start = block.as_ptr() as u64;
    (0..64)
        .map(|page| start + page * PAGE_SIZE)
        .take_while(|&page| user::translate(page).is_some())
        .count()
}

/// The child: clean and written pages, then a sleep across the request, then the checks.
fn child() -> i32 {
    let region = mmap::mmap(TOUCHED * PAGE_SIZE, Protection::READ_WRITE).expect("mmap");
    let page = |index: u64| region + index * PAGE_SIZE;
    let zeros = (0..TOUCHED).all(|index| mmap::load(page(index)) == 0);
    for index in 0..WRITTEN {
        mmap::store(page(index), 0x5eed + index);
    }
    let ready = fs::open(
        READY,
        OpenOptions {
            write: true,
            create: true,
            ..OpenOptions::default()
        },
    );
    if !zeros || ready.is_err() {
        return 2;
    }
    thread::sleep(CHILD_SLEEP);
    let kept = (0..WRITTEN).all(|index| mmap::load(page(index)) == 0x5eed + index);
    let still_zero = (WRITTEN..TOUCHED).all(|index| mmap::load(page(index)) == 0);
    if kept && still_zero { 0 } else { 1 }
}
