//! Sockets for this library OS's processes and threads: blocking calls on
//! `libos-net`'s stack, one stack per process.
//!
//! **Addresses.** The first process holds the network card. When it first
//! needs an address it takes QEMU's user-mode network's fixed 10.0.2.15/24
//! via 10.0.2.2, or, with the variable `NET_CONFIG=dhcp` set (the rc file
//! `cargo xtask run` boots with sets it), asks the network's DHCP server for
//! one (`libos_net::dhcp`); it claims the address, and prints it. Every process it starts gets a capability for the address,
//! the MAC and the route in its info page ([`NetInfo`]), and passes them
//! on. So programs share the address, and the kernel's filters give each
//! program only its own ports.
//!
//! **The stack** is made on first use: its rings at `layout::NET_RINGS`,
//! the data path from the variable `NET_PATH` (`rings`, the default, or
//! `syscalls` for one system call per frame); on the rings, `NET_FLUSH=entry`
//! leaves written frames for the kernel's next entry instead of kicking the
//! ring after each poll that wrote some (`libos_net::Flush`).
//!
//! **Blocking.** A call that cannot go on now (`WouldBlock`) parks the
//! calling thread on a wait queue. When every thread is blocked, the thread
//! library's idle path asks [`idle`] to sleep in the kernel until frames
//! arrive (the binding's notification) or the stack's next timer is due,
//! then polls the stack and wakes the waiting threads, which try again. A
//! process whose threads all wait on the network makes no system call until
//! a frame arrives or a TCP timer runs out.

use alloc::format;
use alloc::string::String;
use core::net::{Ipv4Addr, SocketAddrV4};

use exo_abi::counters::Counter;
use exo_abi::net::mac_from_u64;
use exo_abi::trace::Kind;
use exo_abi::{Handle, Rights, user};
use libos_net::{Config, Credentials, Flush, NetError, Path, PollEntry, SocketId, Stack};

use crate::facts::kernel_counter;
use crate::thread::{Leaving, Mutex, MutexGuard, NoPreemption, WaitQueue, switch_away};
use crate::{Errno, info_page, layout, println, variables};

pub use crate::info_page::NetInfo;
pub use libos_net::Readiness;

/// This process's network, once known (`None` inside: it has none).
static ADDRESS: spin::Mutex<Option<Option<NetInfo>>> = spin::Mutex::new(None);
/// The kernel's entry and system-call counts when the stack was made, for
/// [`report`].
static KERNEL_AT_START: spin::Once<(u64, u64)> = spin::Once::new();
/// The process's stack, made on first use.
static STACK: Mutex<Option<Stack>> = Mutex::new(None);
/// Threads waiting for the stack to make progress.
static WAITERS: WaitQueue = WaitQueue::new();

impl From<NetError> for Errno {
    fn from(error: NetError) -> Self {
        match error {
            NetError::WouldBlock => Errno::EAGAIN,
            NetError::InvalidSocket => Errno::EBADF,
            NetError::InvalidArgument => Errno::EINVAL,
            NetError::AddressInUse => Errno::EADDRINUSE,
            NetError::NotConnected => Errno::ENOTCONN,
            NetError::ConnectionReset => Errno::ECONNRESET,
            NetError::MessageTooLong => Errno::EMSGSIZE,
            NetError::TimedOut => Errno::ETIMEDOUT,
            NetError::Kernel(exo_abi::Error::NoDevice) => Errno::ENETDOWN,
            NetError::Kernel(error) => error.into(),
        }
    }
}

/// The DHCP client, once a program has linked it ([`enable_dhcp`]).
/// Reaching it through this pointer keeps smoltcp out of every program that
/// only starts children: `claim_address` runs at their first spawn.
static DHCP: spin::Once<DhcpClient> = spin::Once::new();
type DhcpClient = fn(Handle, [u8; 6], &Config, u64) -> Result<libos_net::dhcp::Lease, NetError>;

/// Links the DHCP client into this program, so that as the first process,
/// with `NET_CONFIG=dhcp`, it leases its address (the shell does this).
pub fn enable_dhcp() {
    DHCP.call_once(|| libos_net::dhcp::acquire);
}

/// How long the first process waits for a DHCP lease, in seconds.
const DHCP_SECONDS: u64 = 10;

/// This process's network: from its parent, or, in the first process,
/// claimed with the card's capability.
pub(crate) fn own_address() -> Option<NetInfo> {
    *ADDRESS
        .lock()
        .get_or_insert_with(|| match info_page::own() {
            Some(info) => info.net,
            None => claim_address(),
        })
}

