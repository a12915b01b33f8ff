//! A [`Stack`]: smoltcp's interface and sockets over one [`Link`], with the
//! kernel packet filters its sockets need.
//!
//! The kernel delivers only frames that match a filter the stack attached
//! to its binding, so the stack attaches one for each local port in use —
//! a listener's, a bound UDP socket's, an outgoing connection's — and drops
//! it when the last socket on that port is gone. Ports are the kernel's to
//! share out: a port another program holds is refused (`AddressInUse`),
//! and an outgoing connection picks an ephemeral port nobody holds.
//!
//! Several programs may share one IPv4 address, each with its own stack.
//! Only one binding may hold the address's ARP filter and one its ICMP
//! filter; a stack takes each if it is free, and otherwise tries again from
//! time to time, so that when the holder ends another stack answers ARP
//! requests and pings in its place. An ARP reply reaches the stacks on the
//! address that asked about its sender (the kernel's rule), so each keeps
//! its own neighbour cache.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use exo_abi::net::{Filter, Protocol};
use exo_abi::syscall::Event;
use exo_abi::{Error, Handle, user};
use smoltcp::iface::{Config as InterfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr};

use crate::NetError;
use crate::capabilities::drop_capability;
use crate::entries::{Entry, Pending, new_tcp_socket};
use crate::link::{Flush, Link, Path, Statistics};

/// How a stack is set up.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The address; its capability must name the same one.
    pub address: Ipv4Addr,
    pub prefix_length: u8,
    /// Where frames for other networks go.
    pub gateway: Option<Ipv4Addr>,
    pub path: Path,
    /// On the rings, when written frames go out (`Flush::EachPoll` by default).
    pub flush: Flush,
    /// The binding's run of frames is `2^ring_order` pages (2 to 8): one
    /// control page, then the receive and transmit slots, half each.
    pub ring_order: u32,
    /// Where the rings are mapped: `2^ring_order` pages nothing else uses.
    pub ring_base: u64,
    /// The notification bit the kernel sets when frames arrive.
    pub notify_bit: u64,
    /// Each TCP socket's receive and transmit buffer, in bytes.
    pub tcp_buffer: usize,
    /// Datagrams each UDP socket queues each way, and their total bytes
    /// (a datagram larger than `udp_bytes` can be neither sent nor received).
    pub udp_packets: usize,
    pub udp_bytes: usize,
    /// How often a stack without the address's ARP or ICMP filter tries to
    /// take it, in ticks; `None`: never after the first try (another stack
    /// on the address answers for it, and waking to ask costs that one's
    /// neighbours nothing, but this one a wake-up each time).
    pub service_retry_ticks: Option<u64>,
}

impl Config {
    /// QEMU's user-mode network (slirp): 10.0.2.15/24, gateway 10.0.2.2.
    pub fn qemu_user_network(ring_base: u64) -> Self {
        Self {
            address: Ipv4Addr::new(10, 0, 2, 15),
            prefix_length: 24,
            gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
            path: Path::Rings,
            flush: Flush::EachPoll,
            ring_order: 7,
            ring_base,
            notify_bit: 1 << 16,
            tcp_buffer: 32 * 1024,
            udp_packets: 64,
            udp_bytes: 64 * 1024,
            service_retry_ticks: Some(SERVICE_RETRY_TICKS),
        }
    }
}

/// The capabilities a stack starts from: an IPv4 address the environment
/// may bind to (`Rights::BIND`), and the card's MAC, which the kernel
/// checks as the source of every frame.
#[derive(Clone, Copy, Debug)]
pub struct Credentials {
    pub address: Handle,
    pub mac: [u8; 6],
}

/// A kernel filter for one local port, and how many sockets use it.
#[derive(Debug)]
struct PortFilter {
    filter: Handle,
    users: u32,
}

/// Idle listening sockets each listener keeps, below its backlog: enough
/// for a burst of connection requests within one poll; more are added when
/// requests hold back (`link::Gate`).
const IDLE_LISTENERS: u32 = 4;
/// Ephemeral ports for outgoing connections and unbound UDP sockets (RFC 6335).
const EPHEMERAL: core::ops::RangeInclusive<u16> = 49152..=65535;
/// How often a stack without the ARP or ICMP filter tries to take it, in
/// ticks, unless its `Config` says otherwise.
const SERVICE_RETRY_TICKS: u64 = 100;

