//! The capability space (`exokernel/kernel-core/src/caps.rs`) against a simple model:
//! every environment asks for derivations, grants, revocations and drops on handles it
//! chooses, some of them stale or made up.
//!
//! kernel-core's own random test checks the space against a detailed model (generations,
//! order of reports); this one checks what an attacker cares about, from any bytes: which
//! capabilities exist, in whose table, with which rights, below which parent.

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::{Arbitrary, Unstructured};
use exo_abi::{Error, Handle, Rights};
use exo_kernel_core::caps::{CapabilitySpace, EnvironmentId, NodeId, Removed};

use super::Target;

pub const TARGET: Target = Target {
    name: "capabilities",
    checks: "derive, grant, revoke, drop and destroy agree with a model on what exists, where, with which rights",
    check,
};

const ENVIRONMENTS: u8 = 3;
const MAX_OPERATIONS: usize = 64;

#[derive(Arbitrary, Debug)]
enum Kind {
    InsertRoot,
    Derive,
    Grant,
    Revoke,
    Drop,
    DestroyTable,
    CreateTable,
}

#[derive(Arbitrary, Debug)]
struct Operation {
    kind: Kind,
    environment: u8,
    other: u8,
    /// Below 200: the live handle at this position in the environment's list; else made up.
    handle: u8,
    rights: u16,
}

#[derive(Clone, Copy, Debug)]
struct ModelNode {
    owner: EnvironmentId,
    handle: Handle,
    parent: Option<NodeId>,
    rights: Rights,
}

#[derive(Default)]
struct Model {
    tables: BTreeSet<EnvironmentId>,
    nodes: BTreeMap<NodeId, ModelNode>,
}

impl Model {
    fn find(&self, owner: EnvironmentId, handle: Handle) -> Option<NodeId> {
        self.nodes
            .iter()
            .find(|(_, node)| node.owner == owner && node.handle == handle)
            .map(|(&id, _)| id)
    }

    /// `top` and every node below it.
    fn subtree(&self, top: NodeId) -> BTreeSet<NodeId> {
        let mut below = BTreeSet::from([top]);
        loop {
            let more: Vec<NodeId> = self
                .nodes
                .iter()
                .filter(|(id, node)| {
                    !below.contains(id) && node.parent.is_some_and(|parent| below.contains(&parent))
                })
                .map(|(&id, _)| id)
                .collect();
            if more.is_empty() {
                return below;
            }
            below.extend(more);
        }
    }

    fn remove(&mut self, expected: &BTreeSet<NodeId>, reported: &[Removed<u32>]) {
        let reported: BTreeSet<NodeId> = reported.iter().map(|removed| removed.node).collect();
        assert_eq!(&reported, expected, "the removals reported");
        for id in expected {
            self.nodes.remove(id);
        }
    }
}

fn check(bytes: &[u8]) {
    let mut unstructured = Unstructured::new(bytes);
    let mut space = CapabilitySpace::<u32>::new();
    let mut model = Model::default();
    for environment in 0..u32::from(ENVIRONMENTS) {
        space.create_table(EnvironmentId(environment), 4).unwrap();
        model.tables.insert(EnvironmentId(environment));
    }
    for step in 0..MAX_OPERATIONS {
        let Ok(operation) = Operation::arbitrary(&mut unstructured) else {
            return;
        };
        apply(&mut space, &mut model, &operation, step as u32);
        agree(&space, &model);
    }
}

