//! httpd's request head (`libos-posixish/policy/src/http_request.rs`): any client on the
//! network writes it.

use posixish_policy::http_request::{file_path, parse};

use super::Target;

pub const TARGET: Target = Target {
    name: "http_request",
    checks: "any head parses or is refused; a path never names a file outside the root",
    check,
};

fn check(head: &[u8]) {
    let Some(request) = parse(head) else {
        return;
    };
    let text = core::str::from_utf8(head).expect("only UTF-8 parses");
    assert!(!request.path.contains('?'));
    assert!(text.contains(&request.path));
    // The last `Connection` header decides.
    let closed = [head, b"\r\nConnection: close"].concat();
    if let Some(closed) = parse(&closed) {
        assert!(
            !closed.keep_alive,
            "`Connection: close` kept the connection"
        );
    }
    if let Some(file) = file_path("/www", &request.path) {
        let below = file.strip_prefix("/www/").expect("under the root");
        assert!(below.split('/').all(|part| part != ".."), "{file} escapes");
    }
}
