//! The shell: reads commands from the console, runs programs of the boot
//! file system with arguments, connects them with pipes (`a | b`),
//! redirects their input and output (`< file`, `> file`, `>> file`), runs
//! them in the background (`&`), and has a few builtins.
//!
//! Input comes a byte at a time from the console (the terminal is in raw
//! mode): the line editor (`line_editor`) echoes it and gives the keys their
//! meaning — arrows, history, Backspace, Ctrl-U, Ctrl-W — and Ctrl-D (byte 4)
//! on an empty line is the end of input. `cargo xtask run` sends Ctrl-D after
//! the last line when its input is not a terminal, so a piped script ends
//! the run: `printf 'echo hi\npoweroff\n' | cargo xtask run`.
//!
//! Ctrl-C never reaches a program as input: the kernel counts it on the facts
//! page (`console_interrupts`). The shell watches the count while a job runs
//! in the foreground and ends the job when it grows; at the prompt, it drops
//! the line being typed. When someone else writes to the console while a
//! line is being typed (a background job, a server), the shell draws the
//! prompt and the line again below what they wrote.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use exo_abi::syscall::{EnvironmentAccount, Event};
use exo_abi::{Handle, user};
use libos_posixish::exec::exec;
use libos_posixish::fs::{self, OpenOptions};
use libos_posixish::line_editor::{LineEditor, Outcome};
use libos_posixish::net;
use libos_posixish::process::{self, ExitStatus};
use libos_posixish::variables;
use libos_posixish::{Errno, getpid, print, println};

libos_posixish::main!(main);

/// The start-up commands the first shell runs, if the file exists.
const START_UP: &str = "/etc/rc";

