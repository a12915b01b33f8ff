//! Which capability authorised each mapped page.
//!
//! Every user mapping is made through a frame capability. When that
//! capability goes (revoked, dropped, taken by force), every page mapped
//! through it must be unmapped, in whichever environment it was mapped; and
//! when a page is unmapped by hand, its record must go. This index keeps
//! both directions: by capability node, and by (environment, page).
//!
//! A record covers a run of pages mapped by one request: a library OS maps
//! its memory sixteen pages at a time, and one record for the run instead of
//! sixteen is most of what a spawn or a demand-zero fault spends here (under
//! QEMU's emulation a B-tree update costs about 2,500 cycles). Unmapping one
//! page of a run shortens or splits its record.

use alloc::collections::{BTreeMap, BTreeSet};

use crate::btree::GiveBackWhenEmpty;
use crate::caps::{EnvironmentId, NodeId};
use crate::memory_map::FRAME_SIZE;

/// The mapping records, both ways. Every record is a fixed-size entry in a
/// B-tree, so no allocation grows with how many pages one capability maps
/// (a per-capability list of 65,536 pages once asked the heap for 2 MiB at
/// once), and forgetting records never allocates. There are never more
/// records than pages recorded, so a charge per page pays for them.
#[derive(Debug, Default)]
pub struct MappingIndex {
    /// (capability, environment, first page of a run).
    by_node: BTreeSet<(NodeId, EnvironmentId, u64)>,
    /// (environment, first page of a run) → the run.
    by_page: BTreeMap<(EnvironmentId, u64), Run>,
    /// Pages recorded, over all runs.
    pages: u64,
}

/// `pages` pages mapped through capability `node`, from the page the key names.
#[derive(Clone, Copy, Debug)]
struct Run {
    node: NodeId,
    pages: u64,
}

impl Run {
    fn end(&self, first: u64) -> u64 {
        first + self.pages * FRAME_SIZE
    }
}

impl MappingIndex {
    pub const fn new() -> Self {
        Self {
            by_node: BTreeSet::new(),
            by_page: BTreeMap::new(),
            pages: 0,
        }
    }

    /// Records that the `pages` pages from `first` (a page-aligned address)
    /// in `environment` are mapped through capability `node`. None of them
    /// may be recorded yet.
    pub fn insert(&mut self, node: NodeId, environment: EnvironmentId, first: u64, pages: u64) {
        debug_assert!(pages > 0 && first.is_multiple_of(FRAME_SIZE));
        debug_assert!(
            (0..pages).all(|page| self
                .run_holding(environment, first + page * FRAME_SIZE)
                .is_none()),
            "page recorded twice"
        );
        self.by_page
            .insert((environment, first), Run { node, pages });
        self.by_node.insert((node, environment, first));
        self.pages += pages;
    }

    /// The capability through which `page` is mapped in `environment`.
    pub fn node_of(&self, environment: EnvironmentId, page: u64) -> Option<NodeId> {
        self.run_holding(environment, page).map(|(_, run)| run.node)
    }

    /// The run holding `page` in `environment`, and its first page.
    fn run_holding(&self, environment: EnvironmentId, page: u64) -> Option<(u64, Run)> {
        let (&(owner, first), &run) = self.by_page.range(..=(environment, page)).next_back()?;
        (owner == environment && page < run.end(first)).then_some((first, run))
    }

    /// Forgets `page` in `environment`; returns the capability it was mapped
    /// through. Its run loses the page: shortened, or split in two.
    pub fn remove_page(&mut self, environment: EnvironmentId, page: u64) -> Option<NodeId> {
        let (first, run) = self.run_holding(environment, page)?;
        let before = (page - first) / FRAME_SIZE;
        let after = run.pages - before - 1;
        if before > 0 {
            // The run keeps its first page and key, shortened.
            let kept = self
                .by_page
                .get_mut(&(environment, first))
                .expect("just found");
            kept.pages = before;
        } else {
            self.by_page.remove(&(environment, first));
            self.by_node.remove(&(run.node, environment, first));
        }
        self.pages -= 1 + after; // `after` comes back with its own record
        if after > 0 {
            self.insert(run.node, environment, page + FRAME_SIZE, after);
        }
        self.give_back_when_empty();
        Some(run.node)
    }

