//! The kernel heap's allocator: a binary buddy allocator whose every
//! allocation and free takes a bounded number of steps, whatever the heap
//! holds and however its free blocks lie.
//!
//! A block is a power of two of bytes, at least [`MIN_BLOCK`], aligned to
//! its size within a *region*, a run of the heap's memory whose size is a
//! power of two and whose start is aligned to it. A free block of order `k`
//! (2^k bytes) sits in the list of its order; freed, it merges with its
//! *buddy* — the other half of the block of order `k + 1` that holds it —
//! if the buddy is free too, and so on up.
//!
//! What makes it bounded: each list is doubly linked, so a buddy leaves its
//! list in a few steps, and a bitmap per region says which blocks of each
//! order are free, so the allocator knows whether a buddy is free without
//! looking for it. (A singly linked list must be searched for the buddy: a
//! program that freed every other capability it had made left thousands of
//! blocks whose buddies were in use, and every later free of a block that
//! size searched them all, in whoever's call freed it — about seven guest
//! instructions a block.)
//!
//! Up to four freed blocks of each small order are kept as they are, for
//! the next allocation of their size ([`KEPT_BLOCKS`], [`KEPT_ORDER`]); a
//! free while four are kept merges as usual. Without them a
//! capability made and dropped, a page's record made and forgotten, would
//! otherwise split a large block down and merge it back up each time. They
//! count as free (`allocated` leaves them out), and are merged back before
//! an allocation would fail for want of them.
//!
//! The lists' links live in the free blocks themselves, two words at each
//! block's start; the allocator reads and writes them through [`Links`],
//! which the kernel implements on raw memory and the tests on a map. The
//! bitmaps are given with each region, outside it (a sixty-fourth of its
//! size), so that a whole region can be handed out as one block.

/// The smallest block: two links.
pub const MIN_ORDER: u32 = 4;
pub const MIN_BLOCK: usize = 1 << MIN_ORDER;

/// The largest region, and so the largest block: 8 MiB, the kernel heap's
/// largest run of frames.
pub const MAX_ORDER: u32 = 23;

/// Regions one allocator can hold: a heap of 8 GiB in 8 MiB runs.
pub const MAX_REGIONS: usize = 1024;

/// The order of the block that holds an allocation of `size` bytes aligned
/// to `align`: the block size is `size`, `align` and [`MIN_BLOCK`]'s
/// largest, rounded up to a power of two.
pub fn block_order(size: usize, align: usize) -> u32 {
    size.max(align)
        .max(MIN_BLOCK)
        .next_power_of_two()
        .trailing_zeros()
}

/// The bytes of the block that holds an allocation of `size` bytes aligned
/// to `align` (what the kernel's accounts count: `accounts.rs`).
pub fn block_size(size: usize, align: usize) -> usize {
    1 << block_order(size, align)
}

/// The 64-bit words of bitmap a region of `2^order` bytes needs: a bit for
/// each block of each order from [`MIN_ORDER`] to `order`.
pub const fn bitmap_words(order: u32) -> usize {
    bitmap_bit(order, order + 1, 0).div_ceil(64)
}

/// Where the bit of the block of order `k` at `offset` in a region of
/// `2^region` bytes is: order `k`'s bits follow the `2^(region - j)` bits of
/// every order `j` below it.
const fn bitmap_bit(region: u32, k: u32, offset: usize) -> usize {
    (1 << (region + 1 - MIN_ORDER)) - (1 << (region + 1 - k)) + (offset >> k)
}

/// The links of free blocks: each free block's `next` and `previous` in its
/// list (0: none), kept in the block itself.
pub trait Links {
    fn next(&self, block: usize) -> usize;
    fn previous(&self, block: usize) -> usize;
    fn set_next(&mut self, block: usize, next: usize);
    fn set_previous(&mut self, block: usize, previous: usize);
}

/// Why [`Buddy::add_region`] refused a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionError {
    /// Its order is below a page's or above [`MAX_ORDER`], or its start is 0
    /// or not aligned to its size.
    BadShape,
    /// Its bitmap has fewer than [`bitmap_words`] words.
    BadBitmap,
    /// It overlaps a region already held.
    Overlaps,
    /// [`MAX_REGIONS`] are held already.
    Full,
}

