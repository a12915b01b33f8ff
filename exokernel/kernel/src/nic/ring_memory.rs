//! A binding's ring memory as the kernel touches it: a run of frames the
//! environment owns, reached through the direct map.
//!
//! The environment may write any of it at any time, so the kernel reads
//! each word once, copies frames out before checking them, and uses only
//! offsets it computed itself from checked indices. Words are atomics and
//! frames are copied with volatile word accesses, so a concurrent writer
//! (another CPU, later) makes the bytes wrong, never the kernel unsound.

use core::sync::atomic::{AtomicU32, Ordering};

use exo_kernel_core::memory_map::FRAME_SIZE;

use crate::memory::{lent_frames, phys_to_virt};

#[derive(Debug)]
pub struct RingMemory {
    /// Physical address of the run's first byte.
    physical: u64,
    size: u64,
}

impl RingMemory {
    /// The `2^order` frames at physical address `physical`, which must be
    /// lent to an environment (`memory::lent_frames`); `None` otherwise.
    /// The kernel drops it when the binding goes, which happens before the
    /// frames' capability can free them; every access checks again that
    /// they are still lent, so even a kernel bug there could not make a
    /// ring write land in the kernel's own memory.
    pub fn new(physical: u64, order: u32) -> Option<Self> {
        let size = FRAME_SIZE << order;
        lent_frames::is_lent(physical, size).then_some(Self { physical, size })
    }

    fn address(&self, offset: u64, length: u64) -> u64 {
        assert!(
            offset
                .checked_add(length)
                .is_some_and(|end| end <= self.size),
            "ring offsets are computed by the kernel and always in the run"
        );
        assert!(
            lent_frames::is_lent(self.physical + offset, length),
            "a binding's frames stay lent while the binding exists"
        );
        phys_to_virt(self.physical + offset).as_u64()
    }

    fn word(&self, offset: u64) -> &AtomicU32 {
        assert!(offset.is_multiple_of(4));
        let address = self.address(offset, 4);
        // SAFETY: aligned, inside the run and in lent frames (`address`);
        // `AtomicU32` may alias memory another party writes.
        unsafe { &*(address as *const AtomicU32) }
    }

    /// The word at `offset`, with acquire ordering (what it guards is visible).
    pub fn load(&self, offset: u64) -> u32 {
        self.word(offset).load(Ordering::Acquire)
    }

    /// Sets the word at `offset`, with release ordering (what it guards is published first).
    pub fn store(&self, offset: u64, value: u32) {
        self.word(offset).store(value, Ordering::Release)
    }

    /// Copies `out.len()` bytes from `offset` (a multiple of 8) into `out`.
    pub fn read(&self, offset: u64, out: &mut [u8]) {
        assert!(offset.is_multiple_of(8));
        let length = out.len();
        let address = self.address(offset, length as u64);
        let mut words = out.chunks_exact_mut(8);
        for (index, chunk) in (&mut words).enumerate() {
            // SAFETY: inside the run (checked above) and aligned; volatile,
            // because the environment may be writing it.
            let word = unsafe { core::ptr::read_volatile((address as *const u64).add(index)) };
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        let tail = words.into_remainder();
        let tail_start = address + (length - tail.len()) as u64;
        for (index, byte) in tail.iter_mut().enumerate() {
            // SAFETY: as above, byte by byte.
            *byte = unsafe { core::ptr::read_volatile((tail_start + index as u64) as *const u8) };
        }
    }

    /// Copies `bytes` to `offset` (a multiple of 8).
    pub fn write(&self, offset: u64, bytes: &[u8]) {
        assert!(offset.is_multiple_of(8));
        let address = self.address(offset, bytes.len() as u64);
        let mut words = bytes.chunks_exact(8);
        for (index, chunk) in (&mut words).enumerate() {
            let word = u64::from_ne_bytes(chunk.try_into().expect("eight bytes"));
            // SAFETY: as in `read`.
            unsafe { core::ptr::write_volatile((address as *mut u64).add(index), word) };
        }
        let tail = words.remainder();
        let tail_start = address + (bytes.len() - tail.len()) as u64;
        for (index, byte) in tail.iter().enumerate() {
            // SAFETY: as in `read`.
            unsafe { core::ptr::write_volatile((tail_start + index as u64) as *mut u8, *byte) };
        }
    }
}
