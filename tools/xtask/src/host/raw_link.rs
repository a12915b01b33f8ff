//! The two things the tap scenario needs from Linux that the standard library does not
//! offer: entering a network namespace from one thread (`setns`), and a raw `AF_PACKET`
//! socket that puts whole Ethernet frames, headers and all, on one interface.
//!
//! This is xtask's one module with `unsafe` code: each block is a single libc call whose
//! arguments are checked right above it. It sends only; it never receives a frame, and it
//! never changes the namespace of a thread other than the caller's.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Where `ip netns add` keeps a namespace open by name.
const NAMESPACE_DIRECTORY: &str = "/var/run/netns";

/// Moves the calling thread (only it) into the network namespace `name` made by
/// `ip netns add`: the sockets it opens afterwards live there. Other threads, the process's
/// children included, keep theirs.
pub fn enter_namespace(name: &str) -> Result<(), String> {
    let path = format!("{NAMESPACE_DIRECTORY}/{name}");
    let namespace = File::open(&path).map_err(|error| format!("opening {path}: {error}"))?;
    // SAFETY: `namespace` is an open file descriptor for the call's duration; `setns` with
    // CLONE_NEWNET changes only this thread's network namespace and touches no memory of
    // ours.
    let result = unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
    if result != 0 {
        let error = io::Error::last_os_error();
        return Err(format!("entering network namespace {name}: {error}"));
    }
    Ok(())
}

/// A raw packet socket bound to one interface, for sending: each [`send`](Self::send) is
/// one frame on the wire exactly as given (the kernel adds nothing, not even padding
/// beyond a short frame's missing header bytes).
#[derive(Debug)]
pub struct RawSocket {
    socket: OwnedFd,
    interface: String,
}

impl RawSocket {
    /// A socket on `interface`, in the calling thread's network namespace. Protocol 0:
    /// it receives nothing, so no frame queues up unread.
    pub fn open(interface: &str) -> Result<Self, String> {
        let context = |what: &str, error: io::Error| format!("{what} on {interface}: {error}");
        let name = CString::new(interface)
            .map_err(|_| format!("interface name {interface:?} holds a NUL byte"))?;
        // SAFETY: `name` is a NUL-terminated string that outlives the call, which only
        // reads it.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if index == 0 {
            return Err(context("finding the interface", io::Error::last_os_error()));
        }
        // SAFETY: `socket` takes no pointers; it returns a new descriptor or -1.
        let descriptor =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if descriptor < 0 {
            return Err(context(
                "opening a raw packet socket",
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: `descriptor` was just returned by `socket`, is open, and nothing else
        // owns it: the `OwnedFd` closes it once.
        let socket = unsafe { OwnedFd::from_raw_fd(descriptor) };
        // SAFETY: `sockaddr_ll` is plain integers and byte arrays: all zeroes is a valid
        // value.
        let mut address: libc::sockaddr_ll = unsafe { mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_ifindex = index as i32;
        // SAFETY: `address` is a `sockaddr_ll` that lives across the call, and the length
        // passed is its size: `bind` reads exactly that many bytes.
        let result = unsafe {
            libc::bind(
                socket.as_raw_fd(),
                (&raw const address).cast::<libc::sockaddr>(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if result != 0 {
            return Err(context("binding a raw socket", io::Error::last_os_error()));
        }
        Ok(RawSocket {
            socket,
            interface: interface.to_string(),
        })
    }

    /// Puts `frame` on the interface as one Ethernet frame.
    pub fn send(&self, frame: &[u8]) -> Result<(), String> {
        // SAFETY: `frame` is a live slice for the call's duration and its length is passed
        // with it: `send` reads only those bytes.
        let sent = unsafe {
            libc::send(
                self.socket.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
            )
        };
        if sent < 0 {
            let error = io::Error::last_os_error();
            return Err(format!(
                "sending a {}-byte frame on {}: {error}",
                frame.len(),
                self.interface
            ));
        }
        if sent as usize != frame.len() {
            return Err(format!(
                "sending a {}-byte frame on {}: only {sent} bytes went",
                frame.len(),
                self.interface
            ));
        }
        Ok(())
    }
}
