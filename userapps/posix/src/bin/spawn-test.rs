//! Processes on the library OS: spawn programs of the boot file system with
//! arguments, read what one prints through a pipe, wait for their exit
//! statuses, see faults and kills reported, and a killed process's pipe end
//! closed for it.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use libos_posixish::fs;
use libos_posixish::process::{self, ExitStatus};
use libos_posixish::{Errno, getpid, println};

use userapps_posix::check::{self, check};

libos_posixish::main!(main);

fn main(_arguments: &[&str]) -> i32 {
    println!("spawn-test: process {} starts", getpid());
    let mut ok = true;

    let (read_end, write_end) = fs::pipe().expect("pipe");
    let echo = process::spawn_with(
        "echo",
        &["hello", "from", "a", "child"],
        process::DEFAULT_QUOTA,
        [None, Some(write_end), None],
    )
    .expect("spawn echo");
    let _ = fs::close(write_end);
    let heard = read_to_end(read_end);
    let _ = fs::close(read_end);
    ok &= check(
        "echo exits 0",
        process::wait(echo) == Ok(ExitStatus::Exited(0)),
    );
    ok &= check(
        "its output comes through a pipe: \"hello from a child\"",
        heard == b"hello from a child\n",
    );
    let argc = process::spawn("argc", &["four", "words", "for", "it"]).expect("spawn argc");
    ok &= check(
        "arguments arrive: argc exits with their count",
        process::wait(argc) == Ok(ExitStatus::Exited(4)),
    );

    // 16 MiB of quota: more than the 8 MiB the heap test uses and the stack limit.
    let grow = process::spawn_with_quota("grow", &[], 4096).expect("spawn grow");
    ok &= check(
        "heap and stack grow on demand",
        process::wait(grow) == Ok(ExitStatus::Exited(0)),
    );

    let segv = process::spawn_with_quota("segv", &[], 4096).expect("spawn segv");
    ok &= check(
        "a stack overflow ends the child with status 139",
        process::wait(segv) == Ok(ExitStatus::Exited(139)),
    );

    // cat waits, asleep, for console input that never comes: a process to kill.
    let sleeper = process::spawn("cat", &[]).expect("spawn cat");
    ok &= check("kill", process::kill(sleeper).is_ok());
    ok &= check(
        "a killed child is reported killed",
        process::wait(sleeper) == Ok(ExitStatus::Killed),
    );

    // A killed process closes what it held: cat, killed while its output is a pipe's write
    // end, no longer counts as a writer, so the reader sees the end of input at once.
    let (read_end, write_end) = fs::pipe().expect("pipe");
    let writer = process::spawn_with(
        "cat",
        &[],
        process::DEFAULT_QUOTA,
        [None, Some(write_end), None],
    )
    .expect("spawn cat writing into a pipe");
    let _ = fs::close(write_end);
    let _ = process::kill(writer);
    let killed = process::wait(writer) == Ok(ExitStatus::Killed);
    let mut buffer = [0u8; 16];
    let end_of_input = fs::read(read_end, &mut buffer) == Ok(0);
    let _ = fs::close(read_end);
    ok &= check(
        "a killed writer's pipe end is closed: the reader sees the end of input",
        killed && end_of_input,
    );

    ok &= check(
        "no such program: ENOENT",
        process::spawn("no-such-program", &[]) == Err(Errno::ENOENT),
    );
    ok &= check(
        "waiting for a non-child: ECHILD",
        process::wait(12345) == Err(Errno::ECHILD),
    );
    ok &= check(
        "killing a non-child: ESRCH",
        process::kill(12345) == Err(Errno::ESRCH),
    );

    let mut pids = Vec::new();
    for round in 0..20 {
        pids.push(
            process::spawn(
                "argc",
                &["round", if round % 2 == 0 { "even" } else { "odd" }],
            )
            .expect("spawn"),
        );
    }
    let all_exited = pids
        .into_iter()
        .all(|pid| process::wait(pid) == Ok(ExitStatus::Exited(2)));
    ok &= check("twenty children at once", all_exited);

    if ok {
        check::all_passed("spawn-test");
        0
    } else {
        1
    }
}

/// Everything `fd` yields until its end (or an error).
fn read_to_end(fd: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut buffer = [0; 64];
    while let Ok(count @ 1..) = fs::read(fd, &mut buffer) {
        bytes.extend_from_slice(&buffer[..count]);
    }
    bytes
}
