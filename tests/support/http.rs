//! A plain HTTP GET for tests, without a client library.

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

/// `q` for a URL's query: letters and digits as they are, the rest %-encoded.
pub fn urlencode(q: &str) -> String {
    q.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}
