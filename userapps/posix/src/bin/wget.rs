//! Fetches a URL over HTTP/1.1: `wget [-O FILE] http://ADDRESS[:PORT]/PATH`.
//! The address is an IPv4 literal (there is no DNS; under QEMU's user-mode
//! network the host is 10.0.2.2). The body goes to FILE (`-` for standard
//! output; by default the last part of the path, or `index.html`), and a
//! summary line says what came: `wget: 200 OK, N bytes`.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};

use libos_posixish::fs::{self, OpenOptions};
use libos_posixish::net::{self, TcpStream};
use libos_posixish::{Errno, args, println};

libos_posixish::main!(main);

fn main(arguments: &[&str]) -> i32 {
    let operands = args::operands(arguments, &["-O"]);
    let [url] = operands[..] else {
        println!("usage: wget [-O FILE] http://ADDRESS[:PORT]/PATH");
        return 2;
    };
    let Some((peer, path)) = parse_url(url) else {
        println!("wget: {url}: not an http:// URL with an IPv4 address");
        return 2;
    };
    let output = args::value(arguments, "-O").map_or_else(
        || {
            let name = path.rsplit('/').next().unwrap_or("");
            String::from(if name.is_empty() { "index.html" } else { name })
        },
        String::from,
    );
    match fetch(peer, &path) {
        Ok((status, body)) => {
            if let Err(error) = save(&output, &body) {
                println!("wget: cannot write {output}: {error:?}");
                return 1;
            }
            println!("wget: {status}, {} bytes", body.len());
            if status.starts_with("200") { 0 } else { 1 }
        }
        Err(error) => {
            println!("wget: {peer}: {error:?}");
            1
        }
    }
}

fn parse_url(url: &str) -> Option<(SocketAddrV4, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, port.parse().ok()?),
        None => (authority, 80),
    };
    let address: Ipv4Addr = host.parse().ok()?;
    Some((SocketAddrV4::new(address, port), String::from(path)))
}

/// Sends the request and reads the whole response: the status (code and
/// reason) and the body.
fn fetch(peer: SocketAddrV4, path: &str) -> Result<(String, Vec<u8>), Errno> {
    let stream = TcpStream::connect(peer)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {peer}\r\nUser-Agent: exo-wget\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk)? {
            0 => break,
            read => response.extend_from_slice(&chunk[..read]),
        }
    }
    drop(stream);
    net::finish(net::FINISH_TICKS);
    let head_end = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or(Errno::EINVAL)?;
    let mut body = response.split_off(head_end + 4);
    let head = core::str::from_utf8(&response[..head_end]).map_err(|_| Errno::EINVAL)?;
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_once(' '))
        .map(|(_, status)| String::from(status))
        .ok_or(Errno::EINVAL)?;
    // Trust Content-Length over the end of input when it is given.
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    if let Some(length) = length {
        body.truncate(length);
    }
    Ok((status, body))
}

fn save(path: &str, body: &[u8]) -> Result<(), Errno> {
    if path == "-" {
        fs::write(1, body)?;
        return Ok(());
    }
    let fd = fs::open(
        path,
        OpenOptions {
            write: true,
            create: true,
            truncate: true,
            ..OpenOptions::default()
        },
    )?;
    let mut rest = body;
    while !rest.is_empty() {
        let written = fs::write(fd, rest)?;
        rest = &rest[written..];
    }
    fs::close(fd)
}