struct Region<'a> {
    start: usize,
    order: u32,
    /// Which blocks are free, by order ([`bitmap_bit`]).
    free: &'a mut [u64],
}

impl Region<'_> {
    fn contains(&self, address: usize) -> bool {
        address >= self.start && address - self.start < 1 << self.order
    }

    fn bit(&self, order: u32, block: usize) -> (usize, u64) {
        let bit = bitmap_bit(self.order, order, block - self.start);
        (bit / 64, 1 << (bit % 64))
    }

    fn is_free(&self, order: u32, block: usize) -> bool {
        let (word, mask) = self.bit(order, block);
        self.free[word] & mask != 0
    }

    /// Whether the block is free; if it is, marks it taken.
    fn take(&mut self, order: u32, block: usize) -> bool {
        let (word, mask) = self.bit(order, block);
        let was = self.free[word] & mask != 0;
        self.free[word] &= !mask;
        was
    }

    fn mark(&mut self, order: u32, block: usize, free: bool) {
        let (word, mask) = self.bit(order, block);
        if free {
            self.free[word] |= mask;
        } else {
            self.free[word] &= !mask;
        }
    }
}

/// The allocator: a free list per order and the regions it hands out.
pub struct Buddy<'a, L: Links> {
    /// The first free block of each order (0: none).
    heads: [usize; MAX_ORDER as usize + 1],
    /// Bit `k` set: order `k`'s list is not empty.
    nonempty: u32,
    /// Bytes in the lists' blocks of [`LARGE_ORDER`] or larger.
    large_free: usize,
    /// The regions, sorted by start: the first `region_count`.
    regions: [Option<Region<'a>>; MAX_REGIONS],
    region_count: usize,
    /// Bytes in blocks handed out.
    allocated: usize,
    /// Blocks of the orders up to [`KEPT_ORDER`] freed but not merged: the
    /// first of each order (a list through their `next` links) and how many.
    kept: [usize; KEPT_ORDER as usize + 1],
    kept_count: [usize; KEPT_ORDER as usize + 1],
    links: L,
}

/// The largest order of which freed blocks are kept as they are, up to
/// [`KEPT_BLOCKS`] of each (module comment): at most 32 KiB in all. Without
/// them a map + touch + unmap, which makes and drops a capability and a
/// page's record, cost 4,082 guest instructions; with them 3,326.
pub const KEPT_ORDER: u32 = 12;
/// The most freed blocks of one order kept as they are.
pub const KEPT_BLOCKS: usize = 4;

/// The order from which free blocks count as large
/// ([`Buddy::free_in_large_blocks`]): 4 KiB, the largest block a request
/// makes the kernel allocate.
pub const LARGE_ORDER: u32 = 12;

impl<L: Links> core::fmt::Debug for Buddy<'_, L> {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("Buddy")
            .field("regions", &self.region_count)
            .field("allocated", &self.allocated)
            .field("kept", &self.kept_count)
            .finish_non_exhaustive()
    }
}

impl<'a, L: Links> Buddy<'a, L> {
    pub const fn new(links: L) -> Self {
        Self {
            heads: [0; MAX_ORDER as usize + 1],
            nonempty: 0,
            large_free: 0,
            regions: [const { None }; MAX_REGIONS],
            region_count: 0,
            allocated: 0,
            kept: [0; KEPT_ORDER as usize + 1],
            kept_count: [0; KEPT_ORDER as usize + 1],
            links,
        }
    }

    /// Bytes in blocks handed out and not yet freed.
    pub fn allocated(&self) -> usize {
        self.allocated
    }

    /// Bytes free in blocks of [`LARGE_ORDER`] or larger: what allocations
    /// of up to 4 KiB can have however the smaller free blocks lie.
    pub fn free_in_large_blocks(&self) -> usize {
        self.large_free
    }

