//! Network bindings: who owns which packets, and the rings that carry them
//! (`docs/05-network.md`).
//!
//! - An **address** is claimed with the NIC capability; its capability is a
//!   child of the NIC's, and its original is recorded in `addresses` so no
//!   second claim can take it while it lives.
//! - A **binding** is a child of the frame capability whose run holds its
//!   rings, so the frames cannot be freed while the kernel uses them: their
//!   removal removes the binding first.
//! - A **filter** is a child of its address's capability and points at a
//!   binding; the filter table (`exo_kernel_core::demux`) maps it back. One
//!   attached through a copy of the binding's capability goes with that copy.
//!
//! Received frames are demultiplexed in the NIC interrupt and copied into
//! the owning binding's receive ring. Transmit rings are drained at NIC
//! interrupts, timer ticks, when their owner stops running (it waits,
//! yields, calls, or its slot ends), and on `NetKick`; each frame is copied into a kernel buffer and
//! its source checked there before the device sees it.

use alloc::collections::{BTreeMap, BTreeSet};

use exo_abi::counters::Counter;
use exo_abi::net::{
    Counters, Filter, MAX_FRAME, MAX_RING_ORDER, MIN_FRAME, MIN_RING_ORDER, Ring, SLOT_SIZE,
    TxFlags, control, ring_entries, rx_slot_offset, tx_slot_offset,
};
use exo_abi::syscall::NO_CAPABILITY;
use exo_abi::trace::Kind;
use exo_abi::{Error, Handle, Rights};
use exo_kernel_core::askers::{ASKS_BYTES, Askers, Asks, Bounded};
use exo_kernel_core::btree::GiveBackWhenEmpty;
use exo_kernel_core::caps::{CapabilitySpace, NodeId};
use exo_kernel_core::demux::{
    self, Claim, Destination, FilterKey, FilterTable, Ipv4, Mac, Refusal,
};
use exo_kernel_core::memory_map::FRAME_SIZE;

use super::user_memory::UserRange;
use super::{EnvironmentId, Object, System};
use crate::arch::cpu;
use crate::nic::NIC;
use crate::nic::device::{Nic, SendError};
use crate::nic::ring_memory::RingMemory;
use crate::trace;

/// Ticks a polled transmit ring may stay empty before the kernel stops
/// polling it and sets `NEED_WAKEUP`. More than two: after the host has
/// stalled a guest, an overdue tick and the next one on the timer's grid
/// can come back to back, before a busy producer has had time to refill.
const IDLE_TICKS: u32 = 4;

/// The most transmit entries one drain takes, over all the rings it visits.
/// A refused entry (a spoof, a malformed frame) takes no device buffer, so
/// the device's 64 do not bound a drain; and one environment can fill
/// hundreds of rings with one store, since rings may share their memory
/// (5.4). Unbounded, one drain of 100 such rings kept the CPU, interrupts
/// off, for 16 ticks of the instruction clock, of 800 for 25
/// (`hostile-drains`). An
/// entry of 1514 bytes costs about a sixtieth of a tick there, so 64 a
/// drain left a program that shared the CPU with the ticks' drains nothing;
/// 16 leave it most of every tick. The rest wait for the next drain.
const DRAIN_ENTRIES: u32 = 16;
/// The most rings one drain visits, for the same reason: a visit to an
/// empty ring costs little, but one environment can poll hundreds.
const DRAIN_VISITS: u32 = 64;
/// The most entries a tick's drain and the NIC's interrupts drain between
/// two ticks, all of them together: they run in whoever's time it is. A
/// ring's owner drains its own in its own time, when it waits or kicks; these
/// drains are for rings left waiting for room in the device. A drain that
/// sends frames ends in the device's interrupt for their completion, which
/// drained again: one store of valid frames into 400 rings kept the CPU in
/// back-to-back interrupts for 55 ticks, and with the interrupts' drains
/// and the tick's each allowed 16 entries a tick, the neighbour it ran beside
/// still got only 55% of the CPU (`hostile-drains`).
const BACKGROUND_DRAIN_ENTRIES: u32 = 4;

/// A binding's name in the kernel (never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BindingId(u32);

impl Bounded for BindingId {
    const MIN: Self = BindingId(u32::MIN);
    const MAX: Self = BindingId(u32::MAX);
}

