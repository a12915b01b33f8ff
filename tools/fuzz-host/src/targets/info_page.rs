//! The process-info page codec (`libos-posixish/policy/src/info_page.rs`): a parent
//! writes the page, and a process reads whatever its page holds.

use arbitrary::{Arbitrary, Unstructured};
use exo_abi::Handle;
use posixish_policy::info_page::{self, InfoPage, PAGE_BYTES, StringsTooLong};

use super::Target;

pub const TARGET: Target = Target {
    name: "info_page",
    checks: "decode(encode(x)) == x, and decoding any page neither panics nor reads past it",
    check,
};

#[derive(Arbitrary, Debug)]
struct Written {
    parent: u64,
    bootfs_size: u64,
    program: String,
    arguments: Vec<String>,
    variables: Vec<(String, String)>,
    fs_endpoint: Option<u64>,
    stdio: [[u64; 3]; 3],
}

/// Bytes of a page left for the strings: the fixed fields take 37 words.
const STRINGS_ROOM: usize = PAGE_BYTES - 37 * 8;

/// The first byte chooses: odd, a page written then read back; even, the rest of the
/// bytes read as a page after the magic.
fn check(bytes: &[u8]) {
    match bytes.split_first() {
        Some((choice, rest)) if choice % 2 == 1 => round_trip(rest),
        Some((_, rest)) => decode_any(rest),
        None => {}
    }
}

fn round_trip(bytes: &[u8]) {
    let Ok(written) = Written::arbitrary_take_rest(Unstructured::new(bytes)) else {
        return;
    };
    let arguments: Vec<&str> = written.arguments.iter().map(String::as_str).collect();
    let page = InfoPage::new(
        written.parent,
        written.bootfs_size,
        &written.program,
        &arguments,
        &written.variables,
    );
    let strings = [&written.program]
        .into_iter()
        .chain(&written.arguments)
        .map(String::len)
        .chain(written.variables.iter().map(|(k, v)| k.len() + v.len() + 1));
    let total: usize = strings.map(|length| length + 1).sum();
    let has_nul = written.program.contains('\0')
        || written
            .arguments
            .iter()
            .any(|argument| argument.contains('\0'))
        || written
            .variables
            .iter()
            .any(|(k, v)| k.contains('\0') || v.contains('\0'));
    let name_splits = written.variables.iter().any(|(key, _)| key.contains('='));
    let fits = total <= STRINGS_ROOM && !has_nul && !name_splits;
    let mut page = match page {
        Ok(page) => page,
        Err(StringsTooLong) => {
            assert!(!fits, "refused strings that fit");
            return;
        }
    };
    assert!(fits, "took strings that do not fit");
    let endpoint = written.fs_endpoint.map(Handle::from_raw);
    page.set_fs_endpoint(endpoint.filter(|handle| handle.to_raw() != u64::MAX));
    page.set_stdio(&written.stdio);
    let read = info_page::decode(page.bytes()).expect("a written page has the magic");
    assert_eq!(read.parent, written.parent);
    assert_eq!(read.bootfs_size, written.bootfs_size);
    assert_eq!(read.arguments[0], written.program);
    assert_eq!(read.arguments[1..], written.arguments);
    assert_eq!(read.environment, written.variables);
    assert_eq!(read.stdio, written.stdio);
}

fn decode_any(bytes: &[u8]) {
    let mut page = vec![0; PAGE_BYTES];
    page[..8].copy_from_slice(b"exoproc1");
    let length = bytes.len().min(PAGE_BYTES - 8);
    page[8..8 + length].copy_from_slice(&bytes[..length]);
    let read = info_page::decode(&page).expect("the page has the magic");
    let strings: usize = read.arguments.iter().map(|a| a.len() + 1).sum();
    assert!(strings <= PAGE_BYTES * 3, "more strings than a page holds");
    let (_, runs) = info_page::bootfs_summary(&page);
    assert_eq!(runs, read.bootfs_runs.len());
    for index in 0..runs {
        info_page::run(&page, index);
    }
    assert_eq!(info_page::decode(&page[..PAGE_BYTES - 1]).map(|_| ()), None);
}
