//! The concurrent prime sieve (McIlroy; Hoare's CSP): a pipeline of
//! processes connected by pipes. The first writes 2..=LIMIT into a pipe;
//! each process reads its first number, a prime, prints it, forks a child to
//! filter the rest, and passes on what its prime does not divide.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::syscall::EnvironmentAccount;
use exo_abi::{Handle, user};
use libos_posixish::fork::fork_with_quota;
use libos_posixish::fs;
use libos_posixish::println;
use libos_posixish::process::{self, ExitStatus};

libos_posixish::main!(main);

const LIMIT: u32 = 100;
/// Frames each stage keeps for itself; it lends the rest to the next stage,
/// so the chain can be as deep as there are primes (halving the quota at
/// each fork, the default, would run out after a dozen stages).
const KEEP: u64 = 384;

/// Forks a stage that may use everything but what this stage keeps.
fn fork() -> Result<u64, libos_posixish::Errno> {
    let account = |which| user::environment_info(Handle::SELF_ENVIRONMENT, which).unwrap_or(0);
    let available = account(EnvironmentAccount::FrameQuota)
        .saturating_sub(account(EnvironmentAccount::FramesCharged));
    fork_with_quota(available.saturating_sub(KEEP))
}

fn main(_arguments: &[&str]) -> i32 {
    let (read_end, write_end) = fs::pipe().expect("pipe");
    let Ok(child) = fork() else { return 1 };
    if child == 0 {
        let _ = fs::close(write_end);
        return filter(read_end);
    }
    let _ = fs::close(read_end);
    for number in 2..=LIMIT {
        fs::write(write_end, &number.to_le_bytes()).expect("feed the sieve");
    }
    let _ = fs::close(write_end);
    let ok = process::wait(child) == Ok(ExitStatus::Exited(0));
    println!(
        "primes: the sieve of {LIMIT} {}",
        if ok { "finished" } else { "FAILED" }
    );
    if ok { 0 } else { 1 }
}

/// One stage: prints the first number it reads and forwards the others
/// that it does not divide to a stage of its own.
fn filter(input: usize) -> i32 {
    let Some(prime) = next(input) else { return 0 };
    println!("prime {prime}");
    let mut output = None;
    while let Some(number) = next(input) {
        if number % prime == 0 {
            continue;
        }
        let write_end = match output {
            Some((write_end, _)) => write_end,
            None => {
                let (read_end, write_end) = fs::pipe().expect("pipe");
                let Ok(child) = fork() else { return 1 };
                if child == 0 {
                    let _ = fs::close(write_end);
                    let _ = fs::close(input);
                    return filter(read_end);
                }
                let _ = fs::close(read_end);
                output = Some((write_end, child));
                write_end
            }
        };
        fs::write(write_end, &number.to_le_bytes()).expect("forward");
    }
    let Some((write_end, child)) = output else {
        return 0;
    };
    let _ = fs::close(write_end);
    if process::wait(child) == Ok(ExitStatus::Exited(0)) {
        0
    } else {
        1
    }
}

/// The next number from the pipe, or `None` at its end.
fn next(input: usize) -> Option<u32> {
    let mut bytes = [0; 4];
    let mut got = 0;
    while got < 4 {
        match fs::read(input, &mut bytes[got..]) {
            Ok(0) | Err(_) => return None,
            Ok(count) => got += count,
        }
    }
    Some(u32::from_le_bytes(bytes))
}
