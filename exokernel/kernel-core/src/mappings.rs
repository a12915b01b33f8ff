//! Which pages each capability maps, so that revoking it can unmap them.
//!
//! Every user mapping is made through a frame capability. When that
//! capability goes (revoked, dropped, taken by force), every page mapped
//! through it must be unmapped, in whichever environment it was mapped; and
//! when a page is unmapped by hand, its record must go.
//!
//! Two directions are needed. *Page → capability* is kept in the page
//! table itself: each user entry carries a **tag**, the node's index plus
//! one, in 14 bits the processor ignores ([`tag_of`]); the capability space
//! turns the index back into the live node (`CapabilitySpace::node_at_index`),
//! so `Unmap` and `Protect` find the node in a few loads beside the entry
//! they change. Pages mapped through a node whose index needs more bits
//! carry tag 0 and are found here instead, in a B-tree by page.
//!
//! *Capability → pages* is this index: runs of pages, one per `Map`
//! request, by node. A library OS maps sixteen pages at a time, each run
//! through a capability of its own, so most nodes have exactly one run: it
//! is kept in a side table indexed by [`NodeId::index`], found and changed in
//! a few loads and stores. A node's further runs — a program's image mapped
//! into many children, a run split by unmapping its middle — go into a
//! B-tree (under QEMU's emulation a B-tree update costs a couple of thousand
//! cycles, several times the rest of a `Map`).
//!
//! Callers say which node a page was mapped through (they read its tag);
//! the index trusts them, as the tags and the index change together.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::btree::GiveBackWhenEmpty;
use crate::caps::{CapabilitySpace, EnvironmentId, NodeId};
use crate::memory_map::FRAME_SIZE;

/// The runs of pages mapped through each capability node. Never more runs
/// than pages, so a charge per page pays for the B-tree's; a chunk of the
/// side table is kept by the runs in it, each paid for with its node.
#[derive(Debug, Default)]
pub struct MappingIndex {
    /// The side table, in chunks of [`CHUNK`] node indices: for each node,
    /// one run mapped through it, or an empty run. A chunk exists while it
    /// holds a run, so its memory comes back when the runs go.
    chunks: ChunkList,
    /// Every other run: (node, environment, first page) → pages.
    other_runs: BTreeMap<(NodeId, EnvironmentId, u64), u64>,
    /// Each page mapped through a node too high to tag: (environment, page)
    /// → node.
    untagged: BTreeMap<(EnvironmentId, u64), NodeId>,
    /// Pages recorded, over all runs.
    pages: u64,
    /// Runs in the side table.
    side_runs: usize,
}

/// Spare bits of a page-table entry that hold a tag.
pub const TAG_BITS: u32 = 14;

/// The tag a page mapped through `node` carries in its page-table entry:
/// the node's index plus one, or 0 if that needs more than [`TAG_BITS`]
/// bits (the index then keeps the page's node itself).
pub fn tag_of(node: NodeId) -> u16 {
    if node.index() < (1 << TAG_BITS) - 1 {
        node.index() as u16 + 1
    } else {
        0
    }
}

/// Node indices a chunk of the side table covers: 3 runs and a count fit
/// 64 bytes, one block of the kernel heap's buddy allocator. One run keeps
/// its chunk, so a chunk must cost no more than a capability's charge has
/// room for beside its node: a kilobyte chunk of 63 let a program that kept
/// one mapped capability in 63 hold a kilobyte for each, uncharged.
const CHUNK: usize = 3;

/// The heap block a chunk of the side table takes.
pub const CHUNK_BYTES: usize = 64;

const _: () = assert!(size_of::<Chunk>() <= CHUNK_BYTES);

/// The side table's list of chunks, in pages of [`LIST_PAGE`] places: no
/// block of it is larger than 4 KiB however large the heap. (One list was a
/// block of 8 bytes for every 3 capabilities the heap could pay for, more
/// than one of the heap's 8 MiB runs from about 6 GiB of memory.)
#[derive(Debug, Default)]
struct ChunkList {
    pages: Vec<Box<ListPage>>,
}

