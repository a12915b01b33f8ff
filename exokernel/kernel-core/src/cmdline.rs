//! The kernel command line: space-separated words, each `key=value` or a bare `flag`.
//!
//! QEMU passes it with `-append`; `cargo xtask` sets it. When a key appears
//! twice the last word wins, so a later setting overrides a default.

/// A parsed view of the command line; it borrows the text and never copies it.
#[derive(Clone, Copy, Debug)]
pub struct CommandLine<'a> {
    text: &'a str,
}

impl<'a> CommandLine<'a> {
    pub fn new(text: &'a str) -> Self {
        Self { text }
    }

    /// The whole text, as given.
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// The value of `key=value`, or `None` when the key is absent or has no `=`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.text
            .split_ascii_whitespace()
            .filter_map(|word| word.split_once('='))
            .filter(|(k, _)| *k == key)
            .map(|(_, value)| value)
            .next_back()
    }

    /// The value of `key` as a number (decimal, or hex with `0x`).
    /// `Some(Err(..))` when it is present but not a number, so callers can say so.
    pub fn get_u64(&self, key: &str) -> Option<Result<u64, &'a str>> {
        let text = self.get(key)?;
        let parsed = match text.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => text.parse(),
        };
        Some(parsed.map_err(|_| text))
    }

    /// Whether a bare word `flag` is present.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.text.split_ascii_whitespace().any(|word| word == flag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_values_and_flags() {
        let line = CommandLine::new("  log=debug test=boot  quiet ");
        assert_eq!(line.get("log"), Some("debug"));
        assert_eq!(line.get("test"), Some("boot"));
        assert_eq!(line.get("missing"), None);
        assert!(line.has_flag("quiet"));
        assert!(!line.has_flag("log"), "a key=value word is not a flag");
        assert_eq!(line.get("quiet"), None, "a flag has no value");
    }

    #[test]
    fn last_word_wins() {
        assert_eq!(
            CommandLine::new("log=info log=trace").get("log"),
            Some("trace")
        );
    }

    #[test]
    fn values_may_contain_equals_and_be_empty() {
        let line = CommandLine::new("init=/bin/sh=x empty=");
        assert_eq!(line.get("init"), Some("/bin/sh=x"));
        assert_eq!(line.get("empty"), Some(""));
    }

    #[test]
    fn numbers() {
        let line = CommandLine::new("hz=1000 base=0x1f bad=12k");
        assert_eq!(line.get_u64("hz"), Some(Ok(1000)));
        assert_eq!(line.get_u64("base"), Some(Ok(0x1f)));
        assert_eq!(line.get_u64("bad"), Some(Err("12k")));
        assert_eq!(line.get_u64("none"), None);
    }
}
