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
//! before it exits; a child that was killed, or died of a fault it did not
//! survive, never writes it, and `wait` says so.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use elf::ElfBytes;
use elf::abi::{EM_X86_64, ET_EXEC, PF_W, PF_X, PT_LOAD};
use elf::endian::LittleEndian;
use exo_abi::layout::{BOOTFS, PAGE_SIZE};
use exo_abi::mapping::MapFlags;
use exo_abi::start_info::{MAX_BOOTFS_RUNS, StartPage};
use exo_abi::syscall::{EnvironmentAccount, Event, NO_CAPABILITY};
use exo_abi::{Handle, Rights, user};

use crate::layout::{EXIT_STATUS, PROCESS_INFO, SCRATCH, STACK_INITIAL_PAGES, STACK_TOP};
use crate::net::NetInfo;
use crate::{Errno, bootfs, images, sys};

/// Frames a child may use for its own heap, stacks and page tables, unless the
/// caller says otherwise: 4 MiB.
pub const DEFAULT_QUOTA: u64 = 1024;

/// The process-info page, as parent and child lay it out (little-endian u64s):
/// magic, parent id, boot file system size, run count, the runs (address,
/// capability in the child's table), the file server's endpoint, a
/// capability for the parent (GIVE), an IPv4 address capability, the
/// card's MAC and the route (`net`), descriptors 0–2 (three words each),
/// argument count, bytes of strings, variable count, then the strings —
/// the arguments, then the environment as `KEY=VALUE` — each followed by a NUL.
mod info_page {
    pub const MAGIC: u64 = u64::from_le_bytes(*b"exoproc1");
    pub const PARENT: usize = 8;
    pub const BOOTFS_SIZE: usize = 16;
    pub const RUN_COUNT: usize = 24;
    pub const RUNS: usize = 32;
    pub const RUN_SIZE: usize = 16;
    /// The file server's endpoint in the child's table, or `NO_CAPABILITY`.
    pub const FS_ENDPOINT: usize = RUNS + super::MAX_BOOTFS_RUNS * RUN_SIZE;
    /// A capability for the parent with `GIVE`, so a server can hand it its endpoint.
    pub const PARENT_ENVIRONMENT: usize = FS_ENDPOINT + 8;
    /// The network address's capability (or `NO_CAPABILITY`), the card's
    /// MAC (`exo_abi::net::mac_to_u64`), and the route: the prefix length in
    /// bits 32–39 and the gateway (0: none) in bits 0–31.
    pub const NET_ADDRESS: usize = PARENT_ENVIRONMENT + 8;
    pub const NET_MAC: usize = NET_ADDRESS + 8;
    pub const NET_ROUTE: usize = NET_MAC + 8;
    /// Descriptors 0–2: three words each (`fs::Descriptor::encode`).
    pub const STDIO: usize = NET_ROUTE + 8;
    pub const ARGUMENT_COUNT: usize = STDIO + 3 * 24;
    /// Bytes of the strings: the arguments, then the environment (`KEY=VALUE`).
    pub const ARGUMENT_BYTES: usize = ARGUMENT_COUNT + 8;
    pub const ENVIRONMENT_COUNT: usize = ARGUMENT_BYTES + 8;
    pub const ARGUMENTS: usize = ENVIRONMENT_COUNT + 8;
}

/// `EXIT_STATUS` word 0 once the child has exited; word 1 is the status;
/// word 2, a value a server publishes for its parent (its endpoint's handle).
const EXITED: u64 = u64::from_le_bytes(*b"exited\0\0");
const PUBLISHED: u64 = 16;

/// What a process's parent knows of it once it has ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// It called `exit` (or returned from `main`) with this status.
    Exited(i32),
    /// It was destroyed without exiting: killed, or a fault it did not survive.
    Killed,
}

