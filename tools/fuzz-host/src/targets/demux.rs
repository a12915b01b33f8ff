//! The demultiplexer's frame classification (`exokernel/kernel-core/src/demux.rs`): every
//! frame the card receives, and every frame an environment asks to send, goes through it.

use exo_abi::net::Protocol;
use exo_abi::wire::ETHERNET_HEADER;
use exo_kernel_core::demux::{self, BROADCAST, Claim, Destination, Mac, Unmatched};

use super::Target;

pub const TARGET: Target = Target {
    name: "demux",
    checks: "any frame is classified and claimed without reading out of bounds, consistently",
    check,
};

/// The first six bytes are the card's MAC, the rest the frame.
fn check(bytes: &[u8]) {
    let Some((mac, frame)) = bytes.split_first_chunk::<6>() else {
        return;
    };
    let mac: Mac = *mac;
    let destination = demux::classify(frame, mac);
    assert_eq!(
        destination,
        demux::classify(frame, mac),
        "classification is pure"
    );
    if frame.len() < ETHERNET_HEADER {
        assert_eq!(destination, Destination::Unmatched(Unmatched::Malformed));
    } else if frame[..6] != mac && frame[..6] != BROADCAST {
        assert_eq!(destination, Destination::Unmatched(Unmatched::OtherHost));
    }
    if let Destination::Filter(key) = destination {
        port_is_a_port(key.filter.protocol, key.filter.port);
    }
    if let Ok(Claim::Filter(key)) = demux::claim(frame, mac) {
        port_is_a_port(key.filter.protocol, key.filter.port);
    }
}

/// Port 0 is no port: no filter holds it.
fn port_is_a_port(protocol: Protocol, port: u16) {
    if matches!(protocol, Protocol::Udp | Protocol::Tcp) {
        assert_ne!(port, 0, "a filter on port 0");
    }
}
