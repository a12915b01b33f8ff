//! HTTP from the host to a guest's server: the real `curl` for what a user would do, and a
//! small HTTP/1.1 reader over one `TcpStream` for what curl hides (the exact bytes of a
//! response, two requests on one connection).
//!
//! Only what the scenarios need: GET and HEAD, responses framed by `Content-Length`.
//! Nothing here judges a response; the caller compares it with what it expects.
//!
//! The reader is written by hand because it must be strict where parsers are lenient: it
//! refuses a header line ended by a bare LF, which httparse accepts (checked), so the
//! guest's server is held to CRLF; and it shows which requests share a connection, which an
//! HTTP client such as ureq hides in its connection pool. Where leniency is what a user
//! meets, curl is the client.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long one curl transfer may take, connecting included (`--max-time`): a bound on a
/// guest that never answers, not a measure of speed.
const CURL_MAX_TIME: Duration = Duration::from_secs(60);
/// The longest header section the reader accepts before calling the response malformed.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// A response's status and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// The `Content-Length` header's value, if the response had one.
    pub content_length: Option<usize>,
    pub body: Vec<u8>,
}

/// GETs `url` with curl; its body comes back whole, whatever the status.
pub fn curl_get(url: &str) -> Result<Response, String> {
    let output = curl()
        .args(["--output", "-", "--write-out", "%{stderr}%{http_code}"])
        .arg(url)
        .output()
        .map_err(cannot_start_curl)?;
    let report = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("curl {url}: {}", report.trim()));
    }
    let status = report
        .trim()
        .parse()
        .map_err(|_| format!("curl {url}: no status code in {report:?}"))?;
    Ok(Response {
        status,
        content_length: None,
        body: output.stdout,
    })
}

/// GETs every URL of `urls` in one curl run, which keeps one connection open for them if
/// the server lets it; returns each transfer's status and the number of connections curl
/// opened for it (0: it reused the one before).
pub fn curl_get_reusing(urls: &[&str]) -> Result<Vec<(u16, u32)>, String> {
    let mut command = curl();
    command.args(["--write-out", "%{stderr}%{http_code} %{num_connects}\n"]);
    for url in urls {
        command.args(["--output", "/dev/null", url]);
    }
    let output = command.output().map_err(cannot_start_curl)?;
    let report = String::from_utf8_lossy(&output.stderr);
    let all = urls.join(" ");
    if !output.status.success() {
        return Err(format!("curl {all}: {}", report.trim()));
    }
    let transfers: Option<Vec<(u16, u32)>> = report
        .lines()
        .map(|line| {
            let (status, connects) = line.split_once(' ')?;
            Some((status.parse().ok()?, connects.parse().ok()?))
        })
        .collect();
    match transfers {
        Some(transfers) if transfers.len() == urls.len() => Ok(transfers),
        _ => Err(format!(
            "curl {all}: expected one `status connections` line per URL, got {report:?}"
        )),
    }
}

/// curl, quiet but for errors, bounded in time, with no input and no configuration file of
/// the user's.
fn curl() -> Command {
    let mut command = Command::new("curl");
    command
        .args(["--disable", "--silent", "--show-error"])
        .args(["--max-time", &CURL_MAX_TIME.as_secs().to_string()])
        .stdin(Stdio::null());
    command
}

fn cannot_start_curl(error: std::io::Error) -> String {
    if error.kind() == ErrorKind::NotFound {
        "cannot start curl: it is not installed (apt-get install curl)".to_string()
    } else {
        format!("cannot start curl: {error}")
    }
}

/// An HTTP/1.1 client on one connection: requests written whole, responses read one at a
/// time, so several can share the connection (keep-alive).
pub struct Connection {
    reader: BufReader<TcpStream>,
    /// For messages: `127.0.0.1:PORT`.
    peer: String,
}

impl Connection {
    /// Takes over `stream`; every read and write on it may wait at most `timeout`.
    pub fn new(stream: TcpStream, timeout: Duration) -> Result<Self, String> {
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "the server".to_string(), |address| address.to_string());
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .map_err(|error| format!("{peer}: {error}"))?;
        Ok(Connection {
            reader: BufReader::new(stream),
            peer,
        })
    }

    /// Sends `method path` and reads the response; a HEAD response has no body, whatever
    /// its `Content-Length` says.
    pub fn request(&mut self, method: &str, path: &str) -> Result<Response, String> {
        let request = format!("{method} {path} HTTP/1.1\r\nHost: exo\r\nUser-Agent: xtask\r\n\r\n");
        let what = format!("{}: {method} {path}", self.peer);
        self.reader
            .get_mut()
            .write_all(request.as_bytes())
            .map_err(|error| format!("{what}: sending the request: {error}"))?;
        read_response(&mut self.reader, method == "HEAD")
            .map_err(|error| format!("{what}: {error}"))
    }
}

