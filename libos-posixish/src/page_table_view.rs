//! This process's own page tables, read through the kernel's read-only view
//! (chapter 2.4): which pages are mapped, found without a system call.
//!
//! It only reads; it never maps, allocates or takes a lock, so `exec` can
//! list its pages with it while it must not allocate.

/// Calls `found` with the address of every page mapped in this process
/// below `USER_MAP_END`, in address order (the walk reads the view through
/// raw pointers, so it lives in `raw`).
pub(crate) use crate::raw::for_each_mapped_page;

/// How many pages this process has mapped (each one a mapping record the
/// kernel keeps for it), below `USER_MAP_END`.
pub fn mapped_pages() -> u64 {
    let mut count = 0;
    for_each_mapped_page(|_| count += 1);
    count
}
