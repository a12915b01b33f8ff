//! The file server serves every process of the library OS, and keeps a notification for
//! each client that registers to be woken when a pipe changes (`fs/server.rs`). Calls carry
//! no caller's name, so the server bounds how many it keeps in all. A client that
//! registers again and again, far more often than any process needs (once), is refused
//! once the bound is reached (`EAGAIN`) — and every process's file calls still work,
//! pipes included (refused a registration, a client rechecks its pipe every tick).
//! Before the bound, the server kept every one: about 900 filled its capability table,
//! and then every file call of every process failed.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use exo_abi::user;
use libos_posixish::fs::{self, OpenOptions, protocol::operation};
use libos_posixish::{Errno, println};

use userapps_posix::check::{self, check};

libos_posixish::main!(main);

/// Registrations tried at most: well past the server's bound, and past what its table
/// (and this program's: each costs a slot here too) holds, 1,024.
const TRIES: usize = 1_100;
const PATH: &str = "/tmp/hostile-fsd";
const CONTENTS: &[u8] = b"still served\n";

fn main(_arguments: &[&str]) -> i32 {
    fs::start().expect("a file server");
    let endpoint = fs::current_endpoint().expect("the file server's endpoint");
    let (mut registered, mut refused) = (0, None);
    for _ in 0..TRIES {
        let Ok(notification) = user::notification_create(1) else {
            break; // our own table is full
        };
        let answer = user::call_endpoint(
            endpoint,
            [operation::REGISTER_WAITER, 0],
            Some(notification),
        );
        match answer {
            Ok(([0, _], _)) => registered += 1,
            Ok(([status, _], _)) => {
                refused = Some(Ok(Errno::from_code(status)));
                break;
            }
            // The server's table is full: the kernel refuses the call.
            Err(error) => {
                refused = Some(Err(error));
                break;
            }
        }
    }
    println!("hostile-fsd: {registered} registrations kept, then {refused:?}");
    check(
        format_args!("the file server kept {registered} registrations, then refused (EAGAIN)"),
        refused == Some(Ok(Errno::EAGAIN)),
    );
    let create = OpenOptions {
        read: false,
        write: true,
        create: true,
        truncate: true,
        append: false,
    };
    let written = fs::open(PATH, create).and_then(|fd| {
        let written = fs::write(fd, CONTENTS);
        fs::close(fd).and(written)
    });
    let read_only = OpenOptions {
        read: true,
        write: false,
        create: false,
        truncate: false,
        append: false,
    };
    let mut back = [0; 64];
    let read = fs::open(PATH, read_only).and_then(|fd| {
        let read = fs::read(fd, &mut back);
        fs::close(fd).and(read)
    });
    check(
        "every file call still served: a file written and read back",
        written == Ok(CONTENTS.len())
            && read == Ok(CONTENTS.len())
            && &back[..CONTENTS.len()] == CONTENTS,
    );
    check::all_passed("hostile-fsd");
    0
}