    /// Takes the region of `2^order` bytes at `start`, with `free` as its
    /// bitmap (kept outside the region; zeroed here).
    pub fn add_region(
        &mut self,
        start: usize,
        order: u32,
        free: &'a mut [u64],
    ) -> Result<(), RegionError> {
        if !(12..=MAX_ORDER).contains(&order) || start == 0 || !start.is_multiple_of(1 << order) {
            return Err(RegionError::BadShape);
        }
        if free.len() < bitmap_words(order) {
            return Err(RegionError::BadBitmap);
        }
        if self.region_count == MAX_REGIONS {
            return Err(RegionError::Full);
        }
        // Its place in the sorted list, clear of both neighbours.
        let size = 1usize << order;
        let place = self.regions[..self.region_count]
            .partition_point(|region| region.as_ref().is_some_and(|r| r.start < start));
        let before = place.checked_sub(1).and_then(|index| self.region(index));
        let after = self.region(place);
        if before.is_some_and(|region| region.start + (1 << region.order) > start)
            || after.is_some_and(|region| start + size > region.start)
        {
            return Err(RegionError::Overlaps);
        }
        free.fill(0);
        self.regions[place..=self.region_count].rotate_right(1);
        self.regions[place] = Some(Region { start, order, free });
        self.region_count += 1;
        let Parts {
            mut lists,
            region,
            links,
        } = self.parts(place);
        lists.push(links, region, order, start);
        Ok(())
    }

    /// A block for `size` bytes aligned to `align`, or `None` if no free block
    /// is large enough.
    pub fn allocate(&mut self, size: usize, align: usize) -> Option<usize> {
        let order = block_order(size, align);
        if order > MAX_ORDER {
            return None;
        }
        let block = match self.take_kept(order) {
            Some(block) => block,
            None => match self.split_off(order) {
                Some(block) => block,
                None => {
                    self.merge_kept();
                    self.split_off(order)?
                }
            },
        };
        self.allocated += 1 << order;
        Some(block)
    }

    /// Gives back the block at `block` that [`Self::allocate`] gave for `size`
    /// bytes aligned to `align`.
    pub fn free(&mut self, block: usize, size: usize, align: usize) {
        let order = block_order(size, align);
        self.allocated -= 1 << order;
        if order <= KEPT_ORDER && self.kept_count[order as usize] < KEPT_BLOCKS {
            self.links.set_next(block, self.kept[order as usize]);
            self.kept[order as usize] = block;
            self.kept_count[order as usize] += 1;
        } else {
            self.merge(block, order);
        }
    }

    /// A kept block of order `order`, if there is one.
    fn take_kept(&mut self, order: u32) -> Option<usize> {
        let k = order as usize;
        if k >= self.kept.len() || self.kept_count[k] == 0 {
            return None;
        }
        let block = self.kept[k];
        self.kept[k] = self.links.next(block);
        self.kept_count[k] -= 1;
        Some(block)
    }

    /// Gives every kept block back to the lists, merged.
    fn merge_kept(&mut self) {
        for order in 0..=KEPT_ORDER {
            while let Some(block) = self.take_kept(order) {
                self.merge(block, order);
            }
        }
    }

    /// A block of order `order` from the lists: the first of the smallest
    /// order that has one, split down.
    fn split_off(&mut self, order: u32) -> Option<usize> {
        let found = (self.nonempty >> order).trailing_zeros();
        if found == u32::BITS {
            return None;
        }
        let mut k = order + found;
        let block = self.heads[k as usize];
        let index = self.region_of(block).expect("a free block is in a region");
        let Parts {
            mut lists,
            region,
            links,
        } = self.parts(index);
        lists.unlink(links, region, k, block);
        // The upper halves are free blocks of the orders below.
        while k > order {
            k -= 1;
            lists.push(links, region, k, block + (1 << k));
        }
        Some(block)
    }

