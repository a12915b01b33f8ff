//! memfs paths (`libos-posixish/memfs`): every path a program names reaches the file
//! tree as it wrote it.

use std::collections::BTreeSet;

use arbitrary::{Arbitrary, Unstructured};
use posixish_memfs::{FileSystem, Inode, Kind};

use super::Target;

pub const TARGET: Target = Target {
    name: "memfs",
    checks: "any sequence of operations on any paths keeps one tree whose `..` never leaves the root",
    check,
};

/// Few names, so operations meet each other's files.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Part {
    A,
    B,
    C,
    Up,
    Here,
    Empty,
}

#[derive(Arbitrary, Debug)]
struct Path {
    absolute: bool,
    parts: Vec<Part>,
}

impl Path {
    fn text(&self) -> String {
        let parts: Vec<&str> = self
            .parts
            .iter()
            .map(|part| match part {
                Part::A => "a",
                Part::B => "b",
                Part::C => "c",
                Part::Up => "..",
                Part::Here => ".",
                Part::Empty => "",
            })
            .collect();
        let joined = parts.join("/");
        if self.absolute {
            format!("/{joined}")
        } else {
            joined
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Operation {
    Create(Path),
    Mkdir(Path),
    Unlink(Path),
    Rename(Path, Path),
    Write(Path, u16, u8),
    Truncate(Path, u16),
    Lookup(Path),
}

/// At most this many operations from one input, so an input costs a bounded time.
const MAX_OPERATIONS: usize = 48;

fn check(bytes: &[u8]) {
    let mut unstructured = Unstructured::new(bytes);
    let mut tree = FileSystem::new();
    for _ in 0..MAX_OPERATIONS {
        let Ok(operation) = Operation::arbitrary(&mut unstructured) else {
            return;
        };
        let reached = match &operation {
            Operation::Create(path) => tree.create(&path.text()).ok(),
            Operation::Mkdir(path) => tree.mkdir(&path.text()).ok(),
            Operation::Unlink(path) => tree.unlink(&path.text()).ok().map(|()| 0),
            Operation::Rename(from, to) => tree.rename(&from.text(), &to.text()).ok().map(|()| 0),
            Operation::Write(path, offset, byte) => {
                let inode = tree.lookup(&path.text());
                if let Ok(inode) = inode {
                    let _ = tree.write(inode, u64::from(*offset), &[*byte; 3]);
                }
                inode.ok()
            }
            Operation::Truncate(path, length) => {
                let inode = tree.lookup(&path.text());
                if let Ok(inode) = inode {
                    let _ = tree.truncate(inode, u64::from(*length));
                }
                inode.ok()
            }
            Operation::Lookup(path) => tree.lookup(&path.text()).ok(),
        };
        let names = check_tree(&tree);
        if let Some(inode) = reached {
            assert!(
                names.contains(&inode),
                "{operation:?} reached a node outside the tree"
            );
        }
    }
}

/// Walks the tree from the root; checks each node is named once, and that `.`, `..` and a
/// leading `/..` resolve as they must. Returns the inodes named.
fn check_tree(tree: &FileSystem) -> BTreeSet<Inode> {
    let mut named = BTreeSet::new();
    let mut directories = vec![(String::new(), 0, 0)];
    while let Some((path, inode, parent)) = directories.pop() {
        assert!(
            named.insert(inode),
            "inode {inode} named twice (at {path:?})"
        );
        let shown = if path.is_empty() { "/" } else { &path };
        assert_eq!(tree.lookup(shown), Ok(inode));
        assert_eq!(tree.lookup(&format!("{path}/.")), Ok(inode));
        assert_eq!(tree.lookup(&format!("{path}/..")), Ok(parent));
        assert_eq!(
            tree.lookup(&format!("/../..{path}")),
            Ok(inode),
            "`..` left the root"
        );
        for name in tree.readdir(shown).expect("a directory lists") {
            let child_path = format!("{path}/{name}");
            let child = tree.lookup(&child_path).expect("a listed name resolves");
            let stat = tree.stat(child).expect("a listed node exists");
            match stat.kind {
                Kind::Directory => directories.push((child_path, child, inode)),
                Kind::File => assert!(named.insert(child), "file {child} named twice"),
            }
        }
    }
    named
}
