//! How big the measured systems are: exo's kernel and its network servers (with a few other
//! programs for scale) beside the Linux guest's kernel, initramfs and static `linux-peer`.
//! For an ELF file, its bytes on disk and what its loadable segments take in memory: text
//! (the executable segments' file bytes) and data (everything else loaded, `.bss`
//! included), so that "a library OS makes a server small" is a figure, not a claim.
//!
//! The program headers are read with the `elf` crate, the reader the kernel already uses
//! for the first program (no_std, no unsafe code). This module only reads files that were
//! built before it runs; it builds nothing.

use std::path::Path;

use elf::ElfBytes;
use elf::abi::{PF_X, PT_LOAD};
use elf::endian::AnyEndian;

use super::linux::guest::LinuxGuest;
use super::report::{ImageSize, LoadedBytes};
use crate::artifacts;

/// exo's network servers, each measured: the question is how small a server on a
/// library OS gets.
pub const SERVERS: [&str; 4] = ["udp-echo", "tcp-echo", "tcp-discard", "httpd"];
/// Other programs, for scale: the shell, the file server, the smallest libos-posixish
/// program, and the density app (a UDP echo server on the bare runtime with libos-net).
pub const FOR_SCALE: [&str; 4] = ["sh", "fsd", "argc", "density"];
/// The target: the UDP echo server loads at most 128 KiB, text and data.
pub const UDP_ECHO_MAX_LOADED_BYTES: u64 = 128 << 10;

/// What `elf`'s loadable segments take in memory: the executable ones' file bytes are
/// text; the rest of every segment's memory size (data, read-only data, `.bss`) is data.
pub fn loaded_bytes(elf: &[u8]) -> Result<LoadedBytes, String> {
    let file = ElfBytes::<AnyEndian>::minimal_parse(elf)
        .map_err(|error| format!("not an ELF file: {error}"))?;
    let segments = file
        .segments()
        .ok_or_else(|| "an ELF file without program headers".to_string())?;
    let mut loaded = LoadedBytes::default();
    for segment in segments.iter().filter(|segment| segment.p_type == PT_LOAD) {
        let text = if segment.p_flags & PF_X != 0 {
            segment.p_filesz.min(segment.p_memsz)
        } else {
            0
        };
        loaded.text += text;
        loaded.data += segment.p_memsz - text;
    }
    Ok(loaded)
}

/// The size of the ELF file at `path`, named `name`.
fn of_elf(name: &str, path: &Path) -> Result<ImageSize, String> {
    let contents =
        std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    of_elf_bytes(name, &contents, None).map_err(|error| format!("{}: {error}", path.display()))
}

/// The size of user program `name` as the boot file system carries it (without the debug
/// information the built file keeps for gdb), with an optional target.
fn of_program(name: &str, max_loaded_bytes: Option<u64>) -> Result<ImageSize, String> {
    let contents = artifacts::read_boot_copy(name)?;
    of_elf_bytes(name, &contents, max_loaded_bytes).map_err(|error| format!("{name}: {error}"))
}

fn of_elf_bytes(
    name: &str,
    contents: &[u8],
    max_loaded_bytes: Option<u64>,
) -> Result<ImageSize, String> {
    let loaded = loaded_bytes(contents)?;
    Ok(ImageSize {
        name: name.to_string(),
        file_bytes: contents.len() as u64,
        loaded: Some(loaded),
        max_loaded_bytes,
    })
}

