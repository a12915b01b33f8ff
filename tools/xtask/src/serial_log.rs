//! One of QEMU's output streams as it comes in — the guest's serial output, or QEMU's own
//! messages: one reader thread appends, and anyone may wait for a string to appear (a
//! scenario's host function) or take the whole text at the end (the verdict).
//!
//! The bytes are kept as QEMU wrote them and only decoded when the text is taken, so a
//! character split across two reads is not mangled. This module never judges the output.

use std::io::Read;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// Bytes read from the pipe at a time: whatever QEMU has written is seen at once, not
/// only at the end of a line (a prompt has none).
const READ_CHUNK: usize = 4096;

#[derive(Clone, Debug, Default)]
pub struct SerialLog {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    bytes: Vec<u8>,
    /// The guest closed its output (QEMU exited or was killed): nothing more will come.
    ended: bool,
}

/// Why a wait for serial output gave up.
#[derive(Debug, PartialEq, Eq)]
pub enum WaitFailure {
    /// The output ended (the guest is gone) without showing the string.
    Ended,
    TimedOut,
}

impl SerialLog {
    pub fn new() -> Self {
        SerialLog::default()
    }

    /// Reads `pipe` to its end on a new thread, appending as the bytes arrive, then marks
    /// the log ended.
    pub fn fill_from(&self, pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<()> {
        let log = self.clone();
        thread::spawn(move || {
            if let Some(mut pipe) = pipe {
                let mut buffer = [0u8; READ_CHUNK];
                // A read error only truncates what we show; the exit status still decides.
                while let Ok(count @ 1..) = pipe.read(&mut buffer) {
                    log.append(&buffer[..count]);
                }
            }
            log.end();
        })
    }

    pub fn append(&self, bytes: &[u8]) {
        self.lock().bytes.extend_from_slice(bytes);
        self.shared.changed.notify_all();
    }

    pub fn end(&self) {
        self.lock().ended = true;
        self.shared.changed.notify_all();
    }

    /// Everything so far, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().bytes).into_owned()
    }

    /// Waits until the output so far contains `wanted`: at most `timeout`, or with `None`
    /// until the output ends (the guest's own timeout then bounds the wait).
    pub fn wait_for(&self, wanted: &str, timeout: Option<Duration>) -> Result<(), WaitFailure> {
        let wanted = wanted.as_bytes();
        // Bytes before this offset have been searched; a match may still straddle it.
        let mut searched: usize = 0;
        self.wait_until(timeout, |bytes| {
            let start = searched.saturating_sub(wanted.len().saturating_sub(1));
            searched = bytes.len();
            contains(&bytes[start..], wanted).then_some(())
        })
    }

    /// Waits until the output so far holds a whole line (ended by a newline) containing
    /// `wanted`, and returns the first such line without its line ending: at most
    /// `timeout`, or with `None` until the output ends.
    pub fn wait_for_line(
        &self,
        wanted: &str,
        timeout: Option<Duration>,
    ) -> Result<String, WaitFailure> {
        self.wait_until(timeout, |bytes| {
            let text = String::from_utf8_lossy(bytes);
            let complete = text.rfind('\n').map_or("", |end| &text[..end]);
            complete
                .lines()
                .find(|line| line.contains(wanted))
                .map(|line| line.trim_end_matches('\r').to_string())
        })
    }

    /// Waits until `found` finds what it looks for in the output so far, looking again
    /// whenever more arrives: at most `timeout`, or with `None` until the output ends.
    fn wait_until<T>(
        &self,
        timeout: Option<Duration>,
        mut found: impl FnMut(&[u8]) -> Option<T>,
    ) -> Result<T, WaitFailure> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let mut state = self.lock();
        loop {
            if let Some(result) = found(&state.bytes) {
                return Ok(result);
            }
            if state.ended {
                return Err(WaitFailure::Ended);
            }
            state = match deadline {
                None => self
                    .shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(WaitFailure::TimedOut);
                    }
                    self.shared
                        .changed
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    /// A reader or waiter that panicked leaves the bytes intact, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether `wanted` occurs in `bytes`: the one byte search here, for serial output and
/// captured frames alike.
pub fn contains(bytes: &[u8], wanted: &[u8]) -> bool {
    wanted.is_empty() || bytes.windows(wanted.len()).any(|window| window == wanted)
}

/// The last `count` lines of `text`.
pub fn last_lines(text: &str, count: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_keeps_the_end() {
        assert_eq!(last_lines("a\nb\r\nc\n", 2), ["b", "c"]);
        assert_eq!(last_lines("a\nb", 5), ["a", "b"]);
        assert!(last_lines("", 3).is_empty());
    }

    const SHORT: Duration = Duration::from_millis(50);
    const LONG: Duration = Duration::from_secs(10);

    #[test]
    fn a_string_split_across_appends_is_found() {
        let log = SerialLog::new();
        log.append(b"net-test: two bin");
        assert_eq!(
            log.wait_for("two bindings", Some(SHORT)),
            Err(WaitFailure::TimedOut)
        );
        log.append(b"dings ready\n");
        assert_eq!(log.wait_for("two bindings ready", Some(SHORT)), Ok(()));
        assert_eq!(log.wait_for("", Some(SHORT)), Ok(()));
    }

    #[test]
    fn a_waiter_wakes_when_the_text_arrives_or_the_output_ends() {
        let log = SerialLog::new();
        let writer = log.clone();
        let appender = thread::spawn(move || {
            thread::sleep(SHORT);
            writer.append("ready ✓\n".as_bytes());
            thread::sleep(SHORT);
            writer.end();
        });
        assert_eq!(log.wait_for("ready", Some(LONG)), Ok(()));
        assert_eq!(log.wait_for("never", None), Err(WaitFailure::Ended));
        appender.join().unwrap();
        assert_eq!(log.text(), "ready ✓\n");
    }

    #[test]
    fn a_line_is_returned_once_it_is_whole() {
        let log = SerialLog::new();
        log.append(b"$ udp-echo &\r\nudp-echo: stack: frames in 3");
        assert_eq!(
            log.wait_for_line("udp-echo: stack:", Some(SHORT)),
            Err(WaitFailure::TimedOut)
        );
        log.append(b", out 3\r\nudp-echo: stack: a second line\n");
        assert_eq!(
            log.wait_for_line("udp-echo: stack:", Some(SHORT))
                .as_deref(),
            Ok("udp-echo: stack: frames in 3, out 3")
        );
        log.end();
        assert_eq!(
            log.wait_for_line("tcp-echo:", None),
            Err(WaitFailure::Ended)
        );
    }

    #[test]
    fn the_byte_search_finds_a_string_anywhere() {
        assert!(contains(b"..echo:A0..", b"echo:A0"));
        assert!(contains(b"echo:A0", b"echo:A0"));
        assert!(!contains(b"echo:A", b"echo:A0"));
        assert!(contains(b"", b""));
    }

    #[test]
    fn a_character_split_between_reads_survives() {
        let log = SerialLog::new();
        let check = "✓".as_bytes();
        log.append(&check[..1]);
        log.append(&check[1..]);
        assert_eq!(log.text(), "✓");
    }

    #[test]
    fn filling_from_a_pipe_ends_the_log() {
        let log = SerialLog::new();
        log.fill_from(Some(&b"line one\nline two\n"[..]))
            .join()
            .unwrap();
        assert_eq!(log.wait_for("line two", Some(SHORT)), Ok(()));
        assert_eq!(log.wait_for("line three", None), Err(WaitFailure::Ended));
    }
}