/// The network half of the system state.
#[derive(Debug)]
pub(super) struct Network {
    filters: FilterTable<BindingId>,
    bindings: BTreeMap<BindingId, Binding>,
    /// The first of the bindings whose transmit rings the kernel polls; each
    /// links to the next and the one before (`Binding::next_polled`,
    /// `previous_polled`), so a tick, an interrupt or a switch drains in
    /// proportion to the rings that are busy, not to every binding there is,
    /// and a ring that falls idle leaves the list at once.
    first_polled: Option<BindingId>,
    /// The last of them. A drain that stops at its budget
    /// ([`DRAIN_ENTRIES`], [`DRAIN_VISITS`]) moves the rings it visited
    /// behind this one, so the next starts where it stopped and every busy
    /// ring has its turn.
    last_polled: Option<BindingId>,
    /// Each claimed address, by its original capability.
    addresses: BTreeMap<Ipv4, NodeId>,
    /// The bindings waiting for an ARP reply, by the address they asked from
    /// and the host they asked (each binding's place: `Binding::asks`).
    askers: Askers<BindingId>,
    /// Every binding's filters, by binding and key. One B-tree for all, not a
    /// list in each binding: a list keeps the room its removed filters took, so
    /// a binding given many filters and then none would keep, uncharged, what
    /// they had paid for (hundreds of bindings, megabytes); a B-tree frees its
    /// nodes as entries go.
    bound: BTreeMap<(BindingId, FilterKey), BoundFilter>,
    /// Every filter by the node of the binding capability it was attached
    /// through, the original's or a copy's: they go when it goes, as pages
    /// mapped through a frame capability do, one at a time before it
    /// (`forget_a_filter_through`).
    through_copies: BTreeSet<(NodeId, BindingId, FilterKey)>,
    /// Every binding by the environment that made it, so that an
    /// environment's packet counts add up its own bindings, not every one
    /// there is (500 of a neighbour's once made each `EnvironmentInfo` of
    /// them cost 40 times an `Id`). Paid for in `BINDING_BYTES`.
    owned: BTreeSet<(EnvironmentId, BindingId)>,
    /// For each environment with a binding, the first of its polled ones;
    /// each links to the next of the same owner (`Binding::next_owned_polled`).
    /// When an environment leaves the CPU its own polled rings are drained,
    /// not the first of everyone's: behind 800 of a neighbour's, a ring that
    /// was already polled once waited 736 ticks for its turn. Made with the
    /// owner's first binding (paid in `BINDING_BYTES`), so polling
    /// allocates nothing.
    polled_by_owner: BTreeMap<EnvironmentId, Option<BindingId>>,
    next_binding: u32,
    /// Entries the NIC's interrupts may still drain before the next tick
    /// ([`BACKGROUND_DRAIN_ENTRIES`], less what the tick's drain took).
    background_budget: u32,
}

#[derive(Debug)]
struct Binding {
    /// Its original capability.
    node: NodeId,
    /// The environment that made it: drained when that one stops running.
    owner: EnvironmentId,
    memory: RingMemory,
    ring: Ring,
    /// The kernel's own indices; the shared copies are only ever written.
    rx_produced: u32,
    tx_consumed: u32,
    /// The last impossible transmit producer seen, so it is counted once.
    tx_bad_producer: Option<u32>,
    /// Signalled when a frame arrives in an empty receive ring: the
    /// notification capability it was made with (its node), and that
    /// capability's target and bits.
    notification: Option<(NodeId, EnvironmentId, u64)>,
    /// Whether the kernel drains the transmit ring on its own (`NEED_WAKEUP` clear).
    polling: bool,
    idle_ticks: u32,
    /// The next polled binding and the one before, while this one is polled.
    next_polled: Option<BindingId>,
    previous_polled: Option<BindingId>,
    /// The same among its owner's polled bindings (`Network::polled_by_owner`).
    next_owned_polled: Option<BindingId>,
    previous_owned_polled: Option<BindingId>,
    /// Its place among the bindings waiting for an ARP reply
    /// (`Network::askers`): the address it asked from, the hosts it asked.
    asks: Asks,
    counters: Counters,
}

/// The most bindings one ARP reply is copied to: the oldest that asked its
/// sender from its address, so what a reply costs the kernel is paid for by
/// requests, one each, and no number of bindings makes it larger. The rest
/// wait for the next reply (each asked, so each has one coming). Copied to
/// every binding on the address, the replies to a program with 500 bindings
/// on it asking the gateway in bursts kept a slot holder from the CPU,
/// interrupts off, for 32 to 43 ticks of the instruction clock in one
/// stretch (`hostile-arp`; 6 now, a round of its slice vector).
const ARP_REPLY_FANOUT: u32 = 8;

/// A filter feeding a binding (`Network::bound`, keyed by binding and key).
#[derive(Clone, Copy, Debug)]
struct BoundFilter {
    /// Its original capability.
    node: NodeId,
    /// Who made it, and pays for its records.
    payer: EnvironmentId,
    /// The capability for the binding it was attached through.
    through: NodeId,
}

impl Binding {
    /// Copies the counters into the control page.
    fn publish(&self) {
        let mut bytes = [0; Counters::COUNT * 8];
        for (chunk, value) in bytes.chunks_exact_mut(8).zip(self.counters.to_array()) {
            chunk.copy_from_slice(&value.to_ne_bytes());
        }
        self.memory.write(control::COUNTERS, &bytes);
    }

    fn count_sent(&mut self, id: BindingId, length: u64) {
        self.counters.tx_packets += 1;
        self.counters.tx_bytes += length;
        cpu::current().count(Counter::FramesSent);
        trace::record(Kind::FrameSent, self.owner.0, [u64::from(id.0), length]);
    }

    /// Sets the flag the producer reads; `Network::set_polling` also keeps
    /// the list of polled bindings.
    fn set_polling_flag(&mut self, polling: bool) {
        self.polling = polling;
        self.idle_ticks = 0;
        let flags = if polling {
            TxFlags::empty()
        } else {
            TxFlags::NEED_WAKEUP
        };
        self.memory.store(control::TX_FLAGS, flags.bits());
    }

    /// Copies `frame` into the receive ring. `None` if it did not fit;
    /// otherwise whether the ring was empty before (as its consumer says:
    /// the index is read once).
    fn receive(&mut self, frame: &[u8]) -> Option<bool> {
        let consumer = self.memory.load(control::RX_CONSUMER);
        let fits = self
            .ring
            .free(self.rx_produced, consumer)
            .is_some_and(|free| free > 0);
        if !fits {
            self.counters.rx_drops += 1;
            return None;
        }
        let slot = self.ring.slot(self.rx_produced);
        self.memory.write(rx_slot_offset(slot), frame);
        self.memory.store(
            control::RX_DESCRIPTORS + 4 * u64::from(slot),
            frame.len() as u32,
        );
        self.rx_produced = self.rx_produced.wrapping_add(1);
        self.memory.store(control::RX_PRODUCER, self.rx_produced);
        self.counters.rx_packets += 1;
        self.counters.rx_bytes += frame.len() as u64;
        Some(consumer == self.rx_produced.wrapping_sub(1))
    }
}

