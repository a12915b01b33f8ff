//! Typed errors: every refusal says why.
//!
//! A system call returns 0 in `rax` on success, or one of these codes. The
//! codes are stable ABI; never reuse a number.

use crate::numbered::numbered_enum;

numbered_enum! {
    /// Why the kernel refused a system call.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum Error {
        /// No system call has this number.
        UnknownSystemCall = 1,
        /// The handle's index is out of range, or its slot is empty and was never
        /// used at the handle's generation: it names nothing and never did.
        InvalidHandle = 2,
        /// The handle's generation is not its slot's: the capability it named
        /// was dropped or revoked (the slot may have been reused since). Also a
        /// capability on its way out — a revoke or drop that works in shares
        /// has begun at it or stopped at it: nothing more is derived from,
        /// granted from or mapped through it.
        StaleHandle = 3,
        /// The capability is of another kind than the call needs.
        WrongKind = 4,
        /// The capability lacks a right the call needs (other than the two below).
        MissingRights = 5,
        /// Mapping a frame through a capability without the `MAP` right.
        NotMappable = 6,
        /// A writable (or executable) mapping through a capability without `WRITE` (or `EXECUTE`).
        ReadOnly = 7,
        /// Derive or grant asked for rights the capability does not have.
        RightsEscalation = 8,
        /// An address in the kernel half, or in the window the kernel reserves in the user half.
        KernelAddress = 9,
        /// An address that is not canonical (bits 63..47 differ).
        NonCanonicalAddress = 10,
        /// An address that is not page-aligned where it must be, or a frame
        /// number not aligned to the run asked for.
        Misaligned = 11,
        /// A user buffer that is not mapped below `USER_MAP_END` with the access
        /// the call needs (kernel-half pointers included).
        BadUserBuffer = 12,
        /// Something is already mapped at that address.
        AlreadyMapped = 13,
        /// Nothing is mapped at that address.
        NotMapped = 14,
        /// No free physical memory is left (or no free aligned run of that size).
        OutOfMemory = 15,
        /// The environment's frame quota does not allow it.
        QuotaExceeded = 16,
        /// The specific frame asked for is allocated, or is not RAM.
        FrameUnavailable = 17,
        /// The capability table, or the kernel's environment table, is full.
        TableFull = 18,
        /// An argument is out of its range (a flag, a count, an order).
        InvalidArgument = 19,
        /// The environment is not in a state that allows this (e.g. started twice).
        InvalidState = 20,
        /// The slot asked for is held by another environment, or none is free.
        SlotUnavailable = 21,
        /// `Call` through the caller's own endpoint (it could never take the
        /// call); for `YieldTo`, the target is not runnable.
        NotReceiving = 22,
        /// `Reply` with no call being served.
        NoCaller = 23,
        /// The environment on the other side of a call went away.
        PeerGone = 24,
        /// The address is claimed already, or the filter overlaps one bound
        /// already (same address, protocol and port).
        AddressInUse = 25,
        /// Nothing to take now (no frame received), or no room now (the NIC's
        /// transmit queue is full): try again later.
        WouldBlock = 26,
        /// A frame's source (MAC, address, protocol or port) is not one the
        /// sending binding's filters own: it is dropped and counted as a spoof.
        NotBound = 27,
        /// No network device was found at boot.
        NoDevice = 28,
        /// The environment's kernel-memory allowance (bytes of kernel memory its
        /// capabilities, mapping records and other kernel objects may take) is spent.
        KernelMemoryExceeded = 29,
        /// The environment's slot quota (slots it may hold or lend) is spent.
        SlotQuotaExceeded = 30,
        /// No environment with that id that the caller may inspect (whether
        /// one exists is not said).
        NoSuchEnvironment = 31,
    }
}

impl Error {
    pub const fn code(self) -> u64 {
        self as u64
    }
}

impl TryFrom<u64> for Error {
    /// The code, when it is not an error number (0 means success).
    type Error = u64;

    fn try_from(code: u64) -> Result<Self, u64> {
        Error::from_number(code).ok_or(code)
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_dense() {
        for (index, error) in Error::ALL.into_iter().enumerate() {
            assert_eq!(error.code(), index as u64 + 1);
            assert_eq!(Error::try_from(error.code()), Ok(error));
        }
        assert_eq!(Error::try_from(0), Err(0));
        assert_eq!(Error::try_from(9999), Err(9999));
    }
}
