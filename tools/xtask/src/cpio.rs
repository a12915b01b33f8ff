//! Writing cpio archives in the "newc" format, the one Linux unpacks as its initramfs
//! (the Linux guest's, see `bench::linux::guest`).
//!
//! The `cpio` crate writes the headers, the names and the padding; this module chooses what
//! they say: every entry owned by root and dated 1970 (so the same inputs give the same
//! bytes), an inode number of its own, and device nodes made here, since creating one on the
//! host would need root. It knows nothing of what goes in.

use std::io::Write;

use cpio::newc::{Builder, ModeFileType};

/// An archive being written; [`Archive::finish`] gives its bytes.
#[derive(Debug, Default)]
pub struct Archive {
    bytes: Vec<u8>,
    /// Each entry gets an inode number of its own, as if every file had one link.
    entries: u32,
}

impl Archive {
    pub fn new() -> Self {
        Archive::default()
    }

    /// A directory at `path` (no leading `/`: `lib/modules`), with `permissions` (0o755).
    pub fn directory(&mut self, path: &str, permissions: u32) {
        self.entry(path, ModeFileType::Directory, permissions, 2, (0, 0), &[]);
    }

    /// A regular file at `path` holding `contents`.
    pub fn file(&mut self, path: &str, permissions: u32, contents: &[u8]) {
        self.entry(
            path,
            ModeFileType::Regular,
            permissions,
            1,
            (0, 0),
            contents,
        );
    }

    /// A symbolic link at `path` pointing to `target`; its contents are the target.
    pub fn symbolic_link(&mut self, path: &str, target: &str) {
        self.entry(
            path,
            ModeFileType::Symlink,
            0o777,
            1,
            (0, 0),
            target.as_bytes(),
        );
    }

    /// A character device node at `path` (`dev/console` is 5, 1): made here, since
    /// creating one on the host would need root.
    pub fn character_device(&mut self, path: &str, permissions: u32, major: u32, minor: u32) {
        self.entry(
            path,
            ModeFileType::Char,
            permissions,
            1,
            (major, minor),
            &[],
        );
    }

    /// The archive's bytes, ended by the trailer.
    pub fn finish(self) -> Vec<u8> {
        cpio::newc::trailer(self.bytes).expect("writing to memory")
    }

    fn entry(
        &mut self,
        path: &str,
        file_type: ModeFileType,
        permissions: u32,
        links: u32,
        device: (u32, u32),
        contents: &[u8],
    ) {
        assert!(
            !path.is_empty() && !path.starts_with('/') && !path.contains('\0'),
            "`{path}` is not a relative archive path"
        );
        self.entries += 1;
        let size = u32::try_from(contents.len()).expect("a newc entry holds less than 4 GiB");
        // Owner, group and date stay the builder's zeros: root, 1970.
        let mut writer = Builder::new(path)
            .ino(self.entries)
            .mode(permissions)
            .set_mode_file_type(file_type)
            .nlink(links)
            .rdev_major(device.0)
            .rdev_minor(device.1)
            .write(std::mem::take(&mut self.bytes), size);
        writer.write_all(contents).expect("writing to memory");
        self.bytes = writer.finish().expect("writing to memory");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header's size: the magic and thirteen eight-digit fields.
    const HEADER_SIZE: usize = 110;
    /// The newc header's magic: no checksums.
    const MAGIC: &str = "070701";
    /// The name of the entry that ends the archive.
    const TRAILER: &str = "TRAILER!!!";

    /// The thirteen header fields of the entry starting at `offset`.
    fn fields_at(archive: &[u8], offset: usize) -> Vec<u32> {
        let header = std::str::from_utf8(&archive[offset..offset + HEADER_SIZE]).unwrap();
        assert_eq!(&header[..6], MAGIC);
        (0..13)
            .map(|index| u32::from_str_radix(&header[6 + index * 8..14 + index * 8], 16).unwrap())
            .collect()
    }

    #[test]
    fn a_file_has_its_header_name_and_contents_each_padded() {
        let mut archive = Archive::new();
        archive.file("init", 0o755, b"#!/bin/sh\n");
        let bytes = archive.finish();
        let fields = fields_at(&bytes, 0);
        // inode, mode, uid, gid, links, mtime, size, dev, rdev, name size, checksum
        assert_eq!(
            fields,
            [1, 0o100_755, 0, 0, 1, 0, 10, 0, 0, 0, 0, 5, 0],
            "{fields:x?}"
        );
        // 110 + "init\0" = 115, padded to 116; 10 bytes of contents padded to 12.
        assert_eq!(&bytes[HEADER_SIZE..HEADER_SIZE + 6], b"init\0\0");
        assert_eq!(&bytes[116..126], b"#!/bin/sh\n");
        assert_eq!(&bytes[126..128], [0, 0]);
        assert_eq!(&bytes[128..134], MAGIC.as_bytes(), "the trailer follows");
    }

    #[test]
    fn the_trailer_ends_the_archive() {
        let bytes = Archive::new().finish();
        let fields = fields_at(&bytes, 0);
        assert_eq!(fields[4], 1, "one link");
        assert_eq!(fields[11] as usize, TRAILER.len() + 1);
        assert_eq!(&bytes[HEADER_SIZE..HEADER_SIZE + 11], b"TRAILER!!!\0");
        assert_eq!(bytes.len(), 124, "110 + 11, padded to four");
    }

    #[test]
    fn directories_links_and_devices_have_their_types() {
        let mut archive = Archive::new();
        archive.directory("dev", 0o755);
        archive.symbolic_link("bin/sh", "busybox");
        archive.character_device("dev/console", 0o600, 5, 1);
        let bytes = archive.finish();
        // 110 + "dev\0" = 114, padded to 116; a directory has no contents.
        let directory = fields_at(&bytes, 0);
        assert_eq!(
            (directory[0], directory[1], directory[4]),
            (1, 0o040_755, 2)
        );
        // 110 + "bin/sh\0" = 117 -> 120, then "busybox" = 7 -> 8.
        let link = fields_at(&bytes, 116);
        assert_eq!((link[0], link[1], link[6]), (2, 0o120_777, 7));
        assert_eq!(&bytes[116 + 120..116 + 127], b"busybox");
        let console = fields_at(&bytes, 116 + 128);
        assert_eq!((console[0], console[1]), (3, 0o020_600));
        assert_eq!((console[9], console[10]), (5, 1), "rdev major and minor");
        assert_eq!(bytes.len() % 4, 0);
    }

    #[test]
    #[should_panic(expected = "not a relative archive path")]
    fn absolute_paths_are_refused() {
        Archive::new().file("/init", 0o755, b"");
    }
}
