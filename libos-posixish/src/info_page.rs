//! The process-info page: what a parent tells the process it starts (its
//! arguments and variables, the boot file system's runs, the file server's
//! endpoint, a capability for the parent, the network, descriptors 0–2).
//!
//! Bottom layer: the page's format — [`InfoPage`] writes it, [`decode`]
//! reads it — and this process's own page at `layout::PROCESS_INFO`. It
//! never decides what a child inherits (`inherit` does) and calls nothing of
//! the library OS above `raw`.
//!
//! The layout (little-endian u64s): magic, parent id, boot file system size,
//! run count, the runs (address, capability in the child's table), the file
//! server's endpoint, a capability for the parent (GIVE), an IPv4 address
//! capability, the card's MAC and the route, descriptors 0–2 (three words
//! each), argument count, bytes of strings, variable count, then the strings
//! — the arguments, then the environment as `KEY=VALUE` — each followed by a NUL.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use exo_abi::Handle;
use exo_abi::layout::PAGE_SIZE;
use exo_abi::start_info::{MAX_BOOTFS_RUNS, StartPage};
use exo_abi::syscall::NO_CAPABILITY;

use crate::Errno;
use crate::layout::PROCESS_INFO;
use crate::raw;

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
    /// A capability to give the parent capabilities (`GIVE` only).
    pub parent_environment: Option<Handle>,
    /// An IPv4 address to bind to, the card's MAC and the route, if the
    /// parent had them.
    pub net: Option<NetInfo>,
    /// Descriptors 0–2, encoded.
    pub stdio: [[u64; 3]; 3],
}

fn word(page: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(page[offset..offset + 8].try_into().expect("8 bytes"))
}

/// The info page `page` holds, if it has the magic.
pub fn decode(page: &[u8]) -> Option<ProcessInfo> {
    if page.len() < PAGE_BYTES || word(page, 0) != MAGIC {
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

/// Run `index` of the boot file system in `page`: (address, capability).
fn run(page: &[u8], index: usize) -> (u64, u64) {
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
    /// and everything else, still to be written). `E2BIG` if the strings do
    /// not fit, or one holds a NUL.
    pub fn new(
        parent: u64,
        bootfs_size: u64,
        program: &str,
        arguments: &[&str],
        variables: &[(String, String)],
    ) -> Result<Self, Errno> {
        let mut page = Self {
            bytes: [0; PAGE_BYTES],
        };
        page.put(0, MAGIC);
        page.put(PARENT, parent);
        page.put(BOOTFS_SIZE, bootfs_size);
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
                return Err(Errno::E2BIG);
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

/// This process's info page, if a parent mapped one (with its magic).
fn own_bytes() -> Option<&'static [u8]> {
    // The page-table view says whether the page is there, without a fault.
    exo_abi::user::translate(PROCESS_INFO)?;
    let page = raw::mapped_bytes(PROCESS_INFO, PAGE_BYTES);
    (word(page, 0) == MAGIC).then_some(page)
}

/// This process's info page, if a parent gave it one (the first process,
/// which the kernel started, has none).
pub fn own() -> Option<ProcessInfo> {
    decode(own_bytes()?)
}

/// The arguments this process was started with (its name first).
pub fn own_arguments() -> Vec<String> {
    match own() {
        Some(info) => info.arguments,
        None => alloc::vec!["init".to_string()],
    }
}

/// The boot file system's size and how many runs this process's info page
/// lists, read without allocating (for the fault handler); `None` without
/// an info page.
pub(crate) fn own_bootfs() -> Option<(u64, usize)> {
    let page = own_bytes()?;
    let runs = (word(page, RUN_COUNT) as usize).min(MAX_BOOTFS_RUNS);
    Some((word(page, BOOTFS_SIZE), runs))
}

/// Run `index` of the boot file system as this process's info page lists
/// it: (address, this process's read-only capability), read without allocating.
pub(crate) fn own_bootfs_run(index: usize) -> Option<(u64, Handle)> {
    let (address, capability) = run(own_bytes()?, index);
    Some((address, Handle::from_raw(capability)))
}
