//! Cross-compiled artifacts: which package, target and code generation flags each is built
//! with, and where the result lands.
//!
//! Each artifact gets its own target directory, so their different flags never invalidate
//! each other's build cache: the kernel in `target/kernel`, the user programs in
//! `target/user`, the Linux guest's benchmark program in `target/linux-peer`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::workspace::{self, BARE_METAL_TARGET};

/// Code generation flags for the kernel:
/// - `relocation-model=static`: the 32-bit boot trampoline refers to kernel symbols by
///   absolute address, which position-independent code (the target's default) cannot link.
/// - `code-model=kernel`: the kernel lives in the top 2 GiB of the address space
///   (`0xffffffff80000000` up), where sign-extended 32-bit addresses reach every symbol.
/// - `force-frame-pointers=yes`: panic and exception reports walk the stack through `rbp`,
///   and gdb backtraces stay readable in release builds.
const KERNEL_RUSTFLAGS: &[&str] = &[
    "-Crelocation-model=static",
    "-Ccode-model=kernel",
    "-Cforce-frame-pointers=yes",
];

/// Code generation flags for user programs:
/// - `relocation-model=static`: programs are linked at a fixed address (0x400000, by
///   `userapps/user.ld`) and the kernel loads them there without applying relocations;
///   the target's default, position-independent code, would need a loader that does.
/// - `force-frame-pointers=yes`: as for the kernel, readable backtraces.
///
/// Debug information stays (the release profile's `debug = true`): gdb reads the built files
/// for source lines, arguments and locals. The boot file system holds [`boot_copy`]s without
/// it, which are twenty times smaller.
///
/// No `code-model=kernel`: programs live in the lower half, where the default (small) code
/// model reaches them.
const USER_RUSTFLAGS: &[&str] = &["-Crelocation-model=static", "-Cforce-frame-pointers=yes"];

/// The profile user programs are built with: `release` optimised for size, with link-time
/// optimisation and one code generation unit (the workspace's `Cargo.toml` says why).
const USER_PROFILE: &str = "programs";

/// The profile the kernel is built with: `release` optimised for speed as one unit, with thin
/// link-time optimisation (the workspace's `Cargo.toml` says why).
const KERNEL_PROFILE: &str = "kernel";

/// Code generation flags for the Linux guest's program (`tools/linux-peer`):
/// - `target-feature=+crt-static`: the C library is linked in, so the program runs in the
///   guest's initramfs, which holds no shared libraries.
/// - `debuginfo=0`, `strip=debuginfo`: as for exo's programs, the initramfs stays small
///   (debug information made the program three times larger); symbols stay.
const LINUX_PEER_RUSTFLAGS: &[&str] = &[
    "-Ctarget-feature=+crt-static",
    "-Cdebuginfo=0",
    "-Cstrip=debuginfo",
];

/// The target the Linux guest's program builds for.
const LINUX_TARGET: &str = "x86_64-unknown-linux-gnu";

/// How one package's bare-metal binaries are built.
#[derive(Debug)]
pub struct CrossBuild {
    pub package: &'static str,
    /// Further packages built (and linted) together with `package`.
    more_packages: &'static [&'static str],
    target: &'static str,
    /// Relative to the workspace root.
    target_dir: &'static str,
    rustflags: &'static [&'static str],
    /// Extra arguments for `cargo build` (not for clippy, which checks every target it builds).
    build_arguments: &'static [&'static str],
    /// The Cargo profile (the workspace's `Cargo.toml`), which names the folder the binaries
    /// land in.
    profile: &'static str,
}

pub const KERNEL: CrossBuild = CrossBuild {
    package: "exo-kernel",
    more_packages: &[],
    target: BARE_METAL_TARGET,
    target_dir: "target/kernel",
    rustflags: KERNEL_RUSTFLAGS,
    build_arguments: &[],
    profile: KERNEL_PROFILE,
};

/// The kernel without its trace (`--no-default-features`): what `cargo xtask bench`
/// measures tracing's cost against.
pub const UNTRACED_KERNEL: CrossBuild = CrossBuild {
    package: "exo-kernel",
    more_packages: &[],
    target: BARE_METAL_TARGET,
    target_dir: "target/kernel-untraced",
    rustflags: KERNEL_RUSTFLAGS,
    build_arguments: &["--no-default-features"],
    profile: KERNEL_PROFILE,
};