/// The size of a file that is not ELF (the Linux guest's compressed kernel, its initramfs).
fn of_file(name: &str, path: &Path) -> Result<ImageSize, String> {
    let metadata = std::fs::metadata(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    Ok(ImageSize {
        name: name.to_string(),
        file_bytes: metadata.len(),
        loaded: None,
        max_loaded_bytes: None,
    })
}

/// Whether the UDP echo server, as built, meets its size target; `Err` says by how much
/// it does not. `cargo xtask test` checks it, so that a change which grows every network
/// program past the target is seen where it is made, not at the next benchmark run.
pub fn udp_echo_within_target() -> Result<(), String> {
    let size = of_program("udp-echo", Some(UDP_ECHO_MAX_LOADED_BYTES))?;
    let loaded = size.loaded.map_or(0, |loaded| loaded.total());
    match size.target_met() {
        Some(true) => Ok(()),
        _ => Err(format!(
            "udp-echo loads {loaded} bytes, over the {UDP_ECHO_MAX_LOADED_BYTES} of its target \
             by {} (docs/07-performance.md, 7.5)",
            loaded.saturating_sub(UDP_ECHO_MAX_LOADED_BYTES)
        )),
    }
}

/// Every size the report shows: exo's kernel, servers and programs for scale (built by
/// now), then the Linux guest's (prepared by now).
pub fn measure(kernel: &Path, linux_guest: &LinuxGuest) -> Result<Vec<ImageSize>, String> {
    let mut sizes = vec![of_elf("exo kernel", kernel)?];
    for program in SERVERS.into_iter().chain(FOR_SCALE) {
        let target = (program == "udp-echo").then_some(UDP_ECHO_MAX_LOADED_BYTES);
        sizes.push(of_program(program, target)?);
    }
    sizes.push(of_file(
        "Linux guest: kernel (bzImage, compressed)",
        linux_guest.kernel_image(),
    )?);
    sizes.push(of_file(
        "Linux guest: initramfs (busybox, modules, linux-peer)",
        linux_guest.initramfs(),
    )?);
    sizes.push(of_elf(
        "linux-peer (static; every server and benchmark in one)",
        &artifacts::LINUX_PEER.binary(),
    )?);
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use elf::abi::{PT_GNU_STACK, PT_NOTE};

    /// A little-endian ELF64 header and `segments` program headers, `(type, flags, file
    /// size, memory size)` each: only what a loader reads.
    fn elf_with(segments: &[(u32, u32, u64, u64)]) -> Vec<u8> {
        const HEADER: usize = 64;
        const PROGRAM_HEADER: usize = 56;
        let mut file = vec![0u8; HEADER];
        file[..4].copy_from_slice(b"\x7fELF");
        file[4] = 2; // 64-bit
        file[5] = 1; // little-endian
        file[6] = 1; // version
        file[16..18].copy_from_slice(&2u16.to_le_bytes()); // an executable
        file[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
        file[20..24].copy_from_slice(&1u32.to_le_bytes());
        file[32..40].copy_from_slice(&(HEADER as u64).to_le_bytes()); // program headers
        file[52..54].copy_from_slice(&(HEADER as u16).to_le_bytes());
        file[54..56].copy_from_slice(&(PROGRAM_HEADER as u16).to_le_bytes());
        file[56..58].copy_from_slice(&(segments.len() as u16).to_le_bytes());
        file[58..60].copy_from_slice(&64u16.to_le_bytes()); // section header size
        for &(kind, flags, file_size, memory_size) in segments {
            let mut header = [0u8; PROGRAM_HEADER];
            header[..4].copy_from_slice(&kind.to_le_bytes());
            header[4..8].copy_from_slice(&flags.to_le_bytes());
            header[32..40].copy_from_slice(&file_size.to_le_bytes());
            header[40..48].copy_from_slice(&memory_size.to_le_bytes());
            header[48..56].copy_from_slice(&4096u64.to_le_bytes());
            file.extend_from_slice(&header);
        }
        file
    }

    #[test]
    fn executable_segments_are_text_and_the_rest_is_data() {
        const READ: u32 = 4;
        const WRITE: u32 = 2;
        let elf = elf_with(&[
            (PT_LOAD, READ, 0x1000, 0x1000),              // read-only data
            (PT_LOAD, READ | PF_X, 0x5000, 0x5000),       // text
            (PT_LOAD, READ | WRITE, 0x0800, 0x9800),      // data and .bss
            (PT_NOTE, READ, 0x0040, 0x0040),              // not loaded
            (PT_GNU_STACK, READ | WRITE, 0, 0x0001_0000), // not loaded
        ]);
        assert_eq!(
            loaded_bytes(&elf),
            Ok(LoadedBytes {
                text: 0x5000,
                data: 0x1000 + 0x9800,
            })
        );
    }

    #[test]
    fn what_is_not_elf_is_an_error() {
        assert!(loaded_bytes(b"070701 a cpio archive").is_err());
        assert!(loaded_bytes(&[]).is_err());
    }

    #[test]
    fn this_test_program_loads_some_text() {
        // The test binary itself is a real ELF file built by the host's toolchain.
        let contents = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let size = of_elf_bytes("self", &contents, Some(1)).unwrap();
        let loaded = size.loaded.unwrap();
        assert!(loaded.text > 0 && loaded.data > 0, "{loaded:?}");
        assert!(loaded.text <= size.file_bytes);
        assert_eq!(size.target_met(), Some(false));
    }
}
