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
    /// Bad file descriptor.
    EBADF = 9,
    /// File exists.
    EEXIST = 17,
    /// Not a directory.
    ENOTDIR = 20,
    /// Is a directory.
    EISDIR = 21,
    /// Too many open files.
    EMFILE = 24,
    /// File too large.
    EFBIG = 27,
    /// Read-only file system.
    EROFS = 30,
    /// Broken pipe.
    EPIPE = 32,
    /// Function not implemented.
    ENOSYS = 38,
    /// Directory not empty.
    ENOTEMPTY = 39,
    /// A datagram too large for the socket.
    EMSGSIZE = 90,
    /// The address or port is in use.
    EADDRINUSE = 98,
    /// No network: this process has no address to bind.
    ENETDOWN = 100,
    /// The connection was reset (or refused).
    ECONNRESET = 104,
    /// The socket is not connected.
    ENOTCONN = 107,
    /// No answer in time (no DHCP server offered an address).
    ETIMEDOUT = 110,
}

impl Errno {
    /// Every errno, to decode a number.
    const ALL: [Errno; 28] = [
        Errno::ESRCH,
        Errno::ECHILD,
        Errno::EAGAIN,
        Errno::ENOMEM,
        Errno::ENOENT,
        Errno::ENOEXEC,
        Errno::EFAULT,
        Errno::EINVAL,
        Errno::E2BIG,
        Errno::EACCES,
        Errno::ENOTSUP,
        Errno::EPERM,
        Errno::EBADF,
        Errno::EEXIST,
        Errno::ENOTDIR,
        Errno::EISDIR,
        Errno::EMFILE,
        Errno::EFBIG,
        Errno::EROFS,
        Errno::EPIPE,
        Errno::ENOSYS,
        Errno::ENOTEMPTY,
        Errno::EMSGSIZE,
        Errno::EADDRINUSE,
        Errno::ENETDOWN,
        Errno::ECONNRESET,
        Errno::ENOTCONN,
        Errno::ETIMEDOUT,
    ];

    /// The errno numbered `code` (e.g. a file server's answer); `EINVAL` if none is.
    pub fn from_code(code: u64) -> Errno {
        Errno::ALL
            .into_iter()
            .find(|errno| *errno as u64 == code)
            .unwrap_or(Errno::EINVAL)
    }

    /// What the error means, in the words a C library's `strerror` uses.
    pub fn description(self) -> &'static str {
        match self {
            Errno::ESRCH => "No such process",
            Errno::ECHILD => "No child processes",
            Errno::EAGAIN => "Resource temporarily unavailable",
            Errno::ENOMEM => "Cannot allocate memory",
            Errno::ENOENT => "No such file or directory",
            Errno::ENOEXEC => "Exec format error",
            Errno::EFAULT => "Bad address",
            Errno::EINVAL => "Invalid argument",
            Errno::E2BIG => "Argument list too long",
            Errno::EACCES => "Permission denied",
            Errno::ENOTSUP => "Operation not supported",
            Errno::EPERM => "Operation not permitted",
            Errno::EBADF => "Bad file descriptor",
            Errno::EEXIST => "File exists",
            Errno::ENOTDIR => "Not a directory",
            Errno::EISDIR => "Is a directory",
            Errno::EMFILE => "Too many open files",
            Errno::EFBIG => "File too large",
            Errno::EROFS => "Read-only file system",
            Errno::EPIPE => "Broken pipe",
            Errno::ENOSYS => "Function not implemented",
            Errno::ENOTEMPTY => "Directory not empty",
            Errno::EMSGSIZE => "Message too long",
            Errno::EADDRINUSE => "Address already in use",
            Errno::ENETDOWN => "Network is down",
            Errno::ECONNRESET => "Connection reset by peer",
            Errno::ENOTCONN => "Transport endpoint is not connected",
            Errno::ETIMEDOUT => "Connection timed out",
        }
    }
}

/// The description in words (`cat: /nope: No such file or directory`);
/// `{:?}` still gives the name (`ENOENT`).
impl core::fmt::Display for Errno {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.write_str(self.description())
    }
}

impl From<Error> for Errno {
    /// What a kernel refusal means to a POSIX program.
    fn from(error: Error) -> Self {
        match error {
            Error::OutOfMemory | Error::QuotaExceeded | Error::KernelMemoryExceeded => {
                Errno::ENOMEM
            }
            Error::TableFull | Error::SlotQuotaExceeded => Errno::EAGAIN,
            Error::InvalidHandle | Error::StaleHandle => Errno::ESRCH,
            Error::BadUserBuffer => Errno::EFAULT,
            Error::MissingRights | Error::NotMappable | Error::ReadOnly => Errno::EPERM,
            _ => Errno::EINVAL,
        }
    }
}