/// Every program in `userapps/src/bin/` (on the bare runtime), `userapps/posix/src/bin/`
/// (on libos-posixish) and `userapps/net/src/bin/` (on the bare runtime with libos-net),
/// one binary each, named after its file.
pub const USER_PROGRAMS: CrossBuild = CrossBuild {
    package: "userapps",
    more_packages: &["userapps-posix", "userapps-net"],
    target: BARE_METAL_TARGET,
    target_dir: "target/user",
    rustflags: USER_RUSTFLAGS,
    build_arguments: &["--bins"],
    profile: USER_PROFILE,
};

/// The program the Linux guest runs for `cargo xtask bench` (see `bench::linux::guest`).
pub const LINUX_PEER: CrossBuild = CrossBuild {
    package: "linux-peer",
    more_packages: &[],
    target: LINUX_TARGET,
    target_dir: "target/linux-peer",
    rustflags: LINUX_PEER_RUSTFLAGS,
    build_arguments: &[],
    profile: "release",
};

/// Where the user programs' sources are, relative to the workspace root.
const USER_PROGRAM_SOURCES: [&str; 3] = [
    "userapps/src/bin",
    "userapps/posix/src/bin",
    "userapps/net/src/bin",
];

impl CrossBuild {
    /// `cargo <subcommand>` (e.g. `build`, `clippy`) for this artifact; callers may append
    /// further arguments.
    pub fn cargo(&self, subcommand: &str) -> Command {
        let mut command = workspace::cargo();
        command
            .arg(subcommand)
            .args(["--profile", self.profile, "--package", self.package])
            .args(
                self.more_packages
                    .iter()
                    .flat_map(|package| ["--package", package]),
            )
            .args(["--target", self.target])
            .arg("--target-dir")
            .arg(workspace::root().join(self.target_dir))
            // Cargo prefers the encoded form; removing `RUSTFLAGS` as well keeps a developer's
            // host flags away from anything this build starts, such as a nested cargo.
            .env("CARGO_ENCODED_RUSTFLAGS", self.rustflags.join("\x1f"))
            .env_remove("RUSTFLAGS");
        command
    }

    /// `cargo build` for this artifact, with its build arguments.
    pub fn cargo_build(&self) -> Command {
        let mut command = self.cargo("build");
        command.args(self.build_arguments);
        command
    }

    /// Where `cargo build` puts the binary named like the package (the kernel, the Linux
    /// guest's program).
    pub fn binary(&self) -> PathBuf {
        self.binary_named(self.package)
    }

    /// Where `cargo build` puts the binary `name` (a user program).
    pub fn binary_named(&self, name: &str) -> PathBuf {
        workspace::root()
            .join(self.target_dir)
            .join(self.target)
            .join(self.profile)
            .join(name)
    }
}