impl Network {
    pub(super) const fn new() -> Self {
        Self {
            filters: FilterTable::new(),
            bindings: BTreeMap::new(),
            first_polled: None,
            last_polled: None,
            addresses: BTreeMap::new(),
            askers: Askers::new(),
            bound: BTreeMap::new(),
            through_copies: BTreeSet::new(),
            owned: BTreeSet::new(),
            polled_by_owner: BTreeMap::new(),
            next_binding: 1,
            background_budget: BACKGROUND_DRAIN_ENTRIES,
        }
    }

    /// Polls binding `id`'s transmit ring or stops, keeping the list of
    /// polled bindings. Allocates nothing, and takes the same few steps
    /// however many bindings are polled.
    fn set_polling(&mut self, id: BindingId, polling: bool) {
        let Some(binding) = self.bindings.get_mut(&id) else {
            return;
        };
        let was = binding.polling;
        let owner = binding.owner;
        binding.set_polling_flag(polling);
        match (was, polling) {
            (false, true) => {
                binding.next_polled = self.first_polled;
                binding.previous_polled = None;
                match self.first_polled {
                    Some(first) => self.polled(first).previous_polled = Some(id),
                    None => self.last_polled = Some(id),
                }
                self.first_polled = Some(id);
                let first_owned = self.first_owned_polled(owner).replace(id);
                if let Some(first) = first_owned {
                    self.polled(first).previous_owned_polled = Some(id);
                }
                let binding = self.polled(id);
                binding.next_owned_polled = first_owned;
                binding.previous_owned_polled = None;
            }
            (true, false) => {
                let next = binding.next_polled.take();
                let previous = binding.previous_polled.take();
                let next_owned = binding.next_owned_polled.take();
                let previous_owned = binding.previous_owned_polled.take();
                match previous {
                    Some(previous) => self.polled(previous).next_polled = next,
                    None => self.first_polled = next,
                }
                match next {
                    Some(next) => self.polled(next).previous_polled = previous,
                    None => self.last_polled = previous,
                }
                match previous_owned {
                    Some(previous) => self.polled(previous).next_owned_polled = next_owned,
                    None => *self.first_owned_polled(owner) = next_owned,
                }
                if let Some(next) = next_owned {
                    self.polled(next).previous_owned_polled = previous_owned;
                }
            }
            _ => {}
        }
    }

    /// The first of `owner`'s polled bindings, which has a binding.
    fn first_owned_polled(&mut self, owner: EnvironmentId) -> &mut Option<BindingId> {
        self.polled_by_owner
            .get_mut(&owner)
            .expect("an owner of a binding has its list of polled ones")
    }

    /// Makes polled binding `id` the first on the list, the ones before it
    /// moving behind the last: the next drain starts where one stopped.
    fn start_polling_at(&mut self, id: BindingId) {
        let Some(previous) = self.polled(id).previous_polled else {
            return;
        };
        let first = self
            .first_polled
            .expect("a list with two bindings has a first");
        let last = self
            .last_polled
            .expect("a list with two bindings has a last");
        self.polled(last).next_polled = Some(first);
        self.polled(first).previous_polled = Some(last);
        self.polled(previous).next_polled = None;
        self.polled(id).previous_polled = None;
        self.first_polled = Some(id);
        self.last_polled = Some(previous);
    }

    /// A binding on the list of polled ones.
    fn polled(&mut self, id: BindingId) -> &mut Binding {
        self.bindings.get_mut(&id).expect("polled bindings exist")
    }

    /// Binding `id` sent an ARP request from `address` about `host`: it
    /// waits for a reply there (`Askers::ask`). Its entry was paid for with
    /// the binding; the heap has room for it unless the accounts are wrong,
    /// and then the binding is not noted (it hears no reply, and asks again)
    /// rather than the kernel panicking.
    fn ask(&mut self, id: BindingId, address: Ipv4, host: Ipv4) {
        if !crate::memory::heap::has_room() {
            return;
        }
        if let Some(binding) = self.bindings.get_mut(&id) {
            self.askers.ask(id, &mut binding.asks, address, host);
        }
    }

    /// Takes binding `id` out of the askers it waits among, if it does.
    fn stop_asking(&mut self, id: BindingId) {
        if let Some(binding) = self.bindings.get_mut(&id) {
            self.askers.leave(id, &mut binding.asks);
        }
    }

    /// The oldest binding that asked `host` from `address` and waits for its
    /// reply: it hears from `host` now, and waits for it no more.
    fn answer(&mut self, address: Ipv4, host: Ipv4) -> Option<BindingId> {
        let id = self.askers.oldest(address, host)?;
        let binding = self.bindings.get_mut(&id).expect("askers exist");
        self.askers.heard(id, &mut binding.asks, host);
        Some(id)
    }

    /// Filter `key` of binding `id` went: a binding with no filter left on
    /// the key's address may not send ARP from it, and waits there no more.
    fn filter_gone(&mut self, key: FilterKey, id: BindingId) {
        self.filters.remove(key, id);
        if self
            .bindings
            .get(&id)
            .is_some_and(|binding| binding.asks.address() == Some(key.address))
            && !self.filters.allows(id, Claim::Address(key.address))
        {
            self.stop_asking(id);
        }
    }