fn apply(space: &mut CapabilitySpace<u32>, model: &mut Model, operation: &Operation, object: u32) {
    let env = EnvironmentId(u32::from(operation.environment % ENVIRONMENTS));
    let other = EnvironmentId(u32::from(operation.other % ENVIRONMENTS));
    let live: Vec<Handle> = model
        .nodes
        .values()
        .filter(|node| node.owner == env)
        .map(|node| node.handle)
        .collect();
    let handle = match operation.handle {
        choice if choice < 200 && !live.is_empty() => live[usize::from(choice) % live.len()],
        choice => Handle::new(u32::from(choice % 8), u32::from(choice % 3)),
    };
    let target = model.find(env, handle);
    let rights = Rights::from_bits_truncate(u32::from(operation.rights));
    let mut reports = Vec::new();
    match operation.kind {
        Kind::InsertRoot => {
            if let Ok(handle) = space.insert_root(env, object, rights) {
                assert!(model.tables.contains(&env));
                let node = space.lookup(env, handle).expect("a new root is found").node;
                model.nodes.insert(
                    node,
                    ModelNode {
                        owner: env,
                        handle,
                        parent: None,
                        rights,
                    },
                );
            }
        }
        Kind::Derive | Kind::Grant => {
            let granting = matches!(operation.kind, Kind::Grant);
            let to = if granting { other } else { env };
            let result = if granting {
                space.grant(env, handle, to, rights)
            } else {
                space.derive(env, handle, rights)
            };
            let Some(parent) = target else {
                assert!(result.is_err(), "derived from a handle that names nothing");
                return;
            };
            let parent_rights = model.nodes[&parent].rights;
            if granting && !parent_rights.contains(Rights::GRANT) {
                assert_eq!(result, Err(Error::MissingRights));
            } else if !parent_rights.contains(rights) {
                assert_eq!(result, Err(Error::RightsEscalation));
            } else if let Ok(handle) = result {
                let child = space.lookup(to, handle).expect("a new child is found");
                assert_eq!(child.rights, rights);
                let node = ModelNode {
                    owner: to,
                    handle,
                    parent: Some(parent),
                    rights,
                };
                model.nodes.insert(child.node, node);
            }
        }
        Kind::Revoke => {
            let result = space.revoke(env, handle, &mut |removed| reports.push(removed));
            match target {
                Some(node) if model.nodes[&node].rights.contains(Rights::REVOKE) => {
                    assert_eq!(result, Ok(()));
                    let mut below = model.subtree(node);
                    below.remove(&node);
                    model.remove(&below, &reports);
                }
                _ => {
                    assert!(result.is_err());
                    assert!(reports.is_empty());
                }
            }
        }
        Kind::Drop => {
            let result = space.drop_capability(env, handle, &mut |removed| reports.push(removed));
            assert_eq!(result.is_ok(), target.is_some());
            let expected = target.map(|node| model.subtree(node)).unwrap_or_default();
            model.remove(&expected, &reports);
        }
        Kind::DestroyTable => {
            space.destroy_table(env, &mut |removed| reports.push(removed));
            let owned: Vec<NodeId> = model
                .nodes
                .iter()
                .filter(|(_, node)| node.owner == env)
                .map(|(&id, _)| id)
                .collect();
            let expected = owned.into_iter().flat_map(|id| model.subtree(id)).collect();
            model.remove(&expected, &reports);
            model.tables.remove(&env);
        }
        Kind::CreateTable => {
            let result = space.create_table(env, 1 + u32::from(operation.rights % 6));
            assert_eq!(result.is_ok(), !model.tables.contains(&env));
            model.tables.insert(env);
        }
    }
}

fn agree(space: &CapabilitySpace<u32>, model: &Model) {
    assert_eq!(
        space.node_count(),
        model.nodes.len(),
        "how many capabilities exist"
    );
    for (&id, node) in &model.nodes {
        let info = space.node(id).expect("a model node is live");
        assert_eq!(info.owner, node.owner);
        assert_eq!(info.handle, node.handle);
        assert_eq!(info.parent, node.parent);
        assert_eq!(info.rights, node.rights);
        let capability = space
            .lookup(node.owner, node.handle)
            .expect("its handle works");
        assert_eq!(capability.node, id);
    }
    for environment in 0..u32::from(ENVIRONMENTS) {
        let env = EnvironmentId(environment);
        assert_eq!(space.has_table(env), model.tables.contains(&env));
        let owned = model
            .nodes
            .values()
            .filter(|node| node.owner == env)
            .count();
        assert_eq!(space.len(env), owned);
    }
}