/// In the first process: an address for the card, with `NET_CONFIG=dhcp`
/// leased from the network's DHCP server, otherwise the fixed one of QEMU's
/// user-mode network (10.0.2.15/24 via 10.0.2.2). Says which it got.
///
/// Static is the default because this runs whenever the first process
/// starts a child, network or not: a program that spawns (`primes`, the
/// tests) should not pay for a lease it never uses, nor carry the client
/// (see [`DHCP`]). An rc file that starts servers asks for DHCP, and the
/// shell links the client.
fn claim_address() -> Option<NetInfo> {
    let nic = user::start_info().nic()?;
    let mac = user::capability_identify(nic).ok()?.value;
    let mut config = process_config();
    let dhcp = variables::var("NET_CONFIG").as_deref() == Some("dhcp");
    let how = if !dhcp {
        String::from("static")
    } else if let Some(acquire) = DHCP.get() {
        let limit = DHCP_SECONDS * crate::thread::ticks_per_second();
        match acquire(nic, mac_from_u64(mac), &config, limit) {
            Ok(lease) => {
                config = lease.apply(config);
                format!("leased from {} (DHCP)", lease.server)
            }
            Err(error) => {
                println!("net: no address: DHCP: {error}");
                return None;
            }
        }
    } else {
        String::from(
            "static: NET_CONFIG=dhcp, but this program has no DHCP client (net::enable_dhcp)",
        )
    };
    let address = user::net_claim(nic, u32::from(config.address)).ok()?;
    let gateway = config
        .gateway
        .map_or(String::from("no gateway"), |gateway| {
            format!("via {gateway}")
        });
    println!(
        "net: {}/{} {gateway}, {how}",
        config.address, config.prefix_length
    );
    Some(NetInfo {
        address,
        mac,
        prefix_length: config.prefix_length,
        gateway: config.gateway,
    })
}

/// This process's network for `child`: its address capability granted to
/// the child (theirs goes with the child; no copy is kept here, as nothing
/// needs revoking it sooner).
pub(crate) fn address_for_child(child: Handle) -> Result<Option<NetInfo>, Errno> {
    let Some(own) = own_address() else {
        return Ok(None);
    };
    let theirs = user::capability_grant(own.address, child, Rights::BIND | Rights::GRANT)?;
    Ok(Some(NetInfo {
        address: theirs,
        ..own
    }))
}

/// After fork, in the child: the parent's stack and address capability are
/// the parent's; the child's own address arrives in its info page, and it
/// makes its own stack on first use.
pub(crate) fn after_fork_in_child() {
    *ADDRESS.lock() = None;
    if let Some(mut stack) = STACK.try_lock() {
        // Its handles name nothing here: forget it without dropping them.
        core::mem::forget(stack.take());
    }
}

/// Before `exec` replaces the program: drops the stack, giving back its
/// binding, its ports and its rings.
pub(crate) fn before_exec() {
    if let Some(mut stack) = STACK.try_lock() {
        drop(stack.take());
    }
}

/// How this process's stacks are set up, but for the address: rings at
/// `layout::NET_RINGS`, the data path `NET_PATH` asks for.
fn process_config() -> Config {
    let mut config = Config::qemu_user_network(layout::NET_RINGS);
    config.path = chosen_path();
    config.flush = chosen_flush();
    config
}

/// The data path `NET_PATH` asks for.
fn chosen_path() -> Path {
    match variables::var("NET_PATH").as_deref() {
        Some("syscalls") => Path::SystemCalls,
        _ => Path::Rings,
    }
}

/// When frames on the rings go out, as `NET_FLUSH` asks.
fn chosen_flush() -> Flush {
    match variables::var("NET_FLUSH").as_deref() {
        Some("entry") => Flush::NextEntry,
        _ => Flush::EachPoll,
    }
}

/// Locks the process's stack, making it first if need be.
fn stack() -> Result<MutexGuard<'static, Option<Stack>>, Errno> {
    let mut guard = STACK.lock();
    if guard.is_none() {
        let net = own_address().ok_or(Errno::ENETDOWN)?;
        let credentials = Credentials {
            address: net.address,
            mac: mac_from_u64(net.mac),
        };
        let mut config = process_config();
        config.address = Ipv4Addr::from(user::capability_identify(net.address)?.value as u32);
        config.prefix_length = net.prefix_length;
        config.gateway = net.gateway;
        *guard = Some(Stack::new(credentials, config)?);
        KERNEL_AT_START.call_once(kernel_entries);
        // The thread library's idle path into the stack. Reaching the stack
        // through this pointer keeps smoltcp out of the programs that never
        // use the network: nothing else they call refers to it.
        crate::thread::set_idle_path(idle_on_stack);
    }
    Ok(guard)
}