    /// Puts free `block` of order `k` in the lists, merged with its buddy
    /// while that is free too.
    fn merge(&mut self, block: usize, mut k: u32) {
        let index = self.region_of(block).expect("a block the heap gave");
        let Parts {
            mut lists,
            region,
            links,
        } = self.parts(index);
        let mut block = block;
        while k < region.order {
            let buddy = region.start + ((block - region.start) ^ (1 << k));
            if !region.take(k, buddy) {
                break;
            }
            lists.unlink_taken(links, k, buddy);
            block = block.min(buddy);
            k += 1;
        }
        lists.push(links, region, k, block);
    }

    fn region(&self, index: usize) -> Option<&Region<'a>> {
        self.regions.get(index)?.as_ref()
    }

    /// The index of the region holding `address`.
    fn region_of(&self, address: usize) -> Option<usize> {
        let after = self.regions[..self.region_count]
            .partition_point(|region| region.as_ref().is_some_and(|r| r.start <= address));
        let index = after.checked_sub(1)?;
        self.region(index)?.contains(address).then_some(index)
    }
}

/// The parts of the allocator one allocation or free works on: the lists,
/// one region, the links.
struct Parts<'p, 'a, L> {
    lists: Lists<'p>,
    region: &'p mut Region<'a>,
    links: &'p mut L,
}

impl<'a, L: Links> Buddy<'a, L> {
    fn parts(&mut self, region: usize) -> Parts<'_, 'a, L> {
        Parts {
            lists: Lists {
                heads: &mut self.heads,
                nonempty: &mut self.nonempty,
                large_free: &mut self.large_free,
            },
            region: self.regions[region].as_mut().expect("its region"),
            links: &mut self.links,
        }
    }
}

/// The heads of the free lists and which are not empty.
struct Lists<'p> {
    heads: &'p mut [usize; MAX_ORDER as usize + 1],
    nonempty: &'p mut u32,
    large_free: &'p mut usize,
}

