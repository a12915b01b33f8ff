//! density: as many isolated UDP echo servers as fit, each in its own environment with its
//! own library OS — its own libos-net stack (smoltcp), heap, rings and kernel filter — on
//! its own UDP port, `BASE_PORT + i`. `cargo xtask density` boots it and checks from the
//! host that every server answers; `cargo xtask test density` starts a handful.
//!
//! The launcher (this program, the first environment) claims 10.0.2.15 and starts app
//! after app as a [`LeanChild`]: the app allocates its own data pages, stack, heap and
//! rings from the quota the launcher lends it, so the launcher's capability table holds one
//! capability per app, its environment. Each app asks the launcher, by a call through the
//! launcher's endpoint, for its port and a copy of the address capability; sets up its
//! stack and binds its port (the kernel filter is the app's own); reports ready (or the
//! kernel's refusal that stopped it); then echoes datagrams for ever. The launcher stops
//! at the first refusal — a typed error from the kernel, whoever met it — and says which.
//!
//! Then it prints what an app costs — frames from the kernel's free count, kernel memory
//! from the kernel heap's — and a `DENSITY-READY` line for the host, and waits until the
//! end of console input (Ctrl-D), when it exits and every app ends with it.
//!
//! `init_argument=N` on the kernel command line: at most N apps (0 or absent: as many as
//! fit, up to [`MAX_APPS`]).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::net::Ipv4Addr;

use exo_abi::layout::PAGE_SIZE;
use exo_abi::net::mac_from_u64;
use exo_abi::syscall::{
    CAPABILITY_BYTES, EnvironmentAccount, Event, MAPPING_RECORD_BYTES, TABLE_GROWTH_BYTES,
};
use exo_abi::user::{self, Lend, Wakeup};
use exo_abi::{Error, Handle, Rights};
use libos_net::{Config, Credentials, NetError, SocketId, Stack};
use userapps::layout::{CHILD_STACK_TOP, MANAGED_START};
use userapps::lean_child::{self, BootStack, LeanChild};
use userapps::memory::drop_capability;
use userapps::println;
use userapps_net::heap::{self, Heap};

userapps::entry!(main);

/// Each app's heap. The launcher never gives itself one: an app's data starts as a copy of
/// the launcher's, allocator included, and must find it empty.
#[global_allocator]
static HEAP: Heap = Heap::empty();

/// The most apps the launcher starts.
pub const MAX_APPS: usize = 4096;
/// App `i` echoes on UDP port `BASE_PORT + i`.
const BASE_PORT: u16 = 20_000;
/// The address every app shares.
const ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);

/// An app's memory besides its data and stack (`lean_child`), in the 2 MiB below its stack
/// top, which one page table covers: its heap, `2^HEAP_ORDER` pages...
const HEAP_START: u64 = CHILD_STACK_TOP - 0x10_0000;
const HEAP_ORDER: u32 = 2;
/// ...and its rings, `2^RING_ORDER` pages: two entries each way, enough for an echo
/// server with one datagram in flight per client (the smallest `NetBind` takes).
const RINGS: u64 = CHILD_STACK_TOP - 0x18_0000;
const RING_ORDER: u32 = 2;
/// Datagrams an app's UDP socket queues each way, and their bytes.
const UDP_PACKETS: usize = 4;
const UDP_BYTES: usize = 4096;
/// What the kernel charges an app for its address space: its page tables — the top level,
/// and three levels each for its image, for the 2 MiB below its stack top and for the
/// facts page — and the facts page itself.
const ADDRESS_SPACE_FRAMES: u64 = 11;

