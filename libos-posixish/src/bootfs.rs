//! The boot file system, as this process sees it.
//!
//! The kernel maps it whole into the first process. Every process the
//! library OS spawns or forks gets read-only capabilities for its runs of
//! frames (listed in its info page), so that it can pass them on in turn,
//! but nothing mapped: a run is mapped the first time the process touches
//! it (`resolve_fault`, called by the fault handler). A process that never
//! reads a program or a file of the boot file system — most do not — pays
//! no kernel mapping record for it; one that does pays for the runs it
//! read, 64 KiB at a time (`Map` with a `MapPart`: a run of up to 4 MiB is
//! mapped only where it is used).

use exo_abi::bootfs::BootFs;
use exo_abi::layout::{BOOTFS, PAGE_SIZE};
use exo_abi::mapping::MapFlags;
use exo_abi::start_info::StartPage;
use exo_abi::syscall::MapPart;
use exo_abi::{Error, Handle, user};

use crate::{info_page, raw};

/// The runs of frames holding the boot file system, and its size.
pub fn runs() -> (u64, alloc::vec::Vec<StartPage>) {
    match info_page::own() {
        Some(info) => (info.bootfs_size, info.bootfs_runs.to_vec()),
        None => {
            let start = user::start_info();
            (start.bootfs_size, start.bootfs_runs().to_vec())
        }
    }
}

/// The boot file system, checked. Reading it maps the runs it touches.
pub fn open() -> Option<BootFs<'static>> {
    let (size, _) = runs();
    BootFs::parse(raw::mapped_bytes(BOOTFS, size as usize)).ok()
}

/// The fault handler's answer for a page that is not present at `address`:
/// `None` if `address` is not in the boot file system as this process's
/// info page lists it (the first process, which the kernel mapped it into
/// whole, has none), else the outcome of mapping the run that holds it,
/// read-only. It allocates nothing and takes no lock, so it may run
/// whatever the interrupted code held.
pub(crate) fn resolve_fault(address: u64) -> Option<Result<(), Error>> {
    let (size, runs) = info_page::own_bootfs()?;
    let end = BOOTFS + size.next_multiple_of(PAGE_SIZE);
    if !(BOOTFS..end).contains(&address) {
        return None;
    }
    // Runs are listed in address order; the last one starting at or below
    // `address` holds it, and it ends where the next begins (or at `end`).
    let mut listed = (0..runs).filter_map(info_page::own_bootfs_run);
    let (mut start, mut capability) = listed.next()?;
    let mut run_end = end;
    for (next_start, next_capability) in listed {
        if next_start > address {
            run_end = next_start;
            break;
        }
        (start, capability) = (next_start, next_capability);
    }
    // Map the chunk of the run around the address, not the whole run: the
    // kernel charges a mapping record for every page mapped.
    let run_pages = (run_end - start) / PAGE_SIZE;
    let first = (address - start) / PAGE_SIZE / CHUNK_PAGES * CHUNK_PAGES;
    let part = MapPart {
        first: first as u32,
        count: CHUNK_PAGES.min(run_pages - first) as u32,
    };
    let at = start + first * PAGE_SIZE;
    Some(
        match user::map_part(
            capability,
            Handle::SELF_ENVIRONMENT,
            at,
            MapFlags::empty(),
            part,
        ) {
            // Another thread's fault mapped it first.
            Err(Error::AlreadyMapped) => Ok(()),
            outcome => outcome,
        },
    )
}

/// How many pages of the boot file system one fault maps (64 KiB): enough
/// that reading a program takes few faults, few enough that a process pays
/// only for what it reads.
const CHUNK_PAGES: u64 = 16;