/// Places in a page of the list: 4 KiB of them.
const LIST_PAGE: usize = 512;

type ListPage = [Option<Box<Chunk>>; LIST_PAGE];

impl ChunkList {
    const fn new() -> Self {
        Self { pages: Vec::new() }
    }

    /// Chunk `number`'s place, if its page exists.
    fn get_mut(&mut self, number: usize) -> Option<&mut Option<Box<Chunk>>> {
        let page = self.pages.get_mut(number / LIST_PAGE)?;
        Some(&mut page[number % LIST_PAGE])
    }

    /// Chunk `number`'s place, making its page if there is none: never in
    /// the kernel, which reserved every page at boot (`reserve`).
    fn place(&mut self, number: usize) -> &mut Option<Box<Chunk>> {
        while self.pages.len() <= number / LIST_PAGE {
            self.pages.push(Box::new(core::array::from_fn(|_| None)));
        }
        &mut self.pages[number / LIST_PAGE][number % LIST_PAGE]
    }

    /// Makes the pages for `chunks` chunks' places, or `OutOfMemory`.
    fn reserve(&mut self, chunks: usize) -> Result<(), exo_abi::Error> {
        let pages = chunks.div_ceil(LIST_PAGE);
        self.pages
            .try_reserve_exact(pages.saturating_sub(self.pages.len()))
            .map_err(|_| exo_abi::Error::OutOfMemory)?;
        while self.pages.len() < pages {
            let mut places = Vec::new();
            places
                .try_reserve_exact(LIST_PAGE)
                .map_err(|_| exo_abi::Error::OutOfMemory)?;
            places.resize_with(LIST_PAGE, || None);
            let page: Box<ListPage> = places
                .into_boxed_slice()
                .try_into()
                .unwrap_or_else(|_| unreachable!("a page's places"));
            self.pages.push(page);
        }
        Ok(())
    }

    /// How many chunks exist.
    #[cfg(test)]
    fn count(&self) -> usize {
        self.pages
            .iter()
            .flat_map(|page| page.iter())
            .flatten()
            .count()
    }
}

#[derive(Debug)]
struct Chunk {
    runs: [Run; CHUNK],
    /// Runs in it that are not empty.
    count: u32,
}

/// `pages` pages from `first` in `environment`, mapped through the node
/// whose index is the run's place in the side table: 16 bytes, so that the
/// side table costs a capability little (its charge holds it with its node,
/// `tests/kernel_memory_costs.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    /// The node's generation.
    generation: u32,
    environment: EnvironmentId,
    /// The first page's number above 16 bits, the count of pages below
    /// (0: no run).
    place: u64,
}

/// A run in the side table has fewer pages than this; longer ones (no
/// single `Map` makes one) go into the B-tree.
const SIDE_RUN_PAGES: u64 = 1 << 16;

/// The most pages [`MappingIndex::take_run`] takes of a run at once: about
/// a sixth of a tick of unmapping under TCG.
pub const TAKE_PAGES: u64 = 64;

impl Run {
    const EMPTY: Run = Run {
        generation: 0,
        environment: EnvironmentId(0),
        place: 0,
    };

    fn new(node: NodeId, environment: EnvironmentId, first: u64, pages: u64) -> Self {
        debug_assert!(pages > 0 && pages < SIDE_RUN_PAGES);
        Run {
            generation: node.generation(),
            environment,
            place: (first / FRAME_SIZE) << 16 | pages,
        }
    }

    fn first(&self) -> u64 {
        (self.place >> 16) * FRAME_SIZE
    }

    fn pages(&self) -> u64 {
        self.place % SIDE_RUN_PAGES
    }

    fn is_empty(&self) -> bool {
        self.pages() == 0
    }

