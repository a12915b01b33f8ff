//! The first environment: the one program the kernel loads itself.
//!
//! The boot module is a boot file system (`exo_abi::bootfs`) holding every
//! program; `init=NAME` on the command line names the first (and
//! `init_argument=N` the number it starts with in `rdi`). Its loadable
//! segments are copied into frames the new environment owns (it holds a root
//! capability for each), mapped with the segments' permissions; a stack is
//! mapped below `INITIAL_STACK_TOP`; the whole archive is copied into frames
//! it owns and mapped read-only at `BOOTFS`, so its library OS can load the
//! other programs; and the start-info page — listing every page and the
//! capability behind it — is mapped read-only at `START_INFO`. Every later
//! environment is built by user code; the kernel parses no other program.

use exo_abi::bootfs::{BootFs, BootFsError};
use exo_abi::layout::{BOOTFS, INITIAL_STACK_PAGES, INITIAL_STACK_TOP, START_INFO, USER_MAP_END};
use exo_abi::mapping::{MAX_FRAME_ORDER, MapFlags};
use exo_abi::start_info::{self, MAX_BOOTFS_RUNS, MAX_PAGES, StartInfo, StartPage};
use exo_abi::syscall::{MapPart, NO_CAPABILITY};
use exo_abi::{Error, Handle, Rights};
use exo_kernel_core::memory_map::FRAME_SIZE;

use elf::ElfBytes;
use elf::abi::{EM_X86_64, ET_EXEC, PF_W, PF_X, PT_LOAD};
use elf::endian::LittleEndian;

use super::{EnvironmentId, Lend, Object, SYSTEM, State, System};
use crate::memory::{frames, heap, lent_frames};

/// Why the first program could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    BootFs(BootFsError),
    NoSuchProgram,
    ArchiveTooLarge,
    Elf(elf::ParseError),
    NotAnExecutable,
    BadSegment(u64),
    TooManyPages,
    Kernel(Error),
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BootFs(error) => {
                write!(f, "the boot module is not a boot file system: {error:?}")
            }
            Self::NoSuchProgram => write!(f, "the boot file system has no such program"),
            Self::ArchiveTooLarge => write!(f, "the boot file system is larger than 32 MiB"),
            Self::Elf(error) => write!(f, "not a valid ELF file: {error}"),
            Self::NotAnExecutable => write!(f, "not an x86_64 executable"),
            Self::BadSegment(address) => write!(
                f,
                "segment at {address:#x} is misaligned, outside the file, or outside user space"
            ),
            Self::TooManyPages => write!(f, "more pages than the start-info page can list"),
            Self::Kernel(error) => write!(f, "{error}"),
        }
    }
}

impl From<Error> for LoadError {
    fn from(error: Error) -> Self {
        Self::Kernel(error)
    }
}

impl From<elf::ParseError> for LoadError {
    fn from(error: elf::ParseError) -> Self {
        Self::Elf(error)
    }
}

/// Builds the first environment from program `init` of the boot file system
/// `archive` and makes it runnable, to start with `rdi = argument`. Its
/// accounts are everything there is: every frame free now, the kernel heap
/// less its reserve, and every slot.
pub fn start_first_program(
    archive: &[u8],
    init: &str,
    argument: u64,
) -> Result<EnvironmentId, LoadError> {
    let bootfs = BootFs::parse(archive).map_err(LoadError::BootFs)?;
    let program = bootfs.find(init).ok_or(LoadError::NoSuchProgram)?.contents;
    let mut system = SYSTEM.lock();
    let lend = Lend {
        frames: frames::counts().free,
        kernel_bytes: heap::promised() as u64,
        slots: system.slot_count(),
    };
    let (id, _) = system.create_environment(None, lend)?;
    system.first = Some(id);
    system.environment(id).name = exo_abi::trace::pack_name(init);
    let result = load(&mut system, id, program, archive, argument);
    if result.is_err() {
        system.destroy(id, "its program could not be loaded");
    }
    result.map(|()| id)
}

