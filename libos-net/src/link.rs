//! The link: smoltcp's `phy::Device` over one kernel binding, by either
//! data path, chosen when the stack starts.
//!
//! - [`Path::Rings`]: frames are read from the receive ring and written
//!   into the transmit ring in shared memory; no system call per frame (a
//!   `NetKick` when the kernel has stopped polling the ring, and by
//!   default one at the end of each poll that wrote frames: [`Flush`]).
//! - [`Path::SystemCalls`]: one `NetReceive` or `NetSend` per frame, the
//!   conventional path, over the same binding, so that measurements compare
//!   only the data path.
//!
//! Every received frame passes the front door (`front_door.rs`) before
//! smoltcp sees it. The link also holds back a TCP connection request for a
//! port whose listener has no idle socket left, so that the stack can add
//! one first ([`Gate`]).

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::fmt;

use exo_abi::mapping::MapFlags;
use exo_abi::net::MAX_FRAME;
use exo_abi::user::{self, rings::Rings};
use exo_abi::{Error, Handle};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::capabilities::{RingFrames, drop_capability};
use crate::front_door::{self, Malformed};

/// How frames cross between the stack and the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// The shared-memory rings: no system call per frame.
    Rings,
    /// One system call per frame (`NetSend`, `NetReceive`).
    SystemCalls,
}

/// When frames written into the transmit ring go out while the kernel
/// polls it (`NEED_WAKEUP` clear). The kernel drains a polled ring at its
/// owner's `Wait`, whenever the owner leaves the CPU, and at every tick and
/// interrupt; on one CPU the first of those after a frame is written is
/// usually the program's next `Wait`, and whatever the program does before
/// it (the rest of its event loop) adds to the frame's latency. Which to
/// pay, that latency or a system call, is the library OS's choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush {
    /// At the end of each poll that wrote frames and left none received
    /// to process: one `NetKick` a poll, however many frames it wrote. An
    /// answer leaves as soon as the stack has made it (chapter 7.5: a TCP
    /// echo server's round trip fell from 49 to 41 µs under TCG).
    EachPoll,
    /// At the kernel's next entry, tick or interrupt: no system call at
    /// all while the ring is polled.
    NextEntry,
}

impl fmt::Display for Flush {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Flush::EachPoll => "kicked after each poll",
            Flush::NextEntry => "sent at the next entry",
        })
    }
}

impl fmt::Display for Path {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Path::Rings => "rings",
            Path::SystemCalls => "system calls",
        })
    }
}

/// What the link has seen, counted as it happens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statistics {
    /// Frames handed to smoltcp.
    pub frames_in: u64,
    /// Frames handed to the kernel.
    pub frames_out: u64,
    /// Frames the front door refused, by reason.
    pub truncated: u64,
    pub bad_checksum: u64,
    pub bad_header: u64,
    /// Frames smoltcp produced that the kernel refused (it never should).
    pub send_errors: u64,
    /// `NetSend`, `NetReceive` and `NetKick` calls made.
    pub system_calls: u64,
    /// Half-open TCP connections dropped to make room for a new connection
    /// request in a listener's full backlog (`Stack::tend_sockets`).
    pub half_open_dropped: u64,
}

impl Statistics {
    /// Frames refused at the front door.
    pub fn malformed(&self) -> u64 {
        self.truncated + self.bad_checksum + self.bad_header
    }
}

impl fmt::Display for Statistics {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "frames in {}, out {}, malformed {} (truncated {}, bad checksum {}, bad header {}), send errors {}, system calls {}, half-open connections dropped {}",
            self.frames_in,
            self.frames_out,
            self.malformed(),
            self.truncated,
            self.bad_checksum,
            self.bad_header,
            self.send_errors,
            self.system_calls,
            self.half_open_dropped,
        )
    }
}

