//! Visible revocation and the abort protocol (Engler et al., SOSP 1995, §3.3).
//!
//! To take frames back, the kernel first asks: `RequestFrames` records how
//! many frames an environment should give back and within how many ticks,
//! and an upcall tells it (if it registered an entry); the time allowed
//! counts again from that upcall, so a request never expires before the
//! environment could act on it. The library OS chooses which frames to give
//! up and drops their capabilities. If the deadline passes with frames still
//! missing, the kernel takes them by force — the root frame capabilities in
//! the highest slots of its table first — unmapping them wherever they are
//! mapped and invalidating every capability derived from them, and records
//! that it did. Nothing is ever lost to the system.

use exo_abi::counters::Counter;
use exo_abi::{Error, Handle, Rights};
use exo_kernel_core::caps::NodeId;

use super::{EnvironmentId, Object, Revocation, System};
use crate::arch::cpu;
use crate::{println, time};

/// The longest deadline a request may give, in timer ticks.
const MAX_DEADLINE_TICKS: u64 = 600_000;

impl System {
    /// Asks the environment `target` names to give back `wanted` frames
    /// within `deadline_ticks`. Replaces any open request.
    pub fn request_frames(
        &mut self,
        caller: EnvironmentId,
        target: Handle,
        wanted: u64,
        deadline_ticks: u64,
    ) -> Result<(), Error> {
        if wanted == 0 || deadline_ticks == 0 || deadline_ticks > MAX_DEADLINE_TICKS {
            return Err(Error::InvalidArgument);
        }
        let target = self.target(caller, target, Rights::CONTROL)?;
        let deadline = time::ticks() + deadline_ticks;
        let environment = self.environment(target);
        environment.revocation = Some(Revocation {
            wanted,
            deadline,
            allowed_ticks: deadline_ticks,
            given_back_before: environment.frames_given_back,
            delivered: false,
        });
        self.earliest_deadline = self.earliest_deadline.min(deadline);
        Ok(())
    }

    /// Closes every request whose deadline has passed, taking what is missing.
    pub(super) fn enforce_deadlines(&mut self) {
        let now = time::ticks();
        if now < self.earliest_deadline {
            return;
        }
        let expired: alloc::vec::Vec<(EnvironmentId, u64)> = self
            .environments
            .values_mut()
            .filter_map(|environment| {
                let request = environment.revocation?;
                if now < request.deadline {
                    return None;
                }
                environment.revocation = None;
                let given = environment.frames_given_back - request.given_back_before;
                Some((environment.id, request.wanted.saturating_sub(given)))
            })
            .collect();
        self.earliest_deadline = self
            .environments
            .values()
            .filter_map(|environment| environment.revocation.map(|request| request.deadline))
            .min()
            .unwrap_or(u64::MAX);
        for (id, missing) in expired {
            if missing > 0 {
                self.take_frames_by_force(id, missing);
            }
        }
    }

    /// Takes at least `wanted` frames from `id`: the root frame
    /// capabilities in the highest slots of its table first.
    fn take_frames_by_force(&mut self, id: EnvironmentId, wanted: u64) {
        let mut chosen: alloc::vec::Vec<NodeId> = alloc::vec::Vec::new();
        let mut frames = 0;
        let roots: alloc::vec::Vec<(NodeId, u64)> = self
            .capabilities
            .capabilities(id)
            .filter_map(|(_, capability)| match *capability.object {
                Object::Frame { order, .. } => {
                    let is_root = self.capabilities.node(capability.node)?.parent.is_none();
                    is_root.then_some((capability.node, 1u64 << order))
                }
                _ => None,
            })
            .collect();
        for (node, count) in roots.into_iter().rev() {
            if frames >= wanted {
                break;
            }
            chosen.push(node);
            frames += count;
        }
        self.removing(true, |capabilities, on_removed| {
            for node in chosen {
                capabilities.remove_node(node, on_removed);
            }
        });
        self.reap();
        for _ in 0..frames {
            cpu::current().count(Counter::FramesTakenByForce);
        }
        println!(
            "environment {}: revocation deadline passed; took {frames} frames by force",
            id.0
        );
    }
}
