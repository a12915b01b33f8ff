//! Running a guest unattended: QEMU's output captured, the guest killed if it outlives its
//! timeout, and optionally a host function run on a thread beside it; or left running in
//! the background, its output captured the same way, until the host is done with it.
//!
//! This module only reports what happened; judging the output is the caller's business.

use std::any::Any;
use std::fmt;
use std::io::Write;
use std::process::{Child, ChildStdin, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::qemu::{GuestExit, QemuConfig};
use crate::serial_log::SerialLog;

/// How often a running guest is checked for having exited.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long a host function may still run once the guest is gone (to read a last reply,
/// say); one still running after that has failed. Longer than any single wait of a host
/// function (see `kernel_network`), so one that was waiting when the guest died reports
/// what it was waiting for rather than being cut off.
pub const HOST_GRACE: Duration = Duration::from_secs(15);

/// Runs on a host thread from the moment QEMU starts, with the guest's serial console;
/// its `Err` is the reason the run failed.
pub type HostFunction = Box<dyn FnOnce(Console) -> Result<(), String> + Send>;

/// The guest's serial console, as a host function has it.
#[derive(Debug)]
pub struct Console {
    /// The serial output as it streams.
    pub output: SerialLog,
    /// The serial input, for a boot without `serial_input` of its own: what the host
    /// function writes, the guest reads. Dropping it is the end of input.
    pub input: Option<ChildStdin>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Exited(GuestExit),
    TimedOut(Duration),
    /// The host function failed while the guest ran; the guest was killed, since the rest
    /// of its run could not change the outcome.
    HostFailed,
}

impl fmt::Display for Ending {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Exited(exit) => exit.fmt(formatter),
            Ending::TimedOut(limit) => {
                write!(
                    formatter,
                    "timed out after {} s; guest killed",
                    limit.as_secs()
                )
            }
            Ending::HostFailed => formatter.write_str("guest killed when the host side failed"),
        }
    }
}

#[derive(Debug)]
pub struct GuestRun {
    pub ending: Ending,
    /// Everything the guest wrote to its serial port.
    pub serial: String,
    /// QEMU's own diagnostics (its standard error).
    pub qemu_messages: String,
    pub elapsed: Duration,
    /// Why the host function failed: its error, a panic, or still running
    /// [`HOST_GRACE`] after the guest had gone. `None` when it succeeded or there was none.
    pub host_failure: Option<String>,
}

/// Boots `config` with no terminal attached and waits at most `timeout` for it to exit.
pub fn run_unattended(config: &QemuConfig, timeout: Duration) -> Result<GuestRun, String> {
    run_unattended_with_host(config, timeout, None)
}

/// Like [`run_unattended`], with `host` (if any) running on a thread beside the guest.
pub fn run_unattended_with_host(
    config: &QemuConfig,
    timeout: Duration,
    host: Option<HostFunction>,
) -> Result<GuestRun, String> {
    let started = Instant::now();
    let input = if config.serial_input.is_some() || host.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let Captured {
        mut child,
        serial,
        serial_reader,
        qemu_messages,
        messages_reader,
    } = start_captured(config, input)?;
    let mut console_input = child.stdin.take();
    if let Some(text) = config.serial_input.clone()
        && let Some(mut stdin) = console_input.take()
    {
        thread::spawn(move || {
            // QEMU takes the bytes as the guest's UART can accept them; a write error means
            // the guest is gone, which the exit status reports.
            let _ = stdin.write_all(text.as_bytes());
            let _ = stdin.write_all(&[crate::qemu::END_OF_INPUT]);
        });
    }
    let mut host = host.map(|function| {
        let console = Console {
            output: serial.clone(),
            input: console_input,
        };
        HostThread::start(function, console)
    });
    let ending = wait_or_kill(&mut child, timeout, host.as_mut())?;
    let host_failure = host.and_then(HostThread::finish);
    // The readers end with QEMU's output; a panic in one would only truncate its text.
    let _ = serial_reader.join();
    let _ = messages_reader.join();
    Ok(GuestRun {
        ending,
        serial: serial.text(),
        qemu_messages: qemu_messages.text(),
        elapsed: started.elapsed(),
        host_failure,
    })
}

/// QEMU started with its output streams captured as they come.
struct Captured {
    child: Child,
    serial: SerialLog,
    serial_reader: JoinHandle<()>,
    qemu_messages: SerialLog,
    messages_reader: JoinHandle<()>,
}

