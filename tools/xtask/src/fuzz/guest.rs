//! `cargo xtask fuzz guest`: boots `syscall-fuzz` (userapps/src/bin/syscall-fuzz.rs), which
//! runs random system calls from several environments at once and then checks the
//! kernel's invariants itself; this side passes it the seed and the number of calls,
//! shows its progress as it comes, and on a failure prints the command that reruns it.
//!
//! The guest gets both numbers in one start argument (`init_argument=`): the seed in the
//! low [`SEED_BITS`] bits, the calls in thousands above them ([`start_argument`]). The run
//! is on the instruction clock (`-icount`), like the test scenarios, so a seed replays the
//! same calls in the same interleaving as far as QEMU makes it deterministic.
//!
//! It never judges the guest's counts: the guest does, and reports `all checks passed`.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::artifacts;
use crate::guest::{self, Console, Ending};
use crate::qemu::{self, GuestExit, QemuConfig};
use crate::serial_log::{WaitFailure, last_lines};

/// The guest program.
pub const PROGRAM: &str = "syscall-fuzz";
/// The start argument's bits that hold the seed (the guest's `SEED_BITS`).
pub const SEED_BITS: u32 = 40;
/// Calls in a run unless told otherwise.
pub const DEFAULT_CALLS: u64 = 10_000_000;
/// The guest's line when everything held.
const PASSED_LINE: &str = "syscall-fuzz: all checks passed";
/// How long a run may take: a fixed allowance for booting and the final checks, and
/// time per call at a rate eight times below the slowest measured (about 80,000 calls a
/// second, docs/09 §9.3), so that only a hung guest times out.
const BOOT_ALLOWANCE: Duration = Duration::from_secs(120);
const CALLS_PER_SECOND_AT_LEAST: u64 = 10_000;
/// Serial lines shown when a run fails.
const TAIL_LINES: usize = 40;
/// How often the progress shown here is brought up to date.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestFuzzOptions {
    /// System calls in the run, rounded up to a thousand.
    pub calls: u64,
    /// The run's seed; only its low [`SEED_BITS`] bits are used.
    pub seed: u64,
}

impl Default for GuestFuzzOptions {
    /// [`DEFAULT_CALLS`] calls from a seed taken from the clock.
    fn default() -> Self {
        let nanoseconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as u64);
        GuestFuzzOptions {
            calls: DEFAULT_CALLS,
            seed: nanoseconds & seed_mask(),
        }
    }
}

const fn seed_mask() -> u64 {
    (1 << SEED_BITS) - 1
}

/// The guest's start argument for a run: seed below, calls in thousands (rounded up) above.
pub const fn start_argument(seed: u64, calls: u64) -> u64 {
    (seed & seed_mask()) | (calls.div_ceil(1000) << SEED_BITS)
}

/// The kernel command line of a run. Kernel logging stays at warnings: each child that
/// destroys itself would otherwise write a line.
pub fn kernel_command_line(seed: u64, calls: u64) -> String {
    format!("log=warn init_argument={}", start_argument(seed, calls))
}

/// The command that runs the same calls again.
fn rerun_command(options: GuestFuzzOptions) -> String {
    format!(
        "cargo xtask fuzz guest --calls {} --seed {}",
        options.calls,
        options.seed & seed_mask()
    )
}

pub fn run(options: GuestFuzzOptions) -> Result<ExitCode, String> {
    let seed = options.seed & seed_mask();
    let calls = options.calls.div_ceil(1000) * 1000;
    eprintln!("fuzz guest: building exo");
    let kernel = artifacts::build_kernel()?;
    artifacts::build(&artifacts::USER_PROGRAMS)?;
    artifacts::pack_bootfs()?;
    qemu::ensure_installed()?;
    let mut config = QemuConfig::new(&kernel, &kernel_command_line(seed, calls));
    config.boot_module = Some(artifacts::bootfs());
    config.first_program = Some(PROGRAM.to_string());
    config.instruction_clock = true;
    let timeout = BOOT_ALLOWANCE + Duration::from_secs(calls / CALLS_PER_SECOND_AT_LEAST);
    eprintln!(
        "fuzz guest: seed {seed}, {calls} calls (at most {} s); rerun with: {}",
        timeout.as_secs(),
        rerun_command(options)
    );
    let run = guest::run_unattended_with_host(&config, timeout, Some(Box::new(show_progress)))?;
    let seconds = run.elapsed.as_secs_f64();
    let passed =
        run.ending == Ending::Exited(GuestExit::Passed) && run.serial.contains(PASSED_LINE);
    if passed {
        println!(
            "fuzz guest: passed: {calls} calls from seed {seed} in {seconds:.1} s, {:.0} calls \
             per second (boot and checks included)",
            calls as f64 / seconds
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("fuzz guest: FAILED ({}) after {seconds:.1} s", run.ending);
    println!("last serial lines:");
    for line in last_lines(&run.serial, TAIL_LINES) {
        println!("    {line}");
    }
    if !run.qemu_messages.trim().is_empty() {
        println!("QEMU said:");
        for line in last_lines(&run.qemu_messages, TAIL_LINES) {
            println!("    {line}");
        }
    }
    println!(
        "fuzz guest: seed {seed}; to reproduce: {}",
        rerun_command(options)
    );
    Ok(ExitCode::FAILURE)
}

/// Prints the guest's own lines (its progress) as they arrive, until its output ends.
fn show_progress(console: Console) -> Result<(), String> {
    let mut shown = 0;
    loop {
        // Waiting for text that never comes is a sleep that ends early with the output.
        let ended = console
            .output
            .wait_for("\u{0}", Some(PROGRESS_INTERVAL))
            .is_err_and(|failure| failure == WaitFailure::Ended);
        let text = console.output.text();
        let complete = text.rfind('\n').map_or(0, |end| end + 1);
        if complete > shown {
            for line in text[shown..complete].lines() {
                if line.starts_with(PROGRAM) || line.to_lowercase().contains("panic") {
                    println!("{}", line.trim_end());
                }
            }
            let _ = std::io::stdout().flush();
            shown = complete;
        }
        if ended {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_argument_packs_seed_and_thousands_of_calls() {
        assert_eq!(start_argument(7, 200_000), 7 | (200 << SEED_BITS));
        assert_eq!(start_argument(7, 1), 7 | (1 << SEED_BITS));
        assert_eq!(start_argument(u64::MAX, 0), seed_mask());
    }

    #[test]
    fn a_failure_names_the_command_that_reruns_it() {
        let options = GuestFuzzOptions {
            calls: 5000,
            seed: 42,
        };
        assert_eq!(
            rerun_command(options),
            "cargo xtask fuzz guest --calls 5000 --seed 42"
        );
    }

    #[test]
    fn the_default_runs_ten_million_calls_from_a_seed_that_fits() {
        let options = GuestFuzzOptions::default();
        assert_eq!(options.calls, DEFAULT_CALLS);
        assert_eq!(options.seed & !seed_mask(), 0);
    }
}
