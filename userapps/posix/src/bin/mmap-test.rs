//! Anonymous memory on the library OS: `mmap` reserves demand-zero pages,
//! `munmap` gives their frames back, `mprotect` changes what may be done
//! with them; a bad access ends only the process that made it (status 139).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_abi::layout::PAGE_SIZE;
use exo_abi::user;
use libos_posixish::Errno;
use libos_posixish::mmap::{self, Protection};
use libos_posixish::process::{self, ExitStatus};

use userapps_posix::check::{self, check};

libos_posixish::main!(main);

/// Runs this program again with `what` as argument: a child that makes one
/// bad access, and should die of it.
fn dies_of(what: &str) -> bool {
    let pid = process::spawn("mmap-test", &[what]).expect("spawn");
    process::wait(pid) == Ok(ExitStatus::Exited(139))
}

/// The bad accesses, each in its own child.
fn child(what: &str) -> i32 {
    let page = mmap::mmap(PAGE_SIZE, Protection::READ_WRITE).expect("mmap");
    match what {
        "write-read-only" => {
            mmap::store(page, 1);
            mmap::mprotect(page, PAGE_SIZE, Protection::READ).expect("mprotect");
            mmap::store(page, 2);
        }
        "touch-none" => {
            let none = mmap::mmap(PAGE_SIZE, Protection::NONE).expect("mmap");
            mmap::load(none);
        }
        "after-munmap" => {
            mmap::store(page, 3);
            mmap::munmap(page, PAGE_SIZE).expect("munmap");
            mmap::load(page);
        }
        _ => return 2,
    }
    0 // not reached: the access above ends the process
}

fn main(arguments: &[&str]) -> i32 {
    if let Some(what) = arguments.get(1) {
        return child(what);
    }
    let mut ok = true;

    let pages = 8;
    let region = mmap::mmap(pages * PAGE_SIZE, Protection::READ_WRITE).expect("mmap");
    ok &= check(
        "mmap returns a page-aligned address in the mmap area",
        region.is_multiple_of(PAGE_SIZE) && (0x2000_0000_0000..0x3000_0000_0000).contains(&region),
    );
    ok &= check(
        "nothing is mapped before the first touch",
        user::translate(region).is_none(),
    );
    let zero = (0..pages).all(|page| mmap::load(region + page * PAGE_SIZE) == 0);
    ok &= check("pages are demand-zero", zero);
    for page in 0..pages {
        mmap::store(region + page * PAGE_SIZE + 8, 1000 + page);
    }
    let kept = (0..pages).all(|page| mmap::load(region + page * PAGE_SIZE + 8) == 1000 + page);
    ok &= check("written values read back", kept);

    mmap::munmap(region + 3 * PAGE_SIZE, PAGE_SIZE).expect("munmap one page");
    let others = (0..pages)
        .filter(|&page| page != 3)
        .all(|page| mmap::load(region + page * PAGE_SIZE + 8) == 1000 + page);
    ok &= check(
        "munmap of a page in the middle leaves the others",
        others && user::translate(region + 3 * PAGE_SIZE).is_none(),
    );
    mmap::munmap(region, pages * PAGE_SIZE).expect("munmap");

    // The first region also built page tables, which stay: measure a second.
    let (free_before, _) = user::frame_counts();
    let region = mmap::mmap(64 * PAGE_SIZE, Protection::READ_WRITE).expect("mmap");
    for page in 0..64 {
        mmap::store(region + page * PAGE_SIZE, page);
    }
    let (free_touched, _) = user::frame_counts();
    mmap::munmap(region, 64 * PAGE_SIZE).expect("munmap");
    let (free_after, _) = user::frame_counts();
    ok &= check(
        "touching 64 pages takes 64 frames",
        free_before - free_touched == 64,
    );
    ok &= check("munmap gives every frame back", free_after == free_before);

    let region = mmap::mmap(2 * PAGE_SIZE, Protection::READ_WRITE).expect("mmap");
    mmap::store(region, 7);
    mmap::mprotect(region, 2 * PAGE_SIZE, Protection::READ).expect("mprotect read-only");
    ok &= check(
        "a read-only page still reads",
        mmap::load(region) == 7 && mmap::load(region + PAGE_SIZE) == 0,
    );
    mmap::mprotect(region, 2 * PAGE_SIZE, Protection::READ_WRITE).expect("mprotect back");
    mmap::store(region, 8);
    mmap::store(region + PAGE_SIZE, 9);
    ok &= check(
        "writable again after mprotect back",
        mmap::load(region) == 8 && mmap::load(region + PAGE_SIZE) == 9,
    );

    ok &= check(
        "a write to a PROT_READ page kills the child with 139",
        dies_of("write-read-only"),
    );
    ok &= check(
        "touching a PROT_NONE page kills the child with 139",
        dies_of("touch-none"),
    );
    ok &= check(
        "touching an unmapped page kills the child with 139",
        dies_of("after-munmap"),
    );

    ok &= check(
        "mmap of 0 bytes: EINVAL",
        mmap::mmap(0, Protection::READ) == Err(Errno::EINVAL),
    );
    ok &= check(
        "munmap of a misaligned address: EINVAL",
        mmap::munmap(region + 1, PAGE_SIZE) == Err(Errno::EINVAL),
    );
    ok &= check(
        "munmap outside the mmap area: EINVAL",
        mmap::munmap(0x1000_0000_0000, PAGE_SIZE) == Err(Errno::EINVAL),
    );
    ok &= check(
        "mprotect of unmapped addresses: ENOMEM",
        mmap::mprotect(0x2fff_0000_0000, PAGE_SIZE, Protection::READ) == Err(Errno::ENOMEM),
    );
    ok &= check(
        "mmap larger than the area: EINVAL",
        mmap::mmap(1 << 46, Protection::READ) == Err(Errno::EINVAL),
    );

    if ok {
        check::all_passed("mmap-test");
        0
    } else {
        1
    }
}