/// Capabilities an app holds at most: its own environment's, the launcher's endpoint (while
/// it starts), its data, stack, heap and ring frames, its notification, binding, address,
/// and filters for its port and — the first app — the address's ARP and ICMP.
const APP_CAPABILITIES: u64 = 12;
/// Pages an app maps only while it builds itself (`lean_child`): the boot stack, its data
/// read-only, and its data run at the scratch address.
const BUILD_PAGES: u64 = 4;
/// What an app is charged that the ABI does not price: its environment's record, and its
/// binding's and filters' records. Measured: the first app (which holds three filters)
/// needs between 5 and 5.25 KiB of it, or it is refused `KernelMemoryExceeded` while it
/// starts; the rest is slack.
const RECORDS_BYTES: u64 = 6 * 1024;

/// Where the launcher keeps the boot stack its apps build themselves on.
const BOOT_STACK: u64 = MANAGED_START;

/// The tag of the launcher's endpoint, and what an app's call says (argument 0): it wants
/// its port and address; it is ready (argument 1: heap bytes in use); it failed
/// (argument 1: the kernel's error code).
const ENDPOINT_TAG: u64 = 0xde45;
const HELLO: u64 = 1;
const READY: u64 = 2;
const FAILED: u64 = 3;
/// Ticks the launcher waits for an app's calls before giving up on it (10 s at the default
/// rate, hundreds of times what an app takes), looking every `APP_WAIT_TICKS` whether it
/// has ended.
const APP_TIMEOUT_TICKS: u64 = 10_000;
const APP_WAIT_TICKS: u64 = 100;
/// A progress line every this many apps.
const PROGRESS_EVERY: usize = 50;
/// The line the launcher prints its figures on, for the host.
const READY_LINE: &str = "DENSITY-READY";

fn main(argument: u64) -> u64 {
    let limit = match argument {
        0 => MAX_APPS,
        wanted => (wanted as usize).min(MAX_APPS),
    };
    let launcher = match Launcher::new() {
        Ok(launcher) => launcher,
        Err(error) => {
            println!("density: cannot set up the launcher: {error:?}");
            return 1;
        }
    };
    let before = Usage::now();
    let mut totals = Totals {
        started: 0,
        start_micros: [0; MAX_APPS],
        frames: 0,
        kernel_bytes: 0,
        heap_bytes: 0,
    };
    let stop = loop {
        if totals.started == limit {
            break None;
        }
        let begun = user::micros();
        match launcher.start_app(totals.started) {
            Ok(app) => totals.add(&app, user::micros() - begun),
            Err(stop) => break Some(stop),
        }
        if totals.started.is_multiple_of(PROGRESS_EVERY) {
            println!(
                "density: {} apps started (UDP ports {BASE_PORT}-{})",
                totals.started,
                port(totals.started - 1)
            );
        }
    };
    let after = Usage::now();
    match stop {
        Some(Stop { error, stage }) => println!(
            "density: app {} was refused: {error:?} ({stage}); stopping there",
            totals.started
        ),
        None => println!("density: started the {limit} apps asked for"),
    }
    if totals.started == 0 {
        println!("{READY_LINE} apps=0");
        return 1;
    }
    report(&mut totals, &before, &after, stop);
    wait_for_end_of_input();
    0
}

/// What the launcher holds to start apps.
struct Launcher {
    boot: BootStack,
    endpoint: Handle,
    address: Handle,
    mac: u64,
}

/// An app that has started, and what it costs.
struct StartedApp {
    frames: u64,
    kernel_bytes: u64,
    heap_bytes: u64,
}

/// Why the launcher stopped: the kernel's refusal, and what it was doing for the app.
#[derive(Clone, Copy)]
struct Stop {
    error: Error,
    stage: &'static str,
}

/// Frames in use and kernel heap bytes in use, system-wide, at one moment.
struct Usage {
    frames_in_use: u64,
    kernel_heap: u64,
}

impl Usage {
    fn now() -> Self {
        let (free, usable) = user::frame_counts();
        Self {
            frames_in_use: usable - free,
            kernel_heap: user::kernel_memory().0,
        }
    }
}

