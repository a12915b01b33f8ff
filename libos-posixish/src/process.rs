//! Processes: spawning a program of the boot file system, waiting for it,
//! killing it.
//!
//! A process is an environment this library OS built. `spawn` does what an
//! operating system's exec does, in the parent: it creates an empty
//! environment, loads the program's ELF segments into fresh frames, gives it
//! a stack, capabilities for the boot file system (mapped only when the
//! child reads it, `bootfs`) and a process-info page with its arguments,
//! and starts it. The parent holds the capabilities of the frames
//! it loaded (so they return when it reaps the child) and the child's root
//! environment capability (so the child ends if the parent does).
//!
//! A child reports its exit status by writing it to its exit-status page
//! (`exit_status`) before it exits; a child that was killed, or died of a
//! fault it did not survive, never writes it, and `wait` says so.
//!
//! Lifecycle layer: what a child inherits beyond its image and stack is
//! `inherit`'s list; the spawner says what to withhold (the file server,
//! [`start_file_server`], gets no network address). The info page's format
//! is `info_page`'s.

use alloc::vec::Vec;

use elf::ElfBytes;
use elf::abi::{EM_X86_64, ET_EXEC, PF_W, PF_X, PT_LOAD};
use elf::endian::LittleEndian;
use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::MapFlags;
use exo_abi::syscall::{EnvironmentAccount, Event};
use exo_abi::{Handle, user};
use posixish_policy::program_image::Segment;

use crate::child::Child;
use crate::info_page::{InfoPage, StringsTooLong};
use crate::inherit::{self, Descriptors, Role};
use crate::layout::{EXIT_STATUS, PROCESS_INFO, STACK_INITIAL_PAGES, STACK_TOP};
use crate::{Errno, bootfs, exit_status, facts, fs, image_cache, raw};

pub use crate::exit_status::{ExitStatus, publish};
pub use crate::info_page::{ProcessInfo, own as info, own_arguments as arguments};

/// Frames a child may use for its own heap, stacks and page tables, unless the
/// caller says otherwise: 4 MiB.
pub const DEFAULT_QUOTA: u64 = 1024;

/// Where a child's exit-status page is read: word by word, through the
/// scratch page.
fn read_child_exit_page<T>(
    page: Handle,
    read: impl FnOnce(&dyn Fn(usize) -> u64) -> T,
) -> Option<T> {
    let scratch = raw::Window::scratch(page, MapFlags::empty()).ok()?;
    Some(read(&|offset| scratch.read_word(offset)))
}

/// What child `pid` has published, if anything yet.
pub fn published(pid: u64) -> Option<u64> {
    let page = CHILDREN
        .lock()
        .iter()
        .find(|child| child.pid == pid)?
        .exit_status_page;
    read_child_exit_page(page, |word| exit_status::decode_published(word))?
}

/// Whether child `pid` still runs.
pub fn is_running(pid: u64) -> bool {
    let environment = CHILDREN
        .lock()
        .iter()
        .find(|child| child.pid == pid)
        .map(|child| child.environment);
    environment.is_some_and(|environment| {
        user::environment_info(environment, EnvironmentAccount::Id).is_ok()
    })
}

static CHILDREN: spin::Mutex<Vec<Child>> = spin::Mutex::new(Vec::new());
/// The file server's process id, if this process started it: it outlives the
/// other children at exit, which need it to close what they held.
static FILE_SERVER: spin::Once<u64> = spin::Once::new();
/// How `exit` ends the children left behind ([`kill_and_reap_children`]),
/// named when the first child is recorded. Reaching it through this pointer
/// keeps the code that kills and reaps out of every program that never
/// starts a child (a server), as `net::DHCP` keeps the DHCP client out.
static CHILDREN_TO_END: spin::Once<fn()> = spin::Once::new();

/// Records a child of this process.
fn record(child: Child) {
    CHILDREN_TO_END.call_once(|| kill_and_reap_children);
    CHILDREN.lock().push(child);
}

