//! Reading a packet capture in the classic pcap format, as QEMU's `filter-dump` writes it:
//! a 24-byte file header, then per frame a 16-byte record header and the frame's bytes.
//!
//! Only the frames are returned; timestamps and the link type are not needed by anything
//! here. A file that ends inside a header or a frame is refused rather than read in part,
//! so a verdict never rests on a capture that lost frames.
//!
//! Written by hand, not with pcap-file: that crate's derive and error macros
//! (derive-into-owned, thiserror) bring syn 1 and syn 2 into the build of xtask, for the
//! sixty lines here that read two header fields.

use std::fs;
use std::path::Path;

const FILE_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;
/// Where a record header keeps the number of frame bytes the file holds (`incl_len`).
const CAPTURED_LENGTH_OFFSET: usize = 8;
/// Timestamps in microseconds, or (the second magic) in nanoseconds. Written in the
/// writer's byte order, which the whole file then uses.
const MICROSECOND_MAGIC: u32 = 0xa1b2_c3d4;
const NANOSECOND_MAGIC: u32 = 0xa1b2_3c4d;

/// The frames of the capture file at `path`, in the order they were recorded.
pub fn read_frames(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let bytes =
        fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    parse_frames(&bytes).map_err(|error| format!("{}: {error}", path.display()))
}

/// The frames of a capture held in memory.
fn parse_frames(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let Some(file_header) = bytes.get(..FILE_HEADER_LEN) else {
        return Err(format!(
            "truncated pcap file: {} bytes, shorter than the {FILE_HEADER_LEN}-byte file header",
            bytes.len()
        ));
    };
    let big_endian = byte_order(word(file_header, 0, false))?;
    let mut frames = Vec::new();
    let mut offset = FILE_HEADER_LEN;
    while offset < bytes.len() {
        let number = frames.len() + 1;
        let Some(record_header) = bytes.get(offset..offset + RECORD_HEADER_LEN) else {
            return Err(format!(
                "truncated pcap file: the record header of frame {number} at byte {offset} \
                 has {} of its {RECORD_HEADER_LEN} bytes",
                bytes.len() - offset
            ));
        };
        let length = word(record_header, CAPTURED_LENGTH_OFFSET, big_endian) as usize;
        let start = offset + RECORD_HEADER_LEN;
        let Some(frame) = bytes.get(start..start.saturating_add(length)) else {
            return Err(format!(
                "truncated pcap file: frame {number} at byte {start} should have {length} \
                 bytes, the file holds {}",
                bytes.len() - start
            ));
        };
        frames.push(frame.to_vec());
        offset = start + length;
    }
    Ok(frames)
}

/// Whether the file is big-endian, from its magic number read as little-endian.
fn byte_order(magic_read_little_endian: u32) -> Result<bool, String> {
    match magic_read_little_endian {
        MICROSECOND_MAGIC | NANOSECOND_MAGIC => Ok(false),
        swapped if [MICROSECOND_MAGIC, NANOSECOND_MAGIC].contains(&swapped.swap_bytes()) => {
            Ok(true)
        }
        other => Err(format!(
            "not a pcap file: magic number {other:#010x} (read little-endian)"
        )),
    }
}

/// The 32-bit word at `offset` of `header`, which holds it.
fn word(header: &[u8], offset: usize, big_endian: bool) -> u32 {
    let bytes: [u8; 4] = header[offset..offset + 4]
        .try_into()
        .expect("a 4-byte slice");
    if big_endian {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A capture of `frames`, written in the given byte order with the given magic.
    fn capture(magic: u32, big_endian: bool, frames: &[&[u8]]) -> Vec<u8> {
        let encode = |value: u32| {
            if big_endian {
                value.to_be_bytes()
            } else {
                value.to_le_bytes()
            }
        };
        let mut bytes = Vec::new();
        bytes.extend(encode(magic));
        // Version 2.4, zone, accuracy, snapshot length, link type 1 (Ethernet).
        bytes.extend(if big_endian {
            [0, 2, 0, 4]
        } else {
            [2, 0, 4, 0]
        });
        for field in [0, 0, 65536, 1] {
            bytes.extend(encode(field));
        }
        for (index, frame) in frames.iter().enumerate() {
            let length = frame.len() as u32;
            for field in [index as u32, 0, length, length] {
                bytes.extend(encode(field));
            }
            bytes.extend_from_slice(frame);
        }
        bytes
    }

    const FRAMES: [&[u8]; 3] = [b"first frame", b"", b"echo:A0"];

    #[test]
    fn both_byte_orders_and_both_magics_are_read() {
        for magic in [MICROSECOND_MAGIC, NANOSECOND_MAGIC] {
            for big_endian in [false, true] {
                let frames = parse_frames(&capture(magic, big_endian, &FRAMES)).unwrap();
                assert_eq!(frames, FRAMES, "magic {magic:#x}, big-endian {big_endian}");
            }
        }
    }

    #[test]
    fn a_capture_without_frames_is_empty() {
        let frames = parse_frames(&capture(MICROSECOND_MAGIC, false, &[])).unwrap();
        assert!(frames.is_empty());
    }

    #[test]
    fn a_short_file_header_is_refused() {
        let bytes = capture(MICROSECOND_MAGIC, false, &[]);
        let error = parse_frames(&bytes[..20]).unwrap_err();
        assert!(
            error.contains("truncated") && error.contains("file header"),
            "{error}"
        );
        assert!(parse_frames(&[]).is_err());
    }

    #[test]
    fn a_capture_ending_inside_a_record_is_refused() {
        let bytes = capture(MICROSECOND_MAGIC, true, &FRAMES);
        let in_last_frame = bytes.len() - 3;
        let error = parse_frames(&bytes[..in_last_frame]).unwrap_err();
        assert!(
            error.contains("frame 3") && error.contains("7 bytes"),
            "{error}"
        );
        let in_second_header = FILE_HEADER_LEN + RECORD_HEADER_LEN + FRAMES[0].len() + 5;
        let error = parse_frames(&bytes[..in_second_header]).unwrap_err();
        assert!(
            error.contains("record header of frame 2") && error.contains("has 5 of"),
            "{error}"
        );
    }

    #[test]
    fn a_file_that_is_not_a_capture_is_refused() {
        let error = parse_frames(&[0x7f; 64]).unwrap_err();
        assert!(error.contains("not a pcap file"), "{error}");
    }
}
