//! The request head `httpd` reads: its method, its path and whether the
//! connection stays open, and which file a path names under the root.
//!
//! Here rather than in the program so the host can fuzz it: the head comes
//! from any client on the network. It never reads past the head it is given,
//! and [`file_path`] never names a file outside the root (no `..`).

use alloc::format;
use alloc::string::{String, ToString};

/// What `httpd` needs from a request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The target up to any `?`.
    pub path: String,
    /// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    pub keep_alive: bool,
}

/// The request in `head` (its request line and headers, up to the blank
/// line); `None` if it is not one (not UTF-8, not three words, not HTTP/1.x).
pub fn parse(head: &[u8]) -> Option<Request> {
    let text = core::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut words = lines.next()?.split(' ');
    let (method, target, version) = (words.next()?, words.next()?, words.next()?);
    if words.next().is_some() || !version.starts_with("HTTP/1.") {
        return None;
    }
    let mut connection = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("connection")
        {
            connection = Some(value.trim().to_ascii_lowercase());
        }
    }
    let keep_alive = match (version, connection.as_deref()) {
        (_, Some("close")) => false,
        ("HTTP/1.0", Some("keep-alive")) => true,
        ("HTTP/1.0", _) => false,
        _ => true,
    };
    Some(Request {
        method: method.to_string(),
        path: target.split('?').next().unwrap_or("/").to_string(),
        keep_alive,
    })
}

/// The file `path` names under `root` (`index.html` for a directory);
/// `None` (a bad request) unless it is absolute and free of `..`.
pub fn file_path(root: &str, path: &str) -> Option<String> {
    if !path.starts_with('/') || path.split('/').any(|part| part == "..") {
        return None;
    }
    Some(if path.ends_with('/') {
        format!("{root}{path}index.html")
    } else {
        format!("{root}{path}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_line_and_its_connection_header() {
        let request = parse(b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n");
        assert_eq!(
            request,
            Some(Request {
                method: "GET".into(),
                path: "/a".into(),
                keep_alive: false
            })
        );
        let old = parse(b"HEAD / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!old.keep_alive);
        assert!(
            parse(b"HEAD / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n")
                .unwrap()
                .keep_alive
        );
        assert_eq!(parse(b"GET / SPDY/3\r\n\r\n"), None);
        assert_eq!(parse(b"GET  / HTTP/1.1\r\n\r\n"), None);
        assert_eq!(parse(b"GET /\xff HTTP/1.1\r\n\r\n"), None);
    }

    #[test]
    fn file_paths_stay_under_the_root() {
        assert_eq!(file_path("/www", "/"), Some("/www/index.html".into()));
        assert_eq!(file_path("/www", "/a/b.txt"), Some("/www/a/b.txt".into()));
        assert_eq!(file_path("/www", "/a/../../etc"), None);
        assert_eq!(file_path("/www", "relative"), None);
    }
}
