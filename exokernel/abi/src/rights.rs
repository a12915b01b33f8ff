//! What a capability lets its holder do.
//!
//! Rights only ever shrink: a derived or granted capability has a subset of
//! its parent's rights.

bitflags::bitflags! {
    /// Rights carried by a capability. Which ones matter depends on its kind.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Rights: u32 {
        /// Frame: may be mapped readable.
        const READ = 1 << 0;
        /// Frame: may be mapped writable.
        const WRITE = 1 << 1;
        /// Frame: may be mapped executable.
        const EXECUTE = 1 << 2;
        /// Frame: may be mapped at all. Environment: frames may be mapped
        /// into, unmapped from and re-protected in its address space.
        const MAP = 1 << 3;
        /// May be granted (copied) to another environment.
        const GRANT = 1 << 4;
        /// May revoke everything derived from it.
        const REVOKE = 1 << 5;
        /// Environment: may give capabilities to it (the target of a grant).
        const GIVE = 1 << 6;
                /// Environment: may set its entry points, start it, read its
        /// accounts, ask it to give frames back and allocate slots for it.
        const CONTROL = 1 << 7;
        /// Environment: may destroy it.
        const DESTROY = 1 << 8;
        /// Endpoint: may call through it. Environment: may donate the CPU to it (`YieldTo`).
                const CALL = 1 << 9;
        /// Notification: may signal it.
        const SIGNAL = 1 << 10;
        /// NIC: may claim addresses. Address: may attach filters on it.
        /// Binding: may attach filters to it, send, receive and kick it.
        const BIND = 1 << 11;
        /// Environment: may read the accounts of it and of every environment
        /// below it (`EnvironmentNext`, `EnvironmentInspect`).
        const INSPECT = 1 << 12;
    }
}

impl Rights {
    /// Rights that mean something on a frame capability.
    pub const FRAME: Rights = Rights::READ
        .union(Rights::WRITE)
        .union(Rights::EXECUTE)
        .union(Rights::MAP)
        .union(Rights::GRANT)
        .union(Rights::REVOKE);

    /// Rights that mean something on an environment capability.
    pub const ENVIRONMENT: Rights = Rights::MAP
        .union(Rights::GRANT)
        .union(Rights::REVOKE)
        .union(Rights::GIVE)
        .union(Rights::CONTROL)
        .union(Rights::DESTROY)
        .union(Rights::CALL)
        .union(Rights::INSPECT);

    /// Rights that mean something on a slot capability.
    pub const SLOT: Rights = Rights::GRANT.union(Rights::REVOKE);

    /// Rights that mean something on an endpoint capability.
    pub const ENDPOINT: Rights = Rights::CALL.union(Rights::GRANT).union(Rights::REVOKE);

    /// Rights that mean something on a notification capability.
    pub const NOTIFICATION: Rights = Rights::SIGNAL.union(Rights::GRANT).union(Rights::REVOKE);

    /// Rights that mean something on the network's capabilities (NIC,
    /// address, binding); a filter has only `GRANT` and `REVOKE`.
    pub const NET: Rights = Rights::BIND.union(Rights::GRANT).union(Rights::REVOKE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_share_only_generic_rights() {
        let shared = Rights::FRAME & Rights::ENVIRONMENT;
        assert_eq!(shared, Rights::MAP | Rights::GRANT | Rights::REVOKE);
        assert!(Rights::ENVIRONMENT.contains(Rights::SLOT | Rights::ENDPOINT));
    }
}
