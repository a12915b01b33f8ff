//! Files on the library OS: the file server's tree shared between
//! processes, descriptors with offsets, directories, precise errors, pipes
//! between processes, and redirection of a child's standard streams.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use exo_abi::syscall::{EnvironmentAccount, Event};
use exo_abi::user;
use libos_posixish::fs::{self, OpenOptions};
use libos_posixish::process::{self, ExitStatus};
use libos_posixish::{Errno, println};

use userapps_posix::check::{self, check};

libos_posixish::main!(main);

/// How long the test watches a pipe reader wait.
const SLEEP_TICKS: u64 = 200;

const READ: OpenOptions = OpenOptions {
    read: true,
    write: false,
    create: false,
    truncate: false,
    append: false,
};
const WRITE_NEW: OpenOptions = OpenOptions {
    read: true,
    write: true,
    create: true,
    truncate: true,
    append: false,
};

fn read_all(path: &str) -> Vec<u8> {
    let fd = fs::open(path, READ).expect("open for reading");
    let mut bytes = Vec::new();
    let mut buffer = [0; 100];
    loop {
        let count = fs::read(fd, &mut buffer).expect("read");
        if count == 0 {
            break;
        }
        bytes.extend_from_slice(&buffer[..count]);
    }
    fs::close(fd).expect("close");
    bytes
}

