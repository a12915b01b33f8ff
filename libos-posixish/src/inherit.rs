//! Inheritance: every hook a subsystem runs when a process starts a child
//! (spawn, fork), when a forked child first runs, and when a process execs,
//! listed in one place.
//!
//! | moment | hooks, in order |
//! |---|---|
//! | a child is built ([`for_child`]) | boot file system runs (`bootfs`), file server endpoint (`fs`), a capability for the parent (to see it; the file server's also to give it capabilities), network address (`net`, but for the file server), descriptors 0–2 or, for a fork, one more holder of every open descriptor (`fs`) |
//! | a child is given up before it starts (`Child::abandon`, `child.rs`) | the descriptor holders counted for it (`fs`) |
//! | before `fork` copies memory ([`before_fork`]) | the descriptor table is built (`fs`) |
//! | a forked child's first moment ([`after_fork_in_child`]) | the parent's children (`process`, which `fork` asks first), image cache (`image_cache`), other threads (`thread`), file server handles (`fs`), network stack (`net`) are forgotten |
//! | `exec` writes its info page ([`for_exec`]) | parent, boot file system, file server, capability for the parent, network, descriptors 0–2 stay |
//! | `exec` can no longer fail ([`before_exec_plan`]) | descriptors above 2 close (`fs`) |
//! | `exec` jumps ([`before_exec_jump`]) | the network stack goes, with its binding and ports (`net`) |
//!
//! Lifecycle layer, with `process`, `fork` and `exec`, which call these
//! hooks and nothing else of the subsystems' inheritance. It decides what a
//! child inherits; how a process is built or replaced is theirs.

use alloc::vec::Vec;

use exo_abi::layout::BOOTFS;
use exo_abi::{Handle, Rights, user};

use crate::child::Child;
use crate::info_page::{self, InfoPage};
use crate::{Errno, bootfs, fs, image_cache, net, thread};

/// What a child is, for what it inherits beyond its descriptors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// A program: it shares this process's network address (its own ports,
    /// through the kernel's filters), and its capability for this process
    /// lets it see this process and its family (`ps`), nothing more.
    Program,
    /// The file server: it gets no address (the shell starts it first, so
    /// that `/etc/rc` can still say how), and its capability for this
    /// process also lets it give this process capabilities, to hand it its
    /// endpoint. Given to every child, that let any child fill its parent's
    /// capability table, paid for by the parent.
    FileServer,
}

/// What a child's descriptors 0–2 are.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Descriptors {
    /// A spawned child: `stdio[i]` (a descriptor of this process) or this
    /// process's own `i`.
    Chosen([Option<usize>; 3]),
    /// A forked child: its copy of this process's whole table.
    Copied,
}

/// Gives the child what it needs beyond memory, recorded in its info page:
/// capabilities for the boot file system's runs, the file server's endpoint
/// (if this process has one), a capability for its parent, the network
/// address (what the child may do with its parent and whether it gets the
/// address are its `role`'s) and its descriptors.
pub(crate) fn for_child(
    child: &mut Child,
    info: &mut InfoPage,
    descriptors: Descriptors,
    role: Role,
) -> Result<(), Errno> {
    share_bootfs(child, info)?;
    let endpoint = match fs::endpoint_for_child(child.environment)? {
        Some((ours, theirs)) => {
            child.frames.push(ours);
            Some(theirs)
        }
        None => None,
    };
    info.set_fs_endpoint(endpoint);
    // GRANT to pass it on, INSPECT so that it sees its family: this process
    // and everything below it (`ps`); GIVE for what the file server hands us.
    let rights = match role {
        Role::Program => Rights::INSPECT,
        Role::FileServer => Rights::INSPECT | Rights::GIVE,
    };
    let parent = user::capability_derive(Handle::SELF_ENVIRONMENT, rights | Rights::GRANT)?;
    child.frames.push(parent);
    let theirs = user::capability_grant(parent, child.environment, rights)?;
    info.set_parent_environment(Some(theirs));
    let address = match role {
        Role::Program => net::address_for_child(child.environment)?,
        Role::FileServer => None,
    };
    info.set_net(address);
    match descriptors {
        Descriptors::Copied => fs::count_holders_for_fork(&mut child.handed_on),
        Descriptors::Chosen(stdio) => {
            let stdio = fs::stdio_for_child(stdio, &mut child.handed_on)?;
            info.set_stdio(&stdio);
            Ok(())
        }
    }
}

/// Grants the child read-only capabilities for the boot file system's runs,
/// recorded in its info page. Nothing is mapped: the child maps a run when
/// it first touches it (`bootfs`), so a child that never reads the boot
/// file system costs the kernel no mapping record for it.
fn share_bootfs(child: &mut Child, info: &mut InfoPage) -> Result<(), Errno> {
    let (_, runs) = bootfs::runs();
    let read_only = Rights::READ | Rights::MAP | Rights::GRANT;
    let mut theirs = Vec::with_capacity(runs.len());
    for run in &runs {
        let ours = Handle::from_raw(run.frame);
        let copy = user::capability_derive(ours, read_only)?;
        child.frames.push(copy);
        let granted = user::capability_grant(copy, child.environment, read_only)?;
        theirs.push((run.address, granted.to_raw()));
    }
    debug_assert!(runs.iter().all(|run| run.address >= BOOTFS));
    info.set_bootfs_runs(&theirs);
    Ok(())
}

/// Before `fork` copies memory: the descriptor table must exist, since the
/// child finds its descriptors in its copy of it.
pub(crate) fn before_fork() {
    fs::prepare_for_fork();
}

/// In a forked child, first thing (after `process` forgets the parent's
/// children): what came with the copy of the parent's memory but is the
/// parent's. As POSIX says, only the thread that forked exists in it.
pub(crate) fn after_fork_in_child() {
    image_cache::forget_inherited();
    thread::after_fork_in_child();
    fs::after_fork_in_child();
    net::after_fork_in_child();
}

/// The info page for this same process after it execs (`info` holds the new
/// arguments and environment): its parent, boot file system, file server,
/// capability for the parent, network and descriptors 0–2 stay.
pub(crate) fn for_exec(info: &mut InfoPage) {
    let own = info_page::own();
    info.set_parent(own.as_ref().map_or(0, |own| own.parent));
    let (_, runs) = bootfs::runs();
    let runs: Vec<(u64, u64)> = runs.iter().map(|run| (run.address, run.frame)).collect();
    info.set_bootfs_runs(&runs);
    info.set_fs_endpoint(fs::current_endpoint());
    info.set_parent_environment(own.and_then(|own| own.parent_environment));
    info.set_net(net::own_address());
    info.set_stdio(&fs::own_stdio());
}

/// `exec` can no longer fail (but for its headroom check): descriptors above
/// 2 close; the new program gets only 0–2.
pub(crate) fn before_exec_plan() {
    fs::close_above_stdio();
}

/// `exec` is about to jump: the new program makes its own network stack; the
/// old one's binding and ports go now, or they would stay held by nobody.
pub(crate) fn before_exec_jump() {
    net::before_exec();
}