/// Starts QEMU for `config` with `input` as its standard input.
fn start_captured(config: &QemuConfig, input: Stdio) -> Result<Captured, String> {
    let mut child = config
        .command()
        .stdin(input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot start {}: {error}", crate::qemu::QEMU))?;
    // Both pipes are drained while QEMU runs: a full pipe would stall the guest.
    let serial = SerialLog::new();
    let serial_reader = serial.fill_from(child.stdout.take());
    let qemu_messages = SerialLog::new();
    let messages_reader = qemu_messages.fill_from(child.stderr.take());
    Ok(Captured {
        child,
        serial,
        serial_reader,
        qemu_messages,
        messages_reader,
    })
}

/// A guest left running while the host works with it (servers a benchmark's client talks
/// to), with nothing on its serial input. Dropping it kills QEMU.
#[derive(Debug)]
pub struct BackgroundGuest {
    child: Child,
    /// The serial output as it streams.
    pub serial: SerialLog,
    /// QEMU's own diagnostics.
    pub qemu_messages: SerialLog,
}

/// Boots `config` and returns at once, leaving the guest running.
pub fn start_in_background(config: &QemuConfig) -> Result<BackgroundGuest, String> {
    // The reader threads end by themselves when QEMU's pipes close.
    let captured = start_captured(config, Stdio::null())?;
    Ok(BackgroundGuest {
        child: captured.child,
        serial: captured.serial,
        qemu_messages: captured.qemu_messages,
    })
}

impl BackgroundGuest {
    /// Waits until the guest ends by itself (or QEMU is killed from outside).
    pub fn wait(&mut self) -> Result<GuestExit, String> {
        self.child
            .wait()
            .map(GuestExit::from_status)
            .map_err(|error| format!("cannot wait for {}: {error}", crate::qemu::QEMU))
    }
}

impl Drop for BackgroundGuest {
    fn drop(&mut self) {
        // Killing a QEMU that has already exited fails harmlessly; `wait` reaps it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_or_kill(
    child: &mut Child,
    timeout: Duration,
    mut host: Option<&mut HostThread>,
) -> Result<Ending, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let status = child
            .try_wait()
            .map_err(|error| format!("cannot wait for QEMU: {error}"))?;
        if let Some(status) = status {
            return Ok(Ending::Exited(GuestExit::from_status(status)));
        }
        let host_failed = host.as_mut().is_some_and(|host| host.has_failed());
        if host_failed || Instant::now() >= deadline {
            // Killing closes QEMU's pipes, which ends the reader threads.
            let _ = child.kill();
            let _ = child.wait();
            return Ok(if host_failed {
                Ending::HostFailed
            } else {
                Ending::TimedOut(timeout)
            });
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// A host function's thread and, once it has finished, its result.
struct HostThread {
    running: Option<JoinHandle<Result<(), String>>>,
    result: Option<Result<(), String>>,
}

impl HostThread {
    fn start(function: HostFunction, console: Console) -> Self {
        HostThread {
            running: Some(thread::spawn(move || function(console))),
            result: None,
        }
    }

    /// Collects the result if the thread has finished; whether it failed.
    fn has_failed(&mut self) -> bool {
        if let Some(thread) = self.running.take_if(|thread| thread.is_finished()) {
            self.result = Some(
                thread
                    .join()
                    .unwrap_or_else(|panic| Err(panic_message(&*panic))),
            );
        }
        matches!(self.result, Some(Err(_)))
    }

    /// Once the guest is gone: gives the thread at most [`HOST_GRACE`] to finish and
    /// returns why it failed, if it did. A thread still running is left behind; it ends
    /// with xtask, or sooner when its own timeouts run out.
    fn finish(mut self) -> Option<String> {
        let deadline = Instant::now() + HOST_GRACE;
        while !self.has_failed() && self.running.is_some() && Instant::now() < deadline {
            thread::sleep(POLL_INTERVAL);
        }
        match self.result {
            Some(Ok(())) => None,
            Some(Err(failure)) => Some(failure),
            None => Some(format!(
                "the host function was still running {} s after the guest had gone",
                HOST_GRACE.as_secs()
            )),
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("the host function panicked: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_console() -> Console {
        Console {
            output: SerialLog::new(),
            input: None,
        }
    }

    fn finished(function: HostFunction) -> Option<String> {
        let mut host = HostThread::start(function, no_console());
        while host
            .running
            .as_ref()
            .is_some_and(|thread| !thread.is_finished())
        {
            thread::sleep(POLL_INTERVAL);
        }
        host.has_failed();
        host.finish()
    }

    #[test]
    fn a_host_functions_error_or_panic_is_its_failure() {
        assert_eq!(finished(Box::new(|_| Ok(()))), None);
        assert_eq!(
            finished(Box::new(|_| Err("no reply".to_string()))).as_deref(),
            Some("no reply")
        );
        let failure = finished(Box::new(|_| panic!("index out of range"))).unwrap();
        assert_eq!(failure, "the host function panicked: index out of range");
    }

    #[test]
    fn a_failed_host_function_is_noticed_while_the_guest_runs() {
        let mut host =
            HostThread::start(Box::new(|_| Err("wrong reply".to_string())), no_console());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !host.has_failed() {
            assert!(Instant::now() < deadline, "the failure was never noticed");
            thread::sleep(POLL_INTERVAL);
        }
        assert_eq!(host.finish().as_deref(), Some("wrong reply"));
    }
}