const HELP: &str = "\
builtins:
  help                    this text
  echo WORDS...           print the words
  pid                     this shell's process id
  cd [DIR]                change the working directory (relative paths start there)
  env                     the environment variables
  export KEY=VALUE        set one, for the shell and what it runs
  jobs                    this shell and its background jobs
  wait                    wait until every background job has ended
  kill PID                end a background job
  exec PROGRAM WORDS...   become the program (same process id, variables, output)
  exit [STATUS]           leave the shell (the first program's exit ends the run)
  poweroff                the same as exit
anything else runs the program of that name with the words as arguments
(ls, cat, echo, wc, grep, head, ps, primes, ...: `ls /bin` lists them):
  a | b | c               connects a's output to b's input, and so on
  < FILE                  reads input from a file
  > FILE, >> FILE         writes output to, appends output to a file
  ... &                   runs the command in the background
  \"two words\"             one word (double quotes group)
keys: Left, Right, Home, End, Backspace and Delete edit the line; Up and Down
walk the history; Ctrl-U and Ctrl-W erase to the start and the word before;
Ctrl-C ends the job in the foreground (or drops the line); Ctrl-D ends input.
files live in one tree shared by every program: /bin (the programs), /tmp, /www";

fn main(_arguments: &[&str]) -> i32 {
    println!("exo shell: type `help` for the builtins");
    // As the first process, the shell claims the network's address for what it starts;
    // `/etc/rc` may ask for a DHCP lease (`export NET_CONFIG=dhcp`).
    net::enable_dhcp();
    // Start the file server first, so that everything the shell runs shares it.
    if let Err(error) = fs::start() {
        println!("sh: no file server ({error}): files, pipes and redirection will fail");
    }
    let mut background: Vec<Job> = Vec::new();
    // The first shell runs the start-up commands of the boot file system's
    // `/etc/rc` (`cargo xtask run` puts the network servers there).
    if process::info().is_none()
        && let Ok(fd) = fs::open(
            START_UP,
            OpenOptions {
                read: true,
                ..OpenOptions::default()
            },
        )
    {
        let mut lines = Vec::new();
        fs::for_each_line(fd, |line| {
            lines.push(String::from(line));
            true
        });
        let _ = fs::close(fd);
        for line in lines
            .iter()
            .filter(|line| !line.trim_start().starts_with('#'))
        {
            println!("{START_UP}: {line}");
            if let Some(status) = execute(line, &mut background, console_interrupts()) {
                return status;
            }
        }
        if !background.is_empty() {
            let_start_up_jobs_speak();
        }
    }
    let mut input = Input::default();
    loop {
        reap_finished(&mut background);
        let prompt = format!("{} $ ", variables::current_dir());
        let Some(line) = input.line(&prompt) else {
            println!();
            return 0;
        };
        if let Some(status) = execute(&line, &mut background, input.interrupts_at_prompt) {
            return status;
        }
    }
}

/// Ticks without anyone else writing to the console after which the start-up
/// jobs are taken to have said what they say when they start...
const QUIET_TICKS: u64 = 50;
/// ...and the most the first prompt waits for that.
const START_UP_TICKS: u64 = 2000;

/// Waits, before the first prompt, until the jobs `/etc/rc` started have
/// printed their first lines (no one else has written to the console for
/// `QUIET_TICKS`), so that the prompt comes after them rather than lost
/// among them. A best effort: a line that comes later makes the line editor
/// draw the prompt again below it.
fn let_start_up_jobs_speak() {
    let ticks = || user::fact(|facts| &facts.ticks);
    let writes = || user::fact(|facts| &facts.console_writes);
    let start = ticks();
    let mut seen = writes();
    let mut quiet_since = start;
    while ticks() - quiet_since < QUIET_TICKS && ticks() - start < START_UP_TICKS {
        let _ = user::wait(Event::TIMER, 1);
        if writes() != seen {
            seen = writes();
            quiet_since = ticks();
        }
    }
}

/// A job started in the background: its first process and the command.
struct Job {
    pid: u64,
    command: String,
}

/// Runs one command line; `Some(status)` if it was `exit` or `poweroff`. A
/// Ctrl-C beyond the `interrupts` counted when it was typed ends its job.
fn execute(line: &str, background: &mut Vec<Job>, interrupts: u64) -> Option<i32> {
    let mut words: Vec<&str> = split_words(line);
    let in_background = words.last() == Some(&"&");
    if in_background {
        words.pop();
    }
    if words.is_empty() {
        return None;
    }
    let stages = match parse(&words) {
        Ok(stages) => stages,
        Err(message) => {
            println!("sh: {message}");
            return None;
        }
    };
    let builtin = match &stages[..] {
        [stage] if stage.input.is_none() && stage.output.is_none() && !in_background => {
            Some((stage.words[0], &stage.words[1..]))
        }
        _ => None,
    };
    match builtin {
        Some(("help", _)) => println!("{HELP}"),
        Some(("echo", arguments)) => println!("{}", arguments.join(" ")),
        Some(("pid", _)) => println!("{}", getpid()),
        Some(("cd", arguments)) => change_directory(arguments.first().copied().unwrap_or("/")),
        Some(("env", _)) => {
            for (key, value) in variables::vars() {
                println!("{key}={value}");
            }
        }
        Some(("export", arguments)) => {
            match arguments.first().and_then(|word| word.split_once('=')) {
                Some((key, value)) => variables::set_var(key, value),
                None => println!("usage: export KEY=VALUE"),
            }
        }
        Some(("jobs", _)) => {
            println!("{} sh", getpid());
            for job in background.iter() {
                println!("{} {}", job.pid, job.command);
            }
        }
        Some(("exit" | "poweroff", arguments)) => {
            return Some(
                arguments
                    .first()
                    .and_then(|status| status.parse().ok())
                    .unwrap_or(0),
            );
        }
        Some(("wait", _)) => wait_for_all(background),
        Some(("kill", arguments)) => kill(arguments, background),
        Some(("exec", [program, arguments @ ..])) => match exec(program, arguments) {
            Errno::ENOENT => println!("{program}: command not found"),
            error => println!("{program}: cannot run it: {error}"),
        },
        _ => {
            let job =
                in_background.then(|| String::from(line.trim().trim_end_matches('&').trim_end()));
            run(&stages, job, background, interrupts)
        }
    }
    None
}

/// `wait`: waits for every background job to end, reporting each.
fn wait_for_all(background: &mut Vec<Job>) {
    for job in core::mem::take(background) {
        match process::wait(job.pid) {
            Ok(status) => report_background(&job, status),
            Err(error) => println!("[{}] {error}", job.pid),
        }
    }
}

/// What the shell says when background job `job` has ended.
fn report_background(job: &Job, status: ExitStatus) {
    match status {
        ExitStatus::Exited(status) => {
            println!("[{}] done, exit status {status}: {}", job.pid, job.command)
        }
        ExitStatus::Killed => println!("[{}] killed: {}", job.pid, job.command),
    }
}

/// The frames the next program of a job may use, lent from what the shell
/// has left. In the background it gets an eighth, so that later jobs (and
/// `/etc/rc`'s servers, which run for good) leave the most for what comes
/// next; in the foreground, where the job runs alone while the shell waits,
/// three quarters (a deep `primes` or `forktree` needs them). Each stage of
/// a pipeline takes its part of what the stages before it left, so the
/// first, most often the one that does the work, gets the most.
fn program_quota(in_background: bool) -> u64 {
    let account = |which| user::environment_info(Handle::SELF_ENVIRONMENT, which).unwrap_or(0);
    let available = account(EnvironmentAccount::FrameQuota)
        .saturating_sub(account(EnvironmentAccount::FramesCharged));
    let share = if in_background {
        available / 8
    } else {
        available / 4 * 3
    };
    share.max(process::DEFAULT_QUOTA)
}

/// The words of `line`: separated by spaces, except inside double quotes,
/// which group words and are dropped (`grep "a b" f` is three words).
fn split_words(line: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        let (word, after) = match rest.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
            None => rest.split_once(char::is_whitespace).unwrap_or((rest, "")),
        };
        words.push(word);
        rest = after.trim_start();
    }
    words
}

