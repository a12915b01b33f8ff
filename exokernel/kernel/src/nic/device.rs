//! The virtio-net device, driven through the `virtio-drivers` crate.
//!
//! The crate's `VirtIONetRaw` does the virtqueue bookkeeping (descriptor
//! tables, available and used rings, feature negotiation) with buffers the
//! caller owns, which is what the kernel wants: all packet memory is one run
//! of frames allocated here, and frames are copied between it and the
//! environments' rings, never handed to the device in place. Writing our
//! own virtqueue code would repeat a well-kept crate for no gain.
//!
//! Interrupts come on the device's PCI INTx line through the I/O APIC; the
//! crate does not program MSI-X vectors, so INTx is the simple choice.

use alloc::vec::Vec;
use core::ptr::NonNull;

use exo_abi::net::MAX_FRAME;
use exo_kernel_core::demux::Mac;
use exo_kernel_core::memory_map::FRAME_SIZE;
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::DeviceType;
use virtio_drivers::transport::pci::bus::{Command, ConfigurationAccess, DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::{PciTransport, virtio_device_type};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

use crate::arch::pci::PortConfiguration;
use crate::memory::{DIRECT_MAP_BASE, frames, paging, phys_to_virt};

/// Requests in flight per queue, each with its own buffer.
pub const QUEUE_SIZE: usize = 64;
/// One buffer: the 12-byte virtio-net header and a frame of up to `MAX_FRAME`.
const BUFFER_SIZE: usize = 2048;
/// The buffers' run of frames: `2 * QUEUE_SIZE` buffers, two per frame.
const BUFFER_ORDER: u32 = 6;

const _: () = assert!(2 * QUEUE_SIZE * BUFFER_SIZE == (FRAME_SIZE as usize) << BUFFER_ORDER);
const _: () = assert!(12 + MAX_FRAME <= BUFFER_SIZE);

/// PCI configuration register holding the interrupt line (PCI 3.0, 6.2.4).
const INTERRUPT_LINE: u8 = 0x3c;

/// Memory for the device's queues: frames from the frame allocator, reached
/// through the direct map.
#[derive(Debug)]
pub struct KernelHal;

fn order_for(pages: usize) -> u32 {
    pages.next_power_of_two().trailing_zeros()
}

// SAFETY: `dma_alloc` returns zeroed frames no one else uses, at their
// direct-map address; `share` gives the physical address of memory in the
// direct map, which is where every buffer the kernel passes lives.
unsafe impl Hal for KernelHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let order = order_for(pages);
        let physical = frames::allocate_run(order).expect("frames for the NIC's virtqueues");
        // SAFETY: the run was just allocated, so nothing else refers to it.
        unsafe { crate::memory::zero_physical(physical, FRAME_SIZE << order) };
        let virtual_address = phys_to_virt(physical).as_mut_ptr::<u8>();
        let pointer = NonNull::new(virtual_address).expect("the direct map is not at 0");
        (physical, pointer)
    }

    unsafe fn dma_dealloc(physical: PhysAddr, _virtual: NonNull<u8>, pages: usize) -> i32 {
        match frames::free_run(physical, order_for(pages)) {
            Ok(()) => 0,
            Err(_) => -1,
        }
    }

    unsafe fn mmio_phys_to_virt(physical: PhysAddr, size: usize) -> NonNull<u8> {
        let address = paging::map_device(physical, size as u64);
        NonNull::new(address.as_mut_ptr()).expect("the device window is not at 0")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        let address = buffer.as_ptr() as *mut u8 as u64;
        assert!(
            address >= DIRECT_MAP_BASE,
            "the NIC is only given direct-mapped memory"
        );
        address - DIRECT_MAP_BASE
    }

    unsafe fn unshare(_physical: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// Buffer `index` of the run at `buffers`, as a slice.
///
/// # Safety
/// `buffers` must be a NIC's buffer run. The device must not own the buffer
/// (it is not posted or in flight), or the slice is only passed back to the
/// driver; no other slice of it may be live.
unsafe fn buffer<'a>(buffers: u64, index: usize) -> &'a mut [u8] {
    assert!(index < 2 * QUEUE_SIZE);
    let address = buffers + (index * BUFFER_SIZE) as u64;
    // SAFETY: the run holds 2 * QUEUE_SIZE buffers and is the NIC's alone;
    // the caller promises nothing else uses this one.
    unsafe { core::slice::from_raw_parts_mut(address as *mut u8, BUFFER_SIZE) }
}

/// Why a frame was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// Every transmit buffer is in flight: try again after completions.
    Full,
    /// The frame was refused before it reached the device (by the caller's check).
    Refused,
}

/// The network card.
pub struct Nic {
    driver: VirtIONetRaw<KernelHal, PciTransport, QUEUE_SIZE>,
    mac: Mac,
    /// The PCI interrupt line (an I/O APIC input on `-M pc`).
    pub interrupt_line: u8,
    /// Where the device is, for the boot report.
    pub location: DeviceFunction,
    /// Direct-map address of the buffers: receive buffers first, then transmit.
    buffers: u64,
    /// Which receive buffer each receive token (descriptor head) holds.
    rx_by_token: [usize; QUEUE_SIZE],
    /// Which transmit buffer each transmit token holds while in flight, and
    /// how many of its bytes were given to the device.
    tx_by_token: [Option<(usize, usize)>; QUEUE_SIZE],
    tx_free: Vec<usize>,
}

