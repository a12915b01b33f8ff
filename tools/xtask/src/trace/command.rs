//! `cargo xtask trace`: builds, boots a program unattended with the kernel's trace on, and
//! turns the stream QEMU's debug console collected into `target/trace/trace.json`
//! (Perfetto) and `target/trace/timeline.svg`, with a summary on this terminal.
//!
//! The guest gets no console input but the end of it (Ctrl-D), so the shell and the
//! programs that read until the end of input end by themselves; one still running after
//! [`TIME_LIMIT`] is killed, and only the buffers the kernel had already written out
//! (each 32 Ki records) reach the trace. With `--stream FILE` it boots nothing and
//! converts a stream collected before. This module reads and writes files and starts
//! QEMU; the conversions are the other modules'.

use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::guest::{self, Ending};
use crate::qemu::{self, QemuConfig};
use crate::{artifacts, workspace};

use super::svg::{self, Window};
use super::{chrome, collect, summary, timeline};

/// Where everything goes, relative to the workspace root.
const DIRECTORY: &str = "target/trace";
/// The kernel command line unless one is given; `trace=all` is added unless it has a
/// `trace=` of its own.
const DEFAULT_KERNEL_COMMAND_LINE: &str = "log=info";
/// How long the guest may run unattended.
const TIME_LIMIT: Duration = Duration::from_secs(120);
/// How often the progress line is redrawn on a terminal...
const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);
/// ...and how often a new one is written elsewhere (a log).
const PROGRESS_LINE_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, PartialEq)]
pub struct TraceOptions {
    /// The user program to boot; `None` boots the kernel alone.
    pub program: Option<String>,
    pub kernel_command_line: Option<String>,
    /// The part of the run the picture shows; `None`: all of it.
    pub window: Option<Window>,
    /// A stream collected before (a scenario's, say) to convert instead of booting.
    pub stream: Option<PathBuf>,
}

pub fn run(options: &TraceOptions) -> Result<ExitCode, String> {
    let directory = workspace::root().join(DIRECTORY);
    fs::create_dir_all(&directory)
        .map_err(|error| format!("cannot create {}: {error}", directory.display()))?;
    let (stream_file, title) = match &options.stream {
        Some(file) => {
            let name = file.file_name().unwrap_or(file.as_os_str());
            (
                file.clone(),
                format!("exo trace: {}", name.to_string_lossy()),
            )
        }
        None => {
            let program = options.program.as_deref().unwrap_or("the kernel alone");
            (boot(options, &directory)?, format!("exo trace: {program}"))
        }
    };
    let stream = collect::read(&stream_file)?;
    eprintln!("trace: converting {} events", stream.records.len());
    let timeline = timeline::build(&stream);
    let json_file = directory.join("trace.json");
    write_file(&json_file, chrome::write(&timeline).as_bytes())?;
    let picture_file = directory.join("timeline.svg");
    let picture = svg::write(&timeline, options.window, &title);
    write_file(&picture_file, picture.as_bytes())?;

    print!("{}", summary::write(&stream, &timeline));
    println!("stream:   {}", stream_file.display());
    println!(
        "Perfetto: {} (ui.perfetto.dev → Open trace file)",
        json_file.display()
    );
    println!("picture:  {}", picture_file.display());
    Ok(ExitCode::SUCCESS)
}

/// Builds and boots the program with the trace on; returns the stream's file.
fn boot(options: &TraceOptions, directory: &Path) -> Result<PathBuf, String> {
    let boot_module = options
        .program
        .as_deref()
        .map(artifacts::build_user_program)
        .transpose()?;
    let kernel = artifacts::build_kernel()?;
    qemu::ensure_installed()?;
    let stream_file = directory.join("trace.bin");
    collect::prepare_output(&stream_file)?;

    let command_line = with_trace(options.kernel_command_line.as_deref());
    let mut config = QemuConfig::new(&kernel, &command_line);
    config.boot_module = boot_module;
    config.first_program = options.program.clone();
    config.serial_input = Some(String::new());
    config.trace_output = Some(stream_file.clone());
    let program = options.program.as_deref().unwrap_or("the kernel alone");
    eprintln!("trace: booting {program} with `{command_line}`");

    let run = with_progress(&stream_file, || guest::run_unattended(&config, TIME_LIMIT))?;
    let serial_file = directory.join("serial.log");
    write_file(&serial_file, run.serial.as_bytes())?;
    eprintln!(
        "trace: {} after {:.1} s; serial output in {}",
        run.ending,
        run.elapsed.as_secs_f64(),
        serial_file.display()
    );
    if let Ending::TimedOut(_) = run.ending {
        eprintln!(
            "trace: the guest was killed: only the buffers the kernel had already written \
             out are in the trace"
        );
    }
    Ok(stream_file)
}

/// The kernel command line with `trace=all` added, unless it names its classes itself.
pub fn with_trace(kernel_command_line: Option<&str>) -> String {
    let line = kernel_command_line.unwrap_or(DEFAULT_KERNEL_COMMAND_LINE);
    if line
        .split_whitespace()
        .any(|word| word.starts_with("trace="))
    {
        line.to_string()
    } else {
        format!("{line} trace=all").trim_start().to_string()
    }
}

/// Runs `work` while standard error shows the time and the trace's size so far: one line
/// redrawn on a terminal, a line every [`PROGRESS_LINE_INTERVAL`] otherwise.
fn with_progress<T>(stream_file: &Path, work: impl FnOnce() -> T) -> T {
    let done = Arc::new(AtomicBool::new(false));
    let progress = {
        let done = Arc::clone(&done);
        let stream_file = stream_file.to_path_buf();
        thread::spawn(move || {
            let terminal = std::io::stderr().is_terminal();
            let started = Instant::now();
            let mut last_line: Option<Instant> = None;
            while !done.load(Ordering::Relaxed) {
                let bytes = fs::metadata(&stream_file).map_or(0, |metadata| metadata.len());
                let line = format!(
                    "trace: running for {:.0} s (at most {} s), {:.1} KiB of trace so far",
                    started.elapsed().as_secs_f64(),
                    TIME_LIMIT.as_secs(),
                    bytes as f64 / 1024.0
                );
                if terminal {
                    eprint!("\r{line}   ");
                    let _ = std::io::stderr().flush();
                } else if last_line.is_none_or(|at| at.elapsed() >= PROGRESS_LINE_INTERVAL) {
                    eprintln!("{line}");
                    last_line = Some(Instant::now());
                }
                thread::sleep(PROGRESS_INTERVAL);
            }
            if terminal {
                eprintln!();
            }
        })
    };
    let result = work();
    done.store(true, Ordering::Relaxed);
    let _ = progress.join();
    result
}

fn write_file(file: &Path, contents: &[u8]) -> Result<(), String> {
    fs::write(file, contents).map_err(|error| format!("cannot write {}: {error}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_all_is_added_unless_the_command_line_names_classes() {
        assert_eq!(with_trace(None), "log=info trace=all");
        assert_eq!(with_trace(Some("log=warn")), "log=warn trace=all");
        assert_eq!(with_trace(Some("")), "trace=all");
        assert_eq!(
            with_trace(Some("log=warn trace=slots,calls")),
            "log=warn trace=slots,calls"
        );
    }
}
