//! The fuzz targets: one file each, each a function from bytes that panics
//! when what it checks does not hold.

mod bootfs;
mod capabilities;
mod demux;
mod demux_frames;
mod heap;
mod http_request;
mod info_page;
mod memfs;
mod program_image;
mod ring;

/// One thing fuzzed.
#[derive(Debug)]
pub struct Target {
    /// Also the name of its corpus folder.
    pub name: &'static str,
    /// What it checks, one line.
    pub checks: &'static str,
    /// Panics when what it checks does not hold.
    pub check: fn(&[u8]),
}

/// Every target, in the order a run goes through them.
pub const TARGETS: &[Target] = &[
    bootfs::TARGET,
    program_image::TARGET,
    demux::TARGET,
    demux_frames::TARGET,
    ring::TARGET,
    capabilities::TARGET,
    heap::TARGET,
    info_page::TARGET,
    memfs::TARGET,
    http_request::TARGET,
];