/// What the apps started so far cost, summed.
struct Totals {
    started: usize,
    /// Each app's start, in microseconds.
    start_micros: [u32; MAX_APPS],
    /// Frames and kernel bytes charged to the apps' own accounts.
    frames: u64,
    kernel_bytes: u64,
    /// The most heap an app used.
    heap_bytes: u64,
}

impl Totals {
    fn add(&mut self, app: &StartedApp, start_micros: u64) {
        self.start_micros[self.started] = start_micros.min(u64::from(u32::MAX)) as u32;
        self.frames += app.frames;
        self.kernel_bytes += app.kernel_bytes;
        self.heap_bytes = self.heap_bytes.max(app.heap_bytes);
        self.started += 1;
    }
}

/// Prints what an app costs: frames and kernel memory from the kernel's system-wide counts
/// (everything an app took, wherever it was charged), what its own accounts were charged,
/// and how long it took to start; then the `DENSITY-READY` line with the same figures.
fn report(totals: &mut Totals, before: &Usage, after: &Usage, stop: Option<Stop>) {
    let apps = totals.started as u64;
    let median = |times: &mut [u32]| {
        times.sort_unstable();
        times[(times.len() - 1) / 2]
    };
    // The first and the last apps' (copies: the sorts must not mix them), then all.
    let first = totals.started.min(PROGRESS_EVERY);
    let mut window = [0u32; PROGRESS_EVERY];
    window[..first].copy_from_slice(&totals.start_micros[..first]);
    let first_median = median(&mut window[..first]);
    window[..first].copy_from_slice(&totals.start_micros[totals.started - first..totals.started]);
    let last_median = median(&mut window[..first]);
    let all_median = median(&mut totals.start_micros[..totals.started]);
    let frames = after.frames_in_use.saturating_sub(before.frames_in_use) / apps;
    let kernel_bytes = after.kernel_heap.saturating_sub(before.kernel_heap) / apps;
    let own_frames = totals.frames / apps;
    let own_kernel_bytes = totals.kernel_bytes / apps;
    let data = lean_child::data_run_pages().unwrap_or(0);
    let heap = 1 << HEAP_ORDER;
    let rings = 1 << RING_ORDER;
    let stack = lean_child::STACK_PAGES;
    let pages = lean_child::pages_mapped().unwrap_or(0) + heap + rings;
    println!(
        "density: {apps} apps, {frames} frames each ({own_frames} charged to the app: {} for its \
         address space, {data} data, {stack} stack, {heap} heap, {rings} rings), {kernel_bytes} \
         bytes of kernel memory each ({own_kernel_bytes} charged to the app, {pages} pages \
         mapped); start median {all_median} us (first {first} apps {first_median} us, last \
         {first} {last_median} us); heap in use at most {} of {} bytes",
        own_frames.saturating_sub(data + stack + heap + rings),
        totals.heap_bytes,
        PAGE_SIZE << HEAP_ORDER,
    );
    let stopped_by: &dyn core::fmt::Display = match &stop {
        Some(stop) => &stop.error,
        None => &"limit",
    };
    let (free, usable) = user::frame_counts();
    let (heap_used, heap_capacity) = user::kernel_memory();
    // What would have been left for more apps, had the launcher gone on.
    let own = |which| user::environment_info(Handle::SELF_ENVIRONMENT, which).unwrap_or(0);
    let kernel_bytes_left = own(EnvironmentAccount::KernelBytesLimit)
        .saturating_sub(own(EnvironmentAccount::KernelBytesCharged));
    println!(
        "{READY_LINE} apps={apps} usable_mib={} frames_per_app={frames} \
         kernel_bytes_per_app={kernel_bytes} start_us_median={all_median} \
         start_us_median_first={first_median} start_us_median_last={last_median} \
         app_frames={own_frames} app_kernel_bytes={own_kernel_bytes} app_pages={pages} \
         kernel_heap={heap_used}/{heap_capacity} frames_free={free} \
         kernel_bytes_left={kernel_bytes_left} stopped_by={stopped_by}",
        (usable * PAGE_SIZE) >> 20,
    );
}

