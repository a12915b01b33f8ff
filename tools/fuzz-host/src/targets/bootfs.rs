//! The boot file system reader (`exokernel/abi/src/bootfs.rs`): the kernel and every
//! library OS read it.

use exo_abi::bootfs::{BootFs, MAX_ENTRIES, NAME_SIZE};

use super::Target;

pub const TARGET: Target = Target {
    name: "bootfs",
    checks: "a parsed archive's names are valid and its files lie within the bytes",
    check,
};

fn check(bytes: &[u8]) {
    let Ok(archive) = BootFs::parse(bytes) else {
        return;
    };
    assert!(archive.len() <= MAX_ENTRIES);
    let whole = bytes.as_ptr_range();
    let mut count = 0;
    for file in archive.files() {
        count += 1;
        assert!(!file.name.is_empty() && file.name.len() <= NAME_SIZE);
        assert!(!file.name.contains('\0'));
        let contents = file.contents.as_ptr_range();
        assert!(whole.start <= contents.start && contents.end <= whole.end);
        let found = archive.find(file.name).expect("a listed name is found");
        assert_eq!(found.name, file.name);
    }
    assert_eq!(count, archive.len());
}