/// Runs `work` on the process's stack, without blocking, between two
/// polls: what has arrived is taken in first (if anything has, or time has
/// passed), and what `work` queued is sent after. For programs that drive
/// sockets from their own event loop ([`poll`] waits for them). Every
/// operation here and in `blocking` is followed by a poll, which is what
/// `Stack::poll_if_stale` relies on.
pub fn with_stack<T>(work: impl FnOnce(&mut Stack) -> T) -> Result<T, Errno> {
    let mut guard = stack()?;
    let stack = guard.as_mut().expect("made by stack()");
    stack.poll_if_stale();
    let result = work(stack);
    stack.poll();
    drop(guard);
    wake_waiters();
    Ok(result)
}

/// [`with_stack`] for one operation, its refusal as an `Errno`.
fn now<T>(operation: impl FnOnce(&mut Stack) -> Result<T, NetError>) -> Result<T, Errno> {
    Ok(with_stack(operation)??)
}

fn wake_waiters() {
    let off = NoPreemption::new();
    WAITERS.wake_all(&off);
}

/// Runs `operation` until it does not say `WouldBlock`, parking the thread
/// between tries (until `deadline`, a tick count, if given: then
/// `Ok(None)`).
fn blocking<T>(
    deadline: Option<u64>,
    mut operation: impl FnMut(&mut Stack) -> Result<T, NetError>,
) -> Result<Option<T>, Errno> {
    loop {
        let mut guard = stack()?;
        let stack = guard.as_mut().expect("made by stack()");
        stack.poll_if_stale();
        match operation(stack) {
            Err(NetError::WouldBlock) => {}
            result => {
                stack.poll();
                drop(guard);
                wake_waiters();
                return result.map(Some).map_err(Errno::from);
            }
        }
        let now = crate::facts::ticks();
        if deadline.is_some_and(|deadline| now >= deadline) {
            return Ok(None);
        }
        let off = NoPreemption::new();
        WAITERS.enqueue(&off);
        drop(guard);
        let leaving = deadline.map_or(Leaving::Blocked, Leaving::Sleeping);
        switch_away(&off, leaving);
    }
}

/// [`blocking`] without a deadline.
fn block<T>(operation: impl FnMut(&mut Stack) -> Result<T, NetError>) -> Result<T, Errno> {
    Ok(blocking(None, operation)?.expect("no deadline, so never timed out"))
}

/// The thread library's idle path, with preemption off and every thread
/// blocked or asleep: if threads wait on the network, sleeps in the kernel
/// until frames arrive, the stack's next timer, or `timeout` ticks (the
/// first sleeping thread's), then polls and wakes them. Returns whether it
/// waited (`false`: nobody waits on the network).
fn idle_on_stack(off: &NoPreemption, timeout: Option<u64>) -> bool {
    if WAITERS.is_empty(off) {
        return false;
    }
    let Some(mut guard) = STACK.try_lock() else {
        return false;
    };
    let Some(stack) = guard.as_mut() else {
        return false;
    };
    stack.wait(timeout);
    stack.poll();
    drop(guard);
    WAITERS.wake_all(off);
    true
}

/// A socket id and the process whose stack made it: a forked child holds
/// copies of its parent's sockets, which name nothing in its own stack.
#[derive(Debug)]
struct Owned {
    id: SocketId,
    owner: u64,
}

impl Owned {
    fn new(id: SocketId) -> Self {
        Self {
            id,
            owner: crate::facts::getpid(),
        }
    }

    /// The id, if this process's stack made it.
    fn id(&self) -> Result<SocketId, Errno> {
        if self.owner == crate::facts::getpid() {
            Ok(self.id)
        } else {
            Err(Errno::EBADF)
        }
    }
}

impl Drop for Owned {
    /// Closes the socket (a TCP connection still sends what is queued,
    /// then a FIN); a copy inherited through `fork` is left alone.
    fn drop(&mut self) {
        if let Ok(id) = self.id() {
            close(id);
        }
    }
}

/// A TCP listener.
#[derive(Debug)]
pub struct TcpListener {
    socket: Owned,
}

impl TcpListener {
    /// Listens on `port` with room for `backlog` connections not yet accepted.
    pub fn bind(port: u16, backlog: u32) -> Result<Self, Errno> {
        let id = now(|stack| stack.listen(port, backlog))?;
        Ok(Self {
            socket: Owned::new(id),
        })
    }

