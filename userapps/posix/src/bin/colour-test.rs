//! Page colouring: with `ColouredFrames` as the frame policy, every frame
//! the pager maps — heap, `mmap` pages — has the chosen colour (frame number
//! modulo the number of colours), read through the page-table view.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec;

use exo_abi::layout::PAGE_SIZE;
use exo_abi::user;
use libos_posixish::colour::ColouredFrames;
use libos_posixish::mmap::{self, Protection};
use libos_posixish::{paging, println};

use userapps_posix::check::{self, check};

libos_posixish::main!(main);

const COLOURS: u64 = 16;
const COLOUR: u64 = 5;
static COLOURED: ColouredFrames = ColouredFrames::new(COLOURS, COLOUR);

/// How many of the pages of `start..end` are mapped, and how many of those
/// have the colour.
fn coloured(start: u64, end: u64) -> (u64, u64) {
    let frames = (start..end)
        .step_by(PAGE_SIZE as usize)
        .filter_map(|page| user::translate(page).map(|physical| physical >> 12));
    frames.fold((0, 0), |(mapped, right), frame| {
        (mapped + 1, right + u64::from(frame % COLOURS == COLOUR))
    })
}

fn main(_arguments: &[&str]) -> i32 {
    paging::set_frame_policy(&COLOURED);
    let mut ok = true;

    // A fresh 1 MiB block of heap, all touched after the policy changed.
    let buffer = vec![7u8; 1 << 20];
    let start = buffer.as_ptr() as u64;
    let (mapped, right) = coloured(start, start + buffer.len() as u64);
    println!("colour-test: {right} of {mapped} heap pages have colour {COLOUR} of {COLOURS}");
    ok &= check(
        "every heap page has the colour",
        mapped == 256 && right == mapped,
    );

    let region = mmap::mmap(32 * PAGE_SIZE, Protection::READ_WRITE).expect("mmap");
    for page in 0..32 {
        mmap::store(region + page * PAGE_SIZE, page);
    }
    let (mapped, right) = coloured(region, region + 32 * PAGE_SIZE);
    ok &= check(
        "every mmap page has the colour",
        mapped == 32 && right == 32,
    );
    ok &= check(
        "the values are intact",
        buffer.iter().all(|&byte| byte == 7)
            && (0..32).all(|page| mmap::load(region + page * PAGE_SIZE) == page),
    );
    ok &= check(
        "the colour of a frame",
        COLOURED.colour_of(COLOUR + 3 * COLOURS) == COLOUR,
    );

    if ok {
        check::all_passed("colour-test");
        0
    } else {
        1
    }
}