/// One program's TCP/IP stack.
pub struct Stack {
    pub(crate) interface: Interface,
    pub(crate) sockets: SocketSet<'static>,
    pub(crate) link: Link,
    pub(crate) config: Config,
    credentials: Credentials,
    binding: Handle,
    notification: Handle,
    ports: BTreeMap<(Protocol, u16), PortFilter>,
    pub(crate) entries: BTreeMap<u32, Entry>,
    next_entry: u32,
    /// TCP sockets the program closed, kept until smoltcp has finished with
    /// them, with their local port.
    pub(crate) closing: Vec<(SocketHandle, u16)>,
    next_ephemeral: u16,
    arp: Option<Handle>,
    icmp: Option<Handle>,
    service_tried_at: u64,
    /// The tick of the last poll, for [`Stack::poll_if_stale`].
    polled_at: Option<u64>,
}

impl core::fmt::Debug for Stack {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("Stack")
            .field("address", &self.config.address)
            .field("link", &self.link)
            .field("sockets", &self.entries.len())
            .finish()
    }
}

/// smoltcp's clock: microseconds from the time-stamp counter.
pub(crate) fn now() -> Instant {
    Instant::from_micros(user::micros() as i64)
}

impl Stack {
    /// Binds a run of frames to `credentials.address` and starts a stack on
    /// it. `AddressInUse` for ARP or ICMP is not an error: another stack on
    /// the address holds them.
    pub fn new(credentials: Credentials, config: Config) -> Result<Self, NetError> {
        let claimed = user::capability_identify(credentials.address)?.value;
        if claimed != u64::from(u32::from(config.address)) {
            return Err(NetError::Kernel(Error::InvalidArgument));
        }
        let notification = user::notification_create(config.notify_bit)?;
        let (mut link, binding) = Link::open(
            config.path,
            config.ring_order,
            config.ring_base,
            notification,
        )?;
        let mac = EthernetAddress(credentials.mac);
        let mut interface_config = InterfaceConfig::new(HardwareAddress::Ethernet(mac));
        interface_config.random_seed = user::tsc();
        let mut interface = Interface::new(interface_config, &mut link, now());
        interface.update_ip_addrs(|addresses| {
            let cidr = IpCidr::new(config.address.into(), config.prefix_length);
            addresses.push(cidr).expect("room for one address");
        });
        if let Some(gateway) = config.gateway {
            interface
                .routes_mut()
                .add_default_ipv4_route(gateway)
                .expect("room for one route");
        }
        let mut stack = Self {
            interface,
            sockets: SocketSet::new(vec![]),
            link,
            config,
            credentials,
            binding,
            notification,
            ports: BTreeMap::new(),
            entries: BTreeMap::new(),
            next_entry: 0,
            closing: Vec::new(),
            next_ephemeral: *EPHEMERAL.start() + (user::tsc() % 1024) as u16,
            arp: None,
            icmp: None,
            service_tried_at: 0,
            polled_at: None,
        };
        stack.take_services();
        Ok(stack)
    }

    pub fn address(&self) -> Ipv4Addr {
        self.config.address
    }

    pub fn path(&self) -> Path {
        self.link.path()
    }

    /// When frames written into the rings go out.
    pub fn flush_policy(&self) -> Flush {
        self.config.flush
    }

    /// The link's counters: frames each way, refused ones by reason,
    /// system calls made.
    pub fn statistics(&self) -> Statistics {
        self.link.statistics()
    }

    /// The kernel's counters for this stack's binding (rings path only).
    pub fn kernel_counters(&self) -> Option<exo_abi::net::Counters> {
        self.link.kernel_counters()
    }

    /// Whether this stack answers ARP requests and pings for the address.
    pub fn serves_arp_and_icmp(&self) -> (bool, bool) {
        (self.arp.is_some(), self.icmp.is_some())
    }

    /// Takes the address's ARP and ICMP filters if they are free.
    fn take_services(&mut self) {
        self.service_tried_at = user::fact(|facts| &facts.ticks);
        for (protocol, held) in [
            (Protocol::Arp, &mut self.arp),
            (Protocol::Icmp, &mut self.icmp),
        ] {
            if held.is_none() {
                let filter = Filter { protocol, port: 0 };
                *held = user::net_filter(self.binding, self.credentials.address, filter).ok();
            }
        }
    }

    /// Processes what has arrived and sends what is due: runs smoltcp,
    /// keeps listeners supplied with idle sockets, retires closed sockets.
    /// Call it after a wake-up and after socket operations.
    pub fn poll(&mut self) {
        self.polled_at = Some(user::fact(|facts| &facts.ticks));
        // Each round either lets a held-back connection request through to
        // a new idle socket or closes its gate, so a few rounds suffice.
        for _ in 0..16 {
            self.interface
                .poll(now(), &mut self.link, &mut self.sockets);
            self.tend_sockets();
            if !self.link.gate.take_held_back() {
                break;
            }
        }
        // Frames still to process will be polled at once, and may add to
        // what goes out: the flush waits for the last of them.
        if self.config.flush == Flush::EachPoll && !self.link.frames_waiting() {
            self.link.flush();
        }
        let retry = self.service_retry();
        if retry
            .is_some_and(|ticks| user::fact(|facts| &facts.ticks) >= self.service_tried_at + ticks)
        {
            self.take_services();
        }
    }

