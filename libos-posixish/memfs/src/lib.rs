//! The file tree of libos-posixish: directories and files in memory.
//!
//! Pure logic — no system calls, no `unsafe` — so `cargo test` checks it on
//! the host. Nodes live in a table and are named by number (an inode), so
//! open files keep reading a file that was renamed or unlinked, as in
//! POSIX. Files added with [`FileSystem::add_read_only`] (the programs of
//! the boot file system) refuse writes.
//!
//! Paths are absolute, `/`-separated; empty components and `.` are
//! ignored, `..` goes to the parent (the root's parent is the root).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// A node's number.
pub type Inode = usize;

/// Why an operation failed (each maps to one POSIX errno).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsError {
    /// ENOENT.
    NotFound,
    /// ENOTDIR: a path component, or the target, is not a directory.
    NotADirectory,
    /// EISDIR.
    IsADirectory,
    /// EEXIST.
    Exists,
    /// ENOTEMPTY.
    NotEmpty,
    /// EROFS: the file is read-only.
    ReadOnly,
    /// EINVAL: a relative path, the root where a name is needed, or a
    /// directory moved into itself.
    InvalidPath,
    /// EFBIG: a write or truncation past [`MAX_FILE_SIZE`], or more than
    /// the tree's memory can hold. The file is left as it was.
    TooLarge,
}

/// The largest file the tree keeps: a client that seeks far and writes gets
/// `TooLarge` instead of making the tree (and its server) run out of memory.
pub const MAX_FILE_SIZE: u64 = 16 << 20;

/// Resizes `data` to `length`, or says why not, leaving it unchanged.
fn resize(data: &mut Vec<u8>, length: u64) -> Result<(), FsError> {
    if length > MAX_FILE_SIZE {
        return Err(FsError::TooLarge);
    }
    let length = length as usize;
    if let Some(more) = length.checked_sub(data.len()) {
        data.try_reserve_exact(more)
            .map_err(|_| FsError::TooLarge)?;
    }
    data.resize(length, 0);
    Ok(())
}

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Directory,
}

/// What `stat` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub inode: Inode,
    pub kind: Kind,
    pub size: u64,
    pub read_only: bool,
}

#[derive(Debug)]
enum Node {
    File(Vec<u8>),
    ReadOnlyFile(&'static [u8]),
    Directory {
        parent: Inode,
        entries: BTreeMap<String, Inode>,
    },
}

/// The tree.
#[derive(Debug)]
pub struct FileSystem {
    nodes: Vec<Option<Node>>,
}

const ROOT: Inode = 0;

impl Default for FileSystem {
    fn default() -> Self {
        Self::new()
    }
}

impl FileSystem {
    /// An empty tree: just `/`.
    pub fn new() -> Self {
        Self {
            nodes: alloc::vec![Some(Node::Directory {
                parent: ROOT,
                entries: BTreeMap::new()
            })],
        }
    }

    fn node(&self, inode: Inode) -> Result<&Node, FsError> {
        self.nodes
            .get(inode)
            .and_then(Option::as_ref)
            .ok_or(FsError::NotFound)
    }

    fn entries(&self, inode: Inode) -> Result<&BTreeMap<String, Inode>, FsError> {
        match self.node(inode)? {
            Node::Directory { entries, .. } => Ok(entries),
            _ => Err(FsError::NotADirectory),
        }
    }

    fn entries_mut(&mut self, inode: Inode) -> Result<&mut BTreeMap<String, Inode>, FsError> {
        match self.nodes.get_mut(inode).and_then(Option::as_mut) {
            Some(Node::Directory { entries, .. }) => Ok(entries),
            Some(_) => Err(FsError::NotADirectory),
            None => Err(FsError::NotFound),
        }
    }

    /// The inode `path` names.
    pub fn lookup(&self, path: &str) -> Result<Inode, FsError> {
        let mut at = ROOT;
        for component in components(path)? {
            at = match component {
                ".." => match self.node(at)? {
                    Node::Directory { parent, .. } => *parent,
                    _ => return Err(FsError::NotADirectory),
                },
                name => *self.entries(at)?.get(name).ok_or(FsError::NotFound)?,
            };
        }
        Ok(at)
    }

