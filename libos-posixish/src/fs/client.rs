//! The file system as a process sees it: its descriptor table, the calls
//! that reach the file server (`server.rs`) through protected control
//! transfer, pipes that sleep until the server signals, the console, and
//! what a child inherits at spawn and fork. `mod.rs` has the overview.

use alloc::string::String;
use alloc::vec::Vec;

use exo_abi::mapping::MapFlags;
use exo_abi::syscall::Event;
use exo_abi::{Handle, Rights, user};

use super::protocol::{MAX_PAYLOAD, PAYLOAD, operation, set_word, word};
use crate::layout::FS_TRANSFER;
use crate::{Errno, exit_status, info_page, raw};

/// What a console read takes as the end of input (ASCII EOT, Ctrl-D).
pub const END_OF_INPUT: u8 = 0x04;
/// The most descriptors a process may have open.
const MAX_DESCRIPTORS: usize = 64;

/// An open descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Descriptor {
    Console,
    /// An open file of the server (its offset lives there, shared).
    File {
        open: u64,
        readable: bool,
        writable: bool,
    },
    PipeRead(u64),
    PipeWrite(u64),
}

impl Descriptor {
    /// Three words for a child's info page: kind, then two values.
    pub(crate) fn encode(self) -> [u64; 3] {
        match self {
            Descriptor::Console => [0, 0, 0],
            Descriptor::File {
                open,
                readable,
                writable,
            } => {
                let flags = u64::from(readable) | u64::from(writable) << 1;
                [1 | flags << 8, open, 0]
            }
            Descriptor::PipeRead(pipe) => [2, pipe, 0],
            Descriptor::PipeWrite(pipe) => [3, pipe, 0],
        }
    }

    pub(crate) fn decode([kind, a, _]: [u64; 3]) -> Descriptor {
        let flag = |bit: u64| (kind >> 8) & (1 << bit) != 0;
        match kind & 0xff {
            1 => Descriptor::File {
                open: a,
                readable: flag(0),
                writable: flag(1),
            },
            2 => Descriptor::PipeRead(a),
            3 => Descriptor::PipeWrite(a),
            _ => Descriptor::Console,
        }
    }

    /// The server object this descriptor holds, as the requests that add and
    /// remove a holder and their arguments: an open file, or a pipe's end.
    fn holder(self) -> Option<(u64, u64, [u64; 3])> {
        match self {
            Descriptor::File { open, .. } => {
                Some((operation::FILE_DUP, operation::FILE_CLOSE, [open, 0, 0]))
            }
            Descriptor::PipeRead(pipe) => {
                Some((operation::PIPE_DUP, operation::PIPE_CLOSE, [pipe, 0, 0]))
            }
            Descriptor::PipeWrite(pipe) => {
                Some((operation::PIPE_DUP, operation::PIPE_CLOSE, [pipe, 1, 0]))
            }
            Descriptor::Console => None,
        }
    }
}

/// How `open` opens a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    pub read: bool,
    pub write: bool,
    pub create: bool,
    pub truncate: bool,
    pub append: bool,
}

/// What `stat` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub is_directory: bool,
    pub size: u64,
}

/// The process's side of the file system: the server's endpoint, the
/// transfer page, and the descriptor table.
struct State {
    endpoint: Option<Handle>,
    transfer: Option<Handle>,
    /// This process's waiter number at the server, plus one, once registered.
    waiter: Option<u64>,
    descriptors: Vec<Option<Descriptor>>,
}

/// Held only for short, non-reentrant moments: never across a request.
static STATE: spin::Mutex<Option<State>> = spin::Mutex::new(None);
/// Held while the first process starts the server.
static STARTING: spin::Mutex<()> = spin::Mutex::new(());

#[allow(unsafe_code)]
// SAFETY: `process.rs` defines this symbol, with this signature.
unsafe extern "Rust" {
    /// Starts the file server and returns its endpoint: the first process
    /// does, at its first request that names a path or makes a pipe.
    /// Starting a process is the lifecycle layer's work, above this module,
    /// which reaches it by symbol as `entry` reaches `main`: so the code
    /// that spawns is linked only into programs that may need a server,
    /// not into one that never opens a file.
    safe fn libos_start_file_server() -> Result<Handle, Errno>;
}

fn with_state<T>(action: impl FnOnce(&mut State) -> T) -> T {
    action(STATE.lock().get_or_insert_with(initial_state))
}

