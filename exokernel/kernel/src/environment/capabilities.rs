//! The capability system calls: derive, grant, identify (revoke and drop,
//! which work a share at a time, are in `teardown.rs`).
//!
//! The capability space (`exo_kernel_core::caps`) keeps the tables and the
//! derivation tree; here each operation is checked against the caller's
//! capabilities and removals are carried out (`System::removing`).

use exo_abi::syscall::{CapabilityInfo, CapabilityKind};
use exo_abi::{Error, Handle, Rights};

use super::{EnvironmentId, Object, System};

fn rights(bits: u64) -> Result<Rights, Error> {
    u32::try_from(bits)
        .ok()
        .and_then(Rights::from_bits)
        .ok_or(Error::InvalidArgument)
}

impl System {
    pub fn derive(
        &mut self,
        caller: EnvironmentId,
        handle: Handle,
        bits: u64,
    ) -> Result<Handle, Error> {
        let rights = rights(bits)?;
        self.new_capability(caller, |capabilities| {
            capabilities.derive(caller, handle, rights)
        })
    }

    /// Copies `handle` into the table of the environment `to` names, which
    /// needs `Rights::GIVE`.
    pub fn grant(
        &mut self,
        caller: EnvironmentId,
        handle: Handle,
        to: Handle,
        bits: u64,
    ) -> Result<Handle, Error> {
        let rights = rights(bits)?;
        let to = self.target(caller, to, Rights::GIVE)?;
        // The table's owner pays: only holders of `GIVE` to it can fill it.
        self.new_capability(to, |capabilities| {
            capabilities.grant(caller, handle, to, rights)
        })
    }

    pub fn identify(&self, caller: EnvironmentId, handle: Handle) -> Result<CapabilityInfo, Error> {
        let capability = self.capabilities.lookup(caller, handle)?;
        Ok(match *capability.object {
            Object::Frame { first, order } => CapabilityInfo {
                kind: CapabilityKind::Frame,
                rights: capability.rights,
                order,
                value: first,
            },
            Object::Environment(id) => CapabilityInfo {
                kind: CapabilityKind::Environment,
                rights: capability.rights,
                order: 0,
                value: u64::from(id.0),
            },
            Object::Slot(slot) => CapabilityInfo {
                kind: CapabilityKind::Slot,
                rights: capability.rights,
                order: 0,
                value: u64::from(slot.index),
            },
            Object::Endpoint { entry, .. } => CapabilityInfo {
                kind: CapabilityKind::Endpoint,
                rights: capability.rights,
                order: 0,
                value: entry,
            },
            Object::Notification { bits, .. } => CapabilityInfo {
                kind: CapabilityKind::Notification,
                rights: capability.rights,
                order: 0,
                value: bits,
            },
            Object::Nic => CapabilityInfo {
                kind: CapabilityKind::Nic,
                rights: capability.rights,
                order: 0,
                value: crate::nic::NIC
                    .lock()
                    .as_ref()
                    .map_or(0, |nic| exo_abi::net::mac_to_u64(nic.mac())),
            },
            Object::Address(address) => CapabilityInfo {
                kind: CapabilityKind::Address,
                rights: capability.rights,
                order: 0,
                value: u64::from(address),
            },
            Object::Binding(id) => CapabilityInfo {
                kind: CapabilityKind::Binding,
                rights: capability.rights,
                order: 0,
                value: self.binding_entries(id),
            },
            Object::Filter { key, .. } => CapabilityInfo {
                kind: CapabilityKind::Filter,
                rights: capability.rights,
                order: 0,
                value: key.filter.pack(),
            },
        })
    }
}