    /// Forgets one filter attached through the binding capability `through`,
    /// handing who paid for it to `paid`; false if none is left. A binding's
    /// capability goes only once all of its filters have gone this way, one
    /// at a time within the removal's share: a thousand, all at once, once
    /// kept the CPU 13 ticks (`hostile-drains`).
    pub fn forget_a_filter_through(
        &mut self,
        through: NodeId,
        paid: &mut dyn FnMut(EnvironmentId, u64),
    ) -> bool {
        let Some(&(_, id, key)) = self
            .through_copies
            .range((through, BindingId(0), LOWEST_FILTER_KEY)..)
            .next()
            .filter(|(node, _, _)| *node == through)
        else {
            return false;
        };
        self.through_copies.remove(&(through, id, key));
        self.through_copies.give_back_when_empty();
        if let Some(filter) = self.bound.remove(&(id, key)) {
            self.bound.give_back_when_empty();
            self.filter_gone(key, id);
            paid(filter.payer, NETWORK_OBJECT_BYTES);
        }
        true
    }

    /// Carries out the removal of a network capability (`System::removing`).
    /// Forgets the network object whose original capability `node` was,
    /// handing each environment that paid for a record that went to `paid`
    /// (`removing` gives the charge back). Allocates nothing.
    pub(super) fn removed(
        &mut self,
        object: Object,
        node: NodeId,
        owner: EnvironmentId,
        paid: &mut impl FnMut(EnvironmentId, u64),
    ) {
        match object {
            // Only an original counts: derived and granted copies go first.
            Object::Address(address)
                if self
                    .addresses
                    .get(&address)
                    .is_some_and(|&original| original == node) =>
            {
                // No binding waits on it: each stopped with its last filter
                // on the address, and those went first.
                debug_assert!(self.askers.any_on(address).is_none());
                self.addresses.remove(&address);
                self.addresses.give_back_when_empty();
                paid(owner, NETWORK_OBJECT_BYTES);
            }
            Object::Binding(id)
                if self
                    .bindings
                    .get(&id)
                    .is_some_and(|binding| binding.node == node) =>
            {
                self.set_polling(id, false);
                self.stop_asking(id);
                if let Some(binding) = self.bindings.remove(&id) {
                    let owner = binding.owner;
                    self.owned.remove(&(owner, id));
                    self.owned.give_back_when_empty();
                    let first = (owner, BindingId(0));
                    let last = (owner, BindingId(u32::MAX));
                    if self.owned.range(first..=last).next().is_none() {
                        self.polled_by_owner.remove(&owner);
                        self.polled_by_owner.give_back_when_empty();
                    }
                }
                self.bindings.give_back_when_empty();
                // Its filters, one at a time from the lowest key: nothing is collected.
                while let Some((&(_, key), &filter)) = self
                    .bound
                    .range((id, LOWEST_FILTER_KEY)..)
                    .next()
                    .filter(|((binding, _), _)| *binding == id)
                {
                    self.bound.remove(&(id, key));
                    self.through_copies.remove(&(filter.through, id, key));
                    self.filter_gone(key, id);
                    paid(filter.payer, NETWORK_OBJECT_BYTES);
                }
                self.bound.give_back_when_empty();
                self.through_copies.give_back_when_empty();
                paid(owner, BINDING_BYTES);
            }
            // A copy (or one whose binding is gone): the filters attached
            // through it go with it. Revoking a copy takes back the right to
            // steer frames into the binding's rings, and with the filter the
            // binding could send as its address and port.
            Object::Binding(id) => {
                while let Some(&(_, _, key)) = self
                    .through_copies
                    .range((node, id, LOWEST_FILTER_KEY)..)
                    .next()
                    .filter(|(through, binding, _)| *through == node && *binding == id)
                {
                    self.through_copies.remove(&(node, id, key));
                    let filter = self
                        .bound
                        .remove(&(id, key))
                        .expect("a filter attached through a copy is bound");
                    self.filter_gone(key, id);
                    paid(filter.payer, NETWORK_OBJECT_BYTES);
                }
                self.bound.give_back_when_empty();
                self.through_copies.give_back_when_empty();
            }
            Object::Filter { binding, key }
                if self
                    .bound
                    .get(&(binding, key))
                    .is_some_and(|filter| filter.node == node) =>
            {
                let filter = self.bound.remove(&(binding, key)).expect("found above");
                self.bound.give_back_when_empty();
                self.through_copies.remove(&(filter.through, binding, key));
                self.through_copies.give_back_when_empty();
                self.filter_gone(key, binding);
                paid(filter.payer, NETWORK_OBJECT_BYTES);
            }
            _ => {}
        }
    }
}

/// The least filter key: address 0, and ARP (the first protocol) with port 0.
const LOWEST_FILTER_KEY: FilterKey = FilterKey {
    address: 0,
    filter: Filter::arp(),
};

/// What a claimed address's or a filter's records may cost the kernel
/// beyond its capability: their entries, each far smaller than a binding's
/// record, four times which this is.
pub(super) const NETWORK_OBJECT_BYTES: u64 = 4 * size_of::<Binding>() as u64;

/// What a binding's records may cost the kernel beyond its capability: its
/// record and its entry among its owner's, as any network object's, and its
/// place among ARP askers.
pub(super) const BINDING_BYTES: u64 = NETWORK_OBJECT_BYTES + ASKS_BYTES;

