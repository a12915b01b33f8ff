//! Mapping requests: what `Map`, `Protect` and `MapBatch` take.

bitflags::bitflags! {
    /// How a page is mapped. Every mapping is readable and user-accessible;
    /// these add to that.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct MapFlags: u64 {
        /// Writable (the frame capability needs `Rights::WRITE`).
        const WRITE = 1 << 0;
        /// Executable (the frame capability needs `Rights::EXECUTE`).
        const EXECUTE = 1 << 1;
    }
}

/// One entry of a `MapBatch` call, laid out as the kernel reads it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapRequest {
    /// The frame capability (its raw handle).
    pub frame: u64,
    /// Page-aligned virtual address.
    pub address: u64,
    /// [`MapFlags`] bits.
    pub flags: u64,
}

/// The most requests one `MapBatch` call takes.
pub const MAX_BATCH: u64 = 512;

/// The largest run one frame capability names: `2^10` frames, 4 MiB
/// (`FrameAllocate`'s order).
pub const MAX_FRAME_ORDER: u32 = 10;
