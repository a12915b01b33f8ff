//! The file server serves every process of the library OS, and keeps a notification for
//! each client that registers to be woken when a pipe changes (`fs/server.rs`). Calls carry
//! no caller's name, so the server bounds how many it keeps in all. A client that
//! registers again and again, far more often than any process needs (once), is refused
//! once the bound is reached (`EAGAIN`) — and every process's file calls still work,
//! pipes included (refused a registration, a client rechecks its pipe every tick).
//! Before the bound, the server kept every one: about 900 filled its capability table,
//! and then every file call of every process failed.
//!
//! A child cannot fill its parent's table either: the capability for its parent that the
//! library OS gives it lets it see the parent, not give it capabilities (only the file
//! server's does, to hand over its endpoint). Run as `hostile-fsd give`, this program is
//! that child, and exits 0 if a grant into its parent is refused.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use exo_abi::{Error, Rights, user};
use libos_posixish::fs::{self, OpenOptions, protocol::operation};
use libos_posixish::process::{self, ExitStatus};
use libos_posixish::{Errno, info_page, println};

use userapps_posix::check::{self, check};

libos_posixish::main!(main);

/// Registrations tried at most: well past the server's bound, and past what its table
/// (and this program's: each costs a slot here too) holds, 1,024.
const TRIES: usize = 1_100;
const PATH: &str = "/tmp/hostile-fsd";
const CONTENTS: &[u8] = b"still served\n";

fn main(arguments: &[&str]) -> i32 {
    if arguments.get(1) == Some(&"give") {
        return give_to_parent();
    }
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
    let child = process::spawn("hostile-fsd", &["give"]).expect("spawn a child");
    let status = process::wait(child).expect("wait for the child");
    check(
        "a child's grant into its parent's table is refused",
        status == ExitStatus::Exited(0),
    );
    check::all_passed("hostile-fsd");
    0
}

/// As a child: tries to grant a capability into the parent's table; 0 if refused for
/// want of the right to give, 1 if it was not.
fn give_to_parent() -> i32 {
    let parent = info_page::own()
        .and_then(|info| info.parent_environment)
        .expect("a capability for the parent");
    let gift = user::notification_create(1).expect("a notification");
    let granted = user::capability_grant(gift, parent, Rights::SIGNAL);
    println!("hostile-fsd: a child's grant into its parent: {granted:?}");
    match granted {
        Err(Error::MissingRights) => 0,
        _ => 1,
    }
}
