//! `exo-loadgen`: the load generator's drivers from the command line, one run each, its
//! result on one line. Owns only the parsing of arguments and the printing of reports.

#![forbid(unsafe_code)]

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use exo_loadgen::{
    BulkOptions, LatencySummary, RequestResponseOptions, UdpEchoOptions, tcp_bulk,
    tcp_request_response, udp_echo,
};

const USAGE: &str = "\
usage: exo-loadgen <driver> ADDR [options]

drivers:
  udp-echo ADDR [--count N] [--size BYTES] [--warmup N] [--timeout-ms MS]
                round-trip latency of datagrams to a UDP echo server
  tcp-rr ADDR [--count N] [--size BYTES] [--warmup N] [--timeout-ms MS]
                transactions per second over one connection to a TCP echo server
  tcp-bulk ADDR [--bytes BYTES] [--write-size BYTES] [--timeout-ms MS]
                throughput into a TCP discard server

ADDR is HOST:PORT. BYTES may end in K, M or G (binary multiples). --timeout-ms is how
long one reply (udp-echo) or one read or write (tcp-rr, tcp-bulk) may take.
";

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match run(&arguments) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(Failure::Usage(message)) => {
            eprint!("error: {message}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Run(error)) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

enum Failure {
    Usage(String),
    Run(exo_loadgen::Error),
}

fn run(arguments: &[String]) -> Result<String, Failure> {
    let [driver, address, options @ ..] = arguments else {
        return Err(Failure::Usage("a driver and an address are needed".into()));
    };
    let target = resolve(address).map_err(Failure::Usage)?;
    let options = Options::parse(options).map_err(Failure::Usage)?;
    match driver.as_str() {
        "udp-echo" => {
            let mut run = UdpEchoOptions::default();
            options.reject(&["--bytes", "--write-size"])?;
            run.count = options.count.unwrap_or(run.count);
            run.size = options.size.unwrap_or(run.size);
            run.warmup = options.warmup.unwrap_or(run.warmup);
            run.reply_timeout = options.timeout.unwrap_or(run.reply_timeout);
            let report = udp_echo(target, run).map_err(Failure::Run)?;
            Ok(format!(
                "udp-echo {target}: {} bytes, sent {}, received {}, lost {}; {}; {} packets",
                run.size,
                report.sent,
                report.received,
                report.lost,
                latency(report.latency.as_ref()),
                report.packets
            ))
        }
        "tcp-rr" => {
            let mut run = RequestResponseOptions::default();
            options.reject(&["--bytes", "--write-size"])?;
            run.count = options.count.unwrap_or(run.count);
            run.size = options.size.unwrap_or(run.size);
            run.warmup = options.warmup.unwrap_or(run.warmup);
            run.io_timeout = options.timeout.unwrap_or(run.io_timeout);
            let report = tcp_request_response(target, run).map_err(Failure::Run)?;
            Ok(format!(
                "tcp-rr {target}: {} bytes, {} transactions in {:.3} s: {:.1} per second; {}; \
                 {} packets",
                run.size,
                report.transactions,
                report.seconds,
                report.transactions_per_second,
                latency(Some(&report.latency)),
                report.packets
            ))
        }
        "tcp-bulk" => {
            let mut run = BulkOptions::default();
            options.reject(&["--count", "--size", "--warmup"])?;
            run.bytes = options.bytes.unwrap_or(run.bytes);
            run.write_size = options.write_size.unwrap_or(run.write_size);
            run.io_timeout = options.timeout.unwrap_or(run.io_timeout);
            let report = tcp_bulk(target, run).map_err(Failure::Run)?;
            Ok(format!(
                "tcp-bulk {target}: {} bytes in {:.3} s: {:.1} Mbit/s ({:.2} MiB/s); {} packets",
                report.bytes,
                report.seconds,
                report.megabits_per_second,
                report.mebibytes_per_second,
                report.packets
            ))
        }
        other => Err(Failure::Usage(format!("no driver `{other}`"))),
    }
}

fn latency(summary: Option<&LatencySummary>) -> String {
    match summary {
        Some(summary) => format!(
            "round trip µs: p50 {:.1}, p99 {:.1} (min {:.1}, mean {:.1}, max {:.1})",
            summary.p50_us, summary.p99_us, summary.min_us, summary.mean_us, summary.max_us
        ),
        None => "no round trip completed".to_string(),
    }
}

fn resolve(address: &str) -> Result<SocketAddr, String> {
    address
        .to_socket_addrs()
        .map_err(|error| format!("address `{address}`: {error}"))?
        .next()
        .ok_or_else(|| format!("address `{address}` names no host"))
}

/// The options given on the command line, each `None` if absent.
#[derive(Default)]
struct Options {
    given: Vec<String>,
    count: Option<u32>,
    size: Option<usize>,
    warmup: Option<u32>,
    bytes: Option<u64>,
    write_size: Option<usize>,
    timeout: Option<Duration>,
}

impl Options {
    fn parse(words: &[String]) -> Result<Self, String> {
        let mut options = Options::default();
        let mut words = words.iter();
        while let Some(word) = words.next() {
            let (name, inline) = match word.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (word.as_str(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| words.next().cloned())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match name {
                "--count" => options.count = Some(number(name, &value()?)?),
                "--size" => options.size = Some(byte_count(name, &value()?)?),
                "--warmup" => options.warmup = Some(number(name, &value()?)?),
                "--bytes" => options.bytes = Some(byte_count(name, &value()?)?),
                "--write-size" => options.write_size = Some(byte_count(name, &value()?)?),
                "--timeout-ms" => {
                    options.timeout = Some(Duration::from_millis(number(name, &value()?)?))
                }
                _ => return Err(format!("unknown option `{word}`")),
            }
            options.given.push(name.to_string());
        }
        Ok(options)
    }

    /// Fails if any of `names` was given: options another driver takes.
    fn reject(&self, names: &[&str]) -> Result<(), Failure> {
        match self
            .given
            .iter()
            .find(|name| names.contains(&name.as_str()))
        {
            Some(name) => Err(Failure::Usage(format!("this driver takes no {name}"))),
            None => Ok(()),
        }
    }
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{name} takes a number, not `{value}`"))
}

/// A count of bytes, with an optional K, M or G suffix (powers of 1024).
fn byte_count<T: TryFrom<u64>>(name: &str, value: &str) -> Result<T, String> {
    let (digits, shift) = match value.strip_suffix(['K', 'k']) {
        Some(digits) => (digits, 10),
        None => match value.strip_suffix(['M', 'm']) {
            Some(digits) => (digits, 20),
            None => match value.strip_suffix(['G', 'g']) {
                Some(digits) => (digits, 30),
                None => (value, 0),
            },
        },
    };
    let too_big = || format!("{name}: `{value}` is too large");
    let count: u64 = number(name, digits)?;
    let bytes = count.checked_mul(1 << shift).ok_or_else(too_big)?;
    T::try_from(bytes).map_err(|_| too_big())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_take_binary_suffixes() {
        assert_eq!(byte_count::<u64>("--bytes", "100"), Ok(100));
        assert_eq!(byte_count::<u64>("--bytes", "4K"), Ok(4096));
        assert_eq!(byte_count::<u64>("--bytes", "16M"), Ok(16 << 20));
        assert_eq!(byte_count::<u64>("--bytes", "2g"), Ok(2 << 30));
        assert!(byte_count::<u64>("--bytes", "M").is_err());
        assert!(byte_count::<u32>("--bytes", "8G").is_err());
    }

    #[test]
    fn options_take_a_separate_or_joined_value() {
        let words: Vec<String> = ["--count", "5", "--size=2K", "--timeout-ms", "250"]
            .map(String::from)
            .to_vec();
        let options = Options::parse(&words).unwrap();
        assert_eq!(options.count, Some(5));
        assert_eq!(options.size, Some(2048));
        assert_eq!(options.timeout, Some(Duration::from_millis(250)));
        assert!(options.reject(&["--bytes"]).is_ok());
        assert!(options.reject(&["--size"]).is_err());
        assert!(Options::parse(&["--count".to_string()]).is_err());
        assert!(Options::parse(&["--fast".to_string()]).is_err());
    }
}
