//! The library OS honours revocation: asked for frames back, its pager gives back what it
//! can rebuild for nothing — demand-zero pages nobody wrote — never a page it cannot, and the
//! kernel's deadline then takes nothing.
//!
//! A child maps `TOUCHED` pages of anonymous memory, reads every one (each fault maps a zero
//! page, which stays clean), writes values into the first `WRITTEN`, says it is ready by
//! creating a file, and sleeps. The parent asks the kernel to have it give `ASKED` frames
//! back within `DEADLINE` ticks, sleeps past the deadline, and reads the child's accounts:
//! every frame asked for given back, none taken by force. The child then wakes and checks
//! that its written pages kept their values and the rest read as zeros (faulted in again).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::layout::PAGE_SIZE;
use exo_abi::syscall::EnvironmentAccount;
use libos_posixish::fs::{self, OpenOptions};
use libos_posixish::mmap::{self, Protection};
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

fn main(arguments: &[&str]) -> i32 {
    if arguments.get(1) == Some(&"--child") {
        return child();
    }
    let _ = fs::unlink(READY);
    let pid = process::spawn("revoke-test", &["--child"]).expect("spawn the child");
    while fs::stat(READY).is_err() {
        thread::sleep(1);
    }
    let account = |account| process::account(pid, account).expect("the child's account");
    let held_before = account(EnvironmentAccount::FramesHeld);
    process::request_frames(pid, ASKED, DEADLINE).expect("ask the child for frames");
    thread::sleep(2 * DEADLINE);
    let given = account(EnvironmentAccount::FramesGivenBack);
    let taken = account(EnvironmentAccount::FramesTakenByForce);
    let held_after = account(EnvironmentAccount::FramesHeld);
    let mut ok = check(
        format_args!("the child gave back {given} of the {ASKED} frames asked for"),
        given >= ASKED,
    );
    ok &= check(
        format_args!("the deadline took nothing from the child that answered ({taken} taken)"),
        taken == 0,
    );
    ok &= check(
        format_args!("its holdings fell from {held_before} to {held_after} frames"),
        held_before - held_after >= ASKED,
    );
    ok &= check(
        "the child's written pages kept their values and the rest read as zeros",
        process::wait(pid) == Ok(ExitStatus::Exited(0)),
    );
    if !ok {
        return 1;
    }
    check::all_passed("revoke-test");
    0
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
