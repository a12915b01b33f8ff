//! The file server: one environment holding the file tree and the pipes,
//! serving every process of the library OS through protected control
//! transfer (`protocol.rs`).
//!
//! The first process that needs files starts it (`fs::endpoint`). At start
//! it fills `/bin` with the programs of the boot file system (read-only),
//! makes `/tmp`, creates its endpoint, grants it to its parent, and
//! publishes the handle through its report page. Then it waits for calls,
//! forever. It holds nothing of a client's but the transfer page it is
//! given for one request, and the notification a client registers to be
//! woken when a pipe it waits on changes; a request it cannot serve gets an errno (EINVAL
//! for a malformed one, ENOSYS for an unknown operation, EFAULT for a page
//! it cannot map, EBADF for an unknown pipe). It checks no permissions: any
//! client may name any file, or any pipe by number.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use exo_abi::syscall::{CapabilityKind, Event};
use exo_abi::user::{self, IncomingCall, Wakeup};
use exo_abi::{Handle, Rights};
use posixish_memfs::{FileSystem, FsError, Kind};

use super::protocol::{MAX_PAYLOAD, PAYLOAD, operation, set_word, word};
use crate::{Errno, bootfs, exit_status, info_page, raw};

/// A pipe holds at most this many bytes; a writer then waits.
const PIPE_CAPACITY: usize = 16 * 1024;
/// Notifications registered as pipe waiters, at most. Calls carry no
/// caller's name, so there is no bound per client; a registration beyond
/// this is refused (`EAGAIN`), and its client rechecks its pipes every tick
/// instead of sleeping until woken. Without it, one client registering
/// again and again filled this server's capability table, and every file
/// call of every process failed.
const MAX_WAITERS: usize = 256;

/// A file as it is open: where reads and writes happen next.
#[derive(Debug)]
struct OpenFile {
    inode: usize,
    offset: u64,
    append: bool,
    holders: u64,
}

#[derive(Debug, Default)]
struct Pipe {
    bytes: VecDeque<u8>,
    readers: u64,
    writers: u64,
    /// Waiters refused with `EAGAIN` since the pipe last changed.
    waiting: Vec<usize>,
}

struct Server {
    tree: FileSystem,
    opens: Vec<Option<OpenFile>>,
    pipes: Vec<Option<Pipe>>,
    /// Registered clients' notifications, by waiter number.
    waiters: Vec<Option<Handle>>,
}

/// Runs the file server; never returns.
pub fn run() -> ! {
    let mut server = Server {
        tree: FileSystem::new(),
        opens: Vec::new(),
        pipes: Vec::new(),
        waiters: Vec::new(),
    };
    server.populate();
    let endpoint = user::endpoint_create(0).expect("create the file server's endpoint");
    publish(endpoint);
    loop {
        match user::wait(Event::CALL, 0) {
            Ok(Wakeup::Call(call)) if call.arguments[0] == operation::REGISTER_WAITER => {
                let registered = server.waiters.iter().flatten().count();
                let answer = match call.capability {
                    Some(notification) if registered >= MAX_WAITERS => {
                        raw::drop_notification(notification);
                        [Errno::EAGAIN as u64, 0]
                    }
                    Some(notification) if is_notification(notification) => {
                        [0, insert(&mut server.waiters, notification) as u64]
                    }
                    other => {
                        if let Some(capability) = other {
                            raw::drop_notification(capability);
                        }
                        [Errno::EINVAL as u64, 0]
                    }
                };
                let _ = user::reply(answer, None);
            }
            Ok(Wakeup::Call(call)) => {
                let status = server.serve(&call);
                let _ = user::reply([status, 0], None);
            }
            Ok(Wakeup::Timer | Wakeup::Notify(_)) | Err(_) => {}
        }
    }
}

/// Whether `capability` is a notification this server may signal.
fn is_notification(capability: Handle) -> bool {
    user::capability_identify(capability).is_ok_and(|info| {
        info.kind == CapabilityKind::Notification && info.rights.contains(Rights::SIGNAL)
    })
}

/// Grants the endpoint to the parent and tells it the handle through the report page.
fn publish(endpoint: Handle) {
    let parent = info_page::own().and_then(|info| info.parent_environment);
    let granted = parent.and_then(|parent| {
        user::capability_grant(endpoint, parent, Rights::CALL | Rights::GRANT).ok()
    });
    match granted {
        Some(handle) => exit_status::publish(handle.to_raw()),
        None => crate::println!("fsd: no parent to serve; files are unavailable"),
    }
}

impl Server {
    /// The boot file system's files, read-only: programs at `/bin/NAME`,
    /// and files whose name has a `/` (data, such as `www/index.html` or
    /// `etc/rc`) at `/NAME`, with their directories; and an empty `/tmp`.
    fn populate(&mut self) {
        let _ = self.tree.mkdir("/bin");
        let _ = self.tree.mkdir("/tmp");
        if let Some(filesystem) = bootfs::open() {
            for file in filesystem.files() {
                let path = if file.name.contains('/') {
                    let path = alloc::format!("/{}", file.name);
                    for (at, _) in path.match_indices('/').skip(1) {
                        let _ = self.tree.mkdir(&path[..at]);
                    }
                    path
                } else {
                    alloc::format!("/bin/{}", file.name)
                };
                let _ = self.tree.add_read_only(&path, file.contents);
            }
        }
    }

