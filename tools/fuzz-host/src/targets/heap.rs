//! The kernel heap's allocator (`exokernel/kernel-core/src/buddy.rs`) under any sequence
//! of allocations and frees: a program's requests decide what the kernel allocates and
//! frees, and in what order.
//!
//! Every block handed out is aligned as asked, inside a region and apart from every other
//! live block; the bytes counted in use are the live blocks' exactly; and once all are
//! freed, each region can be handed out whole again, so every block merged back.

use std::collections::{BTreeMap, HashMap};

use arbitrary::{Arbitrary, Unstructured};
use exo_kernel_core::buddy::{self, Buddy, Links};

use super::Target;

pub const TARGET: Target = Target {
    name: "heap",
    checks: "allocations and frees in any order: blocks aligned, inside a region, apart; bytes in use exact; every region whole again at the end",
    check,
};

const MAX_OPERATIONS: usize = 256;
const REGION_ORDER: u32 = 15;
const REGIONS: usize = 2;
const BASE: usize = 0x10_0000;

#[derive(Arbitrary, Debug)]
enum Operation {
    /// Bytes (up to 64 KiB, so some are refused) and alignment `1 << (align % 13)`.
    Allocate { size: u16, align: u8 },
    /// The live block at this position, oldest first.
    Free { which: u8 },
}

/// The free blocks' links, beside the memory.
#[derive(Default)]
struct MapLinks(HashMap<usize, (usize, usize)>);

impl Links for MapLinks {
    fn next(&self, block: usize) -> usize {
        self.0[&block].0
    }
    fn previous(&self, block: usize) -> usize {
        self.0[&block].1
    }
    fn set_next(&mut self, block: usize, next: usize) {
        self.0.entry(block).or_default().0 = next;
    }
    fn set_previous(&mut self, block: usize, previous: usize) {
        self.0.entry(block).or_default().1 = previous;
    }
}

fn check(bytes: &[u8]) {
    let mut input = Unstructured::new(bytes);
    let mut heap = Buddy::new(MapLinks::default());
    let region_bytes = 1usize << REGION_ORDER;
    let mut bitmaps = [(); REGIONS].map(|()| vec![0; buddy::bitmap_words(REGION_ORDER)]);
    for (index, bitmap) in bitmaps.iter_mut().enumerate() {
        let start = BASE + 2 * index * region_bytes;
        heap.add_region(start, REGION_ORDER, bitmap)
            .expect("a region");
    }
    // Live blocks: address -> (size, align), and their order of allocation.
    let mut live: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    let mut order: Vec<usize> = Vec::new();
    let mut in_use = 0;
    for _ in 0..MAX_OPERATIONS {
        let Ok(operation) = Operation::arbitrary(&mut input) else {
            break;
        };
        match operation {
            Operation::Allocate { size, align } => {
                let (size, align) = (usize::from(size).max(1), 1usize << (align % 13));
                let Some(block) = heap.allocate(size, align) else {
                    continue;
                };
                let end = block + buddy::block_size(size, align);
                assert_eq!(block % align, 0, "{block:#x} not aligned to {align}");
                let region = (block - BASE) / (2 * region_bytes);
                let region_start = BASE + 2 * region * region_bytes;
                assert!(
                    block >= region_start && end <= region_start + region_bytes,
                    "{block:#x}..{end:#x} outside every region"
                );
                if let Some((&other, &(size, align))) = live.range(..end).next_back() {
                    assert!(
                        other + buddy::block_size(size, align) <= block,
                        "{block:#x} overlaps {other:#x}"
                    );
                }
                live.insert(block, (size, align));
                order.push(block);
                in_use += buddy::block_size(size, align);
            }
            Operation::Free { which } => {
                if order.is_empty() {
                    continue;
                }
                let block = order.remove(usize::from(which) % order.len());
                let (size, align) = live.remove(&block).expect("a live block");
                heap.free(block, size, align);
                in_use -= buddy::block_size(size, align);
            }
        }
        assert_eq!(heap.allocated(), in_use, "bytes in use");
    }
    for (block, (size, align)) in live {
        heap.free(block, size, align);
    }
    assert_eq!(heap.allocated(), 0);
    for _ in 0..REGIONS {
        assert!(
            heap.allocate(region_bytes, 8).is_some(),
            "a region did not come back whole"
        );
    }
}
