//! The `influxdb_listener` source: a drop-in for InfluxDB 1.x's write API.
//!
//! `POST /write?db=&rp=&precision=` takes line protocol (gzip bodies too)
//! and answers 204, or 400 naming the first bad line (the good lines of the
//! body are kept, as InfluxDB keeps them on a partial write). `GET|HEAD
//! /ping` answers 204, and `/query` accepts the `CREATE DATABASE` and
//! `CREATE RETENTION POLICY` statements clients send before writing, so
//! InfluxDB clients and Telegraf's `influxdb` output work unchanged.
//! A 204 is sent once every sink the events reach has stored them (synced
//! to disk for sinks with a disk buffer); 503 if a full buffer dropped them.
//! A `token` makes every request need `Authorization: Bearer|Token TOKEN`
//! (or HTTP basic auth with the token as password); `tls` serves HTTPS.

use std::convert::Infallible;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use vane_core::conns::Listener;
use vane_core::intake;
use vane_core::lineproto::{self, Precision};
use vane_core::listen::{Listen, Scheme};
use vane_core::prelude::*;
use vane_core::size::ByteSize;

use super::listen::{Connections, now_ns};

fn default_listen() -> Listen {
    Listen::local(8186)
}

/// A certificate chain and its key, PEM files.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Settings of the `influxdb_listener` source: its own and its connections'.
pub type InfluxListenerConfig = vane_core::node::Flat<InfluxListenerSettings, Connections>;

/// What `influxdb_listener` takes besides its connections' limits.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct InfluxListenerSettings {
    /// Where to listen. Default: 127.0.0.1:8186.
    #[serde(default = "default_listen")]
    pub listen: Listen,
    /// When set, requests must carry it (bearer/token header or basic-auth password).
    pub token: Option<String>,
    /// Serve HTTPS with this certificate and key.
    pub tls: Option<TlsFiles>,
    /// Largest body, after gunzipping; larger ones get 413. Default: 32MiB.
    #[serde(default = "crate::defaults::thirty_two_mib")]
    pub max_body: ByteSize,
    /// Adds the request's `db` as this tag.
    pub db_tag: Option<String>,
}

struct Shared {
    cfg: InfluxListenerSettings,
    conns: Connections,
    ctx: Context,
}

