//! Running a guest unattended: QEMU's output captured, and the guest killed if it outlives
//! its timeout.
//!
//! This module only reports what happened; judging the output is the caller's business.

use std::fmt;
use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::qemu::{GuestExit, QemuConfig};

/// How often a running guest is checked for having exited.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Exited(GuestExit),
    TimedOut(Duration),
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
}

/// Boots `config` with no terminal attached and waits at most `timeout` for it to exit.
pub fn run_unattended(config: &QemuConfig, timeout: Duration) -> Result<GuestRun, String> {
    let started = Instant::now();
    let input = if config.serial_input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = config
        .command()
        .stdin(input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot start {}: {error}", crate::qemu::QEMU))?;
    if let (Some(text), Some(mut stdin)) = (config.serial_input.clone(), child.stdin.take()) {
        thread::spawn(move || {
            // QEMU takes the bytes as the guest's UART can accept them; a write error means
            // the guest is gone, which the exit status reports.
            let _ = stdin.write_all(text.as_bytes());
            let _ = stdin.write_all(&[crate::qemu::END_OF_INPUT]);
        });
    }
    // Both pipes are drained while QEMU runs: a full pipe would stall the guest.
    let serial = read_on_thread(child.stdout.take());
    let qemu_messages = read_on_thread(child.stderr.take());
    let ending = wait_or_kill(&mut child, timeout)?;
    Ok(GuestRun {
        ending,
        serial: serial.join().unwrap_or_default(),
        qemu_messages: qemu_messages.join().unwrap_or_default(),
        elapsed: started.elapsed(),
    })
}

fn read_on_thread(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            // A read error only truncates what we show; the exit status still decides.
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn wait_or_kill(child: &mut Child, timeout: Duration) -> Result<Ending, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let status = child
            .try_wait()
            .map_err(|error| format!("cannot wait for QEMU: {error}"))?;
        if let Some(status) = status {
            return Ok(Ending::Exited(GuestExit::from_status(status)));
        }
        if Instant::now() >= deadline {
            // Killing closes QEMU's pipes, which ends the reader threads.
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Ending::TimedOut(timeout));
        }
        thread::sleep(POLL_INTERVAL);
    }
}
