//! `linux-peer micro`: the Linux side of exo's microbenchmarks, each timed with the
//! time-stamp counter and reported as the median of its repetitions.
//!
//! The output is one line per benchmark, `BENCH <name> <median> cycles n=<repetitions>`,
//! then `BENCH-DONE`; `cargo xtask` parses exactly that, so the format must not change.
//! Each benchmark times one repetition at a time, so set-up between repetitions stays
//! outside the measurement.
//!
//! Everything runs on one processor, the partners of `yield-round-trip`, `call-reply` and
//! `thread-switch` too, as in the guest (`-smp 1`) and on exo; on a larger machine the
//! figures then still mean the same.
//!
//! The two yield benchmarks run under `SCHED_FIFO`: the default policy (CFS) may pass over
//! a partner it finds far ahead in virtual run time, so a yield would return without a
//! switch and the median would mix switches with bare system calls (seen under TCG: one
//! boot measured a fifth of another's). Under `SCHED_FIFO` at one priority a yield always
//! hands the processor to the other side.

use std::ffi::CString;
use std::hint::black_box;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use crate::sys::{self, Page, Program};

/// Repetitions of each benchmark unless `--reps` says otherwise.
pub const DEFAULT_REPETITIONS: usize = 10_000;
/// `spawn` starts a whole program each time, a hundred times the work of the others, so
/// it runs this many times fewer repetitions (200 by default).
const SPAWN_DIVISOR: usize = 50;
/// Untimed repetitions before the timed ones: caches, page tables and the scheduler's view
/// of the partner settle first.
const WARM_UP: usize = 10;
/// The bytes `call-reply` sends each way: one 64-bit word, as exo's call carries.
const MESSAGE_SIZE: usize = 8;
/// The subcommand `spawn` starts: it exits at once.
pub const TRUE_SUBCOMMAND: &str = "true";

/// Runs every benchmark, `repetitions` times each (fewer for `spawn`), printing its line.
pub fn run(repetitions: usize) -> io::Result<()> {
    sys::stay_on_this_processor()?;
    report("null-syscall", null_system_call(repetitions));
    report("page-fault", page_fault(repetitions));
    report("map-touch-unmap", map_touch_unmap(repetitions));
    report(
        "yield-round-trip",
        alternating(|| yield_round_trip(repetitions)),
    );
    report("call-reply", call_reply(repetitions)?);
    report("spawn", spawn((repetitions / SPAWN_DIVISOR).max(1))?);
    // Last: it starts a thread, and the benchmarks above fork, which wants one thread.
    report("thread-switch", alternating(|| thread_switch(repetitions)));
    println!("BENCH-DONE");
    Ok(())
}

/// Runs `benchmark` under `SCHED_FIFO` (see the module's comment), or under the default
/// policy, with a warning, where this process may not use it (not root, on a host).
fn alternating(benchmark: impl FnOnce() -> Vec<u64>) -> Vec<u64> {
    if let Err(error) = sys::first_in_first_out(true) {
        eprintln!("linux-peer: no SCHED_FIFO ({error}); yields may not switch");
        return benchmark();
    }
    let samples = benchmark();
    // Back to the default policy; failing that only keeps us real-time.
    let _ = sys::first_in_first_out(false);
    samples
}

/// Prints a benchmark's line: the median of `samples`, in cycles.
fn report(name: &str, mut samples: Vec<u64>) {
    println!(
        "BENCH {name} {} cycles n={}",
        median(&mut samples),
        samples.len()
    );
}

/// The middle sample (the lower middle one for an even count).
fn median(samples: &mut [u64]) -> u64 {
    samples.sort_unstable();
    samples[(samples.len() - 1) / 2]
}

/// Runs `one` [`WARM_UP`] times untimed, then `repetitions` times, collecting the cycles
/// each reports.
fn measure(repetitions: usize, mut one: impl FnMut() -> u64) -> Vec<u64> {
    for _ in 0..WARM_UP {
        one();
    }
    (0..repetitions).map(|_| one()).collect()
}

/// The cycles `work` takes.
fn timed(work: impl FnOnce()) -> u64 {
    let start = sys::cycles();
    work();
    sys::cycles().wrapping_sub(start)
}

/// `getppid`, a system call that does nothing worth mentioning.
fn null_system_call(repetitions: usize) -> Vec<u64> {
    measure(repetitions, || {
        timed(|| {
            black_box(sys::getppid_system_call());
        })
    })
}

