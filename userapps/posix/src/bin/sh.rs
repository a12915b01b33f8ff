//! The shell: reads commands from the console, runs programs of the boot
//! file system with arguments, and has a few builtins.
//!
//! Input comes a byte at a time from the console; the shell echoes what it
//! reads (the terminal is in raw mode), handles backspace, and takes
//! Ctrl-D (byte 4) on an empty line as the end of input. `cargo xtask run`
//! sends Ctrl-D after the last line when its input is not a terminal, so a
//! piped script ends the run: `printf 'echo hi\npoweroff\n' | cargo xtask run`.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use exo_abi::syscall::{EnvironmentAccount, Event};
use exo_abi::{Handle, user};
use libos_posixish::process::{self, ExitStatus};
use libos_posixish::{Errno, getpid, print, println};

libos_posixish::main!(main);

/// Ctrl-D: the end of input.
const END_OF_INPUT: u8 = 0x04;
const BACKSPACE: u8 = 0x08;
const DELETE: u8 = 0x7f;

const HELP: &str = "\
builtins:
  help                 this text
  echo WORDS...        print the words
  pid                  this shell's process id
  kill PID             end a child started with &
  exit [STATUS], poweroff
                       leave the shell (the first program's exit ends the run)
anything else runs the program of that name with the words as arguments;
end a line with & to run it in the background";

fn main(_arguments: &[&str]) -> i32 {
    println!("exo shell: type `help` for the builtins");
    let mut input = Input::default();
    let mut background: Vec<u64> = Vec::new();
    loop {
        print!("$ ");
        let Some(line) = input.line() else {
            println!();
            return 0;
        };
        let mut words: Vec<&str> = line.split_whitespace().collect();
        let in_background = words.last() == Some(&"&");
        if in_background {
            words.pop();
        }
        let Some((&command, arguments)) = words.split_first() else {
            continue;
        };
        match command {
            "help" => println!("{HELP}"),
            "echo" => println!("{}", arguments.join(" ")),
            "pid" => println!("{}", getpid()),
            "exit" | "poweroff" => {
                return arguments
                    .first()
                    .and_then(|status| status.parse().ok())
                    .unwrap_or(0);
            }
            "kill" => kill(arguments, &mut background),
            program => run(program, arguments, in_background, &mut background),
        }
    }
}

/// The frames a command may use: a quarter of what the shell has left, so
/// that a command can start programs of its own.
fn command_quota() -> u64 {
    let account = |which| user::environment_info(Handle::SELF_ENVIRONMENT, which).unwrap_or(0);
    let available = account(EnvironmentAccount::FrameQuota)
        .saturating_sub(account(EnvironmentAccount::FramesCharged));
    (available / 4).max(process::DEFAULT_QUOTA)
}

fn run(program: &str, arguments: &[&str], in_background: bool, background: &mut Vec<u64>) {
    let pid = match process::spawn_with_quota(program, arguments, command_quota()) {
        Ok(pid) => pid,
        Err(Errno::ENOENT) => return println!("{program}: command not found"),
        Err(error) => return println!("{program}: cannot run it: {error:?}"),
    };
    if in_background {
        println!("[{pid}]");
        background.push(pid);
        return;
    }
    match process::wait(pid) {
        Ok(ExitStatus::Exited(0)) => {}
        Ok(ExitStatus::Exited(status)) => println!("{program}: exit status {status}"),
        Ok(ExitStatus::Killed) => println!("{program}: killed"),
        Err(error) => println!("{program}: {error:?}"),
    }
}

fn kill(arguments: &[&str], background: &mut Vec<u64>) {
    let Some(pid) = arguments.first().and_then(|pid| pid.parse::<u64>().ok()) else {
        return println!("usage: kill PID");
    };
    match process::kill(pid) {
        Ok(()) => {
            let _ = process::wait(pid);
            background.retain(|&job| job != pid);
            println!("[{pid}] killed");
        }
        Err(error) => println!("kill: {pid}: {error:?}"),
    }
}

/// Console input, a line at a time.
#[derive(Default)]
struct Input {
    pending: Vec<u8>,
    ended: bool,
}

impl Input {
    /// The next line, echoed as it is typed; `None` at the end of input.
    fn line(&mut self) -> Option<String> {
        let mut line = Vec::new();
        loop {
            let Some(byte) = self.byte() else {
                return (!line.is_empty()).then(|| String::from_utf8_lossy(&line).into_owned());
            };
            match byte {
                b'\r' | b'\n' => {
                    println!();
                    return Some(String::from_utf8_lossy(&line).into_owned());
                }
                BACKSPACE | DELETE if line.pop().is_some() => print!("\x08 \x08"),
                END_OF_INPUT if line.is_empty() => self.ended = true,
                byte if byte.is_ascii_graphic() || byte == b' ' => {
                    line.push(byte);
                    print!("{}", byte as char);
                }
                _ => {}
            }
        }
    }

    /// The next byte of input, sleeping a tick at a time while none has
    /// arrived; `None` once the input has ended.
    fn byte(&mut self) -> Option<u8> {
        while !self.ended && self.pending.is_empty() {
            let mut buffer = [0; 64];
            match user::console_read(&mut buffer) {
                Ok(0) => {
                    let _ = user::wait(Event::TIMER, 1);
                }
                Ok(count) => self.pending.extend(buffer[..count].iter().rev()),
                Err(_) => self.ended = true,
            }
        }
        if self.ended { None } else { self.pending.pop() }
    }
}
