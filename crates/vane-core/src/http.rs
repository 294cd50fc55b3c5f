//! What a plugin serves on the agent's HTTP port (`Context::serve`): a GET
//! route's handler, the request it reads (path and query) and its response,
//! whole or a stream (server-sent events).

use std::sync::Arc;

use tokio::sync::mpsc;

/// A GET request as a handler sees it.
#[derive(Clone, Debug, Default)]
pub struct HttpRequest {
    /// The path, as sent (`/board/host`).
    pub path: String,
    /// The query string after `?`, as sent (empty without one).
    pub query: String,
}

impl HttpRequest {
    pub fn new(path: impl Into<String>, query: impl Into<String>) -> HttpRequest {
        HttpRequest { path: path.into(), query: query.into() }
    }

    /// The first value of query parameter `name`, percent-decoded (`+` is a space).
    pub fn param(&self, name: &str) -> Option<String> {
        form_pairs(self.query.as_bytes()).into_iter().find_map(|(k, v)| (k == name).then_some(v))
    }
}

/// `application/x-www-form-urlencoded` pairs (a query string, a form body),
/// percent-decoded; a malformed escape stays as written.
pub fn form_pairs(q: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &[u8]) -> String {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => {
                    match std::str::from_utf8(&s[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    q.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|b| *b == b'=') {
            Some(i) => (decode(&p[..i]), decode(&p[i + 1..])),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// What a response carries.
#[derive(Debug)]
pub enum Body {
    Text(String),
    /// Bytes compiled into the binary (a page's script or style sheet).
    Static(&'static [u8]),
    /// Chunks sent as they come until the sender drops (server-sent events).
    Stream(mpsc::Receiver<String>),
}

/// What an HTTP route answers.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub content_type: String,
    pub body: Body,
}

impl HttpResponse {
    pub fn text(status: u16, content_type: &str, body: impl Into<String>) -> HttpResponse {
        HttpResponse { status, content_type: content_type.into(), body: Body::Text(body.into()) }
    }

    /// 200 with a JSON document.
    pub fn json(body: impl Into<String>) -> HttpResponse {
        HttpResponse::text(200, "application/json", body)
    }

    /// 404 naming what was not found.
    pub fn not_found(what: impl std::fmt::Display) -> HttpResponse {
        HttpResponse::text(404, "text/plain; charset=utf-8", format!("{what}\n"))
    }
}

/// A GET route on the agent's HTTP port. A route whose path ends in `/`
/// answers every path below it.
pub type HttpHandler = Arc<dyn Fn(&HttpRequest) -> HttpResponse + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_found_and_decoded() {
        let r = HttpRequest::new("/x", "a=1&series=cpu%2Chost%3Dh+1&flag&bad=%zz&end=%4");
        assert_eq!(r.param("a").as_deref(), Some("1"));
        assert_eq!(r.param("series").as_deref(), Some("cpu,host=h 1"));
        assert_eq!(r.param("flag").as_deref(), Some(""));
        assert_eq!(r.param("bad").as_deref(), Some("%zz"));
        assert_eq!(r.param("end").as_deref(), Some("%4"));
        assert_eq!(r.param("missing"), None);
    }
}
