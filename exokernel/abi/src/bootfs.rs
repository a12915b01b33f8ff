//! The boot file system: every program, in one archive the kernel hands to
//! the first environment.
//!
//! `cargo xtask` packs the programs of `userapps/` into this format and QEMU
//! passes it as the boot module. The kernel looks up only the first program
//! (`init=NAME` on the command line) and loads it; it copies the whole
//! archive into frames the first environment owns and maps it read-only at
//! [`BOOTFS`](crate::layout::BOOTFS), where the library OS reads programs
//! and files from it.
//!
//! Layout, all integers little-endian:
//! ```text
//! 0      magic "exobootf"          8 bytes
//! 8      entry count               u64
//! 16     entries, 64 bytes each:   name (48 bytes, UTF-8, NUL-padded),
//!                                  offset u64, size u64 (from the archive's start)
//! ...    file contents, each starting on a 4 KiB boundary
//! ```
//! The reader checks every offset and size against the archive, so a
//! corrupt archive is an error, never an out-of-bounds read.

/// The first eight bytes of an archive.
pub const MAGIC: [u8; 8] = *b"exobootf";
/// Bytes before the first entry.
pub const HEADER_SIZE: usize = 16;
/// Bytes of one entry.
pub const ENTRY_SIZE: usize = 64;
/// Bytes of an entry's name field.
pub const NAME_SIZE: usize = 48;
/// Where file contents are aligned.
pub const FILE_ALIGNMENT: usize = 4096;
/// The most entries an archive may have.
pub const MAX_ENTRIES: usize = 1024;

/// Why an archive could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootFsError {
    /// Too short, or the magic is wrong.
    NotAnArchive,
    /// More entries than `MAX_ENTRIES`, or more than fit in the archive.
    TooManyEntries,
    /// An entry's name is not NUL-padded UTF-8, or is empty.
    BadName,
    /// An entry's contents lie outside the archive.
    BadRange,
}

/// A checked view of an archive.
#[derive(Clone, Copy, Debug)]
pub struct BootFs<'a> {
    bytes: &'a [u8],
    count: usize,
}

/// One file of the archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct File<'a> {
    pub name: &'a str,
    pub contents: &'a [u8],
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

impl<'a> BootFs<'a> {
    /// Checks the whole archive once; lookups after that cannot fail.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BootFsError> {
        if bytes.len() < HEADER_SIZE || bytes[..8] != MAGIC {
            return Err(BootFsError::NotAnArchive);
        }
        let count = read_u64(bytes, 8);
        let table_end = (count as u128) * ENTRY_SIZE as u128 + HEADER_SIZE as u128;
        if count > MAX_ENTRIES as u64 || table_end > bytes.len() as u128 {
            return Err(BootFsError::TooManyEntries);
        }
        let archive = Self {
            bytes,
            count: count as usize,
        };
        for index in 0..archive.count {
            archive.entry(index)?;
        }
        Ok(archive)
    }

    fn entry(&self, index: usize) -> Result<File<'a>, BootFsError> {
        let at = HEADER_SIZE + index * ENTRY_SIZE;
        let name_field = &self.bytes[at..at + NAME_SIZE];
        let length = name_field
            .iter()
            .position(|&byte| byte == 0)
            .unwrap_or(NAME_SIZE);
        if length == 0 || name_field[length..].iter().any(|&byte| byte != 0) {
            return Err(BootFsError::BadName);
        }
        let name = core::str::from_utf8(&name_field[..length]).map_err(|_| BootFsError::BadName)?;
        let offset = read_u64(self.bytes, at + NAME_SIZE);
        let size = read_u64(self.bytes, at + NAME_SIZE + 8);
        let end = offset.checked_add(size).ok_or(BootFsError::BadRange)?;
        if end > self.bytes.len() as u64 {
            return Err(BootFsError::BadRange);
        }
        Ok(File {
            name,
            contents: &self.bytes[offset as usize..end as usize],
        })
    }

    /// How many files the archive holds.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Every file, in archive order.
    pub fn files(&self) -> impl Iterator<Item = File<'a>> + '_ {
        (0..self.count).map(|index| self.entry(index).expect("checked by parse"))
    }

    /// The file called `name`.
    pub fn find(&self, name: &str) -> Option<File<'a>> {
        self.files().find(|file| file.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    extern crate std;
    use std::vec::Vec;

    /// Packs files as `cargo xtask` does (the writer lives there; this one
    /// mirrors the format for the reader's tests).
    fn pack(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&(files.len() as u64).to_le_bytes());
        let mut offset = (HEADER_SIZE + files.len() * ENTRY_SIZE).next_multiple_of(FILE_ALIGNMENT);
        for (name, contents) in files {
            let mut field = [0u8; NAME_SIZE];
            field[..name.len()].copy_from_slice(name.as_bytes());
            bytes.extend_from_slice(&field);
            bytes.extend_from_slice(&(offset as u64).to_le_bytes());
            bytes.extend_from_slice(&(contents.len() as u64).to_le_bytes());
            offset = (offset + contents.len()).next_multiple_of(FILE_ALIGNMENT);
        }
        for (_, contents) in files {
            bytes.resize(bytes.len().next_multiple_of(FILE_ALIGNMENT), 0);
            bytes.extend_from_slice(contents);
        }
        bytes
    }

    #[test]
    fn finds_files() {
        let bytes = pack(&[("init", b"\x7fELF init"), ("cat", b"meow")]);
        let archive = BootFs::parse(&bytes).unwrap();
        assert_eq!(archive.len(), 2);
        assert_eq!(archive.find("cat").unwrap().contents, b"meow");
        assert_eq!(archive.find("init").unwrap().contents, b"\x7fELF init");
        assert_eq!(archive.find("dog"), None);
        let names: Vec<&str> = archive.files().map(|file| file.name).collect();
        assert_eq!(names, ["init", "cat"]);
    }

    #[test]
    fn refuses_corrupt_archives() {
        assert_eq!(
            BootFs::parse(b"short").unwrap_err(),
            BootFsError::NotAnArchive
        );
        assert_eq!(
            BootFs::parse(&[0; 64]).unwrap_err(),
            BootFsError::NotAnArchive
        );

        let good = pack(&[("a", b"x")]);
        let mut many = good.clone();
        many[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            BootFs::parse(&many).unwrap_err(),
            BootFsError::TooManyEntries
        );

        let size_at = HEADER_SIZE + NAME_SIZE + 8;
        let mut long = good.clone();
        long[size_at..size_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(BootFs::parse(&long).unwrap_err(), BootFsError::BadRange);

        let mut unnamed = good.clone();
        unnamed[HEADER_SIZE] = 0;
        assert_eq!(BootFs::parse(&unnamed).unwrap_err(), BootFsError::BadName);

        let mut junk_after_nul = good.clone();
        junk_after_nul[HEADER_SIZE + 5] = b'z';
        assert_eq!(
            BootFs::parse(&junk_after_nul).unwrap_err(),
            BootFsError::BadName
        );
    }

    #[test]
    fn every_truncation_is_an_error_or_a_consistent_archive() {
        let good = pack(&[("one", b"1111"), ("two", b"22")]);
        for length in 0..good.len() {
            if let Ok(archive) = BootFs::parse(&good[..length]) {
                assert!(archive.files().all(|file| file.contents.len() <= length));
            }
        }
    }
}