    /// Whether it is a run of `node`'s (kept in `node`'s slot).
    fn is_of(&self, node: NodeId) -> bool {
        !self.is_empty() && self.generation == node.generation()
    }

    fn holds(&self, node: NodeId, environment: EnvironmentId, page: u64) -> bool {
        self.is_of(node)
            && self.environment == environment
            && (self.first()..self.first() + self.pages() * FRAME_SIZE).contains(&page)
    }
}

/// What unmapping one page leaves of the run that held it.
struct Cut {
    /// The pages before it: same first page, fewer pages (0: none).
    before: u64,
    /// The pages after it, from the next page (0: none).
    after: u64,
}

fn cut(first: u64, pages: u64, page: u64) -> Cut {
    let before = (page - first) / FRAME_SIZE;
    Cut {
        before,
        after: pages - before - 1,
    }
}

impl MappingIndex {
    pub const fn new() -> Self {
        Self {
            chunks: ChunkList::new(),
            other_runs: BTreeMap::new(),
            untagged: BTreeMap::new(),
            pages: 0,
            side_runs: 0,
        }
    }

    /// The node the page at `page` in `environment`, whose page-table entry
    /// carries `tag`, was mapped through; `None` for a page of the kernel's
    /// own.
    pub fn node_of<O>(
        &self,
        capabilities: &CapabilitySpace<O>,
        environment: EnvironmentId,
        page: u64,
        tag: u16,
    ) -> Option<NodeId> {
        match tag {
            0 => self.untagged.get(&(environment, page)).copied(),
            tag => capabilities.node_at_index(u32::from(tag) - 1),
        }
    }

    /// Forgets the untagged pages of a run of `node`'s, if it is untagged.
    fn forget_untagged(
        &mut self,
        node: NodeId,
        environment: EnvironmentId,
        first: u64,
        pages: u64,
    ) {
        if tag_of(node) == 0 {
            for page in (0..pages).map(|index| first + index * FRAME_SIZE) {
                self.untagged.remove(&(environment, page));
            }
            self.untagged.give_back_when_empty();
        }
    }

    /// Allocates, once, the side table's list of chunks for node indices
    /// below `nodes` (the capability arena's entries), so that it never
    /// grows afterwards and the kernel's memory in use comes back exactly
    /// when mappings go.
    pub fn reserve(&mut self, nodes: u32) -> Result<(), exo_abi::Error> {
        self.chunks.reserve((nodes as usize).div_ceil(CHUNK))
    }

    /// The side table's entry for `node`, if its chunk exists.
    fn side_run(&mut self, node: NodeId) -> Option<&mut Run> {
        let index = node.index() as usize;
        let chunk = self.chunks.get_mut(index / CHUNK)?.as_deref_mut()?;
        Some(&mut chunk.runs[index % CHUNK])
    }

    /// Empties `node`'s entry in the side table (which holds a run), and
    /// frees its chunk if that was the chunk's last run.
    fn clear_side_run(&mut self, node: NodeId) {
        let index = node.index() as usize;
        let slot = self
            .chunks
            .get_mut(index / CHUNK)
            .expect("the run's chunk's place exists");
        let chunk = slot.as_deref_mut().expect("the run's chunk exists");
        chunk.runs[index % CHUNK] = Run::EMPTY;
        chunk.count -= 1;
        if chunk.count == 0 {
            *slot = None;
        }
        self.side_runs -= 1;
    }

    /// Records that the `pages` pages from `first` (a page-aligned address)
    /// in `environment` are mapped through capability `node`. None of them
    /// may be recorded yet.
    pub fn insert(&mut self, node: NodeId, environment: EnvironmentId, first: u64, pages: u64) {
        debug_assert!(pages > 0 && first.is_multiple_of(FRAME_SIZE));
        if tag_of(node) == 0 {
            for page in (0..pages).map(|index| first + index * FRAME_SIZE) {
                self.untagged.insert((environment, page), node);
            }
        }
        self.record_run(node, environment, first, pages);
    }

