//! Memory that belongs to an environment, as the kernel may touch it.
//!
//! The kernel never dereferences a user pointer. A `UserRange` is checked to
//! lie below `USER_MAP_END`, where every translation ends in a page the
//! environment mapped (above it lie the kernel's window and the page-table
//! view, whose leaf flags would not tell the truth about access); each
//! access then translates page by page through
//! the environment's own page tables, requires the user-accessible (and, to
//! write, writable) bits, and copies through the direct map. A bad pointer
//! yields `Error::BadUserBuffer` and changes nothing the caller can see.

use exo_abi::Error;
use exo_abi::layout::{PAGE_SIZE, USER_MAP_END};
use x86_64::structures::paging::PageTableFlags as Flags;

use crate::memory::address_space::AddressSpace;
use crate::memory::lent_frames;

/// A byte range in an environment's address space, checked to lie below `USER_MAP_END`.
#[derive(Clone, Copy, Debug)]
pub struct UserRange {
    address: u64,
    length: u64,
}

impl UserRange {
    pub fn new(address: u64, length: u64) -> Result<Self, Error> {
        if address
            .checked_add(length)
            .is_some_and(|end| end <= USER_MAP_END)
        {
            Ok(Self { address, length })
        } else {
            Err(Error::BadUserBuffer)
        }
    }

    /// Calls `chunk(offset, physical, length)` for each page-sized piece,
    /// after checking the piece is mapped with `required` flags. Stops at
    /// the first piece that is not.
    fn for_each_piece(
        &self,
        space: &AddressSpace,
        required: Flags,
        mut chunk: impl FnMut(u64, u64, u64) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut offset = 0;
        while offset < self.length {
            let address = self.address + offset;
            let in_page = (PAGE_SIZE - address % PAGE_SIZE).min(self.length - offset);
            match space.translate(address) {
                Some((physical, flags)) if flags.contains(required) => {
                    chunk(offset, physical, in_page)?
                }
                _ => return Err(Error::BadUserBuffer),
            }
            offset += in_page;
        }
        Ok(())
    }

    /// Checks the whole range, so that a write that fails writes nothing.
    fn check(&self, space: &AddressSpace, required: Flags) -> Result<(), Error> {
        self.for_each_piece(space, required, |_, _, _| Ok(()))
    }

    /// Whether the whole range is mapped writable for the environment.
    pub fn check_writable(&self, space: &AddressSpace) -> Result<(), Error> {
        self.check(
            space,
            Flags::PRESENT | Flags::USER_ACCESSIBLE | Flags::WRITABLE,
        )
    }

    /// Whether the whole range is mapped readable for the environment.
    pub fn check_readable(&self, space: &AddressSpace) -> Result<(), Error> {
        self.check(space, Flags::PRESENT | Flags::USER_ACCESSIBLE)
    }

    /// Copies the range into `out` (which must be as long as the range). On
    /// an error `out` may hold part of it: a kernel buffer, thrown away, so
    /// the range is not checked beforehand.
    pub fn read(&self, space: &AddressSpace, out: &mut [u8]) -> Result<(), Error> {
        assert_eq!(out.len() as u64, self.length);
        self.for_each_piece(
            space,
            Flags::PRESENT | Flags::USER_ACCESSIBLE,
            |offset, physical, length| {
                let target = &mut out[offset as usize..(offset + length) as usize];
                // A page mapped user-accessible that is not lent to an
                // environment (the page-table view) is not the kernel's to copy.
                lent_frames::read(physical, target).map_err(|_| Error::BadUserBuffer)
            },
        )
    }

    /// Copies `bytes` (as long as the range) into the range.
    pub fn write(&self, space: &AddressSpace, bytes: &[u8]) -> Result<(), Error> {
        assert_eq!(bytes.len() as u64, self.length);
        let writable = Flags::PRESENT | Flags::USER_ACCESSIBLE | Flags::WRITABLE;
        self.check_writable(space)?;
        self.for_each_piece(space, writable, |offset, physical, length| {
            let source = &bytes[offset as usize..(offset + length) as usize];
            lent_frames::write(physical, source).map_err(|_| Error::BadUserBuffer)
        })
    }
}
