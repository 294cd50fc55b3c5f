//! Plain HTTP GETs and POSTs for tests, without a client library.

use std::io::{Read, Write};

/// GET over HTTP/1.0 (the answer comes whole, not in chunks); the raw
/// response, or nothing when the server does not answer.
pub fn http_get(addr: &str, path: &str) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let mut r = String::new();
    let _ = s.read_to_string(&mut r);
    r
}

/// POSTs `body` to `path` on 127.0.0.1:`port` with extra header lines
/// (each ending in CRLF): the status, or 0 when the server is not there or
/// the connection broke.
pub fn http_post(port: u16, path: &str, headers: &str, body: &[u8]) -> u16 {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(120)));
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if s.write_all(head.as_bytes()).and_then(|_| s.write_all(body)).is_err() {
        return 0;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// `q` for a URL's query: letters and digits as they are, the rest %-encoded.
pub fn urlencode(q: &str) -> String {
    q.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}