/// The state a process starts with: what its parent gave it, or for the
/// first process the console on 0–2 and no server yet.
fn initial_state() -> State {
    let info = info_page::own();
    let descriptors = match &info {
        Some(info) => info
            .stdio
            .iter()
            .map(|&words| Some(Descriptor::decode(words)))
            .collect(),
        None => alloc::vec![Some(Descriptor::Console); 3],
    };
    State {
        endpoint: info.and_then(|info| info.fs_endpoint),
        transfer: None,
        waiter: None,
        descriptors,
    }
}

/// The file server's endpoint, if this process has one (`ENOSYS` if not):
/// what a request about a held file or pipe goes to, which exists only
/// where a server does.
fn endpoint() -> Result<Handle, Errno> {
    with_state(|state| state.endpoint).ok_or(Errno::ENOSYS)
}

/// The file server's endpoint, starting the server if this is the first
/// process (the one without a parent, whatever it has exec'd since).
fn endpoint_or_start() -> Result<Handle, Errno> {
    if let Ok(endpoint) = endpoint() {
        return Ok(endpoint);
    }
    if info_page::own().is_some_and(|info| info.parent != 0) {
        return Err(Errno::ENOSYS); // a parent without files started us
    }
    let _starting = STARTING.lock();
    if let Ok(endpoint) = endpoint() {
        return Ok(endpoint); // another thread started it meanwhile
    }
    let endpoint = libos_start_file_server()?;
    with_state(|state| state.endpoint = Some(endpoint));
    Ok(endpoint)
}

/// This process's transfer page, allocated and mapped at first use.
fn transfer() -> Result<Handle, Errno> {
    with_state(|state| {
        if let Some(transfer) = state.transfer {
            return Ok(transfer);
        }
        let (frame, _) = user::frame_allocate(0)?;
        user::map(
            frame,
            Handle::SELF_ENVIRONMENT,
            FS_TRANSFER,
            MapFlags::WRITE,
        )?;
        state.transfer = Some(frame);
        Ok(frame)
    })
}

/// Whether this process has a file server to talk to, without starting one.
pub fn has_server() -> bool {
    current_endpoint().is_some()
}

/// The file server's endpoint if this process has one (without starting
/// it): for a program that speaks the server's protocol (`protocol.rs`)
/// itself.
pub fn current_endpoint() -> Option<Handle> {
    STATE
        .lock()
        .as_ref()
        .and_then(|state| state.endpoint)
        .or_else(|| info_page::own()?.fs_endpoint)
}

/// The file server's program in the boot file system.
pub(crate) const SERVER: &str = "fsd";

/// Makes sure the file server runs (a shell does this first, so that
/// everything it starts shares one file tree).
pub fn start() -> Result<(), Errno> {
    endpoint_or_start().map(drop)
}

/// The bit the server's signal sets: a pipe this process waits on changed.
const PIPE_CHANGED: u64 = 1;
/// How long a pipe reader or writer sleeps at most without a signal.
const PIPE_RECHECK_TICKS: u64 = 100;

/// What a request's answer holds.
struct Answer {
    value: u64,
    second: u64,
    payload: Vec<u8>,
}

/// Calls the server with `arguments` and `capability`; returns its two results.
fn call_server(
    endpoint: Handle,
    arguments: [u64; 2],
    capability: Handle,
) -> Result<[u64; 2], Errno> {
    // The server takes one call at a time; a call that finds it busy waits
    // in the kernel's queue for it, first come first served (chapter 3.6).
    user::call_endpoint(endpoint, arguments, Some(capability))
        .map(|(results, _)| results)
        .map_err(Errno::from)
}

/// This process's waiter number at the server plus one, registering a
/// notification the first time; 0 if that cannot be done (the caller then
/// polls).
fn waiter() -> u64 {
    if let Some(waiter) = with_state(|state| state.waiter) {
        return waiter;
    }
    let register = || -> Result<u64, Errno> {
        let endpoint = endpoint()?;
        let notification = user::notification_create(PIPE_CHANGED)?;
        // The server gets a copy that may signal (and, as anything passed in
        // a call must, be granted) but not revoke.
        let signal_only = user::capability_derive(notification, Rights::SIGNAL | Rights::GRANT)?;
        let [status, number] = call_server(endpoint, [operation::REGISTER_WAITER, 0], signal_only)?;
        match status {
            0 => Ok(number + 1),
            code => Err(Errno::from_code(code)),
        }
    };
    let waiter = register().unwrap_or(0);
    with_state(|state| state.waiter = Some(waiter));
    waiter
}

