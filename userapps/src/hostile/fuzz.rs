//! The fuzzing child of `syscall-fuzz`: random system calls from a seed, with arguments
//! that lean towards the values kernels get wrong, towards what its own earlier calls
//! returned (handles, frame numbers, ids) and towards stale copies of them.
//!
//! A call is either a random number (every one, unknown ones too) with
//! [`Garbage`] arguments mixed with remembered results, or a builder: a well-formed call
//! that makes an object (frames, a mapping, an endpoint, a notification, an environment,
//! a network claim or binding, a derived or granted capability) for the calls after it
//! to abuse. A child that may take its own memory away ([`Mode::SelfHarm`]) also, now
//! and then, unmaps or re-protects its own stack or image, drops a capability it holds,
//! or destroys itself; it issues the calls [`super::call`] refuses too.
//!
//! The child reports in its slot of a page shared with the parent ([`Slot`]): the calls
//! it has begun (counted before each call, so a call that ends the child is counted) and
//! the first answer that was not an ABI error code. It never judges itself; the parent does.

use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::MapFlags;
use exo_abi::net;
use exo_abi::syscall::Sysnum;
use exo_abi::{Handle, user};

use super::shared::Words;
use super::{Garbage, is_typed_error, takes_away, tame};
use crate::layout::{CHILD_STACK_PAGES, CHILD_STACK_TOP, IMAGE_START, MANAGED_START};

/// Whether a child may take its own memory and capabilities away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Never issues a call that could take its memory away (`super::takes_away`).
    Polite,
    /// Issues everything, and now and then aims the destructive calls at itself.
    SelfHarm,
}

/// One in this many calls of a [`Mode::SelfHarm`] child is aimed at its own memory,
/// capabilities or life: often enough that children die every few hundred calls, rarely
/// enough that each makes many calls first.
const SELF_HARM_ONE_IN: u64 = 256;
/// A random number that could take the caller's memory away is kept one time in this
/// many (a self-harming child would otherwise `Exit` within a few dozen calls).
const TAKES_AWAY_KEPT_ONE_IN: u64 = 8;
/// Results remembered for later calls.
const POOL: usize = 16;
/// Where builders map frames: a window of the child's own managed space.
const BUILD_PAGES: u64 = MANAGED_START + 0x100_0000;
const BUILD_PAGE_COUNT: u64 = 256;

/// A child's words in the page it shares with its parent.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    words: Words,
    base: u64,
}

/// Words of a slot.
const SEED: u64 = 0;
const BUDGET: u64 = 1;
const BEGUN: u64 = 2;
/// 0, or the number of the first call answered with an untyped status, plus 1.
const UNTYPED_NUMBER: u64 = 3;
const UNTYPED_STATUS: u64 = 4;
const MODE: u64 = 5;
const NIC: u64 = 6;
const SLOT_WORDS: u64 = 8;

impl Slot {
    /// Slot `index` of the page at `page`.
    pub const fn new(page: Words, index: u64) -> Self {
        Self {
            words: page,
            base: index * SLOT_WORDS,
        }
    }

    /// Prepares the slot for a child that makes `budget` calls from `seed`.
    pub fn prepare(&self, seed: u64, budget: u64, mode: Mode, nic: Option<Handle>) {
        for word in 0..SLOT_WORDS {
            self.words.write(self.base + word, 0);
        }
        self.words.write(self.base + SEED, seed);
        self.words.write(self.base + BUDGET, budget);
        self.words
            .write(self.base + MODE, u64::from(mode == Mode::SelfHarm));
        self.words
            .write(self.base + NIC, nic.map_or(u64::MAX, Handle::to_raw));
    }

    /// Calls begun, at most the budget (what the child wrote is not trusted beyond it).
    pub fn begun(&self) -> u64 {
        self.words
            .read(self.base + BEGUN)
            .min(self.words.read(self.base + BUDGET))
    }

    /// The calls the child was given.
    pub fn budget(&self) -> u64 {
        self.words.read(self.base + BUDGET)
    }

