//! `cargo xtask trace` and what reads the kernel's trace on the host: the stream
//! (`stream`), each record in words (`decode`), the records paired into slices and
//! instants (`timeline`), and what is written from them: the Chrome trace for Perfetto
//! (`chrome`), the picture (`svg`) and the summary (`summary`). `command` boots the guest
//! and writes them all, `collect` prepares and reads the stream's file; everything else is pure and tested on the host. docs/08 is the
//! chapter.

mod chrome;
mod collect;
mod command;
pub mod decode;
pub mod stream;
mod summary;
mod svg;
pub mod timeline;

pub use collect::{prepare_output, read};
pub use command::{TraceOptions, run};
pub use svg::Window;