/// Reads one response from `reader`: the status line, the headers, and a body of
/// `Content-Length` bytes (none for a HEAD request).
fn read_response(reader: &mut impl BufRead, head: bool) -> Result<Response, String> {
    let mut header_bytes = 0;
    let mut next_line = |reader: &mut dyn BufRead| -> Result<String, String> {
        let mut line = Vec::new();
        let read = reader
            .take((MAX_HEADER_BYTES - header_bytes) as u64)
            .read_until(b'\n', &mut line)
            .map_err(|error| format!("reading the response: {error}"))?;
        header_bytes += read;
        match line.strip_suffix(b"\r\n") {
            Some(line) => Ok(String::from_utf8_lossy(line).into_owned()),
            None if read == 0 => Err("the connection closed before a response".to_string()),
            None if header_bytes >= MAX_HEADER_BYTES => {
                Err(format!("no end of headers in {MAX_HEADER_BYTES} bytes"))
            }
            None => Err(format!(
                "a header line not ended by CRLF: {:?}",
                String::from_utf8_lossy(&line)
            )),
        }
    };
    let status_line = next_line(reader)?;
    let status = match status_line.split(' ').collect::<Vec<_>>()[..] {
        ["HTTP/1.1", code, ..] => code.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("not an HTTP/1.1 status line: {status_line:?}"))?;
    let mut content_length = None;
    loop {
        let line = next_line(reader)?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("a header without a colon: {line:?}"));
        };
        if name.eq_ignore_ascii_case("content-length") {
            let length = value
                .trim()
                .parse()
                .map_err(|_| format!("a Content-Length that is not a number: {line:?}"))?;
            content_length = Some(length);
        }
    }
    let mut body = Vec::new();
    if !head {
        let length =
            content_length.ok_or_else(|| format!("status {status} without a Content-Length"))?;
        body.resize(length, 0);
        reader.read_exact(&mut body).map_err(|error| {
            format!("reading a body of {length} bytes (Content-Length): {error}")
        })?;
    }
    Ok(Response {
        status,
        content_length,
        body,
    })
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, TcpListener};
    use std::thread;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    fn response(text: &str, head: bool) -> Result<Response, String> {
        read_response(&mut text.as_bytes(), head)
    }

    #[test]
    fn a_response_is_read_to_its_content_length() {
        let text = "HTTP/1.1 200 OK\r\ncontent-length: 14\r\nConnection: keep-alive\r\n\r\n\
                    Hello from exoHTTP/1.1 404";
        let read = response(text, false).unwrap();
        assert_eq!(
            read,
            Response {
                status: 200,
                content_length: Some(14),
                body: b"Hello from exo".to_vec()
            }
        );
        let head = response("HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n", true).unwrap();
        assert_eq!((head.content_length, head.body.len()), (Some(14), 0));
    }

    #[test]
    fn malformed_responses_say_what_is_wrong() {
        let error = |text: &str| response(text, false).unwrap_err();
        assert_eq!(error(""), "the connection closed before a response");
        assert_eq!(
            error("HTTP/1.0 200 OK\r\n\r\n"),
            "not an HTTP/1.1 status line: \"HTTP/1.0 200 OK\""
        );
        assert_eq!(
            error("HTTP/1.1 200 OK\r\n\r\n"),
            "status 200 without a Content-Length"
        );
        assert_eq!(
            error("HTTP/1.1 200 OK\nContent-Length: 1\n\n"),
            "a header line not ended by CRLF: \"HTTP/1.1 200 OK\\n\""
        );
        assert!(
            error("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nshort")
                .starts_with("reading a body of 20 bytes (Content-Length): ")
        );
        let endless = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(MAX_HEADER_BYTES));
        assert_eq!(
            error(&endless),
            format!("no end of headers in {MAX_HEADER_BYTES} bytes")
        );
    }

    /// A stand-in for httpd: answers each request on one connection with `Hello` (or
    /// `404 not found`), as many as come, then closes.
    fn stand_in_server() -> (u16, thread::JoinHandle<usize>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let serving = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut served = 0;
            loop {
                let mut request = String::new();
                while !request.ends_with("\r\n\r\n") {
                    if reader.read_line(&mut request).unwrap() == 0 {
                        return served;
                    }
                }
                let (status, body) =
                    if request.starts_with("GET / ") || request.starts_with("HEAD / ") {
                        ("200 OK", "Hello")
                    } else {
                        ("404 Not Found", "404 not found")
                    };
                let mut answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                if !request.starts_with("HEAD") {
                    answer.push_str(body);
                }
                reader.get_mut().write_all(answer.as_bytes()).unwrap();
                served += 1;
            }
        });
        (port, serving)
    }

    #[test]
    fn requests_share_one_connection() {
        let (port, serving) = stand_in_server();
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        let mut connection = Connection::new(stream, TIMEOUT).unwrap();
        let head = connection.request("HEAD", "/").unwrap();
        assert_eq!((head.status, head.content_length), (200, Some(5)));
        let get = connection.request("GET", "/").unwrap();
        assert_eq!((get.status, &get.body[..]), (200, &b"Hello"[..]));
        let missing = connection.request("GET", "/nothing").unwrap();
        assert_eq!(
            (missing.status, &missing.body[..]),
            (404, &b"404 not found"[..])
        );
        drop(connection);
        assert_eq!(serving.join().unwrap(), 3);
    }

    #[test]
    fn curl_fetches_and_reuses_its_connection() {
        let (port, serving) = stand_in_server();
        let url = format!("http://127.0.0.1:{port}/");
        let missing = format!("http://127.0.0.1:{port}/nothing");
        assert_eq!(
            curl_get_reusing(&[&url, &missing]).unwrap(),
            [(200, 1), (404, 0)]
        );
        assert_eq!(serving.join().unwrap(), 2);
        let (port, serving) = stand_in_server();
        let response = curl_get(&format!("http://127.0.0.1:{port}/")).unwrap();
        assert_eq!((response.status, &response.body[..]), (200, &b"Hello"[..]));
        serving.join().unwrap();
        let error = curl_get(&format!("http://127.0.0.1:{port}/")).unwrap_err();
        assert!(error.contains("curl: (7)"), "{error}");
    }
}