    /// Forgets every page mapped through `node`, handing each to `forgotten`
    /// as (environment, page). Allocates nothing.
    pub fn take_node(&mut self, node: NodeId, mut forgotten: impl FnMut(EnvironmentId, u64)) {
        let first = (node, EnvironmentId(0), 0);
        let last = (node, EnvironmentId(u32::MAX), u64::MAX);
        while let Some(&record) = self.by_node.range(first..=last).next() {
            let (_, environment, start) = record;
            self.by_node.remove(&record);
            let run = self
                .by_page
                .remove(&(environment, start))
                .expect("both directions hold every run");
            self.pages -= run.pages;
            for page in (start..run.end(start)).step_by(FRAME_SIZE as usize) {
                forgotten(environment, page);
            }
        }
        self.give_back_when_empty();
    }

    /// Forgets every page mapped in `environment`, handing each to
    /// `forgotten` as (page, capability). Allocates nothing.
    pub fn take_environment(
        &mut self,
        environment: EnvironmentId,
        mut forgotten: impl FnMut(u64, NodeId),
    ) {
        let range = (environment, 0)..=(environment, u64::MAX);
        while let Some((&(_, start), &run)) = self.by_page.range(range.clone()).next() {
            self.by_page.remove(&(environment, start));
            self.by_node.remove(&(run.node, environment, start));
            self.pages -= run.pages;
            for page in (start..run.end(start)).step_by(FRAME_SIZE as usize) {
                forgotten(page, run.node);
            }
        }
        self.give_back_when_empty();
    }

    fn give_back_when_empty(&mut self) {
        self.by_node.give_back_when_empty();
        self.by_page.give_back_when_empty();
    }

    /// How many pages are recorded.
    pub fn len(&self) -> usize {
        self.pages as usize
    }

    pub fn is_empty(&self) -> bool {
        self.pages == 0
    }