impl Launcher {
    fn new() -> Result<Self, Error> {
        let nic = user::start_info().nic().ok_or(Error::NoDevice)?;
        let mac = user::capability_identify(nic)?.value;
        let address = user::net_claim(nic, u32::from(ADDRESS))?;
        Ok(Self {
            boot: BootStack::new(BOOT_STACK)?,
            endpoint: user::endpoint_create(ENDPOINT_TAG)?,
            address,
            mac,
        })
    }

    /// Starts app `index` and waits until it is ready.
    fn start_app(&self, index: usize) -> Result<StartedApp, Stop> {
        let stop = |stage| move |error| Stop { error, stage };
        let lend = Lend {
            frames: app_quota().map_err(stop("sizing its quota"))?,
            kernel_bytes: app_kernel_bytes().map_err(stop("sizing its kernel memory"))?,
            slots: 0,
        };
        let child =
            LeanChild::create(lend, &self.boot).map_err(stop("creating its environment"))?;
        let endpoint = user::capability_grant(self.endpoint, child.environment(), Rights::CALL)
            .map_err(stop("granting it the launcher's endpoint"))?;
        child
            .start(&self.boot, serve, endpoint.to_raw())
            .map_err(stop("starting it"))?;
        child
            .wait_until_built(&self.boot)
            .map_err(stop("building its data and stack"))?;
        let heap_bytes = self.serve_app(&child, index)?;
        let account = |which| child.account(which).unwrap_or(0);
        let app = StartedApp {
            frames: account(EnvironmentAccount::FramesCharged),
            kernel_bytes: account(EnvironmentAccount::KernelBytesCharged),
            heap_bytes,
        };
        // It runs until the launcher ends.
        let _ = child.detach();
        Ok(app)
    }

    /// Answers the app's calls until it says it is ready (its heap use) or failed.
    fn serve_app(&self, child: &LeanChild, index: usize) -> Result<u64, Stop> {
        let deadline = user::fact(|facts| &facts.ticks) + APP_TIMEOUT_TICKS;
        loop {
            let call = match user::wait(Event::CALL | Event::TIMER, APP_WAIT_TICKS) {
                Ok(Wakeup::Call(call)) => call,
                _ if !child.is_alive() => {
                    return Err(Stop {
                        error: Error::InvalidState,
                        stage: "it ended before it was ready",
                    });
                }
                _ if user::fact(|facts| &facts.ticks) >= deadline => {
                    return Err(Stop {
                        error: Error::InvalidState,
                        stage: "it never said it was ready",
                    });
                }
                _ => continue,
            };
            let [message, value] = call.arguments;
            let answer = match message {
                HELLO => user::reply([u64::from(port(index)), self.mac], Some(self.address)),
                _ => user::reply([0, 0], None),
            };
            match (message, answer) {
                (_, Err(error)) => {
                    return Err(Stop {
                        error,
                        stage: "answering its call",
                    });
                }
                (READY, Ok(())) => return Ok(value),
                (FAILED, Ok(())) => {
                    return Err(Stop {
                        error: Error::try_from(value).unwrap_or(Error::InvalidState),
                        stage: "setting up its stack",
                    });
                }
                _ => {}
            }
        }
    }
}

/// The frames an app is lent, all it uses: its data and stack, heap, rings and address space.
fn app_quota() -> Result<u64, Error> {
    Ok(lean_child::data_run_pages()?
        + lean_child::STACK_PAGES
        + (1 << HEAP_ORDER)
        + (1 << RING_ORDER)
        + ADDRESS_SPACE_FRAMES)
}

