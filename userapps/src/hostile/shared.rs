//! A page of words a parent shares with the children it tests: where they report what
//! happened to them, and where the parent leaves them handles.
//!
//! The page lives at one address of the managed window in every environment that maps
//! it, so a child built from the parent's image finds it by the same constant. Every word
//! is read and written volatile (`memory::read_u64`): the others change it behind this
//! environment's back.

use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::MapFlags;
use exo_abi::{Error, Handle, user};

use crate::layout::is_managed;
use crate::memory::{read_u64, write_u64};

/// The words of a page at a fixed address of the managed window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Words {
    address: u64,
}

impl Words {
    /// The words of the page at `address` (page-aligned, in the managed window).
    pub const fn at(address: u64) -> Self {
        assert!(is_managed(address) && address.is_multiple_of(PAGE_SIZE));
        Self { address }
    }

    /// The page's address, e.g. to pass to a child as its start argument.
    pub const fn address(self) -> u64 {
        self.address
    }

    /// How many words the page holds.
    pub const COUNT: u64 = PAGE_SIZE / 8;

    fn word(self, index: u64) -> u64 {
        assert!(index < Self::COUNT, "word {index} is beyond the page");
        self.address + 8 * index
    }

    pub fn read(self, index: u64) -> u64 {
        read_u64(self.word(index))
    }

    pub fn write(self, index: u64, value: u64) {
        write_u64(self.word(index), value);
    }

    /// Adds `delta` to word `index` (only one environment may write a given word).
    pub fn add(self, index: u64, delta: u64) {
        self.write(index, self.read(index).wrapping_add(delta));
    }

    /// Sets every word to 0.
    pub fn clear(self) {
        for index in 0..Self::COUNT {
            self.write(index, 0);
        }
    }

    /// Allocates a frame and maps it writable here in this environment; returns its
    /// capability, to map the same page into children with [`share_with`](Self::share_with).
    pub fn allocate(self) -> Result<Handle, Error> {
        let (frame, _) = user::frame_allocate(0)?;
        user::map(
            frame,
            Handle::SELF_ENVIRONMENT,
            self.address,
            MapFlags::WRITE,
        )?;
        Ok(frame)
    }

    /// Maps the page `frame` (from [`allocate`](Self::allocate)) writable at the same
    /// address in `environment`.
    pub fn share_with(self, frame: Handle, environment: Handle) -> Result<(), Error> {
        user::map(frame, environment, self.address, MapFlags::WRITE)
    }
}
