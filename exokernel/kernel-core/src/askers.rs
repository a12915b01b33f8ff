//! The bindings waiting for an ARP reply, by the host they asked.
//!
//! A binding that sends an ARP request from an address it may use waits for
//! the reply: a reply from host H to address X is copied to the oldest few
//! bindings that asked H from X, and to no other. The line is kept in order
//! of (address, host, ask), so a reply finds its askers at once and never
//! walks past bindings waiting for someone else. Kept as one queue an
//! address, walked from its front, 499 bindings that had asked a host that
//! never answers sat in front of every later asker, and each reply from the
//! gateway walked past all of them in the NIC's interrupt (`hostile-arp`).
//!
//! A binding waits for at most [`ASKED_HOSTS`] hosts at once, on one address;
//! its place in the line is its [`Asks`], kept in its own record. Every entry
//! is paid for with the binding ([`ASKS_BYTES`]). Only `ask` allocates.

use alloc::collections::BTreeSet;

use crate::btree::GiveBackWhenEmpty;
use crate::demux::Ipv4;

/// How many hosts a binding may wait to hear from at once: a library OS
/// resolving several neighbours asks several before any answers.
pub const ASKED_HOSTS: usize = 4;

/// An entry in the line: the address asked from, the host asked about, when
/// (the line's count of asks), and who.
type Entry<B> = (Ipv4, Ipv4, u64, B);

/// What one binding's entries may cost the kernel's heap, in bytes: its
/// [`ASKED_HOSTS`] entries in B-tree nodes at their least fill. A node of
/// eleven 24-byte entries is a 512-byte block of the buddy heap and holds at
/// least five unless it is the root; the nodes above add about a fifth:
/// 123 bytes an entry at worst, 128 charged (measured in
/// `tests/kernel_memory_costs.rs`: 299 to 512 a binding).
pub const ASKS_BYTES: u64 = ASKED_HOSTS as u64 * 128;

/// One binding's place in the line: the address it asked from and the hosts
/// it waits for, each with when it asked (no host: 0, as no reply comes from
/// 0.0.0.0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Asks {
    address: Option<Ipv4>,
    hosts: [(Ipv4, u64); ASKED_HOSTS],
}

impl Asks {
    /// The address it waits on, if it waits for anyone.
    pub fn address(&self) -> Option<Ipv4> {
        self.address
    }

    /// The hosts it waits for, with when each was asked.
    fn asked(&self) -> impl Iterator<Item = (Ipv4, u64)> + '_ {
        self.hosts.iter().copied().filter(|&(host, _)| host != 0)
    }
}

/// Every binding waiting for an ARP reply, named by `B`.
#[derive(Debug)]
pub struct Askers<B> {
    line: BTreeSet<Entry<B>>,
    /// How many asks there have been: the next one's place.
    asks: u64,
}

impl<B: Ord + Copy + Bounded> Default for Askers<B> {
    fn default() -> Self {
        Self::new()
    }
}

/// The least and greatest names, so a range can take every binding.
pub trait Bounded {
    const MIN: Self;
    const MAX: Self;
}

impl<B: Ord + Copy + Bounded> Askers<B> {
    pub const fn new() -> Self {
        Self {
            line: BTreeSet::new(),
            asks: 0,
        }
    }

    /// `binding` (whose place is `asks`) sent an ARP request from `address`
    /// about `host`: it waits for `host`'s reply, behind those that asked
    /// `host` from `address` before it. One that asks the same host again
    /// keeps its place; one that asks a host more than it may wait for
    /// forgets the one it asked longest ago; one that asks from another
    /// address waits on its old one no more.
    pub fn ask(&mut self, binding: B, asks: &mut Asks, address: Ipv4, host: Ipv4) {
        if host == 0 {
            return;
        }
        if asks.address != Some(address) {
            self.leave(binding, asks);
            asks.address = Some(address);
        }
        if asks.asked().any(|(asked, _)| asked == host) {
            return;
        }
        let slot = asks
            .hosts
            .iter()
            .enumerate()
            .min_by_key(|&(_, &(asked, when))| (asked != 0, when))
            .map(|(slot, _)| slot)
            .unwrap_or_default();
        let (old, when) = asks.hosts[slot];
        if old != 0 {
            self.line.remove(&(address, old, when, binding));
        }
        asks.hosts[slot] = (host, self.asks);
        self.line.insert((address, host, self.asks, binding));
        self.asks += 1;
    }