    /// The directory that holds `path`'s last component, and that name.
    fn parent_of<'p>(&self, path: &'p str) -> Result<(Inode, &'p str), FsError> {
        let mut parts: Vec<&str> = components(path)?.collect();
        let name = parts.pop().ok_or(FsError::InvalidPath)?;
        if name == ".." {
            return Err(FsError::InvalidPath);
        }
        let mut at = ROOT;
        for component in parts {
            at = match component {
                ".." => match self.node(at)? {
                    Node::Directory { parent, .. } => *parent,
                    _ => return Err(FsError::NotADirectory),
                },
                name => *self.entries(at)?.get(name).ok_or(FsError::NotFound)?,
            };
        }
        self.entries(at)?;
        Ok((at, name))
    }

    fn insert(&mut self, path: &str, node: Node) -> Result<Inode, FsError> {
        let (directory, name) = self.parent_of(path)?;
        if self.entries(directory)?.contains_key(name) {
            return Err(FsError::Exists);
        }
        let inode = self.nodes.len();
        let node = match node {
            Node::Directory { entries, .. } => Node::Directory {
                parent: directory,
                entries,
            },
            other => other,
        };
        self.nodes.push(Some(node));
        self.entries_mut(directory)?.insert(name.to_string(), inode);
        Ok(inode)
    }

    /// Creates an empty file at `path`.
    pub fn create(&mut self, path: &str) -> Result<Inode, FsError> {
        self.insert(path, Node::File(Vec::new()))
    }

    /// Adds a read-only file holding `data` (which outlives the tree).
    pub fn add_read_only(&mut self, path: &str, data: &'static [u8]) -> Result<Inode, FsError> {
        self.insert(path, Node::ReadOnlyFile(data))
    }

    /// Creates an empty directory at `path`.
    pub fn mkdir(&mut self, path: &str) -> Result<Inode, FsError> {
        self.insert(
            path,
            Node::Directory {
                parent: ROOT,
                entries: BTreeMap::new(),
            },
        )
    }

    /// Removes the name `path`: a file, or an empty directory. An open file
    /// stays readable through its inode (nodes are never reclaimed).
    pub fn unlink(&mut self, path: &str) -> Result<(), FsError> {
        let (directory, name) = self.parent_of(path)?;
        let inode = *self
            .entries(directory)?
            .get(name)
            .ok_or(FsError::NotFound)?;
        if let Node::Directory { entries, .. } = self.node(inode)?
            && !entries.is_empty()
        {
            return Err(FsError::NotEmpty);
        }
        self.entries_mut(directory)?.remove(name);
        Ok(())
    }