/// Sleeps until a pipe this process was refused on changes: woken by the
/// server's signal, or after `PIPE_RECHECK_TICKS` in case another thread
/// of this process took the wakeup. Without a registration, a tick.
fn wait_for_pipe(waiter: u64) {
    if waiter == 0 {
        let _ = user::wait(Event::TIMER, 1);
    } else {
        let _ = user::wait(Event::NOTIFY | Event::TIMER, PIPE_RECHECK_TICKS);
    }
}

/// Sends one request to the file server and returns its answer.
fn request(op: u64, [a, b, c]: [u64; 3], payload: &[u8]) -> Result<Answer, Errno> {
    let endpoint = endpoint()?;
    let transfer = transfer()?;
    let mut transfer_page = raw::TransferPage::lock();
    {
        let page = transfer_page.bytes_mut();
        let length = payload.len().min(MAX_PAYLOAD);
        for (index, value) in [op, a, b, c, length as u64].into_iter().enumerate() {
            set_word(page, index, value);
        }
        page[PAYLOAD..PAYLOAD + length].copy_from_slice(&payload[..length]);
        let [status, _] = call_server(endpoint, [op, 0], transfer)?;
        if status != 0 {
            return Err(Errno::from_code(status));
        }
        let length = (word(page, 3) as usize).min(MAX_PAYLOAD);
        let payload = page[PAYLOAD..PAYLOAD + length].to_vec();
        Ok(Answer {
            value: word(page, 1),
            second: word(page, 2),
            payload,
        })
    }
}

/// A request naming a path; a relative path is taken from the working directory.
fn path_request(op: u64, a: u64, path: &str) -> Result<Answer, Errno> {
    let path = crate::variables::absolute(path);
    if path.len() > MAX_PAYLOAD {
        return Err(Errno::E2BIG);
    }
    endpoint_or_start()?;
    request(op, [a, 0, 0], path.as_bytes())
}

fn install(descriptor: Descriptor) -> Result<usize, Errno> {
    with_state(|state| {
        let free = state.descriptors.iter().position(Option::is_none);
        let fd = match free {
            Some(fd) => fd,
            None if state.descriptors.len() < MAX_DESCRIPTORS => {
                state.descriptors.push(None);
                state.descriptors.len() - 1
            }
            None => return Err(Errno::EMFILE),
        };
        state.descriptors[fd] = Some(descriptor);
        Ok(fd)
    })
    .inspect(|_| report_held())
}

/// Writes what this process holds at the file server into its exit-status
/// page (`exit_status::report_held`), for its parent to close if it is
/// killed holding them. Called after each change of the descriptors, and
/// before a close is sent: a process killed in between leaves a hold
/// unclosed, never one closed twice.
pub(crate) fn report_held() {
    let held: Vec<(u64, [u64; 3])> = with_state(|state| {
        state
            .descriptors
            .iter()
            .flatten()
            .filter_map(|descriptor| descriptor.holder())
            .map(|(_, close, object)| (close, object))
            .collect()
    });
    exit_status::report_held(&held);
}

/// Closes, for a child that ended holding it, one thing it held at the file
/// server (its exit-status page lists them). The page is the child's to
/// write, so only the two close requests are sent: a child that lists
/// anything else has it ignored (and can only name what it could already
/// close itself: the server checks no permissions).
pub(crate) fn close_for_ended_child(close: u64, object: [u64; 3]) {
    if close == operation::FILE_CLOSE || close == operation::PIPE_CLOSE {
        let _ = request(close, object, &[]);
    }
}

fn descriptor(fd: usize) -> Result<Descriptor, Errno> {
    with_state(|state| {
        state
            .descriptors
            .get(fd)
            .copied()
            .flatten()
            .ok_or(Errno::EBADF)
    })
}

