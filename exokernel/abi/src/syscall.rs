//! System call numbers and the register convention.
//!
//! `syscall` with the number in `rax` and up to six arguments in `rdi`,
//! `rsi`, `rdx`, `r10`, `r8`, `r9` (the System V order, with `r10` for `rcx`,
//! which `syscall` overwrites). On return `rax` holds 0 or an
//! [`Error`](crate::Error) code, and `rdx` and `rsi` hold up to two results
//! (`Wait` and `Call` also return values in `rdi`, `r8`, `r9`); `rcx` and
//! `r11` are clobbered, every other register is preserved.
//!
//! `docs/02-environments.md` (calls 0–37), `docs/03-cpu.md` (40–47) and
//! `docs/05-network.md` (50–55) have the tables of what each call takes and
//! returns.

use crate::numbered::numbered_enum;

numbered_enum! {
    /// A system call number.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum Sysnum {
        /// `(address, length)` → bytes written. Writes to the kernel console.
        ConsoleWrite = 0,
        /// `(status)`: destroys the calling environment.
        Exit = 1,
        /// Gives the rest of the slot to the best-effort pool (the caller keeps
        /// running if nobody there can run).
        Yield = 2,
        /// `(address, length)` → bytes read: what has arrived on the kernel
        /// console, without waiting (0 if nothing has).
        ConsoleRead = 3,
        /// Does nothing and returns 0, with `rdx` and `rsi` zero: answered in
        /// the kernel's entry stub itself, so it measures the floor of a
        /// kernel round trip on this machine (`syscall` there, `sysretq`
        /// back). Not counted: counting needs the per-CPU data behind GS.
        Null = 4,

        /// `(handle, rights)` → new handle: a child capability with a subset of the rights.
        CapabilityDerive = 10,
        /// `(handle, environment, rights)` → handle in the target's table.
        CapabilityGrant = 11,
        /// `(handle)`: removes everything derived from the capability, in every table.
        CapabilityRevoke = 12,
        /// `(handle)`: removes the capability and everything derived from it.
        CapabilityDrop = 13,
        /// `(handle)` → (kind and rights packed by [`CapabilityInfo`](crate::syscall::CapabilityInfo), value):
        /// the value is the first frame number of a frame capability, the id of an
        /// environment, the index of a slot, the entry tag of an endpoint.
        CapabilityIdentify = 14,

        /// `(order)` → (handle, first frame number): `2^order` free frames, aligned to their size.
        FrameAllocate = 20,
        /// `(frame number, order)` → (handle, frame number): exactly those frames.
        FrameAllocateAt = 21,
        /// `(frame, environment, address, flags, part)`: maps the frame(s) at
        /// `address` in that environment: all of them (`part` 0) or the
        /// [`MapPart`] `part` names, so a run is paid for only where it is used.
        Map = 22,
        /// `(environment, address)`: removes the page mapped at `address`.
        Unmap = 23,
        /// `(environment, address, flags)`: changes the permissions of a mapped page.
        Protect = 24,
        /// `(environment, requests address, count)` → (how many were applied, the
        /// error code of the first that failed or 0): one
        /// [`MapRequest`](crate::mapping::MapRequest) after another, stopping at the first error.
        MapBatch = 25,

        /// `(frame quota, kernel bytes, slot quota)` → handle: a new, empty
        /// environment, not yet running. It is lent `frame quota` frames, `kernel
        /// bytes` of kernel memory (0: [`default_kernel_bytes`] of the frame
        /// quota) and `slot quota` CPU slots, all from the caller's own accounts
        /// until it is destroyed.
        EnvironmentCreate = 30,
        /// `(environment, entry, stack, argument)`: starts it at `entry` with `rsp = stack`, `rdi = argument`.
        EnvironmentStart = 31,
        /// `(environment)`: destroys it, returning everything it held.
        EnvironmentDestroy = 32,
        /// `(environment, entry, stack top, stack size, options)`: where upcalls
        /// (faults, revocation, slot starts) enter it; [`UpcallOptions`]. Entry 0
        /// removes the registration.
        SetUpcall = 33,
        /// `(environment, frame count, deadline in ticks)`: asks it to give frames back.
        RequestFrames = 34,
        /// `(environment, which)` → value: one of its accounts, see [`EnvironmentAccount`].
        EnvironmentInfo = 35,
        /// → (free frames, usable frames): the kernel's frame counts.
        FrameCounts = 36,
        /// → (bytes in use, capacity): the kernel heap, which holds every
        /// environment's charged kernel memory and the kernel's own.
        KernelMemory = 37,
        /// `(kind, value 0, value 1)`: adds a library-OS event to the kernel's
        /// trace, tagged with the caller (`crate::trace`); nothing if the
        /// kernel does not record the library class. `InvalidArgument` for a
        /// kind below `trace::FIRST_LIBRARY_KIND`.
        Trace = 38,

        /// `(environment, slot)` → (handle, slot index): a slot of the slice
        /// vector for that environment (`slot = ANY_SLOT` for any free one).
        SlotAllocate = 40,
        /// `(environment)`: gives the rest of the current slot to that environment.
        YieldTo = 41,
        /// `(events, timeout in ticks)` → (event, detail): sleeps until one of
        /// `events` happens ([`Event`] bits). For `Event::CALL`, see `Call`.
        Wait = 42,
        /// `(entry tag)` → handle: an endpoint others can `Call` to reach the
        /// caller; each call hands the server the endpoint's entry tag.
        EndpointCreate = 43,
        /// `(endpoint, argument 0, argument 1, capability or NO_CAPABILITY)` →
        /// (result 0, result 1): runs the endpoint's environment at once, on the
        /// caller's slot, and returns when it replies. If the server is busy
        /// (not in a `Wait` for calls, or serving another), the caller waits
        /// in its queue, first come first served, until the server next waits.
        Call = 44,
        /// `(result 0, result 1, capability or NO_CAPABILITY)`: returns to the
        /// environment whose call is being served.
        Reply = 45,
        /// `(bits)` → handle: a notification into the caller; signalling it
        /// sets `bits` (not 0) in the caller's pending word.
        NotificationCreate = 46,
        /// `(notification)`: sets its bits in its environment's pending word and
        /// wakes it if it waits for `Event::NOTIFY`. Never blocks.
        Signal = 47,

        /// `(NIC, IPv4 address)` → handle: claims the address for the caller
        /// (`net::ipv4` packing). Refused with `AddressInUse` while another claim lives.
        NetClaim = 50,
        /// `(frames, notification or NO_CAPABILITY)` → (handle, entries): a
        /// binding whose rings live in that run of frames (`net` has the
        /// layout). The notification is signalled when a frame arrives in an
        /// empty receive ring.
        NetBind = 51,
        /// `(binding, address, filter)` → handle: frames matching the filter
        /// (`net::Filter::pack`) on that address go to the binding.
        NetFilter = 52,
        /// `(binding)`: drains its transmit ring now and polls it again, which
        /// clears `TxFlags::NEED_WAKEUP`.
        NetKick = 53,
        /// `(binding, address, length)`: sends the frame there at once (the
        /// per-packet path; the same checks as the ring).
        NetSend = 54,
        /// `(binding, address, length)` → frame length: takes the oldest frame
        /// from the receive ring into the buffer (the per-packet path);
        /// `WouldBlock` if there is none.
        NetReceive = 55,

        /// `(environment, after)` → id: the smallest id above `after` of the
        /// environment named (with `INSPECT`) or one below it — created by it,
        /// or by one it created, and so on — or 0 when there is none. The
        /// first environment is above every other. With `EnvironmentInspect`,
        /// how `ps` lists what it may see.
        EnvironmentNext = 60,
        /// `(environment, id, account)` → value: one of the
        /// [`EnvironmentAccount`]s of environment `id`, if it is the one named
        /// (with `INSPECT`) or below it; `NoSuchEnvironment` otherwise, whether
        /// or not `id` exists.
        EnvironmentInspect = 61,
        /// `(environment, name low, name high)`: names it (16 bytes, as
        /// `trace::pack_name` packs them) for `ps` and the trace. Needs `CONTROL`.
        EnvironmentName = 62,
    }
}

