//! Whether everything an attack took came back: the kernel's free frames and kernel
//! memory in use, and what the caller itself is charged, against a baseline.
//!
//! Take the baseline when the caller is in the state it will be in after the attack:
//! anything the caller keeps for good (the page tables of its spawn scratch page, say, or
//! a capability table grown to hold a child's frames) must exist already, so spawn and
//! destroy a child of the same shape first. Then the counts must come back exactly.

use exo_abi::syscall::EnvironmentAccount;
use exo_abi::{Handle, user};

use super::witness::Witness;
use crate::spawn::Child;
use crate::{check, println};

/// The counts that must come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Baseline {
    /// The kernel's free frames.
    pub free_frames: u64,
    /// Bytes of the kernel heap in use.
    pub kernel_bytes_in_use: u64,
    /// Frames charged to the caller.
    pub frames_charged: u64,
    /// Kernel memory charged to the caller.
    pub kernel_bytes_charged: u64,
    /// CPU slots charged to the caller.
    pub slots_charged: u64,
}

impl Baseline {
    /// The counts now.
    pub fn take() -> Self {
        let own = |account| user::environment_info(Handle::SELF_ENVIRONMENT, account);
        Self {
            free_frames: user::frame_counts().0,
            kernel_bytes_in_use: user::kernel_memory().0,
            frames_charged: own(EnvironmentAccount::FramesCharged).unwrap_or(u64::MAX),
            kernel_bytes_charged: own(EnvironmentAccount::KernelBytesCharged).unwrap_or(u64::MAX),
            slots_charged: own(EnvironmentAccount::SlotsCharged).unwrap_or(u64::MAX),
        }
    }

    /// The counts for a parent that runs a witness beside children of `child_quota`
    /// frames, taken once one of each has come and gone: what the parent keeps for good
    /// after spawning (its scratch page's tables, a table grown to hold a child's frames)
    /// then exists already.
    pub fn after_a_witness_and_a_child(child_quota: u64) -> Self {
        let warm_up = Witness::start().expect("start a witness");
        Child::create(child_quota)
            .expect("create a child")
            .destroy();
        warm_up.stop();
        Self::take()
    }

    /// Prints the counts now beside these, as `NAME: after WHAT: free frames A -> B, ...`,
    /// and returns whether every one came back.
    pub fn came_back(&self, name: &str, after: &str) -> bool {
        let now = Self::take();
        println!(
            "{name}: after {after}: free frames {} -> {}, kernel memory in use {} -> {} bytes, \
             own frames charged {} -> {}, own kernel bytes charged {} -> {}, own slots charged \
             {} -> {}",
            self.free_frames,
            now.free_frames,
            self.kernel_bytes_in_use,
            now.kernel_bytes_in_use,
            self.frames_charged,
            now.frames_charged,
            self.kernel_bytes_charged,
            now.kernel_bytes_charged,
            self.slots_charged,
            now.slots_charged
        );
        now == *self
    }

    /// As [`came_back`](Self::came_back), then panics if anything did not.
    pub fn expect_came_back(&self, name: &str, after: &str) {
        assert!(
            self.came_back(name, after),
            "frames or kernel memory did not all come back after {after}"
        );
        check::ok(format_args!(
            "every frame and byte of kernel memory came back after {after}"
        ));
    }
}