/// Opens `path`; returns the new descriptor.
pub fn open(path: &str, options: OpenOptions) -> Result<usize, Errno> {
    let inode = match options.create {
        true => match path_request(operation::CREATE, u64::from(options.truncate), path) {
            // Creating without truncating opens a file that is already there.
            Err(Errno::EEXIST) if !options.truncate => path_request(operation::LOOKUP, 0, path)?,
            created => created?,
        },
        false => path_request(operation::LOOKUP, 0, path)?,
    }
    .value;
    let stat = request(operation::STAT, [inode, 0, 0], &[])?;
    if stat.value == 2 && (options.write || options.append) {
        return Err(Errno::EISDIR);
    }
    let open = request(operation::OPEN, [inode, u64::from(options.append), 0], &[])?.value;
    let descriptor = Descriptor::File {
        open,
        readable: options.read,
        writable: options.write || options.append,
    };
    install(descriptor).inspect_err(|_| {
        let _ = request(operation::FILE_CLOSE, [open, 0, 0], &[]);
    })
}

/// Reads into `buffer` from `fd`; 0 at the end of the file, pipe or input.
pub fn read(fd: usize, buffer: &mut [u8]) -> Result<usize, Errno> {
    match descriptor(fd)? {
        Descriptor::Console => read_console(buffer),
        Descriptor::File { open, readable, .. } => {
            if !readable {
                return Err(Errno::EBADF);
            }
            let wanted = buffer.len().min(MAX_PAYLOAD) as u64;
            let answer = request(operation::FILE_READ, [open, 0, wanted], &[])?;
            buffer[..answer.payload.len()].copy_from_slice(&answer.payload);
            Ok(answer.payload.len())
        }
        Descriptor::PipeRead(pipe) => loop {
            let wanted = buffer.len().min(MAX_PAYLOAD) as u64;
            let waiter = waiter();
            match request(operation::PIPE_READ, [pipe, waiter, wanted], &[]) {
                Ok(answer) => {
                    buffer[..answer.payload.len()].copy_from_slice(&answer.payload);
                    return Ok(answer.payload.len());
                }
                Err(Errno::EAGAIN) => wait_for_pipe(waiter),
                Err(error) => return Err(error),
            }
        },
        Descriptor::PipeWrite(_) => Err(Errno::EBADF),
    }
}

/// Waits for console input; 0 at Ctrl-D. Reads a byte at a time and at most
/// a line, as a terminal hands over input: what was typed after it stays in
/// the console for whoever reads next (the shell, once this program ends),
/// and Ctrl-D ends the input where it was typed.
fn read_console(buffer: &mut [u8]) -> Result<usize, Errno> {
    let mut count = 0;
    while count < buffer.len() {
        let mut byte = [0; 1];
        if user::console_read(&mut byte)? == 0 {
            if count > 0 {
                break;
            }
            let _ = user::wait(Event::TIMER, 1);
            continue;
        }
        if byte[0] == END_OF_INPUT {
            break;
        }
        buffer[count] = byte[0];
        count += 1;
        if byte[0] == b'\n' {
            break;
        }
    }
    Ok(count)
}

/// Writes all of `bytes` to `fd`.
pub fn write(fd: usize, bytes: &[u8]) -> Result<usize, Errno> {
    let mut written = 0;
    while written < bytes.len() {
        written += write_some(fd, &bytes[written..])?;
    }
    Ok(written)
}

fn write_some(fd: usize, bytes: &[u8]) -> Result<usize, Errno> {
    let chunk = &bytes[..bytes.len().min(MAX_PAYLOAD)];
    match descriptor(fd)? {
        Descriptor::Console => user::console_write(chunk).map_err(Errno::from),
        Descriptor::File { open, writable, .. } => {
            if !writable {
                return Err(Errno::EBADF);
            }
            Ok(request(operation::FILE_WRITE, [open, 0, 0], chunk)?.value as usize)
        }
        Descriptor::PipeWrite(pipe) => loop {
            let waiter = waiter();
            match request(operation::PIPE_WRITE, [pipe, waiter, 0], chunk) {
                Ok(answer) => return Ok(answer.value as usize),
                Err(Errno::EAGAIN) => wait_for_pipe(waiter),
                Err(error) => return Err(error),
            }
        },
        Descriptor::PipeRead(_) => Err(Errno::EBADF),
    }
}

/// Writes to standard output as well as it can: a program's printing must
/// never fail it. Falls back to the console when the descriptor state is busy
/// (printing from the fault handler while the interrupted code held it).
pub(crate) fn write_stdout(bytes: &[u8]) {
    let stdout = STATE.try_lock().map(|mut state| {
        state
            .get_or_insert_with(initial_state)
            .descriptors
            .get(1)
            .copied()
            .flatten()
    });
    match stdout {
        Some(Some(Descriptor::Console)) | None => {
            let _ = user::console_write(bytes);
        }
        Some(Some(_)) => {
            let _ = write(1, bytes);
        }
        Some(None) => {}
    }
}

