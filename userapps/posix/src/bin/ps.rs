//! Lists the environments this one may see, with the kernel's accounts of each:
//! `ps [-n SECONDS [-c TIMES]]`.
//!
//! A capability with `INSPECT` for an environment shows its accounts and those of every
//! environment below it (`EnvironmentNext`, `EnvironmentInspect`; docs/08). The library OS
//! gives each process one for its parent, so `ps` sees its family: from the shell, which is
//! the first environment under `cargo xtask run`, the whole system.
//!
//! ```text
//!  ID PARENT NAME             STATE     FRAMES   KBYTES SLOTS  SYSCALLS  FAULTS UPCALLS    RX    TX  DROP
//!   1      0 sh               waiting      212      96      0     1843      40      40     0     0     0
//! ```
//!
//! FRAMES and KBYTES are what is charged to each (its own and what it lent its children);
//! SLOTS the slots it holds; FAULTS the exceptions it took; RX, TX and DROP the frames of
//! its live network bindings. With `-n SECONDS` it prints the table again every SECONDS,
//! `TIMES` times (10 if not given), like `top`.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::syscall::{EnvironmentAccount, EnvironmentState};
use exo_abi::trace::unpack_name;
use exo_abi::{Handle, user};
use libos_posixish::{info_page, println, thread};

libos_posixish::main!(main);

/// How many times `-n` prints the table when `-c` does not say.
const DEFAULT_TIMES: u64 = 10;

fn main(arguments: &[&str]) -> i32 {
    let (every, times): (Option<u64>, u64) = match arguments.get(1..) {
        Some([]) | None => (None, 1),
        Some(["-n", seconds]) => match seconds.parse() {
            Ok(seconds) => (Some(seconds), DEFAULT_TIMES),
            Err(_) => return usage(),
        },
        Some(["-n", seconds, "-c", times]) => match (seconds.parse(), times.parse()) {
            (Ok(seconds), Ok(times)) => (Some(seconds), times),
            _ => return usage(),
        },
        Some(_) => return usage(),
    };
    for round in 0..times {
        if round > 0
            && let Some(seconds) = every
        {
            let ticks_per_second = user::fact(|facts| &facts.ticks_per_second);
            thread::sleep(seconds * ticks_per_second);
            println!();
        }
        if let Err(error) = print_table() {
            println!("ps: {error}");
            return 1;
        }
    }
    0
}

fn usage() -> i32 {
    println!("usage: ps [-n SECONDS [-c TIMES]]");
    2
}

/// One line per environment this one may inspect, in id order.
fn print_table() -> Result<(), exo_abi::Error> {
    println!(
        "{:>3} {:>6} {:<16} {:<8} {:>7} {:>7} {:>5} {:>9} {:>7} {:>7} {:>5} {:>5} {:>5}",
        "ID",
        "PARENT",
        "NAME",
        "STATE",
        "FRAMES",
        "KBYTES",
        "SLOTS",
        "SYSCALLS",
        "FAULTS",
        "UPCALLS",
        "RX",
        "TX",
        "DROP"
    );
    // The parent's family, or (a process started by the kernel) its own.
    let top = info_page::own()
        .and_then(|info| info.parent_environment)
        .unwrap_or(Handle::SELF_ENVIRONMENT);
    let mut after = 0;
    while let Some(id) = user::environment_next(top, after)? {
        after = id;
        // It may end between the two calls: then it is simply not listed.
        let Ok(row) = Row::read(top, id) else {
            continue;
        };
        let mut name = [0; 16];
        println!(
            "{:>3} {:>6} {:<16} {:<8} {:>7} {:>7} {:>5} {:>9} {:>7} {:>7} {:>5} {:>5} {:>5}",
            id,
            row.parent,
            unpack_name(row.name, &mut name),
            state_name(row.state),
            row.frames,
            row.kernel_bytes / 1024,
            row.slots,
            row.system_calls,
            row.faults,
            row.upcalls,
            row.received,
            row.sent,
            row.dropped
        );
    }
    Ok(())
}

/// What the table shows of one environment.
struct Row {
    parent: u64,
    name: [u64; 2],
    state: u64,
    frames: u64,
    kernel_bytes: u64,
    slots: u64,
    system_calls: u64,
    faults: u64,
    upcalls: u64,
    received: u64,
    sent: u64,
    dropped: u64,
}

impl Row {
    fn read(top: Handle, id: u64) -> Result<Self, exo_abi::Error> {
        let account = |account| user::environment_inspect(top, id, account);
        Ok(Self {
            parent: account(EnvironmentAccount::Parent)?,
            name: [
                account(EnvironmentAccount::NameLow)?,
                account(EnvironmentAccount::NameHigh)?,
            ],
            state: account(EnvironmentAccount::State)?,
            frames: account(EnvironmentAccount::FramesCharged)?,
            kernel_bytes: account(EnvironmentAccount::KernelBytesCharged)?,
            slots: account(EnvironmentAccount::SlotsHeld)?,
            system_calls: account(EnvironmentAccount::SystemCalls)?,
            faults: account(EnvironmentAccount::Exceptions)?,
            upcalls: account(EnvironmentAccount::Upcalls)?,
            received: account(EnvironmentAccount::PacketsReceived)?,
            sent: account(EnvironmentAccount::PacketsSent)?,
            dropped: account(EnvironmentAccount::PacketsDropped)?,
        })
    }
}

fn state_name(state: u64) -> &'static str {
    const NAMES: [(EnvironmentState, &str); 5] = [
        (EnvironmentState::Created, "created"),
        (EnvironmentState::Runnable, "ready"),
        (EnvironmentState::Waiting, "waiting"),
        (EnvironmentState::Calling, "calling"),
        (EnvironmentState::Ending, "ending"),
    ];
    NAMES
        .iter()
        .find(|(known, _)| *known as u64 == state)
        .map_or("?", |(_, name)| name)
}
