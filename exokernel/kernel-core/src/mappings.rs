//! Which capability authorised each mapped page.
//!
//! Every user mapping is made through a frame capability. When that
//! capability goes (revoked, dropped, taken by force), every page mapped
//! through it must be unmapped, in whichever environment it was mapped; and
//! when a page is unmapped by hand, its record must go. This index keeps
//! both directions: by capability node, and by (environment, page).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::caps::{EnvironmentId, NodeId};

/// The mapping records, both ways.
#[derive(Debug, Default)]
pub struct MappingIndex {
    by_node: BTreeMap<NodeId, Vec<(EnvironmentId, u64)>>,
    by_page: BTreeMap<(EnvironmentId, u64), NodeId>,
}

impl MappingIndex {
    pub const fn new() -> Self {
        Self {
            by_node: BTreeMap::new(),
            by_page: BTreeMap::new(),
        }
    }

    /// Records that `page` (a page-aligned address) in `environment` is
    /// mapped through capability `node`. The page must not be recorded yet.
    pub fn insert(&mut self, node: NodeId, environment: EnvironmentId, page: u64) {
        let previous = self.by_page.insert((environment, page), node);
        debug_assert!(previous.is_none(), "page recorded twice");
        self.by_node
            .entry(node)
            .or_default()
            .push((environment, page));
    }

    /// The capability through which `page` is mapped in `environment`.
    pub fn node_of(&self, environment: EnvironmentId, page: u64) -> Option<NodeId> {
        self.by_page.get(&(environment, page)).copied()
    }

    /// Forgets `page` in `environment`; returns the capability it was mapped through.
    pub fn remove_page(&mut self, environment: EnvironmentId, page: u64) -> Option<NodeId> {
        let node = self.by_page.remove(&(environment, page))?;
        if let Some(pages) = self.by_node.get_mut(&node) {
            pages.retain(|&entry| entry != (environment, page));
            if pages.is_empty() {
                self.by_node.remove(&node);
            }
        }
        Some(node)
    }

    /// Forgets every page mapped through `node` and returns them.
    pub fn take_node(&mut self, node: NodeId) -> Vec<(EnvironmentId, u64)> {
        let pages = self.by_node.remove(&node).unwrap_or_default();
        for key in &pages {
            self.by_page.remove(key);
        }
        pages
    }

    /// Forgets every page mapped in `environment` and returns them with their capabilities.
    ///
    /// Each capability's list is filtered once, not once per page: one
    /// capability may map thousands of pages (the library OS maps its boot
    /// file system's 4 MiB runs into every child through its own), and
    /// forgetting them one by one would scan that list for each.
    pub fn take_environment(&mut self, environment: EnvironmentId) -> Vec<(u64, NodeId)> {
        let range = (environment, 0)..=(environment, u64::MAX);
        let pages: Vec<(u64, NodeId)> = self
            .by_page
            .range(range)
            .map(|(&(_, page), &node)| (page, node))
            .collect();
        let mut nodes: Vec<NodeId> = Vec::new();
        for &(page, node) in &pages {
            self.by_page.remove(&(environment, page));
            if nodes.last() != Some(&node) {
                nodes.push(node);
            }
        }
        nodes.sort_unstable();
        nodes.dedup();
        for node in nodes {
            if let Some(records) = self.by_node.get_mut(&node) {
                records.retain(|&(owner, _)| owner != environment);
                if records.is_empty() {
                    self.by_node.remove(&node);
                }
            }
        }
        pages
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
        assert_eq!(index.take_node(a), [(two, 0x1000)]);
        assert_eq!(index.take_node(a), []);
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
        assert_eq!(index.take_environment(two).len(), 1025);
        assert_eq!(index.node_of(one, 0x3000), Some(a));
        assert_eq!(index.node_of(two, 0x3000), None);
        assert_eq!(index.take_node(b), []);
        let left = index.take_node(a);
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
        let taken = index.take_environment(one);
        assert_eq!(taken.len(), 5);
        assert!(taken.contains(&(0x10_0000, b)));
        assert_eq!(index.len(), 4);
        assert_eq!(index.take_node(a), []);
        assert_eq!(index.take_node(b).len(), 4);
        assert!(index.is_empty());
    }
}