    /// How many records hold them (at most [`len`](Self::len)).
    pub fn records(&self) -> usize {
        self.by_page.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::CapabilitySpace;
    use alloc::vec::Vec;

    fn take_node(index: &mut MappingIndex, node: NodeId) -> Vec<(EnvironmentId, u64)> {
        let mut taken = Vec::new();
        index.take_node(node, |environment, page| taken.push((environment, page)));
        taken
    }

    fn take_environment(
        index: &mut MappingIndex,
        environment: EnvironmentId,
    ) -> Vec<(u64, NodeId)> {
        let mut taken = Vec::new();
        index.take_environment(environment, |page, node| taken.push((page, node)));
        taken
    }
    use exo_abi::Rights;

    /// Real node ids, from a capability space.
    fn nodes(count: usize) -> Vec<NodeId> {
        let mut space = CapabilitySpace::new();
        let env = EnvironmentId(1);
        space.create_table(env, 64).unwrap();
        (0..count)
            .map(|value| {
                let handle = space.insert_root(env, value, Rights::MAP).unwrap();
                space.lookup(env, handle).unwrap().node
            })
            .collect()
    }

    #[test]
    fn both_directions_agree() {
        let [a, b] = nodes(2)[..] else { unreachable!() };
        let (one, two) = (EnvironmentId(1), EnvironmentId(2));
        let mut index = MappingIndex::new();
        index.insert(a, one, 0x1000, 1);
        index.insert(a, two, 0x1000, 1);
        index.insert(b, one, 0x2000, 1);
        assert_eq!(index.node_of(one, 0x1000), Some(a));
        assert_eq!(index.node_of(two, 0x1000), Some(a));
        assert_eq!(index.node_of(one, 0x3000), None);
        assert_eq!(index.len(), 3);

        assert_eq!(index.remove_page(one, 0x1000), Some(a));
        assert_eq!(index.remove_page(one, 0x1000), None);
        assert_eq!(take_node(&mut index, a), [(two, 0x1000)]);
        assert_eq!(take_node(&mut index, a), []);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn taking_an_environment_keeps_others_pages_of_the_same_capability() {
        let [a, b] = nodes(2)[..] else { unreachable!() };
        let (one, two) = (EnvironmentId(1), EnvironmentId(2));
        let mut index = MappingIndex::new();
        for page in 0..1024 {
            index.insert(a, one, page * 0x1000, 1);
            index.insert(a, two, page * 0x1000, 1);
        }
        index.insert(b, two, 0x40_0000, 1);
        assert_eq!(take_environment(&mut index, two).len(), 1025);
        assert_eq!(index.node_of(one, 0x3000), Some(a));
        assert_eq!(index.node_of(two, 0x3000), None);
        assert_eq!(take_node(&mut index, b), []);
        let left = take_node(&mut index, a);
        assert_eq!(left.len(), 1024);
        assert!(left.iter().all(|&(owner, _)| owner == one));
        assert!(index.is_empty());
    }

    #[test]
    fn taking_an_environment_leaves_others() {
        let [a, b] = nodes(2)[..] else { unreachable!() };
        let (one, two) = (EnvironmentId(1), EnvironmentId(2));
        let mut index = MappingIndex::new();
        for page in 0..4 {
            index.insert(a, one, page * 0x1000, 1);
            index.insert(b, two, page * 0x1000, 1);
        }
        index.insert(b, one, 0x10_0000, 1);
        let taken = take_environment(&mut index, one);
        assert_eq!(taken.len(), 5);
        assert!(taken.contains(&(0x10_0000, b)));
        assert_eq!(index.len(), 4);
        assert_eq!(take_node(&mut index, a), []);
        assert_eq!(take_node(&mut index, b).len(), 4);
        assert!(index.is_empty());
    }

    /// Runs, split and shortened by unmapping, taken by capability and by
    /// environment, against a model that records every page on its own.
    #[test]
    fn runs_agree_with_a_page_by_page_model() {
        use alloc::collections::BTreeMap;
        const PAGE: u64 = FRAME_SIZE;
        let node_ids = nodes(4);
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
                5..=7 => {
                    let page = next(112) * PAGE;
                    assert_eq!(
                        index.remove_page(environment, page),
                        model.remove(&(environment, page)),
                        "step {step}: remove {page:#x}"
                    );
                }
                8 => {
                    let mut taken = take_node(&mut index, node);
                    taken.sort();
                    let expected: Vec<_> = model
                        .iter()
                        .filter(|&(_, &owner)| owner == node)
                        .map(|(&(environment, page), _)| (environment, page))
                        .collect();
                    model.retain(|_, owner| *owner != node);
                    assert_eq!(taken, expected, "step {step}: take a node");
                }
                _ => {
                    let mut taken = take_environment(&mut index, environment);
                    taken.sort();
                    let expected: Vec<_> = model
                        .range((environment, 0)..=(environment, u64::MAX))
                        .map(|(&(_, page), &node)| (page, node))
                        .collect();
                    model.retain(|&(owner, _), _| owner != environment);
                    assert_eq!(taken, expected, "step {step}: take an environment");
                }
            }
            assert_eq!(index.len(), model.len(), "step {step}");
            assert!(index.records() <= index.len());
            if step % 97 == 0 {
                for environment in 1..=3 {
                    for page in 0..120 {
                        let key = (EnvironmentId(environment), page * PAGE);
                        assert_eq!(
                            index.node_of(key.0, key.1),
                            model.get(&key).copied(),
                            "step {step}: {key:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn unmapping_inside_a_run_splits_it() {
        let [a] = nodes(1)[..] else { unreachable!() };
        let one = EnvironmentId(1);
        let mut index = MappingIndex::new();
        index.insert(a, one, 0x10_000, 16);
        assert_eq!((index.len(), index.records()), (16, 1));
        assert_eq!(index.remove_page(one, 0x10_000 + 5 * 0x1000), Some(a));
        assert_eq!((index.len(), index.records()), (15, 2));
        assert_eq!(index.node_of(one, 0x10_000 + 5 * 0x1000), None);
        assert_eq!(index.node_of(one, 0x10_000 + 4 * 0x1000), Some(a));
        assert_eq!(index.node_of(one, 0x10_000 + 6 * 0x1000), Some(a));
        assert_eq!(index.node_of(one, 0x10_000 + 16 * 0x1000), None);
        // The first page: the run's key moves on.
        assert_eq!(index.remove_page(one, 0x10_000), Some(a));
        assert_eq!(index.node_of(one, 0x11_000), Some(a));
        assert_eq!((index.len(), index.records()), (14, 2));
        assert_eq!(take_node(&mut index, a).len(), 14);
        assert!(index.is_empty() && index.records() == 0);
    }
}