/// Records a child built elsewhere (`fork`).
pub(crate) fn adopt(child: Child) {
    record(child);
}

/// In a forked child: the parent's list of children came with the copy of
/// its memory, but those children are not this process's.
pub(crate) fn forget_inherited_children() {
    let inherited = core::mem::take(&mut *CHILDREN.lock());
    drop(inherited);
}

/// Starts program `program` of the boot file system with `arguments` (its
/// name is added in front) and the default quota; returns its process id.
pub fn spawn(program: &str, arguments: &[&str]) -> Result<u64, Errno> {
    spawn_with_quota(program, arguments, DEFAULT_QUOTA)
}

/// [`spawn`] with a frame quota of `quota` lent from this process's.
pub fn spawn_with_quota(program: &str, arguments: &[&str], quota: u64) -> Result<u64, Errno> {
    spawn_with(program, arguments, quota, [None; 3])
}

/// [`spawn_with_quota`], with the child's descriptors 0–2 taken from this
/// process's descriptors `stdio` (`None`: the same number, as usual).
pub fn spawn_with(
    program: &str,
    arguments: &[&str],
    quota: u64,
    stdio: [Option<usize>; 3],
) -> Result<u64, Errno> {
    spawn_sharing(
        program,
        arguments,
        quota,
        Descriptors::Chosen(stdio),
        Role::Program,
    )
}

/// Starts the file server (`fs::SERVER`) and waits until it publishes its
/// endpoint. It gets no network address: starting it (the shell's first
/// act) claims none, so `/etc/rc` can still say how. The file system's
/// client calls it by this symbol (`fs/client.rs` says why), in the first
/// process only.
#[allow(unsafe_code)]
#[unsafe(export_name = "libos_start_file_server")]
fn start_file_server() -> Result<Handle, Errno> {
    let pid = spawn_sharing(
        crate::fs::SERVER,
        &[],
        DEFAULT_QUOTA,
        Descriptors::Chosen([None; 3]),
        Role::FileServer,
    )?;
    FILE_SERVER.call_once(|| pid);
    loop {
        match published(pid) {
            Some(handle) => return Ok(Handle::from_raw(handle)),
            None if is_running(pid) => {
                let _ = user::wait(Event::TIMER, 1);
            }
            None => return Err(Errno::ENOSYS),
        }
    }
}

/// [`spawn_with`], with what the child inherits beyond its descriptors.
fn spawn_sharing(
    program: &str,
    arguments: &[&str],
    quota: u64,
    descriptors: Descriptors,
    role: Role,
) -> Result<u64, Errno> {
    let (image, elf) = load_program(program)?;
    let info = new_info_page(program, arguments)?;
    let environment = user::environment_create(quota)?;
    let mut child = Child::new(environment);
    match build(&mut child, program, &elf, image, info, descriptors, role) {
        Ok(()) => {
            let pid = child.pid;
            record(child);
            Ok(pid)
        }
        Err(error) => {
            child.abandon();
            Err(error)
        }
    }
}

/// `program` of the boot file system, and its ELF header, checked to be an
/// x86_64 executable.
pub(crate) fn load_program(
    program: &str,
) -> Result<(&'static [u8], ElfBytes<'static, LittleEndian>), Errno> {
    let filesystem = bootfs::open().ok_or(Errno::ENOENT)?;
    let image = filesystem.find(program).ok_or(Errno::ENOENT)?.contents;
    let elf = ElfBytes::<LittleEndian>::minimal_parse(image).map_err(|_| Errno::ENOEXEC)?;
    if elf.ehdr.e_type != ET_EXEC || elf.ehdr.e_machine != EM_X86_64 {
        return Err(Errno::ENOEXEC);
    }
    Ok((image, elf))
}

