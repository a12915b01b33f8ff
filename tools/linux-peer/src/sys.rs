//! The program's only `unsafe` code: the raw Linux calls the benchmarks time, each behind a
//! safe function.
//!
//! The rest of the crate denies `unsafe` code, so this module alone may allow it. Nothing
//! here decides what is measured or how; it only makes one call possible without `unsafe`
//! at the call site. A failed call that would make a measurement meaningless panics.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The size of the pages mapped and faulted on: x86_64's small page.
pub const PAGE_SIZE: usize = 4096;

/// The time-stamp counter: the clock every benchmark reads.
pub fn cycles() -> u64 {
    // SAFETY: `rdtsc` reads a counter and touches no memory; every x86_64 processor has
    // it, and Linux leaves it readable from user mode.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// `getppid` as a real system call: the C library's wrapper could cache the answer.
pub fn getppid_system_call() -> i64 {
    // SAFETY: `getppid` takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_getppid) }
}

/// Gives the processor to another runnable task, if there is one.
pub fn yield_processor() {
    // SAFETY: `sched_yield` takes no arguments and always succeeds on Linux.
    unsafe { libc::sched_yield() };
}

/// Keeps the calling thread (and the processes and threads it starts from now on, which
/// inherit it) on the processor it is running on.
pub fn stay_on_this_processor() -> std::io::Result<()> {
    // SAFETY: `sched_getcpu` takes no arguments; a negative result is checked.
    let processor = unsafe { libc::sched_getcpu() };
    if processor < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: an all-zero `cpu_set_t` is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `processor` is a processor number the kernel just gave, below the set's size.
    unsafe { libc::CPU_SET(processor as usize, &mut set) };
    // SAFETY: `set` is a valid set of the size passed, for the call's duration; pid 0 is
    // the calling thread.
    succeeded(unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) })
}

