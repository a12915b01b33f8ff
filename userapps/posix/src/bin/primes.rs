//! The concurrent prime sieve (McIlroy; Hoare's CSP): a pipeline of
//! processes connected by pipes. The first writes 2..=LIMIT into a pipe;
//! each process reads its first number, a prime, prints it, forks a child to
//! filter the rest, and passes on what its prime does not divide.
//!
//! Every stage also writes its prime and its process id into one more pipe,
//! shared by the whole chain, and the last writes an end mark: the first
//! process judges the chain by what comes out of it — every prime below
//! LIMIT, in order, each from a process of its own.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use exo_abi::syscall::EnvironmentAccount;
use exo_abi::{Handle, user};
use libos_posixish::fork::fork_with_quota;
use libos_posixish::process::{self, ExitStatus};
use libos_posixish::{fs, getpid, println};

use userapps_posix::check::{self, check};

libos_posixish::main!(main);

const LIMIT: u32 = 100;
/// Frames each stage keeps for itself; it lends the rest to the next stage,
/// so the chain can be as deep as there are primes (halving the quota at
/// each fork, the default, would run out after a dozen stages).
const KEEP: u64 = 384;
/// The prime of the record the last stage ends the results with.
const END_MARK: u32 = 0;

/// Forks a stage that may use everything but what this stage keeps. A fork
/// that fails says why: most often the frames this process was lent are
/// spent (each stage keeps `KEEP`).
fn fork() -> Result<u64, libos_posixish::Errno> {
    let account = |which| user::environment_info(Handle::SELF_ENVIRONMENT, which).unwrap_or(0);
    let available = account(EnvironmentAccount::FrameQuota)
        .saturating_sub(account(EnvironmentAccount::FramesCharged));
    fork_with_quota(available.saturating_sub(KEEP)).inspect_err(|error| {
        println!(
            "primes: cannot fork the next stage: {error} ({available} frames left of this \
             process's quota, {KEEP} kept by each stage; end other jobs, or run it alone: \
             cargo xtask run --program primes)"
        );
    })
}

fn main(_arguments: &[&str]) -> i32 {
    let (results, results_write_end) = fs::pipe().expect("pipe");
    let (read_end, write_end) = fs::pipe().expect("pipe");
    let Ok(child) = fork() else { return 1 };
    if child == 0 {
        let _ = fs::close(write_end);
        let _ = fs::close(results);
        return filter(read_end, results_write_end);
    }
    let _ = fs::close(read_end);
    let _ = fs::close(results_write_end);
    for number in 2..=LIMIT {
        fs::write(write_end, &number.to_le_bytes()).expect("feed the sieve");
    }
    let _ = fs::close(write_end);
    // A stage writes its prime before it forwards anything, so the records
    // come out in the chain's order; the last stage's end mark comes last.
    let mut stages = Vec::new();
    while let Some([prime, pid]) = next(results)
        && prime != END_MARK
    {
        stages.push((prime, pid));
    }
    let finished = process::wait(child) == Ok(ExitStatus::Exited(0));
    let primes: Vec<u32> = stages.iter().map(|&(prime, _)| prime).collect();
    let mut pids: Vec<u32> = stages.iter().map(|&(_, pid)| pid).collect();
    pids.sort_unstable();
    pids.dedup();
    let mut ok = check(
        format_args!(
            "the sieve of {LIMIT} found the {} primes below it, in order",
            primes.len()
        ),
        primes == primes_below(LIMIT),
    );
    ok &= check(
        "each from a process of its own",
        pids.len() == stages.len() && !pids.contains(&(getpid() as u32)),
    );
    ok &= check("every stage exited with status 0", finished);
    if ok {
        check::all_passed("primes");
        0
    } else {
        1
    }
}

/// One stage: prints the first number it reads, reports it to `results`,
/// and forwards the others that it does not divide to a stage of its own.
fn filter(input: usize, results: usize) -> i32 {
    let Some([prime]) = next(input) else { return 0 };
    println!("prime {prime}");
    report(results, prime);
    let mut output = None;
    while let Some([number]) = next(input) {
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
                    return filter(read_end, results);
                }
                let _ = fs::close(read_end);
                output = Some((write_end, child));
                write_end
            }
        };
        // The next stage ends early only if it failed, and said so.
        if fs::write(write_end, &number.to_le_bytes()).is_err() {
            return 1;
        }
    }
    let Some((write_end, child)) = output else {
        report(results, END_MARK);
        return 0;
    };
    let _ = fs::close(write_end);
    if process::wait(child) == Ok(ExitStatus::Exited(0)) {
        0
    } else {
        1
    }
}

/// Writes one record to the results: `prime` and this process's id.
fn report(results: usize, prime: u32) {
    let mut record = [0; 8];
    record[..4].copy_from_slice(&prime.to_le_bytes());
    record[4..].copy_from_slice(&(getpid() as u32).to_le_bytes());
    fs::write(results, &record).expect("report to the first process");
}

/// The next `N` numbers from the pipe, or `None` at its end.
fn next<const N: usize>(input: usize) -> Option<[u32; N]> {
    let mut bytes = [[0; 4]; N];
    for number in &mut bytes {
        let mut got = 0;
        while got < 4 {
            match fs::read(input, &mut number[got..]) {
                Ok(0) | Err(_) => return None,
                Ok(count) => got += count,
            }
        }
    }
    Some(bytes.map(u32::from_le_bytes))
}

/// The primes below `limit` by trial division: what the chain must find.
fn primes_below(limit: u32) -> Vec<u32> {
    let is_prime = |number: u32| {
        (2..number)
            .take_while(|divisor| divisor * divisor <= number)
            .all(|divisor| !number.is_multiple_of(divisor))
    };
    (2..limit).filter(|&number| is_prime(number)).collect()
}