    /// Like [`bind`](Self::bind), each connection it accepts receiving into
    /// `receive_buffer` bytes (see `Stack::listen_receiving`): `EINVAL`
    /// outside `MIN_TCP_BUFFER..=MAX_TCP_BUFFER`.
    pub fn bind_receiving(port: u16, backlog: u32, receive_buffer: usize) -> Result<Self, Errno> {
        let id = now(|stack| stack.listen_receiving(port, backlog, receive_buffer))?;
        Ok(Self {
            socket: Owned::new(id),
        })
    }

    /// Waits for a connection.
    pub fn accept(&self) -> Result<(TcpStream, SocketAddrV4), Errno> {
        let listener = self.socket.id()?;
        let (id, peer) = block(|stack| stack.accept(listener))?;
        let stream = TcpStream {
            socket: Owned::new(id),
        };
        Ok((stream, peer))
    }

    /// Its id in the process's stack, for [`poll`] and the `Stack` calls.
    pub fn id(&self) -> SocketId {
        self.socket.id
    }
}

/// A TCP connection; dropping it closes it.
#[derive(Debug)]
pub struct TcpStream {
    socket: Owned,
}

impl TcpStream {
    /// Connects to `peer`, waiting until the connection is established
    /// (`ECONNRESET` if it is refused).
    pub fn connect(peer: SocketAddrV4) -> Result<Self, Errno> {
        let id = now(|stack| stack.connect(peer))?;
        let stream = Self {
            socket: Owned::new(id),
        };
        block(|stack| {
            let ready = stack.readiness(id)?;
            if ready.hangup {
                Err(NetError::ConnectionReset)
            } else if ready.writable {
                Ok(())
            } else {
                Err(NetError::WouldBlock)
            }
        })?;
        Ok(stream)
    }

    /// Reads what has arrived (at least one byte), waiting if nothing has;
    /// 0 at the end of input.
    pub fn read(&self, buffer: &mut [u8]) -> Result<usize, Errno> {
        let id = self.socket.id()?;
        block(|stack| stack.read(id, buffer)).inspect(|&read| traced(Kind::SocketReceive, id, read))
    }

    /// Writes some of `data`, waiting for room; returns how much.
    pub fn write(&self, data: &[u8]) -> Result<usize, Errno> {
        let id = self.socket.id()?;
        block(|stack| stack.write(id, data))
            .inspect(|&written| traced(Kind::SocketSend, id, written))
    }

    /// Writes all of `data`.
    pub fn write_all(&self, mut data: &[u8]) -> Result<(), Errno> {
        while !data.is_empty() {
            let written = self.write(data)?;
            data = &data[written..];
        }
        Ok(())
    }

    /// Sends no more (the peer reads the end of input); reading goes on.
    pub fn shutdown(&self) -> Result<(), Errno> {
        let id = self.socket.id()?;
        now(|stack| stack.shutdown(id))
    }

    pub fn peer(&self) -> Result<SocketAddrV4, Errno> {
        let id = self.socket.id()?;
        now(|stack| stack.peer(id))
    }

    pub fn id(&self) -> SocketId {
        self.socket.id
    }
}

/// A UDP socket; dropping it closes it.
#[derive(Debug)]
pub struct UdpSocket {
    socket: Owned,
}

impl UdpSocket {
    /// A socket on `port` (0: a free ephemeral port).
    pub fn bind(port: u16) -> Result<Self, Errno> {
        let id = now(|stack| stack.udp_bind(port))?;
        Ok(Self {
            socket: Owned::new(id),
        })
    }

    /// Sends one datagram, waiting for room in the queue.
    pub fn send_to(&self, data: &[u8], peer: SocketAddrV4) -> Result<(), Errno> {
        let id = self.socket.id()?;
        block(|stack| stack.send_to(id, data, peer))?;
        traced(Kind::SocketSend, id, data.len());
        Ok(())
    }

    /// Waits for a datagram: its length and sender.
    pub fn recv_from(&self, buffer: &mut [u8]) -> Result<(usize, SocketAddrV4), Errno> {
        let id = self.socket.id()?;
        block(|stack| stack.recv_from(id, buffer))
            .inspect(|&(length, _)| traced(Kind::SocketReceive, id, length))
    }

    pub fn local_port(&self) -> Result<u16, Errno> {
        let id = self.socket.id()?;
        now(|stack| stack.udp_port(id))
    }

    pub fn id(&self) -> SocketId {
        self.socket.id
    }
}

/// Puts socket activity on the kernel's trace timeline (when it records the
/// library class).
fn traced(kind: Kind, socket: SocketId, bytes: usize) {
    user::trace(kind, [u64::from(socket.0), bytes as u64]);
}

