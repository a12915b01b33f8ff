//! Capability handles: how an environment names what it holds.
//!
//! A handle is an index into the environment's own capability table plus
//! the generation of that slot. Every time a slot is emptied its generation
//! changes, so a handle kept after its capability was dropped or revoked —
//! or a guessed one — names nothing and is refused.

/// Slots in every environment's capability table: handle indices run below it.
pub const TABLE_CAPACITY: u32 = 1024;

/// A handle to a capability in the calling environment's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct Handle(u64);

impl Handle {
    /// Every environment's own environment capability sits in slot 0 from birth.
    pub const SELF_ENVIRONMENT: Handle = Handle::new(0, 0);

    pub const fn new(index: u32, generation: u32) -> Self {
        Self(((generation as u64) << 32) | index as u64)
    }

    /// The slot in the table.
    pub const fn index(self) -> u32 {
        self.0 as u32
    }

    /// The slot's generation when this handle was issued.
    pub const fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The handle as a system-call argument.
    pub const fn to_raw(self) -> u64 {
        self.0
    }

    /// A handle from a system-call argument (any value: the table checks it).
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_and_generation_round_trip() {
        let handle = Handle::new(7, 0xdead_beef);
        assert_eq!(handle.index(), 7);
        assert_eq!(handle.generation(), 0xdead_beef);
        assert_eq!(Handle::from_raw(handle.to_raw()), handle);
        assert_eq!(Handle::SELF_ENVIRONMENT.to_raw(), 0);
    }
}