/// For each listening port: how many of its sockets still listen, idle.
/// A connection request takes one; when none is left, the request waits in
/// the ring until the stack has added one (or refused it, when the listener
/// has as many connections waiting for `accept` as its backlog allows).
#[derive(Debug, Default)]
pub struct Gate {
    idle: BTreeMap<u16, u32>,
    /// Ports a request was held back for since the stack last looked: it
    /// must look at their listeners.
    held_back: Vec<u16>,
}

impl Gate {
    /// Lets `port` through `count` more times before holding a request back.
    pub fn open(&mut self, port: u16, count: u32) {
        self.idle.insert(port, count);
    }

    /// Stops holding requests for `port` back (no listener, or a full one:
    /// smoltcp then refuses them with a reset).
    pub fn close(&mut self, port: u16) {
        self.idle.remove(&port);
    }

    /// Whether a request for `port` was held back since [`take_held_back`](Self::take_held_back).
    pub fn was_held_back(&self, port: u16) -> bool {
        self.held_back.contains(&port)
    }

    /// Whether any request was held back; forgets which.
    pub fn take_held_back(&mut self) -> bool {
        let any = !self.held_back.is_empty();
        self.held_back.clear();
        any
    }

    /// Whether a connection request for `port` may go on to smoltcp now.
    fn admit(&mut self, port: u16) -> bool {
        match self.idle.get_mut(&port) {
            None => true,
            Some(0) => {
                if !self.held_back.contains(&port) {
                    self.held_back.push(port);
                }
                false
            }
            Some(count) => {
                *count -= 1;
                true
            }
        }
    }
}

enum Frames {
    Rings(Rings),
    SystemCalls {
        /// Where `NetReceive` puts a frame, and its length while it is
        /// held, taken but not yet handed on.
        received: RefCell<(Box<[u8; MAX_FRAME]>, Option<usize>)>,
        /// Where smoltcp writes a frame before `NetSend`.
        outgoing: RefCell<Box<[u8; MAX_FRAME]>>,
    },
}

/// smoltcp's device: one binding, its data path, its counters.
pub struct Link {
    /// The binding made of `run`.
    binding: Handle,
    frames: Frames,
    statistics: Cell<Statistics>,
    pub gate: Gate,
    /// Frames were written into the transmit ring since the last kick.
    unsent: Cell<bool>,
    /// The run of frames the rings live in, held for its `Drop` (which gives
    /// it back). Declared last: it is dropped after `frames`, the only thing
    /// that points into the rings.
    _run: RingFrames,
}

impl fmt::Debug for Link {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Link")
            .field("binding", &self.binding)
            .field("path", &self.path())
            .field("statistics", &self.statistics.get())
            .finish()
    }
}

impl Link {
    /// Allocates a run of `2^order` frames, binds it with `notification`
    /// signalled when frames arrive, and (for the rings path) maps it
    /// writable at `base`, which must be free for `2^order` pages.
    pub fn open(
        path: Path,
        order: u32,
        base: u64,
        notification: Handle,
    ) -> Result<(Self, Handle), Error> {
        let (run, binding, entries) = RingFrames::allocate_and_bind(order, notification)?;
        let frames = match path {
            Path::Rings => {
                // Mapped only at `base`, which the caller keeps for the
                // rings, so no Rust object lives in the frames the kernel writes.
                user::map(
                    run.handle(),
                    Handle::SELF_ENVIRONMENT,
                    base,
                    MapFlags::WRITE,
                )?;
                Frames::Rings(Rings::new(base, entries)?)
            }
            Path::SystemCalls => Frames::SystemCalls {
                received: RefCell::new((Box::new([0; MAX_FRAME]), None)),
                outgoing: RefCell::new(Box::new([0; MAX_FRAME])),
            },
        };
        let link = Self {
            _run: run,
            binding,
            frames,
            statistics: Cell::new(Statistics::default()),
            gate: Gate::default(),
            unsent: Cell::new(false),
        };
        Ok((link, binding))
    }

