//! Every system call that takes a user address refuses a bad one with a typed error, and
//! a refused call writes nothing and reads nothing it may not.
//!
//! The calls that name memory are `ConsoleWrite` and `NetSend` (read a buffer),
//! `MapBatch` (reads an array of requests), `ConsoleRead` and `NetReceive` (write a buffer)
//! and `SetUpcall` (whose stacks `hostile-upcalls` attacks). Each is given buffers in the
//! kernel half and the kernel's image, at non-canonical addresses, on the page-table view,
//! the start-info and facts pages, across the end of what an environment may map, across
//! a mapped and an unmapped page, on an unmapped page, and wrapping past 2^64; the calls
//! that write are given a read-only page and a buffer running from a writable page onto a
//! read-only one besides. Each must be `BadUserBuffer`, with nothing written: the
//! writable half of a straddling buffer keeps its bytes, a refused `NetReceive` leaves its
//! frame for the next call, and a refused `MapBatch` maps not even the request it could
//! read. Lengths of zero, one past the limit and `u64::MAX` get their own answers.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::layout::{
    FACTS, KERNEL_HALF_START, PAGE_SIZE, PAGE_TABLE_VIEW, START_INFO, USER_END, USER_MAP_END,
};
use exo_abi::mapping::{MAX_BATCH, MapFlags, MapRequest};
use exo_abi::net::{Filter, MAX_FRAME};
use exo_abi::syscall::{Event, Sysnum};
use exo_abi::wire::ETHERTYPE_ARP;
use exo_abi::{Error, Handle, user};
use userapps::check;
use userapps::hostile::buffers::call_writing;
use userapps::hostile::{self, Outcome};
use userapps::layout::MANAGED_START;
use userapps::memory::{read_u64, write_u64};
use userapps::net::{Binding, Station};

userapps::entry!(main);

/// A writable page, with nothing mapped after it.
const WRITABLE: u64 = MANAGED_START + 0x1_0000;
/// The same frame mapped read-only, with nothing mapped after it.
const READ_ONLY: u64 = MANAGED_START + 0x2_0000;
/// A writable page followed by a read-only one (`READ_ONLY`'s frame again).
const WRITABLE_THEN_READ_ONLY: u64 = MANAGED_START + 0x3_0000;
/// Where a refused batch's readable request would have mapped a page.
const BATCH_TARGET: u64 = MANAGED_START + 0x4_0000;
const RINGS: u64 = MANAGED_START + 0x10_0000;

/// The length of every bad buffer: enough to cross any page boundary it starts 32 bytes
/// before, and no longer than a frame `NetSend` accepts.
const LENGTH: u64 = 64;
/// What the writable bytes of a straddling buffer hold before and after a refused write.
const PATTERN: u64 = 0x5a5a_a5a5_0f0f_f0f0;
/// The line the scenario types on the console, and what follows it.
const TYPED: &[u8] = b"typed into hostile-pointers\n";
const END_OF_INPUT: u8 = 0x04;
/// Ticks to wait for the gateway's answer to our ARP request, or for the typed line.
const PATIENCE_TICKS: u64 = 2_000;

/// Buffers no call may read or write: (what, address).
const UNREADABLE: [(&str, u64); 11] = [
    ("the kernel half", KERNEL_HALF_START),
    ("the kernel's image", 0xffff_ffff_8000_0000),
    ("the first non-canonical address", USER_END),
    ("a non-canonical address", 0x8000_0000_0000_0000),
    ("the page-table view", PAGE_TABLE_VIEW),
    ("the start-info page", START_INFO),
    ("the facts page", FACTS),
    ("the end of what an environment maps", USER_MAP_END - 32),
    ("a mapped and an unmapped page", WRITABLE + PAGE_SIZE - 32),
    ("an unmapped page", WRITABLE + PAGE_SIZE),
    ("an address that wraps past 2^64", u64::MAX - 31),
];

