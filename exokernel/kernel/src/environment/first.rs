//! The first environment: the one program the kernel loads itself.
//!
//! The boot module is an ELF executable. Its loadable segments are copied
//! into frames the new environment owns (it holds a root capability for
//! each), mapped with the segments' permissions, a stack is mapped below
//! `INITIAL_STACK_TOP`, and the start-info page — listing every page and the
//! capability behind it — is mapped read-only at `START_INFO`. Every later
//! environment is built by user code; the kernel parses no other program.

use exo_abi::layout::{INITIAL_STACK_PAGES, INITIAL_STACK_TOP, START_INFO, USER_MAP_END};
use exo_abi::mapping::MapFlags;
use exo_abi::start_info::{self, MAX_PAGES, StartInfo, StartPage};
use exo_abi::{Error, Handle};
use exo_kernel_core::memory_map::FRAME_SIZE;

use elf::ElfBytes;
use elf::abi::{EM_X86_64, ET_EXEC, PF_W, PF_X, PT_LOAD};
use elf::endian::LittleEndian;

use super::{EnvironmentId, SYSTEM, State, System};
use crate::memory::{frames, phys_to_virt};

/// Why the first program could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    Elf(elf::ParseError),
    NotAnExecutable,
    BadSegment(u64),
    TooManyPages,
    Kernel(Error),
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
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

/// Builds the first environment from the ELF image `program` and makes it
/// runnable. Its frame quota is every frame free now.
pub fn start_first_program(program: &[u8]) -> Result<EnvironmentId, LoadError> {
    let mut system = SYSTEM.lock();
    let quota = frames::counts().free;
    let (id, _) = system.create_environment(None, quota)?;
    system.first = Some(id);
    let result = load(&mut system, id, program);
    if result.is_err() {
        system.destroy(id, "its program could not be loaded");
    }
    result.map(|()| id)
}

fn load(system: &mut System, id: EnvironmentId, program: &[u8]) -> Result<(), LoadError> {
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
        frame_quota: system.environment(id).frame_quota,
        page_count: pages.count as u64,
        pages: pages.entries,
    };
    // SAFETY: the frame was just allocated to this environment and is not
    // mapped anywhere yet; StartInfo fits in a page (checked in the ABI).
    unsafe {
        phys_to_virt(frame * FRAME_SIZE)
            .as_mut_ptr::<StartInfo>()
            .write(info)
    };
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

    system.start_environment(id, file.ehdr.e_entry, INITIAL_STACK_TOP, 0)?;
    debug_assert_eq!(system.environment(id).state, State::Runnable);
    Ok(())
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
    let target = phys_to_virt(frame * FRAME_SIZE).as_mut_ptr::<u8>();
    // SAFETY: a fresh, zeroed frame owned by this environment and not yet
    // mapped; `contents` is at most a page.
    unsafe { core::ptr::copy_nonoverlapping(contents.as_ptr(), target, contents.len()) };
    system.map(id, handle, Handle::SELF_ENVIRONMENT, page, flags.bits())?;
    Ok(StartPage {
        address: page,
        frame: handle.to_raw(),
        flags: flags.bits(),
    })
}

/// The start-info page list, filled as pages are mapped.
struct PageList {
    entries: [StartPage; MAX_PAGES],
    count: usize,
}

impl Default for PageList {
    fn default() -> Self {
        Self {
            entries: [StartPage {
                address: 0,
                frame: 0,
                flags: 0,
            }; MAX_PAGES],
            count: 0,
        }
    }
}

impl PageList {
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