/// A write to a protected page: the fault, the SIGSEGV handler's `mprotect` and the return
/// to the write. The page is protected again between repetitions, untimed.
fn page_fault(repetitions: usize) -> Vec<u64> {
    let page = Page::map(false);
    sys::resolve_faults_on(&page);
    measure(repetitions, || {
        page.protect();
        timed(|| page.touch())
    })
}

/// `mmap` of one anonymous page, a write to it (which allocates it), `munmap`.
fn map_touch_unmap(repetitions: usize) -> Vec<u64> {
    measure(repetitions, || {
        timed(|| {
            let page = Page::map(true);
            page.touch();
            drop(page);
        })
    })
}

/// Our `sched_yield` until we run again, with a second process yielding in a loop on the
/// one processor: two process switches.
fn yield_round_trip(repetitions: usize) -> Vec<u64> {
    let partner = sys::fork_running(|| {
        loop {
            sys::yield_processor();
        }
    });
    let samples = measure(repetitions, || timed(sys::yield_processor));
    partner.stop();
    samples
}

/// A call and its reply between two processes: 8 bytes written to a pipe, read by the
/// other process and written back on a second pipe, read here.
fn call_reply(repetitions: usize) -> io::Result<Vec<u64>> {
    let (calls_in, mut calls_out) = io::pipe()?;
    let (mut replies_in, replies_out) = io::pipe()?;
    let (child_calls_in, child_replies_out) = (calls_in.try_clone()?, replies_out.try_clone()?);
    let partner = sys::fork_running(move || {
        let (mut calls, mut replies) = (child_calls_in, child_replies_out);
        let mut message = [0u8; MESSAGE_SIZE];
        // Ends when the caller closes its end (a read error: end of file).
        while calls.read_exact(&mut message).is_ok() && replies.write_all(&message).is_ok() {}
    });
    // Only the partner reads calls and writes replies; it must hold the only copies, so
    // that closing ours below is the end of file it sees.
    drop((calls_in, replies_out));
    let mut message = [0u8; MESSAGE_SIZE];
    let mut failure = None;
    let samples = measure(repetitions, || {
        timed(|| {
            let round_trip = calls_out
                .write_all(&message)
                .and_then(|()| replies_in.read_exact(&mut message));
            if let Err(error) = round_trip {
                failure.get_or_insert(error);
            }
        })
    });
    drop(calls_out);
    partner.stop();
    match failure {
        Some(error) => Err(error),
        None => Ok(samples),
    }
}

/// `fork`, `execve` of this program's `true` subcommand (a static binary that exits at
/// once) and `waitpid` until it has exited.
fn spawn(repetitions: usize) -> io::Result<Vec<u64>> {
    let path = CString::new(std::env::current_exe()?.as_os_str().as_bytes())?;
    let true_subcommand = CString::new(TRUE_SUBCOMMAND)?;
    let arguments = [path.as_c_str(), true_subcommand.as_c_str()];
    let program = Program::new(&path, &arguments);
    let mut all_succeeded = true;
    let samples = measure(repetitions, || {
        timed(|| all_succeeded &= program.run_to_completion())
    });
    if all_succeeded {
        Ok(samples)
    } else {
        Err(io::Error::other(format!(
            "`{} {TRUE_SUBCOMMAND}` did not exit with status 0",
            path.to_string_lossy()
        )))
    }
}

/// Two threads of this process alternating through `sched_yield`: each round trip of ours
/// is two thread switches, so each sample is half a round trip.
fn thread_switch(repetitions: usize) -> Vec<u64> {
    let stop = Arc::new(AtomicBool::new(false));
    let partner = thread::spawn({
        let stop = Arc::clone(&stop);
        move || {
            while !stop.load(Ordering::Relaxed) {
                sys::yield_processor();
            }
        }
    });
    let samples = measure(repetitions, || timed(sys::yield_processor) / 2);
    stop.store(true, Ordering::Relaxed);
    // The partner only loops; it cannot panic.
    let _ = partner.join();
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_sample() {
        assert_eq!(median(&mut [5, 1, 3]), 3);
        assert_eq!(median(&mut [4, 1, 3, 2]), 2);
        assert_eq!(median(&mut [7]), 7);
    }

    #[test]
    fn each_benchmark_runs_and_counts_its_repetitions() {
        assert_eq!(null_system_call(3).len(), 3);
        assert_eq!(page_fault(3).len(), 3);
        assert_eq!(map_touch_unmap(3).len(), 3);
        // The forking benchmarks are left out: the test harness runs several threads.
    }
}