impl TryFrom<u64> for Sysnum {
    type Error = crate::Error;

    fn try_from(number: u64) -> Result<Self, crate::Error> {
        Sysnum::from_number(number).ok_or(crate::Error::UnknownSystemCall)
    }
}

/// `SlotAllocate`'s slot argument for "any free slot".
pub const ANY_SLOT: u64 = u64::MAX;

/// `Call`'s and `Reply`'s capability argument when no capability is passed.
pub const NO_CAPABILITY: u64 = u64::MAX;

bitflags::bitflags! {
    /// Events `Wait` can wait for; it returns the one that happened.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Event: u64 {
        /// The timeout passed.
        const TIMER = 1 << 0;
        /// A call arrived on one of the caller's endpoints: `Wait` returns
        /// (`CALL`, entry tag) and the call's arguments in `rdi`, `r8` and its
        /// capability (or `NO_CAPABILITY`) in `r9`; answer with `Reply`.
                const CALL = 1 << 1;
        /// A notification of the caller's was signalled: `Wait` returns
        /// (`NOTIFY`, the pending bits) and clears them. If bits are pending
        /// already, `Wait` returns at once.
        const NOTIFY = 1 << 2;
    }
}

bitflags::bitflags! {
    /// `SetUpcall` options.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct UpcallOptions: u64 {
        /// Enter the upcall at the start of each slot the environment gets
        /// (reason `SliceStart`), so its library OS schedules its own threads.
        const SCHEDULER = 1 << 0;
    }
}