/// What a process learns from its parent.
#[derive(Debug)]
pub struct ProcessInfo {
    pub parent: u64,
    pub bootfs_size: u64,
    pub bootfs_runs: Vec<StartPage>,
    pub arguments: Vec<String>,
    /// The environment variables the parent passed.
    pub environment: Vec<(String, String)>,
    /// The file server's endpoint, if the parent had one.
    pub fs_endpoint: Option<Handle>,
    /// A capability to give the parent capabilities (`GIVE` only).
    pub parent_environment: Option<Handle>,
    /// An IPv4 address to bind to, the card's MAC and the route, if the
    /// parent had them.
    pub net: Option<NetInfo>,
    /// Descriptors 0–2, encoded.
    pub stdio: [[u64; 3]; 3],
}

fn word(page: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(page[offset..offset + 8].try_into().expect("8 bytes"))
}

/// This process's info page, if a parent gave it one (the first process,
/// which the kernel started, has none).
pub fn info() -> Option<ProcessInfo> {
    let page = info_page_bytes()?;
    let runs = (word(page, info_page::RUN_COUNT) as usize).min(MAX_BOOTFS_RUNS);
    let bootfs_runs = (0..runs)
        .map(|index| {
            let at = info_page::RUNS + index * info_page::RUN_SIZE;
            StartPage {
                address: word(page, at),
                frame: word(page, at + 8),
                flags: 0,
            }
        })
        .collect();
    let count = word(page, info_page::ARGUMENT_COUNT) as usize;
    let length =
        (word(page, info_page::ARGUMENT_BYTES) as usize).min(page.len() - info_page::ARGUMENTS);
    let bytes = &page[info_page::ARGUMENTS..info_page::ARGUMENTS + length];
    let mut strings = bytes
        .split(|&byte| byte == 0)
        .map(|string| String::from_utf8_lossy(string).into_owned());
    let arguments = strings.by_ref().take(count).collect();
    let environment = strings
        .take(word(page, info_page::ENVIRONMENT_COUNT) as usize)
        .filter_map(|entry| {
            entry
                .split_once('=')
                .map(|(key, value)| (key.into(), value.into()))
        })
        .collect();
    let handle = |at| {
        Some(word(page, at))
            .filter(|&raw| raw != NO_CAPABILITY)
            .map(Handle::from_raw)
    };
    let stdio = core::array::from_fn(|index| {
        core::array::from_fn(|part| word(page, info_page::STDIO + index * 24 + part * 8))
    });
    Some(ProcessInfo {
        parent: word(page, info_page::PARENT),
        bootfs_size: word(page, info_page::BOOTFS_SIZE),
        bootfs_runs,
        arguments,
        environment,
        fs_endpoint: handle(info_page::FS_ENDPOINT),
        parent_environment: handle(info_page::PARENT_ENVIRONMENT),
        net: handle(info_page::NET_ADDRESS).map(|address| {
            let route = word(page, info_page::NET_ROUTE);
            NetInfo {
                address,
                mac: word(page, info_page::NET_MAC),
                prefix_length: (route >> 32) as u8,
                gateway: Some(Ipv4Addr::from(route as u32))
                    .filter(|gateway| !gateway.is_unspecified()),
            }
        }),
        stdio,
    })
}

/// The boot file system's size and how many runs this process's info page
/// lists, read without allocating (for the fault handler); `None` without
/// an info page.
pub(crate) fn bootfs_in_info_page() -> Option<(u64, usize)> {
    let page = info_page_bytes()?;
    let runs = (word(page, info_page::RUN_COUNT) as usize).min(MAX_BOOTFS_RUNS);
    Some((word(page, info_page::BOOTFS_SIZE), runs))
}

/// Run `index` of the boot file system as this process's info page lists
/// it: (address, this process's read-only capability), read without allocating.
pub(crate) fn bootfs_run_in_info_page(index: usize) -> Option<(u64, Handle)> {
    let page = info_page_bytes()?;
    let at = info_page::RUNS + index * info_page::RUN_SIZE;
    Some((word(page, at), Handle::from_raw(word(page, at + 8))))
}