/// Closes a socket by id (the socket types close themselves when dropped).
pub fn close(id: SocketId) {
    let _ = with_stack(|stack| stack.close(id));
}

/// Waits until at least one of `entries` is ready (filling in each one's
/// `ready`), or `timeout` ticks have passed (`None`: no limit); returns how
/// many are ready (0 on timeout), as POSIX `poll` does.
pub fn poll(entries: &mut [PollEntry], timeout: Option<u64>) -> Result<usize, Errno> {
    let deadline = timeout.map(|ticks| crate::facts::ticks().saturating_add(ticks));
    let ready = blocking(deadline, |stack| match stack.poll_sockets(entries) {
        0 => Err(NetError::WouldBlock),
        ready => Ok(ready),
    })?;
    Ok(ready.unwrap_or(0))
}

/// How long [`finish`] is asked to wait, in ticks, by the programs that call
/// it before they exit: it returns as soon as everything is acknowledged, so
/// a long wait costs nothing unless the peer is gone. Half a second was once
/// too short on a loaded host under emulation: `tcp-echo` exited with the
/// last 14 KB of a 100 MiB echo unacknowledged, and they were lost.
pub const FINISH_TICKS: u64 = 10_000;

/// Waits until every byte written to TCP connections, closed ones
/// included, and the end of every closed one has been acknowledged, or
/// `timeout` ticks have passed; whether it all was. A program calls it before it exits, because exiting drops
/// the stack with whatever it still holds.
pub fn finish(timeout: u64) -> bool {
    let deadline = crate::facts::ticks().saturating_add(timeout);
    let done = blocking(Some(deadline), |stack| match stack.unsent() {
        0 => Ok(()),
        _ => Err(NetError::WouldBlock),
    });
    matches!(done, Ok(Some(())))
}

/// The start every TCP server of the event-loop kind shares (`tcp-echo`,
/// `tcp-discard`): `-p PORT` (else `default_port`) and `-n CONNECTIONS`
/// from `arguments`, a listener with `backlog` whose connections receive
/// into `receive_buffer` bytes (`None`: the stack's default), and the line
/// saying `program` listens. On a bad argument, or a port it cannot have,
/// it says why and gives the exit status to end with (2 and 1).
pub fn tcp_server(
    program: &str,
    arguments: &[&str],
    default_port: u16,
    backlog: u32,
    receive_buffer: Option<usize>,
) -> Result<(TcpListener, Option<u64>), i32> {
    let (port, limit) =
        crate::args::port_and_count(arguments, default_port).map_err(|message| {
            println!("{program}: {message}; usage: {program} [-p PORT] [-n CONNECTIONS]");
            2
        })?;
    let bound = match receive_buffer {
        Some(bytes) => TcpListener::bind_receiving(port, backlog, bytes),
        None => TcpListener::bind(port, backlog),
    };
    let listener = bound.map_err(|error| {
        println!("{program}: cannot listen on tcp port {port}: {error:?}");
        1
    })?;
    println!("{program}: listening on tcp port {port}");
    Ok((listener, limit))
}

/// A line describing the stack for a program's report: the statistics,
/// the data path, and how often the kernel was entered since the stack was
/// made (by every program: the machine-wide counters), from which
/// `cargo xtask bench` takes kernel entries per packet.
pub fn report() -> String {
    let stack = match STACK.try_lock() {
        Some(guard) => match guard.as_ref() {
            Some(stack) => match stack.path() {
                Path::Rings => alloc::format!(
                    "{} (path: rings, {})",
                    stack.statistics(),
                    stack.flush_policy()
                ),
                Path::SystemCalls => {
                    alloc::format!("{} (path: {})", stack.statistics(), stack.path())
                }
            },
            None => return String::from("no stack"),
        },
        None => return String::from("busy"),
    };
    let (entries, calls) = kernel_entries();
    let (entries_then, calls_then) = *KERNEL_AT_START.get().unwrap_or(&(entries, calls));
    alloc::format!(
        "{stack}; since it started, the kernel was entered {} times, {} of them system calls \
         (all programs)",
        entries - entries_then,
        calls - calls_then
    )
}

/// Entries into the kernel so far (interrupts, exceptions, system calls),
/// and system calls, machine-wide.
fn kernel_entries() -> (u64, u64) {
    let entries = Counter::KERNEL_ENTRIES
        .iter()
        .map(|&counter| kernel_counter(counter))
        .sum();
    (entries, kernel_counter(Counter::SystemCalls))
}
