//! The start-info page: what the kernel tells the first environment.
//!
//! The kernel loads one program itself, the first environment, and maps
//! this page read-only at [`START_INFO`](crate::layout::START_INFO). It lists
//! every page the kernel mapped for it (program image, stack, this page)
//! with the capability that names the frame, so the environment knows all
//! it holds — and can map its own code into the children it builds — and
//! the runs of frames holding the boot file system at
//! [`BOOTFS`](crate::layout::BOOTFS).

use crate::Handle;

/// `StartInfo::magic`: "exostart" in little-endian bytes.
pub const MAGIC: u64 = u64::from_le_bytes(*b"exostart");

/// How many pages the list holds (the page is 4 KiB).
pub const MAX_PAGES: usize = 160;
/// How many runs of frames may hold the boot file system (each up to 4 MiB).
pub const MAX_BOOTFS_RUNS: usize = 8;

/// One page the kernel mapped for the environment.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartPage {
    /// Its virtual address.
    pub address: u64,
    /// The frame capability behind it (a raw [`Handle`]).
    pub frame: u64,
    /// How it is mapped ([`MapFlags`](crate::mapping::MapFlags) bits).
    pub flags: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StartInfo {
    pub magic: u64,
    /// The environment's id.
    pub environment_id: u64,
    /// Its frame quota.
    pub frame_quota: u64,
    /// Bytes of the boot file system mapped at `BOOTFS`.
    pub bootfs_size: u64,
    /// How many entries of `bootfs_runs` are used.
    pub bootfs_run_count: u64,
    /// The runs of frames holding it: address, capability (one per run).
    pub bootfs_runs: [StartPage; MAX_BOOTFS_RUNS],
    /// The NIC capability (a raw [`Handle`]), or
    /// [`NO_CAPABILITY`](crate::syscall::NO_CAPABILITY) if the machine has none.
    pub nic: u64,
    /// How many entries of `pages` are used.
    pub page_count: u64,
    pub pages: [StartPage; MAX_PAGES],
}

impl StartInfo {
    /// The pages in use.
    pub fn pages(&self) -> &[StartPage] {
        &self.pages[..(self.page_count as usize).min(MAX_PAGES)]
    }

    /// The boot file system's runs of frames.
    pub fn bootfs_runs(&self) -> &[StartPage] {
        &self.bootfs_runs[..(self.bootfs_run_count as usize).min(MAX_BOOTFS_RUNS)]
    }

    /// The NIC capability, if there is a network device.
    pub fn nic(&self) -> Option<Handle> {
        (self.nic != crate::syscall::NO_CAPABILITY).then(|| Handle::from_raw(self.nic))
    }

    /// The frame capability mapped at `address`, if the kernel mapped one there.
    pub fn frame_at(&self, address: u64) -> Option<Handle> {
        self.pages()
            .iter()
            .find(|page| page.address == address)
            .map(|page| Handle::from_raw(page.frame))
    }
}

const _: () = assert!(size_of::<StartInfo>() <= 4096);