impl System {
    /// Makes a network object's original capability with `insert`, charging
    /// `caller` for the capability and the object's records, `bytes`.
    fn new_network_object(
        &mut self,
        caller: EnvironmentId,
        bytes: u64,
        insert: impl FnOnce(&mut CapabilitySpace<Object>) -> Result<Handle, Error>,
    ) -> Result<Handle, Error> {
        self.charge_kernel(caller, bytes)?;
        self.new_capability(caller, insert).inspect_err(|_| {
            self.uncharge_kernel(caller, bytes);
        })
    }

    /// The counts of every live binding `owner` made, added up.
    pub(super) fn net_counts_of(&self, owner: EnvironmentId) -> Counters {
        let mut total = Counters::default();
        let first = (owner, BindingId(0));
        let last = (owner, BindingId(u32::MAX));
        for (_, id) in self.net.owned.range(first..=last) {
            let counts = &self.net.bindings[id].counters;
            total.rx_packets += counts.rx_packets;
            total.tx_packets += counts.tx_packets;
            total.rx_drops += counts.rx_drops;
            total.tx_errors += counts.tx_errors;
            total.spoofs += counts.spoofs;
        }
        total
    }

    /// The binding `handle` names, which must allow `BIND`.
    fn binding_of(&self, caller: EnvironmentId, handle: Handle) -> Result<BindingId, Error> {
        let (id, _) = self.capability_as(caller, handle, Rights::BIND, |object| match object {
            Object::Binding(id) => Some(id),
            _ => None,
        })?;
        Ok(id)
    }

    /// Entries per ring of binding `id`.
    pub(super) fn binding_entries(&self, id: BindingId) -> u64 {
        self.net
            .bindings
            .get(&id)
            .map_or(0, |binding| u64::from(binding.ring.entries()))
    }

    fn binding(&mut self, id: BindingId) -> &mut Binding {
        self.net
            .bindings
            .get_mut(&id)
            .expect("a live binding capability names a live binding")
    }

    /// The rights of a network object made from the capability `handle`
    /// names: `rights`, less whichever of `GRANT` and `REVOKE` that one
    /// lacks, so that rights only shrink along the tree (chapter 2.3). (A
    /// binding made from a copy of frames without `GRANT` once came with it.)
    fn rights_made_from(&self, caller: EnvironmentId, handle: Handle, rights: Rights) -> Rights {
        let held = self
            .capabilities
            .lookup(caller, handle)
            .map_or(Rights::empty(), |capability| capability.rights);
        rights.difference((Rights::GRANT | Rights::REVOKE).difference(held))
    }

    /// `NetClaim`: the address `address` for `caller`, made from the NIC capability.
    pub fn net_claim(
        &mut self,
        caller: EnvironmentId,
        nic: Handle,
        address: u64,
    ) -> Result<Handle, Error> {
        let ((), parent) = self.capability_as(caller, nic, Rights::BIND, |object| {
            matches!(object, Object::Nic).then_some(())
        })?;
        let address = u32::try_from(address)
            .ok()
            .filter(|&address| demux::claimable(address))
            .ok_or(Error::InvalidArgument)?;
        if self.net.addresses.contains_key(&address) {
            return Err(Error::AddressInUse);
        }
        let rights = self.rights_made_from(caller, nic, Rights::NET);
        let handle = self.new_network_object(caller, NETWORK_OBJECT_BYTES, |capabilities| {
            capabilities.insert_child(caller, parent, Object::Address(address), rights)
        })?;
        let node = self.capabilities.lookup(caller, handle)?.node;
        self.net.addresses.insert(address, node);
        Ok(handle)
    }

    /// `NetBind`: a binding whose rings live in the run `frames` names.
    pub fn net_bind(
        &mut self,
        caller: EnvironmentId,
        frames: Handle,
        notification: u64,
    ) -> Result<(Handle, u64), Error> {
        let ((first, order), parent) = self.capability_as(
            caller,
            frames,
            Rights::READ | Rights::WRITE,
            |object| match object {
                Object::Frame { first, order } => Some((first, u32::from(order))),
                _ => None,
            },
        )?;
        if !(MIN_RING_ORDER..=MAX_RING_ORDER).contains(&order) {
            return Err(Error::InvalidArgument);
        }
        let notification = match notification {
            NO_CAPABILITY => None,
            handle => {
                let ((target, bits), node) =
                    self.notification_of(caller, Handle::from_raw(handle))?;
                Some((node, target, bits))
            }
        };
        // Ids are never reused (a stale one must name nothing), so the last
        // one is refused rather than wrapped onto a live binding: at one
        // `NetBind` a microsecond that is over an hour away, as for
        // environment ids.
        if self.net.next_binding == u32::MAX {
            return Err(Error::TableFull);
        }
        let id = BindingId(self.net.next_binding);
        let rights = self.rights_made_from(caller, frames, Rights::NET);
        let handle = self.new_network_object(caller, BINDING_BYTES, |capabilities| {
            capabilities.insert_child(caller, parent, Object::Binding(id), rights)
        })?;
        self.net.next_binding += 1;
        let node = self.capabilities.lookup(caller, handle)?.node;
        let entries = ring_entries(order);
        // The binding's capability is a child of the frames', so the binding
        // (and this view) is removed before the frames can be freed.
        let memory = RingMemory::new(first * FRAME_SIZE, order)
            .expect("frame capabilities name lent frames");
        for index in [
            control::RX_PRODUCER,
            control::RX_CONSUMER,
            control::TX_PRODUCER,
            control::TX_CONSUMER,
        ] {
            memory.store(index, 0);
        }
        let mut binding = Binding {
            node,
            owner: caller,
            memory,
            ring: Ring::new(entries).expect("a power of two"),
            rx_produced: 0,
            tx_consumed: 0,
            tx_bad_producer: None,
            notification,
            polling: false,
            idle_ticks: 0,
            next_polled: None,
            previous_polled: None,
            next_owned_polled: None,
            previous_owned_polled: None,
            asks: Asks::default(),
            counters: Counters::default(),
        };
        binding.set_polling_flag(false);
        binding.publish();
        self.net.bindings.insert(id, binding);
        self.net.owned.insert((caller, id));
        self.net.polled_by_owner.entry(caller).or_insert(None);
        Ok((handle, u64::from(entries)))
    }

