//! The in-QEMU scenarios: what each boots with and what it must show, one file per chapter
//! of the book, and the verdict on a finished run (its exit, serial output, host side and
//! packet capture).
//!
//! The table is data: a new scenario is one more entry in its chapter's file, stating only
//! what differs from [`DEFAULT`](scenario::DEFAULT). A test program judges itself: its
//! entry gives the number of checks it must report passed (`checks`), and its
//! `serial_must_show` only what the program cannot judge (kernel lines, other
//! environments' lines, counters). What a networked scenario does on the
//! host lives in [`kernel_network`](crate::host::kernel_network) and
//! [`server_clients`](crate::host::server_clients).

mod benchmarks;
mod boot;
mod cpu;
mod density;
mod fuzz;
mod hostile;
mod library_os;
mod memory;
mod network;
mod scenario;
mod table;
mod trace;
mod verdict;

pub use scenario::{Capture, Scenario, TraceOutput};
pub use table::{SCENARIOS, matching};
pub use verdict::first_missing_in_order;
