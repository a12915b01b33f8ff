//! The process-info page: what a parent tells the process it starts (its
//! arguments and variables, the boot file system's runs, the file server's
//! endpoint, a capability for the parent, the network, descriptors 0–2).
//!
//! Pure logic, tested on the host: the page's format — [`InfoPage`] writes
//! it, [`decode`] reads it. libos-posixish's `info_page` reads this
//! process's own page with it, and its `inherit` decides what goes in.
//!
//! The layout (little-endian u64s): magic, parent id, boot file system size,
//! run count, the runs (address, capability in the child's table), the file
//! server's endpoint, a capability for the parent (GIVE), an IPv4 address
//! capability, the card's MAC and the route, descriptors 0–2 (three words
//! each), argument count, bytes of strings, variable count, then the strings
//! — the arguments, then the environment as `KEY=VALUE` — each followed by a NUL.

use alloc::string::String;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use exo_abi::Handle;
use exo_abi::layout::PAGE_SIZE;
use exo_abi::start_info::{MAX_BOOTFS_RUNS, StartPage};
use exo_abi::syscall::NO_CAPABILITY;

/// The arguments and variables do not fit in an info page, or one holds a
/// NUL, or a variable's name holds `=` (it would come back split there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StringsTooLong;

/// Bytes in an info page.
pub const PAGE_BYTES: usize = PAGE_SIZE as usize;

const MAGIC: u64 = u64::from_le_bytes(*b"exoproc1");
const PARENT: usize = 8;
const BOOTFS_SIZE: usize = 16;
const RUN_COUNT: usize = 24;
const RUNS: usize = 32;
const RUN_SIZE: usize = 16;
/// The file server's endpoint in the child's table, or `NO_CAPABILITY`.
const FS_ENDPOINT: usize = RUNS + MAX_BOOTFS_RUNS * RUN_SIZE;
/// A capability for the parent with `GIVE`, so a server can hand it its endpoint.
const PARENT_ENVIRONMENT: usize = FS_ENDPOINT + 8;
/// The network address's capability (or `NO_CAPABILITY`), the card's
/// MAC (`exo_abi::net::mac_to_u64`), and the route: the prefix length in
/// bits 32–39 and the gateway (0: none) in bits 0–31.
const NET_ADDRESS: usize = PARENT_ENVIRONMENT + 8;
const NET_MAC: usize = NET_ADDRESS + 8;
const NET_ROUTE: usize = NET_MAC + 8;
/// Descriptors 0–2: three words each (`fs::Descriptor::encode`).
const STDIO: usize = NET_ROUTE + 8;
const ARGUMENT_COUNT: usize = STDIO + 3 * 24;
/// Bytes of the strings: the arguments, then the environment (`KEY=VALUE`).
const ARGUMENT_BYTES: usize = ARGUMENT_COUNT + 8;
const ENVIRONMENT_COUNT: usize = ARGUMENT_BYTES + 8;
const ARGUMENTS: usize = ENVIRONMENT_COUNT + 8;

/// A process's network: an IPv4 address it may bind to, the card's MAC,
/// and how the address's network is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetInfo {
    /// The address's capability (`Rights::BIND`).
    pub address: Handle,
    /// The card's MAC (`exo_abi::net::mac_to_u64`).
    pub mac: u64,
    pub prefix_length: u8,
    pub gateway: Option<Ipv4Addr>,
}

/// What a process learns from its parent.
#[derive(Debug)]
pub struct ProcessInfo {
    pub parent: u64,
    pub bootfs_size: u64,
    pub bootfs_runs: Vec<StartPage>,
    pub arguments: Vec<String>,
    /// The environment variables the parent passed.
    pub environment: Vec<(String, String)>,
    /// The file server's endpoint, if the parent had one.
    pub fs_endpoint: Option<Handle>,
    /// A capability for the parent: to give it capabilities (`GIVE`) and to
    /// read its family's accounts (`INSPECT`).
    pub parent_environment: Option<Handle>,
    /// An IPv4 address to bind to, the card's MAC and the route, if the
    /// parent had them.
    pub net: Option<NetInfo>,
    /// Descriptors 0–2, encoded.
    pub stdio: [[u64; 3]; 3],
}

