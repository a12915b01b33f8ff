//! POSIX error numbers: what a library-OS call that fails says.

use exo_abi::Error;

/// A POSIX error (numbers as Linux uses them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Errno {
    /// No such process.
    ESRCH = 3,
    /// No child processes.
    ECHILD = 10,
    /// Try again.
    EAGAIN = 11,
    /// Out of memory.
    ENOMEM = 12,
    /// No such file or directory.
    ENOENT = 2,
    /// Exec format error.
    ENOEXEC = 8,
    /// Bad address.
    EFAULT = 14,
    /// Invalid argument.
    EINVAL = 22,
    /// Argument list too long.
    E2BIG = 7,
    /// Permission denied.
    EACCES = 13,
    /// Operation not supported.
    ENOTSUP = 95,
    /// Operation not permitted.
    EPERM = 1,
}

impl From<Error> for Errno {
    /// What a kernel refusal means to a POSIX program.
    fn from(error: Error) -> Self {
        match error {
            Error::OutOfMemory | Error::QuotaExceeded => Errno::ENOMEM,
            Error::TableFull => Errno::EAGAIN,
            Error::InvalidHandle | Error::StaleHandle => Errno::ESRCH,
            Error::BadUserBuffer => Errno::EFAULT,
            Error::MissingRights | Error::NotMappable | Error::ReadOnly => Errno::EPERM,
            _ => Errno::EINVAL,
        }
    }
}
