//! The library OS's program loader (`libos-posixish/src/process.rs`, its checks in
//! `libos-posixish/policy/src/program_image.rs`): `exec` and `spawn` read any file of the
//! boot file system as an ELF program.

use arbitrary::{Arbitrary, Unstructured};
use elf::ElfBytes;
use elf::abi::{PT_LOAD, PT_NOTE};
use elf::endian::LittleEndian;
use exo_abi::layout::{PAGE_SIZE, USER_MAP_END};
use posixish_policy::program_image::Segment;

use super::Target;

pub const TARGET: Target = Target {
    name: "program_image",
    checks: "the loader accepts only segments within the file and user memory, and maps only there",
    check,
};

/// Pages of an accepted segment walked per input (a segment may span 2^35 pages).
const PAGES_WALKED: usize = 3;

#[derive(Arbitrary, Debug)]
struct ProgramHeader {
    loadable: bool,
    flags: u32,
    offset: u64,
    address: u64,
    file_size: u64,
    memory_size: u64,
}

/// The first byte chooses: odd, a well-formed ELF header and program headers built from
/// the rest (so inputs get past the parser); even, the rest as the file itself.
fn check(bytes: &[u8]) {
    match bytes.split_first() {
        Some((choice, rest)) if choice % 2 == 1 => {
            let mut unstructured = Unstructured::new(rest);
            let headers: Vec<ProgramHeader> = (0..4)
                .map_while(|_| ProgramHeader::arbitrary(&mut unstructured).ok())
                .collect();
            let tail = unstructured.take_rest();
            load(&build(&headers, tail));
        }
        Some((_, rest)) => load(rest),
        None => {}
    }
}

/// What the loader does with `image`, with every accepted page checked.
fn load(image: &[u8]) {
    let Ok(elf) = ElfBytes::<LittleEndian>::minimal_parse(image) else {
        return;
    };
    let Some(segments) = elf.segments() else {
        return;
    };
    for header in segments.iter().filter(|segment| segment.p_type == PT_LOAD) {
        let segment = Segment {
            address: header.p_vaddr,
            file_offset: header.p_offset,
            file_size: header.p_filesz,
            memory_size: header.p_memsz,
        };
        let accepted = segment.checked(image.len());
        assert_eq!(
            accepted.is_some(),
            fits(segment, image.len()),
            "{segment:?}"
        );
        let Some(file) = accepted else { continue };
        let file = &image[file];
        for (address, contents) in segment.pages(file).take(PAGES_WALKED) {
            assert!(address.is_multiple_of(PAGE_SIZE) && address < USER_MAP_END);
            assert!(contents.end <= file.len() && contents.len() <= PAGE_SIZE as usize);
        }
    }
}

/// The rule, in arithmetic that cannot overflow.
fn fits(segment: Segment, image_length: usize) -> bool {
    let wide = u128::from;
    segment.address.is_multiple_of(PAGE_SIZE)
        && segment.file_size <= segment.memory_size
        && wide(segment.file_offset) + wide(segment.file_size) <= image_length as u128
        && wide(segment.address) + wide(segment.memory_size) <= wide(USER_MAP_END)
}

/// An x86_64 executable's header, `headers` after it, then `tail`.
fn build(headers: &[ProgramHeader], tail: &[u8]) -> Vec<u8> {
    const HEADER: usize = 64;
    const PROGRAM_HEADER: usize = 56;
    let mut image = Vec::with_capacity(HEADER + headers.len() * PROGRAM_HEADER + tail.len());
    image.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    image.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    image.extend_from_slice(&0x3eu16.to_le_bytes()); // EM_X86_64
    image.extend_from_slice(&1u32.to_le_bytes());
    image.extend_from_slice(&0x40_0000u64.to_le_bytes()); // entry
    image.extend_from_slice(&(HEADER as u64).to_le_bytes()); // program headers
    image.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    image.extend_from_slice(&0u32.to_le_bytes());
    image.extend_from_slice(&(HEADER as u16).to_le_bytes());
    image.extend_from_slice(&(PROGRAM_HEADER as u16).to_le_bytes());
    image.extend_from_slice(&(headers.len() as u16).to_le_bytes());
    image.extend_from_slice(&[0; 6]); // section header size, count, names
    let length = (image.capacity() as u64).max(1);
    for header in headers {
        // Mostly numbers near what a real program holds, else any: both edges matter.
        let (offset, address, file_size, memory_size) = match header.flags >> 30 {
            0 => (
                header.offset,
                header.address,
                header.file_size,
                header.memory_size,
            ),
            _ => (
                header.offset % length,
                (header.address % (USER_MAP_END + (1 << 32))) & !(PAGE_SIZE - 1),
                header.file_size % length,
                header.memory_size % (1 << 24),
            ),
        };
        let kind = if header.loadable { PT_LOAD } else { PT_NOTE };
        image.extend_from_slice(&kind.to_le_bytes());
        image.extend_from_slice(&header.flags.to_le_bytes());
        image.extend_from_slice(&offset.to_le_bytes());
        image.extend_from_slice(&address.to_le_bytes());
        image.extend_from_slice(&address.to_le_bytes()); // physical
        image.extend_from_slice(&file_size.to_le_bytes());
        image.extend_from_slice(&memory_size.to_le_bytes());
        image.extend_from_slice(&PAGE_SIZE.to_le_bytes());
    }
    image.extend_from_slice(tail);
    image
}
