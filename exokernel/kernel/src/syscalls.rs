//! The system-call table: decoding registers into a call and its result back.
//!
//! Arguments arrive in `rdi, rsi, rdx, r10, r8, r9`; the result goes back as
//! `rax` = 0 or an error code, `rdx` and `rsi` = up to two values
//! (`exo_abi::syscall`). Each call is a few lines here that name what it
//! checks; the work is in `environment`. Every argument is untrusted: a bad
//! one gets a typed error, never a kernel fault.

use exo_abi::counters::Counter;
use exo_abi::syscall::{EnvironmentAccount, Sysnum, default_kernel_bytes};
use exo_abi::trace::Kind;
use exo_abi::{Error, Handle, Rights};
use exo_kernel_core::caps::Progress;

use crate::arch::trap::TrapFrame;
use crate::environment::user_memory::UserRange;
use crate::environment::{EnvironmentId, Lend, MapProgress, Step, System, share};
use crate::memory::{frames, heap};
use crate::{arch::cpu, console, trace};

/// The bytes of `syscall`'s opcode (`0f 05`).
const SYSCALL_LENGTH: u64 = 2;

/// Where a call taken again carries its progress in `rax`: above the
/// number, in the high half.
const PROGRESS_SHIFT: u32 = 32;

/// The longest console write taken in one call.
const MAX_CONSOLE_WRITE: u64 = 4096;

/// Handles the system call in `frame` for the running environment.
pub fn dispatch(system: &mut System, frame: &mut TrapFrame) {
    let caller = EnvironmentId(cpu::current().environment());
    let arguments = [
        frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
    ];
    let mut more = None;
    let result = match Sysnum::try_from(frame.rax) {
        Ok(number) if works_in_shares(number) => {
            in_shares(system, caller, number, 0, arguments, &mut more)
        }
        Ok(number) => call(system, caller, number, arguments, &mut more),
        // A call taken again with its progress in `rax`'s high half.
        Err(error) => match taken_again(frame.rax) {
            Some((number, progress)) => {
                in_shares(system, caller, number, progress, arguments, &mut more)
            }
            None => Err(error),
        },
    };
    let registers = match more {
        None => None,
        Some(More::Registers(registers)) => Some(registers),
        Some(More::Stopped(progress)) => return take_again(frame, progress),
    };
    let (status, first, second) = match result {
        Ok((first, second)) => (0, first, second),
        Err(error) => (error.code(), 0, 0),
    };
    frame.rax = status;
    frame.rdx = first;
    frame.rsi = second;
    if let Some([rdi, r8, r9]) = registers {
        (frame.rdi, frame.r8, frame.r9) = (rdi, r8, r9);
    }
}

/// What a call leaves besides `rax`, `rdx` and `rsi`.
enum More {
    /// Results for `rdi`, `r8` and `r9` (`Wait` taking a queued call).
    Registers([u64; 3]),
    /// It stopped part-way, its share used, with this progress: it is to be
    /// taken again ([`take_again`]).
    Stopped(u64),
}

/// The answer of a call that may stop part-way: its values, or, once it
/// stopped, none (`more` says so).
fn answer<T>(
    step: Result<Step<T>, Error>,
    more: &mut Option<More>,
    values: impl FnOnce(T) -> (u64, u64),
) -> Result<(u64, u64), Error> {
    match step? {
        Step::Done(answer) => Ok(values(answer)),
        Step::Stopped(progress) => {
            *more = Some(More::Stopped(progress));
            Ok((0, 0))
        }
    }
}

/// Whether `number` is a call that works a share of a tick at a time
/// whatever its arguments (`environment/teardown.rs`): revoke, drop,
/// destroy. (Allocating and mapping frames may too, for a large run or a
/// batch, but are mostly short: `call` takes them.)
fn works_in_shares(number: Sysnum) -> bool {
    matches!(
        number,
        Sysnum::CapabilityRevoke | Sysnum::CapabilityDrop | Sysnum::EnvironmentDestroy
    )
}

/// The call and progress in `rax` of a call taken again that carries its
/// progress there (`Map`, `MapBatch`, `ConsoleWrite`, `EnvironmentNext`): the number in the low half, the
/// progress, never 0, in the high half. `None` for any other value.
#[cold]
fn taken_again(rax: u64) -> Option<(Sysnum, u64)> {
    let progress = rax >> PROGRESS_SHIFT;
    let number = Sysnum::try_from(rax & ((1 << PROGRESS_SHIFT) - 1)).ok()?;
    let carries = matches!(
        number,
        Sysnum::Map | Sysnum::MapBatch | Sysnum::ConsoleWrite | Sysnum::EnvironmentNext
    );
    (carries && progress != 0).then_some((number, progress))
}