/// The process-info page, if a parent mapped one (with its magic).
fn info_page_bytes() -> Option<&'static [u8]> {
    // The page-table view says whether the page is there, without a fault.
    user::translate(PROCESS_INFO)?;
    let page = sys::mapped_bytes(PROCESS_INFO, PAGE_SIZE as usize);
    (word(page, 0) == info_page::MAGIC).then_some(page)
}

/// The arguments this process was started with (its name first).
pub fn arguments() -> Vec<String> {
    match info() {
        Some(info) => info.arguments,
        None => alloc::vec!["init".to_string()],
    }
}

/// Leaves `value` for the parent in the report (exit-status) page; a server
/// tells its parent its endpoint this way.
pub fn publish(value: u64) {
    if user::translate(EXIT_STATUS).is_some() {
        sys::write_shared(EXIT_STATUS + PUBLISHED, value);
    }
}

/// What child `pid` has published, if anything yet.
pub fn published(pid: u64) -> Option<u64> {
    let page = CHILDREN
        .lock()
        .iter()
        .find(|child| child.pid == pid)?
        .exit_status_page;
    user::map(page, Handle::SELF_ENVIRONMENT, SCRATCH, MapFlags::empty()).ok()?;
    let value = sys::read_shared(SCRATCH + PUBLISHED);
    let _ = sys::unmap_scratch();
    Some(value).filter(|&value| value != 0)
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

/// Tells the parent, through the exit-status page, that this process exits.
pub(crate) fn report_exit(status: i32) {
    if user::translate(EXIT_STATUS).is_some() {
        sys::write_shared(EXIT_STATUS + 8, status as u32 as u64);
        sys::write_shared(EXIT_STATUS, EXITED);
    }
}

/// A child this process spawned or forked and has not reaped yet.
#[derive(Debug)]
pub(crate) struct Child {
    pub(crate) pid: u64,
    pub(crate) environment: Handle,
    /// Capabilities this process holds for the child: its frames, and the
    /// read-only copies of the boot file system's capabilities it granted.
    pub(crate) frames: Vec<Handle>,
    pub(crate) exit_status_page: Handle,
    /// The pager's units a forked child shares (`paging::release_shared`).
    pub(crate) shared: Vec<Handle>,
    /// Open files and pipe ends counted one holder more for the child while
    /// it was built: (close operation, object), given back if it never starts.
    pub(crate) handed_on: Vec<(u64, [u64; 3])>,
}

impl Child {
    pub(crate) fn new(environment: Handle) -> Self {
        Self {
            pid: 0,
            environment,
            frames: Vec::new(),
            exit_status_page: Handle::SELF_ENVIRONMENT, // replaced when built
            shared: Vec::new(),
            handed_on: Vec::new(),
        }
    }

    /// Gives up a child that could not be built or started: the holders
    /// counted for it go back, then everything `release` frees.
    pub(crate) fn abandon(self) {
        crate::fs::close_handed_on(&self.handed_on);
        self.release();
    }

    /// Frees what this process held for the child (the environment is gone
    /// or about to be).
    pub(crate) fn release(self) {
        let _ = user::environment_destroy(self.environment);
        for frame in self.frames {
            let _ = sys::drop_child_frame(frame);
        }
        crate::paging::release_shared(&self.shared);
    }

    /// A zeroed frame holding `contents`, owned by this process for the child.
    pub(crate) fn fresh_page(&mut self, contents: &[u8]) -> Result<Handle, Errno> {
        let frame = filled_frame(contents)?;
        self.frames.push(frame);
        Ok(frame)
    }

    /// Maps a fresh page holding `contents` at `address` in the child.
    pub(crate) fn map_page(
        &mut self,
        address: u64,
        contents: &[u8],
        flags: MapFlags,
    ) -> Result<Handle, Errno> {
        let frame = self.fresh_page(contents)?;
        user::map(frame, self.environment, address, flags)?;
        Ok(frame)
    }
}

static CHILDREN: spin::Mutex<Vec<Child>> = spin::Mutex::new(Vec::new());

/// Records a child built elsewhere (`fork`).
pub(crate) fn adopt(child: Child) {
    CHILDREN.lock().push(child);
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
    let (image, elf) = load_program(program)?;
    let info = info_page(program, arguments)?;
    let environment = user::environment_create(quota)?;
    let mut child = Child::new(environment);
    match build(&mut child, program, &elf, image, info, stdio) {
        Ok(()) => {
            let pid = child.pid;
            CHILDREN.lock().push(child);
            Ok(pid)
        }
        Err(error) => {
            child.abandon();
            Err(error)
        }
    }
}

/// A new frame holding `contents` (the rest zero), filled through the
/// scratch page and not mapped: for a child's image, or the one `exec` builds.
pub(crate) fn filled_frame(contents: &[u8]) -> Result<Handle, Errno> {
    let (frame, _) = user::frame_allocate(0)?;
    let filled =
        user::map(frame, Handle::SELF_ENVIRONMENT, SCRATCH, MapFlags::WRITE).and_then(|()| {
            sys::fill_page(SCRATCH, 0, contents);
            sys::unmap_scratch()
        });
    match filled {
        Ok(()) => Ok(frame),
        Err(error) => {
            // Mapped at the scratch page at most, and unmapped with the capability.
            sys::drop_unmapped_frame(frame);
            Err(error.into())
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
/// program `image`, whose header is `elf`.
pub(crate) fn for_each_image_page(
    elf: &ElfBytes<'_, LittleEndian>,
    image: &[u8],
    mut page: impl FnMut(u64, &[u8], MapFlags) -> Result<(), Errno>,
) -> Result<(), Errno> {
    let segments = elf.segments().ok_or(Errno::ENOEXEC)?;
    for segment in segments.iter().filter(|segment| segment.p_type == PT_LOAD) {
        let file = usize::try_from(segment.p_offset)
            .ok()
            .zip(usize::try_from(segment.p_filesz).ok())
            .and_then(|(offset, size)| image.get(offset..offset.checked_add(size)?))
            .ok_or(Errno::ENOEXEC)?;
        if !segment.p_vaddr.is_multiple_of(PAGE_SIZE) || segment.p_filesz > segment.p_memsz {
            return Err(Errno::ENOEXEC);
        }
        let mut flags = MapFlags::empty();
        if segment.p_flags & PF_W != 0 {
            flags |= MapFlags::WRITE;
        }
        if segment.p_flags & PF_X != 0 {
            flags |= MapFlags::EXECUTE;
        }
        for (index, offset) in (0..segment.p_memsz).step_by(PAGE_SIZE as usize).enumerate() {
            let start = (index * PAGE_SIZE as usize).min(file.len());
            let end = (start + PAGE_SIZE as usize).min(file.len());
            page(segment.p_vaddr + offset, &file[start..end], flags)?;
        }
    }
    Ok(())
}

/// Loads `program` (its header `elf`, its file `image`) into the child and
/// starts it. Read-only pages come from the image cache (`images`) while it
/// has room; writable ones are the child's own.
fn build(
    child: &mut Child,
    program: &str,
    elf: &ElfBytes<'_, LittleEndian>,
    image: &[u8],
    mut info: [u8; PAGE_SIZE as usize],
    stdio: [Option<usize>; 3],
) -> Result<(), Errno> {
    for_each_image_page(elf, image, |address, contents, flags| {
        if !flags.contains(MapFlags::WRITE)
            && let Some(frame) = images::read_only_page(program, address, contents)?
        {
            return Ok(user::map(frame, child.environment, address, flags)?);
        }
        child.map_page(address, contents, flags).map(drop)
    })?;
    for page in 1..=STACK_INITIAL_PAGES {
        child.map_page(STACK_TOP - page * PAGE_SIZE, &[], MapFlags::WRITE)?;
    }
    share_bootfs(child, &mut info)?;
    // The file server needs no network: it gets no address, and starting it
    // (the shell's first act) claims none, so `/etc/rc` can still say how.
    let network = program != crate::fs::SERVER;
    share_services(child, &mut info, Some(stdio), network)?;
    child.map_page(PROCESS_INFO, &info, MapFlags::empty())?;
    child.exit_status_page = child.map_page(EXIT_STATUS, &[], MapFlags::WRITE)?;
    child.pid = user::capability_identify(child.environment)?.value;
    user::environment_start(child.environment, elf.ehdr.e_entry, STACK_TOP, 0)?;
    Ok(())
}

/// Grants the child read-only capabilities for the boot file system's runs,
/// recorded in its info page. Nothing is mapped: the child maps a run when
/// it first touches it (`bootfs`), so a child that never reads the boot
/// file system costs the kernel no mapping record for it.
pub(crate) fn share_bootfs(
    child: &mut Child,
    info: &mut [u8; PAGE_SIZE as usize],
) -> Result<(), Errno> {
    let (_, runs) = bootfs::runs();
    let read_only = Rights::READ | Rights::MAP | Rights::GRANT;
    let mut theirs = Vec::with_capacity(runs.len());
    for run in &runs {
        let ours = Handle::from_raw(run.frame);
        let copy = user::capability_derive(ours, read_only)?;
        child.frames.push(copy);
        let granted = user::capability_grant(copy, child.environment, read_only)?;
        theirs.push((run.address, granted.to_raw()));
    }
    debug_assert!(runs.iter().all(|run| run.address >= BOOTFS));
    put_runs(info, &theirs);
    Ok(())
}

/// Gives the child what it needs beyond memory, recorded in its info page:
/// the file server's endpoint (if this process has one), a capability to
/// hand its parent capabilities, descriptors 0–2 (`stdio`; `None` for a
/// forked child, which has a copy of this process's whole table), and, if
/// `network`, this process's address.
pub(crate) fn share_services(
    child: &mut Child,
    info: &mut [u8; PAGE_SIZE as usize],
    stdio: Option<[Option<usize>; 3]>,
    network: bool,
) -> Result<(), Errno> {
    let endpoint = match crate::fs::endpoint_for_child(child.environment)? {
        Some((ours, theirs)) => {
            child.frames.push(ours);
            theirs.to_raw()
        }
        None => NO_CAPABILITY,
    };
    put(info, info_page::FS_ENDPOINT, endpoint);
    // GRANT to pass it on, GIVE for what the child receives.
    let give = user::capability_derive(Handle::SELF_ENVIRONMENT, Rights::GIVE | Rights::GRANT)?;
    child.frames.push(give);
    let theirs = user::capability_grant(give, child.environment, Rights::GIVE)?;
    put(info, info_page::PARENT_ENVIRONMENT, theirs.to_raw());
    let net = match network {
        true => crate::net::address_for_child(child.environment)?,
        false => None,
    };
    put_net(info, net);
    let Some(stdio) = stdio else {
        return crate::fs::count_holders_for_fork(&mut child.handed_on);
    };
    let stdio = crate::fs::stdio_for_child(stdio, &mut child.handed_on)?;
    put_stdio(info, &stdio);
    Ok(())
}

/// Writes `value` at byte `at` of an info page.
fn put(page: &mut [u8; PAGE_SIZE as usize], at: usize, value: u64) {
    page[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// Writes the boot file system's runs, (address, capability) each, and their count.
fn put_runs(page: &mut [u8; PAGE_SIZE as usize], runs: &[(u64, u64)]) {
    for (index, &(address, capability)) in runs.iter().enumerate() {
        let at = info_page::RUNS + index * info_page::RUN_SIZE;
        put(page, at, address);
        put(page, at + 8, capability);
    }
    put(page, info_page::RUN_COUNT, runs.len() as u64);
}

/// Writes the network address's capability, the MAC and the route (`None`: no network).
fn put_net(page: &mut [u8; PAGE_SIZE as usize], net: Option<NetInfo>) {
    let (address, mac, route) = net.map_or((NO_CAPABILITY, 0, 0), |net| {
        let gateway = net.gateway.map_or(0, u32::from);
        let route = u64::from(net.prefix_length) << 32 | u64::from(gateway);
        (net.address.to_raw(), net.mac, route)
    });
    put(page, info_page::NET_ADDRESS, address);
    put(page, info_page::NET_MAC, mac);
    put(page, info_page::NET_ROUTE, route);
}

/// Writes descriptors 0–2, encoded.
fn put_stdio(page: &mut [u8; PAGE_SIZE as usize], stdio: &[[u64; 3]; 3]) {
    for (index, words) in stdio.iter().enumerate() {
        for (part, &value) in words.iter().enumerate() {
            put(page, info_page::STDIO + index * 24 + part * 8, value);
        }
    }
}

/// The info page for this same process after it execs `program` with
/// `arguments`: its parent, boot file system, file server, capability for the
/// parent and descriptors 0–2 stay; the arguments and environment are new.
pub(crate) fn exec_info_page(
    program: &str,
    arguments: &[&str],
) -> Result<[u8; PAGE_SIZE as usize], Errno> {
    let mut page = info_page(program, arguments)?;
    let own = info();
    put(
        &mut page,
        info_page::PARENT,
        own.as_ref().map_or(0, |own| own.parent),
    );
    let (_, runs) = bootfs::runs();
    let runs: Vec<(u64, u64)> = runs.iter().map(|run| (run.address, run.frame)).collect();
    put_runs(&mut page, &runs);
    let endpoint = crate::fs::current_endpoint().map_or(NO_CAPABILITY, Handle::to_raw);
    put(&mut page, info_page::FS_ENDPOINT, endpoint);
    let parent = own
        .and_then(|own| own.parent_environment)
        .map_or(NO_CAPABILITY, Handle::to_raw);
    put(&mut page, info_page::PARENT_ENVIRONMENT, parent);
    put_net(&mut page, crate::net::own_address());
    put_stdio(&mut page, &crate::fs::own_stdio());
    Ok(page)
}

/// The info page for `program` run with `arguments`, without the boot file system's runs.
pub(crate) fn info_page(
    program: &str,
    arguments: &[&str],
) -> Result<[u8; PAGE_SIZE as usize], Errno> {
    let mut page = [0u8; PAGE_SIZE as usize];
    put(&mut page, 0, info_page::MAGIC);
    put(&mut page, info_page::PARENT, crate::getpid());
    put(&mut page, info_page::BOOTFS_SIZE, bootfs::runs().0);
    let variables: Vec<String> = crate::env::vars()
        .into_iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    let mut used = 0;
    let strings = core::iter::once(program).chain(arguments.iter().copied());
    for string in strings.chain(variables.iter().map(String::as_str)) {
        let at = info_page::ARGUMENTS + used;
        let end = at + string.len() + 1;
        if end > page.len() || string.contains('\0') {
            return Err(Errno::E2BIG);
        }
        page[at..end - 1].copy_from_slice(string.as_bytes());
        used += string.len() + 1;
    }
    put(
        &mut page,
        info_page::ENVIRONMENT_COUNT,
        variables.len() as u64,
    );
    put(
        &mut page,
        info_page::ARGUMENT_COUNT,
        arguments.len() as u64 + 1,
    );
    put(&mut page, info_page::ARGUMENT_BYTES, used as u64);
    Ok(page)
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
    child.release();
    Ok(status)
}

fn read_exit_status(page: Handle) -> ExitStatus {
    if user::map(page, Handle::SELF_ENVIRONMENT, SCRATCH, MapFlags::empty()).is_err() {
        return ExitStatus::Killed;
    }
    let status = match sys::read_shared(SCRATCH) {
        EXITED => ExitStatus::Exited(sys::read_shared(SCRATCH + 8) as u32 as i32),
        _ => ExitStatus::Killed,
    };
    let _ = sys::unmap_scratch();
    status
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