    pub fn path(&self) -> Path {
        match self.frames {
            Frames::Rings(_) => Path::Rings,
            Frames::SystemCalls { .. } => Path::SystemCalls,
        }
    }

    pub fn statistics(&self) -> Statistics {
        self.statistics.get()
    }

    /// The kernel's counters for this binding (the rings path publishes
    /// them in the control page).
    pub fn kernel_counters(&self) -> Option<exo_abi::net::Counters> {
        match &self.frames {
            Frames::Rings(rings) => Some(rings.counters()),
            Frames::SystemCalls { .. } => None,
        }
    }

    /// Whether a received frame is waiting to be processed (then the stack
    /// must not sleep: the kernel signals only when the ring fills from empty).
    pub fn frames_waiting(&self) -> bool {
        match &self.frames {
            Frames::Rings(rings) => rings.rx_pending() > 0,
            Frames::SystemCalls { received, .. } => received.borrow().1.is_some(),
        }
    }

    pub(crate) fn count(&self, change: impl FnOnce(&mut Statistics)) {
        let mut statistics = self.statistics.get();
        change(&mut statistics);
        self.statistics.set(statistics);
    }

    /// Whether the transmit ring is full, so that nothing can be sent until
    /// the kernel drains it.
    pub fn transmit_blocked(&self) -> bool {
        !self.can_transmit()
    }

    fn can_transmit(&self) -> bool {
        match &self.frames {
            Frames::Rings(rings) => rings.tx_free() > 0,
            Frames::SystemCalls { .. } => true,
        }
    }

    /// Asks the kernel to send what the transmit ring holds, if frames
    /// were written since the last kick and the kernel has not taken them
    /// all already (at a `Wait`, a tick or an interrupt). Rings only: the
    /// per-packet path sends each frame at once.
    pub fn flush(&self) {
        let Frames::Rings(rings) = &self.frames else {
            return;
        };
        if self.unsent.get() && rings.tx_free() < rings.entries() {
            self.kick();
        } else {
            self.unsent.set(false);
        }
    }

    fn kick(&self) {
        self.unsent.set(false);
        self.count(|s| s.system_calls += 1);
        // A refused kick leaves the frame for the next tick's drain.
        let _ = user::net_kick(self.binding);
    }

    /// Checks the oldest received frame at the front door; `None` if there
    /// is none.
    fn check_next(&self) -> Option<Result<front_door::Admitted, Malformed>> {
        match &self.frames {
            Frames::Rings(rings) => rings.peek(front_door::check),
            Frames::SystemCalls { received, .. } => {
                let (buffer, held) = &mut *received.borrow_mut();
                if held.is_none() {
                    self.count(|s| s.system_calls += 1);
                    *held = Some(user::net_receive(self.binding, &mut buffer[..]).ok()?);
                }
                held.map(|length| front_door::check(&buffer[..length]))
            }
        }
    }

    /// Drops the oldest received frame unread.
    fn discard_next(&self) {
        match &self.frames {
            Frames::Rings(rings) => {
                rings.receive(|_| ());
            }
            Frames::SystemCalls { received, .. } => received.borrow_mut().1 = None,
        }
    }
}

impl Drop for Link {
    /// Gives back the binding (the kernel discards what its transmit ring
    /// still holds); the run of frames goes with the `run` field, last.
    fn drop(&mut self) {
        drop_capability(self.binding);
    }
}