    /// Records the run itself: in the side table, or among the other runs.
    fn record_run(&mut self, node: NodeId, environment: EnvironmentId, first: u64, pages: u64) {
        self.pages += pages;
        let index = node.index() as usize;
        let chunk = self.chunks.place(index / CHUNK).get_or_insert_with(|| {
            Box::new(Chunk {
                runs: [Run::EMPTY; CHUNK],
                count: 0,
            })
        });
        let kept = &mut chunk.runs[index % CHUNK];
        if kept.is_empty() && pages < SIDE_RUN_PAGES {
            *kept = Run::new(node, environment, first, pages);
            chunk.count += 1;
            self.side_runs += 1;
        } else {
            debug_assert!(
                kept.is_empty() || kept.is_of(node),
                "a removed node's run was left behind"
            );
            if chunk.count == 0 {
                *self.chunks.place(index / CHUNK) = None;
            }
            self.other_runs.insert((node, environment, first), pages);
        }
    }

    /// Forgets `page` in `environment`, mapped through `node`; returns whether
    /// it was recorded. Its run loses the page: shortened, or split in two.
    pub fn remove_page(&mut self, node: NodeId, environment: EnvironmentId, page: u64) -> bool {
        let removed = self.remove_page_of_run(node, environment, page);
        if removed {
            self.forget_untagged(node, environment, page, 1);
        }
        removed
    }

    fn remove_page_of_run(&mut self, node: NodeId, environment: EnvironmentId, page: u64) -> bool {
        if let Some(run) = self.side_run(node)
            && run.holds(node, environment, page)
        {
            let Cut { before, after } = cut(run.first(), run.pages(), page);
            if before > 0 {
                *run = Run::new(node, environment, run.first(), before);
            } else if after > 0 {
                *run = Run::new(node, environment, page + FRAME_SIZE, after);
            } else {
                self.clear_side_run(node);
            }
            if before > 0 && after > 0 {
                self.other_runs
                    .insert((node, environment, page + FRAME_SIZE), after);
            }
            self.pages -= 1;
            return true;
        }
        let Some((&(_, _, first), &pages)) = self
            .other_runs
            .range((node, environment, 0)..=(node, environment, page))
            .next_back()
        else {
            return false;
        };
        if page >= first + pages * FRAME_SIZE {
            return false;
        }
        let Cut { before, after } = cut(first, pages, page);
        self.pages -= 1;
        if before > 0 {
            *self
                .other_runs
                .get_mut(&(node, environment, first))
                .expect("just found") = before;
        } else {
            self.other_runs.remove(&(node, environment, first));
        }
        if after > 0 {
            self.other_runs
                .insert((node, environment, page + FRAME_SIZE), after);
        }
        self.other_runs.give_back_when_empty();
        true
    }

    /// Forgets the whole run holding `page` in `environment`, mapped through
    /// `node`; returns its first page and length. For taking an environment
    /// apart: the caller walks its pages and forgets each one's run once.
    pub fn remove_run_holding(
        &mut self,
        node: NodeId,
        environment: EnvironmentId,
        page: u64,
    ) -> Option<(u64, u64)> {
        let (first, pages) = self.forget_run(node, environment, page)?;
        self.forget_untagged(node, environment, first, pages);
        Some((first, pages))
    }

    /// Forgets the run itself of `node`'s in `environment` holding `page`,
    /// leaving its pages' entries among the untagged ones.
    fn forget_run(
        &mut self,
        node: NodeId,
        environment: EnvironmentId,
        page: u64,
    ) -> Option<(u64, u64)> {
        if let Some(&mut run) = self.side_run(node)
            && run.holds(node, environment, page)
        {
            self.clear_side_run(node);
            self.pages -= run.pages();
            return Some((run.first(), run.pages()));
        }
        let (&(_, _, first), &pages) = self
            .other_runs
            .range((node, environment, 0)..=(node, environment, page))
            .next_back()?;
        if page >= first + pages * FRAME_SIZE {
            return None;
        }
        self.other_runs.remove(&(node, environment, first));
        self.other_runs.give_back_when_empty();
        self.pages -= pages;
        Some((first, pages))
    }