    /// Moves `from` to `to`, replacing a file (not a directory) there.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), FsError> {
        let (source_directory, source_name) = self.parent_of(from)?;
        let inode = *self
            .entries(source_directory)?
            .get(source_name)
            .ok_or(FsError::NotFound)?;
        let (target_directory, target_name) = self.parent_of(to)?;
        if self.is_within(target_directory, inode) {
            return Err(FsError::InvalidPath); // a directory into itself
        }
        if let Some(&existing) = self.entries(target_directory)?.get(target_name) {
            if existing == inode {
                return Ok(());
            }
            if matches!(self.node(existing)?, Node::Directory { .. }) {
                return Err(FsError::IsADirectory);
            }
        }
        self.entries_mut(source_directory)?.remove(source_name);
        self.entries_mut(target_directory)?
            .insert(target_name.to_string(), inode);
        if let Some(Some(Node::Directory { parent, .. })) = self.nodes.get_mut(inode) {
            *parent = target_directory;
        }
        Ok(())
    }

    /// Whether `inode` is `ancestor` or lies below it.
    fn is_within(&self, mut inode: Inode, ancestor: Inode) -> bool {
        loop {
            if inode == ancestor {
                return true;
            }
            match self.node(inode) {
                Ok(Node::Directory { parent, .. }) if *parent != inode => inode = *parent,
                _ => return false,
            }
        }
    }

    /// The names in directory `path`, sorted.
    pub fn readdir(&self, path: &str) -> Result<Vec<String>, FsError> {
        Ok(self.entries(self.lookup(path)?)?.keys().cloned().collect())
    }

    pub fn stat(&self, inode: Inode) -> Result<Stat, FsError> {
        let (kind, size, read_only) = match self.node(inode)? {
            Node::File(data) => (Kind::File, data.len() as u64, false),
            Node::ReadOnlyFile(data) => (Kind::File, data.len() as u64, true),
            Node::Directory { entries, .. } => (Kind::Directory, entries.len() as u64, false),
        };
        Ok(Stat {
            inode,
            kind,
            size,
            read_only,
        })
    }

    /// Reads from `offset` into `buffer`; returns how many bytes (0 at the end).
    pub fn read(&self, inode: Inode, offset: u64, buffer: &mut [u8]) -> Result<usize, FsError> {
        let data: &[u8] = match self.node(inode)? {
            Node::File(data) => data,
            Node::ReadOnlyFile(data) => data,
            Node::Directory { .. } => return Err(FsError::IsADirectory),
        };
        let start = (offset as usize).min(data.len());
        let length = buffer.len().min(data.len() - start);
        buffer[..length].copy_from_slice(&data[start..start + length]);
        Ok(length)
    }

    /// Writes `bytes` at `offset`, filling any gap with zeros; returns how many.
    pub fn write(&mut self, inode: Inode, offset: u64, bytes: &[u8]) -> Result<usize, FsError> {
        let data = self.file_mut(inode)?;
        let end = offset
            .checked_add(bytes.len() as u64)
            .ok_or(FsError::TooLarge)?;
        if (data.len() as u64) < end {
            resize(data, end)?;
        }
        data[offset as usize..end as usize].copy_from_slice(bytes);
        Ok(bytes.len())
    }

    /// Cuts or extends the file to `length` bytes.
    pub fn truncate(&mut self, inode: Inode, length: u64) -> Result<(), FsError> {
        resize(self.file_mut(inode)?, length)
    }

    fn file_mut(&mut self, inode: Inode) -> Result<&mut Vec<u8>, FsError> {
        match self.nodes.get_mut(inode).and_then(Option::as_mut) {
            Some(Node::File(data)) => Ok(data),
            Some(Node::ReadOnlyFile(_)) => Err(FsError::ReadOnly),
            Some(Node::Directory { .. }) => Err(FsError::IsADirectory),
            None => Err(FsError::NotFound),
        }
    }
}

