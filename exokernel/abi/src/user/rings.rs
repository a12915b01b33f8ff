//! The environment's side of a binding's rings (`crate::net`): it consumes
//! the receive ring and produces the transmit ring, in memory it mapped,
//! with no system call per frame.
//!
//! Like the kernel, it keeps its own indices and only writes the shared
//! copies; it reads the kernel's index once per operation and trusts it no
//! further than [`Ring`] allows.
//!
//! The two rings are independent, so every operation takes `&self` (the
//! private indices are `Cell`s): a frame may be queued for transmission
//! while a received one is still being read, as a TCP/IP stack answering a
//! packet does.

use core::cell::Cell;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::net::{Counters, MAX_FRAME, Ring, TxFlags, control, rx_slot_offset, tx_slot_offset};
use crate::{Error, layout};

/// A binding's rings, mapped at `base`.
#[derive(Debug)]
pub struct Rings {
    base: u64,
    ring: Ring,
    rx_consumed: Cell<u32>,
    tx_produced: Cell<u32>,
    /// Set while `receive` lends a frame or `transmit` lends a slot, so
    /// that a nested call cannot consume the frame being read or lend the
    /// same slot twice.
    rx_lent: Cell<bool>,
    tx_lent: Cell<bool>,
}

impl Rings {
    /// The rings of a binding with `entries` per ring (what `net_bind`
    /// returned), whose run of frames is mapped writable at `base`.
    /// `InvalidArgument` if `entries` is not a power of two; `NotMapped` if
    /// a page the rings use is not mapped writable there.
    ///
    /// The pages must stay mapped while the value is used (unmapping is an
    /// `unsafe` call, whose caller promises that).
    pub fn new(base: u64, entries: u32) -> Result<Self, Error> {
        let ring = Ring::new(entries).ok_or(Error::InvalidArgument)?;
        let pages = 1 + u64::from(entries);
        for page in 0..pages {
            let address = base + page * layout::PAGE_SIZE;
            let wanted = super::entry::PRESENT | super::entry::WRITABLE | super::entry::USER;
            let entry = super::page_table_entry(address).ok_or(Error::NotMapped)?;
            if entry & wanted != wanted {
                return Err(Error::NotMapped);
            }
        }
        let rings = Self {
            base,
            ring,
            rx_consumed: Cell::new(0),
            tx_produced: Cell::new(0),
            rx_lent: Cell::new(false),
            tx_lent: Cell::new(false),
        };
        rings
            .rx_consumed
            .set(rings.word(control::RX_CONSUMER).load(Ordering::Acquire));
        rings
            .tx_produced
            .set(rings.word(control::TX_PRODUCER).load(Ordering::Acquire));
        Ok(rings)
    }

    pub fn entries(&self) -> u32 {
        self.ring.entries()
    }

    fn word(&self, offset: u64) -> &AtomicU32 {
        // SAFETY: `offset` is a control-page word offset (aligned, inside
        // the control page, which `new` found mapped writable and the caller
        // keeps mapped); the kernel writes it concurrently, hence an atomic.
        unsafe { &*((self.base + offset) as *const AtomicU32) }
    }

    /// Frames waiting in the receive ring.
    pub fn rx_pending(&self) -> u32 {
        let producer = self.word(control::RX_PRODUCER).load(Ordering::Acquire);
        self.ring
            .filled(producer, self.rx_consumed.get())
            .unwrap_or(0)
    }

    /// Hands the oldest received frame to `use_frame` and leaves it in the
    /// ring; `None` if the ring is empty.
    pub fn peek<R>(&self, use_frame: impl FnOnce(&[u8]) -> R) -> Option<R> {
        if self.rx_pending() == 0 {
            return None;
        }
        let slot = self.ring.slot(self.rx_consumed.get());
        let length = self
            .word(control::RX_DESCRIPTORS + 4 * u64::from(slot))
            .load(Ordering::Relaxed) as usize;
        let address = self.base + rx_slot_offset(slot);
        // SAFETY: the slot lies in the mapped run; the kernel writes a slot
        // only while it is free, and this one is filled until the consumer
        // index moves past it, which only `receive` does, after `use_frame`.
        let frame =
            unsafe { core::slice::from_raw_parts(address as *const u8, length.min(MAX_FRAME)) };
        Some(use_frame(frame))
    }

    /// Hands the oldest received frame to `use_frame` and consumes it;
    /// `None` if the ring is empty (or, called from inside `use_frame`,
    /// while that frame is lent).
    pub fn receive<R>(&self, use_frame: impl FnOnce(&[u8]) -> R) -> Option<R> {
        if self.rx_lent.replace(true) {
            return None;
        }
        let result = self.peek(use_frame);
        self.rx_lent.set(false);
        let result = result?;
        let consumed = self.rx_consumed.get().wrapping_add(1);
        self.rx_consumed.set(consumed);
        self.word(control::RX_CONSUMER)
            .store(consumed, Ordering::Release);
        Some(result)
    }

    /// Entries free in the transmit ring.
    pub fn tx_free(&self) -> u32 {
        let consumer = self.word(control::TX_CONSUMER).load(Ordering::Acquire);
        self.ring
            .free(self.tx_produced.get(), consumer)
            .unwrap_or(0)
    }

    /// Writes a `length`-byte frame with `fill` into the next transmit slot
    /// and publishes it. Returns whether the kernel asks for a kick
    /// (`TxFlags::NEED_WAKEUP`); `WouldBlock` if the ring is full,
    /// `InvalidArgument` if `length` is over `MAX_FRAME`, `InvalidState` if
    /// called from inside another transmit's `fill`.
    pub fn transmit(&self, length: usize, fill: impl FnOnce(&mut [u8])) -> Result<bool, Error> {
        if length > MAX_FRAME {
            return Err(Error::InvalidArgument);
        }
        if self.tx_free() == 0 {
            return Err(Error::WouldBlock);
        }
        if self.tx_lent.replace(true) {
            return Err(Error::InvalidState);
        }
        let slot = self.ring.slot(self.tx_produced.get());
        let address = self.base + tx_slot_offset(self.ring.entries(), slot);
        // SAFETY: the slot lies in the mapped run, and the kernel reads a
        // slot only between its consumer index and our producer index, so
        // it does not touch this one until it is published below.
        let frame = unsafe { core::slice::from_raw_parts_mut(address as *mut u8, length) };
        fill(frame);
        self.tx_lent.set(false);
        self.word(control::TX_DESCRIPTORS + 4 * u64::from(slot))
            .store(length as u32, Ordering::Relaxed);
        let produced = self.tx_produced.get().wrapping_add(1);
        self.tx_produced.set(produced);
        self.word(control::TX_PRODUCER)
            .store(produced, Ordering::Release);
        Ok(self.need_wakeup())
    }

    /// Whether the kernel has stopped polling the transmit ring, so that
    /// what is produced waits for a `net_kick`.
    pub fn need_wakeup(&self) -> bool {
        let flags = self.word(control::TX_FLAGS).load(Ordering::Acquire);
        TxFlags::from_bits_truncate(flags).contains(TxFlags::NEED_WAKEUP)
    }

    /// The binding's counters, as the kernel last published them.
    pub fn counters(&self) -> Counters {
        let mut values = [0u64; Counters::COUNT];
        for (index, value) in values.iter_mut().enumerate() {
            let address = self.base + control::COUNTERS + 8 * index as u64;
            // SAFETY: an aligned word of the mapped control page; the kernel
            // rewrites it concurrently, hence volatile.
            *value = unsafe { core::ptr::read_volatile(address as *const u64) };
        }
        Counters::from_array(values)
    }
}