/// What kind of resource a capability names.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CapabilityKind {
    /// A naturally aligned run of `2^order` physical frames.
    Frame = 1,
    /// An environment.
    Environment = 2,
    /// A slot of the slice vector (value: its index).
    Slot = 3,
    /// A call endpoint (value: the entry tag).
    Endpoint = 4,
    /// A notification (value: its bits).
    Notification = 5,
    /// The network device (value: its MAC, `net::mac_from_u64`).
    Nic = 6,
    /// A claimed IPv4 address (value: the address).
    Address = 7,
    /// A binding: rings in the holder's frames (value: entries per ring).
    Binding = 8,
    /// A packet filter attached to a binding (value: `net::Filter::pack`).
    Filter = 9,
}

/// What `CapabilityIdentify` says about a capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapabilityInfo {
    pub kind: CapabilityKind,
    pub rights: crate::Rights,
    /// For frames: log2 of the number of frames. 0 otherwise.
    pub order: u8,
    /// For frames: the first frame number. For environments: the id.
    pub value: u64,
}

impl CapabilityInfo {
    /// Packs kind, order and rights into one register: rights in bits 0–31,
    /// order in 32–39, kind in 40–47.
    pub const fn pack(&self) -> u64 {
        self.rights.bits() as u64 | (self.order as u64) << 32 | (self.kind as u64) << 40
    }

    /// The inverse of [`pack`](Self::pack), with the value from the second register.
    pub fn unpack(packed: u64, value: u64) -> Option<Self> {
        let kind = match packed >> 40 {
            1 => CapabilityKind::Frame,
            2 => CapabilityKind::Environment,
            3 => CapabilityKind::Slot,
            4 => CapabilityKind::Endpoint,
            5 => CapabilityKind::Notification,
            6 => CapabilityKind::Nic,
            7 => CapabilityKind::Address,
            8 => CapabilityKind::Binding,
            9 => CapabilityKind::Filter,
            _ => return None,
        };
        Some(Self {
            kind,
            rights: crate::Rights::from_bits(packed as u32)?,
            order: (packed >> 32) as u8,
            value,
        })
    }
}

numbered_enum! {
    /// Which account `EnvironmentInfo` and `EnvironmentInspect` read.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum EnvironmentAccount {
        /// Its numeric id.
        Id = 0,
        /// Frames charged to it: its own allocations, page tables, and quota lent to its children.
        FramesCharged = 1,
        /// Its frame quota.
        FrameQuota = 2,
        /// Frames the kernel has taken from it by force after a revocation deadline passed.
        FramesTakenByForce = 3,
        /// Frames it gave back in answer to revocation requests: how far its
        /// holdings fell between each request and its deadline (fresh frames
        /// allocated and dropped meanwhile do not count).
        FramesGivenBack = 4,
        /// Bytes of kernel memory charged to it: its environment record,
        /// capability table and capabilities, mapping records, network objects,
        /// and the allowances lent to its children.
        KernelBytesCharged = 5,
        /// Its kernel-memory allowance, in bytes.
        KernelBytesLimit = 6,
        /// Slots of the slice vector it runs in.
        SlotsHeld = 7,
        /// Slots it may take or lend.
        SlotQuota = 8,
        /// Slots charged to it: slot capabilities it allocated (for itself or
        /// another) and slot quota lent to its children.
        SlotsCharged = 9,
        /// The id of the environment that created it (0 for the first).
        Parent = 10,
        /// What it is doing: an [`EnvironmentState`] number.
        State = 11,
        /// System calls it has made.
        SystemCalls = 12,
        /// Exceptions it has taken (faults, traps).
        Exceptions = 13,
        /// Upcalls delivered to it.
        Upcalls = 14,
        /// Slot starts at which it got the CPU.
        SlotsRun = 15,
        /// Frames it holds through the frame capabilities it allocated.
        FramesHeld = 16,
        /// Frames its live bindings received, sent, and dropped (a full
        /// receive ring, a transmit entry refused).
        PacketsReceived = 17,
        PacketsSent = 18,
        PacketsDropped = 19,
        /// Its name, as its creator set it with `EnvironmentName` (the kernel
        /// names the first environment after its program): up to 16 bytes,
        /// little-endian, zero-padded (`trace::pack_name`), in two words.
        NameLow = 20,
        NameHigh = 21,
        /// Capabilities in its table, of at most [`TABLE_CAPACITY`]: every new
        /// capability it gets (a frame allocated, a grant received) takes a slot.
        ///
        /// [`TABLE_CAPACITY`]: crate::handle::TABLE_CAPACITY
        CapabilitiesHeld = 22,
    }
}