/// Whether `page` is an info page (it starts with the magic).
pub fn has_magic(page: &[u8]) -> bool {
    page.len() >= PAGE_BYTES && word(page, 0) == MAGIC
}

fn word(page: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(page[offset..offset + 8].try_into().expect("8 bytes"))
}

/// The info page `page` holds, if it has the magic.
pub fn decode(page: &[u8]) -> Option<ProcessInfo> {
    if !has_magic(page) {
        return None;
    }
    let runs = (word(page, RUN_COUNT) as usize).min(MAX_BOOTFS_RUNS);
    let bootfs_runs = (0..runs)
        .map(|index| {
            let (address, frame) = run(page, index);
            StartPage {
                address,
                frame,
                flags: 0,
            }
        })
        .collect();
    let count = word(page, ARGUMENT_COUNT) as usize;
    let length = (word(page, ARGUMENT_BYTES) as usize).min(page.len() - ARGUMENTS);
    let bytes = &page[ARGUMENTS..ARGUMENTS + length];
    let mut strings = bytes
        .split(|&byte| byte == 0)
        .map(|string| String::from_utf8_lossy(string).into_owned());
    let arguments = strings.by_ref().take(count).collect();
    let environment = strings
        .take(word(page, ENVIRONMENT_COUNT) as usize)
        .filter_map(|entry| {
            entry
                .split_once('=')
                .map(|(key, value)| (key.into(), value.into()))
        })
        .collect();
    let handle = |at| {
        Some(word(page, at))
            .filter(|&raw| raw != NO_CAPABILITY)
            .map(Handle::from_raw)
    };
    let stdio = core::array::from_fn(|index| {
        core::array::from_fn(|part| word(page, STDIO + index * 24 + part * 8))
    });
    Some(ProcessInfo {
        parent: word(page, PARENT),
        bootfs_size: word(page, BOOTFS_SIZE),
        bootfs_runs,
        arguments,
        environment,
        fs_endpoint: handle(FS_ENDPOINT),
        parent_environment: handle(PARENT_ENVIRONMENT),
        net: handle(NET_ADDRESS).map(|address| {
            let route = word(page, NET_ROUTE);
            NetInfo {
                address,
                mac: word(page, NET_MAC),
                prefix_length: (route >> 32) as u8,
                gateway: Some(Ipv4Addr::from(route as u32))
                    .filter(|gateway| !gateway.is_unspecified()),
            }
        }),
        stdio,
    })
}

/// The boot file system's size and how many runs `page` lists, read
/// without allocating (for the fault handler).
pub fn bootfs_summary(page: &[u8]) -> (u64, usize) {
    let runs = (word(page, RUN_COUNT) as usize).min(MAX_BOOTFS_RUNS);
    (word(page, BOOTFS_SIZE), runs)
}

/// Run `index` of the boot file system in `page`: (address, capability),
/// read without allocating.
pub fn run(page: &[u8], index: usize) -> (u64, u64) {
    let at = RUNS + index * RUN_SIZE;
    (word(page, at), word(page, at + 8))
}

/// An info page being written for a child (or for `exec`).
#[derive(Debug)]
pub struct InfoPage {
    bytes: [u8; PAGE_BYTES],
}