    /// The first call answered with a status that is no ABI error: (number, status).
    pub fn untyped(&self) -> Option<(u64, u64)> {
        match self.words.read(self.base + UNTYPED_NUMBER) {
            0 => None,
            number => Some((number - 1, self.words.read(self.base + UNTYPED_STATUS))),
        }
    }

    fn read(&self, word: u64) -> u64 {
        self.words.read(self.base + word)
    }

    fn write(&self, word: u64, value: u64) {
        self.words.write(self.base + word, value);
    }
}

/// Random calls and what they returned.
#[derive(Clone, Debug)]
pub struct Fuzzer {
    garbage: Garbage,
    mode: Mode,
    /// Handles, frame numbers and ids from successful calls, oldest overwritten first.
    pool: [u64; POOL],
    next: usize,
}

impl Fuzzer {
    pub fn new(seed: u64, mode: Mode, nic: Option<Handle>) -> Self {
        let mut pool = [Handle::SELF_ENVIRONMENT.to_raw(); POOL];
        if let Some(nic) = nic {
            pool[1] = nic.to_raw();
        }
        Self {
            garbage: Garbage::new(seed),
            mode,
            pool,
            next: 2,
        }
    }

    fn random(&mut self, below: u64) -> u64 {
        self.garbage.next_u64() % below
    }

    fn remembered(&mut self) -> u64 {
        self.pool[self.random(POOL as u64) as usize]
    }

    /// A remembered handle made stale or forged: another generation, or a neighbour's index.
    fn forged(&mut self) -> u64 {
        let handle = Handle::from_raw(self.remembered());
        let bump = 1 + self.random(3) as u32;
        match self.random(2) {
            0 => Handle::new(handle.index(), handle.generation().wrapping_add(bump)),
            _ => Handle::new(handle.index().wrapping_add(bump), handle.generation()),
        }
        .to_raw()
    }

    fn argument(&mut self) -> u64 {
        match self.random(10) {
            0 | 1 => self.remembered(),
            2 => self.forged(),
            3 => self.own_address(),
            _ => self.garbage.argument(),
        }
    }

    /// An address of the child's own memory: its stack, its image, its shared page, a
    /// builder page; page-aligned or not.
    fn own_address(&mut self) -> u64 {
        let page = match self.random(4) {
            0 => CHILD_STACK_TOP - (1 + self.random(CHILD_STACK_PAGES)) * PAGE_SIZE,
            1 => IMAGE_START + self.random(16) * PAGE_SIZE,
            2 => MANAGED_START,
            _ => BUILD_PAGES + self.random(BUILD_PAGE_COUNT) * PAGE_SIZE,
        };
        match self.random(4) {
            0 => page + self.random(PAGE_SIZE),
            _ => page,
        }
    }

    fn remember(&mut self, value: u64) {
        if value != 0 {
            self.pool[self.next] = value;
            self.next = (self.next + 1) % POOL;
        }
    }

    /// The next call: a number and its arguments, tamed (see `super::tame`).
    pub fn next_call(&mut self) -> (u64, [u64; 6]) {
        loop {
            let (number, mut arguments) =
                if self.mode == Mode::SelfHarm && self.random(SELF_HARM_ONE_IN) == 0 {
                    self.self_harm()
                } else if self.random(4) == 0 {
                    self.builder()
                } else {
                    let number = self.garbage.number();
                    if takes_away(number) && self.random(TAKES_AWAY_KEPT_ONE_IN) != 0 {
                        continue;
                    }
                    (number, core::array::from_fn(|_| self.argument()))
                };
            if self.mode == Mode::Polite && takes_away(number) {
                continue;
            }
            tame(number, &mut arguments);
            return (number, arguments);
        }
    }

