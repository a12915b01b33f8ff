//! The boot file system, as this process sees it.
//!
//! The kernel maps it into the first process; every process the library OS
//! spawns gets it mapped at the same address, with capabilities for its
//! frames so that it can pass it on in turn.

use exo_abi::bootfs::BootFs;
use exo_abi::layout::BOOTFS;
use exo_abi::start_info::StartPage;
use exo_abi::user;

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

/// The boot file system, checked.
pub fn open() -> Option<BootFs<'static>> {
    let (size, _) = runs();
    BootFs::parse(sys::mapped_bytes(BOOTFS, size as usize)).ok()
}
