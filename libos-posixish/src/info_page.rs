//! This process's own info page (`layout::PROCESS_INFO`): what its parent
//! told it — arguments, variables, the boot file system's runs, the file
//! server, the network, descriptors 0–2.
//!
//! Bottom layer: it reads the page through `raw` with the format of the
//! host-tested `posixish-policy` crate (`policy/src/info_page.rs`), which
//! it re-exports. It never decides what a child inherits (`inherit` does).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use exo_abi::Handle;

use crate::layout::PROCESS_INFO;
use crate::raw;

pub use posixish_policy::info_page::{
    InfoPage, NetInfo, PAGE_BYTES, ProcessInfo, StringsTooLong, decode,
};

/// This process's info page, if a parent mapped one (with its magic).
fn own_bytes() -> Option<&'static [u8]> {
    // The page-table view says whether the page is there, without a fault.
    exo_abi::user::translate(PROCESS_INFO)?;
    let page = raw::mapped_bytes(PROCESS_INFO, PAGE_BYTES);
    posixish_policy::info_page::has_magic(page).then_some(page)
}

/// This process's info page, if a parent gave it one (the first process,
/// which the kernel started, has none).
pub fn own() -> Option<ProcessInfo> {
    decode(own_bytes()?)
}

/// The arguments this process was started with (its name first).
pub fn own_arguments() -> Vec<String> {
    match own() {
        Some(info) => info.arguments,
        None => alloc::vec!["init".to_string()],
    }
}

/// The boot file system's size and how many runs this process's info page
/// lists, read without allocating (for the fault handler); `None` without
/// an info page.
pub(crate) fn own_bootfs() -> Option<(u64, usize)> {
    Some(posixish_policy::info_page::bootfs_summary(own_bytes()?))
}

/// Run `index` of the boot file system as this process's info page lists
/// it: (address, this process's read-only capability), read without allocating.
pub(crate) fn own_bootfs_run(index: usize) -> Option<(u64, Handle)> {
    let (address, capability) = posixish_policy::info_page::run(own_bytes()?, index);
    Some((address, Handle::from_raw(capability)))
}