fn load(
    system: &mut System,
    id: EnvironmentId,
    program: &[u8],
    archive: &[u8],
    argument: u64,
) -> Result<(), LoadError> {
    let file = ElfBytes::<LittleEndian>::minimal_parse(program)?;
    if file.ehdr.e_type != ET_EXEC || file.ehdr.e_machine != EM_X86_64 {
        return Err(LoadError::NotAnExecutable);
    }
    let mut pages = PageList::default();
    for segment in file
        .segments()
        .into_iter()
        .flatten()
        .filter(|segment| segment.p_type == PT_LOAD)
    {
        let start = segment.p_vaddr;
        let file_end = segment.p_offset.checked_add(segment.p_filesz);
        let fits = start.is_multiple_of(FRAME_SIZE)
            && segment.p_filesz <= segment.p_memsz
            && file_end.is_some_and(|end| end <= program.len() as u64)
            && start
                .checked_add(segment.p_memsz)
                .is_some_and(|end| end <= USER_MAP_END);
        if !fits {
            return Err(LoadError::BadSegment(start));
        }
        let mut flags = MapFlags::empty();
        if segment.p_flags & PF_W != 0 {
            flags |= MapFlags::WRITE;
        }
        if segment.p_flags & PF_X != 0 {
            flags |= MapFlags::EXECUTE;
        }
        let bytes = &program[segment.p_offset as usize..][..segment.p_filesz as usize];
        for (index, page) in (start..start + segment.p_memsz)
            .step_by(FRAME_SIZE as usize)
            .enumerate()
        {
            let offset = index * FRAME_SIZE as usize;
            let contents = bytes
                .get(offset..)
                .map_or(&[][..], |rest| &rest[..rest.len().min(FRAME_SIZE as usize)]);
            pages.push(map_new_frame(system, id, page, flags, contents)?)?;
        }
    }
    let stack_bottom = INITIAL_STACK_TOP - INITIAL_STACK_PAGES * FRAME_SIZE;
    for page in (stack_bottom..INITIAL_STACK_TOP).step_by(FRAME_SIZE as usize) {
        pages.push(map_new_frame(system, id, page, MapFlags::WRITE, &[])?)?;
    }

    let bootfs_runs = copy_archive(system, id, archive)?;
    // The network card, if there is one, is the first environment's to share out.
    let nic = if crate::nic::present() {
        system
            .new_capability(id, |capabilities| {
                capabilities.insert_root(id, Object::Nic, Rights::NET)
            })?
            .to_raw()
    } else {
        NO_CAPABILITY
    };

    // The start-info page lists itself too, so it is filled after allocating it.
    let (handle, frame) = system.allocate_frames(id, 0, None)?;
    pages.push(StartPage {
        address: START_INFO,
        frame: handle.to_raw(),
        flags: 0,
    })?;
    let info = StartInfo {
        magic: start_info::MAGIC,
        environment_id: u64::from(id.0),
        frame_quota: system.environment(id).frames.limit(),
        bootfs_size: archive.len() as u64,
        bootfs_run_count: bootfs_runs.count as u64,
        bootfs_runs: bootfs_runs.entries,
        nic,
        page_count: pages.count as u64,
        pages: pages.entries,
    };
    // StartInfo fits in a page (checked in the ABI).
    lent_frames::write(frame * FRAME_SIZE, lent_frames::bytes_of(&info))
        .expect("a frame just allocated to the environment is lent to it");
    let node = system
        .capabilities
        .lookup(id, handle)
        .expect("just allocated")
        .node;
    // START_INFO lies in the kernel's window of the user half, which
    // environments cannot map themselves; the kernel maps it directly.
    system.map_pages(
        id,
        node,
        frame * FRAME_SIZE,
        1,
        START_INFO,
        MapFlags::empty(),
    )?;

    system.start_environment(id, file.ehdr.e_entry, INITIAL_STACK_TOP, argument)?;
    debug_assert_eq!(system.environment(id).state, State::Runnable);
    Ok(())
}

/// Copies the archive into runs of frames `id` owns (at most 4 MiB each),
/// mapped read-only at `BOOTFS`.
fn copy_archive(
    system: &mut System,
    id: EnvironmentId,
    archive: &[u8],
) -> Result<PageList<MAX_BOOTFS_RUNS>, LoadError> {
    let mut runs = PageList::default();
    let mut copied = 0;
    while copied < archive.len() {
        let pages = (archive.len() - copied).div_ceil(FRAME_SIZE as usize);
        let order = pages
            .next_power_of_two()
            .trailing_zeros()
            .min(MAX_FRAME_ORDER);
        let (handle, frame) = system.allocate_frames(id, u64::from(order), None)?;
        let length = (archive.len() - copied).min((FRAME_SIZE as usize) << order);
        lent_frames::write(frame * FRAME_SIZE, &archive[copied..copied + length])
            .expect("a run just allocated to the environment is lent to it");
        let address = BOOTFS + copied as u64;
        system.map(
            id,
            handle,
            Handle::SELF_ENVIRONMENT,
            address,
            0,
            MapPart::WHOLE,
        )?;
        runs.push(StartPage {
            address,
            frame: handle.to_raw(),
            flags: 0,
        })
        .map_err(|_| LoadError::ArchiveTooLarge)?;
        copied += length;
    }
    Ok(runs)
}

/// Allocates a frame for `id`, fills it with `contents` (the rest zero),
/// maps it at `page` with `flags`, and describes it for the start-info page.
fn map_new_frame(
    system: &mut System,
    id: EnvironmentId,
    page: u64,
    flags: MapFlags,
    contents: &[u8],
) -> Result<StartPage, LoadError> {
    let (handle, frame) = system.allocate_frames(id, 0, None)?;
    // `contents` is at most a page.
    lent_frames::write(frame * FRAME_SIZE, contents)
        .expect("a frame just allocated to the environment is lent to it");
    system.map(
        id,
        handle,
        Handle::SELF_ENVIRONMENT,
        page,
        flags.bits(),
        MapPart::WHOLE,
    )?;
    Ok(StartPage {
        address: page,
        frame: handle.to_raw(),
        flags: flags.bits(),
    })
}

/// A start-info list of pages (or runs), filled as they are mapped.
struct PageList<const N: usize = MAX_PAGES> {
    entries: [StartPage; N],
    count: usize,
}

impl<const N: usize> Default for PageList<N> {
    fn default() -> Self {
        Self {
            entries: [StartPage {
                address: 0,
                frame: 0,
                flags: 0,
            }; N],
            count: 0,
        }
    }
}

impl<const N: usize> PageList<N> {
    fn push(&mut self, page: StartPage) -> Result<(), LoadError> {
        let slot = self
            .entries
            .get_mut(self.count)
            .ok_or(LoadError::TooManyPages)?;
        *slot = page;
        self.count += 1;
        Ok(())
    }
}
