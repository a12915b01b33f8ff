//! Ring index arithmetic (`exokernel/abi/src/net.rs`'s `Ring`): the kernel applies it to
//! the producer and consumer indices an environment writes into shared memory.

use arbitrary::{Arbitrary, Unstructured};
use exo_abi::layout::PAGE_SIZE;
use exo_abi::net::{
    MAX_RING_ORDER, MIN_RING_ORDER, Ring, SLOT_SIZE, control, ring_entries, rx_slot_offset,
    tx_slot_offset,
};

use super::Target;

pub const TARGET: Target = Target {
    name: "ring",
    checks: "any producer and consumer give a count of at most the entries, or a refusal; any index's slot lies within the binding's frames",
    check,
};

#[derive(Arbitrary, Debug)]
struct Indices {
    order: u32,
    any_entries: u32,
    producer: u32,
    consumer: u32,
    index: u32,
}

fn check(bytes: &[u8]) {
    let Ok(input) = Indices::arbitrary_take_rest(Unstructured::new(bytes)) else {
        return;
    };
    assert_eq!(
        Ring::new(input.any_entries).is_some(),
        input.any_entries.is_power_of_two()
    );
    let order = MIN_RING_ORDER + input.order % (MAX_RING_ORDER - MIN_RING_ORDER + 1);
    let ring = Ring::new(ring_entries(order)).expect("ring_entries is a power of two");
    let entries = ring.entries();
    assert!(ring.slot(input.index) < entries);
    assert_eq!(
        ring.slot(input.index.wrapping_add(entries)),
        ring.slot(input.index)
    );
    // Whatever index the other side wrote, the slot and descriptor it leads to are the
    // binding's own memory.
    let slot = ring.slot(input.index);
    let run_bytes = PAGE_SIZE << order;
    assert!(rx_slot_offset(slot) >= PAGE_SIZE);
    assert!(rx_slot_offset(slot) + SLOT_SIZE <= tx_slot_offset(entries, 0));
    assert!(tx_slot_offset(entries, slot) + SLOT_SIZE <= run_bytes);
    let descriptor = 4 * u64::from(slot);
    assert!(control::RX_DESCRIPTORS + descriptor + 4 <= control::TX_DESCRIPTORS);
    assert!(control::TX_DESCRIPTORS + descriptor + 4 <= PAGE_SIZE);
    let (producer, consumer) = (input.producer, input.consumer);
    match (
        ring.filled(producer, consumer),
        ring.free(producer, consumer),
    ) {
        (Some(filled), Some(free)) => {
            assert!(filled <= entries);
            assert_eq!(filled + free, entries);
            assert_eq!(consumer.wrapping_add(filled), producer);
        }
        (None, None) => assert!(producer.wrapping_sub(consumer) > entries),
        other => panic!("filled and free disagree: {other:?}"),
    }
}
