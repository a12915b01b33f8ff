//! B-trees that give their last node back.
//!
//! The standard `BTreeMap` keeps its root node, empty, after its last entry
//! is removed. The kernel wants the memory a request made it take to come
//! back exactly when the request's objects go (`KernelMemory` returns to
//! its baseline), so after removing from a map that may empty it calls
//! `give_back_when_empty`: a new map holds no node at all. Dropping the old
//! one only frees.

use alloc::collections::{BTreeMap, BTreeSet};

/// A collection that can let go of its storage once it is empty.
pub trait GiveBackWhenEmpty {
    /// If it holds nothing, frees whatever storage it kept.
    fn give_back_when_empty(&mut self);
}

impl<K, V> GiveBackWhenEmpty for BTreeMap<K, V> {
    fn give_back_when_empty(&mut self) {
        if self.is_empty() {
            *self = BTreeMap::new();
        }
    }
}

impl<T> GiveBackWhenEmpty for BTreeSet<T> {
    fn give_back_when_empty(&mut self) {
        if self.is_empty() {
            *self = BTreeSet::new();
        }
    }
}
