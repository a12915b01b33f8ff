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
//! the first answer that was not an ABI error code, and tallies its calls begun and
//! succeeded per system-call number. It never judges itself; the parent does.
//!
//! [`Echo`] is the server the children call: a witness that must keep answering, and the
//! only environment outside its own a child's `Call` can reach.

use exo_abi::layout::{KERNEL_HALF_START, PAGE_SIZE, USER_END, USER_MAP_END};
use exo_abi::mapping::{MapFlags, MapRequest};
use exo_abi::net;
use exo_abi::syscall::{Event, NO_CAPABILITY, Sysnum};
use exo_abi::user::Wakeup;
use exo_abi::{Error, Handle, Rights, user};

use super::shared::Words;
use super::{Garbage, is_typed_error, takes_away, tame};
use crate::layout::{CHILD_STACK_PAGES, CHILD_STACK_TOP, IMAGE_START, MANAGED_START};

/// Whether a child may take its own memory and capabilities away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Never issues a call that could take its memory away (`super::takes_away`, but for
    /// `NetBind`, see [`Fuzzer::next_call`]).
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
/// Requests in a `MapBatch` builder, at most.
const BATCH: usize = 8;
/// The accounts `EnvironmentInfo` and `EnvironmentInspect` know, and a few past them.
const ACCOUNTS: u64 = 16;
/// Rights bits defined, and a few past them.
const RIGHTS_BITS: u64 = 15;
/// Results remembered for later calls.
const POOL: usize = 32;
/// Entries of the pool that hold what the child started with: its own environment, the
/// network card and the echo server's endpoint.
const HELD: usize = 3;
/// The calls whose first result is a handle or an id worth remembering.
const MAKERS: [Sysnum; 13] = [
    Sysnum::CapabilityDerive,
    Sysnum::CapabilityGrant,
    Sysnum::FrameAllocate,
    Sysnum::FrameAllocateAt,
    Sysnum::EnvironmentCreate,
    Sysnum::SlotAllocate,
    Sysnum::EndpointCreate,
    Sysnum::NotificationCreate,
    Sysnum::NetClaim,
    Sysnum::NetBind,
    Sysnum::NetFilter,
    Sysnum::EnvironmentNext,
    Sysnum::EnvironmentInfo,
];
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
const ENDPOINT: u64 = 7;
const SLOT_WORDS: u64 = 8;
/// Where the slots' tallies start in the page: per slot, for each number of
/// `Sysnum::ALL` and then for every other number together, the calls begun and the calls
/// that succeeded.
const TALLY_START: u64 = 64;
/// Kinds of call a tally counts: the known numbers and one for the rest.
pub const KINDS: usize = Sysnum::ALL.len() + 1;
const TALLY_WORDS: u64 = 2 * KINDS as u64;
/// The most slots a page holds.
pub const MAX_SLOTS: u64 = (Words::COUNT - TALLY_START) / TALLY_WORDS;
const _: () = assert!(MAX_SLOTS * SLOT_WORDS <= TALLY_START);

/// The kind of call `number` is: its index in `Sysnum::ALL`, or the last kind.
pub fn kind(number: u64) -> usize {
    Sysnum::ALL
        .iter()
        .position(|sysnum| *sysnum as u64 == number)
        .unwrap_or(KINDS - 1)
}

impl Slot {
    /// Slot `index` (below [`MAX_SLOTS`]) of the page at `page`.
    pub const fn new(page: Words, index: u64) -> Self {
        assert!(index < MAX_SLOTS);
        Self {
            words: page,
            base: index * SLOT_WORDS,
        }
    }