/// Closes `fd`.
pub fn close(fd: usize) -> Result<(), Errno> {
    let closed = with_state(|state| state.descriptors.get_mut(fd).and_then(Option::take))
        .ok_or(Errno::EBADF)?;
    report_held();
    if let Some((_, close, object)) = closed.holder() {
        request(close, object, &[])?;
    }
    Ok(())
}

/// Descriptors 0–2 as they are, for the image `exec` starts (which holds
/// them instead of this one: no holder changes).
pub(crate) fn own_stdio() -> [[u64; 3]; 3] {
    core::array::from_fn(|fd| descriptor(fd).unwrap_or(Descriptor::Console).encode())
}

/// Closes every descriptor above 2 (before `exec`, which passes on only 0–2).
pub(crate) fn close_above_stdio() {
    let count = with_state(|state| state.descriptors.len());
    for fd in 3..count {
        let _ = close(fd);
    }
}

/// Closes every descriptor (at exit, so pipe readers see the end).
pub(crate) fn close_all() {
    let count = match STATE.try_lock() {
        Some(state) => state.as_ref().map_or(0, |state| state.descriptors.len()),
        None => return,
    };
    for fd in 0..count {
        let _ = close(fd);
    }
}

/// Moves `fd`'s offset: `whence` 0 from the start, 1 from the current
/// offset, 2 from the end. Returns the new offset.
pub fn lseek(fd: usize, offset: i64, whence: u32) -> Result<u64, Errno> {
    let Descriptor::File { open, .. } = descriptor(fd)? else {
        return Err(Errno::EINVAL); // ESPIPE in POSIX
    };
    Ok(request(
        operation::SEEK,
        [open, offset as u64, u64::from(whence)],
        &[],
    )?
    .value)
}

/// Makes `to` refer to what `from` does (closing what `to` held).
pub fn dup2(from: usize, to: usize) -> Result<usize, Errno> {
    let descriptor = descriptor(from)?;
    if to >= MAX_DESCRIPTORS {
        return Err(Errno::EBADF);
    }
    if from == to {
        return Ok(to);
    }
    let _ = close(to);
    if let Some((dup, _, object)) = descriptor.holder() {
        request(dup, object, &[])?;
    }
    with_state(|state| {
        if state.descriptors.len() <= to {
            state.descriptors.resize(to + 1, None);
        }
        state.descriptors[to] = Some(descriptor);
    });
    report_held();
    Ok(to)
}

/// A pipe: (read end, write end).
pub fn pipe() -> Result<(usize, usize), Errno> {
    endpoint_or_start()?;
    let pipe = request(operation::PIPE, [0; 3], &[])?.value;
    Ok((
        install(Descriptor::PipeRead(pipe))?,
        install(Descriptor::PipeWrite(pipe))?,
    ))
}

fn stat_inode(inode: u64) -> Result<Stat, Errno> {
    let answer = request(operation::STAT, [inode, 0, 0], &[])?;
    Ok(Stat {
        is_directory: answer.value == 2,
        size: answer.second,
    })
}

pub fn stat(path: &str) -> Result<Stat, Errno> {
    stat_inode(path_request(operation::LOOKUP, 0, path)?.value)
}

pub fn mkdir(path: &str) -> Result<(), Errno> {
    path_request(operation::MKDIR, 0, path).map(drop)
}

pub fn unlink(path: &str) -> Result<(), Errno> {
    path_request(operation::UNLINK, 0, path).map(drop)
}

pub fn rename(from: &str, to: &str) -> Result<(), Errno> {
    let mut both = crate::variables::absolute(from);
    both.push('\0');
    both.push_str(&crate::variables::absolute(to));
    path_request(operation::RENAME, 0, &both).map(drop)
}

/// The names in directory `path`, sorted.
pub fn readdir(path: &str) -> Result<Vec<String>, Errno> {
    let answer = path_request(operation::READDIR, 0, path)?;
    Ok(answer
        .payload
        .split(|&byte| byte == 0)
        .filter(|name| !name.is_empty())
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect())
}

