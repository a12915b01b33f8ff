//! The tree a lab works on: the files git tracks, the lab regions in them, and copies of
//! the tree with one lab's regions stubbed (a student's working copy, or the copy the rot
//! check grades).
//!
//! Only Rust sources hold regions. A marker error stops everything, naming its file and
//! line: a skeleton from a half-read file would be wrong in ways nobody sees.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::markers::{self, MarkerError, Region};

/// The files of the tree at `root`, relative to it: those git tracks and new ones it does
/// not ignore (a file being written belongs to the tree as much as a committed one); a
/// tracked file deleted in the working tree is left out.
pub fn tracked_files(root: &Path) -> Result<Vec<PathBuf>, String> {
    // Inside another repository's ignored directory (the rot check's copy), git would
    // answer for that repository: nothing.
    if !root.join(".git").exists() {
        return Err(format!(
            "{} is not the top of a git repository: labs are made from the files git tracks",
            root.display()
        ));
    }
    let output = Command::new("git")
        .current_dir(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .map_err(|error| format!("cannot run git: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "`git ls-files` failed in {}: {}",
            root.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let names = String::from_utf8(output.stdout).map_err(|_| "a file name is not UTF-8")?;
    Ok(names
        .split('\0')
        .filter(|name| !name.is_empty())
        .map(PathBuf::from)
        .filter(|name| root.join(name).is_file())
        .collect())
}

/// The file `lab start` leaves at the top of a lab's copy, saying which lab it is. Its
/// markers then hold a student's work, not exo's: the rot check and the unit test of the
/// regions are about exo's own tree, and skip a copy.
pub const LAB_COPY_FILE: &str = "LAB";

/// Whether the tree at `root` is a lab's copy (see [`LAB_COPY_FILE`]).
pub fn is_lab_copy(root: &Path) -> bool {
    root.join(LAB_COPY_FILE).is_file()
}

fn holds_regions(file: &Path) -> bool {
    file.extension().is_some_and(|extension| extension == "rs")
}

fn read(root: &Path, file: &Path) -> Result<String, String> {
    fs::read_to_string(root.join(file)).map_err(|error| format!("{}: {error}", file.display()))
}

/// Every region in the tree at `root`, with its file.
pub fn regions(root: &Path) -> Result<Vec<(PathBuf, Region)>, String> {
    let mut found = Vec::new();
    for file in tracked_files(root)?
        .into_iter()
        .filter(|file| holds_regions(file))
    {
        let text = read(root, &file)?;
        let regions = markers::parse(&text).map_err(|error| at(&file, &error))?;
        found.extend(regions.into_iter().map(|region| (file.clone(), region)));
    }
    Ok(found)
}

/// `file:line: message`, as compilers say where.
fn at(file: &Path, error: &MarkerError) -> String {
    format!("{}:{}: {}", file.display(), error.line, error.message)
}

/// What a copy holds for `file`: the file itself, or its skeleton for `lab`.
fn copy_contents(root: &Path, file: &Path, lab: u32) -> Result<Vec<u8>, String> {
    if !holds_regions(file) {
        return fs::read(root.join(file)).map_err(|error| format!("{}: {error}", file.display()));
    }
    let text = read(root, file)?;
    let regions = markers::parse(&text).map_err(|error| at(file, &error))?;
    Ok(markers::stub(&text, &regions, lab).into_bytes())
}

/// Writes the tree at `root` to the new directory `destination`, lab `lab`'s regions
/// stubbed, with `note` in its [`LAB_COPY_FILE`]; returns the files it stubbed. Refuses a
/// destination that exists: a student's work is never overwritten.
pub fn write_copy(
    root: &Path,
    destination: &Path,
    lab: u32,
    note: &str,
) -> Result<Vec<PathBuf>, String> {
    if destination.exists() {
        return Err(format!(
            "{} exists already; remove it or choose another --dir",
            destination.display()
        ));
    }
    let mut stubbed = Vec::new();
    for file in tracked_files(root)? {
        let contents = copy_contents(root, &file, lab)?;
        if contents != fs::read(root.join(&file)).unwrap_or_default() {
            stubbed.push(file.clone());
        }
        write_file(root, destination, &file, &contents)?;
    }
    let note_file = destination.join(LAB_COPY_FILE);
    fs::write(&note_file, note)
        .map_err(|error| format!("cannot write {}: {error}", note_file.display()))?;
    Ok(stubbed)
}

/// Makes `destination` the tree at `root` with lab `lab`'s regions stubbed, writing only
/// the files whose contents differ and removing files the tree no longer has (outside
/// `target/`). Files left alone keep their times, so cargo rebuilds only what changed: one
/// copy serves every lab in turn.
pub fn sync_copy(root: &Path, destination: &Path, lab: u32) -> Result<(), String> {
    let files = tracked_files(root)?;
    for file in &files {
        let contents = copy_contents(root, file, lab)?;
        if fs::read(destination.join(file)).ok().as_ref() != Some(&contents) {
            write_file(root, destination, file, &contents)?;
        }
    }
    let wanted: BTreeSet<&Path> = files.iter().map(PathBuf::as_path).collect();
    remove_others(destination, Path::new(""), &wanted)
}

fn write_file(root: &Path, destination: &Path, file: &Path, contents: &[u8]) -> Result<(), String> {
    let target = destination.join(file);
    let failed = |error: std::io::Error| format!("cannot write {}: {error}", target.display());
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(failed)?;
    }
    fs::write(&target, contents).map_err(failed)?;
    // Scripts such as `.ci/run` stay executable.
    let permissions = fs::metadata(root.join(file)).map_err(failed)?.permissions();
    fs::set_permissions(&target, permissions).map_err(failed)
}

/// Removes the files under `destination/directory` that are not `wanted`, keeping `target`
/// (the copy's builds) and `.git`.
fn remove_others(
    destination: &Path,
    directory: &Path,
    wanted: &BTreeSet<&Path>,
) -> Result<(), String> {
    let entries = fs::read_dir(destination.join(directory))
        .map_err(|error| format!("cannot read {}: {error}", destination.display()))?;
    for entry in entries.flatten() {
        let relative = directory.join(entry.file_name());
        if directory.as_os_str().is_empty()
            && (relative == Path::new("target") || relative == Path::new(".git"))
        {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            remove_others(destination, &relative, wanted)?;
        } else if !wanted.contains(relative.as_path()) {
            fs::remove_file(&path)
                .map_err(|error| format!("cannot remove {}: {error}", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch git repository with one marked file and one plain one.
    fn repository(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("exo-labs-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("src")).unwrap();
        fs::write(
            root.join("src/lib.rs"),
            "fn f() -> u32 {\n    // LAB 1.1 BEGIN: answer\n    42\n    // LAB 1.1 STUB\n    // todo!(\"lab 1.1\")\n    // LAB 1.1 END\n}\n",
        )
        .unwrap();
        fs::write(root.join("README.md"), "readme\n").unwrap();
        let git = |arguments: &[&str]| {
            let status = Command::new("git")
                .current_dir(&root)
                .args(arguments)
                .status()
                .unwrap();
            assert!(status.success());
        };
        git(&["init", "-q"]);
        git(&["add", "."]);
        root
    }

    #[test]
    fn a_copy_stubs_the_lab_and_is_never_written_over() {
        let root = repository("copy");
        let copy = root.with_extension("copy");
        let _ = fs::remove_dir_all(&copy);
        let stubbed = write_copy(&root, &copy, 1, "lab 1\n").unwrap();
        assert_eq!(stubbed, [PathBuf::from("src/lib.rs")]);
        assert!(is_lab_copy(&copy) && !is_lab_copy(&root));
        let text = fs::read_to_string(copy.join("src/lib.rs")).unwrap();
        assert!(text.contains("    todo!(\"lab 1.1\")\n") && !text.contains("42"));
        assert_eq!(
            fs::read_to_string(copy.join("README.md")).unwrap(),
            "readme\n"
        );
        assert!(
            write_copy(&root, &copy, 1, "")
                .unwrap_err()
                .contains("exists already")
        );
        fs::remove_dir_all(&copy).unwrap();
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_synced_copy_follows_the_lab_and_drops_strays() {
        let root = repository("sync");
        let copy = root.with_extension("sync");
        let _ = fs::remove_dir_all(&copy);
        fs::create_dir_all(copy.join("target")).unwrap();
        fs::write(copy.join("target/kept"), "").unwrap();
        fs::write(copy.join("stray.rs"), "").unwrap();
        sync_copy(&root, &copy, 1).unwrap();
        assert!(
            fs::read_to_string(copy.join("src/lib.rs"))
                .unwrap()
                .contains("todo!")
        );
        assert!(!copy.join("stray.rs").exists() && copy.join("target/kept").exists());
        sync_copy(&root, &copy, 2).unwrap();
        assert!(
            fs::read_to_string(copy.join("src/lib.rs"))
                .unwrap()
                .contains("42")
        );
        fs::remove_dir_all(&copy).unwrap();
        fs::remove_dir_all(&root).unwrap();
    }
}