    /// Serves one call; returns its status (0 or an errno).
    fn serve(&mut self, call: &IncomingCall) -> u64 {
        let Some(page_capability) = call.capability else {
            return Errno::EINVAL as u64;
        };
        // The window owns the capability: both go when it does.
        let Ok(mut window) = raw::Window::client_page(page_capability) else {
            return Errno::EFAULT as u64;
        };
        let page = window.bytes_mut();
        let status = match self.handle(page) {
            Ok(()) => 0,
            Err(errno) => errno as u64,
        };
        set_word(page, 0, status);
        status
    }

    fn handle(&mut self, page: &mut [u8]) -> Result<(), Errno> {
        let [op, a, b, c] = [word(page, 0), word(page, 1), word(page, 2), word(page, 3)];
        let length = (word(page, 4) as usize).min(MAX_PAYLOAD);
        let payload = page[PAYLOAD..PAYLOAD + length].to_vec();
        let path = || core::str::from_utf8(&payload).map_err(|_| Errno::EINVAL);
        let answer = |page: &mut [u8], value: u64, second: u64, bytes: &[u8]| {
            set_word(page, 1, value);
            set_word(page, 2, second);
            set_word(page, 3, bytes.len() as u64);
            page[PAYLOAD..PAYLOAD + bytes.len()].copy_from_slice(bytes);
        };
        match op {
            operation::LOOKUP => answer(
                page,
                self.tree.lookup(path()?).map_err(errno)? as u64,
                0,
                &[],
            ),
            operation::CREATE => {
                let inode = match self.tree.create(path()?) {
                    Err(FsError::Exists) if a == 1 => {
                        let inode = self.tree.lookup(path()?).map_err(errno)?;
                        self.tree.truncate(inode, 0).map_err(errno)?;
                        inode
                    }
                    other => other.map_err(errno)?,
                };
                answer(page, inode as u64, 0, &[]);
            }
            operation::MKDIR => answer(
                page,
                self.tree.mkdir(path()?).map_err(errno)? as u64,
                0,
                &[],
            ),
            operation::UNLINK => {
                self.tree.unlink(path()?).map_err(errno)?;
                answer(page, 0, 0, &[]);
            }
            operation::RENAME => {
                let both = path()?;
                let (from, to) = both.split_once('\0').ok_or(Errno::EINVAL)?;
                self.tree.rename(from, to).map_err(errno)?;
                answer(page, 0, 0, &[]);
            }
            operation::STAT => {
                let stat = self.tree.stat(a as usize).map_err(errno)?;
                let kind = if stat.kind == Kind::Directory { 2 } else { 1 };
                answer(page, kind, stat.size, &[]);
            }
            operation::OPEN => {
                self.tree.stat(a as usize).map_err(errno)?;
                let file = OpenFile {
                    inode: a as usize,
                    offset: 0,
                    append: b == 1,
                    holders: 1,
                };
                let id = insert(&mut self.opens, file);
                answer(page, id as u64, 0, &[]);
            }
            operation::FILE_READ => {
                let file = open_file(&mut self.opens, a)?;
                let mut bytes = alloc::vec![0; (c as usize).min(MAX_PAYLOAD)];
                let count = self
                    .tree
                    .read(file.inode, file.offset, &mut bytes)
                    .map_err(errno)?;
                file.offset += count as u64;
                answer(page, count as u64, 0, &bytes[..count]);
            }
            operation::FILE_WRITE => {
                let file = open_file(&mut self.opens, a)?;
                if file.append {
                    file.offset = self.tree.stat(file.inode).map_err(errno)?.size;
                }
                let count = self
                    .tree
                    .write(file.inode, file.offset, &payload)
                    .map_err(errno)?;
                file.offset += count as u64;
                answer(page, count as u64, 0, &[]);
            }
            operation::SEEK => {
                let file = open_file(&mut self.opens, a)?;
                let base = match c {
                    0 => 0,
                    1 => file.offset,
                    2 => self.tree.stat(file.inode).map_err(errno)?.size,
                    _ => return Err(Errno::EINVAL),
                };
                file.offset = base.checked_add_signed(b as i64).ok_or(Errno::EINVAL)?;
                answer(page, file.offset, 0, &[]);
            }
            operation::FILE_DUP | operation::FILE_CLOSE => {
                let file = open_file(&mut self.opens, a)?;
                if op == operation::FILE_DUP {
                    file.holders += 1;
                } else {
                    file.holders -= 1;
                }
                if file.holders == 0 {
                    self.opens[a as usize] = None;
                }
                answer(page, 0, 0, &[]);
            }
            operation::READDIR => {
                let mut names = Vec::new();
                for name in self.tree.readdir(path()?).map_err(errno)? {
                    if names.len() + name.len() + 1 > MAX_PAYLOAD {
                        break;
                    }
                    names.extend_from_slice(name.as_bytes());
                    names.push(0);
                }
                answer(page, 0, 0, &names);
            }
            operation::PIPE => {
                let id = self.new_pipe();
                answer(page, id as u64, 0, &[]);
            }
            operation::PIPE_READ => {
                let pipe = self.pipe(a)?;
                if pipe.bytes.is_empty() && pipe.writers > 0 {
                    return Err(self.refuse(a, b));
                }
                // Empty with no writer left: the end of the pipe, 0 bytes.
                let count = (c as usize).min(MAX_PAYLOAD).min(pipe.bytes.len());
                let bytes: Vec<u8> = pipe.bytes.drain(..count).collect();
                answer(page, count as u64, 0, &bytes);
                self.wake(a);
            }
            operation::PIPE_WRITE => {
                let pipe = self.pipe(a)?;
                if pipe.readers == 0 {
                    return Err(Errno::EPIPE);
                }
                let room = PIPE_CAPACITY - pipe.bytes.len();
                if room == 0 {
                    return Err(self.refuse(a, b));
                }
                let count = payload.len().min(room);
                pipe.bytes.extend(&payload[..count]);
                answer(page, count as u64, 0, &[]);
                self.wake(a);
            }
            operation::PIPE_CLOSE | operation::PIPE_DUP => {
                let step = |count: &mut u64| {
                    *count = if op == operation::PIPE_DUP {
                        *count + 1
                    } else {
                        count.saturating_sub(1)
                    }
                };
                let pipe = self.pipe(a)?;
                match b {
                    0 => step(&mut pipe.readers),
                    1 => step(&mut pipe.writers),
                    _ => return Err(Errno::EINVAL),
                }
                if pipe.readers == 0 && pipe.writers == 0 {
                    self.pipes[a as usize] = None;
                } else {
                    self.wake(a);
                }
                answer(page, 0, 0, &[]);
            }
            _ => return Err(Errno::ENOSYS),
        }
        Ok(())
    }