fn main(_arguments: &[&str]) -> i32 {
    let mut ok = true;

    let fd = fs::open("/tmp/notes", WRITE_NEW).expect("create /tmp/notes");
    fs::write(fd, b"hello, ").expect("write");
    fs::write(fd, b"files\n").expect("write");
    ok &= check("lseek to the start", fs::lseek(fd, 0, 0) == Ok(0));
    let mut buffer = [0; 32];
    ok &= check(
        "read back what was written",
        fs::read(fd, &mut buffer) == Ok(13) && &buffer[..13] == b"hello, files\n",
    );
    ok &= check("lseek from the end", fs::lseek(fd, -6, 2) == Ok(7));
    fs::close(fd).expect("close");
    ok &= check(
        "stat gives the size",
        fs::stat("/tmp/notes").map(|stat| stat.size) == Ok(13),
    );
    let append = OpenOptions {
        write: true,
        append: true,
        ..READ
    };
    let fd = fs::open("/tmp/notes", append).expect("open for appending");
    fs::write(fd, b"more\n").expect("append");
    fs::close(fd).expect("close");
    ok &= check(
        "append adds at the end",
        read_all("/tmp/notes") == b"hello, files\nmore\n",
    );

    fs::mkdir("/tmp/dir").expect("mkdir");
    fs::rename("/tmp/notes", "/tmp/dir/renamed").expect("rename");
    ok &= check(
        "rename moves the file",
        fs::readdir("/tmp/dir") == Ok(alloc::vec!["renamed".into()]),
    );
    ok &= check(
        "/bin lists the programs",
        fs::readdir("/bin").is_ok_and(|names| names.iter().any(|name| name == "fsd")),
    );

    ok &= check(
        "a missing file: ENOENT",
        fs::open("/nope", READ) == Err(Errno::ENOENT),
    );
    ok &= check(
        "creating over a file: EEXIST",
        fs::mkdir("/tmp/dir/renamed") == Err(Errno::EEXIST),
    );
    ok &= check(
        "a file as a directory: ENOTDIR",
        fs::readdir("/tmp/dir/renamed") == Err(Errno::ENOTDIR),
    );
    ok &= check(
        "writing a directory: EISDIR",
        fs::open(
            "/tmp",
            OpenOptions {
                write: true,
                ..READ
            },
        ) == Err(Errno::EISDIR),
    );
    ok &= check(
        "removing a full directory: ENOTEMPTY",
        fs::unlink("/tmp/dir") == Err(Errno::ENOTEMPTY),
    );
    let program = fs::open(
        "/bin/echo",
        OpenOptions {
            write: true,
            ..READ
        },
    )
    .expect("open /bin/echo");
    ok &= check(
        "writing a program: EROFS",
        fs::write(program, b"x") == Err(Errno::EROFS),
    );
    fs::close(program).expect("close");
    ok &= check(
        "a closed descriptor: EBADF",
        fs::read(program, &mut buffer) == Err(Errno::EBADF),
    );
    fs::unlink("/tmp/dir/renamed").expect("unlink");
    fs::unlink("/tmp/dir").expect("rmdir");

    // Another process sees the same tree: echo writes a file through redirection.
    let out = fs::open("/tmp/echoed", WRITE_NEW).expect("create /tmp/echoed");
    let echo = process::spawn_with(
        "echo",
        &["through", "a", "file"],
        process::DEFAULT_QUOTA,
        [None, Some(out), None],
    )
    .expect("spawn echo");
    fs::close(out).expect("close");
    ok &= check(
        "echo's output went to the file",
        process::wait(echo) == Ok(ExitStatus::Exited(0)),
    );
    ok &= check(
        "the file holds it",
        read_all("/tmp/echoed") == b"through a file\n",
    );

    // A reader of an empty pipe sleeps until the server signals it: while
    // it waits, it makes no system calls (polling would make two a tick).
    // Its own calls are counted, not the machine's: the servers a shell
    // started may be running too.
    let (read_end, write_end) = fs::pipe().expect("pipe");
    let woken = fs::open("/tmp/woken", WRITE_NEW).expect("create /tmp/woken");
    let cat = process::spawn_with(
        "cat",
        &[],
        process::DEFAULT_QUOTA,
        [Some(read_end), Some(woken), None],
    )
    .expect("spawn cat");
    fs::close(read_end).expect("close");
    fs::close(woken).expect("close");
    let _ = user::wait(Event::TIMER, 20); // cat starts and finds the pipe empty
    let cat_calls = || process::account(cat, EnvironmentAccount::SystemCalls).unwrap_or(u64::MAX);
    let before = cat_calls();
    let _ = user::wait(Event::TIMER, SLEEP_TICKS);
    let calls = cat_calls().saturating_sub(before);
    println!("fs-test: {calls} system calls in {SLEEP_TICKS} ticks with cat waiting on a pipe");
    ok &= check(
        "a waiting pipe reader does not poll",
        calls < SLEEP_TICKS / 4,
    );
    fs::write(write_end, b"wake up\n").expect("write to cat");
    fs::close(write_end).expect("close");
    ok &= check(
        "the write woke it",
        process::wait(cat) == Ok(ExitStatus::Exited(0)) && read_all("/tmp/woken") == b"wake up\n",
    );

    // A pipe into wc, whose output goes to a file.
    let (read_end, write_end) = fs::pipe().expect("pipe");
    let counted = fs::open("/tmp/counted", WRITE_NEW).expect("create /tmp/counted");
    let wc = process::spawn_with(
        "wc",
        &[],
        process::DEFAULT_QUOTA,
        [Some(read_end), Some(counted), None],
    )
    .expect("spawn wc");
    fs::close(read_end).expect("close the read end");
    fs::close(counted).expect("close");
    // 42,000 bytes: more than the server's 16 KiB pipe, so the writer must
    // wait for wc to drain it.
    let text = b"one two\nthree\n".repeat(3000);
    ok &= check(
        "a pipe takes more than it holds at once",
        fs::write(write_end, &text) == Ok(text.len()),
    );
    fs::close(write_end).expect("close the write end");
    ok &= check(
        "wc read the pipe to its end",
        process::wait(wc) == Ok(ExitStatus::Exited(0)),
    );
    ok &= check(
        "wc counted every line, word and byte",
        read_all("/tmp/counted") == b"6000 9000 42000\n",
    );

    if ok {
        check::all_passed("fs-test");
        0
    } else {
        1
    }
}