/// Buffers a call may read but must not write.
const UNWRITABLE: [(&str, u64); 2] = [
    ("a read-only page", READ_ONLY),
    (
        "a writable and a read-only page",
        WRITABLE_THEN_READ_ONLY + PAGE_SIZE - 32,
    ),
];

fn main(_argument: u64) -> u64 {
    let pages = set_up_pages();
    let station = Station::start(Binding::new(RINGS, None).expect("bind"), &[Filter::arp()])
        .expect("claim 10.0.2.15 and ask the gateway's address");

    reads(station.binding.handle);
    writes();
    lengths(station.binding.handle);
    map_batch();
    receive(&station);

    for page in [WRITABLE, READ_ONLY, WRITABLE_THEN_READ_ONLY] {
        assert_eq!(
            read_u64(page + PAGE_SIZE - 8),
            PATTERN,
            "a refused call wrote into {page:#x}"
        );
    }
    check::ok("no refused call wrote a byte");
    for frame in pages {
        userapps::memory::drop_capability(frame).expect("give back a page");
    }
    check::all_passed("hostile-pointers");
    0
}

/// Maps the pages the bad buffers run into and fills their last words with `PATTERN`;
/// returns the frames' capabilities.
fn set_up_pages() -> [Handle; 2] {
    let (writable, _) = user::frame_allocate(0).expect("a frame");
    let (shared, _) = user::frame_allocate(0).expect("a frame");
    let own = Handle::SELF_ENVIRONMENT;
    user::map(writable, own, WRITABLE, MapFlags::WRITE).expect("map");
    user::map(shared, own, WRITABLE_THEN_READ_ONLY, MapFlags::WRITE).expect("map");
    user::map(shared, own, READ_ONLY, MapFlags::empty()).expect("map read-only");
    user::map(
        shared,
        own,
        WRITABLE_THEN_READ_ONLY + PAGE_SIZE,
        MapFlags::empty(),
    )
    .expect("map read-only");
    for word in (PAGE_SIZE - LENGTH..PAGE_SIZE).step_by(8) {
        write_u64(WRITABLE + word, PATTERN);
        write_u64(WRITABLE_THEN_READ_ONLY + word, PATTERN);
    }
    [writable, shared]
}

fn expect_bad_buffer(call: &str, at: &str, outcome: Outcome) {
    assert_eq!(
        outcome,
        Err(Error::BadUserBuffer.code()),
        "{call} with a buffer on {at}"
    );
}

