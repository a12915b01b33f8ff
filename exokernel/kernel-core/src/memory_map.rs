//! The firmware's memory map, and which physical frames it leaves for allocation.
//!
//! The map comes from the boot protocol as E820-style entries. Usable RAM is
//! trimmed to whole frames and then has the kernel's own ranges (its image,
//! the boot information, boot modules) cut out of it.

use core::ops::Range;

/// Size of a physical frame in bytes.
pub const FRAME_SIZE: u64 = 4096;

/// What the firmware says a range of physical addresses is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// Free RAM the kernel may hand out.
    Usable,
    /// Firmware-owned; never touch.
    Reserved,
    /// ACPI tables; RAM that may be reclaimed once they are read.
    AcpiReclaimable,
    /// ACPI non-volatile storage; must be preserved.
    AcpiNvs,
    /// Known-bad RAM.
    Unusable,
    /// A type this kernel does not know; treated as reserved.
    Other(u32),
}

impl RegionKind {
    /// Decodes the E820 type number (ACPI specification, "System Address Map Interfaces").
    pub fn from_e820(kind: u32) -> Self {
        match kind {
            1 => Self::Usable,
            2 => Self::Reserved,
            3 => Self::AcpiReclaimable,
            4 => Self::AcpiNvs,
            5 => Self::Unusable,
            other => Self::Other(other),
        }
    }

    /// Whether this range is RAM (as opposed to a device or firmware hole), so
    /// that the kernel's direct map should cover it with ordinary caching.
    pub fn is_ram(self) -> bool {
        matches!(self, Self::Usable | Self::AcpiReclaimable | Self::AcpiNvs)
    }
}

/// One entry of the memory map: `start..end` in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    pub kind: RegionKind,
}

impl Region {
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The end of the highest range of RAM, in bytes.
pub fn ram_end(regions: &[Region]) -> u64 {
    regions
        .iter()
        .filter(|region| region.kind.is_ram())
        .map(|region| region.end)
        .max()
        .unwrap_or(0)
}

/// Calls `found(frames)` for each run of whole frames (as frame numbers) that
/// is usable RAM and overlaps none of `excluded` (byte ranges). A frame that
/// is only partly usable, or partly excluded, is left out.
pub fn usable_frames(
    regions: &[Region],
    excluded: &[Range<u64>],
    mut found: impl FnMut(Range<u64>),
) {
    for region in regions
        .iter()
        .filter(|region| region.kind == RegionKind::Usable)
    {
        let start = region.start.div_ceil(FRAME_SIZE);
        let end = region.end / FRAME_SIZE;
        let excluded_frames = excluded
            .iter()
            .map(|range| range.start / FRAME_SIZE..range.end.div_ceil(FRAME_SIZE));
        cut(start..end, excluded_frames, &mut found);
    }
}

/// Emits what is left of `range` after removing every range of `holes`.
fn cut(
    range: Range<u64>,
    mut holes: impl Iterator<Item = Range<u64>> + Clone,
    found: &mut impl FnMut(Range<u64>),
) {
    if range.is_empty() {
        return;
    }
    match holes.next() {
        None => found(range),
        Some(hole) => {
            cut(range.start..range.end.min(hole.start), holes.clone(), found);
            cut(range.start.max(hole.end)..range.end, holes, found);
        }
    }
}

#[cfg(test)]
// Lists of frame runs that happen to hold one run are still lists.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn region(start: u64, end: u64, kind: RegionKind) -> Region {
        Region { start, end, kind }
    }

    fn collect(regions: &[Region], excluded: &[Range<u64>]) -> Vec<Range<u64>> {
        let mut runs = Vec::new();
        usable_frames(regions, excluded, |run| runs.push(run));
        runs
    }

    /// The map QEMU's PVH loader gives a 256 MiB `pc` machine.
    fn qemu_map() -> [Region; 4] {
        [
            region(0, 0x9fc00, RegionKind::Usable),
            region(0x9fc00, 0xa0000, RegionKind::Reserved),
            region(0xf0000, 0x10_0000, RegionKind::Reserved),
            region(0x10_0000, 0x1000_0000, RegionKind::Usable),
        ]
    }

    #[test]
    fn decodes_e820_types() {
        assert_eq!(RegionKind::from_e820(1), RegionKind::Usable);
        assert_eq!(RegionKind::from_e820(3), RegionKind::AcpiReclaimable);
        assert_eq!(RegionKind::from_e820(12), RegionKind::Other(12));
        assert!(RegionKind::AcpiNvs.is_ram());
        assert!(!RegionKind::Reserved.is_ram());
    }

    #[test]
    fn partial_frames_are_dropped() {
        // 0x9fc00 is not frame-aligned: frame 0x9f is only partly usable.
        assert_eq!(collect(&qemu_map(), &[]), [0..0x9f, 0x100..0x10000]);
    }

    #[test]
    fn excluded_ranges_are_cut_out_whole_frames_at_a_time() {
        let kernel = 0x10_0000..0x20_0800; // ends mid-frame: that frame goes too
        let low = 0..0x10_0000;
        assert_eq!(collect(&qemu_map(), &[low, kernel]), [0x201..0x10000]);
    }

    #[test]
    fn a_hole_in_the_middle_splits_a_run() {
        let module = 0x80_0000..0x90_0000;
        assert_eq!(
            collect(&qemu_map(), &[module]),
            [0..0x9f, 0x100..0x800, 0x900..0x10000]
        );
    }

    #[test]
    fn overlapping_and_outside_exclusions() {
        let excluded = [
            0x10_0000..0x30_0000,
            0x20_0000..0x40_0000,
            0x2000_0000..0x3000_0000,
        ];
        assert_eq!(collect(&qemu_map(), &excluded), [0..0x9f, 0x400..0x10000]);
    }

    #[test]
    fn ram_end_ignores_device_holes() {
        let mut map = qemu_map().to_vec();
        map.push(region(0xfffc_0000, 0x1_0000_0000, RegionKind::Reserved));
        assert_eq!(ram_end(&map), 0x1000_0000);
        assert_eq!(ram_end(&[]), 0);
    }
}
