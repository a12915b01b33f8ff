//! DHCP (RFC 2131): an address for a program that holds the card but has no
//! address yet.
//!
//! [`acquire`] runs smoltcp's DHCP client on a binding of its own. Before a
//! host has an address, servers broadcast their answers to
//! 255.255.255.255:68 and the client sends from 0.0.0.0:68, so the binding
//! holds UDP port 68 on the limited broadcast address, which the kernel
//! gives for exactly this (`docs/05-network.md`, 5.3). Once a server has
//! acknowledged a lease, everything is given back: the caller claims the
//! leased address with the card's capability and starts its stacks on it.
//!
//! The lease is taken once and not renewed: QEMU's server leases for a day
//! and never gives the address to anyone else while the guest runs.

use alloc::vec;
use core::net::Ipv4Addr;

use exo_abi::net::{Filter, LIMITED_BROADCAST};
use exo_abi::syscall::Event;
use exo_abi::{Handle, user};
use smoltcp::iface::{Config as InterfaceConfig, Interface, SocketSet};
use smoltcp::socket::dhcpv4;
use smoltcp::wire::{EthernetAddress, HardwareAddress};

use crate::NetError;
use crate::capabilities::drop_capability;
use crate::link::Link;
use crate::stack::{Config, earliest, now, timer_ticks};

/// The client's port (RFC 2131, 4.1).
const CLIENT_PORT: u16 = 68;

/// What a DHCP server gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Addr,
    pub prefix_length: u8,
    /// The router, if the server named one.
    pub gateway: Option<Ipv4Addr>,
    /// The server that acknowledged the lease.
    pub server: Ipv4Addr,
}

impl Lease {
    /// `config` on this lease's address, prefix and gateway.
    pub fn apply(&self, mut config: Config) -> Config {
        config.address = self.address;
        config.prefix_length = self.prefix_length;
        config.gateway = self.gateway;
        config
    }
}

/// A capability given back when it goes out of scope, on every path.
struct Held(Handle);

impl Drop for Held {
    fn drop(&mut self) {
        drop_capability(self.0);
    }
}

/// The binding's rings: 2^3 pages, four entries each way, plenty for a
/// client that has one exchange in flight.
const RING_ORDER: u32 = 3;

/// Asks the network's DHCP servers for an address, with the card `nic`
/// (whose MAC is `mac`), waiting at most `limit_ticks`. The binding uses
/// `config`'s path, ring place and notification bit (its rings are small,
/// [`RING_ORDER`]), and is gone when this returns. `TimedOut` if no server acknowledged a lease in time;
/// `AddressInUse` if another program is asking at the same time.
pub fn acquire(
    nic: Handle,
    mac: [u8; 6],
    config: &Config,
    limit_ticks: u64,
) -> Result<Lease, NetError> {
    let broadcast = Held(user::net_claim(nic, LIMITED_BROADCAST)?);
    let notification = Held(user::notification_create(config.notify_bit)?);
    let (mut link, binding) =
        Link::open(config.path, RING_ORDER, config.ring_base, notification.0)?;
    let _port = Held(user::net_filter(
        binding,
        broadcast.0,
        Filter::udp(CLIENT_PORT),
    )?);

    let mut interface_config =
        InterfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
    interface_config.random_seed = user::tsc();
    let mut interface = Interface::new(interface_config, &mut link, now());
    let mut sockets = SocketSet::new(vec![]);
    let client = sockets.add(dhcpv4::Socket::new());

    let ticks = || user::fact(|facts| &facts.ticks);
    let deadline = ticks() + limit_ticks;
    loop {
        interface.poll(now(), &mut link, &mut sockets);
        if let Some(dhcpv4::Event::Configured(lease)) =
            sockets.get_mut::<dhcpv4::Socket>(client).poll()
        {
            return Ok(Lease {
                address: lease.address.address(),
                prefix_length: lease.address.prefix_len(),
                gateway: lease.router,
                server: lease.server.address,
            });
        }
        let left = deadline.saturating_sub(ticks());
        if left == 0 {
            return Err(NetError::TimedOut);
        }
        if link.frames_waiting() {
            continue;
        }
        let sleep = earliest(timer_ticks(&mut interface, &sockets), Some(left));
        if let Some(ticks @ 1..) = sleep {
            let _ = user::wait(Event::NOTIFY | Event::TIMER, ticks);
        }
    }
}