/// `ConsoleWrite` and `NetSend` read their buffer.
fn reads(binding: Handle) {
    for (at, address) in UNREADABLE {
        let write = hostile::call(Sysnum::ConsoleWrite as u64, [address, LENGTH, 0, 0, 0, 0]);
        expect_bad_buffer("ConsoleWrite", at, write.expect("not refused by us"));
        let send = hostile::call(
            Sysnum::NetSend as u64,
            [binding.to_raw(), address, LENGTH, 0, 0, 0],
        );
        expect_bad_buffer("NetSend", at, send.expect("not refused by us"));
    }
    check::ok(format_args!(
        "ConsoleWrite and NetSend refused buffers on {} kinds of memory they may not read \
         (BadUserBuffer)",
        UNREADABLE.len()
    ));
    // A read-only page is readable.
    let line = b"hostile-pointers: printed from a read-only page\n";
    for (index, chunk) in line.chunks(8).enumerate() {
        let mut word = [b' '; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        write_u64(
            WRITABLE_THEN_READ_ONLY + 8 * index as u64,
            u64::from_ne_bytes(word),
        );
    }
    let length = line.len().next_multiple_of(8) as u64;
    let printed = hostile::call(Sysnum::ConsoleWrite as u64, [READ_ONLY, length, 0, 0, 0, 0]);
    assert_eq!(
        printed,
        Some(Ok((length, 0))),
        "ConsoleWrite from a read-only page"
    );
    check::ok("ConsoleWrite from a read-only page printed it");
}

/// `ConsoleRead` writes its buffer. The scenario types [`TYPED`]: while it arrives, every
/// bad buffer is refused before any input is taken, so a good buffer gets the whole line.
fn writes() {
    let mut line = [0u8; 64];
    let mut got = 0;
    let mut waited = 0;
    // To the end of input (Ctrl-D, after the line), so that later reads find none.
    while !line[..got].contains(&END_OF_INPUT) && got < line.len() {
        assert!(waited < PATIENCE_TICKS, "the typed line never came");
        for (at, address) in UNREADABLE.iter().chain(&UNWRITABLE) {
            let read = call_writing(
                Sysnum::ConsoleRead as u64,
                [*address, LENGTH, 0, 0, 0, 0],
                *address,
                LENGTH,
            );
            expect_bad_buffer("ConsoleRead", at, read);
        }
        let wanted = (line.len() - got) as u64;
        let (read, _) = call_writing(
            Sysnum::ConsoleRead as u64,
            [WRITABLE, wanted, 0, 0, 0, 0],
            WRITABLE,
            wanted,
        )
        .expect("a good buffer");
        for index in 0..read {
            let word = read_u64(WRITABLE + index / 8 * 8).to_ne_bytes();
            line[got] = word[(index % 8) as usize];
            got += 1;
        }
        let _ = user::wait(Event::TIMER, 1);
        waited += 1;
    }
    assert!(
        line[..got].strip_suffix(&[END_OF_INPUT]) == Some(TYPED),
        "the typed line came back as {:?}",
        core::str::from_utf8(&line[..got])
    );
    check::ok(format_args!(
        "ConsoleRead refused buffers on {} kinds of memory it may not write (BadUserBuffer) \
         and took no input for them: the typed line came whole to a good buffer",
        UNREADABLE.len() + UNWRITABLE.len()
    ));
}

/// Lengths: zero, past each call's limit, and `u64::MAX`.
fn lengths(binding: Handle) {
    let console_write = |address: u64, length: u64| {
        hostile::call(Sysnum::ConsoleWrite as u64, [address, length, 0, 0, 0, 0])
            .expect("not refused by us")
    };
    let invalid = Err(Error::InvalidArgument.code());
    let bad_buffer = Err(Error::BadUserBuffer.code());
    // Nothing to read is nothing to check, but only below the kernel's window.
    assert_eq!(console_write(WRITABLE + PAGE_SIZE, 0), Ok((0, 0)));
    assert_eq!(console_write(KERNEL_HALF_START, 0), bad_buffer);
    assert_eq!(console_write(u64::MAX, 0), bad_buffer);
    assert_eq!(console_write(WRITABLE, 4097), invalid);
    assert_eq!(console_write(WRITABLE, u64::MAX), invalid);
    assert_eq!(console_write(1, u64::MAX), invalid);
    // A read longer than the kernel takes at once is cut to 4096 bytes: the whole page
    // fits; one byte later it does not.
    let console_read = |address: u64, length: u64| {
        call_writing(
            Sysnum::ConsoleRead as u64,
            [address, length, 0, 0, 0, 0],
            address,
            length.min(PAGE_SIZE),
        )
    };
    assert_eq!(console_read(WRITABLE + PAGE_SIZE, 0), Ok((0, 0)));
    assert_eq!(console_read(KERNEL_HALF_START, 0), bad_buffer);
    assert_eq!(console_read(WRITABLE, u64::MAX), Ok((0, 0)));
    assert_eq!(console_read(WRITABLE + 8, u64::MAX), bad_buffer);
    for length in [0, 13, MAX_FRAME as u64 + 1, u64::MAX] {
        let send = hostile::call(
            Sysnum::NetSend as u64,
            [binding.to_raw(), WRITABLE, length, 0, 0, 0],
        );
        assert_eq!(send, Some(invalid), "NetSend of {length} bytes");
    }
    check::ok(
        "lengths of 0, past the limit and u64::MAX: console calls of nothing succeed only \
         below the kernel's window; longer console writes and frames out of range are \
         refused (InvalidArgument); a console read is cut to a page",
    );
}

/// `MapBatch` reads the whole array before it maps anything.
fn map_batch() {
    let batch = |address: u64, count: u64| {
        hostile::call(
            Sysnum::MapBatch as u64,
            [Handle::SELF_ENVIRONMENT.to_raw(), address, count, 0, 0, 0],
        )
        .expect("not refused by us")
    };
    for (at, address) in UNREADABLE {
        expect_bad_buffer("MapBatch", at, batch(address, 3));
    }
    let invalid = Err(Error::InvalidArgument.code());
    assert_eq!(batch(WRITABLE, MAX_BATCH + 1), invalid);
    assert_eq!(batch(WRITABLE, u64::MAX), invalid);
    assert_eq!(
        batch(WRITABLE, u64::MAX / 24 + 1),
        invalid,
        "a count whose bytes wrap"
    );
    assert_eq!(
        batch(KERNEL_HALF_START, 0),
        Err(Error::BadUserBuffer.code())
    );
    assert_eq!(batch(WRITABLE + PAGE_SIZE, 0), Ok((0, 0)));
    // One well-formed request the kernel can read, then one in the hole.
    let (frame, _) = user::frame_allocate(0).expect("a frame");
    let request = MapRequest {
        frame: frame.to_raw(),
        address: BATCH_TARGET,
        flags: MapFlags::WRITE.bits(),
    };
    let first = WRITABLE + PAGE_SIZE - 24;
    let saved = [0, 8, 16].map(|offset| read_u64(first + offset));
    for (offset, value) in [request.frame, request.address, request.flags]
        .into_iter()
        .enumerate()
    {
        write_u64(first + 8 * offset as u64, value);
    }
    expect_bad_buffer("MapBatch", "a mapped and an unmapped page", batch(first, 2));
    assert_eq!(
        user::translate(BATCH_TARGET),
        None,
        "a refused batch mapped its first request"
    );
    assert_eq!(batch(first, 1), Ok((1, 0)), "the same request alone");
    assert!(user::translate(BATCH_TARGET).is_some());
    userapps::memory::drop_capability(frame).expect("drop the frame");
    for (offset, value) in [0, 8, 16].into_iter().zip(saved) {
        write_u64(first + offset, value);
    }
    check::ok(format_args!(
        "MapBatch refused arrays on {} kinds of unreadable memory and counts past 512, and \
         a batch whose second request is unreadable mapped nothing",
        UNREADABLE.len()
    ));
}

/// `NetReceive` writes a received frame: refused buffers leave it in the ring.
fn receive(station: &Station) {
    let binding = station.binding.handle;
    let mut waited = 0;
    while station.binding.rings.rx_pending() == 0 {
        assert!(waited < PATIENCE_TICKS, "the gateway never answered ARP");
        let _ = user::wait(Event::TIMER, 1);
        waited += 1;
    }
    let net_receive = |address: u64, capacity: u64| {
        call_writing(
            Sysnum::NetReceive as u64,
            [binding.to_raw(), address, capacity, 0, 0, 0],
            address,
            capacity,
        )
    };
    for (at, address) in UNREADABLE.iter().chain(&UNWRITABLE) {
        // Each buffer starts at most 32 bytes before a boundary; the frame is at least 42.
        expect_bad_buffer("NetReceive", at, net_receive(*address, LENGTH));
    }
    assert_eq!(
        net_receive(WRITABLE, 8),
        Err(Error::InvalidArgument.code()),
        "a buffer shorter than the frame"
    );
    let (length, _) = net_receive(WRITABLE, PAGE_SIZE - LENGTH).expect("the frame is still there");
    let ethertype = (read_u64(WRITABLE + 8) >> 32) as u16;
    assert!(length >= 42, "an ARP frame is 42 bytes at least");
    assert_eq!(
        u16::from_be(ethertype),
        ETHERTYPE_ARP,
        "the frame is the ARP reply"
    );
    check::ok(format_args!(
        "NetReceive refused buffers on {} kinds of memory it may not write (BadUserBuffer), \
         and the frame stayed for a good buffer",
        UNREADABLE.len() + UNWRITABLE.len()
    ));
}