/// The input of a text tool: the file named by its argument, or standard
/// input (descriptor 0) without one.
pub fn open_input(path: Option<&str>) -> Result<usize, Errno> {
    match path {
        None => Ok(0),
        Some(path) => open(
            path,
            OpenOptions {
                read: true,
                ..OpenOptions::default()
            },
        ),
    }
}

/// Calls `line` with each line of `fd` (without its newline) until it
/// returns false or the input ends: the text tools' reading loop.
pub fn for_each_line(fd: usize, mut line: impl FnMut(&str) -> bool) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buffer = [0; 1024];
    loop {
        let count = read(fd, &mut buffer).unwrap_or(0);
        if count == 0 {
            break;
        }
        pending.extend_from_slice(&buffer[..count]);
        while let Some(end) = pending.iter().position(|&byte| byte == b'\n') {
            let text = String::from_utf8_lossy(&pending[..end]).into_owned();
            pending.drain(..=end);
            if !line(&text) {
                return;
            }
        }
    }
    if !pending.is_empty() {
        line(&String::from_utf8_lossy(&pending));
    }
}

/// Descriptors 0–2 for a child, as `process` writes them in its info page:
/// `stdio[i]` (a descriptor of this process) or this process's own `i`.
/// An open file or pipe end handed on counts one holder more at the server,
/// noted in `handed_on` (see `close_handed_on`).
pub(crate) fn stdio_for_child(
    stdio: [Option<usize>; 3],
    handed_on: &mut Vec<(u64, [u64; 3])>,
) -> Result<[[u64; 3]; 3], Errno> {
    let mut words = [[0; 3]; 3];
    for (index, choice) in stdio.iter().enumerate() {
        let descriptor = descriptor(choice.unwrap_or(index)).unwrap_or(Descriptor::Console);
        if let Some(holder) = descriptor.holder() {
            count_holder(holder, handed_on)?;
        }
        words[index] = descriptor.encode();
    }
    Ok(words)
}

/// Counts one holder more of an open file or pipe end for a child, and
/// notes how to give it back.
fn count_holder(
    (dup, close, object): (u64, u64, [u64; 3]),
    handed_on: &mut Vec<(u64, [u64; 3])>,
) -> Result<(), Errno> {
    request(dup, object, &[])?;
    handed_on.push((close, object));
    Ok(())
}

/// Gives back the holders counted for a child that never started.
pub(crate) fn close_handed_on(handed_on: &[(u64, [u64; 3])]) {
    for &(close, object) in handed_on {
        let _ = request(close, object, &[]);
    }
}

/// A capability to the file server for a child, if this process has one.
pub(crate) fn endpoint_for_child(child: Handle) -> Result<Option<(Handle, Handle)>, Errno> {
    let Some(ours) = current_endpoint() else {
        return Ok(None);
    };
    let copy = user::capability_derive(ours, Rights::CALL | Rights::GRANT)?;
    let theirs = user::capability_grant(copy, child, Rights::CALL | Rights::GRANT)?;
    Ok(Some((copy, theirs)))
}

/// After fork, in the child: the endpoint and transfer page it inherited
/// are the parent's handles, which mean nothing here; its own arrive in its
/// info page. Its descriptors stay (the parent counted its holders).
pub(crate) fn after_fork_in_child() {
    if let Some(state) = STATE.lock().as_mut() {
        state.endpoint = info_page::own().and_then(|info| info.fs_endpoint);
        state.transfer = None;
        state.waiter = None; // the parent's notification wakes the parent
    }
    // Its own exit-status page starts empty.
    report_held();
}

/// Before fork copies memory: builds the descriptor table if nothing used it
/// yet, so the child's copy of this process's memory holds it (a forked
/// child's info page has no descriptors to start from).
pub(crate) fn prepare_for_fork() {
    with_state(|_| ());
}

/// During fork, in the parent: every open file and pipe end it holds gains
/// a holder (the child's copy of the table holds them too).
pub(crate) fn count_holders_for_fork(handed_on: &mut Vec<(u64, [u64; 3])>) -> Result<(), Errno> {
    let held: Vec<(u64, u64, [u64; 3])> = with_state(|state| {
        state
            .descriptors
            .iter()
            .flatten()
            .filter_map(|d| d.holder())
            .collect()
    });
    for holder in held {
        count_holder(holder, handed_on)?;
    }
    Ok(())
}
