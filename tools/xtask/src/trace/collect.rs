//! The file QEMU's debug console writes the stream into: made ready before a boot (its
//! directory there, a stale stream from an earlier run gone, so it cannot be read as this
//! run's) and read back after. Used by `cargo xtask trace` and by the scenarios that check
//! their trace.

use std::fs;
use std::path::Path;

use super::stream::{self, Stream};

/// Makes `file` ready for QEMU to write a new stream into.
pub fn prepare_output(file: &Path) -> Result<(), String> {
    if let Some(directory) = file.parent() {
        fs::create_dir_all(directory)
            .map_err(|error| format!("cannot create {}: {error}", directory.display()))?;
    }
    match fs::remove_file(file) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(format!("cannot remove {}: {error}", file.display())),
    }
}

/// The stream in `file`. QEMU creates the file at start-up, so a missing one means QEMU
/// never ran.
pub fn read(file: &Path) -> Result<Stream, String> {
    let bytes =
        fs::read(file).map_err(|error| format!("cannot read {}: {error}", file.display()))?;
    stream::parse(&bytes).map_err(|error| format!("{}: {error}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::stream::tests::{bytes_of, record};
    use exo_abi::trace::Kind;

    #[test]
    fn a_stale_stream_is_removed_and_a_new_one_read_back() {
        let directory = std::env::temp_dir().join(format!("exo-trace-{}", std::process::id()));
        let file = directory.join("nested/stream.bin");
        prepare_output(&file).unwrap();
        assert!(file.parent().unwrap().is_dir() && !file.exists());
        let records = [record(1, Kind::Flush, 0, [0, 0])];
        fs::write(&file, bytes_of(&records)).unwrap();
        assert_eq!(read(&file).unwrap().records, records);
        prepare_output(&file).unwrap();
        let error = read(&file).unwrap_err();
        assert!(error.starts_with("cannot read "), "{error}");
        fs::write(&file, b"not a trace, but long enough to hold a header").unwrap();
        let error = read(&file).unwrap_err();
        assert!(
            error.contains("stream.bin: the trace does not begin"),
            "{error}"
        );
        fs::remove_dir_all(&directory).unwrap();
    }
}
