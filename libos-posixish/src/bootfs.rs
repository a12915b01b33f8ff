//! The boot file system, as this process sees it.
//!
//! The kernel maps it whole into the first process. Every process the
//! library OS spawns or forks gets read-only capabilities for its runs of
//! frames (listed in its info page), so that it can pass them on in turn,
//! but nothing mapped: a run is mapped the first time the process touches
//! it (`resolve_fault`, called by the fault handler). A process that never
//! reads a program or a file of the boot file system — most do not — pays
//! no kernel mapping record for it; one that does pays for the runs it
//! read. A run is the kernel's unit (at most 4 MiB, `MAX_FRAME_ORDER`): the
//! kernel maps a capability whole, so no finer grain is possible here.

use exo_abi::bootfs::BootFs;
use exo_abi::layout::{BOOTFS, PAGE_SIZE};
use exo_abi::mapping::MapFlags;
use exo_abi::start_info::StartPage;
use exo_abi::{Error, Handle, user};

use crate::{process, sys};

/// The runs of frames holding the boot file system, and its size.
pub fn runs() -> (u64, alloc::vec::Vec<StartPage>) {
    match process::info() {
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
    BootFs::parse(sys::mapped_bytes(BOOTFS, size as usize)).ok()
}

/// The fault handler's answer for a page that is not present at `address`:
/// `None` if `address` is not in the boot file system as this process's
/// info page lists it (the first process, which the kernel mapped it into
/// whole, has none), else the outcome of mapping the run that holds it,
/// read-only. It allocates nothing and takes no lock, so it may run
/// whatever the interrupted code held.
pub(crate) fn resolve_fault(address: u64) -> Option<Result<(), Error>> {
    let (size, runs) = process::bootfs_in_info_page()?;
    let end = BOOTFS + size.next_multiple_of(PAGE_SIZE);
    if !(BOOTFS..end).contains(&address) {
        return None;
    }
    // Runs are listed in address order; the last one starting at or below
    // `address` holds it.
    let (start, capability) = (0..runs)
        .filter_map(process::bootfs_run_in_info_page)
        .take_while(|&(start, _)| start <= address)
        .last()?;
    Some(
        match user::map(
            capability,
            Handle::SELF_ENVIRONMENT,
            start,
            MapFlags::empty(),
        ) {
            // Another thread's fault mapped it first.
            Err(Error::AlreadyMapped) => Ok(()),
            outcome => outcome,
        },
    )
}
