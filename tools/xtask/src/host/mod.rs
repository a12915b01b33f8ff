//! The host's side of the networked scenarios: what a host function works with while the
//! guest runs (`side`), the host functions of the kernel's network scenarios
//! (`kernel_network`) and of the library OS's servers (`server_clients`), and what they are
//! made of: echo checks, hostile frames, an HTTP client and pseudo-random payloads; and
//! net-tap-hostile's own network, a tap in a namespace (`tap_network`, `raw_link`), with
//! its frames (`tap_frames`) and host function (`tap_clients`).

pub mod echo;
pub mod hostile_frames;
pub mod http_client;
pub mod kernel_network;
pub mod pseudo_random;
pub mod raw_link;
pub mod server_clients;
pub mod side;
pub mod tap_clients;
pub mod tap_frames;
pub mod tap_network;
