//! The first program: says which environment it is and what the kernel mapped for it,
//! counting each as a check.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::Handle;
use exo_abi::syscall::EnvironmentAccount;
use exo_abi::user;
use userapps::check::{self, ok};

userapps::entry!(main);

fn main(_argument: u64) -> u64 {
    let id = user::environment_info(Handle::SELF_ENVIRONMENT, EnvironmentAccount::Id)
        .expect("an environment can read its own id");
    ok(format_args!("hello from environment {id}"));
    let pages = user::start_info().pages().len();
    assert!(pages > 0, "the start-info page lists the program's pages");
    ok(format_args!("start-info lists {pages} pages"));
    check::all_passed("hello");
    0
}