/// Builds `artifact` with cargo's output on this terminal.
pub fn build(artifact: &CrossBuild) -> Result<(), String> {
    let status = artifact
        .cargo_build()
        .status()
        .map_err(|error| format!("cannot start cargo: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("building {} failed", artifact.package))
    }
}

/// Builds the kernel; returns its path.
pub fn build_kernel() -> Result<PathBuf, String> {
    build(&KERNEL)?;
    Ok(KERNEL.binary())
}

/// Where user program `name` is once built, with its debug information: the file gdb loads.
/// The boot file system holds its [`boot_copy`].
pub fn user_program(name: &str) -> PathBuf {
    USER_PROGRAMS.binary_named(name)
}

/// The names of all user programs, sorted: the files in `userapps/src/bin/`,
/// `userapps/posix/src/bin/` and `userapps/net/src/bin/`.
pub fn user_program_names() -> Vec<String> {
    let mut names: Vec<String> = USER_PROGRAM_SOURCES
        .iter()
        .flat_map(|directory| std::fs::read_dir(workspace::root().join(directory)))
        .flatten()
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let is_source = path.extension().is_some_and(|extension| extension == "rs");
            is_source.then(|| path.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    names.sort();
    names
}

/// Where the library OS's programs come from: the boot file system names them alone,
/// so the file server puts them in `/bin`, where the shell finds them.
const SHELL_PROGRAM_SOURCES: &str = "userapps/posix/src/bin";
/// The folder of the boot file system holding the other programs — tests and tools on the
/// bare runtime, which the kernel boots (`--program NAME`) but a shell cannot run. The
/// file server puts them in `/test`.
const BARE_PROGRAM_FOLDER: &str = "test";

/// Program `name`'s name in the boot file system: `NAME` for a program of the library OS
/// (in `/bin`), `test/NAME` for one on the bare runtime (in `/test`).
pub fn boot_file_name(name: &str) -> String {
    let runs_on_library_os = workspace::root()
        .join(SHELL_PROGRAM_SOURCES)
        .join(format!("{name}.rs"))
        .exists();
    if runs_on_library_os {
        name.to_string()
    } else {
        format!("{BARE_PROGRAM_FOLDER}/{name}")
    }
}

/// Checks that `name` is a user program, builds them all and packs the boot file system;
/// returns its path.
pub fn build_user_program(name: &str) -> Result<PathBuf, String> {
    let names = user_program_names();
    if !names.iter().any(|known| known == name) {
        return Err(format!(
            "no user program `{name}`; programs: {}",
            names.join(", ")
        ));
    }
    build(&USER_PROGRAMS)?;
    pack_bootfs()
}

/// Where the boot file system is written.
pub fn bootfs() -> PathBuf {
    workspace::root().join("target/user/bootfs.img")
}

/// A file of the boot file system: its name there and its contents.
pub type BootFile = (String, Vec<u8>);

/// Packs every built user program and every file under `userapps/files/` into the boot
/// file system (`exo_abi::bootfs`), the kernel's boot module; returns its path.
pub fn pack_bootfs() -> Result<PathBuf, String> {
    pack_bootfs_with(&[], &bootfs())
}

/// Like [`pack_bootfs`], with `extra` files as well, written to `path`: a boot that needs
/// a file the tests must not see (`cargo xtask run`'s `etc/rc`) gets an archive of its own.
pub fn pack_bootfs_with(extra: &[BootFile], path: &Path) -> Result<PathBuf, String> {
    let mut files = Vec::new();
    for name in user_program_names() {
        files.push((boot_file_name(&name), read_boot_copy(&name)?));
    }
    files.extend(boot_files_under(&workspace::root().join(BOOT_FILES))?);
    files.extend_from_slice(extra);
    let archive = pack(&files)?;
    std::fs::write(path, archive)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    Ok(path.to_path_buf())
}

/// The boot copy of built user program `name`.
pub fn read_boot_copy(name: &str) -> Result<Vec<u8>, String> {
    let path = user_program(name);
    let contents =
        std::fs::read(&path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    boot_copy(&contents).map_err(|error| format!("{}: {error}", path.display()))
}

/// `program`, an ELF executable, as the boot file system carries it: the file up to the end
/// of its last segment, without section headers. What a loader reads (the ELF header, the
/// program headers, the segments' bytes) stays at the same offsets; what the linker puts
/// after the segments goes: debug information, the symbol table, the section headers. The
/// kernel and the library OS read program headers only, and gdb reads the built file.
pub fn boot_copy(program: &[u8]) -> Result<Vec<u8>, String> {
    use elf::endian::LittleEndian;
    /// Where the ELF64 header keeps the section headers' offset, count and name table.
    const SECTION_HEADERS_OFFSET: std::ops::Range<usize> = 40..48;
    const SECTION_HEADER_FIELDS: std::ops::Range<usize> = 60..64;

    let file = elf::ElfBytes::<LittleEndian>::minimal_parse(program)
        .map_err(|error| format!("not a little-endian ELF file: {error}"))?;
    if file.ehdr.class != elf::file::Class::ELF64 {
        return Err("not a 64-bit ELF file".to_string());
    }
    let segments = file
        .segments()
        .ok_or_else(|| "an ELF file without program headers".to_string())?;
    let program_headers_end =
        file.ehdr.e_phoff + u64::from(file.ehdr.e_phnum) * u64::from(file.ehdr.e_phentsize);
    let end = segments
        .iter()
        .map(|segment| segment.p_offset + segment.p_filesz)
        .fold(program_headers_end, u64::max);
    let end = usize::try_from(end)
        .ok()
        .filter(|&end| end <= program.len())
        .ok_or_else(|| "a segment ends beyond the file".to_string())?;
    let mut copy = program[..end].to_vec();
    copy[SECTION_HEADERS_OFFSET].fill(0);
    copy[SECTION_HEADER_FIELDS].fill(0);
    Ok(copy)
}

/// The function chapter 8's gdb session breaks in: the shell's `execute`, in `sh`.
pub const DOCUMENTED_BREAKPOINT: (&str, &str) = ("sh", "execute");

/// Checks that every built user program carries what gdb needs for source-level debugging
/// (`.debug_info` and `.debug_line`), that its boot copy is smaller, and that the debug
/// information names the function chapter 8 breaks in.
pub fn check_debug_information() -> Result<(), String> {
    for name in user_program_names() {
        let path = user_program(&name);
        let contents = std::fs::read(&path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let wanted = (name == DOCUMENTED_BREAKPOINT.0).then_some(DOCUMENTED_BREAKPOINT.1);
        debug_information_in(&contents, wanted)
            .map_err(|error| format!("{}: {error}", path.display()))?;
    }
    Ok(())
}

/// Checks one program's file: debug sections present, a smaller boot copy, and `function`
/// named in `.debug_str` if given.
fn debug_information_in(program: &[u8], function: Option<&str>) -> Result<(), String> {
    let file = elf::ElfBytes::<elf::endian::LittleEndian>::minimal_parse(program)
        .map_err(|error| format!("not a little-endian ELF file: {error}"))?;
    let section = |name: &str| -> Result<&[u8], String> {
        let header = file
            .section_header_by_name(name)
            .map_err(|error| format!("unreadable section headers: {error}"))?
            .ok_or_else(|| format!("no {name} section: built without debug information"))?;
        let (data, _) = file
            .section_data(&header)
            .map_err(|error| format!("unreadable {name}: {error}"))?;
        Ok(data)
    };
    section(".debug_info")?;
    section(".debug_line")?;
    if let Some(function) = function {
        let strings = section(".debug_str")?;
        let entry = [b"\0", function.as_bytes(), b"\0"].concat();
        if !strings.windows(entry.len()).any(|window| window == entry) {
            return Err(format!("the debug information does not name `{function}`"));
        }
    }
    if boot_copy(program)?.len() >= program.len() {
        return Err("the boot copy is no smaller than the built file".to_string());
    }
    Ok(())
}

/// Where the boot file system's other files come from, relative to the workspace root: a
/// file at `userapps/files/www/index.html` is named `www/index.html`, which the file
/// server puts at `/www/index.html`.
const BOOT_FILES: &str = "userapps/files";

/// Every file under `root`, recursively, named by its path relative to `root` with `/`
/// between the parts, sorted by name; nothing if `root` does not exist. A file directly in
/// `root` is refused: a name without `/` is a program's (the file server puts it in
/// `/bin`).
fn boot_files_under(root: &Path) -> Result<Vec<BootFile>, String> {
    let mut files = Vec::new();
    if root.exists() {
        collect_files(root, "", &mut files)?;
    }
    files.sort();
    if let Some((name, _)) = files.iter().find(|(name, _)| !name.contains('/')) {
        return Err(format!(
            "{}: a boot file must be in a directory (etc/{name}, say): a name without `/` \
             is a program's",
            root.join(name).display()
        ));
    }
    Ok(files)
}

/// Adds the files of `directory` and its subdirectories to `files`, their names prefixed
/// with `prefix` (empty, or ending in `/`).
fn collect_files(directory: &Path, prefix: &str, files: &mut Vec<BootFile>) -> Result<(), String> {
    let cannot = |error: std::io::Error| format!("cannot read {}: {error}", directory.display());
    for entry in std::fs::read_dir(directory).map_err(cannot)? {
        let path = entry.map_err(cannot)?.path();
        let Some(file_name) = path.file_name().and_then(|name| name.to_str()) else {
            return Err(format!(
                "{}: a boot file name must be UTF-8",
                path.display()
            ));
        };
        let name = format!("{prefix}{file_name}");
        // Follows symbolic links: a linked file is packed like any other.
        if path.is_dir() {
            collect_files(&path, &format!("{name}/"), files)?;
        } else {
            let contents = std::fs::read(&path)
                .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
            files.push((name, contents));
        }
    }
    Ok(())
}

/// The boot file system holding `files`, laid out as `exo_abi::bootfs` describes.
fn pack(files: &[BootFile]) -> Result<Vec<u8>, String> {
    use exo_abi::bootfs::{ENTRY_SIZE, FILE_ALIGNMENT, HEADER_SIZE, MAGIC, MAX_ENTRIES, NAME_SIZE};
    if files.len() > MAX_ENTRIES {
        return Err(format!(
            "more than {MAX_ENTRIES} files for the boot file system"
        ));
    }
    let mut archive = Vec::new();
    archive.extend_from_slice(&MAGIC);
    archive.extend_from_slice(&(files.len() as u64).to_le_bytes());
    let mut offset = (HEADER_SIZE + files.len() * ENTRY_SIZE).next_multiple_of(FILE_ALIGNMENT);
    for (index, (name, contents)) in files.iter().enumerate() {
        if name.is_empty() || name.len() > NAME_SIZE || name.contains('\0') {
            return Err(format!(
                "`{name}` cannot be a boot file system name (1 to {NAME_SIZE} bytes, no NUL)"
            ));
        }
        if files[..index].iter().any(|(earlier, _)| earlier == name) {
            return Err(format!("two files named `{name}` for the boot file system"));
        }
        let mut field = [0u8; NAME_SIZE];
        field[..name.len()].copy_from_slice(name.as_bytes());
        archive.extend_from_slice(&field);
        archive.extend_from_slice(&(offset as u64).to_le_bytes());
        archive.extend_from_slice(&(contents.len() as u64).to_le_bytes());
        offset = (offset + contents.len()).next_multiple_of(FILE_ALIGNMENT);
    }
    for (_, contents) in files {
        archive.resize(archive.len().next_multiple_of(FILE_ALIGNMENT), 0);
        archive.extend_from_slice(contents);
    }
    Ok(archive)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_archives_read_back_with_the_abi_reader() {
        let files = vec![
            ("init".to_string(), b"\x7fELF first".to_vec()),
            ("empty".to_string(), Vec::new()),
            ("tools".to_string(), vec![7; 5000]),
        ];
        let archive = pack(&files).unwrap();
        let bootfs = exo_abi::bootfs::BootFs::parse(&archive).unwrap();
        assert_eq!(bootfs.len(), 3);
        for (name, contents) in &files {
            assert_eq!(bootfs.find(name).unwrap().contents, &contents[..]);
        }
        assert!(
            pack(&[("a".repeat(49), Vec::new())]).is_err(),
            "name too long"
        );
    }

    #[test]
    fn names_with_a_directory_and_duplicates() {
        let www = ("www/index.html".to_string(), b"Hello from exo".to_vec());
        let archive = pack(&[("sh".to_string(), Vec::new()), www.clone()]).unwrap();
        let bootfs = exo_abi::bootfs::BootFs::parse(&archive).unwrap();
        assert_eq!(
            bootfs.find("www/index.html").unwrap().contents,
            b"Hello from exo"
        );
        let longest = format!("www/{}", "a".repeat(44));
        assert!(pack(&[(longest, Vec::new())]).is_ok(), "48 bytes fit");
        let error = pack(&[www.clone(), www]).unwrap_err();
        assert_eq!(
            error,
            "two files named `www/index.html` for the boot file system"
        );
    }

    /// A fresh directory of this test's own under the system's temporary directory.
    fn scratch_directory(test: &str) -> PathBuf {
        let directory = std::env::temp_dir().join(format!("xtask-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).unwrap();
        directory
    }

    #[test]
    fn boot_files_are_named_by_their_path_below_the_root() {
        let root = scratch_directory("boot-files");
        std::fs::create_dir_all(root.join("www/img")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("www/index.html"), "Hello from exo").unwrap();
        std::fs::write(root.join("www/img/dot.gif"), [0x47, 0x49, 0x46]).unwrap();
        std::fs::write(root.join("etc/motd"), "").unwrap();
        let files = boot_files_under(&root).unwrap();
        let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["etc/motd", "www/img/dot.gif", "www/index.html"]);
        assert_eq!(files[2].1, b"Hello from exo");

        std::fs::write(root.join("motd"), "").unwrap();
        let error = boot_files_under(&root).unwrap_err();
        assert!(
            error.contains("/motd: a boot file must be in a directory"),
            "{error}"
        );
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(
            boot_files_under(&root),
            Ok(Vec::new()),
            "no directory, no files"
        );
    }

    #[test]
    fn a_boot_copy_keeps_the_segments_and_drops_the_rest() {
        // The test binary itself: a real ELF file, built with debug information.
        let built = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(debug_information_in(&built, Some("main")), Ok(()));
        let copy = boot_copy(&built).unwrap();
        assert!(
            copy.len() < built.len() / 2,
            "{} of {}",
            copy.len(),
            built.len()
        );
        // Each segment's address and file range, and whether the file has no section headers.
        let layout = |file: &[u8]| {
            let file = elf::ElfBytes::<elf::endian::LittleEndian>::minimal_parse(file).unwrap();
            let segments: Vec<_> = file
                .segments()
                .unwrap()
                .iter()
                .map(|segment| (segment.p_vaddr, segment.p_offset as usize, segment.p_filesz))
                .collect();
            (segments, file.section_headers().is_none())
        };
        let (built_segments, built_without_sections) = layout(&built);
        let (copy_segments, copy_without_sections) = layout(&copy);
        assert_eq!(copy_segments, built_segments);
        assert!(!built_without_sections && copy_without_sections);
        // A segment may hold the ELF header, whose section header fields are cleared.
        const ELF_HEADER: usize = 64;
        for &(_, start, size) in &copy_segments {
            let range = start.max(ELF_HEADER)..(start + size as usize).max(ELF_HEADER);
            assert_eq!(copy[range.clone()], built[range], "segment bytes unchanged");
        }
        assert!(
            debug_information_in(&copy, None)
                .unwrap_err()
                .contains("no .debug_info section")
        );
        assert!(boot_copy(b"\x7fELF truncated").is_err());
    }

    #[test]
    fn the_kernel_is_the_package_binary() {
        assert!(
            KERNEL
                .binary()
                .ends_with("target/kernel/x86_64-unknown-none/kernel/exo-kernel")
        );
    }

    #[test]
    fn the_linux_peer_is_a_static_linux_program_of_its_own_directory() {
        assert!(
            LINUX_PEER
                .binary()
                .ends_with("target/linux-peer/x86_64-unknown-linux-gnu/release/linux-peer")
        );
        assert!(LINUX_PEER_RUSTFLAGS.contains(&"-Ctarget-feature=+crt-static"));
    }

    #[test]
    fn user_programs_have_their_own_directory_flags_and_names() {
        assert!(user_program("hello").ends_with("target/user/x86_64-unknown-none/programs/hello"));
        assert!(
            !USER_RUSTFLAGS
                .iter()
                .any(|flag| flag.contains("code-model"))
        );
        let command = USER_PROGRAMS.cargo_build();
        let arguments: Vec<&str> = command.get_args().map(|a| a.to_str().unwrap()).collect();
        assert!(arguments.contains(&"--bins"));
        assert!(
            arguments
                .windows(2)
                .any(|pair| pair == ["--package", "userapps"])
        );
    }

    #[test]
    fn program_names_come_from_the_sources() {
        let names = user_program_names();
        assert!(names.iter().any(|name| name == "hello"), "{names:?}");
        assert!(names.is_sorted());
    }

    #[test]
    fn unknown_programs_are_refused_before_building() {
        let error = build_user_program("no-such-program").unwrap_err();
        assert!(error.contains("hello"), "{error}");
    }
}
