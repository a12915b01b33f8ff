//! An HTTP/1.1 server for the files of the file system: `GET` and `HEAD`,
//! keep-alive (HTTP/1.1's default), `Content-Length`, 404 for what is not
//! there. One thread per connection, on libos-posixish's blocking sockets:
//! a thread waiting for its client is parked, and when all are, the process
//! sleeps in the kernel until frames arrive.
//!
//! `httpd [-p PORT] [-r ROOT] [-n REQUESTS]`: port 80 and root `/www` by
//! default (`/` is `/index.html`); with `-n`, it stops once it has answered
//! that many requests and its clients have gone.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use libos_net::{PollEntry, Readiness};
use libos_posixish::fs::{self, OpenOptions};
use libos_posixish::http_request::{self, Request};
use libos_posixish::net::{self, TcpListener, TcpStream};
use libos_posixish::{Errno, args, println, thread};

libos_posixish::main!(main);

/// The longest request head (request line and headers) accepted.
const MAX_HEAD: usize = 8 * 1024;
/// The most a file may be to be served (the file system's own limit).
const MAX_FILE: usize = 16 << 20;

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    connections_open: AtomicU64,
}

fn main(arguments: &[&str]) -> i32 {
    let (port, limit) = match args::port_and_count(arguments, 80) {
        Ok(options) => options,
        Err(message) => {
            println!("httpd: {message}; usage: httpd [-p PORT] [-r ROOT] [-n REQUESTS]");
            return 2;
        }
    };
    let root = args::value(arguments, "-r")
        .unwrap_or("/www")
        .trim_end_matches('/')
        .to_string();
    let listener = match TcpListener::bind(port, 64) {
        Ok(listener) => listener,
        Err(error) => {
            println!("httpd: cannot listen on tcp port {port}: {error:?}");
            return 1;
        }
    };
    println!("httpd: listening on tcp port {port}, serving {root}");
    let counts = Arc::new(Counts::default());
    loop {
        if let Some(limit) = limit
            && counts.requests.load(Ordering::SeqCst) >= limit
            && counts.connections_open.load(Ordering::SeqCst) == 0
        {
            break;
        }
        // With a limit, look at the counts every few ticks; else just wait.
        let timeout = limit.map(|_| 10);
        let mut entry = [PollEntry::new(listener.id(), Readiness::READABLE)];
        if net::poll(&mut entry, timeout).unwrap_or(0) == 0 {
            continue;
        }
        let Ok((stream, _peer)) = listener.accept() else {
            continue;
        };
        counts.connections_open.fetch_add(1, Ordering::SeqCst);
        let (counts, root) = (counts.clone(), root.clone());
        drop(thread::spawn(move || {
            serve(&stream, &root, &counts);
            drop(stream);
            counts.connections_open.fetch_sub(1, Ordering::SeqCst);
        }));
    }
    net::finish(net::FINISH_TICKS);
    println!(
        "httpd: served {} requests",
        counts.requests.load(Ordering::SeqCst)
    );
    println!("httpd: stack: {}", net::report());
    0
}

/// A parsed request head.
/// Answers requests on one connection until the client closes it or asks to.
fn serve(stream: &TcpStream, root: &str, counts: &Counts) {
    let mut buffered: Vec<u8> = Vec::new();
    loop {
        let Some(head_end) = read_head(stream, &mut buffered) else {
            return;
        };
        let head: Vec<u8> = buffered.drain(..head_end).collect();
        let request = http_request::parse(&head);
        let keep_alive = request.as_ref().is_some_and(|request| request.keep_alive);
        let response = match request {
            Some(request) => respond(&request, root),
            None => response(
                400,
                "Bad Request",
                "text/plain",
                b"400 bad request\n",
                false,
            ),
        };
        if stream.write_all(&response).is_err() {
            return;
        }
        counts.requests.fetch_add(1, Ordering::SeqCst);
        if !keep_alive {
            return;
        }
    }
}

/// Reads until `buffered` holds a whole request head; its length (up to and
/// including the blank line), or `None` at the end of input, on an error, or
/// for a head over `MAX_HEAD`.
fn read_head(stream: &TcpStream, buffered: &mut Vec<u8>) -> Option<usize> {
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(at) = buffered.windows(4).position(|window| window == b"\r\n\r\n") {
            return Some(at + 4);
        }
        if buffered.len() > MAX_HEAD {
            return None;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(read) => buffered.extend_from_slice(&chunk[..read]),
        }
    }
}

fn respond(request: &Request, root: &str) -> Vec<u8> {
    let head_only = request.method == "HEAD";
    if request.method != "GET" && !head_only {
        return response(
            501,
            "Not Implemented",
            "text/plain",
            b"501 not implemented\n",
            head_only,
        );
    }
    let Some(path) = http_request::file_path(root, &request.path) else {
        return response(
            400,
            "Bad Request",
            "text/plain",
            b"400 bad request\n",
            head_only,
        );
    };
    match read_file(&path) {
        Ok(contents) => response(200, "OK", content_type(&path), &contents, head_only),
        Err(_) => response(
            404,
            "Not Found",
            "text/plain",
            b"404 not found\n",
            head_only,
        ),
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn response(status: u16, reason: &str, kind: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let mut bytes = format!(
        "HTTP/1.1 {status} {reason}\r\nServer: exo-httpd\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        bytes.extend_from_slice(body);
    }
    bytes
}

fn read_file(path: &str) -> Result<Vec<u8>, Errno> {
    let fd = fs::open(
        path,
        OpenOptions {
            read: true,
            ..OpenOptions::default()
        },
    )?;
    let mut contents = Vec::new();
    let mut chunk = [0u8; 4096];
    let result = loop {
        match fs::read(fd, &mut chunk) {
            Ok(0) => break Ok(contents),
            Ok(read) if contents.len() + read <= MAX_FILE => {
                contents.extend_from_slice(&chunk[..read]);
            }
            Ok(_) => break Err(Errno::EFBIG),
            Err(error) => break Err(error),
        }
    };
    let _ = fs::close(fd);
    result
}
