//! The kernel finds the capability a page was mapped through by a tag in the page's entry
//! (chapter 2.4): the capability's node index plus one, in 14 spare bits. A node whose
//! index needs more bits tags its pages 0, and the kernel looks those up in a tree. Both
//! ways must give the same answers; the second only happens with more than 16,382
//! capabilities in the machine, so this test makes that many first.
//!
//! For each way: a frame is mapped writable and a read-only copy of its capability maps it
//! again; `Protect` asking to write is refused for the copy's page (the kernel found the
//! copy, not the original) and granted for the original's; `Unmap` works once, then says
//! `NotMapped`; dropping the copy unmaps its page and leaves the original's. The tags are
//! read from the process's own page-table view. At the end every frame and byte of kernel
//! memory has come back.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::layout::PAGE_SIZE;
use exo_abi::mapping::MapFlags;
use exo_abi::syscall::{CAPABILITY_BYTES, TABLE_GROWTH_BYTES};
use exo_abi::user::{self, Lend, entry};
use exo_abi::{Error, Handle, Rights};
use userapps::hostile::conservation::Baseline;
use userapps::layout::MANAGED_START;
use userapps::memory::{self, read_u64, write_u64};
use userapps::{check, println};

userapps::entry!(main);

/// Capabilities made before the second round: beyond what 14 bits can tag.
const CAPABILITIES: u64 = 17_000;
/// Holders of those capabilities: a table holds at most 1024.
const HOLDERS: usize = 18;
const PER_HOLDER: u64 = CAPABILITIES / HOLDERS as u64 + 1;
/// Where each round maps its two pages.
const PAGES: u64 = MANAGED_START + 0x40_0000_0000;

fn main(_argument: u64) -> u64 {
    // Once before the baseline, so that what stays for good exists: the pages' tables,
    // and our table grown to hold the holders.
    round("tagged", PAGES, true);
    release(hold(0));
    let baseline = Baseline::take();

    let held = hold(PER_HOLDER);
    println!(
        "mapping-tags-test: {} copies held",
        HOLDERS as u64 * PER_HOLDER
    );
    round("untagged", PAGES + 0x10_0000, false);
    release(held);
    baseline.expect_came_back("mapping-tags-test", "both rounds");
    check::all_passed("mapping-tags-test");
    0
}

/// A frame and holders of `copies` copies each of its capability.
fn hold(copies: u64) -> (Handle, [Handle; HOLDERS]) {
    let (frame, _) = user::frame_allocate(0).expect("a frame to copy");
    let mut holders = [Handle::SELF_ENVIRONMENT; HOLDERS];
    for holder in &mut holders {
        // A copy in a holder's table is charged to the holder.
        *holder = user::environment_create_lending(Lend {
            frames: 8,
            kernel_bytes: 16 * 1024 + PER_HOLDER * (CAPABILITY_BYTES + TABLE_GROWTH_BYTES),
            slots: 0,
        })
        .expect("a holder");
        for _ in 0..copies {
            user::capability_grant(frame, *holder, Rights::READ).expect("a copy");
        }
    }
    (frame, holders)
}

fn release((frame, holders): (Handle, [Handle; HOLDERS])) {
    for holder in holders {
        user::environment_destroy(holder).expect("destroy a holder");
    }
    memory::drop_capability(frame).expect("drop the frame");
}

/// The tag in a page's entry (bits 9–11 and 52–62).
fn tag_of_page(address: u64) -> u64 {
    let bits = user::page_table_entry(address).expect("the page's tables exist");
    assert!(bits & entry::PRESENT != 0, "{address:#x} is mapped");
    (bits >> 9) & 0b111 | ((bits >> 52) & 0x7ff) << 3
}

fn round(name: &str, at: u64, tagged: bool) {
    let (original, _) = user::frame_allocate(0).expect("allocate a frame");
    let copy = user::capability_derive(original, Rights::READ | Rights::MAP).expect("a copy");
    let (writable, read_only) = (at, at + PAGE_SIZE);
    let me = Handle::SELF_ENVIRONMENT;
    user::map(original, me, writable, MapFlags::WRITE).expect("map the original");
    user::map(copy, me, read_only, MapFlags::empty()).expect("map the copy");
    write_u64(writable, 0x7a65);
    assert_eq!(read_u64(read_only), 0x7a65, "one frame, two pages");

    let tags = [tag_of_page(writable), tag_of_page(read_only)];
    assert_eq!(
        tags.iter().all(|&tag| tag != 0),
        tagged,
        "{name}: the pages' tags are {tags:?}"
    );
    if tagged {
        assert_ne!(tags[0], tags[1], "{name}: two capabilities, two tags");
    }
    check::ok(format_args!("{name}: the pages carry tags {tags:?}"));

    match memory::protect(me, read_only, MapFlags::WRITE) {
        Err(Error::ReadOnly) => check::ok(format_args!(
            "{name}: write access to the copy's page refused (ReadOnly)"
        )),
        other => panic!("{name}: write access to the copy's page: {other:?}"),
    }
    memory::protect(me, writable, MapFlags::empty()).expect("the original's page read-only");
    memory::protect(me, writable, MapFlags::WRITE).expect("and writable again");
    write_u64(writable, 0x7a66);

    memory::drop_capability(copy).expect("drop the copy");
    assert_eq!(
        user::translate(read_only),
        None,
        "{name}: the copy's page went with it"
    );
    assert_eq!(
        read_u64(writable),
        0x7a66,
        "{name}: the original's page stayed"
    );
    memory::unmap(me, writable).expect("unmap the original's page");
    match memory::unmap(me, writable) {
        Err(Error::NotMapped) => check::ok(format_args!("{name}: unmapping it again refused")),
        other => panic!("{name}: unmapping it again: {other:?}"),
    }
    memory::drop_capability(original).expect("drop the original");
    println!(
        "mapping-tags-test: {name}: Protect, Unmap and revocation found each page's capability"
    );
}