    /// `binding` waits for nobody any more (its address or its right to it
    /// went, or it did).
    pub fn leave(&mut self, binding: B, asks: &mut Asks) {
        if let Some(address) = asks.address.take() {
            for (host, when) in asks.asked() {
                self.line.remove(&(address, host, when, binding));
            }
            self.line.give_back_when_empty();
        }
        *asks = Asks::default();
    }

    /// The binding that asked `host` from `address` longest ago and still
    /// waits for its reply, if any.
    pub fn oldest(&self, address: Ipv4, host: Ipv4) -> Option<B> {
        let from = (address, host, 0, B::MIN);
        let to = (address, host, u64::MAX, B::MAX);
        self.line
            .range(from..=to)
            .next()
            .map(|&(.., binding)| binding)
    }

    /// Any binding waiting on `address`, for anyone.
    pub fn any_on(&self, address: Ipv4) -> Option<B> {
        let from = (address, 0, 0, B::MIN);
        let to = (address, Ipv4::MAX, u64::MAX, B::MAX);
        self.line
            .range(from..=to)
            .next()
            .map(|&(.., binding)| binding)
    }

    /// `binding` heard from `host` on the address it waits on: it waits for
    /// `host` no more, and leaves the line if it waits for nobody else.
    pub fn heard(&mut self, binding: B, asks: &mut Asks, host: Ipv4) {
        let Some(address) = asks.address else {
            return;
        };
        let Some(slot) = asks
            .hosts
            .iter()
            .position(|&(asked, _)| asked == host && host != 0)
        else {
            return;
        };
        let (_, when) = asks.hosts[slot];
        self.line.remove(&(address, host, when, binding));
        asks.hosts[slot] = (0, 0);
        if asks.asked().next().is_none() {
            asks.address = None;
        }
        self.line.give_back_when_empty();
    }

    /// How many asks wait, of everyone.
    pub fn len(&self) -> usize {
        self.line.len()
    }