    /// Makes the runs of `node` in `environment` that tile the `pages` pages
    /// from `first` exactly one run — the parts a `Map` of a large run
    /// recorded one at a time; returns false, changing nothing, if they do
    /// not tile them (a page of a part was unmapped meanwhile).
    pub fn join(
        &mut self,
        node: NodeId,
        environment: EnvironmentId,
        first: u64,
        pages: u64,
    ) -> bool {
        let end = first + pages * FRAME_SIZE;
        let mut at = first;
        while at < end {
            match self.run_at(node, environment, at) {
                Some(length) => at += length * FRAME_SIZE,
                None => return false,
            }
        }
        if at != end {
            return false;
        }
        // The runs only: an untagged node's pages keep their entries, the
        // same before and after (forgotten and made again, the 1,024 pages of
        // one `Map` cost 2,048 B-tree changes in one step).
        let mut at = first;
        while at < end {
            let (_, length) = self
                .forget_run(node, environment, at)
                .expect("a run just found");
            at += length * FRAME_SIZE;
        }
        self.record_run(node, environment, first, pages);
        true
    }

    /// The length of `node`'s run in `environment` that starts at `page`.
    fn run_at(&mut self, node: NodeId, environment: EnvironmentId, page: u64) -> Option<u64> {
        if let Some(&mut run) = self.side_run(node)
            && run.is_of(node)
            && run.environment == environment
            && run.first() == page
        {
            return Some(run.pages());
        }
        self.other_runs.get(&(node, environment, page)).copied()
    }

    /// Forgets every page mapped through `node`, handing each to `forgotten`
    /// as (environment, page). Allocates nothing.
    pub fn take_node(&mut self, node: NodeId, mut forgotten: impl FnMut(EnvironmentId, u64)) {
        while self.take_run(node, &mut forgotten) {}
    }

    /// Forgets one run of pages mapped through `node` — or, of a run longer
    /// than [`TAKE_PAGES`], `TAKE_PAGES` of it (the first in the side table,
    /// the last in the B-tree: neither allocates) — handing each page to
    /// `forgotten` as [`Self::take_node`] does; false if `node` had none. So
    /// a capability mapped at 65,536 pages can be undone a little at a time.
    pub fn take_run(
        &mut self,
        node: NodeId,
        mut forgotten: impl FnMut(EnvironmentId, u64),
    ) -> bool {
        let (environment, first, pages) = match self.side_run(node) {
            Some(run) if run.is_of(node) => {
                let (environment, first, pages) = (run.environment, run.first(), run.pages());
                if pages > TAKE_PAGES {
                    let rest = first + TAKE_PAGES * FRAME_SIZE;
                    *run = Run::new(node, environment, rest, pages - TAKE_PAGES);
                } else {
                    self.clear_side_run(node);
                }
                (environment, first, pages.min(TAKE_PAGES))
            }
            _ => {
                let all = (node, EnvironmentId(0), 0)..=(node, EnvironmentId(u32::MAX), u64::MAX);
                let Some((&key, pages)) = self.other_runs.range_mut(all).next() else {
                    return false;
                };
                let (_, environment, first) = key;
                if *pages > TAKE_PAGES {
                    // Its last pages, the run shortened where it lies: taken
                    // from the front, its key would change, and putting the
                    // rest back could split a node of the tree — an
                    // allocation in the middle of a removal.
                    *pages -= TAKE_PAGES;
                    (environment, first + *pages * FRAME_SIZE, TAKE_PAGES)
                } else {
                    let pages = *pages;
                    self.other_runs.remove(&key);
                    self.other_runs.give_back_when_empty();
                    (environment, first, pages)
                }
            }
        };
        self.pages -= pages;
        self.forget_untagged(node, environment, first, pages);
        for page in (0..pages).map(|index| first + index * FRAME_SIZE) {
            forgotten(environment, page);
        }
        true
    }

