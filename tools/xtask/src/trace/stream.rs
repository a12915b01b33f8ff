//! The stream the kernel writes through QEMU's debug console, read back: its header, then
//! its whole records in the order they were written (`exo_abi::trace` has the format).
//!
//! A run can stop anywhere (a guest killed at its time limit, a kernel that panicked while
//! writing): what is whole is kept and the rest is described, never guessed at. Only a
//! stream that does not start with the header is refused, since nothing after a wrong
//! header can be trusted. This module knows nothing of what the events mean.

use exo_abi::trace::{Header, Kind, Record};

/// The bytes of the header and of each record.
const HEADER_SIZE: usize = size_of::<Header>();
const RECORD_SIZE: usize = size_of::<Record>();

/// A stream read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stream {
    pub header: Header,
    /// Every whole record, in the order they were written.
    pub records: Vec<Record>,
    /// How the stream was cut short, if it was.
    pub cut: Option<Cut>,
}

/// How a stream ended early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// The last record is missing these many bytes (it was dropped).
    PartialRecord { bytes_present: usize },
    /// The last whole record is not a `Flush`: the kernel never wrote its last buffer out
    /// (the guest was killed, or stopped before it powered off).
    NoFinalFlush,
}

impl std::fmt::Display for Cut {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cut::PartialRecord { bytes_present } => write!(
                formatter,
                "the stream was cut inside its last record ({bytes_present} of {RECORD_SIZE} \
                 bytes); that record was dropped"
            ),
            Cut::NoFinalFlush => formatter.write_str(
                "the stream was cut: it does not end with a flush, so the kernel's last \
                 buffer never came out (was the guest killed before it powered off?)",
            ),
        }
    }
}

/// Reads `bytes` as a trace stream. An error when they do not begin with a header of this
/// version.
pub fn parse(bytes: &[u8]) -> Result<Stream, String> {
    let Some(header_bytes) = bytes.first_chunk::<HEADER_SIZE>() else {
        return Err(if bytes.is_empty() {
            "the trace is empty: the kernel wrote nothing (was `trace=` on its command line, \
             and did the guest power off?)"
                .to_string()
        } else {
            format!(
                "the trace is {} bytes, shorter than its {HEADER_SIZE}-byte header",
                bytes.len()
            )
        });
    };
    let header = Header::from_bytes(header_bytes).ok_or_else(|| {
        format!(
            "the trace does not begin with an exo trace header (magic \"exotrace\", version \
             {}); its first bytes are {}",
            exo_abi::trace::VERSION,
            hex(&header_bytes[..16])
        )
    })?;
    let body = &bytes[HEADER_SIZE..];
    let chunks = body.chunks_exact(RECORD_SIZE);
    let remainder = chunks.remainder().len();
    let records: Vec<Record> = chunks
        .map(|chunk| Record::from_bytes(chunk.try_into().unwrap_or(&[0; RECORD_SIZE])))
        .collect();
    let ends_with_flush = records
        .last()
        .is_some_and(|record| Kind::from_number(u64::from(record.kind)) == Some(Kind::Flush));
    let cut = if remainder != 0 {
        Some(Cut::PartialRecord {
            bytes_present: remainder,
        })
    } else if !ends_with_flush {
        Some(Cut::NoFinalFlush)
    } else {
        None
    };
    Ok(Stream {
        header,
        records,
        cut,
    })
}

/// `bytes` as hexadecimal pairs, for a message.
fn hex(bytes: &[u8]) -> String {
    let pairs: Vec<String> = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    pairs.join(" ")
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use exo_abi::trace::{Class, MAGIC, VERSION};

    /// A header as the kernel writes it, at 1 GHz: one tick is a nanosecond.
    pub fn header() -> Header {
        Header {
            magic: MAGIC,
            version: VERSION,
            tsc_hz: 1_000_000_000,
            classes: Class::all().bits(),
        }
    }

    pub fn record(tsc: u64, kind: Kind, environment: u32, values: [u64; 2]) -> Record {
        Record {
            tsc,
            kind: kind as u16,
            cpu: 0,
            environment,
            values,
        }
    }

    /// The bytes of a stream of `records` after the header.
    pub fn bytes_of(records: &[Record]) -> Vec<u8> {
        let mut bytes = header().to_bytes().to_vec();
        for record in records {
            bytes.extend_from_slice(&record.to_bytes());
        }
        bytes
    }

    #[test]
    fn a_whole_stream_reads_back_as_written() {
        let records = [
            record(10, Kind::SyscallEnter, 1, [2, 0]),
            record(20, Kind::SyscallExit, 1, [2, 0]),
            record(30, Kind::Flush, 0, [2, 0]),
        ];
        let stream = parse(&bytes_of(&records)).unwrap();
        assert_eq!(stream.header, header());
        assert_eq!(stream.records, records);
        assert_eq!(stream.cut, None);
    }

    #[test]
    fn a_stream_cut_short_keeps_what_is_whole_and_says_so() {
        let records = [
            record(10, Kind::SyscallEnter, 1, [2, 0]),
            record(30, Kind::Flush, 0, [1, 0]),
        ];
        let mut bytes = bytes_of(&records);
        bytes.truncate(bytes.len() - 5);
        let stream = parse(&bytes).unwrap();
        assert_eq!(stream.records, records[..1]);
        assert_eq!(stream.cut, Some(Cut::PartialRecord { bytes_present: 27 }));
        assert!(stream.cut.unwrap().to_string().contains("27 of 32 bytes"));

        let stream = parse(&bytes_of(&records[..1])).unwrap();
        assert_eq!(stream.records, records[..1]);
        assert_eq!(stream.cut, Some(Cut::NoFinalFlush));

        // A header alone: nothing was flushed after it.
        let stream = parse(&bytes_of(&[])).unwrap();
        assert!(stream.records.is_empty());
        assert_eq!(stream.cut, Some(Cut::NoFinalFlush));
    }

    #[test]
    fn a_bad_or_missing_header_is_a_clear_error() {
        let error = parse(&[]).unwrap_err();
        assert!(error.contains("the trace is empty"), "{error}");
        let error = parse(b"exotrace").unwrap_err();
        assert!(
            error.contains("8 bytes, shorter than its 32-byte header"),
            "{error}"
        );
        let mut garbage = bytes_of(&[record(1, Kind::Flush, 0, [0, 0])]);
        garbage[..8].copy_from_slice(b"exolog\n\n");
        let error = parse(&garbage).unwrap_err();
        assert!(
            error.contains("does not begin with an exo trace header"),
            "{error}"
        );
        assert!(error.contains("65 78 6f 6c 6f 67 0a 0a"), "{error}");
        let mut newer = header();
        newer.version = VERSION + 1;
        assert!(parse(&newer.to_bytes()).is_err());
    }

    #[test]
    fn garbage_records_are_kept_for_the_reader_to_judge() {
        // Records are read by size, not trusted by content: an unknown kind stays a record
        // (the timeline counts it as unknown) and does not shift the ones after it.
        let mut unknown = record(5, Kind::Flush, 0, [0, 0]);
        unknown.kind = 999;
        let records = [unknown, record(6, Kind::Flush, 0, [1, 0])];
        let stream = parse(&bytes_of(&records)).unwrap();
        assert_eq!(stream.records, records);
        assert_eq!(stream.cut, None);
    }
}