/// Runs a share of call `number` — one of those [`works_in_shares`] names,
/// or a `Map`, `MapBatch`, `ConsoleWrite` or `EnvironmentNext` taken again — from `progress` (0 for a fresh
/// call). Out of line, as `take_again`: these are rare, and under TCG the
/// system-call path costs by its jumps.
#[inline(never)]
fn in_shares(
    system: &mut System,
    caller: EnvironmentId,
    number: Sysnum,
    progress: u64,
    [a, b, c, d, e, _]: [u64; 6],
    more: &mut Option<More>,
) -> Result<(u64, u64), Error> {
    let go_on = &mut share();
    let removal = |progress| {
        Ok(match progress {
            Progress::Done => Step::Done(()),
            Progress::Stopped => Step::Stopped(0),
        })
    };
    let none = |()| (0, 0);
    match number {
        Sysnum::CapabilityRevoke => {
            let step = system.revoke(caller, handle(a), go_on).and_then(removal);
            answer(step, more, none)
        }
        Sysnum::CapabilityDrop => {
            let step = system.drop_capability(caller, handle(a), go_on);
            answer(step.and_then(removal), more, none)
        }
        Sysnum::EnvironmentDestroy => {
            let step = system.destroy_call(caller, handle(a), go_on);
            answer(step.and_then(removal), more, none)
        }
        Sysnum::Map => {
            let progress = MapProgress::unpack(progress)?;
            let step = system.map_some(caller, [a, b, c, d, e], progress, go_on);
            answer(step, more, none)
        }
        Sysnum::MapBatch => {
            let step = system.map_batch(caller, handle(a), [b, c], progress, go_on);
            answer(step, more, |values| values)
        }
        Sysnum::ConsoleWrite => {
            let step = console_write(system, caller, [a, b], progress, go_on);
            answer(step, more, |written| (written, 0))
        }
        Sysnum::EnvironmentNext => {
            let top = system.target(caller, handle(a), Rights::INSPECT)?;
            let step = system.environment_next(caller, top, b, go_on);
            answer(Ok(step), more, |id| (id, 0))
        }
        _ => Err(Error::UnknownSystemCall),
    }
}

/// A call that stopped part-way (`environment/teardown.rs`): back on the
/// `syscall` instruction, registers as they were, so the call goes on when
/// the caller runs again — but for `rax`'s high half, which carries
/// `progress` if it is not 0 (where the kernel's records do not keep it).
/// Every encoding of `syscall` ends in its two opcode bytes, whatever
/// prefixes come before them. Out of line: under TCG the system-call path
/// costs by its jumps, and this one is rare.
#[cold]
#[inline(never)]
fn take_again(frame: &mut TrapFrame, progress: u64) {
    frame.rip -= SYSCALL_LENGTH;
    frame.rax = (frame.rax & ((1 << PROGRESS_SHIFT) - 1)) | progress << PROGRESS_SHIFT;
    cpu::current().count(Counter::CallsTakenAgain);
}

/// 37: the kernel heap's bytes in use and its capacity. Anyone may ask: the figures say
/// how full the kernel is, not what any other environment holds.
fn kernel_memory() -> Result<(u64, u64), Error> {
    // LAB 1.1 BEGIN: the kernel answers KernelMemory
    Ok((heap::used_bytes() as u64, heap::capacity() as u64))
    // LAB 1.1 STUB
    // // Lab 1.1: answer with the kernel heap's bytes in use and its capacity
    // // (`memory/heap.rs`). Until then the call is refused as unknown.
    // Err(Error::UnknownSystemCall)
    // LAB 1.1 END
}

fn handle(raw: u64) -> Handle {
    Handle::from_raw(raw)
}

