//! A child this process is building or holds: its environment and what
//! this process keeps for it. Below both `process` (spawn, wait, kill) and
//! `fork`, and below `inherit`, which fills it in.

use alloc::vec::Vec;

use exo_abi::mapping::MapFlags;
use exo_abi::{Handle, user};

use crate::{Errno, fs, raw, scratch};

/// A child this process spawned or forked and has not reaped yet.
#[derive(Debug)]
pub(crate) struct Child {
    pub(crate) pid: u64,
    pub(crate) environment: Handle,
    /// Capabilities this process holds for the child: its frames, and the
    /// read-only copies of the boot file system's capabilities it granted.
    pub(crate) frames: Vec<Handle>,
    pub(crate) exit_status_page: Handle,
    /// The pager's units a forked child shares (`paging::release_shared`).
    pub(crate) shared: Vec<Handle>,
    /// Open files and pipe ends counted one holder more for the child while
    /// it was built: (close operation, object), given back if it never starts.
    pub(crate) handed_on: Vec<(u64, [u64; 3])>,
}

impl Child {
    pub(crate) fn new(environment: Handle) -> Self {
        Self {
            pid: 0,
            environment,
            frames: Vec::new(),
            exit_status_page: Handle::SELF_ENVIRONMENT, // replaced when built
            shared: Vec::new(),
            handed_on: Vec::new(),
        }
    }

    /// Gives up a child that could not be built or started: the holders
    /// counted for it go back, then everything `release` frees.
    pub(crate) fn abandon(self) {
        fs::close_handed_on(&self.handed_on);
        self.release();
    }

    /// Frees what this process held for the child (the environment is gone
    /// or about to be).
    pub(crate) fn release(self) {
        let _ = user::environment_destroy(self.environment);
        for capability in self.frames {
            // SAFETY: what was made for the child: fresh frames this process
            // mapped only at a scratch `Window` (unmapped when it went),
            // copies of our capabilities for the child to map (we map
            // through the originals), endpoints and environment capabilities.
            #[allow(unsafe_code)]
            let _ = unsafe { raw::drop_child_capability(capability) };
        }
        crate::paging::release_shared(&self.shared);
    }

    /// A zeroed frame holding `contents`, owned by this process for the child.
    pub(crate) fn fresh_page(&mut self, contents: &[u8]) -> Result<Handle, Errno> {
        let frame = scratch::filled_frame(contents)?;
        self.frames.push(frame);
        Ok(frame)
    }

    /// Maps a fresh page holding `contents` at `address` in the child.
    pub(crate) fn map_page(
        &mut self,
        address: u64,
        contents: &[u8],
        flags: MapFlags,
    ) -> Result<Handle, Errno> {
        let frame = self.fresh_page(contents)?;
        user::map(frame, self.environment, address, flags)?;
        Ok(frame)
    }
}