    /// `NetFilter`: frames matching `filter` on the address `address` names go to `binding`.
    pub fn net_filter(
        &mut self,
        caller: EnvironmentId,
        binding: Handle,
        address: Handle,
        filter: u64,
    ) -> Result<Handle, Error> {
        let (id, through) =
            self.capability_as(caller, binding, Rights::BIND, |object| match object {
                Object::Binding(id) => Some(id),
                _ => None,
            })?;
        if self.capabilities.is_going(through) {
            // A removal stopped at this copy while forgetting the filters
            // attached through it: one more each time would keep it from
            // ever ending (`Undo::prepare`), as a `Map` through a frame
            // capability on its way out would.
            return Err(Error::StaleHandle);
        }
        let rights = self.rights_made_from(caller, address, Rights::GRANT | Rights::REVOKE);
        let (address, parent) =
            self.capability_as(caller, address, Rights::BIND, |object| match object {
                Object::Address(address) => Some(address),
                _ => None,
            })?;
        let filter = Filter::unpack(filter)?;
        if !demux::fits(address, filter) {
            return Err(Error::InvalidArgument);
        }
        let key = FilterKey { address, filter };
        // Paid for before the demultiplexer's table grows: a spent account
        // changes nothing. The charge covers the table entry and the entries
        // in `bound` and `through_copies` below.
        self.charge_kernel(caller, NETWORK_OBJECT_BYTES)?;
        if let Err(error) = self.net.filters.insert(key, id) {
            self.uncharge_kernel(caller, NETWORK_OBJECT_BYTES);
            return Err(error);
        }
        let made = self.new_capability(caller, |capabilities| {
            let object = Object::Filter { binding: id, key };
            capabilities.insert_child(caller, parent, object, rights)
        });
        let handle = match made {
            Ok(handle) => handle,
            Err(error) => {
                self.net.filters.remove(key, id);
                self.uncharge_kernel(caller, NETWORK_OBJECT_BYTES);
                return Err(error);
            }
        };
        let node = self
            .capabilities
            .lookup(caller, handle)
            .expect("just inserted")
            .node;
        let filter = BoundFilter {
            node,
            payer: caller,
            through,
        };
        self.net.bound.insert((id, key), filter);
        self.net.through_copies.insert((through, id, key));
        Ok(handle)
    }

    /// `NetKick`: drains the binding's transmit ring and polls it again.
    pub fn net_kick(&mut self, caller: EnvironmentId, binding: Handle) -> Result<(), Error> {
        let id = self.binding_of(caller, binding)?;
        // Without a card, nothing changes: the ring is not polled.
        let mut nic = NIC.lock();
        let nic = nic.as_mut().ok_or(Error::NoDevice)?;
        let binding = self.binding(id);
        binding.counters.kicks += 1;
        binding.counters.syscalls += 1;
        self.net.set_polling(id, true);
        trace::record(Kind::Kick, caller.0, [u64::from(id.0), 0]);
        let mut budget = DRAIN_ENTRIES;
        self.drain(id, nic, &mut budget);
        Ok(())
    }

    /// `NetSend`: sends the `length`-byte frame at `address` now.
    pub fn net_send(
        &mut self,
        caller: EnvironmentId,
        binding: Handle,
        address: u64,
        length: u64,
    ) -> Result<(), Error> {
        let id = self.binding_of(caller, binding)?;
        self.binding(id).counters.syscalls += 1;
        if !(MIN_FRAME as u64..=MAX_FRAME as u64).contains(&length) {
            self.binding(id).counters.tx_errors += 1;
            return Err(Error::InvalidArgument);
        }
        let range = UserRange::new(address, length)?;
        let mut nic = NIC.lock();
        let nic = nic.as_mut().ok_or(Error::NoDevice)?;
        let mac = nic.mac();
        let mut outcome = Ok(());
        let sent = nic.send(length as usize, |frame| {
            outcome = self
                .read_user(caller, range, frame)
                .and_then(|()| self.check_source(id, frame, mac));
            outcome.is_ok()
        });
        let binding = self.binding(id);
        if sent.is_ok() {
            binding.count_sent(id, length);
        }
        binding.publish();
        match sent {
            Ok(()) => Ok(()),
            Err(SendError::Full) => Err(Error::WouldBlock),
            Err(SendError::Refused) => outcome,
        }
    }

