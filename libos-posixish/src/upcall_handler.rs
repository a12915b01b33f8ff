//! Which function the kernel's upcalls enter, and registering it on the
//! exception stack.
//!
//! Bottom layer: the dispatcher itself (reason → handler) is at the top
//! (`upcall_dispatch`), which calls down into the pager and the thread
//! library; it installs itself here first thing, so that the pager (at
//! start and in a forked child) and the thread library (to ask for
//! slot-start upcalls) can register it without naming anything above them.

use exo_abi::layout::PAGE_SIZE;
use exo_abi::syscall::UpcallOptions;
use exo_abi::upcall::UpcallFrame;
use exo_abi::{Error, user};

use crate::layout::{EXCEPTION_STACK_PAGES, EXCEPTION_STACK_TOP};

static DISPATCHER: spin::Once<fn(&mut UpcallFrame)> = spin::Once::new();

/// Names the function every upcall enters (`upcall_dispatch::dispatch`).
pub(crate) fn install(dispatcher: fn(&mut UpcallFrame)) {
    DISPATCHER.call_once(|| dispatcher);
}

/// Registers the installed dispatcher on the exception stack (which must be
/// mapped), with `options` (`SCHEDULER`: also at the start of every slot).
pub(crate) fn register(options: UpcallOptions) -> Result<(), Error> {
    let dispatcher = *DISPATCHER
        .get()
        .expect("the upcall dispatcher is installed at start");
    let size = EXCEPTION_STACK_PAGES * PAGE_SIZE;
    user::set_upcall_handler_with(dispatcher, EXCEPTION_STACK_TOP, size, options)
}
