//! Reading a program's options: `-x VALUE` pairs before or among its words.
//!
//! Pure logic, tested on the host; libos-posixish re-exports it as `args`.

use core::str::FromStr;

/// The word after `flag` in `arguments`, if `flag` is there.
pub fn value<'a>(arguments: &[&'a str], flag: &str) -> Option<&'a str> {
    let at = arguments.iter().position(|word| *word == flag)?;
    arguments.get(at + 1).copied()
}

/// The value after `flag` parsed as a `T`: `Ok(None)` if `flag` is absent,
/// `Err` naming the flag if its value is missing or does not parse.
pub fn parsed<T: FromStr>(
    arguments: &[&str],
    flag: &str,
) -> Result<Option<T>, alloc::string::String> {
    if !arguments.contains(&flag) {
        return Ok(None);
    }
    value(arguments, flag)
        .and_then(|word| word.parse().ok())
        .map(Some)
        .ok_or_else(|| alloc::format!("{flag} needs a value"))
}

/// The words that are neither flags in `flags` nor their values, after the
/// program's name.
pub fn operands<'a>(arguments: &[&'a str], flags: &[&str]) -> alloc::vec::Vec<&'a str> {
    let mut operands = alloc::vec::Vec::new();
    let mut words = arguments.iter().skip(1);
    while let Some(word) = words.next() {
        if flags.contains(word) {
            words.next();
        } else {
            operands.push(*word);
        }
    }
    operands
}

/// A server's usual options: `-p PORT` (else `default_port`) and `-n COUNT`
/// (how many to serve before stopping; `None`: for ever).
pub fn port_and_count(
    arguments: &[&str],
    default_port: u16,
) -> Result<(u16, Option<u64>), alloc::string::String> {
    let port = parsed::<u16>(arguments, "-p")?.unwrap_or(default_port);
    Ok((port, parsed::<u64>(arguments, "-n")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORDS: [&str; 6] = ["echo-server", "-p", "7", "left", "-n", "x"];

    #[test]
    fn a_flag_value_is_the_word_after_it() {
        assert_eq!(value(&WORDS, "-p"), Some("7"));
        assert_eq!(value(&WORDS, "-q"), None);
        assert_eq!(value(&["p", "-p"], "-p"), None);
    }

    #[test]
    fn parsed_values_name_the_flag_when_they_do_not_parse() {
        assert_eq!(parsed::<u16>(&WORDS, "-p"), Ok(Some(7)));
        assert_eq!(parsed::<u16>(&WORDS, "-q"), Ok(None));
        assert_eq!(parsed::<u64>(&WORDS, "-n"), Err("-n needs a value".into()));
    }

    #[test]
    fn operands_skip_flags_and_their_values() {
        assert_eq!(operands(&WORDS, &["-p", "-n"]), ["left"]);
        assert_eq!(operands(&WORDS, &[]), ["-p", "7", "left", "-n", "x"]);
    }

    #[test]
    fn a_server_reads_its_port_and_count() {
        assert_eq!(port_and_count(&["s", "-n", "3"], 80), Ok((80, Some(3))));
        assert_eq!(port_and_count(&["s", "-p", "8080"], 80), Ok((8080, None)));
        assert!(port_and_count(&["s", "-p", "http"], 80).is_err());
    }
}