pub struct InfluxListener {
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

fn load_tls(t: &TlsFiles) -> std::result::Result<tokio_rustls::TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&t.cert)
        .and_then(|i| i.collect())
        .map_err(|e| format!("tls.cert {}: {e}", t.cert.display()))?;
    if certs.is_empty() {
        return Err(format!("tls.cert {}: no certificate in it", t.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&t.key).map_err(|e| format!("tls.key {}: {e}", t.key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

impl Service for InfluxListener {
    async fn run(self, ctx: Context) -> Result<(), ServiceError> {
        let cfg = &self.shared.cfg;
        let listener = Listener::bind(cfg.listen.addr, self.shared.conns.limits())
            .await
            .map_err(|e| ServiceError::restart(format!("cannot listen on {}: {e}", cfg.listen)))?;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        ctx.info(format!("influxdb_listener on {scheme}://{}", listener.local_addr()?));
        let mut conns = tokio::task::JoinSet::new();
        let mut notice = super::listen::noticing(&ctx);
        loop {
            let (sock, peer) = tokio::select! {
                a = listener.accept(&mut notice) => a,
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                _ = ctx.stopping() => break,
            };
            let shared = self.shared.clone();
            let tls = self.tls.clone();
            conns.spawn(async move {
                let timeout = shared.conns.read_timeout.get();
                let svc = {
                    let shared = shared.clone();
                    hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                    })
                };
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(timeout);
                let r = match tls {
                    Some(acceptor) => match tokio::time::timeout(timeout, acceptor.accept(sock)).await {
                        Ok(Ok(s)) => http.serve_connection(hyper_util::rt::TokioIo::new(s), svc).await,
                        Ok(Err(e)) => {
                            shared.ctx.debug(format!("{peer}: TLS: {e}"));
                            Ok(())
                        }
                        Err(_) => Ok(()),
                    },
                    None => http.serve_connection(hyper_util::rt::TokioIo::new(sock), svc).await,
                };
                if let Err(e) = r {
                    shared.ctx.debug(format!("{peer}: {e}"));
                }
            });
        }
        conns.shutdown().await;
        Ok(())
    }
}

impl Build for InfluxListener {
    type Config = InfluxListenerConfig;

    fn build(vane_core::node::Flat(cfg, conns): InfluxListenerConfig, ctx: &Context) -> Result<Self, BuildError> {
        cfg.listen.only(Scheme::Tcp).map_err(|e| BuildError::stop(format!("listen: {e}")))?;
        let tls = cfg.tls.as_ref().map(load_tls).transpose().map_err(BuildError::stop)?;
        Ok(InfluxListener { shared: Arc::new(Shared { cfg, conns, ctx: ctx.clone() }), tls })
    }
}

fn reply(status: StatusCode, error: Option<&str>) -> Response<Full<Bytes>> {
    let body = match error {
        Some(e) => serde_json::json!({ "error": e }).to_string(),
        None if status == StatusCode::OK => r#"{"results":[{"statement_id":0}]}"#.to_owned(),
        None => String::new(),
    };
    let mut r = Response::builder()
        .status(status)
        .header("X-Influxdb-Version", "1.8-vane")
        .header("Content-Type", "application/json");
    if error.is_some() {
        r = r.header("X-Influxdb-Error", error.unwrap_or_default());
    }
    r.body(Full::new(Bytes::from(body))).expect("a valid response")
}

fn query_params(req: &Request<Incoming>) -> Vec<(String, String)> {
    req.uri().query().map(|q| form_pairs(q.as_bytes())).unwrap_or_default()
}

/// `application/x-www-form-urlencoded` pairs, percent-decoded.
fn form_pairs(q: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &[u8]) -> String {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => {
                    match u8::from_str_radix(std::str::from_utf8(&s[i + 1..i + 3]).unwrap_or("zz"), 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
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
        .map(|p| {
            let (k, v) = match p.iter().position(|b| *b == b'=') {
                Some(i) => (&p[..i], &p[i + 1..]),
                None => (p, &b""[..]),
            };
            (decode(k), decode(v))
        })
        .collect()
}

fn authorized(shared: &Shared, req: &Request<Incoming>, params: &[(String, String)]) -> bool {
    let Some(token) = &shared.cfg.token else {
        return true;
    };
    let given = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            if let Some(t) = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("Token ")) {
                Some(t.trim().to_owned())
            } else {
                let b = v.strip_prefix("Basic ")?;
                let raw = base64_decode(b.trim())?;
                let s = String::from_utf8(raw).ok()?;
                Some(s.split_once(':')?.1.to_owned())
            }
        })
        // InfluxDB 1.x's own way: the password as the `p` parameter.
        .or_else(|| params.iter().find(|(k, _)| k == "p").map(|(_, v)| v.clone()));
    given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let ctx = &shared.ctx;
    let params = query_params(&req);
    let path = req.uri().path().to_owned();
    match (req.method().as_str(), path.as_str()) {
        ("GET" | "HEAD", "/ping") => return reply(StatusCode::NO_CONTENT, None),
        (_, "/ping") => return reply(StatusCode::METHOD_NOT_ALLOWED, Some("use GET or HEAD")),
        (_, "/write" | "/query") => {}
        _ => {
            return reply(StatusCode::NOT_FOUND, Some("not found: vane serves /write, /query and /ping"));
        }
    }
    if !authorized(shared, &req, &params) {
        ctx.warn("a request without the right token was refused");
        return reply(StatusCode::UNAUTHORIZED, Some("authorization failed"));
    }
    let max = shared.cfg.max_body.0 as usize;
    if req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|n| n > max as u64)
    {
        return reply(StatusCode::PAYLOAD_TOO_LARGE, Some(&format!("body larger than max_body ({max} bytes)")));
    }
    let gzip =
        req.headers().get(hyper::header::CONTENT_ENCODING).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let method = req.method().clone();
    // Room for the body in the process's intake budget, before reading it.
    let length = req.headers().get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let mut rooms = Vec::new();
    match intake::reserve(length.unwrap_or(max).min(max)).await {
        Some(r) => rooms.push(r),
        None => return busy(ctx),
    }
    let body = match tokio::time::timeout(shared.conns.read_timeout.get(), Limited::new(req.into_body(), max).collect())
        .await
    {
        Err(_) => {
            return reply(StatusCode::REQUEST_TIMEOUT, Some("body not received in time"));
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return reply(StatusCode::PAYLOAD_TOO_LARGE, Some(&format!("body larger than max_body ({max} bytes)")));
        }
        Ok(Err(e)) => {
            return reply(StatusCode::BAD_REQUEST, Some(&format!("reading the body: {e}")));
        }
        Ok(Ok(b)) => b.to_bytes(),
    };
    // Some clients mark an empty body as gzipped.
    let body = if gzip && !body.is_empty() {
        match gunzip(ctx, &body, max, &mut rooms).await {
            Ok(b) => b,
            Err(r) => return r,
        }
    } else {
        body
    };
    if path == "/query" {
        let mut all = params;
        if method == hyper::Method::POST {
            all.extend(form_pairs(&body));
        }
        let q = all.iter().find(|(k, _)| k == "q").map(|(_, v)| v.trim().to_ascii_uppercase());
        return match q {
            Some(q) if q.starts_with("CREATE DATABASE") || q.starts_with("CREATE RETENTION POLICY") => {
                reply(StatusCode::OK, None)
            }
            _ => reply(
                StatusCode::BAD_REQUEST,
                Some(
                    "vane's influxdb_listener takes writes; of queries only CREATE DATABASE and CREATE RETENTION POLICY",
                ),
            ),
        };
    }
    if method != hyper::Method::POST {
        return reply(StatusCode::METHOD_NOT_ALLOWED, Some("use POST"));
    }
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let precision = match param("precision").unwrap_or("ns") {
        "n" | "ns" | "" => Precision::Nanoseconds,
        "u" | "us" => Precision::Microseconds,
        "ms" => Precision::Milliseconds,
        "s" => Precision::Seconds,
        p => {
            return reply(StatusCode::BAD_REQUEST, Some(&format!("unknown precision {p:?}")));
        }
    };
    let db = param("db").map(str::to_owned);
    // Decoded a chunk at a time, each chunk's room reserved first, and
    // handed on: a body never lies in memory as events all at once. The
    // answer waits until every sink the events reach has stored them (a
    // disk buffer: synced), so a 204 means they survive a crash.
    let (mut bad, mut first) = (0u64, None);
    let mut stored = true;
    let mut lines = decode(&body, precision, now_ns()).peekable();
    while lines.peek().is_some() {
        let Some(_room) = intake::reserve_events(CHUNK).await else {
            // What was handed on stays handed on: the client retries the
            // body, and those events may arrive twice (at least once).
            return busy(ctx);
        };
        let mut chunk = Vec::with_capacity(CHUNK.min(body.len() / 4 + 1));
        for r in lines.by_ref().take(CHUNK) {
            match r {
                Ok(mut e) => {
                    if let (Some(tag), Some(db)) = (&shared.cfg.db_tag, &db) {
                        e.tags.push((tag.clone(), db.clone()));
                    }
                    chunk.push(e)
                }
                Err(msg) => {
                    bad += 1;
                    first.get_or_insert(msg);
                }
            }
        }
        if !chunk.is_empty() {
            stored &= ctx.emit_acked(chunk).await;
        }
    }
    drop(rooms);
    if bad > 0 {
        ctx.stats().bad_lines.fetch_add(bad, Ordering::Relaxed);
        ctx.warn(format!("/write: {bad} bad lines, the first: {}", first.as_deref().unwrap_or("")));
    }
    if !stored {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            Some("not stored: a sink's buffer is full and dropped them; retry later"),
        );
    }
    match first {
        None => reply(StatusCode::NO_CONTENT, None),
        Some(first) => reply(StatusCode::BAD_REQUEST, Some(&format!("partial write: {first} (dropped={bad})"))),
    }
}