/// Calls `page` with the address, contents (up to a page; the rest is
/// zero) and permissions of every page of every loadable segment of the
/// program `image`, whose header is `elf`; a segment
/// outside the image or user memory is `ENOEXEC` (`program_image`'s rule).
pub(crate) fn for_each_image_page(
    elf: &ElfBytes<'_, LittleEndian>,
    image: &[u8],
    mut page: impl FnMut(u64, &[u8], MapFlags) -> Result<(), Errno>,
) -> Result<(), Errno> {
    let segments = elf.segments().ok_or(Errno::ENOEXEC)?;
    for segment in segments.iter().filter(|segment| segment.p_type == PT_LOAD) {
        let numbers = Segment {
            address: segment.p_vaddr,
            file_offset: segment.p_offset,
            file_size: segment.p_filesz,
            memory_size: segment.p_memsz,
        };
        let file = numbers
            .checked(image.len())
            .map(|bytes| &image[bytes])
            .ok_or(Errno::ENOEXEC)?;
        let mut flags = MapFlags::empty();
        if segment.p_flags & PF_W != 0 {
            flags |= MapFlags::WRITE;
        }
        if segment.p_flags & PF_X != 0 {
            flags |= MapFlags::EXECUTE;
        }
        for (address, contents) in numbers.pages(file) {
            page(address, &file[contents], flags)?;
        }
    }
    Ok(())
}

/// Loads `program` (its header `elf`, its file `image`) into the child and
/// starts it. Read-only pages come from the image cache (`image_cache`) while it
/// has room; writable ones are the child's own.
fn build(
    child: &mut Child,
    program: &str,
    elf: &ElfBytes<'_, LittleEndian>,
    image: &[u8],
    mut info: InfoPage,
    descriptors: Descriptors,
    role: Role,
) -> Result<(), Errno> {
    for_each_image_page(elf, image, |address, contents, flags| {
        if !flags.contains(MapFlags::WRITE)
            && let Some(frame) = image_cache::read_only_page(program, address, contents)?
        {
            return Ok(user::map(frame, child.environment, address, flags)?);
        }
        child.map_page(address, contents, flags).map(drop)
    })?;
    for page in 1..=STACK_INITIAL_PAGES {
        child.map_page(STACK_TOP - page * PAGE_SIZE, &[], MapFlags::WRITE)?;
    }
    inherit::for_child(child, &mut info, descriptors, role)?;
    child.map_page(PROCESS_INFO, info.bytes(), MapFlags::empty())?;
    let exit_page = exit_status::page_holding(&child.handed_on);
    child.exit_status_page = child.map_page(EXIT_STATUS, &exit_page, MapFlags::WRITE)?;
    child.pid = user::capability_identify(child.environment)?.value;
    user::environment_start(child.environment, elf.ehdr.e_entry, STACK_TOP, 0)?;
    Ok(())
}

/// A new info page for `program` run with `arguments`, this process as its
/// parent and its environment variables, without what `inherit` adds.
pub(crate) fn new_info_page(program: &str, arguments: &[&str]) -> Result<InfoPage, Errno> {
    let variables = crate::variables::vars();
    InfoPage::new(
        facts::getpid(),
        bootfs::runs().0,
        program,
        arguments,
        &variables,
    )
    .map_err(|_: StringsTooLong| Errno::E2BIG)
}

/// Waits until any child has ended (POSIX `wait`), reaps it, and returns its
/// id and how it ended; `ECHILD` if there is no child.
pub fn wait_any() -> Result<(u64, ExitStatus), Errno> {
    loop {
        let pids: Vec<u64> = CHILDREN.lock().iter().map(|child| child.pid).collect();
        if pids.is_empty() {
            return Err(Errno::ECHILD);
        }
        for pid in pids {
            if let Some(status) = try_wait(pid)? {
                return Ok((pid, status));
            }
        }
        let _ = user::wait(Event::TIMER, 1);
    }
}

/// Reaps child `pid` if it has ended and returns how; `Ok(None)` while it runs.
pub fn try_wait(pid: u64) -> Result<Option<ExitStatus>, Errno> {
    if !CHILDREN.lock().iter().any(|child| child.pid == pid) {
        return Err(Errno::ECHILD);
    }
    if is_running(pid) {
        Ok(None)
    } else {
        wait(pid).map(Some)
    }
}