    /// How many pages are recorded.
    pub fn len(&self) -> usize {
        self.pages as usize
    }

    pub fn is_empty(&self) -> bool {
        self.pages == 0
    }

    /// How many runs hold them (at most [`len`](Self::len)).
    pub fn records(&self) -> usize {
        self.side_runs + self.other_runs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::vec::Vec;
    use exo_abi::Rights;

    const PAGE: u64 = FRAME_SIZE;

    fn take_node(index: &mut MappingIndex, node: NodeId) -> Vec<(EnvironmentId, u64)> {
        let mut taken = Vec::new();
        index.take_node(node, |environment, page| taken.push((environment, page)));
        taken.sort();
        taken
    }

    /// Real node ids too high to tag: the last `count` of enough nodes,
    /// from a capability space of many tables.
    fn untaggable_nodes(count: usize) -> Vec<NodeId> {
        let mut space = CapabilitySpace::new();
        let mut all = Vec::new();
        for env in 1..=17 {
            let env = EnvironmentId(env);
            space.create_table(env, 1000).unwrap();
            for value in 0..1000 {
                let handle = space.insert_root(env, value, Rights::MAP).unwrap();
                all.push(space.lookup(env, handle).unwrap().node);
            }
        }
        let high = all.split_off(all.len() - count);
        assert!(high.iter().all(|&node| tag_of(node) == 0));
        assert!(all.iter().take(100).all(|&node| tag_of(node) != 0));
        high
    }

    /// Real node ids, from a capability space.
    fn nodes(count: usize) -> Vec<NodeId> {
        let mut space = CapabilitySpace::new();
        let env = EnvironmentId(1);
        space.create_table(env, count.max(64) as u32).unwrap();
        (0..count)
            .map(|value| {
                let handle = space.insert_root(env, value, Rights::MAP).unwrap();
                space.lookup(env, handle).unwrap().node
            })
            .collect()
    }

    #[test]
    fn a_node_mapped_in_two_environments() {
        let [a, b] = nodes(2)[..] else { unreachable!() };
        let (one, two) = (EnvironmentId(1), EnvironmentId(2));
        let mut index = MappingIndex::new();
        index.insert(a, one, 0x1000, 1);
        index.insert(a, two, 0x1000, 1);
        index.insert(b, one, 0x2000, 1);
        assert_eq!((index.len(), index.records()), (3, 3));

        assert!(index.remove_page(a, one, 0x1000));
        assert!(!index.remove_page(a, one, 0x1000));
        assert!(!index.remove_page(b, one, 0x1000), "not b's page");
        assert_eq!(take_node(&mut index, a), [(two, 0x1000)]);
        assert_eq!(take_node(&mut index, a), []);
        assert_eq!(index.len(), 1);
        assert_eq!(take_node(&mut index, b), [(one, 0x2000)]);
        assert!(index.is_empty() && index.records() == 0);
    }

    #[test]
    fn unmapping_inside_a_run_splits_it() {
        let [a] = nodes(1)[..] else { unreachable!() };
        let one = EnvironmentId(1);
        let mut index = MappingIndex::new();
        index.insert(a, one, 0x10_000, 16);
        assert_eq!((index.len(), index.records()), (16, 1));
        assert!(index.remove_page(a, one, 0x10_000 + 5 * PAGE));
        assert_eq!((index.len(), index.records()), (15, 2));
        assert!(!index.remove_page(a, one, 0x10_000 + 5 * PAGE));
        // The first page: the run's start moves on.
        assert!(index.remove_page(a, one, 0x10_000));
        assert_eq!((index.len(), index.records()), (14, 2));
        assert_eq!(
            index.remove_run_holding(a, one, 0x10_000 + 9 * PAGE),
            Some((0x10_000 + 6 * PAGE, 10))
        );
        assert_eq!(take_node(&mut index, a).len(), 4);
        assert!(index.is_empty() && index.records() == 0);
    }

    #[test]
    fn parts_that_tile_a_run_are_joined() {
        let [a] = nodes(1)[..] else { unreachable!() };
        let one = EnvironmentId(1);
        let mut index = MappingIndex::new();
        for part in 0..4 {
            index.insert(a, one, 0x100_000 + part * 64 * PAGE, 64);
        }
        assert_eq!((index.len(), index.records()), (256, 4));
        assert!(!index.join(a, one, 0x100_000, 257), "a page past the parts");
        assert_eq!((index.len(), index.records()), (256, 4));
        assert!(index.join(a, one, 0x100_000, 256));
        assert_eq!((index.len(), index.records()), (256, 1));
        assert_eq!(
            index.remove_run_holding(a, one, 0x100_000 + 255 * PAGE),
            Some((0x100_000, 256))
        );
        // A part cut in two by an unmapped page does not tile.
        for part in 0..2 {
            index.insert(a, one, 0x100_000 + part * 64 * PAGE, 64);
        }
        assert!(index.remove_page(a, one, 0x100_000 + 70 * PAGE));
        assert!(!index.join(a, one, 0x100_000, 128));
        assert_eq!((index.len(), index.records()), (127, 3));
    }

    #[test]
    fn an_untagged_node_s_parts_are_joined_and_its_pages_still_found() {
        let [a] = untaggable_nodes(1)[..] else {
            unreachable!()
        };
        let one = EnvironmentId(1);
        let mut index = MappingIndex::new();
        for part in 0..4 {
            index.insert(a, one, 0x100_000 + part * 64 * PAGE, 64);
        }
        assert!(index.join(a, one, 0x100_000, 256));
        assert_eq!((index.len(), index.records()), (256, 1));
        assert_eq!(
            index.untagged.len(),
            256,
            "one entry a page, none lost or doubled"
        );
        assert_eq!(index.untagged.get(&(one, 0x100_000 + 255 * PAGE)), Some(&a));
        assert_eq!(
            index.remove_run_holding(a, one, 0x100_000),
            Some((0x100_000, 256))
        );
        assert!(index.untagged.is_empty() && index.is_empty());
    }

    #[test]
    fn a_long_run_is_taken_a_little_at_a_time() {
        let [a] = nodes(1)[..] else { unreachable!() };
        let (one, two) = (EnvironmentId(1), EnvironmentId(2));
        let mut index = MappingIndex::new();
        // In the side table, and a second run of the same node in the B-tree.
        index.insert(a, one, 0x100_000, 1000);
        index.insert(a, two, 0x100_000, TAKE_PAGES + 1);
        let mut takes = Vec::new();
        loop {
            let mut taken = Vec::new();
            if !index.take_run(a, |environment, page| taken.push((environment, page))) {
                break;
            }
            assert!(
                taken.len() as u64 <= TAKE_PAGES,
                "one take of {}",
                taken.len()
            );
            takes.push(taken);
        }
        let one_pages: Vec<u64> = takes
            .iter()
            .flatten()
            .filter(|(environment, _)| *environment == one)
            .map(|&(_, page)| page)
            .collect();
        assert_eq!(
            one_pages,
            (0..1000).map(|i| 0x100_000 + i * PAGE).collect::<Vec<_>>()
        );
        assert_eq!(
            takes.iter().flatten().count(),
            1000 + TAKE_PAGES as usize + 1
        );
        assert_eq!(takes.len(), 1000usize.div_ceil(TAKE_PAGES as usize) + 2);
        assert!(index.is_empty() && index.records() == 0);
    }

    #[test]
    fn the_side_table_lets_go_of_its_memory() {
        let all = nodes(200);
        let one = EnvironmentId(1);
        let mut index = MappingIndex::new();
        for (number, &node) in all.iter().enumerate() {
            index.insert(node, one, number as u64 * PAGE, 1);
        }
        let chunks = |index: &MappingIndex| index.chunks.count();
        assert_eq!(chunks(&index), 200usize.div_ceil(CHUNK));
        for &node in &all[1..] {
            take_node(&mut index, node);
        }
        assert_eq!(chunks(&index), 1, "only the first node's chunk is left");
        take_node(&mut index, all[0]);
        assert_eq!(chunks(&index), 0);
        assert!(index.is_empty() && index.records() == 0);
    }

    #[test]
    fn a_chunk_is_one_block_of_64_bytes() {
        assert!(size_of::<Chunk>() <= CHUNK_BYTES);
        assert_eq!(size_of::<Run>(), 16);
    }

    /// Runs, split and shortened by unmapping, taken by capability and whole,
    /// against a model that records every page on its own, as the page
    /// tables' tags do for the kernel.
    #[test]
    fn runs_agree_with_a_page_by_page_model() {
        // Two nodes that tag their pages and two that do not.
        let mut node_ids = nodes(2);
        node_ids.extend(untaggable_nodes(2));
        let mut index = MappingIndex::new();
        let mut model: BTreeMap<(EnvironmentId, u64), NodeId> = BTreeMap::new();
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % below
        };
        for step in 0..20_000 {
            let environment = EnvironmentId(1 + next(3) as u32);
            let node = node_ids[next(4) as usize];
            match next(10) {
                0..=4 => {
                    let first = next(96) * PAGE;
                    let pages = 1 + next(16);
                    let free = (0..pages)
                        .all(|page| !model.contains_key(&(environment, first + page * PAGE)));
                    if free {
                        index.insert(node, environment, first, pages);
                        for page in 0..pages {
                            model.insert((environment, first + page * PAGE), node);
                        }
                    }
                }
                5..=6 => {
                    // Unmapping a page: its tag names its node.
                    let page = next(112) * PAGE;
                    let mapped_through = model.remove(&(environment, page));
                    let through = mapped_through.unwrap_or(node);
                    assert_eq!(
                        index.remove_page(through, environment, page),
                        mapped_through.is_some(),
                        "step {step}: remove {page:#x}"
                    );
                }
                7 => {
                    // Taking an environment apart: its pages in order, each run once.
                    let pages: Vec<_> = model
                        .range((environment, 0)..=(environment, u64::MAX))
                        .map(|(&(_, page), &node)| (page, node))
                        .collect();
                    let mut forgotten = 0;
                    for (page, node) in pages {
                        if let Some((first, count)) =
                            index.remove_run_holding(node, environment, page)
                        {
                            assert!(first <= page, "step {step}: a run after its page");
                            forgotten += count;
                        }
                    }
                    let before = model.len();
                    model.retain(|&(owner, _), _| owner != environment);
                    assert_eq!(forgotten as usize, before - model.len(), "step {step}");
                }
                _ => {
                    let taken = take_node(&mut index, node);
                    let expected: Vec<_> = model
                        .iter()
                        .filter(|&(_, &owner)| owner == node)
                        .map(|(&(environment, page), _)| (environment, page))
                        .collect();
                    model.retain(|_, owner| *owner != node);
                    assert_eq!(taken, expected, "step {step}: take a node");
                }
            }
            assert_eq!(index.len(), model.len(), "step {step}");
            assert!(index.records() <= index.len());
            if step % 97 == 0 {
                // The untagged pages' nodes, as the page tables would ask.
                for environment in (1..=3).map(EnvironmentId) {
                    for page in (0..120).map(|page| page * PAGE) {
                        let expected = model
                            .get(&(environment, page))
                            .filter(|&&node| tag_of(node) == 0)
                            .copied();
                        assert_eq!(index.untagged.get(&(environment, page)).copied(), expected);
                    }
                }
            }
        }
        assert!(index.untagged.len() <= index.len());
    }
}