/// Events are decoded and handed on this many at a time.
const CHUNK: usize = 4096;

/// 503: the intake budget stayed spent.
fn busy(ctx: &Context) -> Response<Full<Bytes>> {
    ctx.warn("a request was refused: the listeners' memory budget is spent (503)");
    let mut r = reply(StatusCode::SERVICE_UNAVAILABLE, Some("busy: the listener holds as much as it may; retry later"));
    r.headers_mut().insert(hyper::header::RETRY_AFTER, hyper::header::HeaderValue::from_static("1"));
    r
}

/// A gzip body inflated, at most `max` bytes, each MiB of it reserved in
/// the intake budget first (kept in `rooms`).
async fn gunzip(
    ctx: &Context,
    body: &[u8],
    max: usize,
    rooms: &mut Vec<intake::Room>,
) -> Result<Bytes, Response<Full<Bytes>>> {
    const STEP: usize = 1 << 20;
    let mut z = flate2::read::GzDecoder::new(body);
    let mut out = Vec::new();
    loop {
        let Some(room) = intake::reserve(STEP).await else {
            return Err(busy(ctx));
        };
        rooms.push(room);
        // Read one byte past the limit to tell a body that is too large.
        let want = (max + 1 - out.len()).min(STEP) as u64;
        match (&mut z).take(want).read_to_end(&mut out) {
            Ok(_) if out.len() > max => {
                return Err(reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Some(&format!("body larger than max_body ({max} bytes) once gunzipped")),
                ));
            }
            Ok(0) => return Ok(Bytes::from(out)),
            Ok(_) => {}
            Err(e) => return Err(reply(StatusCode::BAD_REQUEST, Some(&format!("bad gzip body: {e}")))),
        }
    }
}