/// Runs system call `number`; its results for `rdx` and `rsi`, and in `more`
/// those for `rdi`, `r8` and `r9` of the one call that has them (`Wait`
/// taking a queued call), or that it stopped part-way.
fn call(
    system: &mut System,
    caller: EnvironmentId,
    number: Sysnum,
    [a, b, c, d, e, _]: [u64; 6],
    more: &mut Option<More>,
) -> Result<(u64, u64), Error> {
    let none = |()| (0, 0);
    let one = |value: u64| (value, 0);
    match number {
        // 0–4: the console (here), exit and yield (`environment/teardown.rs`, `waiting.rs`).
        Sysnum::ConsoleWrite => {
            let step = console_write(system, caller, [a, b], 0, &mut share());
            answer(step, more, one)
        }
        Sysnum::ConsoleRead => console_read(system, caller, a, b).map(one),
        // The caller ends: the scheduler takes it down in its own time.
        Sysnum::Exit => {
            system.exit(caller, a);
            Ok((0, 0))
        }
        // Taken by `in_shares` before `call` is: they may stop part-way.
        Sysnum::CapabilityRevoke | Sysnum::CapabilityDrop | Sysnum::EnvironmentDestroy => {
            Err(Error::UnknownSystemCall)
        }
        Sysnum::Yield => {
            system.request_yield();
            Ok((0, 0))
        }
        // Answered in the entry stub (`arch/trap_entry.rs`) unless its
        // return address is not canonical.
        Sysnum::Null => Ok((0, 0)),
        // 10–14: capabilities (`environment/capabilities.rs`).
        Sysnum::CapabilityDerive => system.derive(caller, handle(a), b).map(|h| one(h.to_raw())),
        Sysnum::CapabilityGrant => system
            .grant(caller, handle(a), handle(b), c)
            .map(|h| one(h.to_raw())),
        Sysnum::CapabilityIdentify => system
            .identify(caller, handle(a))
            .map(|info| (info.pack(), info.value)),
        // 20–25: frames and mappings (`environment/memory.rs`); a large run
        // or a batch may stop part-way.
        Sysnum::FrameAllocate => {
            let step = system.allocate_frames_some(caller, a, None, &mut share());
            answer(step, more, |(handle, frame)| (handle.to_raw(), frame))
        }
        Sysnum::FrameAllocateAt => {
            let step = system.allocate_frames_some(caller, b, Some(a), &mut share());
            answer(step, more, |(handle, frame)| (handle.to_raw(), frame))
        }
        Sysnum::Map => {
            let step = system.map_some(caller, [a, b, c, d, e], MapProgress::FRESH, &mut share());
            answer(step, more, none)
        }
        Sysnum::MapBatch => {
            let step = system.map_batch(caller, handle(a), [b, c], 0, &mut share());
            answer(step, more, |values| values)
        }
        Sysnum::Unmap => system.unmap(caller, handle(a), b).map(none),
        Sysnum::Protect => system.protect(caller, handle(a), b, c).map(none),
        // 30–37: environments (`environment/lifecycle.rs`, `upcall.rs`,
        // `revocation.rs`, `mod.rs`) and the kernel's own counts.
        Sysnum::EnvironmentCreate => {
            let lend = Lend {
                frames: a,
                kernel_bytes: if b == 0 { default_kernel_bytes(a) } else { b },
                slots: c,
            };
            system
                .create_environment(Some(caller), lend)
                .map(|(_, h)| one(h.to_raw()))
        }
        Sysnum::EnvironmentStart => {
            let target = system.target_to_build_in(caller, handle(a), Rights::CONTROL)?;
            system.start_environment(target, b, c, d).map(none)
        }
        Sysnum::SetUpcall => system.set_upcall(caller, handle(a), [b, c, d, e]).map(none),
        Sysnum::RequestFrames => system.request_frames(caller, handle(a), b, c).map(none),
        Sysnum::EnvironmentInfo => {
            let account = EnvironmentAccount::try_from(b)?;
            system.account(caller, handle(a), account).map(one)
        }
        Sysnum::FrameCounts => {
            let counts = frames::counts();
            Ok((counts.free, counts.usable))
        }
        Sysnum::KernelMemory => kernel_memory(),
        // 38: a library OS's event in the trace (`trace.rs`).
        Sysnum::Trace => {
            let kind = Kind::from_number(a)
                .filter(|kind| kind.is_library())
                .ok_or(Error::InvalidArgument)?;
            trace::record(kind, caller.0, [b, c]);
            Ok((0, 0))
        }
        // 40–47: CPU slots (`environment/slots.rs`), yield and wait (`waiting.rs`),
        // calls (`calls.rs`), notifications (`notifications.rs`).
        Sysnum::SlotAllocate => system
            .slot_allocate(caller, handle(a), b)
            .map(|(h, index)| (h.to_raw(), index)),
        Sysnum::YieldTo => system.yield_to(caller, handle(a)).map(none),
        Sysnum::Wait => {
            let mut registers = None;
            let step = system.wait(caller, a, b, &mut registers);
            *more = registers.map(More::Registers);
            answer(step, more, |woken| woken)
        }
        Sysnum::EndpointCreate => system.endpoint_create(caller, a).map(|h| one(h.to_raw())),
        Sysnum::Call => system.call(caller, handle(a), [b, c], d).map(none),
        Sysnum::Reply => system.reply(caller, [a, b], c).map(none),
        Sysnum::NotificationCreate => system
            .notification_create(caller, a)
            .map(|h| one(h.to_raw())),
        Sysnum::Signal => system.signal(caller, handle(a)).map(none),
        // 50–55: the network card (`environment/net.rs`).
        Sysnum::NetClaim => system
            .net_claim(caller, handle(a), b)
            .map(|h| one(h.to_raw())),
        Sysnum::NetBind => system
            .net_bind(caller, handle(a), b)
            .map(|(h, entries)| (h.to_raw(), entries)),
        Sysnum::NetFilter => system
            .net_filter(caller, handle(a), handle(b), c)
            .map(|h| one(h.to_raw())),
        Sysnum::NetKick => system.net_kick(caller, handle(a)).map(none),
        Sysnum::NetSend => system.net_send(caller, handle(a), b, c).map(none),
        Sysnum::NetReceive => system.net_receive(caller, handle(a), b, c).map(one),
        // 60–62: seeing the system (`environment/inspect.rs`).
        Sysnum::EnvironmentNext => {
            let top = system.target(caller, handle(a), Rights::INSPECT)?;
            let step = system.environment_next(caller, top, b, &mut share());
            answer(Ok(step), more, one)
        }
        Sysnum::EnvironmentInspect => {
            let top = system.target(caller, handle(a), Rights::INSPECT)?;
            let account = EnvironmentAccount::try_from(c)?;
            system.inspect(top, b, account).map(one)
        }
        Sysnum::EnvironmentName => system.name_environment(caller, handle(a), [b, c]).map(none),
    }
}

