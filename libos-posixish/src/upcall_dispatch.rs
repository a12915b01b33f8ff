//! The upcall dispatcher: every upcall of the process enters here and goes
//! to the handler for its reason — a fault or a revocation request to the
//! pager, a slot start to the thread library — and a fault nobody can
//! resolve ends the process.
//!
//! Top layer: it calls down into `paging`, `thread` and `runtime`; nothing
//! below names it (it installs itself in `upcall_handler`, which registers it).

use exo_abi::upcall::{UpcallFrame, UpcallReason};

use crate::{paging, println, runtime, thread, upcall_handler};

/// Makes [`dispatch`] the function upcalls enter, before anything registers it.
pub(crate) fn install() {
    upcall_handler::install(dispatch);
}

/// Reason → handler.
fn dispatch(frame: &mut UpcallFrame) {
    match frame.reason() {
        Some(UpcallReason::Fault) => on_fault(frame),
        Some(UpcallReason::SliceStart) => thread::on_slice_start(frame),
        // The kernel asks for frames back: the pager gives back what it can
        // rebuild for nothing; the kernel's deadline takes the rest.
        Some(UpcallReason::RevokeFrames) => {
            paging::give_back(frame.info[0]);
        }
        None => {}
    }
}

/// A fault: the pager resolves it, or the process ends like a segmentation
/// fault (status 139).
fn on_fault(frame: &UpcallFrame) {
    let [vector, _, address] = frame.info;
    if let Err(why) = paging::on_fault(frame) {
        println!(
            "segmentation fault: {why}: vector {vector}, address {address:#x}, rip {:#x}",
            frame.registers.rip
        );
        runtime::exit(paging::SEGFAULT_STATUS)
    }
}