impl InfoPage {
    /// A page for `program` run with `arguments` and `variables`, started by
    /// `parent`, with a boot file system of `bootfs_size` bytes (its runs,
    /// and everything else, still to be written). Refused if the strings do
    /// not fit, or one holds a NUL (POSIX's `E2BIG`).
    pub fn new(
        parent: u64,
        bootfs_size: u64,
        program: &str,
        arguments: &[&str],
        variables: &[(String, String)],
    ) -> Result<Self, StringsTooLong> {
        let mut page = Self {
            bytes: [0; PAGE_BYTES],
        };
        page.put(0, MAGIC);
        page.put(PARENT, parent);
        page.put(BOOTFS_SIZE, bootfs_size);
        // `KEY=VALUE` is read back split at the first `=`: a name holding one would
        // reach the child as another name (found by the host fuzzer, `info_page`).
        if variables.iter().any(|(key, _)| key.contains('=')) {
            return Err(StringsTooLong);
        }
        let variables: Vec<String> = variables
            .iter()
            .map(|(key, value)| alloc::format!("{key}={value}"))
            .collect();
        let mut used = 0;
        let strings = core::iter::once(program).chain(arguments.iter().copied());
        for string in strings.chain(variables.iter().map(String::as_str)) {
            let at = ARGUMENTS + used;
            let end = at + string.len() + 1;
            if end > PAGE_BYTES || string.contains('\0') {
                return Err(StringsTooLong);
            }
            page.bytes[at..end - 1].copy_from_slice(string.as_bytes());
            used += string.len() + 1;
        }
        page.put(ENVIRONMENT_COUNT, variables.len() as u64);
        page.put(ARGUMENT_COUNT, arguments.len() as u64 + 1);
        page.put(ARGUMENT_BYTES, used as u64);
        Ok(page)
    }

    /// The page's bytes.
    pub fn bytes(&self) -> &[u8; PAGE_BYTES] {
        &self.bytes
    }

    fn put(&mut self, at: usize, value: u64) {
        self.bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }

    /// The parent's process id.
    pub fn set_parent(&mut self, parent: u64) {
        self.put(PARENT, parent);
    }

    /// The boot file system's runs, (address, capability) each, and their count.
    pub fn set_bootfs_runs(&mut self, runs: &[(u64, u64)]) {
        for (index, &(address, capability)) in runs.iter().enumerate() {
            let at = RUNS + index * RUN_SIZE;
            self.put(at, address);
            self.put(at + 8, capability);
        }
        self.put(RUN_COUNT, runs.len() as u64);
    }

    /// The file server's endpoint (`None`: there is none).
    pub fn set_fs_endpoint(&mut self, endpoint: Option<Handle>) {
        self.put(FS_ENDPOINT, endpoint.map_or(NO_CAPABILITY, Handle::to_raw));
    }

    /// The capability for the parent (`None`: there is none).
    pub fn set_parent_environment(&mut self, parent: Option<Handle>) {
        self.put(
            PARENT_ENVIRONMENT,
            parent.map_or(NO_CAPABILITY, Handle::to_raw),
        );
    }

    /// The network address's capability, the MAC and the route (`None`: no network).
    pub fn set_net(&mut self, net: Option<NetInfo>) {
        let (address, mac, route) = net.map_or((NO_CAPABILITY, 0, 0), |net| {
            let gateway = net.gateway.map_or(0, u32::from);
            let route = u64::from(net.prefix_length) << 32 | u64::from(gateway);
            (net.address.to_raw(), net.mac, route)
        });
        self.put(NET_ADDRESS, address);
        self.put(NET_MAC, mac);
        self.put(NET_ROUTE, route);
    }

