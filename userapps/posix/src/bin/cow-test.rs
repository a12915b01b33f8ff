//! Copy-on-write `fork`: after a fork, writes by parent and child stay
//! private; a page nobody writes stays one shared frame (seen through the
//! page-table view); fifty fork-exit-wait rounds give every frame back.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec;
use core::sync::atomic::{AtomicU64, Ordering};

use exo_abi::layout::PAGE_SIZE;
use exo_abi::user;
use libos_posixish::fork::fork;
use libos_posixish::mmap::{self, Protection};
use libos_posixish::process::{self, ExitStatus};
use libos_posixish::{exit, println};

use userapps_posix::check::{self, check};

libos_posixish::main!(main);

/// A static: the data segment, which `fork` copies.
static COUNTER: AtomicU64 = AtomicU64::new(5);

fn frame_of(address: u64) -> u64 {
    user::translate(address).unwrap_or(0) >> 12
}

fn main(_arguments: &[&str]) -> i32 {
    let mut ok = true;
    // Two buffers in different 64 KiB runs (the unit of sharing): `written`
    // is written after the fork, `untouched` never.
    let mut written = vec![1u8; 1 << 20];
    let untouched = vec![2u8; 1 << 20];
    let written_page = written.as_ptr() as u64 & !(PAGE_SIZE - 1);
    let untouched_page = untouched.as_ptr() as u64 & !(PAGE_SIZE - 1);
    let mut on_stack = core::hint::black_box([3u64; 64]);
    let mapped = mmap::mmap(PAGE_SIZE, Protection::READ_WRITE).expect("mmap");
    mmap::store(mapped, 4);

    let written_frame = frame_of(written_page);
    let untouched_frame = frame_of(untouched_page);
    let mapped_frame = frame_of(mapped);

    let pid = fork().expect("fork");
    if pid == 0 {
        // The child: shares everything at first; its writes are its own.
        let mut failures = 0;
        let mut expect = |bit: i32, ok: bool| {
            if !ok {
                failures |= 1 << bit;
            }
        };
        expect(0, frame_of(written_page) == written_frame);
        expect(1, frame_of(untouched_page) == untouched_frame);
        expect(2, frame_of(mapped) == mapped_frame);
        written[0] = 99;
        on_stack[0] = 99;
        COUNTER.store(99, Ordering::Relaxed);
        mmap::store(mapped, 99);
        expect(3, frame_of(written_page) != written_frame);
        expect(4, frame_of(mapped) != mapped_frame);
        expect(
            5,
            written[0] == 99 && core::hint::black_box(on_stack)[0] == 99,
        );
        expect(
            6,
            frame_of(untouched_page) == untouched_frame && untouched[0] == 2,
        );
        exit(failures);
    }
    // The parent writes too, before the child is reaped: it copies as well.
    written[1] = 77;
    ok &= check(
        "the parent's write copies the shared run",
        frame_of(written_page) != written_frame && written[1] == 77,
    );
    let status = process::wait(pid);
    if let Ok(ExitStatus::Exited(failures)) = status
        && failures != 0
    {
        println!("child failures (bit mask): {failures:#x}");
    }
    ok &= check(
        "the child saw shared frames before writing and its own after",
        status == Ok(ExitStatus::Exited(0)),
    );
    ok &= check(
        "the child's heap write stays in the child",
        written[0] == 1 && written[1] == 77,
    );
    ok &= check(
        "the child's stack write stays in the child",
        core::hint::black_box(on_stack)[0] == 3,
    );
    ok &= check(
        "the child's write to a static stays in the child",
        COUNTER.load(Ordering::Relaxed) == 5,
    );
    ok &= check(
        "the child's write to an mmap page stays in the child",
        mmap::load(mapped) == 4,
    );
    ok &= check(
        "a page nobody wrote is still the same frame",
        frame_of(untouched_page) == untouched_frame && untouched[0] == 2,
    );
    mmap::store(mapped, 5);
    ok &= check(
        "once the child is reaped, a write needs no copy",
        frame_of(mapped) == mapped_frame && mmap::load(mapped) == 5,
    );

    // Two rounds to warm up (heap growth, page tables), then fifty counted.
    let mut round = |_| {
        let pid = fork().expect("fork");
        if pid == 0 {
            exit(0);
        }
        process::wait(pid) == Ok(ExitStatus::Exited(0))
    };
    let warm = (0..2).all(&mut round);
    let (free_before, _) = user::frame_counts();
    let all = (0..50).all(&mut round);
    let (free_after, _) = user::frame_counts();
    ok &= check("fifty children forked, exited, reaped", warm && all);
    if free_after != free_before {
        println!("free frames: {free_before} before, {free_after} after");
    }
    ok &= check(
        "the free-frame count returns to where it was",
        free_after == free_before,
    );

    if ok {
        check::all_passed("cow-test");
        0
    } else {
        1
    }
}