/// A call's result as std reports errors: 0 is success, anything else left `errno` set.
fn succeeded(result: c_int) -> std::io::Result<()> {
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Puts the calling thread (and the processes and threads it starts from now on, which
/// inherit it) under `SCHED_FIFO` at the lowest real-time priority, or with `false` back
/// under the default policy. Under `SCHED_FIFO` a yield always hands the processor to
/// another runnable task of the same priority; under the default policy it need not.
pub fn first_in_first_out(enabled: bool) -> std::io::Result<()> {
    let (policy, priority) = if enabled {
        (libc::SCHED_FIFO, 1)
    } else {
        (libc::SCHED_OTHER, 0)
    };
    let parameters = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `parameters` is a valid `sched_param` for the call's duration; pid 0 is the
    // calling thread.
    succeeded(unsafe { libc::sched_setscheduler(0, policy, &parameters) })
}

/// One anonymous private page, unmapped when dropped.
#[derive(Debug)]
pub struct Page {
    address: *mut u8,
}

impl Page {
    /// Maps a fresh page, readable and writable, or with no access at all when
    /// `accessible` is false.
    pub fn map(accessible: bool) -> Page {
        let protection = if accessible {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_NONE
        };
        // SAFETY: an anonymous private mapping at an address the kernel chooses replaces
        // nothing that exists; the result is checked before use.
        let address = unsafe {
            libc::mmap(
                ptr::null_mut(),
                PAGE_SIZE,
                protection,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(address != libc::MAP_FAILED, "mmap of one page failed");
        Page {
            address: address.cast(),
        }
    }

    /// Writes one byte into the page. If the page is not accessible, this faults first,
    /// and returns once the fault handler has made it so.
    pub fn touch(&self) {
        // SAFETY: `address` is the start of a page this `Page` mapped and still holds, and
        // no Rust reference points into it. If the page is protected, the write faults:
        // with `resolve_faults_on` for this page the handler grants access and the write
        // is retried; without it the process dies, touching nothing. Volatile keeps the
        // access (and its fault) from being optimised away.
        unsafe { ptr::write_volatile(self.address, 1) };
    }

    /// Takes every access away again, so the next touch faults.
    pub fn protect(&self) {
        // SAFETY: the range is exactly this `Page`'s own mapping; no Rust reference points
        // into it, so none is invalidated.
        let result = unsafe { libc::mprotect(self.address.cast(), PAGE_SIZE, libc::PROT_NONE) };
        assert_eq!(result, 0, "mprotect(PROT_NONE) failed");
    }

    /// The page's address, as the fault handler compares it.
    fn address(&self) -> usize {
        self.address as usize
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        // SAFETY: the range is this `Page`'s own mapping, and it is not used after this.
        unsafe { libc::munmap(self.address.cast(), PAGE_SIZE) };
    }
}

/// The page whose faults the handler resolves; 0: none.
static FAULTING_PAGE: AtomicUsize = AtomicUsize::new(0);

/// Handles segmentation faults on `page` by making it readable and writable, so the
/// faulting access resumes: a user-level fault round trip. Faults elsewhere stay fatal.
/// Replaces any earlier handler; one page at a time.
pub fn resolve_faults_on(page: &Page) {
    FAULTING_PAGE.store(page.address(), Ordering::SeqCst);
    // SAFETY: an all-zero `sigaction` is a valid value (no flags, empty mask), which the
    // fields set below complete.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_segmentation_fault as *const () as libc::sighandler_t;
    action.sa_flags = libc::SA_SIGINFO;
    // SAFETY: the handler has the three-argument form `SA_SIGINFO` asks for and makes only
    // async-signal-safe calls; the action outlives the call, which copies it.
    let result = unsafe { libc::sigaction(libc::SIGSEGV, &action, ptr::null_mut()) };
    assert_eq!(result, 0, "sigaction(SIGSEGV) failed");
}

extern "C" fn on_segmentation_fault(_signal: c_int, info: *mut libc::siginfo_t, _: *mut c_void) {
    // SAFETY: the kernel passes a valid `siginfo_t` for a handler installed with
    // `SA_SIGINFO`, and for SIGSEGV `si_addr` is the faulting address.
    let address = unsafe { (*info).si_addr() } as usize;
    let page = FAULTING_PAGE.load(Ordering::SeqCst);
    let protection = if page != 0 && address & !(PAGE_SIZE - 1) == page {
        libc::PROT_READ | libc::PROT_WRITE
    } else {
        // Not our page: restore the default action, so the access faults again and the
        // program dies as it would have without us.
        // SAFETY: `signal` is async-signal-safe; SIG_DFL is a valid disposition.
        unsafe { libc::signal(libc::SIGSEGV, libc::SIG_DFL) };
        return;
    };
    // SAFETY: `page` is a whole page the benchmark mapped (`resolve_faults_on`); giving
    // it access changes no Rust object. `mprotect` is async-signal-safe.
    unsafe { libc::mprotect(page as *mut c_void, PAGE_SIZE, protection) };
}

/// A process forked by [`fork_running`], killed and reaped by [`Child::stop`].
#[derive(Debug)]
pub struct Child {
    pid: libc::pid_t,
}

/// Forks; the child runs `body` and exits with status 0 without returning, the parent gets
/// the child. Call only while this process has a single thread: the child has only the
/// forking one, and a lock another thread held would stay locked for ever.
pub fn fork_running(body: impl FnOnce()) -> Child {
    // SAFETY: the process is single-threaded (the caller's duty, above), so the child
    // starts with every lock free and may run ordinary Rust code.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        body();
        // SAFETY: `_exit` ends the child at once, without running the parent's exit-time
        // work (flushing its buffers a second time, say).
        unsafe { libc::_exit(0) };
    }
    Child { pid }
}

impl Child {
    /// Kills the child and waits until it is gone.
    pub fn stop(self) {
        // SAFETY: `pid` is our own child, not yet reaped, so it names no other process.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        wait_for(self.pid);
    }
}

fn wait_for(pid: libc::pid_t) -> c_int {
    let mut status = 0;
    // SAFETY: `pid` is our own child; `status` is a valid place for the result.
    let result = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(result, pid, "waitpid failed");
    status
}

/// A program and its arguments, ready to be started from a forked child, where nothing may
/// be allocated.
#[derive(Debug)]
pub struct Program<'a> {
    path: &'a CStr,
    /// The arguments as `execve` takes them: pointers, then a null pointer.
    argument_pointers: Vec<*const libc::c_char>,
}

impl<'a> Program<'a> {
    /// `path`, started with `arguments` (the first is the program's name for itself).
    pub fn new(path: &'a CStr, arguments: &'a [&'a CStr]) -> Self {
        let mut argument_pointers: Vec<_> = arguments.iter().map(|a| a.as_ptr()).collect();
        argument_pointers.push(ptr::null());
        Program {
            path,
            argument_pointers,
        }
    }

    /// Forks, runs the program in the child with an empty environment, and waits for it
    /// to exit; whether it exited with status 0.
    pub fn run_to_completion(&self) -> bool {
        let environment: [*const libc::c_char; 1] = [ptr::null()];
        // SAFETY: the child only calls `execve` and `_exit` (both async-signal-safe) on
        // memory prepared before the fork, so it is sound even if other threads existed.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: `path` and every argument are NUL-terminated strings borrowed for
            // `'a`; both pointer arrays end with a null pointer.
            unsafe {
                libc::execve(
                    self.path.as_ptr(),
                    self.argument_pointers.as_ptr(),
                    environment.as_ptr(),
                );
                libc::_exit(127)
            }
        }
        let status = wait_for(pid);
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
    }
}