impl phy::Device for Link {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        // A frame whose answer could not be sent waits in the ring.
        if !self.can_transmit() {
            return None;
        }
        loop {
            match self.check_next()? {
                Err(reason) => {
                    self.count(|s| match reason {
                        Malformed::Truncated => s.truncated += 1,
                        Malformed::BadChecksum => s.bad_checksum += 1,
                        Malformed::BadHeader => s.bad_header += 1,
                    });
                    self.discard_next();
                }
                Ok(admitted) => {
                    if let Some(port) = admitted.connection_request
                        && !self.gate.admit(port)
                    {
                        return None;
                    }
                    return Some((RxToken { link: self }, TxToken { link: self }));
                }
            }
        }
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        self.can_transmit().then_some(TxToken { link: self })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut capabilities = DeviceCapabilities::default();
        capabilities.medium = Medium::Ethernet;
        capabilities.max_transmission_unit = MAX_FRAME;
        capabilities.max_burst_size = None;
        capabilities.checksum = front_door::receive_checksums();
        capabilities
    }
}

/// The oldest received frame, admitted by the front door.
pub struct RxToken<'a> {
    link: &'a Link,
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, use_frame: F) -> R {
        let link = self.link;
        link.count(|s| s.frames_in += 1);
        match &link.frames {
            Frames::Rings(rings) => rings
                .receive(use_frame)
                .expect("the frame the front door admitted is still first"),
            Frames::SystemCalls { received, .. } => {
                let (buffer, held) = &mut *received.borrow_mut();
                let length = held
                    .take()
                    .expect("the frame the front door admitted is still held");
                use_frame(&buffer[..length])
            }
        }
    }
}

/// Room for one frame to send.
pub struct TxToken<'a> {
    link: &'a Link,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, length: usize, fill: F) -> R {
        let link = self.link;
        match &link.frames {
            Frames::Rings(rings) => {
                let mut fill = Some(fill);
                let mut result = None;
                let sent = rings.transmit(length, |slot| {
                    result = fill.take().map(|fill| fill(slot));
                });
                match sent {
                    Ok(kick) => {
                        link.count(|s| s.frames_out += 1);
                        link.unsent.set(true);
                        if kick {
                            link.kick();
                        }
                    }
                    Err(_) => link.count(|s| s.send_errors += 1),
                }
                match (result, fill) {
                    (Some(result), _) => result,
                    // Refused before `fill` ran: let smoltcp write somewhere harmless.
                    (None, Some(fill)) => fill(&mut vec![0; length]),
                    (None, None) => unreachable!("fill runs at most once"),
                }
            }
            Frames::SystemCalls { outgoing, .. } => {
                let mut buffer = outgoing.borrow_mut();
                let length = length.min(MAX_FRAME);
                let result = fill(&mut buffer[..length]);
                loop {
                    link.count(|s| s.system_calls += 1);
                    match user::net_send(link.binding, &buffer[..length]) {
                        Ok(()) => {
                            link.count(|s| s.frames_out += 1);
                            break;
                        }
                        // The card's queue is full: let it drain, as a blocking send would.
                        Err(Error::WouldBlock) => user::yield_now(),
                        Err(_) => {
                            link.count(|s| s.send_errors += 1);
                            break;
                        }
                    }
                }
                result
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_gate_holds_requests_back_and_remembers_for_which_port() {
        let mut gate = Gate::default();
        gate.open(7, 1);
        // Another port without a gate: never held back (smoltcp answers).
        assert!(gate.admit(80));
        assert!(gate.admit(7));
        assert!(!gate.was_held_back(7));
        // Its one idle socket is taken: the next request waits, and the stack learns
        // that port 7, not 80, has one waiting (so only its listener gives up a
        // half-open connection for it).
        assert!(!gate.admit(7));
        assert!(!gate.admit(7));
        assert!(gate.was_held_back(7) && !gate.was_held_back(80));
        assert!(gate.take_held_back());
        assert!(!gate.was_held_back(7));
        assert!(!gate.take_held_back(), "taken once");
        // A full backlog of half-open connections keeps the gate open with no room, so
        // requests wait rather than meet smoltcp's reset.
        gate.open(7, 0);
        assert!(!gate.admit(7));
        assert!(gate.was_held_back(7));
        gate.close(7);
        assert!(gate.admit(7));
    }
}
