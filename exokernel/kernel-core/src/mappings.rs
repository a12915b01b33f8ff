//! Which capability authorised each mapped page.
//!
//! Every user mapping is made through a frame capability. When that
//! capability goes (revoked, dropped, taken by force), every page mapped
//! through it must be unmapped, in whichever environment it was mapped; and
//! when a page is unmapped by hand, its record must go. This index keeps
//! both directions: by capability node, and by (environment, page).

use alloc::collections::{BTreeMap, BTreeSet};

use crate::btree::GiveBackWhenEmpty;
use crate::caps::{EnvironmentId, NodeId};

/// The mapping records, both ways. Every record is a fixed-size entry in a
/// B-tree, so no allocation grows with how many pages one capability maps
/// (a per-capability list of 65,536 pages once asked the heap for 2 MiB at
/// once), and forgetting records never allocates.
#[derive(Debug, Default)]
pub struct MappingIndex {
    by_node: BTreeSet<(NodeId, EnvironmentId, u64)>,
    by_page: BTreeMap<(EnvironmentId, u64), NodeId>,
}

impl MappingIndex {
    pub const fn new() -> Self {
        Self {
            by_node: BTreeSet::new(),
            by_page: BTreeMap::new(),
        }
    }

    /// Records that `page` (a page-aligned address) in `environment` is
    /// mapped through capability `node`. The page must not be recorded yet.
    pub fn insert(&mut self, node: NodeId, environment: EnvironmentId, page: u64) {
        let previous = self.by_page.insert((environment, page), node);
        debug_assert!(previous.is_none(), "page recorded twice");
        self.by_node.insert((node, environment, page));
    }

    /// The capability through which `page` is mapped in `environment`.
    pub fn node_of(&self, environment: EnvironmentId, page: u64) -> Option<NodeId> {
        self.by_page.get(&(environment, page)).copied()
    }

    /// Forgets `page` in `environment`; returns the capability it was mapped through.
    pub fn remove_page(&mut self, environment: EnvironmentId, page: u64) -> Option<NodeId> {
        let node = self.by_page.remove(&(environment, page))?;
        self.by_node.remove(&(node, environment, page));
        self.give_back_when_empty();
        Some(node)
    }

    /// Forgets every page mapped through `node`, handing each to `forgotten`
    /// as (environment, page). Allocates nothing.
    pub fn take_node(&mut self, node: NodeId, mut forgotten: impl FnMut(EnvironmentId, u64)) {
        let first = (node, EnvironmentId(0), 0);
        let last = (node, EnvironmentId(u32::MAX), u64::MAX);
        while let Some(&record) = self.by_node.range(first..=last).next() {
            let (_, environment, page) = record;
            self.by_node.remove(&record);
            self.by_page.remove(&(environment, page));
            forgotten(environment, page);
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
        while let Some((&(_, page), &node)) = self.by_page.range(range.clone()).next() {
            self.by_page.remove(&(environment, page));
            self.by_node.remove(&(node, environment, page));
            forgotten(page, node);
        }
        self.give_back_when_empty();
    }

    fn give_back_when_empty(&mut self) {
        self.by_node.give_back_when_empty();
        self.by_page.give_back_when_empty();
    }

    /// How many pages are recorded.
    pub fn len(&self) -> usize {
        self.by_page.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_page.is_empty()
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
        index.insert(a, one, 0x1000);
        index.insert(a, two, 0x1000);
        index.insert(b, one, 0x2000);
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
            index.insert(a, one, page * 0x1000);
            index.insert(a, two, page * 0x1000);
        }
        index.insert(b, two, 0x40_0000);
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
            index.insert(a, one, page * 0x1000);
            index.insert(b, two, page * 0x1000);
        }
        index.insert(b, one, 0x10_0000);
        let taken = take_environment(&mut index, one);
        assert_eq!(taken.len(), 5);
        assert!(taken.contains(&(0x10_0000, b)));
        assert_eq!(index.len(), 4);
        assert_eq!(take_node(&mut index, a), []);
        assert_eq!(take_node(&mut index, b).len(), 4);
        assert!(index.is_empty());
    }
}
