//! `exec`: this process becomes another program, in the same environment.
//!
//! The environment — its id (the process id), its capabilities, its exit
//! status page, descriptors 0–2 — stays; the program image, stacks, heap and
//! mappings go. The old program cannot unmap the code it runs from, so the
//! work is split:
//! 1. the new image is loaded into fresh frames (filled through the scratch
//!    page, as `spawn` does), with a stack and a new process-info page;
//! 2. a plan is written outside the image (`layout::EXEC_PLAN`): every page
//!    mapped now, found by walking this process's own page-table view, and
//!    every page of the new image;
//! 3. a few instructions (`raw.rs`, position-independent, no stack) are
//!    copied to `layout::EXEC_TRAMPOLINE`; they remove the upcall
//!    registration (its handler is about to go), unmap the old pages, map
//!    the new ones and jump to the new program's entry, which registers its
//!    own.
//!
//! After step 3 begins nothing of the old program is used: no heap, no
//! stack, no printing. Limits: the frames the old program held (its image,
//! its heap) stay charged to the process until it ends — the library OS
//! does not know them all by handle, and the kernel frees a frame only when
//! its capability goes — and the plan and trampoline stay mapped until the
//! next `exec` (at addresses no program uses).

use alloc::vec::Vec;

use exo_abi::layout::{BOOTFS, PAGE_SIZE};
use exo_abi::mapping::MapFlags;
use exo_abi::{Handle, user};

use crate::layout::{
    EXEC_PLAN, EXEC_PLAN_PAGES, EXEC_TRAMPOLINE, EXIT_STATUS, PROCESS_INFO, STACK_INITIAL_PAGES,
    STACK_TOP,
};
use crate::{Errno, bootfs, inherit, page_table_view, process, raw, scratch};

/// Words before the lists in the plan.
const PLAN_HEADER: u64 = raw::EXEC_PLAN_HEADER_WORDS;
/// Entries of headroom in the plan for pages mapped between counting and
/// listing (the plan itself, the trampoline, a heap page the lists need).
const SLACK: u64 = 256;

/// Replaces this process's program with `program` of the boot file system,
/// run with `arguments`. Returns only if that cannot be done, having changed
/// nothing the program can see; the new image's frames go back, a few plan
/// pages stay charged.
///
/// Call it from the process's only thread: other threads vanish with the
/// old image, and one that runs during `exec` may spoil the plan.
pub fn exec(program: &str, arguments: &[&str]) -> Errno {
    // The new image: (frame, address, flags) for each page.
    let mut maps: Vec<[u64; 3]> = Vec::new();
    match prepare(program, arguments, &mut maps) {
        Ok(()) => {
            inherit::before_exec_jump();
            raw::enter_exec_trampoline()
        }
        Err(error) => {
            for [frame, ..] in maps {
                raw::drop_unmapped_frame(Handle::from_raw(frame));
            }
            error
        }
    }
}

/// Steps 1 and 2, and the trampoline's copy: everything short of jumping.
/// The new image's pages are listed in `maps` as they are loaded.
fn prepare(program: &str, arguments: &[&str], maps: &mut Vec<[u64; 3]>) -> Result<(), Errno> {
    let (image, elf) = process::load_program(program)?;
    let mut info = process::new_info_page(program, arguments)?;
    inherit::for_exec(&mut info);
    raw::unmap_exec_leftovers()?;

    process::for_each_image_page(&elf, image, |address, contents, flags| {
        maps.push([
            scratch::filled_frame(contents)?.to_raw(),
            address,
            flags.bits(),
        ]);
        Ok(())
    })?;
    for page in 1..=STACK_INITIAL_PAGES {
        let frame = scratch::filled_frame(&[])?;
        maps.push([
            frame.to_raw(),
            STACK_TOP - page * PAGE_SIZE,
            MapFlags::WRITE.bits(),
        ]);
    }
    maps.push([
        scratch::filled_frame(info.bytes())?.to_raw(),
        PROCESS_INFO,
        0,
    ]);

    // Room for the plan, counted before the lists are built so that building
    // them allocates nothing.
    let (bootfs_size, _) = bootfs::runs();
    let counted = for_each_present_page(bootfs_size, |_| {});
    let words = PLAN_HEADER + counted + SLACK + 3 * maps.len() as u64;
    let plan_pages = words.div_ceil(PAGE_SIZE / 8);
    if plan_pages > EXEC_PLAN_PAGES {
        return Err(Errno::E2BIG);
    }
    for page in 0..plan_pages {
        crate::paging::map_zeroed(EXEC_PLAN + page * PAGE_SIZE)?;
    }
    let code = raw::exec_trampoline_code();
    let trampoline = scratch::filled_frame(code)?;
    user::map(
        trampoline,
        Handle::SELF_ENVIRONMENT,
        EXEC_TRAMPOLINE,
        MapFlags::EXECUTE,
    )?;

    // Nothing can fail from here on but the headroom check.
    inherit::before_exec_plan();

    // The plan. Listing it allocates nothing; pages the lines above mapped
    // (a heap or stack page) fit in the headroom.
    let unmap_limit = counted + SLACK;
    let mut unmaps = 0;
    for_each_present_page(bootfs_size, |page| {
        if unmaps < unmap_limit {
            raw::write_plan_word(PLAN_HEADER + unmaps, page);
            unmaps += 1;
        }
    });
    if unmaps == unmap_limit {
        // Over a megabyte mapped since counting: too risky to go on. (The
        // one failure after descriptors above 2 are closed.)
        return Err(Errno::E2BIG);
    }
    for (index, map) in maps.iter().enumerate() {
        for (part, &word) in map.iter().enumerate() {
            raw::write_plan_word(PLAN_HEADER + unmaps + 3 * index as u64 + part as u64, word);
        }
    }
    raw::write_plan_word(0, unmaps);
    raw::write_plan_word(1, maps.len() as u64);
    raw::write_plan_word(2, elf.ehdr.e_entry);
    raw::write_plan_word(3, STACK_TOP);
    Ok(())
}

/// Calls `found` with every page of the old program the plan must unmap:
/// every mapped page below `USER_MAP_END` but the exit-status page, the boot
/// file system (`bootfs_size` bytes), the plan and the trampoline. Returns
/// how many. It allocates nothing.
fn for_each_present_page(bootfs_size: u64, mut found: impl FnMut(u64)) -> u64 {
    let keep = |page: u64| {
        page == EXIT_STATUS
            || (BOOTFS..BOOTFS + bootfs_size.next_multiple_of(PAGE_SIZE)).contains(&page)
            || (EXEC_PLAN..EXEC_PLAN + EXEC_PLAN_PAGES * PAGE_SIZE).contains(&page)
            || page == EXEC_TRAMPOLINE
    };
    let mut count = 0;
    page_table_view::for_each_mapped_page(|page| {
        if !keep(page) {
            found(page);
            count += 1;
        }
    });
    count
}