    /// Descriptors 0–2, encoded.
    pub fn set_stdio(&mut self, stdio: &[[u64; 3]; 3]) {
        for (index, words) in stdio.iter().enumerate() {
            for (part, &value) in words.iter().enumerate() {
                self.put(STDIO + index * 24 + part * 8, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;
    use alloc::vec;

    use super::*;

    fn variables() -> Vec<(String, String)> {
        vec![
            ("PWD".to_string(), "/tmp".to_string()),
            ("A".to_string(), "b=c".to_string()),
        ]
    }

    #[test]
    fn what_is_written_is_read_back() {
        let mut page = InfoPage::new(7, 12_345, "cat", &["-n", "file"], &variables()).unwrap();
        page.set_bootfs_runs(&[(0x7e00_0000_0000, 11), (0x7e00_0040_0000, 12)]);
        page.set_fs_endpoint(Some(Handle::from_raw(21)));
        page.set_parent_environment(None);
        let net = NetInfo {
            address: Handle::from_raw(33),
            mac: 0x5254_0012_3456,
            prefix_length: 24,
            gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
        };
        page.set_net(Some(net));
        page.set_stdio(&[[1, 2, 3], [4, 5, 6], [7, 8, 9]]);

        let info = decode(page.bytes()).expect("the magic is there");
        assert_eq!(info.parent, 7);
        assert_eq!(info.bootfs_size, 12_345);
        assert_eq!(info.arguments, ["cat", "-n", "file"]);
        assert_eq!(info.environment, variables());
        assert_eq!(info.bootfs_runs.len(), 2);
        assert_eq!(
            (info.bootfs_runs[1].address, info.bootfs_runs[1].frame),
            (0x7e00_0040_0000, 12)
        );
        assert_eq!(info.fs_endpoint, Some(Handle::from_raw(21)));
        assert_eq!(info.parent_environment, None);
        assert_eq!(info.net, Some(net));
        assert_eq!(info.stdio, [[1, 2, 3], [4, 5, 6], [7, 8, 9]]);
        assert_eq!(bootfs_summary(page.bytes()), (12_345, 2));
        assert_eq!(run(page.bytes(), 0), (0x7e00_0000_0000, 11));
    }

    #[test]
    fn no_gateway_and_no_network_read_back_as_none() {
        let mut page = InfoPage::new(1, 0, "p", &[], &[]).unwrap();
        let net = NetInfo {
            address: Handle::from_raw(5),
            mac: 1,
            prefix_length: 8,
            gateway: None,
        };
        page.set_net(Some(net));
        assert_eq!(decode(page.bytes()).unwrap().net, Some(net));
        page.set_net(None);
        assert_eq!(decode(page.bytes()).unwrap().net, None);
    }

    #[test]
    fn the_parent_can_be_rewritten_for_exec() {
        let mut page = InfoPage::new(1, 0, "p", &[], &[]).unwrap();
        page.set_parent(99);
        assert_eq!(decode(page.bytes()).unwrap().parent, 99);
    }

    #[test]
    fn strings_that_do_not_fit_or_hold_a_nul_are_refused() {
        let long = "x".repeat(PAGE_BYTES);
        assert_eq!(
            InfoPage::new(1, 0, "p", &[&long], &[]).unwrap_err(),
            StringsTooLong
        );
        assert_eq!(
            InfoPage::new(1, 0, "p", &["a\0b"], &[]).unwrap_err(),
            StringsTooLong
        );
        let just_fits = "y".repeat(PAGE_BYTES - ARGUMENTS - 2 - 1);
        let info = decode(
            InfoPage::new(1, 0, "p", &[&just_fits], &[])
                .unwrap()
                .bytes(),
        )
        .unwrap();
        assert_eq!(info.arguments[1], just_fits);
    }

    #[test]
    fn a_variable_whose_name_holds_an_equals_sign_is_refused() {
        let split = [("A=B".to_string(), "c".to_string())];
        assert_eq!(
            InfoPage::new(1, 0, "p", &[], &split).unwrap_err(),
            StringsTooLong
        );
        let in_value = [("A".to_string(), "B=c".to_string())];
        let page = InfoPage::new(1, 0, "p", &[], &in_value).unwrap();
        assert_eq!(decode(page.bytes()).unwrap().environment, in_value);
    }

    #[test]
    fn a_page_without_the_magic_is_no_info_page() {
        assert!(decode(&[0; PAGE_BYTES]).is_none());
        assert!(decode(&[0; 8]).is_none());
        assert!(!has_magic(&[0; PAGE_BYTES]));
    }
}
