//! Ancestors found in O(log depth) steps. Beside its parent, each environment
//! keeps one jump to an ancestor higher up, chosen once when it is made, so
//! that "is this one below that one?" takes a few dozen steps however deep the
//! family is: the kernel once walked every level between the two, one lookup
//! a level, and a program that built a chain 1,666 deep and asked that
//! question in a loop (`EnvironmentInspect` of its bottom) kept the CPU for
//! ticks at each call (`hostile-depth`).
//!
//! The jumps are skew-binary, as in E. W. Myers, "An applicative random-access
//! stack" (Information Processing Letters 17, 1983): a node's jump goes over
//! its parent's two jumps when those span equal lengths, and is its parent
//! otherwise. The lengths of the jumps from any node up are then a
//! skew-binary numeral, and climbing to a given depth takes at most about
//! 3 log2(depth) steps.

/// What the search needs to know of one environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link<Id> {
    /// How many creators are above it: the first environment's is 0.
    pub depth: u32,
    /// Its creator; `None` for the first environment.
    pub parent: Option<Id>,
    /// An ancestor at most as deep as its parent; the first environment's
    /// jump is itself.
    pub jump: Id,
}

/// The jump for a new child of `parent`, given the links of the live
/// environments (`link`).
pub fn jump_for<Id: Copy>(parent: Id, link: impl Fn(Id) -> Option<Link<Id>>) -> Id {
    let over = link(parent).and_then(|p| {
        let j = link(p.jump)?;
        let jj = link(j.jump)?;
        (p.depth - j.depth == j.depth - jj.depth).then_some(j.jump)
    });
    over.unwrap_or(parent)
}

/// The ancestor of `id` at `depth` (`id` itself at its own depth), or `None`
/// if `id` is shallower, or an environment on the way is gone.
pub fn ancestor_at<Id: Copy>(
    id: Id,
    depth: u32,
    link: impl Fn(Id) -> Option<Link<Id>>,
) -> Option<Id> {
    let mut at = id;
    let mut here = link(at)?;
    while here.depth > depth {
        (at, here) = match link(here.jump).filter(|jump| jump.depth >= depth) {
            Some(jump) => (here.jump, jump),
            None => {
                let parent = here.parent?;
                (parent, link(parent)?)
            }
        };
    }
    (here.depth == depth).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use core::cell::Cell;

    /// A family as a list of links, each environment's id its index.
    struct Family(Vec<Link<usize>>);

    impl Family {
        fn new() -> Self {
            Family(alloc::vec![Link {
                depth: 0,
                parent: None,
                jump: 0,
            }])
        }

        fn link(&self, id: usize) -> Option<Link<usize>> {
            self.0.get(id).copied()
        }

        /// Makes a child of `parent`; returns its id.
        fn add(&mut self, parent: usize) -> usize {
            let jump = jump_for(parent, |id| self.link(id));
            let depth = self.0[parent].depth + 1;
            self.0.push(Link {
                depth,
                parent: Some(parent),
                jump,
            });
            self.0.len() - 1
        }

        /// The ancestor at `depth` by walking parents, one level at a time.
        fn slowly(&self, mut id: usize, depth: u32) -> Option<usize> {
            while self.0[id].depth > depth {
                id = self.0[id].parent?;
            }
            (self.0[id].depth == depth).then_some(id)
        }
    }

    #[test]
    fn every_ancestor_of_a_deep_chain_is_found_in_logarithmic_steps() {
        let mut family = Family::new();
        let mut bottom = 0;
        for _ in 0..5000 {
            bottom = family.add(bottom);
        }
        let mut most = 0;
        for depth in 0..=5000 {
            // Links read, the first (the bottom's own) not counted: one a step.
            let reads = Cell::new(0u32);
            let link = |id| {
                reads.set(reads.get() + 1);
                family.link(id)
            };
            assert_eq!(ancestor_at(bottom, depth, link), Some(depth as usize));
            most = most.max(reads.get() - 1);
        }
        // 3 log2(5000) is about 37.
        assert!(most <= 40, "{most} steps");
    }

    #[test]
    fn a_tree_answers_as_the_walk_up_does() {
        let mut family = Family::new();
        // A branching family: each new one the child of an earlier one chosen
        // by a fixed pseudo-random sequence, biased to the newest.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        for made in 1..3000usize {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let back = (seed % 8) as usize;
            family.add(made.saturating_sub(1 + back));
        }
        for id in (0..3000).step_by(7) {
            for depth in (0..=family.0[id].depth + 1).step_by(3) {
                assert_eq!(
                    ancestor_at(id, depth, |id| family.link(id)),
                    family.slowly(id, depth),
                    "{id} at depth {depth}"
                );
            }
        }
    }

    #[test]
    fn a_gone_ancestor_answers_none() {
        let mut family = Family::new();
        let (a, b) = (family.add(0), 0);
        let c = family.add(a);
        let d = family.add(c);
        let without_a = |id| (id != a).then(|| family.link(id)).flatten();
        assert_eq!(ancestor_at(d, 1, without_a), None);
        assert_eq!(ancestor_at(d, 2, without_a), Some(c));
        assert_eq!(ancestor_at(b, 1, |id| family.link(id)), None);
    }
}