/// Copies what has arrived on the console (up to `length`, at most
/// `MAX_CONSOLE_WRITE` bytes) to the caller's buffer; never waits.
fn console_read(
    system: &mut System,
    caller: EnvironmentId,
    address: u64,
    length: u64,
) -> Result<u64, Error> {
    let length = length.min(MAX_CONSOLE_WRITE);
    // Check the buffer before taking input, so a bad buffer loses no byte.
    system.check_user_writable(caller, UserRange::new(address, length)?)?;
    let mut done = 0;
    while done < length {
        let mut bytes = [0; CHUNK];
        let wanted = (length - done).min(CHUNK as u64) as usize;
        let read = console::read(&mut bytes[..wanted]);
        let range = UserRange::new(address + done, read as u64)?;
        system.write_user(caller, range, &bytes[..read])?;
        done += read as u64;
        if read < wanted {
            break;
        }
    }
    Ok(done)
}

/// Copies up to `MAX_CONSOLE_WRITE` bytes from the caller and prints them,
/// a stack buffer at a time: a per-call buffer never comes from the heap,
/// which other environments' accounts share. A share at a time from `done`
/// bytes: under TCG every byte to the serial port is an exit to QEMU, and
/// 4 KiB took 11 ms of real time, 11 slots of a millisecond.
fn console_write(
    system: &mut System,
    caller: EnvironmentId,
    [address, length]: [u64; 2],
    mut done: u64,
    go_on: &mut dyn FnMut() -> bool,
) -> Result<Step<u64>, Error> {
    if length > MAX_CONSOLE_WRITE || (done != 0 && done >= length) {
        return Err(Error::InvalidArgument);
    }
    // All of what is left is readable, or none of it is printed. (`done`
    // comes back from the caller's registers: added to a buffer at the top
    // of memory it must not wrap round to the bottom.)
    let from = |done: u64| address.checked_add(done).ok_or(Error::BadUserBuffer);
    system.check_user_readable(caller, UserRange::new(from(done)?, length - done)?)?;
    while done < length {
        let mut bytes = [0; PRINTED_AT_ONCE];
        let piece = (length - done).min(PRINTED_AT_ONCE as u64);
        let range = UserRange::new(from(done)?, piece)?;
        system.read_user(caller, range, &mut bytes[..piece as usize])?;
        console::write_bytes(u64::from(caller.0), &bytes[..piece as usize]);
        done += piece;
        if done < length && !go_on() {
            return Ok(Step::Stopped(done));
        }
    }
    Ok(Step::Done(length))
}

/// The size of the stack buffer the console calls copy through.
const CHUNK: usize = 256;

/// Bytes `ConsoleWrite` prints between two looks at its share: about a
/// twelfth of a millisecond of real time under TCG.
const PRINTED_AT_ONCE: usize = 32;
