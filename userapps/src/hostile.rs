//! System calls with arbitrary numbers and arguments, for programs that
//! test the kernel with bad input, and the pieces the other hostile
//! programs share.
//!
//! Garbage in must give a typed error back and hurt nobody but the caller.
//! [`call`] issues any number with any arguments, except the few calls that
//! can take memory or the environment itself away from the caller — Rust
//! code cannot survive losing its own stack. Those are exercised by
//! [`spawn_chaos`]: a child environment that issues everything, including
//! them, against itself, and is expected to be destroyed by what it does.
//!
//! The submodules: [`flags`] enters the kernel with chosen RFLAGS,
//! [`traps`] with instructions that trap and stack pointers that point nowhere,
//! [`buffers`] issues the calls that write into a buffer with any buffer that holds no
//! Rust memory, [`batch`] maps one frame at many addresses a full `MapBatch` at a time,
//! [`shared`] is a page of words a parent shares with its children,
//! [`witness`] a child that only runs and counts, [`conservation`]
//! checks that frames and kernel memory came back after an attack, and
//! [`fuzz`] is the child of the long system-call fuzzer.
#![allow(unsafe_code)] // the raw `syscall` instruction

pub mod batch;
pub mod buffers;
pub mod chain;
pub mod conservation;
pub mod flags;
pub mod fuzz;
pub mod shared;
pub mod state;
pub mod traps;
pub mod witness;

use exo_abi::layout::is_user_range;
use exo_abi::layout::{KERNEL_HALF_START, PAGE_SIZE, START_INFO, USER_END, USER_MAP_END};
use exo_abi::syscall::{CapabilityKind, Event, Sysnum};
use exo_abi::user;
use exo_abi::{Error, Handle};

use crate::spawn::{self, Child};

/// The calls that can unmap, re-protect, free or overwrite the caller's own
/// memory, or end it. (`ConsoleRead` and `NetReceive` write into the buffer
/// they are given, at a random address that may be this program's stack or
/// data; `NetBind` has the kernel write into the frames it names, which may
/// hold them.)
const TAKES_AWAY: [Sysnum; 11] = [
    Sysnum::Exit,
    Sysnum::Unmap,
    Sysnum::Protect,
    Sysnum::CapabilityRevoke,
    Sysnum::CapabilityDrop,
    Sysnum::EnvironmentDestroy,
    Sysnum::RequestFrames,
    Sysnum::SetUpcall,
    Sysnum::ConsoleRead,
    Sysnum::NetReceive,
    Sysnum::NetBind,
];

/// Whether [`call`] refuses `number`.
pub fn takes_away(number: u64) -> bool {
    TAKES_AWAY.iter().any(|sysnum| *sysnum as u64 == number)
}

/// What a raw call returned: `Ok` values, or the error code the kernel gave.
pub type Outcome = Result<(u64, u64), u64>;

fn outcome([status, first, second, ..]: [u64; 6]) -> Outcome {
    if status == 0 {
        Ok((first, second))
    } else {
        Err(status)
    }
}

/// Whether `code` is one of the ABI's error codes (a kernel answer, not noise).
pub fn is_typed_error(code: u64) -> bool {
    Error::try_from(code).is_ok()
}

/// Issues system call `number` with `arguments`; `None` if it is one that
/// could take the caller's memory away.
pub fn call(number: u64, arguments: [u64; 6]) -> Option<Outcome> {
    if takes_away(number) {
        return None;
    }
    // SAFETY: every call left can only add to the caller's address space or
    // capabilities, read (never write) memory it names, checked by the
    // kernel, or fail.
    Some(outcome(unsafe { user::syscall_raw(number, arguments) }))
}

/// Issues `number` with `arguments`, where argument `position` is a handle that cannot
/// serve the call: it names nothing in this environment's table, or a capability of another
/// kind than `takes`. A kernel that checks its handles can only refuse such a call, so it
/// may be issued for the calls [`call`] will not issue (a kernel that did not check would
/// fail the program, which is what the test is for). Panics if the handle would serve.
pub fn call_refused(
    number: u64,
    arguments: [u64; 6],
    position: usize,
    takes: CapabilityKind,
) -> Outcome {
    let named = user::capability_identify(Handle::from_raw(arguments[position]));
    assert!(
        named.is_err() || named.is_ok_and(|info| info.kind != takes),
        "argument {position} of call {number} names a capability the call takes"
    );
    // SAFETY: the call needs argument `position` to be a capability of kind `takes`, and
    // it is not (checked above): the call is refused and takes nothing away.
    outcome(unsafe { user::syscall_raw(number, arguments) })
}

