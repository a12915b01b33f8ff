//! The stack's only `unsafe` code: the system calls that drop a capability
//! or bind a run of frames, which the ABI marks `unsafe` because they can
//! take memory away from under a reference.
//!
//! Each function here establishes its own condition, so the rest of the
//! crate calls them safely: the crate denies `unsafe` code
//! (`#![deny(unsafe_code)]` in `lib.rs`) and only this module allows it.
//! It never maps anything nor decides what the stack holds.
#![allow(unsafe_code)]

use exo_abi::{Error, Handle, user};

/// Drops a filter, binding, address or notification of the stack's.
/// Dropping one of ours cannot fail but by a bug here, and then only leaves
/// it in place.
pub(crate) fn drop_capability(capability: Handle) {
    // SAFETY: the crate passes only filters, bindings, addresses and
    // notifications here (its frames are `RingFrames`), and those name no
    // memory: no page is mapped through them or anything derived from them.
    let _ = unsafe { user::capability_drop(capability) };
}

/// The run of frames a binding's rings live in: allocated and bound here,
/// given back when this is dropped (which unmaps the rings).
///
/// `Link` declares it after everything that points into the rings, so those
/// are dropped first and nothing refers to the frames when they go.
#[derive(Debug)]
pub(crate) struct RingFrames {
    run: Handle,
}

impl RingFrames {
    /// Allocates a run of `2^order` frames and binds it, with `notification`
    /// signalled when frames arrive; returns it, the binding and the rings'
    /// entries.
    pub(crate) fn allocate_and_bind(
        order: u32,
        notification: Handle,
    ) -> Result<(Self, Handle, u32), Error> {
        let (run, _) = user::frame_allocate(order)?;
        // SAFETY: the run was just allocated here and is mapped nowhere, so
        // no Rust object lives in the frames the kernel now writes.
        let (binding, entries) = unsafe { user::net_bind(run, Some(notification)) }?;
        Ok((Self { run }, binding, entries))
    }

    /// The run's frame capability, to map the rings.
    pub(crate) fn handle(&self) -> Handle {
        self.run
    }
}

impl Drop for RingFrames {
    fn drop(&mut self) {
        // SAFETY: dropping the run unmaps the rings. Nothing points into
        // them any more: `Link` drops its rings before this field (see the
        // type's documentation).
        let _ = unsafe { user::capability_drop(self.run) };
    }
}
