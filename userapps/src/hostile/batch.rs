//! Mapping one frame at many addresses with `MapBatch`, a full batch (`MAX_BATCH`
//! requests, 12 KiB) a call: the way to make the kernel keep the most mapping records for
//! the fewest frames.
//!
//! The requests are built in a static buffer: the bare runtime has no heap, and a spawned
//! child's stack (16 KiB) cannot spare 12 KiB. Each environment has its own copy of the
//! static; only one batch is built at a time in it (a second, from an upcall handler
//! running meanwhile, is refused with a panic).
#![allow(unsafe_code)] // the static buffer of atomics, read as `MapRequest`s

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use exo_abi::mapping::{MAX_BATCH, MapFlags, MapRequest};
use exo_abi::{Error, Handle, user};

const WORDS_PER_REQUEST: usize = size_of::<MapRequest>() / 8;
const _: () = assert!(WORDS_PER_REQUEST * 8 == size_of::<MapRequest>());
const _: () = assert!(align_of::<MapRequest>() == align_of::<AtomicU64>());

/// `MAX_BATCH` requests, as words: frame, address, flags.
static REQUESTS: [AtomicU64; MAX_BATCH as usize * WORDS_PER_REQUEST] =
    [const { AtomicU64::new(0) }; MAX_BATCH as usize * WORDS_PER_REQUEST];
static IN_USE: AtomicBool = AtomicBool::new(false);

/// Maps `frame` at each address of `addresses` in `environment` with `flags`, a full
/// batch a call, until the addresses run out or the kernel refuses one; returns how many
/// were mapped and the refusal, if any.
pub fn map_frame_at(
    environment: Handle,
    frame: Handle,
    addresses: impl IntoIterator<Item = u64>,
    flags: MapFlags,
) -> (u64, Result<(), Error>) {
    assert!(
        !IN_USE.swap(true, Ordering::Acquire),
        "the batch buffer is in use"
    );
    let mut addresses = addresses.into_iter().peekable();
    let mut mapped = 0;
    let mut outcome = Ok(());
    while addresses.peek().is_some() {
        let mut count = 0;
        for (index, address) in (&mut addresses).take(MAX_BATCH as usize).enumerate() {
            let words = &REQUESTS[index * WORDS_PER_REQUEST..];
            words[0].store(frame.to_raw(), Ordering::Relaxed);
            words[1].store(address, Ordering::Relaxed);
            words[2].store(flags.bits(), Ordering::Relaxed);
            count += 1;
        }
        // SAFETY: `MapRequest` is `repr(C)` of three `u64`s and `AtomicU64` has the size
        // and alignment of `u64` (asserted above), so the first `count` requests' words
        // are `count` valid `MapRequest`s. Nothing writes them while the slice lives:
        // `IN_USE` keeps out every other writer in this environment.
        let requests =
            unsafe { core::slice::from_raw_parts(REQUESTS.as_ptr().cast::<MapRequest>(), count) };
        let (done, result) = user::map_batch(environment, requests);
        mapped += done as u64;
        if result.is_err() {
            outcome = result;
            break;
        }
    }
    IN_USE.store(false, Ordering::Release);
    (mapped, outcome)
}