/// A small, fast, deterministic generator of hostile values (xorshift64*).
#[derive(Clone, Debug)]
pub struct Garbage(u64);

impl Garbage {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A system-call number: mostly valid ones, some just past them, some wild.
    pub fn number(&mut self) -> u64 {
        match self.next_u64() % 8 {
            0 => self.next_u64(),
            1 => self.next_u64() % 64,
            _ => Sysnum::ALL[(self.next_u64() % Sysnum::ALL.len() as u64) as usize] as u64,
        }
    }

    /// An argument: the values kernels get wrong — zero, small numbers,
    /// boundaries of the address space, misaligned and non-canonical
    /// addresses, plausible handles with wrong generations, and noise.
    pub fn argument(&mut self) -> u64 {
        let page = (self.next_u64() % (USER_MAP_END / PAGE_SIZE)) * PAGE_SIZE;
        match self.next_u64() % 14 {
            0 => 0,
            1 => self.next_u64() % 16,
            2 => u64::MAX,
            3 => USER_END,
            4 => USER_MAP_END - PAGE_SIZE,
            5 => KERNEL_HALF_START + (self.next_u64() % (1 << 40)),
            6 => USER_END + (self.next_u64() % (1 << 40)), // non-canonical
            7 => page,
            8 => page + 1 + self.next_u64() % (PAGE_SIZE - 1), // misaligned
            9 => START_INFO,
            10 => Handle::new((self.next_u64() % 8) as u32, (self.next_u64() % 4) as u32).to_raw(),
            11 => 1 << (self.next_u64() % 64),
            _ => self.next_u64(),
        }
    }

    pub fn arguments(&mut self) -> [u64; 6] {
        core::array::from_fn(|_| self.argument())
    }
}

/// Keeps a random call from stalling the test rather than the kernel:
/// `Wait` always includes the timer, for at most 1 tick (nobody calls these
/// programs, so a wait for calls alone would sleep for ever — correct, but
/// the test would never end); `SlotAllocate` never names a real environment
/// (a program that binds itself to one slot runs only in that slot — by
/// design, but the test would crawl); and console writes of real memory are
/// empty (they would fill the log with noise). Unknown event bits still go through.
pub fn tame(number: u64, arguments: &mut [u64; 6]) {
    if number == Sysnum::SlotAllocate as u64 {
        arguments[0] |= 1 << 31; // an index past any capability table
    }
    if number == Sysnum::Wait as u64 {
        arguments[0] |= Event::TIMER.bits();
        arguments[1] %= 2;
    }
    if number == Sysnum::ConsoleWrite as u64 && is_user_range(arguments[0], 1) {
        arguments[1] = 0;
    }
}

/// Spawns a child that issues `calls` random system calls from `seed`
/// against itself — including unmapping its own pages, dropping its own
/// capabilities and destroying itself — and exits 0 if it survives them
/// all. Whether it ends by exiting or by being destroyed, only it may be hurt.
pub fn spawn_chaos(seed: u64, calls: u64, frame_quota: u64) -> Result<Child, Error> {
    spawn::spawn(chaos, seed ^ (calls << 40), frame_quota)
}

/// The chaos child's body. It runs in its own environment, which exists to
/// be destroyed: what it does to itself is the test.
fn chaos(seed_and_count: u64) -> u64 {
    let calls = seed_and_count >> 40;
    let mut garbage = Garbage::new(seed_and_count);
    for _ in 0..calls {
        let number = garbage.number();
        let mut arguments = garbage.arguments();
        tame(number, &mut arguments);
        // SAFETY: not sound for Rust code in general: this environment may
        // lose the memory it runs on, and then it faults and is destroyed
        // (it has no upcall handler). That is the point; no other
        // environment's memory is reachable from here.
        let [status, ..] = unsafe { user::syscall_raw(number, arguments) };
        if status != 0 && !is_typed_error(status) {
            return 1;
        }
    }
    0
}

/// `SetUpcall` on `environment` with any entry and stack, none of them checked here: where
/// a hostile program points the kernel's upcalls. `Err` holds the code the kernel gave.
pub fn set_upcall(
    environment: Handle,
    entry: u64,
    stack_top: u64,
    stack_size: u64,
    options: u64,
) -> Result<(), u64> {
    let arguments = [
        environment.to_raw(),
        entry,
        stack_top,
        stack_size,
        options,
        0,
    ];
    // SAFETY: a registration takes nothing away; it only says where the kernel enters
    // `environment` on its next fault or request, and a bad one ends that environment.
    outcome(unsafe { user::syscall_raw(Sysnum::SetUpcall as u64, arguments) }).map(drop)
}