/// What an environment is doing (the `State` account).
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvironmentState {
    /// Created, not yet started.
    Created = 0,
    /// Running or ready to run.
    Runnable = 1,
    /// Blocked in `Wait`.
    Waiting = 2,
    /// Blocked in `Call`, until the server replies.
    Calling = 3,
    /// Running no more: it exited, faulted, or a destroyer is taking its
    /// family down; it goes once what it holds is gone, a share at a time.
    Ending = 4,
}

/// The kernel-memory allowance a child gets when its creator passes 0: this
/// many bytes per frame of its frame quota (1/8 of the memory it is lent,
/// the share of memory the kernel heap has): enough for a capability and a
/// mapping record for every frame it holds, with room to spare for its
/// fixed costs.
pub const DEFAULT_KERNEL_BYTES_PER_FRAME: u64 = 512;

/// Kernel bytes charged for one capability in an environment's table: its
/// node in the derivation tree (a 128-byte block of the heap) and the chunk
/// of the mapping index's side table a run mapped through it may keep (64).
/// The arena that indexes the nodes is the kernel's own, allocated whole at
/// boot, so nothing of a capability stays once it goes. Each growth of a table,
/// by [`TABLE_GROWTH`] slots, is charged [`TABLE_GROWTH_BYTES`] besides, until
/// the environment is gone.
pub const CAPABILITY_BYTES: u64 = 224;

/// Kernel bytes charged for one mapped page's records, to the environment
/// the page is mapped in.
pub const MAPPING_RECORD_BYTES: u64 = 192;

/// Slots a capability table gains each time it fills.
pub const TABLE_GROWTH: u32 = 32;

/// Kernel bytes charged for one growth of a capability table.
pub const TABLE_GROWTH_BYTES: u64 = TABLE_GROWTH as u64 * 16;

/// Which frames of a run `Map` maps: `count` of them from `first` (both in
/// frames); packed as `first << 32 | count`, and 0 means the whole run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapPart {
    pub first: u32,
    pub count: u32,
}

impl MapPart {
    /// The whole run.
    pub const WHOLE: u64 = 0;

    pub const fn pack(self) -> u64 {
        (self.first as u64) << 32 | self.count as u64
    }

    /// `None` for the whole run (0).
    pub const fn unpack(packed: u64) -> Option<Self> {
        if packed == Self::WHOLE {
            return None;
        }
        Some(Self {
            first: (packed >> 32) as u32,
            count: packed as u32,
        })
    }
}

/// [`DEFAULT_KERNEL_BYTES_PER_FRAME`] times `frame_quota`.
pub const fn default_kernel_bytes(frame_quota: u64) -> u64 {
    frame_quota.saturating_mul(DEFAULT_KERNEL_BYTES_PER_FRAME)
}

impl TryFrom<u64> for EnvironmentAccount {
    type Error = crate::Error;

    fn try_from(value: u64) -> Result<Self, crate::Error> {
        Self::from_number(value).ok_or(crate::Error::InvalidArgument)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rights;

    #[test]
    fn numbers_round_trip() {
        for sysnum in Sysnum::ALL {
            assert_eq!(Sysnum::try_from(sysnum as u64), Ok(sysnum));
        }
        // Every number no call has, up to past the largest, is refused.
        for number in 0..100 {
            let known = Sysnum::ALL.iter().any(|sysnum| *sysnum as u64 == number);
            if !known {
                assert_eq!(
                    Sysnum::try_from(number),
                    Err(crate::Error::UnknownSystemCall)
                );
            }
        }
        for number in [1 << 32, (1 << 32) + 4, u64::MAX] {
            assert_eq!(
                Sysnum::try_from(number),
                Err(crate::Error::UnknownSystemCall)
            );
        }
    }

    #[test]
    fn numbers_are_unique() {
        for (index, a) in Sysnum::ALL.iter().enumerate() {
            assert!(!Sysnum::ALL[index + 1..].contains(a), "{a:?} listed twice");
        }
    }

    #[test]
    fn capability_info_round_trips() {
        let info = CapabilityInfo {
            kind: CapabilityKind::Frame,
            rights: Rights::READ | Rights::MAP,
            order: 9,
            value: 0x1234,
        };
        assert_eq!(CapabilityInfo::unpack(info.pack(), 0x1234), Some(info));
        assert_eq!(CapabilityInfo::unpack(0, 0), None, "kind 0 is no kind");
        let notification = CapabilityInfo {
            kind: CapabilityKind::Notification,
            rights: Rights::NOTIFICATION,
            order: 0,
            value: 0b101,
        };
        assert_eq!(
            CapabilityInfo::unpack(notification.pack(), 0b101),
            Some(notification)
        );
    }
}
