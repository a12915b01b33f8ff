//! The network card: found and started at boot, then shared by bindings.
//!
//! The device (`device`) lives behind its own lock, taken only while the
//! `SYSTEM` lock is held (never the other way round). Who owns which
//! packets, and the rings, are the environments' business and live in
//! `environment::net`.

pub mod device;
pub mod ring_memory;

use spin::Mutex;

use self::device::Nic;
use crate::arch::{ioapic, vectors};
use crate::println;

/// The network card, if the machine has one.
pub static NIC: Mutex<Option<Nic>> = Mutex::new(None);

/// Looks for a virtio-net device, starts it, and routes its interrupt.
pub fn init() {
    let inputs = ioapic::init();
    let Some(nic) = Nic::probe() else {
        println!("net: no virtio-net device");
        return;
    };
    let line = nic.interrupt_line;
    if u32::from(line) < inputs {
        ioapic::route_pci(line, vectors::NIC);
    } else {
        log::warn!("net: interrupt line {line} is not an I/O APIC input; polling only");
    }
    let mac = nic.mac();
    println!(
        "net: virtio-net at {}, MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, interrupt line {line}",
        nic.location, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    );
    *NIC.lock() = Some(nic);
}

/// Whether there is a network card.
pub fn present() -> bool {
    NIC.lock().is_some()
}