/// One program of a pipeline, with its redirections.
struct Stage<'a> {
    words: Vec<&'a str>,
    input: Option<&'a str>,
    /// The file, and whether to append to it.
    output: Option<(&'a str, bool)>,
}

/// Splits `words` into the stages of a pipeline.
fn parse<'a>(words: &[&'a str]) -> Result<Vec<Stage<'a>>, &'static str> {
    let mut stages = Vec::new();
    for part in words.split(|&word| word == "|") {
        let mut stage = Stage {
            words: Vec::new(),
            input: None,
            output: None,
        };
        let mut rest = part.iter();
        while let Some(&word) = rest.next() {
            match word {
                "<" => stage.input = Some(*rest.next().ok_or("< needs a file")?),
                ">" => stage.output = Some((*rest.next().ok_or("> needs a file")?, false)),
                ">>" => stage.output = Some((*rest.next().ok_or(">> needs a file")?, true)),
                word => stage.words.push(word),
            }
        }
        if stage.words.is_empty() {
            return Err("a command is missing (around | or a redirection)");
        }
        stages.push(stage);
    }
    Ok(stages)
}

/// Opens what a stage reads from and writes to, other than pipes.
fn redirections(stage: &Stage<'_>) -> Result<(Option<usize>, Option<usize>), String> {
    let input = match stage.input {
        None => None,
        Some(path) => {
            let options = OpenOptions {
                read: true,
                ..OpenOptions::default()
            };
            Some(fs::open(path, options).map_err(|error| format!("{path}: {error}"))?)
        }
    };
    let output = match stage.output {
        None => None,
        Some((path, append)) => {
            let options = OpenOptions {
                write: true,
                create: true,
                truncate: !append,
                append,
                ..OpenOptions::default()
            };
            Some(fs::open(path, options).map_err(|error| format!("{path}: {error}"))?)
        }
    };
    Ok((input, output))
}