    /// `NetReceive`: moves the oldest received frame into the buffer at
    /// `address` (at most `capacity` bytes); returns its length.
    pub fn net_receive(
        &mut self,
        caller: EnvironmentId,
        binding: Handle,
        address: u64,
        capacity: u64,
    ) -> Result<u64, Error> {
        let id = self.binding_of(caller, binding)?;
        let binding = self.binding(id);
        binding.counters.syscalls += 1;
        binding.publish();
        let consumer = binding.memory.load(control::RX_CONSUMER);
        match binding.ring.filled(binding.rx_produced, consumer) {
            None => return Err(Error::InvalidState),
            Some(0) => return Err(Error::WouldBlock),
            Some(_) => {}
        }
        let slot = binding.ring.slot(consumer);
        // The length is the kernel's own, but it sits in shared memory: check it again.
        let length = u64::from(
            binding
                .memory
                .load(control::RX_DESCRIPTORS + 4 * u64::from(slot)),
        )
        .min(MAX_FRAME as u64);
        if capacity < length {
            return Err(Error::InvalidArgument);
        }
        let mut frame = [0; MAX_FRAME];
        let frame = &mut frame[..length as usize];
        binding.memory.read(rx_slot_offset(slot), frame);
        let range = UserRange::new(address, length)?;
        self.write_user(caller, range, frame)?;
        self.binding(id)
            .memory
            .store(control::RX_CONSUMER, consumer.wrapping_add(1));
        Ok(length)
    }

    /// Whether binding `id` may send `frame` from the NIC with address `mac`.
    fn check_source(&mut self, id: BindingId, frame: &[u8], mac: Mac) -> Result<(), Error> {
        let allowed = demux::claim(frame, mac).map(|claim| self.net.filters.allows(id, claim));
        let binding = self.binding(id);
        match allowed {
            Ok(true) => {
                if let Some((address, host)) = demux::arp_request_from(frame) {
                    self.net.ask(id, address, host);
                }
                Ok(())
            }
            Err(Refusal::Malformed) => {
                binding.counters.tx_errors += 1;
                Err(Error::InvalidArgument)
            }
            Ok(false) | Err(Refusal::Spoofed) => {
                binding.counters.spoofs += 1;
                cpu::current().count(Counter::FramesRefused);
                Err(Error::NotBound)
            }
        }
    }

    /// Sends what binding `id`'s transmit ring holds, as far as the device
    /// has room and at most `budget` entries, taking each from `budget`;
    /// returns how many entries were waiting. (A ring the device had no
    /// room for is busy, not idle: it stays polled.)
    fn drain(&mut self, id: BindingId, nic: &mut Nic, budget: &mut u32) -> u32 {
        let binding = self.binding(id);
        let producer = binding.memory.load(control::TX_PRODUCER);
        let Some(filled) = binding.ring.filled(producer, binding.tx_consumed) else {
            if binding.tx_bad_producer != Some(producer) {
                binding.tx_bad_producer = Some(producer);
                binding.counters.tx_errors += 1;
                binding.publish();
            }
            return 0;
        };
        // Nothing produced: the consumer index and the counters stand as
        // they are. Drains run at every tick, interrupt, switch and `Wait`,
        // most of them on rings with nothing in them.
        if filled == 0 {
            return 0;
        }
        let mac = nic.mac();
        let mut taken = 0;
        while taken < filled && *budget > 0 {
            let binding = self.binding(id);
            let entries = binding.ring.entries();
            let slot = binding.ring.slot(binding.tx_consumed);
            let length = binding
                .memory
                .load(control::TX_DESCRIPTORS + 4 * u64::from(slot))
                as usize;
            if (MIN_FRAME..=MAX_FRAME).contains(&length) {
                let sent = nic.send(length, |frame| {
                    self.binding(id)
                        .memory
                        .read(tx_slot_offset(entries, slot), frame);
                    self.check_source(id, frame, mac).is_ok()
                });
                if sent == Err(SendError::Full) {
                    // The device has no room: the entry waits for the next drain.
                    break;
                }
                if sent.is_ok() {
                    self.binding(id).count_sent(id, length as u64);
                }
            } else {
                self.binding(id).counters.tx_errors += 1;
            }
            let binding = self.binding(id);
            binding.tx_consumed = binding.tx_consumed.wrapping_add(1);
            taken += 1;
            *budget -= 1;
        }
        let binding = self.binding(id);
        binding
            .memory
            .store(control::TX_CONSUMER, binding.tx_consumed);
        binding.publish();
        filled
    }

    /// Delivers a frame the NIC received to the binding(s) that own it.
    fn deliver(&mut self, frame: &[u8], mac: Mac) {
        let mut delivered = false;
        match demux::classify(frame, mac) {
            Destination::Filter(key) => {
                if let Some(id) = self.net.filters.owner(key) {
                    delivered = self.deliver_to(id, frame);
                }
            }
            Destination::ArpReply { address, host } => {
                // To the oldest that asked its sender from its address.
                for _ in 0..ARP_REPLY_FANOUT {
                    let Some(id) = self.net.answer(address, host) else {
                        break;
                    };
                    delivered |= self.deliver_to(id, frame);
                }
            }
            Destination::Unmatched(_) => {}
        }
        if !delivered {
            cpu::current().count(Counter::FramesUnmatched);
        }
    }

    fn deliver_to(&mut self, id: BindingId, frame: &[u8]) -> bool {
        let binding = self.binding(id);
        let received = binding.receive(frame);
        binding.publish();
        if received.is_some() {
            let values = [u64::from(id.0), frame.len() as u64];
            trace::record(Kind::FrameReceived, binding.owner.0, values);
        }
        // Only while the capability it was made with lives: revoking or
        // dropping that capability takes back the right to signal its target,
        // from the binding too (the node id's generation tells a removed node
        // from a newer one in its place).
        if received == Some(true)
            && let Some((node, target, bits)) = binding.notification
            && self.capabilities.node(node).is_some()
        {
            self.raise(target, bits);
        }
        received.is_some()
    }

