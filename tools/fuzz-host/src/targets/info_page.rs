//! The process-info page codec (`libos-posixish/policy/src/info_page.rs`): a parent
//! writes the page, and a process reads whatever its page holds.

use arbitrary::{Arbitrary, Unstructured};
use std::net::Ipv4Addr;

use exo_abi::Handle;
use exo_abi::start_info::MAX_BOOTFS_RUNS;
use exo_abi::syscall::NO_CAPABILITY;
use posixish_policy::info_page::{self, InfoPage, NetInfo, PAGE_BYTES, StringsTooLong};

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
    parent_environment: Option<u64>,
    runs: Vec<(u64, u64)>,
    net: Option<(u64, u64, u8, u32)>,
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
        .chain(
            written
                .variables
                .iter()
                .map(|(key, value)| key.len() + value.len() + 1),
        );
    let total: usize = strings.map(|length| length + 1).sum();
    let has_nul = written.program.contains('\0')
        || written
            .arguments
            .iter()
            .any(|argument| argument.contains('\0'))
        || written
            .variables
            .iter()
            .any(|(key, value)| key.contains('\0') || value.contains('\0'));
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
    // `NO_CAPABILITY` is how the page says "none", so no handle may be it.
    let handle = |raw: Option<u64>| {
        raw.filter(|&raw| raw != NO_CAPABILITY)
            .map(Handle::from_raw)
    };
    let fs_endpoint = handle(written.fs_endpoint);
    let parent_environment = handle(written.parent_environment);
    // The callers pass the start-info page's runs, at most `MAX_BOOTFS_RUNS`.
    let runs = &written.runs[..written.runs.len().min(MAX_BOOTFS_RUNS)];
    let net = written
        .net
        .and_then(|(address, mac, prefix_length, gateway)| {
            Some(NetInfo {
                address: handle(Some(address))?,
                mac,
                prefix_length,
                gateway: Some(Ipv4Addr::from(gateway)).filter(|gateway| !gateway.is_unspecified()),
            })
        });
    page.set_fs_endpoint(fs_endpoint);
    page.set_parent_environment(parent_environment);
    page.set_bootfs_runs(runs);
    page.set_net(net);
    page.set_stdio(&written.stdio);
    let read = info_page::decode(page.bytes()).expect("a written page has the magic");
    assert_eq!(read.parent, written.parent);
    assert_eq!(read.bootfs_size, written.bootfs_size);
    assert_eq!(read.arguments[0], written.program);
    assert_eq!(read.arguments[1..], written.arguments);
    assert_eq!(read.environment, written.variables);
    assert_eq!(read.stdio, written.stdio);
    assert_eq!(read.fs_endpoint, fs_endpoint);
    assert_eq!(read.parent_environment, parent_environment);
    assert_eq!(read.net, net);
    let read_runs: Vec<(u64, u64)> = read
        .bootfs_runs
        .iter()
        .map(|run| (run.address, run.frame))
        .collect();
    assert_eq!(read_runs, runs);
}

fn decode_any(bytes: &[u8]) {
    let mut page = vec![0; PAGE_BYTES];
    page[..8].copy_from_slice(b"exoproc1");
    let length = bytes.len().min(PAGE_BYTES - 8);
    page[8..8 + length].copy_from_slice(&bytes[..length]);
    let read = info_page::decode(&page).expect("the page has the magic");
    let strings: usize = read
        .arguments
        .iter()
        .map(|argument| argument.len() + 1)
        .sum();
    assert!(strings <= PAGE_BYTES * 3, "more strings than a page holds");
    let (_, runs) = info_page::bootfs_summary(&page);
    assert_eq!(runs, read.bootfs_runs.len());
    for index in 0..runs {
        info_page::run(&page, index);
    }
    assert_eq!(info_page::decode(&page[..PAGE_BYTES - 1]).map(|_| ()), None);
}