impl Lists<'_> {
    /// Puts free `block` of order `k`, in `region`, first in its list.
    fn push(&mut self, links: &mut impl Links, region: &mut Region<'_>, k: u32, block: usize) {
        debug_assert!(!region.is_free(k, block), "a block freed twice");
        region.mark(k, block, true);
        let head = self.heads[k as usize];
        links.set_next(block, head);
        links.set_previous(block, 0);
        if head != 0 {
            links.set_previous(head, block);
        }
        self.heads[k as usize] = block;
        *self.nonempty |= 1 << k;
        if k >= LARGE_ORDER {
            *self.large_free += 1 << k;
        }
    }

    /// Takes free `block` of order `k`, in `region`, out of its list.
    fn unlink(&mut self, links: &mut impl Links, region: &mut Region<'_>, k: u32, block: usize) {
        region.mark(k, block, false);
        self.unlink_taken(links, k, block);
    }

    /// Takes `block` of order `k`, already marked taken, out of its list.
    fn unlink_taken(&mut self, links: &mut impl Links, k: u32, block: usize) {
        let (next, previous) = (links.next(block), links.previous(block));
        if previous == 0 {
            self.heads[k as usize] = next;
        } else {
            links.set_next(previous, next);
        }
        if next != 0 {
            links.set_previous(next, previous);
        }
        if self.heads[k as usize] == 0 {
            *self.nonempty &= !(1 << k);
        }
        if k >= LARGE_ORDER {
            *self.large_free -= 1 << k;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;
    use std::collections::{BTreeMap, HashMap};
    use std::vec;
    use std::vec::Vec;

    /// Links kept beside the memory, counting every read and write.
    #[derive(Default)]
    struct MapLinks {
        links: HashMap<usize, (usize, usize)>,
        touched: Cell<usize>,
    }

    impl MapLinks {
        fn touch(&self) {
            self.touched.set(self.touched.get() + 1);
        }
    }

    impl Links for MapLinks {
        fn next(&self, block: usize) -> usize {
            self.touch();
            self.links[&block].0
        }
        fn previous(&self, block: usize) -> usize {
            self.touch();
            self.links[&block].1
        }
        fn set_next(&mut self, block: usize, next: usize) {
            self.touch();
            self.links.entry(block).or_default().0 = next;
        }
        fn set_previous(&mut self, block: usize, previous: usize) {
            self.touch();
            self.links.entry(block).or_default().1 = previous;
        }
    }

    const REGION: u32 = 16;
    const BASE: usize = 0x4000_0000;

    /// Regions of `orders`, from `BASE` up in the kernel's order (rising), each
    /// aligned to the largest and a region's room apart.
    fn heap(orders: &[u32]) -> Buddy<'static, MapLinks> {
        let mut heap = Buddy::new(MapLinks::default());
        let step = 2 << orders.iter().max().unwrap();
        for (index, &order) in orders.iter().enumerate() {
            // Not zeroed, as frames fresh from the allocator are not.
            let bitmap = vec![u64::MAX; bitmap_words(order)].leak();
            heap.add_region(BASE + index * step, order, bitmap).unwrap();
        }
        heap
    }

    fn region_bytes(heap: &Buddy<'_, MapLinks>) -> usize {
        heap.regions
            .iter()
            .flatten()
            .map(|r| 1usize << r.order)
            .sum()
    }

    /// Every free block, by order, from the lists (walked both ways).
    fn free_blocks(heap: &Buddy<'_, MapLinks>) -> BTreeMap<usize, u32> {
        let mut blocks = BTreeMap::new();
        for k in 0..=MAX_ORDER {
            let mut previous = 0;
            let mut block = heap.heads[k as usize];
            assert_eq!(heap.nonempty & (1 << k) != 0, block != 0, "order {k}'s bit");
            while block != 0 {
                assert_eq!(heap.links.previous(block), previous);
                assert_eq!(block % (1 << k), 0, "a block aligned to its size");
                let region = heap.region(heap.region_of(block).unwrap()).unwrap();
                assert!(
                    region.contains(block + (1 << k) - 1),
                    "a block inside its region"
                );
                assert!(region.is_free(k, block), "a listed block marked free");
                assert!(blocks.insert(block, k).is_none(), "a block listed twice");
                previous = block;
                block = heap.links.next(block);
            }
        }
        blocks
    }

    /// The lists and bitmaps agree, no two free buddies are left unmerged,
    /// and free, kept and handed-out blocks add up to the regions.
    fn check(heap: &Buddy<'_, MapLinks>) {
        let blocks = free_blocks(heap);
        let mut marked = 0;
        for region in heap.regions.iter().flatten() {
            marked += region
                .free
                .iter()
                .map(|word| word.count_ones())
                .sum::<u32>();
        }
        assert_eq!(
            marked as usize,
            blocks.len(),
            "every marked block is listed"
        );
        for (&block, &k) in &blocks {
            let region = heap.region(heap.region_of(block).unwrap()).unwrap();
            if k < region.order {
                let buddy = region.start + ((block - region.start) ^ (1 << k));
                assert_ne!(blocks.get(&buddy), Some(&k), "free buddies left apart");
            }
        }
        let mut kept = 0;
        for order in 0..=KEPT_ORDER {
            let mut block = heap.kept[order as usize];
            for _ in 0..heap.kept_count[order as usize] {
                assert!(!blocks.contains_key(&block), "a kept block listed free");
                kept += 1usize << order;
                block = heap.links.next(block);
            }
        }
        let free: usize = blocks.values().map(|&k| 1usize << k).sum();
        assert_eq!(free + kept + heap.allocated(), region_bytes(heap));
        let large: usize = blocks
            .values()
            .filter(|&&k| k >= LARGE_ORDER)
            .map(|&k| 1usize << k)
            .sum();
        assert_eq!(heap.free_in_large_blocks(), large, "free in large blocks");
    }

    #[test]
    fn sizes_round_up_to_a_power_of_two_of_at_least_two_links() {
        assert_eq!(block_size(1, 1), 16);
        assert_eq!(block_size(8, 8), 16);
        assert_eq!(block_size(17, 8), 32);
        assert_eq!(block_size(128, 8), 128);
        assert_eq!(block_size(24, 64), 64);
        assert_eq!(block_size(4096, 4096), 4096);
    }

    #[test]
    fn the_bitmap_holds_every_order() {
        // Order 4's blocks first, then order 5's, ..., the region's one last.
        assert_eq!(bitmap_bit(12, 4, 0), 0);
        assert_eq!(bitmap_bit(12, 5, 0), 256);
        assert_eq!(bitmap_bit(12, 12, 0), 510);
        assert_eq!(bitmap_words(12), 8);
        assert_eq!(bitmap_words(23), 1 << 14);
        for region in 12..=MAX_ORDER {
            // The last bit, the region's own, is the last the bitmap holds.
            assert_eq!(bitmap_bit(region, region, 0) / 64, bitmap_words(region) - 1);
        }
    }

    #[test]
    fn a_region_is_handed_out_whole_and_comes_back_whole() {
        for order in [12, REGION, MAX_ORDER] {
            let mut heap = heap(&[order]);
            let whole = heap.allocate(1 << order, 8).unwrap();
            assert_eq!(whole, BASE);
            assert_eq!(heap.allocate(16, 8), None);
            heap.free(whole, 1 << order, 8);
            check(&heap);
            heap.merge_kept();
            assert_eq!(
                free_blocks(&heap).into_iter().collect::<Vec<_>>(),
                [(BASE, order)]
            );
        }
        let mut heap = heap(&[REGION]);
        let blocks: Vec<usize> = (0..1 << (REGION - 4))
            .map(|_| heap.allocate(16, 8).unwrap())
            .collect();
        assert_eq!(heap.allocate(16, 8), None);
        check(&heap);
        for block in blocks {
            heap.free(block, 16, 8);
        }
        check(&heap);
        assert_eq!(heap.kept_count[4], KEPT_BLOCKS, "four of them are kept");
        // An allocation that needs them merges them back first.
        let whole = heap.allocate(1 << REGION, 8).unwrap();
        heap.free(whole, 1 << REGION, 8);
        assert_eq!(
            free_blocks(&heap).into_iter().collect::<Vec<_>>(),
            [(BASE, REGION)]
        );
    }

    #[test]
    fn regions_that_overlap_or_are_badly_shaped_are_refused() {
        let mut heap = heap(&[REGION]);
        let next = BASE + (1 << REGION);
        for (start, order, words, refusal) in [
            (BASE, REGION, bitmap_words(REGION), RegionError::Overlaps),
            (next - 4096, 12, 8, RegionError::Overlaps),
            (
                BASE - (2 << REGION),
                REGION + 2,
                bitmap_words(REGION + 2),
                RegionError::BadShape,
            ),
            (
                BASE + 16,
                REGION,
                bitmap_words(REGION),
                RegionError::BadShape,
            ),
            (next, 11, 8, RegionError::BadShape),
            (
                next,
                MAX_ORDER + 1,
                bitmap_words(MAX_ORDER),
                RegionError::BadShape,
            ),
            (0, REGION, bitmap_words(REGION), RegionError::BadShape),
            (next, REGION, 1, RegionError::BadBitmap),
            // A larger region needs a larger bitmap.
            (
                BASE - (2 << REGION),
                REGION + 1,
                bitmap_words(REGION),
                RegionError::BadBitmap,
            ),
        ] {
            let bitmap = vec![0; words].leak();
            assert_eq!(heap.add_region(start, order, bitmap), Err(refusal));
        }
        // Below, between and above: all found again by search.
        for start in [BASE - (1 << REGION), next + (1 << REGION), next] {
            let bitmap = vec![0; bitmap_words(REGION)].leak();
            assert_eq!(heap.add_region(start, REGION, bitmap), Ok(()));
        }
        let blocks: Vec<usize> = (0..4)
            .map(|_| heap.allocate(1 << REGION, 8).unwrap())
            .collect();
        let mut sorted = blocks.clone();
        sorted.sort();
        let expected: Vec<usize> = (0..4)
            .map(|i| BASE - (1 << REGION) + i * (1 << REGION))
            .collect();
        assert_eq!(sorted, expected);
        for block in blocks {
            heap.free(block, 1 << REGION, 8);
        }
        check(&heap);
    }

    /// What made the allocator bounded: a free whose buddy is listed among
    /// 252 free blocks of its size, or is in use, reads and writes a few
    /// links, never the list; so does an allocation.
    #[test]
    fn a_free_beside_many_unmerged_blocks_touches_only_its_neighbours() {
        let mut heap = heap(&[REGION]);
        let count = 1 << (REGION - 7);
        let blocks: Vec<usize> = (0..count).map(|_| heap.allocate(128, 8).unwrap()).collect();
        let mut sorted = blocks.clone();
        sorted.sort();
        // The even blocks by address go: every freed block's buddy is in use.
        for block in sorted.iter().step_by(2) {
            heap.free(*block, 128, 8);
        }
        check(&heap);
        assert_eq!(free_blocks(&heap).len() + KEPT_BLOCKS, count / 2);
        // Half the region is free, none of it in a large block.
        assert_eq!(heap.free_in_large_blocks(), 0);
        heap.links.touched.set(0);
        // Its buddy, the one before it, is listed: it merges once.
        heap.free(sorted[count - 1], 128, 8);
        assert!(
            heap.links.touched.get() <= 12,
            "{} links",
            heap.links.touched.get()
        );
        assert_eq!(free_blocks(&heap).get(&sorted[count - 2]), Some(&8));
        heap.links.touched.set(0);
        // Its buddy is kept, so in use to the lists: no merge.
        heap.free(sorted[1], 128, 8);
        assert!(
            heap.links.touched.get() <= 12,
            "{} links",
            heap.links.touched.get()
        );
        for _ in 0..KEPT_BLOCKS {
            heap.allocate(128, 8).unwrap();
        }
        heap.links.touched.set(0);
        assert!(heap.allocate(128, 8).is_some());
        assert!(
            heap.links.touched.get() <= 12,
            "{} links",
            heap.links.touched.get()
        );
        check(&heap);
    }

    #[test]
    fn a_block_freed_is_handed_out_again_without_splitting() {
        let mut heap = heap(&[REGION]);
        let block = heap.allocate(128, 8).unwrap();
        heap.free(block, 128, 8);
        let lists = heap.heads;
        assert_eq!(heap.allocate(100, 8), Some(block));
        assert_eq!(heap.heads, lists, "no list changed");
        check(&heap);
    }

    /// Random allocations and frees of random sizes and alignments, in
    /// regions of four sizes: blocks never overlap, stay inside their
    /// regions, and every check holds throughout; freed all, the regions are
    /// whole again.
    #[test]
    fn random_use_keeps_every_invariant() {
        let mut heap = heap(&[REGION, 12, REGION + 2, 13]);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut random = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut live: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
        for step in 0..20_000 {
            if random() % 3 != 0 {
                let size = (1 + (random() % 3000) as usize) >> (random() % 8);
                let align = 1 << (random() % 7);
                if let Some(block) = heap.allocate(size, align) {
                    assert_eq!(block % align, 0);
                    let end = block + block_size(size, align);
                    let region = heap.region(heap.region_of(block).unwrap()).unwrap();
                    assert!(region.contains(end - 1), "{block:#x} leaves its region");
                    if let Some((&other, &(other_size, other_align))) =
                        live.range(..end).next_back()
                    {
                        assert!(other + block_size(other_size, other_align) <= block);
                    }
                    live.insert(block, (size, align));
                }
            } else if let Some(&block) = live.keys().nth(random() as usize % live.len().max(1)) {
                let (size, align) = live.remove(&block).unwrap();
                heap.free(block, size, align);
            }
            if step % 1000 == 0 {
                check(&heap);
            }
        }
        for (block, (size, align)) in live {
            heap.free(block, size, align);
        }
        check(&heap);
        assert_eq!(heap.allocated(), 0);
        heap.merge_kept();
        let whole: Vec<(usize, u32)> = free_blocks(&heap).into_iter().collect();
        let regions: Vec<(usize, u32)> = heap
            .regions
            .iter()
            .flatten()
            .map(|r| (r.start, r.order))
            .collect();
        assert_eq!(whole, regions);
    }
}