/// Waits until child `pid` has ended, reaps it and returns how it ended.
///
/// While the child can run, this process gives it the rest of its slot
/// (`YieldTo`) each time round: the child is what it waits for, and it
/// learns of the end as soon as it gets the CPU back rather than at the
/// next tick. While the child cannot take the CPU (it is blocked in the
/// kernel), this process sleeps a tick at a time.
pub fn wait(pid: u64) -> Result<ExitStatus, Errno> {
    let environment = CHILDREN
        .lock()
        .iter()
        .find(|child| child.pid == pid)
        .map(|child| child.environment)
        .ok_or(Errno::ECHILD)?;
    while user::environment_info(environment, EnvironmentAccount::Id).is_ok() {
        if user::yield_to(environment).is_err() {
            let _ = user::wait(Event::TIMER, 1);
        }
    }
    let child = {
        let mut children = CHILDREN.lock();
        let index = children
            .iter()
            .position(|child| child.pid == pid)
            .ok_or(Errno::ECHILD)?;
        children.swap_remove(index)
    };
    let status = read_exit_status(child.exit_status_page);
    close_what_it_held(child.exit_status_page);
    child.release();
    Ok(status)
}

/// Closes at the file server what an ended child still held, as its
/// exit-status page lists it: nothing if it exited (it closed everything),
/// its pipe ends and open files if it was killed — so a reader of its pipe
/// sees the end of input.
fn close_what_it_held(page: Handle) {
    let mut held = Vec::new();
    let _ = read_child_exit_page(page, |word| {
        exit_status::decode_held(word, |close, object| held.push((close, object)));
    });
    for (close, object) in held {
        fs::close_for_ended_child(close, object);
    }
}

fn read_exit_status(page: Handle) -> ExitStatus {
    read_child_exit_page(page, |word| exit_status::decode_status(word))
        .unwrap_or(ExitStatus::Killed)
}

/// Ends the children this process leaves behind as it exits, but the file
/// server, and reaps them, which closes what they held (`wait`). The kernel
/// would end them anyway with this process, which holds their environments,
/// but only this process knows their pipe ends and open files: without this,
/// a reader of one of their pipes would wait for its end for ever.
pub(crate) fn end_children() {
    if let Some(end) = CHILDREN_TO_END.get() {
        end();
    }
}

/// [`end_children`], in a process that has recorded a child.
fn kill_and_reap_children() {
    let file_server = FILE_SERVER.get().copied();
    let pids: Vec<u64> = CHILDREN
        .lock()
        .iter()
        .map(|child| child.pid)
        .filter(|&pid| Some(pid) != file_server)
        .collect();
    for pid in pids {
        let _ = kill(pid);
        let _ = wait(pid);
    }
}

/// Asks child `pid` to give `frames` frames back within `deadline_ticks`
/// (the kernel's `RequestFrames`; what it has not given back by then is
/// taken).
pub fn request_frames(pid: u64, frames: u64, deadline_ticks: u64) -> Result<(), Errno> {
    let environment = child_environment(pid)?;
    user::request_frames(environment, frames, deadline_ticks).map_err(Errno::from)
}

/// One of child `pid`'s accounts, as the kernel keeps them.
pub fn account(pid: u64, account: exo_abi::syscall::EnvironmentAccount) -> Result<u64, Errno> {
    let environment = child_environment(pid)?;
    user::environment_info(environment, account).map_err(Errno::from)
}

fn child_environment(pid: u64) -> Result<Handle, Errno> {
    CHILDREN
        .lock()
        .iter()
        .find(|child| child.pid == pid)
        .map(|child| child.environment)
        .ok_or(Errno::ESRCH)
}

/// Ends child `pid` at once; `wait` then reports it as killed.
pub fn kill(pid: u64) -> Result<(), Errno> {
    let children = CHILDREN.lock();
    let child = children
        .iter()
        .find(|child| child.pid == pid)
        .ok_or(Errno::ESRCH)?;
    user::environment_destroy(child.environment).map_err(Errno::from)
}
