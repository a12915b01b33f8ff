//! The first program: says which environment it is and what the kernel mapped for it.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::Handle;
use exo_abi::syscall::EnvironmentAccount;
use exo_abi::user;
use userapps::println;

userapps::entry!(main);

fn main(_argument: u64) -> u64 {
    let id = user::environment_info(Handle::SELF_ENVIRONMENT, EnvironmentAccount::Id)
        .expect("an environment can read its own id");
    println!("hello from environment {id}");
    println!(
        "start-info lists {} pages",
        user::start_info().pages().len()
    );
    0
}