/// Runs a pipeline: every stage at once, each reading the one before; in the
/// background as `job` (its command), if that is given.
fn run(stages: &[Stage<'_>], job: Option<String>, background: &mut Vec<Job>, interrupts: u64) {
    let mut opened: Vec<usize> = Vec::new();
    let mut started: Vec<(u64, &str)> = Vec::new();
    let mut previous_read: Option<usize> = None;
    for (index, stage) in stages.iter().enumerate() {
        let program = stage.words[0];
        let (input, output) = match redirections(stage) {
            Ok(files) => files,
            Err(message) => {
                println!("sh: {message}");
                break;
            }
        };
        opened.extend(input.iter().chain(output.iter()));
        let mut stdout = output;
        let mut next_read = None;
        if index + 1 < stages.len() && stdout.is_none() {
            match fs::pipe() {
                Ok((read, write)) => {
                    opened.extend([read, write]);
                    stdout = Some(write);
                    next_read = Some(read);
                }
                Err(error) => {
                    println!("sh: pipe: {error}");
                    break;
                }
            }
        }
        let stdin = input.or(previous_read);
        let arguments = &stage.words[1..];
        match process::spawn_with(
            program,
            arguments,
            program_quota(job.is_some()),
            [stdin, stdout, None],
        ) {
            Ok(pid) => started.push((pid, program)),
            Err(Errno::ENOENT) => println!("{program}: command not found"),
            Err(Errno::ENOMEM) => println!(
                "{program}: cannot run it: out of frames, the shell has too few left to lend \
                 it (`jobs` lists the background jobs holding some; `kill PID` ends one)"
            ),
            Err(error) => println!("{program}: cannot run it: {error}"),
        }
        previous_read = next_read;
    }
    // The children hold their own ends now. Without the shell's, each stage
    // sees the end of its input once the stage before it has exited.
    for fd in opened {
        let _ = fs::close(fd);
    }
    match job {
        Some(command) => {
            // Each process of the pipeline is a job of its own, named by the whole command.
            for &(pid, _) in &started {
                println!("[{pid}]");
                background.push(Job {
                    pid,
                    command: command.clone(),
                });
            }
        }
        None => wait_in_foreground(started, interrupts),
    }
}

/// Waits for every process of a foreground job; ends them all at a Ctrl-C
/// beyond the `interrupts` counted when its command was typed. A
/// program says why it failed itself, so an exit status other than 0 is not
/// repeated here; a process that was killed (a fault it did not survive)
/// cannot say, so the shell does.
fn wait_in_foreground(mut running: Vec<(u64, &str)>, interrupts: u64) {
    while !running.is_empty() {
        if console_interrupts() != interrupts {
            for &(pid, _) in &running {
                let _ = process::kill(pid);
            }
            for (pid, _) in running {
                // Reaping closes what it still held (its pipe ends, its files).
                let _ = process::wait(pid);
            }
            println!("^C");
            return;
        }
        running.retain(|&(pid, program)| match process::try_wait(pid) {
            Ok(None) => true,
            Ok(Some(ExitStatus::Exited(_))) => false,
            Ok(Some(ExitStatus::Killed)) => {
                println!("{program}: killed");
                false
            }
            Err(error) => {
                println!("{program}: {error}");
                false
            }
        });
        if !running.is_empty() {
            let _ = user::wait(Event::TIMER, 1);
        }
    }
}

/// Ctrl-C typed on the console since boot, as the kernel counts them.
fn console_interrupts() -> u64 {
    user::fact(|facts| &facts.console_interrupts)
}

/// `cd`: the new directory must exist; `PWD` holds it, normalised.
fn change_directory(path: &str) {
    let target = variables::absolute(path);
    match fs::stat(&target) {
        Ok(stat) if stat.is_directory => variables::set_var("PWD", &normalise(&target)),
        Ok(_) => println!("cd: {path}: Not a directory"),
        Err(error) => println!("cd: {path}: {error}"),
    }
}

/// `path` without `.`, `..` and empty components.
fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    let mut normal = String::new();
    for part in &parts {
        normal.push('/');
        normal.push_str(part);
    }
    if normal.is_empty() {
        String::from("/")
    } else {
        normal
    }
}