    /// `EAGAIN` for a request on `pipe`, noting waiter `waiter` (number + 1;
    /// 0 for none) to be signalled when the pipe changes.
    fn refuse(&mut self, pipe: u64, waiter: u64) -> Errno {
        let registered = usize::try_from(waiter.wrapping_sub(1))
            .ok()
            .filter(|&number| matches!(self.waiters.get(number), Some(Some(_))));
        if let (Some(number), Ok(pipe)) = (registered, self.pipe(pipe))
            && !pipe.waiting.contains(&number)
        {
            pipe.waiting.push(number);
        }
        Errno::EAGAIN
    }

    /// Signals every waiter of `pipe`: it changed. A waiter whose process is
    /// gone (its notification stale) is forgotten.
    fn wake(&mut self, pipe: u64) {
        let Ok(pipe) = self.pipe(pipe) else { return };
        for number in core::mem::take(&mut pipe.waiting) {
            if let Some(Some(notification)) = self.waiters.get(number).copied()
                && user::signal(notification).is_err()
            {
                self.waiters[number] = None;
                raw::drop_notification(notification);
            }
        }
    }

    fn new_pipe(&mut self) -> usize {
        insert(
            &mut self.pipes,
            Pipe {
                bytes: VecDeque::new(),
                readers: 1,
                writers: 1,
                waiting: Vec::new(),
            },
        )
    }

    fn pipe(&mut self, id: u64) -> Result<&mut Pipe, Errno> {
        self.pipes
            .get_mut(id as usize)
            .and_then(Option::as_mut)
            .ok_or(Errno::EBADF)
    }
}

/// Puts `object` in the first free place of `table`; returns its number.
fn insert<T>(table: &mut Vec<Option<T>>, object: T) -> usize {
    match table.iter().position(Option::is_none) {
        Some(free) => {
            table[free] = Some(object);
            free
        }
        None => {
            table.push(Some(object));
            table.len() - 1
        }
    }
}

/// The open file numbered `id`.
fn open_file(opens: &mut [Option<OpenFile>], id: u64) -> Result<&mut OpenFile, Errno> {
    opens
        .get_mut(id as usize)
        .and_then(Option::as_mut)
        .ok_or(Errno::EBADF)
}

/// The errno for a tree error.
pub fn errno(error: FsError) -> Errno {
    match error {
        FsError::NotFound => Errno::ENOENT,
        FsError::NotADirectory => Errno::ENOTDIR,
        FsError::IsADirectory => Errno::EISDIR,
        FsError::Exists => Errno::EEXIST,
        FsError::NotEmpty => Errno::ENOTEMPTY,
        FsError::ReadOnly => Errno::EROFS,
        FsError::InvalidPath => Errno::EINVAL,
        FsError::TooLarge => Errno::EFBIG,
    }
}