    pub fn is_empty(&self) -> bool {
        self.line.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::vec::Vec;

    use super::*;

    impl Bounded for u32 {
        const MIN: Self = u32::MIN;
        const MAX: Self = u32::MAX;
    }

    const X: Ipv4 = 0x0a00_020f;
    const Y: Ipv4 = 0x0a00_0210;
    const GATEWAY: Ipv4 = 0x0a00_0202;
    const NOBODY: Ipv4 = 0xc000_0201;

    /// Askers and each binding's place, as the kernel keeps them.
    #[derive(Default)]
    struct Line {
        askers: Askers<u32>,
        places: BTreeMap<u32, Asks>,
    }

    impl Line {
        fn ask(&mut self, binding: u32, address: Ipv4, host: Ipv4) {
            let asks = self.places.entry(binding).or_default();
            self.askers.ask(binding, asks, address, host);
        }

        /// A reply from `host` to `address`: the bindings it goes to, at
        /// most `fanout`, oldest first.
        fn reply(&mut self, address: Ipv4, host: Ipv4, fanout: usize) -> Vec<u32> {
            let mut heard = Vec::new();
            while heard.len() < fanout {
                let Some(binding) = self.askers.oldest(address, host) else {
                    break;
                };
                let asks = self.places.get_mut(&binding).unwrap();
                self.askers.heard(binding, asks, host);
                heard.push(binding);
            }
            heard
        }

        fn leave(&mut self, binding: u32) {
            let asks = self.places.get_mut(&binding).unwrap();
            self.askers.leave(binding, asks);
        }
    }

    #[test]
    fn a_reply_goes_to_the_oldest_askers_of_its_sender_only() {
        let mut line = Line::default();
        for binding in 0..5 {
            line.ask(binding, X, NOBODY);
        }
        line.ask(10, X, GATEWAY);
        line.ask(11, Y, GATEWAY);
        line.ask(12, X, GATEWAY);
        line.ask(13, X, GATEWAY);
        assert_eq!(line.reply(X, GATEWAY, 2), [10, 12]);
        assert_eq!(line.reply(X, GATEWAY, 2), [13]);
        assert_eq!(line.reply(Y, GATEWAY, 8), [11]);
        assert_eq!(line.reply(X, 0, 8), []);
        // Those waiting for nobody's reply wait still, and only they.
        assert_eq!(line.askers.len(), 5);
        assert_eq!(line.places[&12], Asks::default());
    }

    #[test]
    fn asking_again_keeps_the_place_and_a_fifth_host_forgets_the_first() {
        let mut line = Line::default();
        line.ask(1, X, GATEWAY);
        line.ask(2, X, GATEWAY);
        line.ask(1, X, GATEWAY);
        assert_eq!(line.askers.oldest(X, GATEWAY), Some(1));
        for host in 1..=ASKED_HOSTS as Ipv4 {
            line.ask(1, X, host);
        }
        assert_eq!(line.reply(X, GATEWAY, 8), [2]);
        assert_eq!(line.reply(X, 1, 8), [1]);
        assert_eq!(line.askers.len(), ASKED_HOSTS - 1);
        // Asking about 0.0.0.0 changes nothing: no reply comes from it.
        let before = line.places[&1];
        line.ask(1, Y, 0);
        assert_eq!(line.places[&1], before);
    }

    #[test]
    fn asking_from_another_address_or_leaving_takes_every_entry_away() {
        let mut line = Line::default();
        line.ask(1, X, GATEWAY);
        line.ask(1, X, NOBODY);
        line.ask(1, Y, GATEWAY);
        assert_eq!(line.askers.any_on(X), None);
        assert_eq!(line.askers.oldest(Y, GATEWAY), Some(1));
        assert_eq!(line.places[&1].address(), Some(Y));
        line.leave(1);
        assert!(line.askers.is_empty());
        assert_eq!(line.places[&1], Asks::default());
        // Hearing every host asked leaves the line too.
        line.ask(2, X, GATEWAY);
        line.ask(2, X, NOBODY);
        line.reply(X, GATEWAY, 8);
        assert_eq!(line.places[&2].address(), Some(X));
        line.ask(3, X, NOBODY);
        assert_eq!(line.reply(X, NOBODY, 8), [2, 3]);
        assert_eq!(line.places[&2].address(), None);
        assert!(line.askers.is_empty());
    }

    /// Against a model: a list of (address, host, binding) in order of asking,
    /// each binding's hosts the latest four.
    #[test]
    fn random_asks_and_replies_match_a_plain_list() {
        let mut line = Line::default();
        let mut model: Vec<(Ipv4, Ipv4, u32)> = Vec::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        for _ in 0..20_000 {
            let binding = next(12) as u32;
            let address = [X, Y][next(2) as usize];
            let host = next(7) as Ipv4;
            match next(3) {
                0 | 1 => {
                    line.ask(binding, address, host);
                    if host == 0 {
                        continue;
                    }
                    model.retain(|&(a, _, b)| b != binding || a == address);
                    if !model.contains(&(address, host, binding)) {
                        let mine = model.iter().filter(|&&(_, _, b)| b == binding).count();
                        if mine == ASKED_HOSTS {
                            let first = model.iter().position(|&(_, _, b)| b == binding);
                            model.remove(first.unwrap());
                        }
                        model.push((address, host, binding));
                    }
                }
                _ => {
                    let fanout = 1 + next(3) as usize;
                    let heard = line.reply(address, host, fanout);
                    let mut expected = Vec::new();
                    model.retain(|&(a, h, b)| {
                        let hears = a == address && h == host && expected.len() < fanout;
                        if hears {
                            expected.push(b);
                        }
                        !hears
                    });
                    assert_eq!(heard, expected);
                }
            }
            assert_eq!(line.askers.len(), model.len());
        }
    }
}
