//! `exec` on the library OS: a process becomes another program and keeps
//! its process id, its parent, its exit-status page and descriptors 0–2.
//!
//! Run with no arguments it is the test; its children run it again with a
//! role as the first argument, and exec from there.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;

use exo_abi::layout::PAGE_SIZE;
use exo_abi::syscall::{CAPABILITY_BYTES, EnvironmentAccount, MAPPING_RECORD_BYTES};
use exo_abi::{Handle, user};

use libos_posixish::exec::exec;
use libos_posixish::fs::{self, OpenOptions};
use libos_posixish::mmap::{self, Protection};
use libos_posixish::process::{self, ExitStatus};
use libos_posixish::{Errno, getpid, println};

use userapps_posix::check::{self, check};

libos_posixish::main!(main);

const WRITE_NEW: OpenOptions = OpenOptions {
    read: true,
    write: true,
    create: true,
    truncate: true,
    append: false,
};
const READ: OpenOptions = OpenOptions {
    read: true,
    write: false,
    create: false,
    truncate: false,
    append: false,
};

fn main(arguments: &[&str]) -> i32 {
    match arguments.get(1).copied() {
        None => test(),
        Some(role) => child(role, &arguments[2..]),
    }
}

/// What a child does before (and, for `same-pid` and `chain`, after) exec.
fn child(role: &str, rest: &[&str]) -> i32 {
    let error = match role {
        "become-argc" => exec("argc", &["one", "two", "three"]),
        "become-echo" => exec("echo", &["written", "after", "exec"]),
        "same-pid" => match rest.first() {
            // Before: exec this program again, passing the pid it has now.
            None => exec("exec-test", &["same-pid", &format!("{}", getpid())]),
            // After: the pid must be the one passed.
            Some(before) => return i32::from(before.parse::<u64>() != Ok(getpid())),
        },
        "chain" => {
            // exec `count` more times, using the heap each time, then exit 7.
            let count: u32 = rest.first().and_then(|n| n.parse().ok()).unwrap_or(0);
            if count == 0 {
                return 7;
            }
            let ballast: Vec<u64> = (0..20_000).collect();
            let next = format!("{}", count - 1 + (ballast[19_999] as u32 - 19_999));
            exec("exec-test", &["chain", &next])
        }
        "low-quota" => return low_quota(),
        _ => return 100,
    };
    println!("exec-test: exec failed: {error:?}");
    101
}

/// The frames this process may still allocate.
fn frames_left() -> u64 {
    account(EnvironmentAccount::FrameQuota) - account(EnvironmentAccount::FramesCharged)
}

/// The pages this process may still allocate and map: frames, and the
/// kernel memory each page's capability and mapping record are charged.
fn pages_left() -> u64 {
    let kernel_bytes = account(EnvironmentAccount::KernelBytesLimit)
        - account(EnvironmentAccount::KernelBytesCharged);
    frames_left().min(kernel_bytes / (CAPABILITY_BYTES + MAPPING_RECORD_BYTES))
}

fn account(which: EnvironmentAccount) -> u64 {
    user::environment_info(Handle::SELF_ENVIRONMENT, which).unwrap_or(0)
}

/// Leaves room for 32 pages, fewer than a new image needs (about 40), and
/// checks that a failed exec gives back the frames it loaded: had it kept
/// them, the first attempt would have used up the quota. Exits 0 if so.
fn low_quota() -> i32 {
    let pages = pages_left() - 32;
    let region = mmap::mmap(pages * PAGE_SIZE, Protection::READ_WRITE).expect("mmap");
    for page in 0..pages {
        mmap::store(region + page * PAGE_SIZE, page);
    }
    // The first attempt warms the heap up; the second must cost nothing.
    let first = exec("exec-test", &["chain", "0"]);
    let before = frames_left();
    let second = exec("exec-test", &["chain", "0"]);
    let after = frames_left();
    println!("exec-test: with {before} frames left: {first:?}, then {second:?}, {after} left");
    let failed = first == Errno::ENOMEM && second == Errno::ENOMEM;
    i32::from(!(failed && before > 0 && after == before))
}

fn test() -> i32 {
    println!("exec-test: process {} starts", getpid());
    let mut ok = true;

    // Failures change nothing: the caller goes on.
    ok &= check(
        "no such program: ENOENT, and the caller goes on",
        exec("no-such-program", &[]) == Errno::ENOENT,
    );
    let long = "x".repeat(8192);
    ok &= check(
        "arguments larger than the info page: E2BIG",
        exec("argc", &[&long]) == Errno::E2BIG,
    );

    let pid = process::spawn("exec-test", &["become-argc"]).expect("spawn");
    ok &= check(
        "the parent sees the new program's exit status (argc: 3)",
        process::wait(pid) == Ok(ExitStatus::Exited(3)),
    );

    let pid = process::spawn("exec-test", &["same-pid"]).expect("spawn");
    ok &= check(
        "the process id survives exec",
        process::wait(pid) == Ok(ExitStatus::Exited(0)),
    );

    let out = fs::open("/tmp/exec-out", WRITE_NEW).expect("create /tmp/exec-out");
    let pid = process::spawn_with(
        "exec-test",
        &["become-echo"],
        process::DEFAULT_QUOTA,
        [None, Some(out), None],
    )
    .expect("spawn");
    fs::close(out).expect("close");
    ok &= check(
        "standard output survives exec",
        process::wait(pid) == Ok(ExitStatus::Exited(0)),
    );
    let fd = fs::open("/tmp/exec-out", READ).expect("open /tmp/exec-out");
    let mut buffer = [0; 64];
    let count = fs::read(fd, &mut buffer).expect("read");
    fs::close(fd).expect("close");
    ok &= check(
        "echo, exec'd, wrote to it",
        &buffer[..count] == b"written after exec\n",
    );

    let pid = process::spawn("exec-test", &["low-quota"]).expect("spawn");
    ok &= check(
        "a failed exec (quota) gives back the frames it loaded",
        process::wait(pid) == Ok(ExitStatus::Exited(0)),
    );

    let pid = process::spawn("exec-test", &["chain", "5"]).expect("spawn");
    ok &= check(
        "five execs in a row, each with a heap",
        process::wait(pid) == Ok(ExitStatus::Exited(7)),
    );

    if ok {
        check::all_passed("exec-test");
        0
    } else {
        println!("exec-test: FAILED");
        1
    }
}