/// The events of a body, lazily, each bad record as its error (naming its
/// line and column).
pub fn decode(
    body: &[u8],
    precision: Precision,
    now: i64,
) -> impl Iterator<Item = std::result::Result<Event, String>> + Send + '_ {
    lineproto::decode(body, precision, now).map(|r| r.map_err(|e| e.to_string()))
}

/// The events of a body, the number of bad lines and the first one's error.
pub fn decode_body(body: &[u8], precision: Precision, now: i64) -> (Vec<Event>, u64, Option<String>) {
    let (mut events, mut bad, mut first) = (Vec::new(), 0, None);
    for r in decode(body, precision, now) {
        match r {
            Ok(e) => events.push(e),
            Err(msg) => {
                bad += 1;
                first.get_or_insert(msg);
            }
        }
    }
    (events, bad, first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_decode_with_the_first_bad_line_named() {
        let (evs, bad, first) = decode_body(b"a v=1\nb v=\nc v=3 10\n\xff\xfe\nd v=4", Precision::Seconds, 7);
        assert_eq!(evs.len(), 3);
        assert_eq!(evs[1].time, 10_000_000_000);
        assert_eq!(evs[0].time, 7);
        assert_eq!(bad, 2);
        assert_eq!(first.unwrap(), "line 2, column 5: missing value for field \"v\"");
        let (evs, bad, first) = decode_body(b"x v=1i\nm", Precision::Nanoseconds, 0);
        assert_eq!((evs.len(), bad), (1, 1));
        assert!(first.unwrap().starts_with("line 2, column"));
    }

    #[test]
    fn forms_and_basic_auth_decode() {
        assert_eq!(
            form_pairs(b"q=CREATE+DATABASE+%22x%22&db=a%2Fb&e"),
            vec![
                ("q".into(), "CREATE DATABASE \"x\"".into()),
                ("db".into(), "a/b".into()),
                ("e".into(), String::new())
            ]
        );
        assert_eq!(form_pairs(b"a=%zz%4"), vec![("a".into(), "%zz%4".into())]);
        assert_eq!(base64_decode("dTpzM2NyZXQ=").unwrap(), b"u:s3cret");
        assert!(base64_decode("*").is_none());
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd"));
    }
}