/// The components of absolute path `path`.
fn components(path: &str) -> Result<impl Iterator<Item = &str>, FsError> {
    let rest = path.strip_prefix('/').ok_or(FsError::InvalidPath)?;
    Ok(rest
        .split('/')
        .filter(|part| !part.is_empty() && *part != "."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_directories() {
        let mut fs = FileSystem::new();
        fs.mkdir("/tmp").unwrap();
        let file = fs.create("/tmp/notes").unwrap();
        assert_eq!(fs.write(file, 0, b"hello").unwrap(), 5);
        assert_eq!(fs.write(file, 8, b"!").unwrap(), 1);
        let mut buffer = [0xff; 16];
        assert_eq!(fs.read(file, 0, &mut buffer).unwrap(), 9);
        assert_eq!(&buffer[..9], b"hello\0\0\0!");
        assert_eq!(fs.read(file, 100, &mut buffer).unwrap(), 0);
        assert_eq!(fs.stat(file).unwrap().size, 9);
        assert_eq!(fs.lookup("/tmp/./notes"), Ok(file));
        assert_eq!(fs.lookup("//tmp/../tmp/notes"), Ok(file));
        assert_eq!(fs.readdir("/").unwrap(), ["tmp"]);
        fs.truncate(file, 2).unwrap();
        assert_eq!(fs.stat(file).unwrap().size, 2);
    }

    #[test]
    fn a_write_far_past_the_end_is_refused_and_changes_nothing() {
        let mut fs = FileSystem::new();
        let file = fs.create("/big").unwrap();
        fs.write(file, 0, b"kept").unwrap();
        assert_eq!(fs.write(file, MAX_FILE_SIZE, b"x"), Err(FsError::TooLarge));
        assert_eq!(fs.write(file, u64::MAX, b"x"), Err(FsError::TooLarge));
        assert_eq!(fs.truncate(file, u64::MAX), Err(FsError::TooLarge));
        assert_eq!(fs.stat(file).unwrap().size, 4);
        assert_eq!(fs.write(file, MAX_FILE_SIZE - 1, b"x"), Ok(1));
        assert_eq!(fs.stat(file).unwrap().size, MAX_FILE_SIZE);
    }

    #[test]
    fn errors_are_precise() {
        let mut fs = FileSystem::new();
        fs.mkdir("/d").unwrap();
        let file = fs.create("/d/f").unwrap();
        assert_eq!(fs.lookup("/nope"), Err(FsError::NotFound));
        assert_eq!(fs.lookup("relative"), Err(FsError::InvalidPath));
        assert_eq!(fs.lookup("/d/f/x"), Err(FsError::NotADirectory));
        assert_eq!(fs.create("/d/f"), Err(FsError::Exists));
        assert_eq!(fs.mkdir("/d/f/g"), Err(FsError::NotADirectory));
        assert_eq!(fs.create("/missing/f"), Err(FsError::NotFound));
        assert_eq!(fs.unlink("/d"), Err(FsError::NotEmpty));
        assert_eq!(fs.unlink("/"), Err(FsError::InvalidPath));
        let directory = fs.lookup("/d").unwrap();
        assert_eq!(
            fs.read(directory, 0, &mut [0; 4]),
            Err(FsError::IsADirectory)
        );
        assert_eq!(fs.write(directory, 0, b"x"), Err(FsError::IsADirectory));
        assert_eq!(fs.readdir("/d/f"), Err(FsError::NotADirectory));
        fs.unlink("/d/f").unwrap();
        assert_eq!(fs.lookup("/d/f"), Err(FsError::NotFound));
        assert_eq!(
            fs.write(file, 0, b"still open").unwrap(),
            10,
            "an unlinked file stays usable"
        );
        fs.unlink("/d").unwrap();
    }

    #[test]
    fn read_only_files_refuse_writes() {
        static PROGRAM: &[u8] = b"\x7fELF...";
        let mut fs = FileSystem::new();
        fs.mkdir("/bin").unwrap();
        let program = fs.add_read_only("/bin/echo", PROGRAM).unwrap();
        let mut buffer = [0; 4];
        assert_eq!(fs.read(program, 0, &mut buffer).unwrap(), 4);
        assert_eq!(&buffer, b"\x7fELF");
        assert_eq!(fs.write(program, 0, b"x"), Err(FsError::ReadOnly));
        assert_eq!(fs.truncate(program, 0), Err(FsError::ReadOnly));
        assert!(fs.stat(program).unwrap().read_only);
    }

    #[test]
    fn rename_moves_files_and_directories() {
        let mut fs = FileSystem::new();
        fs.mkdir("/a").unwrap();
        fs.mkdir("/a/b").unwrap();
        let file = fs.create("/a/b/f").unwrap();
        fs.mkdir("/c").unwrap();
        fs.rename("/a/b", "/c/b2").unwrap();
        assert_eq!(fs.lookup("/c/b2/f"), Ok(file));
        assert_eq!(fs.lookup("/c/b2/../.."), Ok(ROOT));
        assert_eq!(fs.lookup("/a/b"), Err(FsError::NotFound));
        assert_eq!(fs.rename("/c", "/c/b2/inside"), Err(FsError::InvalidPath));
        let other = fs.create("/c/other").unwrap();
        fs.rename("/c/other", "/c/b2/f").unwrap();
        assert_eq!(fs.lookup("/c/b2/f"), Ok(other), "rename replaces a file");
        assert_eq!(fs.rename("/c/b2/f", "/c/b2"), Err(FsError::IsADirectory));
        assert_eq!(fs.rename("/nope", "/x"), Err(FsError::NotFound));
    }
}