    /// A well-formed call that makes something for later calls to abuse.
    fn builder(&mut self) -> (u64, [u64; 6]) {
        let mut arguments = [0; 6];
        let number = match self.random(10) {
            0 => {
                arguments[0] = self.random(3);
                Sysnum::FrameAllocate
            }
            1 => {
                let page = BUILD_PAGES + self.random(BUILD_PAGE_COUNT) * PAGE_SIZE;
                arguments[..4].copy_from_slice(&[
                    self.remembered(),
                    Handle::SELF_ENVIRONMENT.to_raw(),
                    page,
                    MapFlags::WRITE.bits(),
                ]);
                Sysnum::Map
            }
            2 => {
                arguments[0] = self.garbage.next_u64();
                Sysnum::EndpointCreate
            }
            3 => {
                arguments[0] = 1 << self.random(64);
                Sysnum::NotificationCreate
            }
            4 => {
                arguments[0] = self.random(16);
                Sysnum::EnvironmentCreate
            }
            5 => {
                let host = self.random(256) as u8;
                arguments[..2]
                    .copy_from_slice(&[self.remembered(), u64::from(net::ipv4(10, 77, 0, host))]);
                Sysnum::NetClaim
            }
            6 => {
                arguments[..2].copy_from_slice(&[self.remembered(), self.garbage.next_u64()]);
                Sysnum::CapabilityDerive
            }
            7 => {
                arguments[..3].copy_from_slice(&[
                    self.remembered(),
                    self.remembered(),
                    self.garbage.next_u64(),
                ]);
                Sysnum::CapabilityGrant
            }
            8 => {
                arguments[..4].copy_from_slice(&[
                    self.remembered(),
                    self.own_address(),
                    self.own_address(),
                    self.garbage.next_u64(),
                ]);
                Sysnum::EnvironmentStart
            }
            _ => {
                arguments[..2].copy_from_slice(&[self.remembered(), self.remembered()]);
                Sysnum::NetBind
            }
        };
        (number as u64, arguments)
    }

    /// A call aimed at the child's own memory, capabilities or life.
    fn self_harm(&mut self) -> (u64, [u64; 6]) {
        let own = Handle::SELF_ENVIRONMENT.to_raw();
        let mut arguments = [0; 6];
        let number = match self.random(5) {
            0 => {
                arguments[..2].copy_from_slice(&[own, self.own_address()]);
                Sysnum::Unmap
            }
            1 => {
                arguments[..3].copy_from_slice(&[own, self.own_address(), self.random(4)]);
                Sysnum::Protect
            }
            2 => {
                arguments[0] = self.remembered();
                Sysnum::CapabilityDrop
            }
            3 => {
                arguments[0] = self.remembered();
                Sysnum::CapabilityRevoke
            }
            _ => {
                arguments[0] = own;
                Sysnum::EnvironmentDestroy
            }
        };
        (number as u64, arguments)
    }

    /// Takes note of what a call returned.
    pub fn returned(&mut self, status: u64, first: u64, second: u64) {
        if status == 0 {
            self.remember(first);
            if self.random(2) == 0 {
                self.remember(second);
            }
        }
    }
}

/// The child's body: `slot` is the address of the shared page plus the slot index
/// (the page is page-aligned, so the index fits below it).
pub fn child(slot: u64) -> u64 {
    let slot = Slot::new(Words::at(slot & !(PAGE_SIZE - 1)), slot & (PAGE_SIZE - 1));
    let mode = match slot.read(MODE) {
        0 => Mode::Polite,
        _ => Mode::SelfHarm,
    };
    let nic = match slot.read(NIC) {
        u64::MAX => None,
        raw => Some(Handle::from_raw(raw)),
    };
    let budget = slot.read(BUDGET);
    let mut fuzzer = Fuzzer::new(slot.read(SEED), mode, nic);
    for begun in 1..=budget {
        let (number, arguments) = fuzzer.next_call();
        slot.write(BEGUN, begun);
        // SAFETY: not sound for Rust code in general, and meant not to be: a polite
        // child's calls can only add to its address space or capabilities, read memory
        // the kernel checks, or fail (`super::call`); a self-harming child may lose the
        // memory it runs on, and then it faults and is destroyed (it has no upcall
        // handler). Its environment exists to be destroyed; no other environment's
        // memory is reachable from here.
        let [status, first, second, ..] = unsafe { user::syscall_raw(number, arguments) };
        if status != 0 && !is_typed_error(status) && slot.read(UNTYPED_NUMBER) == 0 {
            slot.write(UNTYPED_STATUS, status);
            slot.write(UNTYPED_NUMBER, number + 1);
        }
        fuzzer.returned(status, first, second);
    }
    0
}