    /// Polls, unless nothing can have changed since the last poll: no frame
    /// waits in the receive ring and the tick is the same (smoltcp's timers,
    /// like the kernel's, need no finer time than a tick). For a program
    /// that polls after every operation that succeeds, as
    /// `libos_posixish::net` does, so that what an operation queued is
    /// already on its way: then a poll before the next operation has work
    /// only if frames arrived or time passed. A UDP echo server made six
    /// polls a datagram, four of them with nothing to do.
    pub fn poll_if_stale(&mut self) {
        let now = user::fact(|facts| &facts.ticks);
        if self.link.frames_waiting() || self.polled_at != Some(now) {
            self.poll();
        }
    }

    /// How long the stack may sleep, in ticks: `Some(0)` if it must poll
    /// again now, `None` if only arriving frames can give it work.
    pub fn sleep_ticks(&mut self) -> Option<u64> {
        if self.link.frames_waiting() {
            return Some(0);
        }
        let timer = timer_ticks(&mut self.interface, &self.sockets);
        // A stack without the ARP or ICMP filter wakes to try for them.
        earliest(timer, self.service_retry())
    }

    /// In how many ticks after its last try this stack tries again for the
    /// address's ARP and ICMP filters; `None` if it holds both or never retries.
    fn service_retry(&self) -> Option<u64> {
        let missing = self.arp.is_none() || self.icmp.is_none();
        self.config.service_retry_ticks.filter(|_| missing)
    }

    /// Sleeps in the kernel until frames arrive, smoltcp's next timer is
    /// due, or `limit` ticks have passed (whichever is first); returns at
    /// once if there is work now. For a program that drives the stack from
    /// its own event loop: `loop { stack.poll(); ...; stack.wait(None) }`.
    pub fn wait(&mut self, limit: Option<u64>) {
        match earliest(self.sleep_ticks(), limit) {
            Some(0) => {
                // Work now; if it is stuck behind a full transmit ring, let
                // the kernel drain the ring (it does when we leave the CPU).
                if self.link.transmit_blocked() {
                    user::yield_now();
                }
            }
            Some(ticks) => {
                let _ = user::wait(Event::NOTIFY | Event::TIMER, ticks);
            }
            None => {
                let _ = user::wait(Event::NOTIFY, 0);
            }
        }
    }

    /// Moves listeners' new connections to their accept queues, gives each
    /// listener its idle sockets, and retires closed sockets.
    pub(crate) fn tend_sockets(&mut self) {
        let Self {
            sockets,
            entries,
            link,
            config,
            ..
        } = self;
        for entry in entries.values_mut() {
            let Entry::Listener(listener) = entry else {
                continue;
            };
            let mut idle = 0;
            let mut starting = 0;
            let mut position = 0;
            listener.rounds += 1;
            while position < listener.listening.len() {
                let pending = &mut listener.listening[position];
                match sockets.get::<tcp::Socket>(pending.handle).state() {
                    tcp::State::Listen => {
                        // Back from a handshake a reset ended, if it was in one.
                        pending.half_open_since = None;
                        idle += 1;
                        position += 1;
                    }
                    tcp::State::SynReceived => {
                        pending.half_open_since.get_or_insert(listener.rounds);
                        starting += 1;
                        position += 1;
                    }
                    // Reset before it was accepted: nothing to hand on.
                    tcp::State::Closed => {
                        sockets.remove(pending.handle);
                        listener.listening.swap_remove(position);
                    }
                    _ => {
                        listener.accepted.push_back(pending.handle);
                        listener.listening.swap_remove(position);
                    }
                }
            }
            let waiting = listener.accepted.len() as u32 + starting;
            let mut room = listener.backlog.saturating_sub(waiting + idle);
            // A request waits and the backlog is full: if half-open
            // connections fill part of it, the oldest gives up its place
            // (forgotten: its peer, if real, gets a reset from smoltcp when
            // it answers).
            if room == 0
                && idle == 0
                && link.gate.was_held_back(listener.port)
                && let Some(oldest) = oldest_half_open(&listener.listening)
            {
                sockets.remove(listener.listening.swap_remove(oldest).handle);
                link.count(|statistics| statistics.half_open_dropped += 1);
                starting -= 1;
                room = 1;
            }
            let wanted = IDLE_LISTENERS.saturating_sub(idle).min(room);
            for _ in 0..wanted {
                let handle =
                    sockets.add(new_tcp_socket(listener.receive_buffer, config.tcp_buffer));
                let socket = sockets.get_mut::<tcp::Socket>(handle);
                if socket.listen(listener.port).is_ok() {
                    listener.listening.push(Pending {
                        handle,
                        half_open_since: None,
                    });
                    idle += 1;
                } else {
                    sockets.remove(handle);
                }
            }
            if idle > 0 {
                link.gate.open(listener.port, idle);
            } else if starting > 0 {
                // Full, partly of half-open connections: the next request
                // waits for the next round, which gives it the oldest one's
                // place.
                link.gate.open(listener.port, 0);
            } else {
                link.gate.close(listener.port);
            }
        }
        let mut released = Vec::new();
        self.closing.retain(|&(handle, port)| {
            let state = self.sockets.get::<tcp::Socket>(handle).state();
            let done = matches!(state, tcp::State::Closed | tcp::State::TimeWait);
            if done {
                self.sockets.remove(handle);
                released.push(port);
            }
            !done
        });
        for port in released {
            self.release_port(Protocol::Tcp, port);
        }
    }