impl core::fmt::Debug for Nic {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("Nic")
            .field("mac", &self.mac)
            .field("interrupt_line", &self.interrupt_line)
            .finish_non_exhaustive()
    }
}

impl Nic {
    /// Finds the first virtio-net device on PCI bus 0 and starts it, with
    /// every receive buffer posted. `None` if there is none or it fails.
    pub fn probe() -> Option<Nic> {
        let mut root = PciRoot::new(PortConfiguration);
        let location = root
            .enumerate_bus(0)
            .find(|(_, info)| virtio_device_type(info) == Some(DeviceType::Network))
            .map(|(location, _)| location)?;
        root.set_command(location, Command::MEMORY_SPACE | Command::BUS_MASTER);
        let interrupt_line = PortConfiguration.read_word(location, INTERRUPT_LINE) as u8;
        let transport = match PciTransport::new::<KernelHal, _>(&mut root, location) {
            Ok(transport) => transport,
            Err(error) => {
                log::warn!("virtio-net at {location}: {error}");
                return None;
            }
        };
        let driver = match VirtIONetRaw::new(transport) {
            Ok(driver) => driver,
            Err(error) => {
                log::warn!("virtio-net at {location}: {error}");
                return None;
            }
        };
        let buffers = frames::allocate_run(BUFFER_ORDER).ok()?;
        let mut nic = Nic {
            mac: driver.mac_address(),
            driver,
            interrupt_line,
            location,
            buffers: phys_to_virt(buffers).as_u64(),
            rx_by_token: [0; QUEUE_SIZE],
            tx_by_token: [None; QUEUE_SIZE],
            tx_free: (QUEUE_SIZE..2 * QUEUE_SIZE).collect(),
        };
        for buffer in 0..QUEUE_SIZE {
            nic.post_receive(buffer);
        }
        nic.driver.enable_interrupts();
        Some(nic)
    }

    pub fn mac(&self) -> Mac {
        self.mac
    }

    fn post_receive(&mut self, index: usize) {
        // SAFETY: the buffer is not posted (it was just taken back, or never
        // given), and it stays untouched until `receive_complete` returns it.
        let token = unsafe {
            let buffer = buffer(self.buffers, index);
            self.driver.receive_begin(buffer)
        }
        .expect("a receive descriptor is free for every buffer taken back");
        self.rx_by_token[usize::from(token)] = index;
    }

    /// Acknowledges the device's interrupt (which lowers its INTx line).
    pub fn acknowledge_interrupt(&mut self) {
        self.driver.ack_interrupt();
    }

    /// Hands each received frame to `deliver`, and posts its buffer again.
    pub fn receive(&mut self, mut deliver: impl FnMut(&[u8])) -> u64 {
        let mut count = 0;
        while let Some(token) = self.driver.poll_receive() {
            let index = self.rx_by_token[usize::from(token)];
            // SAFETY: the device has finished with the buffer it returned
            // under this token; it was posted with exactly this slice.
            let result = unsafe {
                let buffer = buffer(self.buffers, index);
                self.driver.receive_complete(token, buffer)
            };
            if let Ok((header, length)) = result {
                // SAFETY: the device is done with it (above) and it is
                // posted again only after `deliver` returns.
                let buffer = unsafe { buffer(self.buffers, index) };
                if let Some(frame) = buffer.get(header..header + length) {
                    deliver(frame);
                    count += 1;
                }
            }
            self.post_receive(index);
        }
        count
    }

    /// Takes back the transmit buffers the device has finished with.
    fn reclaim(&mut self) {
        while let Some(token) = self.driver.poll_transmit() {
            let Some((index, length)) = self.tx_by_token[usize::from(token)].take() else {
                break;
            };
            // SAFETY: the buffer was given to the device under this token,
            // as this slice.
            let _ = unsafe {
                let buffer = buffer(self.buffers, index);
                self.driver.transmit_complete(token, &buffer[..length])
            };
            self.tx_free.push(index);
        }
    }

    /// Sends a frame of `length` bytes that `fill` writes into the kernel's
    /// own buffer and then approves: the check runs on the copy the device
    /// will read, so nothing can change the frame after it was checked.
    pub fn send(
        &mut self,
        length: usize,
        fill: impl FnOnce(&mut [u8]) -> bool,
    ) -> Result<(), SendError> {
        assert!(length <= MAX_FRAME);
        self.reclaim();
        let index = self.tx_free.pop().ok_or(SendError::Full)?;
        // SAFETY: a free buffer is not in flight, and this is its only slice.
        let frame = unsafe { buffer(self.buffers, index) };
        let header = self
            .driver
            .fill_buffer_header(frame)
            .expect("a buffer holds the header");
        if !fill(&mut frame[header..header + length]) {
            self.tx_free.push(index);
            return Err(SendError::Refused);
        }
        // SAFETY: the buffer is not touched again until `reclaim` takes it
        // back from the device under the returned token.
        let token = unsafe { self.driver.transmit_begin(&frame[..header + length]) };
        match token {
            Ok(token) => {
                self.tx_by_token[usize::from(token)] = Some((index, header + length));
                Ok(())
            }
            Err(_) => {
                self.tx_free.push(index);
                Err(SendError::Full)
            }
        }
    }
}