    /// Prepares the slot for a child that makes `budget` calls from `seed`, holding the
    /// network card and an endpoint to call if given.
    pub fn prepare(
        &self,
        seed: u64,
        budget: u64,
        mode: Mode,
        nic: Option<Handle>,
        endpoint: Option<Handle>,
    ) {
        for word in 0..SLOT_WORDS {
            self.words.write(self.base + word, 0);
        }
        for word in 0..TALLY_WORDS {
            self.words.write(self.tally_word(0) + word, 0);
        }
        self.words.write(self.base + SEED, seed);
        self.words.write(self.base + BUDGET, budget);
        self.words
            .write(self.base + MODE, u64::from(mode == Mode::SelfHarm));
        self.words
            .write(self.base + NIC, nic.map_or(NO_CAPABILITY, Handle::to_raw));
        self.words.write(
            self.base + ENDPOINT,
            endpoint.map_or(NO_CAPABILITY, Handle::to_raw),
        );
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

    /// The child's calls of `kind`: (begun, succeeded).
    pub fn tally(&self, kind: usize) -> (u64, u64) {
        let word = self.tally_word(kind);
        (self.words.read(word), self.words.read(word + 1))
    }

    fn tally_word(&self, kind: usize) -> u64 {
        TALLY_START + (self.base / SLOT_WORDS) * TALLY_WORDS + 2 * kind as u64
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
    /// The requests of the last `MapBatch` builder.
    requests: [MapRequest; BATCH],
    /// The last network claim, binding and run of frames a binding fits in it made (0:
    /// none yet), which the network builders prefer, so that they reach past the
    /// first check.
    claim: u64,
    binding: u64,
    run: u64,
}

impl Fuzzer {
    /// A fuzzer that starts out remembering its own environment, and the network card and
    /// an endpoint if it holds them.
    pub fn new(seed: u64, mode: Mode, held: [Option<Handle>; 2]) -> Self {
        let mut pool = [Handle::SELF_ENVIRONMENT.to_raw(); POOL];
        for (index, handle) in held.into_iter().enumerate() {
            if let Some(handle) = handle {
                pool[1 + index] = handle.to_raw();
            }
        }
        Self {
            garbage: Garbage::new(seed),
            mode,
            pool,
            next: HELD,
            requests: [MapRequest {
                frame: 0,
                address: 0,
                flags: 0,
            }; BATCH],
            claim: 0,
            binding: 0,
            run: 0,
        }
    }

    fn random(&mut self, below: u64) -> u64 {
        self.garbage.next_u64() % below
    }

    fn remembered(&mut self) -> u64 {
        self.pool[self.random(POOL as u64) as usize]
    }

    /// `preferred` three times in four if there is one, else something remembered.
    fn preferring(&mut self, preferred: u64) -> u64 {
        match preferred != 0 && self.random(4) != 0 {
            true => preferred,
            false => self.remembered(),
        }
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
        match self.random(12) {
            0 | 1 => self.remembered(),
            2 => self.forged(),
            3 => self.own_address(),
            4 => self.boundary(),
            _ => self.garbage.argument(),
        }
    }

    /// An address at or next to a boundary of the address space.
    fn boundary(&mut self) -> u64 {
        let edge = match self.random(4) {
            0 => USER_MAP_END,
            1 => USER_END,
            2 => KERNEL_HALF_START,
            _ => 0,
        };
        match self.random(5) {
            0 => edge,
            1 => edge.wrapping_add(1),
            2 => edge.wrapping_sub(1),
            3 => edge.wrapping_add(PAGE_SIZE),
            _ => edge.wrapping_sub(PAGE_SIZE),
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

    /// Keeps `value` in the pool, past the handles it started with, which stay.
    /// Makes an argument and the next one an address and a length that end just
    /// around a boundary — the end of the mappable window, of the user half, of the
    /// address space (wrapping), of a page — as an overflowing range check would miss.
    fn straddle(&mut self, arguments: &mut [u64; 6]) {
        let index = self.random(5) as usize;
        let boundary = match self.random(4) {
            0 => USER_MAP_END,
            1 => USER_END,
            2 => 0, // 2^64: the range wraps
            _ => (arguments[index] | (PAGE_SIZE - 1)).wrapping_add(1), // the next page
        };
        let nudge = match self.random(4) {
            0 => 0,
            1 => 1,
            2 => u64::MAX, // minus 1
            _ => PAGE_SIZE,
        };
        arguments[index + 1] = boundary.wrapping_sub(arguments[index]).wrapping_add(nudge);
    }

    fn remember(&mut self, value: u64) {
        if value != 0 {
            self.pool[self.next] = value;
            self.next = HELD + (self.next + 1 - HELD) % (POOL - HELD);
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
                    let mut arguments = core::array::from_fn(|_| self.argument());
                    if self.random(4) == 0 {
                        self.straddle(&mut arguments);
                    }
                    (number, arguments)
                };
            if self.mode == Mode::Polite && takes_away(number) && number != Sysnum::NetBind as u64 {
                // `NetBind` has the kernel write into the frames it names, which cannot
                // hold this child's memory: it holds no capability for any of its pages
                // (its parent does), only for frames it allocated itself.
                continue;
            }
            tame(number, &mut arguments);
            return (number, arguments);
        }
    }

    /// A well-formed call that makes something for later calls to abuse.
    fn builder(&mut self) -> (u64, [u64; 6]) {
        let mut arguments = [0; 6];
        let number = match self.random(17) {
            0 => {
                // Up to a run a binding can live in (`net::MIN_RING_ORDER`).
                arguments[0] = self.random(4);
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
                arguments[..2].copy_from_slice(&[self.remembered(), self.rights()]);
                Sysnum::CapabilityDerive
            }
            7 => {
                arguments[..3].copy_from_slice(&[
                    self.remembered(),
                    self.remembered(),
                    self.rights(),
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
            9 => {
                let notification = match self.random(2) {
                    0 => NO_CAPABILITY,
                    _ => self.remembered(),
                };
                let run = self.run;
                arguments[..2].copy_from_slice(&[self.preferring(run), notification]);
                Sysnum::NetBind
            }
            10 => {
                let filter = match self.random(3) {
                    0 => net::Filter::udp(self.random(8) as u16),
                    1 => net::Filter::tcp(self.random(8) as u16),
                    _ => net::Filter::arp(),
                };
                let (binding, claim) = (self.binding, self.claim);
                arguments[..3].copy_from_slice(&[
                    self.preferring(binding),
                    self.preferring(claim),
                    filter.pack(),
                ]);
                Sysnum::NetFilter
            }
            11 => {
                let length = net::MIN_FRAME as u64 + self.random(net::MAX_FRAME as u64);
                let binding = self.binding;
                arguments[..3].copy_from_slice(&[
                    self.preferring(binding),
                    self.own_address(),
                    length,
                ]);
                match self.random(2) {
                    0 => Sysnum::NetSend,
                    _ => Sysnum::NetKick,
                }
            }
            12 => {
                let endpoint = self.pool[2];
                arguments[..4].copy_from_slice(&[
                    self.preferring(endpoint),
                    self.garbage.next_u64(),
                    self.garbage.next_u64(),
                    match self.random(2) {
                        0 => NO_CAPABILITY,
                        _ => self.remembered(),
                    },
                ]);
                Sysnum::Call
            }
            13 => {
                arguments[..3].copy_from_slice(&[
                    self.remembered(),
                    self.remembered(),
                    self.random(ACCOUNTS),
                ]);
                Sysnum::EnvironmentInspect
            }
            14 => {
                arguments[..2].copy_from_slice(&[self.remembered(), self.random(ACCOUNTS)]);
                Sysnum::EnvironmentInfo
            }
            15 => {
                arguments[..2].copy_from_slice(&[self.remembered(), self.remembered()]);
                Sysnum::EnvironmentNext
            }
            _ => return self.map_batch(),
        };
        (number as u64, arguments)
    }

    /// Rights: mostly a few of the defined bits, sometimes any.
    fn rights(&mut self) -> u64 {
        match self.random(4) {
            0 => self.garbage.next_u64(),
            _ => self.random(1 << RIGHTS_BITS),
        }
    }

    /// A `MapBatch` of a few well-formed requests of remembered frames into an environment
    /// it holds. The requests live in the fuzzer, which outlives the call.
    fn map_batch(&mut self) -> (u64, [u64; 6]) {
        let count = 1 + self.random(BATCH as u64);
        for index in 0..count as usize {
            self.requests[index] = MapRequest {
                frame: self.remembered(),
                address: BUILD_PAGES + self.random(BUILD_PAGE_COUNT) * PAGE_SIZE,
                flags: self.random(4),
            };
        }
        let requests = self.requests.as_ptr() as u64;
        let arguments = [self.remembered(), requests, count, 0, 0, 0];
        (Sysnum::MapBatch as u64, arguments)
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

    /// Takes note of what a call returned: the handles and ids the calls that make
    /// things give back (other results would only crowd them out).
    /// `arguments` are those the call was made with.
    pub fn returned(
        &mut self,
        number: u64,
        arguments: [u64; 6],
        [status, first, second]: [u64; 3],
    ) {
        let order = arguments[0];
        if status != 0 || !MAKERS.iter().any(|maker| *maker as u64 == number) {
            return;
        }
        self.remember(first);
        if number == Sysnum::FrameAllocate as u64 {
            if order >= net::MIN_RING_ORDER as u64 {
                self.run = first;
            }
            if self.random(4) == 0 {
                self.remember(second); // a frame number, for `FrameAllocateAt`
            }
        }
        if number == Sysnum::NetClaim as u64 {
            self.claim = first;
        }
        if number == Sysnum::NetBind as u64 {
            self.binding = first;
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
    let held = [NIC, ENDPOINT].map(|word| match slot.read(word) {
        NO_CAPABILITY => None,
        raw => Some(Handle::from_raw(raw)),
    });
    let budget = slot.read(BUDGET);
    let mut fuzzer = Fuzzer::new(slot.read(SEED), mode, held);
    for begun in 1..=budget {
        let (number, arguments) = fuzzer.next_call();
        slot.write(BEGUN, begun);
        let tally = slot.tally_word(kind(number));
        slot.words.add(tally, 1);
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
        if status == 0 {
            slot.words.add(tally + 1, 1);
        }
        fuzzer.returned(number, arguments, [status, first, second]);
    }
    0
}

/// Words of the shared page the echo server reports in, past the slots.
const ECHO_ENDPOINT: u64 = 56;
const ECHO_SERVED: u64 = 57;
/// Wakeups that were not a call, and replies refused (a caller gone meanwhile, say).
const ECHO_ODD: u64 = 58;
/// The server's handle for the parent's environment, left there by the parent.
const ECHO_PARENT: u64 = 59;
const _: () = assert!(MAX_SLOTS * SLOT_WORDS <= ECHO_ENDPOINT);
/// The entry tag of the echo server's endpoint.
const ECHO_TAG: u64 = 0xec40;
/// Tries of a round trip while the server is busy with someone else's call.
const PATIENCE: u32 = 100_000;

/// A server that answers every call, the second witness of a fuzzing run: the children
/// call it with random arguments and capabilities (it drops every capability it gets), and
/// the parent checks it still answers, exactly, whenever it likes.
#[derive(Debug)]
pub struct Echo {
    child: crate::spawn::Child,
    words: Words,
    /// Our copy of its endpoint.
    endpoint: Handle,
}

impl Echo {
    /// Starts the server, reporting in `page` (shared with it through `page_frame`).
    pub fn start(page: Words, page_frame: Handle, frame_quota: u64) -> Result<Self, Error> {
        let child = crate::spawn::Child::create(frame_quota)?;
        page.share_with(page_frame, child.environment())?;
        page.write(ECHO_ENDPOINT, NO_CAPABILITY);
        // GIVE lets the server grant its endpoint to us, and nothing else.
        let parent =
            user::capability_grant(Handle::SELF_ENVIRONMENT, child.environment(), Rights::GIVE)?;
        page.write(ECHO_PARENT, parent.to_raw());
        child.start(echo_server, page.address())?;
        crate::spawn::yield_until("the echo server is ready", || {
            page.read(ECHO_ENDPOINT) != NO_CAPABILITY
        });
        let endpoint = Handle::from_raw(page.read(ECHO_ENDPOINT));
        Ok(Self {
            child,
            words: page,
            endpoint,
        })
    }

    /// Grants `environment` a copy of the endpoint it may only call through.
    pub fn grant_to(&self, environment: Handle) -> Result<Handle, Error> {
        user::capability_grant(self.endpoint, environment, Rights::CALL)
    }

    /// Calls served so far.
    pub fn served(&self) -> u64 {
        self.words.read(ECHO_SERVED)
    }

    /// Wakeups that were not calls, and replies refused.
    pub fn odd(&self) -> u64 {
        self.words.read(ECHO_ODD)
    }

    pub fn is_alive(&self) -> bool {
        self.child.is_alive()
    }

    /// Its environment capability.
    pub fn environment(&self) -> Handle {
        self.child.environment()
    }

    /// One call and its answer, checked; `Err` says what went wrong.
    pub fn round_trip(&self, arguments: [u64; 2]) -> Result<(), Error> {
        for _ in 0..PATIENCE {
            match user::call_endpoint(self.endpoint, arguments, None) {
                Err(Error::NotReceiving) => match user::yield_to(self.child.environment()) {
                    Ok(()) | Err(Error::NotReceiving) => {}
                    Err(error) => return Err(error),
                },
                Ok((results, None)) if results == echo(arguments) => return Ok(()),
                Ok(_) => return Err(Error::InvalidState),
                Err(error) => return Err(error),
            }
        }
        Err(Error::WouldBlock)
    }

    /// Destroys it; its endpoint goes with it.
    pub fn stop(self) {
        self.child.destroy();
    }
}

/// What the echo server answers.
fn echo([first, second]: [u64; 2]) -> [u64; 2] {
    [first.wrapping_add(second), first ^ second]
}

/// The echo server's body, reporting in the page at `page`.
fn echo_server(page: u64) -> u64 {
    let words = Words::at(page);
    let parent = Handle::from_raw(words.read(ECHO_PARENT));
    let endpoint = user::endpoint_create(ECHO_TAG).expect("create the endpoint");
    let theirs = user::capability_grant(endpoint, parent, Rights::CALL | Rights::GRANT)
        .expect("grant the endpoint to the parent");
    words.write(ECHO_ENDPOINT, theirs.to_raw());
    loop {
        let Ok(Wakeup::Call(call)) = user::wait(Event::CALL, 0) else {
            words.add(ECHO_ODD, 1);
            continue;
        };
        if let Some(capability) = call.capability {
            // SAFETY: a capability a caller passed; nothing of ours lives in what it names
            // (no caller holds a capability for any of our memory).
            let _ = unsafe { user::capability_drop(capability) };
        }
        words.add(ECHO_SERVED, 1);
        if user::reply(echo(call.arguments), None).is_err() {
            words.add(ECHO_ODD, 1);
        }
    }
}