/// The kernel memory an app is lent, at the prices the ABI states: a mapping record for
/// each page it maps (its image's included, and those it maps while it builds itself), a
/// capability for each it holds, one growth of its capability table, and its records.
fn app_kernel_bytes() -> Result<u64, Error> {
    let pages = lean_child::pages_mapped()? + (1 << HEAP_ORDER) + (1 << RING_ORDER) + BUILD_PAGES;
    Ok(pages * MAPPING_RECORD_BYTES
        + APP_CAPABILITIES * CAPABILITY_BYTES
        + TABLE_GROWTH_BYTES
        + RECORDS_BYTES)
}

/// App `index`'s UDP port.
fn port(index: usize) -> u16 {
    BASE_PORT + index as u16
}

/// Sleeps a tick at a time until Ctrl-D arrives on the console.
fn wait_for_end_of_input() {
    while !userapps::console::input_ended() {
        let _ = user::wait(Event::TIMER, 10);
    }
}

// ---------------------------------------------------------------------------------------
// An app: everything below runs in the app's own environment.

/// An app's life: ask for its port and address, set up, report, echo for ever.
fn serve(endpoint: u64) -> u64 {
    let endpoint = Handle::from_raw(endpoint);
    let Ok(([port, mac], Some(address))) = call_launcher(endpoint, [HELLO, 0]) else {
        return 1;
    };
    let (mut stack, socket) = match set_up(port as u16, mac, address) {
        Ok(ready) => ready,
        Err(error) => {
            let _ = call_launcher(endpoint, [FAILED, error.code()]);
            return 2;
        }
    };
    let heap_bytes = HEAP.lock().stats_alloc_actual() as u64;
    if call_launcher(endpoint, [READY, heap_bytes]).is_err() {
        return 3;
    }
    // The launcher is no longer needed: one capability less in the kernel's keeping.
    let _ = drop_capability(endpoint);
    echo(&mut stack, socket)
}

/// Calls the launcher (a call waits in the kernel while the launcher is busy with another
/// app's).
fn call_launcher(
    endpoint: Handle,
    arguments: [u64; 2],
) -> Result<([u64; 2], Option<Handle>), Error> {
    user::call_endpoint(endpoint, arguments, None)
}

/// The app's heap, stack and UDP socket on `port`.
fn set_up(port: u16, mac: u64, address: Handle) -> Result<(Stack, SocketId), Error> {
    heap::give(&HEAP, HEAP_START, HEAP_ORDER)?;
    let mut config = Config::qemu_user_network(RINGS);
    config.ring_order = RING_ORDER;
    config.udp_packets = UDP_PACKETS;
    config.udp_bytes = UDP_BYTES;
    // The first app answers ARP and pings for the address; the others never wake to ask.
    config.service_retry_ticks = None;
    let credentials = Credentials {
        address,
        mac: mac_from_u64(mac),
    };
    let mut stack = Stack::new(credentials, config).map_err(kernel_error)?;
    let socket = stack.udp_bind(port).map_err(kernel_error)?;
    Ok((stack, socket))
}

/// The kernel's error behind a stack's refusal.
fn kernel_error(error: NetError) -> Error {
    match error {
        NetError::Kernel(error) => error,
        NetError::AddressInUse => Error::AddressInUse,
        _ => Error::InvalidState,
    }
}

/// Echoes every datagram to its sender, for ever.
fn echo(stack: &mut Stack, socket: SocketId) -> ! {
    let mut buffer = [0u8; 1500];
    loop {
        stack.poll();
        while let Ok((length, peer)) = stack.recv_from(socket, &mut buffer) {
            let _ = stack.send_to(socket, &buffer[..length], peer);
        }
        stack.poll();
        stack.wait(None);
    }
}

const _: () = assert!(
    lean_child::FREE_BELOW_STACK.start <= RINGS
        && RINGS + (PAGE_SIZE << RING_ORDER) <= HEAP_START
        && HEAP_START + (PAGE_SIZE << HEAP_ORDER) <= lean_child::FREE_BELOW_STACK.end
);