/// Reports, and reaps, the background jobs that have ended.
fn reap_finished(background: &mut Vec<Job>) {
    background.retain(|job| match process::try_wait(job.pid) {
        Ok(None) => true,
        Ok(Some(status)) => {
            report_background(job, status);
            false
        }
        Err(_) => false,
    });
}

fn kill(arguments: &[&str], background: &mut Vec<Job>) {
    let Some(pid) = arguments.first().and_then(|pid| pid.parse::<u64>().ok()) else {
        return println!("usage: kill PID");
    };
    match process::kill(pid) {
        Ok(()) => {
            let _ = process::wait(pid);
            background.retain(|job| job.pid != pid);
            println!("[{pid}] killed");
        }
        Err(error) => println!("kill: {pid}: {error}"),
    }
}

/// Console input, a line at a time, edited as it is typed.
#[derive(Default)]
struct Input {
    editor: LineEditor,
    /// Bytes read and not yet given to the editor, the next one last.
    pending: Vec<u8>,
    ended: bool,
    /// The console's write count when the line was last drawn.
    writes_seen: u64,
    /// Ctrl-C typed since boot when the latest prompt was shown.
    interrupts_at_prompt: u64,
}

impl Input {
    /// The next line, after `prompt`; an empty one at Ctrl-C; `None` at
    /// the end of input.
    fn line(&mut self, prompt: &str) -> Option<String> {
        print!("{prompt}");
        let interrupts = console_interrupts();
        self.interrupts_at_prompt = interrupts;
        self.writes_seen = user::fact(|facts| &facts.console_writes);
        loop {
            if let Some(byte) = self.pending.pop() {
                let mut shown = Vec::new();
                let outcome = self.editor.key(byte, prompt, &mut shown);
                show(&shown);
                match outcome {
                    Outcome::Editing => continue,
                    Outcome::Line(line) => return Some(line),
                    Outcome::EndOfInput => self.ended = true,
                }
            }
            if self.ended {
                return None;
            }
            if console_interrupts() != interrupts {
                self.editor.discard_line();
                println!("^C");
                return Some(String::new());
            }
            self.redraw_after_others(prompt);
            // A byte at a time: the kernel counts a Ctrl-C typed ahead once
            // what came before it is read, so the shell must not read past
            // the end of the command the Ctrl-C is meant for.
            let mut buffer = [0; 1];
            match user::console_read(&mut buffer) {
                Ok(0) => {
                    let _ = user::wait(Event::TIMER, 1);
                }
                Ok(count) => self.pending.extend(buffer[..count].iter().rev()),
                Err(_) => self.ended = true,
            }
        }
    }

    /// Draws the prompt and the line again, below, when someone else wrote
    /// to the console since it was drawn (the facts page says whether the
    /// latest write was ours; the shell's own echo does not count).
    fn redraw_after_others(&mut self, prompt: &str) {
        let writes = user::fact(|facts| &facts.console_writes);
        let ours = user::fact(|facts| &facts.console_last_write_yours) != 0;
        if writes == self.writes_seen || ours {
            return;
        }
        self.writes_seen = writes;
        let mut shown = Vec::new();
        self.editor.redraw(prompt, &mut shown);
        show(&shown);
    }
}

/// Writes what the line editor returned (ASCII and escape sequences).
fn show(bytes: &[u8]) {
    if !bytes.is_empty() {
        let _ = fs::write(1, bytes);
    }
}