    /// The NIC interrupted: take what it received, then drain polled rings.
    pub fn net_interrupt(&mut self) {
        let mut nic = NIC.lock();
        let Some(nic) = nic.as_mut() else { return };
        nic.acknowledge_interrupt();
        self.receive_from(nic);
        let mut budget = self.net.background_budget;
        self.drain_polled(nic, &mut budget, |system, id, nic, budget| {
            system.drain_busy(id, nic, budget);
        });
        self.net.background_budget = budget;
    }

    /// Delivers what the NIC has received.
    fn receive_from(&mut self, nic: &mut Nic) {
        let mac = nic.mac();
        let received = nic.receive(|frame| self.deliver(frame, mac));
        for _ in 0..received {
            cpu::current().count(Counter::FramesReceived);
        }
    }

    /// A timer tick: take what arrived, drain polled rings, and stop polling
    /// the ones idle too long.
    pub fn net_tick(&mut self) {
        if self.net.bindings.is_empty() {
            return;
        }
        let mut nic = NIC.lock();
        let Some(nic) = nic.as_mut() else { return };
        // Normally the interrupt has taken everything; this catches a
        // missed one, and is all there is if the line could not be routed.
        self.receive_from(nic);
        let mut budget = BACKGROUND_DRAIN_ENTRIES;
        self.drain_polled(nic, &mut budget, |system, id, nic, budget| {
            if system.drain_busy(id, nic, budget) {
                return;
            }
            let binding = system.binding(id);
            binding.idle_ticks += 1;
            if binding.idle_ticks >= IDLE_TICKS {
                system.net.set_polling(id, false);
                // An entry produced before the flag was visible would wait
                // for a kick that never comes: look once more after setting it.
                if system.drain(id, nic, budget) > 0 {
                    system.net.set_polling(id, true);
                }
            }
        });
        self.net.background_budget = budget;
    }

    /// `owner` is leaving the CPU: send what its polled rings hold, as far
    /// as one drain's budget goes, visiting at most [`DRAIN_VISITS`] of
    /// them, the one polled latest first (a kick of a ring polled already
    /// does not move it). Its own list, not every
    /// binding's: a walk of the owner's bindings met its idle ones first (a
    /// reflector beside 1,000 idle bindings of its own waited a tick for
    /// every echo), and a walk of everyone's polled rings met a neighbour's
    /// first. Unlike the drains at ticks and interrupts, it moves nobody's
    /// turn.
    pub fn net_drain_owned_by(&mut self, owner: EnvironmentId) {
        let mut budget = DRAIN_ENTRIES;
        self.drain_owned_by(owner, &mut budget);
    }

    /// `owner` was preempted: as [`net_drain_owned_by`](Self::net_drain_owned_by),
    /// but within what the background drains may still take before the next
    /// tick ([`BACKGROUND_DRAIN_ENTRIES`]), since this runs in the time of
    /// whoever comes next. (A full drain at every preemption let a program
    /// that kept rings full and spun take a quarter of its neighbour's turns:
    /// `hostile-drains`.)
    pub fn net_drain_preempted(&mut self, owner: EnvironmentId) {
        let mut budget = self.net.background_budget;
        self.drain_owned_by(owner, &mut budget);
        self.net.background_budget = budget;
    }

    fn drain_owned_by(&mut self, owner: EnvironmentId, budget: &mut u32) {
        let Some(&Some(first)) = self.net.polled_by_owner.get(&owner) else {
            return;
        };
        let mut nic = NIC.lock();
        let Some(nic) = nic.as_mut() else { return };
        let mut cursor = Some(first);
        for _ in 0..DRAIN_VISITS {
            let Some(id) = cursor.filter(|_| *budget > 0) else {
                return;
            };
            cursor = self.binding(id).next_owned_polled;
            self.drain_busy(id, nic, budget);
        }
    }

    /// One drain of the polled rings: [`walk_polled`](Self::walk_polled)
    /// from the first, and the next drain starts with the first ring this
    /// one did not visit.
    fn drain_polled(
        &mut self,
        nic: &mut Nic,
        budget: &mut u32,
        visit: impl FnMut(&mut Self, BindingId, &mut Nic, &mut u32),
    ) {
        if let Some(id) = self.walk_polled(nic, budget, visit) {
            self.net.start_polling_at(id);
        }
    }

    /// `visit`s the polled rings from the first, sharing one `budget` of
    /// entries, until that is spent or [`DRAIN_VISITS`] rings have been
    /// visited; returns the first ring not visited. Each visit may take the
    /// ring off the list or put it back first; the ring after it stays.
    fn walk_polled(
        &mut self,
        nic: &mut Nic,
        budget: &mut u32,
        mut visit: impl FnMut(&mut Self, BindingId, &mut Nic, &mut u32),
    ) -> Option<BindingId> {
        let mut cursor = self.net.first_polled;
        for _ in 0..DRAIN_VISITS {
            let Some(id) = cursor.filter(|_| *budget > 0) else {
                return cursor;
            };
            cursor = self.binding(id).next_polled;
            visit(self, id, nic, budget);
        }
        cursor
    }

    /// Drains binding `id`'s ring within `budget`; true, and its idle count
    /// reset, if entries were waiting.
    fn drain_busy(&mut self, id: BindingId, nic: &mut Nic, budget: &mut u32) -> bool {
        let busy = self.drain(id, nic, budget) > 0;
        if busy {
            self.binding(id).idle_ticks = 0;
        }
        busy
    }
}

const _: () = assert!(MAX_FRAME as u64 <= SLOT_SIZE);