    /// A new socket id.
    pub(crate) fn add_entry(&mut self, entry: Entry) -> u32 {
        let id = self.next_entry;
        self.next_entry = self.next_entry.wrapping_add(1);
        self.entries.insert(id, entry);
        id
    }

    /// Takes `port` for a socket: attaches the kernel filter for it if this
    /// stack has none yet. `AddressInUse` if another program holds it.
    pub(crate) fn use_port(&mut self, protocol: Protocol, port: u16) -> Result<(), NetError> {
        if let Some(existing) = self.ports.get_mut(&(protocol, port)) {
            existing.users += 1;
            return Ok(());
        }
        let filter = Filter { protocol, port };
        let filter = user::net_filter(self.binding, self.credentials.address, filter)?;
        self.ports
            .insert((protocol, port), PortFilter { filter, users: 1 });
        Ok(())
    }

    /// Whether this stack holds a filter for `port`.
    pub(crate) fn holds_port(&self, protocol: Protocol, port: u16) -> bool {
        self.ports.contains_key(&(protocol, port))
    }

    /// Takes a free ephemeral port.
    pub(crate) fn use_ephemeral_port(&mut self, protocol: Protocol) -> Result<u16, NetError> {
        let span = u32::from(EPHEMERAL.end() - EPHEMERAL.start()) + 1;
        for _ in 0..span {
            let port = self.next_ephemeral;
            self.next_ephemeral = if port == *EPHEMERAL.end() {
                *EPHEMERAL.start()
            } else {
                port + 1
            };
            if self.holds_port(protocol, port) {
                continue;
            }
            match self.use_port(protocol, port) {
                Ok(()) => return Ok(port),
                Err(NetError::Kernel(Error::AddressInUse)) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(NetError::AddressInUse)
    }

    /// Gives up one socket's use of `port`; the last drops the filter.
    pub(crate) fn release_port(&mut self, protocol: Protocol, port: u16) {
        let Some(entry) = self.ports.get_mut(&(protocol, port)) else {
            return;
        };
        entry.users -= 1;
        if entry.users == 0 {
            let filter = entry.filter;
            self.ports.remove(&(protocol, port));
            drop_capability(filter);
        }
    }
}

impl Drop for Stack {
    /// Gives back the filters and the notification, then (the link) the
    /// binding and the rings' frames.
    fn drop(&mut self) {
        for (_, port) in core::mem::take(&mut self.ports) {
            drop_capability(port.filter);
        }
        for service in [self.arp, self.icmp].into_iter().flatten() {
            drop_capability(service);
        }
        drop_capability(self.notification);
        // The link, dropped right after this body, gives back the binding
        // and the rings.
    }
}

/// When smoltcp's next timer on `interface` is due, in ticks from now
/// (rounded up); `None` if it has none.
pub(crate) fn timer_ticks(interface: &mut Interface, sockets: &SocketSet<'_>) -> Option<u64> {
    let per_second = user::fact(|facts| &facts.ticks_per_second).max(1);
    interface
        .poll_delay(now(), sockets)
        .map(|delay| (delay.total_micros() * per_second).div_ceil(1_000_000))
}

/// The sooner of two optional timeouts (`None`: no limit).
pub(crate) fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Where in `listening` the connection half-open the longest is, if any.
fn oldest_half_open(listening: &[Pending]) -> Option<usize> {
    (0..listening.len())
        .filter_map(|index| Some((listening[index].half_open_since?, index)))
        .min()
        .map(|(_, index)| index)
}
